//! `neo-peer relay`: a relay node for either generation.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{Chain, ChainStore, Generation};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::download::{BlockSource, DownloadError};
use neo_peer::manager::{
    FollowError, FollowEvent, Follower, ManagedPeer, ManagerConfig, PeerId, PeerManager,
    RelayConfig, RelayStats,
};
use neo_peer::peer::{Direction, Handler, Peer};
use neo_peer::protocol::{Legacy, N3};
use neo_peer::relay::{Inventory, Item, ItemKind};
use neo_peer::wire::{UInt256, legacy, n3};
use serde_json::json;

use crate::Protocol;
use crate::net::{TimeoutArgs, config, network};
use crate::output::{Out, count};
use crate::telemetry::TelemetryArgs;

/// Extensible (N3) or consensus (Legacy) payloads held per sender at most,
/// as neo-go's pool keeps (here per sender and peer: see [`Pool`]).
const MAX_PER_SENDER: usize = 20;
/// How long a payload counts against its sender's cap at most, whatever
/// the height says.
const PAYLOAD_LIFETIME: Duration = Duration::from_secs(60);
/// Senders (each as named by one peer) whose payloads are counted at once;
/// past it, the one heard from least lately is forgotten.
const MAX_SENDERS: usize = 1024;
/// How often the genesis block is asked for again while no peer gave it.
const GENESIS_RETRY: Duration = Duration::from_secs(1);
/// How long a peer is given to send the genesis block (a relay that has
/// no chain yet sends nothing).
const GENESIS_WAIT: Duration = Duration::from_secs(2);
/// How often `--connect` addresses are checked and redialed.
const REDIAL: Duration = Duration::from_secs(1);

