//! One remote NEO node, as an actor.
//!
//! A [`Peer`] takes a connection to another node and makes it a peer:
//!
//! - **Handshake.** [`Peer::run`] sends our `version` at once, requires the
//!   remote's `version` then `verack`, answers its `version` with `verack`
//!   (on NEO Legacy once the remote's `verack` arrived, or after 100 ms, so
//!   that a node which handles frames read together in reverse order, as
//!   NEO•ONE does, never sees our `verack` before our `version`), and refuses a wrong network, our own nonce (a connection to ourselves),
//!   anything else before the handshake and any frame over a few KiB before
//!   it. It must all happen within the handshake timeout.
//! - **Actor.** After the handshake the peer lives in tasks started on the
//!   given executor ([`crate::executor::Executor`]): a reader, a writer that
//!   owns the mailbox, and a handler task while there are received messages
//!   to handle (an idle peer has none). Callers talk to it through
//!   the mailbox: [`Peer::send`] and the `request_*` methods return once the
//!   message is written (or with the error that prevented it); the answers
//!   reach the [`Handler`] asynchronously. The awaited variants
//!   (`get_headers`, [`Peer::ping`]) return the answer itself instead.
//! - **Rules.** A second `version` or `verack` disconnects; an unknown
//!   command is counted and handed to the handler, never a reason to
//!   disconnect. `ping` is answered with `pong` by the engine.
//! - **Timeouts.** No complete message for the idle timeout (a frame
//!   trickled in more slowly counts as silence) disconnects. A request
//!   whose answer does not come within the stall timeout disconnects, the
//!   request named in the reason; time the local handler takes is not
//!   counted. We ping after a ping interval of our own silence.
//! - **Backpressure.** Every queue is bounded. When the handler queue is
//!   full the reader stops reading, so TCP pushes back on the remote; no
//!   received message is dropped. When the peer disconnects, every pending
//!   call resolves exactly once, with [`PeerError::Disconnected`].
//! - **Statistics** per command ([`Peer::stats`]) and the remote's facts
//!   ([`Peer::info`]) can be read at any time.
//!
//! The sans-I/O pieces the engine is built from are public too:
//! [`handshake`], [`stall`], [`stats`].

mod config;
mod engine;
pub mod handler;
pub mod handshake;
mod queue;
pub mod stall;
pub mod stats;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_lite::io::{AsyncRead, AsyncWrite};
use thiserror::Error;

pub use config::{
    HANDLER_QUEUE_CAPACITY, HANDSHAKE_MAX_PAYLOAD, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, LocalConfig,
    MAILBOX_CAPACITY, MAX_PENDING_REQUESTS, PING_INTERVAL, Queues, STALL_CHECK_INTERVAL,
    STALL_TIMEOUT, StartHeight, Timeouts, WRITE_TIMEOUT, random_nonce,
};
pub use handler::{Handler, IgnoreAll, LegacyHandler, N3Handler};
pub use handshake::{Handshake, Received, Step, Violation};
pub use stall::{Answered, RequestId, StallDetector, TooManyPending};
pub use stats::{CommandStats, Latency, Stats, StatsSnapshot};

use crate::executor::Executor;
use crate::protocol::{Legacy, N3, Protocol, RequestKind};
use crate::wire::{FrameError, PingPayload, UInt256, legacy, n3};
use engine::{Outgoing, Shared};

/// Any byte stream a peer can run over: TCP from any runtime, TLS, an
/// in-memory pipe: whatever implements the `futures-io` traits. A tokio
/// stream goes through `neo_peer::tokio::compat` (feature `tokio`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connection a peer can run over (futures-io `AsyncRead + AsyncWrite + Send + Unpin`)",
    note = "a tokio stream: wrap it with `neo_peer::tokio::compat(stream)` (feature `tokio`), or dial with `neo_peer::tokio::connect`"
)]
pub trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The remote connected to us.
    Inbound,
    /// We connected to the remote.
    Outbound,
}

