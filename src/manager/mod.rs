//! Many peers, one network view.
//!
//! A [`PeerManager`] owns the live peers of one protocol:
//!
//! - **Registry.** Peers join through [`PeerManager::add_peer`] (any
//!   connection), [`PeerManager::connect`], the listener
//!   ([`PeerManager::listen`]) or the dialer ([`PeerManager::start_dialer`]),
//!   and leave by themselves when they disconnect, their reason kept in
//!   [`PeerManager::departed`] and reported as a [`ManagerEvent`].
//! - **Routing.** A request goes to a peer that has no request of its kind
//!   outstanding, is high enough, and among those is the least loaded, then
//!   the fastest, then the one unused for longest. When every peer is busy
//!   the request waits for one (up to the route timeout).
//! - **Exactly once.** When the chosen peer disconnects or stalls before
//!   answering, the request is tried on another peer, up to
//!   [`ManagerConfig::max_attempts`]; the caller gets one result. A
//!   request's answer goes either to the caller (`get_*`) or, for
//!   `request_*`, to the handler, once.
//! - **Limits and policy.** Inbound, outbound and per-IP limits, duplicate
//!   connections (same nonce) refused, misbehaviour points per address
//!   (bad frames, broken rules, stalls, unsolicited `addr`), bans kept in
//!   the [`AddressBook`].
//! - **Addresses.** Outbound peers are asked for addresses after the
//!   handshake and every [`ManagerConfig::addr_interval`]; `addr` answers
//!   feed the book, `getaddr` is answered from it. The book is flushed
//!   every [`ManagerConfig::flush_interval`] and at shutdown.
//!
//! [`sync`] fetches a header chain through a manager, from many peers at once.
//!
//! ```no_run
//! use std::time::Duration;
//! use neo_peer::book::{AddressBook, BookConfig};
//! use neo_peer::executor::SmolGlobal;
//! use neo_peer::manager::{ManagerConfig, PeerManager};
//! use neo_peer::peer::{IgnoreAll, LocalConfig};
//! use neo_peer::protocol::{N3, Protocol};
//! use neo_peer::wire::n3::PRIVNET_MAGIC;
//!
//! smol::block_on(async {
//!     let book = AddressBook::in_memory(BookConfig::new(N3::NAME, PRIVNET_MAGIC));
//!     let config = ManagerConfig::new(LocalConfig::new(PRIVNET_MAGIC));
//!     let manager = PeerManager::<N3>::new(config, book, IgnoreAll, SmolGlobal)?;
//!     manager.connect("127.0.0.1:20333".parse()?).await?;
//!     let headers = manager.get_headers(0, 2000).await?;
//!     println!("{} headers", headers.len());
//!     manager.shutdown().await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod feeler;
mod net;
mod request;
mod routing;
pub mod sync;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_io::Timer;
use event_listener::Event;
use futures_lite::future;

pub use config::{
    ADDR_INTERVAL, BAN_DURATION, BAN_THRESHOLD, DIAL_INTERVAL, DIAL_TIMEOUT, FEELER_INTERVAL,
    FLUSH_INTERVAL, MAX_ATTEMPTS, MAX_IN_FLIGHT_PER_KIND, MAX_INBOUND, MAX_OUTBOUND, MAX_PER_IP,
    ManagerConfig, Penalties, ROUTE_TIMEOUT, SHUTDOWN_GRACE, TARGET_OUTBOUND,
};
pub use error::{Departed, ManagerError, ManagerEvent, PeerSummary, ShutdownReport};

use crate::book::AddressBook;
use crate::executor::{Executor, Task};
use crate::peer::{
    Connection, Direction, DisconnectReason, Handler, Misbehaviour, Peer, PeerError,
};
use crate::protocol::{Protocol, RequestKind};
use crate::telemetry;

/// A peer's number: [`Peer::id`], unique in the process and never reused.
pub type PeerId = u64;

const KINDS: usize = 6;
const MAX_DEPARTED: usize = 256;
const EVENT_CAPACITY: usize = 1024;