/// `neo-peer relay`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Each item (transaction, block, N3 extensible payload, \
Legacy consensus payload) announced by a peer is downloaded once, checked \
(structure and hash; a block's Merkle root and limits; a payload's validity \
window and its sender's cap) and announced to every peer that lacks it: blocks \
to the peers below them, the rest to full nodes, never back to where it came \
from. The relay also follows the chain and serves it (Legacy private networks \
need --genesis): blocks are downloaded once, by the follower, and each block \
it appends is announced to the peers below it.")]
pub struct RelayArgs {
    /// Wire generation.
    #[arg(long, value_enum, default_value = "n3")]
    protocol: Protocol,
    /// mainnet, testnet, privnet or a magic number.
    #[arg(long, default_value = "privnet", value_name = "NET")]
    network: String,
    /// Address to listen on (no listener without it).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// A node to stay connected to, redialed when the connection is lost
    /// (repeatable).
    #[arg(long, value_name = "ADDR")]
    connect: Vec<SocketAddr>,
    /// A node to learn the network from: added to the address book, whose
    /// addresses the dialer connects to (repeatable).
    #[arg(long, value_name = "ADDR")]
    seed: Vec<SocketAddr>,
    /// The address book file (created if missing; in memory without it).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Outbound peers the dialer keeps.
    #[arg(long, default_value_t = 8, value_name = "N")]
    outbound: usize,
    /// Most inbound peers.
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_inbound: usize,
    /// Most connections from one IP (loopback nodes share one).
    #[arg(long, default_value_t = 16, value_name = "N")]
    max_per_ip: usize,
    /// Never pass other nodes' addresses on: `getaddr` is answered with our
    /// own listening address only.
    #[arg(long)]
    no_gossip: bool,
    /// Do not follow the chain (relays follow it by default, to serve the
    /// blocks they relay); blocks are then downloaded by the relay room.
    #[arg(long)]
    no_follow: bool,
    /// The genesis hash of the network followed (built in for Legacy
    /// mainnet and testnet and N3 mainnet). Without it, N3 takes the block 0
    /// an outbound peer gives first (an inbound peer's only when no outbound
    /// one gives it).
    #[arg(long, value_name = "HASH")]
    genesis: Option<UInt256>,
    /// Extensible or consensus payloads held per sender at most (counted
    /// apart for each peer that sends them).
    #[arg(long, default_value_t = MAX_PER_SENDER, value_name = "N")]
    max_per_sender: usize,
    /// Gather the transactions announced to each peer for at most this
    /// many milliseconds (or until 500 are gathered) and announce them in
    /// one `inv`; blocks and payloads are never delayed. Without it, each
    /// transaction is announced at once.
    #[arg(long, value_name = "MS")]
    batch: Option<u64>,
    /// Print one line per item relayed to at least one peer (blocks
    /// followed while catching up, sent to no one, get none).
    #[arg(long)]
    verbose: bool,
    /// Seconds between summaries (peers, items relayed, duplicates
    /// avoided); 0 for none.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    summary: f64,
    /// Stop after this many seconds (without it: run until killed).
    #[arg(long, value_name = "S")]
    duration: Option<f64>,
    /// Report events as JSON, one object per line on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    timeouts: TimeoutArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

pub fn relay(args: RelayArgs) -> Result<(), String> {
    let magic = network(args.protocol, &args.network)?;
    args.telemetry.start(Out::new(args.json))?;
    match args.protocol {
        Protocol::N3 => run::<N3>(&args, magic, n3_genesis(args.genesis, magic)),
        Protocol::Legacy => {
            let genesis = match crate::net::legacy_genesis(args.genesis, magic) {
                Some(g) => g,
                None if args.no_follow => UInt256::ZERO,
                None => {
                    return Err("a Legacy relay needs --genesis 0x<hash> on this network \
                                (or --no-follow)"
                        .into());
                }
            };
            run::<Legacy>(&args, magic, genesis)
        }
    }
}

/// Keeps `manager` connected to every address of `targets`: each one not
/// among its peers is dialed again every [`REDIAL`], one after the other,
/// until the task is dropped (or the manager shuts down and the process
/// ends). A banned address is not dialed (the manager refuses it).
pub(crate) fn keep_connected<P: neo_peer::protocol::Protocol>(
    manager: PeerManager<P>,
    targets: Vec<SocketAddr>,
) -> smol::Task<()> {
    smol::spawn(async move {
        loop {
            let live: Vec<SocketAddr> = manager.peers().iter().filter_map(|s| s.addr).collect();
            for addr in &targets {
                if !live.contains(addr) {
                    if let Err(e) = manager.connect(*addr).await {
                        tracing::debug!(%addr, error = %e, "cannot connect");
                    }
                }
            }
            async_io::Timer::after(REDIAL).await;
        }
    })
}

/// The genesis hash an N3 relay follows: `--genesis`, else MainNet's on
/// MainNet, else `UInt256::ZERO` (whichever block 0 a peer gives first).
fn n3_genesis(given: Option<UInt256>, magic: u32) -> UInt256 {
    match (given, magic) {
        (Some(g), _) => g,
        (None, n3::MAINNET_MAGIC) => n3::MAINNET_GENESIS_HASH,
        (None, _) => UInt256::ZERO,
    }
}

/// The order in which peers are asked for the genesis block (smaller
/// first): outbound peers (addresses we chose) before inbound ones, whose
/// word is anyone's, then the highest first (those at 0 may have no chain
/// yet). A block 0 is taken from the first peer that gives one, when the
/// genesis hash is not known beforehand.
fn genesis_rank(outbound: bool, height: u32) -> (bool, std::cmp::Reverse<u32>) {
    (!outbound, std::cmp::Reverse(height))
}

/// The chain a relay holds once it knows its genesis block.
struct Held<P: Generation>(OnceLock<Arc<Chain<P>>>);

impl<P: Generation> Held<P> {
    fn height(&self) -> Option<u32> {
        self.0.get().map(|c| c.height())
    }
}

impl<P: Generation> ChainStore<P> for Held<P>
where
    Chain<P>: ChainStore<P>,
{
    fn tip(&self) -> (u32, UInt256) {
        self.0.get().map_or((0, UInt256::ZERO), |c| c.tip())
    }
    fn block_height(&self) -> Option<u32> {
        self.0.get().and_then(|c| c.block_height())
    }
    fn hash(&self, index: u32) -> Option<UInt256> {
        self.0.get()?.hash(index)
    }
    fn index_of(&self, hash: &UInt256) -> Option<u32> {
        self.0.get()?.index_of(hash)
    }
    fn header(&self, index: u32) -> Option<P::Header> {
        self.0.get()?.header(index).cloned()
    }
    fn block(&self, index: u32) -> Option<P::Block> {
        self.0.get()?.block(index).cloned()
    }
    fn transaction(&self, hash: &UInt256) -> Option<P::Transaction> {
        self.0.get()?.transaction(hash).cloned()
    }
}

/// Answers the synchronisation requests from the chain held.
struct Server<P: Generation>(Arc<Held<P>>);

impl<P: Node> Handler<P> for Server<P> {
    async fn handle(&self, peer: &Peer<P>, msg: P::Message) {
        for answer in P::answer(self.0.as_ref(), &msg) {
            if peer.send(answer).await.is_err() {
                return;
            }
        }
    }
}

/// What the relay needs from each generation.
trait Node: Inventory + BlockSource {
    /// The request of the genesis block (`genesis`: its hash, Legacy only).
    fn genesis_request(genesis: UInt256) -> Self::Message;
    /// The block a message carries.
    fn block_of(msg: &Self::Message) -> Option<&<Self as Generation>::Block>;
    /// The message that carries a block.
    fn block_message(block: <Self as Generation>::Block) -> Self::Message;
    /// A payload's sender (as bytes), first valid height and first height
    /// at which it is no longer valid.
    fn payload(msg: &Self::Message) -> Option<(Vec<u8>, u32, u32)>;
    /// An N3 extensible payload's category (`dBFT`, `StateService`, ...).
    fn category(msg: &Self::Message) -> Option<String>;
}

impl Node for N3 {
    fn genesis_request(_: UInt256) -> n3::Message {
        n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
            index_start: 0,
            count: 1,
        })
    }

    fn block_of(msg: &n3::Message) -> Option<&n3::Block> {
        match msg {
            n3::Message::Block(b) => Some(b),
            _ => None,
        }
    }

    fn block_message(block: n3::Block) -> n3::Message {
        n3::Message::Block(block)
    }

    fn payload(msg: &n3::Message) -> Option<(Vec<u8>, u32, u32)> {
        match msg {
            n3::Message::Extensible(e) => {
                Some((e.sender.0.to_vec(), e.valid_block_start, e.valid_block_end))
            }
            _ => None,
        }
    }

    fn category(msg: &n3::Message) -> Option<String> {
        match msg {
            n3::Message::Extensible(e) => Some(e.category.to_string()),
            _ => None,
        }
    }
}

