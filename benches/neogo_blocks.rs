//! Full-block download from real neo-go nodes: `neo-peer sync --blocks`
//! next to a minimal client that only frames, against one node and against
//! four nodes with the same chain.
//!
//! ```text
//! NEO_PEER_TEST_PORTS=33000-33499 cargo bench --bench neogo_blocks
//! ```
//!
//! A neo-go leader (`scripts/neogo start`, a block per millisecond) makes a
//! chain of `BLOCKS` blocks after genesis (30,000 by default) while four
//! neo-go followers (`scripts/neogo follow`) sync it; once all four have it
//! the leader is stopped, so that the nodes measured are idle and hold the
//! same chain. Then, `RUNS` times (3 by default), each of these fetches
//! blocks 1 to `BLOCKS`:
//!
//! - `minimal`: the serving limit of the nodes. One connection per node,
//!   a handshake, then `getblockbyindex` of `CHUNK` blocks (500, neo-go's
//!   most, by default), `DEPTH` requests (4 by default) outstanding per
//!   connection, the ranges dealt out to
//!   the nodes in turn; each frame's header is read and its payload
//!   skipped (a `ping` is answered), the `block` frames are counted and
//!   nothing is decoded or checked. Timed from the first request to the
//!   last block.
//! - `neo-peer`: `neo-peer sync --protocol n3 --blocks --json` with one
//!   `--connect` per node; its `synced_blocks` line gives the time of the
//!   block phase (after the headers), the blocks and their bytes.
//!
//! It prints the median of each, in blocks a second and MB a second (of
//! block frames as received for `minimal`, of blocks for `neo-peer`: neo-go
//! sends these small blocks uncompressed, so the two agree), and the ratios
//! the goals are stated in: `neo-peer` against `minimal` on the same nodes,
//! and four nodes against one.
//!
//! `NEO_PEER_TEST_PORTS=LOW-HIGH` keeps the nodes' ports in a range;
//! `NEO_PEER_BIN` is the `neo-peer` measured (by default the one cargo
//! builds with the bench);
//! `NEOGO=ADDR,ADDR,...` measures running nodes (their first address is the
//! single node) instead of starting any. The nodes stop with the bench.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use neo_peer::protocol::{Identity, N3, Protocol};
use neo_peer::wire::{PingPayload, n3};

/// The network magic of `scripts/neogo`.
const MAGIC: u32 = 56753;
/// The command bytes the minimal client reads.
const VERSION: u8 = 0x00;
const VERACK: u8 = 0x01;
const PING: u8 = 0x18;
const BLOCK: u8 = 0x2c;

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one fetch of the whole range measured.
#[derive(Clone, Copy)]
struct Run {
    blocks: u64,
    bytes: u64,
    seconds: f64,
}

impl Run {
    fn blocks_per_second(&self) -> f64 {
        self.blocks as f64 / self.seconds.max(1e-9)
    }
    fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

/// The run of median rate.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.blocks_per_second().total_cmp(&b.blocks_per_second()));
    runs[runs.len() / 2]
}

/// One framing-only connection.
struct Framer {
    io: TcpStream,
    buf: Vec<u8>,
    start: usize,
    bytes: u64,
}

impl Framer {
    fn send(&mut self, msg: &n3::Message) {
        let mut out = BytesMut::new();
        n3::Codec::new().encode(msg, &mut out).expect("encode");
        self.io.write_all(&out).expect("send");
    }

