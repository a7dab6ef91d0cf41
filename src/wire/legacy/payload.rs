//! Message payloads other than blocks and transactions (§6 of the Legacy wire reference).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use super::block::BlockBase;
use super::{
    MAX_ADDRS, MAX_BLOCK_TXS, MAX_CONSENSUS_DATA, MAX_HASH_START, MAX_INV_HASHES_RECEIVE,
    MAX_STATE_ROOTS, MAX_USER_AGENT, MAX_WITNESS_SCRIPT,
};
use crate::wire::{
    Decode, DecodeError, Encode, Reader, UInt256, Witness, WriteExt, encode_vec, hash256,
    var_bytes_size, var_int_size, vec_size,
};

/// Payload of `version`: 27 bytes plus the user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionPayload {
    /// Protocol version (always 0).
    pub version: u32,
    /// Service bits (1 = `NODE_NETWORK`).
    pub services: u64,
    /// Unix time in seconds.
    pub timestamp: u32,
    /// Listening TCP port, little-endian on the wire (0 = not listening).
    pub port: u16,
    /// Random number chosen once per process, to detect self-connections.
    pub nonce: u32,
    /// Software name, e.g. `/neo:2.13.0/` (at most 1024 bytes).
    pub user_agent: String,
    /// Height of the sender's chain.
    pub start_height: u32,
    /// Whether the sender wants `inv` relays.
    pub relay: bool,
}

impl Decode for VersionPayload {
    const NAME: &'static str = "version";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(VersionPayload {
            version: r.u32("version.version")?,
            services: r.u64("version.services")?,
            timestamp: r.u32("version.timestamp")?,
            port: r.u16("version.port")?,
            nonce: r.u32("version.nonce")?,
            user_agent: r.var_string(MAX_USER_AGENT, "version.user_agent")?,
            start_height: r.u32("version.start_height")?,
            relay: r.bool_lenient("version.relay")?,
        })
    }
}

impl Encode for VersionPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.version);
        out.put_u64_le(self.services);
        out.put_u32_le(self.timestamp);
        out.put_u16_le(self.port);
        out.put_u32_le(self.nonce);
        out.put_var_bytes(self.user_agent.as_bytes());
        out.put_u32_le(self.start_height);
        out.put_u8(self.relay.into());
    }
    fn size(&self) -> usize {
        4 + 8 + 4 + 2 + 4 + var_bytes_size(self.user_agent.len()) + 4 + 1
    }
}

/// One entry of `addr` (30 bytes): when the peer was seen, its services and
/// its address. The port is **big-endian** on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkAddressWithTime {
    /// Unix time in seconds.
    pub timestamp: u32,
    /// Service bits.
    pub services: u64,
    /// IPv6 address; IPv4 peers are IPv4-mapped (`::ffff:a.b.c.d`).
    pub address: Ipv6Addr,
    /// TCP port.
    pub port: u16,
}

impl NetworkAddressWithTime {
    /// The socket address, with IPv4-mapped addresses turned back into IPv4.
    pub fn socket_addr(&self) -> SocketAddr {
        let ip = match self.address.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(self.address),
        };
        SocketAddr::new(ip, self.port)
    }

    /// An entry for `addr`; IPv4 addresses are stored IPv4-mapped.
    pub fn new(timestamp: u32, services: u64, addr: SocketAddr) -> Self {
        let address = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        NetworkAddressWithTime {
            timestamp,
            services,
            address,
            port: addr.port(),
        }
    }
}

impl Decode for NetworkAddressWithTime {
    const NAME: &'static str = "addr.entry";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(NetworkAddressWithTime {
            timestamp: r.u32("addr.timestamp")?,
            services: r.u64("addr.services")?,
            address: Ipv6Addr::from(r.array::<16>("addr.address")?),
            port: r.u16_be("addr.port")?,
        })
    }
}

impl Encode for NetworkAddressWithTime {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.timestamp);
        out.put_u64_le(self.services);
        out.put_slice(&self.address.octets());
        out.put_u16(self.port);
    }
    fn size(&self) -> usize {
        30
    }
}

