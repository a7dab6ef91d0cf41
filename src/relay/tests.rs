//! The tracker's rules with made-up instants, and its invariants under any
//! sequence of events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::wire::UInt256;

fn h(n: u32) -> UInt256 {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_le_bytes());
    UInt256(b)
}

const FAST: Rank = Rank {
    preferred: true,
    rtt: Some(Duration::from_millis(1)),
};
const SLOW: Rank = Rank {
    preferred: true,
    rtt: Some(Duration::from_millis(90)),
};
const INBOUND: Rank = Rank {
    preferred: false,
    rtt: Some(Duration::from_millis(1)),
};

fn tracker(config: TrackerConfig) -> RequestTracker<u8> {
    RequestTracker::new(config)
}

fn peers_of(requests: &[Request<u8>]) -> Vec<PeerId> {
    requests.iter().map(|r| r.peer).collect()
}

#[test]
fn asks_one_peer_at_a_time_best_ranked_first() {
    let t0 = Instant::now();
    let mut t = tracker(TrackerConfig::default());
    t.add_peer(1, INBOUND);
    t.add_peer(2, SLOW);
    t.add_peer(3, FAST);
    for p in [1, 2, 3] {
        t.announced(t0, p, 0, h(1));
    }
    let asked = t.poll_requests(t0);
    assert_eq!(peers_of(&asked), vec![3], "preferred, then fastest");
    assert!(t.poll_requests(t0).is_empty(), "one request in flight");
    t.not_found(3, h(1));
    assert_eq!(peers_of(&t.poll_requests(t0)), vec![2]);
    t.remove_peer(2);
    assert_eq!(
        peers_of(&t.poll_requests(t0)),
        vec![1],
        "then the inbound peer"
    );
    assert_eq!(t.delivered(1, h(1)), Delivery::Requested);
    assert!(!t.is_tracked(&h(1)));
    t.check();
}

#[test]
fn a_missed_deadline_moves_on_and_never_asks_the_same_peer_again() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(2);
    let mut t = tracker(TrackerConfig {
        request_timeout: timeout,
        ..TrackerConfig::default()
    });
    t.add_peer(1, FAST);
    t.add_peer(2, SLOW);
    t.announced(t0, 1, 0, h(7));
    assert_eq!(peers_of(&t.poll_requests(t0)), vec![1]);
    t.announced(t0, 2, 0, h(7));
    assert!(t.poll_requests(t0).is_empty());
    assert_eq!(t.poll_timeout(), Some(t0 + timeout));
    assert!(
        t.poll_requests(t0 + timeout - Duration::from_millis(1))
            .is_empty()
    );
    assert_eq!(peers_of(&t.poll_requests(t0 + timeout)), vec![2]);
    assert_eq!(t.announced(t0, 1, 0, h(7)), Announce::Repeated);
    assert!(
        t.poll_requests(t0 + timeout * 2).is_empty(),
        "1 is not asked again"
    );
    assert!(!t.is_tracked(&h(7)), "every announcer failed: given up");
    assert_eq!(t.stats().timeouts, 2);
    assert_eq!(t.stats().given_up, 1);
    // The late answer of peer 1 is still welcome: the item is new to us.
    assert_eq!(t.delivered(1, h(7)), Delivery::Unrequested);
    assert_eq!(t.delivered(2, h(7)), Delivery::Duplicate);
    t.check();
}

#[test]
fn a_delivery_from_another_peer_releases_the_request() {
    let t0 = Instant::now();
    let mut t = tracker(TrackerConfig::default());
    t.add_peer(1, FAST);
    t.add_peer(2, FAST);
    t.announced(t0, 1, 0, h(1));
    t.poll_requests(t0);
    assert_eq!(t.in_flight_to(1), 1);
    assert_eq!(t.delivered(2, h(1)), Delivery::Unrequested);
    assert_eq!(t.in_flight_to(1), 0);
    assert_eq!(t.announced(t0, 2, 0, h(1)), Announce::Delivered);
    assert!(t.poll_requests(t0).is_empty());
    assert_eq!(t.poll_timeout(), None);
    t.check();
}

