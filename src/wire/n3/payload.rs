//! Payloads of the N3 messages other than blocks and transactions.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use super::capability::{decode_capabilities, validate_capabilities};
use super::tx::{check_count, decode_witness, validate_witness};
use super::{
    Header, MAX_ADDRESSES, MAX_CATEGORY, MAX_EXTENSIBLE_DATA, MAX_HEADERS_REQUEST, MAX_INV_HASHES,
    MAX_MPT_HASHES, MAX_TRANSACTIONS_PER_BLOCK, MAX_USER_AGENT, NodeCapability, Transaction,
};
use crate::wire::{
    Decode, DecodeError, Encode, MAX_ARRAY_DEFAULT, MAX_PAYLOAD, Reader, UInt160, UInt256, Witness,
    WriteExt, encode_vec, sha256, var_bytes_size, var_int_size, vec_size,
};

/// `version` (0x00): the first message of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionPayload {
    /// Network magic.
    pub network: u32,
    /// Protocol version (0).
    pub version: u32,
    /// Unix time in seconds.
    pub timestamp: u32,
    /// Random number fixed per node process (detects self and duplicate connections).
    pub nonce: u32,
    /// Software name, e.g. `/Neo:3.9.1/` (at most 1024 bytes).
    pub user_agent: String,
    /// At most 32 capabilities, known types at most once each.
    pub capabilities: Vec<NodeCapability>,
}

/// Height advertised by a `FullNode` capability, if any.
fn full_node_height(caps: &[NodeCapability]) -> Option<u32> {
    caps.iter().find_map(|c| match c {
        NodeCapability::FullNode { start_height } => Some(*start_height),
        _ => None,
    })
}

/// Port advertised by a `TcpServer` capability, if any.
fn tcp_port(caps: &[NodeCapability]) -> Option<u16> {
    caps.iter().find_map(|c| match c {
        NodeCapability::TcpServer { port } => Some(*port),
        _ => None,
    })
}

impl VersionPayload {
    /// The peer's height if it announced itself as a full node.
    pub fn start_height(&self) -> Option<u32> {
        full_node_height(&self.capabilities)
    }

    /// True if the peer announced the `FullNode` capability.
    pub fn is_full_node(&self) -> bool {
        self.start_height().is_some()
    }

    /// The port the peer listens on, if it announced one.
    pub fn tcp_port(&self) -> Option<u16> {
        tcp_port(&self.capabilities)
    }

    /// False if the peer asked not to receive compressed messages.
    pub fn allow_compression(&self) -> bool {
        !self
            .capabilities
            .contains(&NodeCapability::DisableCompression)
    }

    /// Checks what decoding checks.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_count(
            "version.user_agent",
            self.user_agent.len(),
            0,
            MAX_USER_AGENT,
        )?;
        validate_capabilities(&self.capabilities)
    }
}

impl Decode for VersionPayload {
    const NAME: &'static str = "version";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(VersionPayload {
            network: r.u32("version.network")?,
            version: r.u32("version.version")?,
            timestamp: r.u32("version.timestamp")?,
            nonce: r.u32("version.nonce")?,
            user_agent: r.var_string(MAX_USER_AGENT as u64, "version.user_agent")?,
            capabilities: decode_capabilities(r)?,
        })
    }
}

impl Encode for VersionPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.network);
        out.put_u32_le(self.version);
        out.put_u32_le(self.timestamp);
        out.put_u32_le(self.nonce);
        out.put_var_bytes(self.user_agent.as_bytes());
        encode_vec(&self.capabilities, out);
    }

    fn size(&self) -> usize {
        16 + var_bytes_size(self.user_agent.len()) + vec_size(&self.capabilities)
    }
}

/// One entry of an `addr` payload.
///
/// There is no port field: the port to dial is the one of the `TcpServer`
/// capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAddressWithTime {
    /// Unix time in seconds (when the node was last seen).
    pub timestamp: u32,
    /// The address; IPv4 addresses are IPv4-mapped (`::ffff:a.b.c.d`).
    pub address: Ipv6Addr,
    /// The node's capabilities.
    pub capabilities: Vec<NodeCapability>,
}

impl NetworkAddressWithTime {
    /// The IP address, IPv4-mapped addresses turned back into IPv4.
    pub fn ip(&self) -> IpAddr {
        self.address.to_canonical()
    }

