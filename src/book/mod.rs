//! The address book: every node we have heard of, kept between runs, in a
//! form that one gossiping peer cannot take over.
//!
//! An [`AddressBook`] remembers, per address, where we learned it
//! ([`Source`]) and from whom, what the node told us when we last reached
//! it, how each dial went, its height and round trip, and any ban. It is the
//! same for both wire generations: what it knows of a node is
//! protocol-neutral (Legacy service bits and N3 capabilities as short text
//! side by side).
//!
//! - **Two tables** (after Bitcoin Core's address manager; see
//!   [`Table`]): addresses we only heard of sit in "new", those we dialed
//!   and handshook with in "tried". Gossip only ever writes to "new", in a
//!   bucket chosen by a keyed hash of the group of the peer that told us
//!   and of the address's group: one source /16 can fill at most
//!   [`NEW_BUCKETS_PER_SOURCE_GROUP`] of the [`NEW_BUCKETS`] buckets (128
//!   of 2048 slots), however much it sends. "Tried" is bucketed by the
//!   address's own group ([`TRIED_BUCKETS_PER_GROUP`] of
//!   [`TRIED_BUCKETS`], 64 of 1024 slots per /16). When a reached address
//!   finds its "tried" slot taken, the occupant is tested first
//!   (test-before-evict: [`AddressBook::select_feeler`] names it) and keeps
//!   its slot if it answers. The key of the hashes is 32 random bytes from
//!   the OS, kept in the store and never shown.
//! - **Starting.** The first time, [`AddressBook::load_seeds`] reads a seeds
//!   file ([`parse_seeds`] describes it). Afterwards the book is mostly fed
//!   by gossip: [`AddressBook::learn`] takes the addresses of an `addr`
//!   message ([`Protocol::addresses`](crate::protocol::Protocol::addresses))
//!   and ignores what nobody can dial (unspecified, port 0, multicast,
//!   broadcast); gossip never overwrites what we saw ourselves, and a
//!   gossiped time is taken as [`GOSSIP_TIME_PENALTY`] older than claimed.
//! - **Dialing.** [`AddressBook::select_for_dial`] picks whom to dial: for
//!   each slot "tried" or "new" with even odds, then at random within the
//!   table (first an address group of "tried" or a bucket of "new", then an
//!   address in it, so that a crowd of addresses in one /16 weighs as one),
//!   one peer per group ([`address_group`]: IPv4 /16, IPv6 /32); never a
//!   banned address, one already connected or one in backoff after failed
//!   dials ([`BookConfig::backoff`], kept in memory for the run). The
//!   outcome goes back through [`record_attempt`](AddressBook::record_attempt),
//!   [`record_failure`](AddressBook::record_failure) and
//!   [`record_success`](AddressBook::record_success), which moves the
//!   address to "tried".
//! - **Anchors.** [`AddressBook::set_anchors`] stores the outbound peers
//!   held at shutdown; [`AddressBook::take_anchors`] hands them to the next
//!   start, to be dialed before anything else.
//! - **Answering `getaddr`.** [`AddressBook::for_getaddr`]: recent, healthy,
//!   unbanned addresses, those we reached ourselves first, each part
//!   shuffled.
//! - **Size.** At most 2048 addresses in "new", 1024 in "tried" and
//!   [`MAX_KEPT`] kept aside (manual addresses, bans the tables have no room
//!   for): 4096 records. A full "new" bucket takes a newcomer only in place
//!   of a worthless address (not heard of for [`HORIZON`], or failing).
//! - **Persistence.** Changes are kept in memory and marked dirty;
//!   [`AddressBook::flush`] (or [`flush_async`](AddressBook::flush_async),
//!   every [`BookConfig::flush_interval`]) writes them in one transaction
//!   through a [`PeerStore`]: [`RedbStore`] (one redb file, the default) or
//!   [`MemoryStore`]. A crash loses at most what changed since the last
//!   flush. [`AddressBook::close`] flushes and releases the file. A store
//!   remembers its protocol and network; opening it for another is an
//!   error. A file written before the tables existed is placed into them
//!   when opened, and rewritten at the next flush.
//!
//! Randomness (the key, the draws, the shuffles) comes from `rand`'s
//! generators seeded by the operating system. Times are Unix milliseconds
//! ([`now_ms`]).
//!
//! ```
//! use std::net::SocketAddr;
//! use neo_peer::book::{AddressBook, BookConfig, Connected, Source, Table};
//!
//! let book = AddressBook::in_memory(BookConfig::new("n3", 860_833_102));
//! let a: SocketAddr = "10.0.0.1:10333".parse().unwrap();
//! let b: SocketAddr = "10.1.0.1:10333".parse().unwrap();
//! assert!(book.add(a, Source::Seed));
//! assert!(book.add(b, Source::Manual));
//! assert_eq!(book.select_for_dial(8, &[b]), vec![a]);
//! assert_eq!(book.get(a).unwrap().table(), Some(Table::New));
//!
//! book.record_attempt(a);
//! let facts = Connected { user_agent: "/Neo:3.8.2/".into(), start_height: 100, ..Default::default() };
//! book.record_success(a, &facts);
//! assert_eq!(book.get(a).unwrap().table(), Some(Table::Tried));
//! assert_eq!(book.get(a).unwrap().user_agent.as_deref(), Some("/Neo:3.8.2/"));
//! assert_eq!(book.flush().unwrap(), 2);
//! ```

