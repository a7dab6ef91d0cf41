//! The rules of the block download pipeline, as a plain data structure: no
//! sockets, no tasks, no clock of its own (every input takes `now`).
//!
//! A [`Schedule`] fetches the blocks of heights `next..=target` from many
//! peers and hands them out strictly in order:
//!
//! - **A bounded window, in heights and in bytes.** Only heights below
//!   `next + window` ([`WINDOW`], 8000) are asked for, in ranges of at most
//!   `range` heights, cut shorter when there are many peers so that each
//!   has work. Nothing above the window is held, so the blocks buffered are
//!   at most `window` of them; and once the blocks held out of order weigh
//!   `max_held_bytes` ([`MAX_HELD_BYTES`], 128 MiB), only the gaps below
//!   the lowest of them are asked for; what the requests already out bring
//!   is kept up to twice that, and past it only the next block to hand out
//!   is taken (the others are dropped as they come and asked for again
//!   later, their peers not blamed). So the blocks held never weigh more
//!   than `2 × max_held_bytes` and one block, whatever the peers send (N3
//!   MainNet blocks average a few KiB: 8000 of them are a few tens of
//!   MiB). A block whose hash is not
//!   its header's is dropped as it arrives (the blocks of a request are
//!   checked in groups of at most 4 MiB as they come, not at its end), so
//!   with the headers known only the chain's own blocks are ever held.
//! - **Free peers, least loaded, fastest.** A range goes to a peer that has
//!   its heights, has fewer than `per_peer` of our requests outstanding and
//!   has not tried it before, chosen by the manager's routing rule (least
//!   loaded, then fastest per block, then least recently used). The lowest
//!   ranges are given out first. A peer lower than a range's end gets the
//!   part it has.
//! - **A deadline per request.** A request not complete within `timeout`
//!   is abandoned: its peer is marked slow (it keeps its connection; being
//!   slow is no offence) and what is still missing goes to another peer.
//!   When the window is full (what waits, if anything, only busy peers
//!   have the heights for) and a peer is idle, the range holding up the
//!   window is taken from its peer once it has been out twice as long as
//!   the fastest idle peer would take for it (by that peer's measured time
//!   per block), and after `steal_after` at the latest, so that one slow
//!   peer never stalls the pipeline.
//! - **Never the same peer twice for one range**, as long as another peer
//!   that has the heights has not tried it; once every such peer has, the
//!   range starts a new round rather than waiting forever.
//! - **Out of order in, in order out.** Blocks are buffered by height and
//!   handed out ([`Schedule::poll_ready`]) only when every lower height has
//!   been. Each block is checked twice: on arrival (its Merkle root and
//!   transactions, its height, its hash against the expected one when the
//!   header is known) and when handed out (its `prev_hash` against the hash
//!   of the block handed out before it, the expected hash again, and, with
//!   [`ScheduleConfig::witnesses`] set, its validators' signatures against
//!   the contract the block before it names). A
//!   block that fails is never handed out: its peer is reported
//!   ([`Ready::Fault`], [`Arrival::Bad`]) and its heights fetched elsewhere.
//!
//! The driver, [`download`], turns [`Request`]s into `getblockbyindex`
//! (N3) or `getdata` (Legacy) requests to the manager's peers, whose
//! answers each peer matches by the request contract, and feeds the blocks
//! back.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use super::PeerId;
use super::routing::{self, Candidate};
use crate::wire::{Encode, UInt160, UInt256, legacy, n3, witness};

pub(crate) mod driver;
pub use driver::{BlockSource, DownloadError, DownloadOutcome, SEEN, download, follow};