fn kind_index(kind: RequestKind) -> usize {
    match kind {
        RequestKind::Headers => 0,
        RequestKind::BlockHashes => 1,
        RequestKind::BlocksByIndex => 2,
        RequestKind::Data => 3,
        RequestKind::Addr => 4,
        RequestKind::Ping => 5,
    }
}

struct Entry<P: Protocol> {
    peer: Peer<P>,
    addr: Option<SocketAddr>,
    ip: Option<IpAddr>,
    nonce: u32,
    /// Our end of the connection, when known.
    local: Option<SocketAddr>,
    in_flight: [u32; KINDS],
    served: u64,
    rtt: Option<Duration>,
    last_used: u64,
}

struct Registry<P: Protocol> {
    peers: HashMap<PeerId, Entry<P>>,
    departed: VecDeque<Departed>,
    /// Addresses being dialed.
    dialing: HashSet<SocketAddr>,
    /// Connections per IP, handshaking ones included.
    per_ip: HashMap<IpAddr, usize>,
    /// Handshaking connections per direction (inbound, outbound).
    handshaking: [usize; 2],
    /// Misbehaviour points per address.
    scores: HashMap<SocketAddr, u32>,
    clock: u64,
}

type MakePeer<P> =
    Box<dyn Fn(Box<dyn Connection>, Direction, Weak<Inner<P>>) -> Peer<P> + Send + Sync>;
type Deliver<P> = Box<dyn Fn(Peer<P>, <P as Protocol>::Message, RequestKind) -> Task + Send + Sync>;

pub(crate) struct Inner<P: Protocol> {
    config: ManagerConfig<P>,
    book: AddressBook,
    executor: Counted,
    make_peer: MakePeer<P>,
    deliver: Deliver<P>,
    registry: Mutex<Registry<P>>,
    /// A peer joined, left or finished a request.
    changed: Event,
    shutting_down: AtomicBool,
    stop: Event,
    events: async_channel::Sender<ManagerEvent>,
    events_rx: async_channel::Receiver<ManagerEvent>,
    /// The port the listener is bound to (0: not listening).
    listen_port: std::sync::atomic::AtomicU16,
}

/// The executor of the manager's and its peers' tasks, counting them.
#[derive(Clone)]
struct Counted {
    inner: Arc<dyn Executor>,
    live: Arc<AtomicUsize>,
}

struct LiveTask(Arc<AtomicUsize>);

impl Drop for LiveTask {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Executor for Counted {
    fn spawn(&self, task: Task) {
        self.live.fetch_add(1, Ordering::AcqRel);
        let guard = LiveTask(self.live.clone());
        self.inner.spawn(Box::pin(async move {
            let _guard = guard;
            task.await;
        }));
    }
}

/// A manager of the peers of protocol `P`. Cheap to clone: every clone is
/// the same manager.
pub struct PeerManager<P: Protocol> {
    inner: Arc<Inner<P>>,
}

impl<P: Protocol> Clone for PeerManager<P> {
    fn clone(&self) -> Self {
        PeerManager {
            inner: self.inner.clone(),
        }
    }
}

impl<P: Protocol> std::fmt::Debug for PeerManager<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerManager")
            .field("protocol", &P::NAME)
            .field("peers", &self.len())
            .finish()
    }
}

/// The handler every managed peer runs: the manager's own business
/// (`getaddr`, `addr`, misbehaviour) first, everything else to the caller's
/// handler.
struct Managed<P: Protocol, H> {
    user: Arc<H>,
    inner: Weak<Inner<P>>,
}

impl<P: Protocol, H: Handler<P>> Handler<P> for Managed<P, H> {
    async fn handle(&self, peer: &Peer<P>, msg: P::Message) {
        if let Some(inner) = self.inner.upgrade() {
            if P::is_get_addr(&msg) {
                let known = inner.addresses_for(peer.id());
                if let Some(answer) = P::addr(&known) {
                    let _ = peer.send(answer).await;
                }
                return;
            }
            if P::addresses(&msg).is_some() {
                // An `addr` that answers no `getaddr` of ours (the peer
                // machine matched our requests' answers; this is not one).
                let addr = inner.addr_of(peer.id());
                let points = inner.config.penalties.unsolicited_addr;
                inner.penalise(addr, points, "unsolicited addr");
                return;
            }
        }
        self.user.handle(peer, msg).await;
    }