    /// The `TcpServer` port, if any.
    pub fn tcp_port(&self) -> Option<u16> {
        tcp_port(&self.capabilities)
    }

    /// The address to dial: the IP with the `TcpServer` port. `None` if the
    /// entry has no `TcpServer` capability or its port is 0 (the reference
    /// nodes ignore such entries).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.tcp_port()
            .filter(|&port| port != 0)
            .map(|port| SocketAddr::new(self.ip(), port))
    }
}

impl Decode for NetworkAddressWithTime {
    const NAME: &'static str = "address";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(NetworkAddressWithTime {
            timestamp: r.u32("addr.timestamp")?,
            address: Ipv6Addr::from(r.array::<16>("addr.address")?),
            capabilities: decode_capabilities(r)?,
        })
    }
}

impl Encode for NetworkAddressWithTime {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.timestamp);
        out.put_slice(&self.address.octets());
        encode_vec(&self.capabilities, out);
    }

    fn size(&self) -> usize {
        20 + vec_size(&self.capabilities)
    }
}

/// `addr` (0x11): at most 200 known node addresses, the answer to `getaddr`.
///
/// An empty list decodes: neo-go answers `getaddr` with one when it knows
/// no address. It is never sent ([`Message::validate`](super::Message::validate)
/// wants 1 to 200, as C# and neo-go do on receive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrPayload {
    /// The addresses.
    pub addresses: Vec<NetworkAddressWithTime>,
}

impl AddrPayload {
    /// Checks what decoding checks (at most 200 addresses, valid capabilities).
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_count("addr.addresses", self.addresses.len(), 0, MAX_ADDRESSES)?;
        self.addresses
            .iter()
            .try_for_each(|a| validate_capabilities(&a.capabilities))
    }
}

impl Decode for AddrPayload {
    const NAME: &'static str = "addr";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let addresses = r.vec(
            MAX_ADDRESSES as u64,
            21,
            "addr.addresses",
            NetworkAddressWithTime::decode,
        )?;
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

/// `getheaders` (0x20) / `getblockbyindex` (0x29): a range of heights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetBlockByIndexPayload {
    /// First height requested (inclusive).
    pub index_start: u32,
    /// How many: `-1` for "as many as allowed", otherwise 1..=2000.
    pub count: i16,
}

impl GetBlockByIndexPayload {
    /// Checks the count (-1 or 1..=2000).
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.count == -1 || (1..=MAX_HEADERS_REQUEST).contains(&self.count) {
            Ok(())
        } else {
            Err(DecodeError::InvalidValue {
                what: "getblockbyindex.count",
                value: u64::from(self.count as u16),
            })
        }
    }
}

impl Decode for GetBlockByIndexPayload {
    const NAME: &'static str = "getblockbyindex";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let p = GetBlockByIndexPayload {
            index_start: r.u32("getblockbyindex.index_start")?,
            count: r.i16("getblockbyindex.count")?,
        };
        p.validate()?;
        Ok(p)
    }
}

impl Encode for GetBlockByIndexPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.index_start);
        out.put_i16_le(self.count);
    }
    fn size(&self) -> usize {
        6
    }
}

/// `getblocks` (0x24): asks for an `inv` of the block hashes after `hash_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetBlocksPayload {
    /// The last block the sender has.
    pub hash_start: UInt256,
    /// How many: `-1` for "as many as allowed", otherwise at least 1.
    pub count: i16,
}

impl GetBlocksPayload {
    /// Checks the count (-1 or positive).
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.count == -1 || self.count >= 1 {
            Ok(())
        } else {
            Err(DecodeError::InvalidValue {
                what: "getblocks.count",
                value: u64::from(self.count as u16),
            })
        }
    }
}

impl Decode for GetBlocksPayload {
    const NAME: &'static str = "getblocks";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let p = GetBlocksPayload {
            hash_start: r.uint256("getblocks.hash_start")?,
            count: r.i16("getblocks.count")?,
        };
        p.validate()?;
        Ok(p)
    }
}

impl Encode for GetBlocksPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.hash_start.0);
        out.put_i16_le(self.count);
    }
    fn size(&self) -> usize {
        34
    }
}

