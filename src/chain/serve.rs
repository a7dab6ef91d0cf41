//! The server side of the synchronisation requests: which messages a node
//! holding a chain sends back for `getheaders`, `getblocks`,
//! `getblockbyindex` and `getdata`, read from any [`ChainStore`]. Counts and
//! de-duplicated hashes come from the [request contract](crate::protocol::contract),
//! the same the asking side expects.
//!
//! The answers follow the C# reference node of each generation. They are
//! pure: no per-peer state is kept, so the C# habit of serving each hash
//! at most once per peer, and `merkleblock` answers to peers with a bloom
//! filter, are left to the caller. Requests come from strangers: every
//! count, index and hash is taken as it comes (including values the decoder
//! would refuse), and every answer respects the send-side limits of the codec
//! (at most 2000 headers and 500 hashes per message, never an empty list,
//! never a payload over [`MAX_PAYLOAD`]).

use super::frames::SharedAnswer;
use super::{Chain, ChainStore, Generation, Legacy, N3};
use crate::protocol::Protocol;
use crate::protocol::contract::{distinct, requested};
use crate::wire::{Encode, MAX_PAYLOAD, UInt256, legacy, n3};

/// The heights `first..=last`, at most `count` of them (empty if
/// `first > last`); no overflow at `u32::MAX`.
fn heights(first: u64, count: usize, last: Option<u32>) -> impl Iterator<Item = u32> {
    let end = match last {
        Some(last) => (first + count as u64).min(u64::from(last) + 1),
        None => first,
    };
    (first..end.max(first)).map(|h| h as u32)
}

/// The leading items whose encodings, after a 3-byte count, fit one payload.
fn within_payload<T: Encode>(items: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
    let mut size = 3;
    items.take_while(move |item| {
        size += item.size();
        size <= MAX_PAYLOAD
    })
}

/// A generation whose chains can answer requests (both generations can).
pub trait Serve: Protocol + Generation {
    /// The messages answering `msg` from `store`, in the order to send them;
    /// an empty vector means silence. Only the requests below are
    /// answered; anything else (`ping`, `getaddr`, `mempool`, …) gives an
    /// empty vector and is the caller's. Counts the decoder refuses (0,
    /// below -1, above 2000) ask for nothing.
    ///
    /// N3:
    ///
    /// - `getheaders(index_start, count)`: one `headers` with the headers of
    ///   heights `index_start…` (inclusive), `count` of them (2000 for `-1`,
    ///   at most 2000), stopping at the tip; silence if `index_start` is above
    ///   the tip.
    /// - `getblockbyindex(index_start, count)`: one `block` per full block of
    ///   heights `index_start…`, `count` of them (500 for `-1`, at most 500),
    ///   stopping at the first height without a body; silence if there is
    ///   none (always, for a chain of headers only).
    /// - `getblocks(hash_start, count)`: one `inv(Block)` with the hashes of
    ///   the full blocks after `hash_start` (500 for `-1`, at most 500);
    ///   silence if `hash_start` is unknown or no newer block is held. Like
    ///   C#, only blocks whose body is held are announced.
    /// - `getdata(type, hashes)`: a `block` or `transaction` per distinct
    ///   known hash (transactions are looked up in the blocks held; there is
    ///   no memory pool here), then `notfound` messages of the same type,
    ///   500 hashes at most each, listing the missing ones. Extensible and
    ///   notary-request hashes are skipped silently (none is held).
    ///
    /// Legacy: only `hash_start[0]` of `getheaders` and `getblocks` is used,
    /// as the C# node does (NEO•ONE picks the lowest known entry instead); an
    /// all-zero `hash_stop` never matches a block, so it means "no stop".
    ///
    /// - `getheaders`: one `headers` with the headers of the heights after
    ///   `hash_start[0]`, up to 2000, stopping at the tip or before the
    ///   header whose hash is `hash_stop`; silence if `hash_start[0]` is
    ///   unknown or equal to `hash_stop`, or if there is no newer header.
    /// - `getblocks`: one `inv(Block)` with the hashes of the full blocks
    ///   after `hash_start[0]`, up to 500, stopping before `hash_stop`;
    ///   silence in the same cases as `getheaders`. Only blocks whose body is
    ///   held are announced.
    /// - `getdata`: a `block` or `tx` per distinct known hash (transactions
    ///   are looked up in the blocks held); unknown hashes, and state-root and
    ///   consensus hashes, are skipped silently (NEO 2 has no `notfound`).
    fn answer<S: ChainStore<Self> + ?Sized>(store: &S, msg: &Self::Message) -> Vec<Self::Message> {
        Self::plan(store, msg)
            .into_iter()
            .filter_map(|part| match part {
                Part::Message(m) => Some(m),
                Part::Shared(shared) => Self::build(store, &shared),
            })
            .collect()
    }

