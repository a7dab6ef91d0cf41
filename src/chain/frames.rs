//! Answers many peers ask for, encoded once: the [`FrameCache`] of a
//! [`ChainServer`](super::ChainServer).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::peer::Frame;

/// Default byte bound of a [`FrameCache`]: 32 MiB of encoded answers.
///
/// About 22 full `headers` answers (2000 headers, some 1.4 MB each): the
/// first 44,000 heights, which every node syncing from genesis asks for,
/// or 16 N3 blocks of 2 MiB. It is the whole cost of the cache, whatever
/// the number of peers.
pub const FRAME_CACHE_BYTES: usize = 32 << 20;

/// Default entry bound of a [`FrameCache`]: 1024 answers (so that small
/// answers, single blocks, do not fill it with bookkeeping).
pub const FRAME_CACHE_ENTRIES: usize = 1024;

/// Part of a chain's answer that many peers may ask for, named so that it
/// is built and encoded once ([`Serve::plan`](super::Serve::plan)). A
/// chain only grows, so what a name stands for never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SharedAnswer {
    /// One `headers` message with the headers of heights `first..=last`
    /// (fewer if they do not fit one payload).
    Headers {
        /// The first height.
        first: u32,
        /// The last height.
        last: u32,
    },
    /// The `block` message of the full block at this height.
    Block(u32),
}

/// Which frames: the encoding (network magic, compression: see
/// [`Encoder::key`](crate::peer::Encoder::key)) and the answer.
type Key = ((u32, bool), SharedAnswer);

/// A bounded cache of encoded answers shared by the peers of a
/// [`ChainServer`](super::ChainServer) (and every clone of it): an answer
/// many peers ask for (the same header range, the same block) is read from
/// the store, encoded and (N3) compressed once, and the same bytes are
/// queued on every peer that asks ([`Peer::send_frame`](crate::peer::Peer::send_frame)),
/// so 200 peers syncing from genesis cost one copy of each answer.
///
/// Bounds: at most `max_bytes` of frames and `max_entries` answers
/// ([`FRAME_CACHE_BYTES`], [`FRAME_CACHE_ENTRIES`] by default), the oldest
/// entries leaving first; a frame larger than a quarter of `max_bytes` is
/// not kept (it is still built once for the peers asking for it at the
/// same moment). Frames still queued on peers outlive their entry (they
/// are counted by the [`SendBudget`](crate::peer::SendBudget)). Peers
/// asking for an answer being built wait for it (the thread blocks for
/// the time of one encoding) rather than build it again.
///
/// ```
/// use neo_peer::chain::FrameCache;
///
/// let cache = FrameCache::new(8 << 20, 64);
/// assert_eq!((cache.len(), cache.bytes(), cache.encoded()), (0, 0, 0));
/// ```
pub struct FrameCache {
    max_bytes: usize,
    max_entries: usize,
    inner: Mutex<Inner>,
    encoded: AtomicU64,
    hits: AtomicU64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    /// Keys in the order they came in (possibly stale: bounded below).
    order: VecDeque<Key>,
    bytes: usize,
}

struct Entry {
    cell: Arc<OnceLock<Option<Frame>>>,
    /// Bytes counted for it (0 until built).
    size: usize,
}

impl Default for FrameCache {
    fn default() -> Self {
        FrameCache::new(FRAME_CACHE_BYTES, FRAME_CACHE_ENTRIES)
    }
}

impl std::fmt::Debug for FrameCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCache")
            .field("max_bytes", &self.max_bytes)
            .field("max_entries", &self.max_entries)
            .field("len", &self.len())
            .field("bytes", &self.bytes())
            .field("encoded", &self.encoded())
            .field("hits", &self.hits())
            .finish()
    }
}

