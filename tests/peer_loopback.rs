//! The peer engine over loopback TCP, against a scripted remote, on smol,
//! async-std and (feature `tokio`) tokio with tokio's own sockets, for both
//! wire generations.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_io::{Async, Timer};
use bytes::BytesMut;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use neo_peer::executor::Executor;
use neo_peer::peer::{
    Direction, DisconnectReason, Handler, IgnoreAll, LocalConfig, Peer, PeerError, Violation,
};
use neo_peer::protocol::{Legacy, N3, Protocol, RequestKind, Role};
use neo_peer::wire::{UInt160, UInt256, Witness, legacy, n3};

const NET: u32 = 56753;

#[allow(dead_code)]
mod rt;

#[cfg(feature = "tokio")]
use rt::TokioRt;
use rt::{AsyncStdRt, Rt, SmolRt};

/// What the tests need from each generation beyond the engine's trait.
trait TestProto: Protocol<Message: PartialEq> {
    fn get_headers() -> Self::Message;
    fn headers(n: usize) -> Self::Message;
    fn inv(i: u32) -> Self::Message;
    fn is_headers(m: &Self::Message) -> bool;
}

fn witness() -> Witness {
    Witness {
        invocation: vec![0x0C; 66].into(),
        verification: vec![0x41; 40].into(),
    }
}

impl TestProto for N3 {
    fn get_headers() -> n3::Message {
        n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
            index_start: 0,
            count: -1,
        })
    }
    fn headers(n: usize) -> n3::Message {
        let headers: Vec<n3::Header> = (0..n as u32)
            .map(|i| n3::Header {
                version: 0,
                prev_hash: UInt256::ZERO,
                merkle_root: UInt256::ZERO,
                timestamp: u64::from(i),
                nonce: 0,
                index: i,
                primary_index: 0,
                next_consensus: UInt160::ZERO,
                witness: witness(),
            })
            .collect();
        n3::Message::Headers(n3::HeadersPayload::new(&headers))
    }
    fn inv(i: u32) -> n3::Message {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_le_bytes());
        n3::Message::Inv(n3::InvPayload {
            kind: n3::InventoryType::Transaction,
            hashes: vec![UInt256(h)],
        })
    }
    fn is_headers(m: &n3::Message) -> bool {
        matches!(m, n3::Message::Headers(_))
    }
}

impl TestProto for Legacy {
    fn get_headers() -> legacy::Message {
        legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![UInt256([1; 32])],
            hash_stop: UInt256::ZERO,
        })
    }
    fn headers(n: usize) -> legacy::Message {
        let headers = (0..n as u32)
            .map(|i| legacy::Header {
                base: legacy::BlockBase {
                    version: 0,
                    prev_hash: UInt256::ZERO,
                    merkle_root: UInt256::ZERO,
                    timestamp: i,
                    index: i,
                    consensus_data: 0,
                    next_consensus: UInt160::ZERO,
                    witness: witness(),
                },
            })
            .collect();
        legacy::Message::Headers(legacy::HeadersPayload { headers })
    }
    fn inv(i: u32) -> legacy::Message {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_le_bytes());
        legacy::Message::Inv(legacy::InvPayload {
            kind: legacy::InventoryType::Tx,
            hashes: vec![UInt256(h)],
        })
    }
    fn is_headers(m: &legacy::Message) -> bool {
        matches!(m, legacy::Message::Headers(_))
    }
}

fn config<P: Protocol>(nonce: u32) -> LocalConfig<P> {
    let mut c = LocalConfig::new(NET);
    c.identity.nonce = nonce;
    c.identity.user_agent = format!("/test:{nonce}/");
    c.timeouts.handshake = Duration::from_millis(500);
    c.timeouts.idle = Duration::from_secs(5);
    c.timeouts.stall = Duration::from_secs(5);
    c.timeouts.stall_check_interval = Duration::from_millis(50);
    c.timeouts.ping_interval = Duration::from_secs(3);
    c
}

/// A connected TCP pair: (ours, remote's).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

/// A scripted remote speaking raw frames.
struct Remote<P: Protocol> {
    conn: Async<TcpStream>,
    codec: P::Codec,
    buf: BytesMut,
    config: LocalConfig<P>,
}

