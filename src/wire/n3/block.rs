//! Block headers and blocks.

use bytes::{BufMut, Bytes, BytesMut};

use super::tx::{MIN_TX_SIZE, check_count, validate_script_lengths, validate_witness};
use super::{
    MAX_INVOCATION_SCRIPT, MAX_TRANSACTIONS_PER_BLOCK, MAX_VERIFICATION_SCRIPT, Transaction,
};
use crate::wire::{
    Decode, DecodeError, Encode, Reader, UInt160, UInt256, Witness, check_tx_hashes, encode_vec,
    merkle_root, sha256, var_int_size, vec_size,
};

/// Length of the hashed (unsigned) part of a header.
pub const HEADER_UNSIGNED_SIZE: usize = 4 + 32 + 32 + 8 + 8 + 4 + 1 + 20;

/// Smallest encoded header: the unsigned part, the count byte and two empty scripts.
pub(crate) const MIN_HEADER_SIZE: usize = HEADER_UNSIGNED_SIZE + 3;

/// A block header.
///
/// Its fields are public; [`Header::index`] and [`Header::prev_hash`] also
/// read them the way a Legacy [`crate::wire::legacy::Header`] (whose fields
/// sit in `base`) is read, so code written for one generation reads the
/// other.
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
    ///
    /// The part is encoded first. For headers that came in a `headers`
    /// message, [`HeadersPayload::hashes`](super::HeadersPayload::hashes)
    /// hashes the received bytes instead, which is cheaper.
    pub fn hash(&self) -> UInt256 {
        UInt256(sha256(&self.unsigned_bytes()))
    }

    /// The height (the `index` field), as a Legacy header reads it.
    #[inline]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The hash of the block before (the `prev_hash` field).
    #[inline]
    pub fn prev_hash(&self) -> UInt256 {
        self.prev_hash
    }

    /// The header whose unsigned part is `b`, with `witness`. Nothing is checked.
    fn from_unsigned(b: &[u8; HEADER_UNSIGNED_SIZE], witness: Witness) -> Header {
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&b[4..36]);
        let mut merkle_root = [0u8; 32];
        merkle_root.copy_from_slice(&b[36..68]);
        let mut next_consensus = [0u8; 20];
        next_consensus.copy_from_slice(&b[89..109]);
        let mut u64_at = [0u8; 8];
        u64_at.copy_from_slice(&b[68..76]);
        let timestamp = u64::from_le_bytes(u64_at);
        u64_at.copy_from_slice(&b[76..84]);
        let nonce = u64::from_le_bytes(u64_at);
        Header {
            version: u32_at(b, 0),
            prev_hash: UInt256(prev_hash),
            merkle_root: UInt256(merkle_root),
            timestamp,
            nonce,
            index: u32_at(b, 84),
            primary_index: b[88],
            next_consensus: UInt160(next_consensus),
            witness,
        }
    }

    /// Checks what decoding checks, for a header built by hand.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_header_version(self.version)?;
        validate_witness(&self.witness)
    }
}

/// The little-endian `u32` at `at`.
#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
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
        let layout = HeaderLayout::read(r)?;
        Ok(layout.header(r.buffer()))
    }
}

/// Where the parts of one encoded header lie in a buffer: found by
/// [`HeaderLayout::read`], which checks all that decoding a header checks, so
/// that a header can be built, or hashed, from the buffer later without
/// checking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderLayout {
    /// Offset of the header (its unsigned part comes first).
    start: usize,
    /// Offset and length of the invocation script.
    invocation: (usize, usize),
    /// Offset and length of the verification script.
    verification: (usize, usize),
}