/// Payload of `addr`: at most 200 peer addresses.
///
/// An empty list decodes: it is how a node that knows no address answers
/// `getaddr` (NEO•ONE accepts one too). The encoder never sends one
/// ([`Message::check_limits`](super::Message::check_limits) wants 1 to 200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrPayload {
    /// The addresses.
    pub addresses: Vec<NetworkAddressWithTime>,
}

impl Decode for AddrPayload {
    const NAME: &'static str = "addr";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let addresses = r.vec(MAX_ADDRS, 30, "addr", NetworkAddressWithTime::decode)?;
        Ok(AddrPayload { addresses })
    }
}

impl Encode for AddrPayload {
    fn encode(&self, out: &mut BytesMut) {
        encode_vec(&self.addresses, out);
    }
    fn size(&self) -> usize {
        vec_size(&self.addresses)
    }
}

/// Payload of `getheaders` and `getblocks`: where to start and stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetBlocksPayload {
    /// Start hashes (at most 16; senders use one, the current tip).
    pub hash_start: Vec<UInt256>,
    /// Stop hash; zero means "as many as allowed".
    pub hash_stop: UInt256,
}

impl Decode for GetBlocksPayload {
    const NAME: &'static str = "getblocks";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(GetBlocksPayload {
            hash_start: r.vec(MAX_HASH_START, 32, "getblocks.hash_start", |r| {
                r.uint256("getblocks.hash_start")
            })?,
            hash_stop: r.uint256("getblocks.hash_stop")?,
        })
    }
}

impl Encode for GetBlocksPayload {
    fn encode(&self, out: &mut BytesMut) {
        encode_vec(&self.hash_start, out);
        out.put_slice(&self.hash_stop.0);
    }
    fn size(&self) -> usize {
        vec_size(&self.hash_start) + 32
    }
}

/// Inventory type of `inv` and `getdata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum InventoryType {
    /// 0x01: a transaction (fetched as `tx`).
    Tx = 0x01,
    /// 0x02: a block (fetched as `block`, or `merkleblock` under a filter).
    Block = 0x02,
    /// 0x03: a state root (fetched as `stateroot`; not every node knows it).
    StateRoot = 0x03,
    /// 0xE0: a consensus payload (fetched as `consensus`).
    Consensus = 0xE0,
}

impl InventoryType {
    /// The type for a wire byte; `None` for undefined bytes.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => InventoryType::Tx,
            0x02 => InventoryType::Block,
            0x03 => InventoryType::StateRoot,
            0xE0 => InventoryType::Consensus,
            _ => return None,
        })
    }

    /// The reference node's name (`"TX"`, `"Block"`, `"StateRoot"`, `"Consensus"`).
    pub fn name(self) -> &'static str {
        match self {
            InventoryType::Tx => "TX",
            InventoryType::Block => "Block",
            InventoryType::StateRoot => "StateRoot",
            InventoryType::Consensus => "Consensus",
        }
    }
}

/// Payload of `inv` and `getdata`: a type and hashes.
///
/// The decoder accepts up to [`MAX_INV_HASHES_RECEIVE`] hashes, because a
/// NEO•ONE node sends more than 500 in one message; [`MAX_INV_HASHES`] (500)
/// is what may be sent.
///
/// [`MAX_INV_HASHES`]: super::MAX_INV_HASHES
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvPayload {
    /// What the hashes identify.
    pub kind: InventoryType,
    /// The hashes (may be empty).
    pub hashes: Vec<UInt256>,
}

impl Decode for InvPayload {
    const NAME: &'static str = "inv";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let b = r.u8("inv.type")?;
        let kind = InventoryType::from_byte(b).ok_or(DecodeError::InvalidValue {
            what: "inv.type",
            value: b.into(),
        })?;
        let hashes = r.vec(MAX_INV_HASHES_RECEIVE, 32, "inv.hashes", |r| {
            r.uint256("inv.hashes")
        })?;
        Ok(InvPayload { kind, hashes })
    }
}

impl Encode for InvPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.kind as u8);
        encode_vec(&self.hashes, out);
    }
    fn size(&self) -> usize {
        1 + vec_size(&self.hashes)
    }
}

