//! `neo-peer serve` and `neo-peer sync`, run as a user would, against each other.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Kill, serve_synthetic};
use neo_peer::chain::{LegacyChain, N3Chain, Synthetic};

const BLOCKS: u32 = 4321;

/// Starts a server; returns it with its address and genesis hash.
fn serve(protocol: &str) -> (Kill, String, String) {
    let (server, first) = serve_synthetic(protocol, BLOCKS);
    assert_eq!(first.height, BLOCKS);
    (server, first.addr, first.genesis)
}

fn sync(args: &[&str]) -> String {
    neo_peer(&[&["sync"], args].concat())
}

/// `neo-peer ARGS`, which must succeed; what it printed on standard output.
fn neo_peer(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn synthetic() -> Synthetic {
    Synthetic {
        blocks: BLOCKS,
        txs_per_block: 1,
        seed: 0,
        with_bodies: false,
    }
}

/// The parts of a `synced` line: `synced N headers, tip INDEX 0x<hash> in T
/// (R headers/s)`, with T as Rust prints a duration (`38.12ms`, `1.20s`).
/// Checks that the rate is the count over the time.
fn synced_line(line: &str) -> (u64, u32, String) {
    let rest = line.strip_prefix("synced ").expect(line);
    let (count, rest) = rest.split_once(" headers, tip ").expect(line);
    let (tip, rest) = rest.split_once(' ').expect(line);
    let (hash, rest) = rest.split_once(" in ").expect(line);
    let (time, rest) = rest.split_once(" (").expect(line);
    let rate = rest.strip_suffix(" headers/s)").expect(line);
    let seconds = [("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)]
        .iter()
        .find_map(|(unit, scale)| Some(time.strip_suffix(unit)?.parse::<f64>().ok()? * scale))
        .unwrap_or_else(|| panic!("{time:?} is no duration: {line}"));
    let count: u64 = count.parse().expect(line);
    let rate: f64 = rate.parse().expect(line);
    assert!(seconds > 0.0, "{line}");
    let expected = count as f64 / seconds;
    // The time is printed with two decimals: a few percent off at most.
    assert!(
        (rate - expected).abs() <= expected * 0.05 + 1.0,
        "{rate} headers/s, but {count} in {seconds} s: {line}"
    );
    (count, tip.parse().expect(line), hash.to_string())
}

#[test]
fn n3_sync_fetches_the_served_chain() {
    let (_server, addr, genesis) = serve("n3");
    let chain = N3Chain::synthetic(&synthetic());
    assert_eq!(genesis, chain.genesis_hash().to_string());
    let out = sync(&[
        "--protocol",
        "n3",
        "--network",
        "privnet",
        "--connect",
        &addr,
    ]);
    let first = out.lines().next().unwrap();
    assert_eq!(
        synced_line(first),
        (u64::from(BLOCKS) + 1, BLOCKS, chain.tip_hash().to_string())
    );
    // the statistics table follows
    assert!(out.contains("getheaders") && out.contains("headers"));
    let out = sync(&["--connect", &addr, "--count", "1000"]);
    assert_eq!(
        synced_line(out.lines().next().unwrap()),
        (1000, 999, chain.hash(999).unwrap().to_string())
    );
}

#[test]
fn legacy_sync_fetches_the_served_chain() {
    let (_server, addr, genesis) = serve("legacy");
    let chain = LegacyChain::synthetic(&synthetic());
    assert_eq!(genesis, chain.genesis_hash().to_string());
    let out = sync(&[
        "--protocol",
        "legacy",
        "--network",
        "privnet",
        "--connect",
        &addr,
        "--genesis",
        &genesis,
    ]);
    assert_eq!(
        synced_line(out.lines().next().unwrap()),
        (u64::from(BLOCKS) + 1, BLOCKS, chain.tip_hash().to_string())
    );
}

/// Every line of `text` as a JSON object with its `event` first.
fn events(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| {
            assert!(line.starts_with(r#"{"event":""#), "{line}");
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
        })
        .collect()
}

fn named<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

#[test]
fn json_events_one_object_per_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["serve", "--listen", "127.0.0.1:0", "--synthetic", "2500"])
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server's events, as they come.
    let (tx, served) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let _server = Kill(child);
    let next = || {
        let line = served
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("an event from serve");
        events(&line).remove(0)
    };
    let listening = next();
    assert_eq!(listening["event"], "listening");
    assert_eq!(listening["height"], 2500);
    let chain = N3Chain::synthetic(&Synthetic {
        blocks: 2500,
        ..synthetic()
    });
    assert_eq!(listening["genesis"], chain.genesis_hash().to_string());
    let addr = listening["addr"].as_str().unwrap().to_string();

    let out = sync(&["--connect", &addr, "--json"]);
    let got = events(&out);
    let connected = named(&got, "connected");
    assert_eq!(connected.len(), 1, "{out}");
    assert_eq!(connected[0]["addr"], addr);
    assert_eq!(connected[0]["direction"], "outbound");
    let synced = named(&got, "synced");
    assert_eq!(synced.len(), 1, "{out}");
    assert_eq!(synced[0]["headers"], 2501);
    assert_eq!(synced[0]["tip_index"], 2500);
    assert_eq!(synced[0]["tip_hash"], chain.tip_hash().to_string());
    let seconds = synced[0]["seconds"].as_f64().unwrap();
    let rate = synced[0]["headers_per_second"].as_f64().unwrap();
    assert!(
        (rate - (2501.0 / seconds).round()).abs() <= 1.0,
        "{}",
        synced[0]
    );
    let last_progress = named(&got, "progress").pop().expect("progress");
    assert_eq!(last_progress["headers"], 2501);
    let peers = named(&got, "peer");
    assert_eq!(peers.len(), 1, "{out}");
    assert_eq!(peers[0]["served"], 2);
    assert_eq!(peers[0]["share_percent"], 100.0);
    let commands = named(&got, "command");
    let headers = commands
        .iter()
        .find(|c| c["command"] == "headers")
        .expect("headers counted");
    assert_eq!(headers["messages_in"], 2);
    let bytes_in: u64 = commands
        .iter()
        .map(|c| c["bytes_in"].as_u64().unwrap())
        .sum();
    assert_eq!(peers[0]["bytes_in"], bytes_in);

    // The server saw the client come and go.
    let came = next();
    assert_eq!(came["event"], "connected", "{came}");
    let user_agent = came["user_agent"].as_str().unwrap();
    assert!(user_agent.starts_with("/neo-peer:"), "{came}");
    let went = next();
    assert_eq!(went["event"], "disconnected", "{went}");
    assert_eq!(went["addr"], came["addr"]);
    assert_eq!(went["reason"], "remote closed the connection");

    // A sync done in one range reports its progress once, not again at the end.
    let short = sync(&["--connect", &addr, "--count", "100", "--json"]);
    let short_events = events(&short);
    let progress = named(&short_events, "progress");
    assert_eq!(progress.len(), 1, "{short}");
    assert_eq!(progress[0]["headers"], 100);
    assert_eq!(progress[0]["target"], 100);

    // A crawl from a seeds file that names the server.
    let dir = std::env::temp_dir().join(format!("neo-peer-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seeds = dir.join("seeds.txt");
    std::fs::write(&seeds, format!("{addr}\n")).unwrap();
    let db = dir.join("peers.db");
    let text = neo_peer(&[
        "crawl",
        "--json",
        "--duration",
        "1.5",
        "--seeds",
        seeds.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    let got = events(&text);
    assert_eq!(got[0]["event"], "book", "{text}");
    assert_eq!(got[0]["from"], "seeds");
    assert_eq!(got[0]["addresses"], 1);
    assert_eq!(named(&got, "connected").len(), 1, "{text}");
    assert!(!named(&got, "progress").is_empty(), "{text}");
    let summary = got.last().unwrap();
    assert_eq!(summary["event"], "summary", "{text}");
    assert_eq!(summary["reachable"], 1);
    assert_eq!(summary["best_height"], 2500);
    assert_eq!(summary["user_agents"][user_agent], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sync --blocks --follow` of a Legacy node follows until SIGINT, then
/// ends cleanly with the final `synced_blocks` line.
#[test]
fn legacy_follow_ends_on_sigint_with_the_synced_line() {
    let (_server, addr, genesis) = serve("legacy");
    let chain = LegacyChain::synthetic(&synthetic());
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["sync", "--protocol", "legacy", "--network", "privnet"])
        .args(["--connect", &addr, "--genesis", &genesis])
        .args(["--blocks", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = None;
    for _ in 0..10_000 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["event"] == "synced_blocks" {
            first = Some(event);
            break;
        }
    }
    let first = first.expect("the blocks were synced before following");
    assert_eq!(first["tip_index"], BLOCKS);
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let all = events(&rest);
    let last = all.last().expect("a final line");
    assert_eq!(last["event"], "synced_blocks", "{rest}");
    assert_eq!(last["blocks"], BLOCKS);
    assert_eq!(last["tip_hash"], chain.tip_hash().to_string());
    assert!(named(&all, "block").is_empty(), "nothing new: {rest}");
}
