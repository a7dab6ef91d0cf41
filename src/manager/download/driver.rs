//! The driver of a [`Schedule`]: its requests go to the manager's peers,
//! their answers come back to it, and its blocks go to the caller in order.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;
use thiserror::Error;

use super::{Abandoned, Arrival, Fetched, Ready, Request, RequestId, Schedule, ScheduleConfig};
use crate::manager::{ManagerError, PeerId, PeerManager};
use crate::protocol::{Legacy, N3, Protocol};
use crate::wire::{UInt256, legacy, n3};

/// How often the driver looks at the manager's peers (who joined, who left,
/// who grew) when nothing else happens.
const REFRESH: Duration = Duration::from_millis(100);

/// A protocol whose blocks the pipeline can fetch.
pub trait BlockSource: Protocol {
    /// Its block.
    type FetchedBlock: Fetched;
    /// The request for the heights of `request`; `None` when it cannot be
    /// made (Legacy asks by hash and needs every hash).
    fn ask(request: &Request) -> Option<Self::Message>;
    /// The block an answer carries, if it is one.
    fn block(answer: Self::Message) -> Option<Self::FetchedBlock>;
}

impl BlockSource for N3 {
    type FetchedBlock = n3::Block;
    fn ask(request: &Request) -> Option<n3::Message> {
        Some(n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
            index_start: request.start,
            count: i16::try_from(request.count).ok()?,
        }))
    }
    fn block(answer: n3::Message) -> Option<n3::Block> {
        match answer {
            n3::Message::Block(b) => Some(b),
            _ => None,
        }
    }
}

impl BlockSource for Legacy {
    type FetchedBlock = legacy::Block;
    fn ask(request: &Request) -> Option<legacy::Message> {
        let hashes = request.hashes.iter().copied().collect::<Option<Vec<_>>>()?;
        Some(legacy::Message::GetData(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes,
        }))
    }
    fn block(answer: legacy::Message) -> Option<legacy::Block> {
        match answer {
            legacy::Message::Block(b) => Some(*b),
            _ => None,
        }
    }
}

/// Why a download stopped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// No live peer has the next block, and none is being asked for it.
    #[error("no peer has block {index}")]
    NoPeers {
        /// The next height wanted.
        index: u32,
    },
    /// The hash of a height is needed (Legacy asks by hash) and unknown.
    #[error("the hash of block {index} is not known")]
    UnknownHash {
        /// The height.
        index: u32,
    },
    /// The manager is shutting down.
    #[error("the manager is shutting down")]
    Shutdown,
}

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOutcome {
    /// Blocks handed out.
    pub count: u64,
    /// Their total size on the wire.
    pub bytes: u64,
    /// The height of the last one (`None` when there was none).
    pub tip_index: Option<u32>,
    /// Its hash.
    pub tip_hash: Option<UInt256>,
    /// Peers dropped for a wrong block.
    pub faults: u32,
    /// How long it took.
    pub elapsed: Duration,
}

/// Downloads the blocks `from..=target` (`target` `None`: the best height
/// of the live peers at the start) through `manager`, by the rules of
/// [`Schedule`] with `config`, and hands each to `on_block` with the peer
/// that served it, once, strictly in order, checked.
///
/// `after` is the hash of the block at `from - 1` (`None`: not checked);
/// `expected` gives the hash of a height when its header is known: every
/// block is checked against it, and Legacy, which asks by hash, needs it for
/// every height. A peer that serves a wrong block is reported with the
/// manager's `bad_answer` penalty and disconnected; its heights are fetched
/// elsewhere.
///
/// Memory: the blocks held are bounded by the window (see the
/// [module](super) docs). Each request sent is one task; a peer is sent no
/// more than the manager's `max_in_flight_per_kind` requests at once,
/// abandoned ones included (each ends by the peer's own stall deadline at
/// the latest), so at most that many answers of `range` blocks per live
/// peer are in transit besides the window.
pub async fn download<P: BlockSource>(
    manager: &PeerManager<P>,
    config: ScheduleConfig,
    from: u32,
    target: Option<u32>,
    after: Option<UInt256>,
    expected: impl Fn(u32) -> Option<UInt256> + Send + Sync + 'static,
    mut on_block: impl FnMut(P::FetchedBlock, PeerId),
) -> Result<DownloadOutcome, DownloadError> {
    let target = Some(target.unwrap_or_else(|| manager.best_height()));
    let on_block = |block, from| {
        on_block(block, from);
        ControlFlow::Continue(())
    };
    run(
        manager, config, from, target, after, expected, None, on_block,
    )
    .await
}

