//! Against a real neo-go 0.120 N3 node on loopback (started by `scripts/neogo`,
//! which fetches neo-go from PyPI once).
#![cfg(feature = "cli")]

mod common;

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use async_io::Timer;
use base64::Engine;
use common::{Kill, RealNode};
use neo_peer::executor::SmolGlobal;
use neo_peer::peer::{Direction, Handler, IgnoreAll, LocalConfig, N3Handler, Peer};
use neo_peer::protocol::N3;
use neo_peer::wire::{Encode, UInt256, n3};
use serde_json::{Value, json};

/// Height the node reaches before the tests start.
const HEIGHT: u32 = 10_000;

/// One node for every test of this file (it ends with the test process).
fn node() -> &'static RealNode {
    static NODE: OnceLock<RealNode> = OnceLock::new();
    NODE.get_or_init(|| RealNode::start("neogo", HEIGHT, &[]))
}

/// One JSON-RPC call (or a batch) to the node.
fn rpc(body: &Value) -> Value {
    node().rpc(body)
}

/// `getblockheader`/`getblockhash` hashes of heights `from..=to`, in order.
fn rpc_hashes(from: u32, to: u32) -> Vec<String> {
    let mut hashes = Vec::new();
    let heights: Vec<u32> = (from..=to).collect();
    for chunk in heights.chunks(100) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"jsonrpc": "2.0", "id": i, "method": "getblockhash", "params": [i]}))
            .collect();
        let mut answers = rpc(&Value::Array(batch)).as_array().unwrap().clone();
        answers.sort_by_key(|a| a["id"].as_u64());
        hashes.extend(
            answers
                .iter()
                .map(|a| a["result"].as_str().unwrap().to_string()),
        );
    }
    hashes
}

fn config(ping: Duration) -> LocalConfig<N3> {
    let mut c = LocalConfig::new(n3::PRIVNET_MAGIC);
    c.timeouts.ping_interval = ping;
    c.timeouts.stall = Duration::from_secs(10);
    c
}

async fn connect<H: Handler<N3>>(handler: H, ping: Duration) -> Peer<N3> {
    let conn = smol::net::TcpStream::connect(node().p2p).await.unwrap();
    let peer: Peer<N3> = Peer::new(conn, Direction::Outbound, config(ping), handler, SmolGlobal);
    peer.run().await.expect("neo-go accepts our handshake");
    peer
}

#[test]
fn headers_from_genesis_match_the_rpc() {
    smol::block_on(async {
        let peer = connect(IgnoreAll, Duration::from_secs(30)).await;
        let info = peer.info();
        assert!(info.user_agent.unwrap().contains("NEO-GO"));
        let top = peer.height();
        assert!(top >= HEIGHT, "node at {top}");
        let mut headers: Vec<n3::Header> = Vec::new();
        while (headers.len() as u32) <= top {
            let got = peer.get_headers(headers.len() as u32, -1).await.unwrap();
            assert!(!got.is_empty());
            headers.extend(got);
        }
        headers.truncate(top as usize + 1);
        for (i, pair) in headers.windows(2).enumerate() {
            assert_eq!(pair[1].index as usize, i + 1);
            assert_eq!(pair[1].prev_hash, pair[0].hash(), "link at {}", i + 1);
        }
        let ours: Vec<String> = headers.iter().map(|h| h.hash().to_string()).collect();
        assert_eq!(ours, rpc_hashes(0, top));
        assert_eq!(peer.pending_requests(), 0);
    });
}

/// Forwards blocks to the test.
struct Blocks(async_channel::Sender<n3::Block>);

impl N3Handler for Blocks {
    async fn on_block(&self, _peer: &Peer<N3>, block: n3::Block) {
        let _ = self.0.send(block).await;
    }
}

