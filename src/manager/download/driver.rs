//! The driver of a [`Schedule`]: its requests go to the manager's peers,
//! their answers come back to it, and its blocks go to the caller in order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;
use thiserror::Error;

use super::{
    Abandoned, Arrival, Fetched, Ready, Request, RequestId, Schedule, ScheduleConfig, Signers,
};
use crate::chain::Generation;
use crate::manager::{Announcement, ManagerError, ManagerEvent, PeerId, PeerManager};
use crate::protocol::{Legacy, N3, Protocol};
use crate::relay::KnownSet;
use crate::wire::{UInt160, UInt256, legacy, n3};

/// How often the driver looks at the manager's peers (who joined, who left,
/// who grew) when nothing else happens.
const REFRESH: Duration = Duration::from_millis(100);

/// A protocol whose blocks the pipeline can fetch (both generations).
pub trait BlockSource: Protocol + Generation {
    /// Its block.
    type FetchedBlock: Fetched;
    /// Whether blocks are asked by hash: following then learns the hashes
    /// of new heights from `getheaders` first (Legacy). N3 asks by index,
    /// and learns new heights from `ping`.
    const BY_HASH: bool;
    /// The request for the heights of `request`; `None` when it cannot be
    /// made (Legacy asks by hash and needs every hash).
    fn ask(request: &Request) -> Option<Self::Message>;
    /// The block an answer carries, if it is one.
    fn block(answer: Self::Message) -> Option<Self::FetchedBlock>;
    /// The request for the blocks with these hashes (`getdata`).
    fn ask_by_hash(hashes: Vec<UInt256>) -> Self::Message;
    /// The request for the headers after the header at height `index`
    /// whose hash is `hash`.
    fn ask_headers(index: u32, hash: UInt256) -> Self::Message;
    /// The headers an answer carries (`None`: it is no `headers`).
    fn headers(answer: &Self::Message) -> Option<Vec<Self::Header>>;
    /// A fetched block as a [`Chain`](crate::chain::Chain) holds it.
    fn chain_block(block: Self::FetchedBlock) -> <Self as Generation>::Block;
}

impl BlockSource for N3 {
    type FetchedBlock = n3::Block;
    const BY_HASH: bool = false;
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
    fn ask_by_hash(hashes: Vec<UInt256>) -> n3::Message {
        n3::Message::GetData(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes,
        })
    }
    fn ask_headers(index: u32, _hash: UInt256) -> n3::Message {
        n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
            index_start: index.saturating_add(1),
            count: -1,
        })
    }
    fn headers(answer: &n3::Message) -> Option<Vec<n3::Header>> {
        match answer {
            n3::Message::Headers(h) => Some(h.to_vec()),
            _ => None,
        }
    }
    fn chain_block(block: n3::Block) -> n3::Block {
        block
    }
}

impl BlockSource for Legacy {
    type FetchedBlock = legacy::Block;
    const BY_HASH: bool = true;
    fn ask(request: &Request) -> Option<legacy::Message> {
        let hashes = request.hashes.iter().copied().collect::<Option<Vec<_>>>()?;
        Some(Self::ask_by_hash(hashes))
    }
    fn block(answer: legacy::Message) -> Option<legacy::Block> {
        match answer {
            legacy::Message::Block(b) => Some(*b),
            _ => None,
        }
    }
    fn ask_by_hash(hashes: Vec<UInt256>) -> legacy::Message {
        legacy::Message::GetData(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes,
        })
    }
    fn ask_headers(_index: u32, hash: UInt256) -> legacy::Message {
        legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![hash],
            hash_stop: UInt256::ZERO,
        })
    }
    fn headers(answer: &legacy::Message) -> Option<Vec<legacy::Header>> {
        match answer {
            legacy::Message::Headers(h) => Some(h.headers.clone()),
            _ => None,
        }
    }
    fn chain_block(block: legacy::Block) -> legacy::Block {
        block
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
    /// Block requests made: one per range, more for the ranges tried again
    /// elsewhere and for those a peer had no free request slot for (others'
    /// requests of the same kind held them).
    pub requests: u64,
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
/// Memory: the blocks held are bounded by the window, in heights and in
/// bytes (see the [module](super) docs). Each request sent is one task; a
/// peer is sent no more than the schedule's `per_peer` requests at once,
/// abandoned ones included (each ends by the peer's own stall deadline at
/// the latest), so at most that many answers of `range` blocks per live
/// peer are in transit besides the window; each task holds at most 4 MiB
/// and one block of its answer before passing them on to be checked.
///
/// A peer's request slots: the pipeline takes up to `per_peer` slots of its
/// kind on a peer, whatever the manager's
/// [`max_in_flight_per_kind`](crate::manager::ManagerConfig::max_in_flight_per_kind)
/// (which routed requests keep to); a peer whose slots others hold is
/// left alone for 100 ms rather than asked again at once.
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
        manager,
        config,
        from,
        target,
        after,
        expected,
        None,
        None,
        |_| {},
        on_block,
    )
    .await
}

