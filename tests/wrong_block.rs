//! A wrong block at a height the follower already holds, over loopback TCP:
//! a [`Follower`] keeps its chain at the tip of an honest node, and a second,
//! hostile peer hands it another block at a height it holds. The hostile
//! peer is reported (`ManagerEvent::WrongBlock` naming its address),
//! penalised and disconnected; the block is never applied (the follower's
//! chain keeps the honest hash there), and following goes on: the honest
//! node's next block still arrives, once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::future;
use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{Chain, ChainServer, ChainStore, Generation, Serve, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::download::{BlockSource, ScheduleConfig};
use neo_peer::manager::{
    FollowConfig, FollowEvent, Follower, ManagerConfig, ManagerEvent, PeerManager, RelayConfig,
};
use neo_peer::peer::{Handler, IgnoreAll, LegacyHandler, LocalConfig, N3Handler, Peer};
use neo_peer::protocol::{Legacy, N3, Protocol};
use neo_peer::relay::Inventory;
use neo_peer::wire::{UInt256, legacy, n3};

const NET: u32 = 56753;

/// How long any one step may take on a loaded machine before the test
/// gives up (each normally takes milliseconds).
const STEP: Duration = Duration::from_secs(60);

/// Heights the honest node holds when the hostile peer comes.
const HELD: u32 = 10;

fn book<P: Protocol>() -> AddressBook {
    AddressBook::in_memory(BookConfig {
        protocol: P::NAME,
        network: NET,
        ..BookConfig::default()
    })
}

fn manager_config<P: Protocol>(
    height: impl Fn() -> u32 + Send + Sync + 'static,
) -> ManagerConfig<P> {
    let mut local = LocalConfig::new(NET);
    local.identity.current_height = Arc::new(height);
    local.timeouts.handshake = Duration::from_secs(30);
    // A request left unanswered stays open long enough for its late answer
    // to arrive on a loaded machine.
    local.timeouts.stall = STEP;
    let mut c = ManagerConfig::new(local);
    c.max_per_ip = 1000;
    c.max_inbound = 1000;
    c.max_outbound = 1000;
    c.shutdown_grace = Duration::from_secs(5);
    c
}

fn synthetic(blocks: u32, seed: u64) -> Synthetic {
    Synthetic {
        blocks,
        txs_per_block: 2,
        seed,
        with_bodies: true,
    }
}

/// Waits for `what`, failing the test after [`STEP`].
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    future::or(f, async {
        Timer::after(STEP).await;
        panic!("timed out waiting for {what}")
    })
    .await
}

/// What a node says when its chain has grown: an `inv` of the new block.
trait Announce: Serve + BlockSource + Inventory {
    fn announce(hash: UInt256) -> Self::Message;
    /// A `block` message.
    fn block_msg(block: <Self as Generation>::Block) -> Self::Message;
}

impl Announce for N3 {
    fn announce(hash: UInt256) -> n3::Message {
        n3::Message::Inv(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes: vec![hash],
        })
    }
    fn block_msg(block: n3::Block) -> n3::Message {
        n3::Message::Block(block)
    }
}

impl Announce for Legacy {
    fn announce(hash: UInt256) -> legacy::Message {
        legacy::Message::Inv(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes: vec![hash],
        })
    }
    fn block_msg(block: legacy::Block) -> legacy::Message {
        legacy::Message::Block(Box::new(block))
    }
}

/// An honest node serving a growing prefix of `honest`, and a follower
/// connected to it keeping a chain of its own.
struct Scene<P: Announce> {
    honest: Arc<Chain<P>>,
    served: Arc<Chain<P>>,
    server: PeerManager<P>,
    server_addr: SocketAddr,
    client: PeerManager<P>,
    ours: Arc<Chain<P>>,
    follower: Follower<P>,
    blocks: async_channel::Receiver<FollowEvent>,
    events: async_channel::Receiver<ManagerEvent>,
    /// The heights of the `Block` events so far, in order.
    got: std::cell::RefCell<Vec<u32>>,
}

