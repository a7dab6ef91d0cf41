//! The "new" and "tried" tables: where each address sits, chosen by hashes
//! keyed with the book's secret.
//!
//! Both tables are arrays of buckets of [`BUCKET_SIZE`] slots. An address
//! learned from gossip (or from a seeds file, or from an inbound connection)
//! goes to "new", in a bucket chosen by the group of *who told us* and its
//! own group: one source group reaches only [`NEW_BUCKETS_PER_SOURCE_GROUP`]
//! of the [`NEW_BUCKETS`] buckets, however much it sends. An address we
//! dialed and handshook with moves to "tried", in a bucket chosen by its own
//! group: one group reaches only [`TRIED_BUCKETS_PER_GROUP`] of the
//! [`TRIED_BUCKETS`] buckets. Within its bucket an address starts at a
//! hashed position and takes the first free slot from there.
//!
//! The key is 32 random bytes kept in the store: without it nobody can tell
//! which bucket an address lands in, so an attacker cannot aim at the
//! buckets honest addresses use.

use std::net::{IpAddr, SocketAddr};

use sha2::{Digest, Sha256};

use super::{AddrGroup, address_group};

/// Slots per bucket, in both tables.
pub const BUCKET_SIZE: usize = 16;
/// Buckets of the "new" table: [`NEW_BUCKETS`] × [`BUCKET_SIZE`] = 2048
/// addresses heard of.
pub const NEW_BUCKETS: usize = 128;
/// Buckets of the "tried" table: [`TRIED_BUCKETS`] × [`BUCKET_SIZE`] = 1024
/// addresses reached.
pub const TRIED_BUCKETS: usize = 64;
/// The "new" buckets one source group can write to: 8 of 128, so at most
/// 128 addresses (1/16 of the table) come from one /16 of sources.
pub const NEW_BUCKETS_PER_SOURCE_GROUP: usize = 8;
/// The "tried" buckets one address group is spread over: 4 of 64, so at
/// most 64 addresses (1/16 of the table) of one /16 are kept as reached.
pub const TRIED_BUCKETS_PER_GROUP: usize = 4;

const _: () = {
    assert!(NEW_BUCKETS <= u16::MAX as usize);
    assert!(TRIED_BUCKETS <= u16::MAX as usize);
    assert!(BUCKET_SIZE <= u16::MAX as usize);
    assert!(NEW_BUCKETS_PER_SOURCE_GROUP <= NEW_BUCKETS);
    assert!(TRIED_BUCKETS_PER_GROUP <= TRIED_BUCKETS);
};

/// The table an address sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Heard of (gossip, seeds, inbound connections), never reached by a dial.
    New,
    /// Reached: we dialed it and the handshake completed.
    Tried,
}

impl Table {
    /// `"new"` or `"tried"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::New => "new",
            Table::Tried => "tried",
        }
    }

    fn index(self) -> usize {
        match self {
            Table::New => 0,
            Table::Tried => 1,
        }
    }

    fn buckets(self) -> usize {
        match self {
            Table::New => NEW_BUCKETS,
            Table::Tried => TRIED_BUCKETS,
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an address sits: its table, bucket and position in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    /// The table.
    pub table: Table,
    /// The bucket, below [`NEW_BUCKETS`] or [`TRIED_BUCKETS`].
    pub bucket: u16,
    /// The position in the bucket, below [`BUCKET_SIZE`].
    pub position: u16,
}

impl Slot {
    /// Whether the slot exists in its table.
    pub(crate) fn in_range(self) -> bool {
        usize::from(self.bucket) < self.table.buckets() && usize::from(self.position) < BUCKET_SIZE
    }
}

/// The secret that keys bucket placement. Its `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BucketKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for BucketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BucketKey(..)")
    }
}

/// A group as bytes: its kind, then its prefix (`[4, a, b, 0, 0]` for an
/// IPv4 /16).
fn group_bytes(g: AddrGroup) -> [u8; 5] {
    match g {
        AddrGroup::V4([a, b]) => [4, a, b, 0, 0],
        AddrGroup::V6([a, b, c, d]) => [6, a, b, c, d],
    }
}

fn addr_bytes(a: SocketAddr) -> [u8; 18] {
    let v6 = match a.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let mut out = [0u8; 18];
    out[..16].copy_from_slice(&v6.octets());
    out[16..].copy_from_slice(&a.port().to_be_bytes());
    out
}

impl BucketKey {
    /// A fresh key from the operating system's randomness (through `rand`'s
    /// thread generator, a ChaCha stream seeded by the OS).
    pub(crate) fn random() -> Self {
        BucketKey(rand::random())
    }

    /// SHA-256 of the key, a domain tag and length-prefixed parts; the first
    /// eight bytes.
    fn hash(&self, tag: u8, parts: &[&[u8]]) -> u64 {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update([tag]);
        for p in parts {
            h.update([p.len() as u8]);
            h.update(p);
        }
        let d = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        u64::from_le_bytes(first)
    }

