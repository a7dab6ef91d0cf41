//! The rules of one peer as a plain state machine: no sockets, no tasks, no
//! clock of its own.
//!
//! A [`Machine`] is fed what happens to a connection and says what to do
//! about it, in the manner of a sans-I/O protocol library:
//!
//! - **inputs**: [`handle_bytes`](Machine::handle_bytes) (or the zero-copy
//!   [`receive_with`](Machine::receive_with)) for bytes read from the remote,
//!   [`send`](Machine::send) for a message of ours,
//!   [`handle_written`](Machine::handle_written) for bytes the connection took,
//!   [`handle_timeout`](Machine::handle_timeout) when the deadline it asked
//!   for has come, [`close`](Machine::close) to end it, and
//!   [`handler_busy`](Machine::handler_busy) /
//!   [`handler_ready`](Machine::handler_ready) while the local side cannot
//!   take more messages, [`send_room`](Machine::send_room) (or
//!   [`send_room_frame`](Machine::send_room_frame)) before a message of ours
//!   is queued (the send bound and budget), and
//!   [`send_frame`](Machine::send_frame) for a frame encoded in advance;
//! - **outputs**: [`poll_transmit`](Machine::poll_transmit) (bytes to write),
//!   [`poll_event`](Machine::poll_event) (a message for the handler, an answer
//!   for a waiting request, the end of a request, the end of the peer) and
//!   [`poll_timeout`](Machine::poll_timeout) (when to call `handle_timeout`).
//!
//! Every instant comes in as an argument, so a test drives a peer through
//! minutes of its life in microseconds, with made-up times and in-memory
//! bytes. The async engine around it only moves bytes and time.
//!
//! The rules it owns: the version/verack handshake (either order; a second
//! `version` or `verack`, our own nonce, another network, anything else
//! before the handshake, a frame over the pre-handshake cap, the handshake
//! timeout; on NEO Legacy our `verack` waits for theirs, up to 100 ms, and
//! nothing follows it for 50 ms), the idle timeout (no complete message for
//! that long), requests and their answers by the
//! [contract](crate::protocol::contract) (stall per request, paused while
//! the local handler is busy; a request the remote cannot answer ends at
//! once), `ping`/`pong` and the round trip, the write timeout, the send
//! bound (a remote with too many of our answers unsent is not read), the
//! receive and send budgets shared with other peers, the remote's height,
//! and the statistics.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::Frame;
use super::budget::{Claim, SEND_UNBUDGETED, UNBUDGETED};
use super::frame::Holding;
use super::handshake::{Handshake, Received, Step};
use super::outbox::{KEEP_CAPACITY, Outbox};
use super::stall::{RequestId, StallDetector};
use super::{DisconnectReason, LocalConfig, PeerError, Stats, Violation};
use crate::protocol::{
    Decoded, Obligation, Protocol, RequestKind, Role, Silence, VersionFacts, unix_seconds,
};
use crate::wire::{MAX_PAYLOAD, PingPayload};

/// Bytes of room offered to the connection per read while no frame is in
/// progress (small: an idle peer holds this much at most).
pub const READ_CHUNK: usize = 1024;

/// Most bytes of room offered per read. While a frame is incomplete the room
/// grows with what is already buffered (half of it), so a large frame takes
/// few reads, but never past what the frame's header says it still needs: a
/// remote that stalls mid-frame leaves us holding at most half again what it
/// sent.
pub const MAX_READ_CHUNK: usize = 1 << 20;

/// Something the outside world must act on.
#[derive(Debug, Clone)]
pub enum Event<P: Protocol> {
    /// The handshake completed: the remote's `version` is known.
    Handshaken,
    /// A message for the handler. `answers` names the request it answers
    /// when it answers one sent without a reply slot (its caller left the
    /// answer to the handler); `None` for everything else.
    Message {
        /// The message.
        message: P::Message,
        /// The request it answers, if any.
        answers: Option<RequestKind>,
    },
    /// An answer to request `id`, sent with a reply slot.
    Answer {
        /// The request.
        id: RequestId,
        /// The answer.
        message: P::Message,
        /// Whether it was the last answer the request expected.
        complete: bool,
    },
    /// Request `id`, sent with a reply slot, ended without (all of) its
    /// answers, for this reason.
    Ended {
        /// The request.
        id: RequestId,
        /// Why.
        error: PeerError,
    },
    /// The remote did something wrong that does not end the connection.
    Misbehaved(Misbehaviour),
    /// The peer ended (always the last event).
    Closed(DisconnectReason),
}

