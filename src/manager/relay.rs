//! Relay: items announced by peers downloaded once, handed to the embedder,
//! and what it accepts announced to every peer that lacks it.
//!
//! The room joins the two sans-I/O books of [`crate::relay`] to the
//! manager's peers:
//!
//! - an `inv` marks its hashes as known to the sender ([`KnownInventory`])
//!   and feeds the [`RequestTracker`], which asks each new item of one
//!   announcer at a time (outbound, then faster peers first) and of the next
//!   on `notfound`, deadline or disconnect, or also of the next when the
//!   request is late by a few round trips ([`TrackerConfig::retry_delay`]);
//!   an announcement flood costs the flooder [`RelayConfig::flood_points`]
//!   (at most once per [`RelayConfig::flood_spacing`]);
//! - an item that arrives (asked for or not) is marked known to its sender
//!   and, the first time, handed to the embedder's hook ([`OnItem`]); the
//!   embedder checks it and calls [`PeerManager::relay`] for what it
//!   accepts;
//! - [`PeerManager::relay`] announces an item to every peer not known to
//!   have it: a block to the peers below its height, anything else to full
//!   nodes (N3 `FullNode`, Legacy `relay`); one `inv` per item, at once (no
//!   batching delay), unless [`RelayConfig::batch`] gathers transactions;
//! - a `getdata` is answered from a bounded cache of the items relayed
//!   lately, then from the embedder's [`ChainStore`], and on N3 with
//!   `notfound` for the rest; an item still waiting to be sent to the asker
//!   is not queued for it again.
//!
//! A room whose manager also follows the chain can leave blocks to the
//! follower ([`RelayConfig::blocks_by_follower`]): a block is then
//! downloaded once, by the follower (which needs it in order, checked
//! against its header), and never also by the room; the embedder relays each
//! block the follower appends with [`PeerManager::relay`].
//!
//! Each send is also recorded per peer and item ([`RelayConfig::sent_per_peer`]),
//! so that [`RelayStats::resent`] tells whether any item, or its
//! announcement, went to a peer twice.
//!
//! Every message the room sends goes through a per-peer outbox of at most
//! [`RelayConfig::outbox`] messages and [`RelayConfig::outbox_bytes`]
//! bytes, drained by one task per peer: a peer that does not read slows no
//! one else, and past the bound what is queued for it is dropped (counted
//! in [`RelayStats::dropped`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_lite::future;

use super::handle::ManagedPeer;
use super::registry::node_addr;
use super::{Inner, ManagerError, PeerId, PeerManager};
use crate::chain::ChainStore;
use crate::peer::{Direction, Peer};
use crate::protocol::contract::distinct;
use crate::protocol::{Protocol, RequestKind};
use crate::relay::{
    Announce, Flush, InvBatcher, Inventory, Item, ItemKind, KnownInventory, MAX_INV_HASHES, Rank,
    Request, RequestTracker, TrackerConfig,
};
use crate::wire::UInt256;

/// Items relayed lately, kept to answer `getdata` ([`RelayConfig::cache`]).
pub const RELAY_CACHE: usize = 1024;
/// Bytes (framed) of the items relayed lately kept at most
/// ([`RelayConfig::cache_bytes`]).
pub const RELAY_CACHE_BYTES: usize = 64 << 20;
/// Messages queued for one peer at most ([`RelayConfig::outbox`]).
pub const RELAY_OUTBOX: usize = 1024;
/// Bytes (as framed on the wire) queued for one peer at most
/// ([`RelayConfig::outbox_bytes`]).
pub const RELAY_OUTBOX_BYTES: usize = 8 << 20;
/// Sends of each kind (announcements, items) remembered per peer to count
/// repeats ([`RelayConfig::sent_per_peer`]).
pub const SENT_PER_PEER: usize = 2048;
/// Hashes of a `getdata` read from the store at once: once the asker's
/// outbox is full, at most this many more are read in vain.
const STORE_READS: usize = 16;
/// Misbehaviour points for an announcement flood
/// ([`RelayConfig::flood_points`]).
pub const FLOOD_POINTS: u32 = 20;
/// How often a peer's announcement floods cost it points at most
/// ([`RelayConfig::flood_spacing`]).
pub const FLOOD_SPACING: Duration = Duration::from_secs(10);

