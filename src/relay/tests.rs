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
        retry_rtts: 0,
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
        retry_rtts: 0,
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

#[test]
fn a_late_request_lets_the_next_announcer_be_asked_too() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut t = tracker(TrackerConfig::default());
    t.add_peer(1, FAST);
    t.add_peer(2, SLOW);
    t.add_peer(3, SLOW);
    t.announced(t0, 1, 0, h(1));
    t.announced(t0, 2, 0, h(1));
    assert_eq!(peers_of(&t.poll_requests(t0)), vec![1]);
    // Peer 1's round trip is 1 ms: the floor, 200 ms, applies.
    assert_eq!(t.poll_timeout(), Some(t0 + ms(200)));
    assert!(t.poll_requests(t0 + ms(199)).is_empty(), "not late yet");
    assert_eq!(peers_of(&t.poll_requests(t0 + ms(200))), vec![2]);
    assert_eq!(t.in_flight_peers(&h(1)), vec![1, 2]);
    assert_eq!(t.stats().retries, 1);
    // Never a third request at once, however late both are.
    t.announced(t0 + ms(300), 3, 0, h(1));
    assert!(t.poll_requests(t0 + ms(4000)).is_empty());
    t.check();
    // The first answer is the delivery; the other one, a duplicate.
    assert_eq!(t.delivered(1, h(1)), Delivery::Requested);
    assert_eq!(t.delivered(2, h(1)), Delivery::Duplicate);
    assert_eq!((t.in_flight_to(1), t.in_flight_to(2)), (0, 0));
    assert_eq!(t.poll_timeout(), None);
    assert_eq!(t.stats().timeouts, 0);
    t.check();
}

#[test]
fn an_announcer_arriving_after_the_retry_delay_is_asked_at_once() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut t = tracker(TrackerConfig::default());
    t.add_peer(1, SLOW);
    t.add_peer(2, FAST);
    t.announced(t0, 1, 0, h(1));
    assert_eq!(peers_of(&t.poll_requests(t0)), vec![1]);
    // 4 round trips of 90 ms; nobody else to ask then.
    assert_eq!(t.poll_timeout(), Some(t0 + ms(360)));
    assert!(t.poll_requests(t0 + ms(360)).is_empty());
    assert_eq!(t.poll_timeout(), Some(t0 + REQUEST_TIMEOUT));
    t.announced(t0 + ms(500), 2, 0, h(1));
    assert_eq!(peers_of(&t.poll_requests(t0 + ms(500))), vec![2]);
    // An announcer that comes before the delay waits for it.
    t.announced(t0, 1, 0, h(2));
    t.announced(t0, 2, 0, h(3));
    let asked: Vec<(PeerId, UInt256)> = t
        .poll_requests(t0 + ms(600))
        .iter()
        .map(|r| (r.peer, r.hash))
        .collect();
    assert_eq!(asked, vec![(1, h(2)), (2, h(3))]);
    t.announced(t0 + ms(700), 2, 0, h(2));
    t.announced(t0 + ms(700), 1, 0, h(3));
    assert!(t.poll_requests(t0 + ms(799)).is_empty());
    let late = |t: &mut RequestTracker<u8>, at| -> Vec<(PeerId, UInt256)> {
        t.poll_requests(at)
            .iter()
            .map(|r| (r.peer, r.hash))
            .collect()
    };
    assert_eq!(
        late(&mut t, t0 + ms(800)),
        vec![(1, h(3))],
        "2 is late at 600 + 200 ms"
    );
    assert!(t.poll_requests(t0 + ms(959)).is_empty());
    assert_eq!(
        late(&mut t, t0 + ms(960)),
        vec![(2, h(2))],
        "1 is late at 600 + 360 ms"
    );
    t.check();
}

