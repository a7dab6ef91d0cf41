//! One download per announced item.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::known::{KnownSet, PeerId};
use crate::wire::UInt256;

/// Most requests in flight to one peer (as Bitcoin Core's transaction
/// requests): a peer that does not answer holds back at most this many
/// items, each for [`REQUEST_TIMEOUT`].
pub const MAX_IN_FLIGHT_PER_PEER: usize = 100;
/// Most items one peer may have announced and not yet delivered or been
/// released from: the memory one peer can make us spend. An announcement
/// past it is a flood ([`Announce::Flood`]).
pub const MAX_ANNOUNCED_PER_PEER: usize = 5000;
/// Most items tracked at once, over all peers: the memory all peers
/// together can make us spend (a few hundred bytes per item and per
/// announcement). Announcements of new items past it are dropped
/// ([`Announce::Full`]); the announcing peer is not charged for them.
pub const MAX_ITEMS: usize = 100_000;
/// How long a peer has to deliver a requested item before the next
/// announcer is asked. A peer that announces and never delivers delays the
/// item by this much; honest answers take a round trip.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Hashes of delivered items remembered, so that announcements arriving
/// after the delivery download nothing.
pub const REMEMBER_DELIVERED: usize = 20_000;
/// Most requests outstanding for one item at once: the first one, and one
/// early retry ([`TrackerConfig::retry_delay`]) to another announcer while
/// the first is slow.
pub const MAX_ASKED_PER_ITEM: usize = 2;
/// Round trips of the asked peer after which another announcer is asked
/// too ([`TrackerConfig::retry_rtts`]).
pub const RETRY_RTTS: u32 = 4;
/// The shortest wait before another announcer is asked too
/// ([`TrackerConfig::retry_min`]).
pub const RETRY_MIN: Duration = Duration::from_millis(200);
/// The wait before another announcer is asked too, when the asked peer's
/// round trip is unknown ([`TrackerConfig::retry_unknown_rtt`]).
pub const RETRY_UNKNOWN_RTT: Duration = Duration::from_secs(1);

/// The tracker's limits and timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// [`MAX_IN_FLIGHT_PER_PEER`] by default.
    pub max_in_flight_per_peer: usize,
    /// [`MAX_ANNOUNCED_PER_PEER`] by default.
    pub max_announced_per_peer: usize,
    /// [`MAX_ITEMS`] by default.
    pub max_items: usize,
    /// [`REQUEST_TIMEOUT`] by default.
    pub request_timeout: Duration,
    /// How long an announcement by a peer that is not preferred waits
    /// before that peer may be asked, so that a preferred peer announcing
    /// the same item meanwhile is asked first. Zero by default: no delay
    /// (a relay's producers, such as validators, often dial in).
    pub non_preferred_delay: Duration,
    /// [`REMEMBER_DELIVERED`] by default.
    pub remember_delivered: usize,
    /// Early retry: a request outstanding for this many round trips of the
    /// asked peer (at least [`TrackerConfig::retry_min`]) lets the next
    /// announcer be asked too, without waiting for the deadline; see
    /// [`TrackerConfig::retry_delay`]. [`RETRY_RTTS`] by default; 0 turns
    /// early retries off (the next announcer waits for the deadline).
    pub retry_rtts: u32,
    /// The shortest early-retry delay ([`RETRY_MIN`] by default), so that a
    /// peer a few milliseconds away is not raced by every jitter.
    pub retry_min: Duration,
    /// The early-retry delay for a peer whose round trip is not measured
    /// ([`RETRY_UNKNOWN_RTT`] by default).
    pub retry_unknown_rtt: Duration,
}

