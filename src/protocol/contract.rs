//! The request contract: what a request obliges the remote to send back,
//! which received messages answer it, and when silence is legitimate.
//!
//! It is written once per generation ([`Protocol::obligation`] and
//! [`Protocol::reply`]) and used by everyone who needs to know: the peer
//! machine (which answers complete which request, when a silent remote is
//! stalled and when it merely has nothing), the serving side in
//! [`chain`](crate::chain) (the same counts, the same de-duplicated hashes),
//! and the manager (whether a failed request is worth trying elsewhere).
//!
//! The rules, per generation (they follow what the C# nodes, neo-go and
//! NEO•ONE do; see the request table of each wire reference):
//!
//! | request | N3 | Legacy |
//! |---|---|---|
//! | `getheaders` | one `headers` starting at the index asked; nothing is owed for a start above the remote's height | one `headers` following the start hash; owed only when the start's height is given and below the remote's height (C# nodes stay silent at their tip) |
//! | `getblockbyindex` | one `block` per height from the start, up to the count (500 for `-1`) and the remote's height | — |
//! | `getblocks` | one `inv` of block hashes; may be silent (unknown start, nothing newer) unless the start's height is given | the same |
//! | `getdata` | one object or one `notfound` entry per *distinct* block or transaction hash; extensibles and notary requests may be skipped silently | one object per distinct hash; unknown hashes are skipped silently (no `notfound`), so owed only when the caller says the remote has them |
//! | `getaddr` | an `addr`, or silence (a node that knows no address) | the same |
//! | `ping` | a `pong`, always | nothing (NEO•ONE never answers) |
//!
//! "Owed" means silence past the stall timeout is a stall and the peer is
//! dropped (the seed's rule); where silence is legitimate the request ends
//! unanswered instead and the peer stays. A request the remote cannot
//! answer at all (it told us its height, and the request starts above it) is
//! not sent: it ends at once with "nothing above height N".
//!
//! [`Protocol::obligation`]: super::Protocol::obligation
//! [`Protocol::reply`]: super::Protocol::reply

use std::collections::HashSet;

use super::RequestKind;
use crate::wire::UInt256;

/// What sending a message obliges the remote to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obligation {
    /// Nothing is owed: a notification, an answer of ours, or a request
    /// this generation never answers (Legacy `ping`).
    Nothing,
    /// The remote cannot answer: it told us its height is `height`, and the
    /// request needs more. It is not sent.
    Beyond {
        /// The request.
        kind: RequestKind,
        /// The remote's height.
        height: u32,
    },
    /// The remote answers with the messages described.
    Answers(Expected),
}

/// The answers a request expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The request.
    pub kind: RequestKind,
    /// Which received messages answer it.
    pub matcher: Matcher,
    /// How many answers complete it (at least one).
    pub answers: u32,
    /// What silence means.
    pub silence: Silence,
    /// N3 `getheaders`: how many headers the remote must put in its
    /// `headers`, given the height it claims. Fewer prove its height lower
    /// than it said.
    pub items: Option<u32>,
}

/// What it means when a request's answers stop coming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Silence {
    /// The remote owes the answers: no progress for the stall timeout is a
    /// stall, and the peer is dropped.
    Stall,
    /// A correct remote may send fewer answers or none: no progress for the
    /// stall timeout ends the request unanswered, and the peer stays.
    Allowed,
}

/// Which received messages answer a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Any answer of the request's kind; the oldest such request takes it.
    Any,
    /// Headers or blocks from height `start`: a `headers` whose first header
    /// is at `start`, or a `block` at `start` or any of the heights after it
    /// that the request still expects.
    From(u32),
    /// Legacy headers following the header with this hash.
    After(UInt256),
    /// Objects with these hashes (distinct; each answers once, as an
    /// object or as an entry of a `notfound`).
    Hashes(Vec<UInt256>),
}

/// What a received message can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The requests it can answer, tried in order.
    pub kinds: &'static [RequestKind],
    /// What it carries, for [`Matcher`]s to look at.
    pub key: ReplyKey<'a>,
}

/// What an answer carries, as far as matching it to its request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKey<'a> {
    /// Nothing to look at (`addr`, `pong`, an `inv` of block hashes).
    Plain,
    /// A `headers` message.
    Headers {
        /// Height of its first header (N3; `None` when empty or Legacy).
        first: Option<u32>,
        /// Previous hash of its first header (Legacy; `None` when empty or N3).
        after: Option<UInt256>,
        /// How many headers it holds.
        len: usize,
    },
    /// A block (or `merkleblock`).
    Block {
        /// Its height.
        index: u32,
        /// Its hash.
        hash: UInt256,
    },
    /// A transaction or another object fetched by hash.
    Object(UInt256),
    /// A `notfound` listing these hashes.
    NotFound(&'a [UInt256]),
}

