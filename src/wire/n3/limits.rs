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

/// Largest `merkleblock`: a header, the transaction count, a hash and a
/// flag bit for each of up to [`MAX_TRANSACTIONS_PER_BLOCK`] transactions
/// (2 MiB and a few KiB).
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

/// What the cap of a command depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    /// A size fixed by the protocol.
    Fixed(usize),
    /// [`PayloadLimits::block`].
    Block,
    /// [`PayloadLimits::block`], within what decoding allows.
    Extensible,
    /// [`PayloadLimits::transaction`], within what decoding allows.
    Transaction,
    /// Two transactions and a witness.
    NotaryRequest,
    /// [`PayloadLimits::unknown`].
    Unknown,
}

impl Cap {
    /// The cap of a defined command.
    const fn of(command: Command) -> Cap {
        use Command as C;
        match command {
            C::Verack | C::GetAddr | C::Mempool | C::FilterClear => Cap::Fixed(0),
            C::Version => Cap::Fixed(MAX_VERSION_PAYLOAD),
            C::Addr => Cap::Fixed(MAX_ADDR_PAYLOAD),
            C::Ping | C::Pong => Cap::Fixed(PING_PAYLOAD),
            C::GetHeaders | C::GetBlockByIndex => Cap::Fixed(GET_BLOCK_BY_INDEX_PAYLOAD),
            C::Headers => Cap::Fixed(MAX_HEADERS_PAYLOAD),
            C::GetBlocks => Cap::Fixed(GET_BLOCKS_PAYLOAD),
            C::Inv | C::GetData | C::NotFound => Cap::Fixed(MAX_INV_PAYLOAD),
            C::Transaction => Cap::Transaction,
            C::Block => Cap::Block,
            C::Extensible => Cap::Extensible,
            C::MerkleBlock => Cap::Fixed(MAX_MERKLEBLOCK_PAYLOAD),
            C::FilterLoad => Cap::Fixed(MAX_FILTERLOAD_PAYLOAD),
            C::FilterAdd => Cap::Fixed(MAX_FILTERADD_PAYLOAD),
            C::Reject | C::Alert => Cap::Unknown,
            C::P2PNotaryRequest => Cap::NotaryRequest,
            C::GetMptData => Cap::Fixed(MAX_GETMPTDATA_PAYLOAD),
            C::MptData => Cap::Fixed(MAX_MPTDATA_PAYLOAD),
        }
    }
}

/// [`Cap`] of every command byte, so that a frame header costs one lookup.
static CAPS: [Cap; 256] = {
    let mut caps = [Cap::Unknown; 256];
    let mut i = 0;
    while i < Command::ALL.len() {
        let command = Command::ALL[i];
        caps[command as usize] = Cap::of(command);
        i += 1;
    }
    caps
};

/// The cap of `command` under `limits`, before the frame cap.
#[inline]
pub(crate) fn payload_cap(limits: &PayloadLimits, command: u8) -> usize {
    // Decoding refuses a bigger transaction whatever the limit says.
    let transaction = || limits.transaction.min(MAX_TRANSACTION_SIZE);
    match CAPS[usize::from(command)] {
        Cap::Fixed(cap) => cap,
        Cap::Block => limits.block,
        Cap::Extensible => MAX_EXTENSIBLE_PAYLOAD.min(limits.block),
        Cap::Transaction => transaction(),
        Cap::NotaryRequest => 2 * transaction() + MAX_WITNESS_SIZE,
        Cap::Unknown => limits.unknown,
    }
}

