//! The block download pipeline over loopback TCP, on smol and on
//! async-std: in-process nodes serve a synthetic chain, a manager downloads
//! every block from them once, in order, checked against the chain's
//! headers.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{Chain, ChainServer, Serve, Synthetic};
use neo_peer::manager::download::{
    BlockSource, DownloadError, DownloadOutcome, Fetched, ScheduleConfig, Signers, download, follow,
};
use neo_peer::manager::{ManagerConfig, PeerManager};
use neo_peer::peer::{IgnoreAll, LocalConfig};
use neo_peer::protocol::{Legacy, N3, Protocol};

#[allow(dead_code)]
mod rt;

use rt::{AsyncStdRt, Rt, SmolRt};

const NET: u32 = 56753;

fn book<P: Protocol>() -> AddressBook {
    AddressBook::in_memory(BookConfig {
        protocol: P::NAME,
        network: NET,
        ..BookConfig::default()
    })
}

fn manager_config<P: Protocol>(height: u32) -> ManagerConfig<P> {
    let mut local = LocalConfig::new(NET);
    local.identity.current_height = Arc::new(move || height);
    local.timeouts.handshake = Duration::from_secs(5);
    local.timeouts.stall = Duration::from_secs(5);
    let mut c = ManagerConfig::new(local);
    c.max_per_ip = 1000;
    c.max_inbound = 1000;
    c.max_outbound = 1000;
    c.shutdown_grace = Duration::from_secs(5);
    c
}

/// A node serving `chain` on a loopback port.
async fn node<P: Serve, R: Rt>(rt: R, chain: Arc<Chain<P>>) -> (PeerManager<P>, SocketAddr)
where
    Chain<P>: Send + Sync,
{
    let config = manager_config(chain.height());
    let manager = PeerManager::new(config, book::<P>(), ChainServer::new(chain), rt.ex()).unwrap();
    let addr = manager
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (manager, addr)
}

fn synthetic(blocks: u32, seed: u64) -> Synthetic {
    Synthetic {
        blocks,
        txs_per_block: 2,
        seed,
        with_bodies: true,
    }
}

fn n3_chain(blocks: u32, seed: u64) -> Arc<Chain<N3>> {
    Arc::new(Chain::<N3>::synthetic(&synthetic(blocks, seed)))
}

fn legacy_chain(blocks: u32, seed: u64) -> Arc<Chain<Legacy>> {
    Arc::new(Chain::<Legacy>::synthetic(&synthetic(blocks, seed)))
}

