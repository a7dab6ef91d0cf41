//! Round-trip properties of the Legacy codec: any valid value encodes to
//! `size()` bytes, decodes back to itself, and goes through the streaming
//! codec unchanged, for every message type.

use std::net::Ipv6Addr;

use bytes::{Bytes, BytesMut};
use neo_peer::wire::legacy::{
    AddrPayload, AssetType, AttributeUsage, Block, BlockBase, Codec, CoinReference,
    ConsensusPayload, EcPoint, FilterAddPayload, FilterLoadPayload, Fixed8, GetBlocksPayload,
    GetStateRootsPayload, Header, HeadersPayload, InvPayload, InventoryType, MAINNET_MAGIC,
    MerkleBlockPayload, Message, NetworkAddressWithTime, PingPayload, PublishData, RegisterData,
    StateDescriptor, StateRoot, StateRootsPayload, StateType, TESTNET_MAGIC, Transaction,
    TransactionAttribute, TransactionData, TransactionOutput, TransactionType, UTILITY_TOKEN_ID,
    VersionPayload,
};
use neo_peer::wire::{Decode, Encode, UInt160, UInt256, Witness};
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn nonempty_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 1..=max).prop_map(Bytes::from)
}

fn uint256() -> impl Strategy<Value = UInt256> {
    any::<[u8; 32]>().prop_map(UInt256)
}

fn uint160() -> impl Strategy<Value = UInt160> {
    any::<[u8; 20]>().prop_map(UInt160)
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max)
        .prop_map(|c| c.into_iter().collect::<String>())
        .prop_filter("too long", move |s| s.len() <= max)
}

fn witness() -> impl Strategy<Value = Witness> {
    (bytes(80), bytes(40)).prop_map(|(invocation, verification)| Witness {
        invocation,
        verification,
    })
}

fn block_base() -> impl Strategy<Value = BlockBase> {
    (
        any::<u32>(),
        uint256(),
        uint256(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        uint160(),
        witness(),
    )
        .prop_map(
            |(version, prev_hash, merkle_root, timestamp, index, consensus_data, nc, witness)| {
                BlockBase {
                    version,
                    prev_hash,
                    merkle_root,
                    timestamp,
                    index,
                    consensus_data,
                    next_consensus: nc,
                    witness,
                }
            },
        )
}

fn ec_point() -> impl Strategy<Value = EcPoint> {
    prop_oneof![
        Just(EcPoint::Infinity),
        (prop::bool::ANY, any::<[u8; 32]>()).prop_map(|(odd, x)| {
            let mut p = [0u8; 33];
            p[0] = if odd { 3 } else { 2 };
            p[1..].copy_from_slice(&x);
            EcPoint::Compressed(p)
        }),
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(x, y)| {
            let mut p = [0u8; 65];
            p[0] = 4;
            p[1..33].copy_from_slice(&x);
            p[33..].copy_from_slice(&y);
            EcPoint::Uncompressed(p)
        }),
    ]
}

fn coin() -> impl Strategy<Value = CoinReference> {
    (uint256(), any::<u16>()).prop_map(|(prev_hash, prev_index)| CoinReference {
        prev_hash,
        prev_index,
    })
}

fn output() -> impl Strategy<Value = TransactionOutput> {
    (uint256(), 1..=i64::MAX, uint160()).prop_map(|(asset_id, v, script_hash)| TransactionOutput {
        asset_id,
        value: Fixed8(v),
        script_hash,
    })
}

fn attribute() -> impl Strategy<Value = TransactionAttribute> {
    let usages: Vec<AttributeUsage> = (0..=255u8).filter_map(AttributeUsage::from_byte).collect();
    (prop::sample::select(usages), bytes(300)).prop_map(|(usage, raw)| {
        use neo_peer::wire::legacy::AttributeData;
        let data = match usage.data_layout() {
            AttributeData::Fixed(n) => {
                let mut v = raw.to_vec();
                v.resize(n, 0xAB);
                Bytes::from(v)
            }
            AttributeData::ByteLength => raw.slice(..raw.len().min(255)),
            AttributeData::VarBytes => raw,
        };
        TransactionAttribute { usage, data }
    })
}

