//! The tasks of one connected peer: handshake, reader, writer, handler.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use async_io::Timer;
use bytes::BytesMut;
use event_listener::Event;
use futures_lite::FutureExt;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tracing::Instrument;

use super::handshake::{Handshake, Received, Step};
use super::queue;
use super::{
    Connection, DisconnectReason, Handler, LocalConfig, Peer, PeerError, RequestId, StallDetector,
    Stats, Violation,
};
use crate::executor::Executor;
use crate::protocol::{Decoded, Protocol, RequestKind, Role, VersionFacts};
use crate::wire::{MAX_PAYLOAD, PingPayload};

/// Bytes asked of the socket per read while no frame is in progress (small:
/// an idle peer holds this much; a large frame makes the reads grow).
const READ_CHUNK: usize = 1024;

/// State shared by a peer's tasks and handles.
pub(super) struct Shared<P: Protocol> {
    pub(super) config: LocalConfig,
    pub(super) stats: Stats,
    pub(super) created_at: SystemTime,
    pub(super) state: Mutex<State<P>>,
    /// Set when the peer disconnects; `closed_event` then wakes every waiter
    /// (an event takes no memory until someone waits, a channel 3/4 KiB).
    closed: AtomicBool,
    closed_event: Event,
}

/// Mutable facts about the remote and the requests in flight.
pub(super) struct State<P: Protocol> {
    pub(super) version: Option<P::Version>,
    pub(super) facts: Option<VersionFacts>,
    pub(super) height: u32,
    pub(super) rtt: Option<Duration>,
    pub(super) handshaked: bool,
    pub(super) reason: Option<DisconnectReason>,
    pub(super) stall: StallDetector<RequestKind>,
    pub(super) waiters: HashMap<RequestId, async_channel::Sender<P::Message>>,
}

