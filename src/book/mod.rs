//! The address book: every node we have heard of, kept between runs.
//!
//! An [`AddressBook`] remembers, per address, where we learned it
//! ([`Source`]), what the node told us when we last reached it, how each
//! dial went, its height and round trip, and any ban. It is the same for
//! both wire generations: what it knows of a node is protocol-neutral
//! (Legacy service bits and N3 capabilities as short text side by side).
//!
//! - **Starting.** The first time, [`AddressBook::load_seeds`] reads a seeds
//!   file ([`parse_seeds`] describes it). Afterwards the book is mostly fed
//!   by gossip: [`AddressBook::learn`] takes the addresses of an `addr`
//!   message ([`Protocol::addresses`](crate::protocol::Protocol::addresses))
//!   and ignores what nobody can dial (unspecified, port 0, multicast,
//!   broadcast); gossip never overwrites what we saw ourselves.
//! - **Dialing.** [`AddressBook::select_for_dial`] picks whom to dial: never
//!   a banned address, one already connected or one in backoff after failed
//!   dials ([`BookConfig::backoff`]); nodes we reached before first, then
//!   untried ones, then failing ones; spread over address groups
//!   ([`address_group`]: IPv4 /16, IPv6 /32) so that one operator cannot
//!   fill every slot. The outcome goes back through
//!   [`record_attempt`](AddressBook::record_attempt),
//!   [`record_failure`](AddressBook::record_failure) and
//!   [`record_success`](AddressBook::record_success).
//! - **Answering `getaddr`.** [`AddressBook::for_getaddr`]: recent, healthy,
//!   unbanned addresses, shuffled.
//! - **Size.** Beyond [`BookConfig::max_entries`] the worst records go:
//!   gossip we never reached, failing, seen longest ago. Manual and banned
//!   records go last.
//! - **Persistence.** Changes are kept in memory and marked dirty;
//!   [`AddressBook::flush`] (or [`flush_async`](AddressBook::flush_async),
//!   every [`BookConfig::flush_interval`]) writes them in one transaction
//!   through a [`PeerStore`]: [`RedbStore`] (one redb file, the default) or
//!   [`MemoryStore`]. A crash loses at most what changed since the last
//!   flush. A store remembers its protocol and network; opening it for
//!   another is an error.
//!
//! Times are Unix milliseconds ([`now_ms`]).
//!
//! ```
//! use std::net::SocketAddr;
//! use neo_peer::book::{AddressBook, BookConfig, Connected, Source};
//!
//! let book = AddressBook::in_memory(BookConfig::new("n3", 860_833_102));
//! let a: SocketAddr = "10.0.0.1:10333".parse().unwrap();
//! let b: SocketAddr = "10.1.0.1:10333".parse().unwrap();
//! assert!(book.add(a, Source::Seed));
//! assert!(book.add(b, Source::Manual));
//! assert_eq!(book.select_for_dial(8, &[b]), vec![a]);
//!
//! book.record_attempt(a);
//! let facts = Connected { user_agent: "/Neo:3.8.2/".into(), start_height: 100, ..Default::default() };
//! book.record_success(a, &facts);
//! assert_eq!(book.get(a).unwrap().user_agent.as_deref(), Some("/Neo:3.8.2/"));
//! assert_eq!(book.flush().unwrap(), 2);
//! ```

mod error;
mod seeds;
mod store;
#[cfg(test)]
mod tests;

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use error::BookError;
pub use seeds::{SeedEntry, parse_seeds};
pub use store::{MemoryStore, PeerStore, RedbStore, StoreMeta};

use crate::protocol::GossipAddr;

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
        }
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

/// Default [`BookConfig::max_entries`]: NEO networks have hundreds of
/// listening nodes, not tens of thousands; 4096 keeps every one of them and
/// bounds what gossip can make us store (about 1 MiB).
pub const DEFAULT_MAX_ENTRIES: usize = 4096;
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