/// Follows the chain from height `from` for as long as `on_block` says
/// [`ControlFlow::Continue`]: every block the peers have, then each new one
/// as they learn of it, handed to `on_block` once, strictly in order,
/// checked as by [`download`] (`after`, `expected`).
///
/// The heights of the peers are what they say in `version`, `ping` and
/// `pong` and what they serve; every `check` each live peer is pinged, and
/// N3 peers answer with their height. A peer with nothing new is never
/// asked for it, and never dropped for it. Legacy asks by hash: without the
/// hash of a new height from `expected`, it ends with
/// [`DownloadError::UnknownHash`].
///
/// Memory: as [`download`]; the pings sent are at most one per live peer
/// each `check`, each ending by the peer's own deadline.
#[allow(clippy::too_many_arguments)]
pub async fn follow<P: BlockSource>(
    manager: &PeerManager<P>,
    config: ScheduleConfig,
    from: u32,
    after: Option<UInt256>,
    expected: impl Fn(u32) -> Option<UInt256> + Send + Sync + 'static,
    check: Duration,
    on_block: impl FnMut(P::FetchedBlock, PeerId) -> ControlFlow<()>,
) -> Result<DownloadOutcome, DownloadError> {
    let check = check.max(Duration::from_millis(1));
    run(
        manager,
        config,
        from,
        None,
        after,
        expected,
        Some(check),
        on_block,
    )
    .await
}

