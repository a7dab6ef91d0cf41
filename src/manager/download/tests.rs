//! The pipeline's rules with made-up instants and scripted peers.

use super::*;
use crate::chain::{N3Chain, Synthetic};

const A: PeerId = 1;
const B: PeerId = 2;
const C: PeerId = 3;

fn chain(blocks: u32, seed: u64) -> Vec<n3::Block> {
    N3Chain::synthetic(&Synthetic {
        blocks,
        txs_per_block: 1,
        seed,
        with_bodies: true,
    })
    .blocks()
    .cloned()
    .collect()
}

fn config(window: u32, range: u32) -> ScheduleConfig {
    ScheduleConfig {
        window,
        range,
        per_peer: 1,
        timeout: Duration::from_secs(10),
        steal_after: Duration::from_secs(2),
        max_held_bytes: usize::MAX,
        witnesses: None,
    }
}

/// A download of heights 1..=target of `blocks`, after genesis.
fn schedule(blocks: &[n3::Block], config: ScheduleConfig, target: u32) -> Schedule<n3::Block> {
    Schedule::new(config, 1, Some(target), Some(blocks[0].hash()), |_| None)
}

fn requests(s: &mut Schedule<n3::Block>, now: Instant) -> Vec<Request> {
    std::iter::from_fn(|| s.poll_request(now)).collect()
}

/// Feeds the blocks of `r` from `blocks`; every one must be kept.
fn answer(s: &mut Schedule<n3::Block>, blocks: &[n3::Block], r: &Request, now: Instant) {
    for h in r.start..r.start + r.count {
        assert_eq!(
            s.on_block(r.id, blocks[h as usize].clone(), now),
            Arrival::Kept
        );
    }
}

fn ready(s: &mut Schedule<n3::Block>) -> Vec<(u32, PeerId)> {
    std::iter::from_fn(|| s.poll_ready())
        .map(|r| match r {
            Ready::Block { block, from } => (block.index(), from),
            Ready::Fault { peer, index, why } => panic!("fault at {index} from {peer}: {why}"),
        })
        .collect()
}

#[test]
fn out_of_order_ranges_come_out_in_order() {
    let blocks = chain(24, 0);
    let t0 = Instant::now();
    let mut s = schedule(&blocks, config(64, 8), 24);
    for p in [A, B, C] {
        s.set_peer(p, 24);
    }
    let rs = requests(&mut s, t0);
    assert_eq!(rs.len(), 3, "one range per free peer: {rs:?}");
    assert_eq!(
        rs.iter().map(|r| (r.start, r.count)).collect::<Vec<_>>(),
        [(1, 8), (9, 8), (17, 8)]
    );
    // The last two ranges come first: nothing can be handed out.
    answer(&mut s, &blocks, &rs[2], t0);
    answer(&mut s, &blocks, &rs[1], t0);
    assert_eq!(s.poll_ready(), None);
    assert_eq!(s.held(), 16);
    // Within the first range, out of order too.
    for h in [3u32, 1, 2, 8, 7, 6, 5, 4] {
        let kept = s.on_block(rs[0].id, blocks[h as usize].clone(), t0);
        assert_eq!(kept, Arrival::Kept);
        let out: Vec<u32> = ready(&mut s).into_iter().map(|(i, _)| i).collect();
        match h {
            1 => assert_eq!(out, [1]),
            2 => assert_eq!(out, [2, 3]),
            4 => assert_eq!(out, (4..=24).collect::<Vec<_>>()),
            _ => assert!(out.is_empty(), "{h}: {out:?}"),
        }
    }
    assert!(s.is_done());
    assert_eq!((s.held(), s.held_bytes(), s.in_flight()), (0, 0, 0));
    // A copy of a block already handed out is dropped.
    assert_eq!(s.on_block(rs[0].id, blocks[1].clone(), t0), Arrival::Stale);
}

#[test]
fn the_window_bounds_what_is_asked_and_held() {
    let blocks = chain(200, 0);
    let t0 = Instant::now();
    let (window, range) = (16, 4);
    let mut s = schedule(&blocks, config(window, range), 200);
    for p in 1..=10 {
        s.set_peer(p, 200);
    }
    let mut delivered = 0u32;
    let mut rounds = 0;
    while !s.is_done() {
        rounds += 1;
        let rs = requests(&mut s, t0);
        for r in &rs {
            let top = u64::from(r.start + r.count - 1);
            assert!(
                top < s.next_index() + u64::from(window),
                "{r:?} beyond the window"
            );
        }
        assert!(s.in_flight() as u32 <= window / range);
        // Answer the newest first, and hold back the oldest for one round.
        for r in rs.iter().rev() {
            answer(&mut s, &blocks, r, t0);
            assert!(s.held() as u32 <= window);
        }
        for (index, _) in ready(&mut s) {
            delivered += 1;
            assert_eq!(index, delivered);
        }
    }
    assert_eq!(delivered, 200);
    assert!(rounds >= 200 / window, "{rounds} rounds");
    // The bound in bytes: the window times the largest block.
    let largest = blocks.iter().map(Fetched::wire_size).max().unwrap_or(0);
    assert!(s.held_bytes() <= window as usize * largest);
}

#[test]
fn without_a_measured_idle_peer_the_head_is_taken_at_steal_after() {
    let blocks = chain(16, 0);
    let t0 = Instant::now();
    // One range fills the window: one peer has it, the other is idle and
    // has never answered, so nothing says how fast it would be.
    let mut s = schedule(&blocks, config(8, 8), 16);
    s.set_peer(A, 16);
    s.set_peer(B, 16);
    let rs = requests(&mut s, t0);
    assert_eq!(rs.len(), 1);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    assert_eq!(s.handle_timeout(t0 + Duration::from_millis(1999)), []);
    assert_eq!(s.handle_timeout(t0 + Duration::from_secs(2)).len(), 1);
}

