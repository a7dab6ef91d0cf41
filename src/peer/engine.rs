//! The driver of one peer: moves bytes between the connection and the
//! [`Machine`], sleeps until the machine's next deadline, carries requests
//! from the mailbox in and answers out to the callers and the handler. It
//! decides nothing: every rule is the machine's.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Instant, SystemTime};

use async_io::Timer;
use event_listener::{Event, EventListener};
use futures_lite::FutureExt;
use tracing::Instrument;

use super::machine::{self, Machine, Misbehaviour};
use super::queue;
use super::{
    Connection, Direction, DisconnectReason, Frame, Handler, LocalConfig, Peer, PeerError,
    RequestId, Stats,
};
use crate::executor::Executor;
use crate::protocol::{Protocol, RequestKind};
use crate::telemetry;

/// Answers a caller's reply slot holds before the driver waits for the
/// caller to take them (and stops reading meanwhile).
pub(super) const REPLY_CAPACITY: usize = 16;

/// Bytes queued for the connection past which the mailbox is not read:
/// callers then wait, instead of their messages piling up encoded.
const SEND_WATERMARK: usize = 64 * 1024;

/// Peer numbers, unique in the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// State shared by a peer's driver and handles.
pub(super) struct Shared<P: Protocol> {
    pub(super) id: u64,
    pub(super) direction: Direction,
    pub(super) remote_addr: OnceLock<SocketAddr>,
    /// Our end of the connection, when the manager knows it.
    pub(super) local_addr: OnceLock<SocketAddr>,
    pub(super) config: Arc<LocalConfig<P>>,
    pub(super) stats: Stats,
    pub(super) created_at: SystemTime,
    /// The span of the peer's log lines (`remote` recorded once known).
    pub(super) span: tracing::Span,
    state: Mutex<State<P>>,
    /// Set when the peer has ended; `closed_event` then wakes every waiter.
    closed: AtomicBool,
    closed_event: Event,
}

pub(super) struct State<P: Protocol> {
    pub(super) machine: Machine<P>,
    /// The driver, to wake when a handle changes the machine.
    waker: Option<Waker>,
}

