//! The peer manager over loopback TCP, on smol and on async-std: routing,
//! exactly-once retries under churn, limits, bans, addresses, the dialer,
//! parallel sync and shutdown. Every "node" is a manager too, serving a
//! synthetic chain.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::Timer;
use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::Chain;
use neo_peer::chain::{ChainServer, Serve, Synthetic};
use neo_peer::manager::sync::{SyncOptions, sync_legacy, sync_n3};
use neo_peer::manager::{ManagerConfig, ManagerError, ManagerEvent, PeerManager};
use neo_peer::peer::{DisconnectReason, Handler, IgnoreAll, LocalConfig, N3Handler, Peer};
use neo_peer::protocol::{Legacy, N3, Protocol, RequestKind};
use neo_peer::wire::n3;

const NET: u32 = 56753;

/// The scripted remote of the fault-injection suite (this file uses a part of it).
#[allow(dead_code)]
mod hostile;
#[allow(dead_code)]
mod rt;

use rt::{AsyncStdRt, Rt, SmolRt};

fn book<P: Protocol>() -> AddressBook {
    AddressBook::in_memory(BookConfig {
        protocol: P::NAME,
        network: NET,
        backoff_base: Duration::from_millis(20),
        ..BookConfig::default()
    })
}

fn local<P: Protocol>(height: u32) -> LocalConfig<P> {
    let mut c = LocalConfig::new(NET);
    c.identity.current_height = Arc::new(move || height);
    c.timeouts.handshake = Duration::from_secs(5);
    // Short, but long enough that a loaded machine does not stall a good peer.
    c.timeouts.stall = Duration::from_secs(1);
    c.timeouts.stall_check_interval = Duration::from_millis(50);
    c
}

fn manager_config<P: Protocol>(height: u32) -> ManagerConfig<P> {
    let mut c = ManagerConfig::new(local(height));
    c.max_per_ip = 1000;
    c.max_inbound = 1000;
    c.max_outbound = 1000;
    c.route_timeout = Duration::from_secs(5);
    c.dial_interval = Duration::from_millis(20);
    c.shutdown_grace = Duration::from_secs(5);
    c
}

/// A node serving `chain` on a loopback port.
struct Node<P: Protocol> {
    manager: PeerManager<P>,
    addr: SocketAddr,
}

async fn node<P: Serve, R: Rt>(rt: R, chain: Arc<Chain<P>>) -> Node<P>
where
    Chain<P>: Send + Sync,
{
    let config = manager_config(chain.height());
    let manager = PeerManager::new(config, book::<P>(), ChainServer::new(chain), rt.ex()).unwrap();
    let addr = manager
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Node { manager, addr }
}

/// A node that completes the handshake and then never answers.
async fn silent_node<P: Protocol, R: Rt>(rt: R, height: u32) -> Node<P> {
    let manager =
        PeerManager::new(manager_config(height), book::<P>(), IgnoreAll, rt.ex()).unwrap();
    let addr = manager
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Node { manager, addr }
}

fn n3_chain(blocks: u32) -> Arc<Chain<N3>> {
    Arc::new(Chain::<N3>::synthetic(&Synthetic {
        blocks,
        ..Synthetic::default()
    }))
}

fn legacy_chain(blocks: u32) -> Arc<Chain<Legacy>> {
    Arc::new(Chain::<Legacy>::synthetic(&Synthetic {
        blocks,
        ..Synthetic::default()
    }))
}

fn client<P: Protocol, R: Rt, H: Handler<P>>(rt: R, handler: H) -> PeerManager<P> {
    PeerManager::new(manager_config(0), book::<P>(), handler, rt.ex()).unwrap()
}

/// The config of a client that syncs whole chains: on a loaded machine a
/// node may take longer than the usual test stall timeout to answer 2000
/// headers, and the sync is not what the stall rule is tested by.
fn syncing_config<P: Protocol>() -> ManagerConfig<P> {
    let mut c = manager_config(0);
    c.local.timeouts.stall = Duration::from_secs(20);
    c
}

/// Polls `cond` every 2 ms until it holds or `timeout` passes; whether it held.
async fn eventually(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        Timer::after(Duration::from_millis(2)).await;
    }
    true
}

/// Whether the first peer of `c` has sent an `addr`.
fn addr_received(c: &PeerManager<N3>) -> bool {
    c.peers()
        .first()
        .is_some_and(|p| p.stats.get("addr").messages_in > 0)
}

/// Whether the first peer of `c` has answered the manager's `getaddr` and
/// the request has given its slot back.
fn addr_settled(c: &PeerManager<N3>) -> bool {
    addr_received(c) && c.peers().first().is_some_and(|p| p.in_flight == 0)
}

async fn shut<P: Protocol>(managers: &[&PeerManager<P>]) {
    for m in managers {
        let report = m.shutdown().await;
        assert_eq!(
            report.tasks_left, 0,
            "tasks left after shutdown: {report:?}"
        );
    }
}

