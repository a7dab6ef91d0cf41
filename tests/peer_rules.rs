//! Every rule of a peer, driven through the pure [`Machine`] with made-up
//! instants and in-memory bytes: no socket, no task, no sleep, so nothing
//! here can race, and minutes of a peer's life pass in microseconds.
//!
//! The remote is played with the generation's own codec (what it sends is
//! encoded here, what we send is decoded here), and, where it answers
//! requests, by a [`Chain`]'s server side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use neo_peer::chain::{Chain, Serve, Synthetic};
use neo_peer::peer::{
    DisconnectReason, Encoder, Event, Frame, LocalConfig, Machine, Misbehaviour, PeerError,
    ReceiveBudget, SEND_UNBUDGETED, SendBudget, Stats, UNBUDGETED, Violation,
};
use neo_peer::protocol::{Legacy, N3, Protocol, RequestKind, Role};
use neo_peer::wire::{FrameError, PayloadLimits, PingPayload, UInt256, legacy, n3};

const NET: u32 = 56753;
const US: u32 = 1;
const THEM: u32 = 2;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config<P: Protocol>(nonce: u32, height: u32) -> LocalConfig<P> {
    let mut c = LocalConfig::new(NET);
    c.identity.nonce = nonce;
    c.identity.current_height = Arc::new(move || height);
    c.timeouts.handshake = ms(500);
    c.timeouts.idle = ms(5000);
    c.timeouts.stall = ms(1000);
    // Long, so that only the tests about pings see any.
    c.timeouts.ping_interval = ms(60_000);
    c.timeouts.write = ms(2000);
    c
}

/// One peer machine and the remote at the other end of its bytes.
struct Wire<P: Protocol> {
    m: Machine<P>,
    now: Instant,
    /// The remote's codec: encodes what it sends, decodes what we send.
    codec: P::Codec,
    /// Bytes we wrote that the remote has not decoded yet.
    to_remote: BytesMut,
    /// The remote's identity.
    them: LocalConfig<P>,
    /// Whether the connection takes what we write as time passes.
    reading: bool,
}

impl<P: Protocol> Wire<P> {
    fn new(ours: LocalConfig<P>, them: LocalConfig<P>) -> Self {
        let now = Instant::now();
        Wire {
            m: Machine::new(Arc::new(ours), Stats::new(), now),
            now,
            codec: P::codec(NET),
            to_remote: BytesMut::new(),
            them,
            reading: true,
        }
    }

    /// A machine for us (nonce 1) facing a remote (nonce 2) at `height`.
    fn facing(height: u32) -> Self {
        Self::new(config(US, 0), config(THEM, height))
    }

    /// Lets `d` pass, acting on every deadline on the way, as a driver
    /// would (and writing what there is to write, unless the remote does
    /// not read).
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.m.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            self.m.handle_timeout(self.now);
            self.write();
        }
        self.now = end;
        self.m.handle_timeout(self.now);
        self.write();
    }

    /// The connection takes what there is to write.
    fn write(&mut self) {
        while self.reading {
            let out = self.m.poll_transmit(self.now).to_vec();
            if out.is_empty() {
                break;
            }
            self.m.handle_written(self.now, out.len());
            self.to_remote.extend_from_slice(&out);
        }
    }

    /// What we have written since the last look, as the remote decodes it.
    fn sent(&mut self) -> Vec<P::Message> {
        self.write();
        let mut msgs = Vec::new();
        while let Some(d) = P::decode(&mut self.codec, &mut self.to_remote).unwrap() {
            msgs.push(d.message);
        }
        msgs
    }

    fn sent_commands(&mut self) -> Vec<&'static str> {
        self.sent().iter().map(P::command_name).collect()
    }

    /// The remote sends `msg`.
    fn feed(&mut self, msg: &P::Message) {
        let mut frame = BytesMut::new();
        P::encode(&self.codec, msg, &mut frame).unwrap();
        self.m.handle_bytes(self.now, &frame);
    }

    /// Every event now.
    fn events(&mut self) -> Vec<Event<P>> {
        std::iter::from_fn(|| self.m.poll_event(self.now)).collect()
    }

    /// The remote's version and verack, and our answers; returns the events.
    fn handshake(&mut self) -> Vec<Event<P>> {
        let v = P::version(&self.them.identity);
        self.feed(&v);
        self.feed(&P::verack());
        self.events()
    }

    fn open(height: u32) -> Self {
        Self::open_with(config(US, 0), height)
    }

    /// Handshaken with a remote at `height`, past the pause after a Legacy
    /// `verack`.
    fn open_with(ours: LocalConfig<P>, height: u32) -> Self {
        let mut w = Self::new(ours, config(THEM, height));
        let events = w.handshake();
        assert!(matches!(events[..], [Event::Handshaken]), "{events:?}");
        assert_eq!(w.sent_commands(), ["version", "verack"]);
        w.advance(P::PAUSE_AFTER_VERACK);
        w
    }

    /// Answers every ping we sent.
    fn pong(&mut self) {
        for m in self.sent() {
            if let Role::Ping(p) = P::role(&m) {
                self.feed(&P::ping(p, true));
            }
        }
    }

    fn closed_with(&mut self) -> Option<DisconnectReason> {
        self.events().into_iter().find_map(|e| match e {
            Event::Closed(r) => Some(r),
            _ => None,
        })
    }

    fn request(&mut self, msg: &P::Message, reach: Option<u32>) -> Result<Option<u64>, PeerError> {
        self.m.send(self.now, msg, reach, true)
    }
}

/// Runs a generic test for both generations.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod n3_rules { use super::*; $( #[test] fn $name() { super::$name::<N3>(); } )* }
        mod legacy_rules { use super::*; $( #[test] fn $name() { super::$name::<Legacy>(); } )* }
    };
}

both!(
    handshake_completes_and_crosses_the_wire,
    duplicate_version_and_verack_disconnect,
    self_connection_is_refused,
    handshake_must_finish_in_time,
    nothing_else_before_the_handshake,
    big_frames_before_the_handshake_are_refused,
    idle_counts_complete_messages_only,
    ping_is_answered_with_our_height,
    busy_handler_stops_the_clocks,
    write_timeout_drops_a_remote_that_does_not_read,
    unknown_commands_reach_the_handler,
    getaddr_answers_are_told_apart_from_gossip,
    close_ends_every_waiting_request_once,
    pending_requests_are_bounded,
    receive_budget_holds_under_many_large_partial_frames,
    receive_budget_is_given_back_when_peers_end,
    receive_budget_serves_an_honest_large_frame,
    a_remote_that_does_not_read_is_paused_then_dropped,
    send_budget_holds_and_drops_the_slowest_readers,
    a_shared_frame_costs_the_send_budget_once,
    an_eviction_keeps_the_room_charged_until_the_evicted_peer_closes,
);

