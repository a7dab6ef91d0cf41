//! Block headers and blocks.

use bytes::{BufMut, BytesMut};

use super::tx::{MIN_TX_SIZE, check_count, decode_witness, validate_witness};
use super::{MAX_TRANSACTIONS_PER_BLOCK, Transaction};
use crate::wire::{
    Decode, DecodeError, Encode, Reader, UInt160, UInt256, Witness, check_tx_hashes, encode_vec,
    merkle_root, sha256, vec_size,
};

/// Length of the hashed (unsigned) part of a header.
pub const HEADER_UNSIGNED_SIZE: usize = 4 + 32 + 32 + 8 + 8 + 4 + 1 + 20;

/// Smallest encoded header: the unsigned part, the count byte and two empty scripts.
pub(crate) const MIN_HEADER_SIZE: usize = HEADER_UNSIGNED_SIZE + 3;

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version (must be 0).
    pub version: u32,
    /// Hash of the previous block.
    pub prev_hash: UInt256,
    /// Merkle root of the block's transaction hashes.
    pub merkle_root: UInt256,
    /// Time of the block, in **milliseconds** since the Unix epoch.
    pub timestamp: u64,
    /// Random number chosen by the primary.
    pub nonce: u64,
    /// Height.
    pub index: u32,
    /// Index of the consensus primary that proposed the block.
    pub primary_index: u8,
    /// Script hash of the validators of the next block.
    pub next_consensus: UInt160,
    /// The single witness (on the wire: an array whose count must be 1).
    pub witness: Witness,
}

impl Header {
    /// The 109 bytes that are hashed (every field but the witness).
    pub fn unsigned_bytes(&self) -> [u8; HEADER_UNSIGNED_SIZE] {
        let mut b = [0u8; HEADER_UNSIGNED_SIZE];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(&self.prev_hash.0);
        b[36..68].copy_from_slice(&self.merkle_root.0);
        b[68..76].copy_from_slice(&self.timestamp.to_le_bytes());
        b[76..84].copy_from_slice(&self.nonce.to_le_bytes());
        b[84..88].copy_from_slice(&self.index.to_le_bytes());
        b[88] = self.primary_index;
        b[89..109].copy_from_slice(&self.next_consensus.0);
        b
    }

    /// The block hash: SHA-256 of the unsigned part.
    pub fn hash(&self) -> UInt256 {
        UInt256(sha256(&self.unsigned_bytes()))
    }

    /// Checks what decoding checks, for a header built by hand.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_header_version(self.version)?;
        validate_witness(&self.witness)
    }
}

fn check_header_version(version: u32) -> Result<(), DecodeError> {
    if version != 0 {
        return Err(DecodeError::InvalidValue {
            what: "header.version",
            value: version.into(),
        });
    }
    Ok(())
}

impl Decode for Header {
    const NAME: &'static str = "header";

    #[inline]
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        // A short header fails as a whole, before any field is read.
        r.need(HEADER_UNSIGNED_SIZE, "header")?;
        let version = r.u32("header.version")?;
        check_header_version(version)?;
        let prev_hash = r.uint256("header.prev_hash")?;
        let merkle_root = r.uint256("header.merkle_root")?;
        let timestamp = r.u64("header.timestamp")?;
        let nonce = r.u64("header.nonce")?;
        let index = r.u32("header.index")?;
        let primary_index = r.u8("header.primary_index")?;
        let next_consensus = r.uint160("header.next_consensus")?;
        let count = r.var_int(u64::MAX, "header.witnesses")?;
        if count != 1 {
            return Err(DecodeError::Invalid {
                what: "header.witnesses",
                reason: "witness count must be exactly 1",
            });
        }
        Ok(Header {
            version,
            prev_hash,
            merkle_root,
            timestamp,
            nonce,
            index,
            primary_index,
            next_consensus,
            witness: decode_witness(r)?,
        })
    }
}

impl Encode for Header {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.unsigned_bytes());
        out.put_u8(1);
        self.witness.encode(out);
    }

    fn size(&self) -> usize {
        HEADER_UNSIGNED_SIZE + 1 + self.witness.size()
    }
}

/// A block: a header and its transactions.
///
/// Decoding does not compute hashes, so it does not check the Merkle root:
/// call [`Block::check`] (or [`Block::merkle_root_ok`]) before trusting a
/// block. A peer must treat a block that fails it as invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// At most 65535 transactions.
    pub transactions: Vec<Transaction>,
}

impl Block {
    /// The block hash (the header's).
    pub fn hash(&self) -> UInt256 {
        self.header.hash()
    }

    /// Hashes of the transactions, in order.
    pub fn tx_hashes(&self) -> Vec<UInt256> {
        self.transactions.iter().map(Transaction::hash).collect()
    }

    /// True if the header's Merkle root is that of the transaction hashes.
    pub fn merkle_root_ok(&self) -> bool {
        merkle_root(&self.tx_hashes()) == self.header.merkle_root
    }

    /// The checks the reference node makes while decoding a block: no two
    /// transactions with the same hash, and the Merkle root matches.
    pub fn check(&self) -> Result<(), DecodeError> {
        check_tx_hashes(&self.tx_hashes(), &self.header.merkle_root)
    }

    /// Checks what decoding checks, for a block built by hand.
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.header.validate()?;
        check_count(
            "block.transactions",
            self.transactions.len(),
            0,
            MAX_TRANSACTIONS_PER_BLOCK,
        )?;
        self.transactions.iter().try_for_each(Transaction::validate)
    }
}

impl Decode for Block {
    const NAME: &'static str = "block";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let header = Header::decode(r)?;
        let transactions = r.vec(
            MAX_TRANSACTIONS_PER_BLOCK as u64,
            MIN_TX_SIZE,
            "block.transactions",
            Transaction::decode,
        )?;
        Ok(Block {
            header,
            transactions,
        })
    }
}

impl Encode for Block {
    fn encode(&self, out: &mut BytesMut) {
        self.header.encode(out);
        encode_vec(&self.transactions, out);
    }

    fn size(&self) -> usize {
        self.header.size() + vec_size(&self.transactions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::n3::MAINNET_GENESIS_HASH;

    #[test]
    fn genesis_constant_matches_its_text() {
        assert_eq!(
            MAINNET_GENESIS_HASH.to_string(),
            "0x1f4d1defa46faa5e7b9b8d3f79a06bec777d7c26c4aa5f6f5899a291daa87c15"
        );
    }

    #[test]
    fn unsigned_part_is_109_bytes_of_the_encoding() {
        let h = Header {
            version: 0,
            prev_hash: UInt256([1; 32]),
            merkle_root: UInt256([2; 32]),
            timestamp: 3,
            nonce: 4,
            index: 5,
            primary_index: 6,
            next_consensus: UInt160([7; 20]),
            witness: Witness::default(),
        };
        let enc = h.to_bytes();
        assert_eq!(enc.len(), HEADER_UNSIGNED_SIZE + 3);
        assert_eq!(&enc[..HEADER_UNSIGNED_SIZE], &h.unsigned_bytes()[..]);
        assert_eq!(h.hash().0, sha256(&enc[..HEADER_UNSIGNED_SIZE]));
        assert_eq!(Header::decode_exact(enc).unwrap(), h);
    }
}
