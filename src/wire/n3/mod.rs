//! Neo N3 wire codec.
//!
//! An N3 frame is `flags u8 ‖ command u8 ‖ var-bytes payload`: no magic, no
//! checksum. Bit 0 of `flags` marks an LZ4-compressed payload (a `u32` LE
//! decompressed size followed by one raw LZ4 block). The network id travels
//! only in the `version` payload.
//!
//! - [`Codec`] takes frames off a byte stream and puts them on one
//!   ([`Codec::decode_frame`] gives the raw [`RawFrame`]);
//! - [`Message`] is one decoded message, one variant per [`Command`];
//! - [`Block`], [`Header`] and [`Transaction`] are the chain objects, with
//!   their hashes computed from their canonical encoding (single SHA-256);
//! - the payload structures of every command live next to them.
//!
//! Every limit the reference node enforces while decoding is enforced here
//! too, before anything is allocated, and the encoder refuses to produce what
//! a receiver would reject. Hashes are never computed while decoding: call
//! [`Header::hash`], [`Transaction::hash`], [`Block::check`] when needed.
//!
//! Where the two reference implementations differ, decoding follows the
//! stricter one for chain objects and the more lenient one for framing:
//!
//! - var-ints are accepted in any of their four forms, as everybody does;
//!   encoding (and therefore hashing) always uses the canonical form;
//! - public keys are checked for their prefix and length only, and kept in
//!   the form received (33 or 65 bytes);
//! - transaction attribute types `0xE0..=0xFF`, which neo-go reserves for
//!   private networks, are rejected like every undefined type;
//! - two capabilities of the same defined type are rejected; extension and
//!   unknown capabilities may repeat and are kept as received;
//! - inventories may be empty when received, but are never sent empty.

mod block;
mod capability;
mod frame;
mod headers;
#[cfg(feature = "json")]
pub mod json;
pub mod limits;
mod payload;
mod tx;

#[cfg(feature = "fuzzing")]
pub(crate) use block::check_header_forms;
pub use block::{Block, HEADER_UNSIGNED_SIZE, Header};
pub use capability::NodeCapability;
pub use frame::{Codec, Command, Message, RawFrame};
pub use headers::HeadersPayload;
pub use payload::{
    AddrPayload, DbftMessageHeader, ExtensiblePayload, GetBlockByIndexPayload, GetBlocksPayload,
    GetMptDataPayload, InvPayload, InventoryType, MerkleBlockPayload, MptDataPayload,
    NetworkAddressWithTime, P2PNotaryRequest, VersionPayload,
};
pub use tx::{
    EcPoint, OracleResponseCode, Signer, Transaction, TransactionAttribute, WitnessCondition,
    WitnessRule, WitnessRuleAction, WitnessScope,
};

pub use super::{
    FilterAddPayload, FilterLoadPayload, MAX_FILTER_ADD, MAX_FILTER_HASH_FUNCTIONS,
    MAX_FILTER_SIZE, MAX_PAYLOAD, PingPayload, Witness,
};

use super::UInt256;

/// Network magic of Neo N3 MainNet (`"NEO3"` as little-endian bytes).
pub const MAINNET_MAGIC: u32 = 860_833_102;
/// Network magic of Neo N3 TestNet T5 (`"N3T5"`).
pub const TESTNET_MAGIC: u32 = 894_710_606;
/// Network magic of neo-go's private network configuration.
pub const PRIVNET_MAGIC: u32 = 56_753;
/// Network magic of neo-go's unit-test chain.
pub const UNIT_TESTNET_MAGIC: u32 = 42;
/// Network magic of the NeoFS MainNet side chain.
pub const NEOFS_MAINNET_MAGIC: u32 = 91_414_437;
/// Network magic of the NeoFS TestNet side chain.
pub const NEOFS_TESTNET_MAGIC: u32 = 735_783_775;

/// Default P2P port of MainNet.
pub const MAINNET_PORT: u16 = 10333;
/// Default P2P port of TestNet.
pub const TESTNET_PORT: u16 = 20333;
/// Default P2P port of a single-node neo-go private network.
pub const PRIVNET_PORT: u16 = 20332;

