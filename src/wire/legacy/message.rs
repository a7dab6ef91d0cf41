//! The message enum: one variant per command (§3 of the Legacy wire reference).

use bytes::{Bytes, BytesMut};

use super::block::{Block, HeadersPayload};
use super::payload::{
    AddrPayload, ConsensusPayload, GetBlocksPayload, GetStateRootsPayload, InvPayload,
    MerkleBlockPayload, StateRoot, StateRootsPayload, VersionPayload,
};
use super::tx::Transaction;
use super::{FilterAddPayload, FilterLoadPayload, MAX_INV_HASHES, MAX_USER_AGENT};
use crate::wire::{Decode, DecodeError, Encode, PingPayload};

/// A Legacy message: a command and its decoded payload.
///
/// Commands with an empty payload (`verack`, `getaddr`, `mempool`,
/// `filterclear`) must arrive with an empty payload. `alert`, `reject` and
/// `notfound` were never given a payload layout in NEO 2, so theirs is kept
/// as bytes. Any other command is [`Message::Unknown`], not an error: the
/// reference node ignores unknown commands after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `version`: the handshake's first message.
    Version(VersionPayload),
    /// `verack`: the handshake's second message (empty).
    Verack,
    /// `getaddr`: asks for peer addresses (empty).
    GetAddr,
    /// `addr`: peer addresses.
    Addr(AddrPayload),
    /// `getheaders`: asks for headers after a hash.
    GetHeaders(GetBlocksPayload),
    /// `headers`: up to 2000 headers.
    Headers(HeadersPayload),
    /// `getblocks`: asks for block hashes after a hash (answered with `inv`).
    GetBlocks(GetBlocksPayload),
    /// `inv`: announces objects by hash.
    Inv(InvPayload),
    /// `getdata`: asks for objects by hash.
    GetData(InvPayload),
    /// `block`: a full block.
    Block(Box<Block>),
    /// `tx`: a transaction.
    Tx(Box<Transaction>),
    /// `consensus`: a dBFT payload.
    Consensus(ConsensusPayload),
    /// `mempool`: asks for the memory pool's hashes (empty).
    Mempool,
    /// `ping`: the sender's height (C# 2.10+).
    Ping(PingPayload),
    /// `pong`: answer to `ping`.
    Pong(PingPayload),
    /// `filterload`: sets a bloom filter.
    FilterLoad(FilterLoadPayload),
    /// `filteradd`: adds an element to the bloom filter.
    FilterAdd(FilterAddPayload),
    /// `filterclear`: removes the bloom filter (empty).
    FilterClear,
    /// `merkleblock`: a header with a pruned merkle tree.
    MerkleBlock(Box<MerkleBlockPayload>),
    /// `getroots`: asks for state roots (C# 2.11+, neo-go 2.x).
    GetRoots(GetStateRootsPayload),
    /// `roots`: state roots.
    Roots(StateRootsPayload),
    /// `stateroot`: one state root.
    StateRoot(StateRoot),
    /// `alert`: never defined in NEO 2; payload kept as bytes.
    Alert(Bytes),
    /// `reject`: never defined in NEO 2; payload kept as bytes.
    Reject(Bytes),
    /// `notfound`: never defined in NEO 2; payload kept as bytes.
    NotFound(Bytes),
    /// Any other command, with its payload as bytes.
    Unknown {
        /// The command name.
        command: String,
        /// The payload.
        payload: Bytes,
    },
}

/// Every command with a defined meaning, as written in the frame.
pub const COMMANDS: [&str; 25] = [
    "version",
    "verack",
    "getaddr",
    "addr",
    "getheaders",
    "headers",
    "getblocks",
    "inv",
    "getdata",
    "block",
    "tx",
    "consensus",
    "mempool",
    "ping",
    "pong",
    "filterload",
    "filteradd",
    "filterclear",
    "merkleblock",
    "getroots",
    "roots",
    "stateroot",
    "alert",
    "reject",
    "notfound",
];

fn empty(payload: &Bytes, command: &'static str) -> Result<(), DecodeError> {
    match payload.len() {
        0 => Ok(()),
        count => Err(DecodeError::TrailingBytes {
            what: command,
            count,
        }),
    }
}

