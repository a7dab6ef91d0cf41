//! Sans-I/O codecs for both NEO wire generations: bytes in, typed messages out.
//!
//! Nothing in this module does I/O, spawns or waits. [`legacy`] speaks NEO 2.x
//! (24-byte frames with magic and checksum), [`n3`] speaks Neo N3 (flags,
//! command byte, var-bytes payload, optional LZ4). Both share the primitives
//! defined here: [`Reader`] for decoding (zero-copy, every length checked
//! before it is used), [`WriteExt`] for encoding into a [`bytes::BytesMut`],
//! [`UInt160`]/[`UInt256`] and the hash functions.
//!
//! # Payload limits
//!
//! Both frame headers name the command before the payload, so each codec
//! holds every frame to two caps as soon as its header is there, before a
//! byte of its payload is buffered or any room reserved for it:
//!
//! - the frame cap, [`MAX_PAYLOAD`] (32 MiB, both reference nodes' limit),
//!   which the peer engine lowers to 4 KiB until the handshake is done; over
//!   it, [`FrameError::PayloadTooLarge`];
//! - the cap of the frame's command, from the table below; over it,
//!   [`FrameError::CommandTooLarge`], which names the command and both
//!   sizes. An N3 compressed frame is held to it twice: its declared
//!   decompressed size (as soon as those 4 bytes are there), and its length
//!   on the wire, which may exceed the cap only by what LZ4 adds to data it
//!   cannot compress (`cap / 255 + 20` bytes).
//!
//! Either is a protocol violation: the stream cannot be trusted and the peer
//! is dropped. The encoders apply the same caps, so nothing is sent that a
//! codec with the same limits would refuse.
//!
//! Most caps follow from the protocol's decoding rules: every count and
//! length at its maximum and every var-int in its longest form
//! ([`VAR_INT_MAX`]), so no payload the decoder accepts is above its cap
//! (the per-generation `limits` modules,
//! [`legacy::limits`] and [`n3::limits`], hold them as constants and say
//! why). Blocks, transactions and commands with no layout have no such bound
//! and take theirs from [`PayloadLimits`], set per codec (`set_limits`); the
//! defaults are [`PayloadLimits::N3`] and [`PayloadLimits::LEGACY`].
//!
//! | command | N3 cap (bytes) | Legacy cap (bytes) | where it comes from |
//! |---|---:|---:|---|
//! | `verack`, `getaddr`, `mempool`, `filterclear` | 0 | 0 | no payload |
//! | `ping`, `pong` | 12 | 12 | three `u32` |
//! | `version` | 34,146 | 1,060 | a user agent of 1024 bytes; N3: 32 capabilities of up to 1,034 bytes |
//! | `getheaders` | 6 | 553 | N3: start index and count; Legacy: 16 start hashes and a stop hash |
//! | `getblockbyindex` | 6 | — | start index and count |
//! | `getblocks` | 34 | 553 | N3: start hash and count; Legacy: as `getheaders` |
//! | `headers` | 4,368,009 | 33,554,432 | 2000 of the largest header (N3: 2,184 bytes); a Legacy header may take 131,196 bytes, so only the frame cap bounds 2000 |
//! | `addr` | 6,623,409 | 6,009 | 200 entries; an N3 entry may carry 32 capabilities of 1 KiB |
//! | `inv`, `getdata` | 16,010 | 2,097,162 | N3: 500 hashes; Legacy: 65,536 received ([`legacy::MAX_INV_HASHES_RECEIVE`]: NEO•ONE sends its whole pool in one) |
//! | `notfound` | 16,010 | 65,536 | N3: 500 hashes; Legacy: no layout, [`PayloadLimits::unknown`] |
//! | `block` | 2,097,152 | 33,554,432 | [`PayloadLimits::block`]: N3 [`n3::MAX_BLOCK_SIZE`] (the largest `MaxBlockSize` of the public networks); nothing bounds a Legacy block below the frame cap ([`legacy::MAX_BLOCK_SIZE`]) |
//! | `transaction`, `tx` | 102,400 | 102,400 | [`PayloadLimits::transaction`]: `MaxTransactionSize` of the reference nodes |
//! | `extensible` | 2,097,152 | — | [`PayloadLimits::block`]: consensus messages list a block's transactions by hash; 16,779,361 by the decoding rules |
//! | `consensus` | — | 16,908,362 | data of up to 16 MiB and a witness |
//! | `merkleblock` | 2,107,523 | 2,236,534 | a header, 65,535 hashes and their flag bits |
//! | `filterload` | 36,014 | 36,014 | a filter of 36,000 bytes |
//! | `filteradd` | 529 | 529 | an element of 520 bytes |
//! | `p2pnotaryrequest` | 206,866 | — | two transactions and a witness |
//! | `getmptdata` | 1,033 | — | 32 hashes |
//! | `mptdata` | 33,554,432 | — | neo-go fills its answers up to the frame cap |
//! | `getroots` | — | 8 | start index and count |
//! | `stateroot` | — | 131,168 | a state root with a witness of two 64 KiB scripts |
//! | `roots` | — | 26,233,609 | 200 state roots |
//! | `alert`, `reject`, `unknown` | 65,536 | 65,536 | [`PayloadLimits::unknown`], [`MAX_UNKNOWN_PAYLOAD`]: no layout, never decoded |

mod codec;
mod error;
mod filter;
mod hash;
pub mod legacy;
mod limits;
pub mod n3;
pub mod witness;

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