/// Heights ahead of the next block to hand out that may be asked for
/// (four times neo-go's block queue): enough for eight peers each to have
/// their [`PER_PEER`] requests of a full range out and as many waiting, or
/// more peers with shorter ranges. What the blocks held may weigh is bounded
/// apart, by [`MAX_HELD_BYTES`].
pub const WINDOW: u32 = 8000;
/// Most heights in one request: the most an N3 node answers to one
/// `getblockbyindex`, and a Legacy node to one `getdata`.
pub const RANGE: u32 = 500;
/// Fewest heights in one request when ranges are cut shorter to spread the
/// window over many peers (see [`ScheduleConfig::range`]).
pub const MIN_RANGE: u32 = 50;
/// Bytes of blocks held out of order past which no request is made above
/// the lowest height held (only the gaps below it are asked for, so that
/// what is held can be handed out).
pub const MAX_HELD_BYTES: usize = 128 << 20;
/// Most requests of ours one peer answers at once: the next range is on
/// its way while the peer sends the one before, so no round trip is idle.
/// The pipeline's own allowance, apart from the manager's
/// [`max_in_flight_per_kind`](super::ManagerConfig::max_in_flight_per_kind)
/// for routed requests.
pub const PER_PEER: u32 = 2;
/// How long a request may take before what it still owes goes elsewhere.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the range holding up a full window may stay with its peer
/// while another peer is idle.
pub const STEAL_AFTER: Duration = Duration::from_secs(2);

/// A block as the pipeline checks it; implemented for both generations.
pub trait Fetched: Clone + fmt::Debug + Send + 'static {
    /// Its height.
    fn index(&self) -> u32;
    /// Its hash.
    fn hash(&self) -> UInt256;
    /// The hash of the block before it.
    fn prev_hash(&self) -> UInt256;
    /// Its Merkle root against its transactions, and no transaction twice.
    fn check(&self) -> Result<(), String>;
    /// Its size on the wire.
    fn wire_size(&self) -> usize;
    /// How many transactions it holds.
    fn tx_count(&self) -> usize;
    /// The script hash of the contract that must sign the next block
    /// (`next_consensus`); `None` for blocks that carry no witness.
    fn next_consensus(&self) -> Option<UInt160> {
        None
    }
    /// Whether it is signed by the contract whose script hash is `signer`
    /// (see [`wire::witness`](crate::wire::witness)); N3 signs for the
    /// network `network`. Blocks that carry no witness fail.
    fn check_witness(&self, network: u32, signer: &UInt160) -> Result<(), String> {
        let _ = (network, signer);
        Err("blocks of this type carry no witness".into())
    }
}

impl Fetched for n3::Block {
    fn index(&self) -> u32 {
        self.header.index
    }
    fn hash(&self) -> UInt256 {
        n3::Block::hash(self)
    }
    fn prev_hash(&self) -> UInt256 {
        self.header.prev_hash
    }
    fn check(&self) -> Result<(), String> {
        n3::Block::check(self).map_err(|e| e.to_string())
    }
    fn wire_size(&self) -> usize {
        self.size()
    }
    fn tx_count(&self) -> usize {
        self.transactions.len()
    }
    fn next_consensus(&self) -> Option<UInt160> {
        Some(self.header.next_consensus)
    }
    fn check_witness(&self, network: u32, signer: &UInt160) -> Result<(), String> {
        witness::check_n3(&self.header, network, signer).map_err(|e| e.to_string())
    }
}

impl Fetched for legacy::Block {
    fn index(&self) -> u32 {
        legacy::Block::index(self)
    }
    fn hash(&self) -> UInt256 {
        legacy::Block::hash(self)
    }
    fn prev_hash(&self) -> UInt256 {
        legacy::Block::prev_hash(self)
    }
    fn check(&self) -> Result<(), String> {
        legacy::Block::check(self).map_err(|e| e.to_string())
    }
    fn wire_size(&self) -> usize {
        self.size()
    }
    fn tx_count(&self) -> usize {
        self.transactions.len()
    }
    fn next_consensus(&self) -> Option<UInt160> {
        Some(self.base.next_consensus)
    }
    fn check_witness(&self, _network: u32, signer: &UInt160) -> Result<(), String> {
        witness::check_legacy(&self.base, signer).map_err(|e| e.to_string())
    }
}

/// Checking the validators' signatures of each block before it is handed
/// out ([`ScheduleConfig::witnesses`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signers {
    /// The network the blocks are signed for (N3 signs the network magic
    /// with the block hash; Legacy ignores it).
    pub network: u32,
    /// The `next_consensus` of the block before the first one fetched:
    /// the contract that must sign it. Each block then names the signer of
    /// the next.
    pub first: UInt160,
}