    async fn handle_answer(&self, peer: &Peer<P>, msg: P::Message, request: RequestKind) {
        if let Some(inner) = self.inner.upgrade() {
            if let Some(addrs) = P::addresses(&msg) {
                inner.learn(peer.id(), &addrs);
            }
        }
        self.user.handle_answer(peer, msg, request).await;
    }

    async fn misbehaved(&self, peer: &Peer<P>, what: Misbehaviour) {
        if let Some(inner) = self.inner.upgrade() {
            let points = match what {
                Misbehaviour::HeightLie { .. } => inner.config.penalties.height_lie,
            };
            inner.penalise(inner.addr_of(peer.id()), points, &what.to_string());
        }
        self.user.misbehaved(peer, what).await;
    }
}

impl<P: Protocol> Inner<P> {
    fn lock(&self) -> MutexGuard<'_, Registry<P>> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: ManagerEvent) {
        let _ = self.events.force_send(event);
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.executor.spawn(Box::pin(task));
    }

    /// Adds `points` to `addr`'s score; bans it past the threshold.
    fn penalise(&self, addr: Option<SocketAddr>, points: u32, why: &str) {
        let Some(addr) = addr.filter(|_| points > 0) else {
            return;
        };
        let mut reg = self.lock();
        let score = reg.scores.entry(addr).or_insert(0);
        *score = score.saturating_add(points);
        tracing::debug!(remote = %addr, points, score = *score, why, "misbehaviour");
        let banned = *score >= self.config.ban_threshold;
        telemetry::penalised(points, banned);
        if !banned {
            return;
        }
        reg.scores.remove(&addr);
        let victims: Vec<Peer<P>> = reg
            .peers
            .values()
            .filter(|e| e.addr == Some(addr))
            .map(|e| e.peer.clone())
            .collect();
        drop(reg);
        let reason = format!("banned: {why}");
        self.book.ban(addr, self.config.ban_duration, why);
        tracing::warn!(remote = %addr, why, "banned");
        self.emit(ManagerEvent::Banned {
            addr,
            reason: why.to_string(),
        });
        for peer in victims {
            peer.disconnect_with(DisconnectReason::Misbehaviour(reason.clone()));
        }
    }

    /// What to answer peer `id`'s `getaddr` with: the book's best
    /// addresses or, while it has none, the listening addresses of the live
    /// peers; our own listener (as `id` reaches us) always, so that the
    /// answer is never empty while we listen (an unanswered `getaddr`
    /// stalls the asker).
    fn addresses_for(&self, id: PeerId) -> Vec<crate::protocol::GossipAddr> {
        const MOST: usize = 200;
        let now = crate::protocol::unix_seconds();
        let gossip = |addr| crate::protocol::GossipAddr {
            addr,
            timestamp: now,
            services: P::services(&self.config.local.identity),
        };
        let mut known = self.book.for_getaddr(MOST - 1);
        let reg = self.lock();
        if known.is_empty() {
            known.extend(
                reg.peers
                    .values()
                    .filter_map(|e| e.addr)
                    .filter(|a| a.port() != 0)
                    .take(MOST - 1)
                    .map(gossip),
            );
        }
        let port = self.listen_port.load(Ordering::Relaxed);
        let ours = reg.peers.get(&id).and_then(|e| e.local);
        if let Some(local) = ours.filter(|_| port != 0) {
            let me = SocketAddr::new(local.ip(), port);
            if !known.iter().any(|g| g.addr == me) {
                known.push(gossip(me));
            }
        }
        known
    }

    fn addr_of(&self, id: PeerId) -> Option<SocketAddr> {
        self.lock().peers.get(&id).and_then(|e| e.addr)
    }

    /// Addresses peer `id` sent in answer to our `getaddr`: into the book.
    fn learn(&self, id: PeerId, addrs: &[crate::protocol::GossipAddr]) {
        let from = self.addr_of(id);
        let new = self.book.learn(from, addrs);
        if new > 0 {
            telemetry::address_book(&self.book);
            self.emit(ManagerEvent::Learned { from, new });
        }
    }

    /// A peer left: out of the registry, into the departed list and the book.
    fn departure(&self, id: PeerId, reason: DisconnectReason) {
        let mut reg = self.lock();
        let Some(entry) = reg.peers.remove(&id) else {
            return;
        };
        if let Some(ip) = entry.ip {
            release_ip(&mut reg.per_ip, ip);
        }
        reg.departed.push_back(Departed {
            id,
            addr: entry.addr,
            reason: reason.clone(),
            at: SystemTime::now(),
        });
        if reg.departed.len() > MAX_DEPARTED {
            reg.departed.pop_front();
        }
        drop(reg);
        self.changed.notify(usize::MAX);
        if let Some(addr) = entry.addr {
            self.book.record_disconnect(addr, &reason.to_string());
            self.book.record_height(addr, entry.peer.height());
            // The book keeps the ping round trip, not request latencies.
            if let Some(rtt) = entry.peer.info().rtt {
                self.book.record_rtt(addr, rtt);
            }
        }
        let points = routing::penalty(&reason, &self.config.penalties);
        self.penalise(entry.addr, points, &reason.to_string());
        self.emit(ManagerEvent::Disconnected {
            id,
            addr: entry.addr,
            reason,
        });
    }
}