fn handshake_completes_and_crosses_the_wire<P: Protocol>() {
    let mut w = Wire::<P>::facing(7);
    // Our version goes out at once, before anything is received.
    let first = w.sent();
    let [v] = &first[..] else { panic!("{first:?}") };
    let Role::Version(v) = P::role(v) else {
        panic!("{v:?}")
    };
    assert_eq!(P::version_facts(v).nonce, US);
    w.feed(&P::version(&w.them.identity));
    assert!(w.events().is_empty());
    assert!(!w.m.is_handshaken());
    if P::VERACK_DELAY.is_zero() {
        assert_eq!(w.sent_commands(), ["verack"]);
    } else {
        // Legacy: our verack waits for theirs, up to the delay.
        assert!(w.sent().is_empty());
        w.advance(P::VERACK_DELAY / 2);
        assert!(w.sent().is_empty());
    }
    w.feed(&P::verack());
    assert!(matches!(w.events()[..], [Event::Handshaken]));
    assert!(w.m.is_handshaken());
    if !P::VERACK_DELAY.is_zero() {
        assert_eq!(w.sent_commands(), ["verack"]);
    }
    assert_eq!(w.m.remote().height, 7);
    let facts = w.m.remote().facts.clone().unwrap();
    assert_eq!(facts.nonce, THEM);
}

#[test]
fn legacy_verack_goes_out_after_the_delay_and_nothing_follows_it_at_once() {
    let mut w = Wire::<Legacy>::facing(0);
    w.sent();
    w.feed(&Legacy::version(&w.them.identity));
    assert!(w.events().is_empty());
    w.advance(Legacy::VERACK_DELAY);
    assert_eq!(w.sent_commands(), ["verack"]);
    w.feed(&Legacy::verack());
    assert!(matches!(w.events()[..], [Event::Handshaken]));
    // A ping from the remote is answered, but the pong waits out the pause
    // after our verack (NEO•ONE handles frames read together backwards).
    w.feed(&legacy::Message::Ping(PingPayload {
        last_block_index: 0,
        timestamp: 0,
        nonce: 5,
    }));
    assert!(w.events().is_empty());
    assert!(w.sent().is_empty(), "held by the pause");
    w.advance(Legacy::PAUSE_AFTER_VERACK);
    assert_eq!(w.sent_commands(), ["pong"]);
}

#[test]
fn n3_handshake_in_the_other_order() {
    // The remote answers our version before sending its own: verack first is
    // a violation, so it sends version, we answer, it acks.
    let mut w = Wire::<N3>::facing(3);
    w.sent();
    w.feed(&N3::version(&w.them.identity));
    w.feed(&N3::verack());
    assert!(matches!(w.events()[..], [Event::Handshaken]));
    assert_eq!(w.sent_commands(), ["verack"]);
    // And a remote whose verack comes before its version is refused.
    let mut w = Wire::<N3>::facing(3);
    w.feed(&N3::verack());
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Handshake(Violation::VerackBeforeVersion))
    );
}

fn duplicate_version_and_verack_disconnect<P: Protocol>() {
    let mut w = Wire::<P>::facing(0);
    w.feed(&P::version(&w.them.identity));
    w.feed(&P::version(&w.them.identity));
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Handshake(Violation::DuplicateVersion))
    );
    assert!(w.m.is_closed());

    let mut w = Wire::<P>::open(0);
    w.feed(&P::version(&w.them.identity));
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Protocol(Violation::DuplicateVersion))
    );
    let mut w = Wire::<P>::open(0);
    w.feed(&P::verack());
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Protocol(Violation::DuplicateVerack))
    );
    // Once closed, nothing more happens.
    w.feed(&P::verack());
    assert!(w.events().is_empty());
    assert!(w.m.poll_timeout().is_none());
    assert!(w.m.poll_transmit(w.now).is_empty());
}

fn self_connection_is_refused<P: Protocol>() {
    let mut w = Wire::<P>::new(config(US, 0), config(US, 0));
    w.feed(&P::version(&w.them.identity));
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Handshake(Violation::SelfConnection(US)))
    );
}

#[test]
fn n3_wrong_network_is_refused() {
    let mut them = config(THEM, 0);
    them.identity.network = 1;
    let mut w = Wire::<N3>::new(config(US, 0), them);
    w.feed(&N3::version(&w.them.identity));
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Handshake(Violation::WrongNetwork {
            expected: NET,
            got: 1
        }))
    );
}

#[test]
fn legacy_wrong_network_is_refused_by_the_frame() {
    let mut w = Wire::<Legacy>::facing(0);
    let mut frame = BytesMut::new();
    legacy::Codec::new(1)
        .encode(&Legacy::version(&w.them.identity), &mut frame)
        .unwrap();
    w.m.handle_bytes(w.now, &frame);
    assert!(matches!(
        w.closed_with(),
        Some(DisconnectReason::Frame(FrameError::WrongMagic {
            got: 1,
            ..
        }))
    ));
}

fn handshake_must_finish_in_time<P: Protocol>() {
    let mut w = Wire::<P>::facing(0);
    w.feed(&P::version(&w.them.identity));
    w.events();
    w.advance(ms(499));
    assert!(!w.m.is_closed());
    w.advance(ms(1));
    assert_eq!(w.closed_with(), Some(DisconnectReason::HandshakeTimeout));
}

fn nothing_else_before_the_handshake<P: Protocol>() {
    let mut w = Wire::<P>::facing(0);
    w.feed(&P::version(&w.them.identity));
    w.feed(&P::get_addr());
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Handshake(Violation::Unexpected(
            "getaddr".into()
        )))
    );
}

fn big_frames_before_the_handshake_are_refused<P: Protocol>() {
    let mut us = config(US, 0);
    us.handshake_max_payload = 1000;
    let mut them = config(THEM, 0);
    them.identity.user_agent = "x".repeat(1024);
    let mut w = Wire::<P>::new(us, them);
    w.feed(&P::version(&w.them.identity));
    assert!(
        matches!(w.closed_with(), Some(DisconnectReason::Frame(_))),
        "a version over the cap"
    );
}

fn idle_counts_complete_messages_only<P: Protocol>() {
    let mut w = Wire::<P>::open(0);
    // A frame trickled in a byte at a time, more slowly than the idle
    // timeout allows for the whole: silence, as far as the rule goes.
    let mut frame = BytesMut::new();
    let ping = P::ping(
        PingPayload {
            last_block_index: 1,
            timestamp: 2,
            nonce: 3,
        },
        false,
    );
    P::encode(&w.codec, &ping, &mut frame).unwrap();
    let started = w.now;
    for b in frame.iter().take(frame.len() - 1) {
        w.advance(ms(400));
        w.m.handle_bytes(w.now, &[*b]);
        while let Some(e) = w.m.poll_event(w.now) {
            assert!(matches!(e, Event::Closed(_)), "{e:?}");
        }
    }
    assert!(
        w.now - started >= ms(5000),
        "trickled for longer than the idle timeout"
    );
    assert_eq!(w.m.reason(), Some(&DisconnectReason::IdleTimeout(ms(5000))));
}

#[test]
fn a_complete_message_resets_the_idle_clock() {
    let mut w = Wire::<N3>::open(0);
    w.m.handle_timeout(w.now);
    for _ in 0..4 {
        w.advance(ms(4000));
        w.feed(&N3::get_addr());
        assert!(!w.events().is_empty());
    }
    assert!(!w.m.is_closed());
    w.advance(ms(5000));
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::IdleTimeout(ms(5000)))
    );
}

