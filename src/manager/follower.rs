//! Following the chain into a [`Chain`]: the embedder's side of the block
//! download pipeline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_listener::Event;
use futures_lite::future;
use thiserror::Error;

use super::download::{BlockSource, DownloadError, Fetched, ScheduleConfig, driver};
use super::{PeerId, PeerManager};
use crate::chain::{Chain, ChainError, Generation};
use crate::wire::UInt256;

/// Events kept for each subscriber of a [`Follower`]; past it the oldest
/// are dropped.
pub const FOLLOW_EVENTS: usize = 1024;
/// How often a [`Follower`] pings its peers for their heights by default
/// (new blocks announced with `inv` are asked for at once).
pub const FOLLOW_CHECK: Duration = Duration::from_secs(1);

/// How a [`Follower`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowConfig {
    /// The download pipeline's settings (its window bounds the blocks held
    /// ahead of the chain).
    pub schedule: ScheduleConfig,
    /// How often every peer is pinged for its height (default
    /// [`FOLLOW_CHECK`]).
    pub check: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            schedule: ScheduleConfig::default(),
            check: FOLLOW_CHECK,
        }
    }
}

/// What a [`Follower`] added to its chain, in the order it did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowEvent {
    /// The header of a new height is in the chain. Legacy learns headers
    /// before their blocks (from `getheaders`); N3 gets a block and its
    /// header together, and reports the header just before the block.
    Header {
        /// Its height.
        index: u32,
        /// Its hash.
        hash: UInt256,
    },
    /// The block of a new height is in the chain; read it with
    /// [`Follower::block`].
    Block {
        /// Its height.
        index: u32,
        /// Its hash.
        hash: UInt256,
        /// Its transactions.
        txs: usize,
        /// Its size on the wire.
        size: usize,
        /// The peer that served it.
        peer: PeerId,
    },
}

/// Why a [`Follower`] stopped by itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The download pipeline stopped (the manager is shutting down, or
    /// Legacy has no hash to start from).
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The chain refused what the pipeline checked and handed out (a store
    /// appended to by someone else meanwhile).
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// Keeps a [`Chain`] at the tip of the network: the blocks after the
/// chain's last one are fetched through a [`PeerManager`] (by the rules of
/// [`download::follow`](super::download::follow): each block once, checked
/// against its header and linked to the one before, from the peers that have
/// it, new blocks asked for as soon as a peer announces them), appended to
/// the chain in order and reported as [`FollowEvent`]s.
///
/// - **Push:** [`Follower::subscribe`] gives a stream of events, a header
///   and then its block for each new height.
/// - **Pull:** [`Follower::tip`], [`Follower::block`] and
///   [`Follower::header`] read the chain, which peers can be served from
///   at the same time ([`ChainServer`](crate::chain::ChainServer)).
///
/// The chain must hold the genesis header; the follower starts after the
/// last block it holds (at the genesis block when it holds only headers).
/// Legacy headers it holds past its last block are used to ask for those
/// blocks by hash, and new Legacy headers are appended as they are learned,
/// so a chain served while it is followed offers them at once.
///
/// Memory: the pipeline's window of blocks ahead of the chain (see
/// [`download`](super::download)), and at most [`FOLLOW_EVENTS`] events per
/// subscriber; a subscriber that does not keep up loses the oldest (each
/// event names its height: [`Follower::block`] fills a gap).
///
/// ```no_run
/// use std::sync::Arc;
/// use neo_peer::book::{AddressBook, BookConfig};
/// use neo_peer::chain::N3Chain;
/// use neo_peer::executor::SmolGlobal;
/// use neo_peer::manager::{FollowEvent, Follower, ManagerConfig, PeerManager};
/// use neo_peer::peer::{IgnoreAll, LocalConfig};
/// use neo_peer::protocol::{N3, Protocol};
/// use neo_peer::wire::n3::{Block, PRIVNET_MAGIC};
///
/// # fn genesis_block() -> Block { unimplemented!() }
/// smol::block_on(async {
///     let book = AddressBook::in_memory(BookConfig::new(N3::NAME, PRIVNET_MAGIC));
///     let config = ManagerConfig::new(LocalConfig::new(PRIVNET_MAGIC));
///     let manager = PeerManager::<N3>::new(config, book, IgnoreAll, SmolGlobal)?;
///     manager.connect("127.0.0.1:20333".parse()?).await?;
///     // The network's genesis block, as the node's settings give it.
///     let chain = Arc::new(N3Chain::from_genesis_block(genesis_block())?);
///     let follower = Arc::new(Follower::new(manager.clone(), chain));
///     let events = follower.subscribe();
///     let running = follower.clone();
///     let task = smol::spawn(async move { running.run().await });
///     while let Ok(event) = events.recv().await {
///         if let FollowEvent::Block { index, hash, txs, .. } = event {
///             println!("block {index} {hash} with {txs} transactions");
///             let block = follower.block(index).expect("in the chain");
///             assert_eq!(block.hash(), hash);
///             if index >= 100 {
///                 follower.stop();
///                 break;
///             }
///         }
///     }
///     task.await?;
///     manager.shutdown().await;
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub struct Follower<P: BlockSource> {
    manager: PeerManager<P>,
    chain: Arc<Chain<P>>,
    config: FollowConfig,
    /// Each subscriber's queue ([`FOLLOW_EVENTS`] each); closed ones are
    /// removed at the next event.
    subscribers: Mutex<Vec<async_channel::Sender<FollowEvent>>>,
    stopped: AtomicBool,
    stop: Event,
}

impl<P: BlockSource> std::fmt::Debug for Follower<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("protocol", &P::NAME)
            .field("tip", &self.tip())
            .finish()
    }
}

