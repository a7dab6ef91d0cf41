//! Round-trip property tests: every valid value of every N3 message type
//! encodes, decodes (directly and through the streaming codec) to itself,
//! and `size()` is the encoded length.

use std::net::Ipv6Addr;

use bytes::{Bytes, BytesMut};
use neo_peer::wire::n3::{
    AddrPayload, Block, Codec, Command, EcPoint, ExtensiblePayload, FilterAddPayload,
    FilterLoadPayload, GetBlockByIndexPayload, GetBlocksPayload, GetMptDataPayload, Header,
    HeadersPayload, InvPayload, InventoryType, MerkleBlockPayload, Message, MptDataPayload,
    NetworkAddressWithTime, NodeCapability, OracleResponseCode, P2PNotaryRequest, PingPayload,
    Signer, Transaction, TransactionAttribute, VersionPayload, WitnessCondition, WitnessRule,
    WitnessRuleAction, WitnessScope,
};
use neo_peer::wire::{Decode, Encode, UInt160, UInt256, Witness};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn u256() -> impl Strategy<Value = UInt256> {
    any::<[u8; 32]>().prop_map(UInt256)
}

fn u160() -> impl Strategy<Value = UInt160> {
    any::<[u8; 20]>().prop_map(UInt160)
}

fn ecpoint() -> impl Strategy<Value = EcPoint> {
    prop_oneof![
        (2u8..=3, any::<[u8; 32]>()).prop_map(|(p, x)| {
            let mut b = [0u8; 33];
            b[0] = p;
            b[1..].copy_from_slice(&x);
            EcPoint::Compressed(b)
        }),
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(x, y)| {
            let mut b = [4u8; 65];
            b[1..33].copy_from_slice(&x);
            b[33..].copy_from_slice(&y);
            EcPoint::Uncompressed(b)
        }),
    ]
}

fn witness() -> impl Strategy<Value = Witness> {
    (bytes(80), bytes(80)).prop_map(|(invocation, verification)| Witness {
        invocation,
        verification,
    })
}

fn condition(depth: u8) -> BoxedStrategy<WitnessCondition> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(WitnessCondition::Boolean),
        u160().prop_map(WitnessCondition::ScriptHash),
        ecpoint().prop_map(WitnessCondition::Group),
        Just(WitnessCondition::CalledByEntry),
        u160().prop_map(WitnessCondition::CalledByContract),
        ecpoint().prop_map(WitnessCondition::CalledByGroup),
    ];
    if depth <= 1 {
        return leaf.boxed();
    }
    let inner = condition(depth - 1);
    prop_oneof![
        2 => leaf,
        1 => inner.clone().prop_map(|c| WitnessCondition::Not(Box::new(c))),
        1 => prop::collection::vec(inner.clone(), 1..=3).prop_map(WitnessCondition::And),
        1 => prop::collection::vec(inner, 1..=3).prop_map(WitnessCondition::Or),
    ]
    .boxed()
}

fn rule() -> impl Strategy<Value = WitnessRule> {
    (any::<bool>(), condition(3)).prop_map(|(allow, condition)| WitnessRule {
        action: if allow {
            WitnessRuleAction::Allow
        } else {
            WitnessRuleAction::Deny
        },
        condition,
    })
}

fn scopes() -> impl Strategy<Value = WitnessScope> {
    prop_oneof![
        Just(0x80u8),
        (0u8..16).prop_map(|m| (m & 1) | ((m & 0b1110) << 3)),
    ]
    .prop_map(|bits| WitnessScope::from_bits(bits).unwrap())
}

fn signer() -> impl Strategy<Value = Signer> {
    (
        u160(),
        scopes(),
        prop::collection::vec(u160(), 0..=3),
        prop::collection::vec(ecpoint(), 0..=3),
        prop::collection::vec(rule(), 0..=2),
    )
        .prop_map(|(account, scopes, contracts, groups, rules)| {
            let mut s = Signer::new(account, scopes);
            if scopes.contains(WitnessScope::CUSTOM_CONTRACTS) {
                s.allowed_contracts = contracts;
            }
            if scopes.contains(WitnessScope::CUSTOM_GROUPS) {
                s.allowed_groups = groups;
            }
            if scopes.contains(WitnessScope::WITNESS_RULES) {
                s.rules = rules;
            }
            s
        })
}