impl Matcher {
    /// How many answers `key` gives to a request with this matcher that has
    /// `answered` of its `expected` answers so far (0: it does not answer
    /// it). Hash matchers forget the hashes they were given.
    pub fn take(&mut self, key: &ReplyKey<'_>, answered: u32, expected: u32) -> u32 {
        match (self, key) {
            (Matcher::Any, _) => 1,
            (Matcher::From(start), ReplyKey::Headers { first, .. }) => {
                u32::from(*first == Some(*start))
            }
            (Matcher::From(start), ReplyKey::Block { index, .. }) => {
                let next = u64::from(*start) + u64::from(answered);
                let end = u64::from(*start) + u64::from(expected);
                u32::from((next..end).contains(&u64::from(*index)))
            }
            (Matcher::After(hash), ReplyKey::Headers { after, len, .. }) => {
                // NEO•ONE answers "nothing after that hash" with an empty `headers`.
                u32::from(*len == 0 || *after == Some(*hash))
            }
            (Matcher::Hashes(left), ReplyKey::Block { hash, .. } | ReplyKey::Object(hash)) => {
                u32::from(forget(left, hash))
            }
            (Matcher::Hashes(left), ReplyKey::NotFound(hashes)) => {
                hashes.iter().map(|h| u32::from(forget(left, h))).sum()
            }
            _ => 0,
        }
    }
}

fn forget(left: &mut Vec<UInt256>, hash: &UInt256) -> bool {
    match left.iter().position(|h| h == hash) {
        Some(i) => {
            left.swap_remove(i);
            true
        }
        None => false,
    }
}

/// The number of items a `count` field asks for: `-1` means `max`, a
/// positive count is capped at `max`, anything else asks for nothing.
pub fn requested(count: i16, max: usize) -> usize {
    match count {
        -1 => max,
        c if c > 0 => (c as usize).min(max),
        _ => 0,
    }
}

/// The distinct hashes of a request, first occurrence first: what a correct
/// server answers, one object (or `notfound` entry) each.
pub fn distinct(hashes: &[UInt256]) -> Vec<UInt256> {
    let mut seen = HashSet::with_capacity(hashes.len());
    hashes.iter().copied().filter(|h| seen.insert(*h)).collect()
}

/// Items of heights `start..` a remote of height `height` can send, at most
/// `asked` of them: `None` when it has none.
pub fn available(start: u32, asked: usize, height: u32) -> Option<u32> {
    let have = u64::from(height).checked_sub(u64::from(start))? + 1;
    let n = have.min(asked as u64);
    u32::try_from(n).ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_counts() {
        assert_eq!(requested(-1, 2000), 2000);
        assert_eq!(requested(1, 2000), 1);
        assert_eq!(requested(2000, 2000), 2000);
        assert_eq!(requested(2001, 500), 500);
        assert_eq!(requested(i16::MAX, 500), 500);
        assert_eq!(requested(0, 500), 0);
        assert_eq!(requested(-2, 500), 0);
        assert_eq!(requested(i16::MIN, 500), 0);
    }

    #[test]
    fn availability_never_overflows() {
        assert_eq!(available(11, 5, 10), None);
        assert_eq!(available(10, 5, 10), Some(1));
        assert_eq!(available(0, 500, 10_000), Some(500));
        assert_eq!(available(0, 7, 10_000), Some(7));
        assert_eq!(available(0, 0, 10_000), None);
        assert_eq!(available(0, 2000, u32::MAX), Some(2000));
        assert_eq!(available(u32::MAX, 2000, u32::MAX), Some(1));
    }

    #[test]
    fn duplicates_are_dropped_in_order() {
        let a = UInt256([1; 32]);
        let b = UInt256([2; 32]);
        assert_eq!(distinct(&[a, b, a, a, b]), [a, b]);
    }

    #[test]
    fn matchers_take_what_is_theirs() {
        let headers = |first| ReplyKey::Headers {
            first: Some(first),
            after: None,
            len: 3,
        };
        assert_eq!(Matcher::From(5).take(&headers(5), 0, 1), 1);
        assert_eq!(Matcher::From(5).take(&headers(6), 0, 1), 0);
        let block = |index| ReplyKey::Block {
            index,
            hash: UInt256::ZERO,
        };
        let mut m = Matcher::From(10);
        assert_eq!(m.take(&block(10), 0, 3), 1);
        assert_eq!(m.take(&block(12), 1, 3), 1);
        assert_eq!(m.take(&block(13), 2, 3), 0, "past the expected range");
        assert_eq!(m.take(&block(9), 2, 3), 0);
        assert_eq!(
            Matcher::From(u32::MAX).take(&block(u32::MAX), 0, 500),
            1,
            "no overflow at the top"
        );

        let (a, b, c) = (UInt256([1; 32]), UInt256([2; 32]), UInt256([3; 32]));
        let mut m = Matcher::Hashes(vec![a, b, c]);
        assert_eq!(m.take(&ReplyKey::Object(b), 0, 3), 1);
        assert_eq!(m.take(&ReplyKey::Object(b), 1, 3), 0, "each hash once");
        assert_eq!(m.take(&ReplyKey::NotFound(&[a, b, c, a]), 1, 3), 2);
        assert_eq!(m, Matcher::Hashes(Vec::new()));

        let after = |after, len| ReplyKey::Headers {
            first: None,
            after,
            len,
        };
        assert_eq!(Matcher::After(a).take(&after(Some(a), 2), 0, 1), 1);
        assert_eq!(Matcher::After(a).take(&after(Some(b), 2), 0, 1), 0);
        assert_eq!(Matcher::After(a).take(&after(None, 0), 0, 1), 1, "empty");
        assert_eq!(Matcher::Any.take(&ReplyKey::Plain, 0, 1), 1);
    }
}
