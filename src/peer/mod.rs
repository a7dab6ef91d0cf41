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
//!   received message is dropped. The same when the remote does not read
//!   our answers: past the send bound ([`LocalConfig::send_limit`]) its
//!   requests are not read until it does, and the write timeout drops it if
//!   it never does. Partial frames of all peers share one
//!   [`ReceiveBudget`], unsent bytes one [`SendBudget`]. An answer many
//!   peers ask for can be encoded once ([`Encoder`]) and queued on each as
//!   the same bytes ([`Peer::send_frame`]). When the peer disconnects, every pending
//!   call resolves exactly once, with [`PeerError::Disconnected`].
//! - **Statistics** per command ([`Peer::stats`]) and the remote's facts
//!   ([`Peer::info`]) can be read at any time.
//!
//! The sans-I/O pieces the engine is built from are public too:
//! [`handshake`], [`stall`], [`stats`].

mod budget;
mod config;
mod engine;
mod frame;
pub mod handler;
pub mod handshake;
pub mod machine;
mod outbox;
mod queue;
pub mod stall;
pub mod stats;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_lite::io::{AsyncRead, AsyncWrite};
use thiserror::Error;

pub use budget::{
    BUDGET_PATIENCE, RECEIVE_BUDGET, ReceiveBudget, SEND_BUDGET, SEND_LIMIT, SEND_UNBUDGETED,
    SendBudget, UNBUDGETED,
};
pub use config::{
    HANDLER_QUEUE_CAPACITY, HANDSHAKE_MAX_PAYLOAD, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, LocalConfig,
    MAILBOX_CAPACITY, MAX_PENDING_REQUESTS, PING_INTERVAL, Queues, STALL_CHECK_INTERVAL,
    STALL_TIMEOUT, Timeouts, WRITE_TIMEOUT,
};
pub use frame::{Encoder, Frame};
pub use handler::{Handler, IgnoreAll, LegacyHandler, N3Handler};
pub use handshake::{Handshake, Received, Step, Violation};
pub use machine::{Event, Machine, Misbehaviour, Remote};
pub use stall::{Answered, Expired, RequestId, StallDetector, TooManyPending};
pub use stats::{CommandStats, Latency, Stats, StatsSnapshot};

use crate::executor::Executor;
use crate::protocol::{Legacy, N3, Obligation, Protocol, RequestKind, random_nonce};
use crate::wire::{FrameError, PingPayload, UInt256, legacy, n3};
use engine::{Item, Outgoing, ReplyItem, Shared};

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
    /// The receive budget shared with other peers stayed spent, and this
    /// peer's partial frame was among the oldest (see [`ReceiveBudget`]).
    #[error("receive budget spent: dropped with one of the oldest partial frames ({0} bytes)")]
    ReceiveBudget(usize),
    /// The send budget shared with other peers stayed spent, and this peer
    /// was among those whose writes had made no progress for the longest
    /// (see [`SendBudget`]); it had this many bytes unsent.
    #[error("send budget spent: dropped as one of the slowest readers ({0} bytes unsent)")]
    SendBudget(usize),
}