#[test]
fn work_only_a_busy_peer_could_take_does_not_keep_the_head_from_an_idle_peer() {
    let blocks = chain(20, 0);
    let t0 = Instant::now();
    // A says it has every height and is given the head; B has the first
    // two only, and the rest of the window waits for A, which alone could
    // take it: B is idle all the same, and takes the head at steal_after.
    let mut s = schedule(&blocks, config(64, 8), 20);
    s.set_peer(A, 20);
    s.set_peer(B, 2);
    let rs = requests(&mut s, t0);
    assert_eq!(
        rs.iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(A, 1, 8)]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(s.handle_timeout(t1).len(), 1, "the head is taken from A");
    let rs = requests(&mut s, t1);
    assert_eq!(
        rs.first().map(|r| (r.peer, r.start, r.count)),
        Some((B, 1, 2)),
        "{rs:?}"
    );
}

#[test]
fn ranges_are_cut_shorter_so_that_every_peer_gets_its_requests() {
    let blocks = chain(2, 0);
    let t0 = Instant::now();
    let config = ScheduleConfig {
        per_peer: 2,
        ..config(2000, 500)
    };
    // One peer: full ranges.
    let mut s = schedule(&blocks, config, 100_000);
    s.set_peer(A, 100_000);
    let rs = requests(&mut s, t0);
    assert_eq!(rs.iter().map(|r| r.count).collect::<Vec<_>>(), [500, 500]);
    // Eight peers: 2000 / (2 × 8 × 2) = 62 heights a range, so that each
    // peer has its two requests out and as many wait for it.
    let mut s = schedule(&blocks, config, 100_000);
    for p in 1..=8 {
        s.set_peer(p, 100_000);
    }
    let rs = requests(&mut s, t0);
    assert_eq!(rs.len(), 16);
    assert!(rs.iter().all(|r| r.count == 62), "{rs:?}");
    for p in 1..=8 {
        assert_eq!(rs.iter().filter(|r| r.peer == p).count(), 2);
    }
    // Never shorter than MIN_RANGE, however many peers.
    let mut s = schedule(&blocks, config, 100_000);
    for p in 1..=100 {
        s.set_peer(p, 100_000);
    }
    assert!(requests(&mut s, t0).iter().all(|r| r.count == MIN_RANGE));
}

/// A real block of the N3 MainNet, by its vector's name.
fn mainnet_block(name: &str) -> n3::Block {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/n3.json");
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap();
    let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
    <n3::Block as crate::wire::Decode>::from_slice(&bytes).unwrap()
}

#[test]
fn with_witnesses_checked_only_a_block_the_validators_signed_is_handed_out() {
    let genesis = mainnet_block("mainnet genesis block (index 0)");
    let one = mainnet_block("mainnet block 1");
    let config = ScheduleConfig {
        witnesses: Some(Signers {
            network: n3::MAINNET_MAGIC,
            first: genesis.header.next_consensus,
        }),
        ..config(8, 4)
    };
    let t0 = Instant::now();
    let mut s = Schedule::new(config, 1, Some(1), Some(genesis.hash()), |_| None);
    s.set_peer(A, 1);
    s.set_peer(B, 1);
    // A block of A's making: it links to genesis and its Merkle root is
    // right, but the validators did not sign it.
    let mut forged = one.clone();
    forged.header.nonce ^= 1;
    let r = s.poll_request(t0).unwrap();
    let forger = r.peer;
    assert_eq!(s.on_block(r.id, forged, t0), Arrival::Kept);
    let Some(Ready::Fault { peer, index, why }) = s.poll_ready() else {
        panic!("a forged block handed out")
    };
    assert_eq!((peer, index), (forger, 1));
    assert!(why.contains("signature"), "{why}");
    // The other peer is asked, and its block, the real one, goes out.
    let r = s.poll_request(t0).unwrap();
    assert_ne!(r.peer, forger);
    assert_eq!(s.on_block(r.id, one.clone(), t0), Arrival::Kept);
    assert!(matches!(s.poll_ready(), Some(Ready::Block { block, .. }) if block == one));
    assert!(s.is_done());
}

#[test]
fn past_twice_the_held_bytes_only_the_next_block_is_taken() {
    let blocks = chain(12, 0);
    let t0 = Instant::now();
    let size = blocks.iter().map(Fetched::wire_size).max().unwrap_or(0);
    // Two blocks past which only the next one is taken.
    let config = ScheduleConfig {
        max_held_bytes: size,
        ..config(40, 4)
    };
    let mut s = schedule(&blocks, config, 11);
    s.set_peer(A, 11);
    s.set_peer(B, 11);
    let rs = requests(&mut s, t0);
    let (head, next) = (&rs[0], &rs[1]);
    assert_eq!((head.start, next.start), (1, 5));
    assert_ne!(head.peer, next.peer);
    // The second range comes first: two blocks kept, the rest dropped, its
    // peer not blamed.
    let got: Vec<Arrival> = (5..=8)
        .map(|h| s.on_block(next.id, blocks[h].clone(), t0))
        .collect();
    assert_eq!(got[..2], [Arrival::Kept, Arrival::Kept]);
    assert_eq!(got[2..], [Arrival::Stale, Arrival::Stale]);
    assert!(s.held_bytes() <= 2 * size);
    // Its answers end: what it did not bring waits, above the lowest block
    // held, so it is not asked for while the bytes are over the bound.
    assert!(s.on_end(next.id));
    assert_eq!(requests(&mut s, t0), []);
    // An offer above is dropped too; the next block is always taken.
    assert_eq!(s.offer(blocks[9].clone(), A), Arrival::Stale);
    for block in &blocks[1..=4] {
        assert_eq!(s.on_block(head.id, block.clone(), t0), Arrival::Kept);
        assert!(s.held_bytes() <= 3 * size);
        ready(&mut s);
    }
    assert_eq!(s.next_index(), 7);
    // Room again: the dropped heights are asked for, of the peer that has
    // not tried them.
    let again = requests(&mut s, t0);
    assert_eq!((again[0].start, again[0].count), (7, 2));
    assert_eq!(again[0].peer, head.peer);
    answer(&mut s, &blocks, &again[0], t0);
    assert_eq!(ready(&mut s).len(), 2);
    assert_eq!(s.held_bytes(), 0);
}

