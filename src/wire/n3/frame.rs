//! Framing (`flags ‖ command ‖ var-bytes payload`), LZ4 and the message enum.

use bytes::{BufMut, Bytes, BytesMut};

use super::limits::{self, compressed_cap};
use super::{
    AddrPayload, Block, COMPRESSION_MIN_SIZE, COMPRESSION_THRESHOLD, ExtensiblePayload,
    FLAG_COMPRESSED, FilterAddPayload, FilterLoadPayload, GetBlockByIndexPayload, GetBlocksPayload,
    GetMptDataPayload, HeadersPayload, InvPayload, MerkleBlockPayload, MptDataPayload,
    P2PNotaryRequest, PingPayload, Transaction, VersionPayload,
};
use crate::wire::{
    Decode, DecodeError, Encode, FrameError, MAX_PAYLOAD, PayloadLimits, WriteExt, var_int_size,
};

/// Every command byte the protocol defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Command {
    /// `0x00`
    Version = 0x00,
    /// `0x01`
    Verack = 0x01,
    /// `0x10`
    GetAddr = 0x10,
    /// `0x11`
    Addr = 0x11,
    /// `0x18`
    Ping = 0x18,
    /// `0x19`
    Pong = 0x19,
    /// `0x20`
    GetHeaders = 0x20,
    /// `0x21`
    Headers = 0x21,
    /// `0x24`
    GetBlocks = 0x24,
    /// `0x25`
    Mempool = 0x25,
    /// `0x27`
    Inv = 0x27,
    /// `0x28`
    GetData = 0x28,
    /// `0x29`
    GetBlockByIndex = 0x29,
    /// `0x2A`
    NotFound = 0x2A,
    /// `0x2B`
    Transaction = 0x2B,
    /// `0x2C`
    Block = 0x2C,
    /// `0x2E`
    Extensible = 0x2E,
    /// `0x2F`
    Reject = 0x2F,
    /// `0x30`
    FilterLoad = 0x30,
    /// `0x31`
    FilterAdd = 0x31,
    /// `0x32`
    FilterClear = 0x32,
    /// `0x38`
    MerkleBlock = 0x38,
    /// `0x40`
    Alert = 0x40,
    /// `0x50` (neo-go extension)
    P2PNotaryRequest = 0x50,
    /// `0x51` (neo-go extension)
    GetMptData = 0x51,
    /// `0x52` (neo-go extension)
    MptData = 0x52,
}

impl Command {
    /// Every command, in byte order.
    pub const ALL: [Command; 26] = [
        Command::Version,
        Command::Verack,
        Command::GetAddr,
        Command::Addr,
        Command::Ping,
        Command::Pong,
        Command::GetHeaders,
        Command::Headers,
        Command::GetBlocks,
        Command::Mempool,
        Command::Inv,
        Command::GetData,
        Command::GetBlockByIndex,
        Command::NotFound,
        Command::Transaction,
        Command::Block,
        Command::Extensible,
        Command::Reject,
        Command::FilterLoad,
        Command::FilterAdd,
        Command::FilterClear,
        Command::MerkleBlock,
        Command::Alert,
        Command::P2PNotaryRequest,
        Command::GetMptData,
        Command::MptData,
    ];

    /// The command for a byte, if it is defined.
    pub fn from_u8(v: u8) -> Option<Command> {
        use Command::*;
        Some(match v {
            0x00 => Version,
            0x01 => Verack,
            0x10 => GetAddr,
            0x11 => Addr,
            0x18 => Ping,
            0x19 => Pong,
            0x20 => GetHeaders,
            0x21 => Headers,
            0x24 => GetBlocks,
            0x25 => Mempool,
            0x27 => Inv,
            0x28 => GetData,
            0x29 => GetBlockByIndex,
            0x2A => NotFound,
            0x2B => Transaction,
            0x2C => Block,
            0x2E => Extensible,
            0x2F => Reject,
            0x30 => FilterLoad,
            0x31 => FilterAdd,
            0x32 => FilterClear,
            0x38 => MerkleBlock,
            0x40 => Alert,
            0x50 => P2PNotaryRequest,
            0x51 => GetMptData,
            0x52 => MptData,
            _ => return None,
        })
    }

