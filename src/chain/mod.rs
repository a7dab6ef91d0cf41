//! In-memory chains of both NEO generations, a synthetic chain generator and
//! the server side of the synchronisation requests.
//!
//! A [`Chain`] is an append-only list of headers, indexed by height and by
//! hash, that may also hold the full blocks of a prefix of its heights (the
//! bodies of heights `0..block_count()`). [`N3Chain`] and [`LegacyChain`] are
//! the two generations of it; every method exists for both.
//!
//! - [`Chain::push_header`] and [`Chain::push_block`] check that what is
//!   appended links to the tip (its index is the next height and its
//!   `prev_hash` the tip's hash) and that a block is well formed (its Merkle
//!   root and the other checks of `Block::check`); a refusal is a
//!   [`ChainError`] naming what was expected and what was found;
//! - [`Chain::synthetic`] builds a deterministic chain from a [`Synthetic`]
//!   description: linked and hashed headers, 5-of-7 multi-signature witnesses
//!   with fake signatures and, optionally, transactions;
//! - [`Chain::answer`] is the pure function a node runs when a peer asks for
//!   headers, blocks, hashes or objects: it returns the messages to send back
//!   (an empty vector means silence), following the C# reference node.
//!
//! Nothing here does I/O or keeps per-peer state. Each header's hash is
//! computed once, when it is appended.
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

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use crate::wire::{DecodeError, Encode, MAX_PAYLOAD, UInt256, Witness, legacy, n3};

mod serve;
mod server;
mod synthetic;

pub use server::{ChainServer, Serve};
pub use synthetic::Synthetic;

/// One wire generation as seen by a [`Chain`]: its header, block and
/// transaction types and the few facts the chain needs about them.
///
/// Implemented by [`N3`] and [`Legacy`] only.
pub trait Generation: sealed::Sealed + Sized + 'static {
    /// A block header.
    type Header: Clone + fmt::Debug + PartialEq + Eq;
    /// A full block.
    type Block: Clone + fmt::Debug + PartialEq + Eq;
    /// A transaction.
    type Transaction: Clone + fmt::Debug + PartialEq + Eq;

    /// The block hash of a header.
    fn header_hash(header: &Self::Header) -> UInt256;
    /// The height of a header.
    fn header_index(header: &Self::Header) -> u32;
    /// The hash of the block before it.
    fn header_prev_hash(header: &Self::Header) -> UInt256;
    /// The limits a receiver enforces on a header (what the encoder needs to
    /// send it in a `headers` message).
    fn check_header(header: &Self::Header) -> Result<(), DecodeError>;
    /// The header of a block.
    fn block_header(block: &Self::Block) -> Self::Header;
    /// The transactions of a block.
    fn block_transactions(block: &Self::Block) -> &[Self::Transaction];
    /// Everything a receiver checks on a block: its limits, its Merkle root,
    /// no duplicate transaction (and, for Legacy, the `MinerTransaction`
    /// rule), and a size that fits one message.
    fn check_block(block: &Self::Block) -> Result<(), DecodeError>;
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
    fn check_header(header: &n3::Header) -> Result<(), DecodeError> {
        header.validate()
    }
    fn block_header(block: &n3::Block) -> n3::Header {
        block.header.clone()
    }
    fn block_transactions(block: &n3::Block) -> &[n3::Transaction] {
        &block.transactions
    }
    fn check_block(block: &n3::Block) -> Result<(), DecodeError> {
        block.validate()?;
        block.check()?;
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
    fn check_header(header: &legacy::Header) -> Result<(), DecodeError> {
        legacy_witness_limits(&header.base.witness)
    }
    fn block_header(block: &legacy::Block) -> legacy::Header {
        block.header()
    }
    fn block_transactions(block: &legacy::Block) -> &[legacy::Transaction] {
        &block.transactions
    }
    fn check_block(block: &legacy::Block) -> Result<(), DecodeError> {
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
        block.check()?;
        fits_one_message(block.size())
    }
    fn tx_hash(tx: &legacy::Transaction) -> UInt256 {
        tx.hash()
    }
}

