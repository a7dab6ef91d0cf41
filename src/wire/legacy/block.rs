//! Blocks and headers (§7 of the Legacy wire reference).

use bytes::{BufMut, BytesMut};

use super::tx::{Transaction, TransactionType};
use super::{MAX_BLOCK_TXS, MAX_HEADERS, MAX_WITNESS_SCRIPT};
use crate::wire::{
    Decode, DecodeError, Encode, Reader, UInt160, UInt256, Witness, check_tx_hashes, encode_vec,
    hash256, merkle_root, vec_size,
};

/// Length of the hashed part of a block header.
pub const BLOCK_BASE_UNSIGNED_SIZE: usize = 104;

/// The part shared by blocks and headers: seven fixed fields (the 104 hashed
/// bytes), the witness marker `0x01` and the witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockBase {
    /// Format version (0).
    pub version: u32,
    /// Hash of the previous block (zero for genesis).
    pub prev_hash: UInt256,
    /// Merkle root of the transaction hashes.
    pub merkle_root: UInt256,
    /// Unix time in seconds.
    pub timestamp: u32,
    /// Height.
    pub index: u32,
    /// Consensus data, RPC's `nonce`.
    pub consensus_data: u64,
    /// Script hash of the next validators' multi-signature contract.
    pub next_consensus: UInt160,
    /// The validators' signatures.
    pub witness: Witness,
}

impl BlockBase {
    /// The 104 hashed bytes (everything before the witness marker).
    pub fn unsigned_bytes(&self) -> [u8; BLOCK_BASE_UNSIGNED_SIZE] {
        let mut out = [0u8; BLOCK_BASE_UNSIGNED_SIZE];
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4..36].copy_from_slice(&self.prev_hash.0);
        out[36..68].copy_from_slice(&self.merkle_root.0);
        out[68..72].copy_from_slice(&self.timestamp.to_le_bytes());
        out[72..76].copy_from_slice(&self.index.to_le_bytes());
        out[76..84].copy_from_slice(&self.consensus_data.to_le_bytes());
        out[84..104].copy_from_slice(&self.next_consensus.0);
        out
    }

    /// The block hash: `Hash256` of the 104 hashed bytes.
    #[inline]
    pub fn hash(&self) -> UInt256 {
        UInt256(hash256(&self.unsigned_bytes()))
    }
}

impl Decode for BlockBase {
    const NAME: &'static str = "block";

    #[inline]
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let version = r.u32("block.version")?;
        let prev_hash = r.uint256("block.prev_hash")?;
        let merkle_root = r.uint256("block.merkle_root")?;
        let timestamp = r.u32("block.timestamp")?;
        let index = r.u32("block.index")?;
        let consensus_data = r.u64("block.consensus_data")?;
        let next_consensus = r.uint160("block.next_consensus")?;
        let marker = r.u8("block.witness_marker")?;
        if marker != 1 {
            return Err(DecodeError::InvalidValue {
                what: "block.witness_marker",
                value: marker.into(),
            });
        }
        Ok(BlockBase {
            version,
            prev_hash,
            merkle_root,
            timestamp,
            index,
            consensus_data,
            next_consensus,
            witness: Witness::decode_limited(r, MAX_WITNESS_SCRIPT)?,
        })
    }
}

impl Encode for BlockBase {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.unsigned_bytes());
        out.put_u8(1);
        self.witness.encode(out);
    }
    fn size(&self) -> usize {
        BLOCK_BASE_UNSIGNED_SIZE + 1 + self.witness.size()
    }
}

/// A header as `headers` carries it: a [`BlockBase`] followed by `0x00`
/// (the transaction count of a body-less block; any other value is refused).
///
/// The fields live in [`Header::base`]; [`Header::index`],
/// [`Header::prev_hash`] and [`Header::hash`] read the same way as on an N3
/// [`crate::wire::n3::Header`], so code written for one generation reads the
/// other:
///
/// ```
/// # fn show(legacy: &neo_peer::wire::legacy::Header, n3: &neo_peer::wire::n3::Header) {
/// println!("{} {} <- {}", legacy.index(), legacy.hash(), legacy.prev_hash());
/// println!("{} {} <- {}", n3.index(), n3.hash(), n3.prev_hash());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header fields and witness.
    pub base: BlockBase,
}

impl Header {
    /// The block hash.
    #[inline]
    pub fn hash(&self) -> UInt256 {
        self.base.hash()
    }

    /// The height (`base.index`).
    #[inline]
    pub fn index(&self) -> u32 {
        self.base.index
    }

    /// The hash of the block before (`base.prev_hash`; zero for genesis).
    #[inline]
    pub fn prev_hash(&self) -> UInt256 {
        self.base.prev_hash
    }
}

impl From<BlockBase> for Header {
    fn from(base: BlockBase) -> Self {
        Header { base }
    }
}

impl Decode for Header {
    const NAME: &'static str = "header";

    #[inline]
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let base = BlockBase::decode(r)?;
        match r.u8("header.tx_count")? {
            0 => Ok(Header { base }),
            value => Err(DecodeError::InvalidValue {
                what: "header.tx_count",
                value: value.into(),
            }),
        }
    }
}

impl Encode for Header {
    fn encode(&self, out: &mut BytesMut) {
        self.base.encode(out);
        out.put_u8(0);
    }
    fn size(&self) -> usize {
        self.base.size() + 1
    }
}

/// A full block: header fields, witness and 1 to 65535 transactions.
///
/// [`Block::decode`] enforces only the transaction count (and every rule of
/// each transaction). The reference node's other deserialisation checks need
/// every transaction hash, so they are left to [`Block::check`], which a node
/// must call before it trusts a received block: transaction 0 is the only
/// `MinerTransaction`, no transaction appears twice, and the merkle root
/// matches. Keeping them apart lets a tool show any block as it is, and keeps
/// decoding free of hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Header fields and witness.
    pub base: BlockBase,
    /// The transactions; the first one is the `MinerTransaction`.
    pub transactions: Vec<Transaction>,
}

