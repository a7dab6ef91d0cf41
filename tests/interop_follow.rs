//! Following real nodes at their tip: neo-go (N3, a block every 100 ms) for
//! a minute and NEO•ONE (Legacy, a block a second) for half a minute. Every
//! block from genesis to the node's tip comes once, in order, with the hash
//! the node's RPC gives, and the node is never dropped.
#![cfg(feature = "cli")]

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RealNode;
use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::download::{BlockSource, Fetched, ScheduleConfig, follow};
use neo_peer::manager::{ManagerConfig, ManagerEvent, PeerId, PeerManager};
use neo_peer::peer::{IgnoreAll, LocalConfig};
use neo_peer::protocol::{Legacy, N3};
use neo_peer::wire::UInt256;
use serde_json::{Value, json};

/// How often the follower pings for heights besides: rarely, so that the
/// blocks come through the nodes' announcements.
const CHECK: Duration = Duration::from_secs(2);

/// The node's height by its RPC.
fn rpc_height(node: &RealNode) -> u32 {
    let count = node.call("getblockcount", json!([])).as_u64().unwrap();
    u32::try_from(count - 1).unwrap()
}

/// The RPC hashes of heights `0..=to`.
fn rpc_hashes(node: &RealNode, to: u32) -> Vec<UInt256> {
    let heights: Vec<u32> = (0..=to).collect();
    let mut hashes = Vec::new();
    for chunk in heights.chunks(100) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"jsonrpc": "2.0", "id": i, "method": "getblockhash", "params": [i]}))
            .collect();
        let answers = node.rpc(&Value::Array(batch));
        let mut answers = match answers {
            Value::Array(a) => a,
            // NEO•ONE answers batches one call at a time.
            _ => chunk
                .iter()
                .map(|&i| json!({"id": i, "result": node.call("getblockhash", json!([i]))}))
                .collect(),
        };
        answers.sort_by_key(|a| a["id"].as_u64());
        hashes.extend(
            answers
                .iter()
                .map(|a| a["result"].as_str().unwrap().parse::<UInt256>().unwrap()),
        );
    }
    hashes
}

/// Follows `node` from genesis for `duration`, then until the height its RPC
/// gave at that moment; checks every block against the RPC.
fn follow_node<P: BlockSource>(node: &RealNode, magic: u32, duration: Duration) {
    smol::block_on(async {
        let genesis = rpc_hashes(node, 0)[0];
        let mut local = LocalConfig::<P>::new(magic);
        local.timeouts.stall = Duration::from_secs(20);
        let mut config = ManagerConfig::new(local);
        config.max_per_ip = 8;
        let book = AddressBook::in_memory(BookConfig::new(P::NAME, magic));
        let manager = PeerManager::<P>::new(config, book, IgnoreAll, SmolGlobal).unwrap();
        let events = manager.events();
        manager.connect(node.p2p).await.unwrap();
        let started = Instant::now();
        let mut got: Vec<(u32, UInt256, PeerId)> = Vec::new();
        // Once `duration` has passed: the node's height then, to reach.
        let mut until: Option<u32> = None;
        // The blocks behind the node's tip when each came, sampled.
        let mut lags: Vec<u32> = Vec::new();
        let outcome = follow(
            &manager,
            ScheduleConfig::default(),
            1,
            Some(genesis),
            |_| None,
            CHECK,
            |block, from| {
                let index = block.index();
                got.push((index, block.hash(), from));
                if index % 20 == 0 && started.elapsed() > Duration::from_secs(5) {
                    lags.push(rpc_height(node).saturating_sub(index));
                }
                if until.is_none() && started.elapsed() >= duration {
                    until = Some(rpc_height(node));
                }
                match until {
                    Some(top) if index >= top => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                }
            },
        );
        let limit = duration + Duration::from_secs(30);
        let outcome =
            futures_lite::future::or(async { Some(follow_result(outcome.await)) }, async {
                async_io::Timer::after(limit).await;
                None
            })
            .await
            .unwrap_or_else(|| panic!("not at the node's tip {limit:?} after the start"));
        let top = until.unwrap();
        let indices: Vec<u32> = got.iter().map(|g| g.0).collect();
        assert_eq!(
            indices,
            (1..=top).collect::<Vec<_>>(),
            "every block once, in order, no gap"
        );
        let hashes = rpc_hashes(node, top);
        for (index, hash, _) in &got {
            assert_eq!(*hash, hashes[*index as usize], "block {index}");
        }
        assert_eq!(outcome.faults, 0);
        assert_eq!(manager.len(), 1, "the node was never dropped");
        assert!(manager.departed().is_empty(), "{:?}", manager.departed());
        while let Ok(event) = events.try_recv() {
            assert!(
                !matches!(
                    event,
                    ManagerEvent::Disconnected { .. } | ManagerEvent::WrongBlock { .. }
                ),
                "{event:?}"
            );
        }
        lags.sort_unstable();
        eprintln!(
            "{}: {} blocks in {:.1?}; blocks behind the tip when one came: median {}, max {}",
            P::NAME,
            got.len(),
            started.elapsed(),
            lags.get(lags.len() / 2).copied().unwrap_or(0),
            lags.last().copied().unwrap_or(0),
        );
        manager.shutdown().await;
    });
}