    /// The command byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The name, lower case, as the reference node spells it (`"getblockbyindex"`).
    pub fn name(self) -> &'static str {
        use Command::*;
        match self {
            Version => "version",
            Verack => "verack",
            GetAddr => "getaddr",
            Addr => "addr",
            Ping => "ping",
            Pong => "pong",
            GetHeaders => "getheaders",
            Headers => "headers",
            GetBlocks => "getblocks",
            Mempool => "mempool",
            Inv => "inv",
            GetData => "getdata",
            GetBlockByIndex => "getblockbyindex",
            NotFound => "notfound",
            Transaction => "transaction",
            Block => "block",
            Extensible => "extensible",
            Reject => "reject",
            FilterLoad => "filterload",
            FilterAdd => "filteradd",
            FilterClear => "filterclear",
            MerkleBlock => "merkleblock",
            Alert => "alert",
            P2PNotaryRequest => "p2pnotaryrequest",
            GetMptData => "getmptdata",
            MptData => "mptdata",
        }
    }

    /// True for the commands whose payload is empty.
    pub fn has_empty_payload(self) -> bool {
        matches!(
            self,
            Command::Verack | Command::GetAddr | Command::Mempool | Command::FilterClear
        )
    }

    /// True for the commands the reference node compresses when sending.
    pub fn compressible(self) -> bool {
        matches!(
            self,
            Command::Block
                | Command::Extensible
                | Command::Transaction
                | Command::Headers
                | Command::Addr
                | Command::MerkleBlock
                | Command::FilterLoad
                | Command::FilterAdd
        )
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `version`: opens the handshake.
    Version(VersionPayload),
    /// `verack`: accepts the peer's `version`.
    Verack,
    /// `getaddr`: asks for known addresses.
    GetAddr,
    /// `addr`: known addresses.
    Addr(AddrPayload),
    /// `ping`: keep-alive with the sender's height.
    Ping(PingPayload),
    /// `pong`: answer to `ping`.
    Pong(PingPayload),
    /// `getheaders`: asks for headers by height.
    GetHeaders(GetBlockByIndexPayload),
    /// `headers`: 1..=2000 headers.
    Headers(HeadersPayload),
    /// `getblocks`: asks for block hashes after a hash.
    GetBlocks(GetBlocksPayload),
    /// `mempool`: asks for the hashes of the memory pool.
    Mempool,
    /// `inv`: announces objects.
    Inv(InvPayload),
    /// `getdata`: asks for objects.
    GetData(InvPayload),
    /// `getblockbyindex`: asks for blocks by height.
    GetBlockByIndex(GetBlockByIndexPayload),
    /// `notfound`: objects asked for that the sender does not have.
    NotFound(InvPayload),
    /// `transaction`: one transaction.
    Transaction(Transaction),
    /// `block`: one block.
    Block(Block),
    /// `extensible`: one extensible payload (consensus, state service).
    Extensible(ExtensiblePayload),
    /// `reject`: no payload layout is defined; kept as received.
    Reject(Bytes),
    /// `filterload`: installs a bloom filter.
    FilterLoad(FilterLoadPayload),
    /// `filteradd`: adds to the bloom filter.
    FilterAdd(FilterAddPayload),
    /// `filterclear`: removes the bloom filter.
    FilterClear,
    /// `merkleblock`: header and partial Merkle tree.
    MerkleBlock(MerkleBlockPayload),
    /// `alert`: no payload layout is defined; kept as received.
    Alert(Bytes),
    /// `p2pnotaryrequest` (neo-go extension; boxed, it holds two transactions).
    P2PNotaryRequest(Box<P2PNotaryRequest>),
    /// `getmptdata` (neo-go extension).
    GetMptData(GetMptDataPayload),
    /// `mptdata` (neo-go extension).
    MptData(MptDataPayload),
    /// A command byte the protocol does not define, with its payload.
    Unknown {
        /// The command byte.
        command: u8,
        /// The payload (decompressed).
        payload: Bytes,
    },
}