/// How a [`Schedule`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Heights ahead of the next one to hand out that may be asked for
    /// (default [`WINDOW`]); bounds the blocks held.
    pub window: u32,
    /// Most heights in one request (default [`RANGE`]; N3 answers at most
    /// 500 a request). New work is cut shorter when the window would
    /// otherwise not give every peer its `per_peer` requests twice over:
    /// `window / (2 × peers × per_peer)` heights, [`MIN_RANGE`] at least.
    pub range: u32,
    /// Most requests one peer answers at once (default [`PER_PEER`]).
    pub per_peer: u32,
    /// Deadline of one request (default [`REQUEST_TIMEOUT`]).
    pub timeout: Duration,
    /// How long the range holding up a full window may stay with its peer
    /// while another is idle (default [`STEAL_AFTER`]).
    pub steal_after: Duration,
    /// Bytes of blocks held out of order past which only heights below the
    /// lowest one held are asked for (default [`MAX_HELD_BYTES`]). What the
    /// requests already out bring is kept up to twice this; past that only
    /// the next block to hand out is taken, so the blocks held weigh at
    /// most `2 × max_held_bytes` and one block, and are never more than
    /// `window` blocks.
    pub max_held_bytes: usize,
    /// Check each block's witness before it is handed out (off by
    /// default): it must be signed by the contract the block before names
    /// ([`wire::witness`](crate::wire::witness)), so that a peer cannot
    /// pass off a block of its own making that links to the chain. A block
    /// that fails is a fault of its peer, as a block that does not link.
    /// A Legacy follower checks the headers it learns at the tip
    /// (`getheaders`, and the blocks its announcers send) the same way
    /// before it asks for their blocks by hash, so that a forged header
    /// never makes an honest peer's block look wrong. A
    /// [`Follower`](crate::manager::Follower) takes the signers from its
    /// chain (the `first` given is used only when the chain does not say).
    /// It costs about 2 ms a MainNet block (five signatures) in a release
    /// build, on the thread that hands blocks out.
    pub witnesses: Option<Signers>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            window: WINDOW,
            range: RANGE,
            per_peer: PER_PEER,
            timeout: REQUEST_TIMEOUT,
            steal_after: STEAL_AFTER,
            max_held_bytes: MAX_HELD_BYTES,
            witnesses: None,
        }
    }
}

/// A request's number, unique in its [`Schedule`].
pub type RequestId = u64;

/// A request to send: heights `start..start + count` to peer `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its number: the answers are fed back with it.
    pub id: RequestId,
    /// The peer to ask.
    pub peer: PeerId,
    /// The first height.
    pub start: u32,
    /// How many heights (at least 1, at most the configured range).
    pub count: u32,
    /// The expected hash of each height, where known (Legacy asks by them).
    pub hashes: Vec<Option<UInt256>>,
}

/// What became of a block fed to [`Schedule::on_block`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// Kept, to be handed out in order.
    Kept,
    /// Not wanted (any more): its request was abandoned, its height is
    /// already held or handed out, or the blocks held weigh twice
    /// [`ScheduleConfig::max_held_bytes`] and it is not the next one to
    /// hand out (its height is asked for again later). Dropped, and no
    /// fault.
    Stale,
    /// Wrong: the peer's requests are abandoned and what they owed goes
    /// elsewhere. The driver drops and penalises the peer.
    Bad {
        /// The peer.
        peer: PeerId,
        /// What was wrong.
        why: String,
    },
}

/// What [`Schedule::poll_ready`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready<B> {
    /// The next block, checked; `from` served it.
    Block {
        /// The block.
        block: B,
        /// The peer it came from.
        from: PeerId,
    },
    /// The next block came from `peer` and did not follow the blocks before
    /// it: dropped, fetched again elsewhere. The driver drops and penalises
    /// the peer.
    Fault {
        /// The peer.
        peer: PeerId,
        /// The height.
        index: u32,
        /// What was wrong.
        why: String,
    },
}

/// A request that was abandoned: the driver stops listening to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned {
    /// The request.
    pub id: RequestId,
    /// Its peer.
    pub peer: PeerId,
}

#[derive(Debug, Clone)]
struct Flight {
    id: RequestId,
    peer: PeerId,
    since: Instant,
    /// Its heights received so far (each once: a second copy is stale).
    received: u32,
}

/// Heights `start..=end`, none of them held yet when it was made.
#[derive(Debug, Clone)]
struct Work {
    end: u32,
    /// Peers that were given it.
    tried: Vec<PeerId>,
    flight: Option<Flight>,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    height: u32,
    in_flight: u32,
    /// Smoothed time per block of its requests.
    per_block: Option<Duration>,
    last_used: u64,
}