impl<P: Announce> Scene<P>
where
    Chain<P>: Send + Sync,
{
    /// With `relay`, the follower's manager runs a relay room that leaves
    /// blocks to the follower (and so hands it the blocks sent unasked).
    async fn new(honest: Arc<Chain<P>>, schedule: ScheduleConfig, relay: bool) -> Self {
        let start: Vec<_> = honest.blocks().take(HELD as usize + 1).cloned().collect();
        let served = Arc::new(Chain::<P>::from_blocks(start).unwrap());
        let height = served.clone();
        let server = PeerManager::new(
            manager_config(move || height.height()),
            book::<P>(),
            ChainServer::new(served.clone()),
            SmolGlobal,
        )
        .unwrap();
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let ours = Arc::new(Chain::<P>::from_blocks([honest.block(0).unwrap().clone()]).unwrap());
        let height = ours.clone();
        let client = PeerManager::<P>::new(
            manager_config(move || height.block_height().unwrap_or(0)),
            book::<P>(),
            IgnoreAll,
            SmolGlobal,
        )
        .unwrap();
        let events = client.events();
        if relay {
            let config = RelayConfig {
                blocks_by_follower: true,
                ..RelayConfig::default()
            };
            let store: Arc<dyn ChainStore<P>> = ours.clone();
            // Nothing is passed on: only the follower's blocks matter here.
            client.start_relay(config, Some(store), |_, _| {}).unwrap();
        }
        client.connect(addr).await.unwrap();
        let config = FollowConfig {
            // Heights are learned from the announcements, not by pinging.
            check: Duration::from_secs(3600),
            schedule,
        };
        let follower = Follower::with_config(client.clone(), ours.clone(), config);
        let blocks = follower.subscribe();
        Scene {
            honest,
            served,
            server,
            server_addr: addr,
            client,
            ours,
            follower,
            blocks,
            events,
            got: Default::default(),
        }
    }

    /// The honest node's chain grows to `to`, and it announces its tip.
    async fn grow_to(&self, to: u32) {
        for i in self.served.height() + 1..=to {
            self.served
                .push_block(self.honest.block(i).unwrap().clone())
                .unwrap();
        }
        let hash = self.honest.hash(to).unwrap();
        for p in self.server.peers() {
            p.peer.send(P::announce(hash)).await.unwrap();
        }
    }

    /// Waits until the follower has handed out the block at `index`.
    async fn wait_block(&self, index: u32) {
        within(&format!("block {index}"), async {
            while !self.got.borrow().contains(&index) {
                match self.blocks.recv().await.unwrap() {
                    FollowEvent::Block { index, hash, .. } => {
                        assert_eq!(Some(hash), self.honest.hash(index), "block {index}");
                        self.got.borrow_mut().push(index);
                    }
                    FollowEvent::Header { .. } => {}
                    other => panic!("{other:?}"),
                }
            }
        })
        .await
    }

    /// Waits for the manager's event that `pick` takes, skipping others.
    async fn wait_event<T>(
        &self,
        what: &str,
        mut pick: impl FnMut(ManagerEvent) -> Option<T>,
    ) -> T {
        within(what, async {
            loop {
                if let Some(t) = pick(self.events.recv().await.unwrap()) {
                    return t;
                }
            }
        })
        .await
    }

    /// The checks after the hostile peer was caught at a height in `held`:
    /// it is disconnected and its address carries the `bad_answer` points,
    /// the follower's chain keeps the honest blocks, and the honest node's
    /// next block arrives once.
    async fn after_the_fault(
        &self,
        hostile_node: &PeerManager<P>,
        hostile: SocketAddr,
        held: std::ops::RangeInclusive<u32>,
    ) {
        let (index, reason) = self
            .wait_event("the wrong block to be reported", |e| match e {
                ManagerEvent::WrongBlock {
                    addr,
                    index,
                    reason,
                    ..
                } => {
                    assert_eq!(addr, Some(hostile), "{reason}");
                    Some((index, reason))
                }
                _ => None,
            })
            .await;
        let index = index.expect("the height is named");
        assert!(held.contains(&index), "{index}: {reason}");
        assert!(
            reason.contains(&self.honest.hash(index).unwrap().to_string()),
            "the reason names our block: {reason}"
        );
        self.wait_event("the hostile peer to be disconnected", |e| match e {
            ManagerEvent::Disconnected { addr, .. } => (addr == Some(hostile)).then_some(()),
            _ => None,
        })
        .await;
        assert!(
            self.client.peers().iter().all(|p| p.addr != Some(hostile)),
            "the hostile peer is gone"
        );
        // The penalty stays with its address: it shows when it is back
        // (once the hostile node has seen the first connection close).
        within("the hostile node to see the connection close", async {
            while let Ok(e) = hostile_node.events().recv().await {
                if matches!(e, ManagerEvent::Disconnected { .. }) {
                    return;
                }
            }
        })
        .await;
        let back = self.client.connect(hostile).await.unwrap();
        let score = self
            .client
            .peers()
            .iter()
            .find(|p| p.id == back.id())
            .map(|p| p.score);
        assert_eq!(score, Some(self.client.config().penalties.bad_answer));
        assert!(self.client.remove(back.id()));
        self.wait_event("the hostile peer to leave again", |e| match e {
            ManagerEvent::Disconnected { addr, .. } => (addr == Some(hostile)).then_some(()),
            _ => None,
        })
        .await;
        // Never applied: the follower's chain has the honest blocks.
        for i in 0..=self.ours.block_height().unwrap() {
            assert_eq!(self.ours.hash(i), self.honest.hash(i), "height {i}");
            assert_eq!(self.ours.block(i), self.honest.block(i), "block {i}");
        }
        // Following goes on.
        let next = self.ours.block_height().unwrap() + 1;
        self.grow_to(next).await;
        self.wait_block(next).await;
        self.follower.stop();
        assert_eq!(
            *self.got.borrow(),
            (1..=next).collect::<Vec<_>>(),
            "every block once, in order"
        );
        assert_eq!(self.follower.tip(), (next, self.honest.hash(next).unwrap()));
        let wrong = std::iter::from_fn(|| self.events.try_recv().ok())
            .filter(|e| matches!(e, ManagerEvent::WrongBlock { .. }))
            .count();
        assert_eq!(wrong, 0, "one wrong block reported, once");
        assert_eq!(
            self.client
                .peers()
                .iter()
                .map(|p| p.addr)
                .collect::<Vec<_>>(),
            [Some(self.server_addr)],
            "the honest node was never dropped"
        );
    }

    async fn shutdown(self, hostile: PeerManager<P>) {
        self.client.shutdown().await;
        self.server.shutdown().await;
        hostile.shutdown().await;
    }
}