    /// The answer to `msg` as [`answer`](Serve::answer) gives it, with the
    /// parts many peers may ask for named rather than built: a `headers`
    /// answer by its heights, a `block` by its height. Build them with
    /// [`build`](Serve::build) (a name may stand for nothing, if the store
    /// lacks it: then it is left out).
    fn plan<S: ChainStore<Self> + ?Sized>(store: &S, msg: &Self::Message) -> Vec<Part<Self>>;

    /// The message `shared` names, read from `store` (`None` if the store
    /// does not hold it).
    fn build<S: ChainStore<Self> + ?Sized>(
        store: &S,
        shared: &SharedAnswer,
    ) -> Option<Self::Message>;
}

/// One message of an answer ([`Serve::plan`]).
#[derive(Debug, Clone)]
pub enum Part<P: Protocol> {
    /// Built already (an answer only this request gets: `inv`, `notfound`,
    /// a transaction).
    Message(P::Message),
    /// Named, to be built once for every peer that asks ([`Serve::build`]).
    Shared(SharedAnswer),
}

impl Serve for N3 {
    fn plan<S: ChainStore<N3> + ?Sized>(store: &S, msg: &n3::Message) -> Vec<Part<N3>> {
        let messages = |v: Vec<n3::Message>| v.into_iter().map(Part::Message).collect();
        match msg {
            n3::Message::GetHeaders(p) => n3_headers(store, p),
            n3::Message::GetBlockByIndex(p) => n3_blocks_by_index(store, p),
            n3::Message::GetBlocks(p) => messages(n3_block_hashes(store, p)),
            n3::Message::GetData(p) => n3_objects(store, p),
            _ => Vec::new(),
        }
    }

    fn build<S: ChainStore<N3> + ?Sized>(store: &S, shared: &SharedAnswer) -> Option<n3::Message> {
        match *shared {
            SharedAnswer::Headers { first, last } => {
                let headers = headers_in::<N3, S>(store, first..=last);
                (!headers.is_empty())
                    .then(|| n3::Message::Headers(n3::HeadersPayload::new(&headers)))
            }
            SharedAnswer::Block(h) => store.block(h).map(n3::Message::Block),
        }
    }
}

impl Serve for Legacy {
    fn plan<S: ChainStore<Legacy> + ?Sized>(store: &S, msg: &legacy::Message) -> Vec<Part<Legacy>> {
        match msg {
            legacy::Message::GetHeaders(p) => legacy_headers(store, p),
            legacy::Message::GetBlocks(p) => legacy_block_hashes(store, p)
                .into_iter()
                .map(Part::Message)
                .collect(),
            legacy::Message::GetData(p) => legacy_objects(store, p),
            _ => Vec::new(),
        }
    }

    fn build<S: ChainStore<Legacy> + ?Sized>(
        store: &S,
        shared: &SharedAnswer,
    ) -> Option<legacy::Message> {
        match *shared {
            SharedAnswer::Headers { first, last } => {
                let headers = headers_in::<Legacy, S>(store, first..=last);
                (!headers.is_empty())
                    .then(|| legacy::Message::Headers(legacy::HeadersPayload { headers }))
            }
            SharedAnswer::Block(h) => store.block(h).map(|b| legacy::Message::Block(Box::new(b))),
        }
    }
}

