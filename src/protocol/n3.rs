//! Neo N3 bound to the engine.

use std::time::Duration;

use bytes::BytesMut;

use super::contract::{self, Expected, Matcher, Obligation, Reply, ReplyKey, Silence};
use super::{
    Decoded, GossipAddr, Identity, N3Extra, Protocol, RequestKind, Role, VersionFacts, unix_seconds,
};
use crate::wire::{FrameError, PayloadLimits, PingPayload, n3};

/// Neo N3.
#[derive(Debug, Clone, Copy, Default)]
pub struct N3;

impl Protocol for N3 {
    const NAME: &'static str = "n3";
    const PAUSE_AFTER_VERACK: Duration = Duration::ZERO;
    const VERACK_DELAY: Duration = Duration::ZERO;

    type Message = n3::Message;
    type Version = n3::VersionPayload;
    type Extra = N3Extra;
    type Codec = n3::Codec;
    const PAYLOAD_LIMITS: PayloadLimits = PayloadLimits::N3;

    fn codec(_network: u32) -> n3::Codec {
        n3::Codec::new()
    }

    fn set_max_payload(codec: &mut n3::Codec, max: usize) {
        codec.set_max_payload(max);
    }

    fn set_limits(codec: &mut n3::Codec, limits: PayloadLimits) {
        codec.set_limits(limits);
    }

    fn frame_len(buf: &[u8]) -> Option<usize> {
        n3::Codec::frame_len(buf)
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

    fn frame_size(msg: &n3::Message) -> usize {
        let size = msg.payload_size();
        2 + crate::wire::var_int_size(size as u64) + size
    }

    fn command_name(msg: &n3::Message) -> &'static str {
        msg.command_name()
    }

    fn version(me: &Identity<N3>) -> n3::Message {
        let mut capabilities = Vec::with_capacity(me.extra.capabilities.len() + 2);
        if me.port != 0 {
            capabilities.push(n3::NodeCapability::TcpServer { port: me.port });
        }
        capabilities.push(n3::NodeCapability::FullNode {
            start_height: me.height(),
        });
        capabilities.extend(
            me.extra
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
            network: me.network,
            version: me.protocol_version,
            timestamp: unix_seconds(),
            nonce: me.nonce,
            user_agent: me.user_agent.clone(),
            capabilities,
        })
    }

    fn services(_: &Identity<N3>) -> u64 {
        0
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

    fn obligation(msg: &n3::Message, reach: Option<u32>, remote_height: u32) -> Obligation {
        use n3::Message as M;
        let expected = |kind, matcher, answers, silence| {
            Obligation::Answers(Expected {
                kind,
                matcher,
                answers,
                silence,
                items: None,
            })
        };
        let beyond = |kind| Obligation::Beyond {
            kind,
            height: remote_height,
        };
        match msg {
            // Nodes answer from the start index up to their height; a start
            // above it is legitimately not answered (nor sent).
            M::GetHeaders(p) => {
                let asked = contract::requested(p.count, n3::MAX_HEADERS);
                if asked == 0 {
                    return Obligation::Nothing;
                }
                match contract::available(p.index_start, asked, remote_height) {
                    None => beyond(RequestKind::Headers),
                    Some(items) => Obligation::Answers(Expected {
                        kind: RequestKind::Headers,
                        matcher: Matcher::From(p.index_start),
                        answers: 1,
                        silence: Silence::Stall,
                        items: Some(items),
                    }),
                }
            }
            M::GetBlockByIndex(p) => {
                let asked = contract::requested(p.count, n3::MAX_BLOCKS_PER_REQUEST);
                if asked == 0 {
                    return Obligation::Nothing;
                }
                match contract::available(p.index_start, asked, remote_height) {
                    None => beyond(RequestKind::BlocksByIndex),
                    Some(n) => expected(
                        RequestKind::BlocksByIndex,
                        Matcher::From(p.index_start),
                        n,
                        Silence::Stall,
                    ),
                }
            }
            // An unknown start or nothing newer: C# stays silent.
            M::GetBlocks(p) if contract::requested(p.count, n3::MAX_GETBLOCKS_HASHES) == 0 => {
                Obligation::Nothing
            }
            M::GetBlocks(_) => match reach {
                Some(needed) if needed > remote_height => beyond(RequestKind::BlockHashes),
                Some(_) => expected(RequestKind::BlockHashes, Matcher::Any, 1, Silence::Stall),
                None => expected(RequestKind::BlockHashes, Matcher::Any, 1, Silence::Allowed),
            },
            M::GetData(inv) => {
                let hashes = contract::distinct(&inv.hashes);
                let Ok(answers) = u32::try_from(hashes.len()) else {
                    return Obligation::Nothing;
                };
                if answers == 0 {
                    return Obligation::Nothing;
                }
                // Blocks and transactions come back or are listed in
                // `notfound`; missing extensibles (and notary requests) are
                // skipped silently.
                let silence = match inv.kind {
                    n3::InventoryType::Block | n3::InventoryType::Transaction => Silence::Stall,
                    _ => Silence::Allowed,
                };
                expected(RequestKind::Data, Matcher::Hashes(hashes), answers, silence)
            }
            // A C# node that knows no address says nothing.
            M::GetAddr => expected(RequestKind::Addr, Matcher::Any, 1, Silence::Allowed),
            M::Ping(_) => expected(RequestKind::Ping, Matcher::Any, 1, Silence::Stall),
            _ => Obligation::Nothing,
        }
    }

    fn reply(msg: &n3::Message) -> Option<Reply<'_>> {
        use n3::Message as M;
        const BLOCKS: &[RequestKind] = &[RequestKind::BlocksByIndex, RequestKind::Data];
        let (kinds, key): (&'static [RequestKind], _) = match msg {
            M::Headers(h) => (
                &[RequestKind::Headers],
                ReplyKey::Headers {
                    first: h.first_index(),
                    after: None,
                    len: h.len(),
                },
            ),
            M::Block(b) => (
                BLOCKS,
                ReplyKey::Block {
                    index: b.header.index,
                    hash: b.hash(),
                },
            ),
            M::MerkleBlock(b) => (
                BLOCKS,
                ReplyKey::Block {
                    index: b.header.index,
                    hash: b.header.hash(),
                },
            ),
            M::Transaction(tx) => (&[RequestKind::Data], ReplyKey::Object(tx.hash())),
            M::Extensible(e) => (&[RequestKind::Data], ReplyKey::Object(e.hash())),
            M::P2PNotaryRequest(r) => (&[RequestKind::Data], ReplyKey::Object(r.hash())),
            M::NotFound(inv) => (&[RequestKind::Data], ReplyKey::NotFound(&inv.hashes)),
            M::Inv(inv) if inv.kind == n3::InventoryType::Block => {
                (&[RequestKind::BlockHashes], ReplyKey::Plain)
            }
            M::Addr(_) => (&[RequestKind::Addr], ReplyKey::Plain),
            M::Pong(_) => (&[RequestKind::Ping], ReplyKey::Plain),
            _ => return None,
        };
        Some(Reply { kinds, key })
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

    fn announced_blocks(msg: &n3::Message) -> &[crate::wire::UInt256] {
        match msg {
            n3::Message::Inv(inv) if inv.kind == n3::InventoryType::Block => &inv.hashes,
            _ => &[],
        }
    }
}