fn descriptor() -> impl Strategy<Value = StateDescriptor> {
    (prop::bool::ANY, bytes(100), text(32), bytes(300)).prop_map(|(v, key, field, value)| {
        StateDescriptor {
            state_type: if v {
                StateType::Validator
            } else {
                StateType::Account
            },
            key,
            field,
            value,
        }
    })
}

/// Exclusive data with a version valid for its type.
fn tx_data() -> impl Strategy<Value = (u8, TransactionData)> {
    prop_oneof![
        any::<u32>().prop_map(|nonce| (0, TransactionData::Miner { nonce })),
        (0..=1u8).prop_map(|v| (v, TransactionData::Issue)),
        prop::collection::vec(coin(), 1..5)
            .prop_map(|claims| (0, TransactionData::Claim { claims })),
        ec_point().prop_map(|public_key| (0, TransactionData::Enrollment { public_key })),
        (
            any::<u8>(),
            text(40),
            any::<i64>(),
            any::<u8>(),
            ec_point(),
            uint160()
        )
            .prop_map(|(t, name, amount, precision, owner, admin)| {
                (
                    0,
                    TransactionData::Register(Box::new(RegisterData {
                        asset_type: AssetType::from_byte(t),
                        name,
                        amount: Fixed8(amount),
                        precision,
                        owner,
                        admin,
                    })),
                )
            }),
        Just((0, TransactionData::Contract)),
        (any::<u8>(), prop::collection::vec(descriptor(), 0..4))
            .prop_map(|(v, descriptors)| (v, TransactionData::State { descriptors })),
        (
            0..=1u8,
            bytes(100),
            bytes(10),
            any::<u8>(),
            prop::bool::ANY,
            (text(20), text(20), text(20), text(20), text(60))
        )
            .prop_map(|(v, script, parameter_list, return_type, ns, s)| {
                (
                    v,
                    TransactionData::Publish(Box::new(PublishData {
                        script,
                        parameter_list,
                        return_type,
                        need_storage: ns && v >= 1,
                        name: s.0,
                        code_version: s.1,
                        author: s.2,
                        email: s.3,
                        description: s.4,
                    })),
                )
            }),
        (0..=1u8, nonempty_bytes(200), 0..=i64::MAX).prop_map(|(v, script, gas)| {
            let gas = Fixed8(if v >= 1 { gas } else { 0 });
            (v, TransactionData::Invocation { script, gas })
        }),
    ]
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        tx_data(),
        prop::collection::vec(attribute(), 0..4),
        prop::collection::vec(coin(), 0..4),
        prop::collection::vec(output(), 0..4),
        prop::collection::vec(witness(), 0..3),
    )
        .prop_map(
            |((version, data), attributes, mut inputs, mut outputs, witnesses)| {
                if data.tx_type() == TransactionType::Miner {
                    inputs.clear();
                    for o in &mut outputs {
                        o.asset_id = UTILITY_TOKEN_ID;
                    }
                }
                Transaction {
                    version,
                    data,
                    attributes,
                    inputs,
                    outputs,
                    witnesses,
                }
            },
        )
}

fn block() -> impl Strategy<Value = Block> {
    (block_base(), prop::collection::vec(transaction(), 1..4))
        .prop_map(|(base, transactions)| Block { base, transactions })
}

fn header() -> impl Strategy<Value = Header> {
    block_base().prop_map(Header::from)
}

fn net_addr() -> impl Strategy<Value = NetworkAddressWithTime> {
    (any::<u32>(), any::<u64>(), any::<[u8; 16]>(), any::<u16>()).prop_map(|(t, s, a, p)| {
        NetworkAddressWithTime {
            timestamp: t,
            services: s,
            address: Ipv6Addr::from(a),
            port: p,
        }
    })
}

fn get_blocks() -> impl Strategy<Value = GetBlocksPayload> {
    (prop::collection::vec(uint256(), 0..=16), uint256()).prop_map(|(hash_start, hash_stop)| {
        GetBlocksPayload {
            hash_start,
            hash_stop,
        }
    })
}

fn inv() -> impl Strategy<Value = InvPayload> {
    (
        prop::sample::select(vec![
            InventoryType::Tx,
            InventoryType::Block,
            InventoryType::StateRoot,
            InventoryType::Consensus,
        ]),
        prop::collection::vec(uint256(), 0..20),
    )
        .prop_map(|(kind, hashes)| InvPayload { kind, hashes })
}