/// The height a block hash names, if the store holds that block in full.
fn full_block_at<G: Generation, S: ChainStore<G> + ?Sized>(
    store: &S,
    hash: &UInt256,
) -> Option<u32> {
    let h = store.index_of(hash)?;
    store.block_height().filter(|&b| h <= b).map(|_| h)
}

/// The headers of heights `first..`, at most `count`, up to `last`, named.
fn headers_part<P: Protocol>(first: u64, count: usize, last: u32) -> Vec<Part<P>> {
    let end = (first + count as u64).min(u64::from(last) + 1);
    if count == 0 || first >= end {
        return Vec::new();
    }
    // Both fit u32: `first < end <= last + 1`.
    vec![Part::Shared(SharedAnswer::Headers {
        first: first as u32,
        last: (end - 1) as u32,
    })]
}

impl<P: Serve> Chain<P> {
    /// The messages answering `msg`, in the order to send them; an empty
    /// vector means silence (see [`Serve::answer`] for what is answered and
    /// how).
    pub fn answer(&self, msg: &P::Message) -> Vec<P::Message> {
        P::answer(self, msg)
    }
}

/// The headers of heights `range`, stopping at the first height the store
/// does not hold and before the payload is full.
fn headers_in<G: Generation, S: ChainStore<G> + ?Sized>(
    store: &S,
    range: impl Iterator<Item = u32>,
) -> Vec<G::Header>
where
    G::Header: Encode,
{
    within_payload(range.map_while(|h| store.header(h))).collect()
}

fn n3_headers<S: ChainStore<N3> + ?Sized>(
    store: &S,
    p: &n3::GetBlockByIndexPayload,
) -> Vec<Part<N3>> {
    let count = requested(p.count, n3::MAX_HEADERS);
    headers_part(p.index_start.into(), count, store.height())
}

fn n3_blocks_by_index<S: ChainStore<N3> + ?Sized>(
    store: &S,
    p: &n3::GetBlockByIndexPayload,
) -> Vec<Part<N3>> {
    let count = requested(p.count, n3::MAX_BLOCKS_PER_REQUEST);
    heights(p.index_start.into(), count, store.block_height())
        .map(|h| Part::Shared(SharedAnswer::Block(h)))
        .collect()
}

fn n3_block_hashes<S: ChainStore<N3> + ?Sized>(
    store: &S,
    p: &n3::GetBlocksPayload,
) -> Vec<n3::Message> {
    let Some(start) = store.index_of(&p.hash_start) else {
        return Vec::new();
    };
    let count = requested(p.count, n3::MAX_GETBLOCKS_HASHES);
    let hashes: Vec<UInt256> = heights(u64::from(start) + 1, count, store.block_height())
        .map_while(|h| store.hash(h))
        .collect();
    if hashes.is_empty() {
        return Vec::new();
    }
    vec![n3::Message::Inv(n3::InvPayload {
        kind: n3::InventoryType::Block,
        hashes,
    })]
}

fn n3_objects<S: ChainStore<N3> + ?Sized>(store: &S, p: &n3::InvPayload) -> Vec<Part<N3>> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for hash in distinct(&p.hashes) {
        let found = match p.kind {
            n3::InventoryType::Block => {
                full_block_at::<N3, S>(store, &hash).map(|h| Part::Shared(SharedAnswer::Block(h)))
            }
            n3::InventoryType::Transaction => store
                .transaction(&hash)
                .map(|tx| Part::Message(n3::Message::Transaction(tx))),
            n3::InventoryType::Extensible | n3::InventoryType::P2PNotaryRequest => continue,
        };
        match found {
            Some(m) => out.push(m),
            None => missing.push(hash),
        }
    }
    out.extend(missing.chunks(n3::MAX_INV_HASHES).map(|chunk| {
        Part::Message(n3::Message::NotFound(n3::InvPayload {
            kind: p.kind,
            hashes: chunk.to_vec(),
        }))
    }));
    out
}