/// How the relay room behaves; see [`PeerManager::start_relay`].
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Hashes remembered per peer as known to it
    /// ([`MAX_KNOWN_HASHES`](crate::wire::n3::MAX_KNOWN_HASHES), 1000, by
    /// default); see [`KnownInventory`] for what happens past it.
    pub known_per_peer: usize,
    /// The download tracker's bounds and deadline.
    pub tracker: TrackerConfig,
    /// Items relayed lately kept to answer `getdata` ([`RELAY_CACHE`]);
    /// the oldest is forgotten first.
    pub cache: usize,
    /// Bytes of those items at most, each counted at its framed size
    /// ([`RELAY_CACHE_BYTES`], 64 MiB); the oldest are forgotten first (an
    /// item larger than this alone is not kept).
    pub cache_bytes: usize,
    /// Messages queued for one peer ([`RELAY_OUTBOX`]); past it, new ones
    /// for that peer are dropped.
    pub outbox: usize,
    /// Bytes queued for one peer, each message counted at its framed size
    /// ([`RELAY_OUTBOX_BYTES`], 8 MiB): a message that would take the
    /// queue past it is dropped, unless the queue is empty (so one message
    /// of any size goes out). What a peer that does not read can make us
    /// hold is then this, plus one message, whatever it asks for.
    pub outbox_bytes: usize,
    /// Points for an `inv` that breaks the tracker's per-peer bound
    /// ([`FLOOD_POINTS`]), at most once per `flood_spacing`.
    pub flood_points: u32,
    /// How often floods cost a peer points at most ([`FLOOD_SPACING`],
    /// 10 s). The hashes past the bound are dropped every time; the points
    /// are spaced so that an honest node relaying a burst of transactions
    /// faster than they are fetched loses 20 points per 10 s while it lasts,
    /// not its connection at the fifth `inv`, whereas a flood kept up is
    /// banned (100 points) within a minute.
    pub flood_spacing: Duration,
    /// Leave blocks to a follower of the chain (false by default): the
    /// room asks for no announced block (it marks the block known to its
    /// announcer, and counts an announcement of a block held as a duplicate
    /// avoided) and the follower fetches it, once. The embedder relays the
    /// blocks the follower appends with [`PeerManager::relay`]. A block a
    /// peer sends unasked still reaches the hook, and is offered to the
    /// follower: when it is the next height the follower needs, it is
    /// checked as a downloaded one would be and appended without being
    /// fetched again (else the follower fetches that height as usual).
    pub blocks_by_follower: bool,
    /// Hashes remembered per peer for each kind of send (announcements,
    /// items) to count repeats in [`RelayStats::resent`] ([`SENT_PER_PEER`]
    /// by default, about 100 bytes each, so about 400 KiB per peer at
    /// most); past it the oldest is forgotten first.
    pub sent_per_peer: usize,
    /// Gather transaction announcements (`None` by default: each is
    /// announced at once, in its own `inv`). With `Some(delay)`, the
    /// transactions to announce to a peer are gathered and sent as one
    /// `inv` when [`MAX_INV_HASHES`] (500, the protocol's limit) are
    /// gathered or when the first has waited `delay`, whichever comes
    /// first: no announcement waits more than `delay`, and at most 499
    /// hashes per peer wait at once. Blocks and extensible or consensus
    /// payloads are never delayed: they are on the consensus' critical
    /// path, and few.
    pub batch: Option<Duration>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            known_per_peer: crate::wire::n3::MAX_KNOWN_HASHES,
            tracker: TrackerConfig::default(),
            cache: RELAY_CACHE,
            cache_bytes: RELAY_CACHE_BYTES,
            outbox: RELAY_OUTBOX,
            outbox_bytes: RELAY_OUTBOX_BYTES,
            flood_points: FLOOD_POINTS,
            flood_spacing: FLOOD_SPACING,
            blocks_by_follower: false,
            sent_per_peer: SENT_PER_PEER,
            batch: None,
        }
    }
}

/// The hook that receives each item the first time it arrives, with the
/// peer that sent it. It runs on that peer's handler task: it should be
/// quick, and call [`PeerManager::relay`] for the items it accepts.
pub type OnItem<P> = Box<dyn Fn(&ManagedPeer<P>, Item<P>) + Send + Sync>;

