//! The README's usage lines say what `--help` says: every option of each
//! command, shown required (outside brackets) exactly when the tool requires
//! it, and nothing else.
#![cfg(feature = "cli")]

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

/// The long options `--help` lists (but `--help` itself) and the ones its
/// usage line requires.
fn options(help: &str) -> (Vec<String>, Vec<String>) {
    let usage = help
        .lines()
        .find_map(|l| l.strip_prefix("Usage: "))
        .unwrap_or_else(|| panic!("no usage line in {help}"));
    let listed: Vec<String> = help
        .lines()
        .filter_map(|l| {
            let l = l.trim_start().trim_start_matches("-h, ");
            let name = l.strip_prefix("--")?.split([' ', '\t']).next()?;
            (name != "help" && name != "version").then(|| format!("--{name}"))
        })
        .collect();
    let required = listed
        .iter()
        .filter(|o| flag_positions(usage, o).next().is_some())
        .cloned()
        .collect();
    (listed, required)
}

/// Where `flag` stands in `text` as a whole word.
fn flag_positions<'a>(text: &'a str, flag: &'a str) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(flag).filter_map(move |(at, _)| {
        let next = text[at + flag.len()..].chars().next();
        next.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
            .then_some(at)
    })
}

/// The README's usage block of `command`: its first line and the indented
/// lines that continue it, inside a `text` block.
fn readme_usage(readme: &str, command: &str) -> String {
    let start = format!("neo-peer {command} ");
    let mut lines = readme.lines().skip_while(|l| !l.starts_with(&start));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no usage of {command} in the README"));
    let mut block = first.to_string();
    for l in lines.take_while(|l| l.starts_with(' ')) {
        block.push('\n');
        block.push_str(l);
    }
    block
}

/// Brackets open at `at`.
fn bracket_depth(text: &str, at: usize) -> i32 {
    text[..at]
        .chars()
        .map(|c| match c {
            '[' => 1,
            ']' => -1,
            _ => 0,
        })
        .sum()
}

#[test]
fn the_readme_shows_every_option_as_help_does() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for command in ["decode", "serve", "sync", "crawl", "peers", "demo", "relay"] {
        let (listed, required) = options(&help(&[command]));
        let usage = readme_usage(&readme, command);
        for option in &listed {
            let at: Vec<usize> = flag_positions(&usage, option).collect();
            assert!(
                !at.is_empty(),
                "{command}: {option} is missing from\n{usage}"
            );
            let optional = at.iter().all(|&i| bracket_depth(&usage, i) > 0);
            assert_eq!(
                optional,
                !required.contains(option),
                "{command}: {option} is {} but the README shows it {}:\n{usage}",
                if optional { "required" } else { "optional" },
                if optional {
                    "in brackets"
                } else {
                    "outside brackets"
                },
            );
        }
        for word in usage.split(|c: char| c.is_whitespace() || "[]()|".contains(c)) {
            if word.starts_with("--") {
                assert!(
                    listed.iter().any(|o| o == word),
                    "{command}: the README shows {word}, which --help does not list"
                );
            }
        }
    }
}

#[test]
fn serve_help_says_it_can_mirror_a_node() {
    let text = help(&[]);
    let serve = text
        .lines()
        .find(|l| l.trim_start().starts_with("serve"))
        .unwrap();
    assert!(serve.contains("mirror"), "{serve}");
    let text = help(&["serve"]);
    assert!(text.contains("--mirror <ADDR>"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("Usage: ") && l.contains("<--synthetic <N>|--mirror <ADDR>>")),
        "{text}"
    );
}
