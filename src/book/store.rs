//! Where address records are kept between runs.
//!
//! [`RedbStore`] keeps them in one redb file: a `records` table (the address
//! as text → the record in a small versioned binary layout, its table slot
//! included) and a `meta` table (`protocol`, `network`, the secret bucket
//! `key`, the `anchors`). Every [`PeerStore::save`] is one write
//! transaction with redb's default immediate durability: once it returns the
//! records are on disk, and a process killed at any moment leaves the file
//! as of the last committed transaction.
//! [`MemoryStore`] keeps the same things in memory.
//!
//! A redb file is never tiny, whatever the number of records: its size is
//! redb's page allocator, sized for a 4 GiB region of the file. A new file
//! is about 1 MiB while open, and about 2.8 MiB once closed, when redb
//! writes that allocator's state into it so that the next open needs no
//! repair; a full book (4096 records) adds little to either. New files use
//! redb's newer file format, which is about 0.8 MiB smaller than the older
//! one that files made before it keep (3.5 MiB closed).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Buf, BufMut};
use redb::{Builder, Database, ReadableTable, TableDefinition, TableError};

use super::tables::{Slot, Table};
use super::{AddrRecord, BookError, Source};

/// What a store was made for, and the secret it keeps; an address book
/// refuses a store made for another protocol or network. The `Debug` form
/// hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreMeta {
    /// The protocol's short name (`"legacy"`, `"n3"`).
    pub protocol: String,
    /// The network magic.
    pub network: u32,
    /// The secret key of the bucket hashes (`None` in a store written
    /// before the tables existed). Never log or send it.
    pub key: Option<[u8; 32]>,
}

impl std::fmt::Debug for StoreMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreMeta")
            .field("protocol", &self.protocol)
            .field("network", &self.network)
            .field("key", &self.key.map(|_| ".."))
            .finish()
    }
}

/// What one flush writes, in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Records to write (new or changed).
    pub upserts: &'a [AddrRecord],
    /// Addresses to delete.
    pub removals: &'a [SocketAddr],
    /// The anchors to store instead of the stored ones, when they changed.
    pub anchors: Option<&'a [SocketAddr]>,
}

/// Transactional persistence of address records.
///
/// The address book calls these from one thread at a time (it serialises
/// flushes); a store only has to be `Send`.
pub trait PeerStore: Send + 'static {
    /// Where the records live, for error messages.
    fn location(&self) -> PathBuf {
        PathBuf::from("(custom store)")
    }
    /// What the store was made for (`None` for a new, empty store).
    fn meta(&mut self) -> Result<Option<StoreMeta>, BookError>;
    /// Records what the store is made for, and its key.
    fn set_meta(&mut self, meta: &StoreMeta) -> Result<(), BookError>;
    /// Every record.
    fn load(&mut self) -> Result<Vec<AddrRecord>, BookError>;
    /// The anchors stored (none in a new store).
    fn anchors(&mut self) -> Result<Vec<SocketAddr>, BookError>;
    /// Writes a flush in one transaction: after an error or a crash, either
    /// all of it is stored or none of it.
    fn save(&mut self, batch: &Batch<'_>) -> Result<(), BookError>;
}

#[derive(Debug, Default)]
struct Memory {
    meta: Option<StoreMeta>,
    records: BTreeMap<SocketAddr, AddrRecord>,
    anchors: Vec<SocketAddr>,
}

/// A store in memory. Clones share the same records, so a test can drop a
/// book and open another one on a clone of its store, as after a restart.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Memory>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PeerStore for MemoryStore {
    fn location(&self) -> PathBuf {
        PathBuf::from("(memory)")
    }

    fn meta(&mut self) -> Result<Option<StoreMeta>, BookError> {
        Ok(self.lock().meta.clone())
    }

    fn set_meta(&mut self, meta: &StoreMeta) -> Result<(), BookError> {
        self.lock().meta = Some(meta.clone());
        Ok(())
    }

    fn load(&mut self) -> Result<Vec<AddrRecord>, BookError> {
        Ok(self.lock().records.values().cloned().collect())
    }

    fn anchors(&mut self) -> Result<Vec<SocketAddr>, BookError> {
        Ok(self.lock().anchors.clone())
    }

    fn save(&mut self, batch: &Batch<'_>) -> Result<(), BookError> {
        let mut m = self.lock();
        for r in batch.upserts {
            m.records.insert(r.addr, r.clone());
        }
        for a in batch.removals {
            m.records.remove(a);
        }
        if let Some(anchors) = batch.anchors {
            m.anchors = anchors.to_vec();
        }
        Ok(())
    }
}

