//! The `headers` payload, kept as the bytes it arrived in.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::block::{HeaderLayout, MIN_HEADER_SIZE};
use super::tx::check_count;
use super::{Header, MAX_HEADERS};
use crate::wire::{Decode, DecodeError, Encode, Reader, UInt256, WriteExt};

/// `headers` (0x21): 1..=2000 consecutive headers.
///
/// The payload keeps the bytes it was decoded from. Decoding checks every
/// header as [`Header`] decoding does, and notes where each one lies; a
/// [`Header`] is built only when asked for ([`get`](Self::get),
/// [`iter`](Self::iter), [`to_vec`](Self::to_vec)), and
/// [`hash`](Self::hash) hashes the received bytes directly. A header
/// sync that only links and counts headers therefore never builds them, and
/// re-encoding writes back exactly the bytes that were received.
///
/// ```
/// use neo_peer::wire::n3::{Header, HeadersPayload};
/// use neo_peer::wire::{Decode, Encode, UInt160, UInt256, Witness};
///
/// let genesis = Header {
///     version: 0,
///     prev_hash: UInt256::ZERO,
///     merkle_root: UInt256::ZERO,
///     timestamp: 1_468_595_301_000,
///     nonce: 2_083_236_893,
///     index: 0,
///     primary_index: 0,
///     next_consensus: UInt160([0; 20]),
///     witness: Witness { invocation: vec![].into(), verification: vec![0x11].into() },
/// };
/// let payload = HeadersPayload::new(&[genesis.clone()]);
/// assert_eq!(payload.len(), 1);
/// assert_eq!(payload.hash(0), Some(genesis.hash()));
///
/// let again = HeadersPayload::decode_exact(payload.to_bytes()).unwrap();
/// assert_eq!(again.get(0), Some(genesis));
/// assert_eq!(again.last_index(), Some(0));
/// ```
#[derive(Clone)]
pub struct HeadersPayload {
    /// The encoded payload: the count, then the headers.
    raw: Bytes,
    /// Where each header lies in `raw`.
    layouts: Vec<HeaderLayout>,
}

impl HeadersPayload {
    /// Encodes `headers`. Nothing is checked: see [`HeadersPayload::validate`].
    pub fn new(headers: &[Header]) -> Self {
        let mut raw = BytesMut::with_capacity(
            crate::wire::var_int_size(headers.len() as u64)
                + headers.iter().map(Encode::size).sum::<usize>(),
        );
        raw.put_var_int(headers.len() as u64);
        let layouts = headers
            .iter()
            .map(|h| {
                let layout = HeaderLayout::of(h, raw.len());
                h.encode(&mut raw);
                layout
            })
            .collect();
        HeadersPayload {
            raw: raw.freeze(),
            layouts,
        }
    }

    /// Checks what decoding checks (1 to 2000 headers, each a valid header).
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_count("headers", self.len(), 1, MAX_HEADERS)?;
        self.layouts.iter().try_for_each(|l| l.validate(&self.raw))
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.layouts.len()
    }

    /// Whether there are none (never so for a decoded payload).
    pub fn is_empty(&self) -> bool {
        self.layouts.is_empty()
    }

    /// Header `i`, built from the bytes (its scripts share them).
    pub fn get(&self, i: usize) -> Option<Header> {
        self.layouts.get(i).map(|l| l.header(&self.raw))
    }

    /// The headers, each built as it is reached.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Header> + DoubleEndedIterator + '_ {
        self.layouts.iter().map(|l| l.header(&self.raw))
    }

    /// All the headers, built.
    pub fn to_vec(&self) -> Vec<Header> {
        self.iter().collect()
    }

    /// The hash of header `i`, computed from its bytes (cheaper than
    /// building the header and calling [`Header::hash`], which encodes it
    /// again first).
    pub fn hash(&self, i: usize) -> Option<UInt256> {
        self.layouts.get(i).map(|l| l.hash(&self.raw))
    }

    /// The hashes of all the headers, in order.
    pub fn hashes(&self) -> impl ExactSizeIterator<Item = UInt256> + DoubleEndedIterator + '_ {
        self.layouts.iter().map(|l| l.hash(&self.raw))
    }

    /// The heights of the headers, in order, read without building them.
    pub fn indices(&self) -> impl ExactSizeIterator<Item = u32> + DoubleEndedIterator + '_ {
        self.layouts.iter().map(|l| l.index(&self.raw))
    }

    /// The height of the first header.
    pub fn first_index(&self) -> Option<u32> {
        self.indices().next()
    }

    /// The height of the last header.
    pub fn last_index(&self) -> Option<u32> {
        self.indices().next_back()
    }

    /// The encoded payload (what [`Encode`] writes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The encoded payload, shared (no copy).
    pub fn bytes(&self) -> &Bytes {
        &self.raw
    }
}

impl From<Vec<Header>> for HeadersPayload {
    fn from(headers: Vec<Header>) -> Self {
        HeadersPayload::new(&headers)
    }
}