/// Why a peer ended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// [`Peer::disconnect`] was called.
    #[error("disconnected locally")]
    Requested,
    /// The remote closed the connection.
    #[error("remote closed the connection")]
    RemoteClosed,
    /// The handshake broke a rule.
    #[error("handshake: {0}")]
    Handshake(Violation),
    /// The handshake did not complete in time.
    #[error("handshake timeout")]
    HandshakeTimeout,
    /// A rule was broken after the handshake (a second `version` or `verack`).
    #[error("protocol violation: {0}")]
    Protocol(Violation),
    /// Nothing was received for this long.
    #[error("idle for {0:?}")]
    IdleTimeout(Duration),
    /// A request was not answered in time.
    #[error("stalled: {} not answered in time", .0.command())]
    Stalled(RequestKind),
    /// A write blocked for this long (the remote does not read).
    #[error("write blocked for {0:?}")]
    WriteTimeout(Duration),
    /// The byte stream broke the framing rules.
    #[error("bad frame: {0}")]
    Frame(FrameError),
    /// A message could not be encoded during the handshake.
    #[error("cannot encode: {0}")]
    Encode(FrameError),
    /// The connection failed.
    #[error("i/o error: {0}")]
    Io(String),
    /// The handler panicked while handling this command.
    #[error("handler panicked on {0}")]
    HandlerPanicked(&'static str),
    /// The handler task is gone.
    #[error("handler gone")]
    HandlerGone,
    /// The remote broke the local policy (floods, a ban); the text says how.
    #[error("misbehaviour: {0}")]
    Misbehaviour(String),
    /// The local node is shutting down.
    #[error("shutting down")]
    Shutdown,
    /// Another connection to the same node (same nonce) already exists.
    #[error("duplicate connection (nonce {0:#010x})")]
    Duplicate(u32),
}

/// Why a call on a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer is disconnected (or disconnected before answering).
    #[error("peer disconnected: {0}")]
    Disconnected(DisconnectReason),
    /// [`Peer::run`] was called twice.
    #[error("peer already started")]
    AlreadyStarted,
    /// Too many requests are outstanding on this peer.
    #[error("too many outstanding requests ({0})")]
    TooManyPending(usize),
    /// The message cannot be sent (it breaks a limit of the protocol).
    #[error("cannot send: {0}")]
    Encode(FrameError),
    /// The answer was not of the expected kind.
    #[error("unexpected answer: {0}")]
    UnexpectedAnswer(&'static str),
}

/// What is known about a peer.
#[derive(Debug, Clone)]
pub struct PeerInfo<P: Protocol> {
    /// The remote's address, if given ([`Peer::with_remote_addr`]).
    pub remote_addr: Option<SocketAddr>,
    /// Who opened the connection.
    pub direction: Direction,
    /// When the peer was created.
    pub created_at: SystemTime,
    /// The remote's `version`, once received.
    pub version: Option<P::Version>,
    /// Its user agent.
    pub user_agent: Option<String>,
    /// Its nonce.
    pub nonce: Option<u32>,
    /// The port it listens on (0: unknown or not listening).
    pub port: u16,
    /// Legacy `relay`; N3: it announced `FullNode`.
    pub relay: bool,
    /// Its best known height: from `version`, then raised by `ping`, `pong`,
    /// `headers` and `block`.
    pub start_height: u32,
    /// Last ping round trip.
    pub rtt: Option<Duration>,
    /// Whether the handshake completed.
    pub handshaked: bool,
    /// Why it ended, once it has.
    pub disconnect_reason: Option<DisconnectReason>,
}

type Start = Pin<Box<dyn Future<Output = Result<(), PeerError>> + Send>>;

/// The writer's end of the mailbox.
type Mailbox<P> = queue::Receiver<Box<Outgoing<P>>>;

