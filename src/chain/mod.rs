//! In-memory chains of both NEO generations that grow while they are
//! served, the storage trait the serving side reads through, a synthetic
//! chain generator and the server side of the synchronisation requests.
//!
//! A [`Chain`] is an append-only list of headers, indexed by height and by
//! hash, that may also hold the full blocks of a prefix of its heights (the
//! bodies of heights `0..block_count()`). [`N3Chain`] and [`LegacyChain`] are
//! the two generations of it; every method exists for both.
//!
//! - [`Chain::push_header`] and [`Chain::push_block`] append through a
//!   shared reference, while other tasks read and serve the same chain. They
//!   check that what is appended links to the tip (its index is the next
//!   height and its `prev_hash` the tip's hash), that a block is the one its
//!   header names (same hash, right Merkle root) and that it is well formed
//!   (the other checks of `Block::check`); a refusal is a [`ChainError`]
//!   naming the check, the height and what was expected and found;
//! - [`ChainStore`] is what serving needs from a chain (headers and blocks
//!   by height and by hash, transactions by hash, the tip): [`Chain`] is one,
//!   and a node can serve from its own database by implementing it;
//! - [`Chain::synthetic`] builds a deterministic chain from a [`Synthetic`]
//!   description: linked and hashed headers, 5-of-7 multi-signature witnesses
//!   with fake signatures and, optionally, transactions;
//! - [`Serve::answer`] is the pure function a node runs when a peer asks for
//!   headers, blocks, hashes or objects: it returns the messages to send back
//!   (an empty vector means silence), following the C# reference node, from
//!   any [`ChainStore`]; [`Chain::answer`] is the same for a [`Chain`];
//! - [`ChainServer`] is a peer handler that answers from a store.
//!
//! Nothing here does I/O or keeps per-peer state.
//!
//! ```
//! use neo_peer::chain::{N3Chain, Synthetic};
//! use neo_peer::wire::n3::{GetBlockByIndexPayload, Message};
//!
//! let chain = N3Chain::synthetic(&Synthetic { blocks: 10, ..Synthetic::default() });
//! assert_eq!(chain.height(), 10);
//! let ask = Message::GetHeaders(GetBlockByIndexPayload { index_start: 8, count: -1 });
//! let answer = chain.answer(&ask);
//! let [Message::Headers(headers)] = answer.as_slice() else { panic!() };
//! assert_eq!(headers.len(), 3); // heights 8, 9 and 10
//! assert_eq!(headers.last_index(), Some(10));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use thiserror::Error;

use crate::wire::{
    DecodeError, Encode, MAX_PAYLOAD, UInt160, UInt256, Witness, check_tx_hashes, legacy,
    merkle_root, n3,
};
use index::HashIndex;

mod frames;
mod index;
mod serve;
mod server;
mod store;
mod synthetic;

pub use frames::{FRAME_CACHE_BYTES, FRAME_CACHE_ENTRIES, FrameCache, SharedAnswer};
pub use serve::{Part, Serve};
pub use server::ChainServer;
pub use store::ChainStore;
pub use synthetic::Synthetic;

/// One wire generation as seen by a [`Chain`]: its header, block and
/// transaction types and the few facts the chain needs about them.
///
/// Implemented by [`N3`] and [`Legacy`] only.
pub trait Generation: sealed::Sealed + Sized + 'static {
    /// A block header.
    type Header: Clone + fmt::Debug + PartialEq + Eq + Send + Sync;
    /// A full block.
    type Block: Clone + fmt::Debug + PartialEq + Eq + Send + Sync;
    /// A transaction.
    type Transaction: Clone + fmt::Debug + PartialEq + Eq + Send + Sync;

    /// The block hash of a header.
    fn header_hash(header: &Self::Header) -> UInt256;
    /// The height of a header.
    fn header_index(header: &Self::Header) -> u32;
    /// The hash of the block before it.
    fn header_prev_hash(header: &Self::Header) -> UInt256;
    /// The Merkle root a header names.
    fn header_merkle_root(header: &Self::Header) -> UInt256;
    /// The script hash of the contract that must sign the next block.
    fn header_next_consensus(header: &Self::Header) -> UInt160;
    /// Whether a header is signed by the contract whose script hash is
    /// `signer` (see [`wire::witness`](crate::wire::witness)); N3 signs for
    /// the network `network`.
    fn check_header_witness(
        header: &Self::Header,
        network: u32,
        signer: &UInt160,
    ) -> Result<(), String>;
    /// The limits a receiver enforces on a header (what the encoder needs to
    /// send it in a `headers` message).
    fn check_header(header: &Self::Header) -> Result<(), DecodeError>;
    /// The header of a block.
    fn block_header(block: &Self::Block) -> Self::Header;
    /// The transactions of a block.
    fn block_transactions(block: &Self::Block) -> &[Self::Transaction];
    /// Everything a receiver checks on a block: its limits, its Merkle root,
    /// no duplicate transaction (and, for Legacy, the `MinerTransaction`
    /// rule), and a size that fits one message. `tx_hashes` are the hashes
    /// of its transactions, in order.
    fn check_block(block: &Self::Block, tx_hashes: &[UInt256]) -> Result<(), DecodeError>;
    /// The hash of a transaction.
    fn tx_hash(tx: &Self::Transaction) -> UInt256;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::N3 {}
    impl Sealed for super::Legacy {}
}

