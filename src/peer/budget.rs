//! The receive budget: how much memory the partial frames of many peers may
//! hold together (see [`ReceiveBudget`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use event_listener::{Event, EventListener};

use super::machine::READ_CHUNK;

/// Default receive budget: 64 MiB for the partial frames of all the peers
/// of a node together.
///
/// The largest frame either generation allows is 32 MiB (a NEO Legacy block
/// may take all of it), so two such frames fit at once, or 32 N3 blocks of
/// the 2 MiB the public network allows; a node that downloads more at once
/// than that should raise it. A hostile crowd that declares large frames
/// and stalls gets 64 MiB between all of its connections, not 64 MiB each.
pub const RECEIVE_BUDGET: usize = 64 << 20;

/// How long a peer waits for room in a spent budget before the oldest
/// partial frames are dropped to make room for it.
///
/// Long enough that a budget spent by honest traffic (blocks arriving from
/// many peers at once) drains on its own at any usable link speed, short
/// enough that an honest peer behind a crowd of stalled frames is served
/// within about a second.
pub const BUDGET_PATIENCE: Duration = Duration::from_millis(500);

/// Bytes of receive buffer each peer may hold without drawing on the
/// budget: a few reads' worth, so that small messages (requests, `inv`,
/// `ping`, the handshake) never wait for it.
pub const UNBUDGETED: usize = 4 * READ_CHUNK;

/// The bit of a claim's state that says it was dropped to free the budget;
/// the other bits are the bytes it holds.
const EVICTED: usize = 1 << (usize::BITS - 1);

/// A receive budget shared by many peers: how much memory their partial
/// frames may hold together.
///
/// Each peer may buffer [`UNBUDGETED`] bytes of its own (enough for every
/// small message); whatever a frame in progress holds beyond that is drawn
/// from the budget of its [`LocalConfig::receive_budget`](super::LocalConfig::receive_budget).
/// Cloning a budget gives another handle to the same budget, and cloning a
/// [`LocalConfig`](super::LocalConfig) clones the handle: the peers a
/// [`PeerManager`](crate::manager::PeerManager) starts all get a clone of
/// its [`ManagerConfig::local`](crate::manager::ManagerConfig::local), and
/// `neo-peer serve` clones one configuration for every connection, so all
/// of their peers share one budget. Give the same budget to peers of
/// different managers (or to peers started by hand) to bound them together;
/// give a peer a budget of its own (`ReceiveBudget::new`) to keep it apart.
///
/// The rules, which the peer [`Machine`](super::Machine) applies:
///
/// - a read never offers room beyond what the frame in progress still
///   needs (as its header declares it), nor beyond half again what it has
///   buffered: a remote that stalls mid-frame leaves at most 1.5 times what
///   it sent (not a full read's room ahead of its data);
/// - that room is taken from the budget before the read; when none is left
///   the peer is not read at all
///   ([`Machine::is_starved`](super::Machine::is_starved)), so its TCP
///   window fills and the remote waits; it is read again as soon as any
///   peer gives bytes back;
/// - a peer that has waited for room for the budget's patience
///   ([`BUDGET_PATIENCE`] by default) drops the other peers holding the
///   oldest partial frames, oldest first (the frame in progress the longest
///   is the one its sender is slowest to finish, and a stalled frame only
///   grows older), until what it needs is free; each ends with
///   [`DisconnectReason::ReceiveBudget`](super::DisconnectReason::ReceiveBudget).
///   If no other peer holds a frame, its own frame cannot fit in the
///   budget and it is the one dropped;
/// - a dropped peer's bytes stay charged until it has closed and freed its
///   buffer (its task is woken at once to do so): meanwhile the room is not
///   offered to anyone, the peers waiting for it keep waiting, and no
///   further peer is dropped for room that is already coming (a peer is
///   dropped at most once);
/// - bytes are charged when they are reserved (the room of a read is
///   zero-filled, so it is resident memory) and given back when the frame
///   is decoded or the peer closes.
///
/// So the receive buffers of all the peers hold at most the budget plus
/// [`UNBUDGETED`] per peer, however many of them stall mid-frame, and a
/// peer sending a legitimate large frame is served: it waits at most the
/// patience, then room is made for it at the expense of the oldest frames.
/// The budget should be at least the largest frame the peers may receive
/// ([`PayloadLimits::block`](crate::wire::PayloadLimits::block)).
///
/// ```
/// use neo_peer::peer::{LocalConfig, ReceiveBudget};
/// use neo_peer::protocol::N3;
/// use neo_peer::wire::n3::PRIVNET_MAGIC;
///
/// let budget = ReceiveBudget::new(16 << 20);
/// let mut a = LocalConfig::<N3>::new(PRIVNET_MAGIC);
/// a.receive_budget = budget.clone();
/// let mut b = LocalConfig::<N3>::new(PRIVNET_MAGIC);
/// b.receive_budget = budget.clone();
/// assert_eq!(budget.used(), 0);
/// assert_eq!(budget.limit(), 16 << 20);
/// ```
#[derive(Clone)]
pub struct ReceiveBudget(Budget);

