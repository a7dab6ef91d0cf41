//! The `neo-peer peers` command, on a book written through the library.
#![cfg(feature = "cli")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use neo_peer::book::{AddressBook, BookConfig, Connected, Source};
use serde_json::Value;

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "neo-peer-cli-peers-{}-{}-{name}.redb",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .arg("peers")
        .args(args)
        .output()
        .unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A Legacy testnet book: one node reached, one banned, one only gossiped.
fn make_book(path: &Path) {
    let book = AddressBook::open(path, BookConfig::new("legacy", 1_953_787_457)).unwrap();
    let (good, banned, gossiped) = (
        sa("10.0.0.1:20333"),
        sa("10.0.0.2:20333"),
        sa("[2001:db8::3]:20333"),
    );
    book.add(good, Source::Seed);
    book.add(banned, Source::Manual);
    book.add(gossiped, Source::Gossip);
    book.record_attempt(good);
    book.record_success(
        good,
        &Connected {
            user_agent: "/NEO:2.12.2/".into(),
            services: 1,
            capabilities: Vec::new(),
            start_height: 1234,
        },
    );
    book.record_height(good, 1300);
    book.record_rtt(good, Duration::from_millis(15));
    book.record_failure(gossiped);
    book.record_failure(gossiped);
    book.ban(banned, Duration::from_secs(7200), "invalid block");
    assert_eq!(book.flush().unwrap(), 3);
}

#[test]
fn peers_lists_a_book_as_a_table_and_as_json() {
    let path = temp_path("list");
    make_book(&path);
    let db = path.to_str().unwrap();

    let out = run(&["--db", db]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(
        lines[0],
        format!("{db}: protocol legacy, network 1953787457, 3 addresses")
    );
    let header: Vec<&str> = lines[1].split("  ").filter(|c| !c.is_empty()).collect();
    assert_eq!(
        header,
        [
            "ADDRESS",
            "SOURCE",
            "USER AGENT",
            "HEIGHT",
            "LAST SUCCESS",
            "FAILURES",
            "RTT",
            "BANNED UNTIL"
        ]
    );
    let cells = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    // Sorted by address: IPv4 before IPv6.
    let mut row = cells(lines[2]);
    // Seconds ago: a few at most, however slow the machine.
    let ago = row.remove(4);
    assert!(ago.ends_with("s ago") && ago.len() <= 7, "{ago}");
    assert_eq!(
        row,
        [
            "10.0.0.1:20333",
            "seed",
            "/NEO:2.12.2/",
            "1300",
            "0",
            "15 ms",
            "-"
        ]
    );
    assert_eq!(
        cells(lines[3]),
        [
            "10.0.0.2:20333",
            "manual",
            "-",
            "0",
            "never",
            "0",
            "-",
            "in 2h"
        ]
    );
    assert_eq!(
        cells(lines[4]),
        [
            "[2001:db8::3]:20333",
            "gossip",
            "-",
            "0",
            "never",
            "2",
            "-",
            "-"
        ]
    );

    let out = run(&["--db", db, "--json"]);
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = json.as_array().unwrap();
    assert_eq!(all.len(), 3);
    let good = &all[0];
    assert_eq!(good["address"], "10.0.0.1:20333");
    assert_eq!(good["source"], "seed");
    assert_eq!(good["user_agent"], "/NEO:2.12.2/");
    assert_eq!(good["services"], 1);
    assert_eq!(good["start_height"], 1234);
    assert_eq!(good["last_height"], 1300);
    assert_eq!(good["rtt_ms"], 15);
    assert_eq!(good["failures"], 0);
    assert!(good["last_success_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(good["banned_until_ms"].is_null());
    assert_eq!(all[1]["ban_reason"], "invalid block");
    assert!(
        all[1]["banned_until_ms"].as_u64().unwrap() > good["last_success_ms"].as_u64().unwrap()
    );
    assert_eq!(all[2]["address"], "[2001:db8::3]:20333");
    assert_eq!(all[2]["failures"], 2);
    assert!(all[2]["user_agent"].is_null());
    // Where each sits: reached in "tried", gossip in "new", the manual
    // address kept aside.
    assert_eq!(good["table"], "tried");
    assert!(good["bucket"].as_u64().unwrap() < neo_peer::book::TRIED_BUCKETS as u64);
    assert_eq!(all[2]["table"], "new");
    assert!(all[2]["bucket"].as_u64().unwrap() < neo_peer::book::NEW_BUCKETS as u64);
    assert!(all[1]["table"].is_null() && all[1]["bucket"].is_null());
    assert!(good["learned_from"].is_null());

    // While a node holds the book open, the file is locked.
    let held = AddressBook::open_existing(&path).unwrap();
    let out = run(&["--db", db]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!("error: address book {db}: cannot open: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
    drop(held);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn peers_on_a_missing_file_is_one_error_line() {
    let path = temp_path("missing");
    let out = run(&["--db", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!("error: address book {} does not exist\n", path.display())
    );
    assert!(!path.exists());
}