fn exact<T: Decode>(payload: Bytes) -> Result<T, DecodeError> {
    T::decode_exact(payload)
}

fn at_most(what: &'static str, count: usize, max: u64) -> Result<(), DecodeError> {
    if count as u64 > max {
        Err(DecodeError::TooMany {
            what,
            count: count as u64,
            max,
        })
    } else {
        Ok(())
    }
}

impl Message {
    /// Decodes the payload of `command`. The payload must be consumed exactly.
    pub fn decode_payload(command: &str, payload: Bytes) -> Result<Message, DecodeError> {
        Ok(match command {
            "version" => Message::Version(exact(payload)?),
            "verack" => empty(&payload, "verack").map(|_| Message::Verack)?,
            "getaddr" => empty(&payload, "getaddr").map(|_| Message::GetAddr)?,
            "addr" => Message::Addr(exact(payload)?),
            "getheaders" => Message::GetHeaders(exact(payload)?),
            "headers" => Message::Headers(exact(payload)?),
            "getblocks" => Message::GetBlocks(exact(payload)?),
            "inv" => Message::Inv(exact(payload)?),
            "getdata" => Message::GetData(exact(payload)?),
            "block" => Message::Block(Box::new(exact(payload)?)),
            "tx" => Message::Tx(Box::new(exact(payload)?)),
            "consensus" => Message::Consensus(exact(payload)?),
            "mempool" => empty(&payload, "mempool").map(|_| Message::Mempool)?,
            "ping" => Message::Ping(exact(payload)?),
            "pong" => Message::Pong(exact(payload)?),
            "filterload" => Message::FilterLoad(exact(payload)?),
            "filteradd" => Message::FilterAdd(exact(payload)?),
            "filterclear" => empty(&payload, "filterclear").map(|_| Message::FilterClear)?,
            "merkleblock" => Message::MerkleBlock(Box::new(exact(payload)?)),
            "getroots" => Message::GetRoots(exact(payload)?),
            "roots" => Message::Roots(exact(payload)?),
            "stateroot" => Message::StateRoot(exact(payload)?),
            "alert" => Message::Alert(payload),
            "reject" => Message::Reject(payload),
            "notfound" => Message::NotFound(payload),
            other => Message::Unknown {
                command: other.to_owned(),
                payload,
            },
        })
    }