/// A pool of bytes shared by many peers: a [`ReceiveBudget`] or a
/// [`SendBudget`], as the peer [`Machine`](super::Machine) draws on it.
#[derive(Clone)]
pub(crate) struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    limit: usize,
    patience: Duration,
    /// Bytes charged to claims: the sum of their states' byte counts.
    used: AtomicUsize,
    /// Of `used`, the bytes of claims dropped to free the budget that their
    /// peers have not given back yet (their memory is still held): room
    /// that is coming, so that no more claims are dropped for it.
    evicting: AtomicUsize,
    /// The instant frame ages are counted from.
    epoch: Instant,
    /// Every live claim, by number (one per peer: bounded by the peers).
    claims: Mutex<HashMap<u64, Arc<Holder>>>,
    next: AtomicU64,
    /// Told when bytes are given back, so that peers waiting for room retry.
    freed: Event,
}

/// One peer's share of the budget.
struct Holder {
    /// Bytes charged, and [`EVICTED`].
    state: AtomicUsize,
    /// When its partial frame began: nanoseconds since the epoch, plus one
    /// (0: no frame in progress).
    since: AtomicU64,
    /// The peer's driver, woken when the peer is dropped to free the budget.
    waker: AtomicWaker,
    /// Bytes of shared frames it holds, charged to the budget by the frames
    /// (once for all their holders), not by this claim.
    shared: AtomicUsize,
    /// Once dropped to free the budget: the bytes counted as coming back
    /// (in the budget's `evicting`) until it gives back what it holds.
    expected: AtomicUsize,
}

impl Default for ReceiveBudget {
    fn default() -> Self {
        ReceiveBudget::new(RECEIVE_BUDGET)
    }
}

impl std::fmt::Debug for ReceiveBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.debug("ReceiveBudget", f)
    }
}

impl ReceiveBudget {
    /// A budget of `limit` bytes, with the default patience ([`BUDGET_PATIENCE`]).
    pub fn new(limit: usize) -> Self {
        ReceiveBudget::with_patience(limit, BUDGET_PATIENCE)
    }

    /// A budget of `limit` bytes whose waiting peers make room after `patience`.
    pub fn with_patience(limit: usize, patience: Duration) -> Self {
        ReceiveBudget(Budget::new(limit, patience))
    }

    /// The most bytes the peers sharing it may hold beyond their own [`UNBUDGETED`].
    pub fn limit(&self) -> usize {
        self.0.limit()
    }

    /// How long a peer waits for room before the oldest frames are dropped.
    pub fn patience(&self) -> Duration {
        self.0.patience()
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.0.used()
    }

    /// Bytes free now.
    pub fn free(&self) -> usize {
        self.0.free()
    }

    /// Whether `self` and `other` are handles to the same budget.
    pub fn same(&self, other: &ReceiveBudget) -> bool {
        self.0.same(&other.0)
    }

    /// A new share, for one peer.
    pub(crate) fn claim(&self) -> Claim {
        self.0.claim()
    }
}

/// Default send budget: 64 MiB of unsent answers for all the peers of a
/// node together.
///
/// That is about 45 full `headers` answers (2000 headers, some 1.4 MB) or
/// 32 N3 blocks of the 2 MiB the public network allows in flight at once.
/// A peer that reads empties its share as fast as its link takes it, so
/// on working links the budget is only spent by peers that do not read,
/// and those are the ones dropped when it is.
pub const SEND_BUDGET: usize = 64 << 20;