impl TrackerConfig {
    /// How long a request to a peer whose round trip is `rtt` is
    /// outstanding before another announcer of the item may be asked too:
    /// `max(retry_rtts × rtt, retry_min)`, or `retry_unknown_rtt` when the
    /// round trip is unknown, and never more than `request_timeout` (when
    /// it equals the timeout, there is no early retry: the request simply
    /// times out first). With `retry_rtts` 0 it is `request_timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use neo_peer::relay::TrackerConfig;
    ///
    /// let c = TrackerConfig::default();
    /// let ms = Duration::from_millis;
    /// assert_eq!(c.retry_delay(Some(ms(20))), ms(200)); // the floor
    /// assert_eq!(c.retry_delay(Some(ms(150))), ms(600)); // 4 round trips
    /// assert_eq!(c.retry_delay(None), ms(1000));
    /// assert_eq!(c.retry_delay(Some(ms(9000))), c.request_timeout);
    /// ```
    pub fn retry_delay(&self, rtt: Option<Duration>) -> Duration {
        if self.retry_rtts == 0 {
            return self.request_timeout;
        }
        let delay = match rtt {
            Some(rtt) => rtt.saturating_mul(self.retry_rtts).max(self.retry_min),
            None => self.retry_unknown_rtt,
        };
        delay.min(self.request_timeout)
    }
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_in_flight_per_peer: MAX_IN_FLIGHT_PER_PEER,
            max_announced_per_peer: MAX_ANNOUNCED_PER_PEER,
            max_items: MAX_ITEMS,
            request_timeout: REQUEST_TIMEOUT,
            non_preferred_delay: Duration::ZERO,
            remember_delivered: REMEMBER_DELIVERED,
            retry_rtts: RETRY_RTTS,
            retry_min: RETRY_MIN,
            retry_unknown_rtt: RETRY_UNKNOWN_RTT,
        }
    }
}

/// How eagerly a peer is asked: preferred peers (outbound ones, whose
/// address we chose) first, then the fastest (lowest round trip; unknown
/// last), then the earliest announcer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rank {
    /// Asked before any peer that is not.
    pub preferred: bool,
    /// The peer's round trip, if measured.
    pub rtt: Option<Duration>,
}

impl Rank {
    /// Smaller is asked first.
    fn key(&self) -> (bool, Duration) {
        (!self.preferred, self.rtt.unwrap_or(Duration::MAX))
    }
}

/// What became of an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// A new item, now tracked.
    New,
    /// Another announcer of an item being tracked.
    Added,
    /// The peer had already announced it (it is not asked twice).
    Repeated,
    /// The item was delivered lately: nothing to download.
    Delivered,
    /// The peer has [`TrackerConfig::max_announced_per_peer`] items
    /// outstanding: the announcement is dropped, and the peer is flooding
    /// (worth misbehaviour points).
    Flood,
    /// [`TrackerConfig::max_items`] items are tracked: the announcement is
    /// dropped (not the peer's fault alone).
    Full,
    /// The peer was not added ([`RequestTracker::add_peer`]).
    UnknownPeer,
}

impl Announce {
    /// True when the announcing peer broke a limit.
    pub fn is_flood(self) -> bool {
        self == Announce::Flood
    }
}

/// How a delivered item came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It answers our request to this peer: new to us.
    Requested,
    /// Tracked or not, it was not asked of this peer, and it is new to us.
    Unrequested,
    /// It had been delivered before: a duplicate.
    Duplicate,
}

impl Delivery {
    /// True the first time an item arrives.
    pub fn is_new(self) -> bool {
        self != Delivery::Duplicate
    }
}

/// A request to send: ask `peer` for item `hash` of kind `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<K> {
    /// Whom to ask.
    pub peer: PeerId,
    /// The item's kind, as announced.
    pub kind: K,
    /// The item.
    pub hash: UInt256,
}

/// Counters since the tracker was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackerStats {
    /// Announcements accepted ([`Announce::New`] and [`Announce::Added`]).
    pub announcements: u64,
    /// Announcements of an item already tracked, repeated or delivered:
    /// each a download avoided.
    pub duplicates_avoided: u64,
    /// Announcements dropped as floods.
    pub floods: u64,
    /// Announcements dropped because the tracker was full.
    pub full: u64,
    /// Requests issued.
    pub requests: u64,
    /// Requests that reached their deadline.
    pub timeouts: u64,
    /// Requests sent while another request of the same item was
    /// outstanding, because that one had been outstanding for its retry
    /// delay ([`TrackerConfig::retry_delay`]).
    pub retries: u64,
    /// Requests answered with `notfound`.
    pub not_found: u64,
    /// Items delivered for the first time.
    pub delivered: u64,
    /// Items dropped because every announcer had been asked in vain.
    pub given_up: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// May be asked (once ready).
    Candidate,
    /// Asked: in flight now, or failed.
    Asked,
}