impl DisconnectReason {
    /// A short, stable name of the reason, for metric labels and log
    /// filters: one of a fixed set (`requested`, `remote_closed`,
    /// `self_connection`, `wrong_network`, `handshake_violation`,
    /// `handshake_timeout`, `protocol_violation`, `idle_timeout`, `stalled`,
    /// `write_timeout`, `bad_frame`, `encode_error`, `io_error`,
    /// `handler_panicked`, `handler_gone`, `misbehaviour`, `shutdown`,
    /// `duplicate`, `receive_budget`, `send_budget`), whatever the details the reason carries.
    ///
    /// ```
    /// use std::time::Duration;
    /// use neo_peer::peer::DisconnectReason;
    ///
    /// assert_eq!(DisconnectReason::IdleTimeout(Duration::from_secs(120)).label(), "idle_timeout");
    /// ```
    pub fn label(&self) -> &'static str {
        match self {
            DisconnectReason::Requested => "requested",
            DisconnectReason::RemoteClosed => "remote_closed",
            DisconnectReason::Handshake(Violation::SelfConnection(_)) => "self_connection",
            DisconnectReason::Handshake(Violation::WrongNetwork { .. }) => "wrong_network",
            DisconnectReason::Handshake(_) => "handshake_violation",
            DisconnectReason::HandshakeTimeout => "handshake_timeout",
            DisconnectReason::Protocol(_) => "protocol_violation",
            DisconnectReason::IdleTimeout(_) => "idle_timeout",
            DisconnectReason::Stalled(_) => "stalled",
            DisconnectReason::WriteTimeout(_) => "write_timeout",
            DisconnectReason::Frame(_) => "bad_frame",
            DisconnectReason::Encode(_) => "encode_error",
            DisconnectReason::Io(_) => "io_error",
            DisconnectReason::HandlerPanicked(_) => "handler_panicked",
            DisconnectReason::HandlerGone => "handler_gone",
            DisconnectReason::Misbehaviour(_) => "misbehaviour",
            DisconnectReason::Shutdown => "shutdown",
            DisconnectReason::Duplicate(_) => "duplicate",
            DisconnectReason::ReceiveBudget(_) => "receive_budget",
            DisconnectReason::SendBudget(_) => "send_budget",
        }
    }

    /// Whether the remote is to blame (a stall, a bad frame, a broken rule,
    /// a blocked write, misbehaviour): such a disconnect is logged as a
    /// warning.
    pub(crate) fn is_remote_fault(&self) -> bool {
        matches!(
            self,
            DisconnectReason::Handshake(Violation::DuplicateVersion)
                | DisconnectReason::Handshake(Violation::DuplicateVerack)
                | DisconnectReason::Handshake(Violation::VerackBeforeVersion)
                | DisconnectReason::Handshake(Violation::Unexpected(_))
                | DisconnectReason::Protocol(_)
                | DisconnectReason::Stalled(_)
                | DisconnectReason::WriteTimeout(_)
                | DisconnectReason::Frame(_)
                | DisconnectReason::Misbehaviour(_)
                | DisconnectReason::ReceiveBudget(_)
                | DisconnectReason::SendBudget(_)
        )
    }
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
    /// The remote has nothing to answer this request with, and silence is
    /// its right: the request starts above the height it told us (then the
    /// request was not even sent), or it stayed silent where the protocol
    /// lets it. The peer stays connected.
    #[error("{}: not answered; the remote has nothing for it (its height is {height})", .kind.command())]
    Unanswered {
        /// The request.
        kind: RequestKind,
        /// The remote's height, as far as we know.
        height: u32,
    },
    /// The message is not a request: there is no answer to wait for.
    #[error("{0} has no answer to wait for")]
    NoAnswer(&'static str),
    /// The handshake has not completed yet.
    #[error("not handshaken yet")]
    NotHandshaken,
    /// The message is a request: it cannot be sent as a pre-encoded
    /// [`Frame`] (its answers would not be tracked).
    #[error("{0} is a request: it cannot be sent as a pre-encoded frame")]
    NotShareable(&'static str),
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
    /// Its best known height now: from `version`, then raised by `ping`,
    /// `pong`, `headers` and `block`, and lowered when its own answer
    /// disproves a claim.
    pub height: u32,
    /// Last ping round trip.
    pub rtt: Option<Duration>,
    /// Whether the handshake completed.
    pub handshaked: bool,
    /// Why it ended, once it has.
    pub disconnect_reason: Option<DisconnectReason>,
}

type Start = Pin<Box<dyn Future<Output = Result<(), PeerError>> + Send>>;

/// The driver's end of the mailbox, and the handshake future, until
/// [`Peer::run`] takes them.
struct Unstarted<P: Protocol> {
    mailbox: queue::Receiver<Box<Outgoing<P>>>,
    start: Option<Start>,
}

/// A handle to one remote node (cheap to clone; every clone is the same peer).
pub struct Peer<P: Protocol> {
    shared: Arc<Shared<P>>,
    mailbox: queue::Sender<Box<Outgoing<P>>>,
    unstarted: Arc<Mutex<Option<Unstarted<P>>>>,
}

impl<P: Protocol> Clone for Peer<P> {
    fn clone(&self) -> Self {
        Peer {
            shared: self.shared.clone(),
            mailbox: self.mailbox.clone(),
            unstarted: self.unstarted.clone(),
        }
    }
}

impl<P: Protocol> fmt::Debug for Peer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.shared.id)
            .field("protocol", &P::NAME)
            .field("direction", &self.shared.direction)
            .field("remote_addr", &self.remote_addr())
            .field("closed", &self.shared.is_closed())
            .finish()
    }
}

/// The answers of one request, as they arrive ([`Peer::request_answers`]).
pub struct Answers<P: Protocol> {
    rx: async_channel::Receiver<ReplyItem<P>>,
    peer: Peer<P>,
    done: bool,
}

impl<P: Protocol> fmt::Debug for Answers<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answers")
            .field("peer", &self.peer)
            .field("done", &self.done)
            .finish()
    }
}

