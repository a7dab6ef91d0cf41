//! A chain store of the tests' own, the way a node would serve from its
//! database: plain vectors and maps filled from a chain, read through
//! `ChainStore` and nothing else.

use std::collections::HashMap;

use neo_peer::chain::{Chain, ChainStore, Generation};
use neo_peer::wire::UInt256;

/// Headers, hashes, blocks and transactions, copied out of a chain.
pub struct TinyStore<G: Generation> {
    headers: Vec<G::Header>,
    hashes: Vec<UInt256>,
    blocks: Vec<G::Block>,
    heights: HashMap<UInt256, u32>,
    txs: HashMap<UInt256, G::Transaction>,
}

impl<G: Generation> TinyStore<G> {
    /// What `chain` holds now.
    pub fn copy_of(chain: &Chain<G>) -> Self {
        let mut txs = HashMap::new();
        for block in chain.blocks() {
            for tx in G::block_transactions(block) {
                txs.entry(G::tx_hash(tx)).or_insert_with(|| tx.clone());
            }
        }
        TinyStore {
            headers: chain.headers().cloned().collect(),
            hashes: chain.hashes().collect(),
            blocks: chain.blocks().cloned().collect(),
            heights: chain.hashes().zip(0..).collect(),
            txs,
        }
    }
}

impl<G: Generation> ChainStore<G> for TinyStore<G> {
    fn tip(&self) -> (u32, UInt256) {
        let last = self.hashes.len() - 1;
        (last as u32, self.hashes[last])
    }
    fn block_height(&self) -> Option<u32> {
        self.blocks.len().checked_sub(1).map(|h| h as u32)
    }
    fn hash(&self, index: u32) -> Option<UInt256> {
        self.hashes.get(index as usize).copied()
    }
    fn index_of(&self, hash: &UInt256) -> Option<u32> {
        self.heights.get(hash).copied()
    }
    fn header(&self, index: u32) -> Option<G::Header> {
        self.headers.get(index as usize).cloned()
    }
    fn block(&self, index: u32) -> Option<G::Block> {
        self.blocks.get(index as usize).cloned()
    }
    fn transaction(&self, hash: &UInt256) -> Option<G::Transaction> {
        self.txs.get(hash).cloned()
    }
}