impl<P: Protocol> Shared<P> {
    pub(super) fn new(config: LocalConfig<P>, direction: Direction) -> Self {
        let config = Arc::new(config);
        let stats = Stats::new();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        // At the error level, so that the span is there whatever level of
        // the peer's events a subscriber lets through.
        let span = tracing::error_span!(
            "peer",
            id,
            protocol = P::NAME,
            remote = tracing::field::Empty,
            direction = ?direction,
        );
        // Our `version` is queued here: its trace line names the peer.
        let machine = span.in_scope(|| Machine::new(config.clone(), stats.clone(), Instant::now()));
        Shared {
            id,
            direction,
            span,
            remote_addr: OnceLock::new(),
            local_addr: OnceLock::new(),
            state: Mutex::new(State {
                machine,
                waker: None,
            }),
            config,
            stats,
            created_at: SystemTime::now(),
            closed: AtomicBool::new(false),
            closed_event: Event::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State<P>> {
        // The machine is never left half-updated by a panic that matters; a
        // poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the peer with `reason` (the first reason wins); the driver
    /// tells every waiting caller.
    pub(super) fn close(&self, reason: DisconnectReason) {
        let mut st = self.lock();
        st.machine.close(reason);
        let waker = st.waker.take();
        drop(st);
        self.mark_closed();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn mark_closed(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.closed_event.notify(usize::MAX);
        }
    }

    pub(super) fn reason(&self) -> Option<DisconnectReason> {
        self.lock().machine.reason().cloned()
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves when the peer has ended.
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

/// One item a caller's reply slot receives.
pub(super) enum ReplyItem<P: Protocol> {
    /// An answer.
    Answer(P::Message),
    /// The request is complete.
    Done,
    /// The request ended without (all of) its answers.
    Failed(PeerError),
}

/// A message for the driver, from a handle. Boxed in the mailbox: a slot of
/// a pointer keeps the queue small whatever the size of the message type.
pub(super) struct Outgoing<P: Protocol> {
    pub(super) msg: Item<P>,
    /// The height the remote must have to answer in full, when known.
    pub(super) reach: Option<u32>,
    /// Receives the answers instead of the handler.
    pub(super) reply: Option<async_channel::Sender<ReplyItem<P>>>,
    /// Told whether the message was written.
    pub(super) written: Option<async_channel::Sender<Result<(), PeerError>>>,
}

/// What a caller sends: a message to encode, or a frame encoded already.
pub(super) enum Item<P: Protocol> {
    Message(P::Message),
    Frame(Frame),
}

impl<P: Protocol> Item<P> {
    fn command(&self) -> &'static str {
        match self {
            Item::Message(m) => P::command_name(m),
            Item::Frame(f) => f.command(),
        }
    }
}

/// Runs the handshake on this task, then starts the driver on `executor`
/// and returns. The future [`Peer::run`] awaits.
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
    let mailbox = peer.take_mailbox().ok_or(PeerError::AlreadyStarted)?;
    let started = Instant::now();
    let span = peer.shared.span.clone();
    let mut driver = Driver {
        peer: peer.clone(),
        conn,
        mailbox,
        handling: None,
        replies: Vec::new(),
        written: VecDeque::new(),
        held: None,
        timer: Timer::never(),
        timer_at: None,
        flushed: true,
        handshake_end: None,
        connected: None,
        budget_wait: None,
        next_out: None,
        send_wait: None,
    };
    let handshaken = std::future::poll_fn(|cx| driver.poll(cx, true))
        .instrument(span.clone())
        .await;
    if !handshaken {
        return Err(peer.disconnected());
    }
    let direction = peer.shared.direction;
    telemetry::handshake_completed(direction, started.elapsed());
    driver.connected = Some(telemetry::LivePeer::new(direction));
    tracing::info!(
        parent: &span,
        user_agent = peer.info().user_agent.as_deref().unwrap_or_default(),
        height = peer.height(),
        "handshake complete"
    );
    let (queue, messages) = queue::bounded(peer.shared.config.queues.handler);
    let handling = Arc::new(Handling {
        peer: peer.clone(),
        handler,
        executor,
        queue,
        messages,
        running: AtomicBool::new(false),
        span: span.clone(),
    });
    driver.handling = Some(handling.clone());
    let run = async move {
        std::future::poll_fn(|cx| driver.poll(cx, false)).await;
    };
    handling.executor.spawn(Box::pin(run.instrument(span)));
    Ok(())
}

/// A delivery that had to wait for room; it resolves to the reason to end
/// the peer with, if its receiver is one the peer cannot live without.
type Held = Pin<Box<dyn Future<Output = Option<DisconnectReason>> + Send>>;

struct Driver<P: Protocol, C, H, E> {
    peer: Peer<P>,
    conn: C,
    mailbox: queue::Receiver<Box<Outgoing<P>>>,
    /// The handler side, once handshaken.
    handling: Option<Arc<Handling<P, H, E>>>,
    /// Reply slots of the requests in flight.
    replies: Vec<(RequestId, async_channel::Sender<ReplyItem<P>>)>,
    /// Callers waiting for their message to be written, with the byte
    /// count it is written at.
    written: VecDeque<(u64, async_channel::Sender<Result<(), PeerError>>)>,
    /// A delivery waiting for room (the machine is told the handler is busy).
    held: Option<Held>,
    timer: Timer,
    timer_at: Option<Instant>,
    /// Whether everything written was flushed.
    flushed: bool,
    /// Once handshaken: the byte count our side of the handshake ends at.
    /// The handshake is over for the caller only when it is written, so that
    /// a peer refused right after (a duplicate, say) has had our verack and
    /// hears of its refusal as a refusal, not as a broken handshake.
    handshake_end: Option<u64>,
    /// Counts the peer as connected from the handshake to its end.
    connected: Option<telemetry::LivePeer>,
    /// While the machine waits for room in the receive budget: told when
    /// another peer gives bytes back.
    budget_wait: Option<EventListener>,
    /// A message taken from the mailbox that waits for room (the peer's
    /// send bound or the send budget).
    next_out: Option<Box<Outgoing<P>>>,
    /// While that message waits for room in the send budget: told when
    /// another peer's bytes are written.
    send_wait: Option<EventListener>,
}

impl<P: Protocol, C: Connection, H: Handler<P>, E: Executor> Driver<P, C, H, E> {
    /// Drives the peer until it is handshaken (`until_handshaken`; true if
    /// it was) or until it has ended (then false).
    fn poll(&mut self, cx: &mut Context<'_>, until_handshaken: bool) -> Poll<bool> {
        let shared = self.peer.shared.clone();
        loop {
            let now = Instant::now();
            let mut progress = false;
            if let Some(held) = self.held.as_mut() {
                if let Poll::Ready(fatal) = held.as_mut().poll(cx) {
                    self.held = None;
                    progress = true;
                    let mut st = shared.lock();
                    st.machine.handler_ready(now);
                    if let Some(reason) = fatal {
                        st.machine.close(reason);
                    }
                }
            }
            let mut st = shared.lock();
            if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                st.waker = Some(cx.waker().clone());
            }
            let m = &mut st.machine;
            // Woken if another peer drops this one to free the budget.
            m.claim().register(cx.waker());
            m.send_claim().register(cx.waker());
            if m.poll_timeout().is_some_and(|t| t <= now) {
                m.handle_timeout(now);
            }
            // Events: answers, messages for the handler, the end.
            while self.held.is_none() && self.handshake_end.is_none() {
                let Some(event) = m.poll_event(now) else {
                    break;
                };
                progress = true;
                match event {
                    machine::Event::Handshaken if until_handshaken => {
                        self.handshake_end = Some(m.queued_total());
                        break;
                    }
                    machine::Event::Handshaken => {}
                    machine::Event::Closed(reason) => self.ended(&reason),
                    event => {
                        if let Some(held) = self.route(event) {
                            self.held = Some(held);
                            m.handler_busy(now);
                        }
                    }
                }
            }
            if m.is_closed() {
                // The loop above may have stopped short (a held delivery,
                // the handshake's end): the end is still told and counted.
                while let Some(event) = m.poll_event(now) {
                    if let machine::Event::Closed(reason) = event {
                        self.ended(&reason);
                    }
                }
                drop(st);
                self.finish(&shared, cx);
                return Poll::Ready(false);
            }
            // The mailbox, while the outbox is short and there is room for
            // the next message.
            while self.handling.is_some() && m.unsent() < SEND_WATERMARK {
                let out = match self.next_out.take() {
                    Some(out) => out,
                    None => {
                        let Poll::Ready(next) = self.mailbox.poll_recv(cx) else {
                            break;
                        };
                        let Some(out) = next else { break };
                        progress = true;
                        out
                    }
                };
                let room = match &out.msg {
                    Item::Frame(frame) => m.send_room_frame(now, frame),
                    Item::Message(msg) => m.send_room(now, P::frame_size(msg)),
                };
                if !room {
                    self.next_out = Some(out);
                    break;
                }
                self.submit(m, now, *out);
            }
            if m.is_send_starved() {
                // Offered again when another peer's bytes are written.
                match self.send_wait.as_mut() {
                    None => {
                        self.send_wait = Some(m.send_claim().budget().listen());
                        progress = true;
                    }
                    Some(freed) => {
                        if Pin::new(freed).poll(cx).is_ready() {
                            self.send_wait = None;
                            progress = true;
                        }
                    }
                }
            } else {
                self.send_wait = None;
            }
            // Writing.
            let out = m.poll_transmit(now);
            if !out.is_empty() {
                match Pin::new(&mut self.conn).poll_write(cx, out) {
                    Poll::Ready(Ok(n)) => {
                        m.handle_written(now, n);
                        self.flushed = false;
                        progress = true;
                        let done = m.written_total();
                        while self.written.front().is_some_and(|(end, _)| *end <= done) {
                            if let Some((_, w)) = self.written.pop_front() {
                                let _ = w.try_send(Ok(()));
                            }
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        m.close(machine::io_reason(&e));
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            } else if !self.flushed {
                match Pin::new(&mut self.conn).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.flushed = true,
                    Poll::Ready(Err(e)) => m.close(machine::io_reason(&e)),
                    Poll::Pending => {}
                }
            }
            if let Some(end) = self.handshake_end {
                if m.written_total() >= end {
                    self.handshake_end = None;
                    return Poll::Ready(true);
                }
            }
            // Reading.
            if m.wants_bytes() {
                let conn = &mut self.conn;
                if m.receive_with(now, |room| Pin::new(conn).poll_read(cx, room))
                    .is_ready()
                {
                    progress = true;
                }
                if m.is_starved() {
                    // Not read: the remote waits in TCP until bytes are
                    // given back (or the budget's patience runs out, below).
                    match self.budget_wait.as_mut() {
                        None => {
                            // Listening first, then trying again, so that
                            // bytes freed in between are not missed.
                            self.budget_wait = Some(m.claim().budget().listen());
                            progress = true;
                        }
                        Some(freed) => {
                            if Pin::new(freed).poll(cx).is_ready() {
                                self.budget_wait = None;
                                progress = true;
                            }
                        }
                    }
                } else {
                    self.budget_wait = None;
                }
            }
            // Sleeping until the next deadline.
            let wake = m.poll_timeout();
            drop(st);
            if wake != self.timer_at {
                self.timer_at = wake;
                match wake {
                    Some(at) => self.timer.set_at(at),
                    None => self.timer = Timer::never(),
                }
            }
            if wake.is_some() && self.timer.poll(cx).is_ready() {
                self.timer_at = None;
                progress = true;
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// The peer ended, for `reason`: logged and counted, as a failed
    /// handshake or as a disconnect.
    fn ended(&mut self, reason: &DisconnectReason) {
        let what = match self.connected.as_mut() {
            Some(connected) => {
                connected.end(reason);
                "disconnected"
            }
            None => {
                telemetry::handshake_failed(self.peer.shared.direction, reason);
                "handshake failed"
            }
        };
        let label = reason.label();
        if reason.is_remote_fault() {
            tracing::warn!(%reason, reason_label = label, "{what}");
        } else {
            tracing::info!(%reason, reason_label = label, "{what}");
        }
    }

    /// Hands a request from a handle to the machine.
    fn submit(&mut self, m: &mut Machine<P>, now: Instant, out: Outgoing<P>) {
        let Outgoing {
            msg,
            reach,
            reply,
            written,
        } = out;
        let sent = match &msg {
            Item::Message(msg) => m.send(now, msg, reach, reply.is_some()),
            Item::Frame(frame) => m.send_frame(now, frame).map(|()| None),
        };
        match sent {
            Ok(id) => {
                if let Some(reply) = reply {
                    match id {
                        Some(id) => self.replies.push((id, reply)),
                        None => {
                            let _ = reply
                                .try_send(ReplyItem::Failed(PeerError::NoAnswer(msg.command())));
                        }
                    }
                }
                if let Some(w) = written {
                    self.written.push_back((m.queued_total(), w));
                }
            }
            Err(e) => {
                if let Some(reply) = reply {
                    let _ = reply.try_send(ReplyItem::Failed(e.clone()));
                }
                if let Some(w) = written {
                    let _ = w.try_send(Err(e));
                }
            }
        }
    }

    /// Delivers one event; returns the delivery if it must wait for room.
    fn route(&mut self, event: machine::Event<P>) -> Option<Held> {
        match event {
            machine::Event::Answer {
                id,
                message,
                complete,
            } => {
                let i = self.replies.iter().position(|(r, _)| *r == id)?;
                let sender = if complete {
                    self.replies.swap_remove(i).1
                } else {
                    self.replies[i].1.clone()
                };
                let mut items = vec![ReplyItem::Answer(message)];
                if complete {
                    items.push(ReplyItem::Done);
                }
                deliver_replies(sender, items)
            }
            machine::Event::Ended { id, error } => {
                let i = self.replies.iter().position(|(r, _)| *r == id)?;
                let sender = self.replies.swap_remove(i).1;
                deliver_replies(sender, vec![ReplyItem::Failed(error)])
            }
            machine::Event::Message { message, answers } => {
                self.to_handler(Incoming::Message { message, answers })
            }
            machine::Event::Misbehaved(what) => self.to_handler(Incoming::Misbehaved(what)),
            machine::Event::Handshaken | machine::Event::Closed(_) => None,
        }
    }

    fn to_handler(&self, item: Incoming<P>) -> Option<Held> {
        let handling = self.handling.as_ref()?;
        match handling.queue.try_send(Box::new(item)) {
            Ok(()) => {
                handling.kick();
                None
            }
            Err(async_channel::TrySendError::Full(item)) => {
                let handling = handling.clone();
                Some(Box::pin(async move {
                    if handling.queue.send(item).await.is_err() {
                        return Some(DisconnectReason::HandlerGone);
                    }
                    handling.kick();
                    None
                }))
            }
            Err(async_channel::TrySendError::Closed(_)) => {
                Some(Box::pin(async { Some(DisconnectReason::HandlerGone) }))
            }
        }
    }

    /// After the machine closed: every waiting caller learns why, the
    /// connection is closed.
    fn finish(&mut self, shared: &Shared<P>, cx: &mut Context<'_>) {
        let reason = shared.reason().unwrap_or(DisconnectReason::Requested);
        let failed = PeerError::Disconnected(reason);
        for (_, reply) in self.replies.drain(..) {
            let _ = reply.try_send(ReplyItem::Failed(failed.clone()));
        }
        for (_, w) in self.written.drain(..) {
            let _ = w.try_send(Err(failed.clone()));
        }
        // Refuse new messages, then fail the ones already queued: their
        // callers learn of the disconnect now rather than never.
        self.mailbox.close();
        let mut held = self.next_out.take();
        while let Some(out) = held.take().or_else(|| self.mailbox.try_recv().ok()) {
            if let Some(reply) = out.reply {
                let _ = reply.try_send(ReplyItem::Failed(failed.clone()));
            }
            if let Some(w) = out.written {
                let _ = w.try_send(Err(failed.clone()));
            }
        }
        if let Some(h) = &self.handling {
            h.messages.close();
        }
        // One try at a clean close; the connection is dropped with the driver anyway.
        let _ = Pin::new(&mut self.conn).poll_close(cx);
        shared.mark_closed();
    }
}

/// Puts `items` in a caller's reply slot, waiting for room if need be. A
/// caller who stopped listening simply gets nothing more.
fn deliver_replies<P: Protocol>(
    sender: async_channel::Sender<ReplyItem<P>>,
    mut items: Vec<ReplyItem<P>>,
) -> Option<Held> {
    while !items.is_empty() {
        match sender.try_send(items.remove(0)) {
            Ok(()) => {}
            Err(async_channel::TrySendError::Full(item)) => {
                items.insert(0, item);
                return Some(Box::pin(async move {
                    for item in items {
                        if sender.send(item).await.is_err() {
                            break;
                        }
                    }
                    None
                }));
            }
            Err(async_channel::TrySendError::Closed(_)) => return None,
        }
    }
    None
}

/// What the handler task is given.
pub(super) enum Incoming<P: Protocol> {
    /// A message; `answers` names the request it answers, if any.
    Message {
        message: P::Message,
        answers: Option<RequestKind>,
    },
    /// A fault of the remote that did not end the connection.
    Misbehaved(Misbehaviour),
}

/// The handler side of a peer. Its task exists only while there are
/// messages to handle: the driver queues a message and starts the task if it
/// is not running; the task handles the queue to the end, one message at a
/// time, and ends. An idle peer has no handler task.
pub(super) struct Handling<P: Protocol, H, E> {
    peer: Peer<P>,
    handler: H,
    executor: E,
    queue: queue::Sender<Box<Incoming<P>>>,
    messages: queue::Receiver<Box<Incoming<P>>>,
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
            let Ok(item) = self.messages.try_recv() else {
                self.running.store(false, Ordering::SeqCst);
                // A message queued after the look above found the task still
                // running and started none: it is this task's to handle.
                if self.messages.is_empty() || self.running.swap(true, Ordering::SeqCst) {
                    return;
                }
                continue;
            };
            let started = Instant::now();
            let (command, panicked) = match *item {
                Incoming::Message {
                    message,
                    answers: None,
                } => (
                    P::command_name(&message),
                    AssertUnwindSafe(self.handler.handle(peer, message))
                        .catch_unwind()
                        .await
                        .is_err(),
                ),
                Incoming::Message {
                    message,
                    answers: Some(kind),
                } => (
                    P::command_name(&message),
                    AssertUnwindSafe(self.handler.handle_answer(peer, message, kind))
                        .catch_unwind()
                        .await
                        .is_err(),
                ),
                Incoming::Misbehaved(what) => (
                    "misbehaviour",
                    AssertUnwindSafe(self.handler.misbehaved(peer, what))
                        .catch_unwind()
                        .await
                        .is_err(),
                ),
            };
            peer.shared.stats.handled(command, started.elapsed());
            if panicked {
                // Only this peer goes down; the handler is not trusted with
                // more. The driver, if it waits for room, is let go.
                peer.shared
                    .close(DisconnectReason::HandlerPanicked(command));
                self.messages.close();
                return;
            }
        }
    }
}