pub(crate) const RECORDS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("records");
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");

/// A store in one redb file.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db_err<E: Into<redb::Error>>(path: &Path, op: &'static str) -> impl FnOnce(E) -> BookError {
    let path = path.to_path_buf();
    move |e| BookError::Db {
        path,
        op,
        source: Box::new(e.into()),
    }
}

/// redb's page cache for a book: a book is read once at start and written a
/// few kilobytes at a time (redb's default, 1 GiB, suits databases that do
/// not fit in memory).
const CACHE_BYTES: usize = 4 << 20;

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_cache_size(CACHE_BYTES);
    // redb's newer file format: a smaller new file. Files in the older
    // format still open.
    b.create_with_file_format_v3(true);
    b
}

impl RedbStore {
    /// Opens the file at `path`, creating it (and its tables) if missing.
    /// A file killed mid-write is recovered to its last committed
    /// transaction.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, BookError> {
        let path = path.as_ref();
        let db = builder().create(path).map_err(db_err(path, "open"))?;
        let txn = db.begin_write().map_err(db_err(path, "write"))?;
        txn.open_table(RECORDS).map_err(db_err(path, "write"))?;
        txn.open_table(META).map_err(db_err(path, "write"))?;
        txn.commit().map_err(db_err(path, "commit"))?;
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Opens the file at `path`, which must exist ([`BookError::NotFound`]
    /// otherwise). Nothing is written unless the file needs recovery.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, BookError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(BookError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let db = builder().open(path).map_err(db_err(path, "open"))?;
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `key` in the `meta` table (`None` when either is
    /// missing).
    fn meta_value(&self, key: &str) -> Result<Option<Vec<u8>>, BookError> {
        let path = &self.path;
        let txn = self.db.begin_read().map_err(db_err(path, "read"))?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(path, "read")(e)),
        };
        let value = table.get(key).map_err(db_err(path, "read"))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn corrupt_meta(&self, key: &str, reason: &str) -> BookError {
        BookError::Corrupt {
            path: self.path.clone(),
            what: "meta",
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl PeerStore for RedbStore {
    fn location(&self) -> PathBuf {
        self.path.clone()
    }

    fn meta(&mut self) -> Result<Option<StoreMeta>, BookError> {
        let corrupt = |key, reason| self.corrupt_meta(key, reason);
        match (self.meta_value("protocol")?, self.meta_value("network")?) {
            (None, None) => Ok(None),
            (Some(p), Some(n)) => {
                let protocol =
                    String::from_utf8(p).map_err(|_| corrupt("protocol", "not UTF-8"))?;
                let network = <[u8; 4]>::try_from(n.as_slice())
                    .map(u32::from_le_bytes)
                    .map_err(|_| corrupt("network", "not 4 bytes"))?;
                let key = self
                    .meta_value("key")?
                    .map(|k| <[u8; 32]>::try_from(k.as_slice()))
                    .transpose()
                    .map_err(|_| corrupt("key", "not 32 bytes"))?;
                Ok(Some(StoreMeta {
                    protocol,
                    network,
                    key,
                }))
            }
            (None, Some(_)) => Err(corrupt("protocol", "missing")),
            (Some(_), None) => Err(corrupt("network", "missing")),
        }
    }

    fn set_meta(&mut self, meta: &StoreMeta) -> Result<(), BookError> {
        let path = &self.path;
        let txn = self.db.begin_write().map_err(db_err(path, "write"))?;
        {
            let mut table = txn.open_table(META).map_err(db_err(path, "write"))?;
            table
                .insert("protocol", meta.protocol.as_bytes())
                .map_err(db_err(path, "write"))?;
            table
                .insert("network", &meta.network.to_le_bytes()[..])
                .map_err(db_err(path, "write"))?;
            if let Some(key) = &meta.key {
                table
                    .insert("key", &key[..])
                    .map_err(db_err(path, "write"))?;
            }
        }
        txn.commit().map_err(db_err(path, "commit"))
    }

    fn load(&mut self) -> Result<Vec<AddrRecord>, BookError> {
        let path = &self.path;
        let txn = self.db.begin_read().map_err(db_err(path, "read"))?;
        let table = match txn.open_table(RECORDS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(path, "read")(e)),
        };
        let mut out = Vec::new();
        for item in table.iter().map_err(db_err(path, "read"))? {
            let (k, v) = item.map_err(db_err(path, "read"))?;
            let key = k.value();
            let record = decode_record(key, v.value()).map_err(|reason| BookError::Corrupt {
                path: path.clone(),
                what: "record",
                key: key.to_string(),
                reason,
            })?;
            out.push(record);
        }
        Ok(out)
    }

    fn anchors(&mut self) -> Result<Vec<SocketAddr>, BookError> {
        let Some(value) = self.meta_value("anchors")? else {
            return Ok(Vec::new());
        };
        let corrupt = |reason| self.corrupt_meta("anchors", reason);
        let text = std::str::from_utf8(&value).map_err(|_| corrupt("not UTF-8"))?;
        text.lines()
            .take(super::MAX_ANCHORS)
            .map(|l| l.parse().map_err(|_| corrupt("not a socket address")))
            .collect()
    }

    fn save(&mut self, batch: &Batch<'_>) -> Result<(), BookError> {
        let path = &self.path;
        let txn = self.db.begin_write().map_err(db_err(path, "write"))?;
        {
            let mut table = txn.open_table(RECORDS).map_err(db_err(path, "write"))?;
            let mut buf = Vec::new();
            for r in batch.upserts {
                buf.clear();
                encode_record(r, &mut buf);
                table
                    .insert(r.addr.to_string().as_str(), buf.as_slice())
                    .map_err(db_err(path, "write"))?;
            }
            for a in batch.removals {
                table
                    .remove(a.to_string().as_str())
                    .map_err(db_err(path, "write"))?;
            }
        }
        if let Some(anchors) = batch.anchors {
            let mut table = txn.open_table(META).map_err(db_err(path, "write"))?;
            let text: String = anchors.iter().map(|a| format!("{a}\n")).collect();
            table
                .insert("anchors", text.as_bytes())
                .map_err(db_err(path, "write"))?;
        }
        txn.commit().map_err(db_err(path, "commit"))
    }
}

/// The first byte of a record written before the tables existed.
const LAYOUT_V1: u8 = 1;
/// The first byte of every record written now.
const LAYOUT_V2: u8 = 2;

const HAS_ATTEMPT: u8 = 1;
const HAS_SUCCESS: u8 = 1 << 1;
const HAS_RTT: u8 = 1 << 2;
const HAS_BAN: u8 = 1 << 3;
const HAS_BAN_REASON: u8 = 1 << 4;
const HAS_USER_AGENT: u8 = 1 << 5;
const HAS_DISCONNECT: u8 = 1 << 6;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Longer text is cut at a character boundary to fit the u16 length.
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16_le(end as u16);
    out.put_slice(&s.as_bytes()[..end]);
}

/// Appends the stored form of `r` (its address is the key, not part of it):
///
/// ```text
/// u8 layout (2), u8 source, u64 services, u32 start_height, u32 last_height,
/// u64 first_seen_ms, u64 last_seen_ms, u8 flags,
/// [u64 last_attempt_ms] [u64 last_success_ms] [u32 rtt_ms] [u64 banned_until_ms],
/// u32 failures, [str ban_reason] [str user_agent] [str last_disconnect],
/// u16 count, str capability × count,
/// u8 ip kind (0 none, 4, 6), [4 or 16 bytes learned_from],
/// u8 table (0 none, 1 new, 2 tried), [u16 bucket, u16 position]
/// ```
///
/// Integers are little-endian; `str` is a u16 length and UTF-8; `[..]` is
/// there when its flag bit (or kind byte) says so. Layout 1, written before
/// the tables existed, is the same without the last two fields.
pub(crate) fn encode_record(r: &AddrRecord, out: &mut Vec<u8>) {
    let mut flags = 0;
    for (present, bit) in [
        (r.last_attempt_ms.is_some(), HAS_ATTEMPT),
        (r.last_success_ms.is_some(), HAS_SUCCESS),
        (r.rtt_ms.is_some(), HAS_RTT),
        (r.banned_until_ms.is_some(), HAS_BAN),
        (r.ban_reason.is_some(), HAS_BAN_REASON),
        (r.user_agent.is_some(), HAS_USER_AGENT),
        (r.last_disconnect.is_some(), HAS_DISCONNECT),
    ] {
        if present {
            flags |= bit;
        }
    }
    out.put_u8(LAYOUT_V2);
    out.put_u8(r.source.code());
    out.put_u64_le(r.services);
    out.put_u32_le(r.start_height);
    out.put_u32_le(r.last_height);
    out.put_u64_le(r.first_seen_ms);
    out.put_u64_le(r.last_seen_ms);
    out.put_u8(flags);
    if let Some(v) = r.last_attempt_ms {
        out.put_u64_le(v);
    }
    if let Some(v) = r.last_success_ms {
        out.put_u64_le(v);
    }
    if let Some(v) = r.rtt_ms {
        out.put_u32_le(v);
    }
    if let Some(v) = r.banned_until_ms {
        out.put_u64_le(v);
    }
    out.put_u32_le(r.failures);
    for s in [&r.ban_reason, &r.user_agent, &r.last_disconnect]
        .into_iter()
        .flatten()
    {
        put_str(out, s);
    }
    let count = r.capabilities.len().min(usize::from(u16::MAX));
    out.put_u16_le(count as u16);
    for c in &r.capabilities[..count] {
        put_str(out, c);
    }
    match r.learned_from {
        None => out.put_u8(0),
        Some(IpAddr::V4(v4)) => {
            out.put_u8(4);
            out.put_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.put_u8(6);
            out.put_slice(&v6.octets());
        }
    }
    match r.slot {
        None => out.put_u8(0),
        Some(s) => {
            out.put_u8(match s.table {
                Table::New => 1,
                Table::Tried => 2,
            });
            out.put_u16_le(s.bucket);
            out.put_u16_le(s.position);
        }
    }
}

fn get_str(buf: &mut &[u8], what: &str) -> Result<String, String> {
    let len = buf
        .try_get_u16_le()
        .map_err(|_| format!("truncated in the length of {what}"))?;
    let len = usize::from(len);
    if buf.remaining() < len {
        return Err(format!("truncated in {what}"));
    }
    let s = std::str::from_utf8(&buf[..len])
        .map_err(|_| format!("{what} is not UTF-8"))?
        .to_string();
    buf.advance(len);
    Ok(s)
}

/// Decodes a stored record; the error says what is wrong.
pub(crate) fn decode_record(key: &str, mut buf: &[u8]) -> Result<AddrRecord, String> {
    let addr: SocketAddr = key
        .parse()
        .map_err(|_| "the key is not a socket address".to_string())?;
    let b = &mut buf;
    let short = |field: &str| format!("truncated in {field}");
    let layout = b.try_get_u8().map_err(|_| "empty value".to_string())?;
    if layout != LAYOUT_V1 && layout != LAYOUT_V2 {
        return Err(format!("unknown layout {layout}"));
    }
    let code = b.try_get_u8().map_err(|_| short("source"))?;
    let source = Source::from_code(code).ok_or_else(|| format!("unknown source {code}"))?;
    let services = b.try_get_u64_le().map_err(|_| short("services"))?;
    let start_height = b.try_get_u32_le().map_err(|_| short("start_height"))?;
    let last_height = b.try_get_u32_le().map_err(|_| short("last_height"))?;
    let first_seen_ms = b.try_get_u64_le().map_err(|_| short("first_seen"))?;
    let last_seen_ms = b.try_get_u64_le().map_err(|_| short("last_seen"))?;
    let flags = b.try_get_u8().map_err(|_| short("flags"))?;
    if flags >> 7 != 0 {
        return Err(format!("unknown flags {flags:#04x}"));
    }
    let mut opt_u64 = |bit: u8, field: &str| -> Result<Option<u64>, String> {
        if flags & bit == 0 {
            return Ok(None);
        }
        b.try_get_u64_le().map(Some).map_err(|_| short(field))
    };
    let last_attempt_ms = opt_u64(HAS_ATTEMPT, "last_attempt")?;
    let last_success_ms = opt_u64(HAS_SUCCESS, "last_success")?;
    let rtt_ms = if flags & HAS_RTT != 0 {
        Some(b.try_get_u32_le().map_err(|_| short("rtt"))?)
    } else {
        None
    };
    let banned_until_ms = if flags & HAS_BAN != 0 {
        Some(b.try_get_u64_le().map_err(|_| short("banned_until"))?)
    } else {
        None
    };
    let failures = b.try_get_u32_le().map_err(|_| short("failures"))?;
    let mut opt_str = |bit: u8, field: &str| -> Result<Option<String>, String> {
        if flags & bit == 0 {
            return Ok(None);
        }
        get_str(b, field).map(Some)
    };
    let ban_reason = opt_str(HAS_BAN_REASON, "ban_reason")?;
    let user_agent = opt_str(HAS_USER_AGENT, "user_agent")?;
    let last_disconnect = opt_str(HAS_DISCONNECT, "last_disconnect")?;
    let count = b.try_get_u16_le().map_err(|_| short("capabilities"))?;
    // Each capability takes at least its 2-byte length: a count larger than
    // the rest of the value allows is refused before anything is allocated.
    if b.remaining() < usize::from(count) * 2 {
        return Err(short("capabilities"));
    }
    let mut capabilities = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        capabilities.push(get_str(b, "a capability")?);
    }
    let (learned_from, slot) = if layout == LAYOUT_V2 {
        (get_ip(b)?, get_slot(b)?)
    } else {
        (None, None)
    };
    if b.has_remaining() {
        return Err(format!("{} bytes after the record", b.remaining()));
    }
    Ok(AddrRecord {
        addr,
        source,
        services,
        capabilities,
        user_agent,
        start_height,
        last_height,
        first_seen_ms,
        last_seen_ms,
        last_attempt_ms,
        last_success_ms,
        failures,
        rtt_ms,
        banned_until_ms,
        ban_reason,
        last_disconnect,
        learned_from,
        slot,
    })
}

fn get_ip(b: &mut &[u8]) -> Result<Option<IpAddr>, String> {
    let short = || "truncated in learned_from".to_string();
    match b.try_get_u8().map_err(|_| short())? {
        0 => Ok(None),
        4 => {
            let mut o = [0u8; 4];
            b.try_copy_to_slice(&mut o).map_err(|_| short())?;
            Ok(Some(IpAddr::V4(Ipv4Addr::from(o))))
        }
        6 => {
            let mut o = [0u8; 16];
            b.try_copy_to_slice(&mut o).map_err(|_| short())?;
            Ok(Some(IpAddr::V6(Ipv6Addr::from(o))))
        }
        k => Err(format!("unknown address kind {k}")),
    }
}

fn get_slot(b: &mut &[u8]) -> Result<Option<Slot>, String> {
    let short = || "truncated in slot".to_string();
    let table = match b.try_get_u8().map_err(|_| short())? {
        0 => return Ok(None),
        1 => Table::New,
        2 => Table::Tried,
        t => return Err(format!("unknown table {t}")),
    };
    let bucket = b.try_get_u16_le().map_err(|_| short())?;
    let position = b.try_get_u16_le().map_err(|_| short())?;
    let slot = Slot {
        table,
        bucket,
        position,
    };
    if !slot.in_range() {
        return Err(format!("slot {table} {bucket}/{position} out of range"));
    }
    Ok(Some(slot))
}
