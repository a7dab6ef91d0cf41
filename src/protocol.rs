//! What binds one wire generation to the peer engine.
//!
//! The engine in [`crate::peer`] is written once, generic over [`Protocol`].
//! An implementation says how frames are cut and written, how `version` is
//! built and read, and which answers answer which requests (for the stall
//! detector). [`Legacy`] and [`N3`] are the two generations.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use crate::peer::LocalConfig;
use crate::wire::{FrameError, PingPayload, legacy, n3};

/// A request that expects answers, as the stall detector tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKind {
    /// `getheaders` → `headers`.
    Headers,
    /// `getblocks` → `inv` of block hashes.
    BlockHashes,
    /// N3 `getblockbyindex` → `block` × n.
    BlocksByIndex,
    /// `getdata` → the objects (and, on N3, `notfound` for missing ones).
    Data,
    /// `getaddr` → `addr`.
    Addr,
    /// `ping` → `pong`.
    Ping,
}

impl RequestKind {
    /// The command that carries this request.
    pub fn command(self) -> &'static str {
        match self {
            RequestKind::Headers => "getheaders",
            RequestKind::BlockHashes => "getblocks",
            RequestKind::BlocksByIndex => "getblockbyindex",
            RequestKind::Data => "getdata",
            RequestKind::Addr => "getaddr",
            RequestKind::Ping => "ping",
        }
    }
}

/// How a received message matters to the handshake and the keep-alive.
#[derive(Debug, Clone, Copy)]
pub enum Role<'a, V> {
    /// A `version`.
    Version(&'a V),
    /// A `verack`.
    Verack,
    /// A `ping`.
    Ping(PingPayload),
    /// A `pong`.
    Pong(PingPayload),
    /// Anything else.
    Other,
}

/// What the engine needs to know from a remote's `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFacts {
    /// The remote's nonce.
    pub nonce: u32,
    /// The network magic, where `version` carries it (N3).
    pub network: Option<u32>,
    /// Its user agent.
    pub user_agent: String,
    /// Its height when it connected (N3: from `FullNode`, 0 without it).
    pub start_height: u32,
    /// Legacy `relay`; N3: whether it announced `FullNode`.
    pub relay: bool,
    /// The port it listens on (0: unknown or not listening).
    pub port: u16,
    /// Whether it accepts compressed messages.
    pub allows_compression: bool,
    /// Legacy service bits (N3: 0).
    pub services: u64,
    /// N3 capabilities as short text (`TcpServer:20333`, `FullNode:1234`;
    /// Legacy: none).
    pub capabilities: Vec<String>,
}

/// One address of an `addr` message, the same for both generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GossipAddr {
    /// Where the node listens.
    pub addr: SocketAddr,
    /// When it was last seen (Unix seconds), as the sender claims.
    pub timestamp: u32,
    /// Legacy service bits (N3: 0).
    pub services: u64,
}

/// A frame taken off the stream.
#[derive(Debug, Clone)]
pub struct Decoded<M> {
    /// The message.
    pub message: M,
    /// Bytes the frame took on the wire.
    pub wire_len: usize,
}