fn ping() -> impl Strategy<Value = PingPayload> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| PingPayload {
        last_block_index: a,
        timestamp: b,
        nonce: c,
    })
}

fn state_root() -> impl Strategy<Value = StateRoot> {
    (
        any::<u8>(),
        any::<u32>(),
        uint256(),
        uint256(),
        prop::option::of(witness()),
    )
        .prop_map(|(version, index, prev_hash, root, witness)| StateRoot {
            version,
            index,
            prev_hash,
            root,
            witness,
        })
}

fn version() -> impl Strategy<Value = VersionPayload> {
    (
        (any::<u32>(), any::<u64>(), any::<u32>(), any::<u16>()),
        (any::<u32>(), text(64), any::<u32>(), prop::bool::ANY),
    )
        .prop_map(
            |((version, services, timestamp, port), (nonce, user_agent, start_height, relay))| {
                VersionPayload {
                    version,
                    services,
                    timestamp,
                    port,
                    nonce,
                    user_agent,
                    start_height,
                    relay,
                }
            },
        )
}

fn consensus() -> impl Strategy<Value = ConsensusPayload> {
    (
        (
            any::<u32>(),
            uint256(),
            any::<u32>(),
            any::<u16>(),
            any::<u32>(),
        ),
        bytes(200),
        witness(),
    )
        .prop_map(
            |((version, prev_hash, block_index, vi, ts), data, witness)| ConsensusPayload {
                version,
                prev_hash,
                block_index,
                validator_index: vi,
                timestamp: ts,
                data,
                witness,
            },
        )
}