#[test]
fn when_one_of_two_requests_fails_the_other_keeps_its_own_retry_time() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut t = tracker(TrackerConfig::default());
    for p in [1, 2, 3] {
        t.add_peer(p, SLOW);
        t.announced(t0, p, 0, h(1));
    }
    assert_eq!(peers_of(&t.poll_requests(t0)), vec![1]);
    assert_eq!(peers_of(&t.poll_requests(t0 + ms(360))), vec![2]);
    // 1 answers notfound: 2 alone is outstanding, not late until 720 ms.
    t.not_found(1, h(1));
    assert!(t.poll_requests(t0 + ms(400)).is_empty());
    assert_eq!(t.poll_timeout(), Some(t0 + ms(720)));
    assert_eq!(peers_of(&t.poll_requests(t0 + ms(720))), vec![3]);
    // Both time out: nobody is left, the item is given up.
    assert!(t.poll_requests(t0 + ms(360) + REQUEST_TIMEOUT).is_empty());
    assert!(t.is_tracked(&h(1)), "3 is still asked");
    assert!(t.poll_requests(t0 + ms(720) + REQUEST_TIMEOUT).is_empty());
    assert!(!t.is_tracked(&h(1)));
    let s = t.stats();
    assert_eq!(
        (s.requests, s.retries, s.timeouts, s.not_found),
        (3, 2, 2, 1)
    );
    t.check();
}

#[test]
fn the_retry_delay_is_bounded_by_the_deadline_and_can_be_turned_off() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let c = TrackerConfig::default();
    assert_eq!(c.retry_delay(Some(ms(0))), RETRY_MIN);
    assert_eq!(c.retry_delay(Some(ms(90))), ms(360));
    assert_eq!(c.retry_delay(None), RETRY_UNKNOWN_RTT);
    assert_eq!(c.retry_delay(Some(Duration::MAX)), REQUEST_TIMEOUT);
    for config in [
        TrackerConfig {
            retry_rtts: 0,
            ..TrackerConfig::default()
        },
        TrackerConfig {
            request_timeout: ms(300),
            ..TrackerConfig::default()
        },
    ] {
        let timeout = config.request_timeout;
        let mut t = tracker(config);
        t.add_peer(1, SLOW);
        t.add_peer(2, SLOW);
        t.announced(t0, 1, 0, h(1));
        t.announced(t0, 2, 0, h(1));
        assert_eq!(peers_of(&t.poll_requests(t0)), vec![1]);
        assert_eq!(t.poll_timeout(), Some(t0 + timeout), "no early retry");
        assert!(t.poll_requests(t0 + timeout - ms(1)).is_empty());
        assert_eq!(peers_of(&t.poll_requests(t0 + timeout)), vec![2]);
        assert_eq!(t.in_flight_peers(&h(1)), vec![2]);
        assert_eq!(t.stats().retries, 0);
        t.check();
    }
}

#[test]
fn a_late_request_to_a_peer_that_leaves_is_replaced() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut t = tracker(TrackerConfig::default());
    for p in [1, 2, 3] {
        t.add_peer(p, FAST);
        t.announced(t0, p, 0, h(1));
    }
    t.poll_requests(t0);
    assert_eq!(peers_of(&t.poll_requests(t0 + ms(200))), vec![2]);
    // 1 was late already: when it leaves, 2 is alone and not late.
    t.remove_peer(1);
    assert!(t.poll_requests(t0 + ms(300)).is_empty());
    assert_eq!(peers_of(&t.poll_requests(t0 + ms(400))), vec![3]);
    t.remove_peer(2);
    t.remove_peer(3);
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
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

/// A request as the model sees it.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    peer: PeerId,
    retry_at: Instant,
    deadline: Instant,
}

/// What the requests issued so far imply, checked against what the tracker
/// does next.
#[derive(Default)]
struct Model {
    /// Per item: the peers asked now, oldest first.
    outstanding: HashMap<UInt256, Vec<Outstanding>>,
    /// Each connected peer's round trip.
    rtts: HashMap<PeerId, Option<Duration>>,
    /// Per item: every peer asked while the item was tracked.
    asked: HashMap<UInt256, HashSet<PeerId>>,
    /// Per item: the peers whose announcement of it was accepted.
    announcers: HashMap<UInt256, HashSet<PeerId>>,
    /// Per item: the peers that answered `notfound` for it.
    excused: HashMap<UInt256, HashSet<PeerId>>,
}