impl<P: Protocol> Answers<P> {
    /// The next answer; `None` once the request is complete. An error ends
    /// the request early: the peer disconnected, or the remote legitimately
    /// left it unanswered ([`PeerError::Unanswered`]).
    pub async fn next(&mut self) -> Option<Result<P::Message, PeerError>> {
        if self.done {
            return None;
        }
        let item = match self.rx.recv().await {
            Ok(ReplyItem::Answer(message)) => return Some(Ok(message)),
            Ok(ReplyItem::Done) => None,
            Ok(ReplyItem::Failed(e)) => Some(Err(e)),
            // The driver is gone without a word: the peer ended.
            Err(_) => Some(Err(self.peer.disconnected())),
        };
        self.done = true;
        item
    }

    /// Every remaining answer; fails if the request ends early.
    pub async fn all(mut self) -> Result<Vec<P::Message>, PeerError> {
        let mut all = Vec::new();
        while let Some(answer) = self.next().await {
            all.push(answer?);
        }
        Ok(all)
    }
}

impl<P: Protocol> Peer<P> {
    /// A peer over `conn`, not started yet: call [`Peer::run`].
    pub fn new<C, H, E>(
        conn: C,
        direction: Direction,
        config: LocalConfig<P>,
        handler: H,
        executor: E,
    ) -> Self
    where
        C: Connection,
        H: Handler<P>,
        E: Executor,
    {
        let (mailbox, mailbox_rx) = queue::bounded(config.queues.mailbox);
        let peer = Peer {
            shared: Arc::new(Shared::new(config, direction)),
            mailbox,
            unstarted: Arc::new(Mutex::new(Some(Unstarted {
                mailbox: mailbox_rx,
                start: None,
            }))),
        };
        let start: Start = Box::pin(engine::start(peer.clone(), conn, handler, executor));
        if let Some(u) = peer.lock_unstarted().as_mut() {
            u.start = Some(start);
        }
        peer
    }

    fn lock_unstarted(&self) -> std::sync::MutexGuard<'_, Option<Unstarted<P>>> {
        self.unstarted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the remote's address (shown in [`Peer::info`] and in the
    /// peer's log lines). Call it before [`Peer::run`]; only the first
    /// address given counts.
    pub fn with_remote_addr(self, addr: SocketAddr) -> Self {
        if self.shared.remote_addr.set(addr).is_ok() {
            self.shared
                .span
                .record("remote", tracing::field::display(addr));
        }
        self
    }

    /// Records our end of the connection (before [`Peer::run`], so that
    /// whatever the peer's handler does knows it from the first message).
    pub(crate) fn with_local_addr(self, addr: SocketAddr) -> Self {
        let _ = self.shared.local_addr.set(addr);
        self
    }