/// Downloads heights 1..=tip of `chain` from `nodes` serving it (and from
/// `wrong`, serving another chain, whose blocks must never be taken);
/// checks every block came once, in order, with the chain's hash.
async fn download_all<P, R>(rt: R, chain: Arc<Chain<P>>, nodes: usize, wrong: Option<Arc<Chain<P>>>)
where
    P: Serve + neo_peer::manager::download::BlockSource,
    R: Rt,
    Chain<P>: Send + Sync,
{
    let mut servers = Vec::new();
    for _ in 0..nodes {
        servers.push(node(rt, chain.clone()).await);
    }
    if let Some(w) = &wrong {
        servers.push(node(rt, w.clone()).await);
    }
    let client = PeerManager::<P>::new(manager_config(0), book::<P>(), IgnoreAll, rt.ex()).unwrap();
    for (_, addr) in &servers {
        client.connect(*addr).await.unwrap();
    }
    let faults_wanted = u32::from(wrong.is_some());
    let tip = chain.height();
    let hashes = chain.clone();
    let mut got: Vec<u32> = Vec::with_capacity(tip as usize);
    let config = ScheduleConfig {
        window: 256,
        range: 16,
        ..ScheduleConfig::default()
    };
    let outcome = download(
        &client,
        config,
        1,
        Some(tip),
        Some(chain.genesis_hash()),
        move |i| hashes.hash(i),
        |block, _from| {
            assert_eq!(Some(block.hash()), chain.hash(block.index()));
            got.push(block.index());
        },
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        (1..=tip).collect::<Vec<_>>(),
        "every block once, in order"
    );
    assert_eq!(outcome.count, u64::from(tip));
    // One request per range, a few more for ranges tried again: the
    // pipeline's requests are never refused for want of a slot.
    let ranges = u64::from(tip).div_ceil(16);
    assert!(
        (ranges..=ranges + ranges / 4).contains(&outcome.requests),
        "{} requests for {ranges} ranges",
        outcome.requests
    );
    assert_eq!(outcome.tip_index, Some(tip));
    assert_eq!(outcome.tip_hash, Some(chain.tip_hash()));
    // All peers are free at the start: each, the wrong one too, gets work.
    assert_eq!(outcome.faults, faults_wanted);
    // Each wrong block is reported as an event naming its peer.
    let events = client.events();
    let mut reported = 0;
    while let Ok(event) = events.try_recv() {
        if let neo_peer::manager::ManagerEvent::WrongBlock { addr, reason, .. } = event {
            assert_eq!(addr, servers.last().map(|s| s.1), "{reason}");
            reported += 1;
        }
    }
    assert_eq!(reported, faults_wanted);
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "{} {}: {} blocks from {} peers in {:.3} s ({:.0} blocks/s, {:.1} MB/s), {} faults",
        R::NAME,
        P::NAME,
        outcome.count,
        servers.len(),
        secs,
        outcome.count as f64 / secs,
        outcome.bytes as f64 / secs / 1e6,
        outcome.faults,
    );
    client.shutdown().await;
    for (m, _) in &servers {
        m.shutdown().await;
    }
}

#[test]
fn n3_blocks_once_in_order_from_three_nodes_smol() {
    SmolRt.block_on(download_all::<N3, _>(SmolRt, n3_chain(3_000, 0), 3, None));
}

#[test]
fn n3_blocks_once_in_order_from_three_nodes_async_std() {
    AsyncStdRt.block_on(download_all::<N3, _>(
        AsyncStdRt,
        n3_chain(1_000, 0),
        3,
        None,
    ));
}

#[test]
fn legacy_blocks_by_hash_once_in_order_from_three_nodes_smol() {
    SmolRt.block_on(download_all::<Legacy, _>(
        SmolRt,
        legacy_chain(1_000, 0),
        3,
        None,
    ));
}

/// A node on another chain claims the heights: whatever it sends fails the
/// headers' hashes, it is dropped, and the download completes from the rest.
#[test]
fn a_node_on_another_chain_is_dropped_and_the_download_completes() {
    SmolRt.block_on(download_all::<N3, _>(
        SmolRt,
        n3_chain(600, 0),
        2,
        Some(n3_chain(600, 7)),
    ));
}

/// A node whose chain grows while it is followed: each new block reaches
/// the follower (through the heights in the pongs to its pings) once, in
/// order; the node grows by ten blocks each time the follower has every
/// block it has.
fn following_a_growing_chain<R: Rt>(rt: R) {
    rt.block_on(async {
        let full = n3_chain(120, 0);
        let (server, served, addr) = growing_node(rt, &full, 51).await;
        let client =
            PeerManager::<N3>::new(manager_config(0), book::<N3>(), IgnoreAll, rt.ex()).unwrap();
        client.connect(addr).await.unwrap();
        let mut got = Vec::new();
        let outcome = follow_chain(
            &client,
            &full,
            Duration::from_millis(10),
            &mut got,
            |index| {
                if index == 120 {
                    return ControlFlow::Break(());
                }
                if index == served.height() {
                    for b in full.blocks().skip(index as usize + 1).take(10) {
                        served.push_block(b.clone()).unwrap();
                    }
                }
                ControlFlow::Continue(())
            },
        )
        .await
        .unwrap();
        assert_eq!(
            got,
            (1..=120).collect::<Vec<_>>(),
            "every block once, in order"
        );
        assert_eq!(outcome.tip_hash, Some(full.tip_hash()));
        assert_eq!(client.len(), 1, "the node was never dropped");
        client.shutdown().await;
        server.shutdown().await;
    });
}