/// The heights after `hash_start[0]`, at most `count`, up to `last`,
/// stopping before `hash_stop`.
fn after_start<S: ChainStore<Legacy> + ?Sized>(
    store: &S,
    p: &legacy::GetBlocksPayload,
    count: usize,
    last: Option<u32>,
) -> impl Iterator<Item = u32> {
    let start = p
        .hash_start
        .first()
        .filter(|&&h| h != p.hash_stop)
        .and_then(|h| store.index_of(h));
    let range = match start {
        Some(start) => heights(u64::from(start) + 1, count, last),
        None => heights(0, 0, None),
    };
    let stop = p.hash_stop;
    range.take_while(move |&h| store.hash(h).is_some_and(|hash| hash != stop))
}

fn legacy_headers<S: ChainStore<Legacy> + ?Sized>(
    store: &S,
    p: &legacy::GetBlocksPayload,
) -> Vec<Part<Legacy>> {
    let Some(start) = p
        .hash_start
        .first()
        .filter(|&&h| h != p.hash_stop)
        .and_then(|h| store.index_of(h))
    else {
        return Vec::new();
    };
    let first = u64::from(start) + 1;
    let mut count = legacy::MAX_HEADERS as usize;
    // The stop header, if it is in the range, ends it (it is not sent).
    if let Some(stop) = store.index_of(&p.hash_stop) {
        if u64::from(stop) >= first {
            count = count.min((u64::from(stop) - first) as usize);
        }
    }
    headers_part(first, count, store.height())
}

fn legacy_block_hashes<S: ChainStore<Legacy> + ?Sized>(
    store: &S,
    p: &legacy::GetBlocksPayload,
) -> Vec<legacy::Message> {
    let range = after_start(
        store,
        p,
        legacy::MAX_INV_HASHES as usize,
        store.block_height(),
    );
    let hashes: Vec<UInt256> = range.map_while(|h| store.hash(h)).collect();
    if hashes.is_empty() {
        return Vec::new();
    }
    vec![legacy::Message::Inv(legacy::InvPayload {
        kind: legacy::InventoryType::Block,
        hashes,
    })]
}

fn legacy_objects<S: ChainStore<Legacy> + ?Sized>(
    store: &S,
    p: &legacy::InvPayload,
) -> Vec<Part<Legacy>> {
    distinct(&p.hashes)
        .into_iter()
        .filter_map(|hash| match p.kind {
            legacy::InventoryType::Block => full_block_at::<Legacy, S>(store, &hash)
                .map(|h| Part::Shared(SharedAnswer::Block(h))),
            legacy::InventoryType::Tx => store
                .transaction(&hash)
                .map(|tx| Part::Message(legacy::Message::Tx(Box::new(tx)))),
            legacy::InventoryType::StateRoot | legacy::InventoryType::Consensus => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_stop_before_the_payload_cap() {
        let big = crate::wire::Witness {
            invocation: vec![0; 10 << 20].into(),
            verification: Default::default(),
        };
        let items = vec![big; 4];
        assert_eq!(
            within_payload(items.iter().cloned()).count(),
            3,
            "3 x 10 MiB fit, 4 do not"
        );
        assert_eq!(within_payload(items[..2].iter().cloned()).count(), 2);
        assert_eq!(
            within_payload(std::iter::empty::<crate::wire::Witness>()).count(),
            0
        );
    }

    #[test]
    fn height_ranges_never_overflow() {
        let all = |first, count, last| heights(first, count, last).collect::<Vec<_>>();
        assert_eq!(all(0, 3, Some(10)), [0, 1, 2]);
        assert_eq!(all(9, 3, Some(10)), [9, 10]);
        assert_eq!(all(11, 3, Some(10)), Vec::<u32>::new());
        assert_eq!(all(0, 3, None), Vec::<u32>::new());
        assert_eq!(all(5, 0, Some(10)), Vec::<u32>::new());
        assert_eq!(all(u32::MAX.into(), 2000, Some(u32::MAX)), [u32::MAX]);
        assert_eq!(
            all(u64::from(u32::MAX) + 1, 500, Some(u32::MAX)),
            Vec::<u32>::new()
        );
    }
}