    /// The command name for statistics: the real name for every defined
    /// command, `"unknown"` for [`Message::Unknown`] (see [`Message::command`]).
    pub fn command_name(&self) -> &'static str {
        match self {
            Message::Version(_) => "version",
            Message::Verack => "verack",
            Message::GetAddr => "getaddr",
            Message::Addr(_) => "addr",
            Message::GetHeaders(_) => "getheaders",
            Message::Headers(_) => "headers",
            Message::GetBlocks(_) => "getblocks",
            Message::Inv(_) => "inv",
            Message::GetData(_) => "getdata",
            Message::Block(_) => "block",
            Message::Tx(_) => "tx",
            Message::Consensus(_) => "consensus",
            Message::Mempool => "mempool",
            Message::Ping(_) => "ping",
            Message::Pong(_) => "pong",
            Message::FilterLoad(_) => "filterload",
            Message::FilterAdd(_) => "filteradd",
            Message::FilterClear => "filterclear",
            Message::MerkleBlock(_) => "merkleblock",
            Message::GetRoots(_) => "getroots",
            Message::Roots(_) => "roots",
            Message::StateRoot(_) => "stateroot",
            Message::Alert(_) => "alert",
            Message::Reject(_) => "reject",
            Message::NotFound(_) => "notfound",
            Message::Unknown { .. } => "unknown",
        }
    }

    /// The command as written in the frame (also for unknown commands).
    pub fn command(&self) -> &str {
        match self {
            Message::Unknown { command, .. } => command,
            other => other.command_name(),
        }
    }

    /// Writes the payload (without the frame).
    pub fn encode_payload(&self, out: &mut BytesMut) {
        match self {
            Message::Verack | Message::GetAddr | Message::Mempool | Message::FilterClear => {}
            Message::Version(p) => p.encode(out),
            Message::Addr(p) => p.encode(out),
            Message::GetHeaders(p) | Message::GetBlocks(p) => p.encode(out),
            Message::Headers(p) => p.encode(out),
            Message::Inv(p) | Message::GetData(p) => p.encode(out),
            Message::Block(b) => b.encode(out),
            Message::Tx(t) => t.encode(out),
            Message::Consensus(p) => p.encode(out),
            Message::Ping(p) | Message::Pong(p) => p.encode(out),
            Message::FilterLoad(p) => p.encode(out),
            Message::FilterAdd(p) => p.encode(out),
            Message::MerkleBlock(p) => p.encode(out),
            Message::GetRoots(p) => p.encode(out),
            Message::Roots(p) => p.encode(out),
            Message::StateRoot(p) => p.encode(out),
            Message::Alert(b) | Message::Reject(b) | Message::NotFound(b) => {
                out.extend_from_slice(b)
            }
            Message::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }

    /// Length of the payload.
    pub fn payload_size(&self) -> usize {
        match self {
            Message::Verack | Message::GetAddr | Message::Mempool | Message::FilterClear => 0,
            Message::Version(p) => p.size(),
            Message::Addr(p) => p.size(),
            Message::GetHeaders(p) | Message::GetBlocks(p) => p.size(),
            Message::Headers(p) => p.size(),
            Message::Inv(p) | Message::GetData(p) => p.size(),
            Message::Block(b) => b.size(),
            Message::Tx(t) => t.size(),
            Message::Consensus(p) => p.size(),
            Message::Ping(p) | Message::Pong(p) => p.size(),
            Message::FilterLoad(p) => p.size(),
            Message::FilterAdd(p) => p.size(),
            Message::MerkleBlock(p) => p.size(),
            Message::GetRoots(p) => p.size(),
            Message::Roots(p) => p.size(),
            Message::StateRoot(p) => p.size(),
            Message::Alert(b) | Message::Reject(b) | Message::NotFound(b) => b.len(),
            Message::Unknown { payload, .. } => payload.len(),
        }
    }

    /// Checks the limits a receiver enforces that a value built in memory
    /// could break: per-message counts (at most 2000 headers, 500 inventory
    /// hashes to send, 1 to 200 addresses to send, 16 start hashes, 1 to 65535
    /// transactions per block, 200 state roots), string and filter sizes, and
    /// each transaction's own limits ([`Transaction::check_limits`]).
    pub fn check_limits(&self) -> Result<(), DecodeError> {
        match self {
            Message::Version(p) => {
                at_most("version.user_agent", p.user_agent.len(), MAX_USER_AGENT)
            }
            Message::Addr(p) => {
                if p.addresses.is_empty() {
                    return Err(DecodeError::TooFew {
                        what: "addr",
                        count: 0,
                        min: 1,
                    });
                }
                at_most("addr", p.addresses.len(), super::MAX_ADDRS)
            }
            Message::GetHeaders(p) | Message::GetBlocks(p) => at_most(
                "getblocks.hash_start",
                p.hash_start.len(),
                super::MAX_HASH_START,
            ),
            Message::Headers(p) => at_most("headers", p.headers.len(), super::MAX_HEADERS),
            Message::Inv(p) | Message::GetData(p) => {
                at_most("inv.hashes", p.hashes.len(), MAX_INV_HASHES)
            }
            Message::Block(b) => {
                if b.transactions.is_empty() {
                    return Err(DecodeError::TooFew {
                        what: "block.transactions",
                        count: 0,
                        min: 1,
                    });
                }
                at_most(
                    "block.transactions",
                    b.transactions.len(),
                    super::MAX_BLOCK_TXS,
                )?;
                b.transactions
                    .iter()
                    .try_for_each(Transaction::check_limits)
            }
            Message::Tx(t) => t.check_limits(),
            Message::FilterLoad(p) => p.validate(),
            Message::FilterAdd(p) => p.validate(),
            Message::GetRoots(p) if p.count == 0 => Err(DecodeError::TooFew {
                what: "getroots.count",
                count: 0,
                min: 1,
            }),
            Message::Roots(p) => at_most("roots", p.roots.len(), super::MAX_STATE_ROOTS),
            _ => Ok(()),
        }
    }
}