pub use crate::protocol::{Legacy, N3};

/// A Neo N3 chain.
pub type N3Chain = Chain<N3>;

/// A NEO Legacy (2.x) chain.
pub type LegacyChain = Chain<Legacy>;

fn fits_one_message(size: usize) -> Result<(), DecodeError> {
    if size > MAX_PAYLOAD {
        return Err(DecodeError::TooMany {
            what: "block.size",
            count: size as u64,
            max: MAX_PAYLOAD as u64,
        });
    }
    Ok(())
}

impl Generation for N3 {
    type Header = n3::Header;
    type Block = n3::Block;
    type Transaction = n3::Transaction;

    fn header_hash(header: &n3::Header) -> UInt256 {
        header.hash()
    }
    fn header_index(header: &n3::Header) -> u32 {
        header.index
    }
    fn header_prev_hash(header: &n3::Header) -> UInt256 {
        header.prev_hash
    }
    fn header_merkle_root(header: &n3::Header) -> UInt256 {
        header.merkle_root
    }
    fn header_next_consensus(header: &n3::Header) -> UInt160 {
        header.next_consensus
    }
    fn check_header_witness(
        header: &n3::Header,
        network: u32,
        signer: &UInt160,
    ) -> Result<(), String> {
        crate::wire::witness::check_n3(header, network, signer).map_err(|e| e.to_string())
    }
    fn check_header(header: &n3::Header) -> Result<(), DecodeError> {
        header.validate()
    }
    fn block_header(block: &n3::Block) -> n3::Header {
        block.header.clone()
    }
    fn block_transactions(block: &n3::Block) -> &[n3::Transaction] {
        &block.transactions
    }
    fn check_block(block: &n3::Block, tx_hashes: &[UInt256]) -> Result<(), DecodeError> {
        block.validate()?;
        check_tx_hashes(tx_hashes, &block.header.merkle_root)?;
        fits_one_message(block.size())
    }
    fn tx_hash(tx: &n3::Transaction) -> UInt256 {
        tx.hash()
    }
}

/// The script sizes a Legacy receiver accepts in a block witness.
fn legacy_witness_limits(witness: &Witness) -> Result<(), DecodeError> {
    for (what, len) in [
        ("witness.invocation", witness.invocation.len()),
        ("witness.verification", witness.verification.len()),
    ] {
        if len as u64 > legacy::MAX_WITNESS_SCRIPT {
            return Err(DecodeError::TooMany {
                what,
                count: len as u64,
                max: legacy::MAX_WITNESS_SCRIPT,
            });
        }
    }
    Ok(())
}

impl Generation for Legacy {
    type Header = legacy::Header;
    type Block = legacy::Block;
    type Transaction = legacy::Transaction;