fn merkle_block() -> impl Strategy<Value = MerkleBlockPayload> {
    (
        block_base(),
        0..=65535u32,
        prop::collection::vec(uint256(), 0..10),
        bytes(20),
    )
        .prop_map(|(base, n, mut hashes, mut flags)| {
            hashes.truncate(n as usize);
            flags.truncate(n.div_ceil(8) as usize);
            MerkleBlockPayload {
                base,
                tx_count: n,
                hashes,
                flags,
            }
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        version().prop_map(Message::Version),
        Just(Message::Verack),
        Just(Message::GetAddr),
        prop::collection::vec(net_addr(), 1..=20)
            .prop_map(|addresses| Message::Addr(AddrPayload { addresses })),
        get_blocks().prop_map(Message::GetHeaders),
        prop::collection::vec(header(), 0..5)
            .prop_map(|headers| Message::Headers(HeadersPayload { headers })),
        get_blocks().prop_map(Message::GetBlocks),
        inv().prop_map(Message::Inv),
        inv().prop_map(Message::GetData),
        block().prop_map(|b| Message::Block(Box::new(b))),
        transaction().prop_map(|t| Message::Tx(Box::new(t))),
        consensus().prop_map(Message::Consensus),
        Just(Message::Mempool),
        ping().prop_map(Message::Ping),
        ping().prop_map(Message::Pong),
        (bytes(300), 0..=50u8, any::<u32>()).prop_map(|(filter, k, tweak)| Message::FilterLoad(
            FilterLoadPayload { filter, k, tweak }
        )),
        bytes(520).prop_map(|data| Message::FilterAdd(FilterAddPayload { data })),
        Just(Message::FilterClear),
        merkle_block().prop_map(|m| Message::MerkleBlock(Box::new(m))),
        (any::<u32>(), 1..=u32::MAX).prop_map(|(start_index, count)| Message::GetRoots(
            GetStateRootsPayload { start_index, count }
        )),
        prop::collection::vec(state_root(), 0..4)
            .prop_map(|roots| Message::Roots(StateRootsPayload { roots })),
        state_root().prop_map(Message::StateRoot),
        bytes(50).prop_map(Message::Alert),
        bytes(50).prop_map(Message::Reject),
        bytes(50).prop_map(Message::NotFound),
        ("[a-z]{1,12}", bytes(50))
            .prop_filter("known command", |(c, _)| {
                !neo_peer::wire::legacy::COMMANDS.contains(&c.as_str())
            })
            .prop_map(|(command, payload)| Message::Unknown { command, payload }),
    ]
}

fn roundtrip<T: Decode + Encode + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = v.to_bytes();
    assert_eq!(v.size(), bytes.len(), "size() != encoded length");
    let back = T::decode_exact(bytes.clone()).unwrap();
    assert_eq!(&back, v);
    assert_eq!(back.to_bytes(), bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn messages_roundtrip_through_the_codec(msg in message(), testnet in prop::bool::ANY) {
        let magic = if testnet { TESTNET_MAGIC } else { MAINNET_MAGIC };
        let mut codec = Codec::new(magic);
        let mut buf = BytesMut::new();
        codec.encode(&msg, &mut buf).unwrap();
        prop_assert_eq!(buf.len(), 24 + msg.payload_size());
        let frame_bytes = buf.clone().freeze();
        let back = codec.decode(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&back, &msg);
        // the payload alone decodes too
        let payload = frame_bytes.slice(24..);
        prop_assert_eq!(Message::decode_payload(msg.command(), payload).unwrap(), msg.clone());
        // encoding the decoded message gives the same frame
        let mut again = BytesMut::new();
        codec.encode(&back, &mut again).unwrap();
        prop_assert_eq!(again.freeze(), frame_bytes);
    }

    #[test]
    fn two_messages_split_anywhere_decode_the_same(
        a in message(), b in message(), cut in any::<prop::sample::Index>()
    ) {
        let mut codec = Codec::new(MAINNET_MAGIC);
        let mut all = BytesMut::new();
        codec.encode(&a, &mut all).unwrap();
        codec.encode(&b, &mut all).unwrap();
        let cut = cut.index(all.len() + 1);
        let mut buf = BytesMut::from(&all[..cut]);
        let mut got = Vec::new();
        while let Some(m) = codec.decode(&mut buf).unwrap() {
            got.push(m);
        }
        buf.extend_from_slice(&all[cut..]);
        while let Some(m) = codec.decode(&mut buf).unwrap() {
            got.push(m);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, vec![a, b]);
    }

    #[test]
    fn transactions_roundtrip(tx in transaction()) {
        roundtrip(&tx);
        prop_assert_eq!(tx.unsigned_size() + neo_peer::wire::vec_size(&tx.witnesses), tx.size());
        tx.check_limits().unwrap();
    }

    #[test]
    fn blocks_and_headers_roundtrip(b in block()) {
        roundtrip(&b);
        let h = b.header();
        roundtrip(&h);
        prop_assert_eq!(h.hash(), b.hash());
        roundtrip(&b.base);
    }

    #[test]
    fn payload_structures_roundtrip(
        v in version(), c in consensus(), m in merkle_block(), r in state_root(), a in net_addr()
    ) {
        roundtrip(&v);
        roundtrip(&c);
        roundtrip(&m);
        roundtrip(&r);
        roundtrip(&a);
        prop_assert_eq!(NetworkAddressWithTime::new(a.timestamp, a.services, a.socket_addr()), a);
    }
}

#[test]
fn hashes_cover_exactly_the_unsigned_parts() {
    let base = BlockBase {
        version: 0,
        prev_hash: UInt256([1; 32]),
        merkle_root: UInt256([2; 32]),
        timestamp: 3,
        index: 4,
        consensus_data: 5,
        next_consensus: UInt160([6; 20]),
        witness: Witness::default(),
    };
    let mut signed = base.clone();
    signed.witness.invocation = Bytes::from_static(b"sig");
    assert_eq!(base.hash(), signed.hash(), "the witness is not hashed");
    assert_eq!(
        base.hash().0,
        neo_peer::wire::hash256(&base.to_bytes()[..104])
    );

    let tx = Transaction {
        version: 0,
        data: TransactionData::Contract,
        attributes: vec![],
        inputs: vec![],
        outputs: vec![],
        witnesses: vec![],
    };
    // the reference node accepted and mined exactly this transaction
    assert_eq!(hex::encode(tx.to_bytes()), "800000000000");
    let mut signed = tx.clone();
    signed.witnesses.push(Witness::default());
    assert_eq!(tx.hash(), signed.hash());
    assert_eq!(
        tx.hash().0,
        neo_peer::wire::hash256(&hex::decode("8000000000").unwrap())
    );
}