/// One NEO wire generation, as the peer engine drives it.
pub trait Protocol: Sized + Clone + Debug + Send + Sync + 'static {
    /// Short name (`"legacy"`, `"n3"`).
    const NAME: &'static str;
    /// Whether a `ping` obliges the remote to answer `pong` (NEO•ONE never
    /// does; N3 nodes always do).
    const PONG_EXPECTED: bool;
    /// Pause after our `verack` before anything else is written (NEO•ONE
    /// processes frames that arrive together in reverse order).
    const PAUSE_AFTER_VERACK: Duration;
    /// How long our `verack` waits for the remote's before it is sent anyway.
    /// Waiting for it proves the remote has read our `version`, so the two
    /// can never be read together (and, on NEO•ONE, processed backwards).
    const VERACK_DELAY: Duration;

    /// A decoded message.
    type Message: Clone + Debug + Send + Sync + 'static;
    /// A remote's `version` payload.
    type Version: Clone + Debug + Send + Sync + 'static;
    /// Framing state.
    type Codec: Send + Sync + 'static;

    /// A codec for `network`.
    fn codec(network: u32) -> Self::Codec;
    /// Caps received and sent payloads.
    fn set_max_payload(codec: &mut Self::Codec, max: usize);
    /// Turns compression of sent payloads on or off (no-op where the
    /// generation has none).
    fn set_compression(_codec: &mut Self::Codec, _on: bool) {}
    /// Takes one frame off `buf` (`None` while incomplete).
    fn decode(
        codec: &mut Self::Codec,
        buf: &mut BytesMut,
    ) -> Result<Option<Decoded<Self::Message>>, FrameError>;
    /// Appends the frame of `msg` to `out`.
    fn encode(
        codec: &Self::Codec,
        msg: &Self::Message,
        out: &mut BytesMut,
    ) -> Result<(), FrameError>;

    /// The command name of `msg` (for statistics and logs).
    fn command_name(msg: &Self::Message) -> &'static str;
    /// Our `version`.
    fn version(config: &LocalConfig) -> Self::Message;
    /// A `verack`.
    fn verack() -> Self::Message;
    /// A `ping` (or `pong`, with `pong`) carrying `payload`.
    fn ping(payload: PingPayload, pong: bool) -> Self::Message;
    /// A `getaddr`.
    fn get_addr() -> Self::Message;
    /// What `msg` is to the handshake and keep-alive.
    fn role(msg: &Self::Message) -> Role<'_, Self::Version>;
    /// The facts the engine keeps from a `version`.
    fn version_facts(version: &Self::Version) -> VersionFacts;

    /// The answers `msg` (about to be sent) obliges a remote of height
    /// `remote_height` to send: `None` when silence would be legitimate.
    fn expects(msg: &Self::Message, remote_height: u32) -> Option<(RequestKind, u32)>;
    /// The requests a received `msg` may answer (tried in order) and how many
    /// answers it counts for.
    fn answers(msg: &Self::Message) -> Option<(&'static [RequestKind], u32)>;
    /// A height the remote proved to have by sending `msg` (headers, blocks).
    fn height_hint(msg: &Self::Message) -> Option<u32>;

    /// The dialable addresses of an `addr` message (`None` for any other
    /// message). N3 entries without a `TcpServer` port are left out.
    fn addresses(msg: &Self::Message) -> Option<Vec<GossipAddr>>;
    /// An `addr` message carrying `addrs` (at most the protocol's limit are
    /// taken); `None` when `addrs` is empty, which no `addr` may be.
    fn addr(addrs: &[GossipAddr]) -> Option<Self::Message>;
    /// Whether `msg` is a `getaddr`.
    fn is_get_addr(msg: &Self::Message) -> bool;
}

/// Now, in Unix seconds (saturating).
pub(crate) fn unix_seconds() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// NEO Legacy (2.x).
#[derive(Debug, Clone, Copy, Default)]
pub struct Legacy;

impl Protocol for Legacy {
    const NAME: &'static str = "legacy";
    const PONG_EXPECTED: bool = false;
    const PAUSE_AFTER_VERACK: Duration = Duration::from_millis(50);
    const VERACK_DELAY: Duration = Duration::from_millis(100);

    type Message = legacy::Message;
    type Version = legacy::VersionPayload;
    type Codec = legacy::Codec;

    fn codec(network: u32) -> legacy::Codec {
        legacy::Codec::new(network)
    }

    fn set_max_payload(codec: &mut legacy::Codec, max: usize) {
        codec.set_max_payload(max);
    }

    fn decode(
        codec: &mut legacy::Codec,
        buf: &mut BytesMut,
    ) -> Result<Option<Decoded<legacy::Message>>, FrameError> {
        let Some(frame) = codec.decode_frame(buf)? else {
            return Ok(None);
        };
        Ok(Some(Decoded {
            wire_len: frame.wire_size(),
            message: frame.message()?,
        }))
    }

    fn encode(
        codec: &legacy::Codec,
        msg: &legacy::Message,
        out: &mut BytesMut,
    ) -> Result<(), FrameError> {
        codec.encode(msg, out)
    }