    /// The next frame: its flags, command and payload.
    fn frame(&mut self) -> (u8, u8, &[u8]) {
        loop {
            let have = &self.buf[self.start..];
            if let Some(len) = n3::Codec::frame_len(have).filter(|&len| have.len() >= len) {
                let at = self.start;
                self.start += len;
                self.bytes += len as u64;
                let body = len - payload_len(&self.buf[at..at + len]);
                return (
                    self.buf[at],
                    self.buf[at + 1],
                    &self.buf[at + body..at + len],
                );
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let filled = self.buf.len();
            self.buf.resize(filled + 256 * 1024, 0);
            let n = self.io.read(&mut self.buf[filled..]).expect("read");
            assert!(n > 0, "the node closed the connection");
            self.buf.truncate(filled + n);
        }
    }

    /// `version` and `verack` both ways; the node's height.
    fn handshake(addr: SocketAddr) -> (Framer, u32) {
        let io = TcpStream::connect(addr).expect("connect");
        io.set_nodelay(true).unwrap();
        io.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut f = Framer {
            io,
            buf: Vec::new(),
            start: 0,
            bytes: 0,
        };
        let mut id = Identity::<N3>::new(MAGIC);
        id.user_agent = "/neogo-blocks-bench/".into();
        f.send(&N3::version(&id));
        let mut height = None;
        loop {
            let (flags, command, payload) = f.frame();
            match command {
                VERSION => {
                    let msg = n3::Message::decode_payload(VERSION, payload.to_vec().into())
                        .expect("version");
                    assert_eq!(flags, 0);
                    let n3::Message::Version(v) = msg else {
                        unreachable!()
                    };
                    height = v.capabilities.iter().find_map(|c| match c {
                        n3::NodeCapability::FullNode { start_height } => Some(*start_height),
                        _ => None,
                    });
                    f.send(&n3::Message::Verack);
                }
                VERACK => break,
                _ => {}
            }
        }
        (f, height.expect("a FullNode capability"))
    }

    /// Asks for `ranges`, at most `depth` at once, reading the blocks as
    /// they come; how many blocks came.
    fn fetch(&mut self, ranges: &[(u32, u32)], depth: usize) -> u64 {
        let mut sent = 0;
        let mut owed: Vec<u32> = Vec::new();
        let mut blocks = 0;
        while sent < ranges.len() || !owed.is_empty() {
            while sent < ranges.len() && owed.len() < depth {
                let (start, count) = ranges[sent];
                self.send(&n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
                    index_start: start,
                    count: count as i16,
                }));
                owed.push(count);
                sent += 1;
            }
            let (flags, command, payload) = self.frame();
            match command {
                BLOCK => {
                    blocks += 1;
                    owed[0] -= 1;
                    if owed[0] == 0 {
                        owed.remove(0);
                    }
                }
                PING if flags == 0 && payload.len() == 12 => {
                    let nonce = u32::from_le_bytes(payload[8..12].try_into().unwrap());
                    self.send(&n3::Message::Pong(PingPayload {
                        last_block_index: 0,
                        timestamp: 0,
                        nonce,
                    }));
                }
                _ => {}
            }
        }
        blocks
    }
}

/// The length of the payload of a whole frame.
fn payload_len(frame: &[u8]) -> usize {
    let prefix = match frame[2] {
        0xFD => 3,
        0xFE => 5,
        0xFF => 9,
        _ => 1,
    };
    frame.len() - 2 - prefix
}