impl HeaderLayout {
    /// Checks the header at the read position and moves past it.
    #[inline]
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        match Self::read_common(r.rest()) {
            Some((layout, len)) => {
                let start = r.position();
                r.skip(len, "header")?;
                Ok(layout.moved(0, start))
            }
            None => Self::read_any(r),
        }
    }

    /// The layout of the header at the start of `b`, and its length, when it
    /// takes the common form: a valid header whose var-ints are one byte, or
    /// three for a script length. `None` for anything else, valid or not,
    /// which [`HeaderLayout::read_any`] then reads.
    #[inline]
    fn read_common(b: &[u8]) -> Option<(Self, usize)> {
        let script = |at: usize, max: usize| -> Option<(usize, usize)> {
            let (len, from) = match *b.get(at)? {
                n @ 0..0xFD => (usize::from(n), at + 1),
                0xFD => (
                    usize::from(u16::from_le_bytes([*b.get(at + 1)?, *b.get(at + 2)?])),
                    at + 3,
                ),
                _ => return None,
            };
            (len <= max && from + len <= b.len()).then_some((from, len))
        };
        let version = b.get(..4)?;
        if version != [0; 4] || *b.get(HEADER_UNSIGNED_SIZE)? != 1 {
            return None;
        }
        let invocation = script(HEADER_UNSIGNED_SIZE + 1, MAX_INVOCATION_SCRIPT)?;
        let verification = script(invocation.0 + invocation.1, MAX_VERIFICATION_SCRIPT)?;
        let layout = HeaderLayout {
            start: 0,
            invocation,
            verification,
        };
        Some((layout, verification.0 + verification.1))
    }

    /// Checks the header at the read position, in any form, and moves past it.
    fn read_any(r: &mut Reader) -> Result<Self, DecodeError> {
        let start = r.position();
        // A short header fails as a whole, before any field is read.
        r.need(HEADER_UNSIGNED_SIZE, "header")?;
        check_header_version(r.u32("header.version")?)?;
        r.skip(HEADER_UNSIGNED_SIZE - 4, "header")?;
        let count = r.var_int(u64::MAX, "header.witnesses")?;
        if count != 1 {
            return Err(DecodeError::Invalid {
                what: "header.witnesses",
                reason: "witness count must be exactly 1",
            });
        }
        let invocation = r.skip_var_bytes(MAX_INVOCATION_SCRIPT as u64, "witness.invocation")?;
        let verification =
            r.skip_var_bytes(MAX_VERIFICATION_SCRIPT as u64, "witness.verification")?;
        Ok(HeaderLayout {
            start,
            invocation,
            verification,
        })
    }

    /// The layout of `header` once encoded at `start`.
    pub(crate) fn of(header: &Header, start: usize) -> Self {
        let invocation = header.witness.invocation.len();
        let verification = header.witness.verification.len();
        let invocation_at = start + HEADER_UNSIGNED_SIZE + 1 + var_int_size(invocation as u64);
        let verification_at = invocation_at + invocation + var_int_size(verification as u64);
        HeaderLayout {
            start,
            invocation: (invocation_at, invocation),
            verification: (verification_at, verification),
        }
    }

    /// The same layout with its offsets counted from `to` instead of `from`
    /// (`from` at most `start`).
    #[inline]
    pub(crate) fn moved(self, from: usize, to: usize) -> Self {
        let at = |offset: usize| offset - from + to;
        HeaderLayout {
            start: at(self.start),
            invocation: (at(self.invocation.0), self.invocation.1),
            verification: (at(self.verification.0), self.verification.1),
        }
    }

    /// The unsigned part: what the hash covers.
    #[inline]
    pub(crate) fn unsigned<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.start + HEADER_UNSIGNED_SIZE]
    }

    /// The header's hash, from the encoded bytes.
    #[inline]
    pub(crate) fn hash(&self, buf: &[u8]) -> UInt256 {
        UInt256(sha256(self.unsigned(buf)))
    }

    /// Checks what [`Header::validate`] checks, from the encoded bytes.
    pub(crate) fn validate(&self, buf: &[u8]) -> Result<(), DecodeError> {
        check_header_version(u32_at(buf, self.start))?;
        validate_script_lengths(self.invocation.1, self.verification.1)
    }

    /// The header's height, from the encoded bytes.
    pub(crate) fn index(&self, buf: &[u8]) -> u32 {
        u32_at(buf, self.start + 84)
    }

    /// Builds the header; its scripts are slices of `buf`.
    #[inline]
    pub(crate) fn header(&self, buf: &Bytes) -> Header {
        let (fixed, _) = buf[self.start..]
            .split_first_chunk::<HEADER_UNSIGNED_SIZE>()
            .expect("a layout lies within its buffer");
        let (inv, inv_len) = self.invocation;
        let (ver, ver_len) = self.verification;
        Header::from_unsigned(
            fixed,
            Witness {
                invocation: buf.slice(inv..inv + inv_len),
                verification: buf.slice(ver..ver + ver_len),
            },
        )
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

/// Asserts that the fast and the general reading of a header agree on `b`:
/// whenever the fast one takes it, the general one reads the same layout.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_header_forms(b: &[u8]) {
    if let Some((layout, len)) = HeaderLayout::read_common(b) {
        let mut r = Reader::from_slice(b);
        let any = HeaderLayout::read_any(&mut r).map(|l| (l, r.position()));
        assert_eq!(any, Ok((layout, len)), "header forms disagree on {b:02x?}");
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

    /// The height (`header.index`), as [`crate::wire::legacy::Block::index`] reads it.
    #[inline]
    pub fn index(&self) -> u32 {
        self.header.index
    }

    /// The hash of the block before (`header.prev_hash`).
    #[inline]
    pub fn prev_hash(&self) -> UInt256 {
        self.header.prev_hash
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

    /// A header whose scripts are `invocation` and `verification` bytes long.
    fn header(invocation: usize, verification: usize) -> Header {
        Header {
            version: 0,
            prev_hash: UInt256([1; 32]),
            merkle_root: UInt256([2; 32]),
            timestamp: 3,
            nonce: 4,
            index: 5,
            primary_index: 6,
            next_consensus: UInt160([7; 20]),
            witness: Witness {
                invocation: vec![0xAA; invocation].into(),
                verification: vec![0xBB; verification].into(),
            },
        }
    }

    #[test]
    fn accessors_read_as_on_a_legacy_header() {
        let h = header(0, 0);
        assert_eq!((h.index(), h.prev_hash()), (5, UInt256([1; 32])));
        let b = Block {
            header: h,
            transactions: Vec::new(),
        };
        assert_eq!((b.index(), b.prev_hash()), (5, UInt256([1; 32])));
    }

    #[test]
    fn unsigned_part_is_109_bytes_of_the_encoding() {
        let h = header(0, 0);
        let enc = h.to_bytes();
        assert_eq!(enc.len(), HEADER_UNSIGNED_SIZE + 3);
        assert_eq!(&enc[..HEADER_UNSIGNED_SIZE], &h.unsigned_bytes()[..]);
        assert_eq!(h.hash().0, sha256(&enc[..HEADER_UNSIGNED_SIZE]));
        assert_eq!(Header::decode_exact(enc).unwrap(), h);
    }

    fn encoded(invocation: usize, verification: usize) -> Vec<u8> {
        header(invocation, verification).to_bytes().to_vec()
    }

    #[test]
    fn fast_and_general_header_reading_agree() {
        let mut taken = 0;
        for (inv, ver) in [
            (0, 0),
            (2, 1),
            (0xFC, 0xFD),
            (330, 253),
            (1024, 1024),
            (1025, 3),
        ] {
            let good = encoded(inv, ver);
            // Every truncation, with and without trailing bytes.
            for end in 0..=good.len() {
                check_header_forms(&good[..end]);
            }
            let mut longer = good.clone();
            longer.extend_from_slice(&[0xFD, 0xFF]);
            check_header_forms(&longer);
            // Every byte of the fixed part and around each var-int, set to the
            // values that change how a var-int or a check reads.
            let inv_len_at = HEADER_UNSIGNED_SIZE + 1;
            let ver_len_at = inv_len_at + var_int_size(inv as u64) + inv;
            let positions = (0..inv_len_at + 3).chain(ver_len_at.saturating_sub(1)..ver_len_at + 3);
            for at in positions.filter(|&at| at < good.len()) {
                for value in [0, 1, 2, 0x80, 0xFC, 0xFD, 0xFE, 0xFF, good[at] ^ 0x01] {
                    let mut b = good.clone();
                    b[at] = value;
                    check_header_forms(&b);
                    taken += usize::from(HeaderLayout::read_common(&b).is_some());
                }
            }
        }
        assert!(taken > 1000, "the fast path took {taken} of the mutations");
    }

    #[test]
    fn wide_var_ints_go_the_general_way_and_still_decode() {
        // The witness count and the script lengths written in the 0xFE form.
        let good = encoded(2, 1);
        let mut wide = good[..HEADER_UNSIGNED_SIZE].to_vec();
        wide.extend_from_slice(&[0xFE, 1, 0, 0, 0, 0xFE, 2, 0, 0, 0, 0xAA, 0xAA]);
        wide.extend_from_slice(&[0xFE, 1, 0, 0, 0, 0xBB]);
        assert_eq!(HeaderLayout::read_common(&wide), None);
        let h = Header::decode_exact(wide.into()).unwrap();
        assert_eq!(h.to_bytes(), good);
    }
}