    /// The "new" bucket of an address of group `group` told by a source of
    /// group `source`: one of [`NEW_BUCKETS_PER_SOURCE_GROUP`] buckets of
    /// that source group, which of them by the address's group.
    pub(crate) fn new_bucket(&self, group: AddrGroup, source: AddrGroup) -> u16 {
        let (g, s) = (group_bytes(group), group_bytes(source));
        let lane = self.hash(b'n', &[&g, &s]) % NEW_BUCKETS_PER_SOURCE_GROUP as u64;
        (self.hash(b'N', &[&s, &lane.to_le_bytes()]) % NEW_BUCKETS as u64) as u16
    }

    /// The "tried" bucket of `addr`: one of [`TRIED_BUCKETS_PER_GROUP`]
    /// buckets of its group, which of them by the whole address.
    pub(crate) fn tried_bucket(&self, addr: SocketAddr) -> u16 {
        let g = group_bytes(address_group(addr.ip()));
        let lane = self.hash(b't', &[&addr_bytes(addr)]) % TRIED_BUCKETS_PER_GROUP as u64;
        (self.hash(b'T', &[&g, &lane.to_le_bytes()]) % TRIED_BUCKETS as u64) as u16
    }

    /// Where `addr` starts looking for a free slot in `bucket` of `table`.
    pub(crate) fn start(&self, table: Table, bucket: u16, addr: SocketAddr) -> u16 {
        let t = [table.index() as u8];
        (self.hash(b'p', &[&t, &bucket.to_le_bytes(), &addr_bytes(addr)]) % BUCKET_SIZE as u64)
            as u16
    }
}

type Bucket = [Option<SocketAddr>; BUCKET_SIZE];

/// The two tables: which address holds each slot. A bucket is allocated
/// when its first address arrives (an empty book takes a few kilobytes).
#[derive(Debug)]
pub(crate) struct Tables {
    buckets: [Vec<Option<Box<Bucket>>>; 2],
    len: [usize; 2],
}

impl Tables {
    pub(crate) fn new() -> Self {
        Tables {
            buckets: [vec![None; NEW_BUCKETS], vec![None; TRIED_BUCKETS]],
            len: [0, 0],
        }
    }

    /// Addresses in `table`.
    pub(crate) fn len(&self, table: Table) -> usize {
        self.len[table.index()]
    }

    /// Who holds `slot`.
    pub(crate) fn get(&self, slot: Slot) -> Option<SocketAddr> {
        if !slot.in_range() {
            return None;
        }
        self.buckets[slot.table.index()][usize::from(slot.bucket)]
            .as_ref()
            .and_then(|b| b[usize::from(slot.position)])
    }

    /// The first free slot of `bucket` from position `start` on (wrapping).
    pub(crate) fn free(&self, table: Table, bucket: u16, start: u16) -> Option<Slot> {
        let slot = |position| Slot {
            table,
            bucket,
            position,
        };
        (0..BUCKET_SIZE)
            .map(|i| ((usize::from(start) + i) % BUCKET_SIZE) as u16)
            .map(slot)
            .find(|&s| s.in_range() && self.get(s).is_none())
    }

    /// The addresses of `bucket`, from position `start` on (wrapping).
    pub(crate) fn occupants(
        &self,
        table: Table,
        bucket: u16,
        start: u16,
    ) -> Vec<(Slot, SocketAddr)> {
        (0..BUCKET_SIZE)
            .map(|i| Slot {
                table,
                bucket,
                position: ((usize::from(start) + i) % BUCKET_SIZE) as u16,
            })
            .filter_map(|s| self.get(s).map(|a| (s, a)))
            .collect()
    }

    /// Puts `addr` in `slot`, which must be free and in range; false if not.
    pub(crate) fn put(&mut self, slot: Slot, addr: SocketAddr) -> bool {
        if !slot.in_range() || self.get(slot).is_some() {
            return false;
        }
        let bucket = self.buckets[slot.table.index()][usize::from(slot.bucket)]
            .get_or_insert_with(|| Box::new([None; BUCKET_SIZE]));
        bucket[usize::from(slot.position)] = Some(addr);
        self.len[slot.table.index()] += 1;
        true
    }

    /// Empties `slot`.
    pub(crate) fn clear(&mut self, slot: Slot) {
        if !slot.in_range() {
            return;
        }
        let t = slot.table.index();
        if let Some(bucket) = self.buckets[t][usize::from(slot.bucket)].as_mut() {
            if bucket[usize::from(slot.position)].take().is_some() {
                self.len[t] -= 1;
            }
            if bucket.iter().all(Option::is_none) {
                self.buckets[t][usize::from(slot.bucket)] = None;
            }
        }
    }
}