#[test]
fn past_the_held_bytes_only_the_gaps_below_what_is_held_are_asked() {
    let blocks = chain(40, 0);
    let t0 = Instant::now();
    let size = blocks[1].wire_size();
    // Room for about two blocks held out of order (and five past which
    // only the next block is taken).
    let config = ScheduleConfig {
        max_held_bytes: 2 * size + size / 2,
        ..config(40, 4)
    };
    let mut s = schedule(&blocks, config, 40);
    s.set_peer(A, 40);
    s.set_peer(B, 40);
    let rs = requests(&mut s, t0);
    let (head, next) = (&rs[0], &rs[1]);
    assert_eq!((head.start, next.start), (1, 5));
    // The second range comes first, in 8 ms: four blocks held, over the
    // bound.
    let t1 = t0 + Duration::from_millis(8);
    answer(&mut s, &blocks, next, t1);
    assert!(s.held_bytes() >= 2 * size);
    assert_eq!(s.poll_request(t1), None, "nothing above the lowest held");
    // Its peer is idle and the head is out: as in a full window, the head
    // is taken once out twice as long as that peer would take for it.
    let due = t0 + Duration::from_millis(16);
    assert_eq!(s.poll_timeout(), Some(due));
    assert_eq!(s.handle_timeout(due - Duration::from_micros(1)), []);
    assert_eq!(s.handle_timeout(due).len(), 1);
    let t1 = due;
    let again = requests(&mut s, t1);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].start, again[0].count), (1, 4), "the gap only");
    // Each block of the gap is the next to hand out as it comes (the
    // driver hands out what is ready after each): taken, however much is
    // held.
    let mut out = 0;
    for block in &blocks[1..=4] {
        let kept = s.on_block(again[0].id, block.clone(), t1);
        assert_eq!(kept, Arrival::Kept);
        out += ready(&mut s).len();
    }
    assert_eq!(out, 8);
    assert_eq!(s.held_bytes(), 0);
    // Asking goes on.
    assert_eq!(requests(&mut s, t1).len(), 2);
}

#[test]
fn a_slow_peer_loses_its_range_to_another_and_never_gets_it_back() {
    let blocks = chain(16, 0);
    let t0 = Instant::now();
    let mut s = schedule(&blocks, config(64, 8), 16);
    s.set_peer(A, 16);
    s.set_peer(B, 16);
    let rs = requests(&mut s, t0);
    let slow = rs.iter().find(|r| r.start == 1).unwrap().clone();
    let fast = rs.iter().find(|r| r.start == 9).unwrap().clone();
    answer(&mut s, &blocks, &fast, t0 + Duration::from_millis(5));
    // The slow peer brought two blocks before its deadline.
    for b in &blocks[1..=2] {
        s.on_block(slow.id, b.clone(), t0 + Duration::from_millis(9));
    }
    // Nothing else is waiting and the fast peer is idle: the range holding
    // up the window is taken from the slow peer once out twice as long as
    // the fast peer would take for it (8 blocks at 5 ms / 8 each: 10 ms).
    let due = t0 + Duration::from_millis(10);
    assert_eq!(s.poll_timeout(), Some(due), "steal");
    assert_eq!(s.handle_timeout(due - Duration::from_micros(1)), []);
    let gone = s.handle_timeout(due);
    assert_eq!(
        gone,
        [Abandoned {
            id: slow.id,
            peer: slow.peer
        }]
    );
    let again = requests(&mut s, t0 + Duration::from_secs(2));
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].peer, slow.peer, "never the same peer twice");
    assert_eq!(
        (again[0].start, again[0].count),
        (3, 6),
        "only what is missing"
    );
    // The slow peer's late blocks are dropped.
    assert_eq!(
        s.on_block(slow.id, blocks[3].clone(), t0 + Duration::from_secs(3)),
        Arrival::Stale
    );
    answer(&mut s, &blocks, &again[0], t0 + Duration::from_secs(3));
    let out = ready(&mut s);
    assert_eq!(out.len(), 16);
    assert_eq!(out[0], (1, slow.peer), "what it did bring is kept");
    assert!(s.is_done());
}

#[test]
fn a_request_past_its_deadline_goes_elsewhere_and_the_slow_peer_comes_last() {
    let blocks = chain(40, 0);
    let t0 = Instant::now();
    let mut s = schedule(&blocks, config(64, 8), 40);
    s.set_peer(A, 40);
    let first = requests(&mut s, t0);
    assert_eq!(first.len(), 1);
    // B joins later and takes the next range.
    s.set_peer(B, 40);
    let second = requests(&mut s, t0);
    assert_eq!((second[0].peer, second[0].start), (B, 9));
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    let late = s.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(late.len(), 2, "both were late");
    // A new round (each peer tried one range): the other peer gets each.
    let t1 = t0 + Duration::from_secs(10);
    let rs = requests(&mut s, t1);
    let by_start: HashMap<u32, PeerId> = rs.iter().map(|r| (r.start, r.peer)).collect();
    assert_eq!(by_start.get(&1), Some(&B));
    assert_eq!(by_start.get(&9), Some(&A));
}

#[test]
fn a_peer_that_leaves_mid_range_leaves_the_rest_to_another() {
    let blocks = chain(16, 0);
    let t0 = Instant::now();
    let mut s = schedule(&blocks, config(64, 16), 16);
    s.set_peer(A, 16);
    let r = requests(&mut s, t0).remove(0);
    for b in &blocks[1..=5] {
        s.on_block(r.id, b.clone(), t0);
    }
    assert_eq!(ready(&mut s).len(), 5);
    assert_eq!(s.remove_peer(A), [Abandoned { id: r.id, peer: A }]);
    assert_eq!(s.poll_request(t0), None, "no peer left");
    s.set_peer(B, 16);
    let rest = requests(&mut s, t0);
    assert_eq!(
        rest.iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(B, 6, 11)]
    );
    answer(&mut s, &blocks, &rest[0], t0);
    assert_eq!(ready(&mut s).len(), 11);
    assert!(s.is_done());
}

