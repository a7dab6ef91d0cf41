//! NEO Legacy (2.x) bound to the engine.

use std::time::Duration;

use bytes::BytesMut;

use super::contract::{self, Expected, Matcher, Obligation, Reply, ReplyKey, Silence};
use super::{
    Decoded, GossipAddr, Identity, LegacyExtra, Protocol, RequestKind, Role, VersionFacts,
    unix_seconds,
};
use crate::wire::{FrameError, PayloadLimits, PingPayload, legacy};

/// NEO Legacy (2.x).
#[derive(Debug, Clone, Copy, Default)]
pub struct Legacy;

impl Protocol for Legacy {
    const NAME: &'static str = "legacy";
    const PAUSE_AFTER_VERACK: Duration = Duration::from_millis(50);
    const VERACK_DELAY: Duration = Duration::from_millis(100);

    type Message = legacy::Message;
    type Version = legacy::VersionPayload;
    type Extra = LegacyExtra;
    type Codec = legacy::Codec;
    const PAYLOAD_LIMITS: PayloadLimits = PayloadLimits::LEGACY;

    fn codec(network: u32) -> legacy::Codec {
        legacy::Codec::new(network)
    }

    fn set_max_payload(codec: &mut legacy::Codec, max: usize) {
        codec.set_max_payload(max);
    }

    fn set_limits(codec: &mut legacy::Codec, limits: PayloadLimits) {
        codec.set_limits(limits);
    }

    fn frame_len(buf: &[u8]) -> Option<usize> {
        legacy::Codec::frame_len(buf)
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

    fn frame_size(msg: &legacy::Message) -> usize {
        legacy::HEADER_SIZE + msg.payload_size()
    }

    fn command_name(msg: &legacy::Message) -> &'static str {
        msg.command_name()
    }

    fn version(me: &Identity<Legacy>) -> legacy::Message {
        legacy::Message::Version(legacy::VersionPayload {
            version: me.protocol_version,
            services: me.extra.services,
            timestamp: unix_seconds(),
            port: me.port,
            nonce: me.nonce,
            user_agent: me.user_agent.clone(),
            start_height: me.height(),
            relay: me.relay,
        })
    }

    fn services(me: &Identity<Legacy>) -> u64 {
        me.extra.services
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

    fn obligation(msg: &legacy::Message, reach: Option<u32>, remote_height: u32) -> Obligation {
        use legacy::Message as M;
        // Requests that name a hash: the remote owes an answer only when the
        // caller says how high it must be, and it is that high. Otherwise a
        // correct remote may stay silent (C# at its tip or for an unknown
        // start; unknown `getdata` hashes are skipped, there is no `notfound`).
        let by_hash = |kind, matcher, answers, reach: Option<u32>| match reach {
            Some(needed) if needed > remote_height => Obligation::Beyond {
                kind,
                height: remote_height,
            },
            Some(_) => Obligation::Answers(Expected {
                kind,
                matcher,
                answers,
                silence: Silence::Stall,
                items: None,
            }),
            None => Obligation::Answers(Expected {
                kind,
                matcher,
                answers,
                silence: Silence::Allowed,
                items: None,
            }),
        };
        match msg {
            // A stop equal to the start: the C# node says nothing, NEO•ONE
            // sends one header. Either is correct.
            M::GetHeaders(p) => match p.hash_start.first() {
                Some(&start) => {
                    let reach = reach.filter(|_| start != p.hash_stop);
                    by_hash(RequestKind::Headers, Matcher::After(start), 1, reach)
                }
                None => Obligation::Nothing,
            },
            M::GetBlocks(p) => match p.hash_start.first() {
                Some(&start) => {
                    let reach = reach.filter(|_| start != p.hash_stop);
                    by_hash(RequestKind::BlockHashes, Matcher::Any, 1, reach)
                }
                None => Obligation::Nothing,
            },
            M::GetData(inv) => {
                let hashes = contract::distinct(&inv.hashes);
                let Ok(answers) = u32::try_from(hashes.len()) else {
                    return Obligation::Nothing;
                };
                if answers == 0 {
                    return Obligation::Nothing;
                }
                match inv.kind {
                    legacy::InventoryType::Block => {
                        by_hash(RequestKind::Data, Matcher::Hashes(hashes), answers, reach)
                    }
                    // A transaction may leave the remote's pool, a consensus
                    // payload its relay cache, at any time.
                    _ => Obligation::Answers(Expected {
                        kind: RequestKind::Data,
                        matcher: Matcher::Hashes(hashes),
                        answers,
                        silence: Silence::Allowed,
                        items: None,
                    }),
                }
            }
            M::GetAddr => Obligation::Answers(Expected {
                kind: RequestKind::Addr,
                matcher: Matcher::Any,
                answers: 1,
                // A C# node that knows no listening peer says nothing.
                silence: Silence::Allowed,
                items: None,
            }),
            // NEO•ONE and C# nodes up to 2.9 never answer `ping`.
            _ => Obligation::Nothing,
        }
    }

    fn reply(msg: &legacy::Message) -> Option<Reply<'_>> {
        use legacy::Message as M;
        let (kinds, key): (&'static [RequestKind], _) = match msg {
            M::Headers(h) => (
                &[RequestKind::Headers],
                ReplyKey::Headers {
                    first: None,
                    after: h.headers.first().map(|h| h.base.prev_hash),
                    len: h.headers.len(),
                },
            ),
            M::Inv(inv) if inv.kind == legacy::InventoryType::Block => {
                (&[RequestKind::BlockHashes], ReplyKey::Plain)
            }
            M::Block(b) => (
                &[RequestKind::Data],
                ReplyKey::Block {
                    index: b.base.index,
                    hash: b.hash(),
                },
            ),
            M::MerkleBlock(b) => (
                &[RequestKind::Data],
                ReplyKey::Block {
                    index: b.base.index,
                    hash: b.base.hash(),
                },
            ),
            M::Tx(tx) => (&[RequestKind::Data], ReplyKey::Object(tx.hash())),
            M::Consensus(c) => (&[RequestKind::Data], ReplyKey::Object(c.hash())),
            M::Addr(_) => (&[RequestKind::Addr], ReplyKey::Plain),
            M::Pong(_) => (&[RequestKind::Ping], ReplyKey::Plain),
            _ => return None,
        };
        Some(Reply { kinds, key })
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

    fn announced_blocks(msg: &legacy::Message) -> &[crate::wire::UInt256] {
        match msg {
            legacy::Message::Inv(inv) if inv.kind == legacy::InventoryType::Block => &inv.hashes,
            _ => &[],
        }
    }
}
