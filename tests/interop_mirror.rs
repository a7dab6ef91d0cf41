//! `neo-peer serve --mirror` between real nodes: a follower whose only peer
//! is our mirror of a leader keeps up with the leader, the chain reaching it
//! through us while both grow.
//!
//! - N3: a neo-go leader making a block every 100 ms, a neo-go follower
//!   (`scripts/neogo`) whose only seed is our mirror of it: within 2 blocks
//!   of the leader for 60 s.
//! - Legacy: a NEO•ONE validator (a block a second), a NEO•ONE follower
//!   (`scripts/neoone follow`) whose only peer is our mirror of it: it
//!   reaches our height, with the leader's hashes.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Kill, RealNode, node_port};
use serde_json::{Value, json};

/// How long the follower is watched once it has caught up.
const WATCH: Duration = Duration::from_secs(60);
/// How long the Legacy follower is watched (a block a second).
const WATCH_LEGACY: Duration = Duration::from_secs(30);
/// How far behind the leader the follower may be at any moment.
const MAX_LAG: u64 = 2;

/// Held by each test for its whole run: each runs three processes that
/// keep pace with a block every 100 ms, which a loaded machine can only do
/// for one test at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `neo-peer serve --mirror leader` with `args`; the server and the address
/// it listens on.
fn mirror(leader: &RealNode, args: &[&str]) -> (Kill, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["serve", "--listen", "127.0.0.1:0", "--mirror"])
        .arg(leader.p2p.to_string())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Nothing else comes on standard output; it is drained all the same.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let server = Kill(child);
    let rest = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"));
    let (addr, _) = rest.split_once(", genesis ").expect(&line);
    (server, addr.to_string())
}

/// The block counts of `a` and `b`, asked at the same moment.
fn counts(a: &RealNode, b: &RealNode) -> (Option<u64>, Option<u64>) {
    let count = |n: &RealNode| n.call("getblockcount", json!([])).as_u64();
    std::thread::scope(|s| {
        let first = s.spawn(|| count(a));
        let second = count(b);
        (first.join().unwrap(), second)
    })
}

fn hash(node: &RealNode, index: u64) -> Value {
    node.call("getblockhash", json!([index]))
}

/// The ports of the peers `node` is connected to (its RPC `getpeers`).
fn peer_ports(node: &RealNode) -> Vec<u64> {
    let peers = node.call("getpeers", json!([]));
    peers["connected"]
        .as_array()
        .unwrap_or_else(|| panic!("{peers}"))
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect()
}

/// The port of `addr` (`HOST:PORT`).
fn port(addr: &str) -> u64 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn a_neo_go_follower_of_our_mirror_keeps_up_with_the_leader() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let leader = RealNode::start_on(
        "neogo",
        (node_port(), node_port()),
        20,
        &[("NEO_PEER_BLOCK_MS", "100")],
    );
    let (_server, addr) = mirror(&leader, &["--protocol", "n3"]);
    let follower = RealNode::follow_on("neogo", &addr, (node_port(), node_port()));

    // First it syncs what the leader has.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (lead, follow) = counts(&leader, &follower);
        if let (Some(lead), Some(follow)) = (lead, follow) {
            if follow + MAX_LAG >= lead {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "follower at {follow:?} of {lead:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Then it stays with the leader, the blocks reaching it through us.
    let started = Instant::now();
    let (first, _) = counts(&leader, &follower);
    // How many samples saw each lag (0, 1, 2 blocks behind).
    let mut lags = [0u32; MAX_LAG as usize + 1];
    while started.elapsed() < WATCH {
        let (lead, follow) = counts(&leader, &follower);
        let (lead, follow) = (lead.expect("leader count"), follow.expect("follower count"));
        let lag = lead.saturating_sub(follow);
        assert!(
            lag <= MAX_LAG,
            "after {:?} the follower is at {follow}, the leader at {lead}",
            started.elapsed()
        );
        lags[lag as usize] += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let (last, follow) = counts(&leader, &follower);
    let grew = last.unwrap() - first.unwrap();
    println!(
        "leader grew {grew} blocks in {WATCH:?}; samples with the follower 0, 1, 2 blocks behind: {lags:?}"
    );
    // A block every 100 ms: hundreds of them went through us.
    assert!(grew >= 200, "the leader made only {grew} blocks");
    let top = follow.unwrap() - 1;
    for i in [0, top / 2, top] {
        assert_eq!(hash(&follower, i), hash(&leader, i), "block {i}");
    }
    // All of it came through us: we are the follower's only peer.
    assert_eq!(peer_ports(&follower), [port(&addr)]);
    follower.stop();
    leader.stop();
}

#[test]
fn a_neo_one_follower_of_our_legacy_mirror_keeps_up_with_the_validator() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let leader = RealNode::start_on("neoone", (node_port(), node_port()), 3, &[]);
    let genesis = hash(&leader, 0);
    let genesis = genesis.as_str().unwrap();
    // NEO 2 private networks differ in their genesis block: it is given.
    let (_server, addr) = mirror(
        &leader,
        &[
            "--protocol",
            "legacy",
            "--network",
            "56753",
            "--genesis",
            genesis,
        ],
    );
    let follower = RealNode::follow_on("neoone", &addr, (node_port(), node_port()));
    // A block a second: the follower syncs what we have, then follows the
    // validator through us.
    let started = Instant::now();
    let (first, _) = counts(&leader, &follower);
    let first = first.expect("validator count");
    let mut worst = None;
    while started.elapsed() < WATCH_LEGACY {
        let (lead, follow) = counts(&leader, &follower);
        let (lead, follow) = (lead.expect("validator count"), follow.unwrap_or(0));
        if follow >= first {
            worst = Some(worst.unwrap_or(0).max(lead.saturating_sub(follow)));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // It reaches the height the validator (and we) had at the end.
    let (lead, _) = counts(&leader, &follower);
    let lead = lead.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let follow = loop {
        let (_, follow) = counts(&leader, &follower);
        match follow {
            Some(n) if n >= lead => break n,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(250)),
            _ => panic!("the follower is at {follow:?} of {lead}"),
        }
    };
    println!(
        "validator at {lead} blocks (from {first}), follower at {follow}; at most {worst:?} behind once synced"
    );
    assert!(
        lead >= first + 10,
        "the validator made {} blocks",
        lead - first
    );
    let top = follow - 1;
    for i in [0, top / 2, top] {
        assert_eq!(hash(&follower, i), hash(&leader, i), "block {i}");
    }
    assert_eq!(peer_ports(&follower), [port(&addr)]);
    follower.stop();
    leader.stop();
}