#[test]
fn a_block_with_a_wrong_merkle_root_drops_its_peer_and_is_fetched_elsewhere() {
    let blocks = chain(8, 0);
    let t0 = Instant::now();
    let mut s = schedule(&blocks, config(64, 8), 8);
    s.set_peer(A, 8);
    let r = requests(&mut s, t0).remove(0);
    s.set_peer(B, 8);
    s.on_block(r.id, blocks[1].clone(), t0);
    let mut bad = blocks[2].clone();
    bad.header.merkle_root = UInt256([7; 32]);
    let verdict = s.on_block(r.id, bad, t0);
    let Arrival::Bad { peer, why } = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(peer, A);
    assert!(why.contains("block 2"), "{why}");
    assert_eq!(s.in_flight(), 0);
    let rest = requests(&mut s, t0);
    assert_eq!(
        rest.iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(B, 2, 7)]
    );
    answer(&mut s, &blocks, &rest[0], t0);
    assert_eq!(
        ready(&mut s),
        [
            (1, A),
            (2, B),
            (3, B),
            (4, B),
            (5, B),
            (6, B),
            (7, B),
            (8, B)
        ]
    );
}

#[test]
fn a_block_that_does_not_follow_is_never_handed_out() {
    let blocks = chain(8, 0);
    let other = chain(8, 1);
    let t0 = Instant::now();
    let mut s = schedule(&blocks, config(64, 4), 8);
    s.set_peer(A, 8);
    s.set_peer(B, 8);
    let rs = requests(&mut s, t0);
    let (ra, rb) = (&rs[0], &rs[1]);
    assert_eq!(
        (ra.peer, ra.start, rb.peer, rb.start),
        (rs[0].peer, 1, rs[1].peer, 5)
    );
    // The second peer serves a well-formed block of another chain at 5.
    s.on_block(rb.id, other[5].clone(), t0);
    answer(&mut s, &blocks, ra, t0);
    let out: Vec<_> = std::iter::from_fn(|| s.poll_ready()).collect();
    assert_eq!(out.len(), 5);
    let Ready::Fault { peer, index, .. } = &out[4] else {
        panic!("{:?}", out[4]);
    };
    assert_eq!((*peer, *index), (rb.peer, 5));
    // Heights 5..=8 go to the other peer.
    let rest = requests(&mut s, t0);
    assert_eq!(
        rest.iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(ra.peer, 5, 4)]
    );
    answer(&mut s, &blocks, &rest[0], t0);
    assert_eq!(ready(&mut s).len(), 4);
    assert!(s.is_done());
}

#[test]
fn known_headers_decide_which_block_is_the_right_one() {
    let blocks = chain(4, 0);
    let other = chain(4, 1);
    let hashes: Vec<UInt256> = blocks.iter().map(n3::Block::hash).collect();
    let t0 = Instant::now();
    let mut s = Schedule::new(config(64, 4), 1, Some(4), None, move |h| {
        hashes.get(h as usize).copied()
    });
    s.set_peer(A, 4);
    let r = requests(&mut s, t0).remove(0);
    assert_eq!(
        r.hashes,
        blocks[1..]
            .iter()
            .map(|b| Some(b.hash()))
            .collect::<Vec<_>>()
    );
    let verdict = s.on_block(r.id, other[1].clone(), t0);
    assert!(
        matches!(verdict, Arrival::Bad { peer: A, .. }),
        "{verdict:?}"
    );
}

#[test]
fn a_lone_peer_tries_again_after_a_failure_and_low_peers_get_what_they_have() {
    let blocks = chain(20, 0);
    let t0 = Instant::now();
    let mut s = schedule(&blocks, config(64, 16), 20);
    s.set_peer(A, 10);
    let r = requests(&mut s, t0);
    assert_eq!(
        r.iter().map(|r| (r.start, r.count)).collect::<Vec<_>>(),
        [(1, 10)],
        "only the heights it has"
    );
    assert!(s.on_end(r[0].id));
    assert!(!s.on_end(r[0].id), "once");
    // The only peer that has the heights tried them: a new round.
    let again = requests(&mut s, t0);
    assert_eq!(
        again.iter().map(|r| (r.peer, r.start)).collect::<Vec<_>>(),
        [(A, 1)]
    );
    answer(&mut s, &blocks, &again[0], t0);
    assert_eq!(ready(&mut s).len(), 10);
    assert_eq!(
        s.poll_request(t0),
        None,
        "heights 11.. wait for a peer that has them"
    );
    s.set_peer(A, 20);
    s.set_target(20);
    let top = requests(&mut s, t0);
    assert_eq!(
        top.iter().map(|r| (r.start, r.count)).collect::<Vec<_>>(),
        [(11, 6)]
    );
}

#[test]
fn following_raises_the_target() {
    let blocks = chain(6, 0);
    let t0 = Instant::now();
    let mut s = Schedule::new(config(64, 8), 1, None, Some(blocks[0].hash()), |_| None);
    s.set_peer(A, 0);
    assert!(s.is_done());
    assert_eq!((s.target(), s.poll_request(t0)), (Some(0), None));
    for tip in [3u32, 6] {
        s.set_peer(A, tip);
        s.set_target(tip);
        let rs = requests(&mut s, t0);
        for r in &rs {
            answer(&mut s, &blocks, r, t0);
        }
        assert_eq!(ready(&mut s).last().map(|r| r.0), Some(tip));
    }
    s.set_target(2);
    assert_eq!(s.target(), Some(6), "never lowered");
}