#[test]
fn following_a_growing_chain_smol() {
    following_a_growing_chain(SmolRt);
}

#[test]
fn following_a_growing_chain_async_std() {
    following_a_growing_chain(AsyncStdRt);
}

/// What a node says when its chain has grown: an `inv` of the new block.
trait Announce: Serve + neo_peer::manager::download::BlockSource {
    fn inv(hash: neo_peer::wire::UInt256) -> Self::Message;
}

impl Announce for N3 {
    fn inv(hash: neo_peer::wire::UInt256) -> neo_peer::wire::n3::Message {
        use neo_peer::wire::n3;
        n3::Message::Inv(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes: vec![hash],
        })
    }
}

impl Announce for Legacy {
    fn inv(hash: neo_peer::wire::UInt256) -> neo_peer::wire::legacy::Message {
        use neo_peer::wire::legacy;
        legacy::Message::Inv(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes: vec![hash],
        })
    }
}

/// [`follow`] of `chain` from block 1, checking for new blocks every
/// `check`: each block, which must be `chain`'s at its index, has its index
/// pushed on `got` and given to `then`, which says whether to go on.
async fn follow_chain<P: BlockSource>(
    client: &PeerManager<P>,
    chain: &Chain<P>,
    check: Duration,
    got: &mut Vec<u32>,
    mut then: impl FnMut(u32) -> ControlFlow<()>,
) -> Result<DownloadOutcome, DownloadError> {
    follow(
        client,
        ScheduleConfig::default(),
        1,
        Some(chain.genesis_hash()),
        |_| None,
        check,
        |block, _| {
            let index = block.index();
            assert_eq!(Some(block.hash()), chain.hash(index));
            got.push(index);
            then(index)
        },
    )
    .await
}

/// Fails the test with `what` after a minute: a guard against a hang, far
/// longer than any run takes.
async fn guard<T>(what: &str) -> T {
    async_io::Timer::after(Duration::from_secs(60)).await;
    panic!("{what}");
}

/// A node serving the first `blocks` blocks of `chain`, its `version`
/// saying the height of what it holds, listening on a port the system
/// picks: the node, its chain (to grow) and its address.
async fn growing_node<P: Announce, R: Rt>(
    rt: R,
    chain: &Chain<P>,
    blocks: usize,
) -> (PeerManager<P>, Arc<Chain<P>>, SocketAddr)
where
    Chain<P>: Send + Sync,
{
    let start: Vec<_> = chain.blocks().take(blocks).cloned().collect();
    let served = Arc::new(Chain::<P>::from_blocks(start).unwrap());
    let mut config = manager_config::<P>(0);
    let height = served.clone();
    config.local.identity.current_height = Arc::new(move || height.height());
    let server = PeerManager::new(
        config,
        book::<P>(),
        ChainServer::new(served.clone()),
        rt.ex(),
    )
    .unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (server, served, addr)
}