    fn header_hash(header: &legacy::Header) -> UInt256 {
        header.hash()
    }
    fn header_index(header: &legacy::Header) -> u32 {
        header.base.index
    }
    fn header_prev_hash(header: &legacy::Header) -> UInt256 {
        header.base.prev_hash
    }
    fn header_merkle_root(header: &legacy::Header) -> UInt256 {
        header.base.merkle_root
    }
    fn header_next_consensus(header: &legacy::Header) -> UInt160 {
        header.base.next_consensus
    }
    fn check_header_witness(
        header: &legacy::Header,
        _network: u32,
        signer: &UInt160,
    ) -> Result<(), String> {
        crate::wire::witness::check_legacy(&header.base, signer).map_err(|e| e.to_string())
    }
    fn check_header(header: &legacy::Header) -> Result<(), DecodeError> {
        legacy_witness_limits(&header.base.witness)
    }
    fn block_header(block: &legacy::Block) -> legacy::Header {
        block.header()
    }
    fn block_transactions(block: &legacy::Block) -> &[legacy::Transaction] {
        &block.transactions
    }
    fn check_block(block: &legacy::Block, tx_hashes: &[UInt256]) -> Result<(), DecodeError> {
        legacy_witness_limits(&block.base.witness)?;
        let count = block.transactions.len() as u64;
        if count > legacy::MAX_BLOCK_TXS {
            return Err(DecodeError::TooMany {
                what: "block.transactions",
                count,
                max: legacy::MAX_BLOCK_TXS,
            });
        }
        block
            .transactions
            .iter()
            .try_for_each(legacy::Transaction::check_limits)?;
        // Also refuses an empty block: the first transaction must be the miner's.
        block.check_hashed(tx_hashes)?;
        fits_one_message(block.size())
    }
    fn tx_hash(tx: &legacy::Transaction) -> UInt256 {
        tx.hash()
    }
}

/// Why a header or block was not appended to a [`Chain`] (the chain is left
/// unchanged): which check failed, at which height ([`ChainError::height`]),
/// and what was expected and found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A chain was built from nothing.
    #[error("a chain needs a genesis header")]
    NoGenesis,
    /// The genesis header is not at height 0.
    #[error("the genesis header has index {got}, expected 0")]
    GenesisIndex {
        /// Its index.
        got: u32,
    },
    /// The index is not the next height.
    #[error("index {got} does not follow the tip: expected {expected}")]
    Index {
        /// The next height.
        expected: u32,
        /// The index found.
        got: u32,
    },
    /// The `prev_hash` is not the hash of the tip.
    #[error("prev_hash {got} at height {index} is not the tip hash {expected}")]
    PrevHash {
        /// The height being appended.
        index: u32,
        /// The tip's hash.
        expected: UInt256,
        /// The `prev_hash` found.
        got: UInt256,
    },
    /// The chain already holds this block (a header is never a duplicate:
    /// its index is part of its hash, and it must be the next one).
    #[error("{hash} is already in the chain at height {index}")]
    Duplicate {
        /// The hash.
        hash: UInt256,
        /// Where the chain holds it.
        index: u32,
    },
    /// A block for a height whose header is known is not that header's block.
    #[error("the block at height {index} has hash {got}, the chain holds {expected}")]
    HashMismatch {
        /// The height.
        index: u32,
        /// The hash of the header held at that height.
        expected: UInt256,
        /// The hash of the block offered.
        got: UInt256,
    },
    /// Bodies are held for a prefix of heights: the next one must come first.
    #[error("the next block body expected is at height {expected}, got height {got}")]
    BodyGap {
        /// The lowest height without a body.
        expected: u32,
        /// The block's height.
        got: u32,
    },
    /// The Merkle root of a block's transactions is not the one its header
    /// names: the body is not the header's.
    #[error(
        "the transactions of block {index} have Merkle root {got}, its header names {expected}"
    )]
    MerkleRoot {
        /// The block's height.
        index: u32,
        /// The root in the header.
        expected: UInt256,
        /// The root of the transactions.
        got: UInt256,
    },
    /// A header breaks a limit receivers enforce.
    #[error("invalid header at height {index}: {source}")]
    InvalidHeader {
        /// Its height.
        index: u32,
        /// What is wrong.
        #[source]
        source: DecodeError,
    },
    /// A block fails the checks receivers make (Merkle root, duplicates, limits).
    #[error("invalid block at height {index}: {source}")]
    InvalidBlock {
        /// Its height.
        index: u32,
        /// What is wrong.
        #[source]
        source: DecodeError,
    },
    /// The chain reached height `u32::MAX`.
    #[error("the chain is at the largest height")]
    Full,
}

impl ChainError {
    /// The height of the header or block refused, if the error is about one.
    pub fn height(&self) -> Option<u32> {
        match *self {
            ChainError::GenesisIndex { got } => Some(got),
            ChainError::Index { got, .. } | ChainError::BodyGap { got, .. } => Some(got),
            ChainError::PrevHash { index, .. }
            | ChainError::Duplicate { index, .. }
            | ChainError::HashMismatch { index, .. }
            | ChainError::MerkleRoot { index, .. }
            | ChainError::InvalidHeader { index, .. }
            | ChainError::InvalidBlock { index, .. } => Some(index),
            ChainError::NoGenesis | ChainError::Full => None,
        }
    }
}