impl From<&[Header]> for HeadersPayload {
    fn from(headers: &[Header]) -> Self {
        HeadersPayload::new(headers)
    }
}

/// Equal when they hold equal headers (however their var-ints were written).
impl PartialEq for HeadersPayload {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw || (self.len() == other.len() && self.iter().eq(other.iter()))
    }
}

impl Eq for HeadersPayload {}

impl fmt::Debug for HeadersPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeadersPayload")
            .field("headers", &self.to_vec())
            .finish()
    }
}

impl Decode for HeadersPayload {
    const NAME: &'static str = "headers";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let begin = r.position();
        let n = r.count(MAX_HEADERS as u64, MIN_HEADER_SIZE, "headers")?;
        check_count("headers", n, 1, MAX_HEADERS)?;
        let mut layouts = Vec::with_capacity(n);
        for _ in 0..n {
            layouts.push(HeaderLayout::read(r)?.moved(begin, 0));
        }
        Ok(HeadersPayload {
            raw: r.buffer().slice(begin..r.position()),
            layouts,
        })
    }
}

impl Encode for HeadersPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.raw);
    }
    fn size(&self) -> usize {
        self.raw.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{UInt160, Witness};

    fn header(index: u32, invocation: usize) -> Header {
        Header {
            version: 0,
            prev_hash: UInt256([index as u8; 32]),
            merkle_root: UInt256([0xAB; 32]),
            timestamp: 1_700_000_000_000 + u64::from(index),
            nonce: u64::from(index) << 40 | 7,
            index,
            primary_index: (index % 7) as u8,
            next_consensus: UInt160([9; 20]),
            witness: Witness {
                invocation: vec![0x0C; invocation].into(),
                verification: vec![0x41; 40].into(),
            },
        }
    }

    #[test]
    fn built_decoded_and_owned_forms_agree() {
        // Script lengths on both sides of the one-byte var-int form.
        let headers: Vec<Header> = (0..5)
            .map(|i| header(i, [0, 1, 0xFC, 0xFD, 1024][i as usize]))
            .collect();
        let built = HeadersPayload::new(&headers);
        let mut wire = BytesMut::new();
        crate::wire::encode_vec(&headers, &mut wire);
        assert_eq!(
            built.as_bytes(),
            &wire[..],
            "same bytes as encoding each header"
        );
        built.validate().unwrap();

        let decoded = HeadersPayload::decode_exact(wire.freeze()).unwrap();
        for p in [&built, &decoded] {
            assert_eq!(p.to_vec(), headers);
            assert_eq!(p.len(), 5);
            assert_eq!(p.first_index(), Some(0));
            assert_eq!(p.last_index(), Some(4));
            assert!(p.indices().eq(0..5));
            let hashes: Vec<UInt256> = headers.iter().map(Header::hash).collect();
            assert_eq!(p.hashes().collect::<Vec<_>>(), hashes);
            assert_eq!(p.hash(4), Some(hashes[4]));
            assert_eq!(p.hash(5), None);
            assert_eq!(p.get(5), None);
            assert_eq!(p.iter().next_back().as_ref(), headers.last());
        }
        assert_eq!(built, decoded);
    }

    #[test]
    fn non_canonical_var_ints_are_kept_and_still_equal() {
        let h = header(3, 2);
        let canonical = HeadersPayload::new(std::slice::from_ref(&h));
        // The count written as 0xFD 0x01 0x00 instead of 0x01.
        let mut wide = vec![0xFD, 0x01, 0x00];
        wide.extend_from_slice(&canonical.as_bytes()[1..]);
        let decoded = HeadersPayload::decode_exact(Bytes::from(wide.clone())).unwrap();
        assert_eq!(decoded.get(0), Some(h));
        assert_eq!(decoded, canonical);
        assert_eq!(decoded.to_bytes(), wide, "re-encoding gives back what came");
    }

    #[test]
    fn a_built_payload_that_decoding_would_refuse_fails_validate() {
        let mut bad = header(1, 2);
        bad.version = 1;
        let p = HeadersPayload::new(&[header(0, 2), bad.clone()]);
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            Header::decode_exact(bad.to_bytes())
                .unwrap_err()
                .to_string()
        );
        // Building it does not check, and reading it back does not either.
        assert_eq!(p.get(1), Some(bad));
        let mut long = header(2, 1025);
        let p = HeadersPayload::new(std::slice::from_ref(&long));
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            long.validate().unwrap_err().to_string()
        );
        long.witness.invocation = vec![0; 1024].into();
        long.witness.verification = vec![0; 1025].into();
        let p = HeadersPayload::new(std::slice::from_ref(&long));
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("verification"), "{err}");
        assert!(HeadersPayload::new(&[]).validate().is_err());
        let many = vec![header(0, 0); MAX_HEADERS + 1];
        assert!(HeadersPayload::new(&many).validate().is_err());
    }
}
