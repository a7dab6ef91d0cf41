//! `neo-peer serve --mirror ADDR`: copy a node's chain, then keep following
//! it and serve the growing copy, in both generations.
//!
//! One manager does both: its only outbound peer is the mirrored node (it
//! never dials anyone else), and every inbound peer is served from the copy.
//! Each block is checked (its Merkle root, its link to the one before) and
//! appended, header and body, while the chain is served; the inbound peers
//! are told of it with an `inv`.
//!
//! The copy is made before listening: N3 by index through the block
//! pipeline ([`download`]); Legacy by hash, the headers after the tip from
//! the manager's header sync and their blocks from the pipeline. Then both
//! generations follow through the library's
//! [`neo_peer::manager::download::follow`]: a block the mirrored node
//! announces is fetched at once (N3: its height asked with a `ping`; Legacy:
//! its hash learned with `getheaders`), and every [`CHECK`] each peer is
//! pinged for its height.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_io::Timer;
use neo_peer::chain::{Chain, ChainServer, Generation, Serve};
use neo_peer::manager::download::{BlockSource, ScheduleConfig, download, follow};
use neo_peer::manager::sync::{SyncOptions, sync_legacy};
use neo_peer::manager::{ManagedPeer, PeerId, PeerManager};
use neo_peer::peer::{Direction, Handler, Peer};
use neo_peer::protocol::{CurrentHeight, Legacy, N3};
use neo_peer::wire::{UInt256, legacy, n3};
use serde_json::json;

use crate::net::{ServeArgs, bind};
use crate::output::{Out, count};

/// How often the follower pings its peers for their heights (the
/// pipeline's rule: every live peer, inbound ones too, so not too often).
/// New blocks are learned from the mirrored node's announcements at once;
/// this only catches what an announcement missed.
const CHECK: Duration = Duration::from_secs(1);
/// How often a lost mirrored node is dialed again.
const REDIAL: Duration = Duration::from_secs(1);
/// How far behind the tip a peer may be to be sent, with each new block,
/// the hashes of every block it lacks.
const RELAY_GAP: u32 = 32;
/// Most block hashes in one `inv` to the inbound peers (the protocol's cap).
const RELAY_HASHES: u32 = 500;

/// A generation that can be mirrored.
pub trait Mirrored: Serve + BlockSource<FetchedBlock = <Self as Generation>::Block> + Sync {
    /// An `inv` announcing the blocks `hashes`.
    fn block_inv(hashes: Vec<UInt256>) -> Self::Message;
    /// The mirrored node's genesis block (`genesis`: its hash, Legacy only).
    async fn genesis_block(
        source: &ManagedPeer<Self>,
        genesis: UInt256,
    ) -> Result<<Self as Generation>::Block, String>;
    /// Appends to `chain` every block the mirrored node has above its tip,
    /// calling `grown` after each; returns at the node's height.
    async fn catch_up(
        manager: &PeerManager<Self>,
        chain: &Chain<Self>,
        grown: &mut dyn FnMut(),
    ) -> Result<(), String>;
}

/// The handler of a mirror's peers: the copy serves them once it exists.
struct MirrorHandler<P: Serve> {
    server: Arc<OnceLock<ChainServer<P>>>,
}

impl<P: Mirrored> Handler<P> for MirrorHandler<P> {
    async fn handle(&self, peer: &Peer<P>, msg: P::Message) {
        if let Some(server) = self.server.get() {
            server.handle(peer, msg).await;
        }
    }
}