#[test]
fn non_preferred_announcers_wait_for_the_configured_delay() {
    let t0 = Instant::now();
    let delay = Duration::from_secs(2);
    let mut t = tracker(TrackerConfig {
        non_preferred_delay: delay,
        ..TrackerConfig::default()
    });
    t.add_peer(1, INBOUND);
    t.add_peer(2, SLOW);
    t.announced(t0, 1, 0, h(1));
    assert!(t.poll_requests(t0).is_empty());
    assert_eq!(t.poll_timeout(), Some(t0 + delay));
    // A preferred announcer meanwhile is asked at once.
    t.announced(t0 + Duration::from_secs(1), 2, 0, h(1));
    assert_eq!(
        peers_of(&t.poll_requests(t0 + Duration::from_secs(1))),
        vec![2]
    );
    // The inbound one only after the delay, and only if 2 fails.
    t.announced(t0, 1, 0, h(2));
    assert_eq!(peers_of(&t.poll_requests(t0 + delay)), vec![1]);
    t.not_found(2, h(1));
    assert_eq!(peers_of(&t.poll_requests(t0 + delay)), vec![1]);
    t.check();
}

#[test]
fn a_full_peer_parks_items_until_a_slot_frees() {
    let t0 = Instant::now();
    let mut t = tracker(TrackerConfig {
        max_in_flight_per_peer: 2,
        ..TrackerConfig::default()
    });
    t.add_peer(1, FAST);
    for n in 0..5 {
        t.announced(t0, 1, 0, h(n));
    }
    assert_eq!(t.poll_requests(t0).len(), 2);
    assert_eq!(t.in_flight_to(1), 2);
    t.delivered(1, h(0));
    t.not_found(1, h(1));
    let next: Vec<UInt256> = t.poll_requests(t0).iter().map(|r| r.hash).collect();
    assert_eq!(
        next,
        vec![h(2), h(3)],
        "oldest parked first, as many as slots"
    );
    // A second peer with free slots takes what the full one cannot.
    t.add_peer(2, SLOW);
    t.announced(t0, 2, 0, h(4));
    assert_eq!(peers_of(&t.poll_requests(t0)), vec![2]);
    t.check();
}

#[test]
fn a_flood_is_refused_and_named_and_costs_no_memory() {
    let t0 = Instant::now();
    let mut t = tracker(TrackerConfig {
        max_announced_per_peer: 10,
        max_items: 15,
        ..TrackerConfig::default()
    });
    t.add_peer(1, INBOUND);
    t.add_peer(2, INBOUND);
    for n in 0..10 {
        assert_eq!(t.announced(t0, 1, 0, h(n)), Announce::New);
    }
    let verdict = t.announced(t0, 1, 0, h(10));
    assert!(verdict.is_flood());
    assert_eq!(t.announced_by(1), 10);
    for n in 100..105 {
        assert_eq!(t.announced(t0, 2, 0, h(n)), Announce::New);
    }
    assert_eq!(t.announced(t0, 2, 0, h(105)), Announce::Full);
    assert_eq!(
        t.announced(t0, 2, 0, h(0)),
        Announce::Added,
        "known items still join"
    );
    assert_eq!(t.len(), 15);
    assert_eq!(t.announced(t0, 9, 0, h(0)), Announce::UnknownPeer);
    let s = t.stats();
    assert_eq!((s.floods, s.full), (1, 1));
    // Delivered items free the flooder's quota.
    t.poll_requests(t0);
    t.delivered(1, h(1));
    assert_eq!(t.announced(t0, 1, 0, h(11)), Announce::New);
    t.check();
}

#[test]
fn have_drops_tracking_and_ignores_later_announcements() {
    let t0 = Instant::now();
    let mut t = tracker(TrackerConfig::default());
    t.add_peer(1, FAST);
    t.announced(t0, 1, 0, h(1));
    t.poll_requests(t0);
    t.have(h(1));
    assert_eq!(t.in_flight_to(1), 0);
    assert_eq!(t.announced(t0, 1, 0, h(1)), Announce::Delivered);
    assert_eq!(t.delivered(1, h(1)), Delivery::Duplicate);
    t.check();
}

#[test]
fn disconnecting_the_last_announcer_forgets_the_item() {
    let t0 = Instant::now();
    let mut t = tracker(TrackerConfig::default());
    t.add_peer(1, FAST);
    t.announced(t0, 1, 0, h(1));
    t.poll_requests(t0);
    t.remove_peer(1);
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
    t.check();
}

