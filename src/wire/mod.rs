//! Sans-I/O codecs for both NEO wire generations: bytes in, typed messages out.
//!
//! Nothing in this module does I/O, spawns or waits. [`legacy`] speaks NEO 2.x
//! (24-byte frames with magic and checksum), [`n3`] speaks Neo N3 (flags,
//! command byte, var-bytes payload, optional LZ4). Both share the primitives
//! defined here: [`Reader`] for decoding (zero-copy, every length checked
//! before it is used), [`WriteExt`] for encoding into a [`bytes::BytesMut`],
//! [`UInt160`]/[`UInt256`] and the hash functions.

mod codec;
mod error;
mod filter;
mod hash;
pub mod legacy;
mod limits;
pub mod n3;

pub use codec::{
    Decode, Encode, MAX_ARRAY_DEFAULT, Reader, WriteExt, encode_vec, var_bytes_size, var_int_size,
    vec_size,
};
pub use error::{DecodeError, FrameError};
pub use filter::{
    FilterAddPayload, FilterLoadPayload, MAX_FILTER_ADD, MAX_FILTER_HASH_FUNCTIONS, MAX_FILTER_SIZE,
};
pub use hash::{
    ADDRESS_VERSION_LEGACY, ADDRESS_VERSION_N3, AddressError, ParseHashError, UInt160, UInt256,
    check_tx_hashes, from_address, hash160, hash256, merkle_root, sha256, to_address,
};
pub use limits::{
    MAX_FILTERADD_PAYLOAD, MAX_FILTERLOAD_PAYLOAD, MAX_UNKNOWN_PAYLOAD, PING_PAYLOAD,
    PayloadLimits, VAR_INT_MAX,
};

use bytes::{Bytes, BytesMut};

/// Largest payload either generation accepts in one message (`0x02000000`, 32 MiB),
/// on the wire and, for N3, after decompression.
pub const MAX_PAYLOAD: usize = 0x0200_0000;

/// Payload of `ping` and `pong` (12 bytes), the same in both generations.
///
/// A node answers `ping` with `pong` carrying its own height; the nonce is
/// not checked by anyone (the C# nodes copy the ping's, neo-go puts its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PingPayload {
    /// Height of the sender's chain.
    pub last_block_index: u32,
    /// Unix time in seconds.
    pub timestamp: u32,
    /// A random number.
    pub nonce: u32,
}

impl Decode for PingPayload {
    const NAME: &'static str = "ping";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PingPayload {
            last_block_index: r.u32("ping.last_block_index")?,
            timestamp: r.u32("ping.timestamp")?,
            nonce: r.u32("ping.nonce")?,
        })
    }
}

impl Encode for PingPayload {
    fn encode(&self, out: &mut BytesMut) {
        use bytes::BufMut;
        out.put_u32_le(self.last_block_index);
        out.put_u32_le(self.timestamp);
        out.put_u32_le(self.nonce);
    }
    fn size(&self) -> usize {
        12
    }
}

/// A witness: the invocation script (signatures) and the verification script.
///
/// Both generations encode it as two var-bytes; they differ only in the
/// maximum script size, so the decoder takes it as an argument.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Witness {
    /// Invocation script (pushes the signatures).
    pub invocation: Bytes,
    /// Verification script (checks them).
    pub verification: Bytes,
}

impl Witness {
    /// Reads a witness whose scripts are at most `max_script` bytes each.
    pub fn decode_limited(r: &mut Reader, max_script: u64) -> Result<Self, DecodeError> {
        Ok(Witness {
            invocation: r.var_bytes(max_script, "witness.invocation")?,
            verification: r.var_bytes(max_script, "witness.verification")?,
        })
    }

    /// Script hash of the verification script (`Hash160`).
    pub fn script_hash(&self) -> UInt160 {
        hash160(&self.verification)
    }
}

impl Encode for Witness {
    fn encode(&self, out: &mut BytesMut) {
        out.put_var_bytes(&self.invocation);
        out.put_var_bytes(&self.verification);
    }
    fn size(&self) -> usize {
        var_bytes_size(self.invocation.len()) + var_bytes_size(self.verification.len())
    }
}