#[derive(Debug)]
struct Announcement {
    peer: PeerId,
    seq: u64,
    ready_at: Instant,
    state: State,
    /// Waiting in the peer's queue for a free request slot.
    parked: bool,
}

/// A request outstanding.
#[derive(Debug, Clone, Copy)]
struct Asked {
    peer: PeerId,
    /// When the next announcer may be asked too.
    retry_at: Instant,
    /// When the request fails.
    deadline: Instant,
}

#[derive(Debug)]
struct Item<K> {
    kind: K,
    announcements: Vec<Announcement>,
    /// The requests outstanding, oldest first: at most
    /// [`MAX_ASKED_PER_ITEM`].
    in_flight: Vec<Asked>,
    /// In the queue of items to assign.
    queued: bool,
}

#[derive(Debug)]
struct PeerState {
    rank: Rank,
    announced: HashSet<UInt256>,
    in_flight: usize,
    /// Items that would have asked this peer but found it full.
    parked: VecDeque<UInt256>,
}

/// Asks each announced item of one peer at a time, and the next announcer
/// when that fails.
///
/// A sans-I/O state machine: no sockets, no timers, no clock of its own.
/// Feed it what happens ([`announced`](Self::announced),
/// [`delivered`](Self::delivered), [`not_found`](Self::not_found),
/// [`remove_peer`](Self::remove_peer)), each with the time it happened where
/// time matters, then call [`poll_requests`](Self::poll_requests) for the
/// requests to send, and again at [`poll_timeout`](Self::poll_timeout).
///
/// The rules:
/// - an item is asked of one peer at a time, except while that request is
///   slow: once it has been outstanding for its retry delay
///   ([`TrackerConfig::retry_delay`]: a few round trips of that peer,
///   bounded below and by the deadline), the next announcer, if there is
///   one, is asked too. So an item has at most [`MAX_ASKED_PER_ITEM`] (2)
///   requests outstanding, and a second only when the first is late;
/// - it is asked of the best announcer that is ready and has a free request
///   slot ([`Rank`]: preferred, then fastest, then earliest);
/// - when a peer asked answers `notfound`, misses the deadline
///   ([`TrackerConfig::request_timeout`]) or disconnects, the next announcer
///   is asked (at once if no request of the item remains, else as above);
///   while an item is tracked, no peer is asked for it twice;
/// - once every announcer has been asked in vain, the item is dropped;
///   delivered items are remembered ([`TrackerConfig::remember_delivered`])
///   so that late announcements of them download nothing.
///
/// Bounds: per peer, [`TrackerConfig::max_in_flight_per_peer`] requests
/// and [`TrackerConfig::max_announced_per_peer`] outstanding announcements
/// (past it: [`Announce::Flood`], which the caller turns into misbehaviour
/// points); in total, [`TrackerConfig::max_items`] items. Every queue inside
/// holds at most one entry per announcement or item.
///
/// ```
/// use std::time::{Duration, Instant};
/// use neo_peer::relay::{Announce, Rank, RequestTracker, TrackerConfig};
/// use neo_peer::wire::UInt256;
///
/// let mut t = RequestTracker::new(TrackerConfig::default());
/// let now = Instant::now();
/// t.add_peer(1, Rank { preferred: false, rtt: None });
/// t.add_peer(2, Rank { preferred: true, rtt: Some(Duration::from_millis(5)) });
/// let item = UInt256([1; 32]);
/// assert_eq!(t.announced(now, 1, "tx", item), Announce::New);
/// assert_eq!(t.announced(now, 2, "tx", item), Announce::Added);
/// let asked = t.poll_requests(now);
/// assert_eq!((asked.len(), asked[0].peer), (1, 2)); // the preferred peer
/// t.not_found(2, item);
/// assert_eq!(t.poll_requests(now)[0].peer, 1); // then the other announcer
/// assert!(t.delivered(1, item).is_new());
/// assert_eq!(t.announced(now, 2, "tx", item), Announce::Delivered);
/// ```
#[derive(Debug)]
pub struct RequestTracker<K> {
    config: TrackerConfig,
    items: HashMap<UInt256, Item<K>>,
    peers: HashMap<PeerId, PeerState>,
    /// Items to (re)assign.
    queue: VecDeque<UInt256>,
    /// Request deadlines: one entry per request outstanding.
    deadlines: BTreeSet<(Instant, UInt256, PeerId)>,
    /// When outstanding requests become late enough for an early retry:
    /// one entry per request outstanding whose retry comes before its
    /// deadline.
    retries: BTreeSet<(Instant, UInt256, PeerId)>,
    /// When delayed announcements become ready: at most one entry per
    /// tracked announcement.
    wakeups: BTreeSet<(Instant, UInt256)>,
    delivered: KnownSet,
    seq: u64,
    stats: TrackerStats,
}

