//! `neo-peer sync --blocks --follow` whose only peer, a `neo-peer serve`,
//! goes away and comes back on the same port, run as a user would: the loss
//! is reported (a line, or a `disconnected` event with `--json`), the
//! `--connect` address is dialed again, and the following resumes with the
//! blocks the restarted node has beyond the old tip.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use common::{Kill, free_port, neo_peer, try_listening};
use neo_peer::chain::{N3Chain, Synthetic};
use serde_json::Value;

/// Blocks served first, then after the restart.
const BEFORE: u32 = 100;
const AFTER: u32 = 120;

/// How long any one expected line may take (the machine is loaded).
const WAIT: Duration = Duration::from_secs(90);

/// `neo-peer serve --synthetic BLOCKS` on `port`, once it listens; `None`
/// when it could not listen there.
fn serve(port: u16, blocks: u32) -> Option<Kill> {
    let listen = format!("127.0.0.1:{port}");
    let blocks = blocks.to_string();
    try_listening(&["serve", "--listen", &listen, "--synthetic", &blocks]).map(|(node, _)| node)
}

/// The same, retried while the port is still held by the node before.
fn serve_again(port: u16, blocks: u32) -> Kill {
    for _ in 0..50 {
        if let Some(node) = serve(port, blocks) {
            return node;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("cannot listen on {port} again");
}

/// `neo-peer sync --blocks --follow` from `addr` with `extra` arguments;
/// its standard output, line by line, read on a thread of its own.
fn follow(addr: &str, extra: &[&str]) -> (Kill, Receiver<String>) {
    let mut child = neo_peer()
        .args(["sync", "--connect", addr, "--blocks", "--follow"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Kill(child), rx)
}

/// Reads lines until one for which `wanted` holds; panics, naming `what`,
/// if the output ends or none comes within [`WAIT`].
fn until(lines: &Receiver<String>, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    loop {
        match lines.recv_timeout(WAIT) {
            Ok(line) if wanted(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line for {what}: {e}"),
        }
    }
}

fn event(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or(Value::Null)
}

#[test]
fn following_resumes_when_the_only_peer_comes_back() {
    let chain = N3Chain::synthetic(&Synthetic {
        blocks: AFTER,
        txs_per_block: 1,
        seed: 0,
        with_bodies: false,
    });
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let node = serve(port, BEFORE).expect("a free port");
    let (_text, text) = follow(&addr, &[]);
    let (_json, json) = follow(&addr, &["--json"]);
    until(&text, "the blocks synced", |l| {
        l.starts_with(&format!("synced {BEFORE} blocks, tip {BEFORE} "))
    });
    until(&json, "the blocks synced", |l| {
        let e = event(l);
        e["event"] == "synced_blocks" && e["tip_index"] == BEFORE
    });

    drop(node);
    // (The table of peers before the following starts with `peer` too.)
    let about_it = |l: &str| l.starts_with(&format!("peer {addr} "));
    let lost = until(&text, "the peer lost", about_it);
    assert!(lost.starts_with(&format!("peer {addr} lost: ")), "{lost}");
    let lost = until(&json, "the peer lost", |l| {
        event(l)["event"] == "disconnected"
    });
    assert_eq!(event(&lost)["addr"], addr.as_str());

    let _node = serve_again(port, AFTER);
    let back = until(&text, "the peer back", about_it);
    assert_eq!(back, format!("peer {addr} connected again"));
    until(&json, "the peer back", |l| {
        let e = event(l);
        e["event"] == "connected" && e["addr"] == addr.as_str()
    });
    for index in BEFORE + 1..=AFTER {
        let hash = chain.hash(index).unwrap();
        let line = until(&text, "the next block", |l| l.starts_with("block "));
        assert_eq!(line, format!("block {index} {hash} txs 1 from {addr}"));
        let e = event(&until(&json, "the next block", |l| {
            event(l)["event"] == "block"
        }));
        assert_eq!(e["index"], index, "{e}");
        assert_eq!(e["hash"], hash.to_string(), "{e}");
    }
}