/// A handle to one remote node (cheap to clone; every clone is the same peer).
pub struct Peer<P: Protocol> {
    shared: Arc<Shared<P>>,
    direction: Direction,
    remote_addr: Option<SocketAddr>,
    mailbox: queue::Sender<Box<Outgoing<P>>>,
    mailbox_rx: Arc<Mutex<Option<Mailbox<P>>>>,
    start: Arc<Mutex<Option<Start>>>,
}

impl<P: Protocol> Clone for Peer<P> {
    fn clone(&self) -> Self {
        Peer {
            shared: self.shared.clone(),
            direction: self.direction,
            remote_addr: self.remote_addr,
            mailbox: self.mailbox.clone(),
            mailbox_rx: self.mailbox_rx.clone(),
            start: self.start.clone(),
        }
    }
}

impl<P: Protocol> fmt::Debug for Peer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("protocol", &P::NAME)
            .field("direction", &self.direction)
            .field("remote_addr", &self.remote_addr)
            .field("closed", &self.shared.is_closed())
            .finish()
    }
}

impl<P: Protocol> Peer<P> {
    /// A peer over `conn`, not started yet: call [`Peer::run`].
    pub fn new<C, H, E>(
        conn: C,
        direction: Direction,
        config: LocalConfig,
        handler: H,
        executor: E,
    ) -> Self
    where
        C: Connection,
        H: Handler<P>,
        E: Executor,
    {
        let (mailbox, mailbox_rx) = queue::bounded(config.queues.mailbox);
        let mut peer = Peer {
            shared: Arc::new(Shared::new(config)),
            direction,
            remote_addr: None,
            mailbox,
            mailbox_rx: Arc::new(Mutex::new(Some(mailbox_rx))),
            start: Arc::new(Mutex::new(None)),
        };
        let start: Start = Box::pin(engine::start(peer.clone(), conn, handler, executor));
        peer.start = Arc::new(Mutex::new(Some(start)));
        peer
    }

    /// Records the remote's address (shown in [`Peer::info`]).
    pub fn with_remote_addr(mut self, addr: SocketAddr) -> Self {
        self.remote_addr = Some(addr);
        self
    }

    /// Performs the handshake (within the handshake timeout), then starts the
    /// peer's tasks and returns. On failure the peer is disconnected and the
    /// error carries the reason.
    pub async fn run(&self) -> Result<(), PeerError> {
        let start = self
            .start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(PeerError::AlreadyStarted)?;
        start.await
    }

    fn take_mailbox(&self) -> Option<Mailbox<P>> {
        self.mailbox_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn disconnected(&self) -> PeerError {
        PeerError::Disconnected(self.shared.reason().unwrap_or(DisconnectReason::Requested))
    }

    /// Sends `msg` and returns once it is written. If the message is a
    /// request, its answer is awaited by the stall detector and delivered to
    /// the handler.
    pub async fn send(&self, msg: P::Message) -> Result<(), PeerError> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let (tx, rx) = async_channel::bounded(1);
        let out = Box::new(Outgoing {
            msg,
            waiter: None,
            written: Some(tx),
        });
        if self.mailbox.send(out).await.is_err() {
            return Err(self.disconnected());
        }
        rx.recv().await.unwrap_or_else(|_| Err(self.disconnected()))
    }

    /// Sends a request that expects exactly one answer and returns the answer
    /// (which then does not reach the handler).
    pub async fn request(&self, msg: P::Message) -> Result<P::Message, PeerError> {
        let answers = self.request_answers(msg, 1).await?;
        answers.recv().await.map_err(|_| self.disconnected())
    }