impl<P: Protocol> PartialEq for Event<P>
where
    P::Message: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        use Event as E;
        match (self, other) {
            (E::Handshaken, E::Handshaken) => true,
            (
                E::Message { message, answers },
                E::Message {
                    message: m,
                    answers: a,
                },
            ) => message == m && answers == a,
            (
                E::Answer {
                    id,
                    message,
                    complete,
                },
                E::Answer {
                    id: i,
                    message: m,
                    complete: c,
                },
            ) => id == i && message == m && complete == c,
            (E::Ended { id, error }, E::Ended { id: i, error: e }) => id == i && error == e,
            (E::Misbehaved(a), E::Misbehaved(b)) => a == b,
            (E::Closed(a), E::Closed(b)) => a == b,
            _ => false,
        }
    }
}

/// A fault of the remote that does not end the connection but should cost
/// it trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// It claimed height `claimed` but its `headers` prove it has only up to `proven`.
    HeightLie {
        /// The height it said it had.
        claimed: u32,
        /// The height its answer proves.
        proven: u32,
    },
}

impl std::fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misbehaviour::HeightLie { claimed, proven } => {
                write!(f, "claimed height {claimed} but has headers up to {proven}")
            }
        }
    }
}

/// What is known about the remote.
#[derive(Debug, Clone)]
pub struct Remote<P: Protocol> {
    /// Its `version`, once received.
    pub version: Option<P::Version>,
    /// What the engine keeps from it.
    pub facts: Option<VersionFacts>,
    /// Its best known height: from `version`, then raised by `ping`,
    /// `pong`, `headers` and `block`, and lowered when an answer proves a
    /// claim false.
    pub height: u32,
    /// The last round trip of a `ping`.
    pub rtt: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Open,
    Closed,
}

/// The state of one peer connection.
pub struct Machine<P: Protocol> {
    config: Arc<LocalConfig<P>>,
    stats: Stats,
    phase: Phase,
    reason: Option<DisconnectReason>,
    remote: Remote<P>,
    decoder: P::Codec,
    encoder: P::Codec,
    /// Received bytes not yet decoded.
    inbox: BytesMut,
    /// Bytes of `inbox`'s buffer, from its start, that reads have filled
    /// (with data or zeroed room): what it holds in memory.
    held: usize,
    /// This peer's share of the receive budget, charged with `held` beyond
    /// [`UNBUDGETED`].
    claim: Claim,
    /// When the frame in progress began to arrive.
    frame_since: Option<Instant>,
    /// Since when reading has waited for room in the budget, and how much.
    starved: Option<(Instant, usize)>,
    /// Whether `inbox` may hold a complete frame (false once decoding asked
    /// for more bytes).
    decodable: bool,
    /// Encoded bytes not yet taken by the connection.
    outbox: Outbox,
    /// This peer's share of the send budget, charged with the unsent bytes
    /// beyond [`SEND_UNBUDGETED`].
    send_claim: Claim,
    /// Whether a message of ours waits for room (the peer's send bound or
    /// the send budget): the remote is not read meanwhile.
    send_waiting: bool,
    /// Since when a message of ours has waited for room in the send budget,
    /// how much it lacks, and whether it may overdraw the budget (nobody
    /// else holds bytes to drop).
    send_starved: Option<(Instant, usize, bool)>,
    /// The hold on a shared frame taken by [`send_room_frame`](Machine::send_room_frame)
    /// for the [`send_frame`](Machine::send_frame) that follows.
    frame_hold: Option<Holding>,
    /// Bytes taken by the connection so far.
    written: u64,
    handshake: Handshake,
    handshake_deadline: Instant,
    /// When our `verack` goes out at the latest (Legacy waits for theirs).
    verack_due: Option<Instant>,
    /// Nothing past this many bytes (counted like `written`) is written
    /// before this instant: the pause after a Legacy `verack`.
    hold: Option<(u64, Instant)>,
    /// When the last complete message arrived (the idle clock).
    last_message: Instant,
    /// When we last queued a frame (the ping clock).
    last_queued: Instant,
    /// Since when the outbox has waited for the connection without progress.
    write_stuck_since: Option<Instant>,
    /// Since when the local side has not taken messages.
    busy_since: Option<Instant>,
    ping_nonce: u32,
    requests: StallDetector,
    events: VecDeque<Event<P>>,
}

impl<P: Protocol> std::fmt::Debug for Machine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("protocol", &P::NAME)
            .field("phase", &self.phase)
            .field("reason", &self.reason)
            .field("height", &self.remote.height)
            .field("pending", &self.requests.len())
            .field("inbox", &self.inbox.len())
            .field("outbox", &self.outbox.len())
            .finish()
    }
}

