//! The relay room over loopback TCP: managers in a line pass an item on
//! once, without echo, download an item announced twice once, and ask the
//! next announcer after a `notfound`; a relay that follows the chain
//! downloads each block once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use futures_lite::future;
use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{Chain, Serve, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::{ManagerConfig, PeerManager, RelayConfig, RelayStats, WeakManager};
use neo_peer::peer::{Handler, IgnoreAll, LocalConfig, Peer};
use neo_peer::protocol::{Legacy, N3, Protocol};
use neo_peer::relay::{Inventory, Item, ItemKind};
use neo_peer::wire::{legacy, n3};

const NET: u32 = 56753;
/// Generous: the machine may be loaded.
const WAIT: Duration = Duration::from_secs(20);

fn book<P: Protocol>() -> AddressBook {
    AddressBook::in_memory(BookConfig {
        protocol: P::NAME,
        network: NET,
        ..BookConfig::default()
    })
}

fn config<P: Protocol>() -> ManagerConfig<P> {
    let mut local = LocalConfig::new(NET);
    local.timeouts.handshake = Duration::from_secs(10);
    local.timeouts.stall = Duration::from_secs(20);
    let mut c = ManagerConfig::new(local);
    c.max_per_ip = 100;
    c.shutdown_grace = Duration::from_secs(5);
    c
}

/// A transaction item of each generation.
trait TestItem: Inventory {
    fn tx(seed: u64) -> Item<Self>;
}

fn synthetic(seed: u64) -> Synthetic {
    Synthetic {
        blocks: 2,
        txs_per_block: 1,
        seed,
        with_bodies: true,
    }
}

impl TestItem for N3 {
    fn tx(seed: u64) -> Item<N3> {
        let chain = Chain::<N3>::synthetic(&synthetic(seed));
        let tx = chain.block(1).unwrap().transactions[0].clone();
        N3::item(&n3::Message::Transaction(tx)).unwrap()
    }
}

impl TestItem for Legacy {
    fn tx(seed: u64) -> Item<Legacy> {
        let chain = Chain::<Legacy>::synthetic(&synthetic(seed));
        let tx = chain.block(1).unwrap().transactions.last().unwrap().clone();
        Legacy::item(&legacy::Message::Tx(Box::new(tx))).unwrap()
    }
}

/// An item as a relaying node received it: from which peer, and what.
type Got<P> = (u64, Option<SocketAddr>, Item<P>);

/// A manager that relays every item it receives, and reports each.
fn relaying<P: Inventory, H: Handler<P>>(handler: H) -> (PeerManager<P>, Receiver<Got<P>>) {
    relaying_with(handler, RelayConfig::default())
}

fn relaying_with<P: Inventory, H: Handler<P>>(
    handler: H,
    relay_config: RelayConfig,
) -> (PeerManager<P>, Receiver<Got<P>>) {
    let manager = PeerManager::<P>::new(config(), book::<P>(), handler, SmolGlobal).unwrap();
    let (tx, rx): (Sender<Got<P>>, _) = async_channel::unbounded();
    let relay = manager.clone();
    manager
        .start_relay(relay_config, None, move |from, item| {
            let _ = tx.try_send((from.id(), from.remote_addr(), item.clone()));
            relay.relay(item);
        })
        .unwrap();
    (manager, rx)
}

async fn listening<P: Protocol>(m: &PeerManager<P>) -> SocketAddr {
    m.listen("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    future::or(async { Some(f.await) }, async {
        async_io::Timer::after(WAIT).await;
        None
    })
    .await
    .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Waits until `m`'s relay counters satisfy `ok`.
async fn until<P: Protocol>(what: &str, m: &PeerManager<P>, ok: impl Fn(&RelayStats) -> bool) {
    within(what, async {
        while !ok(&m.relay_stats().unwrap()) {
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// A–B–C: an item relayed by A reaches C once, through B, and comes back
/// to no one.
async fn line<P: TestItem>() {
    let (a, a_got) = relaying::<P, _>(IgnoreAll);
    let (b, b_got) = relaying::<P, _>(IgnoreAll);
    let (c, c_got) = relaying::<P, _>(IgnoreAll);
    let b_addr = listening(&b).await;
    let to_b = a.connect(b_addr).await.unwrap();
    c.connect(b_addr).await.unwrap();
    assert_eq!(b.wait_for_peers(2, WAIT).await, 2);

    let item = P::tx(1);
    assert_eq!(a.relay(item.clone()), 1, "announced to B");
    let (_, from, got) = within("B's item", b_got.recv()).await.unwrap();
    assert_eq!(got.hash, item.hash);
    assert_eq!(got.kind, ItemKind::Transaction);
    assert_eq!(from.map(|f| f.ip()), Some(to_b.remote_addr().unwrap().ip()));
    let (_, _, got) = within("C's item", c_got.recv()).await.unwrap();
    assert_eq!(got.hash, item.hash);
    until("C's relay", &c, |s| s.relayed == 1).await;

    let (sa, sb, sc) = (
        a.relay_stats().unwrap(),
        b.relay_stats().unwrap(),
        c.relay_stats().unwrap(),
    );
    assert_eq!((sa.announced, sa.served, sa.received), (1, 1, 0));
    assert_eq!(
        (sb.received, sb.announced, sb.served),
        (1, 1, 1),
        "B: to C only"
    );
    assert_eq!((sc.received, sc.announced), (1, 0), "C: back to no one");
    assert_eq!(sb.requested + sc.requested, 2, "one download each");
    assert!(a_got.is_empty() && b_got.is_empty() && c_got.is_empty());
    assert_eq!(a.relay(item), 0, "B knows it");
    for m in [a, b, c] {
        m.shutdown().await;
    }
}

#[test]
fn an_item_goes_down_a_line_once_n3() {
    smol::block_on(line::<N3>());
}

#[test]
fn an_item_goes_down_a_line_once_legacy() {
    smol::block_on(line::<Legacy>());
}

/// Two peers announce the same item: it is downloaded once.
async fn announced_twice<P: TestItem>() {
    // The hub keeps what it gets: were it to pass the item on to s2 before
    // s2 announces it, s2 would have nothing to announce.
    let hub = PeerManager::<P>::new(config(), book::<P>(), IgnoreAll, SmolGlobal).unwrap();
    let (tx, hub_got) = async_channel::unbounded();
    // No early retry: on a loaded machine the first answer could be late,
    // and the second announcer asked too.
    let mut relay_config = RelayConfig::default();
    relay_config.tracker.retry_rtts = 0;
    hub.start_relay(relay_config, None, move |_, item| {
        let _ = tx.try_send(item);
    })
    .unwrap();
    let (s1, _) = relaying::<P, _>(IgnoreAll);
    let (s2, _) = relaying::<P, _>(IgnoreAll);
    let addr = listening(&hub).await;
    s1.connect(addr).await.unwrap();
    s2.connect(addr).await.unwrap();
    assert_eq!(hub.wait_for_peers(2, WAIT).await, 2);
    let item = P::tx(2);
    assert_eq!(s1.relay(item.clone()), 1);
    assert_eq!(s2.relay(item.clone()), 1);
    within("the hub's item", hub_got.recv()).await.unwrap();
    // Both announcements processed: one downloaded, the other avoided.
    until("the second announcement", &hub, |s| {
        s.duplicates_avoided >= 1
    })
    .await;
    let s = hub.relay_stats().unwrap();
    assert_eq!((s.received, s.requested, s.duplicates), (1, 1, 0));
    assert_eq!(s.requested_by_kind.get(ItemKind::Transaction), 1);
    assert_eq!(s.requested_by_kind.total(), 1);
    let served = s1.relay_stats().unwrap().served + s2.relay_stats().unwrap().served;
    assert_eq!(served, 1, "asked of one of them only");
    for m in [hub, s1, s2] {
        m.shutdown().await;
    }
}

#[test]
fn an_item_announced_twice_is_downloaded_once_n3() {
    smol::block_on(announced_twice::<N3>());
}

#[test]
fn an_item_announced_twice_is_downloaded_once_legacy() {
    smol::block_on(announced_twice::<Legacy>());
}

/// Hands each `getdata` it receives to a channel.
#[derive(Clone)]
struct Asked(Sender<n3::InvPayload>);

impl Handler<N3> for Asked {
    async fn handle(&self, _peer: &Peer<N3>, msg: n3::Message) {
        if let n3::Message::GetData(p) = msg {
            let _ = self.0.try_send(p);
        }
    }
}

/// A hub relaying with `relay_config`, and two peers of it: the first
/// relays nothing (the test speaks for it through `first_link`, and `asked`
/// gets the `getdata`s it receives), the second relays.
struct TwoAnnouncers {
    hub: PeerManager<N3>,
    hub_got: Receiver<Got<N3>>,
    first: PeerManager<N3>,
    first_link: neo_peer::manager::ManagedPeer<N3>,
    asked: Receiver<n3::InvPayload>,
    second: PeerManager<N3>,
}

impl TwoAnnouncers {
    async fn new(relay_config: RelayConfig) -> Self {
        let (hub, hub_got) = relaying_with::<N3, _>(IgnoreAll, relay_config);
        let addr = listening(&hub).await;
        let (asked_tx, asked) = async_channel::unbounded();
        let first =
            PeerManager::<N3>::new(config(), book::<N3>(), Asked(asked_tx), SmolGlobal).unwrap();
        let first_link = first.connect(addr).await.unwrap();
        let (second, _) = relaying::<N3, _>(IgnoreAll);
        second.connect(addr).await.unwrap();
        assert_eq!(hub.wait_for_peers(2, WAIT).await, 2);
        TwoAnnouncers {
            hub,
            hub_got,
            first,
            first_link,
            asked,
            second,
        }
    }

    /// The first announces `item`, and the hub asks it for the item.
    async fn first_announces(&self, item: &Item<N3>) {
        let inv = N3::inv(ItemKind::Transaction, &[item.hash]).unwrap();
        self.first_link.send(inv).await.unwrap();
        let ask = within("the hub's getdata", self.asked.recv())
            .await
            .unwrap();
        assert_eq!(ask.hashes, vec![item.hash]);
    }

    /// The item the hub receives: from the second, which its handler knows.
    async fn hub_gets_it_from_the_second(&self, item: &Item<N3>) {
        let (from_id, from, got) = within("the item", self.hub_got.recv()).await.unwrap();
        assert_eq!(got.hash, item.hash);
        let sender = self.hub.peer(from_id).expect("a live peer of the hub");
        assert_eq!(sender.remote_addr(), from);
        assert_eq!(
            sender.info().nonce,
            Some(self.second.config().local.identity.nonce)
        );
    }

    async fn shutdown(self) {
        for m in [self.hub, self.first, self.second] {
            m.shutdown().await;
        }
    }
}

/// The first announcer answers `notfound`: the item is asked of the next.
#[test]
fn notfound_moves_to_the_next_announcer() {
    smol::block_on(async {
        // No early retry: the next announcer waits for the `notfound`.
        let mut relay_config = RelayConfig::default();
        relay_config.tracker.retry_rtts = 0;
        let t = TwoAnnouncers::new(relay_config).await;
        let item = N3::tx(3);
        t.first_announces(&item).await;
        assert_eq!(t.second.relay(item.clone()), 1);
        until("the second announcement", &t.hub, |s| {
            s.duplicates_avoided >= 1
        })
        .await;
        assert_eq!(t.hub.relay_stats().unwrap().received, 0, "not yet");

        let nf = N3::not_found(ItemKind::Transaction, &[item.hash]).unwrap();
        t.first_link.send(nf).await.unwrap();
        t.hub_gets_it_from_the_second(&item).await;
        let s = t.hub.relay_stats().unwrap();
        assert_eq!((s.received, s.requested), (1, 2));
        assert!(t.asked.is_empty(), "the first announcer is not asked twice");
        t.shutdown().await;
    });
}

/// An announcement flood costs the flooder points, and nothing is asked
/// past the bound.
#[test]
fn an_announcement_flood_costs_points() {
    smol::block_on(async {
        let mut relay_config = RelayConfig::default();
        relay_config.tracker.max_announced_per_peer = 3;
        relay_config.flood_spacing = Duration::from_secs(3600);
        let (hub, _) = relaying_with::<N3, _>(IgnoreAll, relay_config);
        let addr = listening(&hub).await;
        let (asked_tx, asked) = async_channel::unbounded();
        let flooder =
            PeerManager::<N3>::new(config(), book::<N3>(), Asked(asked_tx), SmolGlobal).unwrap();
        let link = flooder.connect(addr).await.unwrap();
        assert_eq!(hub.wait_for_peers(1, WAIT).await, 1);
        let hashes: Vec<_> = (0..5u8).map(|i| neo_peer::wire::UInt256([i; 32])).collect();
        link.send(N3::inv(ItemKind::Transaction, &hashes).unwrap())
            .await
            .unwrap();
        until("the flood", &hub, |s| s.floods == 2).await;
        let ask = within("the hub's getdata", asked.recv()).await.unwrap();
        assert_eq!(
            ask.hashes,
            hashes[..3].to_vec(),
            "only what the bound allows"
        );
        // The points are given just after the counters move.
        within("the points", async {
            while hub.peers()[0].score != neo_peer::manager::FLOOD_POINTS {
                async_io::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        // Another flood soon after is dropped too, and costs nothing more
        // (points at most once per spacing: an hour here).
        let more: Vec<_> = (5..8u8).map(|i| neo_peer::wire::UInt256([i; 32])).collect();
        link.send(N3::inv(ItemKind::Transaction, &more).unwrap())
            .await
            .unwrap();
        until("the second flood", &hub, |s| s.floods == 5).await;
        // A ping after it: once answered, the inv before it was handled.
        link.ping().await.unwrap();
        assert_eq!(hub.peers()[0].score, neo_peer::manager::FLOOD_POINTS);
        for m in [hub, flooder] {
            m.shutdown().await;
        }
    });
}

/// Tells who called it: the managed peer, through the manager.
struct Who(
    WeakManager<N3>,
    Sender<(u64, Option<SocketAddr>, Option<SocketAddr>)>,
);

impl Handler<N3> for Who {
    async fn handle(&self, peer: &Peer<N3>, msg: n3::Message) {
        // The test's `inv` only: other traffic (a `getaddr`, say) may come
        // first from either side.
        if N3::announced(&msg).is_none() {
            return;
        }
        let managed = self.0.peer(peer).expect("a registered peer");
        assert_eq!(managed.id(), peer.id());
        let _ = self
            .1
            .try_send((managed.id(), managed.addr(), managed.remote_addr()));
    }
}

/// A handler knows which managed peer called it, inbound or outbound.
#[test]
fn a_handler_knows_its_managed_peer() {
    smol::block_on(async {
        let (tx, rx) = async_channel::unbounded();
        let make = |tx: Sender<_>| move |weak| Who(weak, tx);
        let a =
            PeerManager::<N3>::with_handler(config(), book::<N3>(), make(tx.clone()), SmolGlobal)
                .unwrap();
        let b =
            PeerManager::<N3>::with_handler(config(), book::<N3>(), make(tx), SmolGlobal).unwrap();
        let b_addr = listening(&b).await;
        let a_to_b = a.connect(b_addr).await.unwrap();
        assert_eq!(b.wait_for_peers(1, WAIT).await, 1);
        let b_to_a = b.peers()[0].peer.clone();
        let inv = N3::inv(ItemKind::Transaction, &[neo_peer::wire::UInt256([9; 32])]).unwrap();
        a_to_b.send(inv.clone()).await.unwrap();
        let (id, addr, remote) = within("B's handler", rx.recv()).await.unwrap();
        assert_eq!(
            (id, addr, remote),
            (b_to_a.id(), b_to_a.addr(), b_to_a.remote_addr())
        );
        assert!(remote.is_some(), "an inbound peer's address is known");
        b_to_a.send(inv).await.unwrap();
        let (id, addr, _) = within("A's handler", rx.recv()).await.unwrap();
        assert_eq!((id, addr), (a_to_b.id(), Some(b_addr)));
        for m in [a, b] {
            m.shutdown().await;
        }
    });
}

/// The first announcer never answers: at the deadline the item is asked of
/// the next.
#[test]
fn a_silent_announcer_is_passed_over_at_the_deadline() {
    smol::block_on(async {
        let mut relay_config = RelayConfig::default();
        relay_config.tracker.request_timeout = Duration::from_millis(300);
        relay_config.tracker.retry_rtts = 0;
        let t = TwoAnnouncers::new(relay_config).await;
        let item = N3::tx(4);
        t.first_announces(&item).await;
        assert_eq!(t.second.relay(item.clone()), 1);
        t.hub_gets_it_from_the_second(&item).await;
        let s = t.hub.relay_stats().unwrap();
        assert_eq!((s.received, s.requested, s.timeouts), (1, 2, 1));
        t.shutdown().await;
    });
}

/// The first announcer never answers: long before the deadline, once the
/// request is late by its retry delay, the item is asked of the next too.
#[test]
fn a_silent_announcer_is_raced_by_the_next_long_before_the_deadline() {
    smol::block_on(async {
        let mut relay_config = RelayConfig::default();
        // A deadline no run reaches: what delivers the item is the early
        // retry (after at most a second, the retry delay of a peer whose
        // round trip is unknown).
        relay_config.tracker.request_timeout = Duration::from_secs(600);
        let t = TwoAnnouncers::new(relay_config).await;
        let item = N3::tx(5);
        t.first_announces(&item).await;
        assert_eq!(t.second.relay(item.clone()), 1);
        t.hub_gets_it_from_the_second(&item).await;
        let s = t.hub.relay_stats().unwrap();
        assert_eq!(
            (s.received, s.requested, s.retries, s.timeouts),
            (1, 2, 1, 0)
        );
        assert!(t.asked.is_empty(), "the silent peer is not asked twice");
        t.shutdown().await;
    });
}

/// Hands the hashes of each `inv` it receives to a channel.
struct Invs(Sender<Vec<neo_peer::wire::UInt256>>);

impl Handler<N3> for Invs {
    async fn handle(&self, _peer: &Peer<N3>, msg: n3::Message) {
        if let Some((ItemKind::Transaction, hashes)) = N3::announced(&msg) {
            let _ = self.0.try_send(hashes.to_vec());
        }
    }
}

/// Transaction items told apart by their hash only (what an `inv` carries).
fn numbered(n: u32) -> Item<N3> {
    let mut item = N3::tx(1);
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&n.to_le_bytes());
    item.hash = neo_peer::wire::UInt256(hash);
    item
}

/// With batching, a peer gets the relay's transactions as one `inv` per
/// full batch, and the rest when the first has waited the delay.
#[test]
fn batched_announcements_go_as_one_inv_per_batch() {
    smol::block_on(async {
        for (delay, count) in [
            (Duration::from_secs(3600), 500),
            (Duration::from_millis(50), 3),
        ] {
            let relay_config = RelayConfig {
                batch: Some(delay),
                ..RelayConfig::default()
            };
            let (hub, _) = relaying_with::<N3, _>(IgnoreAll, relay_config);
            let addr = listening(&hub).await;
            let (tx, invs) = async_channel::unbounded();
            let b = PeerManager::<N3>::new(config(), book::<N3>(), Invs(tx), SmolGlobal).unwrap();
            b.connect(addr).await.unwrap();
            assert_eq!(hub.wait_for_peers(1, WAIT).await, 1);
            for n in 0..count {
                assert_eq!(hub.relay(numbered(n)), 1, "queued for B");
            }
            let (mut got, mut messages) = (Vec::new(), 0);
            while got.len() < count as usize {
                got.extend(within("B's inv", invs.recv()).await.unwrap());
                messages += 1;
            }
            if count == 500 {
                assert_eq!(messages, 1, "one inv");
            }
            let expected: Vec<_> = (0..count).map(|n| numbered(n).hash).collect();
            assert_eq!(got, expected, "each once, in order");
            if count == 500 {
                // A full batch goes at once, the hour's delay notwithstanding.
                assert_eq!(hub.relay_stats().unwrap().announced, 500);
            }
            until("the count", &hub, |s| s.announced == u64::from(count)).await;
            for m in [hub, b] {
                m.shutdown().await;
            }
        }
    });
}

/// A `getdata` longer than the asker's queue has room for is answered only
/// as far as that room goes.
#[test]
fn a_long_getdata_is_answered_as_far_as_the_queue_allows() {
    smol::block_on(async {
        let relay_config = RelayConfig {
            outbox: 4,
            ..RelayConfig::default()
        };
        let (hub, _) = relaying_with::<N3, _>(IgnoreAll, relay_config);
        let addr = listening(&hub).await;
        let asker = PeerManager::<N3>::new(config(), book::<N3>(), IgnoreAll, SmolGlobal).unwrap();
        let link = asker.connect(addr).await.unwrap();
        let hashes: Vec<_> = (0..10u8)
            .map(|i| neo_peer::wire::UInt256([i; 32]))
            .collect();
        link.send(N3::get_data(ItemKind::Transaction, &hashes).unwrap())
            .await
            .unwrap();
        until("the answer", &hub, |s| s.not_found + s.dropped == 10).await;
        let s = hub.relay_stats().unwrap();
        assert_eq!((s.not_found, s.dropped), (4, 6));
        for m in [hub, asker] {
            m.shutdown().await;
        }
    });
}

/// Serves a chain and counts the blocks it sends.
struct CountingServer {
    chain: std::sync::Arc<Chain<N3>>,
    blocks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Handler<N3> for CountingServer {
    async fn handle(&self, peer: &Peer<N3>, msg: n3::Message) {
        for answer in N3::answer(self.chain.as_ref(), &msg) {
            if matches!(answer, n3::Message::Block(_)) {
                self.blocks
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            if peer.send(answer).await.is_err() {
                return;
            }
        }
    }
}

/// U–R–D, R a relay that follows the chain: each block U announces is
/// downloaded once (by R's follower; R's relay room asks for none), and R
/// announces each block it appends to D, which downloads it once from R.
/// Nothing goes to any peer twice.
#[test]
fn a_following_relay_downloads_each_block_once() {
    use neo_peer::manager::{FollowEvent, Follower};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    smol::block_on(async {
        const TOP: u32 = 6;
        let source = Chain::<N3>::synthetic(&Synthetic {
            blocks: TOP,
            txs_per_block: 1,
            seed: 9,
            with_bodies: true,
        });
        let block = |i: u32| source.block(i).unwrap().clone();
        // U holds blocks up to 2, then makes the rest one at a time.
        let upstream = Arc::new(Chain::<N3>::from_genesis_block(block(0)).unwrap());
        for i in 1..=2 {
            upstream.push_block(block(i)).unwrap();
        }
        let served = Arc::new(AtomicUsize::new(0));
        let mut u_config = config::<N3>();
        let height = upstream.clone();
        u_config.local.identity.current_height = Arc::new(move || height.height());
        let server = CountingServer {
            chain: upstream.clone(),
            blocks: served.clone(),
        };
        let u = PeerManager::<N3>::new(u_config, book::<N3>(), server, SmolGlobal).unwrap();
        let u_addr = listening(&u).await;

        // R: its relay room leaves blocks to its follower, and relays what
        // the follower appends.
        let chain = Arc::new(Chain::<N3>::from_genesis_block(block(0)).unwrap());
        let mut r_config = config::<N3>();
        let height = chain.clone();
        r_config.local.identity.current_height = Arc::new(move || height.height());
        let r = PeerManager::<N3>::new(r_config, book::<N3>(), IgnoreAll, SmolGlobal).unwrap();
        let relay_config = RelayConfig {
            blocks_by_follower: true,
            ..RelayConfig::default()
        };
        let store: Arc<dyn neo_peer::chain::ChainStore<N3>> = chain.clone();
        let relay = r.clone();
        r.start_relay(relay_config, Some(store), move |_, item| {
            relay.relay(item);
        })
        .unwrap();
        let follower = Arc::new(Follower::new(r.clone(), chain.clone()));
        let events = follower.subscribe();
        let running = follower.clone();
        let following = smol::spawn(async move { running.run().await });
        let appended = follower.clone();
        let relay = r.clone();
        let relayer = smol::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let FollowEvent::Block { index, .. } = event {
                    let block = appended.block(index).unwrap();
                    relay.relay(N3::item(&n3::Message::Block(block)).unwrap());
                }
            }
        });
        let r_addr = listening(&r).await;
        let (d, d_got) = relaying::<N3, _>(IgnoreAll);
        d.connect(r_addr).await.unwrap();
        r.connect(u_addr).await.unwrap();
        assert_eq!(r.wait_for_peers(2, WAIT).await, 2);

        let reached = |h: u32| {
            let chain = chain.clone();
            async move {
                while chain.block_height() < Some(h) {
                    async_io::Timer::after(Duration::from_millis(5)).await;
                }
            }
        };
        within("R syncs", reached(2)).await;
        for i in 3..=TOP {
            upstream.push_block(block(i)).unwrap();
            let hash = upstream.hash(i).unwrap();
            for s in u.peers() {
                let inv = N3::inv(ItemKind::Block, &[hash]).unwrap();
                s.peer.send(inv).await.unwrap();
            }
            within("R follows", reached(i)).await;
        }
        // D gets every block R appended, each once.
        let mut got = Vec::new();
        while got.len() < TOP as usize {
            let (_, _, item) = within("D's blocks", d_got.recv()).await.unwrap();
            assert_eq!(item.kind, ItemKind::Block);
            got.push(item.height.unwrap());
        }
        got.sort();
        assert_eq!(got, (1..=TOP).collect::<Vec<_>>());

        assert_eq!(
            served.load(Ordering::SeqCst),
            TOP as usize,
            "each block downloaded from U once"
        );
        let rs = r.relay_stats().unwrap();
        assert_eq!(rs.requested, 0, "R's relay room asked for no block");
        assert_eq!(rs.resent, 0, "nothing went to a peer twice");
        assert_eq!(rs.announced, u64::from(TOP), "each block announced to D");
        let ds = d.relay_stats().unwrap();
        assert_eq!((ds.received, ds.duplicates), (u64::from(TOP), 0));
        assert_eq!(rs.served, u64::from(TOP), "D downloaded each block once");

        follower.stop();
        following.await.unwrap();
        for m in [u, r, d] {
            m.shutdown().await;
        }
        drop(relayer);
    });
}

/// U–R, R a relay that follows the chain: a block U sends unasked is taken
/// by R's follower when it is the next height R needs, and appended without
/// being fetched; a block it holds is left.
#[test]
fn a_block_sent_unasked_is_handed_to_the_follower() {
    use neo_peer::manager::{FollowEvent, Follower};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    smol::block_on(async {
        let source = Chain::<N3>::synthetic(&Synthetic {
            blocks: 5,
            txs_per_block: 1,
            seed: 11,
            with_bodies: true,
        });
        let block = |i: u32| source.block(i).unwrap().clone();
        // U serves blocks up to 2 and says so: R's follower never asks it
        // for more.
        let upstream = Arc::new(Chain::<N3>::from_genesis_block(block(0)).unwrap());
        for i in 1..=2 {
            upstream.push_block(block(i)).unwrap();
        }
        let served = Arc::new(AtomicUsize::new(0));
        let mut u_config = config::<N3>();
        let height = upstream.clone();
        u_config.local.identity.current_height = Arc::new(move || height.height());
        let server = CountingServer {
            chain: upstream.clone(),
            blocks: served.clone(),
        };
        let u = PeerManager::<N3>::new(u_config, book::<N3>(), server, SmolGlobal).unwrap();

        let chain = Arc::new(Chain::<N3>::from_genesis_block(block(0)).unwrap());
        let r = PeerManager::<N3>::new(config(), book::<N3>(), IgnoreAll, SmolGlobal).unwrap();
        let relay_config = RelayConfig {
            blocks_by_follower: true,
            ..RelayConfig::default()
        };
        let store: Arc<dyn neo_peer::chain::ChainStore<N3>> = chain.clone();
        let (hook_tx, hook) = async_channel::unbounded();
        r.start_relay(relay_config, Some(store), move |_, item| {
            let _ = hook_tx.try_send(item.height);
        })
        .unwrap();
        let follower = Arc::new(Follower::new(r.clone(), chain.clone()));
        let events = follower.subscribe();
        let running = follower.clone();
        let following = smol::spawn(async move { running.run().await });
        let to_r = u.connect(listening(&r).await).await.unwrap();
        assert_eq!(r.wait_for_peers(1, WAIT).await, 1);
        let appended = |want: u32| {
            let events = events.clone();
            async move {
                loop {
                    if let FollowEvent::Block { index, .. } = events.recv().await.unwrap() {
                        if index == want {
                            return;
                        }
                    }
                }
            }
        };
        within("R syncs to 2", appended(2)).await;
        assert_eq!(served.load(Ordering::SeqCst), 2);

        // 1 is held already: left (and no fault). 3 is the next height:
        // taken; then 4.
        for i in [1, 3] {
            to_r.send(n3::Message::Block(block(i))).await.unwrap();
        }
        within("3 appended", appended(3)).await;
        to_r.send(n3::Message::Block(block(4))).await.unwrap();
        within("4 appended", appended(4)).await;
        assert_eq!(served.load(Ordering::SeqCst), 2, "3 and 4 were not fetched");
        assert_eq!(r.len(), 1, "U was not dropped");
        // The hook got each block the first time it came.
        let mut heights = Vec::new();
        while heights.len() < 3 {
            heights.push(within("the hook", hook.recv()).await.unwrap());
        }
        assert_eq!(heights, vec![Some(1), Some(3), Some(4)]);
        let rs = r.relay_stats().unwrap();
        assert_eq!((rs.requested, rs.received, rs.duplicates), (0, 3, 0));

        follower.stop();
        following.await.unwrap();
        for m in [u, r] {
            m.shutdown().await;
        }
    });
}

/// An item asked for twice by the same peer is sent twice, and the relay's
/// statistics say so (`resent`); asked once, it is not.
#[test]
fn an_item_sent_to_a_peer_twice_is_counted() {
    smol::block_on(async {
        let (hub, _) = relaying::<N3, _>(IgnoreAll);
        let addr = listening(&hub).await;
        let asker = PeerManager::<N3>::new(config(), book::<N3>(), IgnoreAll, SmolGlobal).unwrap();
        let link = asker.connect(addr).await.unwrap();
        assert_eq!(hub.wait_for_peers(1, WAIT).await, 1);
        let item = N3::tx(4);
        hub.relay(item.clone());
        let ask = N3::get_data(ItemKind::Transaction, &[item.hash]).unwrap();
        // Each answer is awaited: the second request is sent once the
        // first is answered.
        for (served, resent) in [(1, 0), (2, 1)] {
            let answers = within("the answer", link.request(ask.clone())).await;
            let got = answers.unwrap().iter().filter_map(N3::item).count();
            assert_eq!(got, 1, "the transaction");
            let s = hub.relay_stats().unwrap();
            assert_eq!((s.served, s.resent), (served, resent));
        }
        for m in [hub, asker] {
            m.shutdown().await;
        }
    });
}

/// `count` transactions of some 60 KB each, `N3::tx(seed)` with nonces
/// `0..count` and a large script, relayed by `hub`; their hashes.
fn relay_large_txs(hub: &PeerManager<N3>, seed: u64, count: u32) -> Vec<neo_peer::wire::UInt256> {
    let tx = match N3::tx(seed).message {
        n3::Message::Transaction(tx) => tx,
        other => panic!("{other:?}"),
    };
    let mut hashes = Vec::new();
    for i in 0..count {
        let mut tx = tx.clone();
        tx.nonce = i;
        tx.script = vec![0x40; 60_000].into();
        let item = N3::item(&n3::Message::Transaction(tx)).unwrap();
        hashes.push(item.hash);
        hub.relay(item);
    }
    hashes
}

/// One N3 message as the bytes a peer sends for it.
fn frame(codec: &n3::Codec, m: &n3::Message) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    N3::encode(codec, m, &mut out).unwrap();
    out.to_vec()
}

/// A raw N3 peer connected to `addr`, past the handshake: its version
/// sent, the other side's version and verack read, its verack sent. Its
/// connection (nothing more is read from it) and its codec.
async fn raw_peer(addr: SocketAddr) -> (async_io::Async<std::net::TcpStream>, n3::Codec) {
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
    use neo_peer::protocol::Role;
    let mut conn = async_io::Async::<std::net::TcpStream>::connect(addr)
        .await
        .unwrap();
    let mut codec = N3::codec(NET);
    let mut local = LocalConfig::<N3>::new(NET);
    local.identity.nonce = 0x0BAD;
    conn.write_all(&frame(&codec, &N3::version(&local.identity)))
        .await
        .unwrap();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0;
    while seen < 2 {
        match N3::decode(&mut codec, &mut buf).unwrap() {
            Some(d) => {
                if matches!(N3::role(&d.message), Role::Version(_) | Role::Verack) {
                    seen += 1;
                }
            }
            None => {
                let mut chunk = [0u8; 4096];
                let n = conn.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed during the handshake");
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    conn.write_all(&frame(&codec, &N3::verack())).await.unwrap();
    (conn, codec)
}

/// A peer that asks for the same item again and again and reads nothing
/// gets no second copy of it queued while the first waits: its queue holds
/// the item once, not once per request.
#[test]
fn an_item_asked_again_while_it_waits_for_the_asker_is_not_queued_twice() {
    use futures_lite::io::AsyncWriteExt;
    smol::block_on(async {
        let (hub, _) = relaying::<N3, _>(IgnoreAll);
        let addr = listening(&hub).await;
        // A transaction of some 60 KB: a few fill the socket's buffers.
        let mut tx = match N3::tx(5).message {
            n3::Message::Transaction(tx) => tx,
            other => panic!("{other:?}"),
        };
        tx.script = vec![0x40; 60_000].into();
        let item = N3::item(&n3::Message::Transaction(tx)).unwrap();
        hub.relay(item.clone());
        // A raw peer: the handshake, then requests only, never a read.
        let (mut conn, codec) = raw_peer(addr).await;
        let ask = frame(
            &codec,
            &N3::get_data(ItemKind::Transaction, &[item.hash]).unwrap(),
        );
        let asks: Vec<u8> = std::iter::repeat_n(ask, 4000).flatten().collect();
        conn.write_all(&asks).await.unwrap();
        // Then an unknown hash: its `notfound` says every request before it
        // was handled.
        let unknown = neo_peer::wire::UInt256([0xab; 32]);
        conn.write_all(&frame(
            &codec,
            &N3::get_data(ItemKind::Transaction, &[unknown]).unwrap(),
        ))
        .await
        .unwrap();
        until("the last request handled", &hub, |s| s.not_found == 1).await;
        let s = hub.relay_stats().unwrap();
        assert_eq!(s.dropped, 0, "{s:?}");
        assert!(s.served < 1000, "{s:?}");
        drop(conn);
        hub.shutdown().await;
    });
}

/// A peer that asks for many large items and reads nothing makes the relay
/// hold at most its outbox's bytes for it: past them, answers are dropped.
#[test]
fn a_peer_that_does_not_read_is_queued_no_more_than_its_outbox_bytes() {
    use futures_lite::io::AsyncWriteExt;
    smol::block_on(async {
        let relay_config = RelayConfig {
            outbox_bytes: 1 << 20,
            ..RelayConfig::default()
        };
        let (hub, _) = relaying_with::<N3, _>(IgnoreAll, relay_config);
        let addr = listening(&hub).await;
        // 600 transactions of some 60 KB: 36 MB, far more than the
        // socket's buffers and the outbox's bytes hold.
        let hashes = relay_large_txs(&hub, 5, 600);
        let (mut conn, codec) = raw_peer(addr).await;
        for hash in &hashes {
            let ask = N3::get_data(ItemKind::Transaction, &[*hash]).unwrap();
            conn.write_all(&frame(&codec, &ask)).await.unwrap();
        }
        until("every request handled", &hub, |s| {
            s.served + s.dropped == 600
        })
        .await;
        let s = hub.relay_stats().unwrap();
        assert!(s.dropped > 0, "{s:?}");
        drop(conn);
        hub.shutdown().await;
    });
}

/// A chain that counts the blocks read from it.
struct CountingStore {
    chain: Chain<N3>,
    reads: std::sync::atomic::AtomicUsize,
}

impl neo_peer::chain::ChainStore<N3> for CountingStore {
    fn tip(&self) -> (u32, neo_peer::wire::UInt256) {
        self.chain.tip()
    }
    fn block_height(&self) -> Option<u32> {
        self.chain.block_height()
    }
    fn hash(&self, index: u32) -> Option<neo_peer::wire::UInt256> {
        self.chain.hash(index)
    }
    fn index_of(&self, hash: &neo_peer::wire::UInt256) -> Option<u32> {
        self.chain.index_of(hash)
    }
    fn header(&self, index: u32) -> Option<n3::Header> {
        self.chain.header(index).cloned()
    }
    fn block(&self, index: u32) -> Option<n3::Block> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.chain.block(index).cloned()
    }
}

/// A `getdata` of more blocks than the asker's outbox has bytes for reads
/// from the store little more than what fits: the rest is dropped unread.
#[test]
fn a_getdata_past_the_outbox_bytes_reads_no_more_than_fits() {
    smol::block_on(async {
        let chain = Chain::<N3>::synthetic(&Synthetic {
            blocks: 500,
            txs_per_block: 1,
            seed: 9,
            with_bodies: true,
        });
        let hashes: Vec<_> = (1..=500).map(|i| chain.hash(i).unwrap()).collect();
        let one = N3::frame_size(&n3::Message::Block(chain.block(1).unwrap().clone()));
        let store = std::sync::Arc::new(CountingStore {
            chain,
            reads: Default::default(),
        });
        let hub = PeerManager::<N3>::new(config(), book::<N3>(), IgnoreAll, SmolGlobal).unwrap();
        let relay_config = RelayConfig {
            outbox_bytes: 20 * one,
            ..RelayConfig::default()
        };
        let served: std::sync::Arc<dyn neo_peer::chain::ChainStore<N3>> = store.clone();
        hub.start_relay(relay_config, Some(served), |_, _| {})
            .unwrap();
        let addr = listening(&hub).await;
        let asker = PeerManager::<N3>::new(config(), book::<N3>(), IgnoreAll, SmolGlobal).unwrap();
        let link = asker.connect(addr).await.unwrap();
        link.send(N3::get_data(ItemKind::Block, &hashes).unwrap())
            .await
            .unwrap();
        until("the answer", &hub, |s| s.served + s.dropped >= 500).await;
        let s = hub.relay_stats().unwrap();
        let reads = store.reads.load(std::sync::atomic::Ordering::SeqCst);
        assert!((20..=25).contains(&s.served), "{s:?}");
        assert!(reads < 100, "{reads} blocks read for {} served", s.served);
        for m in [hub, asker] {
            m.shutdown().await;
        }
    });
}

/// The items kept to answer `getdata` weigh at most the cache's bytes: the
/// oldest are forgotten first.
#[test]
fn the_relay_cache_is_bounded_in_bytes() {
    smol::block_on(async {
        let relay_config = RelayConfig {
            cache_bytes: 1 << 20,
            ..RelayConfig::default()
        };
        let (hub, _) = relaying_with::<N3, _>(IgnoreAll, relay_config);
        let addr = listening(&hub).await;
        // 40 transactions of some 60 KB: 2.4 MB, over the cache's 1 MiB.
        let hashes = relay_large_txs(&hub, 6, 40);
        let asker = PeerManager::<N3>::new(config(), book::<N3>(), IgnoreAll, SmolGlobal).unwrap();
        let link = asker.connect(addr).await.unwrap();
        for (i, expect_found) in [(0, false), (39, true)] {
            let ask = N3::get_data(ItemKind::Transaction, &[hashes[i]]).unwrap();
            let answers = within("the answer", link.request(ask)).await.unwrap();
            let found = answers.iter().filter_map(N3::item).count() == 1;
            assert_eq!(found, expect_found, "item {i}");
        }
        for m in [hub, asker] {
            m.shutdown().await;
        }
    });
}

/// Counts the `getdata`s it gets (answering none) and passes on the
/// transactions announced to it.
struct Quiet(Arc<AtomicUsize>, Sender<Vec<neo_peer::wire::UInt256>>);

impl Handler<N3> for Quiet {
    async fn handle(&self, _peer: &Peer<N3>, msg: n3::Message) {
        match msg {
            n3::Message::GetData(_) => {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
            msg => {
                if let Some((ItemKind::Transaction, hashes)) = N3::announced(&msg) {
                    let _ = self.1.try_send(hashes.to_vec());
                }
            }
        }
    }
}

/// A peer may leave a `getdata` of payloads unanswered (neo-go does for a
/// payload it no longer holds): such requests leave an eighth of the
/// peer's room for requests to the ones it owes (a `ping`, a block range),
/// and one refused for want of room does not stop the relay to that peer.
#[test]
fn unanswered_item_requests_leave_room_for_the_rest() {
    smol::block_on(async {
        let mut relay_config = RelayConfig::default();
        relay_config.tracker.max_in_flight_per_peer = 1000;
        let (hub, _) = relaying_with::<N3, _>(IgnoreAll, relay_config);
        let addr = listening(&hub).await;
        let getdata = Arc::new(AtomicUsize::new(0));
        let (tx, invs) = async_channel::unbounded();
        let quiet = PeerManager::<N3>::new(
            config(),
            book::<N3>(),
            Quiet(getdata.clone(), tx),
            SmolGlobal,
        )
        .unwrap();
        let link = quiet.connect(addr).await.unwrap();
        assert_eq!(hub.wait_for_peers(1, WAIT).await, 1);
        // More payloads than the peer has room for requests, one `inv`
        // each, asked for one `getdata` each, and never given.
        let room = neo_peer::peer::MAX_PENDING_REQUESTS;
        let count = u32::try_from(room + 72).unwrap();
        for n in 0..count {
            let inv = N3::inv(ItemKind::Extensible, &[numbered(n).hash]).unwrap();
            link.send(inv).await.unwrap();
        }
        until("every payload asked for", &hub, |s| {
            s.requested == u64::from(count)
        })
        .await;
        // A transaction relayed now is announced to it after those.
        assert_eq!(hub.relay(numbered(count)), 1);
        let got = within("the transaction's inv", invs.recv()).await.unwrap();
        assert_eq!(got, [numbered(count).hash]);
        assert_eq!(getdata.load(Ordering::Relaxed), room - room / 8);
        // Its owed requests find room.
        let id = hub.peers()[0].id;
        let peer = hub.peer(id).unwrap();
        within("a ping", peer.ping()).await.unwrap();
        for m in [hub, quiet] {
            m.shutdown().await;
        }
    });
}