/// Unsent bytes each peer may hold without drawing on the send budget:
/// enough for every small message (requests, `pong`, an `inv` or `getdata`
/// of 500 hashes, an `addr`), so that they never wait for it.
pub const SEND_UNBUDGETED: usize = 16 * 1024;

/// The default per-peer send bound: 4 MiB of unsent bytes, past which the
/// peer's requests are not read (see [`LocalConfig::send_limit`](super::LocalConfig::send_limit)).
///
/// Two full `headers` answers, or two N3 blocks of the 2 MiB the public
/// network allows: a syncing peer that asks for the next range before the
/// last one is written keeps being read, and a peer that stops reading
/// costs at most this much (plus one answer being queued) until the write
/// timeout drops it.
pub const SEND_LIMIT: usize = 4 << 20;

/// A send budget shared by many peers: how many unsent bytes their queues
/// may hold together.
///
/// Each peer may hold [`SEND_UNBUDGETED`] unsent bytes of its own; a message
/// that would take it beyond that takes the rest from the budget of its
/// [`LocalConfig::send_budget`](super::LocalConfig::send_budget) before it
/// is encoded (its size is known in advance: the frame is never larger
/// than its uncompressed form). Like the [`ReceiveBudget`], cloning a
/// [`LocalConfig`](super::LocalConfig) shares it, so the peers of a
/// manager, or of `neo-peer serve`, share one.
///
/// When it is spent:
///
/// - a peer whose next message finds no room does not take it: the message
///   waits in the mailbox (its caller waits, a handler answering waits), and
///   the peer's own requests are not read meanwhile, so the remote waits in
///   TCP; it is retried as soon as any peer's bytes are written;
/// - a peer that has waited for the budget's patience ([`BUDGET_PATIENCE`]
///   by default) drops the other peers whose writes have made no progress
///   for the longest (a remote that does not read first), until what it
///   needs is free; each ends with
///   [`DisconnectReason::SendBudget`](super::DisconnectReason::SendBudget).
///   If no other peer holds unsent bytes, its message alone is larger than
///   the budget, and it is sent anyway (the budget is then overdrawn by it).
///   As with the [`ReceiveBudget`], a dropped peer's bytes stay charged
///   until it has closed and let go of its queue.
///
/// So the send queues of all peers hold at most the budget plus
/// [`SEND_UNBUDGETED`] per peer, plus a `pong` per `ping` read before the
/// peer's bound stopped reading. An answer shared by many peers
/// ([`Frame`](super::Frame)) is in memory once and charged once, while any
/// of them has it unsent (by the first to queue it, from the room it takes
/// with [`Machine::send_room_frame`](super::Machine::send_room_frame)); a
/// peer's own bytes are charged to its share. A peer whose unsent bytes are
/// all shared frames may be dropped to make room too: the room its frames
/// free comes back once no other peer holds them.
///
/// ```
/// use neo_peer::peer::{LocalConfig, SendBudget};
/// use neo_peer::protocol::Legacy;
///
/// let budget = SendBudget::new(32 << 20);
/// let mut config = LocalConfig::<Legacy>::new(0x0074_6E41);
/// config.send_budget = budget.clone();
/// assert!(config.clone().send_budget.same(&budget));
/// assert_eq!(budget.used(), 0);
/// ```
#[derive(Clone)]
pub struct SendBudget(Budget);

impl Default for SendBudget {
    fn default() -> Self {
        SendBudget::new(SEND_BUDGET)
    }
}

impl std::fmt::Debug for SendBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.debug("SendBudget", f)
    }
}

impl SendBudget {
    /// A budget of `limit` bytes, with the default patience ([`BUDGET_PATIENCE`]).
    pub fn new(limit: usize) -> Self {
        SendBudget::with_patience(limit, BUDGET_PATIENCE)
    }

    /// A budget of `limit` bytes whose waiting peers make room after `patience`.
    pub fn with_patience(limit: usize, patience: Duration) -> Self {
        SendBudget(Budget::new(limit, patience))
    }