mod error;
mod seeds;
mod select;
mod state;
mod store;
mod tables;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;

pub use error::BookError;
pub use seeds::{SeedEntry, parse_seeds};
pub use store::{Batch, MemoryStore, PeerStore, RedbStore, StoreMeta};
pub use tables::{
    BUCKET_SIZE, NEW_BUCKETS, NEW_BUCKETS_PER_SOURCE_GROUP, Slot, TRIED_BUCKETS,
    TRIED_BUCKETS_PER_GROUP, Table,
};

use crate::protocol::GossipAddr;
use state::State;
use tables::BucketKey;

/// Where we learned an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The seeds file.
    Seed,
    /// Another node's `addr`.
    Gossip,
    /// The node connected to us.
    Inbound,
    /// Given by the operator.
    Manual,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 4] = [
        Source::Seed,
        Source::Gossip,
        Source::Inbound,
        Source::Manual,
    ];

    /// The lower-case name (`seed`, `gossip`, `inbound`, `manual`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Seed => "seed",
            Source::Gossip => "gossip",
            Source::Inbound => "inbound",
            Source::Manual => "manual",
        }
    }

    /// How much the source says about the address: an address learned from a
    /// better source keeps that source.
    fn rank(self) -> u8 {
        match self {
            Source::Gossip => 0,
            Source::Inbound => 1,
            Source::Seed => 2,
            Source::Manual => 3,
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Source::Seed => 0,
            Source::Gossip => 1,
            Source::Inbound => 2,
            Source::Manual => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`Source`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown address source {0:?} (expected seed, gossip, inbound or manual)")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| UnknownSource(s.to_string()))
    }
}

/// Everything the book knows of one address.
#[derive(Debug, Clone, PartialEq)]
pub struct AddrRecord {
    /// Where the node listens.
    pub addr: SocketAddr,
    /// Where we learned it.
    pub source: Source,
    /// Legacy service bits (from `version`, or from gossip until we connect).
    pub services: u64,
    /// N3 capabilities as short text (`"TcpServer:20333"`, `"FullNode:1234"`).
    pub capabilities: Vec<String>,
    /// Its user agent, once connected.
    pub user_agent: Option<String>,
    /// Its height when we last connected.
    pub start_height: u32,
    /// Its last known height.
    pub last_height: u32,
    /// When we first heard of it (Unix ms).
    pub first_seen_ms: u64,
    /// When it was last seen alive: by us, or as gossip claims (Unix ms).
    pub last_seen_ms: u64,
    /// When we last dialed it.
    pub last_attempt_ms: Option<u64>,
    /// When we last completed a handshake with it.
    pub last_success_ms: Option<u64>,
    /// Failed dials in a row (reset by a success).
    pub failures: u32,
    /// Its last ping round trip.
    pub rtt_ms: Option<u32>,
    /// Banned until then (Unix ms).
    pub banned_until_ms: Option<u64>,
    /// Why it was banned.
    pub ban_reason: Option<String>,
    /// Why the last connection to it ended.
    pub last_disconnect: Option<String>,
    /// Who told us of it (the IP of the peer whose `addr` carried it);
    /// `None` when nobody did (seeds file, the operator, the node itself).
    /// Its group chooses the record's bucket in the "new" table.
    pub learned_from: Option<IpAddr>,
    /// Where it sits in the tables; `None` for a record kept aside (a manual
    /// address, a ban the tables have no room for).
    pub slot: Option<Slot>,
}

