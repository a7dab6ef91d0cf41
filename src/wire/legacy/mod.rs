//! NEO Legacy (2.x) wire codec.
//!
//! Every message travels in a 24-byte frame (magic, command name, length,
//! checksum) followed by its payload; see [`Codec`] for the stream side and
//! [`Message`] for the payloads. Blocks, headers and transactions decode to
//! [`Block`], [`Header`] and [`Transaction`], which re-encode to the exact
//! bytes they were read from (var-ints and booleans are written in their
//! canonical form, as the reference C# node writes them, so only non-canonical
//! input encodes differently — and hashes are always computed over the
//! canonical form, as the reference node computes them).
//!
//! The limits enforced on receive are the reference C# node's ones, except
//! where real peers send more than it accepts (see [`MAX_INV_HASHES_RECEIVE`]).
//! The encoder never produces more than those limits allow.
//!
//! ```
//! use bytes::BytesMut;
//! use neo_peer::wire::legacy::{Codec, MAINNET_MAGIC, Message, PingPayload};
//!
//! let mut codec = Codec::new(MAINNET_MAGIC);
//! let mut buf = BytesMut::new();
//! let ping = Message::Ping(PingPayload { last_block_index: 7, timestamp: 1, nonce: 42 });
//! codec.encode(&ping, &mut buf).unwrap();
//! assert_eq!(buf.len(), 24 + 12);
//! assert_eq!(codec.decode(&mut buf).unwrap(), Some(ping));
//! ```

use std::fmt;

use crate::wire::{MAX_ARRAY_DEFAULT, UInt256};

mod block;
mod frame;
#[cfg(feature = "json")]
pub mod json;
pub mod limits;
mod message;
mod payload;
mod tx;

pub use super::{
    FilterAddPayload, FilterLoadPayload, MAX_FILTER_ADD, MAX_FILTER_HASH_FUNCTIONS,
    MAX_FILTER_SIZE, MAX_PAYLOAD, PingPayload, Witness,
};
pub use block::{BLOCK_BASE_UNSIGNED_SIZE, Block, BlockBase, Header, HeadersPayload};
pub use frame::{COMMAND_SIZE, Codec, HEADER_SIZE, RawFrame, checksum, parse_command};
pub use message::{COMMANDS, Message};
pub use payload::{
    AddrPayload, ConsensusPayload, GetBlocksPayload, GetStateRootsPayload, InvPayload,
    InventoryType, MerkleBlockPayload, NetworkAddressWithTime, StateRoot, StateRootsPayload,
    VersionPayload,
};
pub use tx::{
    AssetType, AttributeData, AttributeUsage, CoinReference, EcPoint, PublishData, RegisterData,
    StateDescriptor, StateType, Transaction, TransactionAttribute, TransactionData,
    TransactionOutput, TransactionType,
};

/// Network magic of MainNet (`41 6E 74 00` on the wire, "Ant\0").
pub const MAINNET_MAGIC: u32 = 0x0074_6E41;
/// Network magic of TestNet (`41 6E 74 74` on the wire, "Antt").
pub const TESTNET_MAGIC: u32 = 0x7474_6E41;
/// Network magic of the neo-go private network (56753), also used by NEO•ONE private nets.
pub const PRIVNET_MAGIC: u32 = 56753;

/// Default P2P port of MainNet.
pub const MAINNET_PORT: u16 = 10333;
/// Default P2P port of TestNet.
pub const TESTNET_PORT: u16 = 20333;

/// Hash of the MainNet genesis block (`0xd42561e3…82144bf`).
pub const MAINNET_GENESIS_HASH: UInt256 = UInt256([
    0xbf, 0x44, 0x21, 0xc8, 0x87, 0x76, 0xc5, 0x3b, 0x43, 0xce, 0x1d, 0xc4, 0x54, 0x63, 0xbf, 0xd2,
    0x02, 0x8e, 0x32, 0x2f, 0xdf, 0xb6, 0x00, 0x64, 0xbe, 0x15, 0x0e, 0xd3, 0xe3, 0x61, 0x25, 0xd4,
]);