#[test]
fn a_flood_of_announcements_is_bounded_per_peer_and_in_total() {
    let t0 = Instant::now();
    let mut t = tracker(TrackerConfig::default());
    let (mut floods, mut full) = (0u64, 0u64);
    for p in 0..30u64 {
        t.add_peer(p, INBOUND);
        for n in 0..6000u32 {
            match t.announced(t0, p, 0, h(p as u32 * 10_000 + n)) {
                Announce::Flood => floods += 1,
                Announce::Full => full += 1,
                verdict => assert_eq!(verdict, Announce::New),
            }
        }
    }
    // 20 peers fill the tracker, 1000 announcements over quota each; the
    // other 10 find it full.
    assert_eq!(t.len(), MAX_ITEMS);
    assert_eq!((floods, full), (20 * 1000, 10 * 6000));
    assert_eq!((t.stats().floods, t.stats().full), (floods, full));
    let asked = t.poll_requests(t0);
    assert_eq!(asked.len(), 20 * MAX_IN_FLIGHT_PER_PEER);
    for p in 0..20u64 {
        assert_eq!(t.announced_by(p), MAX_ANNOUNCED_PER_PEER);
        assert_eq!(t.in_flight_to(p), MAX_IN_FLIGHT_PER_PEER);
    }
    // Polling again and again costs no memory: each parked item is parked
    // once.
    for _ in 0..3 {
        assert!(t.poll_requests(t0).is_empty());
    }
    t.check();
}

/// One thing that can happen to a tracker.
#[derive(Debug, Clone)]
enum Op {
    Connect(u8, bool, u8),
    Disconnect(u8),
    Announce(u8, u8),
    Deliver(u8, u8),
    NotFound(u8, u8),
    Have(u8),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..6u8, any::<bool>(), 0..4u8).prop_map(|(p, pref, rtt)| Op::Connect(p, pref, rtt)),
        1 => (0..6u8).prop_map(Op::Disconnect),
        8 => (0..6u8, 0..24u8).prop_map(|(p, i)| Op::Announce(p, i)),
        3 => (0..6u8, 0..24u8).prop_map(|(p, i)| Op::Deliver(p, i)),
        3 => (0..6u8, 0..24u8).prop_map(|(p, i)| Op::NotFound(p, i)),
        1 => (0..24u8).prop_map(Op::Have),
        3 => (0..3000u16).prop_map(Op::Advance),
    ]
}

/// What the requests issued so far imply, checked against what the tracker
/// does next.
#[derive(Default)]
struct Model {
    /// Per item: the peer asked now and its deadline.
    outstanding: HashMap<UInt256, (PeerId, Instant)>,
    /// Per item: every peer asked while the item was tracked.
    asked: HashMap<UInt256, HashSet<PeerId>>,
    /// Per item: the peers whose announcement of it was accepted.
    announcers: HashMap<UInt256, HashSet<PeerId>>,
    /// Per item: the peers that answered `notfound` for it.
    excused: HashMap<UInt256, HashSet<PeerId>>,
}

impl Model {
    /// Records the requests of one poll, checking that none is a second
    /// request in flight for an item or asks a peer twice for one item.
    fn requested(
        &mut self,
        requests: Vec<Request<u8>>,
        deadline: Instant,
    ) -> Result<(), TestCaseError> {
        for r in requests {
            prop_assert!(
                !self.outstanding.contains_key(&r.hash),
                "a second request in flight for one item"
            );
            let asked = self.asked.entry(r.hash).or_default();
            prop_assert!(
                asked.insert(r.peer),
                "the same peer asked twice for one item"
            );
            self.outstanding.insert(r.hash, (r.peer, deadline));
        }
        Ok(())
    }