fn ping_is_answered_with_our_height<P: Protocol>() {
    let mut w = Wire::<P>::open_with(config(US, 42), 0);
    w.feed(&P::ping(
        PingPayload {
            last_block_index: 9,
            timestamp: 1,
            nonce: 77,
        },
        false,
    ));
    assert!(w.events().is_empty(), "a ping is the engine's business");
    let sent = w.sent();
    let [pong] = &sent[..] else {
        panic!("{sent:?}")
    };
    let Role::Pong(p) = P::role(pong) else {
        panic!("{pong:?}")
    };
    assert_eq!((p.nonce, p.last_block_index), (77, 42));
    assert_eq!(w.m.remote().height, 9, "the ping raised its height");
}

fn pinging<P: Protocol>(interval: u64) -> LocalConfig<P> {
    let mut c = config(US, 0);
    c.timeouts.ping_interval = ms(interval);
    c
}

#[test]
fn n3_pings_after_our_silence_and_measures_the_round_trip() {
    let mut w = Wire::<N3>::open_with(pinging(3000), 0);
    w.advance(ms(2999));
    assert!(w.sent().is_empty());
    w.advance(ms(1));
    let sent = w.sent();
    let [n3::Message::Ping(p)] = &sent[..] else {
        panic!("{sent:?}")
    };
    w.advance(ms(30));
    w.feed(&n3::Message::Pong(PingPayload {
        last_block_index: 12,
        timestamp: 0,
        nonce: p.nonce,
    }));
    assert!(w.events().is_empty(), "our pong is not the handler's");
    assert_eq!(w.m.remote().rtt, Some(ms(30)));
    assert_eq!(w.m.remote().height, 12);
    assert_eq!(w.m.pending_requests(), 0);
    // An unanswered ping stalls the peer.
    w.advance(ms(3000));
    assert!(matches!(w.sent()[..], [n3::Message::Ping(_)]));
    w.advance(ms(1000));
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Stalled(RequestKind::Ping))
    );
}

#[test]
fn legacy_pings_expect_no_pong() {
    let mut w = Wire::<Legacy>::open_with(pinging(3000), 0);
    w.advance(ms(2950));
    assert!(matches!(w.sent()[..], [legacy::Message::Ping(_)]));
    assert_eq!(w.m.pending_requests(), 0, "NEO•ONE never answers");
    w.advance(ms(1900));
    assert!(!w.m.is_closed());
}

fn busy_handler_stops_the_clocks<P: TestChain>() {
    let chain = small_chain::<P>();
    let mut w = Wire::<P>::open(chain.height());
    let ask = P::get_headers_msg(&chain, 0);
    w.request(&ask, Some(1)).unwrap();
    w.advance(ms(500));
    w.m.handler_busy(w.now);
    // Answers arrive but are not read: the handler is behind.
    for answer in P::answer(&chain, &ask) {
        w.feed(&answer);
    }
    assert!(w.events().is_empty());
    assert!(!w.m.wants_bytes());
    w.advance(ms(30_000));
    assert!(!w.m.is_closed(), "neither stall nor idle runs while busy");
    w.m.handler_ready(w.now);
    let events = w.events();
    assert!(
        matches!(events[..], [Event::Answer { complete: true, .. }]),
        "{events:?}"
    );
    // The idle clock was pushed back by the busy time, not reset.
    w.advance(ms(4499));
    w.sent();
    assert!(!w.m.is_closed(), "{:?}", w.m.reason());
}

fn write_timeout_drops_a_remote_that_does_not_read<P: Protocol>() {
    let mut w = Wire::<P>::open(0);
    w.reading = false;
    w.m.send(w.now, &P::get_addr(), None, false).unwrap();
    // Nothing taken by the connection for the write timeout.
    w.advance(ms(1999));
    assert!(!w.m.is_closed());
    w.advance(ms(1));
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::WriteTimeout(ms(2000)))
    );
}

fn unknown_commands_reach_the_handler<P: TestChain>() {
    let mut w = Wire::<P>::open(0);
    let unknown = P::unknown();
    w.feed(&unknown);
    let events = w.events();
    assert!(
        matches!(&events[..], [Event::Message { answers: None, .. }]),
        "{events:?}"
    );
    assert!(!w.m.is_closed());
}

fn getaddr_answers_are_told_apart_from_gossip<P: Protocol>() {
    let mut w = Wire::<P>::open(0);
    w.m.send(w.now, &P::get_addr(), None, false).unwrap();
    let addr = P::addr(&[neo_peer::protocol::GossipAddr {
        addr: "127.0.0.9:20333".parse().unwrap(),
        timestamp: 1,
        services: 1,
    }])
    .unwrap();
    w.feed(&addr);
    w.feed(&addr);
    let events = w.events();
    let answers: Vec<_> = events
        .iter()
        .map(|e| match e {
            Event::Message { answers, .. } => *answers,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        answers,
        [Some(RequestKind::Addr), None],
        "the second is gossip"
    );
}

fn close_ends_every_waiting_request_once<P: TestChain>() {
    let chain = small_chain::<P>();
    let mut w = Wire::<P>::open(chain.height());
    let a = w
        .request(&P::get_headers_msg(&chain, 0), Some(1))
        .unwrap()
        .unwrap();
    let b = w.request(&P::get_addr(), None).unwrap().unwrap();
    w.m.send(w.now, &P::get_headers_msg(&chain, 1), Some(2), false)
        .unwrap();
    w.m.close(DisconnectReason::Requested);
    let events = w.events();
    let ended: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Ended { id, error } => {
                assert_eq!(*error, PeerError::Disconnected(DisconnectReason::Requested));
                Some(*id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        [a, b],
        "each waiting caller once, the handler's request not"
    );
    assert!(matches!(
        events.last(),
        Some(Event::Closed(DisconnectReason::Requested))
    ));
    assert_eq!(
        w.request(&P::get_addr(), None),
        Err(PeerError::Disconnected(DisconnectReason::Requested))
    );
    w.m.close(DisconnectReason::RemoteClosed);
    assert_eq!(
        w.m.reason(),
        Some(&DisconnectReason::Requested),
        "the first reason wins"
    );
    assert!(w.events().is_empty());
}

fn pending_requests_are_bounded<P: Protocol>() {
    let mut ours = config(US, 0);
    ours.queues.pending_requests = 8;
    let mut w = Wire::<P>::new(ours, config(THEM, 0));
    w.handshake();
    // A `getaddr` may go unanswered: such requests leave an eighth of the
    // room (one place here) to the requests that are owed.
    for _ in 0..7 {
        w.request(&P::get_addr(), None).unwrap();
    }
    assert_eq!(
        w.request(&P::get_addr(), None),
        Err(PeerError::TooManyPending(7))
    );
    w.sent();
    assert_eq!(w.m.pending_requests(), 7);
}

#[test]
fn an_owed_request_finds_room_past_the_ones_that_may_go_unanswered() {
    let mut ours = config(US, 0);
    ours.queues.pending_requests = 8;
    let mut w = Wire::<N3>::new(ours, config(THEM, 0));
    w.handshake();
    for _ in 0..7 {
        w.request(&N3::get_addr(), None).unwrap();
    }
    // A `ping` is owed a `pong`: it takes the place left.
    let ping = || {
        n3::Message::Ping(PingPayload {
            last_block_index: 0,
            timestamp: 0,
            nonce: 0,
        })
    };
    w.request(&ping(), None).unwrap();
    assert_eq!(w.request(&ping(), None), Err(PeerError::TooManyPending(8)));
    w.sent();
    assert_eq!(w.m.pending_requests(), 8);
}

#[test]
fn requests_wait_for_the_handshake() {
    let mut w = Wire::<N3>::facing(0);
    assert_eq!(
        w.request(&N3::get_addr(), None),
        Err(PeerError::NotHandshaken)
    );
}

// ---- the request contract, request by request

#[test]
fn n3_stall_per_kind() {
    let chain = small_chain::<N3>();
    let tip = chain.height();
    let block_hash = chain.hash(3).unwrap();
    let asks = [
        (
            n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
                index_start: 0,
                count: -1,
            }),
            RequestKind::Headers,
        ),
        (
            n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
                index_start: 1,
                count: 5,
            }),
            RequestKind::BlocksByIndex,
        ),
        (
            n3::Message::GetData(n3::InvPayload {
                kind: n3::InventoryType::Block,
                hashes: vec![block_hash],
            }),
            RequestKind::Data,
        ),
    ];
    for (ask, kind) in asks {
        let mut w = Wire::<N3>::open(tip);
        let id = w.request(&ask, None).unwrap().unwrap();
        assert_eq!(w.sent().len(), 1);
        w.advance(ms(999));
        assert!(!w.m.is_closed());
        w.advance(ms(1));
        // The caller hears why, then the peer ends.
        let stalled = DisconnectReason::Stalled(kind);
        assert_eq!(
            w.events(),
            [
                Event::Ended {
                    id,
                    error: PeerError::Disconnected(stalled.clone())
                },
                Event::Closed(stalled)
            ],
            "{kind:?}"
        );
    }
}