/// Hash of the TestNet genesis block (`0xb3181718…668f1fef`, the `prev_hash` of TestNet block 1).
pub const TESTNET_GENESIS_HASH: UInt256 = UInt256([
    0xef, 0x1f, 0x8f, 0x66, 0xa1, 0x6f, 0xba, 0x10, 0x0e, 0xd7, 0x60, 0xf4, 0xac, 0x6a, 0xa5, 0xa0,
    0xd0, 0xbb, 0x8f, 0x4a, 0x0e, 0x92, 0x70, 0x5b, 0x10, 0x67, 0x61, 0xef, 0x18, 0x17, 0x18, 0xb3,
]);

/// Asset id of NEO, the governing token (`0xc56f33fc…daff7c9b`; the same on every network).
pub const GOVERNING_TOKEN_ID: UInt256 = UInt256([
    0x9b, 0x7c, 0xff, 0xda, 0xa6, 0x74, 0xbe, 0xae, 0x0f, 0x93, 0x0e, 0xbe, 0x60, 0x85, 0xaf, 0x90,
    0x93, 0xe5, 0xfe, 0x56, 0xb3, 0x4a, 0x5c, 0x22, 0x0c, 0xcd, 0xcf, 0x6e, 0xfc, 0x33, 0x6f, 0xc5,
]);

/// Asset id of GAS, the utility token (`0x602c7971…69282de7`; the same on every network).
pub const UTILITY_TOKEN_ID: UInt256 = UInt256([
    0xe7, 0x2d, 0x28, 0x69, 0x79, 0xee, 0x6c, 0xb1, 0xb7, 0xe6, 0x5d, 0xfd, 0xdf, 0xb2, 0xe3, 0x84,
    0x10, 0x0b, 0x8d, 0x14, 0x8e, 0x77, 0x58, 0xde, 0x42, 0xe4, 0x16, 0x8b, 0x71, 0x79, 0x2c, 0x60,
]);

/// The checksum of an empty payload, `5D F6 E0 E2`.
pub const EMPTY_CHECKSUM: [u8; 4] = [0x5D, 0xF6, 0xE0, 0xE2];