impl FrameCache {
    /// A cache of at most `max_bytes` of frames and `max_entries` answers
    /// (0 for either: nothing is kept, answers are still built once for
    /// the peers asking at the same moment).
    pub fn new(max_bytes: usize, max_entries: usize) -> Self {
        FrameCache {
            max_bytes,
            max_entries,
            inner: Mutex::new(Inner::default()),
            encoded: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// Answers held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether it holds no answer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the frames held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Answers built and encoded so far.
    pub fn encoded(&self) -> u64 {
        self.encoded.load(Ordering::Relaxed)
    }

    /// Answers served from the cache so far (found built, or being built).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Never left half-updated: a poisoned lock is taken over.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The frame of `answer` for the encoding `encoding`, built by `build`
    /// (`None`: nothing to send) unless it is held or being built.
    pub(crate) fn get_or_build(
        &self,
        encoding: (u32, bool),
        answer: SharedAnswer,
        build: impl FnOnce() -> Option<Frame>,
    ) -> Option<Frame> {
        let key = (encoding, answer);
        let cell = {
            let mut inner = self.lock();
            match inner.map.get(&key) {
                Some(entry) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    entry.cell.clone()
                }
                None => {
                    let cell = Arc::new(OnceLock::new());
                    inner.map.insert(
                        key,
                        Entry {
                            cell: cell.clone(),
                            size: 0,
                        },
                    );
                    inner.order.push_back(key);
                    cell
                }
            }
        };
        let mut built = false;
        let frame = cell
            .get_or_init(|| {
                built = true;
                self.encoded.fetch_add(1, Ordering::Relaxed);
                build()
            })
            .clone();
        if built {
            self.settle(key, &cell, frame.as_ref().map_or(0, Frame::len));
        }
        frame
    }

    /// Counts a frame just built (or drops its entry if it is not to be
    /// kept), then evicts the oldest entries beyond the bounds.
    fn settle(&self, key: Key, cell: &Arc<OnceLock<Option<Frame>>>, size: usize) {
        let mut inner = self.lock();
        let keep = size > 0 && size <= self.max_bytes / 4;
        if let Some(entry) = inner
            .map
            .get_mut(&key)
            .filter(|e| Arc::ptr_eq(&e.cell, cell))
        {
            if keep {
                entry.size = size;
                inner.bytes += size;
            } else {
                inner.map.remove(&key);
            }
        }
        while inner.bytes > self.max_bytes
            || inner.map.len() > self.max_entries
            || inner.order.len() > 2 * self.max_entries.max(1)
        {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(entry) = inner.map.remove(&old) {
                inner.bytes -= entry.size;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{Encoder, LocalConfig};
    use crate::protocol::N3;
    use crate::wire::n3;

    fn frame(hashes: usize) -> Frame {
        let config = LocalConfig::<N3>::new(n3::PRIVNET_MAGIC);
        let msg = n3::Message::Inv(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes: vec![Default::default(); hashes],
        });
        Encoder::new(&config, false).encode(&msg).unwrap()
    }

    #[test]
    fn builds_once_and_keeps_its_bounds() {
        let cache = FrameCache::new(3000, 4);
        let enc = (1, false);
        let a = cache.get_or_build(enc, SharedAnswer::Block(1), || Some(frame(20)));
        let b = cache.get_or_build(enc, SharedAnswer::Block(1), || panic!("built twice"));
        assert_eq!(a, b);
        assert_eq!(a.unwrap().bytes().as_ptr(), b.unwrap().bytes().as_ptr());
        assert_eq!((cache.encoded(), cache.hits(), cache.len()), (1, 1, 1));
        // Another encoding is another frame.
        cache.get_or_build((1, true), SharedAnswer::Block(1), || Some(frame(20)));
        assert_eq!(cache.encoded(), 2);
        // Too large to keep (over a quarter of the bytes): built, not kept.
        assert!(
            cache
                .get_or_build(enc, SharedAnswer::Block(2), || Some(frame(30)))
                .is_some()
        );
        assert_eq!(cache.len(), 2);
        // Nothing to send: not kept either.
        assert!(
            cache
                .get_or_build(enc, SharedAnswer::Block(3), || None)
                .is_none()
        );
        assert_eq!(cache.len(), 2);
        for h in 10..30 {
            cache.get_or_build(enc, SharedAnswer::Block(h), || Some(frame(20)));
            assert!(cache.len() <= 4 && cache.bytes() <= 3000, "{cache:?}");
        }
        // The oldest left first.
        cache.get_or_build(enc, SharedAnswer::Block(29), || panic!("kept"));
        let before = cache.encoded();
        cache.get_or_build(enc, SharedAnswer::Block(1), || Some(frame(20)));
        assert_eq!(cache.encoded(), before + 1);
    }

    #[test]
    fn a_cache_of_nothing_keeps_nothing() {
        let cache = FrameCache::new(0, 0);
        for _ in 0..3 {
            assert!(
                cache
                    .get_or_build((1, false), SharedAnswer::Block(1), || Some(frame(1)))
                    .is_some()
            );
        }
        assert_eq!((cache.len(), cache.bytes(), cache.encoded()), (0, 0, 3));
    }
}