fn oracle_code() -> impl Strategy<Value = OracleResponseCode> {
    prop::sample::select(vec![
        0x00u8, 0x10, 0x12, 0x14, 0x16, 0x18, 0x1A, 0x1C, 0x1F, 0xFF,
    ])
    .prop_map(|b| OracleResponseCode::from_u8(b).unwrap())
}

fn attribute() -> impl Strategy<Value = TransactionAttribute> {
    prop_oneof![
        Just(TransactionAttribute::HighPriority),
        (any::<u64>(), oracle_code(), bytes(40)).prop_map(|(id, code, result)| {
            TransactionAttribute::OracleResponse {
                id,
                code,
                result: if code == OracleResponseCode::Success {
                    result
                } else {
                    Bytes::new()
                },
            }
        }),
        any::<u32>().prop_map(|height| TransactionAttribute::NotValidBefore { height }),
        u256().prop_map(|hash| TransactionAttribute::Conflicts { hash }),
        any::<u8>().prop_map(|nkeys| TransactionAttribute::NotaryAssisted { nkeys }),
    ]
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        (any::<u32>(), 0..i64::MAX / 2, 0..i64::MAX / 2, any::<u32>()),
        prop::collection::vec(signer(), 1..=3),
        prop::collection::vec(attribute(), 0..=4),
        bytes(120).prop_filter("non-empty script", |s| !s.is_empty()),
        prop::collection::vec(witness(), 3),
    )
        .prop_map(
            |(
                (nonce, system_fee, network_fee, valid_until_block),
                mut signers,
                attrs,
                script,
                ws,
            )| {
                for (i, s) in signers.iter_mut().enumerate() {
                    s.account.0[0] = i as u8;
                }
                let mut attributes: Vec<TransactionAttribute> = Vec::new();
                for a in attrs {
                    if a.allow_multiple() || attributes.iter().all(|o| o.kind() != a.kind()) {
                        attributes.push(a);
                    }
                }
                let witnesses = ws[..signers.len()].to_vec();
                Transaction {
                    version: 0,
                    nonce,
                    system_fee,
                    network_fee,
                    valid_until_block,
                    signers,
                    attributes,
                    script,
                    witnesses,
                }
            },
        )
}

fn header() -> impl Strategy<Value = Header> {
    (
        (u256(), u256(), any::<u64>(), any::<u64>()),
        (any::<u32>(), any::<u8>(), u160()),
        witness(),
    )
        .prop_map(
            |((prev_hash, merkle_root, timestamp, nonce), (index, primary_index, nc), witness)| {
                Header {
                    version: 0,
                    prev_hash,
                    merkle_root,
                    timestamp,
                    nonce,
                    index,
                    primary_index,
                    next_consensus: nc,
                    witness,
                }
            },
        )
}

fn block() -> impl Strategy<Value = Block> {
    (header(), prop::collection::vec(transaction(), 0..=3)).prop_map(
        |(mut header, transactions)| {
            let b = Block {
                header: header.clone(),
                transactions,
            };
            header.merkle_root = neo_peer::wire::merkle_root(&b.tx_hashes());
            Block { header, ..b }
        },
    )
}

fn capability() -> impl Strategy<Value = NodeCapability> {
    prop_oneof![
        any::<u16>().prop_map(|port| NodeCapability::TcpServer { port }),
        any::<u16>().prop_map(|port| NodeCapability::WsServer { port }),
        Just(NodeCapability::DisableCompression),
        any::<u32>().prop_map(|start_height| NodeCapability::FullNode { start_height }),
        Just(NodeCapability::ArchivalNode),
        (0xF0u8..=0xFF, bytes(20))
            .prop_map(|(kind, data)| NodeCapability::Extension { kind, data }),
        (
            prop::sample::select(vec![0x00u8, 0x04, 0x12, 0x42, 0xEF]),
            bytes(20)
        )
            .prop_map(|(kind, data)| NodeCapability::Unknown { kind, data }),
    ]
}