/// Most headers in one `headers` message (more is a decode error).
pub const MAX_HEADERS: u64 = 2000;
/// Most hashes in one `inv`/`getdata` the reference node accepts, and the most
/// this codec sends.
pub const MAX_INV_HASHES: u64 = 500;
/// Most hashes in one received `inv`/`getdata` (65,536).
///
/// NEO•ONE sends more than [`MAX_INV_HASHES`]: a `getdata` of 501 hashes,
/// and a `mempool` answer of its whole pool in one `inv` (up to 5000
/// hashes, its pool size). 65,536 leaves thirteen times that, and bounds an
/// inventory at 2 MiB ([`limits::MAX_INV_PAYLOAD`]) where the default array
/// maximum (16,777,216 hashes, which neo-go 2.x accepts) would allow any
/// length up to the frame cap.
pub const MAX_INV_HASHES_RECEIVE: u64 = 0x1_0000;
/// Most `hash_start` entries in `getheaders`/`getblocks`.
pub const MAX_HASH_START: u64 = 16;
/// Most addresses in one `addr` (and at least one is required).
pub const MAX_ADDRS: u64 = 200;
/// Longest user agent in `version`, in bytes.
pub const MAX_USER_AGENT: u64 = 1024;
/// Most attributes of one transaction.
pub const MAX_TX_ATTRIBUTES: u64 = 16;
/// Most outputs of one transaction.
pub const MAX_TX_OUTPUTS: u64 = 65536;
/// Largest transaction the reference node handles; a bigger `tx` message is
/// ignored by it (not a decode error), and never relayed by anyone. The
/// default cap of a `tx` payload ([`PayloadLimits::LEGACY`]).
///
/// [`PayloadLimits::LEGACY`]: crate::wire::PayloadLimits::LEGACY
pub const MAX_TX_SIZE: usize = 102_400;
/// Default cap of a `block` payload: the frame cap ([`MAX_PAYLOAD`]).
///
/// Nothing in NEO 2 bounds a block below it: the reference node has no block
/// size setting, and the consensus policy took up to 500 transactions per
/// block (neo-go 2.x MainNet and TestNet configurations, later 200) of up to
/// [`MAX_TX_SIZE`] bytes each, 51 MB. A network that knows its largest block
/// should set [`PayloadLimits::block`](crate::wire::PayloadLimits::block).
pub const MAX_BLOCK_SIZE: usize = MAX_PAYLOAD;
/// Most transactions in one block (and at least one is required).
pub const MAX_BLOCK_TXS: u64 = 65535;
/// Longest witness script (invocation or verification), in bytes.
pub const MAX_WITNESS_SCRIPT: u64 = 65536;
/// Longest `InvocationTransaction` script, in bytes (it must not be empty).
pub const MAX_INVOCATION_SCRIPT: u64 = 65536;
/// Most state roots in one `roots` message.
pub const MAX_STATE_ROOTS: u64 = 200;
/// Longest consensus message inside a `consensus` payload (the default array maximum).
pub const MAX_CONSENSUS_DATA: u64 = MAX_ARRAY_DEFAULT;
/// Longest asset name of a `RegisterTransaction`, in bytes.
pub const MAX_REGISTER_NAME: u64 = 1024;
/// Longest script and parameter list of a `PublishTransaction`, in bytes.
pub const MAX_PUBLISH_SCRIPT: u64 = 65535;
/// Longest name, code version, author and e-mail of a `PublishTransaction`, in bytes.
pub const MAX_PUBLISH_STRING: u64 = 252;
/// Longest description of a `PublishTransaction`, in bytes.
pub const MAX_PUBLISH_DESCRIPTION: u64 = 65536;
/// Most state descriptors of a `StateTransaction`.
pub const MAX_STATE_DESCRIPTORS: u64 = 16;
/// Longest state descriptor key, in bytes.
pub const MAX_STATE_KEY: u64 = 100;
/// Longest state descriptor field name, in bytes.
pub const MAX_STATE_FIELD: u64 = 32;
/// Longest state descriptor value, in bytes.
pub const MAX_STATE_VALUE: u64 = 65535;

/// A fixed-point amount with 8 decimals, as the wire carries it (an `i64`
/// holding the value times 10^8).
///
/// `Display` gives the decimal form RPC shows: `100000000` → `1`,
/// `150000000` → `1.5`, `1` → `0.00000001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fixed8(pub i64);

impl Fixed8 {
    /// 10^8: the raw value of one unit.
    pub const ONE: Fixed8 = Fixed8(100_000_000);
}

impl fmt::Display for Fixed8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (int, frac) = (abs / 100_000_000, abs % 100_000_000);
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let digits = format!("{frac:08}");
        write!(f, "{sign}{int}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed8_display() {
        for (raw, text) in [
            (0, "0"),
            (100_000_000, "1"),
            (150_000_000, "1.5"),
            (1, "0.00000001"),
            (-150_000_000, "-1.5"),
            (5_786_800_133_972, "57868.00133972"),
            (i64::MIN, "-92233720368.54775808"),
        ] {
            assert_eq!(Fixed8(raw).to_string(), text);
        }
    }

    #[test]
    fn hash_constants_match_their_display_form() {
        assert_eq!(
            MAINNET_GENESIS_HASH.to_display_hex(),
            "d42561e3d30e15be6400b6df2f328e02d2bf6354c41dce433bc57687c82144bf"
        );
        assert_eq!(
            TESTNET_GENESIS_HASH.to_display_hex(),
            "b3181718ef6167105b70920e4a8fbbd0a0a56aacf460d70e10ba6fa1668f1fef"
        );
        assert_eq!(
            GOVERNING_TOKEN_ID.to_display_hex(),
            "c56f33fc6ecfcd0c225c4ab356fee59390af8560be0e930faebe74a6daff7c9b"
        );
        assert_eq!(
            UTILITY_TOKEN_ID.to_display_hex(),
            "602c79718b16e442de58778e148d0b1084e3b2dffd5de6b7b16cee7969282de7"
        );
        assert_eq!(checksum(&[]), EMPTY_CHECKSUM);
    }
}