impl Node for Legacy {
    fn genesis_request(genesis: UInt256) -> legacy::Message {
        legacy::Message::GetData(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes: vec![genesis],
        })
    }

    fn block_of(msg: &legacy::Message) -> Option<&legacy::Block> {
        match msg {
            legacy::Message::Block(b) => Some(b),
            _ => None,
        }
    }

    fn block_message(block: legacy::Block) -> legacy::Message {
        legacy::Message::Block(Box::new(block))
    }

    fn payload(msg: &legacy::Message) -> Option<(Vec<u8>, u32, u32)> {
        match msg {
            legacy::Message::Consensus(c) => Some((
                c.validator_index.to_le_bytes().to_vec(),
                0,
                c.block_index.saturating_add(1),
            )),
            _ => None,
        }
    }

    fn category(_: &legacy::Message) -> Option<String> {
        None
    }
}

/// How a `--verbose` line names an item: `tx 0x<hash>`, `block INDEX
/// 0x<hash>`, `extensible 0x<hash> (CATEGORY, valid from block N)`,
/// `consensus 0x<hash> (block N)`.
fn item_words(
    kind: ItemKind,
    hash: UInt256,
    height: Option<u32>,
    category: Option<&str>,
) -> String {
    match (kind, height) {
        (ItemKind::Block, Some(h)) => format!("{kind} {h} {hash}"),
        (ItemKind::Extensible, Some(h)) => {
            // A peer's words: control characters escaped.
            let category = category.unwrap_or("?").escape_debug();
            format!("{kind} {hash} ({category}, valid from block {h})")
        }
        (ItemKind::Consensus, Some(h)) => format!("{kind} {hash} (block {h})"),
        _ => format!("{kind} {hash}"),
    }
}