impl<P: Protocol> Shared<P> {
    pub(super) fn new(config: LocalConfig) -> Self {
        let stall = StallDetector::new(config.timeouts.stall, config.queues.pending_requests);
        Shared {
            config,
            stats: Stats::new(),
            created_at: SystemTime::now(),
            state: Mutex::new(State {
                version: None,
                facts: None,
                height: 0,
                rtt: None,
                handshaked: false,
                reason: None,
                stall,
                waiters: HashMap::new(),
            }),
            closed: AtomicBool::new(false),
            closed_event: Event::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State<P>> {
        // Critical sections never panic halfway through an update that
        // matters; a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the peer with `reason` (the first reason wins). Every task and
    /// every waiting caller notices.
    pub(super) fn close(&self, reason: DisconnectReason) {
        let mut st = self.lock();
        if st.reason.is_none() {
            tracing::debug!(%reason, "peer disconnected");
            st.reason = Some(reason);
        }
        st.waiters.clear();
        st.stall.clear();
        drop(st);
        self.closed.store(true, Ordering::Release);
        self.closed_event.notify(usize::MAX);
    }

    pub(super) fn reason(&self) -> Option<DisconnectReason> {
        self.lock().reason.clone()
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves when the peer has disconnected.
    pub(super) async fn wait_closed(&self) {
        while !self.is_closed() {
            let listener = self.closed_event.listen();
            if self.is_closed() {
                return;
            }
            listener.await;
        }
    }
}

/// A message for the writer. The mailbox holds them boxed: a slot of a
/// pointer keeps the queues small whatever the size of the message type, and
/// the writer's future holds a pointer, not a message, while it writes.
pub(super) struct Outgoing<P: Protocol> {
    pub(super) msg: P::Message,
    /// Receives the answer instead of the handler (single-answer requests).
    pub(super) waiter: Option<async_channel::Sender<P::Message>>,
    /// Told whether the message was written.
    pub(super) written: Option<async_channel::Sender<Result<(), PeerError>>>,
}

fn io_reason(e: &std::io::Error) -> DisconnectReason {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => DisconnectReason::RemoteClosed,
        _ => DisconnectReason::Io(e.to_string()),
    }
}

/// Races `fut` against a deadline and the peer's end. `fut` is pinned by the
/// caller: moved in by value, it would be kept twice in this future.
async fn bounded<T>(
    shared: &Shared<impl Protocol>,
    fut: Pin<&mut impl Future<Output = T>>,
    deadline: Instant,
) -> Option<Result<T, ()>> {
    let fut = async { Some(Ok(fut.await)) };
    let timer = async {
        Timer::at(deadline).await;
        Some(Err(()))
    };
    let closed = async {
        shared.wait_closed().await;
        None
    };
    fut.or(timer).or(closed).await
}

/// Runs the handshake, then spawns the peer's tasks. The future `Peer::run` awaits.
pub(super) async fn start<P, C, H, E>(
    peer: Peer<P>,
    conn: C,
    handler: H,
    executor: E,
) -> Result<(), PeerError>
where
    P: Protocol,
    C: Connection,
    H: Handler<P>,
    E: Executor,
{
    let shared = peer.shared.clone();
    let mut conn = conn;
    let deadline = Instant::now() + shared.config.timeouts.handshake;
    let outcome = bounded(&shared, pin!(handshake(&shared, &mut conn)), deadline).await;
    let leftover = match outcome {
        Some(Ok(Ok(buf))) => buf,
        Some(Ok(Err(reason))) => {
            shared.close(reason);
            return Err(peer.disconnected());
        }
        Some(Err(())) => {
            shared.close(DisconnectReason::HandshakeTimeout);
            return Err(peer.disconnected());
        }
        None => return Err(peer.disconnected()),
    };
    spawn_tasks(peer, conn, leftover, handler, executor)
}

/// Starts the reader and writer tasks of a handshaken peer (the handler task
/// is started by the reader when there is something to handle). Not
/// async, so that the tasks' futures never sit inside the future of `start`.
fn spawn_tasks<P, C, H, E>(
    peer: Peer<P>,
    conn: C,
    leftover: BytesMut,
    handler: H,
    executor: E,
) -> Result<(), PeerError>
where
    P: Protocol,
    C: Connection,
    H: Handler<P>,
    E: Executor,
{
    let shared = &peer.shared;
    let (reader, writer) = futures_lite::io::split(conn);
    let mailbox = peer.take_mailbox().ok_or(PeerError::AlreadyStarted)?;
    let span = tracing::debug_span!(
        "peer",
        protocol = P::NAME,
        remote = ?peer.remote_addr,
        direction = ?peer.direction
    );
    tracing::debug!(parent: &span, user_agent = ?peer.info().user_agent, "handshake complete");
    let (queue, messages) = queue::bounded(shared.config.queues.handler);
    let handling = Arc::new(Handling {
        peer: peer.clone(),
        handler,
        executor,
        queue,
        messages,
        running: AtomicBool::new(false),
        span: span.clone(),
    });
    let writing = write_loop(peer.clone(), writer, mailbox);
    let reading = read_loop(peer, reader, leftover, handling.clone());
    handling
        .executor
        .spawn(Box::pin(writing.instrument(span.clone())));
    handling.executor.spawn(Box::pin(reading.instrument(span)));
    Ok(())
}

async fn write_frame<P: Protocol>(
    shared: &Shared<P>,
    conn: &mut (impl AsyncWrite + Unpin),
    codec: &P::Codec,
    msg: &P::Message,
    out: &mut BytesMut,
) -> Result<(), DisconnectReason> {
    out.clear();
    P::encode(codec, msg, out).map_err(DisconnectReason::Encode)?;
    conn.write_all(out).await.map_err(|e| io_reason(&e))?;
    conn.flush().await.map_err(|e| io_reason(&e))?;
    shared.stats.sent(P::command_name(msg), out.len());
    Ok(())
}

/// Version/verack. Returns the bytes read past the handshake.
async fn handshake<P: Protocol>(
    shared: &Shared<P>,
    conn: &mut (impl AsyncRead + AsyncWrite + Unpin),
) -> Result<BytesMut, DisconnectReason> {
    let config = &shared.config;
    let mut codec = P::codec(config.network);
    P::set_max_payload(&mut codec, config.handshake_max_payload);
    let mut hs = Handshake::new(config.nonce, config.network);
    let mut out = BytesMut::new();
    // Boxed, like every message this future writes: a message is large, and
    // one kept across an await would take room in the future all along.
    let version = Box::new(P::version(config));
    write_frame(shared, conn, &codec, &version, &mut out).await?;
    drop(version);
    hs.version_sent();
    let mut buf = BytesMut::new();
    let mut verack_due: Option<Instant> = None;
    loop {
        // A message is dealt with within this statement, so that none is
        // kept in this future across an await.
        let step = match P::decode(&mut codec, &mut buf).map_err(DisconnectReason::Frame)? {
            None => None,
            Some(Decoded { message, wire_len }) => {
                shared.stats.received(P::command_name(&message), wire_len);
                let step = match P::role(&message) {
                    Role::Version(v) => {
                        let facts = P::version_facts(v);
                        let step = hs.received(Received::Version {
                            nonce: facts.nonce,
                            network: facts.network,
                        });
                        if step.is_ok() {
                            let mut st = shared.lock();
                            st.height = facts.start_height;
                            st.version = Some(v.clone());
                            st.facts = Some(facts);
                        }
                        step
                    }
                    Role::Verack => hs.received(Received::Verack),
                    _ => hs.received(Received::Other(P::command_name(&message))),
                };
                Some(step.map_err(DisconnectReason::Handshake)?)
            }
        };
        if let Some(step) = step {
            if step == Step::SendVerack {
                // Our verack waits for theirs (or a short while), so that it
                // can never reach the remote in the same read as our version.
                verack_due = Some(Instant::now() + P::VERACK_DELAY);
            }
            if verack_due.is_some_and(|due| hs.remote_verack() || Instant::now() >= due) {
                verack_due = None;
                send_verack(shared, conn, &codec, &mut hs, &mut out).await?;
            }
            if hs.is_complete() {
                shared.lock().handshaked = true;
                return Ok(buf);
            }
            continue;
        }
        let read = read_some(conn, &mut buf);
        let n = match verack_due {
            None => read.await?,
            Some(due) => {
                let timer = async {
                    Timer::at(due).await;
                    Ok(None)
                };
                match async { read.await.map(Some) }.or(timer).await? {
                    Some(n) => n,
                    None => {
                        verack_due = None;
                        send_verack(shared, conn, &codec, &mut hs, &mut out).await?;
                        continue;
                    }
                }
            }
        };
        if n == 0 {
            return Err(DisconnectReason::RemoteClosed);
        }
    }
}

async fn send_verack<P: Protocol>(
    shared: &Shared<P>,
    conn: &mut (impl AsyncWrite + Unpin),
    codec: &P::Codec,
    hs: &mut Handshake,
    out: &mut BytesMut,
) -> Result<(), DisconnectReason> {
    let verack = Box::new(P::verack());
    write_frame(shared, conn, codec, &verack, out).await?;
    drop(verack);
    hs.verack_sent();
    if !P::PAUSE_AFTER_VERACK.is_zero() {
        Timer::after(P::PAUSE_AFTER_VERACK).await;
    }
    Ok(())
}

/// Most bytes asked of the socket per read.
const MAX_READ_CHUNK: usize = 1 << 20;

/// Appends what one read returns to `buf`.
///
/// While a frame is incomplete the read size doubles with what is already
/// buffered, so a large frame takes few reads; memory still only grows with
/// bytes that actually arrived, never with a length the remote declared.
async fn read_some(
    conn: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> Result<usize, DisconnectReason> {
    /// Cuts `buf` back to what was really read, also when the read is
    /// cancelled halfway (it races timers): the future is cancel-safe.
    struct Keep<'a> {
        buf: &'a mut BytesMut,
        len: usize,
    }
    impl Drop for Keep<'_> {
        fn drop(&mut self) {
            self.buf.truncate(self.len);
        }
    }
    let start = buf.len();
    let chunk = start.clamp(READ_CHUNK, MAX_READ_CHUNK);
    let mut keep = Keep { buf, len: start };
    let n = futures_lite::future::poll_fn(|cx| {
        let buf = &mut *keep.buf;
        if buf.len() < start + chunk {
            // Zeroed once per read, not once per poll: a large frame's
            // room is large.
            buf.resize(start + chunk, 0);
        }
        let polled = Pin::new(&mut *conn).poll_read(cx, &mut buf[start..]);
        if start == 0 && polled.is_pending() {
            // Nothing buffered and nothing arrived: the room is given back
            // until bytes come, so an idle peer holds no read buffer.
            *buf = BytesMut::new();
        }
        polled
    })
    .await
    .map_err(|e| io_reason(&e))?;
    keep.len = start + n;
    Ok(n)
}

#[expect(
    clippy::manual_async_fn,
    reason = "an async block keeps its captures in place"
)]
fn read_loop<P: Protocol, C: Connection, H: Handler<P>, E: Executor>(
    peer: Peer<P>,
    mut conn: ReadHalf<C>,
    mut buf: BytesMut,
    handling: Arc<Handling<P, H, E>>,
) -> impl Future<Output = ()> + Send {
    // An async block rather than an async fn: it keeps its captures in
    // place instead of copying them, which halves what they take.
    async move {
        let shared = &peer.shared;
        let mut codec = P::codec(shared.config.network);
        P::set_max_payload(&mut codec, MAX_PAYLOAD);
        let idle = shared.config.timeouts.idle;
        let mut last_message = Instant::now();
        let reason = loop {
            // A message is decoded and dealt with within this statement, so
            // that none is kept in this future across an await.
            let decoded = match P::decode(&mut codec, &mut buf) {
                Ok(None) => None,
                Ok(Some(Decoded { message, wire_len })) => {
                    last_message = Instant::now();
                    match on_message(&peer, message, wire_len, &handling) {
                        Ok(later) => Some(later),
                        Err(reason) => break reason,
                    }
                }
                Err(e) => break DisconnectReason::Frame(e),
            };
            if let Some(later) = decoded {
                // Rare: a full mailbox or handler queue. Awaited here, so the
                // reader's idle state stays small.
                match later {
                    None => {}
                    Some(Later::Mailbox(out)) => {
                        let _ = peer.mailbox.send(out).await;
                    }
                    Some(Later::Handler(msg)) => {
                        // The handler is behind: stop reading (the remote is
                        // pushed back by TCP) and stop the stall clocks until
                        // there is room again.
                        shared.lock().stall.pause(Instant::now());
                        let sent = handling.queue.send(msg).await;
                        shared.lock().stall.resume(Instant::now());
                        if sent.is_err() {
                            break DisconnectReason::HandlerGone;
                        }
                        handling.kick();
                    }
                }
                continue;
            }
            if buf.is_empty() && buf.capacity() > 4 * READ_CHUNK {
                // Give back the room a large frame took.
                buf = BytesMut::new();
            }
            match bounded(
                shared,
                pin!(read_some(&mut conn, &mut buf)),
                last_message + idle,
            )
            .await
            {
                Some(Ok(Ok(0))) => break DisconnectReason::RemoteClosed,
                Some(Ok(Ok(_))) => {}
                Some(Ok(Err(reason))) => break reason,
                Some(Err(())) => break DisconnectReason::IdleTimeout(idle),
                None => return,
            }
        };
        shared.close(reason);
    }
}

