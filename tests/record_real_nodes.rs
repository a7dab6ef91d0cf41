//! Records what real nodes send us, as test vectors.
//!
//! `cargo test --all-features --test record_real_nodes -- --ignored` starts a
//! neo-go 0.120 node (`scripts/neogo`) and a NEO•ONE 2.7.4 node
//! (`scripts/neoone`), talks to each through a `Peer`, records every byte they
//! send, cuts it into frames and writes `tests/vectors/recorded-neogo.json` and
//! `tests/vectors/recorded-neoone.json`. `tests/recorded_vectors.rs` checks them.
#![cfg(feature = "cli")]

use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use bytes::BytesMut;
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(script: &str, height: u32) -> (SocketAddr, u16, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("neo-peer-record-{script}-{}", std::process::id()));
    let (p2p, rpc) = (free_port(), free_port());
    let out = Command::new(format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR")))
        .env("NEO_PEER_WATCH_PID", std::process::id().to_string())
        .arg("start")
        .arg(&dir)
        .args([
            p2p.to_string(),
            rpc.to_string(),
            height.to_string(),
            "120".into(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (SocketAddr::from(([127, 0, 0, 1], p2p)), rpc, dir)
}

/// The genesis hash, from the node's RPC.
fn genesis(url: &str) -> UInt256 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-H",
            "Content-Type: application/json",
            "-d",
        ])
        .arg(r#"{"jsonrpc":"2.0","id":1,"method":"getblockhash","params":[0]}"#)
        .arg(url)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["result"].as_str().unwrap().parse().unwrap()
}

fn stop(script: &str, dir: &std::path::Path) {
    let _ = Command::new(format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg("stop")
        .arg(dir)
        .status();
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
    let (addr, _rpc, dir) = start("neogo", 50);
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
    stop("neogo", &dir);
    let recorded = frames::<N3>(&log.lock().unwrap(), n3::PRIVNET_MAGIC);
    assert!(recorded.len() > 10);
    write("recorded-neogo.json", "neo-go 0.120.0", recorded);
}

#[test]
#[ignore = "starts real nodes and rewrites tests/vectors/recorded-*.json"]
fn record_neo_one() {
    let (addr, rpc, dir) = start("neoone", 5);
    let genesis = genesis(&format!("http://127.0.0.1:{rpc}/rpc"));
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
    stop("neoone", &dir);
    let recorded = frames::<Legacy>(&log.lock().unwrap(), legacy::PRIVNET_MAGIC);
    assert!(recorded.len() > 3);
    write("recorded-neoone.json", "NEO•ONE 2.7.4", recorded);
}