/// Follows the chain from height `from` for as long as `on_block` says
/// [`ControlFlow::Continue`]: every block the peers have, then each new one
/// as they learn of it, handed to `on_block` once, strictly in order,
/// checked as by [`download`] (`after`, `expected`).
///
/// New heights are learned three ways: a block announced by a peer
/// (`inv`, see [`PeerManager::block_announcements`]) with a hash not seen
/// yet is acted on at once; the heights the peers say in `version`, `ping`
/// and `pong` and prove by what they serve; and every `check` each live
/// peer is pinged (N3 peers and C# Legacy nodes answer with their height).
///
/// - **N3** asks by index: an announcing peer is pinged at once, and its
///   new height asked for as soon as the `pong` tells it.
/// - **Legacy** asks by hash: the hashes of new heights come from
///   `getheaders` after the last header known (`after` to begin with,
///   which Legacy needs), asked of the announcing peer, or of a peer
///   higher than that header. The headers must follow one another from
///   that header; a peer whose headers do not is dropped as for a wrong
///   block. A C# node at its tip may leave `getheaders` unanswered: it is
///   never dropped for it, and after the request deadline another peer may
///   be asked. A peer whose `getheaders` went unanswered or brought no new
///   header (nor the blocks it announced) is asked again only when no live
///   peer not asked in vain has announced a new block or is higher, so
///   that one peer announcing blocks it never gives, or claiming a height
///   it lacks, costs one deadline rather than holding the headers up (and
///   a peer asked in vain that is the only one with something new is still
///   asked). Announced blocks the headers do not
///   reach (NEO•ONE leaves its tip out of them) are asked of their
///   announcer by hash and, when they follow the last header, taken as they
///   are ([`Schedule::offer`]): each block is still fetched once.
///
/// A block a peer sends unasked, which a relay room that leaves blocks to
/// the follower hands over
/// ([`RelayConfig::blocks_by_follower`](crate::manager::RelayConfig::blocks_by_follower)),
/// is taken when it is the next height to hand out and checked as an
/// answer would be ([`Schedule::offer`]), so that height is not fetched.
///
/// A block offered at a height already held or handed out (among the last
/// window of them) that is not ours is never applied, whether it answers a
/// request (one answered late, its heights fetched elsewhere meanwhile), is
/// sent unasked, or is an announced block asked of its announcer by hash:
/// its peer is reported
/// ([`ManagerEvent::WrongBlock`](crate::manager::ManagerEvent::WrongBlock)),
/// penalised with the `bad_answer` penalty and disconnected. A peer with
/// nothing new is never asked for it, and never dropped for it.
///
/// Memory: as [`download`], and the hashes of [`SEEN`] blocks (handed out or
/// learned from headers) to tell announcements of new blocks from old ones;
/// Legacy keeps the hashes of the headers ahead of the blocks, at most the
/// window and one `headers` answer (2000). The pings and `getheaders` sent
/// are at most one per live peer at a time.
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
        None,
        |_| {},
        on_block,
    )
    .await
}

/// Bytes of blocks of one request passed on together as they arrive (the
/// rest when the request ends): at most this and one block of a request
/// are held before they are checked.
const GROUP_BYTES: usize = 4 << 20;

/// Notes handled together before the driver looks at its peers again.
const NOTE_BATCH: usize = 1024;

/// Block hashes a follower remembers to tell announcements of new blocks
/// from old ones.
pub const SEEN: usize = 4096;

