//! What manager calls return and report.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use thiserror::Error;

use super::{ManagedPeer, PeerId};
use crate::book::BookError;
use crate::peer::{Direction, DisconnectReason, PeerError, PeerInfo, StatsSnapshot};
use crate::protocol::{Protocol, RequestKind};

/// Why a manager call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// No live peer could take the request within the route timeout.
    #[error("no available peers for {} (height >= {min_height})", .kind.command())]
    NoAvailablePeers {
        /// The request.
        kind: RequestKind,
        /// The height a peer needed.
        min_height: u32,
    },
    /// Every attempt failed; the last error is given.
    #[error("{} failed on {attempts} peers, last: {last}", .kind.command())]
    Exhausted {
        /// The request.
        kind: RequestKind,
        /// Peers tried.
        attempts: u32,
        /// The last peer's error.
        last: PeerError,
    },
    /// The peer a request was meant for already has as many requests of its
    /// kind outstanding as the manager allows
    /// ([`ManagerConfig::max_in_flight_per_kind`](super::ManagerConfig::max_in_flight_per_kind)).
    #[error("peer {id} is busy with {} ({in_flight} outstanding)", .kind.command())]
    Busy {
        /// The peer.
        id: PeerId,
        /// The request.
        kind: RequestKind,
        /// Its requests of that kind outstanding.
        in_flight: u32,
    },
    /// The request itself is wrong (no other peer would do better).
    #[error(transparent)]
    Peer(PeerError),
    /// The handshake failed.
    #[error("handshake with {addr}: {error}")]
    Handshake {
        /// The remote (or `?` when unknown).
        addr: String,
        /// What went wrong.
        error: PeerError,
    },
    /// A connection limit is reached.
    #[error("limit reached: {0}")]
    Limit(&'static str),
    /// The address is banned.
    #[error("{0} is banned")]
    Banned(SocketAddr),
    /// The connection could not be made.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// Where to.
        addr: SocketAddr,
        /// Why not.
        error: String,
    },
    /// The manager is shutting down.
    #[error("the manager is shutting down")]
    Shutdown,
    /// The address book failed.
    #[error("address book: {0}")]
    Book(String),
    /// The address book was made for another protocol or network.
    #[error(
        "the address book is for {} network {:#x}, the manager for {} network {:#x}",
        .book.0, .book.1, .manager.0, .manager.1
    )]
    BookMismatch {
        /// The book's protocol and network.
        book: (&'static str, u32),
        /// The manager's.
        manager: (&'static str, u32),
    },
    /// [`PeerManager::start_relay`](super::PeerManager::start_relay) was
    /// called before.
    #[error("the relay is already started")]
    RelayStarted,
}

impl From<BookError> for ManagerError {
    fn from(e: BookError) -> Self {
        ManagerError::Book(e.to_string())
    }
}

/// Something that happened to a manager's peers, as
/// [`PeerManager::events`](super::PeerManager::events) reports it. Events are kept in a bounded queue;
/// when nobody reads it the oldest are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagerEvent {
    /// A peer completed its handshake and joined.
    Connected {
        /// Its number.
        id: PeerId,
        /// Its address (for an inbound peer: its IP and advertised port).
        addr: Option<SocketAddr>,
        /// Who dialed.
        direction: Direction,
        /// Its user agent.
        user_agent: String,
        /// Its height.
        height: u32,
    },
    /// A peer left.
    Disconnected {
        /// Its number.
        id: PeerId,
        /// Its address.
        addr: Option<SocketAddr>,
        /// Why.
        reason: DisconnectReason,
    },
    /// A dial failed.
    DialFailed {
        /// Where to.
        addr: SocketAddr,
        /// Why.
        error: String,
    },
    /// An inbound connection was closed before it joined, without a
    /// handshake: its IP is banned, or a limit (inbound peers, connections
    /// per IP) is reached. At accept, nothing else is spent on it.
    Refused {
        /// Where it came from.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// An inbound connection's handshake failed (or it was refused right
    /// after it: a duplicate, a banned node).
    HandshakeFailed {
        /// Where it came from.
        addr: SocketAddr,
        /// What went wrong.
        error: String,
    },
    /// An address was banned.
    Banned {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// An `addr` taught the book new addresses.
    Learned {
        /// Who sent it.
        from: Option<SocketAddr>,
        /// How many were new.
        new: usize,
    },
    /// A peer served a wrong block or header while the chain was being
    /// fetched or followed (its Merkle root, its hash against its header, a
    /// block that does not follow the one before it, or another block at a
    /// height already held): it was penalised and disconnected.
    WrongBlock {
        /// The peer.
        id: PeerId,
        /// Its address.
        addr: Option<SocketAddr>,
        /// The height, when known.
        index: Option<u32>,
        /// What was wrong.
        reason: String,
    },
    /// A `request_*` whose answer was to reach the handler failed on every
    /// attempt.
    RequestFailed {
        /// The request.
        kind: RequestKind,
        /// The last error.
        error: String,
    },
}

/// A peer that left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departed {
    /// Its number.
    pub id: PeerId,
    /// Its address.
    pub addr: Option<SocketAddr>,
    /// Why it left.
    pub reason: DisconnectReason,
    /// When.
    pub at: SystemTime,
}

/// A live peer as the manager sees it.
#[derive(Debug, Clone)]
pub struct PeerSummary<P: Protocol> {
    /// Its number.
    pub id: PeerId,
    /// Its address (for an inbound peer: its IP and advertised port).
    pub addr: Option<SocketAddr>,
    /// The peer itself, through the manager.
    pub peer: ManagedPeer<P>,
    /// What the peer knows about the remote.
    pub info: PeerInfo<P>,
    /// Its per-command statistics.
    pub stats: StatsSnapshot,
    /// Requests it answered through the manager (the manager's own
    /// `getaddr` to it not counted).
    pub served: u64,
    /// Requests it is answering now through the manager.
    pub in_flight: u32,
    /// Smoothed round trip of its answers.
    pub rtt: Option<Duration>,
    /// Its address's misbehaviour points.
    pub score: u32,
}

/// What [`PeerManager::shutdown`](super::PeerManager::shutdown) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Peers disconnected.
    pub peers: usize,
    /// Tasks still running when the grace period ended (0 after a clean shutdown).
    pub tasks_left: usize,
    /// Address book records written by the final flush (or its error).
    pub flushed: Result<usize, String>,
}
