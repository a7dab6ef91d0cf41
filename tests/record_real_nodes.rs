//! Records what real nodes send us, as test vectors.
//!
//! `cargo test --all-features --test record_real_nodes -- --ignored` starts a
//! neo-go 0.120 node (`scripts/neogo`) and a NEO•ONE 2.7.4 node
//! (`scripts/neoone`), talks to each through a `Peer`, records every byte they
//! send, cuts it into frames and writes `tests/vectors/recorded-neogo.json` and
//! `tests/vectors/recorded-neoone.json`. `tests/recorded_vectors.rs` checks them.
#![cfg(feature = "cli")]

mod common;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use bytes::BytesMut;
use common::RealNode;
use futures_lite::io::{AsyncRead, AsyncWrite};
use neo_peer::executor::SmolGlobal;
use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
use neo_peer::protocol::{Legacy, N3, Protocol};
use neo_peer::wire::{UInt256, legacy, n3};
use serde_json::{Value, json};

/// A connection that keeps a copy of every byte it reads.
struct Recorder<C> {
    inner: C,
    log: Arc<Mutex<Vec<u8>>>,
}

impl<C: AsyncRead + Unpin> AsyncRead for Recorder<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.log.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        polled
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Recorder<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Cuts the recorded bytes into frames: (command, hex of the whole frame).
fn frames<P: Protocol>(bytes: &[u8], network: u32) -> Vec<(String, String)> {
    let mut codec = P::codec(network);
    let mut buf = BytesMut::from(bytes);
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        let before = buf.clone();
        match P::decode(&mut codec, &mut buf).unwrap() {
            Some(d) => {
                // A few of each kind are enough (a busy chain sends thousands of `inv`s).
                let command = P::command_name(&d.message).to_string();
                if out.iter().filter(|(c, _)| *c == command).count() < MAX_PER_COMMAND {
                    out.push((command, hex::encode(&before[..d.wire_len])));
                }
            }
            None => break,
        }
    }
    out
}

/// Frames kept per command.
const MAX_PER_COMMAND: usize = 4;

fn write(file: &str, node: &str, frames: Vec<(String, String)>) {
    let vectors: Vec<Value> = frames
        .into_iter()
        .map(|(command, hex)| {
            json!({"direction": "node->client", "command": command, "hex": hex, "node": node})
        })
        .collect();
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(path, serde_json::to_string_pretty(&vectors).unwrap() + "\n").unwrap();
}

#[test]
#[ignore = "starts real nodes and rewrites tests/vectors/recorded-*.json"]
fn record_neo_go() {
    let node = RealNode::start("neogo", 50, &[]);
    let addr = node.p2p;
    let log = Arc::new(Mutex::new(Vec::new()));
    smol::block_on(async {
        let inner = smol::net::TcpStream::connect(addr).await.unwrap();
        let conn = Recorder {
            inner,
            log: log.clone(),
        };
        let mut config = LocalConfig::new(n3::PRIVNET_MAGIC);
        config.timeouts.ping_interval = Duration::from_millis(500);
        let peer: Peer<N3> = Peer::new(conn, Direction::Outbound, config, IgnoreAll, SmolGlobal);
        peer.run().await.unwrap();
        peer.get_headers(0, 20).await.unwrap();
        peer.request_blocks_by_index(1, 3).await.unwrap();
        let hashes: Vec<UInt256> = peer
            .get_headers(10, 2)
            .await
            .unwrap()
            .iter()
            .map(|h| h.hash())
            .collect();
        peer.request_data(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes,
        })
        .await
        .unwrap();
        peer.ping().await.unwrap();
        Timer::after(Duration::from_secs(3)).await;
        peer.disconnect();
    });
    node.stop();
    let recorded = frames::<N3>(&log.lock().unwrap(), n3::PRIVNET_MAGIC);
    assert!(recorded.len() > 10);
    write("recorded-neogo.json", "neo-go 0.120.0", recorded);
}

#[test]
#[ignore = "starts real nodes and rewrites tests/vectors/recorded-*.json"]
fn record_neo_one() {
    let node = RealNode::start("neoone", 5, &[]);
    let addr = node.p2p;
    let genesis: UInt256 = node
        .call("getblockhash", json!([0]))
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    smol::block_on(async {
        let inner = smol::net::TcpStream::connect(addr).await.unwrap();
        let conn = Recorder {
            inner,
            log: log.clone(),
        };
        let config = LocalConfig::new(legacy::PRIVNET_MAGIC);
        let peer: Peer<Legacy> =
            Peer::new(conn, Direction::Outbound, config, IgnoreAll, SmolGlobal);
        peer.run().await.unwrap();
        let headers = peer.get_headers(genesis, UInt256::ZERO).await.unwrap();
        let hashes = headers.iter().take(3).map(|h| h.hash()).collect();
        peer.request_data(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes,
        })
        .await
        .unwrap();
        peer.request_blocks(genesis).await.unwrap();
        peer.request_addr().await.unwrap();
        peer.send(legacy::Message::Mempool).await.unwrap();
        Timer::after(Duration::from_secs(3)).await;
        peer.disconnect();
    });
    node.stop();
    let recorded = frames::<Legacy>(&log.lock().unwrap(), legacy::PRIVNET_MAGIC);
    assert!(recorded.len() > 3);
    write("recorded-neoone.json", "NEO•ONE 2.7.4", recorded);
}