fn follow_result<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("following failed: {e:?}"))
}

#[test]
fn following_neogo_for_a_minute_fetches_every_block_once() {
    let node = RealNode::start("neogo", 5, &[("NEO_PEER_BLOCK_MS", "100")]);
    let node = Arc::new(node);
    follow_node::<N3>(
        &node,
        neo_peer::wire::n3::PRIVNET_MAGIC,
        Duration::from_secs(60),
    );
    node.stop();
}

#[test]
fn following_neoone_for_half_a_minute_fetches_every_block_once() {
    let node = RealNode::start("neoone", 2, &[]);
    follow_node::<Legacy>(
        &node,
        neo_peer::wire::legacy::PRIVNET_MAGIC,
        Duration::from_secs(30),
    );
    node.stop();
}

/// `neo-peer sync --blocks --follow --witnesses --json` against a real node
/// for `seconds`, then SIGINT: every block from 1 once, in order, with the
/// RPC's hashes (each signed by the validators the block before names),
/// and the final `synced_blocks` line naming the last.
fn cli_follow(node: &RealNode, protocol: &str, seconds: u64) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let genesis = rpc_hashes(node, 0)[0].to_string();
    let addr = node.p2p.to_string();
    let mut child = common::Kill(
        Command::new(env!("CARGO_BIN_EXE_neo-peer"))
            .args(["sync", "--protocol", protocol, "--network", "privnet"])
            .args(["--connect", &addr, "--genesis", &genesis])
            // Every block's validators' signatures checked too.
            .args(["--blocks", "--follow", "--witnesses", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let started = Instant::now();
    let mut lines = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines.push(line);
    }
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    lines.extend(rest.lines().map(str::to_string));
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let named =
        |name: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == name).collect() };
    let synced = named("synced_blocks");
    assert_eq!(synced.len(), 2, "after the sync, and at the end");
    let first = synced[0]["tip_index"].as_u64().unwrap() as u32;
    let blocks = named("block");
    let indices: Vec<u32> = blocks
        .iter()
        .map(|b| b["index"].as_u64().unwrap() as u32)
        .collect();
    let last = indices.last().copied().unwrap_or(first);
    assert_eq!(
        indices,
        (first + 1..=last).collect::<Vec<_>>(),
        "each new block once, in order"
    );
    assert!(!indices.is_empty(), "new blocks were followed");
    let hashes = rpc_hashes(node, last);
    for b in &blocks {
        let index = b["index"].as_u64().unwrap() as usize;
        assert_eq!(b["hash"], hashes[index].to_string(), "block {index}");
    }
    let end = synced[1];
    assert_eq!(end["tip_index"], last);
    assert_eq!(end["blocks"], u64::from(last));
    assert_eq!(end["tip_hash"], hashes[last as usize].to_string());
    eprintln!(
        "neo-peer sync --protocol {protocol} --blocks --follow: {} blocks synced, {} followed in {seconds} s",
        first,
        indices.len()
    );
}

#[test]
fn cli_follows_neogo_until_sigint() {
    let node = RealNode::start("neogo", 50, &[("NEO_PEER_BLOCK_MS", "100")]);
    cli_follow(&node, "n3", 10);
    node.stop();
}

#[test]
fn cli_follows_neoone_until_sigint() {
    let node = RealNode::start("neoone", 2, &[]);
    cli_follow(&node, "legacy", 8);
    node.stop();
}