impl AddrRecord {
    /// A record of an address first heard of at `now_ms`.
    pub fn new(addr: SocketAddr, source: Source, now_ms: u64) -> Self {
        AddrRecord {
            addr,
            source,
            services: 0,
            capabilities: Vec::new(),
            user_agent: None,
            start_height: 0,
            last_height: 0,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            last_attempt_ms: None,
            last_success_ms: None,
            failures: 0,
            rtt_ms: None,
            banned_until_ms: None,
            ban_reason: None,
            last_disconnect: None,
            learned_from: None,
            slot: None,
        }
    }

    /// The table it sits in (`None`: kept aside).
    pub fn table(&self) -> Option<Table> {
        self.slot.map(|s| s.table)
    }

    /// Whether it is banned at `now_ms`.
    pub fn is_banned_at(&self, now_ms: u64) -> bool {
        self.banned_until_ms.is_some_and(|until| now_ms < until)
    }
}

/// What a completed handshake told us about a node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connected {
    /// Its user agent.
    pub user_agent: String,
    /// Legacy service bits (N3: 0).
    pub services: u64,
    /// N3 capabilities as short text (Legacy: empty).
    pub capabilities: Vec<String>,
    /// Its height in `version`.
    pub start_height: u32,
}

impl From<&crate::protocol::VersionFacts> for Connected {
    /// What a `version` said, as the engine read it.
    fn from(v: &crate::protocol::VersionFacts) -> Self {
        Connected {
            user_agent: v.user_agent.clone(),
            services: v.services,
            capabilities: v.capabilities.clone(),
            start_height: v.start_height,
        }
    }
}

impl From<&crate::wire::legacy::VersionPayload> for Connected {
    /// The facts of a Legacy `version`: services and start height.
    fn from(v: &crate::wire::legacy::VersionPayload) -> Self {
        use crate::protocol::Protocol;
        Connected::from(&crate::protocol::Legacy::version_facts(v))
    }
}

impl From<&crate::wire::n3::VersionPayload> for Connected {
    /// The facts of an N3 `version`: its capabilities as text (the
    /// `Display` form of [`NodeCapability`](crate::wire::n3::NodeCapability)),
    /// the height of its `FullNode` (0 without one).
    fn from(v: &crate::wire::n3::VersionPayload) -> Self {
        use crate::protocol::Protocol;
        Connected::from(&crate::protocol::N3::version_facts(v))
    }
}

/// Default [`BookConfig::backoff_base`]: the wait after the first failed
/// dial, and the least time between two dials of one address.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Default [`BookConfig::backoff_max`]: a dead node is still retried every
/// 10 minutes (NEO nodes restart for upgrades), never in a storm.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(600);
/// Default [`BookConfig::flush_interval`]: a crash loses at most 30 s of
/// what the book learned.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(30);
/// How recently an address must have been seen for
/// [`AddressBook::for_getaddr`] to pass it on. The C# node answers `getaddr`
/// only with the nodes it is connected to at that moment; three hours keeps
/// to that spirit (only nodes recently alive are passed on) while still
/// answering when we are connected to few.
pub const GETADDR_MAX_AGE: Duration = Duration::from_secs(3 * 3600);
/// How much older than it claims a gossiped address is taken to be (as
/// Bitcoin Core does): a gossiped "seen just now" is stored as two hours
/// ago, so that it never looks fresher than a node we reached ourselves
/// within that time. A node announcing itself is believed.
pub const GOSSIP_TIME_PENALTY: Duration = Duration::from_secs(2 * 3600);
/// An address not heard of for this long is worthless: its slot goes to
/// the next address that needs it.
pub const HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most records kept aside from the tables: manual addresses and bans of
/// addresses the tables have no room for. Beyond it the bans that end
/// soonest go first, manual addresses last.
pub const MAX_KEPT: usize = 1024;
/// Most addresses waiting for a "tried" slot whose occupant must be tested
/// first.
pub const MAX_TRIED_COLLISIONS: usize = 10;
/// Most anchors stored: the outbound peers held at shutdown, dialed first
/// at the next start.
pub const MAX_ANCHORS: usize = 16;
/// An occupant of "tried" that was reached within this time keeps its slot
/// against a newcomer (test-before-evict).
pub const REPLACEMENT: Duration = Duration::from_secs(4 * 3600);
/// A newcomer waiting this long for its rival in "tried" to be tested takes
/// the slot untested.
pub const TEST_WINDOW: Duration = Duration::from_secs(40 * 60);