/// The relay room's counters since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayStats {
    /// Peers the room keeps books for now.
    pub peers: usize,
    /// Items tracked for download now.
    pub tracked: usize,
    /// Items received for the first time (handed to the hook).
    pub received: u64,
    /// Items received again (a peer sent one we had).
    pub duplicates: u64,
    /// Announcements that downloaded nothing: the item was tracked, asked
    /// for already, or held.
    pub duplicates_avoided: u64,
    /// Items passed to [`PeerManager::relay`].
    pub relayed: u64,
    /// Announcements sent (one per item and peer; with
    /// [`RelayConfig::batch`], a hash counts when its batch is sent).
    pub announced: u64,
    /// Announcements and items sent to a peer that had been sent the same
    /// (the same item's announcement, or the same item) before, among the
    /// last [`RelayConfig::sent_per_peer`] of each: 0 means no item and no
    /// announcement went to any peer twice.
    pub resent: u64,
    /// Item hashes asked for with `getdata`.
    pub requested: u64,
    /// The same, by kind of item.
    pub requested_by_kind: ByKind,
    /// Requests that reached their deadline.
    pub timeouts: u64,
    /// Requests sent to a second announcer while the first request of the
    /// item was late (see [`TrackerConfig::retry_delay`]).
    pub retries: u64,
    /// Items sent in answer to `getdata`.
    pub served: u64,
    /// Hashes answered with `notfound`.
    pub not_found: u64,
    /// Announcements dropped as floods.
    pub floods: u64,
    /// Messages dropped because a peer's outbox was full, and hashes of a
    /// `getdata` left unanswered for the same reason.
    pub dropped: u64,
}

/// A count for each kind of item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByKind {
    /// Transactions.
    pub tx: u64,
    /// Blocks.
    pub block: u64,
    /// N3 extensible payloads.
    pub extensible: u64,
    /// Legacy consensus payloads.
    pub consensus: u64,
}

impl ByKind {
    /// Adds `n` to the count of `kind`.
    pub fn add(&mut self, kind: ItemKind, n: u64) {
        *self.get_mut(kind) += n;
    }

    /// The count of `kind`.
    pub fn get(&self, kind: ItemKind) -> u64 {
        match kind {
            ItemKind::Transaction => self.tx,
            ItemKind::Block => self.block,
            ItemKind::Extensible => self.extensible,
            ItemKind::Consensus => self.consensus,
        }
    }

    /// The sum over the kinds.
    pub fn total(&self) -> u64 {
        self.tx + self.block + self.extensible + self.consensus
    }

    fn get_mut(&mut self, kind: ItemKind) -> &mut u64 {
        match kind {
            ItemKind::Transaction => &mut self.tx,
            ItemKind::Block => &mut self.block,
            ItemKind::Extensible => &mut self.extensible,
            ItemKind::Consensus => &mut self.consensus,
        }
    }
}

/// What the manager's handler asks of the room, whatever the generation.
pub(super) trait RelayRoom<P: Protocol>: Send + Sync {
    /// Takes `msg` from `peer` if it is relay traffic (then true).
    fn on_message(&self, peer: &Peer<P>, msg: &P::Message) -> bool;
    /// Announces `item`; returns to how many peers.
    fn relay(&self, item: Item<P>) -> usize;
    /// The counters.
    fn stats(&self) -> RelayStats;
}

/// The relay room of a manager of generation `P`.
struct Room<P: Inventory> {
    inner: Weak<Inner<P>>,
    config: RelayConfig,
    store: Option<Arc<dyn ChainStore<P>>>,
    on_item: OnItem<P>,
    state: Mutex<State<P>>,
    /// The tracker has something new to time.
    wake: Event,
}

struct State<P: Inventory> {
    known: KnownInventory,
    /// The announcements sent to each peer, to count repeats.
    sent_inv: KnownInventory,
    /// The items sent to each peer, to count repeats.
    sent_items: KnownInventory,
    tracker: RequestTracker<ItemKind>,
    /// Transaction announcements waiting for their batch
    /// ([`RelayConfig::batch`]).
    batcher: Option<InvBatcher<ItemKind>>,
    recent: Recent<P>,
    links: HashMap<PeerId, Link<P>>,
    stats: RelayStats,
}

/// A peer as the room sees it.
struct Link<P: Protocol> {
    /// It wants transactions and payloads.
    full_node: bool,
    /// What waits to be sent, each with its framed size, and item answers
    /// with their item's hash.
    outbox: VecDeque<(Option<UInt256>, usize, P::Message)>,
    /// The framed sizes of what `outbox` holds, summed.
    bytes: usize,
    /// The items in `outbox`: a `getdata` of an item already waiting for
    /// the peer queues no second copy of it (at most the outbox's bound).
    queued: HashSet<UInt256>,
    /// When its last flood cost it points.
    flooded: Option<Instant>,
    ready: Arc<Event>,
}