/// Payload of `consensus`: a signed dBFT message, relayed opaquely.
///
/// The message itself (`data`) is kept as bytes: its layout differs between
/// dBFT 1.0 (NEO•ONE, old C#) and dBFT 2.0 (C# 2.10+, neo-go), and only
/// consensus nodes need it. [`ConsensusPayload::message_type`] and
/// [`ConsensusPayload::view_number`] read its first two bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusPayload {
    /// Format version (0).
    pub version: u32,
    /// Hash of the block the round builds on.
    pub prev_hash: UInt256,
    /// Height being agreed on.
    pub block_index: u32,
    /// Index of the sender among the validators.
    pub validator_index: u16,
    /// Unix time in seconds.
    pub timestamp: u32,
    /// The serialised consensus message.
    pub data: Bytes,
    /// The sender's signature.
    pub witness: Witness,
}

impl ConsensusPayload {
    /// Length of the hashed part.
    fn unsigned_size(&self) -> usize {
        4 + 32 + 4 + 2 + 4 + var_bytes_size(self.data.len())
    }

    fn encode_unsigned(&self, out: &mut BytesMut) {
        out.put_u32_le(self.version);
        out.put_slice(&self.prev_hash.0);
        out.put_u32_le(self.block_index);
        out.put_u16_le(self.validator_index);
        out.put_u32_le(self.timestamp);
        out.put_var_bytes(&self.data);
    }

    /// The payload hash (its inventory hash): `Hash256` of the fields before the marker.
    pub fn hash(&self) -> UInt256 {
        let mut buf = BytesMut::with_capacity(self.unsigned_size());
        self.encode_unsigned(&mut buf);
        UInt256(hash256(&buf))
    }

    /// The consensus message type (first byte of `data`), e.g. `0x00` ChangeView,
    /// `0x20` PrepareRequest; `None` if `data` is empty.
    pub fn message_type(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// The view number (second byte of `data`), if present.
    pub fn view_number(&self) -> Option<u8> {
        self.data.get(1).copied()
    }
}

impl Decode for ConsensusPayload {
    const NAME: &'static str = "consensus";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let version = r.u32("consensus.version")?;
        let prev_hash = r.uint256("consensus.prev_hash")?;
        let block_index = r.u32("consensus.block_index")?;
        let validator_index = r.u16("consensus.validator_index")?;
        let timestamp = r.u32("consensus.timestamp")?;
        let data = r.var_bytes(MAX_CONSENSUS_DATA, "consensus.data")?;
        let marker = r.u8("consensus.witness_marker")?;
        if marker != 1 {
            return Err(DecodeError::InvalidValue {
                what: "consensus.witness_marker",
                value: marker.into(),
            });
        }
        Ok(ConsensusPayload {
            version,
            prev_hash,
            block_index,
            validator_index,
            timestamp,
            data,
            witness: Witness::decode_limited(r, MAX_WITNESS_SCRIPT)?,
        })
    }
}

impl Encode for ConsensusPayload {
    fn encode(&self, out: &mut BytesMut) {
        self.encode_unsigned(out);
        out.put_u8(1);
        self.witness.encode(out);
    }
    fn size(&self) -> usize {
        self.unsigned_size() + 1 + self.witness.size()
    }
}

/// Payload of `merkleblock`: a header and a pruned merkle tree of the
/// transactions that matched the peer's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleBlockPayload {
    /// Header fields and witness.
    pub base: BlockBase,
    /// Number of transactions in the block (at most 65535; a var-int on the wire).
    pub tx_count: u32,
    /// Hashes of the pruned tree (at most `tx_count`).
    pub hashes: Vec<UInt256>,
    /// Flag bits, one per node (at most `(tx_count + 7) / 8` bytes).
    pub flags: Bytes,
}

impl Decode for MerkleBlockPayload {
    const NAME: &'static str = "merkleblock";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let base = BlockBase::decode(r)?;
        let tx_count = r.var_int(MAX_BLOCK_TXS, "merkleblock.tx_count")?;
        let hashes = r.vec(tx_count, 32, "merkleblock.hashes", |r| {
            r.uint256("merkleblock.hashes")
        })?;
        let flags = r.var_bytes(tx_count.div_ceil(8), "merkleblock.flags")?;
        Ok(MerkleBlockPayload {
            base,
            // at most MAX_BLOCK_TXS
            tx_count: tx_count as u32,
            hashes,
            flags,
        })
    }
}