#[test]
fn blocks_reencode_to_the_bytes_the_rpc_returns() {
    smol::block_on(async {
        let (tx, rx) = async_channel::unbounded();
        let peer = connect(Blocks(tx), Duration::from_secs(30)).await;
        peer.request_blocks_by_index(1, 200).await.unwrap();
        let mut blocks = Vec::new();
        for _ in 0..200 {
            blocks.push(rx.recv().await.unwrap());
        }
        // and by hash, through getdata
        let wanted: Vec<UInt256> = rpc_hashes(300, 309)
            .iter()
            .map(|h| h.parse().unwrap())
            .collect();
        peer.request_data(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes: wanted.clone(),
        })
        .await
        .unwrap();
        for want in &wanted {
            let b = rx.recv().await.unwrap();
            assert_eq!(&b.hash(), want);
            blocks.push(b);
        }
        // neo-go answers batches of at most 100 calls
        let mut answers = Vec::new();
        for chunk in blocks.chunks(100) {
            let batch: Vec<Value> = chunk
                .iter()
                .map(|b| {
                    let i = b.header.index;
                    json!({"jsonrpc": "2.0", "id": i, "method": "getblock", "params": [i, 0]})
                })
                .collect();
            let mut got = rpc(&Value::Array(batch)).as_array().unwrap().clone();
            got.sort_by_key(|a| a["id"].as_u64());
            answers.extend(got);
        }
        blocks.sort_by_key(|b| b.header.index);
        for (b, a) in blocks.iter().zip(&answers) {
            assert_eq!(a["id"], b.header.index);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a["result"].as_str().unwrap())
                .unwrap();
            assert_eq!(
                b.to_bytes().as_ref(),
                raw.as_slice(),
                "block {}",
                b.header.index
            );
            assert!(b.check().is_ok());
        }
        assert_eq!(peer.stats().get("block").messages_in, 210);
    });
}