/// The items relayed lately, by hash, oldest forgotten first: at most
/// `capacity` of them and `max_bytes` of their frames.
struct Recent<P: Protocol> {
    items: HashMap<UInt256, Item<P>>,
    /// Each item's hash and framed size, oldest first.
    order: VecDeque<(UInt256, usize)>,
    capacity: usize,
    bytes: usize,
    max_bytes: usize,
}

impl<P: Protocol> Recent<P> {
    fn insert(&mut self, item: Item<P>) {
        if self.capacity == 0 || self.items.contains_key(&item.hash) {
            return;
        }
        let size = P::frame_size(&item.message);
        if size > self.max_bytes {
            return;
        }
        while self.order.len() >= self.capacity || self.bytes + size > self.max_bytes {
            let Some((old, old_size)) = self.order.pop_front() else {
                break;
            };
            self.items.remove(&old);
            self.bytes -= old_size;
        }
        self.bytes += size;
        self.order.push_back((item.hash, size));
        self.items.insert(item.hash, item);
    }
}

impl<P: Inventory> Room<P> {
    fn lock(&self) -> MutexGuard<'_, State<P>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure the room keeps books for `peer`; false for a peer that
    /// has ended (its books are gone or about to go).
    fn link(self: &Arc<Self>, st: &mut State<P>, peer: &Peer<P>) -> bool {
        let id = peer.id();
        if st.links.contains_key(&id) {
            return true;
        }
        // Checked under the lock: once a peer is closed, its sender task
        // (below) takes its books out, after this point or never.
        if peer.is_closed() {
            return false;
        }
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        let info = peer.info();
        st.known.add_peer(id);
        st.sent_inv.add_peer(id);
        st.sent_items.add_peer(id);
        st.tracker.add_peer(id, rank(peer));
        let ready = Arc::new(Event::new());
        st.links.insert(
            id,
            Link {
                full_node: info.relay,
                outbox: VecDeque::new(),
                bytes: 0,
                queued: HashSet::new(),
                flooded: None,
                ready: ready.clone(),
            },
        );
        let room = self.clone();
        let peer = peer.clone();
        inner.spawn(async move { room.drain(peer, ready).await });
        true
    }

    /// Sends what is queued for `peer`, until it ends; then drops its books.
    async fn drain(self: Arc<Self>, peer: Peer<P>, ready: Arc<Event>) {
        let id = peer.id();
        loop {
            let listener = ready.listen();
            let next = self.lock().links.get_mut(&id).and_then(|l| {
                let (item, size, msg) = l.outbox.pop_front()?;
                l.bytes -= size;
                if let Some(hash) = item {
                    l.queued.remove(&hash);
                }
                Some(msg)
            });
            match next {
                Some(msg) => {
                    let asked = P::asked(&msg).map(|(_, hashes)| hashes.to_vec());
                    match peer.send(msg).await {
                        Ok(()) => {}
                        Err(_) if peer.is_closed() => break,
                        Err(error) => {
                            // Not sent, the peer still up (its room for
                            // requests is full, say): the next message is.
                            // What a `getdata` of ours asked for is asked
                            // of the next announcer.
                            tracing::debug!(peer = id, %error, "relay message not sent");
                            if let Some(hashes) = asked {
                                self.on_not_found(&peer, &hashes);
                            }
                        }
                    }
                }
                None if peer.is_closed() => break,
                None => {
                    future::or(listener, async {
                        peer.closed().await;
                    })
                    .await;
                }
            }
        }
        peer.closed().await;
        let mut st = self.lock();
        st.links.remove(&id);
        st.known.remove_peer(id);
        st.sent_inv.remove_peer(id);
        st.sent_items.remove_peer(id);
        st.tracker.remove_peer(id);
        if let Some(b) = st.batcher.as_mut() {
            b.remove_peer(id);
        }
        let requests = st.tracker.poll_requests(Instant::now());
        self.dispatch(&mut st, requests);
        drop(st);
        self.wake.notify(1);
    }

    /// Queues `msg` for peer `id`.
    fn push(&self, st: &mut State<P>, id: PeerId, msg: P::Message) -> bool {
        self.push_item(st, id, None, msg)
    }

    /// Queues `msg` for peer `id`; `item` is the hash of the item it
    /// carries, if it carries one.
    fn push_item(
        &self,
        st: &mut State<P>,
        id: PeerId,
        item: Option<UInt256>,
        msg: P::Message,
    ) -> bool {
        let limit = self.config.outbox.max(1);
        let Some(link) = st.links.get_mut(&id) else {
            return false;
        };
        let size = P::frame_size(&msg);
        let over =
            !link.outbox.is_empty() && link.bytes.saturating_add(size) > self.config.outbox_bytes;
        if link.outbox.len() >= limit || over {
            st.stats.dropped += 1;
            return false;
        }
        if let Some(hash) = item {
            link.queued.insert(hash);
        }
        link.bytes += size;
        link.outbox.push_back((item, size, msg));
        link.ready.notify(1);
        true
    }