/// The minimal client against `nodes`: blocks 1 to `blocks`.
fn minimal(nodes: &[SocketAddr], blocks: u32, chunk: u32, depth: usize) -> Run {
    let mut conns: Vec<Framer> = nodes
        .iter()
        .map(|&a| {
            let (f, height) = Framer::handshake(a);
            assert!(height >= blocks, "{a} has only {height} blocks");
            f
        })
        .collect();
    let mut ranges = vec![Vec::new(); nodes.len()];
    let mut start = 1;
    let mut k = 0;
    while start <= blocks {
        let count = chunk.min(blocks - start + 1);
        ranges[k % nodes.len()].push((start, count));
        start += count;
        k += 1;
    }
    let t0 = Instant::now();
    let got: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .iter_mut()
            .zip(&ranges)
            .map(|(f, r)| {
                s.spawn(move || {
                    f.bytes = 0;
                    let n = f.fetch(r, depth);
                    (n, f.bytes)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let seconds = t0.elapsed().as_secs_f64();
    let run = Run {
        blocks: got.iter().map(|g| g.0).sum(),
        bytes: got.iter().map(|g| g.1).sum(),
        seconds,
    };
    assert_eq!(run.blocks, u64::from(blocks));
    run
}

/// `neo-peer sync --blocks` against `nodes`: its block phase.
fn ours(nodes: &[SocketAddr], blocks: u32) -> Run {
    let bin = std::env::var("NEO_PEER_BIN").unwrap_or(env!("CARGO_BIN_EXE_neo-peer").into());
    let mut cmd = Command::new(bin);
    cmd.args(["sync", "--protocol", "n3", "--network", "privnet", "--json"])
        .args(["--blocks", "--count", &(blocks + 1).to_string()]);
    for a in nodes {
        cmd.args(["--connect", &a.to_string()]);
    }
    let out = cmd.output().expect("neo-peer sync");
    assert!(
        out.status.success(),
        "neo-peer sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .find(|v| v["event"] == "synced_blocks")
        .expect("a synced_blocks line");
    let run = Run {
        blocks: line["blocks"].as_u64().unwrap(),
        bytes: line["bytes"].as_u64().unwrap(),
        seconds: line["seconds"].as_f64().unwrap(),
    };
    assert_eq!(run.blocks, u64::from(blocks), "{line}");
    run
}

/// A neo-go run by `scripts/neogo`, stopped when dropped (and with the
/// bench's process in any case).
struct Node {
    dir: std::path::PathBuf,
    p2p: SocketAddr,
    rpc: u16,
}

impl Node {
    /// `scripts/neogo VERB DIR P2P RPC ARGS...`, living at most 15 minutes.
    fn run(verb: &str, name: &str, args: &[&str]) -> Node {
        let (p2p, rpc) = (common::free_port(), common::free_port());
        let dir = std::env::temp_dir().join(format!(
            "neo-peer-neogo-blocks-{name}-{}",
            std::process::id()
        ));
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/neogo"))
            .env("NEO_PEER_WATCH_PID", std::process::id().to_string())
            .arg(verb)
            .arg(&dir)
            .args([p2p.to_string(), rpc.to_string()])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("scripts/neogo");
        assert!(status.success(), "scripts/neogo {verb} failed");
        Node {
            dir,
            p2p: SocketAddr::from(([127, 0, 0, 1], p2p)),
            rpc,
        }
    }

    /// Its block count, from its RPC (0 while it does not answer).
    fn block_count(&self) -> u64 {
        let out = Command::new("curl")
            .args([
                "-s",
                "-m",
                "5",
                "-H",
                "Content-Type: application/json",
                "-d",
            ])
            .arg(r#"{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}"#)
            .arg(format!("http://127.0.0.1:{}", self.rpc))
            .output()
            .expect("curl");
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["result"].as_u64())
            .unwrap_or(0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/neogo"))
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let blocks = env_u32("BLOCKS", 30_000);
    let runs = env_u32("RUNS", 3).max(1);
    let depth = env_u32("DEPTH", 4).max(1) as usize;
    // neo-go answers at most 500 blocks a request.
    let chunk = env_u32("CHUNK", 500).clamp(1, 500);
    let mut started = Vec::new();
    let nodes: Vec<SocketAddr> = match std::env::var("NEOGO") {
        Ok(list) => list
            .split(',')
            .map(|a| a.trim().parse().expect("NEOGO: ADDR,ADDR,..."))
            .collect(),
        Err(_) => {
            let t0 = Instant::now();
            let leader = Node::run("start", "leader", &["0", "900"]);
            let seed = leader.p2p.to_string();
            for k in 0..4 {
                started.push(Node::run(
                    "follow",
                    &format!("follower{k}"),
                    &[&seed, "900"],
                ));
            }
            let want = u64::from(blocks) + 1;
            loop {
                let counts: Vec<u64> = started.iter().map(Node::block_count).collect();
                if counts.iter().all(|&c| c >= want) {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(600),
                    "the followers have {counts:?} blocks after 600 s"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            drop(leader);
            eprintln!(
                "chain of {blocks} blocks on 4 idle neo-go nodes in {:.0?}",
                t0.elapsed()
            );
            started.iter().map(|n| n.p2p).collect()
        }
    };
    let one = &nodes[..1];
    let mut rows: Vec<(&str, &[SocketAddr], Vec<Run>)> =
        vec![("minimal", one, Vec::new()), ("neo-peer", one, Vec::new())];
    if nodes.len() > 1 {
        rows.push(("minimal", &nodes, Vec::new()));
        rows.push(("neo-peer", &nodes, Vec::new()));
    }
    for _ in 0..runs {
        for (client, peers, got) in &mut rows {
            got.push(match *client {
                "minimal" => minimal(peers, blocks, chunk, depth),
                _ => ours(peers, blocks),
            });
        }
    }
    println!("{blocks} blocks from neo-go, median of {runs} runs");
    println!("| client | nodes | blocks/s | MB/s | seconds |");
    println!("|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (client, peers, got) in rows {
        let m = median(got);
        println!(
            "| {client} | {} | {:.0} | {:.2} | {:.2} |",
            peers.len(),
            m.blocks_per_second(),
            m.megabytes_per_second(),
            m.seconds
        );
        medians.push(m.blocks_per_second());
    }
    println!(
        "neo-peer / minimal, 1 node: {:.2}x",
        medians[1] / medians[0]
    );
    if medians.len() == 4 {
        println!(
            "neo-peer / minimal, {} nodes: {:.2}x",
            nodes.len(),
            medians[3] / medians[2]
        );
        println!(
            "{} nodes / 1 node: minimal {:.2}x, neo-peer {:.2}x",
            nodes.len(),
            medians[2] / medians[0],
            medians[3] / medians[1]
        );
    }
    drop(started);
}