/// How a book behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookConfig {
    /// The protocol's short name (`"legacy"`, `"n3"`:
    /// [`Protocol::NAME`](crate::protocol::Protocol::NAME)); stored, and
    /// checked when the store is opened again.
    pub protocol: &'static str,
    /// The network magic; stored and checked like `protocol`.
    pub network: u32,
    /// The wait after the first failed dial; after `f` failures in a row it
    /// is `backoff_base * 2^(f-1)`, capped at `backoff_max`. Any dial also
    /// keeps the address out of [`AddressBook::select_for_dial`] for this
    /// long (a dial may still be under way). The backoff lives in memory: a
    /// restart forgets it, so that a quick restart skips no good peer.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
    /// How often the owner of the book should [`flush`](AddressBook::flush)
    /// it (the book itself starts no timer).
    pub flush_interval: Duration,
}

impl BookConfig {
    /// The defaults for `protocol` and `network`.
    pub fn new(protocol: &'static str, network: u32) -> Self {
        BookConfig {
            protocol,
            network,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }

    /// How long to wait after `failures` failed dials in a row (in this
    /// run: the book keeps the backoff in memory).
    ///
    /// ```
    /// use std::time::Duration;
    /// use neo_peer::book::BookConfig;
    ///
    /// let c = BookConfig::default();
    /// assert_eq!(c.backoff(0), Duration::ZERO);
    /// assert_eq!(c.backoff(1), c.backoff_base);
    /// assert_eq!(c.backoff(3), c.backoff_base * 4);
    /// assert_eq!(c.backoff(1000), c.backoff_max);
    /// ```
    pub fn backoff(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (failures - 1).min(31);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }

    fn same_store(&self, meta: &StoreMeta) -> bool {
        meta.protocol == self.protocol && meta.network == self.network
    }
}

impl Default for BookConfig {
    /// N3 mainnet ([`crate::wire::n3::MAINNET_MAGIC`]) with the default limits.
    fn default() -> Self {
        BookConfig::new("n3", crate::wire::n3::MAINNET_MAGIC)
    }
}

/// The group an address belongs to: addresses in one group are likely run
/// by one operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrGroup {
    /// The first two bytes of an IPv4 address (its /16).
    V4([u8; 2]),
    /// The first four bytes of an IPv6 address (its /32).
    V6([u8; 4]),
}

impl fmt::Display for AddrGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AddrGroup::V4([a, b]) => write!(f, "{a}.{b}.0.0/16"),
            AddrGroup::V6([a, b, c, d]) => {
                let mut octets = [0u8; 16];
                octets[..4].copy_from_slice(&[a, b, c, d]);
                write!(f, "{}/32", Ipv6Addr::from(octets))
            }
        }
    }
}

/// The group of `ip`: its IPv4 /16 or IPv6 /32 (an IPv4-mapped IPv6
/// address is grouped as the IPv4 address).
///
/// ```
/// use neo_peer::book::address_group;
///
/// let g = |s: &str| address_group(s.parse().unwrap());
/// assert_eq!(g("10.1.2.3"), g("10.1.200.7"));
/// assert_ne!(g("10.1.2.3"), g("10.2.2.3"));
/// assert_eq!(g("2001:db8:1::1"), g("2001:db8:ffff::2"));
/// assert_eq!(g("::ffff:10.1.2.3"), g("10.1.9.9"));
/// assert_eq!(g("10.1.2.3").to_string(), "10.1.0.0/16");
/// ```
pub fn address_group(ip: IpAddr) -> AddrGroup {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    match (v4, ip) {
        (Some(v4), _) => {
            let [a, b, ..] = v4.octets();
            AddrGroup::V4([a, b])
        }
        (None, IpAddr::V6(v6)) => {
            let [a, b, c, d, ..] = v6.octets();
            AddrGroup::V6([a, b, c, d])
        }
        (None, IpAddr::V4(_)) => unreachable!("an IPv4 address always has its IPv4 form"),
    }
}

/// Whether anyone could dial `addr`: not an unspecified address, not port
/// 0, not multicast or broadcast. The book refuses any other address.
///
/// ```
/// use neo_peer::book::is_dialable;
///
/// assert!(is_dialable("10.0.0.1:10333".parse().unwrap()));
/// assert!(!is_dialable("0.0.0.0:10333".parse().unwrap()));
/// assert!(!is_dialable("10.0.0.1:0".parse().unwrap()));
/// assert!(!is_dialable("[ff02::1]:10333".parse().unwrap()));
/// ```
pub fn is_dialable(addr: SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip => ip,
    };
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Shared {
    state: Mutex<State>,
    /// Held for a whole flush, so that flushes reach the store in order;
    /// `None` once [`AddressBook::close`] released it.
    store: Mutex<Option<Box<dyn PeerStore>>>,
    /// Where the store keeps its records, for errors after it is closed.
    location: PathBuf,
}