    /// Our end of the connection, if recorded.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr.get().copied()
    }

    /// The port the remote says it listens on (0 before its `version`, or
    /// when it does not listen), without copying the rest of [`Peer::info`].
    pub(crate) fn listen_port(&self) -> u16 {
        self.shared
            .lock()
            .machine
            .remote()
            .facts
            .as_ref()
            .map_or(0, |f| f.port)
    }

    /// The span of this peer's log lines: `peer`, with the fields `id`,
    /// `protocol`, `remote` (once given) and `direction`. Whatever runs on
    /// the peer's behalf can be put inside it, so that its lines name the
    /// peer too (see [`crate::telemetry`]).
    pub fn span(&self) -> tracing::Span {
        self.shared.span.clone()
    }

    /// Performs the handshake (within the handshake timeout), then starts the
    /// peer's task and returns. On failure the peer is disconnected and the
    /// error carries the reason.
    pub async fn run(&self) -> Result<(), PeerError> {
        let start = self
            .lock_unstarted()
            .as_mut()
            .and_then(|u| u.start.take())
            .ok_or(PeerError::AlreadyStarted)?;
        start.await
    }

    fn take_mailbox(&self) -> Option<queue::Receiver<Box<Outgoing<P>>>> {
        self.lock_unstarted().take().map(|u| u.mailbox)
    }

    fn disconnected(&self) -> PeerError {
        PeerError::Disconnected(self.shared.reason().unwrap_or(DisconnectReason::Requested))
    }

    /// Hands `msg` to the driver; returns the receiver of its written result
    /// and, with `answers`, of its answers.
    async fn submit(
        &self,
        msg: Item<P>,
        reach: Option<u32>,
        answers: bool,
    ) -> Result<Option<Answers<P>>, PeerError> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let (written_tx, written_rx) = async_channel::bounded(1);
        let (reply, answers) = if answers {
            let (tx, rx) = async_channel::bounded(engine::REPLY_CAPACITY);
            let answers = Answers {
                rx,
                peer: self.clone(),
                done: false,
            };
            (Some(tx), Some(answers))
        } else {
            (None, None)
        };
        let out = Box::new(Outgoing {
            msg,
            reach,
            reply,
            written: Some(written_tx),
        });
        if self.mailbox.send(out).await.is_err() {
            return Err(self.disconnected());
        }
        written_rx
            .recv()
            .await
            .unwrap_or_else(|_| Err(self.disconnected()))?;
        Ok(answers)
    }

    /// Sends `msg` and returns once it is written (or with the error that
    /// prevented it). If the message is a request, its answers reach the
    /// handler ([`Handler::handle_answer`]) and the stall rule applies.
    pub async fn send(&self, msg: P::Message) -> Result<(), PeerError> {
        self.submit(Item::Message(msg), None, false)
            .await
            .map(|_| ())
    }

    /// Sends a frame encoded in advance ([`Encoder::encode`], with this
    /// peer's [`encoder`](Peer::encoder)) and returns once it is written.
    /// Its bytes are queued as they are, not copied: a frame sent to many
    /// peers is in memory once. It counts against the peer's send bound and
    /// the send budget like any message.
    pub async fn send_frame(&self, frame: Frame) -> Result<(), PeerError> {
        self.submit(Item::Frame(frame), None, false)
            .await
            .map(|_| ())
    }

    /// The encoder of this peer's frames: its network, its payload limits,
    /// and (N3) compression if the remote allows it. Frames it encodes may
    /// be sent to every peer whose encoder has the same
    /// [`key`](Encoder::key). Before the handshake the remote's wishes are
    /// unknown, and compression is off.
    pub fn encoder(&self) -> Encoder<P> {
        let compress = self
            .shared
            .lock()
            .machine
            .remote()
            .facts
            .as_ref()
            .is_some_and(|f| f.allows_compression);
        Encoder::new(&self.shared.config, compress)
    }

    /// Sends a request and returns, once it is written, its [`Answers`]
    /// (which then do not reach the handler). `reach`, when the caller knows
    /// it, is the height the remote must have to answer in full: on NEO
    /// Legacy, whose requests name hashes, it decides whether silence is a
    /// stall (see [`crate::protocol::contract`]). A request the remote
    /// cannot answer (it starts above the remote's height) is not sent and
    /// fails with [`PeerError::Unanswered`].
    pub async fn request_answers(
        &self,
        msg: P::Message,
        reach: Option<u32>,
    ) -> Result<Answers<P>, PeerError> {
        match self.submit(Item::Message(msg), reach, true).await? {
            Some(answers) => Ok(answers),
            None => Err(PeerError::NoAnswer("request")),
        }
    }

    /// Sends a request and returns its first answer (the request's other
    /// answers, if any, are not waited for).
    pub async fn request(&self, msg: P::Message) -> Result<P::Message, PeerError> {
        let mut answers = self.request_answers(msg, None).await?;
        answers
            .next()
            .await
            .unwrap_or_else(|| Err(PeerError::NoAnswer("request")))
    }

    /// Sends a request and returns all its answers, as many as the
    /// contract says the remote owes (e.g. every block a `getblockbyindex`
    /// asks for, up to the remote's height).
    pub async fn request_all(&self, msg: P::Message) -> Result<Vec<P::Message>, PeerError> {
        self.request_answers(msg, None).await?.all().await
    }

    /// Asks for addresses (`getaddr`); the `addr` answer reaches the
    /// handler's [`Handler::handle_answer`].
    pub async fn request_addr(&self) -> Result<(), PeerError> {
        self.send(P::get_addr()).await
    }

    /// Pings and waits for the `pong`; returns the round trip. On NEO Legacy,
    /// whose nodes need not answer, only sends the `ping` and returns zero.
    pub async fn ping(&self) -> Result<Duration, PeerError> {
        let ping = P::ping(
            PingPayload {
                last_block_index: self.shared.config.height(),
                timestamp: crate::protocol::unix_seconds(),
                nonce: random_nonce(),
            },
            false,
        );
        if P::obligation(&ping, None, u32::MAX) == Obligation::Nothing {
            self.send(ping).await?;
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        self.request(ping).await?;
        Ok(started.elapsed())
    }

    /// Ends the peer: its task stops, its connection closes, every pending
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

    /// A number for this peer, unique in the process (its log lines carry it).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Who opened the connection.
    pub fn direction(&self) -> Direction {
        self.shared.direction
    }

    /// The remote's address, if given ([`Peer::with_remote_addr`]).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.shared.remote_addr.get().copied()
    }

    /// The remote's best known height.
    pub fn height(&self) -> u32 {
        self.shared.lock().machine.remote().height
    }

    /// The round trip of its last answered `ping` ([`PeerInfo::rtt`],
    /// without copying the rest of [`Peer::info`]).
    pub fn rtt(&self) -> Option<Duration> {
        self.shared.lock().machine.remote().rtt
    }

    /// What is known about the remote now.
    pub fn info(&self) -> PeerInfo<P> {
        let st = self.shared.lock();
        let m = &st.machine;
        let remote = m.remote();
        let facts = remote.facts.as_ref();
        PeerInfo {
            remote_addr: self.remote_addr(),
            direction: self.direction(),
            created_at: self.shared.created_at,
            version: remote.version.clone(),
            user_agent: facts.map(|f| f.user_agent.clone()),
            nonce: facts.map(|f| f.nonce),
            port: facts.map_or(0, |f| f.port),
            relay: facts.is_some_and(|f| f.relay),
            height: remote.height,
            rtt: remote.rtt,
            handshaked: m.is_handshaken(),
            disconnect_reason: m.reason().cloned(),
        }
    }

    /// Per-command statistics now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Number of requests waiting for answers.
    pub fn pending_requests(&self) -> usize {
        self.shared.lock().machine.pending_requests()
    }

    /// The configuration the peer runs with.
    pub fn config(&self) -> &LocalConfig<P> {
        &self.shared.config
    }
}