impl Block {
    /// The block hash.
    #[inline]
    pub fn hash(&self) -> UInt256 {
        self.base.hash()
    }

    /// The height (`base.index`), as [`crate::wire::n3::Block::index`] reads it.
    #[inline]
    pub fn index(&self) -> u32 {
        self.base.index
    }

    /// The hash of the block before (`base.prev_hash`; zero for genesis).
    #[inline]
    pub fn prev_hash(&self) -> UInt256 {
        self.base.prev_hash
    }

    /// The header of this block (the block without its transactions).
    pub fn header(&self) -> Header {
        Header {
            base: self.base.clone(),
        }
    }

    /// The transaction hashes, in block order.
    pub fn tx_hashes(&self) -> Vec<UInt256> {
        self.transactions.iter().map(Transaction::hash).collect()
    }

    /// The merkle root computed from the transactions.
    pub fn merkle_root(&self) -> UInt256 {
        merkle_root(&self.tx_hashes())
    }

    /// Whether the header's merkle root matches the transactions.
    pub fn merkle_root_ok(&self) -> bool {
        self.merkle_root() == self.base.merkle_root
    }

    /// The reference node's block deserialisation checks that need hashing:
    /// transaction 0 is a `MinerTransaction` and no other one is, no duplicate
    /// transaction hashes, and the merkle root matches.
    pub fn check(&self) -> Result<(), DecodeError> {
        self.check_hashed(&self.tx_hashes())
    }

    /// [`Block::check`] with the transaction hashes already computed, in
    /// order (for a caller that needs them too).
    pub fn check_hashed(&self, tx_hashes: &[UInt256]) -> Result<(), DecodeError> {
        let mut types = self.transactions.iter().map(Transaction::tx_type);
        if types.next() != Some(TransactionType::Miner) {
            return Err(DecodeError::Invalid {
                what: "block.transactions",
                reason: "the first transaction is not a MinerTransaction",
            });
        }
        if types.any(|t| t == TransactionType::Miner) {
            return Err(DecodeError::Invalid {
                what: "block.transactions",
                reason: "more than one MinerTransaction",
            });
        }
        check_tx_hashes(tx_hashes, &self.base.merkle_root)
    }
}

impl Decode for Block {
    const NAME: &'static str = "block";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let base = BlockBase::decode(r)?;
        let transactions = r.vec(MAX_BLOCK_TXS, 6, "block.transactions", Transaction::decode)?;
        if transactions.is_empty() {
            return Err(DecodeError::TooFew {
                what: "block.transactions",
                count: 0,
                min: 1,
            });
        }
        Ok(Block { base, transactions })
    }
}

impl Encode for Block {
    fn encode(&self, out: &mut BytesMut) {
        self.base.encode(out);
        encode_vec(&self.transactions, out);
    }
    fn size(&self) -> usize {
        self.base.size() + vec_size(&self.transactions)
    }
}

/// Payload of `headers`: at most 2000 headers (possibly none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeadersPayload {
    /// The headers, in the order sent.
    pub headers: Vec<Header>,
}

/// The same readers as the N3 `headers` payload has, so code that handles
/// both generations reads them alike.
impl HeadersPayload {
    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Header `i`.
    pub fn get(&self, i: usize) -> Option<Header> {
        self.headers.get(i).cloned()
    }

    /// All the headers.
    pub fn to_vec(&self) -> Vec<Header> {
        self.headers.clone()
    }

    /// The hashes of the headers, in order.
    pub fn hashes(&self) -> impl ExactSizeIterator<Item = UInt256> + DoubleEndedIterator + '_ {
        self.headers.iter().map(Header::hash)
    }

    /// The heights of the headers, in order.
    pub fn indices(&self) -> impl ExactSizeIterator<Item = u32> + DoubleEndedIterator + '_ {
        self.headers.iter().map(|h| h.base.index)
    }

    /// The height of the first header.
    pub fn first_index(&self) -> Option<u32> {
        self.indices().next()
    }

    /// The height of the last header.
    pub fn last_index(&self) -> Option<u32> {
        self.indices().next_back()
    }
}

impl From<Vec<Header>> for HeadersPayload {
    fn from(headers: Vec<Header>) -> Self {
        HeadersPayload { headers }
    }
}

impl Decode for HeadersPayload {
    const NAME: &'static str = "headers";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        // smallest header: 104 + marker + two empty scripts + 0x00
        let headers = r.vec(MAX_HEADERS, 108, "headers", Header::decode)?;
        Ok(HeadersPayload { headers })
    }
}

impl Encode for HeadersPayload {
    fn encode(&self, out: &mut BytesMut) {
        encode_vec(&self.headers, out);
    }
    fn size(&self) -> usize {
        vec_size(&self.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_read_as_on_an_n3_header() {
        let base = BlockBase {
            version: 0,
            prev_hash: UInt256([1; 32]),
            merkle_root: UInt256([2; 32]),
            timestamp: 3,
            index: 5,
            consensus_data: 6,
            next_consensus: UInt160([7; 20]),
            witness: Witness::default(),
        };
        let h = Header::from(base.clone());
        assert_eq!((h.index(), h.prev_hash()), (5, UInt256([1; 32])));
        let b = Block {
            base,
            transactions: Vec::new(),
        };
        assert_eq!(
            (b.index(), b.prev_hash(), b.hash()),
            (5, UInt256([1; 32]), h.hash())
        );
    }
}