fn decode_as<T: Decode>(payload: Bytes) -> Result<T, DecodeError> {
    T::decode_exact(payload)
}

impl Message {
    /// The command, or `None` for [`Message::Unknown`].
    pub fn command(&self) -> Option<Command> {
        use Message as M;
        Some(match self {
            M::Version(_) => Command::Version,
            M::Verack => Command::Verack,
            M::GetAddr => Command::GetAddr,
            M::Addr(_) => Command::Addr,
            M::Ping(_) => Command::Ping,
            M::Pong(_) => Command::Pong,
            M::GetHeaders(_) => Command::GetHeaders,
            M::Headers(_) => Command::Headers,
            M::GetBlocks(_) => Command::GetBlocks,
            M::Mempool => Command::Mempool,
            M::Inv(_) => Command::Inv,
            M::GetData(_) => Command::GetData,
            M::GetBlockByIndex(_) => Command::GetBlockByIndex,
            M::NotFound(_) => Command::NotFound,
            M::Transaction(_) => Command::Transaction,
            M::Block(_) => Command::Block,
            M::Extensible(_) => Command::Extensible,
            M::Reject(_) => Command::Reject,
            M::FilterLoad(_) => Command::FilterLoad,
            M::FilterAdd(_) => Command::FilterAdd,
            M::FilterClear => Command::FilterClear,
            M::MerkleBlock(_) => Command::MerkleBlock,
            M::Alert(_) => Command::Alert,
            M::P2PNotaryRequest(_) => Command::P2PNotaryRequest,
            M::GetMptData(_) => Command::GetMptData,
            M::MptData(_) => Command::MptData,
            M::Unknown { .. } => return None,
        })
    }

    /// The command byte (also for unknown commands).
    pub fn command_byte(&self) -> u8 {
        match self {
            Message::Unknown { command, .. } => *command,
            m => m.command().map_or(0, Command::as_u8),
        }
    }