// ---------------------------------------------------------------------------

fn registry_routes_and_forgets<R: Rt>(rt: R) {
    rt.block_on(async {
        let chain = n3_chain(300);
        let a = node(rt, chain.clone()).await;
        let b = node(rt, chain.clone()).await;
        let c = client::<N3, _, _>(rt, IgnoreAll);
        c.connect(a.addr).await.unwrap();
        let pb = c.connect(b.addr).await.unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.best_height(), 300);
        // Sequential requests go to the fastest peer (which one that is
        // depends on the machine's load)...
        for start in (0..240).step_by(30) {
            let headers = c.get_headers(start, 30).await.unwrap();
            assert_eq!(headers.len(), 30);
            assert_eq!(headers[0].hash(), chain.header(start).unwrap().hash());
        }
        // ...and two at once to both: the least loaded peer comes first.
        let (x, y) =
            futures_lite::future::zip(c.get_headers(240, 30), c.get_headers(270, 30)).await;
        assert_eq!(x.unwrap()[0].hash(), chain.header(240).unwrap().hash());
        assert_eq!(y.unwrap()[0].hash(), chain.header(270).unwrap().hash());
        // (`served` also counts the `getaddr` the manager sends each new
        // peer, so count the `headers` answers themselves.)
        let served: Vec<u64> = c
            .peers()
            .iter()
            .map(|p| p.stats.get("headers").messages_in)
            .collect();
        assert!(served.iter().all(|&s| s >= 1), "{served:?}");
        assert_eq!(served.iter().sum::<u64>(), 10);
        // Too high: nobody has it.
        let err = c.get_headers(301, 10).await.unwrap_err();
        assert!(
            matches!(
                err,
                ManagerError::NoAvailablePeers {
                    kind: RequestKind::Headers,
                    min_height: 301
                }
            ),
            "{err}"
        );
        // A peer that ends leaves by itself, its reason kept.
        pb.disconnect();
        eventually(Duration::from_secs(5), || c.len() == 1).await;
        assert_eq!(c.len(), 1, "{:?}", c.departed());
        let gone = c.departed();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].addr, Some(b.addr));
        assert_eq!(gone[0].reason, DisconnectReason::Requested);
        // The book knows both nodes and what they said.
        let rec = c.book().get(a.addr).unwrap();
        assert!(rec.user_agent.unwrap().starts_with("/neo-peer:"));
        shut(&[&c, &a.manager, &b.manager]).await;
    });
}

#[test]
fn registry_routes_and_forgets_smol() {
    registry_routes_and_forgets(SmolRt);
}

#[test]
fn registry_routes_and_forgets_async_std() {
    registry_routes_and_forgets(AsyncStdRt);
}

// ---------------------------------------------------------------------------

/// Counts the headers each start index delivered through the handler.
#[derive(Clone, Default)]
struct Deliveries(Arc<Mutex<HashMap<u32, usize>>>);

impl N3Handler for Deliveries {
    async fn on_headers(&self, _peer: &Peer<N3>, msg: n3::HeadersPayload) {
        if let Some(first) = msg.first_index() {
            *self.0.lock().unwrap().entry(first).or_default() += 1;
        }
    }
}