/// A hostile node listening on loopback with `handler`, claiming `height`.
async fn hostile<P: Protocol, H: Handler<P>>(
    handler: H,
    height: u32,
) -> (PeerManager<P>, SocketAddr) {
    let manager = PeerManager::new(
        manager_config(move || height),
        book::<P>(),
        handler,
        SmolGlobal,
    )
    .unwrap();
    let addr = manager
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (manager, addr)
}

/// An N3 peer that claims heights it does not have, holds each
/// `getblockbyindex` until it is let go, then answers with the blocks of
/// another chain at those heights.
struct LateWrongAnswers {
    wrong: Arc<Chain<N3>>,
    asked: async_channel::Sender<(u32, i16)>,
    /// Closed to let the answers go.
    release: async_channel::Receiver<()>,
}

impl N3Handler for LateWrongAnswers {
    async fn on_get_block_by_index(&self, peer: &Peer<N3>, p: n3::GetBlockByIndexPayload) {
        let _ = self.asked.try_send((p.index_start, p.count));
        let _ = self.release.recv().await;
        let count = u32::try_from(p.count).unwrap_or(0);
        for i in p.index_start..p.index_start.saturating_add(count) {
            let Some(block) = self.wrong.block(i) else {
                break;
            };
            if peer.send(n3::Message::Block(block.clone())).await.is_err() {
                return;
            }
        }
    }
}

/// N3: the hostile peer claims more heights than the honest node has and is
/// asked for them; its answer is late, so the range goes to the honest node
/// once the honest node has grown, and the follower appends those blocks.
/// Then the late answer arrives: other blocks at heights now held.
#[test]
fn n3_a_late_answer_with_other_blocks_at_held_heights_is_reported_never_applied() {
    smol::block_on(async {
        let honest = Arc::new(Chain::<N3>::synthetic(&synthetic(30, 0)));
        let wrong = Arc::new(Chain::<N3>::synthetic(&synthetic(30, 7)));
        let top = HELD + 10;
        for i in 1..=top {
            assert_ne!(wrong.hash(i), honest.hash(i));
        }
        let schedule = ScheduleConfig {
            // The hostile peer's range goes to the honest node soon.
            timeout: Duration::from_millis(300),
            ..ScheduleConfig::default()
        };
        let scene = Scene::new(honest, schedule, false).await;
        let (asked_tx, asked) = async_channel::unbounded();
        let (release_tx, release) = async_channel::bounded(1);
        let handler = LateWrongAnswers {
            wrong,
            asked: asked_tx,
            release,
        };
        let (hostile, hostile_addr) = hostile::<N3, _>(handler, top).await;
        let script = async {
            scene.wait_block(HELD).await;
            scene.client.connect(hostile_addr).await.unwrap();
            // Only the hostile peer has the heights past HELD.
            let (start, count) = within("the hostile peer to be asked", asked.recv())
                .await
                .unwrap();
            assert_eq!(start, HELD + 1);
            assert!(count > 0);
            scene.grow_to(top).await;
            scene.wait_block(top).await;
            // Every height it was asked is held now: its answer comes.
            release_tx.close();
            scene
                .after_the_fault(&hostile, hostile_addr, HELD + 1..=top)
                .await;
        };
        let (ran, ()) = future::zip(scene.follower.run(), script).await;
        ran.unwrap();
        scene.shutdown(hostile).await;
    });
}