    /// Sends a request and returns, once it is written, a receiver of its
    /// answers (which then do not reach the handler): the receiver yields
    /// each answer, then ends when the request is complete or the peer has
    /// disconnected (then [`Peer::closed`] tells why). `max_answers` bounds
    /// the answers kept; it must be at least the number the request expects.
    pub async fn request_answers(
        &self,
        msg: P::Message,
        max_answers: usize,
    ) -> Result<async_channel::Receiver<P::Message>, PeerError> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let (written_tx, written_rx) = async_channel::bounded(1);
        let (answer_tx, answer_rx) = async_channel::bounded(max_answers.max(1));
        let out = Box::new(Outgoing {
            msg,
            waiter: Some(answer_tx),
            written: Some(written_tx),
        });
        if self.mailbox.send(out).await.is_err() {
            return Err(self.disconnected());
        }
        written_rx
            .recv()
            .await
            .unwrap_or_else(|_| Err(self.disconnected()))?;
        Ok(answer_rx)
    }

    /// Sends a request that expects `expected` answers and returns them all;
    /// fails if the peer disconnects before the last one.
    pub async fn request_all(
        &self,
        msg: P::Message,
        expected: usize,
    ) -> Result<Vec<P::Message>, PeerError> {
        let answers = self.request_answers(msg, expected).await?;
        let mut all = Vec::with_capacity(expected.min(512));
        while let Ok(answer) = answers.recv().await {
            all.push(answer);
        }
        if all.len() < expected && self.is_closed() {
            return Err(self.disconnected());
        }
        Ok(all)
    }

    /// Asks for addresses (`getaddr`); the `addr` answer reaches the handler.
    pub async fn request_addr(&self) -> Result<(), PeerError> {
        self.send(P::get_addr()).await
    }

    /// Pings and waits for the `pong`; returns the round trip. On NEO Legacy,
    /// whose nodes need not answer, only sends the `ping` and returns zero.
    pub async fn ping(&self) -> Result<Duration, PeerError> {
        let ping = PingPayload {
            last_block_index: self.shared.config.height(),
            timestamp: crate::protocol::unix_seconds(),
            nonce: random_nonce(),
        };
        if !P::PONG_EXPECTED {
            self.send(P::ping(ping, false)).await?;
            return Ok(Duration::ZERO);
        }
        let started = std::time::Instant::now();
        self.request(P::ping(ping, false)).await?;
        Ok(started.elapsed())
    }

    /// Ends the peer: its tasks stop, its connection closes, every pending
    /// call fails with [`DisconnectReason::Requested`].
    pub fn disconnect(&self) {
        self.shared.close(DisconnectReason::Requested);
    }

    /// Ends the peer with `reason` (ignored if it has already ended).
    pub fn disconnect_with(&self, reason: DisconnectReason) {
        self.shared.close(reason);
    }

    /// Resolves once the peer has ended, with the reason.
    pub async fn closed(&self) -> DisconnectReason {
        self.shared.wait_closed().await;
        self.shared.reason().unwrap_or(DisconnectReason::Requested)
    }

    /// True once the peer has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Who opened the connection.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The remote's best known height.
    pub fn height(&self) -> u32 {
        self.shared.lock().height
    }

    /// What is known about the remote now.
    pub fn info(&self) -> PeerInfo<P> {
        let st = self.shared.lock();
        let facts = st.facts.as_ref();
        PeerInfo {
            remote_addr: self.remote_addr,
            direction: self.direction,
            created_at: self.shared.created_at,
            version: st.version.clone(),
            user_agent: facts.map(|f| f.user_agent.clone()),
            nonce: facts.map(|f| f.nonce),
            port: facts.map_or(0, |f| f.port),
            relay: facts.is_some_and(|f| f.relay),
            start_height: st.height,
            rtt: st.rtt,
            handshaked: st.handshaked,
            disconnect_reason: st.reason.clone(),
        }
    }

    /// Per-command statistics now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Number of requests waiting for answers.
    pub fn pending_requests(&self) -> usize {
        self.shared.lock().stall.len()
    }

    /// The configuration the peer runs with.
    pub fn config(&self) -> &LocalConfig {
        &self.shared.config
    }
}