fn capabilities() -> impl Strategy<Value = Vec<NodeCapability>> {
    prop::collection::vec(capability(), 0..=6).prop_map(|caps| {
        let mut out: Vec<NodeCapability> = Vec::new();
        for c in caps {
            let repeatable = matches!(
                c,
                NodeCapability::Extension { .. } | NodeCapability::Unknown { .. }
            );
            if repeatable || out.iter().all(|o| o.kind() != c.kind()) {
                out.push(c);
            }
        }
        out
    })
}

fn inv() -> impl Strategy<Value = InvPayload> {
    (
        prop::sample::select(vec![
            InventoryType::Transaction,
            InventoryType::Block,
            InventoryType::Extensible,
            InventoryType::P2PNotaryRequest,
        ]),
        prop::collection::vec(u256(), 1..=8),
    )
        .prop_map(|(kind, hashes)| InvPayload { kind, hashes })
}

fn by_index() -> impl Strategy<Value = GetBlockByIndexPayload> {
    (any::<u32>(), prop_oneof![Just(-1i16), 1i16..=2000])
        .prop_map(|(index_start, count)| GetBlockByIndexPayload { index_start, count })
}

fn ping() -> impl Strategy<Value = PingPayload> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(last_block_index, timestamp, nonce)| {
        PingPayload {
            last_block_index,
            timestamp,
            nonce,
        }
    })
}

fn extensible() -> impl Strategy<Value = ExtensiblePayload> {
    (
        "[a-zA-Z]{0,32}",
        any::<u32>(),
        1u32..1000,
        u160(),
        bytes(100),
        witness(),
    )
        .prop_map(
            |(category, start, span, sender, data, witness)| ExtensiblePayload {
                category,
                valid_block_start: start.min(u32::MAX - span),
                valid_block_end: start.min(u32::MAX - span) + span,
                sender,
                data,
                witness,
            },
        )
}

fn merkle_block() -> impl Strategy<Value = MerkleBlockPayload> {
    (
        header(),
        0u32..300,
        prop::collection::vec(u256(), 0..=6),
        bytes(40),
    )
        .prop_map(|(header, tx_count, mut hashes, mut flags)| {
            hashes.truncate(tx_count as usize);
            flags.truncate((tx_count.max(1) as usize).div_ceil(8));
            MerkleBlockPayload {
                header,
                tx_count,
                hashes,
                flags,
            }
        })
}