/// A Legacy peer that announces a block of another chain at a held height,
/// answers `getheaders` with no header (as NEO•ONE does when it has nothing
/// after the hash) and `getdata` with that block.
struct AnnouncesWrong {
    wrong: Arc<Chain<Legacy>>,
}

impl LegacyHandler for AnnouncesWrong {
    async fn on_get_headers(&self, peer: &Peer<Legacy>, _: legacy::GetBlocksPayload) {
        let none = legacy::HeadersPayload {
            headers: Vec::new(),
        };
        let _ = peer.send(legacy::Message::Headers(none)).await;
    }

    async fn on_get_data(&self, peer: &Peer<Legacy>, inv: legacy::InvPayload) {
        for hash in inv.hashes {
            if let Some(block) = self.wrong.block_by_hash(&hash) {
                let _ = peer
                    .send(legacy::Message::Block(Box::new(block.clone())))
                    .await;
            }
        }
    }
}

/// Where the wrong block goes in the chain the follower holds.
const WRONG_AT: u32 = 5;

/// Legacy: the hostile peer announces another block at a held height; the
/// follower asks it for its headers (none come) and then for the announced
/// block by hash, which is not the block it holds there.
#[test]
fn legacy_an_announced_block_at_a_held_height_is_reported_never_applied() {
    smol::block_on(async {
        let honest = Arc::new(Chain::<Legacy>::synthetic(&synthetic(30, 0)));
        let wrong = Arc::new(Chain::<Legacy>::synthetic(&synthetic(30, 7)));
        let wrong_hash = wrong.hash(WRONG_AT).unwrap();
        assert_ne!(Some(wrong_hash), honest.hash(WRONG_AT));
        let scene = Scene::new(honest, ScheduleConfig::default(), false).await;
        let handler = AnnouncesWrong { wrong };
        let (hostile, hostile_addr) = hostile::<Legacy, _>(handler, HELD).await;
        let script = async {
            scene.wait_block(HELD).await;
            scene.client.connect(hostile_addr).await.unwrap();
            assert_eq!(hostile.wait_for_peers(1, STEP).await, 1);
            for p in hostile.peers() {
                p.peer.send(Legacy::announce(wrong_hash)).await.unwrap();
            }
            scene
                .after_the_fault(&hostile, hostile_addr, WRONG_AT..=WRONG_AT)
                .await;
        };
        let (ran, ()) = future::zip(scene.follower.run(), script).await;
        ran.unwrap();
        scene.shutdown(hostile).await;
    });
}

/// The follower's manager runs a relay room that leaves blocks to it, and
/// the hostile peer sends it, unasked, another block at a held height.
fn a_pushed_block_at_a_held_height<P: Announce>(honest: Chain<P>, wrong: Chain<P>)
where
    Chain<P>: Send + Sync,
{
    smol::block_on(async {
        let honest = Arc::new(honest);
        let block = wrong.block(WRONG_AT).unwrap().clone();
        assert_ne!(wrong.hash(WRONG_AT), honest.hash(WRONG_AT));
        let scene = Scene::new(honest, ScheduleConfig::default(), true).await;
        let (hostile, hostile_addr) = hostile::<P, _>(IgnoreAll, HELD).await;
        let script = async {
            scene.wait_block(HELD).await;
            scene.client.connect(hostile_addr).await.unwrap();
            assert_eq!(hostile.wait_for_peers(1, STEP).await, 1);
            for p in hostile.peers() {
                p.peer.send(P::block_msg(block.clone())).await.unwrap();
            }
            scene
                .after_the_fault(&hostile, hostile_addr, WRONG_AT..=WRONG_AT)
                .await;
        };
        let (ran, ()) = future::zip(scene.follower.run(), script).await;
        ran.unwrap();
        scene.shutdown(hostile).await;
    });
}

#[test]
fn n3_a_pushed_block_at_a_held_height_is_reported_never_applied() {
    a_pushed_block_at_a_held_height::<N3>(
        Chain::<N3>::synthetic(&synthetic(30, 0)),
        Chain::<N3>::synthetic(&synthetic(30, 7)),
    );
}

#[test]
fn legacy_a_pushed_block_at_a_held_height_is_reported_never_applied() {
    a_pushed_block_at_a_held_height::<Legacy>(
        Chain::<Legacy>::synthetic(&synthetic(30, 0)),
        Chain::<Legacy>::synthetic(&synthetic(30, 7)),
    );
}