impl<K: Copy> RequestTracker<K> {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        let delivered = KnownSet::new(config.remember_delivered);
        RequestTracker {
            config,
            items: HashMap::new(),
            peers: HashMap::new(),
            queue: VecDeque::new(),
            deadlines: BTreeSet::new(),
            retries: BTreeSet::new(),
            wakeups: BTreeSet::new(),
            delivered,
            seq: 0,
            stats: TrackerStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Counters since the tracker was made.
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// Items tracked now.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no item is tracked.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True if `hash` is tracked (announced, not yet delivered or dropped).
    pub fn is_tracked(&self, hash: &UInt256) -> bool {
        self.items.contains_key(hash)
    }

    /// The peer `hash` was first asked of among those asked now, if any.
    pub fn in_flight(&self, hash: &UInt256) -> Option<PeerId> {
        self.items.get(hash)?.in_flight.first().map(|r| r.peer)
    }

    /// Every peer `hash` is asked of now, oldest request first (at most
    /// [`MAX_ASKED_PER_ITEM`]).
    pub fn in_flight_peers(&self, hash: &UInt256) -> Vec<PeerId> {
        self.items
            .get(hash)
            .map_or_else(Vec::new, |i| i.in_flight.iter().map(|r| r.peer).collect())
    }

    /// Requests in flight to `peer`.
    pub fn in_flight_to(&self, peer: PeerId) -> usize {
        self.peers.get(&peer).map_or(0, |p| p.in_flight)
    }

    /// Outstanding announcements of `peer`.
    pub fn announced_by(&self, peer: PeerId) -> usize {
        self.peers.get(&peer).map_or(0, |p| p.announced.len())
    }

    /// Adds `peer`, or changes its rank (a new round trip) if present.
    pub fn add_peer(&mut self, peer: PeerId, rank: Rank) {
        self.peers
            .entry(peer)
            .and_modify(|p| p.rank = rank)
            .or_insert_with(|| PeerState {
                rank,
                announced: HashSet::new(),
                in_flight: 0,
                parked: VecDeque::new(),
            });
    }

    /// Records that `hash` is ours by other means (we made it, or it came
    /// through another path): it is dropped if tracked, and announcements of
    /// it are ignored from now on.
    pub fn have(&mut self, hash: UInt256) {
        self.delivered.insert(hash);
        self.forget(hash);
    }

    /// `peer` announced item `hash` of kind `kind` at `now`.
    pub fn announced(&mut self, now: Instant, peer: PeerId, kind: K, hash: UInt256) -> Announce {
        let Some(state) = self.peers.get_mut(&peer) else {
            return Announce::UnknownPeer;
        };
        if self.delivered.contains(&hash) {
            self.stats.duplicates_avoided += 1;
            return Announce::Delivered;
        }
        if state.announced.contains(&hash) {
            self.stats.duplicates_avoided += 1;
            return Announce::Repeated;
        }
        if state.announced.len() >= self.config.max_announced_per_peer {
            self.stats.floods += 1;
            return Announce::Flood;
        }
        let exists = self.items.contains_key(&hash);
        if !exists && self.items.len() >= self.config.max_items {
            self.stats.full += 1;
            return Announce::Full;
        }
        state.announced.insert(hash);
        let ready_at = if state.rank.preferred {
            now
        } else {
            now + self.config.non_preferred_delay
        };
        self.seq += 1;
        let item = self.items.entry(hash).or_insert_with(|| Item {
            kind,
            announcements: Vec::new(),
            in_flight: Vec::new(),
            queued: false,
        });
        item.announcements.push(Announcement {
            peer,
            seq: self.seq,
            ready_at,
            state: State::Candidate,
            parked: false,
        });
        if may_ask(item, now) {
            if ready_at <= now {
                enqueue(&mut self.queue, item, hash);
            } else {
                self.wakeups.insert((ready_at, hash));
            }
        }
        self.stats.announcements += 1;
        if exists {
            self.stats.duplicates_avoided += 1;
            Announce::Added
        } else {
            Announce::New
        }
    }

    /// `peer` delivered item `hash`. The item is no longer tracked; a
    /// request of it to another peer is released (its answer, if it comes,
    /// is a [`Delivery::Duplicate`]).
    pub fn delivered(&mut self, peer: PeerId, hash: UInt256) -> Delivery {
        let first = self.delivered.insert(hash);
        let asked = self
            .items
            .get(&hash)
            .is_some_and(|i| i.in_flight.iter().any(|r| r.peer == peer));
        self.forget(hash);
        if !first {
            return Delivery::Duplicate;
        }
        self.stats.delivered += 1;
        if asked {
            Delivery::Requested
        } else {
            Delivery::Unrequested
        }
    }

    /// `peer` does not have `hash` (a `notfound`, or a request it could not
    /// take): it is not asked for it again, and the next announcer will be.
    pub fn not_found(&mut self, peer: PeerId, hash: UInt256) {
        let Some(item) = self.items.get_mut(&hash) else {
            return;
        };
        if let Some(a) = item.announcements.iter_mut().find(|a| a.peer == peer) {
            a.state = State::Asked;
        }
        let ended = end_request(&mut self.deadlines, &mut self.retries, item, hash, peer);
        enqueue(&mut self.queue, item, hash);
        if ended {
            self.stats.not_found += 1;
            self.release_slot(peer);
        }
    }

    /// `peer` is gone: its announcements are dropped, and what was asked of
    /// it is asked of the next announcer.
    pub fn remove_peer(&mut self, peer: PeerId) {
        let Some(state) = self.peers.remove(&peer) else {
            return;
        };
        for hash in state.announced {
            let Some(item) = self.items.get_mut(&hash) else {
                continue;
            };
            if let Some(gone) = item.announcements.iter().position(|a| a.peer == peer) {
                let gone = item.announcements.swap_remove(gone);
                if !item
                    .announcements
                    .iter()
                    .any(|a| a.ready_at == gone.ready_at)
                {
                    self.wakeups.remove(&(gone.ready_at, hash));
                }
            }
            end_request(&mut self.deadlines, &mut self.retries, item, hash, peer);
            if item.announcements.is_empty() {
                // Only announcers are asked: no request of it remains.
                self.items.remove(&hash);
            } else {
                enqueue(&mut self.queue, item, hash);
            }
        }
    }

    /// When [`RequestTracker::poll_requests`] has something to do at the
    /// latest (a deadline, an early retry, or a delayed announcement
    /// becoming ready).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.deadlines.first().map(|(t, _, _)| *t),
            self.retries.first().map(|(t, _, _)| *t),
            self.wakeups.first().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Expires the requests whose deadline is `now` or earlier, then
    /// returns the requests to send now (next announcers, early retries,
    /// new items), ordered by peer.
    pub fn poll_requests(&mut self, now: Instant) -> Vec<Request<K>> {
        while let Some(&(deadline, hash, peer)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let Some(item) = self.items.get_mut(&hash) else {
                self.deadlines.pop_first();
                continue;
            };
            if end_request(&mut self.deadlines, &mut self.retries, item, hash, peer) {
                self.stats.timeouts += 1;
                enqueue(&mut self.queue, item, hash);
                self.release_slot(peer);
            } else {
                self.deadlines.pop_first();
            }
        }
        while let Some(&(at, hash, _)) = self.retries.first() {
            if at > now {
                break;
            }
            // The request stays outstanding: the item may now be asked of
            // one more announcer.
            self.retries.pop_first();
            if let Some(item) = self.items.get_mut(&hash) {
                enqueue(&mut self.queue, item, hash);
            }
        }
        while let Some(&(at, hash)) = self.wakeups.first() {
            if at > now {
                break;
            }
            self.wakeups.pop_first();
            if let Some(item) = self.items.get_mut(&hash) {
                enqueue(&mut self.queue, item, hash);
            }
        }
        let mut out = Vec::new();
        loop {
            while let Some(hash) = self.queue.pop_front() {
                if let Some(request) = self.assign(now, hash) {
                    out.push(request);
                }
            }
            if !self.unpark(now) {
                break;
            }
        }
        out.sort_by_key(|r| r.peer);
        out
    }

    /// Queues again the items parked on peers that have free request
    /// slots, as many per peer as it has free slots; false if none was.
    fn unpark(&mut self, now: Instant) -> bool {
        let max = self.config.max_in_flight_per_peer;
        let mut any = false;
        for (&id, p) in self.peers.iter_mut() {
            let mut free = max.saturating_sub(p.in_flight);
            while free > 0 {
                let Some(hash) = p.parked.pop_front() else {
                    break;
                };
                let Some(item) = self.items.get_mut(&hash) else {
                    continue;
                };
                let Some(a) = item.announcements.iter_mut().find(|a| a.peer == id) else {
                    continue;
                };
                a.parked = false;
                if a.state == State::Candidate && may_ask(item, now) {
                    enqueue(&mut self.queue, item, hash);
                    free -= 1;
                    any = true;
                }
            }
        }
        any
    }

    /// Asks item `hash` of its best ready announcer with a free slot, if
    /// it is not in flight, or only by a late request.
    fn assign(&mut self, now: Instant, hash: UInt256) -> Option<Request<K>> {
        let item = self.items.get_mut(&hash)?;
        item.queued = false;
        if !may_ask(item, now) {
            return None;
        }
        let max = self.config.max_in_flight_per_peer;
        let peers = &self.peers;
        let best = item
            .announcements
            .iter()
            .enumerate()
            .filter(|(_, a)| a.state == State::Candidate && a.ready_at <= now)
            .filter_map(|(i, a)| peers.get(&a.peer).map(|p| (i, a, p)))
            .filter(|(_, _, p)| p.in_flight < max)
            .min_by_key(|(_, a, p)| (p.rank.key(), a.seq))
            .map(|(i, _, _)| i);
        if let Some(i) = best {
            let a = &mut item.announcements[i];
            a.state = State::Asked;
            let peer = a.peer;
            let rtt = self.peers.get(&peer).and_then(|p| p.rank.rtt);
            let deadline = now + self.config.request_timeout;
            let retry_at = now + self.config.retry_delay(rtt);
            if !item.in_flight.is_empty() {
                self.stats.retries += 1;
            }
            item.in_flight.push(Asked {
                peer,
                retry_at,
                deadline,
            });
            self.deadlines.insert((deadline, hash, peer));
            if retry_at < deadline {
                self.retries.insert((retry_at, hash, peer));
            }
            self.stats.requests += 1;
            if let Some(p) = self.peers.get_mut(&peer) {
                p.in_flight += 1;
            }
            return Some(Request {
                peer,
                kind: item.kind,
                hash,
            });
        }
        if !item
            .announcements
            .iter()
            .any(|a| a.state == State::Candidate)
        {
            if item.in_flight.is_empty() {
                self.stats.given_up += 1;
                self.forget(hash);
            }
            return None;
        }
        // Candidates remain: not ready yet, or their peers are full.
        let mut crowded = Vec::new();
        for a in item
            .announcements
            .iter_mut()
            .filter(|a| a.state == State::Candidate)
        {
            if a.ready_at > now {
                self.wakeups.insert((a.ready_at, hash));
            } else if !a.parked {
                if let Some(p) = self.peers.get_mut(&a.peer) {
                    a.parked = true;
                    p.parked.push_back(hash);
                    if p.parked.len() > 2 * self.config.max_announced_per_peer {
                        crowded.push(a.peer);
                    }
                }
            }
        }
        for peer in crowded {
            self.compact_parked(peer);
        }
        None
    }

    /// Drops the entries of `peer`'s parked queue whose item is gone or no
    /// longer parked on it (each announcement is parked at most once, so at
    /// most [`TrackerConfig::max_announced_per_peer`] entries remain).
    fn compact_parked(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let items = &self.items;
        let mut kept = HashSet::new();
        p.parked.retain(|hash| {
            items.get(hash).is_some_and(|item| {
                item.announcements
                    .iter()
                    .any(|a| a.peer == peer && a.parked)
            }) && kept.insert(*hash)
        });
    }

    /// A request to `peer` ended: one more free slot (items parked on it
    /// are queued again by the next [`RequestTracker::poll_requests`]).
    fn release_slot(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }

    /// Stops tracking `hash`, releasing its announcers and its request.
    fn forget(&mut self, hash: UInt256) {
        let Some(item) = self.items.remove(&hash) else {
            return;
        };
        for a in &item.announcements {
            self.wakeups.remove(&(a.ready_at, hash));
            if let Some(p) = self.peers.get_mut(&a.peer) {
                p.announced.remove(&hash);
            }
        }
        for r in &item.in_flight {
            self.deadlines.remove(&(r.deadline, hash, r.peer));
            self.retries.remove(&(r.retry_at, hash, r.peer));
            self.release_slot(r.peer);
        }
    }

    /// Checks every structural invariant; for tests.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut in_flight: HashMap<PeerId, usize> = HashMap::new();
        assert!(self.items.len() <= self.config.max_items);
        for (hash, item) in &self.items {
            assert!(!item.announcements.is_empty());
            let mut seen = HashSet::new();
            for a in &item.announcements {
                assert!(seen.insert(a.peer), "one announcement per peer");
                assert!(self.peers[&a.peer].announced.contains(hash));
            }
            assert!(item.in_flight.len() <= MAX_ASKED_PER_ITEM);
            if let [first, second] = item.in_flight.as_slice() {
                assert_ne!(first.peer, second.peer);
                let asked_at = second.deadline - self.config.request_timeout;
                assert!(
                    asked_at >= first.retry_at,
                    "a second request only when late"
                );
            }
            for r in &item.in_flight {
                *in_flight.entry(r.peer).or_default() += 1;
                assert!(self.deadlines.contains(&(r.deadline, *hash, r.peer)));
                if self.retries.contains(&(r.retry_at, *hash, r.peer)) {
                    assert!(r.retry_at < r.deadline);
                }
                let a = item.announcements.iter().find(|a| a.peer == r.peer);
                assert_eq!(a.map(|a| a.state), Some(State::Asked));
            }
        }
        for (at, hash, peer) in &self.retries {
            let item = &self.items[hash];
            assert!(
                item.in_flight
                    .iter()
                    .any(|r| r.peer == *peer && r.retry_at == *at)
            );
        }
        for (at, hash) in &self.wakeups {
            let item = &self.items[hash];
            assert!(item.announcements.iter().any(|a| a.ready_at == *at));
        }
        assert_eq!(
            self.deadlines.len(),
            self.items
                .values()
                .map(|i| i.in_flight.len())
                .sum::<usize>()
        );
        for (id, p) in &self.peers {
            assert!(p.announced.len() <= self.config.max_announced_per_peer);
            assert!(p.in_flight <= self.config.max_in_flight_per_peer);
            assert_eq!(p.in_flight, in_flight.get(id).copied().unwrap_or(0));
            assert!(p.parked.len() <= 2 * self.config.max_announced_per_peer + 1);
        }
    }
}

/// True when `item` may be asked of one more peer at `now`: none is asked,
/// or the one asked is late ([`TrackerConfig::retry_delay`]).
fn may_ask<K>(item: &Item<K>, now: Instant) -> bool {
    match item.in_flight.as_slice() {
        [] => true,
        [only] => only.retry_at <= now,
        _ => false,
    }
}

/// Ends the request of `item` to `peer`, if there is one (true then); the
/// caller releases the peer's slot.
fn end_request<K>(
    deadlines: &mut BTreeSet<(Instant, UInt256, PeerId)>,
    retries: &mut BTreeSet<(Instant, UInt256, PeerId)>,
    item: &mut Item<K>,
    hash: UInt256,
    peer: PeerId,
) -> bool {
    let Some(i) = item.in_flight.iter().position(|r| r.peer == peer) else {
        return false;
    };
    let r = item.in_flight.remove(i);
    deadlines.remove(&(r.deadline, hash, peer));
    retries.remove(&(r.retry_at, hash, peer));
    true
}

fn enqueue<K>(queue: &mut VecDeque<UInt256>, item: &mut Item<K>, hash: UInt256) {
    if !item.queued {
        item.queued = true;
        queue.push_back(hash);
    }
}