    /// Sends a batch of announcements as one `inv`.
    fn send_batch(&self, st: &mut State<P>, flush: Flush<ItemKind>) {
        if let Some(inv) = P::inv(flush.kind, &flush.hashes) {
            if self.push(st, flush.peer, inv) {
                st.stats.announced += flush.hashes.len() as u64;
            }
        }
    }

    /// Turns the tracker's requests into `getdata` messages, one per peer
    /// and kind (they come ordered by peer).
    fn dispatch(&self, st: &mut State<P>, requests: Vec<Request<ItemKind>>) {
        let mut i = 0;
        while i < requests.len() {
            let (peer, kind) = (requests[i].peer, requests[i].kind);
            let mut hashes = Vec::new();
            while i < requests.len()
                && requests[i].peer == peer
                && requests[i].kind == kind
                && hashes.len() < MAX_INV_HASHES
            {
                hashes.push(requests[i].hash);
                i += 1;
            }
            let sent = P::get_data(kind, &hashes).is_some_and(|m| self.push(st, peer, m));
            if sent {
                st.stats.requested += hashes.len() as u64;
                st.stats.requested_by_kind.add(kind, hashes.len() as u64);
            } else {
                // Not queued: the next announcer is asked instead.
                for h in &hashes {
                    st.tracker.not_found(peer, *h);
                }
            }
        }
    }

    /// Whether the item is held already (relayed lately, or a block or
    /// transaction of the store).
    fn holds(&self, st: &State<P>, kind: ItemKind, hash: &UInt256) -> bool {
        if st.recent.items.contains_key(hash) {
            return true;
        }
        let Some(store) = &self.store else {
            return false;
        };
        match kind {
            ItemKind::Block => store.index_of(hash).is_some(),
            ItemKind::Transaction => store.transaction(hash).is_some(),
            ItemKind::Extensible | ItemKind::Consensus => false,
        }
    }

    fn on_inv(self: &Arc<Self>, peer: &Peer<P>, kind: ItemKind, hashes: &[UInt256]) {
        let id = peer.id();
        let now = Instant::now();
        let mut flood = false;
        {
            let mut st = self.lock();
            if !self.link(&mut st, peer) {
                return;
            }
            // The round trip is measured again now and then: the early
            // retry of what is asked of this peer follows it.
            st.tracker.add_peer(id, rank(peer));
            for &hash in hashes {
                st.known.mark(id, hash);
                if self.holds(&st, kind, &hash) {
                    st.stats.duplicates_avoided += 1;
                    continue;
                }
                if kind == ItemKind::Block && self.config.blocks_by_follower {
                    // The follower fetches it.
                    continue;
                }
                if let Announce::Flood = st.tracker.announced(now, id, kind, hash) {
                    flood = true;
                }
            }
            if flood {
                // Points at most once per spacing (the hashes past the
                // bound are dropped all the same).
                let spacing = self.config.flood_spacing;
                flood = match st.links.get_mut(&id) {
                    Some(link) if link.flooded.is_none_or(|t| now >= t + spacing) => {
                        link.flooded = Some(now);
                        true
                    }
                    _ => false,
                };
            }
            let requests = st.tracker.poll_requests(now);
            self.dispatch(&mut st, requests);
        }
        self.wake.notify(1);
        if flood {
            if let Some(inner) = self.inner.upgrade() {
                inner.penalise(node_addr(peer), self.config.flood_points, "inv flood");
            }
        }
    }

    fn on_not_found(self: &Arc<Self>, peer: &Peer<P>, hashes: &[UInt256]) {
        let mut st = self.lock();
        for &hash in hashes {
            st.tracker.not_found(peer.id(), hash);
        }
        let requests = st.tracker.poll_requests(Instant::now());
        self.dispatch(&mut st, requests);
        drop(st);
        self.wake.notify(1);
    }