#[derive(Debug, Clone)]
struct Held<B> {
    block: B,
    from: PeerId,
    request: RequestId,
    size: usize,
}

/// The scheduling state of one download; see the [module](self) docs.
pub struct Schedule<B: Fetched> {
    config: ScheduleConfig,
    /// The next height to hand out.
    next: u64,
    /// The last height wanted.
    target: u64,
    /// Heights below it are covered by work, held or handed out.
    planned: u64,
    /// Outstanding work by first height: disjoint, heights not held.
    work: BTreeMap<u32, Work>,
    /// Received blocks not handed out yet, by height.
    held: BTreeMap<u32, Held<B>>,
    held_bytes: usize,
    /// The hash of the block at `next - 1`, once known.
    last_hash: Option<UInt256>,
    /// With witnesses checked: the contract that must sign the block at
    /// `next` (named by the block at `next - 1`).
    signer: Option<UInt160>,
    /// The hashes of the last blocks handed out, by height: at most
    /// `window` of them.
    recent: BTreeMap<u32, UInt256>,
    peers: HashMap<PeerId, Slot>,
    /// The work of each live request, by its first height.
    requests: HashMap<RequestId, u32>,
    next_request: RequestId,
    clock: u64,
    expected: Box<dyn Fn(u32) -> Option<UInt256> + Send + Sync>,
}

impl<B: Fetched> fmt::Debug for Schedule<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("next", &self.next)
            .field("target", &self.target)
            .field("work", &self.work.len())
            .field("held", &self.held.len())
            .field("peers", &self.peers.len())
            .finish()
    }
}

impl<B: Fetched> Schedule<B> {
    /// A download of heights `from..=target` (nothing while `target` is
    /// below `from`). `after` is the hash of the block at `from - 1`, which
    /// the first block must follow (`None`: not checked, e.g. from
    /// genesis). `expected` gives the hash of a height when its header is
    /// known (every block is then checked against it; Legacy needs it for
    /// every height, since it asks by hash).
    pub fn new(
        config: ScheduleConfig,
        from: u32,
        target: Option<u32>,
        after: Option<UInt256>,
        expected: impl Fn(u32) -> Option<UInt256> + Send + Sync + 'static,
    ) -> Self {
        let config = ScheduleConfig {
            window: config.window.max(1),
            range: config.range.clamp(1, n3::MAX_BLOCKS_PER_REQUEST as u32),
            per_peer: config.per_peer.max(1),
            ..config
        };
        Schedule {
            config,
            next: u64::from(from),
            target: target.map_or(u64::from(from), |t| u64::from(t) + 1),
            planned: u64::from(from),
            work: BTreeMap::new(),
            held: BTreeMap::new(),
            held_bytes: 0,
            last_hash: after,
            signer: config.witnesses.map(|w| w.first),
            recent: BTreeMap::new(),
            peers: HashMap::new(),
            requests: HashMap::new(),
            next_request: 0,
            clock: 0,
            expected: Box::new(expected),
        }
    }

    // ---- getters ----

    /// The settings.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The next height to hand out.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// The last height wanted: the height before the first one while
    /// nothing is (`None` when that is below 0).
    pub fn target(&self) -> Option<u32> {
        self.target.checked_sub(1).map(|t| t as u32)
    }

    /// True when every wanted height has been handed out.
    pub fn is_done(&self) -> bool {
        self.next >= self.target
    }

    /// Blocks held, waiting for a lower height.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Bytes of the blocks held.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Requests outstanding.
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    /// The peer a live request was sent to.
    pub fn request_peer(&self, id: RequestId) -> Option<PeerId> {
        let start = self.requests.get(&id)?;
        Some(self.work.get(start)?.flight.as_ref()?.peer)
    }

    /// The live request of `peer` whose heights hold `index`, if any.
    pub(crate) fn request_covering(&self, peer: PeerId, index: u32) -> Option<RequestId> {
        let (_, work) = self.work.range(..=index).next_back()?;
        let flight = work.flight.as_ref()?;
        (work.end >= index && flight.peer == peer).then_some(flight.id)
    }

