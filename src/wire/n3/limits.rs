//! The largest payload each N3 command can legitimately carry.
//!
//! Each cap follows from the decoding rules (§6 of the N3 wire reference):
//! every count and length at its maximum, every var-int in its longest form
//! ([`VAR_INT_MAX`]), so no payload the decoder accepts is ever above its
//! cap. Blocks and transactions have no such bound below the frame cap and
//! take theirs from [`PayloadLimits`]. The [`Codec`](super::Codec) refuses a
//! frame whose declared length is above its command's cap as soon as the
//! frame header is there; see the table in the [`wire`](crate::wire) docs.

use super::tx::MIN_TX_SIZE;
use super::{
    Command, HEADER_UNSIGNED_SIZE, MAX_ADDRESSES, MAX_CAPABILITIES, MAX_CAPABILITY_DATA,
    MAX_CATEGORY, MAX_EXTENSIBLE_DATA, MAX_HEADERS, MAX_INV_HASHES, MAX_INVOCATION_SCRIPT,
    MAX_MPT_HASHES, MAX_TRANSACTION_SIZE, MAX_TRANSACTIONS_PER_BLOCK, MAX_USER_AGENT,
    MAX_VERIFICATION_SCRIPT,
};
use crate::wire::limits::{
    MAX_FILTERADD_PAYLOAD, MAX_FILTERLOAD_PAYLOAD, PING_PAYLOAD, VAR_INT_MAX, var_bytes_max,
};
use crate::wire::{MAX_PAYLOAD, PayloadLimits};

/// Size of a hash on the wire.
const HASH: usize = 32;

/// Largest witness: an invocation and a verification script of up to 1024
/// bytes each.
pub const MAX_WITNESS_SIZE: usize =
    var_bytes_max(MAX_INVOCATION_SCRIPT) + var_bytes_max(MAX_VERIFICATION_SCRIPT);

/// Largest header: the 109-byte unsigned part, the witness count (which must
/// be 1, in any var-int form) and the largest witness.
pub const MAX_HEADER_SIZE: usize = HEADER_UNSIGNED_SIZE + VAR_INT_MAX + MAX_WITNESS_SIZE;

/// Largest capability: a type byte and data of up to [`MAX_CAPABILITY_DATA`]
/// bytes (unknown and extension types; the defined ones are smaller).
pub const MAX_CAPABILITY_SIZE: usize = 1 + var_bytes_max(MAX_CAPABILITY_DATA);

/// Largest `version`: four `u32`, a user agent of up to [`MAX_USER_AGENT`]
/// bytes and [`MAX_CAPABILITIES`] capabilities.
pub const MAX_VERSION_PAYLOAD: usize =
    4 * 4 + var_bytes_max(MAX_USER_AGENT) + VAR_INT_MAX + MAX_CAPABILITIES * MAX_CAPABILITY_SIZE;

/// Largest entry of an `addr`: timestamp, IPv6 address and capabilities.
pub const MAX_ADDRESS_SIZE: usize = 4 + 16 + VAR_INT_MAX + MAX_CAPABILITIES * MAX_CAPABILITY_SIZE;

/// Largest `addr`: [`MAX_ADDRESSES`] entries. Large because an entry may
/// carry 32 capabilities of 1 KiB (C# keeps unknown ones and passes them
/// on); real entries are about 30 bytes.
pub const MAX_ADDR_PAYLOAD: usize = VAR_INT_MAX + MAX_ADDRESSES * MAX_ADDRESS_SIZE;

/// `getheaders` and `getblockbyindex`: start index (`u32`) and count (`i16`).
pub const GET_BLOCK_BY_INDEX_PAYLOAD: usize = 4 + 2;

/// `getblocks`: start hash and count (`i16`).
pub const GET_BLOCKS_PAYLOAD: usize = HASH + 2;

/// Largest `headers`: [`MAX_HEADERS`] headers of [`MAX_HEADER_SIZE`].
pub const MAX_HEADERS_PAYLOAD: usize = VAR_INT_MAX + MAX_HEADERS * MAX_HEADER_SIZE;

/// Largest `inv`, `getdata` or `notfound`: the type byte and
/// [`MAX_INV_HASHES`] hashes.
pub const MAX_INV_PAYLOAD: usize = 1 + VAR_INT_MAX + MAX_INV_HASHES * HASH;

/// Largest `merkleblock` the decoding rules allow: a header, the
/// transaction count, a hash and a flag bit for each of up to
/// [`MAX_TRANSACTIONS_PER_BLOCK`] transactions. The block cap bounds it
/// further: a hash and a flag bit take less than the smallest transaction.
pub const MAX_MERKLEBLOCK_PAYLOAD: usize = MAX_HEADER_SIZE
    + VAR_INT_MAX
    + VAR_INT_MAX
    + MAX_TRANSACTIONS_PER_BLOCK * HASH
    + var_bytes_max(MAX_TRANSACTIONS_PER_BLOCK.div_ceil(8));