/// How a book behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookConfig {
    /// The protocol's short name (`"legacy"`, `"n3"`:
    /// [`Protocol::NAME`](crate::protocol::Protocol::NAME)); stored, and
    /// checked when the store is opened again.
    pub protocol: &'static str,
    /// The network magic; stored and checked like `protocol`.
    pub network: u32,
    /// Beyond this many records the worst are evicted.
    pub max_entries: usize,
    /// The wait after the first failed dial; after `f` failures in a row it
    /// is `backoff_base * 2^(f-1)`, capped at `backoff_max`. Any dial also
    /// keeps the address out of [`AddressBook::select_for_dial`] for this
    /// long (a dial may still be under way).
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
            max_entries: DEFAULT_MAX_ENTRIES,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }

    /// How long to wait after `failures` failed dials in a row.
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

    fn meta(&self) -> StoreMeta {
        StoreMeta {
            protocol: self.protocol.to_string(),
            network: self.network,
        }
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

/// xorshift64*: enough to shuffle addresses, with no dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(now_ms());
        Rng(h.finish() | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            // i < usize::MAX, so i + 1 fits, and the result is at most i.
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

struct State {
    config: BookConfig,
    records: HashMap<SocketAddr, AddrRecord>,
    /// Changed since the last flush.
    dirty: HashSet<SocketAddr>,
    /// Evicted since the last flush.
    removed: HashSet<SocketAddr>,
    rng: Rng,
}

struct Shared {
    state: Mutex<State>,
    /// Held for a whole flush, so that flushes reach the store in order.
    store: Mutex<Box<dyn PeerStore>>,
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
    /// and network it was made for (other settings are the defaults). For
    /// tools that read a book.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, BookError> {
        let mut store = RedbStore::open_existing(&path)?;
        let meta = store.meta()?.ok_or_else(|| BookError::NoMeta {
            path: path.as_ref().to_path_buf(),
        })?;
        let mut config = BookConfig::new(static_protocol(meta.protocol), meta.network);
        config.max_entries = usize::MAX;
        AddressBook::with_store(store, config)
    }

    /// A book that is never written anywhere.
    pub fn in_memory(config: BookConfig) -> Self {
        AddressBook::from_parts(Box::new(MemoryStore::new()), config, Vec::new())
    }

    /// A book over `store`: a new store is marked with `config`'s protocol
    /// and network; a store marked otherwise is refused
    /// ([`BookError::Mismatch`]).
    pub fn with_store(mut store: impl PeerStore, config: BookConfig) -> Result<Self, BookError> {
        let wanted = config.meta();
        match store.meta()? {
            None => store.set_meta(&wanted)?,
            Some(found) if found == wanted => {}
            Some(found) => {
                return Err(BookError::Mismatch {
                    path: store.location(),
                    protocol: wanted.protocol,
                    network: wanted.network,
                    found_protocol: found.protocol,
                    found_network: found.network,
                });
            }
        }
        let records = store.load()?;
        Ok(AddressBook::from_parts(Box::new(store), config, records))
    }

    fn from_parts(store: Box<dyn PeerStore>, config: BookConfig, records: Vec<AddrRecord>) -> Self {
        let records = records.into_iter().map(|r| (r.addr, r)).collect();
        AddressBook {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    config,
                    records,
                    dirty: HashSet::new(),
                    removed: HashSet::new(),
                    rng: Rng::new(),
                }),
                store: Mutex::new(store),
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

    /// How many records changed (or were evicted) since the last flush.
    pub fn dirty(&self) -> usize {
        let st = self.state();
        st.dirty.len() + st.removed.len()
    }

    /// Adds `addr`, learned from `source`; `true` if it is new. A known
    /// address keeps its record, and takes `source` if that says more
    /// (manual > seed > inbound > gossip). An address nobody can dial
    /// ([`is_dialable`]) is refused (`false`).
    pub fn add(&self, addr: SocketAddr, source: Source) -> bool {
        self.state().add(addr, source, now_ms())
    }

    /// Takes in the addresses of an `addr` message from `from` (`None`: not
    /// from a peer); returns how many were new. Addresses nobody can dial
    /// are ignored. For a known address gossip only fills gaps: it never
    /// changes the source, never replaces service bits, and moves
    /// `last_seen_ms` forward (never past now) only for an address we have
    /// never reached ourselves.
    pub fn learn(&self, from: Option<SocketAddr>, addrs: &[GossipAddr]) -> usize {
        self.state().learn(from, addrs, now_ms())
    }

    /// A dial of `addr` starts. Like every `record_*`, does nothing for an
    /// address the book does not know: [`add`](Self::add) it first.
    pub fn record_attempt(&self, addr: SocketAddr) {
        self.state().attempt(addr, now_ms());
    }

    /// A dial of `addr` failed (no connection, or no handshake): one more
    /// failure in a row; the backoff runs from now.
    pub fn record_failure(&self, addr: SocketAddr) {
        self.state().failure(addr, now_ms());
    }

    /// The handshake with `addr` completed: its facts are stored, its
    /// failures reset.
    pub fn record_success(&self, addr: SocketAddr, facts: &Connected) {
        self.state().success(addr, facts, now_ms());
    }

    /// `addr` proved to be at `height`.
    pub fn record_height(&self, addr: SocketAddr, height: u32) {
        let now = now_ms();
        self.state().update(addr, |r| {
            r.last_height = height;
            r.last_seen_ms = r.last_seen_ms.max(now);
        });
    }

    /// A ping round trip of `addr`.
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
    /// [`Source::Inbound`]). Stored with the record at the next flush; a
    /// longer ban already in force is kept.
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

    /// Up to `n` addresses to dial, best first (see the [module docs](self)),
    /// none of them in `connected`. Group spreading counts the groups of
    /// `connected` too; when every candidate is in an already used group
    /// (all on 127.0.0.1, say) the rest are still taken, fewest per group
    /// first.
    pub fn select_for_dial(&self, n: usize, connected: &[SocketAddr]) -> Vec<SocketAddr> {
        self.state().select_for_dial(n, connected, now_ms())
    }

    /// Up to `max` addresses for an `addr` answer: seen within
    /// [`GETADDR_MAX_AGE`], not banned, not failing, shuffled. An inbound
    /// address is passed on only once we have reached it ourselves.
    pub fn for_getaddr(&self, max: usize) -> Vec<GossipAddr> {
        self.state().for_getaddr(max, now_ms())
    }

    /// Writes what changed since the last flush in one transaction; returns
    /// how many records were written or removed. On error nothing is lost:
    /// the records stay dirty for the next flush.
    pub fn flush(&self) -> Result<usize, BookError> {
        let mut store = lock(&self.shared.store);
        let (upserts, removals) = {
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
            (upserts, removals)
        };
        if upserts.is_empty() && removals.is_empty() {
            return Ok(0);
        }
        match store.save(&upserts, &removals) {
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

impl State {
    fn touch(&mut self, addr: SocketAddr) {
        self.removed.remove(&addr);
        self.dirty.insert(addr);
    }

    fn add(&mut self, addr: SocketAddr, source: Source, now: u64) -> bool {
        if !is_dialable(addr) {
            return false;
        }
        if let Some(r) = self.records.get_mut(&addr) {
            if source.rank() > r.source.rank() {
                r.source = source;
                self.touch(addr);
            }
            return false;
        }
        self.records
            .insert(addr, AddrRecord::new(addr, source, now));
        self.touch(addr);
        self.evict(now);
        true
    }

    fn learn(&mut self, from: Option<SocketAddr>, addrs: &[GossipAddr], now: u64) -> usize {
        let mut new = 0;
        let mut ignored = 0;
        for g in addrs {
            if !is_dialable(g.addr) {
                ignored += 1;
                continue;
            }
            let claimed = (u64::from(g.timestamp) * 1000).min(now);
            match self.records.get_mut(&g.addr) {
                Some(r) => {
                    let mut changed = false;
                    if r.services == 0 && g.services != 0 {
                        r.services = g.services;
                        changed = true;
                    }
                    if r.last_success_ms.is_none() && claimed > r.last_seen_ms {
                        r.last_seen_ms = claimed;
                        changed = true;
                    }
                    if changed {
                        self.touch(g.addr);
                    }
                }
                None => {
                    let mut r = AddrRecord::new(g.addr, Source::Gossip, now);
                    r.services = g.services;
                    r.last_seen_ms = claimed;
                    self.records.insert(g.addr, r);
                    self.touch(g.addr);
                    new += 1;
                }
            }
        }
        if ignored > 0 {
            tracing::debug!(?from, ignored, "undialable gossiped addresses ignored");
        }
        self.evict(now);
        new
    }

    fn update(&mut self, addr: SocketAddr, f: impl FnOnce(&mut AddrRecord)) {
        match self.records.get_mut(&addr) {
            Some(r) => {
                f(r);
                self.touch(addr);
            }
            None => tracing::debug!(%addr, "not in the address book; update ignored"),
        }
    }

    fn attempt(&mut self, addr: SocketAddr, now: u64) {
        self.update(addr, |r| r.last_attempt_ms = Some(now));
    }

    fn failure(&mut self, addr: SocketAddr, now: u64) {
        self.update(addr, |r| {
            r.failures = r.failures.saturating_add(1);
            r.last_attempt_ms = Some(now);
        });
    }

    fn success(&mut self, addr: SocketAddr, facts: &Connected, now: u64) {
        self.update(addr, |r| {
            r.user_agent = Some(facts.user_agent.clone());
            r.services = facts.services;
            r.capabilities = facts.capabilities.clone();
            r.start_height = facts.start_height;
            r.last_height = r.last_height.max(facts.start_height);
            r.last_success_ms = Some(now);
            r.last_seen_ms = r.last_seen_ms.max(now);
            r.failures = 0;
        });
    }

    fn ban(&mut self, addr: SocketAddr, duration: Duration, reason: &str, now: u64) {
        let until = now.saturating_add(duration_ms(duration));
        let r = self
            .records
            .entry(addr)
            .or_insert_with(|| AddrRecord::new(addr, Source::Inbound, now));
        if r.banned_until_ms.is_some_and(|u| u > until) {
            return;
        }
        r.banned_until_ms = Some(until);
        r.ban_reason = Some(reason.to_string());
        self.touch(addr);
        self.evict(now);
    }

    fn is_banned(&self, addr: SocketAddr, now: u64) -> bool {
        self.records.get(&addr).is_some_and(|r| r.is_banned_at(now))
    }

    /// Whether a dial of `r` must wait: backoff after failures, and the base
    /// wait after any attempt.
    fn in_backoff(&self, r: &AddrRecord, now: u64) -> bool {
        let Some(at) = r.last_attempt_ms else {
            return false;
        };
        let wait = self
            .config
            .backoff(r.failures)
            .max(self.config.backoff_base);
        now < at.saturating_add(duration_ms(wait))
    }

    /// Drops the worst records beyond `max_entries`.
    fn evict(&mut self, now: u64) {
        let max = self.config.max_entries;
        if self.records.len() <= max {
            return;
        }
        let excess = self.records.len() - max;
        // Smallest key goes first: unprotected, never reached, gossip, most
        // failures, seen longest ago.
        let mut keys: Vec<_> = self
            .records
            .values()
            .map(|r| {
                let protected = r.source == Source::Manual || r.is_banned_at(now);
                (
                    protected,
                    r.last_success_ms.is_some(),
                    r.source.rank(),
                    std::cmp::Reverse(r.failures),
                    r.last_seen_ms,
                    r.addr,
                )
            })
            .collect();
        keys.select_nth_unstable(excess - 1);
        for k in &keys[..excess] {
            let addr = k.5;
            self.records.remove(&addr);
            self.dirty.remove(&addr);
            self.removed.insert(addr);
        }
    }

    fn select_for_dial(&mut self, n: usize, connected: &[SocketAddr], now: u64) -> Vec<SocketAddr> {
        if n == 0 {
            return Vec::new();
        }
        let connected_set: HashSet<SocketAddr> = connected.iter().copied().collect();
        // (tier, order within the tier, random tie-break, address)
        let mut candidates: Vec<(u8, u64, u64, SocketAddr)> = Vec::new();
        for r in self.records.values() {
            if connected_set.contains(&r.addr) || r.is_banned_at(now) || self.in_backoff(r, now) {
                continue;
            }
            let (tier, order) = match (r.last_success_ms, r.last_attempt_ms) {
                // Reached before and not failing since: most recent first.
                (Some(ok), _) if r.failures == 0 => (0, u64::MAX - ok),
                // Never tried.
                (_, None) => (1, 0),
                // Failing (or tried with no outcome): fewest failures first.
                _ => (2, u64::from(r.failures)),
            };
            candidates.push((tier, order, 0, r.addr));
        }
        for c in &mut candidates {
            c.2 = self.rng.next();
        }
        candidates.sort_unstable();

        let mut per_group: HashMap<AddrGroup, usize> = HashMap::new();
        for a in connected {
            *per_group.entry(address_group(a.ip())).or_default() += 1;
        }
        let mut picked = Vec::with_capacity(n.min(candidates.len()));
        let mut taken = vec![false; candidates.len()];
        // Round k takes, best first, candidates whose group holds fewer than
        // k addresses: one new group before a second address in any group.
        let mut limit = 1;
        while picked.len() < n && picked.len() < candidates.len() {
            for (i, c) in candidates.iter().enumerate() {
                if picked.len() == n {
                    break;
                }
                if taken[i] {
                    continue;
                }
                let count = per_group.entry(address_group(c.3.ip())).or_default();
                if *count < limit {
                    *count += 1;
                    taken[i] = true;
                    picked.push(c.3);
                }
            }
            limit += 1;
        }
        picked
    }

    fn for_getaddr(&mut self, max: usize, now: u64) -> Vec<GossipAddr> {
        let oldest = now.saturating_sub(duration_ms(GETADDR_MAX_AGE));
        let mut out: Vec<GossipAddr> = self
            .records
            .values()
            .filter(|r| {
                let seen = r.last_seen_ms.max(r.last_success_ms.unwrap_or(0));
                seen >= oldest
                    && r.failures == 0
                    && !r.is_banned_at(now)
                    && (r.source != Source::Inbound || r.last_success_ms.is_some())
            })
            .map(|r| GossipAddr {
                addr: r.addr,
                timestamp: u32::try_from(r.last_seen_ms / 1000).unwrap_or(u32::MAX),
                services: r.services,
            })
            .collect();
        self.rng.shuffle(&mut out);
        out.truncate(max);
        out
    }
}