/// Answers neo-go's `getaddr` (only then may an `addr` be sent to it) and
/// counts what reaches the handler.
struct Answers(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl N3Handler for Answers {
    async fn on_get_addr(&self, peer: &Peer<N3>, _: ()) {
        let addr = n3::Message::Addr(n3::AddrPayload {
            addresses: vec![n3::NetworkAddressWithTime {
                timestamp: 0,
                address: std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
                capabilities: vec![n3::NodeCapability::TcpServer { port: 1 }],
            }],
        });
        let _ = peer.send(addr).await;
    }

    async fn on_inv(&self, _peer: &Peer<N3>, _inv: n3::InvPayload) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn neo_go_keeps_us_for_thirty_seconds() {
    smol::block_on(async {
        let invs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peer = connect(Answers(invs.clone()), Duration::from_secs(1)).await;
        Timer::after(Duration::from_secs(30)).await;
        // Everything neo-go sent decoded (a bad frame would have disconnected),
        // and nothing we sent made it drop us.
        assert!(!peer.is_closed(), "{:?}", peer.info().disconnect_reason);
        let stats = peer.stats();
        assert!(stats.get("inv").messages_in > 0, "{stats}");
        assert!(stats.get("getaddr").messages_in >= 1, "{stats}");
        assert_eq!(stats.get("addr").messages_out, stats.get("getaddr").handled);
        assert_eq!(
            invs.load(std::sync::atomic::Ordering::SeqCst) as u64,
            stats.get("inv").handled
        );
    });
}

#[test]
fn our_pings_are_answered_and_heights_follow() {
    smol::block_on(async {
        // Nothing else to write: we ping after each second of our own silence.
        let peer = connect(IgnoreAll, Duration::from_secs(1)).await;
        Timer::after(Duration::from_secs(8)).await;
        assert!(!peer.is_closed(), "{:?}", peer.info().disconnect_reason);
        let stats = peer.stats();
        assert!(stats.get("pong").messages_in >= 5, "{stats}");
        assert!(peer.info().rtt.is_some());
        let before = peer.height();
        Timer::after(Duration::from_millis(1500)).await;
        assert!(peer.height() > before, "height follows pongs");
    });
}

#[test]
fn a_neo_go_follower_syncs_from_our_mirror() {
    use std::io::BufRead;
    let leader = node();
    // `neo-peer serve --mirror` copies the leader's chain, then serves it
    // while it follows the leader.
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["serve", "--protocol", "n3", "--network", "privnet"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--mirror",
            &leader.p2p.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Kill(child);
    let rest = line.strip_prefix("listening on ").expect(&line);
    let (addr, rest) = rest.split_once(", genesis ").expect(&line);
    let height: u64 = rest
        .split_once(", height ")
        .unwrap()
        .1
        .trim()
        .parse()
        .unwrap();
    assert!(height >= u64::from(HEIGHT));

    // A fresh neo-go whose only seed is our server.
    let follower = RealNode::follow(addr);
    let block_count = || follower.call("getblockcount", json!([])).as_u64();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    // The mirror keeps growing: the follower goes past the height it listened at.
    while block_count().is_none_or(|n| n < height + 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "follower at {:?} of {}",
            block_count(),
            height + 1
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for i in [0, height / 2, height] {
        let ask = json!({"jsonrpc": "2.0", "id": 1, "method": "getblockhash", "params": [i]});
        assert_eq!(
            follower.rpc(&ask)["result"],
            rpc(&ask)["result"],
            "block {i}"
        );
    }
    follower.stop();
}

#[test]
fn neo_peer_sync_against_neo_go() {
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["sync", "--protocol", "n3", "--network", "privnet"])
        .args(["--connect", &node().p2p.to_string()])
        .args(["--count", &(HEIGHT + 1).to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let want =
        rpc(&json!({"jsonrpc": "2.0", "id": 1, "method": "getblockheader", "params": [HEIGHT, 1]}));
    let hash = want["result"]["hash"].as_str().unwrap();
    let first = text.lines().next().unwrap();
    let want = format!("synced {} headers, tip {HEIGHT} {hash} in ", HEIGHT + 1);
    assert!(first.starts_with(&want), "{first}");
}

#[test]
fn neo_go_pings_on_a_quiet_chain_and_we_answer() {
    // neo-go pings only after a ping interval (1 s here) without a new block:
    // a node of its own with 10-second blocks.
    let quiet = RealNode::start("neogo", 0, &[("NEO_PEER_BLOCK_MS", "10000")]);
    smol::block_on(async {
        let conn = smol::net::TcpStream::connect(quiet.p2p).await.unwrap();
        // We ping rarely, so the pings seen are neo-go's own.
        let peer: Peer<N3> = Peer::new(
            conn,
            Direction::Outbound,
            config(Duration::from_secs(60)),
            IgnoreAll,
            SmolGlobal,
        );
        peer.run().await.unwrap();
        Timer::after(Duration::from_secs(5)).await;
        assert!(!peer.is_closed(), "{:?}", peer.info().disconnect_reason);
        let stats = peer.stats();
        assert!(stats.get("ping").messages_in >= 2, "{stats}");
        assert_eq!(
            stats.get("pong").messages_out,
            stats.get("ping").messages_in
        );
    });
    quiet.stop();
}

/// `neo-peer crawl` records the node in its address book, and `neo-peer
/// peers` shows what it said of itself.
#[test]
fn neo_peer_crawl_records_neo_go() {
    let dir = std::env::temp_dir().join(format!("neo-peer-crawl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seeds = dir.join("seeds.txt");
    let db = dir.join("peers.db");
    std::fs::write(&seeds, format!("# the test node\n{}\n", node().p2p)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["crawl", "--protocol", "n3", "--network", "privnet"])
        .arg("--seeds")
        .arg(&seeds)
        .arg("--db")
        .arg(&db)
        .args(["--duration", "3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.contains("reachable 1"), "{summary}\n{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["peers", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rec = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == node().p2p.to_string())
        .unwrap_or_else(|| panic!("{list}"));
    let agent = rec["user_agent"].as_str().unwrap();
    assert!(agent.contains("NEO-GO"), "{agent}");
    assert!(
        rec["start_height"].as_u64().unwrap() >= u64::from(HEIGHT),
        "{rec}"
    );
    assert!(
        rec["last_success_ms"].is_u64() && rec["failures"] == 0,
        "{rec}"
    );
    // Whatever neo-go answers our getaddr with (an empty addr when it knows
    // nobody) is no reason to ban it.
    assert!(rec["banned_until_ms"].is_null(), "{rec}");
    assert!(summary.contains("banned 0"), "{summary}");
    assert!(
        rec["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("FullNode")),
        "{rec}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `examples/<name>.rs` with `args` (built as `cargo test --all-features`
/// builds the examples, so normally already there) and returns what it printed.
fn run_example(name: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--all-features", "--example", name, "--"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "example {name}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The line of `out` that starts with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{out}"))
}

/// `getblockhash` of `index`.
fn rpc_hash(index: u32) -> String {
    rpc_hashes(index, index).remove(0)
}

#[test]
fn the_examples_run_against_neo_go() {
    let addr = node().p2p.to_string();
    let magic = n3::PRIVNET_MAGIC.to_string();

    let out = run_example("smol_headers", &[&addr, &magic]);
    assert!(line(&out, "connected to ").contains("NEO-GO"), "{out}");
    assert_eq!(
        line(&out, "headers "),
        format!("headers 0..=1999 linked, last {}", rpc_hash(1999))
    );

    // The handler asks for the next headers until the node's height.
    let out = run_example("async_std_handler", &[&addr, &magic]);
    assert!(
        out.contains("on_headers: 0..=1999\non_headers: 2000..=3999\n"),
        "{out}"
    );
    let done = line(&out, "headers 0..=");
    let (last, hash) = done
        .strip_prefix("headers 0..=")
        .and_then(|rest| rest.split_once(" reached the handler, last "))
        .unwrap_or_else(|| panic!("{done}"));
    let last: u32 = last.parse().unwrap();
    assert!(last >= HEIGHT, "{done}");
    assert_eq!(hash, rpc_hash(last));

    let out = run_example("tokio_blocks", &[&addr, &magic]);
    assert_eq!(line(&out, "100 headers"), "100 headers");
    let blocks = line(&out, "blocks ");
    assert!(blocks.starts_with("blocks 0..=9 checked ("), "{blocks}");
    assert!(
        blocks.ends_with(&format!("last {}", rpc_hash(9))),
        "{blocks}"
    );

    // The first run fills the book from the seeds file, the second dials from the book.
    let dir = std::env::temp_dir().join(format!("neo-peer-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seeds = dir.join("seeds.txt");
    std::fs::write(&seeds, format!("# the test node\n{addr}\n")).unwrap();
    let book = dir.join("peers.db");
    let args = [book.to_str().unwrap(), seeds.to_str().unwrap(), &magic];
    let first = run_example("manager", &args);
    assert!(
        first.starts_with("book empty: 1 addresses from "),
        "{first}"
    );
    assert_eq!(
        line(&first, "headers "),
        format!("headers 0..=1999 fetched, last {}", rpc_hash(1999))
    );
    assert!(
        line(&first, "  ").contains(&format!("{addr} /NEO-GO:")),
        "{first}"
    );
    let second = run_example("manager", &args);
    // The node may have told of other peers of this test process (a mirror
    // of it listens, and the node gossips it): at least the node is known.
    let known = second
        .strip_prefix("book: ")
        .and_then(|rest| rest.split_once(" addresses, seeds not read"))
        .and_then(|(n, _)| n.parse::<usize>().ok());
    assert!(matches!(known, Some(n) if n >= 1), "{second}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `neo-peer decode` takes the base64 the RPC returns for a raw block as it
/// is, and shows what the RPC's verbose form shows.
#[test]
fn decode_reads_the_rpcs_base64() {
    use std::io::Write;
    let raw = node().call("getblock", json!([7, 0]));
    let verbose = node().call("getblock", json!([7, 1]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["decode", "--kind", "block"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", raw.as_str().unwrap()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "hash",
        "index",
        "size",
        "merkleroot",
        "previousblockhash",
        "time",
        "nonce",
    ] {
        assert_eq!(ours[key], verbose[key], "{key}");
    }
}