/// Largest `extensible` the decoding rules allow: category, validity range,
/// sender, data of up to [`MAX_EXTENSIBLE_DATA`] bytes, the witness count and
/// a witness. The block cap bounds it further (see [`PayloadLimits::block`]).
pub const MAX_EXTENSIBLE_PAYLOAD: usize = var_bytes_max(MAX_CATEGORY)
    + 4
    + 4
    + 20
    + var_bytes_max(MAX_EXTENSIBLE_DATA)
    + 1
    + MAX_WITNESS_SIZE;

/// Largest `getmptdata`: [`MAX_MPT_HASHES`] hashes.
pub const MAX_GETMPTDATA_PAYLOAD: usize = VAR_INT_MAX + MAX_MPT_HASHES * HASH;

/// Largest `mptdata`: the frame cap. neo-go fills its answer with MPT nodes
/// up to the frame cap (`payload.MaxSize`), so nothing smaller is safe.
pub const MAX_MPTDATA_PAYLOAD: usize = MAX_PAYLOAD;

/// The cap of `command` under `limits`, before the frame cap.
pub(crate) fn payload_cap(limits: &PayloadLimits, command: u8) -> usize {
    use Command as C;
    let Some(command) = Command::from_u8(command) else {
        return limits.unknown;
    };
    // Decoding refuses a bigger transaction whatever the limit says.
    let transaction = limits.transaction.min(MAX_TRANSACTION_SIZE);
    match command {
        C::Verack | C::GetAddr | C::Mempool | C::FilterClear => 0,
        C::Version => MAX_VERSION_PAYLOAD,
        C::Addr => MAX_ADDR_PAYLOAD,
        C::Ping | C::Pong => PING_PAYLOAD,
        C::GetHeaders | C::GetBlockByIndex => GET_BLOCK_BY_INDEX_PAYLOAD,
        C::Headers => MAX_HEADERS_PAYLOAD,
        C::GetBlocks => GET_BLOCKS_PAYLOAD,
        C::Inv | C::GetData | C::NotFound => MAX_INV_PAYLOAD,
        C::Transaction => transaction,
        C::Block => limits.block,
        C::Extensible => MAX_EXTENSIBLE_PAYLOAD.min(limits.block),
        C::MerkleBlock => MAX_MERKLEBLOCK_PAYLOAD.min(limits.block),
        C::FilterLoad => MAX_FILTERLOAD_PAYLOAD,
        C::FilterAdd => MAX_FILTERADD_PAYLOAD,
        C::Reject | C::Alert => limits.unknown,
        C::P2PNotaryRequest => 2 * transaction + MAX_WITNESS_SIZE,
        C::GetMptData => MAX_GETMPTDATA_PAYLOAD,
        C::MptData => MAX_MPTDATA_PAYLOAD,
    }
}

/// The cap of a compressed body (the `u32` size and the LZ4 block) whose
/// decompressed payload is capped at `cap`: LZ4 may make incompressible
/// data a little longer, and neo-go keeps the compressed form even then.
pub(crate) fn compressed_cap(cap: usize) -> usize {
    4 + crate::wire::limits::lz4_bound(cap)
}

// The relations the caps rely on.
const _: () = {
    // Every cap the protocol derives stays below the frame cap.
    assert!(MAX_VERSION_PAYLOAD <= MAX_PAYLOAD);
    assert!(MAX_ADDR_PAYLOAD <= MAX_PAYLOAD);
    assert!(MAX_HEADERS_PAYLOAD <= MAX_PAYLOAD);
    assert!(MAX_MERKLEBLOCK_PAYLOAD <= MAX_PAYLOAD);
    assert!(MAX_EXTENSIBLE_PAYLOAD <= MAX_PAYLOAD);
    // 2000 of the largest headers fit, with the longest count in front.
    assert!(MAX_HEADERS_PAYLOAD >= MAX_HEADERS * MAX_HEADER_SIZE + VAR_INT_MAX);
    // A merkleblock never outgrows its block: a hash and a flag bit take
    // less than the smallest transaction.
    assert!(HASH + 1 < MIN_TX_SIZE);
    // The default block holds the largest header and the largest transaction.
    assert!(PayloadLimits::N3.block >= MAX_HEADER_SIZE + VAR_INT_MAX + MAX_TRANSACTION_SIZE);
    // A notary request of two of the largest transactions is under the frame cap.
    assert!(2 * MAX_TRANSACTION_SIZE + MAX_WITNESS_SIZE <= MAX_PAYLOAD);
};