fn message() -> impl Strategy<Value = Message> {
    let arms: Vec<BoxedStrategy<Message>> = vec![
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            "\\PC{0,20}",
            capabilities(),
        )
            .prop_map(
                |(network, version, timestamp, nonce, user_agent, capabilities)| {
                    Message::Version(VersionPayload {
                        network,
                        version,
                        timestamp,
                        nonce,
                        user_agent,
                        capabilities,
                    })
                },
            )
            .boxed(),
        Just(Message::Verack).boxed(),
        Just(Message::GetAddr).boxed(),
        prop::collection::vec(
            (any::<u32>(), any::<[u8; 16]>(), capabilities()).prop_map(|(timestamp, ip, caps)| {
                NetworkAddressWithTime {
                    timestamp,
                    address: Ipv6Addr::from(ip),
                    capabilities: caps,
                }
            }),
            1..=4,
        )
        .prop_map(|addresses| Message::Addr(AddrPayload { addresses }))
        .boxed(),
        ping().prop_map(Message::Ping).boxed(),
        ping().prop_map(Message::Pong).boxed(),
        by_index().prop_map(Message::GetHeaders).boxed(),
        prop::collection::vec(header(), 1..=4)
            .prop_map(|headers| Message::Headers(HeadersPayload::new(&headers)))
            .boxed(),
        (u256(), prop_oneof![Just(-1i16), 1i16..=i16::MAX])
            .prop_map(|(hash_start, count)| {
                Message::GetBlocks(GetBlocksPayload { hash_start, count })
            })
            .boxed(),
        Just(Message::Mempool).boxed(),
        inv().prop_map(Message::Inv).boxed(),
        inv().prop_map(Message::GetData).boxed(),
        by_index().prop_map(Message::GetBlockByIndex).boxed(),
        inv().prop_map(Message::NotFound).boxed(),
        transaction().prop_map(Message::Transaction).boxed(),
        block().prop_map(Message::Block).boxed(),
        extensible().prop_map(Message::Extensible).boxed(),
        bytes(60)
            .prop_filter("non-empty", |b| !b.is_empty())
            .prop_map(Message::Reject)
            .boxed(),
        (bytes(200), 0u8..=50, any::<u32>())
            .prop_map(|(filter, k, tweak)| {
                Message::FilterLoad(FilterLoadPayload { filter, k, tweak })
            })
            .boxed(),
        bytes(200)
            .prop_map(|data| Message::FilterAdd(FilterAddPayload { data }))
            .boxed(),
        Just(Message::FilterClear).boxed(),
        merkle_block().prop_map(Message::MerkleBlock).boxed(),
        bytes(60)
            .prop_filter("non-empty", |b| !b.is_empty())
            .prop_map(Message::Alert)
            .boxed(),
        (transaction(), transaction(), witness())
            .prop_map(|(main_tx, fallback_tx, witness)| {
                Message::P2PNotaryRequest(Box::new(P2PNotaryRequest {
                    main_tx,
                    fallback_tx,
                    witness,
                }))
            })
            .boxed(),
        prop::collection::vec(u256(), 0..=32)
            .prop_map(|hashes| Message::GetMptData(GetMptDataPayload { hashes }))
            .boxed(),
        prop::collection::vec(bytes(50), 1..=4)
            .prop_map(|nodes| Message::MptData(MptDataPayload { nodes }))
            .boxed(),
        (
            any::<u8>().prop_filter("undefined command", |c| Command::from_u8(*c).is_none()),
            bytes(60),
        )
            .prop_map(|(command, payload)| Message::Unknown { command, payload })
            .boxed(),
    ];
    Union::new(arms)
}

fn check_struct<T: Decode + Encode + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = v.to_bytes();
    assert_eq!(v.size(), bytes.len());
    assert_eq!(&T::decode_exact(bytes).unwrap(), v);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn every_message_roundtrips(msg in message(), compress in any::<bool>()) {
        let mut codec = Codec::new();
        codec.set_compression(compress);
        let mut buf = BytesMut::new();
        codec.encode(&msg, &mut buf).unwrap();
        let mut payload = BytesMut::new();
        msg.encode_payload(&mut payload);
        prop_assert_eq!(payload.len(), msg.payload_size());
        // Directly from the payload.
        let direct = Message::decode_payload(msg.command_byte(), payload.freeze()).unwrap();
        prop_assert_eq!(&direct, &msg);
        // Through the stream codec, with a second frame behind it.
        let frame_len = buf.len();
        codec.encode(&Message::Verack, &mut buf).unwrap();
        let frame = codec.decode_frame(&mut buf).unwrap().unwrap();
        prop_assert_eq!(frame.wire_len, frame_len);
        prop_assert_eq!(frame.decode_message().unwrap(), msg.clone());
        prop_assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::Verack));
        prop_assert!(buf.is_empty());
        if !frame.compressed() {
            prop_assert_eq!(frame.wire_len, 2 + neo_peer::wire::var_int_size(msg.payload_size() as u64) + msg.payload_size());
        }
    }

    #[test]
    fn structures_roundtrip(tx in transaction(), b in block(), s in signer(), r in rule(),
                            c in condition(3), cap in capability(), h in header()) {
        check_struct(&tx);
        check_struct(&b);
        prop_assert!(b.check().is_ok());
        prop_assert_eq!(b.hash(), b.header.hash());
        check_struct(&s);
        check_struct(&r);
        check_struct(&c);
        check_struct(&cap);
        check_struct(&h);
        prop_assert_eq!(tx.sender(), Some(tx.signers[0].account));
    }
}