impl<P: Protocol> Remote<P> {
    fn new(s: TcpStream, nonce: u32) -> Self {
        Remote {
            conn: Async::new(s).unwrap(),
            codec: P::codec(NET),
            buf: BytesMut::new(),
            config: config(nonce),
        }
    }

    async fn send(&mut self, m: &P::Message) {
        let mut out = BytesMut::new();
        P::encode(&self.codec, m, &mut out).unwrap();
        self.conn.write_all(&out).await.unwrap();
    }

    /// Next message, or `None` when the connection closed.
    async fn recv(&mut self) -> Option<P::Message> {
        loop {
            if let Some(d) = P::decode(&mut self.codec, &mut self.buf).unwrap() {
                return Some(d.message);
            }
            let mut chunk = [0u8; 4096];
            match self.conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the connection closes (skipping messages); true if it did within `d`.
    async fn closes_within(&mut self, d: Duration) -> bool {
        let wait = async {
            while self.recv().await.is_some() {}
            true
        };
        futures_lite::future::or(wait, async {
            Timer::after(d).await;
            false
        })
        .await
    }

    /// Plays the remote side of a handshake; returns our peer's version.
    async fn handshake(&mut self) -> P::Version {
        let v = P::version(&self.config.identity);
        self.send(&v).await;
        let first = self.recv().await.expect("our version");
        let Role::Version(ours) = P::role(&first) else {
            panic!("first message must be version, got {first:?}")
        };
        let ours = ours.clone();
        self.send(&P::verack()).await;
        let second = self.recv().await.expect("our verack");
        assert!(matches!(P::role(&second), Role::Verack), "{second:?}");
        ours
    }
}

fn peer<P: Protocol, R: Rt>(
    rt: R,
    s: TcpStream,
    dir: Direction,
    cfg: LocalConfig<P>,
    h: impl Handler<P>,
) -> Peer<P> {
    Peer::new(rt.stream(s), dir, cfg, h, rt.ex())
}

async fn handshake_crosses_the_wire<P: TestProto, R: Rt>(rt: R) {
    for dir in [Direction::Outbound, Direction::Inbound] {
        let (a, b) = tcp_pair();
        let p: Peer<P> = peer(rt, a, dir, config(1), IgnoreAll);
        let mut remote = Remote::<P>::new(b, 2);
        let (ran, ours) = futures_lite::future::zip(p.run(), remote.handshake()).await;
        ran.unwrap();
        let facts = P::version_facts(&ours);
        assert_eq!(facts.nonce, 1);
        assert_eq!(facts.user_agent, "/test:1/");
        if let Some(net) = facts.network {
            assert_eq!(net, NET);
        }
        let info = p.info();
        assert!(info.handshaked);
        assert_eq!(info.nonce, Some(2));
        assert_eq!(info.user_agent.as_deref(), Some("/test:2/"));
        assert_eq!(info.direction, dir);
        let stats = p.stats();
        assert_eq!(stats.get("version").messages_out, 1);
        assert_eq!(stats.get("version").messages_in, 1);
        assert_eq!(stats.get("verack").messages_in, 1);
        assert_eq!(stats.get("verack").messages_out, 1);
        p.disconnect();
        assert_eq!(p.closed().await, DisconnectReason::Requested);
        assert!(remote.closes_within(Duration::from_secs(2)).await);
    }
}

async fn two_engines_handshake_each_other<P: TestProto, R: Rt>(rt: R) {
    let (a, b) = tcp_pair();
    let x: Peer<P> = peer(rt, a, Direction::Outbound, config(1), IgnoreAll);
    let y: Peer<P> = peer(rt, b, Direction::Inbound, config(2), IgnoreAll);
    let (rx, ry) = futures_lite::future::zip(x.run(), y.run()).await;
    rx.unwrap();
    ry.unwrap();
    assert_eq!(x.info().nonce, Some(2));
    assert_eq!(y.info().nonce, Some(1));
    assert!(matches!(x.run().await, Err(PeerError::AlreadyStarted)));
    x.disconnect();
    assert_eq!(y.closed().await, DisconnectReason::RemoteClosed);
}

async fn duplicate_handshake_messages_disconnect<P: TestProto, R: Rt>(rt: R) {
    for again in [P::verack(), P::version(&config(2).identity)] {
        let (a, b) = tcp_pair();
        let p: Peer<P> = peer(rt, a, Direction::Outbound, config(1), IgnoreAll);
        let mut remote = Remote::<P>::new(b, 2);
        let (ran, _) = futures_lite::future::zip(p.run(), remote.handshake()).await;
        ran.unwrap();
        remote.send(&again).await;
        let want = match P::role(&again) {
            Role::Verack => Violation::DuplicateVerack,
            _ => Violation::DuplicateVersion,
        };
        assert_eq!(p.closed().await, DisconnectReason::Protocol(want));
        assert!(remote.closes_within(Duration::from_secs(2)).await);
    }
}

async fn handshake_refusals<P: TestProto, R: Rt>(rt: R) {
    // our own nonce
    let (a, b) = tcp_pair();
    let p: Peer<P> = peer(rt, a, Direction::Outbound, config(7), IgnoreAll);
    let mut remote = Remote::<P>::new(b, 7);
    let v = P::version(&remote.config.identity);
    remote.send(&v).await;
    let err = p.run().await.unwrap_err();
    assert_eq!(
        err,
        PeerError::Disconnected(DisconnectReason::Handshake(Violation::SelfConnection(7)))
    );
    assert!(remote.closes_within(Duration::from_secs(2)).await);

    // something else before the handshake
    let (a, b) = tcp_pair();
    let p: Peer<P> = peer(rt, a, Direction::Inbound, config(1), IgnoreAll);
    let mut remote = Remote::<P>::new(b, 2);
    remote.send(&P::inv(1)).await;
    let err = p.run().await.unwrap_err();
    assert!(
        matches!(
            err,
            PeerError::Disconnected(DisconnectReason::Handshake(Violation::Unexpected(_)))
        ),
        "{err}"
    );

    // silence: handshake timeout
    let (a, _b) = tcp_pair();
    let p: Peer<P> = peer(rt, a, Direction::Inbound, config(1), IgnoreAll);
    let started = std::time::Instant::now();
    let err = p.run().await.unwrap_err();
    assert_eq!(
        err,
        PeerError::Disconnected(DisconnectReason::HandshakeTimeout)
    );
    assert!(started.elapsed() >= Duration::from_millis(500));

    // a big frame before the handshake
    let (a, b) = tcp_pair();
    let p: Peer<P> = peer(rt, a, Direction::Inbound, config(1), IgnoreAll);
    let mut remote = Remote::<P>::new(b, 2);
    remote.send(&P::headers(20)).await;
    let err = p.run().await.unwrap_err();
    assert!(
        matches!(err, PeerError::Disconnected(DisconnectReason::Frame(_))),
        "{err}"
    );
}

async fn wrong_network_is_refused<R: Rt>(rt: R) {
    let (a, b) = tcp_pair();
    let p: Peer<N3> = peer(rt, a, Direction::Outbound, config(1), IgnoreAll);
    let mut remote = Remote::<N3>::new(b, 2);
    remote.config.identity.network = 42;
    let v = N3::version(&remote.config.identity);
    remote.send(&v).await;
    let err = p.run().await.unwrap_err();
    assert_eq!(
        err,
        PeerError::Disconnected(DisconnectReason::Handshake(Violation::WrongNetwork {
            expected: NET,
            got: 42
        }))
    );
    // Legacy: the magic is in every frame
    let (a, b) = tcp_pair();
    let p: Peer<Legacy> = peer(rt, a, Direction::Outbound, config(1), IgnoreAll);
    let mut remote = Remote::<Legacy>::new(b, 2);
    remote.codec = legacy::Codec::new(legacy::MAINNET_MAGIC);
    let v = Legacy::version(&remote.config.identity);
    remote.send(&v).await;
    let err = p.run().await.unwrap_err();
    assert!(
        matches!(
            err,
            PeerError::Disconnected(DisconnectReason::Frame(
                neo_peer::wire::FrameError::WrongMagic { .. }
            ))
        ),
        "{err}"
    );
}

async fn idle_peer_is_dropped<P: TestProto, R: Rt>(rt: R) {
    let (a, b) = tcp_pair();
    let mut cfg = config(1);
    cfg.timeouts.idle = Duration::from_millis(300);
    cfg.timeouts.ping_interval = Duration::from_secs(60);
    let p: Peer<P> = peer(rt, a, Direction::Outbound, cfg, IgnoreAll);
    let mut remote = Remote::<P>::new(b, 2);
    let (ran, _) = futures_lite::future::zip(p.run(), remote.handshake()).await;
    ran.unwrap();
    // A frame trickled in byte by byte, more slowly than the idle timeout allows.
    let mut out = BytesMut::new();
    P::encode(&remote.codec, &P::inv(1), &mut out).unwrap();
    let trickle = async {
        for b in out.iter() {
            if remote.conn.write_all(&[*b]).await.is_err() {
                break;
            }
            Timer::after(Duration::from_millis(60)).await;
        }
    };
    let (reason, ()) = futures_lite::future::zip(p.closed(), trickle).await;
    assert_eq!(
        reason,
        DisconnectReason::IdleTimeout(Duration::from_millis(300))
    );
}

async fn unanswered_request_stalls<P: TestProto, R: Rt>(rt: R) {
    let (a, b) = tcp_pair();
    let mut cfg = config(1);
    cfg.timeouts.stall = Duration::from_millis(300);
    let p: Peer<P> = peer(rt, a, Direction::Outbound, cfg, IgnoreAll);
    let mut remote = Remote::<P>::new(b, 2);
    // The remote says it is at height 10: it owes headers from genesis (on
    // NEO Legacy, a request that names the start's height; without it a
    // Legacy node's silence is legitimate).
    remote.config.identity.current_height = std::sync::Arc::new(|| 10);
    let (ran, _) = futures_lite::future::zip(p.run(), remote.handshake()).await;
    ran.unwrap();
    let mut answers = p.request_answers(P::get_headers(), Some(1)).await.unwrap();
    let err = answers.next().await.unwrap().unwrap_err();
    assert_eq!(
        err,
        PeerError::Disconnected(DisconnectReason::Stalled(RequestKind::Headers))
    );
    // and the request did cross the wire
    let got = remote.recv().await;
    assert!(got.is_some_and(|m| P::command_name(&m) == "getheaders"));
    // once gone, requests fail at once
    let err = p.send(P::get_headers()).await.unwrap_err();
    assert!(matches!(err, PeerError::Disconnected(_)), "{err}");
}

/// Answers every getheaders with `n` headers.
struct Server<P: TestProto>(usize, std::marker::PhantomData<P>);

impl<P: TestProto> Handler<P> for Server<P> {
    async fn handle(&self, peer: &Peer<P>, msg: P::Message) {
        if P::command_name(&msg) == "getheaders" {
            let _ = peer.send(P::headers(self.0)).await;
        }
    }
}

async fn concurrent_requests_resolve_once<P: TestProto, R: Rt>(rt: R) {
    let (a, b) = tcp_pair();
    let client: Peer<P> = peer(rt, a, Direction::Outbound, config(1), IgnoreAll);
    let server: Peer<P> = peer(
        rt,
        b,
        Direction::Inbound,
        config(2),
        Server::<P>(3, Default::default()),
    );
    let (r1, r2) = futures_lite::future::zip(client.run(), server.run()).await;
    r1.unwrap();
    r2.unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = async_channel::unbounded();
    for _ in 0..100 {
        let c = client.clone();
        let answered = answered.clone();
        let done = done_tx.clone();
        rt.ex().spawn(Box::pin(async move {
            let r = c.request(P::get_headers()).await;
            assert!(r.as_ref().is_ok_and(|m| P::is_headers(m)), "{r:?}");
            answered.fetch_add(1, Ordering::SeqCst);
            let _ = done.send(()).await;
        }));
    }
    drop(done_tx);
    let mut n = 0;
    while done_rx.recv().await.is_ok() {
        n += 1;
    }
    assert_eq!(n, 100);
    assert_eq!(answered.load(Ordering::SeqCst), 100);
    assert_eq!(client.pending_requests(), 0);
    let stats = client.stats();
    assert_eq!(stats.get("getheaders").messages_out, 100);
    assert_eq!(stats.get("headers").messages_in, 100);
    assert_eq!(stats.get("headers").latency.count, 100);
    let server_stats = server.stats();
    assert_eq!(
        server_stats.get("headers").bytes_out,
        stats.get("headers").bytes_in
    );
    assert_eq!(server_stats.get("getheaders").handled, 100);
}

/// Slow on purpose: 2 ms per message.
struct Slow<P>(Arc<AtomicUsize>, std::marker::PhantomData<P>);

impl<P: Protocol> Handler<P> for Slow<P> {
    async fn handle(&self, _peer: &Peer<P>, _msg: P::Message) {
        Timer::after(Duration::from_millis(2)).await;
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn slow_handler_pushes_back_and_loses_nothing<P: TestProto, R: Rt>(rt: R) {
    const N: u32 = 300;
    let (a, b) = tcp_pair();
    let seen = Arc::new(AtomicUsize::new(0));
    let mut cfg = config(1);
    cfg.queues.handler = 4;
    let p: Peer<P> = peer(
        rt,
        a,
        Direction::Outbound,
        cfg,
        Slow::<P>(seen.clone(), Default::default()),
    );
    let mut remote = Remote::<P>::new(b, 2);
    let (ran, _) = futures_lite::future::zip(p.run(), remote.handshake()).await;
    ran.unwrap();
    let mut out = BytesMut::new();
    for i in 0..N {
        P::encode(&remote.codec, &P::inv(i), &mut out).unwrap();
    }
    remote.conn.write_all(&out).await.unwrap();
    while seen.load(Ordering::SeqCst) < N as usize {
        Timer::after(Duration::from_millis(20)).await;
        assert!(!p.is_closed(), "{:?}", p.info().disconnect_reason);
    }
    let s = p.stats().get("inv");
    assert_eq!((s.messages_in, s.handled), (u64::from(N), u64::from(N)));
    assert_eq!(s.bytes_in, out.len() as u64);
    assert!(s.handler_time >= Duration::from_millis(2 * u64::from(N)));
}

/// Every test in a module per runtime: `<runtime>::<test>::{n3, legacy}`
/// for the generic ones, `<runtime>::<test>` for the others.
macro_rules! on_every_runtime {
    (generic: [$($generic:ident),* $(,)?], once: [$($once:ident),* $(,)?]) => {
        on_every_runtime!(@rt smol_rt, SmolRt, [$($generic),*], [$($once),*]);
        on_every_runtime!(@rt async_std_rt, AsyncStdRt, [$($generic),*], [$($once),*]);
        #[cfg(feature = "tokio")]
        on_every_runtime!(@rt tokio_rt, TokioRt, [$($generic),*], [$($once),*]);
    };
    (@rt $module:ident, $rt:ident, [$($generic:ident),*], [$($once:ident),*]) => {
        mod $module {
            use super::Rt;
            $(
                mod $generic {
                    use super::Rt;
                    #[test]
                    fn n3() {
                        let rt = super::super::$rt;
                        rt.block_on(super::super::$generic::<neo_peer::protocol::N3, _>(rt));
                    }
                    #[test]
                    fn legacy() {
                        let rt = super::super::$rt;
                        rt.block_on(super::super::$generic::<neo_peer::protocol::Legacy, _>(rt));
                    }
                }
            )*
            $(
                #[test]
                fn $once() {
                    let rt = super::$rt;
                    rt.block_on(super::$once(rt));
                }
            )*
        }
    };
}

on_every_runtime!(
    generic: [
        handshake_crosses_the_wire,
        two_engines_handshake_each_other,
        duplicate_handshake_messages_disconnect,
        handshake_refusals,
        idle_peer_is_dropped,
        unanswered_request_stalls,
        concurrent_requests_resolve_once,
        slow_handler_pushes_back_and_loses_nothing,
    ],
    once: [
        requests_fail_once_the_peer_is_gone,
        a_panicking_handler_takes_down_only_its_peer,
        chain_server_answers_both_generations,
        unknown_commands_are_kept,
        wrong_network_is_refused,
        the_remote_address_is_known_everywhere,
    ]
);

async fn requests_fail_once_the_peer_is_gone<R: Rt>(rt: R) {
    let (a, b) = tcp_pair();
    let x: Peer<N3> = peer(rt, a, Direction::Outbound, config(1), IgnoreAll);
    let y: Peer<N3> = peer(rt, b, Direction::Inbound, config(2), IgnoreAll);
    let (rx, ry) = futures_lite::future::zip(x.run(), y.run()).await;
    rx.unwrap();
    ry.unwrap();
    // ping answers with a round trip, kept in the info
    let rtt = x.ping().await.unwrap();
    assert!(rtt > Duration::ZERO);
    assert!(x.info().rtt.is_some());
    assert_eq!(x.stats().get("pong").messages_in, 1);
    assert_eq!(y.stats().get("ping").messages_in, 1);
    y.disconnect();
    assert_eq!(x.closed().await, DisconnectReason::RemoteClosed);
    let err = x.request_headers(0, -1).await.unwrap_err();
    assert_eq!(err, PeerError::Disconnected(DisconnectReason::RemoteClosed));
    assert!(x.get_headers(0, 1).await.is_err());

    let (a, b) = tcp_pair();
    let x: Peer<Legacy> = peer(rt, a, Direction::Outbound, config(1), IgnoreAll);
    let y: Peer<Legacy> = peer(rt, b, Direction::Inbound, config(2), IgnoreAll);
    let (rx, ry) = futures_lite::future::zip(x.run(), y.run()).await;
    rx.unwrap();
    ry.unwrap();
    // Legacy nodes need not answer pings: the ping is only sent
    assert_eq!(x.ping().await.unwrap(), Duration::ZERO);
    x.disconnect();
    let err = x
        .request_headers(UInt256::ZERO, UInt256::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err, PeerError::Disconnected(DisconnectReason::Requested));
}

/// Panics on the first message it gets.
struct Panics;

impl<P: Protocol> Handler<P> for Panics {
    async fn handle(&self, _peer: &Peer<P>, msg: P::Message) {
        panic!("handler fails on {}", P::command_name(&msg));
    }
}

async fn a_panicking_handler_takes_down_only_its_peer<R: Rt>(rt: R) {
    let (a, b) = tcp_pair();
    let bad: Peer<N3> = peer(rt, a, Direction::Outbound, config(1), Panics);
    let mut remote = Remote::<N3>::new(b, 2);
    let (ran, _) = futures_lite::future::zip(bad.run(), remote.handshake()).await;
    ran.unwrap();
    let (c, d) = tcp_pair();
    let good: Peer<N3> = peer(rt, c, Direction::Outbound, config(3), IgnoreAll);
    let other: Peer<N3> = peer(rt, d, Direction::Inbound, config(4), IgnoreAll);
    let (r1, r2) = futures_lite::future::zip(good.run(), other.run()).await;
    r1.unwrap();
    r2.unwrap();
    remote.send(&N3::inv(1)).await;
    assert_eq!(bad.closed().await, DisconnectReason::HandlerPanicked("inv"));
    assert!(remote.closes_within(Duration::from_secs(2)).await);
    assert!(good.ping().await.is_ok(), "the other peer lives on");
}

async fn chain_server_answers_requests<P: TestProto + neo_peer::chain::Serve, R: Rt>(
    rt: R,
    chain: neo_peer::chain::Chain<P>,
    ask: P::Message,
) where
    neo_peer::chain::Chain<P>: Send + Sync,
{
    use neo_peer::chain::ChainServer;
    let chain = Arc::new(chain);
    let listed: std::net::SocketAddr = "10.1.2.3:20333".parse().unwrap();
    let server = ChainServer::new(chain.clone()).with_addresses(vec![listed]);
    let (a, b) = tcp_pair();
    let mut scfg = config(2);
    scfg.identity.current_height = Arc::new(|| 50);
    let x: Peer<P> = peer(rt, a, Direction::Outbound, config(1), IgnoreAll);
    let y: Peer<P> = peer(rt, b, Direction::Inbound, scfg, server);
    let (rx, ry) = futures_lite::future::zip(x.run(), y.run()).await;
    rx.unwrap();
    ry.unwrap();
    assert_eq!(x.height(), 50);
    let addr = x.request(P::get_addr()).await.unwrap();
    assert_eq!(P::command_name(&addr), "addr");
    assert!(format!("{addr:?}").contains("10.1.2.3"), "{addr:?}");
    let headers = x.request(ask).await.unwrap();
    assert!(P::is_headers(&headers), "{headers:?}");
}

/// A chain of 50 blocks of each generation, served over loopback.
async fn chain_server_answers_both_generations<R: Rt>(rt: R) {
    use neo_peer::chain::{LegacyChain, N3Chain, Synthetic};
    let s = Synthetic {
        blocks: 50,
        ..Default::default()
    };
    chain_server_answers_requests(rt, N3Chain::synthetic(&s), N3::get_headers()).await;
    let legacy = LegacyChain::synthetic(&s);
    let legacy_ask = legacy::Message::GetHeaders(legacy::GetBlocksPayload {
        hash_start: vec![legacy.genesis_hash()],
        hash_stop: UInt256::ZERO,
    });
    chain_server_answers_requests(rt, legacy, legacy_ask).await;
}

/// Counts what reaches it.
struct Counts(Arc<AtomicUsize>);

impl<P: Protocol> Handler<P> for Counts {
    async fn handle(&self, _peer: &Peer<P>, _msg: P::Message) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn unknown_commands_are_kept<R: Rt>(rt: R) {
    // N3: command byte 0x99; Legacy: command "foo"
    let n3_frame = vec![0x00, 0x99, 0x02, 0xAB, 0xCD];
    let mut legacy_frame = BytesMut::new();
    legacy::Codec::new(NET)
        .encode(
            &legacy::Message::Unknown {
                command: "foo".into(),
                payload: bytes::Bytes::from_static(&[1, 2, 3]),
            },
            &mut legacy_frame,
        )
        .unwrap();
    for (n3_side, frame) in [(true, n3_frame), (false, legacy_frame.to_vec())] {
        let (a, b) = tcp_pair();
        let seen = Arc::new(AtomicUsize::new(0));
        let stats = if n3_side {
            let p: Peer<N3> = peer(rt, a, Direction::Outbound, config(1), Counts(seen.clone()));
            let mut remote = Remote::<N3>::new(b, 2);
            let (ran, _) = futures_lite::future::zip(p.run(), remote.handshake()).await;
            ran.unwrap();
            remote.conn.write_all(&frame).await.unwrap();
            remote.send(&N3::inv(1)).await;
            while seen.load(Ordering::SeqCst) < 2 {
                Timer::after(Duration::from_millis(10)).await;
            }
            assert!(!p.is_closed());
            p.stats()
        } else {
            let p: Peer<Legacy> = peer(rt, a, Direction::Outbound, config(1), Counts(seen.clone()));
            let mut remote = Remote::<Legacy>::new(b, 2);
            let (ran, _) = futures_lite::future::zip(p.run(), remote.handshake()).await;
            ran.unwrap();
            remote.conn.write_all(&frame).await.unwrap();
            remote.send(&Legacy::inv(1)).await;
            while seen.load(Ordering::SeqCst) < 2 {
                Timer::after(Duration::from_millis(10)).await;
            }
            assert!(!p.is_closed());
            p.stats()
        };
        assert_eq!(stats.get("unknown").messages_in, 1);
        assert_eq!(stats.get("unknown").bytes_in, frame.len() as u64);
        assert_eq!(stats.get("inv").messages_in, 1);
    }
}

/// Tells the remote address its peer reports.
struct SeesAddr(async_channel::Sender<Option<std::net::SocketAddr>>);

impl Handler<N3> for SeesAddr {
    async fn handle(&self, peer: &Peer<N3>, _msg: n3::Message) {
        let _ = self.0.send(peer.remote_addr()).await;
    }
}

/// The address given to one handle is the peer's: every clone, the handler
/// and the engine see it.
async fn the_remote_address_is_known_everywhere<R: Rt>(rt: R) {
    let (a, b) = tcp_pair();
    let at = b.local_addr().unwrap();
    let (tx, seen) = async_channel::bounded(1);
    let p: Peer<N3> = peer(rt, a, Direction::Outbound, config(1), SeesAddr(tx));
    let earlier = p.clone();
    let p = p.with_remote_addr(at);
    let mut remote = Remote::<N3>::new(b, 2);
    let (ran, _) = futures_lite::future::zip(p.run(), remote.handshake()).await;
    ran.unwrap();
    assert_eq!(earlier.remote_addr(), Some(at));
    assert_eq!(earlier.info().remote_addr, Some(at));
    remote.send(&N3::inv(1)).await;
    assert_eq!(seen.recv().await, Ok(Some(at)));
}
