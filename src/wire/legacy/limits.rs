//! The largest payload each Legacy command can legitimately carry.
//!
//! Each cap follows from the decoding rules (§6 to §8 of the Legacy wire
//! reference): every count and length at its maximum, every var-int in its
//! longest form ([`VAR_INT_MAX`]), so no payload the decoder accepts is ever
//! above its cap. Blocks and transactions have no such bound and take theirs
//! from [`PayloadLimits`]. The [`Codec`](super::Codec) refuses a frame whose
//! declared length is above its command's cap as soon as the 24-byte header
//! is there; see the table in the [`wire`](crate::wire) docs.

use super::{
    BLOCK_BASE_UNSIGNED_SIZE, MAX_ADDRS, MAX_BLOCK_TXS, MAX_CONSENSUS_DATA, MAX_HASH_START,
    MAX_HEADERS, MAX_INV_HASHES_RECEIVE, MAX_STATE_ROOTS, MAX_USER_AGENT, MAX_WITNESS_SCRIPT,
};
use crate::wire::limits::{
    MAX_FILTERADD_PAYLOAD, MAX_FILTERLOAD_PAYLOAD, PING_PAYLOAD, VAR_INT_MAX, var_bytes_max,
};
use crate::wire::{MAX_PAYLOAD, PayloadLimits};

/// Size of a hash on the wire.
const HASH: usize = 32;

/// Largest witness: two scripts of up to [`MAX_WITNESS_SCRIPT`] bytes.
pub const MAX_WITNESS_SIZE: usize = 2 * var_bytes_max(MAX_WITNESS_SCRIPT as usize);

/// Largest block base: the 104-byte unsigned part, the witness marker and
/// the largest witness.
pub const MAX_BLOCK_BASE_SIZE: usize = BLOCK_BASE_UNSIGNED_SIZE + 1 + MAX_WITNESS_SIZE;

/// Largest header as `headers` carries it: a block base and its `0x00`.
pub const MAX_HEADER_SIZE: usize = MAX_BLOCK_BASE_SIZE + 1;

/// Largest `version`: version, services, timestamp, port, nonce, a user
/// agent of up to [`MAX_USER_AGENT`] bytes, start height and relay.
pub const MAX_VERSION_PAYLOAD: usize =
    4 + 8 + 4 + 2 + 4 + var_bytes_max(MAX_USER_AGENT as usize) + 4 + 1;

/// Largest `addr`: [`MAX_ADDRS`] entries of 30 bytes.
pub const MAX_ADDR_PAYLOAD: usize = VAR_INT_MAX + MAX_ADDRS as usize * 30;

/// Largest `getheaders` or `getblocks`: [`MAX_HASH_START`] start hashes and
/// the stop hash.
pub const MAX_GET_BLOCKS_PAYLOAD: usize = VAR_INT_MAX + MAX_HASH_START as usize * HASH + HASH;

/// Largest `headers`: the frame cap. 2000 of the largest valid headers
/// (two 64 KiB witness scripts each) would take 262 MB, and even a witness
/// for the most validators NEO 2 allows (1024) makes 2000 headers 158 MB, so
/// nothing in the protocol bounds it below the frame cap. (Real headers
/// carry a witness of a few hundred bytes: 2000 take about 1.4 MB.)
pub const MAX_HEADERS_PAYLOAD: usize = MAX_PAYLOAD;

/// Largest `inv` or `getdata`: the type byte and [`MAX_INV_HASHES_RECEIVE`]
/// hashes (2 MiB).
pub const MAX_INV_PAYLOAD: usize = 1 + VAR_INT_MAX + MAX_INV_HASHES_RECEIVE as usize * HASH;

/// Largest `merkleblock`: a block base, the transaction count, a hash and a
/// flag bit for each of up to [`MAX_BLOCK_TXS`] transactions.
pub const MAX_MERKLEBLOCK_PAYLOAD: usize = MAX_BLOCK_BASE_SIZE
    + VAR_INT_MAX
    + VAR_INT_MAX
    + MAX_BLOCK_TXS as usize * HASH
    + var_bytes_max((MAX_BLOCK_TXS as usize).div_ceil(8));

/// Largest `consensus` the decoding rules allow: the fixed fields, data of up
/// to [`MAX_CONSENSUS_DATA`] bytes, the marker and a witness. The block cap
/// bounds it further (see [`PayloadLimits::block`]).
pub const MAX_CONSENSUS_PAYLOAD: usize =
    4 + HASH + 4 + 2 + 4 + var_bytes_max(MAX_CONSENSUS_DATA as usize) + 1 + MAX_WITNESS_SIZE;

/// `getroots`: start index and count (`u32` each).
pub const GET_ROOTS_PAYLOAD: usize = 4 + 4;

/// Largest `stateroot`: version, index, two hashes and at most one witness.
pub const MAX_STATE_ROOT_PAYLOAD: usize = 1 + 4 + HASH + HASH + VAR_INT_MAX + MAX_WITNESS_SIZE;

/// Largest `roots`: [`MAX_STATE_ROOTS`] state roots.
pub const MAX_ROOTS_PAYLOAD: usize =
    VAR_INT_MAX + MAX_STATE_ROOTS as usize * MAX_STATE_ROOT_PAYLOAD;

/// The cap of `command` under `limits`, before the frame cap.
pub(crate) fn payload_cap(limits: &PayloadLimits, command: &str) -> usize {
    match command {
        "verack" | "getaddr" | "mempool" | "filterclear" => 0,
        "version" => MAX_VERSION_PAYLOAD,
        "addr" => MAX_ADDR_PAYLOAD,
        "getheaders" | "getblocks" => MAX_GET_BLOCKS_PAYLOAD,
        "headers" => MAX_HEADERS_PAYLOAD,
        "inv" | "getdata" => MAX_INV_PAYLOAD,
        "block" => limits.block,
        "tx" => limits.transaction,
        "consensus" => MAX_CONSENSUS_PAYLOAD.min(limits.block),
        "ping" | "pong" => PING_PAYLOAD,
        "filterload" => MAX_FILTERLOAD_PAYLOAD,
        "filteradd" => MAX_FILTERADD_PAYLOAD,
        "merkleblock" => MAX_MERKLEBLOCK_PAYLOAD,
        "getroots" => GET_ROOTS_PAYLOAD,
        "roots" => MAX_ROOTS_PAYLOAD,
        "stateroot" => MAX_STATE_ROOT_PAYLOAD,
        // `alert`, `reject`, `notfound` (never given a layout) and unknown commands
        _ => limits.unknown,
    }
}

// The relations the caps rely on.
const _: () = {
    // Every cap the protocol derives stays below the frame cap.
    assert!(MAX_VERSION_PAYLOAD <= MAX_PAYLOAD);
    assert!(MAX_INV_PAYLOAD <= MAX_PAYLOAD);
    assert!(MAX_MERKLEBLOCK_PAYLOAD <= MAX_PAYLOAD);
    assert!(MAX_CONSENSUS_PAYLOAD <= MAX_PAYLOAD);
    assert!(MAX_ROOTS_PAYLOAD <= MAX_PAYLOAD);
    // Why `headers` has no cap of its own: 2000 of the largest headers do
    // not fit in a frame.
    assert!(MAX_HEADERS as usize * MAX_HEADER_SIZE > MAX_PAYLOAD);
};