    /// Forgets what the tracker forgot: a request it dropped (given up,
    /// forgotten) is no longer outstanding, and the next tracking of an item
    /// starts afresh.
    fn sync(&mut self, t: &RequestTracker<u8>) {
        self.outstanding
            .retain(|hash, (peer, _)| t.in_flight(hash) == Some(*peer));
        self.asked.retain(|hash, _| t.is_tracked(hash));
        self.announcers.retain(|hash, _| t.is_tracked(hash));
        self.excused.retain(|hash, _| t.is_tracked(hash));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..200)) {
        let config = TrackerConfig {
            max_in_flight_per_peer: 3,
            max_announced_per_peer: 8,
            max_items: 16,
            request_timeout: Duration::from_secs(2),
            non_preferred_delay: Duration::from_millis(500),
            remember_delivered: 6,
        };
        let mut t: RequestTracker<u8> = RequestTracker::new(config.clone());
        let mut now = Instant::now();
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Connect(p, preferred, rtt) => t.add_peer(p.into(), Rank {
                    preferred,
                    rtt: (rtt > 0).then(|| Duration::from_millis(rtt.into())),
                }),
                Op::Disconnect(p) => {
                    t.remove_peer(p.into());
                    m.outstanding.retain(|_, (q, _)| *q != PeerId::from(p));
                    // Peer numbers are never reused: one that connects again
                    // under this number is another peer.
                    for asked in m.asked.values_mut() {
                        asked.remove(&PeerId::from(p));
                    }
                    for announcers in m.announcers.values_mut() {
                        announcers.remove(&PeerId::from(p));
                    }
                    for excused in m.excused.values_mut() {
                        excused.remove(&PeerId::from(p));
                    }
                }
                Op::Announce(p, i) => {
                    let hash = h(i.into());
                    let verdict = t.announced(now, p.into(), 0, hash);
                    if verdict == Announce::Flood {
                        prop_assert_eq!(t.announced_by(p.into()), config.max_announced_per_peer);
                    }
                    if matches!(verdict, Announce::New | Announce::Added) {
                        m.announcers.entry(hash).or_default().insert(p.into());
                    }
                }
                Op::Deliver(p, i) => {
                    let hash = h(i.into());
                    let expected = m.outstanding.get(&hash).map(|(q, _)| *q);
                    let got = t.delivered(p.into(), hash);
                    if expected == Some(p.into()) {
                        prop_assert_eq!(got, Delivery::Requested);
                    }
                    m.outstanding.remove(&hash);
                }
                Op::NotFound(p, i) => {
                    let hash = h(i.into());
                    t.not_found(p.into(), hash);
                    if t.is_tracked(&hash) {
                        m.excused.entry(hash).or_default().insert(p.into());
                    }
                    if m.outstanding.get(&hash).is_some_and(|(q, _)| *q == PeerId::from(p)) {
                        m.outstanding.remove(&hash);
                    }
                }
                Op::Have(i) => {
                    t.have(h(i.into()));
                    m.outstanding.remove(&h(i.into()));
                }
                Op::Advance(ms) => now += Duration::from_millis(ms.into()),
            }
            // Requests whose deadline passed end at this poll.
            m.outstanding.retain(|_, (_, deadline)| *deadline > now);
            let requests = t.poll_requests(now);
            m.requested(requests, now + config.request_timeout)?;
            m.sync(&t);
            for hash in m.outstanding.keys() {
                prop_assert!(t.in_flight(hash).is_some());
            }
            prop_assert!(t.len() <= config.max_items);
            for p in 0..6u64 {
                prop_assert!(t.in_flight_to(p) <= config.max_in_flight_per_peer);
                prop_assert!(t.announced_by(p) <= config.max_announced_per_peer);
            }
            t.check();
        }
        // Liveness: with nothing delivered any more, time alone asks every
        // remaining announcer of every tracked item in turn, and then drops
        // the item. Every round either asks someone or ends a request, so a
        // bounded number of rounds empties the tracker.
        let step = config.request_timeout + config.non_preferred_delay;
        let mut rounds = 0;
        while !t.is_empty() {
            rounds += 1;
            prop_assert!(rounds <= 16 * 6 + 2, "the tracker does not drain");
            prop_assert!(t.poll_timeout().is_some(), "tracked items but no timer");
            let before: Vec<UInt256> = m.announcers.keys().copied().collect();
            now += step;
            m.outstanding.retain(|_, (_, deadline)| *deadline > now);
            let requests = t.poll_requests(now);
            m.requested(requests, now + config.request_timeout)?;
            for hash in before {
                if t.is_tracked(&hash) {
                    continue;
                }
                let asked = m.asked.get(&hash).cloned().unwrap_or_default();
                let excused = m.excused.get(&hash).cloned().unwrap_or_default();
                for peer in &m.announcers[&hash] {
                    prop_assert!(
                        asked.contains(peer) || excused.contains(peer),
                        "an item dropped before its announcer {} was asked", peer
                    );
                }
            }
            m.sync(&t);
            t.check();
        }
        prop_assert_eq!(t.poll_timeout(), None);
    }
}