impl Encode for MerkleBlockPayload {
    fn encode(&self, out: &mut BytesMut) {
        self.base.encode(out);
        out.put_var_int(self.tx_count.into());
        encode_vec(&self.hashes, out);
        out.put_var_bytes(&self.flags);
    }
    fn size(&self) -> usize {
        self.base.size()
            + var_int_size(self.tx_count.into())
            + vec_size(&self.hashes)
            + var_bytes_size(self.flags.len())
    }
}

/// Payload of `getroots`: a range of state roots (`count >= 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GetStateRootsPayload {
    /// Height of the first root.
    pub start_index: u32,
    /// Number of roots wanted (at least 1).
    pub count: u32,
}

impl Decode for GetStateRootsPayload {
    const NAME: &'static str = "getroots";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let start_index = r.u32("getroots.start_index")?;
        let count = r.u32("getroots.count")?;
        if count == 0 {
            return Err(DecodeError::TooFew {
                what: "getroots.count",
                count: 0,
                min: 1,
            });
        }
        Ok(GetStateRootsPayload { start_index, count })
    }
}

impl Encode for GetStateRootsPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.start_index);
        out.put_u32_le(self.count);
    }
    fn size(&self) -> usize {
        8
    }
}

/// A state root (payload of `stateroot`, element of `roots`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRoot {
    /// Format version.
    pub version: u8,
    /// Block height it belongs to.
    pub index: u32,
    /// Hash of the previous state root.
    pub prev_hash: UInt256,
    /// Root of the state's Merkle Patricia trie.
    pub root: UInt256,
    /// Validators' witness; the wire carries an array of 0 or 1 witnesses.
    pub witness: Option<Witness>,
}

impl StateRoot {
    /// The four hashed fields.
    pub fn unsigned_bytes(&self) -> [u8; 69] {
        let mut out = [0u8; 69];
        out[0] = self.version;
        out[1..5].copy_from_slice(&self.index.to_le_bytes());
        out[5..37].copy_from_slice(&self.prev_hash.0);
        out[37..69].copy_from_slice(&self.root.0);
        out
    }

    /// The state root's hash: `Hash256(version ‖ index ‖ prev_hash ‖ root)`.
    pub fn hash(&self) -> UInt256 {
        UInt256(hash256(&self.unsigned_bytes()))
    }
}

impl Decode for StateRoot {
    const NAME: &'static str = "stateroot";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let version = r.u8("stateroot.version")?;
        let index = r.u32("stateroot.index")?;
        let prev_hash = r.uint256("stateroot.prev_hash")?;
        let root = r.uint256("stateroot.root")?;
        let witness = match r.count(1, 2, "stateroot.witnesses")? {
            0 => None,
            _ => Some(Witness::decode_limited(r, MAX_WITNESS_SCRIPT)?),
        };
        Ok(StateRoot {
            version,
            index,
            prev_hash,
            root,
            witness,
        })
    }
}

impl Encode for StateRoot {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.unsigned_bytes());
        match &self.witness {
            None => out.put_u8(0),
            Some(w) => {
                out.put_u8(1);
                w.encode(out);
            }
        }
    }
    fn size(&self) -> usize {
        69 + 1 + self.witness.as_ref().map_or(0, Encode::size)
    }
}

/// Payload of `roots`: at most 200 state roots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateRootsPayload {
    /// The roots.
    pub roots: Vec<StateRoot>,
}

impl Decode for StateRootsPayload {
    const NAME: &'static str = "roots";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(StateRootsPayload {
            roots: r.vec(MAX_STATE_ROOTS, 70, "roots", StateRoot::decode)?,
        })
    }
}

impl Encode for StateRootsPayload {
    fn encode(&self, out: &mut BytesMut) {
        encode_vec(&self.roots, out);
    }
    fn size(&self) -> usize {
        vec_size(&self.roots)
    }
}