impl Peer<Legacy> {
    /// Asks for the headers after `hash_start` (up to 2000, stopping before
    /// `hash_stop`; zero for no stop). They reach [`LegacyHandler::on_headers`].
    pub async fn request_headers(
        &self,
        hash_start: UInt256,
        hash_stop: UInt256,
    ) -> Result<(), PeerError> {
        self.send(legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![hash_start],
            hash_stop,
        }))
        .await
    }

    /// Like [`Peer::request_headers`], but returns the headers.
    pub async fn get_headers(
        &self,
        hash_start: UInt256,
        hash_stop: UInt256,
    ) -> Result<Vec<legacy::Header>, PeerError> {
        let answer = self
            .request(legacy::Message::GetHeaders(legacy::GetBlocksPayload {
                hash_start: vec![hash_start],
                hash_stop,
            }))
            .await?;
        match answer {
            legacy::Message::Headers(h) => Ok(h.headers),
            other => Err(PeerError::UnexpectedAnswer(other.command_name())),
        }
    }

    /// Asks for the block hashes after `hash_start` (`getblocks`); the `inv`
    /// reaches the handler.
    pub async fn request_blocks(&self, hash_start: UInt256) -> Result<(), PeerError> {
        self.send(legacy::Message::GetBlocks(legacy::GetBlocksPayload {
            hash_start: vec![hash_start],
            hash_stop: UInt256::ZERO,
        }))
        .await
    }

    /// Asks for objects (`getdata`); they reach the handler.
    pub async fn request_data(&self, inv: legacy::InvPayload) -> Result<(), PeerError> {
        self.send(legacy::Message::GetData(inv)).await
    }
}

impl Peer<N3> {
    /// Asks for `count` headers from `index_start` (inclusive; -1 for as many
    /// as the remote sends). They reach [`N3Handler::on_headers`].
    pub async fn request_headers(&self, index_start: u32, count: i16) -> Result<(), PeerError> {
        self.send(n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
            index_start,
            count,
        }))
        .await
    }

    /// Like [`Peer::request_headers`], but returns the headers.
    pub async fn get_headers(
        &self,
        index_start: u32,
        count: i16,
    ) -> Result<Vec<n3::Header>, PeerError> {
        Ok(self.get_headers_payload(index_start, count).await?.to_vec())
    }

    /// Like [`Peer::get_headers`], but returns the `headers` payload as it
    /// came, with its hashes and heights readable without building headers.
    pub async fn get_headers_payload(
        &self,
        index_start: u32,
        count: i16,
    ) -> Result<n3::HeadersPayload, PeerError> {
        let answer = self
            .request(n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
                index_start,
                count,
            }))
            .await?;
        match answer {
            n3::Message::Headers(h) => Ok(h),
            other => Err(PeerError::UnexpectedAnswer(other.command_name())),
        }
    }

    /// Asks for `count` blocks from `index_start` (`getblockbyindex`); they
    /// reach [`N3Handler::on_block`].
    pub async fn request_blocks_by_index(
        &self,
        index_start: u32,
        count: i16,
    ) -> Result<(), PeerError> {
        self.send(n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
            index_start,
            count,
        }))
        .await
    }

    /// Like [`Peer::request_blocks_by_index`], but returns the blocks: as
    /// many as the remote has from `index_start`, at most `count` (and at
    /// most 500).
    pub async fn get_blocks_by_index(
        &self,
        index_start: u32,
        count: i16,
    ) -> Result<Vec<n3::Block>, PeerError> {
        let expected = usize::from(count.unsigned_abs()).clamp(1, n3::MAX_BLOCKS_PER_REQUEST);
        let answers = self
            .request_all(
                n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload { index_start, count }),
                expected,
            )
            .await?;
        answers
            .into_iter()
            .map(|answer| match answer {
                n3::Message::Block(b) => Ok(b),
                other => Err(PeerError::UnexpectedAnswer(other.command_name())),
            })
            .collect()
    }

    /// Asks for objects (`getdata`); they reach the handler (missing blocks
    /// and transactions come back in a `notfound`).
    pub async fn request_data(&self, inv: n3::InvPayload) -> Result<(), PeerError> {
        self.send(n3::Message::GetData(inv)).await
    }
}
