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
//! - **One peer by hand.** [`PeerManager::peer`] gives a [`ManagedPeer`]:
//!   requests made on it take that peer's request slots and their answers
//!   go through the same books (an `addr` it asked for is no gossip).
//! - **Addresses.** Outbound peers are asked for addresses after the
//!   handshake and every [`ManagerConfig::addr_interval`]; `addr` answers
//!   feed the book, `getaddr` is answered from it. The book is flushed
//!   every [`ManagerConfig::flush_interval`] and at shutdown.
//!
//! - **Relay.** [`PeerManager::start_relay`] downloads each item peers
//!   announce once, hands it to the embedder, and
//!   [`PeerManager::relay`] announces what it accepts to every peer that
//!   lacks it, never back to where it came from.
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

mod admission;
mod announce;
mod config;
pub mod download;
mod error;
mod feeler;
mod follower;
mod gossip;
mod handle;
mod lifecycle;
mod net;
mod registry;
mod relay;
mod request;
mod routing;
mod scores;
pub mod sync;

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use event_listener::Event;

pub use announce::{ANNOUNCED_HASHES, ANNOUNCEMENT_CAPACITY, Announcement, PUSHED_CAPACITY};
pub use config::{
    ADDR_INTERVAL, BAN_DURATION, BAN_THRESHOLD, DIAL_INTERVAL, DIAL_TIMEOUT, FEELER_INTERVAL,
    FLUSH_INTERVAL, MAX_ATTEMPTS, MAX_IN_FLIGHT_PER_KIND, MAX_INBOUND, MAX_OUTBOUND, MAX_PER_IP,
    ManagerConfig, Penalties, ROUTE_TIMEOUT, SHUTDOWN_GRACE, TARGET_OUTBOUND,
};
pub use error::{Departed, ManagerError, ManagerEvent, PeerSummary, ShutdownReport};
pub use follower::{FOLLOW_CHECK, FOLLOW_EVENTS, FollowConfig, FollowError, FollowEvent, Follower};
pub use handle::ManagedPeer;
pub use relay::{
    ByKind, FLOOD_POINTS, FLOOD_SPACING, OnItem, RELAY_CACHE, RELAY_CACHE_BYTES, RELAY_OUTBOX,
    RELAY_OUTBOX_BYTES, RelayConfig, RelayStats, SENT_PER_PEER,
};

use gossip::Managed;
use lifecycle::Counted;
use registry::{Registry, kind_index};

use crate::book::AddressBook;
use crate::executor::{Executor, Task};
use crate::peer::{Connection, Direction, Handler, Peer};
use crate::protocol::{Protocol, RequestKind};
use crate::telemetry;

/// A peer's number: [`Peer::id`], unique in the process and never reused.
pub type PeerId = u64;

/// Events kept for the receivers of [`PeerManager::events`].
const EVENT_CAPACITY: usize = 1024;

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
    /// The relay room, once started.
    relay: OnceLock<Box<dyn relay::RelayRoom<P>>>,
    /// Subscribers to block announcements (each queue bounded; closed ones
    /// are removed at the next announcement).
    announcements: Mutex<Vec<async_channel::Sender<Announcement>>>,
    /// Followers of the chain offered the blocks peers send unasked (each
    /// queue bounded; closed ones are removed at the next block).
    pushed: Mutex<Vec<async_channel::Sender<announce::Pushed<P>>>>,
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

/// A manager that does not keep it alive: what a handler made by
/// [`PeerManager::with_handler`] holds. Cheap to clone.
pub struct WeakManager<P: Protocol> {
    inner: Weak<Inner<P>>,
}

impl<P: Protocol> Clone for WeakManager<P> {
    fn clone(&self) -> Self {
        WeakManager {
            inner: self.inner.clone(),
        }
    }
}

impl<P: Protocol> std::fmt::Debug for WeakManager<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakManager")
            .field("protocol", &P::NAME)
            .field("live", &(self.inner.strong_count() > 0))
            .finish()
    }
}

impl<P: Protocol> WeakManager<P> {
    /// The manager, unless it has been dropped.
    pub fn upgrade(&self) -> Option<PeerManager<P>> {
        self.inner.upgrade().map(|inner| PeerManager { inner })
    }

    /// The managed peer behind `peer`, the handle a handler is given: its
    /// number is [`Peer::id`] and its address is the node's (where it
    /// listens). Its first messages can come just before the manager has
    /// registered it: they are named all the same. `None` when the manager
    /// is gone, or the peer has closed.
    pub fn peer(&self, peer: &Peer<P>) -> Option<ManagedPeer<P>> {
        let manager = self.upgrade()?;
        if let Some(managed) = manager.peer(peer.id()) {
            return Some(managed);
        }
        if peer.is_closed() {
            return None;
        }
        let addr = registry::node_addr(peer);
        Some(ManagedPeer::new(manager, addr, peer.clone()))
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
        Self::with_handler(config, book, |_| handler, executor)
    }

    /// [`PeerManager::new`], with the handler made by `make_handler` from
    /// a [`WeakManager`]: a handler that keeps it can reach the manager
    /// from inside, and so the managed peer that called it
    /// ([`WeakManager::peer`]), with its number and address, without
    /// owning the manager (which owns the handler).
    ///
    /// ```no_run
    /// use neo_peer::book::{AddressBook, BookConfig};
    /// use neo_peer::executor::SmolGlobal;
    /// use neo_peer::manager::{ManagerConfig, PeerManager, WeakManager};
    /// use neo_peer::peer::{Handler, LocalConfig, Peer};
    /// use neo_peer::protocol::{N3, Protocol};
    /// use neo_peer::wire::n3::{Message, PRIVNET_MAGIC};
    ///
    /// struct Who(WeakManager<N3>);
    ///
    /// impl Handler<N3> for Who {
    ///     async fn handle(&self, peer: &Peer<N3>, msg: Message) {
    ///         if let Some(managed) = self.0.peer(peer) {
    ///             println!("{} from peer {} at {:?}", msg.command_name(), managed.id(), managed.addr());
    ///         }
    ///     }
    /// }
    ///
    /// let book = AddressBook::in_memory(BookConfig::new(N3::NAME, PRIVNET_MAGIC));
    /// let config = ManagerConfig::new(LocalConfig::new(PRIVNET_MAGIC));
    /// let manager = PeerManager::<N3>::with_handler(config, book, Who, SmolGlobal)?;
    /// # Ok::<_, neo_peer::manager::ManagerError>(())
    /// ```
    pub fn with_handler<H: Handler<P>, E: Executor>(
        config: ManagerConfig<P>,
        book: AddressBook,
        make_handler: impl FnOnce(WeakManager<P>) -> H,
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
        let executor = Counted {
            inner: Arc::new(executor),
            live: Arc::new(AtomicUsize::new(0)),
        };
        let (events, events_rx) = async_channel::bounded(EVENT_CAPACITY);
        telemetry::address_book(&book);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner<P>>| {
            let user = Arc::new(make_handler(WeakManager {
                inner: weak.clone(),
            }));
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
            Inner {
                config,
                book,
                executor,
                make_peer,
                deliver,
                registry: Mutex::new(Registry::new()),
                changed: Event::new(),
                shutting_down: AtomicBool::new(false),
                stop: Event::new(),
                events,
                events_rx,
                listen_port: std::sync::atomic::AtomicU16::new(0),
                relay: OnceLock::new(),
                announcements: Mutex::new(Vec::new()),
                pushed: Mutex::new(Vec::new()),
            }
        });
        Ok(PeerManager { inner })
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
}