/// `neo-peer serve --mirror SOURCE`: copies the chain of the node at
/// `source`, listens, and follows it until killed.
pub fn mirror<P: Mirrored>(
    source: SocketAddr,
    magic: u32,
    genesis: UInt256,
    args: &ServeArgs,
) -> Result<(), String> {
    let server: Arc<OnceLock<ChainServer<P>>> = Arc::new(OnceLock::new());
    let served = server.clone();
    let height: CurrentHeight = Arc::new(move || served.get().map_or(0, |s| s.store().height()));
    let handler = MirrorHandler {
        server: server.clone(),
    };
    // One outbound connection: the mirrored node.
    let bound = bind(args, magic, height, handler, 1)?;
    let (manager, out) = (bound.manager.clone(), bound.out);
    smol::block_on(async {
        let first = manager
            .connect(source)
            .await
            .map_err(|e| format!("cannot mirror {source}: {e}"))?;
        let chain = Chain::from_genesis_block(P::genesis_block(&first, genesis).await?)
            .map_err(|e| format!("mirrored chain: {e}"))?;
        let chain = Arc::new(chain);
        // `--json` shows the copy by its `progress` events; a person gets a
        // line now and one when it is done (and a bar on a terminal).
        if out == Out::Human {
            eprintln!(
                "copying the chain of {source} (height {}) before listening",
                first.height()
            );
        }
        let mut progress = out.progress("blocks");
        let mut show = || {
            let have = u64::from(chain.height());
            progress.show(have, u64::from(first.height()).max(have));
        };
        P::catch_up(&manager, &chain, &mut show).await?;
        progress.finish();
        let blocks = chain.len();
        out.event(
            "mirrored",
            json!({"from": source.to_string(), "blocks": blocks}),
            || {
                format!(
                    "mirrored {} from {source}",
                    count(blocks as u64, "block", "blocks")
                )
            },
        );
        let _ = server.set(ChainServer::new(chain.clone()));
        let manager = bound.start(chain.genesis_hash(), chain.height())?;
        let (grown_tx, grown_rx) = async_channel::bounded(1);
        smol::spawn(relay(manager.clone(), chain.clone(), grown_rx)).detach();
        smol::spawn(keep_connected(manager.clone(), source, out)).detach();
        let mut grown = move || {
            // Full: a wake-up is already waiting, and it relays all that is new.
            let _ = grown_tx.try_send(());
        };
        follow_source(&manager, &chain, &mut grown).await
    })
}

/// Appends each new block as the mirrored node gets it, calling `grown`
/// after each, until an append fails.
async fn follow_source<P: Mirrored>(
    manager: &PeerManager<P>,
    chain: &Chain<P>,
    grown: &mut dyn FnMut(),
) -> Result<(), String> {
    let (tip, hash) = chain.tip();
    let mut failed = None;
    follow(
        manager,
        ScheduleConfig::default(),
        tip + 1,
        Some(hash),
        |_| None,
        CHECK,
        |block, _| {
            append(chain, block, &mut failed, grown);
            match failed {
                Some(_) => ControlFlow::Break(()),
                None => ControlFlow::Continue(()),
            }
        },
    )
    .await
    .map_err(|e| format!("mirroring: {e}"))?;
    failed.map_or(Ok(()), Err)
}

/// Dials the mirrored node again whenever it is lost.
async fn keep_connected<P: Mirrored>(manager: PeerManager<P>, source: SocketAddr, out: Out) {
    loop {
        Timer::after(REDIAL).await;
        if mirrored_node(&manager).is_some() {
            continue;
        }
        if let Err(e) = manager.connect(source).await {
            out.event(
                "mirror_lost",
                json!({"from": source.to_string(), "error": e.to_string()}),
                || format!("cannot reach {source} again: {e}"),
            );
        }
    }
}

/// The mirrored node, while it is connected.
fn mirrored_node<P: Mirrored>(manager: &PeerManager<P>) -> Option<ManagedPeer<P>> {
    manager
        .peers()
        .into_iter()
        .find(|s| s.peer.direction() == Direction::Outbound)
        .map(|s| s.peer)
}

/// Tells the inbound peers of each block appended, with an `inv`: a peer
/// close to the tip (at most [`RELAY_GAP`] blocks behind, by the height it
/// last showed) is sent every hash it lacks, so that a block it missed is
/// asked for at once; a peer further behind, syncing by itself, only the
/// hashes new since the last `inv` (at most [`RELAY_HASHES`], the newest).
/// A peer still writing the last `inv` (it does not read) is skipped: at
/// most one send per peer is under way.
async fn relay<P: Mirrored>(
    manager: PeerManager<P>,
    chain: Arc<Chain<P>>,
    grown: async_channel::Receiver<()>,
) {
    // Peers with an `inv` being written: at most the inbound peers.
    let busy: Arc<Mutex<HashSet<PeerId>>> = Arc::default();
    let mut relayed = chain.height();
    while grown.recv().await.is_ok() {
        let tip = chain.height();
        if tip <= relayed {
            continue;
        }
        let new = relayed + 1;
        relayed = tip;
        for s in manager.peers() {
            let height = s.peer.height();
            if s.peer.direction() != Direction::Inbound || height >= tip {
                continue;
            }
            let from = if tip - height <= RELAY_GAP {
                height + 1
            } else {
                new
            };
            let from = from.max(tip.saturating_sub(RELAY_HASHES - 1));
            let newly = busy.lock().unwrap_or_else(|e| e.into_inner()).insert(s.id);
            if !newly {
                continue;
            }
            let hashes: Vec<UInt256> = (from..=tip).filter_map(|i| chain.hash(i)).collect();
            let inv = P::block_inv(hashes);
            let busy = busy.clone();
            smol::spawn(async move {
                let _ = s.peer.send(inv).await;
                busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&s.id);
            })
            .detach();
        }
    }
}