/// Where a transaction is held: block height and position in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxLocation {
    /// Height of the block.
    pub height: u32,
    /// Position in the block's transaction list.
    pub position: u32,
}

/// An in-memory, append-only chain of one generation that grows while it is
/// read: headers for heights `0..=height()`, and full blocks for heights
/// `0..block_count()`.
///
/// Headers are indexed by height and by hash, transactions (of the blocks
/// held) by hash. Share it in an [`Arc`](std::sync::Arc): appends take
/// `&self`, so one task can append what it downloads while peers are
/// served from the same chain (see [`ChainServer`]).
///
/// # Readers and the writer
///
/// Headers and blocks live in append-only storage whose elements never move
/// ([`boxcar`]), and an append becomes visible in one step: the new header
/// or block, its hash and its transactions are written first, then the
/// count that readers go by is published. So a reader sees a chain as it
/// was after some append, never half of one, and a reference it got stays
/// valid as long as the chain lives. Reading by height takes no lock at all;
/// a lookup by hash takes the read lock of one of 256 shards of the hash
/// index, for that lookup only. Appends are serialised by a lock that
/// readers never take. A server encoding 2000 headers holds no lock.
///
/// Each header's hash and each transaction's hash are computed once, when
/// it is appended, before the append lock is taken.
///
/// ```
/// use std::sync::Arc;
/// use neo_peer::chain::{ChainError, N3Chain, Synthetic};
///
/// let source = N3Chain::synthetic(&Synthetic { blocks: 3, ..Synthetic::default() });
/// let chain = Arc::new(N3Chain::from_genesis_block(source.block(0).unwrap().clone())?);
/// let reader = chain.clone(); // e.g. held by a `ChainServer`
/// chain.push_header(source.header(1).unwrap().clone())?; // headers first...
/// chain.push_block(source.block(1).unwrap().clone())?; // ...then its block
/// chain.push_block(source.block(2).unwrap().clone())?; // or a block with its header
/// assert_eq!((reader.height(), reader.block_height()), (2, Some(2)));
/// // Linkage is checked on every append.
/// let err = chain.push_block(source.block(2).unwrap().clone()).unwrap_err();
/// assert!(matches!(err, ChainError::Duplicate { index: 2, .. }));
/// # Ok::<_, ChainError>(())
/// ```
pub struct Chain<G: Generation> {
    /// Hashes and headers by height (only the first `header_count` are
    /// published).
    headers: boxcar::Vec<(UInt256, G::Header)>,
    /// Full blocks by height (only the first `block_count` are published).
    blocks: boxcar::Vec<G::Block>,
    /// Block hash to height, for every header written.
    heights: HashIndex<u32>,
    /// Transaction hash to its first place, for every block written.
    txs: HashIndex<TxLocation>,
    /// Headers readers may read: set after the header, its hash and its
    /// index entry are written (`Release`), read before them (`Acquire`).
    header_count: AtomicUsize,
    /// Blocks readers may read, published likewise after `header_count`.
    block_count: AtomicUsize,
    /// Distinct transactions in the published blocks.
    tx_count: AtomicUsize,
    /// Held by an append from its first check to its last write.
    append: Mutex<()>,
}

impl<G: Generation> fmt::Debug for Chain<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (height, tip) = self.tip();
        f.debug_struct("Chain")
            .field("height", &height)
            .field("tip", &tip)
            .field("block_count", &self.block_count())
            .field("tx_count", &self.tx_count())
            .finish()
    }
}

impl<G: Generation> Chain<G> {
    /// A chain holding only the genesis header (index 0), without its body.
    pub fn new(genesis: G::Header) -> Result<Self, ChainError> {
        let index = G::header_index(&genesis);
        if index != 0 {
            return Err(ChainError::GenesisIndex { got: index });
        }
        G::check_header(&genesis).map_err(|source| ChainError::InvalidHeader { index, source })?;
        let chain = Chain {
            headers: boxcar::Vec::new(),
            blocks: boxcar::Vec::new(),
            heights: HashIndex::new(),
            txs: HashIndex::new(),
            header_count: AtomicUsize::new(0),
            block_count: AtomicUsize::new(0),
            tx_count: AtomicUsize::new(0),
            append: Mutex::new(()),
        };
        let hash = G::header_hash(&genesis);
        chain.append_header(genesis, hash);
        Ok(chain)
    }