impl<P: BlockSource> Follower<P> {
    /// A follower of the network `manager` reaches, into `chain`, with the
    /// default settings.
    pub fn new(manager: PeerManager<P>, chain: Arc<Chain<P>>) -> Self {
        Self::with_config(manager, chain, FollowConfig::default())
    }

    /// A follower with `config`.
    pub fn with_config(
        manager: PeerManager<P>,
        chain: Arc<Chain<P>>,
        config: FollowConfig,
    ) -> Self {
        Follower {
            manager,
            chain,
            config,
            subscribers: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
            stop: Event::new(),
        }
    }

    /// The manager it fetches through.
    pub fn manager(&self) -> &PeerManager<P> {
        &self.manager
    }

    /// The chain it appends to.
    pub fn chain(&self) -> &Arc<Chain<P>> {
        &self.chain
    }

    /// The height and hash of the last block held (the genesis header's
    /// while no block is).
    pub fn tip(&self) -> (u32, UInt256) {
        let index = self.chain.block_height().unwrap_or(0);
        (index, self.chain.hash(index).unwrap_or(UInt256::ZERO))
    }

    /// The block at a height, once it is in the chain.
    pub fn block(&self, index: u32) -> Option<<P as Generation>::Block> {
        self.chain.block(index).cloned()
    }

    /// The header at a height, once it is in the chain.
    pub fn header(&self, index: u32) -> Option<<P as Generation>::Header> {
        self.chain.header(index).cloned()
    }

    /// A new stream of the events from now on (at most [`FOLLOW_EVENTS`]
    /// kept; the oldest dropped past it). Dropping it unsubscribes.
    pub fn subscribe(&self) -> async_channel::Receiver<FollowEvent> {
        let (tx, rx) = async_channel::bounded(FOLLOW_EVENTS);
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Makes [`Follower::run`] return `Ok(())` (now, or at once when it is
    /// called later).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop.notify(usize::MAX);
    }

    fn emit(&self, event: FollowEvent) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|s| !s.is_closed());
        for s in subscribers.iter() {
            let _ = s.force_send(event.clone());
        }
    }

    /// Follows until [`Follower::stop`] (then `Ok(())`) or an error: the
    /// manager shutting down, or the chain refusing a block.
    pub async fn run(&self) -> Result<(), FollowError> {
        let from = self.chain.block_height().map_or(0, |h| h + 1);
        let after = from.checked_sub(1).and_then(|i| self.chain.hash(i));
        let mut schedule = self.config.schedule;
        // With witnesses checked, the chain says who signs what comes next:
        // the block before `from` names the signer of the block at `from`,
        // the last header the signer of the header after it.
        let mut header_signer = None;
        if let Some(w) = schedule.witnesses.as_mut() {
            let named = |i: u32| self.chain.header(i).map(|h| P::header_next_consensus(h));
            if let Some(signer) = from.checked_sub(1).and_then(named) {
                w.first = signer;
            }
            header_signer = named(self.chain.tip().0);
        }
        let (tip_index, tip_hash) = self.chain.tip();
        let headers_from = Some((tip_index, tip_hash, header_signer));
        let hashes = self.chain.clone();
        let refused: Mutex<Option<ChainError>> = Mutex::new(None);
        let on_header = |header: &<P as Generation>::Header| {
            let (index, hash) = (P::header_index(header), P::header_hash(header));
            match self.chain.push_header(header.clone()) {
                Ok(()) => self.emit(FollowEvent::Header { index, hash }),
                // The chain has it already (appended by someone else).
                Err(e) => tracing::debug!(index, error = %e, "header not appended"),
            }
        };
        let on_block = |block: P::FetchedBlock, peer: PeerId| {
            let (index, hash) = (block.index(), block.hash());
            let (txs, size) = (block.tx_count(), block.wire_size());
            let new_header = self.chain.hash(index).is_none();
            if let Err(e) = self.chain.push_block(P::chain_block(block)) {
                *refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                return std::ops::ControlFlow::Break(());
            }
            if new_header {
                self.emit(FollowEvent::Header { index, hash });
            }
            self.emit(FollowEvent::Block {
                index,
                hash,
                txs,
                size,
                peer,
            });
            if self.stopped.load(Ordering::Acquire) {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        };
        let following = async {
            driver::run(
                &self.manager,
                schedule,
                from,
                None,
                after,
                move |i| hashes.hash(i),
                Some(self.config.check.max(Duration::from_millis(1))),
                headers_from,
                on_header,
                on_block,
            )
            .await
            .map(drop)
            .map_err(FollowError::from)
        };
        let stopped = async {
            loop {
                let listener = self.stop.listen();
                if self.stopped.load(Ordering::Acquire) {
                    return Ok(());
                }
                listener.await;
            }
        };
        let result = future::or(stopped, following).await;
        match refused.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(FollowError::Chain(e)),
            None => result,
        }
    }
}