#[test]
fn another_block_at_a_height_we_have_is_a_conflict() {
    let blocks = chain(8, 0);
    let other = chain(8, 1);
    let t0 = Instant::now();
    let mut s = schedule(&blocks, config(4, 2), 8);
    s.set_peer(A, 8);
    s.set_peer(B, 8);
    assert_eq!(s.conflict(&blocks[0]), None, "the block we start after");
    assert_eq!(s.conflict(&other[0]), Some(blocks[0].hash()));
    let rs = requests(&mut s, t0);
    // Height 3 arrives first and is held; 1 and 2 are handed out.
    let second = rs.iter().find(|r| r.start == 3).unwrap();
    s.on_block(second.id, blocks[3].clone(), t0);
    assert_eq!(
        s.conflict(&blocks[3]),
        None,
        "the same block is no conflict"
    );
    assert_eq!(s.conflict(&other[3]), Some(blocks[3].hash()), "held");
    answer(&mut s, &blocks, &rs[0], t0);
    assert_eq!(ready(&mut s).len(), 3);
    assert_eq!(s.conflict(&other[1]), Some(blocks[1].hash()), "handed out");
    assert_eq!(s.conflict(&blocks[2]), None);
    assert_eq!(s.conflict(&other[5]), None, "a height we do not have");
    // A wrong copy of a held height from a live request is never kept.
    let verdict = s.on_block(second.id, other[3].clone(), t0);
    assert_eq!(verdict, Arrival::Stale);
    assert_eq!(ready(&mut s), [], "height 4 is still missing");
    assert_eq!(s.on_block(second.id, blocks[4].clone(), t0), Arrival::Kept);
    // Only the last `window` heights handed out are remembered.
    while !s.is_done() {
        for r in requests(&mut s, t0) {
            answer(&mut s, &blocks, &r, t0);
        }
        assert!(!ready(&mut s).is_empty());
    }
    assert!(s.is_done());
    assert_eq!(s.conflict(&other[8]), Some(blocks[8].hash()));
    assert_eq!(s.conflict(&other[4]), None, "forgotten past the window");
}

#[test]
fn an_offered_block_is_kept_once_and_never_asked_for() {
    let blocks = chain(12, 0);
    let other = chain(12, 1);
    let t0 = Instant::now();
    // Following: nothing wanted yet past genesis.
    let mut s = Schedule::new(config(8, 4), 1, None, Some(blocks[0].hash()), |_| None);
    s.set_peer(A, 0);
    // A offers block 2 (it announced it): the target rises to it, and only
    // height 1 is asked for.
    assert_eq!(s.offer(blocks[2].clone(), A), Arrival::Kept);
    assert_eq!(s.target(), Some(2));
    assert_eq!(s.offer(blocks[2].clone(), A), Arrival::Stale, "held");
    s.set_peer(A, 2);
    let rs = requests(&mut s, t0);
    assert_eq!(
        rs.iter().map(|r| (r.start, r.count)).collect::<Vec<_>>(),
        [(1, 1)]
    );
    // Height 1 is being fetched: an offer of it is not kept.
    assert_eq!(s.offer(blocks[1].clone(), A), Arrival::Stale);
    answer(&mut s, &blocks, &rs[0], t0);
    assert_eq!(ready(&mut s), [(1, A), (2, A)]);
    assert_eq!(s.offer(blocks[2].clone(), A), Arrival::Stale, "handed out");
    // Waiting work loses the offered height: 3..=6 wanted, 4 offered.
    s.set_target(6);
    s.set_peer(B, 12);
    assert_eq!(s.offer(blocks[4].clone(), B), Arrival::Kept);
    assert_eq!(
        s.offer(blocks[11].clone(), B),
        Arrival::Stale,
        "beyond the window"
    );
    let mut asked = Vec::new();
    let mut out = Vec::new();
    while !s.is_done() {
        let rs = requests(&mut s, t0);
        assert!(!rs.is_empty());
        for r in &rs {
            asked.extend(r.start..r.start + r.count);
            answer(&mut s, &blocks, r, t0);
        }
        out.extend(ready(&mut s).into_iter().map(|r| r.0));
    }
    assert_eq!(asked, [3, 5, 6], "the offered height is never asked for");
    assert_eq!(out, [3, 4, 5, 6]);
    s.set_target(8);
    // A malformed block is refused.
    let mut bad = blocks[7].clone();
    bad.header.merkle_root = UInt256([7; 32]);
    let verdict = s.offer(bad, B);
    assert!(
        matches!(verdict, Arrival::Bad { peer: B, .. }),
        "{verdict:?}"
    );
    // A well-formed block of another chain is kept, then never handed out.
    assert_eq!(s.offer(other[7].clone(), A), Arrival::Kept);
    let fault = std::iter::from_fn(|| s.poll_ready()).next();
    assert!(
        matches!(
            fault,
            Some(Ready::Fault {
                peer: A,
                index: 7,
                ..
            })
        ),
        "{fault:?}"
    );
    assert_eq!(s.next_index(), 7);
}

#[test]
fn a_new_round_for_the_start_of_a_range_leaves_the_rest_in_its_own() {
    let t0 = Instant::now();
    let blocks = chain(8, 0);
    let mut s = schedule(&blocks, config(10, 5), 5);
    s.set_peer(A, 8);
    let first = requests(&mut s, t0);
    assert_eq!(
        first
            .iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(A, 1, 5)]
    );
    assert!(s.on_end(first[0].id));
    s.set_peer(B, 8);
    let second = requests(&mut s, t0);
    assert_eq!(
        second
            .iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(B, 1, 5)]
    );
    assert!(s.on_end(second[0].id));
    // B leaves and A turns out lower: every peer that has height 1 tried
    // it, so A starts a new round with what it has.
    s.remove_peer(B);
    s.set_peer(A, 3);
    let third = requests(&mut s, t0);
    assert_eq!(
        third
            .iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(A, 1, 3)]
    );
    // Heights 4 and 5 were given to nobody in it: B, back, does not get
    // them again while C has not tried them.
    s.set_peer(B, 8);
    s.set_peer(C, 8);
    let rest = requests(&mut s, t0);
    assert_eq!(
        rest.iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(C, 4, 2)]
    );
}

#[test]
fn an_offered_block_found_wrong_is_fetched_from_another_peer() {
    let blocks = chain(8, 0);
    let other = chain(8, 1);
    let t0 = Instant::now();
    let mut s = Schedule::new(config(5, 3), 1, None, Some(blocks[0].hash()), |_| None);
    assert_eq!(s.offer(other[1].clone(), A), Arrival::Kept);
    let fault = s.poll_ready();
    assert!(
        matches!(
            fault,
            Some(Ready::Fault {
                peer: A,
                index: 1,
                ..
            })
        ),
        "{fault:?}"
    );
    s.set_target(7);
    s.set_peer(A, 7);
    s.set_peer(B, 7);
    // Height 1 keeps its own work, which A tried: B gets it, and the
    // heights above are planned after it.
    let rs = requests(&mut s, t0);
    assert_eq!(
        rs.iter()
            .map(|r| (r.peer, r.start, r.count))
            .collect::<Vec<_>>(),
        [(B, 1, 1), (A, 2, 3)]
    );
}