    fn on_get_data(self: &Arc<Self>, peer: &Peer<P>, kind: ItemKind, hashes: &[UInt256]) {
        let id = peer.id();
        let mut st = self.lock();
        if !self.link(&mut st, peer) {
            return;
        }
        // One answer per hash at most: no more hashes are looked up than
        // the asker's outbox has room for, so that a long `getdata` (Legacy
        // takes 65,536 hashes) never builds more than that in memory.
        let Some(link) = st.links.get(&id) else {
            return;
        };
        let room = self.config.outbox.max(1).saturating_sub(link.outbox.len());
        // An item still waiting in the outbox for this peer is on its way:
        // asking again (however often) queues no second copy.
        let mut asked = distinct(hashes);
        asked.retain(|h| !link.queued.contains(h));
        if asked.len() > room {
            st.stats.dropped += (asked.len() - room) as u64;
            asked.truncate(room);
        }
        // Answered in order, the store read a few hashes at a time: once
        // the outbox refuses an answer (full, in messages or bytes), the
        // hashes not yet looked at are dropped unread.
        let total = asked.len();
        let mut looked = 0;
        let mut open = true;
        let mut rest = Vec::new();
        let mut missing = Vec::new();
        for hash in asked {
            if !open {
                break;
            }
            looked += 1;
            match st.recent.items.get(&hash) {
                Some(item) if item.kind == kind => {
                    let msg = item.message.clone();
                    open = self.answer(&mut st, id, msg);
                }
                _ => {
                    rest.push(hash);
                    if rest.len() == STORE_READS {
                        open = self.answer_from_store(&mut st, id, kind, &rest, &mut missing);
                        rest.clear();
                    }
                }
            }
        }
        if open {
            self.answer_from_store(&mut st, id, kind, &rest, &mut missing);
        } else {
            looked -= rest.len();
        }
        st.stats.dropped += (total - looked) as u64;
        // What was looked for and not found, in as few `notfound`s as may
        // carry it (N3; Legacy has none).
        for chunk in missing.chunks(MAX_INV_HASHES) {
            if let Some(msg) = P::not_found(kind, chunk) {
                if self.push(&mut st, id, msg) {
                    st.stats.not_found += chunk.len() as u64;
                }
            }
        }
    }

    /// Answers `hashes` (none of them relayed lately) from the store, and
    /// adds what it lacks to `missing`; false once the outbox refuses one.
    fn answer_from_store(
        &self,
        st: &mut State<P>,
        id: PeerId,
        kind: ItemKind,
        hashes: &[UInt256],
        missing: &mut Vec<UInt256>,
    ) -> bool {
        if hashes.is_empty() {
            return true;
        }
        let from_store = match (&self.store, kind) {
            (Some(store), ItemKind::Block | ItemKind::Transaction) => {
                P::get_data(kind, hashes).map(|ask| P::answer(store.as_ref(), &ask))
            }
            _ => None,
        };
        let Some(answers) = from_store else {
            missing.extend_from_slice(hashes);
            return true;
        };
        let mut open = true;
        for msg in answers {
            // The store's answer lists what it lacks in `notfound` (N3).
            match P::missing(&msg) {
                Some((_, lacks)) => missing.extend_from_slice(lacks),
                None => open &= self.answer(st, id, msg),
            }
        }
        open
    }

    /// Queues an item answering a `getdata` (anything else the store
    /// answers with goes as it is); false if the outbox refused it.
    fn answer(&self, st: &mut State<P>, id: PeerId, msg: P::Message) -> bool {
        let Some(item) = P::item(&msg) else {
            return self.push(st, id, msg);
        };
        // Counted as served only once queued (else as dropped).
        let queued = self.push_item(st, id, Some(item.hash), msg);
        if queued {
            st.known.mark(id, item.hash);
            if !st.sent_items.mark(id, item.hash) {
                st.stats.resent += 1;
            }
            st.stats.served += 1;
        }
        queued
    }

    fn on_item(self: &Arc<Self>, peer: &Peer<P>, item: Item<P>) {
        let id = peer.id();
        let new = {
            let mut st = self.lock();
            if !self.link(&mut st, peer) {
                return;
            }
            st.known.mark(id, item.hash);
            let held = st.recent.items.contains_key(&item.hash);
            let delivery = st.tracker.delivered(id, item.hash);
            let requests = st.tracker.poll_requests(Instant::now());
            self.dispatch(&mut st, requests);
            let new = delivery.is_new() && !held;
            if new {
                st.stats.received += 1;
            } else {
                st.stats.duplicates += 1;
            }
            new
        };
        self.wake.notify(1);
        if new {
            if let Some(inner) = self.inner.upgrade() {
                if item.kind == ItemKind::Block && self.config.blocks_by_follower {
                    inner.push_block(id, &item.message);
                }
                let addr = node_addr(peer);
                let from = ManagedPeer::new(PeerManager { inner }, addr, peer.clone());
                (self.on_item)(&from, item);
            }
        }
    }