/// [`download`] up to `target`, or [`follow`] (`target` `None`) with the
/// peers pinged every `check`.
#[allow(clippy::too_many_arguments)]
async fn run<P: BlockSource>(
    manager: &PeerManager<P>,
    config: ScheduleConfig,
    from: u32,
    target: Option<u32>,
    after: Option<UInt256>,
    expected: impl Fn(u32) -> Option<UInt256> + Send + Sync + 'static,
    check: Option<Duration>,
    mut on_block: impl FnMut(P::FetchedBlock, PeerId) -> ControlFlow<()>,
) -> Result<DownloadOutcome, DownloadError> {
    let started = Instant::now();
    let following = target.is_none();
    // One peer answers at most this many requests of a kind at once.
    let limit = manager.config().max_in_flight_per_kind.max(1);
    let config = ScheduleConfig {
        per_peer: config.per_peer.min(limit),
        ..config
    };
    let mut schedule: Schedule<P::FetchedBlock> =
        Schedule::new(config, from, target, after, expected);
    let mut next_check = started;
    type Answer<M> = (RequestId, PeerId, Result<Vec<M>, ManagerError>);
    let (tx, rx) = async_channel::unbounded::<Answer<P::Message>>();
    // Peers dropped for a wrong block and not gone yet: never given work
    // again here. At most the live peers.
    let mut dropped: HashSet<PeerId> = HashSet::new();
    // Requests sent to each peer and not ended, abandoned ones included
    // (they hold the peer's request slot till they end). At most the live
    // peers, or those with a request running.
    let mut running: HashMap<PeerId, u32> = HashMap::new();
    let mut outcome = DownloadOutcome {
        count: 0,
        bytes: 0,
        tip_index: None,
        tip_hash: None,
        faults: 0,
        elapsed: Duration::ZERO,
    };
    let bad_answer = manager.config().penalties.bad_answer;
    let fault = |peer: PeerId, why: &str, dropped: &mut HashSet<PeerId>, faults: &mut u32| {
        tracing::warn!(peer, why, "wrong block");
        dropped.insert(peer);
        *faults += 1;
        manager.report(peer, bad_answer, why);
        if let Some(p) = manager.peer(peer) {
            p.disconnect();
        }
    };
    loop {
        if manager.inner.is_shutting_down() {
            return Err(DownloadError::Shutdown);
        }
        // The peers as they are now.
        let summaries = manager.peers();
        dropped.retain(|id| summaries.iter().any(|s| s.id == *id));
        let live: Vec<(PeerId, u32)> = summaries
            .iter()
            .filter(|s| !dropped.contains(&s.id))
            .map(|s| (s.id, s.peer.height()))
            .collect();
        let gone: Vec<PeerId> = schedule
            .peers()
            .map(|(id, _)| id)
            .filter(|id| !live.iter().any(|(l, _)| l == id))
            .collect();
        for id in gone {
            schedule.remove_peer(id);
        }
        for &(id, height) in &live {
            // A peer whose slots are all taken (by requests the schedule
            // abandoned) is offered nothing till one ends.
            let free = running.get(&id).is_none_or(|&n| n < limit);
            schedule.set_peer(id, if free { height } else { 0 });
            if following {
                schedule.set_target(height);
            }
        }
        let now = Instant::now();
        if let Some(check) = check.filter(|_| now >= next_check) {
            next_check = now + check;
            for s in summaries.iter().filter(|s| !dropped.contains(&s.id)) {
                let peer = s.peer.clone();
                manager.inner.spawn(async move {
                    // The height comes with the pong; a busy peer is asked next time.
                    let _ = peer.ping().await;
                });
            }
        }
        schedule.handle_timeout(now).iter().for_each(log_abandoned);
        while let Some(request) = schedule.poll_request(now) {
            let Some(msg) = P::ask(&request) else {
                return Err(DownloadError::UnknownHash {
                    index: request.start,
                });
            };
            let id = request.id;
            let tx = tx.clone();
            let Some(peer) = manager.peer(request.peer) else {
                // Gone since the look at the peers.
                schedule.remove_peer(request.peer);
                continue;
            };
            *running.entry(request.peer).or_default() += 1;
            let from = request.peer;
            manager.inner.spawn(async move {
                let answer = peer.request(msg).await;
                let _ = tx.send((id, from, answer)).await;
            });
        }
        while let Some(ready) = schedule.poll_ready() {
            match ready {
                Ready::Block { block, from } => {
                    outcome.count += 1;
                    outcome.bytes += block.wire_size() as u64;
                    outcome.tip_index = Some(block.index());
                    outcome.tip_hash = Some(block.hash());
                    if on_block(block, from).is_break() {
                        outcome.elapsed = started.elapsed();
                        return Ok(outcome);
                    }
                }
                Ready::Fault { peer, why, .. } => {
                    fault(peer, &why, &mut dropped, &mut outcome.faults);
                }
            }
        }
        if schedule.is_done() && !following {
            outcome.elapsed = started.elapsed();
            return Ok(outcome);
        }
        if schedule.in_flight() == 0 && running.is_empty() && !following {
            let next = schedule.next_index();
            let served = live.iter().any(|&(_, h)| u64::from(h) >= next);
            if !served {
                return Err(DownloadError::NoPeers {
                    index: u32::try_from(next).unwrap_or(u32::MAX),
                });
            }
        }
        // Wait for an answer, a deadline, or the next look at the peers.
        let mut wake = schedule
            .poll_timeout()
            .map_or(now + REFRESH, |t| t.min(now + REFRESH));
        if check.is_some() {
            wake = wake.min(next_check);
        }
        let answer = future::or(async { rx.recv().await.ok() }, async {
            Timer::at(wake).await;
            None
        })
        .await;
        let Some((id, peer, answer)) = answer else {
            continue;
        };
        if let Some(n) = running.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                running.remove(&peer);
            }
        }
        let now = Instant::now();
        match answer {
            Ok(messages) => {
                for block in messages.into_iter().filter_map(P::block) {
                    if let Arrival::Bad { peer, why } = schedule.on_block(id, block, now) {
                        fault(peer, &why, &mut dropped, &mut outcome.faults);
                        break;
                    }
                }
            }
            Err(error) => tracing::debug!(request = id, %error, "block request failed"),
        }
        schedule.on_end(id);
    }
}

fn log_abandoned(a: &Abandoned) {
    tracing::debug!(
        request = a.id,
        peer = a.peer,
        "block request past its deadline"
    );
}