#[test]
fn legacy_stall_per_kind() {
    let chain = small_chain::<Legacy>();
    let tip = chain.height();
    let asks = [
        (Legacy::get_headers_msg(&chain, 2), RequestKind::Headers),
        (
            legacy::Message::GetBlocks(legacy::GetBlocksPayload {
                hash_start: vec![chain.hash(2).unwrap()],
                hash_stop: UInt256::ZERO,
            }),
            RequestKind::BlockHashes,
        ),
        (
            legacy::Message::GetData(legacy::InvPayload {
                kind: legacy::InventoryType::Block,
                hashes: vec![chain.hash(3).unwrap()],
            }),
            RequestKind::Data,
        ),
    ];
    for (ask, kind) in asks {
        let mut w = Wire::<Legacy>::open(tip);
        w.request(&ask, Some(3)).unwrap();
        assert_eq!(w.sent().len(), 1);
        w.advance(ms(999));
        assert!(!w.m.is_closed());
        w.advance(ms(1));
        assert_eq!(
            w.closed_with(),
            Some(DisconnectReason::Stalled(kind)),
            "{kind:?}"
        );
    }
}

#[test]
fn progress_keeps_a_long_answer_alive() {
    let chain = small_chain::<N3>();
    let mut w = Wire::<N3>::open(chain.height());
    let ask = n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
        index_start: 0,
        count: -1,
    });
    w.request(&ask, None).unwrap();
    for block in chain.answer(&ask) {
        w.advance(ms(900));
        w.feed(&block);
        assert!(matches!(w.events()[..], [Event::Answer { .. }]));
    }
    assert!(!w.m.is_closed());
    assert_eq!(w.m.pending_requests(), 0);
}

#[test]
fn n3_blocks_by_index_minus_one_gets_every_block_the_remote_has() {
    // Every block from the start up to the remote's height, none dropped.
    let chain = chain_of::<N3>(30);
    let mut w = Wire::<N3>::open(chain.height());
    let ask = n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
        index_start: 0,
        count: -1,
    });
    let id = w.request(&ask, None).unwrap().unwrap();
    let answers = chain.answer(&ask);
    assert_eq!(answers.len(), 31);
    for a in &answers {
        w.feed(a);
    }
    let events = w.events();
    assert_eq!(events.len(), 31);
    for (i, e) in events.iter().enumerate() {
        let Event::Answer {
            id: got,
            complete,
            message: n3::Message::Block(b),
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!((*got, *complete, b.header.index), (id, i == 30, i as u32));
    }
    // A block beyond what was owed (the remote grew meanwhile) is not lost:
    // it goes to the handler.
    w.feed(&answers[3]);
    assert!(matches!(
        w.events()[..],
        [Event::Message { answers: None, .. }]
    ));
}

#[test]
fn a_start_above_the_remote_height_is_not_sent() {
    let mut w = Wire::<N3>::open(10);
    for ask in [
        n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
            index_start: 11,
            count: -1,
        }),
        n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
            index_start: 11,
            count: 5,
        }),
    ] {
        let kind = match ask {
            n3::Message::GetHeaders(_) => RequestKind::Headers,
            _ => RequestKind::BlocksByIndex,
        };
        assert_eq!(
            w.request(&ask, None),
            Err(PeerError::Unanswered { kind, height: 10 })
        );
    }
    assert!(w.sent().is_empty(), "nothing crossed the wire");
    assert!(!w.m.is_closed());
    let err = PeerError::Unanswered {
        kind: RequestKind::Headers,
        height: 10,
    };
    assert!(err.to_string().contains("height is 10"), "{err}");
}

#[test]
fn a_lying_height_is_corrected_and_reported() {
    // The remote claims the highest height there is and has 101 headers.
    let chain = chain_of::<N3>(100);
    let mut w = Wire::<N3>::open(u32::MAX);
    assert_eq!(w.m.remote().height, u32::MAX);
    let ask = n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
        index_start: 0,
        count: 2000,
    });
    let id = w.request(&ask, None).unwrap().unwrap();
    for a in chain.answer(&ask) {
        w.feed(&a);
    }
    let events = w.events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Misbehaved(Misbehaviour::HeightLie {
                    claimed: u32::MAX,
                    proven: 100
                }),
                Event::Answer { id: got, complete: true, .. }
            ] if *got == id
        ),
        "{events:?}"
    );
    assert_eq!(w.m.remote().height, 100);
    // What lies above is not asked for.
    let next = n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
        index_start: 101,
        count: 2000,
    });
    assert!(matches!(
        w.request(&next, None),
        Err(PeerError::Unanswered { height: 100, .. })
    ));
}

#[test]
fn getdata_naming_a_hash_twice_expects_it_once() {
    let chain = small_chain::<N3>();
    let h = chain.hash(2).unwrap();
    let mut w = Wire::<N3>::open(chain.height());
    let ask = n3::Message::GetData(n3::InvPayload {
        kind: n3::InventoryType::Block,
        hashes: vec![h, h, h],
    });
    w.request(&ask, None).unwrap();
    let answers = chain.answer(&ask);
    assert_eq!(answers.len(), 1, "a correct server sends it once");
    w.feed(&answers[0]);
    assert!(matches!(
        w.events()[..],
        [Event::Answer { complete: true, .. }]
    ));
    w.advance(ms(5000));
    assert!(!matches!(w.m.reason(), Some(DisconnectReason::Stalled(_))));

    // Legacy too.
    let chain = small_chain::<Legacy>();
    let h = chain.hash(2).unwrap();
    let mut w = Wire::<Legacy>::open(chain.height());
    let ask = legacy::Message::GetData(legacy::InvPayload {
        kind: legacy::InventoryType::Block,
        hashes: vec![h, h],
    });
    w.request(&ask, Some(2)).unwrap();
    let answers = chain.answer(&ask);
    assert_eq!(answers.len(), 1);
    w.feed(&answers[0]);
    assert!(matches!(
        w.events()[..],
        [Event::Answer { complete: true, .. }]
    ));
}