    fn command_name(msg: &legacy::Message) -> &'static str {
        msg.command_name()
    }

    fn version(config: &LocalConfig) -> legacy::Message {
        legacy::Message::Version(legacy::VersionPayload {
            version: config.protocol_version,
            services: config.services,
            timestamp: unix_seconds(),
            port: config.port,
            nonce: config.nonce,
            user_agent: config.user_agent.clone(),
            start_height: config.height(),
            relay: config.relay,
        })
    }

    fn verack() -> legacy::Message {
        legacy::Message::Verack
    }

    fn ping(payload: PingPayload, pong: bool) -> legacy::Message {
        if pong {
            legacy::Message::Pong(payload)
        } else {
            legacy::Message::Ping(payload)
        }
    }

    fn get_addr() -> legacy::Message {
        legacy::Message::GetAddr
    }

    fn role(msg: &legacy::Message) -> Role<'_, legacy::VersionPayload> {
        match msg {
            legacy::Message::Version(v) => Role::Version(v),
            legacy::Message::Verack => Role::Verack,
            legacy::Message::Ping(p) => Role::Ping(*p),
            legacy::Message::Pong(p) => Role::Pong(*p),
            _ => Role::Other,
        }
    }

    fn version_facts(v: &legacy::VersionPayload) -> VersionFacts {
        VersionFacts {
            nonce: v.nonce,
            network: None,
            user_agent: v.user_agent.clone(),
            start_height: v.start_height,
            relay: v.relay,
            port: v.port,
            allows_compression: false,
            services: v.services,
            capabilities: Vec::new(),
        }
    }

    fn expects(msg: &legacy::Message, _remote_height: u32) -> Option<(RequestKind, u32)> {
        use legacy::Message as M;
        match msg {
            // NEO•ONE answers an unknown start with an empty `headers`/`inv`,
            // the C# nodes with silence: a request from a known hash is
            // expected to be answered.
            M::GetHeaders(_) => Some((RequestKind::Headers, 1)),
            M::GetBlocks(_) => Some((RequestKind::BlockHashes, 1)),
            M::GetData(inv) if !inv.hashes.is_empty() => {
                Some((RequestKind::Data, inv.hashes.len().try_into().ok()?))
            }
            M::GetAddr => Some((RequestKind::Addr, 1)),
            _ => None,
        }
    }

    fn answers(msg: &legacy::Message) -> Option<(&'static [RequestKind], u32)> {
        use legacy::Message as M;
        match msg {
            M::Headers(_) => Some((&[RequestKind::Headers], 1)),
            M::Inv(inv) if inv.kind == legacy::InventoryType::Block => {
                Some((&[RequestKind::BlockHashes], 1))
            }
            M::Block(_) | M::Tx(_) | M::MerkleBlock(_) | M::Consensus(_) => {
                Some((&[RequestKind::Data], 1))
            }
            M::Addr(_) => Some((&[RequestKind::Addr], 1)),
            M::Pong(_) => Some((&[RequestKind::Ping], 1)),
            _ => None,
        }
    }

    fn height_hint(msg: &legacy::Message) -> Option<u32> {
        match msg {
            legacy::Message::Headers(h) => h.last_index(),
            legacy::Message::Block(b) => Some(b.base.index),
            _ => None,
        }
    }

    fn addresses(msg: &legacy::Message) -> Option<Vec<GossipAddr>> {
        let legacy::Message::Addr(a) = msg else {
            return None;
        };
        Some(
            a.addresses
                .iter()
                .map(|e| GossipAddr {
                    addr: e.socket_addr(),
                    timestamp: e.timestamp,
                    services: e.services,
                })
                .collect(),
        )
    }

    fn addr(addrs: &[GossipAddr]) -> Option<legacy::Message> {
        if addrs.is_empty() {
            return None;
        }
        let addresses = addrs
            .iter()
            .take(legacy::MAX_ADDRS as usize)
            .map(|g| legacy::NetworkAddressWithTime::new(g.timestamp, g.services, g.addr))
            .collect();
        Some(legacy::Message::Addr(legacy::AddrPayload { addresses }))
    }

    fn is_get_addr(msg: &legacy::Message) -> bool {
        matches!(msg, legacy::Message::GetAddr)
    }
}

/// Neo N3.
#[derive(Debug, Clone, Copy, Default)]
pub struct N3;

/// Blocks a `getblockbyindex` of `count` from `start` obliges a peer of height `height` to send.
fn n3_blocks_expected(start: u32, count: i16, height: u32) -> Option<u32> {
    if start > height {
        return None;
    }
    let asked = if count < 0 {
        n3::MAX_BLOCKS_PER_REQUEST as u32
    } else {
        u32::from(count.unsigned_abs()).min(n3::MAX_BLOCKS_PER_REQUEST as u32)
    };
    Some(asked.min(height - start + 1)).filter(|&n| n > 0)
}

impl Protocol for N3 {
    const NAME: &'static str = "n3";
    const PONG_EXPECTED: bool = true;
    const PAUSE_AFTER_VERACK: Duration = Duration::ZERO;
    const VERACK_DELAY: Duration = Duration::ZERO;

    type Message = n3::Message;
    type Version = n3::VersionPayload;
    type Codec = n3::Codec;

    fn codec(_network: u32) -> n3::Codec {
        n3::Codec::new()
    }

    fn set_max_payload(codec: &mut n3::Codec, max: usize) {
        codec.set_max_payload(max);
    }

    fn set_compression(codec: &mut n3::Codec, on: bool) {
        codec.set_compression(on);
    }