/// The kind of object an inventory names (equal to its command byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum InventoryType {
    /// `0x2B`: a transaction.
    Transaction = 0x2B,
    /// `0x2C`: a block.
    Block = 0x2C,
    /// `0x2E`: an extensible payload (consensus, state roots).
    Extensible = 0x2E,
    /// `0x50`: a neo-go notary request (extension).
    P2PNotaryRequest = 0x50,
}

impl InventoryType {
    /// The type for a byte, if it is defined.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x2B => InventoryType::Transaction,
            0x2C => InventoryType::Block,
            0x2E => InventoryType::Extensible,
            0x50 => InventoryType::P2PNotaryRequest,
            _ => return None,
        })
    }

    /// Name as the reference node spells it.
    pub fn name(self) -> &'static str {
        match self {
            InventoryType::Transaction => "TX",
            InventoryType::Block => "Block",
            InventoryType::Extensible => "Extensible",
            InventoryType::P2PNotaryRequest => "P2PNotaryRequest",
        }
    }
}

/// `inv` (0x27), `getdata` (0x28), `notfound` (0x2A): up to 500 hashes of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvPayload {
    /// What the hashes name.
    pub kind: InventoryType,
    /// The hashes (at most 500; never send an empty list).
    pub hashes: Vec<UInt256>,
}

impl InvPayload {
    /// Checks what decoding checks.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_count("inv.hashes", self.hashes.len(), 0, MAX_INV_HASHES)
    }
}

impl Decode for InvPayload {
    const NAME: &'static str = "inv";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let raw = r.u8("inv.type")?;
        let kind = InventoryType::from_u8(raw).ok_or(DecodeError::InvalidValue {
            what: "inv.type",
            value: raw.into(),
        })?;
        let hashes = r.vec(MAX_INV_HASHES as u64, 32, "inv.hashes", |r| {
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
        1 + var_int_size(self.hashes.len() as u64) + 32 * self.hashes.len()
    }
}

/// `extensible` (0x2E): a signed payload of a service (consensus `dBFT`,
/// `StateService`), valid for a range of heights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensiblePayload {
    /// The service, e.g. `"dBFT"` (at most 32 bytes).
    pub category: String,
    /// First height at which the payload is valid.
    pub valid_block_start: u32,
    /// First height at which it is no longer valid (greater than the start).
    pub valid_block_end: u32,
    /// Script hash of the signer.
    pub sender: UInt160,
    /// The service's data.
    pub data: Bytes,
    /// The sender's witness (on the wire: a count byte that must be 1, then the witness).
    pub witness: Witness,
}

/// The common prefix of a dBFT consensus message, read from an
/// [`ExtensiblePayload`]'s data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbftMessageHeader {
    /// Message type (`0x00` ChangeView, `0x20` PrepareRequest, `0x21`
    /// PrepareResponse, `0x30` Commit, `0x40` RecoveryRequest, `0x41` RecoveryMessage).
    pub kind: u8,
    /// Height of the block being agreed on.
    pub block_index: u32,
    /// Index of the validator that sent it.
    pub validator_index: u8,
    /// View number.
    pub view_number: u8,
}

impl DbftMessageHeader {
    /// Name of the message type.
    pub fn name(&self) -> &'static str {
        match self.kind {
            0x00 => "ChangeView",
            0x20 => "PrepareRequest",
            0x21 => "PrepareResponse",
            0x30 => "Commit",
            0x40 => "RecoveryRequest",
            0x41 => "RecoveryMessage",
            _ => "Unknown",
        }
    }
}

impl ExtensiblePayload {
    /// Category of consensus messages.
    pub const DBFT: &'static str = "dBFT";

    /// Writes the hashed part (every field before the witness).
    pub fn encode_unsigned(&self, out: &mut BytesMut) {
        out.put_var_bytes(self.category.as_bytes());
        out.put_u32_le(self.valid_block_start);
        out.put_u32_le(self.valid_block_end);
        out.put_slice(&self.sender.0);
        out.put_var_bytes(&self.data);
    }

    fn unsigned_size(&self) -> usize {
        var_bytes_size(self.category.len()) + 28 + var_bytes_size(self.data.len())
    }

    /// The payload hash: SHA-256 of the hashed part.
    pub fn hash(&self) -> UInt256 {
        let mut buf = BytesMut::with_capacity(self.unsigned_size());
        self.encode_unsigned(&mut buf);
        UInt256(sha256(&buf))
    }

