//! Announcements gathered per peer into fewer `inv` messages.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::known::PeerId;
use crate::wire::UInt256;

/// One peer's gathered announcements of one kind.
#[derive(Debug)]
struct Batch {
    hashes: Vec<UInt256>,
    /// When it is sent, full or not.
    due: Instant,
}

/// A batch to send now: one `inv` of `hashes` of kind `kind` to `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flush<K> {
    /// Whom to send it to.
    pub peer: PeerId,
    /// The kind of every hash in it.
    pub kind: K,
    /// The hashes, in the order they were pushed (at most the batcher's
    /// `max`).
    pub hashes: Vec<UInt256>,
}

/// Gathers the announcements to each peer, one batch per peer and kind,
/// and gives each batch back to send as one `inv` when it is full or when
/// its first hash has waited `delay`, whichever comes first.
///
/// A sans-I/O state machine like [`RequestTracker`](super::RequestTracker):
/// time comes in as an argument. Bounds: a batch holds at most `max` hashes
/// (it is given back the moment it is full), so at most `max` hashes per
/// peer and kind are held, and no hash waits more than `delay`.
///
/// ```
/// use std::time::{Duration, Instant};
/// use neo_peer::relay::InvBatcher;
/// use neo_peer::wire::UInt256;
///
/// let t0 = Instant::now();
/// let mut b = InvBatcher::new(Duration::from_millis(50), 2);
/// assert!(b.push(t0, 7, "tx", UInt256([1; 32])).is_none());
/// assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_millis(50)));
/// // The second hash fills the batch: it is sent at once.
/// let full = b.push(t0, 7, "tx", UInt256([2; 32])).unwrap();
/// assert_eq!(full.hashes.len(), 2);
/// assert!(b.push(t0, 7, "tx", UInt256([3; 32])).is_none());
/// // The third goes when it has waited 50 ms.
/// let due = b.poll(t0 + Duration::from_millis(50));
/// assert_eq!(due[0].hashes, vec![UInt256([3; 32])]);
/// ```
#[derive(Debug)]
pub struct InvBatcher<K> {
    delay: Duration,
    max: usize,
    batches: HashMap<(PeerId, K), Batch>,
    /// When each batch is due: one entry per batch.
    due: BTreeSet<(Instant, PeerId, K)>,
    held: usize,
}

impl<K: Copy + Ord + std::hash::Hash> InvBatcher<K> {
    /// A batcher that holds a hash at most `delay`, and at most `max`
    /// hashes (at least 1) per peer and kind.
    pub fn new(delay: Duration, max: usize) -> Self {
        InvBatcher {
            delay,
            max: max.max(1),
            batches: HashMap::new(),
            due: BTreeSet::new(),
            held: 0,
        }
    }

    /// The longest a hash waits.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Hashes held now, over all peers.
    pub fn len(&self) -> usize {
        self.held
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Adds `hash` to the batch of `kind` for `peer`; returns the batch
    /// when this fills it (to send now). A zero delay sends every hash at
    /// once.
    pub fn push(&mut self, now: Instant, peer: PeerId, kind: K, hash: UInt256) -> Option<Flush<K>> {
        let batch = self.batches.entry((peer, kind)).or_insert_with(|| {
            let due = now + self.delay;
            self.due.insert((due, peer, kind));
            Batch {
                hashes: Vec::new(),
                due,
            }
        });
        batch.hashes.push(hash);
        self.held += 1;
        if batch.hashes.len() >= self.max || self.delay.is_zero() {
            return self.take(peer, kind);
        }
        None
    }

    /// When the next batch is due, if one is held.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due.first().map(|(at, _, _)| *at)
    }

    /// The batches due at `now` (their first hash has waited the delay),
    /// ordered by when they were due.
    pub fn poll(&mut self, now: Instant) -> Vec<Flush<K>> {
        let mut out = Vec::new();
        while let Some(&(at, peer, kind)) = self.due.first() {
            if at > now {
                break;
            }
            out.extend(self.take(peer, kind));
        }
        out
    }

    /// Drops what is held for `peer` (it left).
    pub fn remove_peer(&mut self, peer: PeerId) {
        let kinds: Vec<K> = self
            .batches
            .keys()
            .filter(|(p, _)| *p == peer)
            .map(|(_, k)| *k)
            .collect();
        for kind in kinds {
            self.take(peer, kind);
        }
    }

    fn take(&mut self, peer: PeerId, kind: K) -> Option<Flush<K>> {
        let batch = self.batches.remove(&(peer, kind))?;
        self.due.remove(&(batch.due, peer, kind));
        self.held -= batch.hashes.len();
        Some(Flush {
            peer,
            kind,
            hashes: batch.hashes,
        })
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
    fn a_batch_goes_when_its_first_hash_has_waited_the_delay() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = InvBatcher::new(ms(100), 500);
        assert_eq!(b.poll_timeout(), None);
        assert!(b.push(t0, 1, 't', h(1)).is_none());
        assert!(b.push(t0 + ms(60), 1, 't', h(2)).is_none());
        assert!(b.push(t0 + ms(60), 1, 'b', h(3)).is_none());
        assert!(b.push(t0 + ms(70), 2, 't', h(4)).is_none());
        assert_eq!(b.len(), 4);
        // Due at 100 ms for the first, whatever came after it.
        assert_eq!(b.poll_timeout(), Some(t0 + ms(100)));
        assert!(b.poll(t0 + ms(99)).is_empty());
        let due = b.poll(t0 + ms(100));
        assert_eq!(
            due,
            vec![Flush {
                peer: 1,
                kind: 't',
                hashes: vec![h(1), h(2)]
            }]
        );
        assert_eq!(b.poll_timeout(), Some(t0 + ms(160)));
        let due = b.poll(t0 + ms(500));
        let got: Vec<(PeerId, char, usize)> = due
            .iter()
            .map(|f| (f.peer, f.kind, f.hashes.len()))
            .collect();
        assert_eq!(got, vec![(1, 'b', 1), (2, 't', 1)], "in order of due time");
        assert!(b.is_empty());
        assert_eq!(b.poll_timeout(), None);
        // A new hash starts a new batch, with a new delay.
        assert!(b.push(t0 + ms(600), 1, 't', h(5)).is_none());
        assert_eq!(b.poll_timeout(), Some(t0 + ms(700)));
    }

    #[test]
    fn a_full_batch_goes_at_once_and_nothing_is_held_past_the_bound() {
        let t0 = Instant::now();
        let mut b = InvBatcher::new(Duration::from_secs(3600), 500);
        for n in 0..1234 {
            let full = b.push(t0, 9, 0u8, h(n));
            assert!(b.len() < 500, "at most a batch less one is held");
            if let Some(f) = full {
                assert_eq!(f.hashes.len(), 500);
                assert_eq!(f.hashes[0], h(n - 499), "in order");
            }
        }
        assert_eq!(b.len(), 234);
        b.remove_peer(9);
        assert!(b.is_empty());
        assert_eq!(b.poll_timeout(), None);
    }

    #[test]
    fn a_zero_delay_or_a_batch_of_one_sends_each_hash_at_once() {
        let t0 = Instant::now();
        for mut b in [
            InvBatcher::new(Duration::ZERO, 500),
            InvBatcher::new(Duration::from_secs(1), 0),
        ] {
            let f = b.push(t0, 1, 0u8, h(1)).unwrap();
            assert_eq!(f.hashes, vec![h(1)]);
            assert!(b.is_empty());
            assert_eq!(b.poll_timeout(), None);
        }
    }
}