/// What the tasks a driver spawns tell it.
enum Note<M> {
    /// Answers of a block request, as they arrive.
    Blocks(RequestId, PeerId, Vec<M>),
    /// The end of a block request.
    Answer(RequestId, PeerId, Result<(), ManagerError>),
    /// A ping of an announcing peer ended: its height may be new.
    Pinged(PeerId),
    /// The answers of a `getheaders` (Legacy following).
    Headers(PeerId, Result<Vec<M>, ManagerError>),
    /// The blocks an announcer was asked for by hash (Legacy following).
    Offered(PeerId, Result<Vec<M>, ManagerError>),
    /// A block a peer sent unasked, handed over by the relay room.
    Pushed(PeerId, M),
}

/// The headers known past the blocks, when blocks are asked by hash.
#[derive(Debug, Default)]
struct Tail {
    /// The last header known: its height and hash.
    tip: Option<(u32, UInt256)>,
    /// The hashes of the heights whose blocks are not handed out yet.
    ahead: BTreeMap<u32, UInt256>,
    /// With witnesses checked: the network, and the contract that signs
    /// the header after the last one.
    witnesses: Option<Signers>,
}

impl Tail {
    /// Appends the header of height `index`, hash `hash`, when it follows
    /// the last one (`prev` is its hash) and, with witnesses checked, is
    /// signed by the contract the last one names (`signed` checks that and
    /// returns the contract it names in turn); `Ok(false)`, and nothing
    /// changed, if it does not follow; why, if it is not signed.
    fn extend(
        &mut self,
        index: u32,
        hash: UInt256,
        prev: UInt256,
        signed: impl FnOnce(&Signers) -> Result<UInt160, String>,
    ) -> Result<bool, String> {
        let follows = self
            .tip
            .is_some_and(|(i, h)| i.checked_add(1) == Some(index) && h == prev);
        if !follows {
            return Ok(false);
        }
        if let Some(w) = self.witnesses.as_mut() {
            w.first = signed(w)?;
        }
        self.tip = Some((index, hash));
        self.ahead.insert(index, hash);
        Ok(true)
    }
}

/// Whether `block` is signed by the contract `signers` names; the contract
/// it names in turn.
fn block_signed<B: Fetched>(block: &B, signers: &Signers) -> Result<UInt160, String> {
    let index = block.index();
    block
        .check_witness(signers.network, &signers.first)
        .map_err(|e| format!("block {index}: {e}"))?;
    block
        .next_consensus()
        .ok_or_else(|| format!("block {index} names no signer"))
}

/// Whether `header` is signed by the contract `signers` names; the contract
/// it names in turn.
fn header_signed<P: Generation>(header: &P::Header, signers: &Signers) -> Result<UInt160, String> {
    P::check_header_witness(header, signers.network, &signers.first)
        .map_err(|e| format!("header {}: {e}", P::header_index(header)))?;
    Ok(P::header_next_consensus(header))
}

