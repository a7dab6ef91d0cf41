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

/// Largest `consensus`: the fixed fields, data of up to
/// [`MAX_CONSENSUS_DATA`] bytes, the marker and a witness. (Unlike N3's,
/// it is not bounded by the block: a Legacy transaction may be smaller than
/// the 32-byte hash a consensus message lists it by.)
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
#[inline]
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
        "consensus" => MAX_CONSENSUS_PAYLOAD,
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

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::wire::legacy::{
        AddrPayload, AttributeUsage, BlockBase, COMMANDS, Codec, ConsensusPayload,
        FilterAddPayload, FilterLoadPayload, GetBlocksPayload, GetStateRootsPayload, InvPayload,
        InventoryType, MAINNET_MAGIC, MAX_FILTER_ADD, MAX_FILTER_SIZE, MAX_TX_SIZE,
        MerkleBlockPayload, Message, NetworkAddressWithTime, PingPayload, StateRoot,
        StateRootsPayload, Transaction, TransactionAttribute, TransactionData, VersionPayload,
        Witness, checksum,
    };
    use crate::wire::limits::fill;
    use crate::wire::{FrameError, MAX_UNKNOWN_PAYLOAD, UInt160, UInt256};

    fn witness() -> Witness {
        // One buffer shared by every witness: hundreds of them cost 64 KiB.
        let script = bytes::Bytes::from(vec![0x51; MAX_WITNESS_SCRIPT as usize]);
        Witness {
            invocation: script.clone(),
            verification: script,
        }
    }

    fn base() -> BlockBase {
        BlockBase {
            version: 0,
            prev_hash: UInt256::ZERO,
            merkle_root: UInt256::ZERO,
            timestamp: 1,
            index: 2,
            consensus_data: 3,
            next_consensus: UInt160::ZERO,
            witness: witness(),
        }
    }

    fn root() -> StateRoot {
        StateRoot {
            version: 0,
            index: 1,
            prev_hash: UInt256::ZERO,
            root: UInt256::ZERO,
            witness: Some(witness()),
        }
    }

    /// A contract transaction of exactly [`MAX_TX_SIZE`] bytes: two remarks.
    fn tx() -> Transaction {
        fill(MAX_TX_SIZE, |n| Transaction {
            version: 0,
            data: TransactionData::Contract,
            attributes: vec![
                TransactionAttribute {
                    usage: AttributeUsage::Remark,
                    data: vec![0; 65535].into(),
                },
                TransactionAttribute {
                    usage: AttributeUsage::Remark1,
                    data: vec![0; n].into(),
                },
            ],
            inputs: vec![],
            outputs: vec![],
            witnesses: vec![],
        })
    }

    /// The largest valid message of `command` under the default limits;
    /// `None` for `headers` and `block`, whose cap is the frame cap (they
    /// have no bound of their own).
    fn largest(command: &str) -> Option<Message> {
        let inv = || InvPayload {
            kind: InventoryType::Tx,
            hashes: vec![UInt256::ZERO; MAX_INV_HASHES_RECEIVE as usize],
        };
        let get = || GetBlocksPayload {
            hash_start: vec![UInt256::ZERO; MAX_HASH_START as usize],
            hash_stop: UInt256::ZERO,
        };
        let unknown = || vec![1; MAX_UNKNOWN_PAYLOAD].into();
        Some(match command {
            "version" => Message::Version(VersionPayload {
                version: 0,
                services: 1,
                timestamp: 0,
                port: 0,
                nonce: 0,
                user_agent: "a".repeat(MAX_USER_AGENT as usize),
                start_height: 0,
                relay: true,
            }),
            "verack" => Message::Verack,
            "getaddr" => Message::GetAddr,
            "mempool" => Message::Mempool,
            "filterclear" => Message::FilterClear,
            "addr" => Message::Addr(AddrPayload {
                addresses: vec![
                    NetworkAddressWithTime {
                        timestamp: 0,
                        services: 1,
                        address: std::net::Ipv6Addr::LOCALHOST,
                        port: 1,
                    };
                    MAX_ADDRS as usize
                ],
            }),
            "getheaders" => Message::GetHeaders(get()),
            "getblocks" => Message::GetBlocks(get()),
            "headers" | "block" => return None,
            "inv" => Message::Inv(inv()),
            "getdata" => Message::GetData(inv()),
            "tx" => Message::Tx(Box::new(tx())),
            "consensus" => Message::Consensus(ConsensusPayload {
                version: 0,
                prev_hash: UInt256::ZERO,
                block_index: 0,
                validator_index: 0,
                timestamp: 0,
                data: vec![0; MAX_CONSENSUS_DATA as usize].into(),
                witness: witness(),
            }),
            "ping" => Message::Ping(PingPayload::default()),
            "pong" => Message::Pong(PingPayload::default()),
            "filterload" => Message::FilterLoad(FilterLoadPayload {
                filter: vec![0; MAX_FILTER_SIZE].into(),
                k: 50,
                tweak: 0,
            }),
            "filteradd" => Message::FilterAdd(FilterAddPayload {
                data: vec![0; MAX_FILTER_ADD].into(),
            }),
            "merkleblock" => Message::MerkleBlock(Box::new(MerkleBlockPayload {
                base: base(),
                tx_count: MAX_BLOCK_TXS as u32,
                hashes: vec![UInt256::ZERO; MAX_BLOCK_TXS as usize],
                flags: vec![0; (MAX_BLOCK_TXS as usize).div_ceil(8)].into(),
            })),
            "getroots" => Message::GetRoots(GetStateRootsPayload {
                start_index: 0,
                count: 1,
            }),
            "roots" => Message::Roots(StateRootsPayload {
                roots: vec![root(); MAX_STATE_ROOTS as usize],
            }),
            "stateroot" => Message::StateRoot(root()),
            "alert" => Message::Alert(unknown()),
            "reject" => Message::Reject(unknown()),
            "notfound" => Message::NotFound(unknown()),
            other => Message::Unknown {
                command: other.into(),
                payload: unknown(),
            },
        })
    }

    /// Largest payload the test hashes (a debug build hashes slowly).
    const CHECKSUMMED: usize = 4 << 20;

    /// The frame header of `msg` carrying `payload`, as a sender may write
    /// it whether or not our encoder would send it (the checksum only for
    /// payloads small enough to hash quickly).
    fn header(msg: &Message, payload: &[u8]) -> BytesMut {
        let mut f = BytesMut::new();
        f.extend_from_slice(&MAINNET_MAGIC.to_le_bytes());
        let mut field = [0u8; 12];
        field[..msg.command().len()].copy_from_slice(msg.command().as_bytes());
        f.extend_from_slice(&field);
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        match payload.len() {
            0..=CHECKSUMMED => f.extend_from_slice(&checksum(payload)),
            _ => f.extend_from_slice(&[0; 4]),
        }
        f
    }

    #[test]
    fn no_valid_message_is_over_its_command_s_cap() {
        let codec = Codec::new(MAINNET_MAGIC);
        for command in COMMANDS.into_iter().chain(["xyzzy"]) {
            let cap = codec.payload_cap(command);
            let Some(msg) = largest(command) else {
                assert_eq!(cap, MAX_PAYLOAD, "{command}");
                continue;
            };
            assert_eq!(msg.command(), command);
            let size = msg.payload_size();
            assert!(size <= cap, "{command}: {size} > {cap}");
            // And no looser than the longest var-ints make it.
            assert!(cap - size <= cap / 100 + 64, "{command}: {size} < {cap}");
            let mut payload = BytesMut::new();
            msg.encode_payload(&mut payload);
            let payload = payload.freeze();
            if size > CHECKSUMMED {
                // Checksums of 16 MiB and more take seconds in a debug
                // build: the header passes the caps, the payload decodes.
                let mut f = header(&msg, &payload);
                assert_eq!(codec.clone().decode(&mut f), Ok(None), "{command}");
                let decoded = Message::decode_payload(command, payload);
                assert_eq!(decoded.as_ref(), Ok(&msg), "{command}");
                continue;
            }
            // Received: decoded through the caps, unchanged.
            let mut f = header(&msg, &payload);
            f.extend_from_slice(&payload);
            assert_eq!(codec.clone().decode(&mut f), Ok(Some(msg.clone())));
            // Sent: never refused for its size (the encoder's own limits,
            // such as 500 inventory hashes, may refuse it).
            let sent = codec.encode(&msg, &mut BytesMut::new());
            assert!(
                matches!(sent, Ok(()) | Err(FrameError::Payload { .. })),
                "{command}: {sent:?}"
            );
        }
    }
}
