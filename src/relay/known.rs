//! What each peer is known to have.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::wire::UInt256;

/// A peer's number ([`Peer::id`](crate::peer::Peer::id)).
pub type PeerId = u64;

/// A set of item hashes that forgets its oldest entry when full.
///
/// Lookups and inserts take constant time. The set holds at most
/// [`KnownSet::capacity`] hashes; inserting one more forgets the hash
/// inserted longest ago (first in, first out), so the memory it takes is
/// bounded by about 100 bytes per hash of capacity whatever is inserted.
/// Hashes are placed with the standard library's keyed hasher (a random
/// key per process), so a remote cannot choose hashes that collide.
#[derive(Debug, Clone)]
pub struct KnownSet {
    set: HashSet<UInt256>,
    order: VecDeque<UInt256>,
    capacity: usize,
}

impl KnownSet {
    /// An empty set of at most `capacity` hashes (at least one). Nothing is
    /// allocated before hashes are inserted.
    pub fn new(capacity: usize) -> Self {
        KnownSet {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts `hash`; true if it was not in the set. When the set is full,
    /// the oldest hash is forgotten to make room.
    pub fn insert(&mut self, hash: UInt256) -> bool {
        if !self.set.insert(hash) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
        self.order.push_back(hash);
        true
    }

    /// True if `hash` is in the set.
    pub fn contains(&self, hash: &UInt256) -> bool {
        self.set.contains(hash)
    }

    /// Number of hashes held.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when no hash is held.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Most hashes held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// The items each peer is known to have: every item it announced to us, sent
/// us, or that we sent or announced to it. Such an item is never announced
/// or sent to that peer again.
///
/// Bounds: one [`KnownSet`] of `per_peer` hashes per tracked peer (the
/// [`Default`] is [`MAX_KNOWN_HASHES`](crate::wire::n3::MAX_KNOWN_HASHES),
/// 1000, as the C# node keeps), so at most `per_peer` hashes per peer. Past
/// it, the peer's oldest entry is forgotten (first in, first out): at worst
/// an item is announced or sent to that peer again, and never more often
/// than once per `per_peer` newer items marked for that peer in between. A
/// repeated announcement costs one hash in an `inv` (the peer has the item
/// and does not ask for it). Peers are only tracked between
/// [`KnownInventory::add_peer`] and [`KnownInventory::remove_peer`]; marks
/// for other peers are ignored.
///
/// ```
/// use neo_peer::relay::KnownInventory;
/// use neo_peer::wire::UInt256;
///
/// let mut known = KnownInventory::new(1000);
/// known.add_peer(1);
/// known.add_peer(2);
/// let item = UInt256([7; 32]);
/// known.mark(1, item); // peer 1 announced it to us
/// assert_eq!(known.to_announce(item, [1, 2]), vec![2]);
/// assert!(known.to_announce(item, [1, 2]).is_empty()); // never twice
/// ```
#[derive(Debug, Clone)]
pub struct KnownInventory {
    peers: HashMap<PeerId, KnownSet>,
    per_peer: usize,
}

impl Default for KnownInventory {
    /// [`MAX_KNOWN_HASHES`](crate::wire::n3::MAX_KNOWN_HASHES) items per
    /// peer.
    fn default() -> Self {
        KnownInventory::new(crate::wire::n3::MAX_KNOWN_HASHES)
    }
}

impl KnownInventory {
    /// No peers yet; each will remember up to `per_peer` items.
    pub fn new(per_peer: usize) -> Self {
        KnownInventory {
            peers: HashMap::new(),
            per_peer,
        }
    }

    /// Starts tracking `peer` (no effect if it is tracked).
    pub fn add_peer(&mut self, peer: PeerId) {
        let per_peer = self.per_peer;
        self.peers
            .entry(peer)
            .or_insert_with(|| KnownSet::new(per_peer));
    }

    /// Stops tracking `peer` and frees what it held.
    pub fn remove_peer(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
    }

    /// True if `peer` is tracked.
    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    /// Records that `peer` has `hash`; true if that was not known (false too
    /// when the peer is not tracked).
    pub fn mark(&mut self, peer: PeerId, hash: UInt256) -> bool {
        self.peers.get_mut(&peer).is_some_and(|s| s.insert(hash))
    }

    /// True if `peer` is known to have `hash`.
    pub fn knows(&self, peer: PeerId, hash: &UInt256) -> bool {
        self.peers.get(&peer).is_some_and(|s| s.contains(hash))
    }

    /// Of `peers`, those not known to have `hash`, in the order given; each
    /// is marked as having it (the caller is about to announce or send it).
    /// Untracked peers are skipped.
    pub fn to_announce(
        &mut self,
        hash: UInt256,
        peers: impl IntoIterator<Item = PeerId>,
    ) -> Vec<PeerId> {
        peers.into_iter().filter(|&p| self.mark(p, hash)).collect()
    }

    /// Number of tracked peers.
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// Items remembered for `peer` (0 if not tracked).
    pub fn known_by(&self, peer: PeerId) -> usize {
        self.peers.get(&peer).map_or(0, KnownSet::len)
    }

    /// Most items remembered per peer.
    pub fn per_peer(&self) -> usize {
        self.per_peer.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u32) -> UInt256 {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_le_bytes());
        UInt256(b)
    }

    #[test]
    fn a_full_set_forgets_its_oldest_entry() {
        let mut s = KnownSet::new(3);
        assert!(s.insert(h(1)) && s.insert(h(2)) && s.insert(h(3)));
        assert!(!s.insert(h(2)), "a repeat is not new and evicts nothing");
        assert!(s.insert(h(4)));
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&h(1)) && s.contains(&h(2)) && s.contains(&h(4)));
        assert!(s.insert(h(1)), "a forgotten hash is new again");
        assert!(!s.contains(&h(2)));
    }