    /// Asks what the tracker has to ask, at its deadlines, until shutdown.
    async fn run_timer(self: Arc<Self>, manager: PeerManager<P>) {
        loop {
            let listener = self.wake.listen();
            let next = {
                let mut st = self.lock();
                let now = Instant::now();
                let requests = st.tracker.poll_requests(now);
                self.dispatch(&mut st, requests);
                let due = st.batcher.as_mut().map(|b| b.poll(now)).unwrap_or_default();
                for flush in due {
                    self.send_batch(&mut st, flush);
                }
                let batch = st.batcher.as_ref().and_then(|b| b.poll_timeout());
                match (st.tracker.poll_timeout(), batch) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let woken = future::or(
                async {
                    listener.await;
                    true
                },
                manager.sleep_until(wake),
            )
            .await;
            if !woken && manager.inner.is_shutting_down() {
                return;
            }
        }
    }
}

/// How eagerly the tracker asks `peer`: outbound first, then by round trip.
fn rank<P: Protocol>(peer: &Peer<P>) -> Rank {
    Rank {
        preferred: peer.direction() == Direction::Outbound,
        rtt: peer.rtt(),
    }
}

impl<P: Inventory> RelayRoom<P> for Arc<Room<P>> {
    fn on_message(&self, peer: &Peer<P>, msg: &P::Message) -> bool {
        if let Some((kind, hashes)) = P::announced(msg) {
            self.on_inv(peer, kind, hashes);
        } else if let Some((kind, hashes)) = P::asked(msg) {
            self.on_get_data(peer, kind, hashes);
        } else if let Some((_, hashes)) = P::missing(msg) {
            self.on_not_found(peer, hashes);
        } else if let Some(item) = P::item(msg) {
            self.on_item(peer, item);
        } else {
            return false;
        }
        true
    }

    fn relay(&self, item: Item<P>) -> usize {
        let Some(inner) = self.inner.upgrade() else {
            return 0;
        };
        let targets: Vec<Peer<P>> = inner
            .lock()
            .peers
            .values()
            .map(|e| e.peer.clone())
            .collect();
        let mut st = self.lock();
        st.stats.relayed += 1;
        st.tracker.have(item.hash);
        let (kind, hash, height) = (item.kind, item.hash, item.height);
        st.recent.insert(item);
        let batched = kind == ItemKind::Transaction && st.batcher.is_some();
        let now = Instant::now();
        let mut announced = 0;
        for peer in targets {
            if !self.link(&mut st, &peer) {
                continue;
            }
            let id = peer.id();
            let wants = match (kind, height) {
                (ItemKind::Block, Some(h)) => peer.height() < h,
                _ => st.links.get(&id).is_some_and(|l| l.full_node),
            };
            if !wants || !st.known.mark(id, hash) {
                continue;
            }
            if batched {
                announced += 1;
                if !st.sent_inv.mark(id, hash) {
                    st.stats.resent += 1;
                }
                let full = st
                    .batcher
                    .as_mut()
                    .and_then(|b| b.push(now, id, kind, hash));
                if let Some(flush) = full {
                    self.send_batch(&mut st, flush);
                }
                continue;
            }
            if let Some(inv) = P::inv(kind, &[hash]) {
                if self.push(&mut st, id, inv) {
                    announced += 1;
                    if !st.sent_inv.mark(id, hash) {
                        st.stats.resent += 1;
                    }
                }
            }
        }
        if batched {
            // A batch may have begun: the timer learns its due time.
            drop(st);
            self.wake.notify(1);
        } else {
            st.stats.announced += announced as u64;
        }
        announced
    }

    fn stats(&self) -> RelayStats {
        let st = self.lock();
        let t = st.tracker.stats();
        RelayStats {
            peers: st.links.len(),
            tracked: st.tracker.len(),
            duplicates_avoided: st.stats.duplicates_avoided + t.duplicates_avoided,
            floods: t.floods,
            timeouts: t.timeouts,
            retries: t.retries,
            ..st.stats
        }
    }
}

impl<P: Protocol> PeerManager<P> {
    /// Announces `item` to every connected peer not known to have it: a
    /// block to the peers whose height is below it, transactions and
    /// payloads to full nodes; one `inv` each, at once (transactions in
    /// batches instead when [`RelayConfig::batch`] is set). The item is
    /// kept in the cache that answers `getdata`, and announcements of it by
    /// peers download nothing. Returns how many peers it was announced (or
    /// queued in a batch) to (0 when [`PeerManager::start_relay`] was not
    /// called).
    pub fn relay(&self, item: Item<P>) -> usize {
        match self.inner.relay.get() {
            Some(room) => room.relay(item),
            None => 0,
        }
    }