    /// The most unsent bytes the peers sharing it may hold beyond their own
    /// [`SEND_UNBUDGETED`].
    pub fn limit(&self) -> usize {
        self.0.limit()
    }

    /// How long a peer waits for room before the slowest readers are dropped.
    pub fn patience(&self) -> Duration {
        self.0.patience()
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.0.used()
    }

    /// Bytes free now.
    pub fn free(&self) -> usize {
        self.0.free()
    }

    /// Whether `self` and `other` are handles to the same budget.
    pub fn same(&self, other: &SendBudget) -> bool {
        self.0.same(&other.0)
    }

    /// A new share, for one peer.
    pub(crate) fn claim(&self) -> Claim {
        self.0.claim()
    }
}

impl Budget {
    fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("limit", &self.inner.limit)
            .field("used", &self.used())
            .field("patience", &self.inner.patience)
            .finish()
    }

    fn new(limit: usize, patience: Duration) -> Self {
        Budget {
            inner: Arc::new(Inner {
                limit: limit.min(EVICTED - 1),
                patience,
                used: AtomicUsize::new(0),
                evicting: AtomicUsize::new(0),
                epoch: Instant::now(),
                claims: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
                freed: Event::new(),
            }),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.inner.limit
    }

    pub(crate) fn patience(&self) -> Duration {
        self.inner.patience
    }

    pub(crate) fn used(&self) -> usize {
        self.inner.used.load(Ordering::Acquire)
    }

    pub(crate) fn free(&self) -> usize {
        self.inner.limit.saturating_sub(self.used())
    }

    /// Bytes free once the peers dropped to free the budget have given
    /// back what they hold.
    pub(crate) fn free_soon(&self) -> usize {
        self.inner.free_soon()
    }

    fn same(&self, other: &Budget) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A new share, for one peer.
    pub(crate) fn claim(&self) -> Claim {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let holder = Arc::new(Holder {
            state: AtomicUsize::new(0),
            since: AtomicU64::new(0),
            waker: AtomicWaker::new(),
            shared: AtomicUsize::new(0),
            expected: AtomicUsize::new(0),
        });
        self.inner.lock().insert(id, holder.clone());
        Claim {
            budget: self.clone(),
            id,
            holder,
        }
    }

    /// A listener told when bytes are given back.
    pub(crate) fn listen(&self) -> EventListener {
        self.inner.freed.listen()
    }

    /// Drops the claims other than `except` with the oldest partial frames
    /// until `need` bytes are free or coming free (held by claims already
    /// dropped, which give them back when their peers close), or no other
    /// claim holds a frame; returns how many it dropped.
    ///
    /// A dropped claim stays charged until its peer gives its bytes back:
    /// its memory is freed only then, so the room is not offered to others
    /// before. A claim is dropped at most once.
    fn evict_oldest(&self, need: usize, except: u64) -> usize {
        let inner = &self.inner;
        let free = Inner::free_soon;
        if free(inner) >= need {
            return 0;
        }
        let mut holders: Vec<(u64, Arc<Holder>)> = inner
            .lock()
            .iter()
            .filter(|(id, _)| **id != except)
            .map(|(_, h)| h)
            .filter_map(|h| {
                let since = h.since.load(Ordering::Acquire);
                let state = h.state.load(Ordering::Acquire);
                let holds = state > 0 || h.shared.load(Ordering::Acquire) > 0;
                (since != 0 && state & EVICTED == 0 && holds).then(|| (since, h.clone()))
            })
            .collect();
        holders.sort_unstable_by_key(|(since, _)| *since);
        let mut dropped = 0;
        for (_, holder) in holders {
            if free(inner) >= need {
                break;
            }
            let taken = holder
                .state
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                    (s & EVICTED == 0).then_some(s | EVICTED)
                });
            if let Ok(held) = taken {
                // Its shared frames are counted as coming back too: if
                // other peers still hold them, the room falls short and is
                // made again after another wait.
                let expected = held + holder.shared.load(Ordering::Acquire);
                // Added, not stored: should its peer give back in between, the
                // claim's own drop (which gives back again) takes it off.
                holder.expected.fetch_add(expected, Ordering::AcqRel);
                inner.evicting.fetch_add(expected, Ordering::AcqRel);
                holder.waker.wake();
                dropped += 1;
            }
        }
        dropped
    }

    fn nanos(&self, at: Instant) -> u64 {
        let n = at.saturating_duration_since(self.inner.epoch).as_nanos();
        u64::try_from(n).unwrap_or(u64::MAX - 1) + 1
    }
}