/// One of `peer`'s requests has ended: its slot is free.
fn release(running: &mut HashMap<PeerId, u32>, peer: PeerId) {
    if let Some(n) = running.get_mut(&peer) {
        *n -= 1;
        if *n == 0 {
            running.remove(&peer);
        }
    }
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`download`] up to `target`, or [`follow`] (`target` `None`) with the
/// peers pinged every `check`. Following Legacy learns the headers after
/// `headers_from` (by default the block before `from`), each handed to
/// `on_header` once, in order; with witnesses checked, `headers_from` also
/// gives the contract that signs the header after it (`None`: the one that
/// signs the block at `from`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<P: BlockSource>(
    manager: &PeerManager<P>,
    config: ScheduleConfig,
    from: u32,
    target: Option<u32>,
    after: Option<UInt256>,
    expected: impl Fn(u32) -> Option<UInt256> + Send + Sync + 'static,
    check: Option<Duration>,
    headers_from: Option<(u32, UInt256, Option<UInt160>)>,
    mut on_header: impl FnMut(&P::Header),
    mut on_block: impl FnMut(P::FetchedBlock, PeerId) -> ControlFlow<()>,
) -> Result<DownloadOutcome, DownloadError> {
    let started = Instant::now();
    let following = target.is_none();
    // Legacy following learns hashes from headers after the last known one.
    let by_headers = following && P::BY_HASH;
    let header_tip = headers_from
        .map(|(i, h, _)| (i, h))
        .or(from.checked_sub(1).zip(after));
    let header_signer = headers_from.and_then(|(_, _, s)| s);
    if by_headers && header_tip.is_none() {
        return Err(DownloadError::UnknownHash {
            index: from.saturating_sub(1),
        });
    }
    // One peer is sent at most this many of our requests at once: the
    // pipeline's own allowance, not the manager's rule for routed
    // requests, so that a peer's next range is on its way while it sends
    // the one before.
    let limit = config.per_peer.max(1);
    let tail = Arc::new(Mutex::new(Tail {
        tip: header_tip,
        ahead: BTreeMap::new(),
        // The contract that signs the header after `header_tip`: the
        // block before `from` names it, unless the headers known go
        // further (then the caller says).
        witnesses: config.witnesses.map(|w| Signers {
            first: header_signer.unwrap_or(w.first),
            ..w
        }),
    }));
    let known = tail.clone();
    let expected = move |i: u32| expected(i).or_else(|| lock(&known).ahead.get(&i).copied());
    let mut schedule: Schedule<P::FetchedBlock> =
        Schedule::new(config, from, target, after, expected);
    let mut next_check = started;
    let mut next_refresh = started + REFRESH;
    let mut timer = Timer::never();
    let mut timer_at: Option<Instant> = None;
    let announcements = following.then(|| manager.block_announcements());
    let pushed = following.then(|| manager.pushed_blocks());
    let (tx, rx) = async_channel::unbounded::<Note<P::Message>>();
    // Peers dropped for a wrong block and not gone yet, or with requests
    // still running: never given work again here. At most the live peers
    // and those with a request running.
    let mut dropped: HashSet<PeerId> = HashSet::new();
    // Requests sent to each peer and not ended, abandoned ones included
    // (they hold the peer's request slot till they end). At most the live
    // peers, or those with a request running.
    let mut running: HashMap<PeerId, u32> = HashMap::new();
    // Peers that refused a request for want of a slot (others' requests
    // of the same kind hold them), and until when they are offered
    // nothing. At most the live peers.
    let mut busy: HashMap<PeerId, Instant> = HashMap::new();
    // Announcing peers being pinged (N3): at most the live peers.
    let mut pinging: HashSet<PeerId> = HashSet::new();
    // Block hashes handed out or learned from headers.
    let mut seen = KnownSet::new(SEEN);
    for hash in after.into_iter().chain(header_tip.map(|t| t.1)) {
        seen.insert(hash);
    }
    // Legacy following: the `getheaders` running (its peer, since when),
    // and the last announcement of each peer (its hashes), until the peer
    // is asked for headers: at most the live peers, 16 hashes each.
    let mut headers_running: Option<(PeerId, Instant, Vec<UInt256>)> = None;
    let mut announced: HashMap<PeerId, Vec<UInt256>> = HashMap::new();
    // Legacy following: peers whose last `getheaders` (and the blocks it
    // then offered) brought no new header, or went unanswered. They are
    // asked only when no other live peer has something to ask for (the set
    // is emptied once every live peer is in it): a peer that announces
    // blocks it never gives, or lies about its height, costs one request
    // deadline, not every one. At most the live peers.
    let mut fruitless: HashSet<PeerId> = HashSet::new();
    // Legacy following: the peer asked for the blocks it announced that its
    // headers did not reach (NEO•ONE leaves its tip out of `headers`).
    let mut offering: Option<(PeerId, Instant)> = None;
    let mut outcome = DownloadOutcome {
        count: 0,
        bytes: 0,
        tip_index: None,
        tip_hash: None,
        faults: 0,
        requests: 0,
        elapsed: Duration::ZERO,
    };
    let bad_answer = manager.config().penalties.bad_answer;
    let fault = |peer: PeerId,
                 index: Option<u32>,
                 why: &str,
                 dropped: &mut HashSet<PeerId>,
                 faults: &mut u32| {
        tracing::warn!(peer, why, "wrong block");
        dropped.insert(peer);
        *faults += 1;
        manager.inner.emit(ManagerEvent::WrongBlock {
            id: peer,
            addr: manager.inner.addr_of(peer),
            index,
            reason: why.to_string(),
        });
        manager.report(peer, bad_answer, why);
        if let Some(p) = manager.peer(peer) {
            p.disconnect();
        }
    };
    // Hands out what is ready (see `hand_out`), and returns the outcome
    // from here once `on_block` says stop.
    macro_rules! hand_out_or_return {
        () => {
            let flow = hand_out(
                &mut schedule,
                &mut outcome,
                &mut seen,
                &mut dropped,
                &mut on_block,
                &fault,
            );
            if flow.is_break() {
                outcome.elapsed = started.elapsed();
                return Ok(outcome);
            }
        };
    }
    loop {
        if manager.inner.is_shutting_down() {
            return Err(DownloadError::Shutdown);
        }
        // The peers as they are now.
        let mut live = manager.heights();
        // A dropped peer stays marked while requests of its are running:
        // their late answers are not looked at (nor reported again).
        dropped.retain(|id| live.iter().any(|(l, _)| l == id) || running.contains_key(id));
        pinging.retain(|id| live.iter().any(|(l, _)| l == id));
        live.retain(|(id, _)| !dropped.contains(id));
        announced.retain(|id, hashes| {
            live.iter().any(|(l, _)| l == id) && hashes.iter().any(|h| !seen.contains(h))
        });
        fruitless.retain(|id| live.iter().any(|(l, _)| l == id));
        if live.iter().all(|(id, _)| fruitless.contains(id)) {
            // Every peer has been asked in vain: a new round.
            fruitless.clear();
        }
        let gone: Vec<PeerId> = schedule
            .peers()
            .map(|(id, _)| id)
            .filter(|id| !live.iter().any(|(l, _)| l == id))
            .collect();
        for id in gone {
            schedule.remove_peer(id);
        }
        let header_tip = lock(&tail).tip.map(|t| t.0);
        let now = Instant::now();
        busy.retain(|_, until| now < *until);
        for &(id, height) in &live {
            // A peer whose slots are all taken (by requests the schedule
            // abandoned, or by others) is offered nothing till one ends.
            let free = running.get(&id).is_none_or(|&n| n < limit) && !busy.contains_key(&id);
            schedule.set_peer(id, if free { height } else { 0 });
            if following && !by_headers {
                schedule.set_target(height);
            }
        }
        if let Some(tip) = header_tip.filter(|_| by_headers) {
            schedule.set_target(tip);
        }
        if let Some(check) = check.filter(|_| now >= next_check) {
            next_check = now + check;
            for peer in live.iter().filter_map(|&(id, _)| manager.peer(id)) {
                manager.inner.spawn(async move {
                    // The height comes with the pong; a busy peer is asked next time.
                    let _ = peer.ping().await;
                });
            }
        }
        if by_headers {
            if headers_running
                .as_ref()
                .is_some_and(|(_, since, _)| now >= *since + config.timeout)
            {
                // Left unanswered (a C# node at its tip): another may be asked.
                if let Some((peer, _, _)) = headers_running.take() {
                    fruitless.insert(peer);
                }
            }
            if offering.is_some_and(|(_, since)| now >= since + config.timeout) {
                // Blocks announced and not sent: others may be asked for.
                if let Some((peer, _)) = offering.take() {
                    fruitless.insert(peer);
                }
            }
            let (tip_index, tip_hash) = lock(&tail).tip.unwrap_or((0, UInt256::ZERO));
            let room = u64::from(tip_index) < schedule.next_index() + u64::from(config.window);
            if headers_running.is_none() && room {
                // A peer that announced a block not seen yet, else the
                // highest peer above the last header: first among those not
                // asked in vain, then among all (a peer asked in vain may be
                // the only one with something new).
                let pick = |in_vain: bool| {
                    let worth = live
                        .iter()
                        .filter(|(id, _)| in_vain || !fruitless.contains(id));
                    let fresh = worth
                        .clone()
                        .map(|&(id, _)| id)
                        .find(|id| announced.contains_key(id));
                    let higher = worth
                        .filter(|&&(_, h)| h > tip_index)
                        .max_by_key(|&&(_, h)| h)
                        .map(|&(id, _)| id);
                    fresh.or(higher)
                };
                let chosen = pick(false).or_else(|| pick(true));
                if let Some(peer) = chosen.and_then(|id| manager.peer(id)) {
                    let id = peer.id();
                    let hashes = announced.remove(&id).unwrap_or_default();
                    headers_running = Some((id, now, hashes));
                    let tx = tx.clone();
                    let msg = P::ask_headers(tip_index, tip_hash);
                    manager.inner.spawn(async move {
                        let answer = peer.request(msg).await;
                        let _ = tx.send(Note::Headers(id, answer)).await;
                    });
                }
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
            outcome.requests += 1;
            let from = request.peer;
            manager.inner.spawn(async move {
                // Each block goes to the schedule as it arrives, to be
                // checked at once; nothing of the range is gathered here.
                let each = |m| {
                    let _ = tx.try_send(Note::Blocks(id, from, m));
                };
                let answer = peer
                    .request_each_within(msg, limit, GROUP_BYTES, each)
                    .await;
                let _ = tx.send(Note::Answer(id, from, answer)).await;
            });
        }
        hand_out_or_return!();
        if by_headers {
            // Hashes below the next block are no longer needed.
            let next = u32::try_from(schedule.next_index()).unwrap_or(u32::MAX);
            let mut t = lock(&tail);
            while t.ahead.first_key_value().is_some_and(|(&i, _)| i < next) {
                t.ahead.pop_first();
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
        // Wait for an answer, an announcement, a deadline, or the next look
        // at the peers. The timer is set again only when the instant
        // changes (or it fired).
        if now >= next_refresh {
            next_refresh = now + REFRESH;
        }
        let mut wake = schedule
            .poll_timeout()
            .map_or(next_refresh, |t| t.min(next_refresh));
        if check.is_some() {
            wake = wake.min(next_check);
        }
        if timer_at != Some(wake) {
            timer.set_at(wake);
            timer_at = Some(wake);
        }
        let note = future::or(async { rx.recv().await.ok().map(Ok) }, async {
            let heard = async {
                match &announcements {
                    Some(a) => a.recv().await.ok().map(Err),
                    None => std::future::pending().await,
                }
            };
            let pushed = async {
                match &pushed {
                    Some(p) => p.recv().await.ok().map(|(id, m)| Ok(Note::Pushed(id, m))),
                    None => std::future::pending().await,
                }
            };
            future::or(future::or(heard, pushed), async {
                (&mut timer).await;
                timer_at = None;
                None
            })
            .await
        })
        .await;
        let note = match note {
            None => continue,
            Some(Err(Announcement { peer, hashes })) => {
                let fresh = hashes.iter().any(|h| !seen.contains(h));
                // A peer that joined since the last look at the peers is
                // usable too: its announcement is not lost.
                let usable = !dropped.contains(&peer) && manager.peer(peer).is_some();
                if fresh && usable {
                    if by_headers {
                        announced.insert(peer, hashes);
                    } else if pinging.insert(peer) {
                        if let Some(p) = manager.peer(peer) {
                            let tx = tx.clone();
                            manager.inner.spawn(async move {
                                let _ = p.ping().await;
                                let _ = tx.send(Note::Pinged(peer)).await;
                            });
                        }
                    }
                }
                continue;
            }
            Some(Ok(note)) => note,
        };
        // The notes that came meanwhile are handled together, before the
        // next look at the peers: at most NOTE_BATCH of them.
        let mut batch = vec![note];
        while batch.len() < NOTE_BATCH {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        for note in batch {
            let (id, peer, answer) = match note {
                Note::Blocks(id, peer, messages) => {
                    for block in messages.into_iter().filter_map(P::block) {
                        // A dropped peer's answers still on their way are
                        // not looked at.
                        if dropped.contains(&peer) {
                            break;
                        }
                        if let Some((index, why)) = conflict(&schedule, &block) {
                            fault(peer, Some(index), &why, &mut dropped, &mut outcome.faults);
                            schedule.remove_peer(peer);
                        } else if let Arrival::Bad { peer, why } = schedule.on_block(id, block, now)
                        {
                            fault(peer, None, &why, &mut dropped, &mut outcome.faults);
                        }
                        // What is ready goes out at once: past twice the
                        // byte bound only the next block is taken.
                        hand_out_or_return!();
                    }
                    continue;
                }
                Note::Answer(id, peer, answer) => (id, peer, answer),
                Note::Pinged(peer) => {
                    pinging.remove(&peer);
                    continue;
                }
                Note::Pushed(peer, msg) => {
                    // Taken only as the next height to hand out, checked as
                    // an answer; otherwise that height is fetched as usual.
                    let Some(block) = P::block(msg) else { continue };
                    if dropped.contains(&peer) {
                        continue;
                    }
                    if let Some((index, why)) = conflict(&schedule, &block) {
                        fault(peer, Some(index), &why, &mut dropped, &mut outcome.faults);
                        schedule.remove_peer(peer);
                        continue;
                    }
                    let (index, hash) = (block.index(), block.hash());
                    if u64::from(index) != schedule.next_index() {
                        continue;
                    }
                    if by_headers {
                        let mut t = lock(&tail);
                        let signed = |s: &Signers| block_signed(&block, s);
                        match t.extend(index, hash, block.prev_hash(), signed) {
                            Ok(true) => {
                                drop(t);
                                seen.insert(hash);
                                on_header(&P::block_header(&P::chain_block(block.clone())));
                            }
                            Ok(false) if t.ahead.get(&index) == Some(&hash) => {}
                            Ok(false) => continue,
                            Err(why) => {
                                drop(t);
                                fault(peer, Some(index), &why, &mut dropped, &mut outcome.faults);
                                schedule.remove_peer(peer);
                                continue;
                            }
                        }
                    }
                    // Asked of that peer already (its height rose with this
                    // very block): the block is its answer.
                    let arrival = match schedule.request_covering(peer, index) {
                        Some(id) => schedule.on_block(id, block, now),
                        None => schedule.offer(block, peer),
                    };
                    if let Arrival::Bad { peer, why } = arrival {
                        fault(peer, Some(index), &why, &mut dropped, &mut outcome.faults);
                    }
                    continue;
                }
                Note::Offered(peer, answer) => {
                    if offering.is_some_and(|(p, _)| p == peer) {
                        offering = None;
                    }
                    release(&mut running, peer);
                    // Nothing new from it: not asked first again.
                    fruitless.insert(peer);
                    for block in answer.into_iter().flatten().filter_map(P::block) {
                        if dropped.contains(&peer) {
                            break;
                        }
                        if let Some((index, why)) = conflict(&schedule, &block) {
                            fault(peer, Some(index), &why, &mut dropped, &mut outcome.faults);
                            schedule.remove_peer(peer);
                            break;
                        }
                        let (index, hash) = (block.index(), block.hash());
                        let signed = |s: &Signers| block_signed(&block, s);
                        match lock(&tail).extend(index, hash, block.prev_hash(), signed) {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(why) => {
                                fault(peer, Some(index), &why, &mut dropped, &mut outcome.faults);
                                schedule.remove_peer(peer);
                                break;
                            }
                        }
                        fruitless.remove(&peer);
                        seen.insert(hash);
                        on_header(&P::block_header(&P::chain_block(block.clone())));
                        schedule.set_target(index);
                        if let Arrival::Bad { peer, why } = schedule.offer(block, peer) {
                            fault(peer, Some(index), &why, &mut dropped, &mut outcome.faults);
                            break;
                        }
                    }
                    continue;
                }
                Note::Headers(peer, answer) => {
                    let mut announced_hashes = Vec::new();
                    if let Some((p, since, hashes)) = headers_running.take() {
                        if p == peer {
                            announced_hashes = hashes;
                        } else {
                            headers_running = Some((p, since, hashes));
                        }
                    }
                    let headers = answer
                        .into_iter()
                        .flatten()
                        .filter_map(|m| P::headers(&m))
                        .flatten();
                    let mut advanced = false;
                    let mut t = lock(&tail);
                    for header in headers {
                        let (index, hash) = (P::header_index(&header), P::header_hash(&header));
                        let prev = P::header_prev_hash(&header);
                        let tip_index = t.tip.map_or(0, |t| t.0);
                        let why = if index <= tip_index {
                            // An answer to an earlier `getheaders`: known
                            // headers are skipped, another one is wrong.
                            match t.ahead.get(&index) {
                                Some(&ours) if ours != hash => Some(format!(
                                    "header {index} is {hash}, the header we have there is {ours}"
                                )),
                                _ => None,
                            }
                        } else {
                            let signed = |s: &Signers| header_signed::<P>(&header, s);
                            match t.extend(index, hash, prev, signed) {
                                Ok(true) => {
                                    advanced = true;
                                    seen.insert(hash);
                                    on_header(&header);
                                    None
                                }
                                Ok(false) => Some(format!(
                                    "header {index} does not follow the last header known ({tip_index})"
                                )),
                                Err(why) => Some(why),
                            }
                        };
                        if let Some(why) = why {
                            drop(t);
                            fault(peer, Some(index), &why, &mut dropped, &mut outcome.faults);
                            break;
                        }
                    }
                    // Announced blocks the headers did not reach: asked of their
                    // announcer by hash, and offered to the schedule.
                    let unseen: Vec<UInt256> = announced_hashes
                        .into_iter()
                        .filter(|h| !seen.contains(h))
                        .collect();
                    let usable = !dropped.contains(&peer) && offering.is_none();
                    let offer = manager.peer(peer).filter(|_| usable && !unseen.is_empty());
                    if advanced {
                        fruitless.remove(&peer);
                    } else if offer.is_none() {
                        // Nothing new from it (the blocks it offers may be).
                        fruitless.insert(peer);
                    }
                    if let Some(p) = offer {
                        offering = Some((peer, now));
                        // It holds one of the peer's request slots.
                        *running.entry(peer).or_default() += 1;
                        let tx = tx.clone();
                        let msg = P::ask_by_hash(unseen);
                        manager.inner.spawn(async move {
                            let answer = p.request_within(msg, limit).await;
                            let _ = tx.send(Note::Offered(peer, answer)).await;
                        });
                    }
                    continue;
                }
            };
            release(&mut running, peer);
            match answer {
                Ok(()) => {}
                Err(ManagerError::Busy { .. }) => {
                    // Not sent: the peer is left alone for a while rather than
                    // asked again at once.
                    busy.insert(peer, now + REFRESH);
                }
                Err(error) => tracing::debug!(request = id, %error, "block request failed"),
            }
            schedule.on_end(id);
        }
    }
}

/// Hands out the blocks that are ready, in order, to `on_block`, counting
/// them in `outcome`; a block that fails its last checks faults its peer.
/// `Break` once `on_block` says stop.
fn hand_out<B: Fetched>(
    schedule: &mut Schedule<B>,
    outcome: &mut DownloadOutcome,
    seen: &mut KnownSet,
    dropped: &mut HashSet<PeerId>,
    on_block: &mut impl FnMut(B, PeerId) -> ControlFlow<()>,
    fault: &impl Fn(PeerId, Option<u32>, &str, &mut HashSet<PeerId>, &mut u32),
) -> ControlFlow<()> {
    while let Some(ready) = schedule.poll_ready() {
        match ready {
            Ready::Block { block, from } => {
                outcome.count += 1;
                outcome.bytes += block.wire_size() as u64;
                outcome.tip_index = Some(block.index());
                outcome.tip_hash = Some(block.hash());
                seen.insert(block.hash());
                on_block(block, from)?;
            }
            Ready::Fault { peer, why, index } => {
                fault(peer, Some(index), &why, dropped, &mut outcome.faults);
            }
        }
    }
    ControlFlow::Continue(())
}

/// Why `block` is not ours, when it is another block at a height held or
/// handed out lately (see [`Schedule::conflict`]): its height and the reason.
fn conflict<B: Fetched>(schedule: &Schedule<B>, block: &B) -> Option<(u32, String)> {
    let ours = schedule.conflict(block)?;
    let index = block.index();
    let why = format!(
        "block {index} is {}, the block we have there is {ours}",
        block.hash()
    );
    Some((index, why))
}

fn log_abandoned(a: &Abandoned) {
    tracing::debug!(
        request = a.id,
        peer = a.peer,
        "block request past its deadline"
    );
}
