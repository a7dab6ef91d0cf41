//! `neo-peer relay` run as a user would, between two in-process nodes: an
//! item one of them relays reaches the other through it, once, and with
//! `--no-gossip` it names no other node in answer to `getaddr`; a Legacy
//! relay on a private network asks for its genesis hash.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader, Lines, Read};
use std::net::SocketAddr;
use std::process::{ChildStdout, Command, Stdio};
use std::time::Duration;

use common::{Kill, listening};
use futures_lite::future;
use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{N3Chain, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::{ManagerConfig, PeerManager, RelayConfig};
use neo_peer::peer::{IgnoreAll, LocalConfig};
use neo_peer::protocol::{N3, Protocol};
use neo_peer::relay::{Inventory, Item};
use neo_peer::wire::n3;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Starts `neo-peer relay --json` with `args`; returns it, its address and
/// its standard output, line by line.
fn relay(args: &[&str]) -> (Kill, SocketAddr, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args([
            "relay",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "60",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "listening", "{first}");
    let addr = first["addr"].as_str().unwrap().parse().unwrap();
    (Kill(child), addr, lines)
}

fn node() -> PeerManager<N3> {
    let mut local = LocalConfig::new(n3::PRIVNET_MAGIC);
    local.timeouts.handshake = Duration::from_secs(10);
    local.timeouts.stall = Duration::from_secs(20);
    let config = ManagerConfig::new(local);
    let book = AddressBook::in_memory(BookConfig::new(N3::NAME, n3::PRIVNET_MAGIC));
    PeerManager::new(config, book, IgnoreAll, SmolGlobal).unwrap()
}

fn tx() -> Item<N3> {
    let chain = N3Chain::synthetic(&Synthetic {
        blocks: 1,
        txs_per_block: 1,
        seed: 7,
        with_bodies: true,
    });
    let tx = chain.block(1).unwrap().transactions[0].clone();
    N3::item(&n3::Message::Transaction(tx)).unwrap()
}

#[test]
fn an_item_passes_through_the_relay_once() {
    let (_relay, addr, mut lines) = relay(&["--no-follow", "--verbose", "--summary", "0.1"]);
    smol::block_on(async {
        let a = node();
        let c = node();
        let (got_tx, got) = async_channel::unbounded();
        a.start_relay(RelayConfig::default(), None, |_, _| {})
            .unwrap();
        c.start_relay(RelayConfig::default(), None, move |from, item| {
            let _ = got_tx.try_send((from.addr(), item.hash));
        })
        .unwrap();
        a.connect(addr).await.unwrap();
        c.connect(addr).await.unwrap();
        // Both are the relay's peers before the item comes.
        loop {
            let line: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            if line["event"] == "summary" && line["peers"] == 2 {
                break;
            }
        }
        let item = tx();
        assert_eq!(a.relay(item.clone()), 1);
        let (from, hash) = future::or(async { got.recv().await.ok() }, async {
            async_io::Timer::after(WAIT).await;
            None
        })
        .await
        .expect("the item through the relay");
        assert_eq!((from, hash), (Some(addr), item.hash));
        let line: Value = loop {
            let line: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            if line["event"] == "relayed" {
                break line;
            }
        };
        assert_eq!(line["kind"], "tx");
        assert_eq!(line["hash"], item.hash.to_string());
        assert_eq!(line["to"], 1, "to C only, not back to A");
        // The summary says what was asked for, by kind.
        let summary: Value = loop {
            let line: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            if line["event"] == "summary" && line["received"] == 1 {
                break line;
            }
        };
        assert_eq!(summary["requested"], 1);
        assert_eq!(
            summary["requested_by_kind"],
            serde_json::json!({"tx": 1, "block": 0, "extensible": 0, "consensus": 0})
        );
        for m in [a, c] {
            m.shutdown().await;
        }
    });
}

#[test]
fn no_gossip_names_no_other_node() {
    let (_relay, addr, _lines) = relay(&["--no-follow", "--no-gossip", "--summary", "0"]);
    smol::block_on(async {
        // A listens, so the relay learns where it can be reached.
        let a = node();
        a.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        a.connect(addr).await.unwrap();
        let c = node();
        let to_relay = c.connect(addr).await.unwrap();
        // The manager's own getaddr to a new peer may hold the slot a while.
        let answers = loop {
            match to_relay.request(N3::get_addr()).await {
                Ok(answers) => break answers,
                Err(_) => {
                    async_io::Timer::after(Duration::from_millis(20)).await;
                }
            }
        };
        let named: Vec<SocketAddr> = answers
            .iter()
            .filter_map(N3::addresses)
            .flatten()
            .map(|g| g.addr)
            .collect();
        assert_eq!(named, vec![addr], "the relay's own address only");
        for m in [a, c] {
            m.shutdown().await;
        }
    });
}

/// A Legacy relay on a private network follows the chain only with its
/// genesis hash: without `--genesis` (or `--no-follow`) it says so and stops.
#[test]
fn a_legacy_relay_on_a_private_network_needs_its_genesis() {
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_neo-peer"))
            .args(["relay", "--protocol", "legacy", "--network", "56753"])
            .args(["--duration", "0", "--summary", "0"])
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = run(&[]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--genesis"), "{said}");
    assert!(run(&["--no-follow"]).status.success());
    let genesis = format!("0x{}", "ab".repeat(32));
    assert!(run(&["--genesis", &genesis]).status.success());
}

/// Without `--json` every line of the relay is on standard output (the
/// logs alone go to standard error). Catching up with the chain of a node
/// that has every block, it prints no block line for a block sent to no
/// peer until the tip, and counts none as relayed: the summary says 0
/// blocks relayed, and how many were followed.
#[test]
fn a_relay_catching_up_prints_and_counts_only_what_it_sent() {
    const BLOCKS: u32 = 40;
    let blocks = BLOCKS.to_string();
    let (_serve, first) = listening(&["serve", "--listen", "127.0.0.1:0", "--synthetic", &blocks]);
    let served = first.addr.as_str();
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["relay", "--listen", "127.0.0.1:0", "--connect", served])
        .args(["--verbose", "--summary", "0.1", "--duration", "120"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut relay = Kill(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut next = || lines.next().expect("the relay's output").unwrap();
    assert!(next().starts_with("relay listening on 127.0.0.1:"));
    // Until the tip's line and a summary after the last block followed,
    // in whichever order they come.
    let (mut blocks, mut summary) = (Vec::new(), None);
    let tip = format!("block {BLOCKS} 0x");
    while summary.is_none() || !blocks.iter().any(|b: &String| b.starts_with(&tip)) {
        let line = next();
        if line.starts_with("relay: ") && line.ends_with(&format!(" blocks followed {BLOCKS}")) {
            summary = Some(line);
        } else if line.starts_with("block ") {
            blocks.push(line);
        }
    }
    let summary = summary.unwrap();
    assert!(
        summary.contains(" relayed 0 tx 0 blocks 0 payloads,"),
        "{summary}"
    );
    assert!(summary.contains(&format!(" height {BLOCKS},")), "{summary}");
    // The one block line: the tip, which no peer lacked.
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert!(blocks[0].ends_with(&format!(" from {served} to 0 peers")));
    let _ = relay.0.kill();
    let _ = relay.0.wait();
    let mut said = String::new();
    BufReader::new(stderr).read_to_string(&mut said).unwrap();
    for text in [
        "relay listening",
        "relay: ",
        "following the chain",
        "block ",
    ] {
        assert!(
            !said.contains(text),
            "nothing but logs on standard error: {said}"
        );
    }
}
