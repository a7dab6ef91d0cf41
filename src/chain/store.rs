//! What the serving side reads from a chain.

use super::{Chain, Generation};
use crate::wire::UInt256;

/// The chain a node serves from, as [`Serve::answer`](super::Serve::answer)
/// and [`ChainServer`](super::ChainServer) read it: headers and blocks by
/// height and by hash, transactions by hash, and the tip.
///
/// [`Chain`] is one; implement it over your own database to serve what your
/// node stores. The rules:
///
/// - the store holds headers for every height `0..=height()`, and the bodies
///   of every height `0..=block_height()`, which is never above `height()`;
/// - it only grows: what one call returned, a later call returns too (NEO
///   blocks are final). An answer may thus read the store a little at a
///   time while it grows, and still be one a correct node could give;
/// - calls are made from the peers' handler tasks, one message at a time per
///   peer and many peers at once: they should be quick (memory, or an
///   embedded database on a local disk), and never wait on the network.
///   A `getheaders` answer reads up to 2000 headers, one call each.
///
/// Headers, blocks and transactions are returned by value: the answers own
/// them. A store whose values are expensive to build may keep a cache.
///
/// ```
/// use std::collections::HashMap;
/// use neo_peer::chain::{ChainStore, Serve};
/// use neo_peer::protocol::N3;
/// use neo_peer::wire::n3::{Block, GetBlockByIndexPayload, Header, Message};
/// use neo_peer::wire::UInt256;
///
/// /// Blocks kept in a vector (a database would do the same with its tables).
/// struct Blocks {
///     blocks: Vec<Block>,
///     heights: HashMap<UInt256, u32>,
/// }
///
/// impl ChainStore<N3> for Blocks {
///     fn tip(&self) -> (u32, UInt256) {
///         let last = self.blocks.last().expect("the genesis block");
///         (last.index(), last.hash())
///     }
///     fn block_height(&self) -> Option<u32> {
///         Some(self.tip().0)
///     }
///     fn hash(&self, index: u32) -> Option<UInt256> {
///         self.blocks.get(index as usize).map(Block::hash)
///     }
///     fn index_of(&self, hash: &UInt256) -> Option<u32> {
///         self.heights.get(hash).copied()
///     }
///     fn header(&self, index: u32) -> Option<Header> {
///         self.blocks.get(index as usize).map(|b| b.header.clone())
///     }
///     fn block(&self, index: u32) -> Option<Block> {
///         self.blocks.get(index as usize).cloned()
///     }
/// }
///
/// # let chain = neo_peer::chain::N3Chain::synthetic(&Default::default());
/// let blocks: Vec<Block> = chain.blocks().cloned().collect();
/// let heights = blocks.iter().map(|b| (b.hash(), b.index())).collect();
/// let store = Blocks { blocks, heights };
/// let ask = Message::GetHeaders(GetBlockByIndexPayload { index_start: 0, count: 10 });
/// assert_eq!(N3::answer(&store, &ask), chain.answer(&ask));
/// ```
pub trait ChainStore<G: Generation>: Send + Sync {
    /// Height and hash of the highest header held.
    fn tip(&self) -> (u32, UInt256);

    /// Height of the highest block whose body is held (bodies are held for
    /// every height up to it), or `None` for a store of headers only.
    fn block_height(&self) -> Option<u32>;

    /// The block hash at a height.
    fn hash(&self, index: u32) -> Option<UInt256>;

    /// The height of a block hash.
    fn index_of(&self, hash: &UInt256) -> Option<u32>;

    /// The header at a height.
    fn header(&self, index: u32) -> Option<G::Header>;

    /// The full block at a height, if its body is held.
    fn block(&self, index: u32) -> Option<G::Block>;

    /// Height of the highest header held.
    fn height(&self) -> u32 {
        self.tip().0
    }

    /// The header with a hash.
    fn header_by_hash(&self, hash: &UInt256) -> Option<G::Header> {
        self.index_of(hash).and_then(|i| self.header(i))
    }

    /// The full block with a hash, if its body is held.
    fn block_by_hash(&self, hash: &UInt256) -> Option<G::Block> {
        self.index_of(hash).and_then(|i| self.block(i))
    }

    /// The transaction with a hash, if the store can find it cheaply. By
    /// default none is found (a `getdata` for transactions gets `notfound`
    /// on N3, silence on Legacy).
    fn transaction(&self, hash: &UInt256) -> Option<G::Transaction> {
        let _ = hash;
        None
    }
}

/// The in-memory chain: every value is a clone of what it holds (headers and
/// transactions share their scripts, so a clone copies a few hundred bytes).
impl<G: Generation> ChainStore<G> for Chain<G> {
    fn tip(&self) -> (u32, UInt256) {
        Chain::tip(self)
    }
    fn block_height(&self) -> Option<u32> {
        Chain::block_height(self)
    }
    fn hash(&self, index: u32) -> Option<UInt256> {
        Chain::hash(self, index)
    }
    fn index_of(&self, hash: &UInt256) -> Option<u32> {
        Chain::index_of(self, hash)
    }
    fn header(&self, index: u32) -> Option<G::Header> {
        Chain::header(self, index).cloned()
    }
    fn block(&self, index: u32) -> Option<G::Block> {
        Chain::block(self, index).cloned()
    }
    fn height(&self) -> u32 {
        Chain::height(self)
    }
    fn header_by_hash(&self, hash: &UInt256) -> Option<G::Header> {
        Chain::header_by_hash(self, hash).cloned()
    }
    fn block_by_hash(&self, hash: &UInt256) -> Option<G::Block> {
        Chain::block_by_hash(self, hash).cloned()
    }
    fn transaction(&self, hash: &UInt256) -> Option<G::Transaction> {
        Chain::transaction(self, hash).cloned()
    }
}