    /// The hash of the block we hold or handed out at `block`'s height
    /// when it is another block: a peer offering `block` offers a block of
    /// another chain at a height we already have. `None` when `block` is
    /// ours, or its height is neither held nor among the last `window`
    /// handed out (nor the one before the first, when its hash was given).
    pub fn conflict(&self, block: &B) -> Option<UInt256> {
        let index = block.index();
        let ours = match self.held.get(&index) {
            Some(held) => held.block.hash(),
            None if u64::from(index) + 1 == self.next => self.last_hash?,
            None => *self.recent.get(&index)?,
        };
        (ours != block.hash()).then_some(ours)
    }

    /// The earliest instant at which [`Schedule::handle_timeout`] has
    /// something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let head_steal = self.steal_candidate().map(|(_, due)| due);
        self.work
            .values()
            .filter_map(|w| w.flight.as_ref())
            .map(|f| f.since + self.config.timeout)
            .chain(head_steal)
            .min()
    }

    // ---- inputs ----

    /// Raises the last height wanted to `target` (never lowers it).
    pub fn set_target(&mut self, target: u32) {
        self.target = self.target.max(u64::from(target) + 1);
    }

    /// A peer that can serve heights up to `height` (added, or its height
    /// updated: a peer found to have less than it claimed is lowered).
    pub fn set_peer(&mut self, peer: PeerId, height: u32) {
        self.peers.entry(peer).or_default().height = height;
    }

    /// A peer that is gone: its requests are abandoned (returned, for the
    /// driver to stop listening to them) and their heights go elsewhere.
    pub fn remove_peer(&mut self, peer: PeerId) -> Vec<Abandoned> {
        self.peers.remove(&peer);
        let ids: Vec<RequestId> = self
            .work
            .values()
            .filter_map(|w| w.flight.as_ref())
            .filter(|f| f.peer == peer)
            .map(|f| f.id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.abandon(id, false))
            .collect()
    }

    /// The peers known, with their heights.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, u32)> + '_ {
        self.peers.iter().map(|(&id, s)| (id, s.height))
    }

    /// A block that came as an answer to request `id`.
    pub fn on_block(&mut self, id: RequestId, block: B, now: Instant) -> Arrival {
        let index = block.index();
        let Some(&start) = self.requests.get(&id) else {
            return Arrival::Stale;
        };
        let Some(work) = self.work.get(&start) else {
            return Arrival::Stale;
        };
        let end = work.end;
        let Some(peer) = work.flight.as_ref().map(|f| f.peer) else {
            return Arrival::Stale;
        };
        let again = self.held.contains_key(&index) || u64::from(index) < self.next;
        if !(start..=end).contains(&index) || again {
            // The contract matched it to the request, so it is one of its
            // heights: a second copy is the only way here.
            return Arrival::Stale;
        }
        let why = self.fault(&block);
        if let Some(why) = why {
            self.remove_peer(peer);
            return Arrival::Bad { peer, why };
        }
        let size = block.wire_size();
        if self.too_heavy(index, size) {
            // Not counted as received: the request's end gives the height
            // back to the waiting work.
            return Arrival::Stale;
        }
        self.held_bytes += size;
        self.held.insert(
            index,
            Held {
                block,
                from: peer,
                request: id,
                size,
            },
        );
        // None of its heights was held when it was asked, and only its
        // answers bring them: it is complete once each came.
        let received = self
            .work
            .get_mut(&start)
            .and_then(|w| w.flight.as_mut())
            .map_or(0, |f| {
                f.received += 1;
                f.received
            });
        if received > end - start {
            self.finish(id, Some(now));
        }
        Arrival::Kept
    }

    /// A block that came outside the schedule's requests (a peer sent the
    /// block it announced): kept like an answer when its height is wanted
    /// (raising the target to it), inside the window and asked of nobody
    /// yet, and it passes the same checks; then its height is never asked
    /// for. A height held, handed out, beyond the window or being fetched
    /// is [`Arrival::Stale`]. A block that fails the checks is
    /// [`Arrival::Bad`], and `from`'s requests are abandoned.
    pub fn offer(&mut self, block: B, from: PeerId) -> Arrival {
        let index = block.index();
        let at = u64::from(index);
        if at < self.next
            || self.held.contains_key(&index)
            || at >= self.next + u64::from(self.config.window)
        {
            return Arrival::Stale;
        }
        let covering = self
            .work
            .range(..=index)
            .next_back()
            .filter(|(_, w)| w.end >= index)
            .map(|(&start, w)| (start, w.flight.is_some()));
        if let Some((_, true)) = covering {
            // Its request brings it.
            return Arrival::Stale;
        }
        let why = self.fault(&block);
        if let Some(why) = why {
            self.remove_peer(from);
            return Arrival::Bad { peer: from, why };
        }
        let size = block.wire_size();
        if self.too_heavy(index, size) {
            return Arrival::Stale;
        }
        self.set_target(index);
        self.held_bytes += size;
        self.held.insert(
            index,
            Held {
                block,
                from,
                request: RequestId::MAX,
                size,
            },
        );
        if let Some((start, false)) = covering {
            // The waiting work around it loses it.
            if let Some(work) = self.work.remove(&start) {
                self.requeue(start, work);
            }
        }
        Arrival::Kept
    }

    /// Request `id` has ended: every answer came, or the peer failed (it
    /// left, stalled, or owed nothing more). What it did not bring goes to
    /// another peer. Returns whether it was still live.
    pub fn on_end(&mut self, id: RequestId) -> bool {
        self.finish(id, None)
    }

    /// Abandons the requests past their deadline, and the one holding up a
    /// full window when another peer is idle; returns them.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Abandoned> {
        let late: Vec<RequestId> = self
            .work
            .values()
            .filter_map(|w| w.flight.as_ref())
            .filter(|f| now >= f.since + self.config.timeout)
            .map(|f| f.id)
            .collect();
        let mut out: Vec<Abandoned> = late
            .into_iter()
            .filter_map(|id| self.abandon(id, true))
            .collect();
        let steal = self
            .steal_candidate()
            .filter(|&(_, due)| now >= due)
            .map(|(id, _)| id);
        if let Some(steal) = steal {
            out.extend(self.abandon(steal, true));
        }
        out
    }

    // ---- outputs ----

    /// The next request to send, if a peer is free for some wanted range.
    /// Call until `None` after every input.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        self.plan();
        let starts: Vec<u32> = self
            .work
            .iter()
            .filter(|&(&s, w)| w.flight.is_none() && self.may_ask(s))
            .map(|(&s, _)| s)
            .collect();
        for start in starts {
            if let Some(request) = self.assign(start, now) {
                return Some(request);
            }
        }
        None
    }

    /// The next block in order, once every lower one has been handed out.
    pub fn poll_ready(&mut self) -> Option<Ready<B>> {
        let index = u32::try_from(self.next).ok()?;
        let held = self.held.remove(&index)?;
        self.held_bytes -= held.size;
        let hash = held.block.hash();
        let why = if let Some(want) = (self.expected)(index).filter(|w| *w != hash) {
            Some(format!("block {index} is {hash}, its header says {want}"))
        } else {
            match self.last_hash {
                Some(last) if held.block.prev_hash() != last => Some(format!(
                    "block {index} follows {}, not {last}",
                    held.block.prev_hash()
                )),
                _ => self.witness_fault(&held.block),
            }
        };
        if let Some(why) = why {
            let peer = held.from;
            let live = self.requests.contains_key(&held.request);
            self.remove_peer(peer);
            if !live {
                // Its request is over: the height needs work of its own.
                self.work.insert(
                    index,
                    Work {
                        end: index,
                        tried: vec![peer],
                        flight: None,
                    },
                );
                // An offered block may be held above what was planned: its
                // height is covered now, and planning must not replace
                // this work (and forget who tried it).
                self.planned = self.planned.max(u64::from(index) + 1);
            }
            return Some(Ready::Fault { peer, index, why });
        }
        self.next += 1;
        self.last_hash = Some(hash);
        if self.signer.is_some() {
            self.signer = held.block.next_consensus();
        }
        self.recent.insert(index, hash);
        while self.recent.len() > self.config.window as usize {
            self.recent.pop_first();
        }
        Some(Ready::Block {
            block: held.block,
            from: held.from,
        })
    }

    // ---- internals ----

    /// Cuts new work from the wanted heights inside the window.
    fn plan(&mut self) {
        let limit = self
            .target
            .min(self.next + u64::from(self.config.window))
            .min(u64::from(u32::MAX) + 1);
        let range = u64::from(self.cut());
        while self.planned < limit {
            let start = self.planned;
            let end = (start + range).min(limit) - 1;
            // Heights held already (offered) are left out.
            self.requeue(
                start as u32,
                Work {
                    end: end as u32,
                    tried: Vec::new(),
                    flight: None,
                },
            );
            self.planned = end + 1;
        }
    }

    /// The heights of new work: the configured range, shorter when the
    /// window would not give every peer its requests twice over.
    fn cut(&self) -> u32 {
        let c = &self.config;
        let peers = u32::try_from(self.peers.len()).unwrap_or(u32::MAX).max(1);
        let spread = c.window / peers.saturating_mul(c.per_peer).saturating_mul(2);
        spread.clamp(MIN_RANGE.min(c.range), c.range)
    }

    /// Whether a block of `size` bytes at `index` would take the blocks
    /// held past twice their byte bound: then only the next block to hand
    /// out is taken (it leaves at the next [`Schedule::poll_ready`]).
    fn too_heavy(&self, index: u32, size: usize) -> bool {
        let hard = self.config.max_held_bytes.saturating_mul(2);
        u64::from(index) != self.next && self.held_bytes.saturating_add(size) > hard
    }

    /// Whether waiting work at `start` may be asked for: always, unless the
    /// blocks held are over their byte bound and it lies above the lowest
    /// of them.
    fn may_ask(&self, start: u32) -> bool {
        self.held_bytes < self.config.max_held_bytes
            || self
                .held
                .first_key_value()
                .is_none_or(|(&low, _)| start < low)
    }

    fn candidates(&self) -> impl Iterator<Item = Candidate> + '_ {
        self.peers.iter().map(|(&id, s)| Candidate {
            id,
            height: s.height,
            in_flight_kind: s.in_flight,
            in_flight: s.in_flight,
            rtt: s.per_block,
            last_used: s.last_used,
        })
    }

    /// Gives the waiting work at `start` to the best peer for it.
    fn assign(&mut self, start: u32, now: Instant) -> Option<Request> {
        let work = self.work.get(&start)?;
        let end = work.end;
        let per_peer = self.config.per_peer;
        // Every peer that has the start tried it: a new round.
        let fresh = self
            .peers
            .iter()
            .any(|(id, s)| s.height >= start && !work.tried.contains(id));
        let excluded: &[PeerId] = if fresh { &work.tried } else { &[] };
        let peer = routing::choose(self.candidates(), end, per_peer, excluded)
            .or_else(|| routing::choose(self.candidates(), start, per_peer, excluded))?;
        let height = self.peers.get(&peer)?.height;
        let mut work = self.work.remove(&start)?;
        if height < work.end {
            // The peer has only the first part: the rest waits for another,
            // still in its round (none of it was given out in a new one).
            self.work.insert(
                height + 1,
                Work {
                    end: work.end,
                    tried: work.tried.clone(),
                    flight: None,
                },
            );
            work.end = height;
        }
        if !fresh {
            work.tried.clear();
        }
        let id = self.next_request;
        self.next_request += 1;
        self.clock += 1;
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.in_flight += 1;
            slot.last_used = self.clock;
        }
        work.tried.push(peer);
        work.flight = Some(Flight {
            id,
            peer,
            since: now,
            received: 0,
        });
        let count = work.end - start + 1;
        self.work.insert(start, work);
        self.requests.insert(id, start);
        Some(Request {
            id,
            peer,
            start,
            count,
            hashes: (start..=start + (count - 1)).map(&self.expected).collect(),
        })
    }

    /// With witnesses checked, why `block` (the next to hand out) is not
    /// signed by the contract the block before it names, if it is not.
    fn witness_fault(&self, block: &B) -> Option<String> {
        let network = self.config.witnesses?.network;
        let Some(signer) = self.signer else {
            return Some(format!(
                "block {}: the block before names no signer",
                block.index()
            ));
        };
        block
            .check_witness(network, &signer)
            .err()
            .map(|e| format!("block {}: {e}", block.index()))
    }

    /// What is wrong with `block`, if anything: its own checks (Merkle
    /// root, transactions), then its hash against the expected one.
    fn fault(&self, block: &B) -> Option<String> {
        let index = block.index();
        match block.check() {
            Err(e) => Some(format!("block {index}: {e}")),
            Ok(()) => match (self.expected)(index) {
                Some(want) if want != block.hash() => Some(format!(
                    "block {index} is {}, its header says {want}",
                    block.hash()
                )),
                _ => None,
            },
        }
    }

    /// The request holding up a full window (no waiting work a free peer
    /// could take) while a peer that has not tried its heights is idle, and
    /// when it is due to be taken from its peer: once out twice as long as the fastest such idle peer would
    /// take for it (by its measured time per block; an unmeasured peer
    /// gives no estimate), and `steal_after` old at the latest.
    fn steal_candidate(&self) -> Option<(RequestId, Instant)> {
        let full = self.planned >= self.target.min(self.next + u64::from(self.config.window))
            || self.held_bytes >= self.config.max_held_bytes;
        // Waiting work a free peer has the heights for goes out without
        // stealing; work only busy peers could take keeps no one idle.
        let waiting = self.work.iter().any(|(&s, w)| {
            w.flight.is_none()
                && self.may_ask(s)
                && self
                    .peers
                    .values()
                    .any(|p| p.in_flight < self.config.per_peer && p.height >= s)
        });
        if !full || waiting {
            return None;
        }
        let next = u32::try_from(self.next).ok()?;
        let (&start, work) = self.work.range(..=next).next_back()?;
        let flight = work.flight.as_ref().filter(|_| work.end >= next)?;
        let idle: Vec<&Slot> = self
            .peers
            .iter()
            .filter(|(id, s)| s.in_flight == 0 && s.height >= next && !work.tried.contains(id))
            .map(|(_, s)| s)
            .collect();
        if idle.is_empty() {
            return None;
        }
        let count = work.end - start + 1;
        let quickest = idle
            .iter()
            .filter_map(|s| s.per_block)
            .min()
            .map(|per_block| per_block.saturating_mul(count.saturating_mul(2)));
        let after = quickest.map_or(self.config.steal_after, |q| q.min(self.config.steal_after));
        Some((flight.id, flight.since + after))
    }

    /// Ends request `id`; `completed` is when every height came (its
    /// peer's speed is then measured). What it did not bring becomes
    /// waiting work.
    fn finish(&mut self, id: RequestId, completed: Option<Instant>) -> bool {
        let Some(start) = self.requests.remove(&id) else {
            return false;
        };
        let Some(mut work) = self.work.remove(&start) else {
            return false;
        };
        let Some(flight) = work.flight.take() else {
            return false;
        };
        let count = work.end - start + 1;
        if let Some(slot) = self.peers.get_mut(&flight.peer) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            if let Some(now) = completed {
                let sample = now.saturating_duration_since(flight.since) / count;
                slot.per_block = Some(slot.per_block.map_or(sample, |r| (r * 3 + sample) / 4));
            }
        }
        self.requeue(start, work);
        true
    }

    /// Abandons live request `id`; a `slow` peer is marked so (it was too
    /// slow for its deadline).
    fn abandon(&mut self, id: RequestId, slow: bool) -> Option<Abandoned> {
        let peer = self.request_peer(id)?;
        if slow {
            if let Some(slot) = self.peers.get_mut(&peer) {
                let timeout = self.config.timeout;
                slot.per_block = Some(slot.per_block.map_or(timeout, |r| r.max(timeout)));
            }
        }
        self.finish(id, None);
        Some(Abandoned { id, peer })
    }

    /// Puts back, as waiting work, the heights of `work` (which started at
    /// `start`) that are neither held nor handed out.
    fn requeue(&mut self, start: u32, work: Work) {
        let from = u64::from(start).max(self.next);
        let mut run: Option<u32> = None;
        for h in from..=u64::from(work.end) {
            let h = h as u32;
            let missing = !self.held.contains_key(&h);
            match (missing, run) {
                (true, None) => run = Some(h),
                (false, Some(s)) => {
                    self.waiting(s, h - 1, &work.tried);
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(s) = run {
            self.waiting(s, work.end, &work.tried);
        }
    }

    fn waiting(&mut self, start: u32, end: u32, tried: &[PeerId]) {
        self.work.insert(
            start,
            Work {
                end,
                tried: tried.to_vec(),
                flight: None,
            },
        );
    }
}

#[cfg(test)]
mod tests;