    /// The relay room's counters (`None` before
    /// [`PeerManager::start_relay`]).
    pub fn relay_stats(&self) -> Option<RelayStats> {
        self.inner.relay.get().map(|room| room.stats())
    }
}

impl<P: Inventory> PeerManager<P> {
    /// Starts relaying: from now on `inv`, `getdata`, `notfound` and item
    /// messages (transactions, blocks, extensible and consensus payloads)
    /// from every peer are the relay's, and no longer reach the manager's
    /// handler (answers to the handler's own requests other than `getdata`
    /// still do).
    ///
    /// - An `inv` marks its hashes as known to the sender (at most
    ///   [`RelayConfig::known_per_peer`] per peer, oldest forgotten first)
    ///   and feeds a [`RequestTracker`]: each new item is asked of one
    ///   announcer at a time (outbound, then faster peers first), then of
    ///   the next on `notfound`, deadline or disconnect. An `inv` past the
    ///   tracker's per-peer bound costs [`RelayConfig::flood_points`].
    /// - Each item new to us goes to `on_item`, with the peer that sent it;
    ///   the embedder checks it and calls [`PeerManager::relay`] for what
    ///   it accepts.
    /// - `getdata` is answered from the items relayed lately (at most
    ///   [`RelayConfig::cache`]), then from `store` when given (blocks and
    ///   transactions), and on N3 with `notfound` for the rest; no more
    ///   hashes are answered than the asker's queue has room for, and an
    ///   item still waiting in that queue is not queued again.
    /// - What the relay sends goes through a queue per peer of at most
    ///   [`RelayConfig::outbox`] messages and [`RelayConfig::outbox_bytes`]
    ///   bytes, drained by one task per peer: a peer that does not read
    ///   slows no one else; past the bound, what is queued for it is
    ///   dropped ([`RelayStats::dropped`]).
    ///
    /// Fails with [`ManagerError::RelayStarted`] the second time.
    ///
    /// ```no_run
    /// # use neo_peer::manager::{PeerManager, RelayConfig};
    /// # use neo_peer::protocol::N3;
    /// # fn demo(manager: PeerManager<N3>) -> Result<(), neo_peer::manager::ManagerError> {
    /// let relay = manager.clone();
    /// manager.start_relay(RelayConfig::default(), None, move |from, item| {
    ///     println!("{} {} from {:?}", item.kind, item.hash, from.addr());
    ///     // Check it here; then pass it on.
    ///     relay.relay(item);
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_relay(
        &self,
        config: RelayConfig,
        store: Option<Arc<dyn ChainStore<P>>>,
        on_item: impl Fn(&ManagedPeer<P>, Item<P>) + Send + Sync + 'static,
    ) -> Result<(), ManagerError> {
        let room = Arc::new(Room {
            inner: Arc::downgrade(&self.inner),
            state: Mutex::new(State {
                known: KnownInventory::new(config.known_per_peer),
                sent_inv: KnownInventory::new(config.sent_per_peer),
                sent_items: KnownInventory::new(config.sent_per_peer),
                tracker: RequestTracker::new(config.tracker.clone()),
                batcher: config
                    .batch
                    .map(|delay| InvBatcher::new(delay, MAX_INV_HASHES)),
                recent: Recent {
                    items: HashMap::new(),
                    order: VecDeque::new(),
                    capacity: config.cache,
                    bytes: 0,
                    max_bytes: config.cache_bytes,
                },
                links: HashMap::new(),
                stats: RelayStats::default(),
            }),
            config,
            store,
            on_item: Box::new(on_item),
            wake: Event::new(),
        });
        if self.inner.relay.set(Box::new(room.clone())).is_err() {
            return Err(ManagerError::RelayStarted);
        }
        let manager = self.clone();
        self.inner.spawn(room.run_timer(manager));
        Ok(())
    }
}

impl<P: Protocol> Inner<P> {
    /// Gives relay traffic to the relay room, if one runs; true if it took
    /// `msg`. Answers are the room's only when they answer a `getdata`.
    pub(super) fn relay_takes(
        &self,
        peer: &Peer<P>,
        msg: &P::Message,
        answering: Option<RequestKind>,
    ) -> bool {
        if matches!(answering, Some(kind) if kind != RequestKind::Data) {
            return false;
        }
        self.relay
            .get()
            .is_some_and(|room| room.on_message(peer, msg))
    }
}
