//! Against a real NEO•ONE 2.7.4 NEO Legacy node on loopback (started by
//! `scripts/neoone`, which fetches NEO•ONE from npm once).
#![cfg(feature = "cli")]

mod common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use async_io::Timer;
use common::RealNode;
use neo_peer::executor::SmolGlobal;
use neo_peer::peer::{Direction, Handler, IgnoreAll, LegacyHandler, LocalConfig, Peer};
use neo_peer::protocol::Legacy;
use neo_peer::wire::{Encode, UInt256, legacy};
use serde_json::{Value, json};

/// Height the node reaches before the tests start (one block per second).
const HEIGHT: u32 = 8;

/// One node for every test of this file (it ends with the test process).
fn node() -> &'static RealNode {
    static NODE: OnceLock<RealNode> = OnceLock::new();
    NODE.get_or_init(|| RealNode::start("neoone", HEIGHT, &[]))
}

fn rpc(method: &str, params: Value) -> Value {
    node().call(method, params)
}

fn block_hash(index: u32) -> UInt256 {
    rpc("getblockhash", json!([index]))
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn connect<H: Handler<Legacy>>(handler: H) -> Peer<Legacy> {
    let conn = smol::net::TcpStream::connect(node().p2p).await.unwrap();
    let mut config = LocalConfig::new(legacy::PRIVNET_MAGIC);
    config.timeouts.stall = Duration::from_secs(10);
    let peer: Peer<Legacy> = Peer::new(conn, Direction::Outbound, config, handler, SmolGlobal);
    peer.run().await.expect("NEO•ONE accepts our handshake");
    peer
}

#[test]
fn headers_from_genesis_match_the_rpc() {
    smol::block_on(async {
        let peer = connect(IgnoreAll).await;
        assert!(peer.info().user_agent.unwrap().contains("neo-one"));
        let top = peer.height();
        assert!(top >= HEIGHT);
        let (mut tip, mut tip_hash) = (0u32, block_hash(0));
        // NEO•ONE never sends its own tip: stop at an empty answer.
        loop {
            let headers = peer.get_headers(tip_hash, UInt256::ZERO).await.unwrap();
            if headers.is_empty() {
                break;
            }
            for h in headers {
                assert_eq!(h.base.index, tip + 1);
                assert_eq!(h.base.prev_hash, tip_hash);
                tip = h.base.index;
                tip_hash = h.hash();
                assert_eq!(tip_hash, block_hash(tip), "header {tip}");
            }
        }
        assert!(tip + 1 >= top, "headers up to {tip} of {top}");
        // NEO•ONE ignores pings; the peer stays.
        peer.ping().await.unwrap();
        Timer::after(Duration::from_millis(500)).await;
        assert!(!peer.is_closed(), "{:?}", peer.info().disconnect_reason);
    });
}

/// Forwards blocks to the test.
struct Blocks(async_channel::Sender<Box<legacy::Block>>);

impl LegacyHandler for Blocks {
    async fn on_block(&self, _peer: &Peer<Legacy>, block: Box<legacy::Block>) {
        let _ = self.0.send(block).await;
    }
}

#[test]
fn blocks_by_getdata_match_the_rpc_bytes() {
    smol::block_on(async {
        let (tx, rx) = async_channel::unbounded();
        let peer = connect(Blocks(tx)).await;
        let hashes: Vec<UInt256> = (0..=HEIGHT).map(block_hash).collect();
        peer.request_data(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes: hashes.clone(),
        })
        .await
        .unwrap();
        let mut got = Vec::new();
        for _ in &hashes {
            got.push(rx.recv().await.unwrap());
        }
        // NEO•ONE looks blocks up in parallel: the order is not guaranteed.
        got.sort_by_key(|b| b.base.index);
        for (b, want) in got.iter().zip(&hashes) {
            assert_eq!(&b.hash(), want);
            let raw = rpc("getblock", json!([b.base.index, 0]));
            assert_eq!(hex::encode(b.to_bytes()), raw.as_str().unwrap());
            assert!(b.check().is_ok(), "block {}", b.base.index);
        }
    });
}

#[test]
fn neo_peer_sync_against_neo_one() {
    let genesis = block_hash(0).to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["sync", "--protocol", "legacy", "--network", "privnet"])
        .args(["--connect", &node().p2p.to_string(), "--genesis", &genesis])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    // synced N headers, tip INDEX 0x<hash> in T (R headers/s)
    let tip: u32 = first.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(tip >= HEIGHT - 1, "{first}");
    assert!(
        first.contains(&format!(" {} in ", block_hash(tip))),
        "{first}"
    );
    // The per-peer table stays aligned around NEO•ONE's long user agent:
    // the row's right-aligned share ends where its heading does.
    let lines: Vec<&str> = text.lines().collect();
    let (heading, row) = (lines[1], lines[2]);
    assert!(row.contains("neo-one-js"), "{text}");
    let share_end = heading.find("share").unwrap() + "share".len();
    assert!(row[..share_end].ends_with('%'), "{heading}\n{row}");
}