    /// A chain holding the genesis block (index 0), header and body.
    pub fn from_genesis_block(genesis: G::Block) -> Result<Self, ChainError> {
        let chain = Chain::new(G::block_header(&genesis))?;
        chain.push_block(genesis)?;
        Ok(chain)
    }

    /// A chain of headers only; the first is the genesis header.
    pub fn from_headers(headers: impl IntoIterator<Item = G::Header>) -> Result<Self, ChainError> {
        let mut it = headers.into_iter();
        let chain = Chain::new(it.next().ok_or(ChainError::NoGenesis)?)?;
        it.try_for_each(|h| chain.push_header(h))?;
        Ok(chain)
    }

    /// A chain of full blocks; the first is the genesis block.
    pub fn from_blocks(blocks: impl IntoIterator<Item = G::Block>) -> Result<Self, ChainError> {
        let mut it = blocks.into_iter();
        let chain = Chain::from_genesis_block(it.next().ok_or(ChainError::NoGenesis)?)?;
        it.try_for_each(|b| chain.push_block(b))?;
        Ok(chain)
    }

    /// Takes the append lock. Nothing panics while it is held but an
    /// allocation failure, so a poisoned lock guards a sound chain.
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.append.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks, under the append lock, that `header` may become the new tip;
    /// returns its height.
    fn check_link(&self, header: &G::Header) -> Result<u32, ChainError> {
        let (tip, tip_hash) = self.tip();
        let expected = tip.checked_add(1).ok_or(ChainError::Full)?;
        let index = G::header_index(header);
        if index != expected {
            return Err(ChainError::Index {
                expected,
                got: index,
            });
        }
        let prev = G::header_prev_hash(header);
        if prev != tip_hash {
            return Err(ChainError::PrevHash {
                index,
                expected: tip_hash,
                got: prev,
            });
        }
        G::check_header(header).map_err(|source| ChainError::InvalidHeader { index, source })?;
        Ok(index)
    }

    /// Writes a checked header, then publishes it.
    fn append_header(&self, header: G::Header, hash: UInt256) {
        let at = self.headers.push((hash, header));
        debug_assert_eq!(at, self.len(), "one writer, appending in order");
        self.heights.insert_first(hash, at as u32);
        self.header_count.store(at + 1, Ordering::Release);
    }

    /// Appends a header: its index must be `height() + 1` and its
    /// `prev_hash` the tip's hash.
    pub fn push_header(&self, header: G::Header) -> Result<(), ChainError> {
        let hash = G::header_hash(&header);
        let _append = self.lock();
        self.check_link(&header)?;
        self.append_header(header, hash);
        Ok(())
    }

    /// Appends a full block.
    ///
    /// Either the block is the next one (it links to the tip, as for
    /// [`Chain::push_header`], and every body below it is held), or its header
    /// is already in the chain at the lowest height without a body (headers
    /// first, bodies after): then its hash must be that header's. In both
    /// cases its Merkle root must be that of its transactions
    /// ([`ChainError::MerkleRoot`]) and it must pass the other checks a
    /// receiver makes ([`Generation::check_block`]).
    pub fn push_block(&self, block: G::Block) -> Result<(), ChainError> {
        let header = G::block_header(&block);
        let hash = G::header_hash(&header);
        let index = G::header_index(&header);
        let tx_hashes: Vec<UInt256> = G::block_transactions(&block)
            .iter()
            .map(G::tx_hash)
            .collect();
        let _append = self.lock();
        let next_body = self.block_count();
        let known = self.hash(index);
        match known {
            Some(expected) if hash != expected => {
                return Err(ChainError::HashMismatch {
                    index,
                    expected,
                    got: hash,
                });
            }
            Some(_) if (index as usize) < next_body => {
                return Err(ChainError::Duplicate { hash, index });
            }
            Some(_) => {}
            None => {
                self.check_link(&header)?;
            }
        }
        if index as usize != next_body {
            return Err(ChainError::BodyGap {
                expected: next_body as u32,
                got: index,
            });
        }
        let (expected, got) = (G::header_merkle_root(&header), merkle_root(&tx_hashes));
        if got != expected {
            return Err(ChainError::MerkleRoot {
                index,
                expected,
                got,
            });
        }
        G::check_block(&block, &tx_hashes)
            .map_err(|source| ChainError::InvalidBlock { index, source })?;
        if known.is_none() {
            self.append_header(header, hash);
        }
        let mut new_txs = 0;
        for (position, tx) in tx_hashes.into_iter().enumerate() {
            // A transaction repeated in a later block keeps its first place.
            let at = TxLocation {
                height: index,
                position: position as u32,
            };
            new_txs += usize::from(self.txs.insert_first(tx, at));
        }
        let at = self.blocks.push(block);
        debug_assert_eq!(at, next_body, "one writer, appending in order");
        self.block_count.store(at + 1, Ordering::Release);
        self.tx_count.fetch_add(new_txs, Ordering::Relaxed);
        Ok(())
    }