impl<P: Protocol> Machine<P> {
    /// A connection that has just opened at `now`: our `version` is queued
    /// at once and the handshake clock starts.
    pub fn new(config: Arc<LocalConfig<P>>, stats: Stats, now: Instant) -> Self {
        let mut decoder = P::codec(config.identity.network);
        P::set_max_payload(&mut decoder, config.handshake_max_payload);
        P::set_limits(&mut decoder, config.payload_limits);
        let mut encoder = P::codec(config.identity.network);
        P::set_max_payload(&mut encoder, MAX_PAYLOAD);
        P::set_limits(&mut encoder, config.payload_limits);
        let claim = config.receive_budget.claim();
        let send_claim = config.send_budget.claim();
        let mut m = Machine {
            handshake: Handshake::new(config.identity.nonce, config.identity.network),
            handshake_deadline: now + config.timeouts.handshake,
            requests: StallDetector::new(config.timeouts.stall, config.queues.pending_requests),
            ping_nonce: config.identity.nonce,
            config,
            stats,
            phase: Phase::Handshaking,
            reason: None,
            remote: Remote {
                version: None,
                facts: None,
                height: 0,
                rtt: None,
            },
            decoder,
            encoder,
            inbox: BytesMut::new(),
            held: 0,
            claim,
            frame_since: None,
            starved: None,
            decodable: false,
            outbox: Outbox::default(),
            send_claim,
            send_waiting: false,
            send_starved: None,
            frame_hold: None,
            written: 0,
            verack_due: None,
            hold: None,
            last_message: now,
            last_queued: now,
            write_stuck_since: None,
            busy_since: None,
            events: VecDeque::new(),
        };
        let version = P::version(&m.config.identity);
        match m.queue(&version, now) {
            Ok(()) => m.handshake.version_sent(),
            Err(e) => m.close(DisconnectReason::Encode(e)),
        }
        m
    }

    // ---- getters

    /// The configuration it runs with.
    pub fn config(&self) -> &LocalConfig<P> {
        &self.config
    }

    /// What is known about the remote.
    pub fn remote(&self) -> &Remote<P> {
        &self.remote
    }

    /// Whether the handshake completed.
    pub fn is_handshaken(&self) -> bool {
        self.handshake.is_complete()
    }

    /// Whether the peer ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Why the peer ended, once it has.
    pub fn reason(&self) -> Option<&DisconnectReason> {
        self.reason.as_ref()
    }

    /// Requests waiting for answers.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Bytes queued for the connection and not yet taken.
    pub fn unsent(&self) -> usize {
        self.outbox.len()
    }

    /// Bytes the connection has taken since the start.
    pub fn written_total(&self) -> u64 {
        self.written
    }

    /// Bytes queued since the start (taken or not): a message queued now is
    /// written once [`written_total`](Machine::written_total) reaches this.
    pub fn queued_total(&self) -> u64 {
        self.written + self.outbox.len() as u64
    }

    /// Whether the last read found no room in the receive budget (and was
    /// not made): the driver should retry when the budget frees bytes (see
    /// [`ReceiveBudget`](super::ReceiveBudget)).
    pub fn is_starved(&self) -> bool {
        self.starved.is_some()
    }

    /// Bytes the receive buffer holds in memory (data and zeroed room).
    pub fn receive_held(&self) -> usize {
        self.held
    }

    /// This peer's share of the receive budget.
    pub(crate) fn claim(&self) -> &Claim {
        &self.claim
    }

    /// This peer's share of the send budget.
    pub(crate) fn send_claim(&self) -> &Claim {
        &self.send_claim
    }

    /// Whether a message of ours waits for room in the send budget: the
    /// driver should offer it again when the budget frees bytes (see
    /// [`SendBudget`](super::SendBudget)).
    pub fn is_send_starved(&self) -> bool {
        self.send_starved.is_some()
    }

    /// Whether the machine wants bytes from the remote: it is not closed,
    /// not held back by a busy handler, every complete frame it had is
    /// decoded, and its answers are not held back: fewer unsent bytes than
    /// the send bound ([`LocalConfig::send_limit`](super::LocalConfig::send_limit))
    /// and no message of ours waiting for room. A remote that does not read
    /// is not read either, until it does (or the write timeout drops it).
    pub fn wants_bytes(&self) -> bool {
        self.phase != Phase::Closed
            && self.busy_since.is_none()
            && !self.decodable
            && !self.send_held_back()
    }

    /// Whether the remote's requests are held back because our answers to
    /// it are not written.
    fn send_held_back(&self) -> bool {
        self.send_waiting || self.outbox.len() >= self.config.send_limit
    }

    // ---- inputs