fn release_ip(per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = per_ip.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            per_ip.remove(&ip);
        }
    }
}

/// Undoes a connection's reservation (per-IP count, handshaking slot) unless
/// it became a registered peer.
struct Reservation<'a, P: Protocol> {
    inner: &'a Inner<P>,
    ip: Option<IpAddr>,
    direction: Direction,
    keep_ip: bool,
}

impl<P: Protocol> Drop for Reservation<'_, P> {
    fn drop(&mut self) {
        let mut reg = self.inner.lock();
        reg.handshaking[direction_index(self.direction)] -= 1;
        if !self.keep_ip {
            if let Some(ip) = self.ip {
                release_ip(&mut reg.per_ip, ip);
            }
        }
    }
}

fn direction_index(d: Direction) -> usize {
    match d {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    }
}

impl<P: Protocol> PeerManager<P> {
    /// A manager with no peers yet. `handler` receives every message the
    /// manager does not handle itself (it handles `getaddr` and `addr`,
    /// handing `addr` on too); `executor` runs the manager's and the peers'
    /// tasks.
    ///
    /// Fails with [`ManagerError::BookMismatch`] when `book` was made for
    /// another protocol or network than `P` and the local network: its
    /// addresses would be useless, and the next open of its file would fail.
    pub fn new<H: Handler<P>, E: Executor>(
        config: ManagerConfig<P>,
        book: AddressBook,
        handler: H,
        executor: E,
    ) -> Result<Self, ManagerError> {
        let made_for = book.config();
        let network = config.local.identity.network;
        if made_for.protocol != P::NAME || made_for.network != network {
            return Err(ManagerError::BookMismatch {
                book: (made_for.protocol, made_for.network),
                manager: (P::NAME, network),
            });
        }
        let user = Arc::new(handler);
        let executor = Counted {
            inner: Arc::new(executor),
            live: Arc::new(AtomicUsize::new(0)),
        };
        let local = config.local.clone();
        let peer_executor = executor.clone();
        let make_user = user.clone();
        let make_peer: MakePeer<P> = Box::new(move |conn, direction, inner| {
            let handler = Managed {
                user: make_user.clone(),
                inner,
            };
            Peer::new(
                conn,
                direction,
                local.clone(),
                handler,
                peer_executor.clone(),
            )
        });
        let deliver: Deliver<P> = Box::new(move |peer, msg, kind| {
            let user = user.clone();
            Box::pin(async move { user.handle_answer(&peer, msg, kind).await })
        });
        let (events, events_rx) = async_channel::bounded(EVENT_CAPACITY);
        telemetry::address_book(&book);
        Ok(PeerManager {
            inner: Arc::new(Inner {
                config,
                book,
                executor,
                make_peer,
                deliver,
                registry: Mutex::new(Registry {
                    peers: HashMap::new(),
                    departed: VecDeque::new(),
                    dialing: HashSet::new(),
                    per_ip: HashMap::new(),
                    handshaking: [0, 0],
                    scores: HashMap::new(),
                    clock: 0,
                }),
                changed: Event::new(),
                shutting_down: AtomicBool::new(false),
                stop: Event::new(),
                events,
                events_rx,
                listen_port: std::sync::atomic::AtomicU16::new(0),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ManagerConfig<P> {
        &self.inner.config
    }

    /// The address book.
    pub fn book(&self) -> &AddressBook {
        &self.inner.book
    }

    /// Events about the peers (connections, departures, bans, failed
    /// requests). Every receiver draws from the same queue.
    pub fn events(&self) -> async_channel::Receiver<ManagerEvent> {
        self.inner.events_rx.clone()
    }

    /// Live peers.
    pub fn len(&self) -> usize {
        self.inner.lock().peers.len()
    }

    /// True when no peer is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tasks running on behalf of the manager and its peers.
    pub fn live_tasks(&self) -> usize {
        self.inner.executor.live.load(Ordering::Acquire)
    }

    /// The live peers, ordered by number.
    pub fn peers(&self) -> Vec<PeerSummary<P>> {
        let reg = self.inner.lock();
        let mut all: Vec<_> = reg
            .peers
            .iter()
            .map(|(&id, e)| PeerSummary {
                id,
                addr: e.addr,
                peer: e.peer.clone(),
                info: e.peer.info(),
                stats: e.peer.stats(),
                served: e.served,
                in_flight: e.in_flight.iter().sum(),
                rtt: e.rtt,
                score: e
                    .addr
                    .and_then(|a| reg.scores.get(&a).copied())
                    .unwrap_or(0),
            })
            .collect();
        all.sort_by_key(|s| s.id);
        all
    }

    /// The live peer with number `id`.
    pub fn peer(&self, id: PeerId) -> Option<Peer<P>> {
        self.inner.lock().peers.get(&id).map(|e| e.peer.clone())
    }

    /// The last peers that left (at most 256), oldest first.
    pub fn departed(&self) -> Vec<Departed> {
        self.inner.lock().departed.iter().cloned().collect()
    }

    /// The highest height any live peer has shown.
    pub fn best_height(&self) -> u32 {
        let reg = self.inner.lock();
        reg.peers
            .values()
            .map(|e| e.peer.height())
            .max()
            .unwrap_or(0)
    }

    /// Disconnects peer `id` (it then leaves the registry by itself).
    pub fn remove(&self, id: PeerId) -> bool {
        match self.peer(id) {
            Some(peer) => {
                peer.disconnect();
                true
            }
            None => false,
        }
    }

    /// Adds misbehaviour points to the address of peer `id` (banned past the
    /// threshold) and returns whether the peer was known.
    pub fn report(&self, id: PeerId, points: u32, why: &str) -> bool {
        let addr = self.inner.addr_of(id);
        self.inner.penalise(addr, points, why);
        addr.is_some()
    }

    /// Waits until at least `n` peers are live, or `timeout` passes; returns
    /// how many are.
    pub async fn wait_for_peers(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let listener = self.inner.changed.listen();
            let live = self.len();
            if live >= n || Instant::now() >= deadline || self.inner.is_shutting_down() {
                return live;
            }
            future::or(listener, async {
                Timer::at(deadline).await;
            })
            .await;
        }
    }

    /// Runs the handshake over `conn` and adds the peer. `remote` is the
    /// address it came from (for an outbound peer: the address dialed).
    pub async fn add_peer<C: Connection>(
        &self,
        conn: C,
        direction: Direction,
        remote: Option<SocketAddr>,
    ) -> Result<Peer<P>, ManagerError> {
        self.add_connection(conn, direction, remote, None).await
    }

    /// [`PeerManager::add_peer`], knowing our end of the connection.
    async fn add_connection<C: Connection>(
        &self,
        conn: C,
        direction: Direction,
        remote: Option<SocketAddr>,
        local: Option<SocketAddr>,
    ) -> Result<Peer<P>, ManagerError> {
        let inner = &self.inner;
        if inner.is_shutting_down() {
            return Err(ManagerError::Shutdown);
        }
        let ip = remote.map(|a| a.ip());
        if let Some(addr) = remote {
            // An inbound peer comes from a port of its own choosing: its IP decides.
            let banned = inner.book.is_banned(addr)
                || (direction == Direction::Inbound && inner.book.is_ip_banned(addr.ip()));
            if banned {
                return Err(ManagerError::Banned(addr));
            }
        }
        let mut reservation = self.reserve(direction, ip)?;
        let mut peer = (inner.make_peer)(Box::new(conn), direction, Arc::downgrade(inner));
        let id = peer.id();
        if let Some(addr) = remote {
            peer = peer.with_remote_addr(addr);
        }
        let shown = remote.map_or_else(|| "?".to_string(), |a| a.to_string());
        if let Err(error) = peer.run().await {
            if let (Direction::Outbound, Some(addr)) = (direction, remote) {
                inner.book.record_failure(addr);
            }
            if let PeerError::Disconnected(reason) = &error {
                let points = routing::penalty(reason, &inner.config.penalties);
                inner.penalise(remote, points, &reason.to_string());
            }
            return Err(ManagerError::Handshake { addr: shown, error });
        }
        let info = peer.info();
        let nonce = info.nonce.unwrap_or(0);
        // The address that identifies the node: where it listens.
        let addr = match (direction, remote) {
            (Direction::Outbound, r) => r,
            (Direction::Inbound, Some(r)) => Some(SocketAddr::new(r.ip(), info.port)),
            (Direction::Inbound, None) => None,
        };
        if let Some(a) = addr.filter(|a| a.port() != 0 && inner.book.is_banned(*a)) {
            peer.disconnect_with(DisconnectReason::Misbehaviour("banned".into()));
            return Err(ManagerError::Banned(a));
        }
        {
            let mut reg = inner.lock();
            if inner.is_shutting_down() {
                drop(reg);
                peer.disconnect_with(DisconnectReason::Shutdown);
                return Err(ManagerError::Shutdown);
            }
            if reg.peers.values().any(|e| e.nonce == nonce) {
                drop(reg);
                peer.disconnect_with(DisconnectReason::Duplicate(nonce));
                return Err(ManagerError::Handshake {
                    addr: shown,
                    error: PeerError::Disconnected(DisconnectReason::Duplicate(nonce)),
                });
            }
            reg.peers.insert(
                id,
                Entry {
                    peer: peer.clone(),
                    addr,
                    ip,
                    nonce,
                    local,
                    in_flight: [0; KINDS],
                    served: 0,
                    rtt: None,
                    last_used: 0,
                },
            );
            reservation.keep_ip = true;
        }
        drop(reservation);
        // The peer may have ended before it was registered: the watcher
        // sees that at once and takes it out again.
        let watcher = self.inner.clone();
        let watched = peer.clone();
        // In the peer's span: what the departure logs (points, a ban) names it.
        let span = peer.span();
        inner.spawn(tracing::Instrument::instrument(
            async move {
                let reason = watched.closed().await;
                watcher.departure(id, reason);
            },
            span,
        ));
        let facts = feeler::facts(&info);
        if let Some(a) = addr.filter(|a| a.port() != 0) {
            match direction {
                Direction::Inbound => inner.book.record_inbound(a, &facts),
                Direction::Outbound => inner.book.record_success(a, &facts),
            }
        }
        telemetry::address_book(&inner.book);
        inner.changed.notify(usize::MAX);
        inner.emit(ManagerEvent::Connected {
            id,
            addr,
            direction,
            user_agent: facts.user_agent,
            height: info.height,
        });
        if direction == Direction::Outbound {
            self.ask_addresses(id).await;
        }
        Ok(peer)
    }

    /// Checks the limits for a new connection and holds its place.
    fn reserve(
        &self,
        direction: Direction,
        ip: Option<IpAddr>,
    ) -> Result<Reservation<'_, P>, ManagerError> {
        let inner = &self.inner;
        let mut reg = inner.lock();
        let d = direction_index(direction);
        let live = reg
            .peers
            .values()
            .filter(|e| e.peer.direction() == direction)
            .count();
        let (max, what) = match direction {
            Direction::Inbound => (inner.config.max_inbound, "inbound peers"),
            Direction::Outbound => (inner.config.max_outbound, "outbound peers"),
        };
        if live + reg.handshaking[d] >= max {
            return Err(ManagerError::Limit(what));
        }
        if let Some(ip) = ip {
            let n = reg.per_ip.entry(ip).or_insert(0);
            if *n >= inner.config.max_per_ip {
                return Err(ManagerError::Limit("connections per IP"));
            }
            *n += 1;
        }
        reg.handshaking[d] += 1;
        Ok(Reservation {
            inner,
            ip,
            direction,
            keep_ip: false,
        })
    }

    /// Sends `getaddr` to peer `id`; its `addr` answer feeds the book.
    async fn ask_addresses(&self, id: PeerId) {
        if let Some(peer) = self.peer(id) {
            let _ = peer.request_addr().await;
        }
    }

    /// Asks every live peer for addresses now.
    pub async fn refresh_addresses(&self) {
        let ids: Vec<PeerId> = self.inner.lock().peers.keys().copied().collect();
        for id in ids {
            self.ask_addresses(id).await;
        }
    }

    /// Stores the outbound peers as the book's anchors, disconnects every
    /// peer (reason [`DisconnectReason::Shutdown`]), stops the listener,
    /// dialer and periodic tasks, waits for every task to end (up to
    /// [`ManagerConfig::shutdown_grace`]), flushes the book and releases its
    /// file ([`AddressBook::close`]).
    pub async fn shutdown(&self) -> ShutdownReport {
        let inner = &self.inner;
        self.save_anchors();
        inner.shutting_down.store(true, Ordering::Release);
        inner.stop.notify(usize::MAX);
        inner.changed.notify(usize::MAX);
        let peers: Vec<Peer<P>> = inner
            .lock()
            .peers
            .values()
            .map(|e| e.peer.clone())
            .collect();
        for peer in &peers {
            peer.disconnect_with(DisconnectReason::Shutdown);
        }
        let deadline = Instant::now() + inner.config.shutdown_grace;
        while (self.live_tasks() > 0 || !self.is_empty()) && Instant::now() < deadline {
            Timer::after(Duration::from_millis(2)).await;
        }
        telemetry::address_book(&inner.book);
        let flushed = inner.book.close_async().await.map_err(|e| e.to_string());
        ShutdownReport {
            peers: peers.len(),
            tasks_left: self.live_tasks(),
            flushed,
        }
    }

    /// Resolves when [`PeerManager::shutdown`] has been called.
    async fn stopped(&self) {
        loop {
            let listener = self.inner.stop.listen();
            if self.inner.is_shutting_down() {
                return;
            }
            listener.await;
        }
    }

    /// Sleeps until `wake`; false if the manager began shutting down first.
    async fn sleep_until(&self, wake: Instant) -> bool {
        future::or(
            async {
                self.stopped().await;
                false
            },
            async {
                Timer::at(wake).await;
                true
            },
        )
        .await
    }

    /// Flushes the book every [`ManagerConfig::flush_interval`] and asks the
    /// peers for addresses every [`ManagerConfig::addr_interval`], until
    /// shutdown.
    pub fn start_maintenance(&self) {
        let manager = self.clone();
        self.inner.spawn(async move {
            let config = &manager.inner.config;
            let mut next_flush = Instant::now() + config.flush_interval;
            let mut next_addr = Instant::now() + config.addr_interval;
            loop {
                if !manager.sleep_until(next_flush.min(next_addr)).await {
                    return;
                }
                let now = Instant::now();
                if now >= next_flush {
                    if let Err(e) = manager.inner.book.flush_async().await {
                        tracing::warn!(error = %e, "address book flush failed");
                    }
                    telemetry::address_book(&manager.inner.book);
                    next_flush = now + config.flush_interval;
                }
                if now >= next_addr {
                    manager.refresh_addresses().await;
                    next_addr = now + config.addr_interval;
                }
            }
        });
    }
}