/// Follows the chain into `held`, until the manager shuts down: the genesis
/// block from the first peer that gives it within [`GENESIS_WAIT`]
/// (`genesis`: its hash, `UInt256::ZERO` for any; peers asked in the order
/// of [`genesis_rank`]), then the library's [`Follower`], which downloads
/// each new block once (the relay room leaves blocks to it). Each block it
/// appends is relayed to the peers below it.
fn follow<P: Node>(
    manager: PeerManager<P>,
    held: Arc<Held<P>>,
    genesis: UInt256,
    counters: Arc<Counters>,
    verbose: bool,
    out: Out,
) where
    Chain<P>: ChainStore<P>,
{
    smol::spawn(async move {
        let chain = loop {
            manager.wait_for_peers(1, GENESIS_RETRY).await;
            let mut found = None;
            let mut peers = manager.peers();
            peers.sort_by_key(|s| {
                genesis_rank(s.peer.direction() == Direction::Outbound, s.peer.height())
            });
            for s in peers {
                let asked = async { Some(s.peer.request(P::genesis_request(genesis)).await) };
                let waited = async {
                    async_io::Timer::after(GENESIS_WAIT).await;
                    None
                };
                let answers = match futures_lite::future::or(asked, waited).await {
                    Some(Ok(answers)) => answers,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "no genesis block");
                        continue;
                    }
                    None => continue,
                };
                let block = answers.iter().filter_map(P::block_of).find(|b| {
                    let header = P::block_header(b);
                    P::header_index(&header) == 0
                        && (genesis == UInt256::ZERO || P::header_hash(&header) == genesis)
                });
                match block.cloned().map(Chain::from_genesis_block) {
                    Some(Ok(chain)) => {
                        found = Some(chain);
                        break;
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "genesis block refused"),
                    None => tracing::debug!("no genesis block"),
                }
            }
            match found {
                Some(chain) => break Arc::new(chain),
                None => async_io::Timer::after(GENESIS_RETRY).await,
            };
        };
        let hash = chain.genesis_hash();
        let _ = held.0.set(chain.clone());
        out.outcome("genesis", json!({"hash": hash.to_string()}), || {
            format!("following the chain from genesis {hash}")
        });
        let follower = Arc::new(Follower::new(manager.clone(), chain));
        let events = follower.subscribe();
        let relaying = follower.clone();
        smol::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let FollowEvent::Block { index, peer, .. } = event {
                    relay_block(&relaying, index, peer, &counters, verbose, out);
                }
            }
        })
        .detach();
        loop {
            match follower.run().await {
                Ok(()) | Err(FollowError::Download(DownloadError::Shutdown)) => return,
                Err(e) => tracing::debug!(error = %e, "following paused"),
            }
            async_io::Timer::after(GENESIS_RETRY).await;
        }
    })
    .detach();
}

/// Announces the block the follower appended at `index` (from peer
/// `from`) to the peers below it. The block counts as relayed, and with
/// `verbose` gets a line, when it went to at least one peer; one sent to
/// none gets a line only at the tip (no peer is higher), so that catching
/// up prints nothing per block.
fn relay_block<P: Node>(
    follower: &Follower<P>,
    index: u32,
    from: u64,
    counters: &Counters,
    verbose: bool,
    out: Out,
) {
    let Some(item) = follower
        .block(index)
        .and_then(|block| P::item(&P::block_message(block)))
    else {
        return;
    };
    let manager = follower.manager();
    counters.top.fetch_max(index, Ordering::Relaxed);
    let hash = item.hash;
    let peers = manager.relay(item);
    if peers > 0 {
        counters.relayed[kind_index(ItemKind::Block)].fetch_add(1, Ordering::Relaxed);
    }
    // After the count of relayed blocks: a summary that counts this block
    // as followed counts it as relayed too, if it was.
    counters.followed.fetch_add(1, Ordering::Relaxed);
    let catching_up = || manager.peers().iter().any(|s| s.peer.height() > index);
    if verbose && (peers > 0 || !catching_up()) {
        let peer = manager
            .peer(from)
            .and_then(|p| p.addr().or(p.remote_addr()))
            .map_or_else(|| "?".to_string(), |a| a.to_string());
        let kind = ItemKind::Block;
        out.outcome(
            "relayed",
            json!({
                "kind": kind.name(),
                "hash": hash.to_string(),
                "height": index,
                "from": peer,
                "to": peers,
            }),
            || {
                format!(
                    "{kind} {index} {hash} from {peer} to {}",
                    count(peers as u64, "peer", "peers")
                )
            },
        );
    }
}

/// Payloads counted per sender and per peer that sent them: the end height
/// of each, and when it came. A payload's witness is not checked here, so
/// its sender is only a claim: counted apart for each peer, a peer naming
/// another's sender fills only its own count of it. At most [`MAX_SENDERS`]
/// (peer, sender) pairs of at most the cap each; a new pair past it takes
/// the place of the one heard from least lately, so that no peer can shut
/// new senders out by filling the table.
#[derive(Default)]
struct Pool {
    senders: HashMap<(PeerId, Vec<u8>), Pending>,
}

/// The end height and arrival of each payload counted for one pair.
type Pending = VecDeque<(u32, Instant)>;