impl Model {
    /// Records the requests of one poll at `now`, checking that an item
    /// gets a second request only when the first is late, never a third,
    /// and never asks a peer twice.
    fn requested(
        &mut self,
        requests: Vec<Request<u8>>,
        now: Instant,
        config: &TrackerConfig,
    ) -> Result<(), TestCaseError> {
        for r in requests {
            let out = self.outstanding.entry(r.hash).or_default();
            prop_assert!(out.len() < MAX_ASKED_PER_ITEM, "a third request at once");
            if let Some(first) = out.first() {
                prop_assert!(
                    now >= first.retry_at,
                    "a second request before the first is late"
                );
            }
            let asked = self.asked.entry(r.hash).or_default();
            prop_assert!(
                asked.insert(r.peer),
                "the same peer asked twice for one item"
            );
            let rtt = self.rtts.get(&r.peer).copied().flatten();
            out.push(Outstanding {
                peer: r.peer,
                retry_at: now + config.retry_delay(rtt),
                deadline: now + config.request_timeout,
            });
        }
        Ok(())
    }

    /// Ends the requests whose deadline is `now` or earlier.
    fn expire(&mut self, now: Instant) {
        for out in self.outstanding.values_mut() {
            out.retain(|r| r.deadline > now);
        }
        self.outstanding.retain(|_, out| !out.is_empty());
    }

    /// Ends the requests of `hash` to `peer`.
    fn end(&mut self, hash: &UInt256, peer: PeerId) {
        if let Some(out) = self.outstanding.get_mut(hash) {
            out.retain(|r| r.peer != peer);
            if out.is_empty() {
                self.outstanding.remove(hash);
            }
        }
    }

    /// Forgets what the tracker forgot: a request it dropped (given up,
    /// forgotten) is no longer outstanding, and the next tracking of an item
    /// starts afresh.
    fn sync(&mut self, t: &RequestTracker<u8>) {
        for (hash, out) in self.outstanding.iter_mut() {
            let now = t.in_flight_peers(hash);
            out.retain(|r| now.contains(&r.peer));
        }
        self.outstanding.retain(|_, out| !out.is_empty());
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
            retry_rtts: 4,
            retry_min: Duration::from_millis(100),
            retry_unknown_rtt: Duration::from_millis(300),
        };
        let mut t: RequestTracker<u8> = RequestTracker::new(config.clone());
        let mut now = Instant::now();
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Connect(p, preferred, rtt) => {
                    // 40, 80, 120 ms: the retry delay is 160 to 480 ms;
                    // unknown: 300 ms.
                    let rtt = (rtt > 0).then(|| Duration::from_millis(40 * u64::from(rtt)));
                    t.add_peer(p.into(), Rank { preferred, rtt });
                    m.rtts.insert(p.into(), rtt);
                }
                Op::Disconnect(p) => {
                    t.remove_peer(p.into());
                    m.rtts.remove(&PeerId::from(p));
                    for out in m.outstanding.values_mut() {
                        out.retain(|r| r.peer != PeerId::from(p));
                    }
                    m.outstanding.retain(|_, out| !out.is_empty());
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
                    let asked = m
                        .outstanding
                        .get(&hash)
                        .is_some_and(|out| out.iter().any(|r| r.peer == PeerId::from(p)));
                    let got = t.delivered(p.into(), hash);
                    if asked {
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
                    m.end(&hash, p.into());
                }
                Op::Have(i) => {
                    t.have(h(i.into()));
                    m.outstanding.remove(&h(i.into()));
                }
                Op::Advance(ms) => now += Duration::from_millis(ms.into()),
            }
            // Requests whose deadline passed end at this poll.
            m.expire(now);
            let requests = t.poll_requests(now);
            m.requested(requests, now, &config)?;
            m.sync(&t);
            for (hash, out) in &m.outstanding {
                let peers: Vec<PeerId> = out.iter().map(|r| r.peer).collect();
                prop_assert_eq!(t.in_flight_peers(hash), peers);
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
            m.expire(now);
            let requests = t.poll_requests(now);
            m.requested(requests, now, &config)?;
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