/// The cap of a compressed body (the `u32` size and the LZ4 block) whose
/// decompressed payload is capped at `cap`: LZ4 may make incompressible
/// data a little longer, and neo-go keeps the compressed form even then.
#[inline]
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
    // Consensus messages list a block's transactions by hash, and a hash
    // is smaller than any transaction: why the block cap bounds `extensible`.
    assert!(HASH < MIN_TX_SIZE);
    // The default block holds the largest header and the largest transaction.
    assert!(PayloadLimits::N3.block >= MAX_HEADER_SIZE + VAR_INT_MAX + MAX_TRANSACTION_SIZE);
    // A notary request of two of the largest transactions is under the frame cap.
    assert!(2 * MAX_TRANSACTION_SIZE + MAX_WITNESS_SIZE <= MAX_PAYLOAD);
};

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::wire::limits::fill;
    use crate::wire::n3::{
        AddrPayload, Block, Codec, ExtensiblePayload, FilterAddPayload, FilterLoadPayload,
        GetBlockByIndexPayload, GetBlocksPayload, GetMptDataPayload, Header, HeadersPayload,
        InvPayload, InventoryType, MAX_FILTER_ADD, MAX_FILTER_SIZE, MAX_SCRIPT, MerkleBlockPayload,
        Message, MptDataPayload, NetworkAddressWithTime, NodeCapability, OracleResponseCode,
        P2PNotaryRequest, PingPayload, Signer, Transaction, TransactionAttribute, VersionPayload,
        Witness, WitnessScope,
    };
    use crate::wire::{Encode, MAX_UNKNOWN_PAYLOAD, UInt160, UInt256, WriteExt};

    fn witness() -> Witness {
        Witness {
            invocation: vec![0x0C; MAX_INVOCATION_SCRIPT].into(),
            verification: vec![0x41; MAX_VERIFICATION_SCRIPT].into(),
        }
    }

    fn header() -> Header {
        super::super::block::tests::header(MAX_INVOCATION_SCRIPT, MAX_VERIFICATION_SCRIPT)
    }

    /// A valid transaction of exactly `size` bytes: the script grows first,
    /// then an oracle response's result.
    fn tx(nonce: u32, size: usize) -> Transaction {
        let build = |script: usize, result: usize| Transaction {
            version: 0,
            nonce,
            system_fee: 0,
            network_fee: 0,
            valid_until_block: 1,
            signers: vec![Signer::new(UInt160::ZERO, WitnessScope::CALLED_BY_ENTRY)],
            attributes: match result {
                0 => vec![],
                n => vec![TransactionAttribute::OracleResponse {
                    id: 0,
                    code: OracleResponseCode::Success,
                    result: vec![0; n].into(),
                }],
            },
            script: vec![0x40; script.max(1)].into(),
            witnesses: vec![witness()],
        };
        if size <= build(MAX_SCRIPT, 0).size() {
            fill(size, |n| build(n, 0))
        } else {
            fill(size, |n| build(MAX_SCRIPT, n.max(1)))
        }
    }

    /// The largest capability, of an undefined type (those may repeat).
    fn capability() -> NodeCapability {
        NodeCapability::Unknown {
            kind: 0x20,
            data: vec![0; MAX_CAPABILITY_DATA].into(),
        }
    }

    fn hashes(n: usize) -> Vec<UInt256> {
        vec![UInt256::ZERO; n]
    }

    /// The largest valid message of `command` under the default limits.
    fn largest(command: Command) -> Message {
        use Command as C;
        let tx_max = || tx(0, MAX_TRANSACTION_SIZE);
        let inv = || InvPayload {
            kind: InventoryType::Transaction,
            hashes: hashes(MAX_INV_HASHES),
        };
        let ping = PingPayload::default();
        let get = GetBlockByIndexPayload {
            index_start: 0,
            count: -1,
        };
        match command {
            C::Version => Message::Version(VersionPayload {
                network: 0,
                version: 0,
                timestamp: 0,
                nonce: 0,
                user_agent: "a".repeat(MAX_USER_AGENT),
                capabilities: vec![capability(); MAX_CAPABILITIES],
            }),
            C::Verack => Message::Verack,
            C::GetAddr => Message::GetAddr,
            C::Mempool => Message::Mempool,
            C::FilterClear => Message::FilterClear,
            C::Addr => Message::Addr(AddrPayload {
                addresses: vec![
                    NetworkAddressWithTime {
                        timestamp: 0,
                        address: std::net::Ipv6Addr::LOCALHOST,
                        capabilities: vec![capability(); MAX_CAPABILITIES],
                    };
                    MAX_ADDRESSES
                ],
            }),
            C::Ping => Message::Ping(ping),
            C::Pong => Message::Pong(ping),
            C::GetHeaders => Message::GetHeaders(get),
            C::GetBlockByIndex => Message::GetBlockByIndex(get),
            C::Headers => Message::Headers(HeadersPayload::new(&vec![header(); MAX_HEADERS])),
            C::GetBlocks => Message::GetBlocks(GetBlocksPayload {
                hash_start: UInt256::ZERO,
                count: -1,
            }),
            C::Inv => Message::Inv(inv()),
            C::GetData => Message::GetData(inv()),
            C::NotFound => Message::NotFound(inv()),
            C::Transaction => Message::Transaction(tx_max()),
            C::Block => Message::Block(largest_block()),
            C::Extensible => {
                Message::Extensible(fill(PayloadLimits::N3.block, |n| ExtensiblePayload {
                    category: "c".repeat(MAX_CATEGORY),
                    valid_block_start: 0,
                    valid_block_end: 1,
                    sender: UInt160::ZERO,
                    data: vec![0; n].into(),
                    witness: witness(),
                }))
            }
            C::Reject => Message::Reject(vec![1; MAX_UNKNOWN_PAYLOAD].into()),
            C::Alert => Message::Alert(vec![1; MAX_UNKNOWN_PAYLOAD].into()),
            C::FilterLoad => Message::FilterLoad(FilterLoadPayload {
                filter: vec![0; MAX_FILTER_SIZE].into(),
                k: 50,
                tweak: 0,
            }),
            C::FilterAdd => Message::FilterAdd(FilterAddPayload {
                data: vec![0; MAX_FILTER_ADD].into(),
            }),
            C::MerkleBlock => Message::MerkleBlock(MerkleBlockPayload {
                header: header(),
                tx_count: MAX_TRANSACTIONS_PER_BLOCK as u32,
                hashes: hashes(MAX_TRANSACTIONS_PER_BLOCK),
                flags: vec![0; MAX_TRANSACTIONS_PER_BLOCK.div_ceil(8)].into(),
            }),
            C::P2PNotaryRequest => Message::P2PNotaryRequest(Box::new(P2PNotaryRequest {
                main_tx: tx_max(),
                fallback_tx: tx(1, MAX_TRANSACTION_SIZE),
                witness: witness(),
            })),
            C::GetMptData => Message::GetMptData(GetMptDataPayload {
                hashes: hashes(MAX_MPT_HASHES),
            }),
            // One node filling the frame, as neo-go's answers may.
            C::MptData => Message::MptData(MptDataPayload {
                nodes: vec![vec![0; MAX_PAYLOAD - 1 - 5].into()],
            }),
        }
    }

    /// A block of exactly the default block cap: transactions of the
    /// largest size, and one that makes up the rest.
    fn largest_block() -> Block {
        let target = PayloadLimits::N3.block;
        let empty = Block {
            header: header(),
            transactions: vec![],
        }
        .size();
        let full = (target - empty) / MAX_TRANSACTION_SIZE;
        let mut transactions: Vec<_> = (0..full as u32)
            .map(|i| tx(i, MAX_TRANSACTION_SIZE))
            .collect();
        let rest = target - empty - full * MAX_TRANSACTION_SIZE;
        transactions.push(tx(full as u32, rest));
        let block = Block {
            header: header(),
            transactions,
        };
        assert_eq!(block.size(), target);
        block
    }

    /// The frame of `msg` as a sender may write it, whether or not our
    /// encoder would send it.
    fn frame(msg: &Message) -> BytesMut {
        let mut payload = BytesMut::new();
        msg.encode_payload(&mut payload);
        let mut f = BytesMut::new();
        f.extend_from_slice(&[0, msg.command_byte()]);
        f.put_var_bytes(&payload);
        f
    }

    #[test]
    fn no_valid_message_is_over_its_command_s_cap() {
        let codec = Codec::new();
        for command in Command::ALL {
            let msg = largest(command);
            assert_eq!(msg.command(), Some(command));
            assert_eq!(msg.validate(), Ok(()), "{}", command.name());
            let size = msg.payload_size();
            let cap = codec.payload_cap(command.as_u8());
            assert!(size <= cap, "{}: {size} > {cap}", command.name());
            // And no looser than the longest var-ints make it.
            assert!(
                cap - size <= cap / 100 + 64,
                "{}: {size} < {cap}",
                command.name()
            );
            if command == Command::MptData {
                continue; // 32 MiB: its size is enough
            }
            // Received: decoded through the caps, unchanged.
            let mut f = frame(&msg);
            assert_eq!(codec.clone().decode(&mut f), Ok(Some(msg.clone())));
            // Sent: never refused for its size.
            let mut out = BytesMut::new();
            assert_eq!(codec.encode(&msg, &mut out), Ok(()), "{}", command.name());
        }
    }
}