/// A model of the schedule's promises, checked after every step of
/// arbitrary sequences of peers joining and leaving, time passing, answers
/// (in any order, partial, late, twice, or of another chain), offers,
/// raised targets and hand-outs; every case then drives the download to
/// its end with one honest peer that answers everything.
mod model {
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    /// Heights 0..CHAIN of the honest chain and of another one.
    const CHAIN: u32 = 48;
    /// The peers the events speak of; [`HONEST`] joins at the end.
    const PEERS: u64 = 4;
    const HONEST: PeerId = 99;

    fn chains() -> &'static (Vec<n3::Block>, Vec<n3::Block>) {
        static CHAINS: OnceLock<(Vec<n3::Block>, Vec<n3::Block>)> = OnceLock::new();
        CHAINS.get_or_init(|| (chain(CHAIN, 0), chain(CHAIN, 1)))
    }

    #[derive(Debug, Clone)]
    enum Op {
        Join(PeerId, u32),
        Leave(PeerId),
        Wait(u64),
        Poll,
        /// One block for an issued request: which request, which of its
        /// heights, whether of the other chain.
        Answer(Index, Index, bool),
        /// Every block still owed by a request, in reverse order.
        AnswerAll(Index),
        End(Index),
        Offer(PeerId, u32, bool),
        Target(u32),
        Ready,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1..=PEERS, 0..CHAIN).prop_map(|(p, h)| Op::Join(p, h)),
            1 => (1..=PEERS).prop_map(Op::Leave),
            2 => (0..12_000u64).prop_map(Op::Wait),
            4 => Just(Op::Poll),
            6 => (any::<Index>(), any::<Index>(), prop::bool::weighted(0.15))
                .prop_map(|(r, h, w)| Op::Answer(r, h, w)),
            2 => any::<Index>().prop_map(Op::AnswerAll),
            1 => any::<Index>().prop_map(Op::End),
            1 => (1..=PEERS, 1..CHAIN, prop::bool::weighted(0.3))
                .prop_map(|(p, h, w)| Op::Offer(p, h, w)),
            1 => (1..CHAIN).prop_map(Op::Target),
            3 => Just(Op::Ready),
        ]
    }

    /// The settings, the target, and the height below which the headers
    /// are known (0: none).
    fn settings() -> impl Strategy<Value = (ScheduleConfig, Option<u32>, u32)> {
        (
            4..40u32,
            1..10u32,
            1..=3u32,
            prop_oneof![Just(usize::MAX), 0..4_000usize],
            prop::option::weighted(0.8, 1..CHAIN),
            prop_oneof![Just(0), Just(CHAIN), 1..CHAIN],
        )
            .prop_map(
                |(window, range, per_peer, max_held_bytes, target, headers)| {
                    let config = ScheduleConfig {
                        window,
                        range,
                        per_peer,
                        timeout: Duration::from_secs(10),
                        steal_after: Duration::from_secs(2),
                        max_held_bytes,
                        witnesses: None,
                    };
                    (config, target, headers)
                },
            )
    }

    /// A request as the model sees it.
    #[derive(Debug, Clone)]
    struct Issued {
        request: Request,
        at: Instant,
        live: bool,
        got: BTreeSet<u32>,
    }

    #[derive(Debug, Clone, Copy)]
    struct HeldBlock {
        from: PeerId,
        request: RequestId,
        wrong: bool,
        size: usize,
    }

    struct Model {
        s: Schedule<n3::Block>,
        config: ScheduleConfig,
        /// Heights below it have their header known.
        headers: u32,
        now: Instant,
        next: u32,
        target: Option<u32>,
        peers: HashMap<PeerId, u32>,
        issued: Vec<Issued>,
        held: BTreeMap<u32, HeldBlock>,
        /// Per height: the peers given it in its current round.
        tried: HashMap<u32, HashSet<PeerId>>,
        /// Peers that sent a block of the other chain.
        liars: HashSet<PeerId>,
    }

    impl Model {
        fn new(config: ScheduleConfig, target: Option<u32>, headers: u32) -> Self {
            let (honest, _) = chains();
            let hashes: Vec<UInt256> = honest.iter().map(|b| b.hash()).collect();
            let expected = move |h: u32| {
                if h < headers {
                    hashes.get(h as usize).copied()
                } else {
                    None
                }
            };
            let s = Schedule::new(config, 1, target, Some(honest[0].hash()), expected);
            Model {
                s,
                config,
                headers,
                now: Instant::now(),
                next: 1,
                target,
                peers: HashMap::new(),
                issued: Vec::new(),
                held: BTreeMap::new(),
                tried: HashMap::new(),
                liars: HashSet::new(),
            }
        }

        fn block(h: u32, wrong: bool) -> n3::Block {
            let (honest, other) = chains();
            let chain = if wrong { other } else { honest };
            chain[h as usize].clone()
        }

        fn live(&self, peer: PeerId) -> usize {
            self.issued
                .iter()
                .filter(|i| i.live && i.request.peer == peer)
                .count()
        }

        fn kill(&mut self, id: RequestId) {
            self.issued[id as usize].live = false;
        }

        /// `peer` was dropped (left, or found wrong).
        fn drop_peer(&mut self, peer: PeerId) -> BTreeSet<RequestId> {
            self.peers.remove(&peer);
            let ids: BTreeSet<RequestId> = self
                .issued
                .iter()
                .filter(|i| i.live && i.request.peer == peer)
                .map(|i| i.request.id)
                .collect();
            for &id in &ids {
                self.kill(id);
            }
            ids
        }

        /// A block of the other chain was refused on arrival.
        fn bad(&mut self, arrival: &Arrival, from: PeerId) {
            let Arrival::Bad { peer, .. } = arrival else {
                panic!("a block of another chain with the headers known: {arrival:?}");
            };
            assert_eq!(*peer, from);
            self.drop_peer(from);
        }

        /// Past twice the byte bound only the next block is taken.
        fn too_heavy(&self, h: u32, wrong: bool) -> bool {
            let bytes: usize = self.held.values().map(|b| b.size).sum();
            let size = Self::block(h, wrong).wire_size();
            h != self.next && bytes + size > self.config.max_held_bytes.saturating_mul(2)
        }

        fn keep(&mut self, h: u32, from: PeerId, request: RequestId, wrong: bool) {
            let size = Self::block(h, wrong).wire_size();
            let held = HeldBlock {
                from,
                request,
                wrong,
                size,
            };
            assert!(self.held.insert(h, held).is_none(), "{h} kept twice");
            if wrong {
                self.liars.insert(from);
            }
        }

        fn covered(&self, h: u32) -> bool {
            self.issued.iter().any(|i| {
                i.live && (i.request.start..i.request.start + i.request.count).contains(&h)
            })
        }

        fn step(&mut self, op: &Op) {
            match *op {
                Op::Join(peer, height) => {
                    self.s.set_peer(peer, height);
                    self.peers.insert(peer, height);
                }
                Op::Leave(peer) => {
                    let gone: BTreeSet<RequestId> =
                        self.s.remove_peer(peer).iter().map(|a| a.id).collect();
                    assert_eq!(gone, self.drop_peer(peer), "abandoned as {peer} left");
                }
                Op::Wait(ms) => self.wait(Duration::from_millis(ms)),
                Op::Poll => self.poll(),
                Op::Answer(r, h, wrong) => {
                    if self.issued.is_empty() {
                        return;
                    }
                    let i = r.index(self.issued.len());
                    let count = self.issued[i].request.count as usize;
                    let h = self.issued[i].request.start + h.index(count) as u32;
                    self.answer(i, h, wrong);
                }
                Op::AnswerAll(r) => {
                    if self.issued.is_empty() {
                        return;
                    }
                    let i = r.index(self.issued.len());
                    let request = &self.issued[i].request;
                    for h in (request.start..request.start + request.count).rev() {
                        self.answer(i, h, false);
                    }
                }
                Op::End(r) => {
                    if self.issued.is_empty() {
                        return;
                    }
                    let i = r.index(self.issued.len());
                    let id = self.issued[i].request.id;
                    assert_eq!(self.s.on_end(id), self.issued[i].live, "end of {id}");
                    self.kill(id);
                }
                Op::Offer(from, h, wrong) => self.offer(from, h, wrong),
                Op::Target(t) => {
                    self.s.set_target(t);
                    self.target = self.target.max(Some(t));
                }
                Op::Ready => self.ready(),
            }
            self.check();
        }

        fn wait(&mut self, by: Duration) {
            let due_at = self.s.poll_timeout();
            self.now += by;
            let out = self.s.handle_timeout(self.now);
            if !out.is_empty() {
                assert!(
                    due_at.is_some_and(|t| t <= self.now),
                    "{out:?} before {due_at:?}"
                );
            }
            let due: BTreeSet<RequestId> = self
                .issued
                .iter()
                .filter(|i| i.live && self.now >= i.at + self.config.timeout)
                .map(|i| i.request.id)
                .collect();
            let ids: BTreeSet<RequestId> = out.iter().map(|a| a.id).collect();
            assert_eq!(ids.len(), out.len(), "abandoned twice: {out:?}");
            assert!(ids.is_superset(&due), "late {due:?}, abandoned {ids:?}");
            assert!(ids.len() <= due.len() + 1, "one stolen at most: {ids:?}");
            for a in out {
                let issued = &self.issued[a.id as usize];
                assert!(issued.live, "{a:?} was not live");
                assert_eq!(issued.request.peer, a.peer);
                self.kill(a.id);
            }
        }

        fn poll(&mut self) {
            loop {
                let over = self.s.held_bytes() >= self.config.max_held_bytes;
                let lowest = self.held.keys().next().copied();
                let Some(r) = self.s.poll_request(self.now) else {
                    return;
                };
                let end = r.start + r.count - 1;
                assert_eq!(r.id as usize, self.issued.len(), "ids in order");
                assert!(r.count >= 1 && r.count <= self.config.range, "{r:?}");
                assert!(r.start >= self.next, "{r:?} below {}", self.next);
                let limit = u64::from(self.next) + u64::from(self.config.window);
                assert!(u64::from(end) < limit, "{r:?} beyond the window");
                assert!(Some(end) <= self.target, "{r:?} beyond {:?}", self.target);
                let height = *self.peers.get(&r.peer).expect("a known peer");
                assert!(end <= height, "{r:?} beyond its peer's {height}");
                assert!(
                    (self.live(r.peer) as u32) < self.config.per_peer,
                    "{r:?}: too many for its peer"
                );
                for h in r.start..=end {
                    assert!(!self.held.contains_key(&h), "{r:?}: {h} is held");
                    assert!(!self.covered(h), "{r:?}: {h} is asked already");
                }
                if let (true, Some(low)) = (over, lowest) {
                    assert!(end < low, "{r:?} over the byte bound, above {low}");
                }
                // The hashes of the heights whose headers are known.
                let want: Vec<Option<UInt256>> = (r.start..=end)
                    .map(|h| (h < self.headers).then(|| chains().0[h as usize].hash()))
                    .collect();
                assert_eq!(r.hashes, want);
                // Never the same peer twice for a range while another peer
                // that has its heights has not tried it: then a new round.
                let again = (r.start..=end)
                    .any(|h| self.tried.get(&h).is_some_and(|t| t.contains(&r.peer)));
                if again {
                    let untried = self.peers.iter().find(|&(&q, &qh)| {
                        qh >= end
                            && (r.start..=end)
                                .all(|h| self.tried.get(&h).is_none_or(|t| !t.contains(&q)))
                    });
                    assert_eq!(untried, None, "{r:?} again while another has not tried it");
                    for h in r.start..=end {
                        self.tried.insert(h, HashSet::from([r.peer]));
                    }
                } else {
                    for h in r.start..=end {
                        self.tried.entry(h).or_default().insert(r.peer);
                    }
                }
                self.issued.push(Issued {
                    request: r,
                    at: self.now,
                    live: true,
                    got: BTreeSet::new(),
                });
            }
        }

        fn answer(&mut self, i: usize, h: u32, wrong: bool) {
            let Issued { request, live, .. } = &self.issued[i];
            let (id, peer, live) = (request.id, request.peer, *live);
            let arrival = self.s.on_block(id, Self::block(h, wrong), self.now);
            if !live || h < self.next || self.held.contains_key(&h) {
                assert_eq!(arrival, Arrival::Stale, "{h} for {id}");
                return;
            }
            if wrong && h < self.headers {
                return self.bad(&arrival, peer);
            }
            if self.too_heavy(h, wrong) {
                assert_eq!(
                    arrival,
                    Arrival::Stale,
                    "{h} for {id}, over twice the bytes"
                );
                return;
            }
            assert_eq!(arrival, Arrival::Kept, "{h} for {id}");
            self.keep(h, peer, id, wrong);
            let issued = &mut self.issued[i];
            issued.got.insert(h);
            if issued.got.len() == issued.request.count as usize {
                issued.live = false;
            }
        }

        fn offer(&mut self, from: PeerId, h: u32, wrong: bool) {
            let arrival = self.s.offer(Self::block(h, wrong), from);
            let limit = u64::from(self.next) + u64::from(self.config.window);
            if h < self.next
                || self.held.contains_key(&h)
                || u64::from(h) >= limit
                || self.covered(h)
            {
                assert_eq!(arrival, Arrival::Stale, "offer of {h}");
                return;
            }
            if wrong && h < self.headers {
                return self.bad(&arrival, from);
            }
            if self.too_heavy(h, wrong) {
                assert_eq!(
                    arrival,
                    Arrival::Stale,
                    "offer of {h}, over twice the bytes"
                );
                return;
            }
            assert_eq!(arrival, Arrival::Kept, "offer of {h}");
            self.keep(h, from, RequestId::MAX, wrong);
            self.target = self.target.max(Some(h));
        }

        fn ready(&mut self) {
            while let Some(ready) = self.s.poll_ready() {
                let held = self
                    .held
                    .remove(&self.next)
                    .expect("only a held block is handed out");
                match ready {
                    Ready::Block { block, from } => {
                        assert!(!held.wrong, "a block of the other chain handed out");
                        assert_eq!(block.hash(), chains().0[self.next as usize].hash());
                        assert_eq!(from, held.from);
                        self.next += 1;
                    }
                    Ready::Fault { peer, index, .. } => {
                        assert!(held.wrong, "an honest block refused at {index}");
                        assert_eq!((peer, index), (held.from, self.next));
                        let live = self
                            .issued
                            .get(held.request as usize)
                            .is_some_and(|i| i.live);
                        if !live {
                            self.tried.insert(index, HashSet::from([peer]));
                        }
                        self.drop_peer(peer);
                    }
                }
            }
        }

        fn check(&self) {
            let s = &self.s;
            assert_eq!(s.next_index(), u64::from(self.next));
            assert_eq!(s.target(), self.target.or(Some(0)));
            assert_eq!(s.held(), self.held.len());
            assert!(s.held() <= self.config.window as usize);
            let bytes: usize = self.held.values().map(|h| h.size).sum();
            assert_eq!(s.held_bytes(), bytes);
            // Twice the bound and the next block, whatever was sent.
            let largest = self.held.values().map(|h| h.size).max().unwrap_or(0);
            let hard = self.config.max_held_bytes.saturating_mul(2);
            assert!(bytes <= hard.saturating_add(largest), "{bytes} bytes held");
            if let Some((&top, _)) = self.held.last_key_value() {
                let limit = u64::from(self.next) + u64::from(self.config.window);
                assert!(u64::from(top) < limit, "{top} held beyond the window");
            }
            let live = self.issued.iter().filter(|i| i.live).count();
            assert_eq!(s.in_flight(), live);
            for i in self.issued.iter().filter(|i| i.live) {
                assert_eq!(s.request_peer(i.request.id), Some(i.request.peer));
            }
            for &peer in self.peers.keys() {
                assert!(self.live(peer) as u32 <= self.config.per_peer);
            }
        }

        /// An honest peer that has every height joins and answers every
        /// request of its own at once; the others answer theirs too when
        /// `all`, and else never (their requests time out or are taken
        /// from them). The download must end within a bounded number of
        /// rounds.
        fn finish(&mut self, all: bool) {
            self.step(&Op::Join(HONEST, CHAIN - 1));
            let rounds = 8 * CHAIN + 40;
            for _ in 0..rounds {
                self.step(&Op::Ready);
                if self.s.is_done() {
                    break;
                }
                self.step(&Op::Poll);
                let live: Vec<usize> = (0..self.issued.len())
                    .filter(|&i| self.issued[i].live)
                    .filter(|&i| all || self.issued[i].request.peer == HONEST)
                    .collect();
                for i in live {
                    let request = self.issued[i].request.clone();
                    for h in request.start..request.start + request.count {
                        self.answer(i, h, false);
                        // As the driver: what is ready goes out at once.
                        self.step(&Op::Ready);
                    }
                    if self.issued[i].live {
                        // Its answers ended short of it (blocks dropped over
                        // twice the byte bound): the driver ends it.
                        assert!(self.s.on_end(request.id));
                        self.kill(request.id);
                    }
                    self.check();
                }
                self.step(&Op::Wait(if all { 1 } else { 2_500 }));
            }
            assert!(
                self.s.is_done(),
                "not done after {rounds} rounds: {:?}",
                self.s
            );
            assert_eq!(Some(self.next - 1), self.target.max(Some(0)));
            assert_eq!((self.s.held(), self.s.held_bytes()), (0, 0));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_schedule_keeps_its_promises_under_any_events(
            (config, target, headers) in settings(),
            ops in proptest::collection::vec(op(), 1..120),
            all in any::<bool>(),
        ) {
            let mut m = Model::new(config, target, headers);
            m.check();
            for op in &ops {
                m.step(op);
            }
            m.finish(all);
        }
    }
}