impl Peer<Legacy> {
    fn get_headers_msg(hash_start: UInt256, hash_stop: UInt256) -> legacy::Message {
        legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![hash_start],
            hash_stop,
        })
    }

    /// Asks for the headers after `hash_start` (up to 2000, stopping before
    /// `hash_stop`; zero for no stop). They reach [`LegacyHandler::on_headers`].
    ///
    /// NEO Legacy nodes legitimately stay silent when `hash_start` is their
    /// tip or unknown to them, and the request names no height: such a
    /// request is never a stall. [`Peer::get_headers_from`] gives the start's
    /// height, so that silence from a remote known to be higher is one.
    pub async fn request_headers(
        &self,
        hash_start: UInt256,
        hash_stop: UInt256,
    ) -> Result<(), PeerError> {
        self.send(Self::get_headers_msg(hash_start, hash_stop))
            .await
    }

    /// Like [`Peer::request_headers`], but returns the headers. Silence ends
    /// it with [`PeerError::Unanswered`] after the stall timeout.
    pub async fn get_headers(
        &self,
        hash_start: UInt256,
        hash_stop: UInt256,
    ) -> Result<Vec<legacy::Header>, PeerError> {
        self.headers_answer(Self::get_headers_msg(hash_start, hash_stop), None)
            .await
    }

    /// Like [`Peer::get_headers`], knowing that `hash_start` is the hash of
    /// the header at `start_index`: a remote whose height is `start_index`
    /// or less has nothing newer, and the request ends at once with
    /// [`PeerError::Unanswered`] without being sent; a higher remote owes the
    /// answer, and silence is a stall.
    pub async fn get_headers_from(
        &self,
        start_index: u32,
        hash_start: UInt256,
        hash_stop: UInt256,
    ) -> Result<Vec<legacy::Header>, PeerError> {
        let msg = Self::get_headers_msg(hash_start, hash_stop);
        self.headers_answer(msg, Some(start_index.saturating_add(1)))
            .await
    }

    async fn headers_answer(
        &self,
        msg: legacy::Message,
        reach: Option<u32>,
    ) -> Result<Vec<legacy::Header>, PeerError> {
        let mut answers = self.request_answers(msg, reach).await?;
        match answers.next().await {
            Some(Ok(legacy::Message::Headers(h))) => Ok(h.headers),
            Some(Ok(other)) => Err(PeerError::UnexpectedAnswer(other.command_name())),
            Some(Err(e)) => Err(e),
            None => Err(PeerError::NoAnswer("getheaders")),
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

    /// Like [`Peer::request_headers`], but returns the headers. A start above
    /// the remote's height fails at once with [`PeerError::Unanswered`].
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

    /// Like [`Peer::request_blocks_by_index`], but returns the blocks: every
    /// block the remote has from `index_start`, at most `count` (500 for
    /// `-1`, and at most 500), as far as its height goes. A start above its
    /// height fails at once with [`PeerError::Unanswered`].
    pub async fn get_blocks_by_index(
        &self,
        index_start: u32,
        count: i16,
    ) -> Result<Vec<n3::Block>, PeerError> {
        let answers = self
            .request_all(n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
                index_start,
                count,
            }))
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