impl Inner {
    fn free_soon(&self) -> usize {
        let used = self.used.load(Ordering::Acquire);
        let evicting = self.evicting.load(Ordering::Acquire);
        // The two counters are updated one after the other: a stale pair
        // is read as less room, never more.
        self.limit
            .saturating_sub(used.wrapping_sub(evicting).min(used))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Holder>>> {
        // The map is never left half-updated: a poisoned lock is taken over.
        self.claims.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One peer's share of a [`ReceiveBudget`] or a [`SendBudget`]: the bytes
/// it holds, since when (its frame in progress began, or its writes last
/// made progress), and whether it was dropped to free the budget.
/// Dropping it gives its bytes back.
pub(crate) struct Claim {
    budget: Budget,
    id: u64,
    holder: Arc<Holder>,
}

impl Claim {
    /// The budget it is a share of.
    pub(crate) fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Bytes charged to it.
    pub(crate) fn held(&self) -> usize {
        self.holder.state.load(Ordering::Acquire) & !EVICTED
    }

    /// Whether it was dropped to free the budget.
    pub(crate) fn is_evicted(&self) -> bool {
        self.holder.state.load(Ordering::Acquire) & EVICTED != 0
    }

    /// Takes up to `want` more bytes, as many as the budget has left;
    /// returns how many it took (none once evicted).
    pub(crate) fn take(&self, want: usize) -> usize {
        if want == 0 || self.is_evicted() {
            return 0;
        }
        let limit = self.budget.inner.limit;
        let used = &self.budget.inner.used;
        let Ok(before) = used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
            (u < limit).then(|| u + want.min(limit - u))
        }) else {
            return 0;
        };
        let got = want.min(limit - before);
        self.holder.state.fetch_add(got, Ordering::AcqRel);
        got
    }

    /// Sets the bytes charged to `held`: gives back what it holds above it,
    /// or charges what it lacks whatever the budget has left (for bytes
    /// already in memory).
    pub(crate) fn set(&self, held: usize) {
        let held = held.min(EVICTED - 1);
        let Ok(before) = self
            .holder
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some((s & EVICTED) | held)
            })
        else {
            return;
        };
        let evicted = before & EVICTED != 0;
        let before = before & !EVICTED;
        let inner = &self.budget.inner;
        if evicted && held == 0 {
            // Given back: no longer counted as coming.
            let expected = self.holder.expected.swap(0, Ordering::AcqRel);
            inner.evicting.fetch_sub(expected, Ordering::AcqRel);
        }
        if held > before {
            inner.used.fetch_add(held - before, Ordering::AcqRel);
        } else if held < before {
            inner.used.fetch_sub(before - held, Ordering::AcqRel);
            inner.freed.notify(usize::MAX);
        }
    }

    /// Records the bytes of shared frames it holds (charged by the frames).
    pub(crate) fn set_shared(&self, bytes: usize) {
        self.holder.shared.store(bytes, Ordering::Release);
    }

    /// Records when its frame in progress began (`None`: no frame in progress).
    pub(crate) fn set_since(&self, since: Option<Instant>) {
        let n = since.map_or(0, |at| self.budget.nanos(at));
        self.holder.since.store(n, Ordering::Release);
    }

    /// Drops the oldest frames of the budget, other than this claim's, until
    /// `need` bytes are free; returns how many claims were dropped.
    pub(crate) fn make_room(&self, need: usize) -> usize {
        self.budget.evict_oldest(need, self.id)
    }

    /// Wakes `waker` when this claim is dropped to free the budget.
    pub(crate) fn register(&self, waker: &Waker) {
        self.holder.waker.register(waker);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set(0);
        self.budget.inner.lock().remove(&self.id);
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("held", &self.held())
            .field("evicted", &self.is_evicted())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_only_what_is_left_and_gives_back() {
        let budget = ReceiveBudget::new(100);
        let (a, b) = (budget.claim(), budget.claim());
        assert_eq!(a.take(60), 60);
        assert_eq!(b.take(60), 40);
        assert_eq!(b.take(1), 0);
        assert_eq!(budget.used(), 100);
        a.set(10);
        assert_eq!(budget.used(), 50);
        drop(b);
        assert_eq!(budget.used(), 10);
        // Bytes already in memory are charged whatever is left.
        a.set(150);
        assert_eq!(budget.used(), 150);
        assert_eq!(a.take(1), 0);
    }

    #[test]
    fn the_oldest_frames_go_first_and_only_as_many_as_needed() {
        let budget = ReceiveBudget::new(300);
        let t0 = Instant::now();
        let claims: Vec<Claim> = (0..3).map(|_| budget.claim()).collect();
        for (i, c) in claims.iter().enumerate() {
            assert_eq!(c.take(100), 100);
            // The last claim's frame is the oldest.
            c.set_since(Some(t0 + Duration::from_secs(10 - i as u64)));
        }
        let newcomer = budget.claim();
        assert_eq!(newcomer.make_room(150), 2);
        assert!(claims[2].is_evicted() && claims[1].is_evicted());
        assert!(!claims[0].is_evicted());
        // Still charged until their peers give the bytes back.
        assert_eq!(budget.used(), 300);
        assert_eq!(budget.0.free_soon(), 200);
        assert_eq!(claims[2].take(1), 0, "an evicted claim takes nothing");
        claims[2].set(0);
        claims[1].set(0);
        assert_eq!(budget.used(), 100);
        // Nothing to do when enough is free.
        assert_eq!(newcomer.make_room(200), 0);
        drop(claims);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.0.inner.lock().len(), 1);
    }

    #[test]
    fn an_eviction_keeps_the_room_charged_until_the_evicted_peer_closes() {
        let budget = ReceiveBudget::new(100);
        let t0 = Instant::now();
        let (old, young) = (budget.claim(), budget.claim());
        assert_eq!(old.take(60), 60);
        old.set_since(Some(t0));
        assert_eq!(young.take(40), 40);
        young.set_since(Some(t0 + Duration::from_secs(1)));
        let (a, b) = (budget.claim(), budget.claim());
        let mut freed = budget.0.listen();
        assert_eq!(a.make_room(50), 1);
        assert!(old.is_evicted() && !young.is_evicted());
        // The evicted peer has not closed yet: nothing is free, nobody may
        // take its room, and nobody else is dropped for the same need.
        assert_eq!(budget.used(), 100);
        assert_eq!(old.held(), 60);
        assert_eq!((a.take(50), b.take(50)), (0, 0));
        assert_eq!(b.make_room(50), 0);
        assert_eq!(a.make_room(60), 0);
        assert!(!young.is_evicted(), "dropped for room already coming");
        assert!(
            std::future::Future::poll(
                std::pin::Pin::new(&mut freed),
                &mut std::task::Context::from_waker(Waker::noop())
            )
            .is_pending()
        );
        // It closes: its bytes come back, and the waiting peers are told.
        old.set(0);
        assert_eq!(budget.used(), 40);
        assert!(
            std::future::Future::poll(
                std::pin::Pin::new(&mut freed),
                &mut std::task::Context::from_waker(Waker::noop())
            )
            .is_ready()
        );
        assert_eq!(a.take(50), 50);
        assert_eq!(budget.0.free_soon(), 10);
        drop(old);
        assert_eq!(budget.used(), 90);
    }

    #[test]
    fn an_evicted_peer_is_woken_once() {
        use std::sync::atomic::AtomicUsize;
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let budget = SendBudget::new(100);
        let victim = budget.claim();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        victim.register(&Waker::from(count.clone()));
        assert_eq!(victim.take(100), 100);
        victim.set_since(Some(Instant::now()));
        let (a, b) = (budget.claim(), budget.claim());
        assert_eq!(a.make_room(10), 1);
        assert_eq!(b.make_room(100), 0);
        assert_eq!(a.make_room(100), 0);
        assert!(victim.is_evicted());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        drop(victim);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.0.free_soon(), 100);
    }
}