    /// Takes bytes read from the remote at `now` (copied; see
    /// [`receive_with`](Machine::receive_with) for reading in place). The
    /// bytes are charged to the receive budget whatever it has left: they
    /// are in memory already.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        if self.phase == Phase::Closed || data.is_empty() {
            return;
        }
        if self.inbox.is_empty() {
            self.frame_since = Some(now);
        }
        self.inbox.extend_from_slice(data);
        self.held = self.held.max(self.inbox.len());
        self.settle();
        self.decodable = true;
    }

    /// Offers `read` room in the receive buffer and keeps what it reads:
    /// `read` fills the start of the slice and returns how much it filled.
    /// Zero bytes read means the remote closed the connection; an error,
    /// that the connection failed: either ends the peer. While nothing is
    /// buffered and `read` is pending, the room is given back, so an idle
    /// peer holds no receive buffer.
    ///
    /// The room is what the frame in progress still needs, as its header
    /// declares it, up to half again what is buffered (at least
    /// [`READ_CHUNK`], at most [`MAX_READ_CHUNK`]); what the buffer holds
    /// beyond [`UNBUDGETED`] is taken from the receive
    /// budget first. When the budget has no room left, `read` is not called
    /// (the remote waits in TCP) and `Poll::Pending` is returned:
    /// [`is_starved`](Machine::is_starved) says so, and once the budget's
    /// patience has passed [`handle_timeout`](Machine::handle_timeout) drops
    /// the oldest partial frames of the budget to make room.
    pub fn receive_with(
        &mut self,
        now: Instant,
        read: impl FnOnce(&mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.claim.is_evicted() && self.phase != Phase::Closed {
            self.close(DisconnectReason::ReceiveBudget(self.inbox.len()));
        }
        if self.phase == Phase::Closed {
            return Poll::Ready(Ok(0));
        }
        let start = self.inbox.len();
        let wanted = self.room_wanted(start);
        let lacking = (start + wanted)
            .saturating_sub(UNBUDGETED)
            .saturating_sub(self.claim.held());
        let got = self.claim.take(lacking);
        let room = wanted.saturating_sub(lacking - got);
        if room == 0 {
            // Only a frame beyond the free allowance can find no room.
            if self.starved.is_none() {
                self.starved = Some((now, lacking));
            }
            return Poll::Pending;
        }
        self.starved = None;
        self.inbox.resize(start + room, 0);
        self.held = self.held.max(start + room);
        let polled = read(&mut self.inbox[start..]);
        let n = match &polled {
            Poll::Ready(Ok(n)) => (*n).min(room),
            _ => 0,
        };
        self.inbox.truncate(start + n);
        if start == 0 && n == 0 {
            self.inbox = BytesMut::new();
            self.held = 0;
        } else if start == 0 {
            self.frame_since = Some(now);
        }
        self.settle();
        match &polled {
            Poll::Ready(Ok(0)) => self.close(DisconnectReason::RemoteClosed),
            Poll::Ready(Ok(_)) => self.decodable = true,
            Poll::Ready(Err(e)) => self.close(io_reason(e)),
            Poll::Pending => {}
        }
        polled
    }

    /// The room the next read wants, with `start` bytes buffered.
    fn room_wanted(&self, start: usize) -> usize {
        let room = match P::frame_len(&self.inbox) {
            Some(total) if total > start => (total - start)
                .min((start / 2).max(READ_CHUNK))
                .min(MAX_READ_CHUNK),
            _ => READ_CHUNK,
        };
        // Reading past the frame costs nothing within the free allowance.
        room.max(READ_CHUNK.min(UNBUDGETED.saturating_sub(start)))
    }

    /// Charges the receive budget with what the buffer holds now, and
    /// records the age of the frame in progress.
    fn settle(&mut self) {
        if self.inbox.is_empty() {
            self.frame_since = None;
        }
        self.claim.set(self.held.saturating_sub(UNBUDGETED));
        self.claim.set_since(self.frame_since);
    }

    /// Queues `message` at `now`. `reach`, when known, is the height the
    /// remote must have to answer it in full (see
    /// [`Protocol::obligation`]); `reply` says whether its answers go to the
    /// caller (as [`Event::Answer`]) rather than to the handler.
    ///
    /// Returns the request's id when it expects answers. Fails, with
    /// nothing sent, when the peer is closed or not handshaken yet, when the
    /// remote cannot answer it ([`PeerError::Unanswered`]), when too many
    /// requests are outstanding, or when the message breaks a limit of the
    /// protocol. Take room for it first ([`send_room`](Machine::send_room),
    /// with [`Protocol::frame_size`]) to keep the send bound and budget; its
    /// bytes are charged to the budget in any case.
    pub fn send(
        &mut self,
        now: Instant,
        message: &P::Message,
        reach: Option<u32>,
        reply: bool,
    ) -> Result<Option<RequestId>, PeerError> {
        match self.phase {
            Phase::Closed => return Err(self.disconnected()),
            Phase::Handshaking => return Err(PeerError::NotHandshaken),
            Phase::Open => {}
        }
        let id = match P::obligation(message, reach, self.remote.height) {
            Obligation::Nothing => None,
            Obligation::Beyond { kind, height } => {
                return Err(PeerError::Unanswered { kind, height });
            }
            Obligation::Answers(expected) => Some(
                self.requests
                    .arm(expected, reply, now)
                    .map_err(|e| PeerError::TooManyPending(e.0))?,
            ),
        };
        if let Err(e) = self.queue(message, now) {
            if let Some(id) = id {
                self.requests.remove(id);
            }
            return Err(PeerError::Encode(e));
        }
        Ok(id)
    }

    /// The connection took `n` bytes of [`poll_transmit`](Machine::poll_transmit) at `now`.
    pub fn handle_written(&mut self, now: Instant, n: usize) {
        let n = n.min(self.outbox.front().len());
        self.outbox.advance(n);
        self.written += n as u64;
        if self.outbox.is_empty() {
            self.write_stuck_since = None;
        } else if n > 0 {
            self.write_stuck_since = Some(now);
        }
        self.settle_send();
    }

    /// Whether a message of about `size` bytes (at most
    /// [`Protocol::frame_size`]) may be queued at `now`: the peer holds
    /// fewer unsent bytes than its send bound ([`LocalConfig::send_limit`](super::LocalConfig::send_limit))
    /// with it, or none at all (a message larger than the bound goes out
    /// alone), and the send budget has room for what it adds beyond
    /// [`SEND_UNBUDGETED`] (taken now, before it is encoded). When it may
    /// not, the remote is not read until it may
    /// ([`wants_bytes`](Machine::wants_bytes)); for want of budget,
    /// [`is_send_starved`](Machine::is_send_starved) says so, and once the
    /// budget's patience has passed [`handle_timeout`](Machine::handle_timeout)
    /// drops the peers slowest to read to make room.
    pub fn send_room(&mut self, now: Instant, size: usize) -> bool {
        if let Some(decided) = self.send_bound(size) {
            return decided;
        }
        // Shared frames are charged once for all peers, by the frame.
        let want = self
            .outbox
            .own()
            .saturating_add(size)
            .saturating_sub(SEND_UNBUDGETED);
        let held = self.send_claim.held();
        let lacking = want.saturating_sub(held);
        if lacking > 0 {
            if let Some((_, _, true)) = self.send_starved {
                // Nobody else holds bytes to drop: it goes out alone.
                self.send_claim.set(want);
            } else {
                let got = self.send_claim.take(lacking);
                if got < lacking {
                    // All or nothing: what was taken goes back.
                    self.send_claim.set(held);
                    if self.send_starved.is_none() {
                        self.send_starved = Some((now, lacking, false));
                    }
                    self.send_waiting = true;
                    return false;
                }
            }
        }
        self.send_starved = None;
        self.send_waiting = false;
        true
    }

    /// What [`send_room`](Machine::send_room) and
    /// [`send_room_frame`](Machine::send_room_frame) decide before the
    /// budget: `Some(true)` when the peer is closed (or is closed now, its
    /// room evicted: `send` then refuses with the reason), `Some(false)`
    /// when `size` more bytes would pass its send bound while it holds
    /// unsent ones, `None` when the budget decides.
    fn send_bound(&mut self, size: usize) -> Option<bool> {
        if self.phase == Phase::Closed {
            return Some(true);
        }
        if self.send_claim.is_evicted() {
            self.close(DisconnectReason::SendBudget(self.outbox.len()));
            return Some(true);
        }
        let unsent = self.outbox.len();
        if unsent > 0 && unsent.saturating_add(size) > self.config.send_limit {
            self.send_waiting = true;
            return Some(false);
        }
        None
    }

    /// Whether the shared `frame` may be queued at `now`, like
    /// [`send_room`](Machine::send_room) for a message: within the peer's
    /// send bound, and with room in the send budget for the frame unless
    /// another peer holds it unsent already (a shared frame is charged to
    /// the budget once, however many peers hold it). The room taken is kept
    /// for the [`send_frame`](Machine::send_frame) of the same frame that
    /// follows.
    pub fn send_room_frame(&mut self, now: Instant, frame: &Frame) -> bool {
        self.frame_hold = None;
        if let Some(decided) = self.send_bound(frame.len()) {
            return decided;
        }
        let alone = matches!(self.send_starved, Some((_, _, true)));
        match frame.hold(self.send_claim.budget(), alone) {
            Some(hold) => self.frame_hold = Some(hold),
            None => {
                if self.send_starved.is_none() {
                    self.send_starved = Some((now, frame.len(), false));
                }
                self.send_waiting = true;
                return false;
            }
        }
        self.send_starved = None;
        self.send_waiting = false;
        true
    }

    /// Queues a frame encoded in advance (shared with other peers: its
    /// bytes are not copied) at `now`. Take room for it first
    /// ([`send_room_frame`](Machine::send_room_frame)). Fails when the peer
    /// is closed or not handshaken yet.
    pub fn send_frame(&mut self, now: Instant, frame: &Frame) -> Result<(), PeerError> {
        let hold = self.frame_hold.take().filter(|h| h.is_of(frame));
        match self.phase {
            Phase::Closed => return Err(self.disconnected()),
            Phase::Handshaking => return Err(PeerError::NotHandshaken),
            Phase::Open => {}
        }
        // Without room taken first, its bytes are charged in any case.
        let hold = hold.or_else(|| frame.hold(self.send_claim.budget(), true));
        let before = self.outbox.len();
        self.outbox.push(frame.bytes().clone(), hold);
        tracing::trace!(command = frame.command(), bytes = frame.len(), "sent");
        self.stats.sent(frame.command(), frame.len());
        if before == 0 {
            self.write_stuck_since = Some(now);
        }
        self.last_queued = now;
        self.settle_send();
        Ok(())
    }

    /// Charges the send budget with the unsent bytes, and records since
    /// when writing has made no progress.
    fn settle_send(&mut self) {
        self.send_claim
            .set(self.outbox.own().saturating_sub(SEND_UNBUDGETED));
        self.send_claim.set_shared(self.outbox.shared());
        self.send_claim.set_since(self.write_stuck_since);
    }

    /// Acts on every deadline that has come by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Some((_, until)) = self.hold.filter(|&(_, until)| now >= until) {
            let _ = until;
            self.hold = None;
        }
        if self.claim.is_evicted() {
            return self.close(DisconnectReason::ReceiveBudget(self.inbox.len()));
        }
        if self.send_claim.is_evicted() {
            return self.close(DisconnectReason::SendBudget(self.outbox.len()));
        }
        if let Some((since, lacking, false)) = self.send_starved {
            let budget = self.send_claim.budget();
            if now >= since + budget.patience() {
                let dropped = self.send_claim.make_room(lacking);
                tracing::debug!(
                    dropped,
                    lacking,
                    "send budget spent: slowest readers dropped"
                );
                let alone = dropped == 0 && budget.free_soon() < lacking;
                // Retried at once; if still short, after another wait.
                self.send_starved = Some((now, lacking, alone));
            }
        }
        if let Some((since, lacking)) = self.starved {
            let budget = self.claim.budget();
            if now >= since + budget.patience() {
                let dropped = self.claim.make_room(lacking);
                tracing::debug!(
                    dropped,
                    lacking,
                    "receive budget spent: oldest frames dropped"
                );
                if self.claim.is_evicted() || (dropped == 0 && budget.free_soon() < lacking) {
                    // Nobody else holds a frame to drop: this one cannot fit.
                    return self.close(DisconnectReason::ReceiveBudget(self.inbox.len()));
                }
                // Retried at the next read; if still short, after another wait.
                self.starved = Some((now, lacking));
            }
        }
        if self.phase == Phase::Handshaking {
            if now >= self.handshake_deadline {
                return self.close(DisconnectReason::HandshakeTimeout);
            }
            if self.verack_due.is_some_and(|due| now >= due) {
                self.send_verack(now);
            }
        }
        if let Some(since) = self.write_stuck_since {
            if now >= since + self.config.timeouts.write {
                return self.close(DisconnectReason::WriteTimeout(self.config.timeouts.write));
            }
        }
        if self.phase != Phase::Open {
            return;
        }
        if self.busy_since.is_none() && now >= self.last_message + self.config.timeouts.idle {
            return self.close(DisconnectReason::IdleTimeout(self.config.timeouts.idle));
        }
        while let Some(expired) = self.requests.expired(now) {
            match expired.silence {
                Silence::Stall => {
                    let reason = DisconnectReason::Stalled(expired.kind);
                    if expired.reply {
                        self.events.push_back(Event::Ended {
                            id: expired.id,
                            error: PeerError::Disconnected(reason.clone()),
                        });
                    }
                    return self.close(reason);
                }
                Silence::Allowed if expired.reply => self.events.push_back(Event::Ended {
                    id: expired.id,
                    error: PeerError::Unanswered {
                        kind: expired.kind,
                        height: self.remote.height,
                    },
                }),
                Silence::Allowed => {}
            }
        }
        if now >= self.last_queued + self.config.timeouts.ping_interval {
            self.send_ping(now);
        }
    }

    /// Ends the peer with `reason` (the first reason wins): every request
    /// whose caller waits ends with [`PeerError::Disconnected`], then
    /// [`Event::Closed`] is the last event.
    pub fn close(&mut self, reason: DisconnectReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        let error = PeerError::Disconnected(reason.clone());
        for id in self.requests.clear() {
            self.events.push_back(Event::Ended {
                id,
                error: error.clone(),
            });
        }
        self.events.push_back(Event::Closed(reason.clone()));
        self.reason = Some(reason);
        self.inbox = BytesMut::new();
        self.held = 0;
        self.starved = None;
        self.settle();
        self.outbox.clear();
        self.decodable = false;
        self.write_stuck_since = None;
        self.send_waiting = false;
        self.send_starved = None;
        self.frame_hold = None;
        self.settle_send();
    }

    /// The local side cannot take more messages since `now` (its handler
    /// queue is full): no more frames are decoded, and neither the idle clock
    /// nor any request's deadline runs, until [`handler_ready`](Machine::handler_ready).
    pub fn handler_busy(&mut self, now: Instant) {
        if self.busy_since.is_none() {
            self.busy_since = Some(now);
            self.requests.pause(now);
        }
    }

    /// The local side takes messages again at `now`.
    pub fn handler_ready(&mut self, now: Instant) {
        if let Some(since) = self.busy_since.take() {
            self.last_message += now.saturating_duration_since(since);
            self.requests.resume(now);
        }
    }

    // ---- outputs

    /// Bytes to write now (empty when there are none).
    pub fn poll_transmit(&self, now: Instant) -> &[u8] {
        let front = self.outbox.front();
        match self.hold {
            Some((limit, until)) if now < until => {
                let allowed = limit.saturating_sub(self.written) as usize;
                &front[..allowed.min(front.len())]
            }
            _ => front,
        }
    }

    /// When [`handle_timeout`](Machine::handle_timeout) must be called next
    /// (`None` once closed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeouts = &self.config.timeouts;
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match self.phase {
            Phase::Closed => return None,
            Phase::Handshaking => {
                at(self.handshake_deadline);
                if let Some(due) = self.verack_due {
                    at(due);
                }
            }
            Phase::Open => {
                if self.busy_since.is_none() {
                    at(self.last_message + timeouts.idle);
                }
                if let Some(deadline) = self.requests.next_deadline() {
                    at(deadline);
                }
                at(self.last_queued + timeouts.ping_interval);
            }
        }
        if let Some((_, until)) = self.hold {
            at(until);
        }
        if let Some(since) = self.write_stuck_since {
            at(since + timeouts.write);
        }
        if let Some((since, _)) = self.starved {
            at(since + self.claim.budget().patience());
        }
        if let Some((since, _, false)) = self.send_starved {
            at(since + self.send_claim.budget().patience());
        }
        if self.claim.is_evicted() || self.send_claim.is_evicted() {
            // Due at once: any instant already passed will do.
            at(self.last_message.min(self.last_queued));
        }
        next
    }

    /// The next event, decoding received frames as needed (none while the
    /// handler is busy).
    pub fn poll_event(&mut self, now: Instant) -> Option<Event<P>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if !self.decodable || self.busy_since.is_some() || self.phase == Phase::Closed {
                return None;
            }
            let before = self.inbox.len();
            let decoded = P::decode(&mut self.decoder, &mut self.inbox);
            if self.inbox.len() < before {
                // A frame left the buffer: what follows is the next frame's start.
                self.held = self.held.saturating_sub(before - self.inbox.len());
                self.frame_since = Some(now);
                self.settle();
            }
            match decoded {
                Ok(None) => {
                    self.decodable = false;
                    if self.inbox.is_empty() && self.inbox.capacity() > KEEP_CAPACITY {
                        // Give back the room a large frame took.
                        self.inbox = BytesMut::new();
                        self.held = 0;
                        self.settle();
                    }
                }
                Ok(Some(Decoded { message, wire_len })) => {
                    let command = P::command_name(&message);
                    tracing::trace!(command, bytes = wire_len, "received");
                    self.stats.received(command, wire_len);
                    self.last_message = now;
                    match self.phase {
                        Phase::Handshaking => self.on_handshake_message(now, message),
                        _ => self.on_message(now, message),
                    }
                }
                Err(e) => self.close(DisconnectReason::Frame(e)),
            }
        }
    }

    // ---- the rules

    fn on_handshake_message(&mut self, now: Instant, message: P::Message) {
        let step = match P::role(&message) {
            Role::Version(v) => {
                let facts = P::version_facts(v);
                let step = self.handshake.received(Received::Version {
                    nonce: facts.nonce,
                    network: facts.network,
                });
                if step.is_ok() {
                    self.remote.height = facts.start_height;
                    self.remote.version = Some(v.clone());
                    self.remote.facts = Some(facts);
                }
                step
            }
            Role::Verack => self.handshake.received(Received::Verack),
            _ => self
                .handshake
                .received(Received::Other(P::command_name(&message))),
        };
        match step {
            Err(v) => self.close(DisconnectReason::Handshake(v)),
            Ok(Step::SendVerack) => {
                // Our verack waits for theirs (or a short while), so that it
                // can never reach the remote in the same read as our version.
                self.verack_due = Some(now + P::VERACK_DELAY);
                if P::VERACK_DELAY.is_zero() {
                    self.send_verack(now);
                }
            }
            Ok(_) => {
                if self.verack_due.is_some() && self.handshake.remote_verack() {
                    self.send_verack(now);
                }
                self.complete_handshake(now);
            }
        }
    }

    fn send_verack(&mut self, now: Instant) {
        self.verack_due = None;
        if let Err(e) = self.queue(&P::verack(), now) {
            return self.close(DisconnectReason::Encode(e));
        }
        self.handshake.verack_sent();
        if !P::PAUSE_AFTER_VERACK.is_zero() {
            self.hold = Some((self.queued_total(), now + P::PAUSE_AFTER_VERACK));
        }
        self.complete_handshake(now);
    }

    fn complete_handshake(&mut self, now: Instant) {
        if self.phase != Phase::Handshaking || !self.handshake.is_complete() {
            return;
        }
        self.phase = Phase::Open;
        P::set_max_payload(&mut self.decoder, MAX_PAYLOAD);
        let compress = self
            .remote
            .facts
            .as_ref()
            .is_some_and(|f| f.allows_compression);
        P::set_compression(&mut self.encoder, compress);
        self.last_message = now;
        self.events.push_back(Event::Handshaken);
    }

    fn on_message(&mut self, now: Instant, message: P::Message) {
        let command = P::command_name(&message);
        match P::role(&message) {
            Role::Version(_) => {
                return self.close(DisconnectReason::Protocol(Violation::DuplicateVersion));
            }
            Role::Verack => {
                return self.close(DisconnectReason::Protocol(Violation::DuplicateVerack));
            }
            Role::Ping(p) => {
                self.raise_height(p.last_block_index);
                let pong = PingPayload {
                    last_block_index: self.config.height(),
                    timestamp: unix_seconds(),
                    nonce: p.nonce,
                };
                if let Err(e) = self.queue(&P::ping(pong, true), now) {
                    self.close(DisconnectReason::Encode(e));
                }
                return;
            }
            Role::Pong(p) => self.raise_height(p.last_block_index),
            Role::Other => {
                if command == "unknown" {
                    // Counted and handed to the handler; never a reason to disconnect.
                    tracing::debug!(message = ?message, "unknown command");
                }
            }
        }
        if let Some(h) = P::height_hint(&message) {
            self.raise_height(h);
        }
        let answered = if self.requests.is_empty() {
            None
        } else {
            P::reply(&message).and_then(|reply| self.requests.answer(&reply, now))
        };
        let Some(a) = answered else {
            // A pong is the engine's business: it answers our ping or nothing.
            if !matches!(P::role(&message), Role::Pong(_)) {
                self.events.push_back(Event::Message {
                    message,
                    answers: None,
                });
            }
            return;
        };
        self.stats.answered(command, &a);
        if a.kind == RequestKind::Ping {
            self.remote.rtt = Some(a.latency);
        }
        if let Some(proven) = a.proven_height.filter(|&h| h < self.remote.height) {
            let claimed = std::mem::replace(&mut self.remote.height, proven);
            self.events
                .push_back(Event::Misbehaved(Misbehaviour::HeightLie {
                    claimed,
                    proven,
                }));
        }
        let event = if a.reply {
            Event::Answer {
                id: a.id,
                message,
                complete: a.complete,
            }
        } else if a.kind == RequestKind::Ping {
            return;
        } else {
            Event::Message {
                message,
                answers: Some(a.kind),
            }
        };
        self.events.push_back(event);
    }

    fn send_ping(&mut self, now: Instant) {
        self.ping_nonce = self.ping_nonce.wrapping_add(1);
        let ping = P::ping(
            PingPayload {
                last_block_index: self.config.height(),
                timestamp: unix_seconds(),
                nonce: self.ping_nonce,
            },
            false,
        );
        match self.send(now, &ping, None, false) {
            Ok(_) => {}
            // Too many requests outstanding: the stall clock is running on
            // them, and the next ping comes after another interval.
            Err(PeerError::TooManyPending(_)) => self.last_queued = now,
            Err(e) => tracing::debug!(error = %e, "cannot ping"),
        }
    }

    fn raise_height(&mut self, h: u32) {
        self.remote.height = self.remote.height.max(h);
    }

    fn queue(&mut self, message: &P::Message, now: Instant) -> Result<(), crate::wire::FrameError> {
        let before = self.outbox.len();
        let mut writer = self.outbox.writer(P::frame_size(message));
        let encoded = P::encode(&self.encoder, message, self.outbox.buffer(&mut writer));
        self.outbox.commit(writer, encoded.is_ok());
        self.settle_send();
        encoded?;
        let (command, bytes) = (P::command_name(message), self.outbox.len() - before);
        tracing::trace!(command, bytes, "sent");
        self.stats.sent(command, bytes);
        if before == 0 {
            self.write_stuck_since = Some(now);
        }
        self.last_queued = now;
        Ok(())
    }

    fn disconnected(&self) -> PeerError {
        PeerError::Disconnected(self.reason.clone().unwrap_or(DisconnectReason::Requested))
    }
}

/// The reason a failed read or write ends a peer with.
pub(super) fn io_reason(e: &io::Error) -> DisconnectReason {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => DisconnectReason::RemoteClosed,
        _ => DisconnectReason::Io(e.to_string()),
    }
}
