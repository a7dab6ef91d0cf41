//! A hash index that readers and the one writer of a [`Chain`](super::Chain)
//! share: block hash to height, transaction hash to location.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, RandomState};
use std::sync::{PoisonError, RwLock};

use crate::wire::UInt256;

/// Shards of a [`HashIndex`]. A shard's lock is held for one lookup or one
/// insert, and a shard grows (rehashes) on its own, so the longest a reader
/// can wait is one rehash of 1/256th of the index: for a 10-million-entry
/// index, the last rehash of a shard moves about 29,000 entries, measured at
/// 1 to 4 ms on a loaded two-core machine (`benches/growing_chain.rs`).
/// 256 empty shards take 16 KiB.
const SHARDS: usize = 256;

/// A map from hashes to small values, split into [`SHARDS`] maps behind
/// their own read-write locks. The shard is picked with a keyed hash, so
/// that hashes ground to share a prefix do not all land in one shard.
pub(super) struct HashIndex<V> {
    shards: Box<[RwLock<HashMap<UInt256, V>>]>,
    pick: RandomState,
}

impl<V: Copy> HashIndex<V> {
    pub(super) fn new() -> Self {
        HashIndex {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            pick: RandomState::new(),
        }
    }

    fn shard(&self, key: &UInt256) -> &RwLock<HashMap<UInt256, V>> {
        // The high bits: the shard's own map uses the low ones of its hash.
        let at = (self.pick.hash_one(key) >> 32) as usize % SHARDS;
        &self.shards[at]
    }

    /// The value of `key`.
    pub(super) fn get(&self, key: &UInt256) -> Option<V> {
        // A panic cannot happen while a shard is locked (no user code runs
        // there), so a poisoned lock still guards a sound map.
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(key).copied()
    }

    /// Inserts `key` unless it is there already (the first value stays);
    /// says whether it was inserted.
    pub(super) fn insert_first(&self, key: UInt256, value: V) -> bool {
        let mut shard = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match shard.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(value);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_value_stays() {
        let index = HashIndex::new();
        let (a, b) = (UInt256([1; 32]), UInt256([2; 32]));
        assert_eq!(index.get(&a), None);
        assert!(index.insert_first(a, 1u32));
        assert!(!index.insert_first(a, 2));
        assert!(index.insert_first(b, 3));
        assert_eq!(index.get(&a), Some(1));
        assert_eq!(index.get(&b), Some(3));
    }

    #[test]
    fn keys_spread_over_the_shards() {
        let index = HashIndex::new();
        for i in 0..16384u32 {
            let mut key = [0; 32];
            key[28..].copy_from_slice(&i.to_le_bytes());
            index.insert_first(UInt256(key), i);
        }
        let sizes: Vec<usize> = index
            .shards
            .iter()
            .map(|s| s.read().unwrap().len())
            .collect();
        // 64 expected per shard, even for keys sharing 28 bytes.
        assert!(sizes.iter().all(|&n| (16..=160).contains(&n)), "{sizes:?}");
    }
}