/// What the reader still has to wait for after [`on_message`].
enum Later<P: Protocol> {
    /// The mailbox was full: this pong waits for room.
    Mailbox(Box<Outgoing<P>>),
    /// The handler queue was full: this message waits for room.
    Handler(Box<P::Message>),
}

/// Everything the engine does with one received message after the handshake,
/// but waiting: that is left to the caller.
fn on_message<P: Protocol, H: Handler<P>, E: Executor>(
    peer: &Peer<P>,
    msg: P::Message,
    wire_len: usize,
    handling: &Arc<Handling<P, H, E>>,
) -> Result<Option<Later<P>>, DisconnectReason> {
    let shared = &peer.shared;
    let command = P::command_name(&msg);
    shared.stats.received(command, wire_len);
    if command == "unknown" {
        // Counted and handed to the handler; never a reason to disconnect.
        tracing::debug!(message = ?msg, "unknown command");
    }
    // A pong is the engine's business: it answers a ping (below) or nothing.
    let is_pong = match P::role(&msg) {
        Role::Version(_) => return Err(DisconnectReason::Protocol(Violation::DuplicateVersion)),
        Role::Verack => return Err(DisconnectReason::Protocol(Violation::DuplicateVerack)),
        Role::Ping(p) => {
            raise_height(shared, p.last_block_index);
            let pong = PingPayload {
                last_block_index: shared.config.height(),
                timestamp: crate::protocol::unix_seconds(),
                nonce: p.nonce,
            };
            // Through the mailbox, so the writer stays the only writer.
            let out = Box::new(Outgoing {
                msg: P::ping(pong, true),
                waiter: None,
                written: None,
            });
            return match peer.mailbox.try_send(out) {
                Err(async_channel::TrySendError::Full(out)) => Ok(Some(Later::Mailbox(out))),
                _ => Ok(None),
            };
        }
        Role::Pong(p) => {
            raise_height(shared, p.last_block_index);
            true
        }
        Role::Other => false,
    };
    if let Some(h) = P::height_hint(&msg) {
        raise_height(shared, h);
    }
    let mut waiter = None;
    {
        let mut st = shared.lock();
        if st.reason.is_some() {
            // The peer has ended: its callers were told so and may have
            // asked another peer. A late answer must not reach anyone.
            return Ok(None);
        }
        if let Some((kinds, n)) = P::answers(&msg) {
            let now = Instant::now();
            for &kind in kinds {
                if let Some(a) = st.stall.answer_many(kind, n, now) {
                    shared.stats.round_trip(command, a.latency);
                    if kind == RequestKind::Ping {
                        st.rtt = Some(a.latency);
                    }
                    waiter = if a.complete {
                        st.waiters.remove(&a.id)
                    } else {
                        st.waiters.get(&a.id).cloned()
                    };
                    break;
                }
            }
        }
    }
    if let Some(w) = waiter {
        // The caller asked for this answer: it goes to the caller.
        let _ = w.try_send(msg);
        return Ok(None);
    }
    if is_pong {
        return Ok(None);
    }
    match handling.queue.try_send(Box::new(msg)) {
        Ok(()) => {
            handling.kick();
            Ok(None)
        }
        Err(async_channel::TrySendError::Full(msg)) => Ok(Some(Later::Handler(msg))),
        Err(async_channel::TrySendError::Closed(_)) => Err(DisconnectReason::HandlerGone),
    }
}