    /// The command name (`"unknown"` for unknown commands; see
    /// [`Message::command_byte`] for their byte).
    pub fn command_name(&self) -> &'static str {
        self.command().map_or("unknown", Command::name)
    }

    /// Decodes the payload of a command (already decompressed). The payload
    /// must be consumed exactly; an empty payload is accepted only for the
    /// commands that have none and for unknown commands.
    pub fn decode_payload(command: u8, payload: Bytes) -> Result<Message, DecodeError> {
        use Message as M;
        let Some(cmd) = Command::from_u8(command) else {
            return Ok(M::Unknown { command, payload });
        };
        if cmd.has_empty_payload() {
            if !payload.is_empty() {
                return Err(DecodeError::TrailingBytes {
                    what: cmd.name(),
                    count: payload.len(),
                });
            }
        } else if payload.is_empty() {
            return Err(DecodeError::Invalid {
                what: cmd.name(),
                reason: "empty payload",
            });
        }
        Ok(match cmd {
            Command::Version => M::Version(decode_as(payload)?),
            Command::Verack => M::Verack,
            Command::GetAddr => M::GetAddr,
            Command::Addr => M::Addr(decode_as(payload)?),
            Command::Ping => M::Ping(decode_as(payload)?),
            Command::Pong => M::Pong(decode_as(payload)?),
            Command::GetHeaders => M::GetHeaders(decode_as(payload)?),
            Command::Headers => M::Headers(decode_as(payload)?),
            Command::GetBlocks => M::GetBlocks(decode_as(payload)?),
            Command::Mempool => M::Mempool,
            Command::Inv => M::Inv(decode_as(payload)?),
            Command::GetData => M::GetData(decode_as(payload)?),
            Command::GetBlockByIndex => M::GetBlockByIndex(decode_as(payload)?),
            Command::NotFound => M::NotFound(decode_as(payload)?),
            Command::Transaction => M::Transaction(decode_as(payload)?),
            Command::Block => M::Block(decode_as(payload)?),
            Command::Extensible => M::Extensible(decode_as(payload)?),
            Command::Reject => M::Reject(payload),
            Command::FilterLoad => M::FilterLoad(decode_as(payload)?),
            Command::FilterAdd => M::FilterAdd(decode_as(payload)?),
            Command::FilterClear => M::FilterClear,
            Command::MerkleBlock => M::MerkleBlock(decode_as(payload)?),
            Command::Alert => M::Alert(payload),
            Command::P2PNotaryRequest => M::P2PNotaryRequest(Box::new(decode_as(payload)?)),
            Command::GetMptData => M::GetMptData(decode_as(payload)?),
            Command::MptData => M::MptData(decode_as(payload)?),
        })
    }

    /// Appends the (uncompressed) payload.
    pub fn encode_payload(&self, out: &mut BytesMut) {
        use Message as M;
        match self {
            M::Verack | M::GetAddr | M::Mempool | M::FilterClear => {}
            M::Version(p) => p.encode(out),
            M::Addr(p) => p.encode(out),
            M::Ping(p) | M::Pong(p) => p.encode(out),
            M::GetHeaders(p) | M::GetBlockByIndex(p) => p.encode(out),
            M::Headers(p) => p.encode(out),
            M::GetBlocks(p) => p.encode(out),
            M::Inv(p) | M::GetData(p) | M::NotFound(p) => p.encode(out),
            M::Transaction(p) => p.encode(out),
            M::Block(p) => p.encode(out),
            M::Extensible(p) => p.encode(out),
            M::FilterLoad(p) => p.encode(out),
            M::FilterAdd(p) => p.encode(out),
            M::MerkleBlock(p) => p.encode(out),
            M::P2PNotaryRequest(p) => p.encode(out),
            M::GetMptData(p) => p.encode(out),
            M::MptData(p) => p.encode(out),
            M::Reject(raw) | M::Alert(raw) | M::Unknown { payload: raw, .. } => out.put_slice(raw),
        }
    }

    /// The payload, when the message already holds it encoded (a `headers`
    /// payload keeps its bytes; `reject`, `alert` and unknown commands are
    /// kept as received).
    fn encoded_payload(&self) -> Option<&Bytes> {
        use Message as M;
        match self {
            M::Headers(p) => Some(p.bytes()),
            M::Reject(raw) | M::Alert(raw) | M::Unknown { payload: raw, .. } => Some(raw),
            _ => None,
        }
    }

    /// Length of the (uncompressed) payload.
    pub fn payload_size(&self) -> usize {
        use Message as M;
        match self {
            M::Verack | M::GetAddr | M::Mempool | M::FilterClear => 0,
            M::Version(p) => p.size(),
            M::Addr(p) => p.size(),
            M::Ping(p) | M::Pong(p) => p.size(),
            M::GetHeaders(p) | M::GetBlockByIndex(p) => p.size(),
            M::Headers(p) => p.size(),
            M::GetBlocks(p) => p.size(),
            M::Inv(p) | M::GetData(p) | M::NotFound(p) => p.size(),
            M::Transaction(p) => p.size(),
            M::Block(p) => p.size(),
            M::Extensible(p) => p.size(),
            M::FilterLoad(p) => p.size(),
            M::FilterAdd(p) => p.size(),
            M::MerkleBlock(p) => p.size(),
            M::P2PNotaryRequest(p) => p.size(),
            M::GetMptData(p) => p.size(),
            M::MptData(p) => p.size(),
            M::Reject(raw) | M::Alert(raw) | M::Unknown { payload: raw, .. } => raw.len(),
        }
    }

    /// Checks that receivers would accept the message: every count and
    /// length within its limits, every cross-field rule kept. Inventories
    /// and `addr` must also be non-empty (decoders accept empty ones, but
    /// neo-go and C# disconnect), so the encoder never sends one.
    pub fn validate(&self) -> Result<(), DecodeError> {
        use Message as M;
        match self {
            M::Verack | M::GetAddr | M::Mempool | M::FilterClear | M::Ping(_) | M::Pong(_) => {
                Ok(())
            }
            M::Unknown { .. } => Ok(()),
            M::Version(p) => p.validate(),
            M::Addr(p) => {
                super::tx::check_count(
                    "addr.addresses",
                    p.addresses.len(),
                    1,
                    super::MAX_ADDRESSES,
                )?;
                p.validate()
            }
            M::GetHeaders(p) | M::GetBlockByIndex(p) => p.validate(),
            M::Headers(p) => p.validate(),
            M::GetBlocks(p) => p.validate(),
            M::Inv(p) | M::GetData(p) | M::NotFound(p) => {
                // Legal for the reference decoder, but neo-go disconnects.
                super::tx::check_count("inv.hashes", p.hashes.len(), 1, super::MAX_INV_HASHES)
            }
            M::Transaction(p) => p.validate(),
            M::Block(p) => p.validate(),
            M::Extensible(p) => p.validate(),
            M::FilterLoad(p) => p.validate(),
            M::FilterAdd(p) => p.validate(),
            M::MerkleBlock(p) => p.validate(),
            M::P2PNotaryRequest(p) => p.validate(),
            M::GetMptData(p) => p.validate(),
            M::MptData(p) => p.validate(),
            M::Reject(raw) | M::Alert(raw) => {
                if raw.is_empty() {
                    Err(DecodeError::Invalid {
                        what: self.command_name(),
                        reason: "empty payload",
                    })
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// One frame taken off the stream, payload not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The flags byte as received (bit 0: the payload was compressed).
    pub flags: u8,
    /// The command byte.
    pub command: u8,
    /// The payload, decompressed if it was compressed.
    pub payload: Bytes,
    /// Bytes the whole frame took on the wire (header and payload as sent).
    pub wire_len: usize,
}

impl RawFrame {
    /// True if the payload was compressed on the wire.
    pub fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// The command name (`"unknown"` for undefined command bytes).
    pub fn command_name(&self) -> &'static str {
        Command::from_u8(self.command).map_or("unknown", Command::name)
    }

    /// Decodes the payload.
    pub fn decode_message(&self) -> Result<Message, FrameError> {
        Message::decode_payload(self.command, self.payload.clone()).map_err(|source| {
            FrameError::Payload {
                command: self.command_name().to_string(),
                source,
            }
        })
    }
}

/// The sans-I/O N3 stream codec.
///
/// Decoding takes whole frames off the front of a [`BytesMut`] and leaves
/// partial ones in place; the declared payload length is checked as soon as
/// it is known, before anything is buffered for it, against two caps: the
/// frame cap ([`Codec::max_payload`]) and its command's cap
/// ([`Codec::payload_cap`], from the [`limits`] and the configurable
/// [`PayloadLimits`]). A compressed frame's declared decompressed size is
/// held to both as soon as its four bytes are there. Encoding writes frames
/// straight into the output buffer and refuses messages a receiver would
/// reject, this codec's caps included.
#[derive(Debug, Clone)]
pub struct Codec {
    max_payload: usize,
    limits: PayloadLimits,
    compression: bool,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new()
    }
}

/// Ratio above which an LZ4 block cannot expand (each byte yields at most 255).
const LZ4_MAX_RATIO: usize = 255;

impl Codec {
    /// A codec with the protocol's payload cap ([`MAX_PAYLOAD`]), the default
    /// limits ([`PayloadLimits::N3`]) and compression off.
    pub fn new() -> Self {
        Codec {
            max_payload: MAX_PAYLOAD,
            limits: PayloadLimits::N3,
            compression: false,
        }
    }

    /// The payload cap in force.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Sets the payload cap (for received payloads, compressed or not, and for
    /// sent ones). Values above [`MAX_PAYLOAD`] are lowered to it.
    pub fn set_max_payload(&mut self, max: usize) {
        self.max_payload = max.min(MAX_PAYLOAD);
    }

    /// The configurable part of the per-command caps.
    pub fn limits(&self) -> &PayloadLimits {
        &self.limits
    }

    /// Sets the configurable part of the per-command caps (the block and
    /// transaction sizes of the network, the cap of unknown commands).
    pub fn set_limits(&mut self, limits: PayloadLimits) {
        self.limits = limits;
    }

    /// The largest (decompressed) payload a frame with this command byte may
    /// declare, received or sent: the command's cap (see [`limits`]), and
    /// never more than [`Codec::max_payload`].
    ///
    /// ```
    /// use neo_peer::wire::n3::{Codec, Command};
    ///
    /// let codec = Codec::new();
    /// assert_eq!(codec.payload_cap(Command::Ping.as_u8()), 12);
    /// assert_eq!(codec.payload_cap(Command::Block.as_u8()), 2 << 20);
    /// assert_eq!(codec.payload_cap(0x99), 64 * 1024);
    /// ```
    #[inline]
    pub fn payload_cap(&self, command: u8) -> usize {
        limits::payload_cap(&self.limits, command).min(self.max_payload)
    }

    /// Checks a declared length against the frame cap, then against the
    /// command's cap (`cap`, as [`Codec::payload_cap`] gives it): the one
    /// check of both directions.
    #[inline]
    fn check_len(
        &self,
        command: u8,
        what: &'static str,
        len: u64,
        cap: usize,
    ) -> Result<(), FrameError> {
        if len > self.max_payload as u64 {
            return Err(FrameError::PayloadTooLarge {
                len,
                max: self.max_payload as u64,
            });
        }
        if len > cap as u64 {
            return Err(FrameError::CommandTooLarge {
                command: match Command::from_u8(command) {
                    Some(c) => c.name().to_owned(),
                    None => format!("unknown {command:#04x}"),
                },
                what,
                len,
                max: cap as u64,
            });
        }
        Ok(())
    }

    /// True if eligible outgoing payloads are compressed.
    pub fn compression(&self) -> bool {
        self.compression
    }

    /// Turns compression of outgoing payloads on or off. Keep it off until the
    /// peer's `version` arrived, and toward peers with `DisableCompression`.
    /// When on, the reference node's rules apply: only `block`, `extensible`,
    /// `transaction`, `headers`, `addr`, `merkleblock`, `filterload` and
    /// `filteradd` payloads longer than 128 bytes, and only if compression
    /// saves more than 64 bytes.
    pub fn set_compression(&mut self, on: bool) {
        self.compression = on;
    }

    /// The length on the wire of the frame at the front of `buf` (flags,
    /// command, length prefix and payload as sent), as its header declares
    /// it: `None` until the header (up to its var-int length) is there.
    /// Nothing is checked: this is for a reader that already had
    /// [`Codec::decode_frame`] check the header and wants to know how many
    /// bytes the frame still needs.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use neo_peer::wire::n3::{Codec, Message};
    ///
    /// let mut frame = BytesMut::new();
    /// Codec::new().encode(&Message::GetAddr, &mut frame).unwrap();
    /// assert_eq!(Codec::frame_len(&frame[..2]), None);
    /// assert_eq!(Codec::frame_len(&frame), Some(3));
    /// ```
    pub fn frame_len(buf: &[u8]) -> Option<usize> {
        let (prefix, len) = match *buf.get(2)? {
            0xFD => (
                3,
                u64::from(u16::from_le_bytes(*buf.get(3..)?.first_chunk()?)),
            ),
            0xFE => (
                5,
                u64::from(u32::from_le_bytes(*buf.get(3..)?.first_chunk()?)),
            ),
            0xFF => (9, u64::from_le_bytes(*buf.get(3..)?.first_chunk()?)),
            b => (1, u64::from(b)),
        };
        usize::try_from(len).ok()?.checked_add(2 + prefix)
    }

    /// Takes one frame off the front of `buf`: `Ok(None)` (nothing consumed)
    /// while it is incomplete.
    pub fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<RawFrame>, FrameError> {
        let Some(&first) = buf.get(2) else {
            return Ok(None);
        };
        let prefix = match first {
            0xFD => 3,
            0xFE => 5,
            0xFF => 9,
            _ => 1,
        };
        let Some(len_bytes) = buf.get(3..2 + prefix) else {
            return Ok(None);
        };
        let len = match *len_bytes {
            [a, b] => u64::from(u16::from_le_bytes([a, b])),
            [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => u64::from(first),
        };
        let (flags, command) = (buf[0], buf[1]);
        let compressed = flags & FLAG_COMPRESSED != 0;
        let cap = self.payload_cap(command);
        let header = 2 + prefix;
        // The declared decompressed size, as soon as its 4 bytes are there.
        let mut size = None;
        if compressed {
            self.check_len(command, "compressed payload", len, compressed_cap(cap))?;
            if let Some(&[a, b, c, d]) = buf.get(header..header + 4).filter(|_| len >= 4) {
                let n = u32::from_le_bytes([a, b, c, d]);
                self.check_len(command, "decompressed payload", n.into(), cap)?;
                size = Some(n as usize);
            }
        } else {
            self.check_len(command, "payload", len, cap)?;
        }
        // `len <= max_payload`, so it fits in usize.
        let total = header + len as usize;
        if buf.len() < total {
            return Ok(None);
        }
        let frame = buf.split_to(total).freeze();
        let body = frame.slice(header..);
        let payload = match (compressed, size) {
            (false, _) => body,
            (true, Some(n)) => decompress(&body[4..], n)?,
            (true, None) => {
                return Err(FrameError::Decompress(format!(
                    "compressed payload of {} bytes has no 4-byte size",
                    body.len()
                )));
            }
        };
        Ok(Some(RawFrame {
            flags,
            command,
            payload,
            wire_len: total,
        }))
    }

    /// Takes one message off the front of `buf`: `Ok(None)` (nothing
    /// consumed) while the frame is incomplete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, FrameError> {
        match self.decode_frame(buf)? {
            Some(frame) => frame.decode_message().map(Some),
            None => Ok(None),
        }
    }

    /// Appends the frame of `msg` to `out`, compressed if compression is on
    /// and worth it. Fails (writing nothing) if a receiver would reject the
    /// message.
    pub fn encode(&self, msg: &Message, out: &mut BytesMut) -> Result<(), FrameError> {
        msg.validate().map_err(|source| FrameError::Payload {
            command: msg.command_name().to_string(),
            source,
        })?;
        let size = msg.payload_size();
        let command = msg.command_byte();
        // A compressed form is kept only when smaller, so within the cap too.
        self.check_len(command, "payload", size as u64, self.payload_cap(command))?;
        let eligible = msg.command().is_some_and(Command::compressible);
        if self.compression && eligible && size > COMPRESSION_MIN_SIZE {
            // A payload the message holds encoded is compressed from where it is.
            let raw = msg.encoded_payload().cloned().unwrap_or_else(|| {
                let mut raw = BytesMut::with_capacity(size);
                msg.encode_payload(&mut raw);
                raw.freeze()
            });
            if !compress_into(out, command, &raw) {
                put_frame(out, 0, command, &raw);
            }
            return Ok(());
        }
        out.reserve(2 + var_int_size(size as u64) + size);
        out.put_u8(0);
        out.put_u8(command);
        out.put_var_int(size as u64);
        msg.encode_payload(out);
        Ok(())
    }
}

fn put_frame(out: &mut BytesMut, flags: u8, command: u8, payload: &[u8]) {
    out.reserve(2 + var_int_size(payload.len() as u64) + payload.len());
    out.put_u8(flags);
    out.put_u8(command);
    out.put_var_bytes(payload);
}

/// Appends the compressed frame of `raw` (flags, command, length, size
/// prefix and LZ4 block) to `out` if compression saves more than
/// [`COMPRESSION_THRESHOLD`] bytes; otherwise leaves `out` as it was and
/// returns false. The block is compressed straight into `out`, past the
/// room of the longest length field, then moved back behind the real one:
/// no scratch buffer.
fn compress_into(out: &mut BytesMut, command: u8, raw: &[u8]) -> bool {
    let Ok(n) = u32::try_from(raw.len()) else {
        return false;
    };
    let start = out.len();
    // flags, command, and a length field of at most 5 bytes (a payload is
    // under 4 GiB).
    let body = start + 2 + 5;
    out.resize(
        body + 4 + lz4_flex::block::get_maximum_output_size(raw.len()),
        0,
    );
    let Ok(written) = lz4_flex::block::compress_into(raw, &mut out[body + 4..]) else {
        out.truncate(start);
        return false;
    };
    let len = 4 + written;
    if len + COMPRESSION_THRESHOLD >= raw.len() {
        out.truncate(start);
        return false;
    }
    out[body..body + 4].copy_from_slice(&n.to_le_bytes());
    let mut header = BytesMut::with_capacity(7);
    header.put_u8(FLAG_COMPRESSED);
    header.put_u8(command);
    header.put_var_int(len as u64);
    let to = start + header.len();
    out.copy_within(body..body + len, to);
    out[start..to].copy_from_slice(&header);
    out.truncate(to + len);
    true
}

/// The compressed form of `raw` (size prefix and LZ4 block), if it saves
/// more than [`COMPRESSION_THRESHOLD`] bytes.
#[cfg(test)]
fn compress(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    compress_into(&mut out, 0, raw).then(|| {
        let skip = 2 + match out[2] {
            0xFD => 3,
            0xFE => 5,
            _ => 1,
        };
        out[skip..].to_vec()
    })
}

/// Decompresses an LZ4 block into exactly `n` bytes (the size the frame
/// declared, already held to the caps).
fn decompress(block: &[u8], n: usize) -> Result<Bytes, FrameError> {
    if n > block.len().saturating_mul(LZ4_MAX_RATIO) + 16 {
        return Err(FrameError::Decompress(format!(
            "{} LZ4 bytes cannot expand to {n} bytes",
            block.len()
        )));
    }
    let mut out = vec![0u8; n];
    let written = lz4_flex::block::decompress_into(block, &mut out)
        .map_err(|e| FrameError::Decompress(e.to_string()))?;
    if written != n {
        return Err(FrameError::Decompress(format!(
            "LZ4 block expands to {written} bytes, size says {n}"
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_bytes_and_names_are_consistent() {
        for cmd in Command::ALL {
            assert_eq!(Command::from_u8(cmd.as_u8()), Some(cmd));
            assert_eq!(cmd.name(), cmd.name().to_lowercase());
        }
        let defined = (0..=255u8)
            .filter(|b| Command::from_u8(*b).is_some())
            .count();
        assert_eq!(defined, Command::ALL.len());
        assert_eq!(Command::GetBlockByIndex.name(), "getblockbyindex");
        assert_eq!(Command::Transaction.name(), "transaction");
    }

    #[test]
    fn verack_is_three_bytes() {
        let mut out = BytesMut::new();
        Codec::new().encode(&Message::Verack, &mut out).unwrap();
        assert_eq!(&out[..], &[0x00, 0x01, 0x00]);
    }

    #[test]
    fn message_stays_small() {
        assert!(
            std::mem::size_of::<Message>() <= 256,
            "{}",
            std::mem::size_of::<Message>()
        );
    }

    #[test]
    fn lz4_expansion_bound() {
        // A block of 4 bytes can never yield 2000 bytes.
        let e = decompress(&[0x1F, 0, 1, 0], 2000).unwrap_err();
        assert!(matches!(e, FrameError::Decompress(_)), "{e}");
        let raw = vec![0u8; 5000];
        let c = compress(&raw).unwrap();
        assert_eq!(&c[..4], &5000u32.to_le_bytes());
        assert_eq!(decompress(&c[4..], raw.len()).unwrap(), raw);
        assert!(compress(&[1, 2, 3]).is_none());
    }
}