/// The address book (see the [module docs](self)). Cheap to clone: every
/// clone is the same book.
#[derive(Clone)]
pub struct AddressBook {
    shared: Arc<Shared>,
}

impl fmt::Debug for AddressBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state();
        f.debug_struct("AddressBook")
            .field("config", &st.config)
            .field("records", &st.records.len())
            .field("new", &st.table_len(Table::New))
            .field("tried", &st.table_len(Table::Tried))
            .field("dirty", &(st.dirty.len() + st.removed.len()))
            .finish()
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The known protocol names as `'static` text; another name read from a
/// store is leaked once (a few bytes, once per opened book).
fn static_protocol(name: String) -> &'static str {
    use crate::protocol::{Legacy, N3, Protocol};
    match name.as_str() {
        Legacy::NAME => Legacy::NAME,
        N3::NAME => N3::NAME,
        _ => Box::leak(name.into_boxed_str()),
    }
}

/// How many records each part of the book holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BookCounts {
    /// In the "new" table (at most [`NEW_BUCKETS`] × [`BUCKET_SIZE`]).
    pub new: usize,
    /// In the "tried" table (at most [`TRIED_BUCKETS`] × [`BUCKET_SIZE`]).
    pub tried: usize,
    /// Kept aside from the tables (at most [`MAX_KEPT`]).
    pub kept: usize,
}