/// A node whose chain grows one block at a time and announces each new
/// block with an `inv`; the follower pings nobody after the start (its
/// check comes once an hour) and its only peer's `version` says genesis
/// (Legacy: the node's pings are not answered with heights either): each
/// new block reaches it through the announcement alone, once, in order.
fn following_announcements<P: Announce, R: Rt>(rt: R, chain: Arc<Chain<P>>, announce: bool)
where
    Chain<P>: Send + Sync,
{
    rt.block_on(async {
        let tip = chain.height();
        let (server, served, addr) = growing_node(rt, &chain, 1).await;
        let client =
            PeerManager::<P>::new(manager_config(0), book::<P>(), IgnoreAll, rt.ex()).unwrap();
        client.connect(addr).await.unwrap();
        // The node grows by one block each time the follower has all it has.
        let (grow, grown) = async_channel::unbounded::<u32>();
        let _ = grow.try_send(0);
        let node = async {
            while let Ok(have) = grown.recv().await {
                if have == tip {
                    break;
                }
                let Some(next) = chain.block(have + 1) else {
                    break;
                };
                served.push_block(next.clone()).unwrap();
                if announce {
                    for p in server.peers() {
                        p.peer
                            .send(P::inv(chain.hash(have + 1).unwrap()))
                            .await
                            .unwrap();
                    }
                }
            }
            std::future::pending::<()>().await;
        };
        let mut got = Vec::new();
        let check = if announce {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(10)
        };
        let follower = follow_chain(&client, &chain, check, &mut got, |index| {
            let _ = grow.try_send(index);
            if index == tip {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let outcome = futures_lite::future::or(follower, async {
            node.await;
            unreachable!()
        })
        .await
        .unwrap();
        assert_eq!(
            got,
            (1..=tip).collect::<Vec<_>>(),
            "every block once, in order"
        );
        assert_eq!(outcome.tip_hash, Some(chain.tip_hash()));
        assert_eq!(outcome.faults, 0);
        assert_eq!(client.len(), 1, "the node was never dropped");
        client.shutdown().await;
        server.shutdown().await;
    });
}

#[test]
fn n3_announced_blocks_are_fetched_at_once() {
    following_announcements(SmolRt, n3_chain(40, 0), true);
}

#[test]
fn legacy_announced_blocks_are_fetched_through_their_headers() {
    following_announcements(SmolRt, legacy_chain(40, 0), true);
}

#[test]
fn legacy_following_learns_heights_from_pongs() {
    following_announcements(SmolRt, legacy_chain(40, 0), false);
}

#[test]
fn legacy_announced_blocks_are_fetched_through_their_headers_async_std() {
    following_announcements(AsyncStdRt, legacy_chain(30, 0), true);
}

/// A [`Follower`] keeps a chain of its own at the tip of a node whose chain
/// grows and announces each block: its chain gets every block once, in
/// order, a `Header` then a `Block` event for each height, each block can be
/// read back, and `stop` ends it.
fn follower_into_a_chain<P: Announce, R: Rt>(rt: R, chain: Arc<Chain<P>>)
where
    Chain<P>: Send + Sync,
{
    use neo_peer::manager::{FollowConfig, FollowEvent, Follower};
    rt.block_on(async {
        let tip = chain.height();
        // The node starts with ten blocks, the follower with the genesis block.
        let (server, served, addr) = growing_node(rt, &chain, 11).await;
        let client =
            PeerManager::<P>::new(manager_config(0), book::<P>(), IgnoreAll, rt.ex()).unwrap();
        client.connect(addr).await.unwrap();
        let ours = Arc::new(Chain::<P>::from_blocks([chain.block(0).unwrap().clone()]).unwrap());
        let config = FollowConfig {
            check: Duration::from_secs(3600),
            ..FollowConfig::default()
        };
        let follower = Follower::with_config(client.clone(), ours.clone(), config);
        let events = follower.subscribe();
        let node = async {
            loop {
                let have = follower.tip().0;
                let top = served.height();
                if have == top && top < tip {
                    served
                        .push_block(chain.block(top + 1).unwrap().clone())
                        .unwrap();
                    let hash = chain.hash(top + 1).unwrap();
                    for p in server.peers() {
                        p.peer.send(P::inv(hash)).await.unwrap();
                    }
                }
                if have == tip {
                    follower.stop();
                    return;
                }
                async_io::Timer::after(Duration::from_millis(5)).await;
            }
        };
        let (ran, ()) = futures_lite::future::zip(follower.run(), node).await;
        ran.unwrap();
        assert_eq!(follower.tip(), (tip, chain.tip_hash()));
        assert_eq!(ours.block_height(), Some(tip));
        let mut got = Vec::new();
        while let Ok(event) = events.try_recv() {
            got.push(match event {
                FollowEvent::Header { index, hash } => {
                    assert_eq!(Some(hash), chain.hash(index));
                    (index, 'h')
                }
                FollowEvent::Block { index, hash, .. } => {
                    assert_eq!(Some(hash), chain.hash(index));
                    assert_eq!(follower.block(index).as_ref(), chain.block(index));
                    (index, 'b')
                }
                other => panic!("{other:?}"),
            });
        }
        // Legacy may learn many headers before their blocks; N3 gets each
        // header with its block.
        let of = |kind| -> Vec<u32> { got.iter().filter(|g| g.1 == kind).map(|g| g.0).collect() };
        assert_eq!(
            of('h'),
            (1..=tip).collect::<Vec<_>>(),
            "headers once, in order"
        );
        assert_eq!(
            of('b'),
            (1..=tip).collect::<Vec<_>>(),
            "blocks once, in order"
        );
        for i in 1..=tip {
            let at = |kind| got.iter().position(|g| *g == (i, kind));
            assert!(at('h') < at('b'), "header {i} before its block");
        }
        assert_eq!(client.len(), 1, "the node was never dropped");
        client.shutdown().await;
        server.shutdown().await;
    });
}

#[test]
fn n3_follower_keeps_its_chain_at_the_tip() {
    follower_into_a_chain(SmolRt, n3_chain(30, 0));
}

#[test]
fn legacy_follower_keeps_its_chain_at_the_tip() {
    follower_into_a_chain(SmolRt, legacy_chain(30, 0));
}

/// A peer that announces a new block hash every few milliseconds and never
/// answers `getheaders` (nor the blocks it announced) does not keep a Legacy
/// follower from the blocks an honest node announces: it is asked once, and
/// then only when no other peer is worth asking.
#[test]
fn legacy_following_is_not_held_by_a_peer_announcing_blocks_it_never_gives() {
    let chain = legacy_chain(10, 0);
    SmolRt.block_on(async {
        let tip = chain.height();
        let (server, served, addr) = growing_node(SmolRt, &chain, 1).await;
        let liar =
            PeerManager::<Legacy>::new(manager_config(0), book::<Legacy>(), IgnoreAll, SmolRt.ex())
                .unwrap();
        let liar_addr = liar.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client =
            PeerManager::<Legacy>::new(manager_config(0), book::<Legacy>(), IgnoreAll, SmolRt.ex())
                .unwrap();
        client.connect(addr).await.unwrap();
        client.connect(liar_addr).await.unwrap();
        let (grow, grown) = async_channel::unbounded::<u32>();
        let _ = grow.try_send(0);
        let node = async {
            while let Ok(have) = grown.recv().await {
                let Some(next) = chain.block(have + 1) else {
                    break;
                };
                served.push_block(next.clone()).unwrap();
                for p in server.peers() {
                    let _ = p.peer.send(Legacy::inv(next.hash())).await;
                }
            }
            std::future::pending::<()>().await;
        };
        let lies = async {
            for i in 1u64.. {
                let mut hash = [0xee; 32];
                hash[..8].copy_from_slice(&i.to_le_bytes());
                for p in liar.peers() {
                    let _ = p
                        .peer
                        .send(Legacy::inv(neo_peer::wire::UInt256(hash)))
                        .await;
                }
                async_io::Timer::after(Duration::from_millis(10)).await;
            }
        };
        let mut got = Vec::new();
        let follower = follow_chain(
            &client,
            &chain,
            Duration::from_secs(3600),
            &mut got,
            |index| {
                let _ = grow.try_send(index);
                if index == tip {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        let deadline = guard("following stalled");
        let others = futures_lite::future::or(futures_lite::future::or(node, lies), deadline);
        let outcome = futures_lite::future::or(follower, async {
            others.await;
            unreachable!()
        })
        .await
        .unwrap();
        assert_eq!(got, (1..=tip).collect::<Vec<_>>());
        assert_eq!(outcome.tip_hash, Some(chain.tip_hash()));
        client.shutdown().await;
        liar.shutdown().await;
        server.shutdown().await;
    });
}

/// With witnesses checked, a Legacy follower checks the headers it learns
/// at the tip too: a node whose chain the validators did not sign (a
/// synthetic one: signature contracts of the right shape, no real keys) is
/// reported for its first header and dropped, and no block is handed out.
#[test]
fn legacy_following_with_witnesses_refuses_unsigned_headers() {
    SmolRt.block_on(async {
        let chain = legacy_chain(20, 0);
        let (server, _served, addr) = growing_node(SmolRt, &chain, 21).await;
        let client =
            PeerManager::<Legacy>::new(manager_config(0), book::<Legacy>(), IgnoreAll, SmolRt.ex())
                .unwrap();
        let events = client.events();
        client.connect(addr).await.unwrap();
        let genesis = chain.block(0).unwrap();
        let config = ScheduleConfig {
            witnesses: Some(Signers {
                network: 0,
                first: genesis.base.next_consensus,
            }),
            ..ScheduleConfig::default()
        };
        let mut got = Vec::new();
        let following = follow(
            &client,
            config,
            1,
            Some(chain.genesis_hash()),
            |_| None,
            Duration::from_secs(3600),
            |block, _| {
                got.push(block.index());
                ControlFlow::Continue(())
            },
        );
        let reported = async {
            loop {
                match events.recv().await.unwrap() {
                    neo_peer::manager::ManagerEvent::WrongBlock { index, reason, .. } => {
                        break (index, reason);
                    }
                    _ => continue,
                }
            }
        };
        let deadline = guard("the unsigned header was not reported");
        let (index, reason) =
            futures_lite::future::or(futures_lite::future::or(reported, deadline), async {
                let _ = following.await;
                panic!("following ended")
            })
            .await;
        assert_eq!(index, Some(1), "{reason}");
        assert!(reason.starts_with("header 1: "), "{reason}");
        assert!(got.is_empty(), "{got:?}");
        client.shutdown().await;
        server.shutdown().await;
    });
}

/// A [`Follower`](neo_peer::manager::Follower) with witnesses checked takes
/// the signer of its next block from its own chain (the genesis block here,
/// not the placeholder in the config): a node whose blocks the validators
/// did not sign is reported for block 1's signatures, not for naming
/// another signer, and the follower's chain stays at genesis.
#[test]
fn a_follower_with_witnesses_takes_its_signers_from_its_chain() {
    use neo_peer::manager::{FollowConfig, Follower, ManagerEvent};
    use neo_peer::wire::UInt160;
    SmolRt.block_on(async {
        let chain = n3_chain(20, 0);
        let (server, _served, addr) = growing_node(SmolRt, &chain, 21).await;
        let client =
            PeerManager::<N3>::new(manager_config(0), book::<N3>(), IgnoreAll, SmolRt.ex())
                .unwrap();
        let events = client.events();
        client.connect(addr).await.unwrap();
        let ours = Arc::new(Chain::<N3>::from_blocks([chain.block(0).unwrap().clone()]).unwrap());
        let network = client.config().local.identity.network;
        let config = FollowConfig {
            schedule: ScheduleConfig {
                witnesses: Some(Signers {
                    network,
                    first: UInt160::ZERO,
                }),
                ..ScheduleConfig::default()
            },
            ..FollowConfig::default()
        };
        let follower = Follower::with_config(client.clone(), ours.clone(), config);
        let reported = async {
            loop {
                if let ManagerEvent::WrongBlock { index, reason, .. } = events.recv().await.unwrap()
                {
                    break (index, reason);
                }
            }
        };
        let deadline = guard("the unsigned block was not reported");
        let (index, reason) =
            futures_lite::future::or(futures_lite::future::or(reported, deadline), async {
                let _ = follower.run().await;
                panic!("following ended")
            })
            .await;
        assert_eq!(index, Some(1), "{reason}");
        assert!(reason.starts_with("block 1: "), "{reason}");
        assert!(!reason.contains("the block before names"), "{reason}");
        assert_eq!(ours.block_height(), Some(0));
        follower.stop();
        client.shutdown().await;
        server.shutdown().await;
    });
}