impl Pool {
    /// Counts a payload of `sender` valid below `end`, sent by peer `from`,
    /// at `height`; false when that peer has sent `cap` live payloads of
    /// that sender.
    fn admit(&mut self, from: PeerId, sender: Vec<u8>, end: u32, height: u32, cap: usize) -> bool {
        let now = Instant::now();
        let live =
            |&(e, at): &(u32, Instant)| e > height && now.duration_since(at) < PAYLOAD_LIFETIME;
        self.senders.retain(|_, q| {
            q.retain(live);
            !q.is_empty()
        });
        let key = (from, sender);
        if !self.senders.contains_key(&key) && self.senders.len() >= MAX_SENDERS {
            let stalest = self
                .senders
                .iter()
                .min_by_key(|(_, q)| q.back().map(|&(_, at)| at))
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                self.senders.remove(&k);
            }
        }
        let q = self.senders.entry(key).or_default();
        if q.len() >= cap {
            return false;
        }
        q.push_back((end, now));
        true
    }
}

/// The relay's own counters, besides the manager's.
#[derive(Default)]
struct Counters {
    /// Items announced or sent to at least one peer, by kind.
    relayed: [AtomicU64; 4],
    /// Blocks the follower appended (relayed to a peer or not).
    followed: AtomicU64,
    rejected: AtomicU64,
    /// The highest block relayed.
    top: AtomicU32,
}

fn kind_index(kind: ItemKind) -> usize {
    match kind {
        ItemKind::Transaction => 0,
        ItemKind::Block => 1,
        ItemKind::Extensible => 2,
        ItemKind::Consensus => 3,
    }
}

/// Whether `item` may be relayed, and why not.
fn check<P: Node>(
    item: &Item<P>,
    height: Option<u32>,
    from: PeerId,
    pool: &Mutex<Pool>,
    cap: usize,
) -> Result<(), String> {
    if let Some(block) = P::block_of(&item.message) {
        let hashes: Vec<UInt256> = P::block_transactions(block)
            .iter()
            .map(P::tx_hash)
            .collect();
        return P::check_block(block, &hashes).map_err(|e| e.to_string());
    }
    if let Some((sender, start, end)) = P::payload(&item.message) {
        if start >= end {
            return Err(format!("empty validity window {start}..{end}"));
        }
        let h = height.unwrap_or(0);
        if height.is_some() && h >= end {
            return Err(format!("expired: valid below {end}, height {h}"));
        }
        let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
        if !pool.admit(from, sender, end, h, cap) {
            return Err(format!("its sender has {cap} payloads pending"));
        }
    }
    Ok(())
}

/// What a summary tells: the relay's counters, its connected peers and the
/// height of the chain it holds.
struct Summary<'a> {
    stats: RelayStats,
    peers: usize,
    counters: &'a Counters,
    height: Option<u32>,
}

fn summary_line(m: &Summary<'_>) -> String {
    let (s, counters, height) = (&m.stats, m.counters, m.height);
    let relayed: Vec<u64> = counters
        .relayed
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let asked = &s.requested_by_kind;
    format!(
        "relay: {} peers, relayed {} tx {} blocks {} payloads, received {}, \
requested {} tx {} blocks {} payloads, duplicates avoided {}, \
announced {}, served {}, sent twice {}, rejected {}, height {}, blocks followed {}",
        m.peers,
        relayed[0],
        relayed[1],
        relayed[2] + relayed[3],
        s.received,
        asked.tx,
        asked.block,
        asked.extensible + asked.consensus,
        s.duplicates_avoided + s.duplicates,
        s.announced,
        s.served,
        s.resent,
        counters.rejected.load(Ordering::Relaxed),
        height.map_or_else(|| "-".to_string(), |h| h.to_string()),
        counters.followed.load(Ordering::Relaxed),
    )
}

fn summary_json(m: &Summary<'_>) -> serde_json::Value {
    let (s, counters, height) = (&m.stats, m.counters, m.height);
    let r = |k: ItemKind| counters.relayed[kind_index(k)].load(Ordering::Relaxed);
    json!({
        "peers": m.peers,
        "relayed": {
            "tx": r(ItemKind::Transaction),
            "block": r(ItemKind::Block),
            "extensible": r(ItemKind::Extensible),
            "consensus": r(ItemKind::Consensus),
        },
        "received": s.received,
        "duplicates": s.duplicates,
        "duplicates_avoided": s.duplicates_avoided,
        "announced": s.announced,
        "requested": s.requested,
        "requested_by_kind": {
            "tx": s.requested_by_kind.tx,
            "block": s.requested_by_kind.block,
            "extensible": s.requested_by_kind.extensible,
            "consensus": s.requested_by_kind.consensus,
        },
        "served": s.served,
        "resent": s.resent,
        "not_found": s.not_found,
        "timeouts": s.timeouts,
        "retries": s.retries,
        "floods": s.floods,
        "dropped": s.dropped,
        "rejected": counters.rejected.load(Ordering::Relaxed),
        "height": height,
        "followed": counters.followed.load(Ordering::Relaxed),
    })
}