    /// The dBFT message prefix, if the category is `dBFT` and the data is long enough.
    pub fn dbft(&self) -> Option<DbftMessageHeader> {
        if self.category != Self::DBFT {
            return None;
        }
        let d = self.data.get(..7)?;
        Some(DbftMessageHeader {
            kind: d[0],
            block_index: u32::from_le_bytes([d[1], d[2], d[3], d[4]]),
            validator_index: d[5],
            view_number: d[6],
        })
    }

    /// Checks what decoding checks.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_count("extensible.category", self.category.len(), 0, MAX_CATEGORY)?;
        check_range(self.valid_block_start, self.valid_block_end)?;
        check_count("extensible.data", self.data.len(), 0, MAX_EXTENSIBLE_DATA)?;
        validate_witness(&self.witness)
    }
}

fn check_range(start: u32, end: u32) -> Result<(), DecodeError> {
    if start >= end {
        return Err(DecodeError::Invalid {
            what: "extensible.valid_block_end",
            reason: "must be greater than valid_block_start",
        });
    }
    Ok(())
}

impl Decode for ExtensiblePayload {
    const NAME: &'static str = "extensible";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let category = r.var_string(MAX_CATEGORY as u64, "extensible.category")?;
        let valid_block_start = r.u32("extensible.valid_block_start")?;
        let valid_block_end = r.u32("extensible.valid_block_end")?;
        check_range(valid_block_start, valid_block_end)?;
        let sender = r.uint160("extensible.sender")?;
        let data = r.var_bytes(MAX_EXTENSIBLE_DATA as u64, "extensible.data")?;
        match r.u8("extensible.witnesses")? {
            1 => {}
            v => {
                return Err(DecodeError::InvalidValue {
                    what: "extensible.witnesses",
                    value: v.into(),
                });
            }
        }
        Ok(ExtensiblePayload {
            category,
            valid_block_start,
            valid_block_end,
            sender,
            data,
            witness: decode_witness(r)?,
        })
    }
}

impl Encode for ExtensiblePayload {
    fn encode(&self, out: &mut BytesMut) {
        self.encode_unsigned(out);
        out.put_u8(1);
        self.witness.encode(out);
    }
    fn size(&self) -> usize {
        self.unsigned_size() + 1 + self.witness.size()
    }
}

/// `merkleblock` (0x38): a header with the part of the Merkle tree that
/// proves the transactions matching a bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleBlockPayload {
    /// The block header.
    pub header: Header,
    /// Number of transactions in the block (at most 65535).
    pub tx_count: u32,
    /// Tree hashes (at most `tx_count`).
    pub hashes: Vec<UInt256>,
    /// Tree traversal flags (at most `(max(tx_count, 1) + 7) / 8` bytes).
    pub flags: Bytes,
}

impl MerkleBlockPayload {
    fn max_flags(tx_count: u32) -> usize {
        (tx_count.max(1) as usize).div_ceil(8)
    }

    /// Checks what decoding checks.
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.header.validate()?;
        check_count(
            "merkleblock.tx_count",
            self.tx_count as usize,
            0,
            MAX_TRANSACTIONS_PER_BLOCK,
        )?;
        check_count(
            "merkleblock.hashes",
            self.hashes.len(),
            0,
            self.tx_count as usize,
        )?;
        check_count(
            "merkleblock.flags",
            self.flags.len(),
            0,
            Self::max_flags(self.tx_count),
        )
    }
}

impl Decode for MerkleBlockPayload {
    const NAME: &'static str = "merkleblock";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let header = Header::decode(r)?;
        // Bounded by 65535, so it fits in u32.
        let tx_count = r.var_int(MAX_TRANSACTIONS_PER_BLOCK as u64, "merkleblock.tx_count")? as u32;
        let hashes = r.vec(tx_count.into(), 32, "merkleblock.hashes", |r| {
            r.uint256("merkleblock.hashes")
        })?;
        let flags = r.var_bytes(Self::max_flags(tx_count) as u64, "merkleblock.flags")?;
        Ok(MerkleBlockPayload {
            header,
            tx_count,
            hashes,
            flags,
        })
    }
}