impl AddressBook {
    /// Opens (or creates) the redb file at `path` for `config`'s protocol and
    /// network.
    ///
    /// ```no_run
    /// use neo_peer::book::{AddressBook, BookConfig};
    ///
    /// let book = AddressBook::open("peers.redb", BookConfig::new("n3", 860_833_102))?;
    /// println!("{} addresses", book.len());
    /// # Ok::<_, neo_peer::book::BookError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, config: BookConfig) -> Result<Self, BookError> {
        AddressBook::with_store(RedbStore::open(path)?, config)
    }

    /// Opens the redb file at `path`, which must exist, for whatever protocol
    /// and network it was made for (other settings are the defaults), and
    /// writes nothing to it. For tools that read a book.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, BookError> {
        let mut store = RedbStore::open_existing(&path)?;
        let meta = store.meta()?.ok_or_else(|| BookError::NoMeta {
            path: path.as_ref().to_path_buf(),
        })?;
        let config = BookConfig::new(static_protocol(meta.protocol), meta.network);
        AddressBook::from_store(Box::new(store), config, false)
    }

    /// A book that is never written anywhere.
    pub fn in_memory(config: BookConfig) -> Self {
        let rng = StdRng::from_rng(&mut rand::rng());
        AddressBook::from_state(
            State::new(config, BucketKey::random(), rng),
            Some(Box::new(MemoryStore::new())),
            PathBuf::from("(memory)"),
        )
    }

    /// A book over `store`: a new store is marked with `config`'s protocol
    /// and network and given a fresh secret key; a store marked otherwise is
    /// refused ([`BookError::Mismatch`]); a store written before the tables
    /// existed gets a key and its records are placed into the tables (and
    /// rewritten at the next flush).
    pub fn with_store(store: impl PeerStore, config: BookConfig) -> Result<Self, BookError> {
        AddressBook::from_store(Box::new(store), config, true)
    }

    fn from_store(
        mut store: Box<dyn PeerStore>,
        config: BookConfig,
        writable: bool,
    ) -> Result<Self, BookError> {
        let mark = |key: [u8; 32]| StoreMeta {
            protocol: config.protocol.to_string(),
            network: config.network,
            key: Some(key),
        };
        let (key, migrate) = match store.meta()? {
            None if writable => {
                let key = BucketKey::random();
                store.set_meta(&mark(key.0))?;
                (key, false)
            }
            None => {
                return Err(BookError::NoMeta {
                    path: store.location(),
                });
            }
            Some(found) if !config.same_store(&found) => {
                return Err(BookError::Mismatch {
                    path: store.location(),
                    protocol: config.protocol.to_string(),
                    network: config.network,
                    found_protocol: found.protocol,
                    found_network: found.network,
                });
            }
            Some(StoreMeta { key: Some(k), .. }) => (BucketKey(k), false),
            Some(_) => {
                let key = BucketKey::random();
                if writable {
                    store.set_meta(&mark(key.0))?;
                }
                (key, true)
            }
        };
        let records = store.load()?;
        let anchors = store.anchors()?;
        let mut state = State::new(config, key, StdRng::from_rng(&mut rand::rng()));
        state.load(records, anchors, migrate && writable, now_ms());
        let location = store.location();
        Ok(AddressBook::from_state(state, Some(store), location))
    }

    fn from_state(state: State, store: Option<Box<dyn PeerStore>>, location: PathBuf) -> Self {
        AddressBook {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                store: Mutex::new(store),
                location,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// The configuration.
    pub fn config(&self) -> BookConfig {
        self.state().config.clone()
    }

    /// How many addresses it holds.
    pub fn len(&self) -> usize {
        self.state().records.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many records sit in each table, and aside.
    pub fn counts(&self) -> BookCounts {
        let st = self.state();
        BookCounts {
            new: st.table_len(Table::New),
            tried: st.table_len(Table::Tried),
            kept: st.kept(),
        }
    }

    /// The record of `addr`.
    pub fn get(&self, addr: SocketAddr) -> Option<AddrRecord> {
        self.state().records.get(&addr).cloned()
    }

    /// Every record, sorted by address.
    pub fn records(&self) -> Vec<AddrRecord> {
        let mut v: Vec<_> = self.state().records.values().cloned().collect();
        v.sort_by_key(|r| r.addr);
        v
    }

    /// How many records changed (or were forgotten) since the last flush.
    pub fn dirty(&self) -> usize {
        let st = self.state();
        st.dirty.len() + st.removed.len()
    }

    /// Adds `addr`, learned from `source`; `true` if it is new. A known
    /// address keeps its record, and takes `source` if that says more
    /// (manual > seed > inbound > gossip). An address nobody can dial
    /// ([`is_dialable`]) is refused (`false`), and so is one whose "new"
    /// bucket is full of good addresses. A manual address is kept aside
    /// from the tables, never pushed out by gossip.
    pub fn add(&self, addr: SocketAddr, source: Source) -> bool {
        self.state().add(addr, source, now_ms())
    }

    /// Takes in the addresses of an `addr` message from `from` (`None`: not
    /// from a peer); returns how many were new. Addresses nobody can dial
    /// are ignored; a new address goes to the "new" table in a bucket of
    /// `from`'s group, and is dropped when that bucket is full of good
    /// addresses. For a known address gossip only fills gaps: it never
    /// changes the source, never replaces service bits, and moves
    /// `last_seen_ms` forward only for an address we have never reached
    /// ourselves, to the claimed time less [`GOSSIP_TIME_PENALTY`] (never
    /// past now; no penalty when `from` speaks of its own IP).
    pub fn learn(&self, from: Option<SocketAddr>, addrs: &[GossipAddr]) -> usize {
        self.state().learn(from, addrs, now_ms())
    }

    /// A dial of `addr` starts. Like every `record_*`, does nothing for an
    /// address the book does not know: [`add`](Self::add) it first.
    pub fn record_attempt(&self, addr: SocketAddr) {
        self.state().attempt(addr, now_ms());
    }

    /// A dial of `addr` failed (no connection, or no handshake): one more
    /// failure in a row; this run's backoff runs from now.
    pub fn record_failure(&self, addr: SocketAddr) {
        self.state().failure(addr, now_ms());
    }

    /// A dial of ours to `addr` completed the handshake: its facts are
    /// stored, its failures reset, and it moves to the "tried" table (when
    /// its slot there is taken, it waits in "new" while the occupant is
    /// tested: see [`select_feeler`](Self::select_feeler)).
    pub fn record_success(&self, addr: SocketAddr, facts: &Connected) {
        self.state().success(addr, facts, now_ms());
    }

    /// A node that connected to us completed the handshake, and listens on
    /// `addr` (its IP, the port it announced): it is added (as
    /// [`Source::Inbound`]) and its facts are stored, but it is not counted
    /// as reached, nor moved to "tried": nobody has dialed it.
    pub fn record_inbound(&self, addr: SocketAddr, facts: &Connected) {
        let now = now_ms();
        let mut st = self.state();
        st.add(addr, Source::Inbound, now);
        st.inbound(addr, facts, now);
    }

    /// `addr` proved to be at `height`.
    pub fn record_height(&self, addr: SocketAddr, height: u32) {
        let now = now_ms();
        self.state().update(addr, |r| {
            r.last_height = height;
            r.last_seen_ms = r.last_seen_ms.max(now);
        });
    }

    /// A ping round trip of `addr` (what [`AddrRecord::rtt_ms`] holds).
    pub fn record_rtt(&self, addr: SocketAddr, rtt: Duration) {
        let ms = u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX);
        self.state().update(addr, |r| r.rtt_ms = Some(ms));
    }

    /// The connection to `addr` ended, for `reason`.
    pub fn record_disconnect(&self, addr: SocketAddr, reason: &str) {
        let now = now_ms();
        self.state().update(addr, |r| {
            r.last_disconnect = Some(reason.to_string());
            r.last_seen_ms = r.last_seen_ms.max(now);
        });
    }

    /// Bans `addr` for `duration` (an unknown address is added, as
    /// [`Source::Inbound`], kept aside from the tables). Stored with the
    /// record at the next flush; a longer ban already in force is kept.
    pub fn ban(&self, addr: SocketAddr, duration: Duration, reason: &str) {
        self.state().ban(addr, duration, reason, now_ms());
    }

    /// Whether `addr` is banned now.
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.state().is_banned(addr, now_ms())
    }

    /// Whether any address on `ip` is banned now. An inbound connection
    /// comes from a port of its own choosing, so the address it connects
    /// from rarely matches a banned record: its IP does. (On a network
    /// where many nodes share one IP, 127.0.0.1 say, this bans them all.)
    pub fn is_ip_banned(&self, ip: IpAddr) -> bool {
        let now = now_ms();
        self.state()
            .records
            .values()
            .any(|r| r.addr.ip() == ip && r.is_banned_at(now))
    }

    /// Up to `n` addresses to dial (see the [module docs](self)), none of
    /// them in `connected`. Group spreading counts the groups of
    /// `connected` too; when every candidate is in an already used group
    /// (all on 127.0.0.1, say) the rest are still taken, fewest per group
    /// first.
    pub fn select_for_dial(&self, n: usize, connected: &[SocketAddr]) -> Vec<SocketAddr> {
        self.state().select_for_dial(n, connected, now_ms())
    }

    /// Whom a feeler connection should dial now, none of `connected`: the
    /// occupant of a "tried" slot that a newly reached address is waiting
    /// for (test-before-evict), else an address of the "new" table in a
    /// group none of `connected` is in. A feeler that completes the
    /// handshake reports it with [`record_success`](Self::record_success)
    /// and hangs up: that keeps "tried" fresh without giving gossip a slot.
    /// Collisions that can be settled are settled first.
    pub fn select_feeler(&self, connected: &[SocketAddr]) -> Option<SocketAddr> {
        self.state().select_feeler(connected, now_ms())
    }

    /// Stores the anchors: the outbound peers held now (at shutdown), oldest
    /// first, at most [`MAX_ANCHORS`], each known to the book and not
    /// banned. Written at the next flush.
    pub fn set_anchors(&self, addrs: &[SocketAddr]) {
        self.state().set_anchors(addrs, now_ms());
    }

    /// The anchors stored, which are cleared (a crash before the next
    /// [`set_anchors`](Self::set_anchors) leaves none): the peers to dial
    /// before anything else at startup. Banned ones are left out.
    pub fn take_anchors(&self) -> Vec<SocketAddr> {
        self.state().take_anchors(now_ms())
    }

    /// The anchors stored, without taking them.
    pub fn anchors(&self) -> Vec<SocketAddr> {
        self.state().anchors().to_vec()
    }

    /// Up to `max` addresses for an `addr` answer: seen within
    /// [`GETADDR_MAX_AGE`], not banned, not failing, not worthless; those we
    /// reached ourselves first, then those we only heard of, each part
    /// shuffled. An inbound address is passed on only once we have reached
    /// it ourselves.
    pub fn for_getaddr(&self, max: usize) -> Vec<GossipAddr> {
        self.state().for_getaddr(max, now_ms())
    }

    /// Writes what changed since the last flush (records and anchors) in
    /// one transaction; returns how many records were written or removed.
    /// On error nothing is lost: the changes stay for the next flush. After
    /// [`close`](Self::close): [`BookError::Closed`].
    pub fn flush(&self) -> Result<usize, BookError> {
        let mut store = lock(&self.shared.store);
        match store.as_mut() {
            Some(store) => self.flush_into(store.as_mut()),
            None => Err(BookError::Closed {
                path: self.shared.location.clone(),
            }),
        }
    }

    fn flush_into(&self, store: &mut dyn PeerStore) -> Result<usize, BookError> {
        let (upserts, removals, anchors) = {
            let mut st = self.state();
            let st = &mut *st;
            let mut upserts: Vec<AddrRecord> = st
                .dirty
                .drain()
                .filter_map(|a| st.records.get(&a).cloned())
                .collect();
            upserts.sort_by_key(|r| r.addr);
            let mut removals: Vec<SocketAddr> = st.removed.drain().collect();
            removals.sort();
            let anchors = std::mem::take(&mut st.anchors_dirty).then(|| st.anchors().to_vec());
            (upserts, removals, anchors)
        };
        if upserts.is_empty() && removals.is_empty() && anchors.is_none() {
            return Ok(0);
        }
        let batch = Batch {
            upserts: &upserts,
            removals: &removals,
            anchors: anchors.as_deref(),
        };
        match store.save(&batch) {
            Ok(()) => Ok(upserts.len() + removals.len()),
            Err(e) => {
                let mut st = self.state();
                let st = &mut *st;
                for r in &upserts {
                    if st.records.contains_key(&r.addr) {
                        st.dirty.insert(r.addr);
                    }
                }
                for a in removals {
                    if !st.records.contains_key(&a) {
                        st.removed.insert(a);
                    }
                }
                st.anchors_dirty |= anchors.is_some();
                Err(e)
            }
        }
    }

    /// [`flush`](Self::flush) on a thread of the `blocking` pool, so that
    /// the disk write does not hold up the executor.
    pub async fn flush_async(&self) -> Result<usize, BookError> {
        let book = self.clone();
        blocking::unblock(move || book.flush()).await
    }

    /// Flushes, then releases the store (a redb file is unlocked: it can
    /// be opened again at once, by this process or another). The book stays
    /// readable in memory; later flushes are [`BookError::Closed`]. Returns
    /// what the final flush wrote (0 when already closed); the store is
    /// released even if that flush failed.
    pub fn close(&self) -> Result<usize, BookError> {
        let mut guard = lock(&self.shared.store);
        let Some(mut store) = guard.take() else {
            return Ok(0);
        };
        self.flush_into(store.as_mut())
    }

    /// [`close`](Self::close) on a thread of the `blocking` pool.
    pub async fn close_async(&self) -> Result<usize, BookError> {
        let book = self.clone();
        blocking::unblock(move || book.close()).await
    }

    /// Adds the addresses of the seeds file at `path` ([`parse_seeds`]),
    /// as [`Source::Seed`], with `default_port` where a line has none.
    /// DNS names are resolved on the `blocking` pool; a name that does not
    /// resolve is logged and skipped. A bad line is an error naming
    /// `path:line`. Returns how many addresses were new.
    pub async fn load_seeds(
        &self,
        path: impl AsRef<Path>,
        default_port: u16,
    ) -> Result<usize, BookError> {
        let path = path.as_ref().to_path_buf();
        let read = path.clone();
        let text = blocking::unblock(move || std::fs::read_to_string(read))
            .await
            .map_err(|source| BookError::ReadSeeds {
                path: path.clone(),
                source,
            })?;
        let entries = parse_seeds(&text).map_err(|e| match e {
            BookError::SeedLine { line, reason } => BookError::Seeds {
                path: path.clone(),
                line,
                reason,
            },
            other => other,
        })?;
        let mut addrs = Vec::new();
        let mut names = Vec::new();
        for e in entries {
            let port = e.port.unwrap_or(default_port);
            match e.ip() {
                Some(ip) => addrs.push(SocketAddr::new(ip, port)),
                None => names.push((e, port)),
            }
        }
        if !names.is_empty() {
            let resolved = blocking::unblock(move || {
                names
                    .into_iter()
                    .map(|(e, port)| {
                        let r = (e.host.as_str(), port)
                            .to_socket_addrs()
                            .map(Vec::from_iter);
                        (e, r)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            for (e, r) in resolved {
                match r {
                    Ok(list) if !list.is_empty() => addrs.extend(list),
                    Ok(_) => tracing::warn!(
                        "{}:{}: {} has no address; skipped",
                        path.display(),
                        e.line,
                        e.host
                    ),
                    Err(err) => tracing::warn!(
                        "{}:{}: cannot resolve {}: {err}; skipped",
                        path.display(),
                        e.line,
                        e.host
                    ),
                }
            }
        }
        let now = now_ms();
        let mut st = self.state();
        Ok(addrs
            .into_iter()
            .filter(|&a| st.add(a, Source::Seed, now))
            .count())
    }
}