/// The relay's counters as metrics.
fn record_metrics(s: &RelayStats, counters: &Counters) {
    for kind in [
        ItemKind::Transaction,
        ItemKind::Block,
        ItemKind::Extensible,
        ItemKind::Consensus,
    ] {
        let n = counters.relayed[kind_index(kind)].load(Ordering::Relaxed);
        metrics::counter!("neo_peer_relay_items_relayed_total", "kind" => kind.name()).absolute(n);
        metrics::counter!("neo_peer_relay_items_requested_total", "kind" => kind.name())
            .absolute(s.requested_by_kind.get(kind));
    }
    metrics::counter!("neo_peer_relay_items_received_total").absolute(s.received);
    metrics::counter!("neo_peer_relay_duplicates_avoided_total")
        .absolute(s.duplicates_avoided + s.duplicates);
    metrics::counter!("neo_peer_relay_announced_total").absolute(s.announced);
    metrics::counter!("neo_peer_relay_served_total").absolute(s.served);
    metrics::counter!("neo_peer_relay_resent_total").absolute(s.resent);
    metrics::counter!("neo_peer_relay_rejected_total")
        .absolute(counters.rejected.load(Ordering::Relaxed));
    metrics::gauge!("neo_peer_relay_tracked").set(s.tracked as f64);
}