    #[test]
    fn zero_capacity_holds_one() {
        let mut s = KnownSet::new(0);
        assert_eq!(s.capacity(), 1);
        s.insert(h(1));
        s.insert(h(2));
        assert_eq!(s.len(), 1);
        assert!(s.contains(&h(2)));
    }

    #[test]
    fn inventory_is_per_peer_and_forgets_departed_peers() {
        let mut k = KnownInventory::new(10);
        k.add_peer(1);
        k.add_peer(2);
        assert!(k.mark(1, h(9)));
        assert!(!k.mark(1, h(9)));
        assert!(!k.mark(3, h(9)), "an untracked peer is not recorded");
        assert!(k.knows(1, &h(9)) && !k.knows(2, &h(9)));
        assert_eq!(k.to_announce(h(9), [1, 2, 3]), vec![2]);
        assert!(k.knows(2, &h(9)));
        k.remove_peer(1);
        assert!(!k.has_peer(1) && !k.knows(1, &h(9)));
        assert_eq!(k.peers(), 1);
        assert_eq!(k.known_by(2), 1);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The set behaves as a first-in-first-out window of its last
        /// `capacity` distinct insertions, and never holds more.
        #[test]
        fn a_set_is_a_window_of_its_last_insertions(
            capacity in 1usize..8,
            inserts in proptest::collection::vec(0u32..16, 0..200),
        ) {
            let mut s = KnownSet::new(capacity);
            let mut model: VecDeque<u32> = VecDeque::new();
            for n in inserts {
                let fresh = !model.contains(&n);
                prop_assert_eq!(s.insert(h(n)), fresh);
                if fresh {
                    if model.len() == capacity {
                        model.pop_front();
                    }
                    model.push_back(n);
                }
                prop_assert_eq!(s.len(), model.len());
                prop_assert!(s.len() <= capacity);
                for m in 0u32..16 {
                    prop_assert_eq!(s.contains(&h(m)), model.contains(&m));
                }
            }
        }

        /// An item goes to a peer once; it may go again only after at least
        /// `per_peer` other items were marked for that peer since.
        #[test]
        fn an_item_is_announced_again_only_after_per_peer_newer_items(
            per_peer in 1usize..6,
            events in proptest::collection::vec((0u64..3, 0u32..12, any::<bool>()), 0..300),
        ) {
            let mut k = KnownInventory::new(per_peer);
            for p in 0..3 {
                k.add_peer(p);
            }
            // Per peer: the newly marked items, in order.
            let mut log: HashMap<PeerId, Vec<u32>> = HashMap::new();
            for (peer, n, ours) in events {
                let newly: Vec<PeerId> = if ours {
                    // We relay item n to every peer that lacks it.
                    k.to_announce(h(n), 0..3)
                } else if k.mark(peer, h(n)) {
                    // Peer announces item n to us.
                    vec![peer]
                } else {
                    vec![]
                };
                for p in newly {
                    let marked = log.entry(p).or_default();
                    if let Some(last) = marked.iter().rposition(|&m| m == n) {
                        let newer = marked.len() - last - 1;
                        prop_assert!(newer >= per_peer, "item {} again after {} newer", n, newer);
                    }
                    marked.push(n);
                }
                for p in 0..3 {
                    prop_assert!(k.known_by(p) <= per_peer);
                }
            }
        }
    }
}