fn raise_height<P: Protocol>(shared: &Shared<P>, h: u32) {
    let mut st = shared.lock();
    st.height = st.height.max(h);
}

#[expect(
    clippy::manual_async_fn,
    reason = "an async block keeps its captures in place"
)]
fn write_loop<P: Protocol, C: Connection>(
    peer: Peer<P>,
    mut conn: WriteHalf<C>,
    mailbox: queue::Receiver<Box<Outgoing<P>>>,
) -> impl Future<Output = ()> + Send {
    // An async block rather than an async fn: it keeps its captures in
    // place instead of copying them, which halves what they take.
    async move {
        let shared = &peer.shared;
        // Read in place, not copied: a copy would take room in this future.
        let timeouts = &shared.config.timeouts;
        let mut codec = P::codec(shared.config.network);
        P::set_max_payload(&mut codec, MAX_PAYLOAD);
        let compress = shared
            .lock()
            .facts
            .as_ref()
            .is_some_and(|f| f.allows_compression);
        P::set_compression(&mut codec, compress);
        let mut out = BytesMut::new();
        let mut last_write = Instant::now();
        let mut ping_nonce = shared.config.nonce;
        let reason = loop {
            let now = Instant::now();
            let next_deadline = shared.lock().stall.next_deadline();
            let wake = [
                Some(last_write + timeouts.ping_interval),
                Some(now + timeouts.stall_check_interval),
                next_deadline,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + timeouts.stall_check_interval);
            let next = async { mailbox.recv().await.ok().map(Some) };
            let tick = async {
                Timer::at(wake).await;
                Some(None)
            };
            let closed = async {
                shared.wait_closed().await;
                None
            };
            let outgoing = match next.or(tick).or(closed).await {
                None => break None,
                Some(o) => o,
            };
            if shared.is_closed() {
                // The message lost the race against the disconnect: it is failed
                // with the others still queued.
                if let Some(Some(w)) = outgoing.map(|o| o.written) {
                    let reason = shared.reason().unwrap_or(DisconnectReason::Requested);
                    let _ = w.try_send(Err(PeerError::Disconnected(reason)));
                }
                break None;
            }
            let now = Instant::now();
            if let Some(kind) = shared.lock().stall.expired(now) {
                break Some(DisconnectReason::Stalled(kind));
            }
            // The message stays boxed while it is written: the writer's future
            // then holds a pointer, not a message, across its awaits.
            let mut o = match outgoing {
                Some(o) => o,
                None if now >= last_write + timeouts.ping_interval => {
                    ping_nonce = ping_nonce.wrapping_add(1);
                    let ping = PingPayload {
                        last_block_index: shared.config.height(),
                        timestamp: crate::protocol::unix_seconds(),
                        nonce: ping_nonce,
                    };
                    Box::new(Outgoing {
                        msg: P::ping(ping, false),
                        waiter: None,
                        written: None,
                    })
                }
                None => continue,
            };
            let (waiter, written) = (o.waiter.take(), o.written.take());
            let msg = &o.msg;
            // Arm before writing, so that an answer racing the write finds it.
            let armed = {
                let mut st = shared.lock();
                let height = st.height;
                match P::expects(msg, height) {
                    // Ended since the check above: `close` has already failed
                    // every waiter, so this one must not be armed after it.
                    _ if st.reason.is_some() => Err(PeerError::Disconnected(
                        st.reason.clone().unwrap_or(DisconnectReason::Requested),
                    )),
                    Some((RequestKind::Ping, _)) if !P::PONG_EXPECTED => Ok(None),
                    Some((kind, n)) => match st.stall.arm(kind, n, now) {
                        Ok(id) => {
                            if let Some(w) = waiter {
                                st.waiters.insert(id, w);
                            }
                            Ok(Some(id))
                        }
                        Err(e) => Err(PeerError::TooManyPending(e.0)),
                    },
                    None => Ok(None),
                }
            };
            if let Err(e) = armed {
                if let Some(w) = written {
                    let _ = w.try_send(Err(e));
                }
                continue;
            }
            // Boxed: a write is short, the idle wait long; the writer's future
            // is as large as its largest await, so the write is kept out of it.
            let deadline = Instant::now() + timeouts.write;
            let write = Box::pin(async {
                let write = pin!(write_frame(shared, &mut conn, &codec, msg, &mut out));
                bounded(shared, write, deadline).await
            });
            let result = match write.await {
                Some(Ok(r)) => r,
                Some(Err(())) => Err(DisconnectReason::WriteTimeout(timeouts.write)),
                None => break None,
            };
            last_write = Instant::now();
            match result {
                Ok(()) => {
                    if let Some(w) = written {
                        let _ = w.try_send(Ok(()));
                    }
                }
                Err(DisconnectReason::Encode(e)) => {
                    // Nothing was written: the caller learns why, the peer lives on.
                    if let Ok(Some(id)) = armed {
                        let mut st = shared.lock();
                        st.stall.remove(id);
                        st.waiters.remove(&id);
                    }
                    if let Some(w) = written {
                        let _ = w.try_send(Err(PeerError::Encode(e)));
                    }
                }
                Err(reason) => {
                    // Record the reason before the caller hears of the failure:
                    // a dropped `written` alone would leave it to guess.
                    shared.close(reason);
                    if let Some(w) = written {
                        let reason = shared.reason().unwrap_or(DisconnectReason::Requested);
                        let _ = w.try_send(Err(PeerError::Disconnected(reason)));
                    }
                    break None;
                }
            }
        };
        if let Some(reason) = reason {
            shared.close(reason);
        }
        // Refuse new messages, then fail the ones already queued: their callers
        // learn of the disconnect now rather than never.
        mailbox.close();
        let failed =
            PeerError::Disconnected(shared.reason().unwrap_or(DisconnectReason::Requested));
        while let Ok(o) = mailbox.try_recv() {
            if let Some(w) = o.written {
                let _ = w.try_send(Err(failed.clone()));
            }
        }
        let _ = conn.close().await;
    }
}