fn run<P: Node>(args: &RelayArgs, magic: u32, genesis: UInt256) -> Result<(), String>
where
    Chain<P>: ChainStore<P>,
{
    let out = Out::new(args.json);
    let held: Arc<Held<P>> = Arc::new(Held(OnceLock::new()));
    let port = args.listen.map_or(0, |a| a.port());
    let mut local = config::<P>(magic, &args.timeouts, 0, port)?;
    let height_of = held.clone();
    local.identity.current_height = Arc::new(move || height_of.height().unwrap_or(0));
    let mut manager_config = ManagerConfig::new(local);
    manager_config.target_outbound = args.outbound;
    manager_config.max_outbound = args.outbound.max(args.connect.len()).max(1);
    manager_config.max_inbound = args.max_inbound;
    manager_config.max_per_ip = args.max_per_ip.max(1);
    manager_config.share_addresses = !args.no_gossip;
    let book_config = BookConfig::new(P::NAME, magic);
    let book = match &args.db {
        Some(path) => AddressBook::open(path, book_config).map_err(|e| e.to_string())?,
        None => AddressBook::in_memory(book_config),
    };
    let manager = PeerManager::<P>::new(manager_config, book, Server(held.clone()), SmolGlobal)
        .map_err(|e| e.to_string())?;

    let counters = Arc::new(Counters::default());
    let pool = Arc::new(Mutex::new(Pool::default()));
    let relay = manager.clone();
    let (verbose, cap, following) = (args.verbose, args.max_per_sender, !args.no_follow);
    let (item_counters, item_held) = (counters.clone(), held.clone());
    let store: Arc<dyn ChainStore<P>> = held.clone();
    let on_item = move |from: &ManagedPeer<P>, item: Item<P>| {
        let counters = &item_counters;
        if following && item.kind == ItemKind::Block {
            // A block sent unasked: the room offers it to the follower (taken
            // if it is the next height, checked against its header); the
            // follower relays what it appends.
            return;
        }
        let top = counters.top.load(Ordering::Relaxed);
        let height = item_held.height().or((top > 0).then_some(top));
        let peer = from
            .addr()
            .or(from.remote_addr())
            .map_or_else(|| "?".to_string(), |a| a.to_string());
        if let Err(why) = check(&item, height, from.id(), &pool, cap) {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            if verbose {
                out.outcome(
                    "rejected",
                    json!({"kind": item.kind.name(), "hash": item.hash.to_string(), "from": peer, "why": why}),
                    || format!("rejected {} {} from {peer}: {why}", item.kind, item.hash),
                );
            }
            return;
        }
        let (kind, hash, height) = (item.kind, item.hash, item.height);
        if let (Some(_), Some(h)) = (P::block_of(&item.message), height) {
            counters.top.fetch_max(h, Ordering::Relaxed);
        }
        let category = P::category(&item.message);
        let peers = relay.relay(item);
        if peers > 0 {
            counters.relayed[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
        }
        if verbose {
            let mut fields = json!({
                "kind": kind.name(),
                "hash": hash.to_string(),
                "height": height,
                "from": peer,
                "to": peers,
            });
            if let Some(c) = &category {
                fields["category"] = json!(c);
            }
            out.outcome("relayed", fields, || {
                let what = item_words(kind, hash, height, category.as_deref());
                format!(
                    "{what} from {peer} to {}",
                    count(peers as u64, "peer", "peers")
                )
            });
        }
    };
    let relay_config = RelayConfig {
        blocks_by_follower: following,
        batch: args.batch.map(Duration::from_millis),
        ..RelayConfig::default()
    };
    manager
        .start_relay(relay_config, Some(store), on_item)
        .map_err(|e| e.to_string())?;

    smol::block_on(async {
        if let Some(addr) = args.listen {
            let bound = manager.listen(addr).await.map_err(|e| e.to_string())?;
            out.outcome("listening", json!({"addr": bound.to_string()}), || {
                format!("relay listening on {bound}")
            });
        }
        for seed in &args.seed {
            manager.book().add(*seed, neo_peer::book::Source::Seed);
        }
        if !manager.book().is_empty() {
            manager.start_dialer();
        }
        manager.start_maintenance();
        if !args.connect.is_empty() {
            keep_connected(manager.clone(), args.connect.clone()).detach();
        }
        if following {
            follow(
                manager.clone(),
                held.clone(),
                genesis,
                counters.clone(),
                verbose,
                out,
            );
        }
        let deadline = match args.duration {
            Some(s) => Some(
                Instant::now()
                    + Duration::try_from_secs_f64(s)
                        .map_err(|e| format!("invalid --duration {s}: {e}"))?,
            ),
            None => None,
        };
        let every = match args.summary {
            s if s > 0.0 => Some(
                Duration::try_from_secs_f64(s)
                    .map_err(|e| format!("invalid --summary {s}: {e}"))?,
            ),
            _ => None,
        };
        let mut next_summary = every.map(|e| Instant::now() + e);
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            let stats = manager.relay_stats().unwrap_or_default();
            record_metrics(&stats, &counters);
            if let (Some(at), Some(e)) = (next_summary, every) {
                if now >= at {
                    let summary = Summary {
                        stats,
                        peers: manager.len(),
                        counters: &counters,
                        height: held.height(),
                    };
                    out.outcome("summary", summary_json(&summary), || summary_line(&summary));
                    next_summary = Some(now + e);
                }
            }
            let mut wake = now + Duration::from_secs(1);
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            if let Some(at) = next_summary {
                wake = wake.min(at);
            }
            async_io::Timer::at(wake).await;
        }
        let summary = Summary {
            stats: manager.relay_stats().unwrap_or_default(),
            peers: manager.len(),
            counters: &counters,
            height: held.height(),
        };
        out.outcome("summary", summary_json(&summary), || summary_line(&summary));
        manager.shutdown().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use neo_peer::chain::{N3Chain, Synthetic};
    use neo_peer::wire::{UInt160, Witness};

    fn payload(sender: u8, start: u32, end: u32) -> Item<N3> {
        let msg = n3::Message::Extensible(n3::ExtensiblePayload {
            category: "dBFT".into(),
            valid_block_start: start,
            valid_block_end: end,
            sender: UInt160([sender; 20]),
            data: vec![0u8; 8].into(),
            witness: Witness {
                invocation: Default::default(),
                verification: Default::default(),
            },
        });
        N3::item(&msg).unwrap()
    }

    #[test]
    fn a_sender_has_at_most_its_cap_of_live_payloads() {
        let pool = Mutex::new(Pool::default());
        assert!(check(&payload(1, 0, 10), Some(5), 1, &pool, 2).is_ok());
        assert!(check(&payload(1, 0, 11), Some(5), 1, &pool, 2).is_ok());
        let third = check(&payload(1, 0, 12), Some(5), 1, &pool, 2);
        assert!(third.unwrap_err().contains("pending"));
        assert!(
            check(&payload(2, 0, 12), Some(5), 1, &pool, 2).is_ok(),
            "per sender"
        );
        // Height 10: the first has expired and makes room.
        assert!(check(&payload(1, 0, 12), Some(10), 1, &pool, 2).is_ok());
    }

    #[test]
    fn a_peer_filling_the_senders_table_does_not_lock_out_new_senders() {
        let pool = Mutex::new(Pool::default());
        for i in 0..MAX_SENDERS {
            let mut item = payload(0, 0, u32::MAX);
            if let n3::Message::Extensible(e) = &mut item.message {
                e.sender.0[..8].copy_from_slice(&(i as u64).to_le_bytes());
            }
            assert!(check(&item, None, 1, &pool, 20).is_ok());
        }
        assert!(
            check(&payload(9, 0, 10), None, 2, &pool, 20).is_ok(),
            "an honest sender through another peer"
        );
        let pool = pool.lock().unwrap();
        assert!(pool.senders.len() <= MAX_SENDERS);
    }

    #[test]
    fn a_peer_naming_another_sender_fills_only_its_own_count() {
        let pool = Mutex::new(Pool::default());
        for _ in 0..2 {
            assert!(check(&payload(7, 0, u32::MAX), None, 1, &pool, 2).is_ok());
        }
        assert!(check(&payload(7, 0, u32::MAX), None, 1, &pool, 2).is_err());
        assert!(
            check(&payload(7, 0, u32::MAX), None, 2, &pool, 2).is_ok(),
            "the same sender through another peer"
        );
    }

    #[test]
    fn the_n3_genesis_is_known_on_mainnet_or_given() {
        assert_eq!(
            n3_genesis(None, n3::MAINNET_MAGIC),
            n3::MAINNET_GENESIS_HASH
        );
        let given = UInt256([7; 32]);
        assert_eq!(n3_genesis(Some(given), n3::PRIVNET_MAGIC), given);
        assert_eq!(n3_genesis(None, n3::PRIVNET_MAGIC), UInt256::ZERO);
    }

    #[test]
    fn the_genesis_is_asked_of_outbound_peers_first() {
        // (outbound, height): an inbound peer claiming a great height comes
        // after every outbound one.
        let mut peers = vec![(false, 9_000_000), (true, 10), (true, 20), (false, 5)];
        peers.sort_by_key(|&(outbound, height)| genesis_rank(outbound, height));
        assert_eq!(
            peers,
            [(true, 20), (true, 10), (false, 9_000_000), (false, 5)]
        );
    }

    #[test]
    fn payloads_outside_their_window_are_refused() {
        let pool = Mutex::new(Pool::default());
        let expired = check(&payload(1, 0, 10), Some(10), 1, &pool, 20);
        assert!(expired.unwrap_err().contains("expired"));
        let empty = check(&payload(1, 7, 7), None, 1, &pool, 20);
        assert!(empty.unwrap_err().contains("window"));
        assert!(
            check(&payload(1, 0, 10), None, 1, &pool, 20).is_ok(),
            "no height: no expiry"
        );
    }

    #[test]
    fn a_verbose_line_says_what_the_height_of_an_item_is() {
        let hash = UInt256([0xab; 32]);
        let h = hash.to_string();
        assert_eq!(
            item_words(ItemKind::Extensible, hash, Some(7), Some("dBFT")),
            format!("extensible {h} (dBFT, valid from block 7)")
        );
        assert_eq!(
            item_words(ItemKind::Extensible, hash, Some(7), Some("a\nb")),
            format!("extensible {h} (a\\nb, valid from block 7)"),
            "a peer's category cannot break the line"
        );
        assert_eq!(
            item_words(ItemKind::Block, hash, Some(12), None),
            format!("block 12 {h}")
        );
        assert_eq!(
            item_words(ItemKind::Consensus, hash, Some(3), None),
            format!("consensus {h} (block 3)")
        );
        assert_eq!(
            item_words(ItemKind::Transaction, hash, None, None),
            format!("tx {h}")
        );
    }

    #[test]
    fn a_block_must_match_its_merkle_root() {
        let chain = N3Chain::synthetic(&Synthetic {
            blocks: 1,
            txs_per_block: 2,
            seed: 3,
            with_bodies: true,
        });
        let pool = Mutex::new(Pool::default());
        let mut block = chain.block(1).unwrap().clone();
        let good = N3::item(&n3::Message::Block(block.clone())).unwrap();
        assert!(check(&good, None, 1, &pool, 20).is_ok());
        block.header.merkle_root = UInt256([1; 32]);
        let bad = N3::item(&n3::Message::Block(block)).unwrap();
        assert!(check(&bad, None, 1, &pool, 20).is_err());
    }
}