    /// The hash and header at a published height.
    fn entry(&self, index: usize) -> &(UInt256, G::Header) {
        // Every slot below `len()` was written before `len()` was published.
        &self.headers[index]
    }

    /// Height of the tip (0 for a chain holding only its genesis).
    pub fn height(&self) -> u32 {
        (self.len() - 1) as u32
    }

    /// Height and hash of the tip, read together.
    pub fn tip(&self) -> (u32, UInt256) {
        let last = self.len() - 1;
        (last as u32, self.entry(last).0)
    }

    /// Number of headers (`height() + 1`).
    pub fn len(&self) -> usize {
        self.header_count.load(Ordering::Acquire)
    }

    /// Always false: a chain holds at least its genesis header.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of full blocks held (those of heights `0..block_count()`).
    pub fn block_count(&self) -> usize {
        self.block_count.load(Ordering::Acquire)
    }

    /// Height of the highest full block held, if any.
    pub fn block_height(&self) -> Option<u32> {
        self.block_count().checked_sub(1).map(|h| h as u32)
    }

    /// Hash of the tip.
    pub fn tip_hash(&self) -> UInt256 {
        self.tip().1
    }

    /// Hash of the genesis block.
    pub fn genesis_hash(&self) -> UInt256 {
        self.entry(0).0
    }

    /// The header at a height.
    pub fn header(&self, index: u32) -> Option<&G::Header> {
        let i = index as usize;
        (i < self.len()).then(|| &self.entry(i).1)
    }

    /// The full block at a height, if its body is held.
    pub fn block(&self, index: u32) -> Option<&G::Block> {
        let i = index as usize;
        (i < self.block_count()).then(|| &self.blocks[i])
    }

    /// The block hash at a height.
    pub fn hash(&self, index: u32) -> Option<UInt256> {
        let i = index as usize;
        (i < self.len()).then(|| self.entry(i).0)
    }

    /// Every block hash, by height, up to the tip when called.
    pub fn hashes(&self) -> impl ExactSizeIterator<Item = UInt256> + DoubleEndedIterator + '_ {
        (0..self.len()).map(|i| self.entry(i).0)
    }

    /// Every header, by height, up to the tip when called.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = &G::Header> + DoubleEndedIterator {
        (0..self.len()).map(|i| &self.entry(i).1)
    }

    /// Every full block held, by height, up to the last one held when called.
    pub fn blocks(&self) -> impl ExactSizeIterator<Item = &G::Block> + DoubleEndedIterator {
        (0..self.block_count()).map(|i| &self.blocks[i])
    }

    /// The height of a block hash.
    pub fn index_of(&self, hash: &UInt256) -> Option<u32> {
        let len = self.len();
        self.heights.get(hash).filter(|&h| (h as usize) < len)
    }

    /// The header with a hash.
    pub fn header_by_hash(&self, hash: &UInt256) -> Option<&G::Header> {
        self.index_of(hash).and_then(|i| self.header(i))
    }

    /// The full block with a hash, if its body is held.
    pub fn block_by_hash(&self, hash: &UInt256) -> Option<&G::Block> {
        self.index_of(hash).and_then(|i| self.block(i))
    }

    /// Where the transaction with a hash is held.
    pub fn tx_location(&self, hash: &UInt256) -> Option<TxLocation> {
        let held = self.block_count();
        self.txs.get(hash).filter(|at| (at.height as usize) < held)
    }

    /// The transaction with a hash, if a block held contains it.
    pub fn transaction(&self, hash: &UInt256) -> Option<&G::Transaction> {
        let at = self.tx_location(hash)?;
        let block = self.block(at.height)?;
        G::block_transactions(block).get(at.position as usize)
    }

    /// Number of distinct transactions in the blocks held.
    pub fn tx_count(&self) -> usize {
        self.tx_count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