    fn decode(
        codec: &mut n3::Codec,
        buf: &mut BytesMut,
    ) -> Result<Option<Decoded<n3::Message>>, FrameError> {
        let Some(frame) = codec.decode_frame(buf)? else {
            return Ok(None);
        };
        Ok(Some(Decoded {
            wire_len: frame.wire_len,
            message: frame.decode_message()?,
        }))
    }

    fn encode(codec: &n3::Codec, msg: &n3::Message, out: &mut BytesMut) -> Result<(), FrameError> {
        codec.encode(msg, out)
    }

    fn command_name(msg: &n3::Message) -> &'static str {
        msg.command_name()
    }

    fn version(config: &LocalConfig) -> n3::Message {
        let mut capabilities = Vec::with_capacity(config.capabilities.len() + 2);
        if config.port != 0 {
            capabilities.push(n3::NodeCapability::TcpServer { port: config.port });
        }
        capabilities.push(n3::NodeCapability::FullNode {
            start_height: config.height(),
        });
        capabilities.extend(
            config
                .capabilities
                .iter()
                .filter(|c| {
                    !matches!(
                        c,
                        n3::NodeCapability::TcpServer { .. } | n3::NodeCapability::FullNode { .. }
                    )
                })
                .cloned(),
        );
        n3::Message::Version(n3::VersionPayload {
            network: config.network,
            version: config.protocol_version,
            timestamp: unix_seconds(),
            nonce: config.nonce,
            user_agent: config.user_agent.clone(),
            capabilities,
        })
    }

    fn verack() -> n3::Message {
        n3::Message::Verack
    }

    fn ping(payload: PingPayload, pong: bool) -> n3::Message {
        if pong {
            n3::Message::Pong(payload)
        } else {
            n3::Message::Ping(payload)
        }
    }

    fn get_addr() -> n3::Message {
        n3::Message::GetAddr
    }

    fn role(msg: &n3::Message) -> Role<'_, n3::VersionPayload> {
        match msg {
            n3::Message::Version(v) => Role::Version(v),
            n3::Message::Verack => Role::Verack,
            n3::Message::Ping(p) => Role::Ping(*p),
            n3::Message::Pong(p) => Role::Pong(*p),
            _ => Role::Other,
        }
    }

    fn version_facts(v: &n3::VersionPayload) -> VersionFacts {
        VersionFacts {
            nonce: v.nonce,
            network: Some(v.network),
            user_agent: v.user_agent.clone(),
            start_height: v.start_height().unwrap_or(0),
            relay: v.is_full_node(),
            port: v.tcp_port().unwrap_or(0),
            allows_compression: v.allow_compression(),
            services: 0,
            capabilities: v.capabilities.iter().map(ToString::to_string).collect(),
        }
    }

    fn expects(msg: &n3::Message, remote_height: u32) -> Option<(RequestKind, u32)> {
        use n3::Message as M;
        match msg {
            // A start above the remote's height is legitimately not answered.
            M::GetHeaders(p) => {
                (p.index_start <= remote_height).then_some((RequestKind::Headers, 1))
            }
            M::GetBlockByIndex(p) => n3_blocks_expected(p.index_start, p.count, remote_height)
                .map(|n| (RequestKind::BlocksByIndex, n)),
            M::GetBlocks(_) => Some((RequestKind::BlockHashes, 1)),
            // Missing extensibles are skipped silently; blocks and
            // transactions are answered or listed in `notfound`.
            M::GetData(inv) if inv.kind != n3::InventoryType::Extensible => {
                Some((RequestKind::Data, inv.hashes.len().try_into().ok()?)).filter(|(_, n)| *n > 0)
            }
            M::GetAddr => Some((RequestKind::Addr, 1)),
            M::Ping(_) => Some((RequestKind::Ping, 1)),
            _ => None,
        }
    }

    fn answers(msg: &n3::Message) -> Option<(&'static [RequestKind], u32)> {
        use n3::Message as M;
        match msg {
            M::Headers(_) => Some((&[RequestKind::Headers], 1)),
            M::Block(_) | M::MerkleBlock(_) => {
                Some((&[RequestKind::BlocksByIndex, RequestKind::Data], 1))
            }
            M::Transaction(_) => Some((&[RequestKind::Data], 1)),
            M::NotFound(inv) => Some((&[RequestKind::Data], inv.hashes.len().try_into().ok()?)),
            M::Inv(inv) if inv.kind == n3::InventoryType::Block => {
                Some((&[RequestKind::BlockHashes], 1))
            }
            M::Addr(_) => Some((&[RequestKind::Addr], 1)),
            M::Pong(_) => Some((&[RequestKind::Ping], 1)),
            _ => None,
        }
    }

    fn height_hint(msg: &n3::Message) -> Option<u32> {
        match msg {
            n3::Message::Headers(h) => h.last_index(),
            n3::Message::Block(b) => Some(b.header.index),
            _ => None,
        }
    }

    fn addresses(msg: &n3::Message) -> Option<Vec<GossipAddr>> {
        let n3::Message::Addr(a) = msg else {
            return None;
        };
        Some(
            a.addresses
                .iter()
                .filter_map(|e| {
                    Some(GossipAddr {
                        addr: e.socket_addr()?,
                        timestamp: e.timestamp,
                        services: 0,
                    })
                })
                .collect(),
        )
    }

    fn addr(addrs: &[GossipAddr]) -> Option<n3::Message> {
        if addrs.is_empty() {
            return None;
        }
        let addresses = addrs
            .iter()
            .take(n3::MAX_ADDRESSES)
            .map(|g| {
                let address = match g.addr.ip() {
                    std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    std::net::IpAddr::V6(v6) => v6,
                };
                n3::NetworkAddressWithTime {
                    timestamp: g.timestamp,
                    address,
                    capabilities: vec![n3::NodeCapability::TcpServer {
                        port: g.addr.port(),
                    }],
                }
            })
            .collect();
        Some(n3::Message::Addr(n3::AddrPayload { addresses }))
    }

    fn is_get_addr(msg: &n3::Message) -> bool {
        matches!(msg, n3::Message::GetAddr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n3_block_requests_expect_what_the_peer_has() {
        assert_eq!(n3_blocks_expected(11, 5, 10), None);
        assert_eq!(n3_blocks_expected(10, 5, 10), Some(1));
        assert_eq!(n3_blocks_expected(0, -1, 10_000), Some(500));
        assert_eq!(n3_blocks_expected(0, 2000, 10_000), Some(500));
        assert_eq!(n3_blocks_expected(0, 7, 10_000), Some(7));
    }

    #[test]
    fn versions_carry_the_config() {
        let mut c = LocalConfig::new(n3::PRIVNET_MAGIC);
        c.port = 20333;
        c.nonce = 99;
        c.start_height = std::sync::Arc::new(|| 42);
        let n3::Message::Version(v) = N3::version(&c) else {
            panic!()
        };
        let f = N3::version_facts(&v);
        assert_eq!(
            (f.nonce, f.network, f.start_height, f.port),
            (99, Some(56753), 42, 20333)
        );
        assert!(f.relay && f.allows_compression);
        let legacy::Message::Version(v) = Legacy::version(&c) else {
            panic!()
        };
        let f = Legacy::version_facts(&v);
        assert_eq!(
            (f.nonce, f.network, f.start_height, f.port),
            (99, None, 42, 20333)
        );
    }

    #[test]
    fn headers_above_the_remote_height_expect_nothing() {
        let ask = |start| {
            n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
                index_start: start,
                count: -1,
            })
        };
        assert_eq!(N3::expects(&ask(5), 4), None);
        assert_eq!(N3::expects(&ask(4), 4), Some((RequestKind::Headers, 1)));
    }

    #[test]
    fn gossip_addresses_survive_both_generations() {
        let addrs = [
            GossipAddr {
                addr: "10.1.2.3:20333".parse().unwrap(),
                timestamp: 7,
                services: 1,
            },
            GossipAddr {
                addr: "[2001:db8::1]:10333".parse().unwrap(),
                timestamp: 9,
                services: 1,
            },
        ];
        let msg = Legacy::addr(&addrs).unwrap();
        assert!(!Legacy::is_get_addr(&msg));
        assert_eq!(Legacy::addresses(&msg).unwrap(), addrs);
        let msg = N3::addr(&addrs).unwrap();
        let back = N3::addresses(&msg).unwrap();
        assert_eq!(back.len(), 2);
        assert!(
            back.iter()
                .zip(&addrs)
                .all(|(b, a)| b.addr == a.addr && b.services == 0)
        );
        assert!(N3::addr(&[]).is_none() && Legacy::addr(&[]).is_none());
        let many = vec![addrs[0]; 500];
        assert_eq!(N3::addresses(&N3::addr(&many).unwrap()).unwrap().len(), 200);
        assert!(N3::is_get_addr(&N3::get_addr()) && Legacy::is_get_addr(&Legacy::get_addr()));
        assert_eq!(N3::addresses(&N3::get_addr()), None);
    }
}
