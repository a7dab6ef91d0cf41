//! What binds one wire generation to the peer engine.
//!
//! The engine in [`crate::peer`] is written once, generic over [`Protocol`].
//! An implementation says how frames are cut and written, how `version` is
//! built and read, and what each request obliges the remote to answer (the
//! [`contract`]). [`Legacy`] and [`N3`] are the two generations.

pub mod contract;
mod identity;
mod legacy;
mod n3;

pub use contract::{Expected, Matcher, Obligation, Reply, ReplyKey, Silence};
pub use identity::{CurrentHeight, Identity, LegacyExtra, N3Extra, random_nonce};
pub use legacy::Legacy;
pub use n3::N3;

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use crate::wire::{FrameError, PayloadLimits, PingPayload, UInt256};

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
    /// Pause after our `verack` before anything else is written (NEO•ONE
    /// processes frames that arrive together in reverse order).
    const PAUSE_AFTER_VERACK: Duration;
    /// How long our `verack` waits for the remote's before it is sent anyway.
    /// Waiting for it proves the remote has read our `version`, so the two
    /// can never be read together (and, on NEO•ONE, processed backwards).
    const VERACK_DELAY: Duration;

    /// A decoded message.
    type Message: Clone + Debug + Send + Sync + 'static;
    /// What only this generation's `version` says about us.
    type Extra: Clone + Debug + Default + Send + Sync + 'static;
    /// A remote's `version` payload.
    type Version: Clone + Debug + Send + Sync + 'static;
    /// Framing state.
    type Codec: Send + Sync + 'static;
    /// The default per-command caps of this generation's public networks
    /// ([`PayloadLimits::N3`], [`PayloadLimits::LEGACY`]).
    const PAYLOAD_LIMITS: PayloadLimits;

    /// A codec for `network`.
    fn codec(network: u32) -> Self::Codec;
    /// Caps received and sent payloads.
    fn set_max_payload(codec: &mut Self::Codec, max: usize);
    /// Sets the configurable per-command caps.
    fn set_limits(codec: &mut Self::Codec, limits: PayloadLimits);
    /// The wire length of the frame at the front of `buf` as its header
    /// declares it (`None` until the header is there); see
    /// [`legacy::Codec::frame_len`](crate::wire::legacy::Codec::frame_len).
    fn frame_len(buf: &[u8]) -> Option<usize>;
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

    /// The most bytes the frame of `msg` takes on the wire (its size
    /// uncompressed: an N3 payload is sent compressed only when smaller).
    fn frame_size(msg: &Self::Message) -> usize;
    /// The command name of `msg` (for statistics and logs).
    fn command_name(msg: &Self::Message) -> &'static str;
    /// Our `version`.
    fn version(identity: &Identity<Self>) -> Self::Message;
    /// The service bits we announce (Legacy `services`; N3: 0).
    fn services(identity: &Identity<Self>) -> u64;
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

    /// What sending `msg` obliges a remote of height `remote_height` to
    /// answer. `reach`, when the caller knows it, is the height the remote
    /// must have to answer in full (Legacy requests name a hash, whose height
    /// only the caller knows); see [`contract`] for the rules.
    fn obligation(msg: &Self::Message, reach: Option<u32>, remote_height: u32) -> Obligation;
    /// What a received `msg` can answer (`None`: it answers no request).
    fn reply(msg: &Self::Message) -> Option<Reply<'_>>;
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
    /// The block hashes `msg` announces: those of an `inv` of blocks, none
    /// for any other message.
    fn announced_blocks(_msg: &Self::Message) -> &[UInt256] {
        &[]
    }
}

/// Now, in Unix seconds (saturating).
pub(crate) fn unix_seconds() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{legacy, n3};

    #[test]
    fn versions_carry_the_config() {
        let mut c = Identity::<N3>::new(n3::PRIVNET_MAGIC);
        c.port = 20333;
        c.nonce = 99;
        c.current_height = std::sync::Arc::new(|| 42);
        let n3::Message::Version(v) = N3::version(&c) else {
            panic!()
        };
        let f = N3::version_facts(&v);
        assert_eq!(
            (f.nonce, f.network, f.start_height, f.port),
            (99, Some(56753), 42, 20333)
        );
        assert!(f.relay && f.allows_compression);
        let c = Identity::<Legacy> {
            network: c.network,
            user_agent: c.user_agent,
            nonce: c.nonce,
            protocol_version: c.protocol_version,
            relay: c.relay,
            port: c.port,
            current_height: c.current_height,
            extra: LegacyExtra::default(),
        };
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