/// Why a header or block was not appended to a [`Chain`] (the chain is left
/// unchanged).
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
    /// The chain already holds this hash.
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

/// Where a transaction is held: block height and position in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxLocation {
    /// Height of the block.
    pub height: u32,
    /// Position in the block's transaction list.
    pub position: u32,
}

/// An in-memory, append-only chain of one generation: headers for heights
/// `0..=height()`, and full blocks for heights `0..block_count()`.
///
/// Headers are indexed by height and by hash, transactions (of the blocks
/// held) by hash.
#[derive(Debug, Clone)]
pub struct Chain<G: Generation> {
    headers: Vec<G::Header>,
    hashes: Vec<UInt256>,
    heights: HashMap<UInt256, u32>,
    blocks: Vec<G::Block>,
    txs: HashMap<UInt256, TxLocation>,
}

impl<G: Generation> Chain<G> {
    /// A chain holding only the genesis header (index 0), without its body.
    pub fn new(genesis: G::Header) -> Result<Self, ChainError> {
        let index = G::header_index(&genesis);
        if index != 0 {
            return Err(ChainError::GenesisIndex { got: index });
        }
        G::check_header(&genesis).map_err(|source| ChainError::InvalidHeader { index, source })?;
        let hash = G::header_hash(&genesis);
        Ok(Chain {
            headers: vec![genesis],
            hashes: vec![hash],
            heights: HashMap::from([(hash, 0)]),
            blocks: Vec::new(),
            txs: HashMap::new(),
        })
    }

    /// A chain holding the genesis block (index 0), header and body.
    pub fn from_genesis_block(genesis: G::Block) -> Result<Self, ChainError> {
        let mut chain = Chain::new(G::block_header(&genesis))?;
        chain.push_block(genesis)?;
        Ok(chain)
    }

    /// A chain of headers only; the first is the genesis header.
    pub fn from_headers(headers: impl IntoIterator<Item = G::Header>) -> Result<Self, ChainError> {
        let mut it = headers.into_iter();
        let mut chain = Chain::new(it.next().ok_or(ChainError::NoGenesis)?)?;
        it.try_for_each(|h| chain.push_header(h))?;
        Ok(chain)
    }

    /// A chain of full blocks; the first is the genesis block.
    pub fn from_blocks(blocks: impl IntoIterator<Item = G::Block>) -> Result<Self, ChainError> {
        let mut it = blocks.into_iter();
        let mut chain = Chain::from_genesis_block(it.next().ok_or(ChainError::NoGenesis)?)?;
        it.try_for_each(|b| chain.push_block(b))?;
        Ok(chain)
    }

    fn next_index(&self) -> Result<u32, ChainError> {
        self.height().checked_add(1).ok_or(ChainError::Full)
    }

    /// Checks that `header` (whose hash is `hash`) may become the new tip.
    fn check_link(&self, header: &G::Header, hash: UInt256) -> Result<u32, ChainError> {
        let expected = self.next_index()?;
        let index = G::header_index(header);
        if index != expected {
            return Err(ChainError::Index {
                expected,
                got: index,
            });
        }
        let prev = G::header_prev_hash(header);
        if prev != self.tip_hash() {
            return Err(ChainError::PrevHash {
                index,
                expected: self.tip_hash(),
                got: prev,
            });
        }
        if let Some(&at) = self.heights.get(&hash) {
            return Err(ChainError::Duplicate { hash, index: at });
        }
        G::check_header(header).map_err(|source| ChainError::InvalidHeader { index, source })?;
        Ok(index)
    }

    fn append_header(&mut self, header: G::Header, hash: UInt256, index: u32) {
        self.headers.push(header);
        self.hashes.push(hash);
        self.heights.insert(hash, index);
    }