impl Encode for MerkleBlockPayload {
    fn encode(&self, out: &mut BytesMut) {
        self.header.encode(out);
        out.put_var_int(self.tx_count.into());
        encode_vec(&self.hashes, out);
        out.put_var_bytes(&self.flags);
    }
    fn size(&self) -> usize {
        self.header.size()
            + var_int_size(self.tx_count.into())
            + vec_size(&self.hashes)
            + var_bytes_size(self.flags.len())
    }
}

/// `p2pnotaryrequest` (0x50, neo-go extension): a transaction that needs
/// more signatures, with a fallback to run if it never gets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2PNotaryRequest {
    /// The transaction to complete.
    pub main_tx: Transaction,
    /// The transaction to send instead if the main one cannot be completed.
    pub fallback_tx: Transaction,
    /// Witness of the request's sender.
    pub witness: Witness,
}

impl P2PNotaryRequest {
    /// The request hash: SHA-256 of both transactions' encodings.
    pub fn hash(&self) -> UInt256 {
        let mut buf = BytesMut::with_capacity(self.main_tx.size() + self.fallback_tx.size());
        self.main_tx.encode(&mut buf);
        self.fallback_tx.encode(&mut buf);
        UInt256(sha256(&buf))
    }

    /// Checks what decoding checks.
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.main_tx.validate()?;
        self.fallback_tx.validate()?;
        validate_witness(&self.witness)
    }
}

impl Decode for P2PNotaryRequest {
    const NAME: &'static str = "p2pnotaryrequest";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(P2PNotaryRequest {
            main_tx: Transaction::decode(r)?,
            fallback_tx: Transaction::decode(r)?,
            witness: decode_witness(r)?,
        })
    }
}

impl Encode for P2PNotaryRequest {
    fn encode(&self, out: &mut BytesMut) {
        self.main_tx.encode(out);
        self.fallback_tx.encode(out);
        self.witness.encode(out);
    }
    fn size(&self) -> usize {
        self.main_tx.size() + self.fallback_tx.size() + self.witness.size()
    }
}

/// `getmptdata` (0x51, neo-go extension): asks for MPT nodes by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMptDataPayload {
    /// Node hashes (at most 32).
    pub hashes: Vec<UInt256>,
}

impl GetMptDataPayload {
    /// Checks what decoding checks.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_count("getmptdata.hashes", self.hashes.len(), 0, MAX_MPT_HASHES)
    }
}

impl Decode for GetMptDataPayload {
    const NAME: &'static str = "getmptdata";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(GetMptDataPayload {
            hashes: r.vec(MAX_MPT_HASHES as u64, 32, "getmptdata.hashes", |r| {
                r.uint256("getmptdata.hashes")
            })?,
        })
    }
}

impl Encode for GetMptDataPayload {
    fn encode(&self, out: &mut BytesMut) {
        encode_vec(&self.hashes, out);
    }
    fn size(&self) -> usize {
        vec_size(&self.hashes)
    }
}

/// `mptdata` (0x52, neo-go extension): serialised MPT nodes (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MptDataPayload {
    /// The nodes, each as var-bytes on the wire.
    pub nodes: Vec<Bytes>,
}

impl MptDataPayload {
    /// Checks what decoding checks.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_count(
            "mptdata.nodes",
            self.nodes.len(),
            1,
            MAX_ARRAY_DEFAULT as usize,
        )
    }
}

impl Decode for MptDataPayload {
    const NAME: &'static str = "mptdata";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let nodes = r.vec(MAX_ARRAY_DEFAULT, 1, "mptdata.nodes", |r| {
            r.var_bytes(MAX_PAYLOAD as u64, "mptdata.nodes")
        })?;
        check_count("mptdata.nodes", nodes.len(), 1, MAX_ARRAY_DEFAULT as usize)?;
        Ok(MptDataPayload { nodes })
    }
}

impl Encode for MptDataPayload {
    fn encode(&self, out: &mut BytesMut) {
        out.put_var_int(self.nodes.len() as u64);
        for n in &self.nodes {
            out.put_var_bytes(n);
        }
    }
    fn size(&self) -> usize {
        var_int_size(self.nodes.len() as u64)
            + self
                .nodes
                .iter()
                .map(|n| var_bytes_size(n.len()))
                .sum::<usize>()
    }
}