/// Hash of the MainNet genesis block (`0x1f4d1def…daa87c15`).
pub const MAINNET_GENESIS_HASH: UInt256 = UInt256([
    0x15, 0x7c, 0xa8, 0xda, 0x91, 0xa2, 0x99, 0x58, 0x6f, 0x5f, 0xaa, 0xc4, 0x26, 0x7c, 0x7d, 0x77,
    0xec, 0x6b, 0xa0, 0x79, 0x3f, 0x8d, 0x9b, 0x7b, 0x5e, 0xaa, 0x6f, 0xa4, 0xef, 0x1d, 0x4d, 0x1f,
]);

/// Protocol version carried in `version` payloads (always 0).
pub const PROTOCOL_VERSION: u32 = 0;

/// Flag bit marking a compressed payload.
pub const FLAG_COMPRESSED: u8 = 0x01;

/// Longest user agent in a `version` payload, in bytes.
pub const MAX_USER_AGENT: usize = 1024;
/// Most capabilities in a `version` payload or an address entry.
pub const MAX_CAPABILITIES: usize = 32;
/// Longest data of an unknown or extension capability, in bytes.
pub const MAX_CAPABILITY_DATA: usize = 1024;
/// Most addresses in one `addr` message (at least one is required).
pub const MAX_ADDRESSES: usize = 200;
/// Most hashes in one `inv`, `getdata` or `notfound` message.
pub const MAX_INV_HASHES: usize = 500;
/// Most headers in one `headers` message (at least one is required).
pub const MAX_HEADERS: usize = 2000;
/// Largest `count` of a `getheaders` / `getblockbyindex` request (or -1).
pub const MAX_HEADERS_REQUEST: i16 = 2000;
/// Most blocks a responder sends for one `getblockbyindex`.
pub const MAX_BLOCKS_PER_REQUEST: usize = 500;
/// Most block hashes a responder sends for one `getblocks`.
pub const MAX_GETBLOCKS_HASHES: usize = 500;
/// Most transactions in a block.
pub const MAX_TRANSACTIONS_PER_BLOCK: usize = 65535;
/// Largest serialised transaction, in bytes (`MaxTransactionSize` of both
/// reference nodes); the default cap of a `transaction` payload.
pub const MAX_TRANSACTION_SIZE: usize = 102_400;
/// Default cap of a `block` payload: 2 MiB (2,097,152 bytes).
///
/// The largest `MaxBlockSize` of the public networks: the C# dBFT plugin
/// ships with 2,097,152 (`DBFTPlugin/config.json`; its code default is
/// 262,144) and neo-go's TestNet configuration has the same, while neo-go's
/// MainNet uses its default of 262,144. No node checks the size of a block
/// it receives; consensus nodes keep to it when they propose one, so no
/// bigger block exists on those networks. A private network with bigger
/// blocks sets [`PayloadLimits::block`](crate::wire::PayloadLimits::block).
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;
/// Most signers plus attributes of one transaction.
pub const MAX_TRANSACTION_ATTRIBUTES: usize = 16;
/// Longest transaction script, in bytes (at least one byte is required).
pub const MAX_SCRIPT: usize = 65535;
/// Longest invocation script of a witness, in bytes.
pub const MAX_INVOCATION_SCRIPT: usize = 1024;
/// Longest verification script of a witness, in bytes.
pub const MAX_VERIFICATION_SCRIPT: usize = 1024;
/// Most allowed contracts, groups or rules of one signer (each).
pub const MAX_SIGNER_SUBITEMS: usize = 16;
/// Deepest nesting of witness conditions under a rule.
pub const MAX_CONDITION_NESTING: u8 = 3;
/// Most sub-conditions of an `And` / `Or` condition.
pub const MAX_SUBITEMS: usize = 16;
/// Longest oracle response result, in bytes.
pub const MAX_ORACLE_RESULT: usize = 65535;
/// Longest extensible payload category, in bytes.
pub const MAX_CATEGORY: usize = 32;
/// Longest extensible payload data, in bytes.
pub const MAX_EXTENSIBLE_DATA: usize = 0x0100_0000;
/// Most hashes remembered per peer as already known.
pub const MAX_KNOWN_HASHES: usize = 1000;
/// Most MPT node hashes in a `getmptdata` request.
pub const MAX_MPT_HASHES: usize = 32;

/// Only payloads longer than this many bytes are compressed when sending.
pub const COMPRESSION_MIN_SIZE: usize = 128;
/// A compressed payload is only kept if it saves more than this many bytes.
pub const COMPRESSION_THRESHOLD: usize = 64;
