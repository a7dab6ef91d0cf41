//! `neo-peer sync --blocks` against `neo-peer serve`, run as a user would:
//! the headers, then every block, each checked against its header.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{Kill, serve_synthetic};
use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{Chain, ChainServer, LegacyChain, N3Chain, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::{ManagerConfig, PeerManager};
use neo_peer::peer::LocalConfig;
use neo_peer::protocol::{N3, Protocol};
use neo_peer::wire::n3;

const BLOCKS: u32 = 1500;

/// Starts a server of `BLOCKS` synthetic blocks; returns it with its
/// address and genesis hash.
fn serve(protocol: &str) -> (Kill, String, String) {
    let (server, first) = serve_synthetic(protocol, BLOCKS);
    (server, first.addr, first.genesis)
}

/// `neo-peer sync ARGS`, which must succeed; its standard output.
fn sync(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .arg("sync")
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

/// The parts of the `synced N blocks, tip INDEX 0x<hash> in T (B
/// blocks/s)` line of `out`, which follows the headers' `synced` line.
fn blocks_line(out: &str) -> (u64, u32, String) {
    let mut lines = out.lines();
    let headers = lines.next().unwrap();
    assert!(headers.contains(" headers, tip "), "{out}");
    let line = lines.next().unwrap();
    let rest = line.strip_prefix("synced ").expect(line);
    let (count, rest) = rest.split_once(" blocks, tip ").expect(line);
    let (tip, rest) = rest.split_once(' ').expect(line);
    let (hash, rest) = rest.split_once(" in ").expect(line);
    let (_time, rate) = rest.split_once(" (").expect(line);
    let rate: f64 = rate
        .strip_suffix(" blocks/s)")
        .expect(line)
        .parse()
        .expect(line);
    assert!(rate > 0.0, "{line}");
    (
        count.parse().expect(line),
        tip.parse().expect(line),
        hash.to_string(),
    )
}

#[test]
fn n3_sync_blocks_fetches_every_block() {
    let (_server, addr, genesis) = serve("n3");
    let chain = N3Chain::synthetic(&synthetic());
    assert_eq!(genesis, chain.genesis_hash().to_string());
    let out = sync(&["--protocol", "n3", "--connect", &addr, "--blocks"]);
    assert_eq!(
        blocks_line(&out),
        (u64::from(BLOCKS), BLOCKS, chain.tip_hash().to_string())
    );
    // With --json, one `synced_blocks` event.
    let out = sync(&["--connect", &addr, "--blocks", "--count", "700", "--json"]);
    let event = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "synced_blocks")
        .expect(&out);
    assert_eq!(event["blocks"], 699);
    assert_eq!(event["tip_index"], 699);
    assert_eq!(event["tip_hash"], chain.hash(699).unwrap().to_string());
}

#[test]
fn legacy_sync_blocks_fetches_every_block_by_hash() {
    let (_server, addr, genesis) = serve("legacy");
    let chain = LegacyChain::synthetic(&synthetic());
    let out = sync(&[
        "--protocol",
        "legacy",
        "--connect",
        &addr,
        "--genesis",
        &genesis,
        "--blocks",
    ]);
    assert_eq!(
        blocks_line(&out),
        (u64::from(BLOCKS), BLOCKS, chain.tip_hash().to_string())
    );
}

/// `sync --blocks --follow` against an in-process node whose chain grows:
/// after the `synced` lines, one `block` line per new block, once, in
/// order, while the process keeps running.
#[test]
fn n3_sync_follow_prints_each_new_block_once() {
    let full = N3Chain::synthetic(&Synthetic {
        blocks: 60,
        with_bodies: true,
        ..synthetic()
    });
    let served = Arc::new(Chain::<N3>::from_blocks(full.blocks().take(31).cloned()).unwrap());
    let mut local = LocalConfig::<N3>::new(n3::PRIVNET_MAGIC);
    let height = served.clone();
    local.identity.current_height = Arc::new(move || height.height());
    let book = AddressBook::in_memory(BookConfig {
        protocol: N3::NAME,
        network: n3::PRIVNET_MAGIC,
        ..BookConfig::default()
    });
    let server = PeerManager::new(
        ManagerConfig::new(local),
        book,
        ChainServer::new(served.clone()),
        SmolGlobal,
    )
    .unwrap();
    let addr = smol::block_on(server.listen("127.0.0.1:0".parse().unwrap())).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args([
            "sync",
            "--connect",
            &addr.to_string(),
            "--blocks",
            "--follow",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut next = |what: &str| {
        lines
            .next()
            .unwrap_or_else(|| panic!("the output ended before {what}"))
            .unwrap()
    };
    assert!(next("the headers").starts_with("synced 31 headers, tip 30 "));
    assert!(next("the blocks").starts_with("synced 30 blocks, tip 30 "));
    // The first new blocks; the tables come before the first block line.
    for b in full.blocks().skip(31).take(15) {
        served.push_block(b.clone()).unwrap();
    }
    let mut line = next("the tables");
    // (The statistics table has a `block` row too.)
    while !(line.starts_with("block ") && line.as_bytes().get(6).is_some_and(u8::is_ascii_digit)) {
        line = next("the first new block");
    }
    for index in 31..=60u32 {
        let hash = full.hash(index).unwrap();
        let want = format!("block {index} {hash} txs 1 from {addr}");
        assert_eq!(line, want);
        if index == 45 {
            for b in full.blocks().skip(46) {
                served.push_block(b.clone()).unwrap();
            }
        }
        if index < 60 {
            line = next("the next block");
        }
    }
    assert!(child.0.try_wait().unwrap().is_none(), "still following");
    drop(child);
    smol::block_on(server.shutdown());
}

/// `--witnesses` checks every block's validators' signatures: the blocks of
/// a synthetic chain carry signature contracts of the right shape but no
/// real keys or signatures, so the first block after genesis is refused,
/// its only server dropped, and the sync fails saying why.
#[test]
fn witnesses_refuse_blocks_the_validators_did_not_sign() {
    for protocol in ["n3", "legacy"] {
        let (_server, addr, genesis) = serve(protocol);
        let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
            .args(["sync", "--protocol", protocol, "--network", "privnet"])
            .args(["--connect", &addr, "--genesis", &genesis])
            .args(["--blocks", "--witnesses"])
            .env("RUST_LOG", "neo_peer=warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{protocol}: synced unsigned blocks");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("wrong block") && stderr.contains("why=\"block 1: "),
            "{protocol}: {stderr}"
        );
    }
}