#[test]
fn n3_notfound_answers_missing_objects() {
    let chain = small_chain::<N3>();
    let mut w = Wire::<N3>::open(chain.height());
    let (known, unknown) = (chain.hash(1).unwrap(), UInt256([0xAB; 32]));
    let ask = n3::Message::GetData(n3::InvPayload {
        kind: n3::InventoryType::Block,
        hashes: vec![known, unknown],
    });
    w.request(&ask, None).unwrap();
    for a in chain.answer(&ask) {
        w.feed(&a);
    }
    let events = w.events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Answer {
                    complete: false,
                    message: n3::Message::Block(_),
                    ..
                },
                Event::Answer {
                    complete: true,
                    message: n3::Message::NotFound(_),
                    ..
                }
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn n3_missing_extensibles_may_be_silent() {
    let mut w = Wire::<N3>::open(5);
    let ask = n3::Message::GetData(n3::InvPayload {
        kind: n3::InventoryType::Extensible,
        hashes: vec![UInt256([1; 32])],
    });
    let id = w.request(&ask, None).unwrap().unwrap();
    w.advance(ms(1000));
    let events = w.events();
    assert_eq!(
        events,
        [Event::Ended {
            id,
            error: PeerError::Unanswered {
                kind: RequestKind::Data,
                height: 5
            }
        }]
    );
    assert!(!w.m.is_closed(), "silence is its right");
}

#[test]
fn legacy_getheaders_at_the_tip_is_not_a_stall() {
    let chain = small_chain::<Legacy>();
    let tip = chain.height();
    let mut w = Wire::<Legacy>::open(tip);
    // Knowing the start is the remote's tip: nothing to ask.
    let at_tip = Legacy::get_headers_msg(&chain, tip);
    assert_eq!(
        w.request(&at_tip, Some(tip + 1)),
        Err(PeerError::Unanswered {
            kind: RequestKind::Headers,
            height: tip
        })
    );
    assert!(w.sent().is_empty());
    // Not knowing it: sent, and the C# node's silence ends the request, not the peer.
    let id = w.request(&at_tip, None).unwrap().unwrap();
    assert_eq!(w.sent_commands(), ["getheaders"]);
    assert!(chain.answer(&at_tip).is_empty(), "our server is silent too");
    w.advance(ms(1000));
    assert!(matches!(
        w.events()[..],
        [Event::Ended {
            id: got,
            error: PeerError::Unanswered { .. }
        }] if got == id
    ));
    assert!(!w.m.is_closed());
    // NEO•ONE's empty answer completes it.
    let id = w.request(&at_tip, None).unwrap().unwrap();
    w.feed(&legacy::Message::Headers(legacy::HeadersPayload {
        headers: vec![],
    }));
    assert!(matches!(
        w.events()[..],
        [Event::Answer { id: got, complete: true, .. }] if got == id
    ));
    // Below the tip, with its height known, silence is a stall.
    w.request(&Legacy::get_headers_msg(&chain, 1), Some(2))
        .unwrap();
    w.advance(ms(1000));
    assert_eq!(
        w.closed_with(),
        Some(DisconnectReason::Stalled(RequestKind::Headers))
    );
}

#[test]
fn legacy_headers_answer_the_request_they_follow() {
    let chain = small_chain::<Legacy>();
    let mut w = Wire::<Legacy>::open(chain.height());
    let a = w
        .request(&Legacy::get_headers_msg(&chain, 0), Some(1))
        .unwrap()
        .unwrap();
    let b = w
        .request(&Legacy::get_headers_msg(&chain, 5), Some(6))
        .unwrap()
        .unwrap();
    // The second request's answer comes first: each finds its own.
    for (ask, id) in [(5, b), (0, a)] {
        for answer in chain.answer(&Legacy::get_headers_msg(&chain, ask)) {
            w.feed(&answer);
        }
        assert!(matches!(
            w.events()[..],
            [Event::Answer { id: got, complete: true, .. }] if got == id
        ));
    }
}

#[test]
fn answers_without_a_reply_slot_go_to_the_handler_as_answers() {
    let chain = small_chain::<N3>();
    let mut w = Wire::<N3>::open(chain.height());
    let ask = N3::get_headers_msg(&chain, 2);
    w.m.send(w.now, &ask, None, false).unwrap();
    for a in chain.answer(&ask) {
        w.feed(&a);
    }
    assert!(matches!(
        w.events()[..],
        [Event::Message {
            answers: Some(RequestKind::Headers),
            ..
        }]
    ));
    // The same message unasked goes to the handler as it is.
    for a in chain.answer(&ask) {
        w.feed(&a);
    }
    assert!(matches!(
        w.events()[..],
        [Event::Message { answers: None, .. }]
    ));
}

#[test]
fn statistics_count_both_ways_and_round_trips() {
    let chain = small_chain::<N3>();
    let mut ours = config(US, 0);
    ours.timeouts.ping_interval = ms(60_000);
    let stats = Stats::new();
    let now = Instant::now();
    let mut m = Machine::<N3>::new(Arc::new(ours), stats.clone(), now);
    let codec = N3::codec(NET);
    let feed = |m: &mut Machine<N3>, msg: &n3::Message| {
        let mut f = BytesMut::new();
        N3::encode(&codec, msg, &mut f).unwrap();
        m.handle_bytes(now, &f);
    };
    feed(&mut m, &N3::version(&config(THEM, chain.height()).identity));
    feed(&mut m, &N3::verack());
    while m.poll_event(now).is_some() {}
    let ask = N3::get_headers_msg(&chain, 0);
    m.send(now, &ask, None, true).unwrap();
    let later = now + ms(25);
    for a in chain.answer(&ask) {
        let mut f = BytesMut::new();
        N3::encode(&codec, &a, &mut f).unwrap();
        m.handle_bytes(later, &f);
    }
    while m.poll_event(later).is_some() {}
    let snap = stats.snapshot();
    assert_eq!(snap.get("version").messages_in, 1);
    assert_eq!(snap.get("version").messages_out, 1);
    assert_eq!(snap.get("getheaders").messages_out, 1);
    assert_eq!(snap.get("headers").messages_in, 1);
    assert!(snap.get("headers").bytes_in > 100);
    assert_eq!(snap.get("headers").latency.mean(), Some(ms(25)));
}

#[test]
fn fifty_minutes_of_pings_keep_a_quiet_peer() {
    // A long quiet life, in no time: pings answered, a message now and then.
    let mut w = Wire::<N3>::open_with(pinging(3000), 0);
    for _ in 0..6000 {
        w.advance(ms(500));
        w.pong();
        w.feed(&N3::get_addr());
        w.events();
    }
    assert!(!w.m.is_closed(), "{:?}", w.m.reason());
    assert!(w.m.remote().rtt.is_some());
}

// ---- the receive budget

/// Payloads this large are allowed for unknown commands in the budget
/// tests, which play large frames with them.
const LARGE: usize = 3 << 20;

/// A handshaken machine drawing on `budget`, and its remote's codec set to
/// send large frames of unknown commands.
fn budgeted<P: TestChain>(budget: &ReceiveBudget, at: Instant) -> Wire<P> {
    let mut ours = config::<P>(US, 0);
    // Long, so that only the budget drops anyone.
    ours.timeouts.idle = ms(60_000);
    ours.receive_budget = budget.clone();
    let mut limits = PayloadLimits::N3;
    if P::NAME == Legacy::NAME {
        limits = PayloadLimits::LEGACY;
    }
    limits.unknown = LARGE;
    ours.payload_limits = limits;
    let mut w = Wire::<P>::open_with(ours, 0);
    P::set_limits(&mut w.codec, limits);
    // Every machine of a test on one clock.
    w.now = w.now.max(at);
    w
}

/// The encoded frame of an unknown command with `len` bytes of payload.
fn large_frame<P: TestChain>(w: &Wire<P>, len: usize) -> Vec<u8> {
    let mut frame = BytesMut::new();
    P::encode(&w.codec, &P::unknown_of(len), &mut frame).unwrap();
    frame.to_vec()
}

/// The remote sends from `data[*sent..]` as fast as we read; returns
/// whether the machine read at all (false: it waits for the budget).
fn pump<P: Protocol>(w: &mut Wire<P>, data: &[u8], sent: &mut usize, upto: usize) -> bool {
    let mut read_any = false;
    while *sent < upto && !w.m.is_closed() {
        let now = w.now;
        let polled = w.m.receive_with(now, |room| {
            let n = room.len().min(upto - *sent);
            room[..n].copy_from_slice(&data[*sent..*sent + n]);
            std::task::Poll::Ready(Ok(n))
        });
        match polled {
            std::task::Poll::Ready(Ok(n)) if n > 0 => {
                *sent += n;
                read_any = true;
            }
            _ => break,
        }
    }
    read_any
}

/// Many peers each declare a large frame, send a third of it and stall:
/// together they hold no more than the budget (plus each peer's small free
/// allowance), never the room of a full read ahead of their data.
fn receive_budget_holds_under_many_large_partial_frames<P: TestChain>() {
    let limit = 8 << 20;
    let budget = ReceiveBudget::new(limit);
    let t0 = Instant::now();
    let mut crowd: Vec<Wire<P>> = (0..20).map(|_| budgeted::<P>(&budget, t0)).collect();
    let frame = large_frame(&crowd[0], LARGE);
    let mut starved = 0;
    for w in &mut crowd {
        let mut sent = 0;
        pump(w, &frame, &mut sent, LARGE / 3);
        // Never more room than half again what arrived.
        assert!(
            w.m.receive_held() <= (sent + sent / 2).max(UNBUDGETED),
            "{sent} sent"
        );
        starved += usize::from(w.m.is_starved());
        assert!(w.events().is_empty(), "no frame is complete");
        assert!(budget.used() <= limit, "{} of {limit}", budget.used());
    }
    assert!(starved > 0, "the budget ran out: later peers were not read");
    let total: usize = crowd.iter().map(|w| w.m.receive_held()).sum();
    assert!(
        total <= limit + crowd.len() * UNBUDGETED,
        "{total} bytes held by {} peers",
        crowd.len()
    );
    assert!(!crowd.iter().any(|w| w.m.is_closed()), "no one dropped yet");
}

/// Bytes a peer held are given back when it ends, closed or dropped, and a
/// peer dropped to free the budget says why.
fn receive_budget_is_given_back_when_peers_end<P: TestChain>() {
    let budget = ReceiveBudget::new(4 << 20);
    let t0 = Instant::now();
    let mut a = budgeted::<P>(&budget, t0);
    let mut b = budgeted::<P>(&budget, t0);
    let frame = large_frame(&a, LARGE);
    let (mut sa, mut sb) = (0, 0);
    pump(&mut a, &frame, &mut sa, 1 << 20);
    pump(&mut b, &frame, &mut sb, 1 << 20);
    let both = budget.used();
    assert!(both >= 2 * ((1 << 20) - UNBUDGETED), "{both}");
    a.m.close(DisconnectReason::Requested);
    assert!(budget.used() <= both / 2 + UNBUDGETED, "closing gives back");
    drop(b);
    assert_eq!(budget.used(), 0, "dropping gives back");
}

/// A crowd that fills the budget with stalled frames, then an honest peer
/// with a large frame: it waits for the budget's patience, then the oldest
/// stalled frames are dropped for it and its frame is delivered whole.
fn receive_budget_serves_an_honest_large_frame<P: TestChain>() {
    let limit = 6 << 20;
    let budget = ReceiveBudget::new(limit);
    let t0 = Instant::now();
    let mut crowd: Vec<Wire<P>> = (0..8).map(|_| budgeted::<P>(&budget, t0)).collect();
    let t0 = crowd.iter().map(|w| w.now).max().unwrap();
    let frame = large_frame(&crowd[0], LARGE);
    for (i, w) in crowd.iter_mut().enumerate() {
        // The crowd's frames begin one after the other, a second apart.
        w.now = t0 + Duration::from_secs(i as u64);
        let mut sent = 0;
        pump(w, &frame, &mut sent, LARGE - 1);
    }
    assert!(budget.free() < 1 << 20, "the crowd spent the budget");
    let mut honest = budgeted::<P>(&budget, t0 + Duration::from_secs(10));
    let start = honest.now;
    let mut sent = 0;
    let mut events = Vec::new();
    let mut waited = false;
    while sent < frame.len() {
        let before = sent;
        pump(&mut honest, &frame, &mut sent, frame.len());
        events.extend(honest.events());
        if sent == before {
            assert!(honest.m.is_starved(), "waits for the budget, not for data");
            waited = true;
            honest.advance(ms(100));
            // The crowd notices it was dropped when next it wakes.
            for w in &mut crowd {
                w.now = honest.now;
                if w.m.poll_timeout().is_some_and(|t| t <= w.now) {
                    w.m.handle_timeout(w.now);
                }
            }
        }
        assert!(!honest.m.is_closed(), "{:?}", honest.m.reason());
        assert!(budget.used() <= limit + UNBUDGETED);
    }
    events.extend(honest.events());
    assert!(
        matches!(&events[..], [Event::Message { .. }]),
        "the frame is delivered: {events:?}"
    );
    assert!(waited, "the crowd had spent the budget");
    assert!(honest.now - start <= ms(1000), "served within a second");
    // Room was made by dropping crowd frames, the oldest first: each learns
    // it when next it wakes.
    for w in &mut crowd {
        w.now = honest.now;
        if w.m.poll_timeout().is_some_and(|t| t <= w.now) {
            w.m.handle_timeout(w.now);
        }
    }
    let reasons: Vec<_> = crowd.iter().map(|w| w.m.reason().cloned()).collect();
    assert!(
        matches!(reasons[0], Some(DisconnectReason::ReceiveBudget(_))),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .flatten()
            .all(|r| matches!(r, DisconnectReason::ReceiveBudget(_))),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(Option::is_none),
        "not everyone: {reasons:?}"
    );
}

/// Plays the handler of a serving node: answers every request among
/// `events` from `chain`, as the driver would, an answer waiting (and the
/// ones after it) while the machine has no room for it; returns the
/// answers still waiting.
fn serve<P: TestChain>(
    w: &mut Wire<P>,
    chain: &Chain<P>,
    waiting: &mut Vec<P::Message>,
    events: Vec<Event<P>>,
) {
    for e in events {
        if let Event::Message { message, .. } = e {
            waiting.extend(chain.answer(&message));
        }
    }
    while let Some(answer) = waiting.first() {
        if !w.m.send_room(w.now, P::frame_size(answer)) {
            break;
        }
        let answer = waiting.remove(0);
        w.m.send(w.now, &answer, None, false).unwrap();
    }
}

/// A remote that asks and asks but never reads: once our unsent answers
/// reach the peer's send bound its requests are not read any more (the
/// driver reads only while the machine wants bytes); once it reads, they
/// are again; if it never does, the write timeout drops it.
fn a_remote_that_does_not_read_is_paused_then_dropped<P: TestChain>() {
    let chain = chain_of::<P>(300);
    let limit = 32 * 1024;
    for reads_again in [true, false] {
        let mut ours = config::<P>(US, 300);
        ours.send_limit = limit;
        let mut w = Wire::<P>::open_with(ours, 0);
        w.reading = false;
        let mut waiting = Vec::new();
        let mut asked = 0;
        while w.m.wants_bytes() {
            assert!(asked < 50, "never paused");
            w.feed(&P::get_headers_msg(&chain, 0));
            asked += 1;
            let events = w.events();
            serve(&mut w, &chain, &mut waiting, events);
            w.advance(ms(10));
        }
        let one = {
            let mut frame = BytesMut::new();
            let answer = chain.answer(&P::get_headers_msg(&chain, 0));
            P::encode(&w.codec, &answer[0], &mut frame).unwrap();
            frame.len()
        };
        assert!(one > limit / 2, "an answer is a large part of the bound");
        assert!(asked <= 3, "paused after {asked} requests");
        assert!(
            !waiting.is_empty() || w.m.unsent() >= limit,
            "an answer waits for room, or the bound is reached"
        );
        assert!(w.m.unsent() <= limit.max(one), "{} unsent", w.m.unsent());
        // Time passes: the remote's bytes stay unread.
        w.advance(ms(1000));
        assert!(!w.m.wants_bytes() && !w.m.is_closed());
        if reads_again {
            w.reading = true;
            w.write();
            let events = w.events();
            serve(&mut w, &chain, &mut waiting, events);
            w.write();
            assert!(waiting.is_empty(), "the waiting answer went out");
            assert!(w.m.wants_bytes(), "read again once it reads");
            let headers = w
                .sent()
                .iter()
                .filter(|m| P::command_name(m) == "headers")
                .count();
            assert_eq!(headers, asked, "every request answered");
            // Past the write timeout: nothing is stuck any more.
            w.advance(ms(2500));
            assert!(!w.m.is_closed(), "{:?}", w.m.reason());
        } else {
            w.advance(ms(1000));
            assert_eq!(
                w.closed_with(),
                Some(DisconnectReason::WriteTimeout(ms(2000)))
            );
        }
    }
}

/// A handshaken machine drawing on the send budget `budget`, at `at`,
/// whose remote does not read; its codecs take large unknown payloads.
fn sending<P: TestChain>(budget: &SendBudget, at: Instant) -> Wire<P> {
    let mut ours = config::<P>(US, 0);
    // Long, so that only the budget drops anyone.
    ours.timeouts.idle = ms(60_000);
    ours.timeouts.write = ms(60_000);
    ours.send_budget = budget.clone();
    let mut limits = if P::NAME == Legacy::NAME {
        PayloadLimits::LEGACY
    } else {
        PayloadLimits::N3
    };
    limits.unknown = LARGE;
    ours.payload_limits = limits;
    let mut w = Wire::<P>::open_with(ours, 0);
    P::set_limits(&mut w.codec, limits);
    w.now = w.now.max(at);
    w.reading = false;
    w
}

/// A frame of an unknown command with `len` bytes of payload, encoded once.
fn shared_frame<P: TestChain>(w: &Wire<P>, len: usize) -> Frame {
    Encoder::new(w.m.config(), false)
        .encode(&P::unknown_of(len))
        .unwrap()
}

/// Peers that do not read fill the send budget with a frame each:
/// the budget holds (a peer finding no room takes nothing and is not
/// read), and a peer that waits for the budget's patience drops the peers
/// whose writes have made no progress for the longest, oldest first, and
/// then sends.
fn send_budget_holds_and_drops_the_slowest_readers<P: TestChain>() {
    let limit = 1 << 20;
    let budget = SendBudget::new(limit);
    let t0 = Instant::now();
    let mut crowd: Vec<Wire<P>> = (0..6).map(|_| sending::<P>(&budget, t0)).collect();
    let t0 = crowd.iter().map(|w| w.now).max().unwrap();
    let frame = shared_frame(&crowd[0], 300_000);
    let mut refused = 0;
    for (i, w) in crowd.iter_mut().enumerate() {
        // One after the other, a second apart, each its own frame.
        w.now = t0 + Duration::from_secs(i as u64);
        let frame = shared_frame(w, 300_000);
        if w.m.send_room_frame(w.now, &frame) {
            w.m.send_frame(w.now, &frame).unwrap();
        } else {
            refused += 1;
            assert!(w.m.is_send_starved() && !w.m.wants_bytes());
            assert_eq!(w.m.unsent(), 0);
        }
        assert!(budget.used() <= limit, "{} of {limit}", budget.used());
    }
    assert_eq!(refused, 3, "three frames fit a budget of 1 MiB");
    let unsent: usize = crowd.iter().map(|w| w.m.unsent()).sum();
    assert!(unsent <= limit + crowd.len() * SEND_UNBUDGETED, "{unsent}");
    // An honest peer, which reads, finds no room, waits, then room is made.
    let mut honest = sending::<P>(&budget, t0 + Duration::from_secs(10));
    honest.reading = true;
    let start = honest.now;
    while !honest.m.send_room_frame(honest.now, &frame) {
        assert!(honest.now - start <= ms(1000), "served within a second");
        honest.advance(ms(100));
        // Dropped peers give their room back when next they wake.
        for w in &mut crowd[..3] {
            w.now = honest.now;
            if w.m.poll_timeout().is_some_and(|t| t <= w.now) {
                w.m.handle_timeout(w.now);
            }
        }
    }
    honest.m.send_frame(honest.now, &frame).unwrap();
    honest.write();
    assert_eq!(honest.m.unsent(), 0);
    assert!(!honest.m.is_closed());
    assert!(honest.now - start >= budget.patience());
    // The peers holding bytes learn whether they were dropped when next
    // they wake (those waiting for room would, after their own patience,
    // make room in turn).
    for w in &mut crowd[..3] {
        w.now = honest.now;
        if w.m.poll_timeout().is_some_and(|t| t <= w.now) {
            w.m.handle_timeout(w.now);
        }
    }
    let reasons: Vec<_> = crowd.iter().map(|w| w.m.reason().cloned()).collect();
    assert!(
        matches!(reasons[0], Some(DisconnectReason::SendBudget(_))),
        "the oldest first: {reasons:?}"
    );
    assert!(
        reasons[3..].iter().all(Option::is_none),
        "peers holding nothing are not dropped: {reasons:?}"
    );
    assert!(reasons[2].is_none(), "only as many as needed: {reasons:?}");
    drop(crowd);
    assert_eq!(budget.used(), 0, "everything given back");
}

/// Many peers that do not read hold the same shared frame unsent: it is
/// in memory once and charged to the send budget once, so a budget of a
/// few frames holds 200 of them, and the last one to let go gives it back.
fn a_shared_frame_costs_the_send_budget_once<P: TestChain>() {
    let limit = 1 << 20;
    let budget = SendBudget::new(limit);
    let t0 = Instant::now();
    let mut crowd: Vec<Wire<P>> = (0..200).map(|_| sending::<P>(&budget, t0)).collect();
    let frame = shared_frame(&crowd[0], 300_000);
    let charge = frame.len();
    for w in &mut crowd {
        assert!(
            w.m.send_room_frame(w.now, &frame),
            "room for a shared frame"
        );
        w.m.send_frame(w.now, &frame).unwrap();
        assert!(!w.m.is_send_starved());
        assert_eq!(budget.used(), charge, "charged once");
    }
    let unsent: usize = crowd.iter().map(|w| w.m.unsent()).sum();
    assert_eq!(unsent, 200 * frame.len());
    // The room left is still there for others.
    let mut other = sending::<P>(&budget, t0);
    let own = shared_frame(&other, 600_000);
    assert!(other.m.send_room_frame(other.now, &own));
    other.m.send_frame(other.now, &own).unwrap();
    assert_eq!(budget.used(), charge + own.len());
    drop(other);
    // Charged until the last holder lets go, written or dropped.
    crowd[0].reading = true;
    crowd[0].write();
    assert_eq!(crowd[0].m.unsent(), 0);
    assert_eq!(budget.used(), charge);
    crowd.truncate(1);
    assert_eq!(budget.used(), 0);
    drop(crowd);
    assert_eq!(budget.used(), 0);
}

/// A peer dropped to free the receive budget keeps its bytes charged until
/// it has closed (its buffer freed): meanwhile the waiting peer is not
/// read and no other peer is dropped for the same room; once the dropped
/// peer closes, the waiting peer reads.
fn an_eviction_keeps_the_room_charged_until_the_evicted_peer_closes<P: TestChain>() {
    let limit = 4 << 20;
    let budget = ReceiveBudget::new(limit);
    let t0 = Instant::now();
    let mut crowd: Vec<Wire<P>> = (0..2).map(|_| budgeted::<P>(&budget, t0)).collect();
    let t0 = crowd.iter().map(|w| w.now).max().unwrap();
    let frame = large_frame(&crowd[0], LARGE);
    for (i, w) in crowd.iter_mut().enumerate() {
        w.now = t0 + Duration::from_secs(i as u64);
        let mut sent = 0;
        pump(w, &frame, &mut sent, (2 << 20) - 1);
    }
    let spent = budget.used();
    assert!(budget.free() < 1 << 20, "the crowd spent the budget");
    let mut honest = budgeted::<P>(&budget, t0 + Duration::from_secs(10));
    let mut sent = 0;
    pump(&mut honest, &frame, &mut sent, frame.len());
    assert!(honest.m.is_starved());
    let mut waiting = budgeted::<P>(&budget, honest.now);
    let mut wsent = 0;
    pump(&mut waiting, &frame, &mut wsent, frame.len());
    // Past the patience: the oldest is dropped, but holds its bytes.
    honest.advance(budget.patience() + ms(1));
    assert!(!honest.m.is_closed());
    assert!(!crowd[0].m.is_closed(), "not run yet");
    assert!(budget.used() >= spent, "still charged");
    let before = sent;
    pump(&mut honest, &frame, &mut sent, frame.len());
    assert_eq!(sent, before, "no room until the dropped peer closes");
    // Another starved peer does not drop a second one for the same room.
    waiting.now = honest.now;
    waiting.advance(ms(0));
    crowd[1].now = honest.now;
    crowd[1].m.handle_timeout(honest.now);
    assert!(!crowd[1].m.is_closed(), "dropped once, not twice");
    // The dropped peer runs (it is due at once) and closes.
    crowd[0].now = honest.now;
    assert!(crowd[0].m.poll_timeout().is_some_and(|t| t <= crowd[0].now));
    crowd[0].m.handle_timeout(honest.now);
    assert!(matches!(
        crowd[0].m.reason(),
        Some(DisconnectReason::ReceiveBudget(_))
    ));
    assert!(budget.used() < spent);
    pump(&mut honest, &frame, &mut sent, frame.len());
    assert!(sent > before, "read once the room came back");
}

// ---- helpers

fn chain_of<P: TestChain>(blocks: u32) -> Chain<P> {
    P::chain(&Synthetic {
        blocks,
        txs_per_block: 1,
        seed: 7,
        with_bodies: true,
    })
}

fn small_chain<P: TestChain>() -> Chain<P> {
    chain_of::<P>(10)
}

/// What the tests need from each generation's chain.
trait TestChain: Protocol + Serve + Sized {
    fn chain(spec: &Synthetic) -> Chain<Self>;
    fn get_headers_msg(chain: &Chain<Self>, start: u32) -> Self::Message;
    fn unknown() -> Self::Message;
    /// A message of a command no layout is defined for, `len` bytes of payload.
    fn unknown_of(len: usize) -> Self::Message;
}

impl TestChain for N3 {
    fn chain(spec: &Synthetic) -> Chain<N3> {
        Chain::<N3>::synthetic(spec)
    }
    fn get_headers_msg(_chain: &Chain<N3>, start: u32) -> n3::Message {
        n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
            index_start: start,
            count: -1,
        })
    }
    fn unknown() -> n3::Message {
        n3::Message::Unknown {
            command: 0xEE,
            payload: vec![1, 2, 3].into(),
        }
    }
    fn unknown_of(len: usize) -> n3::Message {
        n3::Message::Unknown {
            command: 0xEE,
            payload: vec![7; len].into(),
        }
    }
}

impl TestChain for Legacy {
    fn chain(spec: &Synthetic) -> Chain<Legacy> {
        Chain::<Legacy>::synthetic(spec)
    }
    fn get_headers_msg(chain: &Chain<Legacy>, start: u32) -> legacy::Message {
        legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![chain.hash(start).unwrap()],
            hash_stop: UInt256::ZERO,
        })
    }
    fn unknown() -> legacy::Message {
        legacy::Message::Unknown {
            command: "xyzzy".into(),
            payload: vec![1, 2, 3].into(),
        }
    }
    fn unknown_of(len: usize) -> legacy::Message {
        legacy::Message::Unknown {
            command: "xyzzy".into(),
            payload: vec![7; len].into(),
        }
    }
}