/// The handler side of a peer. Its task exists only while there are
/// messages to handle: the reader queues a message and starts the task if
/// it is not running; the task handles the queue to the end, one message at
/// a time, and ends. An idle peer has no handler task.
pub(super) struct Handling<P: Protocol, H, E> {
    peer: Peer<P>,
    handler: H,
    executor: E,
    queue: queue::Sender<Box<P::Message>>,
    messages: queue::Receiver<Box<P::Message>>,
    /// Whether a handler task is running (or about to).
    running: AtomicBool,
    span: tracing::Span,
}

impl<P: Protocol, H: Handler<P>, E: Executor> Handling<P, H, E> {
    /// Starts the handler task unless it is running. Called after each
    /// message queued.
    fn kick(self: &Arc<Self>) {
        if !self.running.swap(true, Ordering::SeqCst) {
            let span = self.span.clone();
            self.executor
                .spawn(Box::pin(self.clone().drain().instrument(span)));
        }
    }

    /// The handler task: handles messages until the queue is empty.
    async fn drain(self: Arc<Self>) {
        let peer = &self.peer;
        loop {
            let Ok(msg) = self.messages.try_recv() else {
                self.running.store(false, Ordering::SeqCst);
                // A message queued after the look above found the task still
                // running and started none: it is this task's to handle.
                if self.messages.is_empty() || self.running.swap(true, Ordering::SeqCst) {
                    return;
                }
                continue;
            };
            let command = P::command_name(&msg);
            let started = Instant::now();
            let run = AssertUnwindSafe(self.handler.handle(peer, *msg)).catch_unwind();
            let panicked = run.await.is_err();
            peer.shared.stats.handled(command, started.elapsed());
            if panicked {
                // Only this peer goes down; the handler is not trusted with
                // more. The reader, if it waits for room, is let go.
                peer.shared
                    .close(DisconnectReason::HandlerPanicked(command));
                self.messages.close();
                return;
            }
        }
    }
}
