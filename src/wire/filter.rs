//! Bloom filter messages (`filterload`, `filteradd`): the same layout and
//! limits in both generations. Only the C# nodes use them (SPV clients);
//! neo-go disconnects a peer that sends them.

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::{Decode, Encode, Reader, WriteExt, var_bytes_size};
use super::error::DecodeError;

/// Largest bloom filter in a `filterload`, in bytes.
pub const MAX_FILTER_SIZE: usize = 36_000;
/// Most hash functions of a bloom filter.
pub const MAX_FILTER_HASH_FUNCTIONS: u8 = 50;
/// Longest element of a `filteradd`, in bytes.
pub const MAX_FILTER_ADD: usize = 520;

fn at_most(what: &'static str, n: usize, max: usize) -> Result<(), DecodeError> {
    if n > max {
        return Err(DecodeError::TooMany {
            what,
            count: n as u64,
            max: max as u64,
        });
    }
    Ok(())
}

/// Payload of `filterload`: installs a bloom filter on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterLoadPayload {
    /// The filter bits (at most [`MAX_FILTER_SIZE`] bytes).
    pub filter: Bytes,
    /// Number of hash functions (at most [`MAX_FILTER_HASH_FUNCTIONS`]).
    pub k: u8,
    /// Seed of the hash functions.
    pub tweak: u32,
}

impl FilterLoadPayload {
    /// Checks what decoding checks (for a payload built by hand).
    pub fn validate(&self) -> Result<(), DecodeError> {
        at_most("filterload.filter", self.filter.len(), MAX_FILTER_SIZE)?;
        at_most(
            "filterload.k",
            self.k.into(),
            MAX_FILTER_HASH_FUNCTIONS.into(),
        )
    }
}

impl Decode for FilterLoadPayload {
    const NAME: &'static str = "filterload";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let p = FilterLoadPayload {
            filter: r.var_bytes(MAX_FILTER_SIZE as u64, "filterload.filter")?,
            k: r.u8("filterload.k")?,
            tweak: r.u32("filterload.tweak")?,
        };
        p.validate()?;
        Ok(p)
    }
}

impl Encode for FilterLoadPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_var_bytes(&self.filter);
        out.put_u8(self.k);
        out.put_u32_le(self.tweak);
    }
    fn size(&self) -> usize {
        var_bytes_size(self.filter.len()) + 5
    }
}

/// Payload of `filteradd`: adds an element to the connection's bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterAddPayload {
    /// The element (at most [`MAX_FILTER_ADD`] bytes).
    pub data: Bytes,
}

impl FilterAddPayload {
    /// Checks what decoding checks (for a payload built by hand).
    pub fn validate(&self) -> Result<(), DecodeError> {
        at_most("filteradd.data", self.data.len(), MAX_FILTER_ADD)
    }
}

impl Decode for FilterAddPayload {
    const NAME: &'static str = "filteradd";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FilterAddPayload {
            data: r.var_bytes(MAX_FILTER_ADD as u64, "filteradd.data")?,
        })
    }
}

impl Encode for FilterAddPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_var_bytes(&self.data);
    }
    fn size(&self) -> usize {
        var_bytes_size(self.data.len())
    }
}