/// Tens of thousands of requests while peers are killed at random from both
/// sides and one node never answers: every request gets exactly one result,
/// the right one.
fn churn<R: Rt>(rt: R, requests: u32) {
    rt.block_on(async {
        let chain = n3_chain(1000);
        let mut nodes = Vec::new();
        for _ in 0..5 {
            nodes.push(node(rt, chain.clone()).await);
        }
        let silent = silent_node::<N3, _>(rt, 1000).await;
        let deliveries = Deliveries::default();
        let mut config = manager_config(0);
        config.max_attempts = 8;
        // The churn may leave no live peer for a while on a loaded machine:
        // what is tested is that nothing is lost or answered twice, so a
        // request waits for a peer as long as the test's own guard below.
        config.route_timeout = Duration::from_secs(30);
        let c: PeerManager<N3> =
            PeerManager::new(config, book::<N3>(), deliveries.clone(), rt.ex()).unwrap();
        for n in &nodes {
            c.connect(n.addr).await.unwrap();
        }
        c.connect(silent.addr).await.unwrap();

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let kills = Arc::new(AtomicUsize::new(0));
        // The killer: every few ms, one peer dies, from our side or theirs;
        // dead ones are dialed again (the silent node too, until it is banned).
        let killer = {
            let c = c.clone();
            let servers: Vec<PeerManager<N3>> = nodes.iter().map(|n| n.manager.clone()).collect();
            let addrs: Vec<SocketAddr> =
                nodes.iter().map(|n| n.addr).chain([silent.addr]).collect();
            let stop = stop.clone();
            let kills = kills.clone();
            async move {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    Timer::after(Duration::from_millis(3)).await;
                    i += 1;
                    if i % 2 == 0 {
                        let peers = c.peers();
                        if let Some(p) = peers.get(i % peers.len().max(1)) {
                            c.remove(p.id);
                            kills.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        let s = &servers[i % servers.len()];
                        if let Some(p) = s.peers().first() {
                            s.remove(p.id);
                            kills.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let live: Vec<SocketAddr> = c.peers().iter().filter_map(|p| p.addr).collect();
                    for a in &addrs {
                        if !live.contains(a) {
                            let _ = c.connect(*a).await;
                        }
                    }
                }
            }
        };
        let killer = rt.spawn(killer);

        // The awaited path: each answer checked against the chain.
        let next = Arc::new(AtomicUsize::new(0));
        let ok = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..48 {
            let c = c.clone();
            let chain = chain.clone();
            let next = next.clone();
            let ok = ok.clone();
            workers.push(rt.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as u32;
                    if i >= requests {
                        return;
                    }
                    let start = i % 990;
                    // A request that never resolves fails the test instead of hanging it.
                    let answer = futures_lite::future::or(
                        async { Some(c.get_headers(start, 5).await) },
                        async {
                            Timer::after(Duration::from_secs(90)).await;
                            None
                        },
                    )
                    .await;
                    let headers = match answer {
                        Some(Ok(headers)) => headers,
                        Some(Err(e)) => panic!("request {i} lost: {e}"),
                        None => panic!("request {i} never resolved"),
                    };
                    assert_eq!(headers.len(), 5);
                    for (k, h) in headers.iter().enumerate() {
                        assert_eq!(h.hash(), chain.header(start + k as u32).unwrap().hash());
                    }
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for w in workers {
            w.await;
        }
        assert_eq!(ok.load(Ordering::Relaxed), requests as usize);

        // The handler path: every request's headers reach the handler once.
        let dispatched = 2000u32.min(requests);
        let events = c.events();
        for start in 0..dispatched {
            c.request_headers(start % 995, 1).await.unwrap();
        }
        let expected: usize = dispatched as usize;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut failed = 0;
        let mut errors = Vec::new();
        loop {
            while let Ok(e) = events.try_recv() {
                if let ManagerEvent::RequestFailed { error, .. } = e {
                    failed += 1;
                    errors.push(error);
                }
            }
            let delivered: usize = deliveries.0.lock().unwrap().values().sum();
            if delivered + failed >= expected || Instant::now() > deadline {
                break;
            }
            Timer::after(Duration::from_millis(10)).await;
        }
        stop.store(true, Ordering::Relaxed);
        killer.await;
        let counts = deliveries.0.lock().unwrap().clone();
        assert_eq!(failed, 0, "dispatched requests failed: {errors:?}");
        assert_eq!(counts.values().sum::<usize>(), expected);
        for start in 0..dispatched {
            // `start % 995` repeats only past 995.
            let times = counts.get(&(start % 995)).copied().unwrap_or(0);
            let asked = (0..dispatched).filter(|s| s % 995 == start % 995).count();
            assert_eq!(
                times,
                asked,
                "headers from {} delivered {times} times",
                start % 995
            );
        }
        let kills = kills.load(Ordering::Relaxed);
        assert!(kills > 20, "the churn killed too few");
        // Shown with --nocapture.
        eprintln!(
            "churn: {requests} awaited and {dispatched} dispatched requests, {kills} peers killed, none lost or answered twice"
        );
        let mut all: Vec<&PeerManager<N3>> = nodes.iter().map(|n| &n.manager).collect();
        all.push(&c);
        all.push(&silent.manager);
        shut(&all).await;
    });
}

#[test]
fn churn_loses_nothing_and_answers_once_smol() {
    churn(SmolRt, 20_000);
}

#[test]
fn churn_loses_nothing_and_answers_once_async_std() {
    churn(AsyncStdRt, 10_000);
}

// ---------------------------------------------------------------------------

/// A node that never answers stalls every request sent to it; each stall
/// costs its address points, the requests succeed elsewhere, and past the
/// threshold the address is banned (in the book) and cannot be dialed.
fn stalls_lead_to_a_ban<R: Rt>(rt: R) {
    rt.block_on(async {
        let chain = n3_chain(100);
        let good = node(rt, chain.clone()).await;
        let silent = silent_node::<N3, _>(rt, 100).await;
        let c = client::<N3, _, _>(rt, IgnoreAll);
        c.connect(good.addr).await.unwrap();
        let mut stalls = 0;
        while !c.book().is_banned(silent.addr) {
            assert!(stalls < 10, "no ban after {stalls} stalls");
            let live = c.peers().iter().any(|p| p.addr == Some(silent.addr));
            if !live {
                // The last stall's ban may land between the check above and
                // this dial: then the dial is refused, which ends the loop.
                match c.connect(silent.addr).await {
                    Ok(_) => {}
                    Err(ManagerError::Banned(addr)) if addr == silent.addr => break,
                    Err(e) => panic!("dialing the silent node: {e}"),
                }
            }
            // Both are free: one request goes to each (the good one is busy).
            let (a, b) =
                futures_lite::future::zip(c.get_headers(0, 10), c.get_headers(10, 10)).await;
            assert_eq!(a.unwrap()[0].index, 0);
            assert_eq!(b.unwrap()[0].index, 10);
            stalls += 1;
        }
        assert!(stalls >= 3, "34 points a stall, banned at 100");
        let err = c.connect(silent.addr).await.unwrap_err();
        assert_eq!(err, ManagerError::Banned(silent.addr));
        let stalled = c
            .departed()
            .iter()
            .filter(|d| d.addr == Some(silent.addr))
            .filter(|d| d.reason == DisconnectReason::Stalled(RequestKind::Headers))
            .count();
        assert_eq!(stalled, 3, "{:?}", c.departed());
        shut(&[&c, &good.manager, &silent.manager]).await;
    });
}

#[test]
fn stalls_lead_to_a_ban_smol() {
    stalls_lead_to_a_ban(SmolRt);
}

#[test]
fn stalls_lead_to_a_ban_async_std() {
    stalls_lead_to_a_ban(AsyncStdRt);
}

// ---------------------------------------------------------------------------

/// Reads what the other end sends until it closes (a reset counts as closed).
async fn read_to_close(addr: SocketAddr, send: &[u8]) -> Vec<u8> {
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = async_io::Async::<std::net::TcpStream>::connect(addr)
        .await
        .unwrap();
    if !send.is_empty() {
        // The server may close first: what it read is what counts.
        let _ = s.write_all(send).await;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A remote that breaks the framing rules during its handshake (a `version`
/// declared 32 MiB long) is banned, and when it comes back it is refused at
/// accept: the connection is closed before any handshake, without even our
/// `version`, however often it tries.
#[test]
fn a_banned_address_is_refused_at_accept() {
    SmolRt.block_on(async {
        let server = node::<N3, _>(SmolRt, n3_chain(10)).await;
        let m = &server.manager;
        // N3: flags 0, command 0x00 (`version`), length 0x02000000.
        let bad = [0x00, 0x00, 0xFE, 0x00, 0x00, 0x00, 0x02];
        let first = read_to_close(server.addr, &bad).await;
        let mut codec = n3::Codec::new();
        let version = codec
            .decode_frame(&mut bytes::BytesMut::from(&first[..]))
            .unwrap()
            .unwrap();
        assert_eq!(
            version.command,
            n3::Command::Version.as_u8(),
            "a handshake began"
        );
        let loopback = "127.0.0.1".parse().unwrap();
        assert!(eventually(Duration::from_secs(5), || m.book().is_ip_banned(loopback)).await);
        for _ in 0..50 {
            assert!(
                read_to_close(server.addr, &[]).await.is_empty(),
                "refused before any handshake"
            );
        }
        assert!(m.is_empty());
        shut(&[m]).await;
    });
}

/// Per-IP, inbound and duplicate-nonce limits; `getaddr` is answered from
/// what the node knows; shutdown ends every task and says why to every peer.
fn limits_addresses_and_shutdown<R: Rt>(rt: R) {
    rt.block_on(async {
        let chain = n3_chain(10);
        let mut config = manager_config(10);
        config.max_per_ip = 2;
        let server = PeerManager::<N3>::new(
            config,
            book::<N3>(),
            ChainServer::new(chain.clone()),
            rt.ex(),
        )
        .unwrap();
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let clients: Vec<PeerManager<N3>> = (0..3).map(|_| client(rt, IgnoreAll)).collect();
        let first = clients[0].connect(addr).await.unwrap();
        // The same node twice: refused after the handshake (same nonce).
        let dup = clients[0].connect(addr).await.unwrap_err();
        assert!(
            matches!(
                &dup,
                ManagerError::Handshake {
                    error: neo_peer::peer::PeerError::Disconnected(DisconnectReason::Duplicate(_)),
                    ..
                }
            ),
            "{dup}"
        );
        // The server may still be ending its side of the refused duplicate,
        // whose per-IP slot it holds until then: the slot must come free.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = clients[1].connect(addr).await {
            assert!(
                Instant::now() < deadline,
                "the duplicate's slot stayed taken: {e}"
            );
            Timer::after(Duration::from_millis(10)).await;
        }
        // A third connection from 127.0.0.1 is over the server's per-IP limit.
        assert!(clients[2].connect(addr).await.is_err());
        assert_eq!(server.wait_for_peers(2, Duration::from_secs(5)).await, 2);
        assert_eq!(server.len(), 2);
        // The server answered our getaddr with its own listener.
        eventually(Duration::from_secs(5), || {
            clients[0]
                .book()
                .get(addr)
                .is_some_and(|r| r.last_success_ms.is_some())
        })
        .await;
        assert!(eventually(Duration::from_secs(5), || addr_settled(&clients[0])).await);
        let answers = first.request(<N3 as Protocol>::get_addr()).await.unwrap();
        let listed = N3::addresses(&answers[0]).unwrap();
        assert!(listed.iter().any(|g| g.addr == addr), "{listed:?}");

        let tasks_before = server.live_tasks();
        // A driver and a watcher per peer, and the listener.
        assert!(tasks_before > 2 * 2, "{tasks_before} tasks for two peers");
        let report = server.shutdown().await;
        assert_eq!(report.peers, 2);
        assert_eq!(report.tasks_left, 0);
        // Its peers do not listen: nothing learned, nothing to write.
        assert_eq!(report.flushed, Ok(0));
        assert_eq!(server.live_tasks(), 0);
        assert!(server.is_empty());
        assert!(
            server
                .departed()
                .iter()
                .all(|d| d.reason == DisconnectReason::Shutdown)
        );
        // The clients see the connection end.
        assert_eq!(first.closed().await, DisconnectReason::RemoteClosed);
        // A manager that is shutting down takes no new peers.
        let late = server.connect(addr).await.unwrap_err();
        assert!(
            matches!(late, ManagerError::Shutdown | ManagerError::Connect { .. }),
            "{late}"
        );
        // A client's final flush writes the server's record (dialed, reached).
        let report = clients[0].shutdown().await;
        assert!(matches!(report.flushed, Ok(n) if n >= 1), "{report:?}");
        for c in &clients[1..] {
            c.shutdown().await;
        }
    });
}

#[test]
fn limits_addresses_and_shutdown_smol() {
    limits_addresses_and_shutdown(SmolRt);
}

#[test]
fn limits_addresses_and_shutdown_async_std() {
    limits_addresses_and_shutdown(AsyncStdRt);
}

// ---------------------------------------------------------------------------

/// A remote that sends `addr` nobody asked for is banned after a few.
fn unsolicited_addr_is_misbehaviour<R: Rt>(rt: R) {
    rt.block_on(async {
        let chain = n3_chain(10);
        let server = node(rt, chain).await;
        let c = client::<N3, _, _>(rt, IgnoreAll);
        // The server's side of the connection: it pushes addr after addr.
        c.connect(server.addr).await.unwrap();
        let seen = server.manager.wait_for_peers(1, Duration::from_secs(5)).await;
        assert_eq!(seen, 1, "{:?}", server.manager.departed());
        // Our getaddr is answered first: what follows is unsolicited.
        assert!(eventually(Duration::from_secs(5), || addr_received(&c)).await);
        let pushed = match server.manager.peers().first() {
            Some(p) => p.peer.clone(),
            None => panic!("the server lost its peer: {:?}", server.manager.departed()),
        };
        let junk = neo_peer::protocol::GossipAddr {
            addr: "10.9.9.9:20333".parse().unwrap(),
            timestamp: 1,
            services: 0,
        };
        for _ in 0..6 {
            if pushed.send(N3::addr(&[junk]).unwrap()).await.is_err() {
                break;
            }
            Timer::after(Duration::from_millis(20)).await;
        }
        assert!(eventually(Duration::from_secs(5), || c.book().is_banned(server.addr)).await);
        // The first addr answered our getaddr; the unsolicited ones taught nothing.
        assert!(c.book().get(junk.addr).is_none());
        let reason = &c.departed()[0].reason;
        assert!(matches!(reason, DisconnectReason::Misbehaviour(why) if why.contains("unsolicited addr")), "{reason}");
        shut(&[&c, &server.manager]).await;
    });
}

#[test]
fn unsolicited_addr_is_misbehaviour_smol() {
    unsolicited_addr_is_misbehaviour(SmolRt);
}

#[test]
fn unsolicited_addr_is_misbehaviour_async_std() {
    unsolicited_addr_is_misbehaviour(AsyncStdRt);
}

// ---------------------------------------------------------------------------

/// A node that knows no address answers our `getaddr` with an empty `addr`,
/// as neo-go does: it teaches nothing and is held against nobody.
fn empty_addr_answer_is_fine<R: Rt>(rt: R) {
    rt.block_on(async {
        let listener =
            async_io::Async::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let at = listener.get_ref().local_addr().unwrap();
        let remote = rt.spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut remote = hostile::Remote::<N3>::new(s.into_inner().unwrap(), 77);
            remote.handshake().await;
            while let Some(m) = remote.recv().await {
                if m == n3::Message::GetAddr {
                    // flags 0, addr, one payload byte: zero addresses
                    assert!(remote.raw(&[0x00, 0x11, 0x01, 0x00]).await);
                    break;
                }
            }
            // Stays, and reads, until we hang up.
            remote.closes_within(Duration::from_secs(10)).await
        });
        let c = client::<N3, _, _>(rt, IgnoreAll);
        c.connect(at).await.unwrap();
        assert!(
            eventually(Duration::from_secs(5), || addr_received(&c)).await,
            "the empty addr reached the manager"
        );
        Timer::after(Duration::from_millis(100)).await;
        assert_eq!(c.len(), 1, "departed: {:?}", c.departed());
        assert!(!c.book().is_banned(at));
        assert_eq!(c.book().len(), 1, "nothing learned but the node itself");
        shut(&[&c]).await;
        assert!(remote.await, "we hung up at shutdown");
    });
}

#[test]
fn empty_addr_answer_is_fine_smol() {
    empty_addr_answer_is_fine(SmolRt);
}

#[test]
fn empty_addr_answer_is_fine_async_std() {
    empty_addr_answer_is_fine(AsyncStdRt);
}

// ---------------------------------------------------------------------------

/// The dialer fills the outbound slots from the book, backs off addresses
/// that refuse, and never dials a banned one.
fn dialer_fills_slots_from_the_book<R: Rt>(rt: R) {
    rt.block_on(async {
        let chain = n3_chain(10);
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(node(rt, chain.clone()).await);
        }
        // A port nobody listens on.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut config = manager_config(0);
        // More slots than good addresses: the dead one keeps being tried.
        config.target_outbound = 3;
        let c = PeerManager::<N3>::new(config, book::<N3>(), IgnoreAll, rt.ex()).unwrap();
        let b = c.book();
        for n in &nodes {
            b.add(n.addr, neo_peer::book::Source::Seed);
        }
        b.add(dead, neo_peer::book::Source::Seed);
        b.ban(nodes[2].addr, Duration::from_secs(60), "test");
        c.start_dialer();
        assert_eq!(c.wait_for_peers(2, Duration::from_secs(5)).await, 2);
        Timer::after(Duration::from_millis(200)).await;
        let dialed: Vec<SocketAddr> = c.peers().iter().filter_map(|p| p.addr).collect();
        assert_eq!(c.len(), 2, "{dialed:?}");
        assert!(dialed.contains(&nodes[0].addr) && dialed.contains(&nodes[1].addr));
        // The dead address is tried, fails, and waits longer each time.
        let rec = b.get(dead).unwrap();
        assert!(rec.failures >= 1, "{rec:?}");
        assert!(
            rec.failures <= 5,
            "no backoff: {} failures in 200 ms",
            rec.failures
        );
        assert!(b.get(nodes[2].addr).unwrap().last_attempt_ms.is_none());
        // A lost slot is filled again.
        c.remove(c.peers()[0].id);
        Timer::after(Duration::from_millis(50)).await;
        assert_eq!(c.wait_for_peers(2, Duration::from_secs(5)).await, 2);
        let mut all: Vec<&PeerManager<N3>> = nodes.iter().map(|n| &n.manager).collect();
        all.push(&c);
        shut(&all).await;
    });
}

#[test]
fn dialer_fills_slots_from_the_book_smol() {
    dialer_fills_slots_from_the_book(SmolRt);
}

#[test]
fn dialer_fills_slots_from_the_book_async_std() {
    dialer_fills_slots_from_the_book(AsyncStdRt);
}

// ---------------------------------------------------------------------------

/// Whole chains through the sync driver, from several peers at once, every
/// peer taking a share; the tip is the chain's.
fn parallel_sync<R: Rt>(rt: R) {
    rt.block_on(async {
        let n3c = n3_chain(9_000);
        let legc = legacy_chain(3_000);
        let mut n3_nodes = Vec::new();
        let mut legacy_nodes = Vec::new();
        for _ in 0..3 {
            n3_nodes.push(node(rt, n3c.clone()).await);
            legacy_nodes.push(node(rt, legc.clone()).await);
        }
        let c = PeerManager::new(syncing_config::<N3>(), book::<N3>(), IgnoreAll, rt.ex()).unwrap();
        let l = PeerManager::new(
            syncing_config::<Legacy>(),
            book::<Legacy>(),
            IgnoreAll,
            rt.ex(),
        )
        .unwrap();
        for n in &n3_nodes {
            c.connect(n.addr).await.unwrap();
        }
        for n in &legacy_nodes {
            l.connect(n.addr).await.unwrap();
        }
        let mut seen = 0u64;
        let mut reports = 0;
        let out = sync_n3(
            &c,
            0,
            &SyncOptions::default(),
            |h| seen += h.len() as u64,
            |_, _| reports += 1,
        )
        .await
        .unwrap();
        assert_eq!(out.count, 9_001);
        assert_eq!(seen, 9_001);
        assert!(reports >= 5);
        assert_eq!((out.tip_index, out.tip_hash), (9_000, n3c.tip_hash()));
        let shares: Vec<u64> = c.peers().iter().map(|p| p.served).collect();
        assert!(shares.iter().filter(|&&s| s > 0).count() >= 2, "{shares:?}");

        let out = sync_legacy(
            &l,
            legc.genesis_hash(),
            0,
            &SyncOptions::default(),
            |_| {},
            |_, _| {},
        )
        .await
        .unwrap_or_else(|e| {
            let peers: Vec<_> = l
                .peers()
                .iter()
                .map(|p| (p.info.height, p.in_flight, p.info.handshaked))
                .collect();
            panic!("{e}: {peers:?} {:?}", l.departed())
        });
        assert_eq!(out.count, 3_001);
        assert_eq!((out.tip_index, out.tip_hash), (3_000, legc.tip_hash()));
        // A target below the tip stops there.
        let out = sync_legacy(
            &l,
            legc.genesis_hash(),
            0,
            &SyncOptions {
                target: Some(1_234),
                ..SyncOptions::default()
            },
            |_| {},
            |_, _| {},
        )
        .await
        .unwrap();
        assert_eq!((out.count, out.tip_index), (1_235, 1_234));
        assert_eq!(out.tip_hash, legc.header(1_234).unwrap().hash());
        c.shutdown().await;
        l.shutdown().await;
        for n in &n3_nodes {
            n.manager.shutdown().await;
        }
        for n in &legacy_nodes {
            n.manager.shutdown().await;
        }
    });
}

#[test]
fn parallel_sync_smol() {
    parallel_sync(SmolRt);
}

#[test]
fn parallel_sync_async_std() {
    parallel_sync(AsyncStdRt);
}

// ---------------------------------------------------------------------------

/// A sync runs more ranges than its peers take at once: the ranges waiting
/// for a busy peer are asked again when it is free, however short the route
/// timeout (here none: every wait for a free peer fails at once).
fn sync_outlasts_the_route_timeout<R: Rt>(rt: R) {
    rt.block_on(async {
        let n3c = n3_chain(9_000);
        let legc = legacy_chain(3_000);
        let n3_node = node(rt, n3c.clone()).await;
        let legacy_node = node(rt, legc.clone()).await;
        let mut nc = syncing_config::<N3>();
        nc.route_timeout = Duration::ZERO;
        let c = PeerManager::new(nc, book::<N3>(), IgnoreAll, rt.ex()).unwrap();
        let mut lc = syncing_config::<Legacy>();
        lc.route_timeout = Duration::ZERO;
        let l = PeerManager::new(lc, book::<Legacy>(), IgnoreAll, rt.ex()).unwrap();
        c.connect(n3_node.addr).await.unwrap();
        l.connect(legacy_node.addr).await.unwrap();
        let options = SyncOptions::default();
        assert!(options.parallel > 1);
        let out = sync_n3(&c, 0, &options, |_| {}, |_, _| {}).await.unwrap();
        assert_eq!((out.count, out.tip_hash), (9_001, n3c.tip_hash()));
        let out = sync_legacy(&l, legc.genesis_hash(), 0, &options, |_| {}, |_, _| {})
            .await
            .unwrap();
        assert_eq!((out.count, out.tip_hash), (3_001, legc.tip_hash()));
        shut(&[&c, &n3_node.manager]).await;
        shut(&[&l, &legacy_node.manager]).await;
    });
}

#[test]
fn sync_outlasts_the_route_timeout_smol() {
    sync_outlasts_the_route_timeout(SmolRt);
}

#[test]
fn sync_outlasts_the_route_timeout_async_std() {
    sync_outlasts_the_route_timeout(AsyncStdRt);
}

// ---------------------------------------------------------------------------

/// `getaddr` sent by hand on a managed peer: its answers are answers, not
/// unsolicited gossip, however many times it is asked, and they reach the
/// book whether the caller waits for them or not.
fn request_addr_by_hand_is_no_misbehaviour<R: Rt>(rt: R) {
    rt.block_on(async {
        let server = node(rt, n3_chain(10)).await;
        let c = client::<N3, _, _>(rt, IgnoreAll);
        let peer = c.connect(server.addr).await.unwrap();
        // The manager's own `getaddr` holds the slot until it is answered.
        assert!(eventually(Duration::from_secs(5), || addr_settled(&c)).await);
        for _ in 0..5 {
            let answers = peer.request(<N3 as Protocol>::get_addr()).await.unwrap();
            assert_eq!(answers.len(), 1);
        }
        peer.send(<N3 as Protocol>::get_addr()).await.unwrap();
        // Every answer came (the server's statistics say so) ...
        let answered = || {
            server
                .manager
                .peers()
                .first()
                .is_some_and(|p| p.stats.get("addr").messages_out >= 7)
        };
        assert!(eventually(Duration::from_secs(5), answered).await);
        // ... and none cost the server anything.
        assert!(!c.book().is_banned(server.addr));
        assert_eq!(c.len(), 1, "{:?}", c.departed());
        assert_eq!(c.peers()[0].score, 0);
        shut(&[&c, &server.manager]).await;
    });
}

#[test]
fn request_addr_by_hand_is_no_misbehaviour_smol() {
    request_addr_by_hand_is_no_misbehaviour(SmolRt);
}

/// A node that claims the highest height there is but serves 101 headers:
/// the sync takes the 101, the lie costs the node points, nothing panics.
fn a_lying_height_does_not_derail_a_sync<R: Rt>(rt: R) {
    rt.block_on(async {
        let chain = n3_chain(100);
        let config = manager_config(u32::MAX);
        let liar = PeerManager::new(
            config,
            book::<N3>(),
            ChainServer::new(chain.clone()),
            rt.ex(),
        )
        .unwrap();
        let addr = liar.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let c = client::<N3, _, _>(rt, IgnoreAll);
        c.connect(addr).await.unwrap();
        assert_eq!(c.best_height(), u32::MAX);
        let outcome = sync_n3(&c, 0, &SyncOptions::default(), |_| {}, |_, _| {})
            .await
            .unwrap();
        assert_eq!(outcome.count, 101);
        assert_eq!(
            (outcome.tip_index, outcome.tip_hash),
            (100, chain.tip_hash())
        );
        assert_eq!(c.best_height(), 100, "the claim was corrected");
        let score = |c: &PeerManager<N3>| c.peers().first().map_or(0, |p| p.score);
        assert!(eventually(Duration::from_secs(5), || score(&c) > 0).await);
        shut(&[&c, &liar]).await;
    });
}

#[test]
fn a_lying_height_does_not_derail_a_sync_smol() {
    a_lying_height_does_not_derail_a_sync(SmolRt);
}

#[test]
fn a_book_for_another_network_is_refused() {
    let legacy_book = book::<Legacy>();
    let err =
        PeerManager::<N3>::new(manager_config(0), legacy_book, IgnoreAll, SmolRt.ex()).unwrap_err();
    assert!(
        matches!(
            err,
            ManagerError::BookMismatch {
                book: ("legacy", NET),
                manager: ("n3", NET)
            }
        ),
        "{err}"
    );
    let other_net = AddressBook::in_memory(BookConfig::new(N3::NAME, NET + 1));
    let err =
        PeerManager::<N3>::new(manager_config(0), other_net, IgnoreAll, SmolRt.ex()).unwrap_err();
    assert!(err.to_string().contains("network"), "{err}");
}

/// A request made on a managed peer takes one of its slots: routing sees
/// the peer busy, a second request of the kind is refused as busy, and the
/// slot comes back when the request ends.
fn a_managed_peer_keeps_the_books<R: Rt>(rt: R) {
    rt.block_on(async {
        let silent = silent_node::<N3, _>(rt, 1000).await;
        let mut config = manager_config::<N3>(0);
        // The silent node never answers: the request ends only when asked to.
        config.local.timeouts.stall = Duration::from_secs(600);
        config.route_timeout = Duration::from_millis(300);
        let c = PeerManager::new(config, book::<N3>(), IgnoreAll, rt.ex()).unwrap();
        let peer = c.connect(silent.addr).await.unwrap();
        assert_eq!(c.peer(peer.id()).map(|p| p.addr()), Some(Some(silent.addr)));
        let headers = <N3 as Protocol>::Message::GetHeaders(n3::GetBlockByIndexPayload {
            index_start: 0,
            count: 10,
        });
        // The manager's own `getaddr` to the new peer holds a slot until
        // answered: let it end, so the only request in flight is ours.
        assert!(eventually(Duration::from_secs(5), || addr_settled(&c)).await);
        let waiting = {
            let (peer, headers) = (peer.clone(), headers.clone());
            rt.spawn(async move { peer.request(headers).await })
        };
        let in_flight = || c.peers().first().is_some_and(|p| p.in_flight == 1);
        assert!(eventually(Duration::from_secs(5), in_flight).await);
        let busy = peer.request(headers.clone()).await.unwrap_err();
        assert!(
            matches!(
                busy,
                ManagerError::Busy {
                    kind: RequestKind::Headers,
                    in_flight: 1,
                    ..
                }
            ),
            "{busy}"
        );
        assert_eq!(peer.send(headers).await.unwrap_err(), busy);
        // Routing sees it too: no peer is free for headers.
        assert_eq!(
            c.get_headers(0, 10).await.unwrap_err(),
            ManagerError::NoAvailablePeers {
                kind: RequestKind::Headers,
                min_height: 0
            }
        );
        peer.disconnect();
        let ended = waiting.await.unwrap_err();
        assert_eq!(
            ended,
            ManagerError::Peer(neo_peer::peer::PeerError::Disconnected(
                DisconnectReason::Requested
            ))
        );
        assert!(eventually(Duration::from_secs(5), || c.is_empty()).await);
        // A handle outlives its peer: calls then say why it ended.
        assert_eq!(
            peer.ping().await.unwrap_err(),
            ManagerError::Peer(neo_peer::peer::PeerError::Disconnected(
                DisconnectReason::Requested
            ))
        );
        shut(&[&c, &silent.manager]).await;
    });
}

#[test]
fn a_managed_peer_keeps_the_books_smol() {
    a_managed_peer_keeps_the_books(SmolRt);
}

#[test]
fn a_managed_peer_keeps_the_books_async_std() {
    a_managed_peer_keeps_the_books(AsyncStdRt);
}