    /// Appends a header: its index must be `height() + 1` and its
    /// `prev_hash` the tip's hash.
    pub fn push_header(&mut self, header: G::Header) -> Result<(), ChainError> {
        let hash = G::header_hash(&header);
        let index = self.check_link(&header, hash)?;
        self.append_header(header, hash, index);
        Ok(())
    }

    /// Appends a full block.
    ///
    /// Either the block is the next one (it links to the tip, as for
    /// [`Chain::push_header`], and every body below it is held), or its header
    /// is already in the chain at the lowest height without a body (headers
    /// first, bodies after). In both cases the block must pass the checks a
    /// receiver makes ([`Generation::check_block`]).
    pub fn push_block(&mut self, block: G::Block) -> Result<(), ChainError> {
        let header = G::block_header(&block);
        let hash = G::header_hash(&header);
        let index = G::header_index(&header);
        let next_body = self.blocks.len();
        let known = (index as usize) < self.headers.len();
        if known {
            let expected = self.hashes[index as usize];
            if hash != expected {
                return Err(ChainError::HashMismatch {
                    index,
                    expected,
                    got: hash,
                });
            }
            if (index as usize) < next_body {
                return Err(ChainError::Duplicate { hash, index });
            }
        } else {
            self.check_link(&header, hash)?;
        }
        if index as usize != next_body {
            return Err(ChainError::BodyGap {
                expected: next_body as u32,
                got: index,
            });
        }
        G::check_block(&block).map_err(|source| ChainError::InvalidBlock { index, source })?;
        if !known {
            self.append_header(header, hash, index);
        }
        for (position, tx) in G::block_transactions(&block).iter().enumerate() {
            // A transaction repeated in a later block keeps its first place.
            self.txs.entry(G::tx_hash(tx)).or_insert(TxLocation {
                height: index,
                position: position as u32,
            });
        }
        self.blocks.push(block);
        Ok(())
    }

    /// Height of the tip (0 for a chain holding only its genesis).
    pub fn height(&self) -> u32 {
        (self.headers.len() - 1) as u32
    }

    /// Number of headers (`height() + 1`).
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Always false: a chain holds at least its genesis header.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Number of full blocks held (those of heights `0..block_count()`).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Height of the highest full block held, if any.
    pub fn block_height(&self) -> Option<u32> {
        self.blocks.len().checked_sub(1).map(|h| h as u32)
    }

    /// Hash of the tip.
    pub fn tip_hash(&self) -> UInt256 {
        self.hashes[self.hashes.len() - 1]
    }

    /// Hash of the genesis block.
    pub fn genesis_hash(&self) -> UInt256 {
        self.hashes[0]
    }

    /// The header at a height.
    pub fn header(&self, index: u32) -> Option<&G::Header> {
        self.headers.get(index as usize)
    }

    /// The full block at a height, if its body is held.
    pub fn block(&self, index: u32) -> Option<&G::Block> {
        self.blocks.get(index as usize)
    }

    /// The block hash at a height.
    pub fn hash(&self, index: u32) -> Option<UInt256> {
        self.hashes.get(index as usize).copied()
    }

    /// Every block hash, by height.
    pub fn hashes(&self) -> &[UInt256] {
        &self.hashes
    }

    /// Every header, by height.
    pub fn headers(&self) -> &[G::Header] {
        &self.headers
    }

    /// Every full block held, by height.
    pub fn blocks(&self) -> &[G::Block] {
        &self.blocks
    }

    /// The height of a block hash.
    pub fn index_of(&self, hash: &UInt256) -> Option<u32> {
        self.heights.get(hash).copied()
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
        self.txs.get(hash).copied()
    }

    /// The transaction with a hash, if a block held contains it.
    pub fn transaction(&self, hash: &UInt256) -> Option<&G::Transaction> {
        let at = self.tx_location(hash)?;
        let block = self.block(at.height)?;
        G::block_transactions(block).get(at.position as usize)
    }

    /// Number of distinct transactions in the blocks held.
    pub fn tx_count(&self) -> usize {
        self.txs.len()
    }
}

#[cfg(test)]
mod tests;