impl Mirrored for N3 {
    fn block_inv(hashes: Vec<UInt256>) -> n3::Message {
        n3::Message::Inv(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes,
        })
    }

    async fn genesis_block(source: &ManagedPeer<N3>, _: UInt256) -> Result<n3::Block, String> {
        let ask = n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
            index_start: 0,
            count: 1,
        });
        let answers = source
            .request(ask)
            .await
            .map_err(|e| format!("genesis block: {e}"))?;
        answers
            .into_iter()
            .find_map(|m| match m {
                n3::Message::Block(b) if b.header.index == 0 => Some(b),
                _ => None,
            })
            .ok_or_else(|| "the mirrored node sent no genesis block".to_string())
    }

    async fn catch_up(
        manager: &PeerManager<N3>,
        chain: &Chain<N3>,
        grown: &mut dyn FnMut(),
    ) -> Result<(), String> {
        let Some(top) = mirrored_node(manager).map(|p| p.height()) else {
            return Err("the mirrored node left".into());
        };
        let (tip, hash) = chain.tip();
        if top <= tip {
            return Ok(());
        }
        let mut failed = None;
        download(
            manager,
            ScheduleConfig::default(),
            tip + 1,
            Some(top),
            Some(hash),
            |_| None,
            |block, _| append(chain, block, &mut failed, grown),
        )
        .await
        .map_err(|e| format!("mirroring: {e}"))?;
        failed.map_or(Ok(()), Err)
    }
}

/// Appends `block` unless an append failed already; notes the first failure.
fn append<G: Generation>(
    chain: &Chain<G>,
    block: G::Block,
    failed: &mut Option<String>,
    grown: &mut dyn FnMut(),
) {
    if failed.is_some() {
        return;
    }
    match chain.push_block(block) {
        Ok(()) => grown(),
        Err(e) => *failed = Some(format!("mirrored chain: {e}")),
    }
}

impl Mirrored for Legacy {
    fn block_inv(hashes: Vec<UInt256>) -> legacy::Message {
        legacy::Message::Inv(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes,
        })
    }

    async fn genesis_block(
        source: &ManagedPeer<Legacy>,
        genesis: UInt256,
    ) -> Result<legacy::Block, String> {
        let blocks = get_blocks(source, vec![genesis]).await?;
        blocks
            .into_iter()
            .find(|b| b.hash() == genesis)
            .ok_or_else(|| format!("the mirrored node does not have the genesis block {genesis}"))
    }

    async fn catch_up(
        manager: &PeerManager<Legacy>,
        chain: &Chain<Legacy>,
        grown: &mut dyn FnMut(),
    ) -> Result<(), String> {
        loop {
            let Some(top) = mirrored_node(manager).map(|p| p.height()) else {
                return Err("the mirrored node left".into());
            };
            let (tip, tip_hash) = chain.tip();
            if top <= tip {
                return Ok(());
            }
            // The headers after the tip, then their blocks by hash.
            let mut hashes = Vec::new();
            let options = SyncOptions {
                target: Some(top),
                ..SyncOptions::default()
            };
            let keep = |headers: &[legacy::Header]| hashes.extend(headers.iter().map(|h| h.hash()));
            sync_legacy(manager, tip_hash, tip, &options, keep, |_, _| {})
                .await
                .map_err(|e| format!("mirroring: {e}"))?;
            let Ok(count) = u32::try_from(hashes.len()) else {
                return Err("mirroring: too many headers".into());
            };
            if count == 0 {
                // It claimed more than it has: the next announcement tells.
                return Ok(());
            }
            let mut failed = None;
            let expected = move |i: u32| {
                let k = i.checked_sub(tip + 1)?;
                hashes.get(k as usize).copied()
            };
            download(
                manager,
                ScheduleConfig::default(),
                tip + 1,
                Some(tip + count),
                Some(tip_hash),
                expected,
                |block, _| append(chain, block, &mut failed, grown),
            )
            .await
            .map_err(|e| format!("mirroring: {e}"))?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }
}

/// The blocks `hashes` from `source` (`getdata`), as many as it sends.
async fn get_blocks(
    source: &ManagedPeer<Legacy>,
    hashes: Vec<UInt256>,
) -> Result<Vec<legacy::Block>, String> {
    let ask = legacy::Message::GetData(legacy::InvPayload {
        kind: legacy::InventoryType::Block,
        hashes,
    });
    let answers = source.request(ask).await.map_err(|e| e.to_string())?;
    Ok(answers
        .into_iter()
        .filter_map(|m| match m {
            legacy::Message::Block(b) => Some(*b),
            _ => None,
        })
        .collect())
}
