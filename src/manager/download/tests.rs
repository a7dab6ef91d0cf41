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

#[test]
fn past_the_held_bytes_only_the_gaps_below_what_is_held_are_asked() {
    let blocks = chain(40, 0);
    let t0 = Instant::now();
    let size = blocks[1].wire_size();
    // Room for about two blocks held out of order.
    let config = ScheduleConfig {
        max_held_bytes: 2 * size,
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
    answer(&mut s, &blocks, &again[0], t1);
    assert_eq!(ready(&mut s).len(), 8);
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
