//! Malformed input: truncations, bit flips, oversized lengths and counts,
//! decompression bombs, protocol rule violations, and stream splitting.

use bytes::{Bytes, BytesMut};
use neo_peer::wire::n3::{
    AddrPayload, Block, Codec, ExtensiblePayload, GetBlockByIndexPayload, Header, HeadersPayload,
    InvPayload, InventoryType, Message, NetworkAddressWithTime, NodeCapability, Signer,
    Transaction, TransactionAttribute, VersionPayload, WitnessCondition, WitnessRule, WitnessScope,
};
use neo_peer::wire::{
    Decode, DecodeError, Encode, FrameError, MAX_PAYLOAD, MAX_UNKNOWN_PAYLOAD, PayloadLimits,
    UInt160, UInt256, Witness, WriteExt, n3,
};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let mut all = Vec::new();
    for name in ["n3.json", "n3-captured.json"] {
        let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let list: Value = serde_json::from_str(&text).unwrap();
        for mut v in list.as_array().unwrap().clone() {
            if name == "n3-captured.json" {
                v["kind"] = "message".into();
            }
            all.push(v);
        }
    }
    all
}

fn hexv(v: &Value) -> Vec<u8> {
    hex::decode(v["hex"].as_str().unwrap()).unwrap()
}

/// Decodes `bytes` as the vector's kind; `Ok(())` if it decoded.
fn try_decode(v: &Value, bytes: &[u8]) -> Result<(), String> {
    fn go<T: Decode + Encode>(bytes: &[u8]) -> Result<(), String> {
        let x = T::from_slice(bytes).map_err(|e| e.to_string())?;
        // Whatever decodes also re-encodes without trouble.
        assert_eq!(x.size(), x.to_bytes().len());
        Ok(())
    }
    match v["kind"].as_str().unwrap() {
        "block" => go::<Block>(bytes),
        "header" => go::<Header>(bytes),
        "tx" => go::<Transaction>(bytes),
        "payload" => match v["payload_type"].as_str().unwrap() {
            "signer" => go::<Signer>(bytes),
            "witness_rule" => go::<WitnessRule>(bytes),
            "witness_condition" => go::<WitnessCondition>(bytes),
            "capability" => go::<NodeCapability>(bytes),
            "witness" => {
                let mut r = neo_peer::wire::Reader::from_slice(bytes);
                Witness::decode_limited(&mut r, 1024).map_err(|e| e.to_string())?;
                r.finish("witness").map_err(|e| e.to_string())
            }
            "getblockbyindex" => go::<GetBlockByIndexPayload>(bytes),
            ty => {
                let cmd = neo_peer::wire::n3::Command::ALL
                    .into_iter()
                    .find(|c| c.name() == ty)
                    .unwrap();
                Message::decode_payload(cmd.as_u8(), Bytes::copy_from_slice(bytes))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        },
        "message" => {
            let mut buf = BytesMut::from(bytes);
            match Codec::new().decode(&mut buf) {
                Ok(Some(m)) => {
                    let mut out = BytesMut::new();
                    let _ = Codec::new().encode(&m, &mut out);
                    Ok(())
                }
                Ok(None) => Err("incomplete".into()),
                Err(e) => Err(e.to_string()),
            }
        }
        k => panic!("kind {k}"),
    }
}

#[test]
fn every_truncation_fails_cleanly() {
    for v in vectors() {
        let bytes = hexv(&v);
        let valid = v.get("valid") != Some(&Value::Bool(false));
        for cut in 0..bytes.len() {
            let res = try_decode(&v, &bytes[..cut]);
            if valid {
                assert!(res.is_err(), "{} cut at {cut} decoded", v["name"]);
            }
        }
        if v["kind"] == "message" {
            // A partial frame is "not yet", never an error, and consumes nothing.
            for cut in 0..bytes.len() {
                let mut buf = BytesMut::from(&bytes[..cut]);
                assert_eq!(Codec::new().decode_frame(&mut buf), Ok(None));
                assert_eq!(buf.len(), cut);
            }
        }
    }
}

#[test]
fn bit_flips_never_panic() {
    for v in vectors() {
        let mut bytes = hexv(&v);
        // Long vectors: flip every bit of the first 300 bytes and one bit of every later byte.
        for i in 0..bytes.len() {
            let bits: &[u8] = if i < 300 {
                &[0, 1, 2, 3, 4, 5, 6, 7]
            } else {
                &[(i % 8) as u8]
            };
            for &bit in bits {
                bytes[i] ^= 1 << bit;
                let _ = try_decode(&v, &bytes);
                bytes[i] ^= 1 << bit;
            }
        }
    }
}

#[test]
fn every_frame_split_at_every_point_gives_the_same_message() {
    for v in vectors() {
        if v["kind"] != "message" {
            continue;
        }
        let bytes = hexv(&v);
        let whole = Codec::new()
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap();
        for split in 0..=bytes.len() {
            let mut codec = Codec::new();
            let mut buf = BytesMut::from(&bytes[..split]);
            let first = codec.decode(&mut buf).unwrap();
            buf.extend_from_slice(&bytes[split..]);
            let msg = match first {
                Some(m) => m,
                None => codec.decode(&mut buf).unwrap().unwrap(),
            };
            assert_eq!(msg, whole, "{} split at {split}", v["name"]);
            assert!(buf.is_empty());
        }
        // Byte by byte, with the next frame's first byte already behind it.
        let mut codec = Codec::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            if let Some(m) = codec.decode(&mut buf).unwrap() {
                assert_eq!(i, bytes.len() - 1);
                got = Some(m);
            }
        }
        assert_eq!(got, Some(whole));
    }
}

#[test]
fn oversized_lengths_are_rejected_before_the_payload() {
    // A frame declaring 4 GiB, with nothing behind it.
    let mut buf = BytesMut::from(&[0x00, 0x2C, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF][..]);
    assert!(matches!(
        Codec::new().decode_frame(&mut buf),
        Err(FrameError::PayloadTooLarge {
            len: 0xFFFF_FFFF,
            ..
        })
    ));
    let mut buf = BytesMut::from(&[0x00, 0x2C, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x80][..]);
    assert!(matches!(
        Codec::new().decode_frame(&mut buf),
        Err(FrameError::PayloadTooLarge { .. })
    ));
    // Just above the protocol cap, and above a lowered cap.
    let over = (MAX_PAYLOAD as u32 + 1).to_le_bytes();
    let mut buf = BytesMut::from(&[0x00, 0x2C, 0xFE, over[0], over[1], over[2], over[3]][..]);
    assert!(Codec::new().decode_frame(&mut buf).is_err());
    let mut codec = Codec::new();
    codec.set_max_payload(1024);
    assert_eq!(codec.max_payload(), 1024);
    let mut buf = BytesMut::from(&[0x00, 0x2C, 0xFD, 0x01, 0x04][..]);
    assert_eq!(
        codec.decode_frame(&mut buf),
        Err(FrameError::PayloadTooLarge {
            len: 1025,
            max: 1024
        })
    );
    let mut buf = BytesMut::from(&[0x00, 0x2C, 0xFD, 0x00, 0x04][..]);
    assert_eq!(codec.decode_frame(&mut buf), Ok(None));
    codec.set_max_payload(usize::MAX);
    assert_eq!(codec.max_payload(), MAX_PAYLOAD);
    // A 32 MiB block is over the block cap: refused at the header...
    let cap = (MAX_PAYLOAD as u32).to_le_bytes();
    let huge_block = [0x00, 0x2C, 0xFE, cap[0], cap[1], cap[2], cap[3]];
    assert_eq!(
        codec.decode_frame(&mut BytesMut::from(&huge_block[..])),
        Err(FrameError::CommandTooLarge {
            command: "block".into(),
            what: "payload",
            len: MAX_PAYLOAD as u64,
            max: n3::MAX_BLOCK_SIZE as u64,
        })
    );
    // ...unless the network's blocks may be that large: then exactly the
    // frame cap is waited for, without reserving room for it.
    let mut limits = PayloadLimits::N3;
    limits.block = usize::MAX;
    codec.set_limits(limits);
    assert_eq!(codec.payload_cap(0x2C), MAX_PAYLOAD);
    let mut buf = BytesMut::from(&huge_block[..]);
    let room = buf.capacity();
    assert_eq!(codec.decode_frame(&mut buf), Ok(None));
    assert_eq!(buf.capacity(), room, "a declared length buys no memory");
    assert_eq!(buf.len(), 7, "nothing consumed");
}

#[test]
fn oversized_counts_are_rejected_without_allocating() {
    // 2^32 hashes followed by 3 bytes.
    let huge = [0xFF, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3];
    let mut inv = vec![0x2B];
    inv.extend_from_slice(&huge);
    let e = InvPayload::from_slice(&inv).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::TooMany {
                what: "inv.hashes",
                ..
            }
        ),
        "{e}"
    );
    for cmd in [0x51u8, 0x52, 0x21, 0x11] {
        let e = Message::decode_payload(cmd, Bytes::copy_from_slice(&huge)).unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::TooMany { .. } | DecodeError::Truncated { .. }
            ),
            "{cmd:#x}: {e}"
        );
    }
    // A count within the limit whose elements cannot fit.
    let e = HeadersPayload::from_slice(&[0xFD, 0xD0, 0x07, 1, 2, 3]).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::Truncated {
                what: "headers",
                ..
            }
        ),
        "{e}"
    );
    let e =
        Message::decode_payload(0x52, Bytes::from_static(&[0xFE, 0, 0, 0, 1, 1, 2])).unwrap_err();
    assert!(matches!(e, DecodeError::Truncated { .. }), "{e}");
    // Byte strings claiming more than is there or allowed.
    let e = Message::decode_payload(0x31, Bytes::from_static(&[0xFD, 0x09, 0x02, 1])).unwrap_err();
    assert_eq!(e.to_string(), "filteradd.data: 521 > 520");
}

fn compressed_frame(command: u8, n: u32, block: &[u8]) -> BytesMut {
    let mut body = n.to_le_bytes().to_vec();
    body.extend_from_slice(block);
    let mut f = BytesMut::new();
    f.extend_from_slice(&[0x01, command]);
    assert!(body.len() < 0xFD);
    f.extend_from_slice(&[body.len() as u8]);
    f.extend_from_slice(&body);
    f
}

#[test]
fn decompression_is_bounded_and_exact() {
    // A bomb: a whole block's cap (2 MiB) claimed from a few bytes.
    let start = std::time::Instant::now();
    let bomb = [0x1F, 0, 1, 0, 0xFF, 0xFF, 0xFF];
    let mut f = compressed_frame(0x2C, n3::MAX_BLOCK_SIZE as u32, &bomb);
    assert!(matches!(
        Codec::new().decode_frame(&mut f),
        Err(FrameError::Decompress(_))
    ));
    assert!(start.elapsed().as_millis() < 100);
    // More than the block's cap: refused from the size alone.
    let mut f = compressed_frame(0x2C, MAX_PAYLOAD as u32, &bomb);
    assert_eq!(
        Codec::new().decode_frame(&mut f),
        Err(FrameError::CommandTooLarge {
            command: "block".into(),
            what: "decompressed payload",
            len: MAX_PAYLOAD as u64,
            max: n3::MAX_BLOCK_SIZE as u64,
        })
    );
    // More than the frame cap.
    let mut f = compressed_frame(0x2C, MAX_PAYLOAD as u32 + 1, &[0x00]);
    assert!(matches!(
        Codec::new().decode_frame(&mut f),
        Err(FrameError::PayloadTooLarge { .. })
    ));
    let mut codec = Codec::new();
    codec.set_max_payload(100);
    let mut f = compressed_frame(0x2C, 101, &[0x00; 20]);
    assert!(matches!(
        codec.decode_frame(&mut f),
        Err(FrameError::PayloadTooLarge { len: 101, max: 100 })
    ));
    // The block yields fewer or more bytes than announced.
    let block = lz4_flex::block::compress(&[7u8; 200]);
    for n in [199, 201, 0, 1000] {
        let mut f = compressed_frame(0x2C, n, &block);
        assert!(
            matches!(
                Codec::new().decode_frame(&mut f),
                Err(FrameError::Decompress(_))
            ),
            "{n}"
        );
    }
    let mut f = compressed_frame(0x2C, 200, &block);
    let frame = Codec::new().decode_frame(&mut f).unwrap().unwrap();
    assert!(frame.compressed());
    assert_eq!(frame.payload.as_ref(), &[7u8; 200][..]);
    // Garbage and missing size.
    let mut f = compressed_frame(0x27, 50, &[0xF0, 0xFF, 0xFF, 0x12, 0x34]);
    assert!(Codec::new().decode_frame(&mut f).is_err());
    let mut f = BytesMut::from(&[0x01, 0x27, 0x03, 1, 2, 3][..]);
    assert!(matches!(
        Codec::new().decode_frame(&mut f),
        Err(FrameError::Decompress(_))
    ));
    let mut f = BytesMut::from(&[0x01, 0x01, 0x00][..]);
    assert!(Codec::new().decode_frame(&mut f).is_err());
}

#[test]
fn empty_payloads_only_where_defined() {
    for cmd in [0x01u8, 0x10, 0x25, 0x32] {
        let m = Codec::new()
            .decode(&mut BytesMut::from(&[0, cmd, 0][..]))
            .unwrap()
            .unwrap();
        assert_eq!(m.command_byte(), cmd);
        assert_eq!(m.payload_size(), 0);
        // ...and nothing else is accepted for them.
        assert!(Message::decode_payload(cmd, Bytes::from_static(&[0])).is_err());
    }
    for cmd in neo_peer::wire::n3::Command::ALL {
        if !cmd.has_empty_payload() {
            let e = Codec::new()
                .decode(&mut BytesMut::from(&[0, cmd.as_u8(), 0][..]))
                .unwrap_err();
            assert!(e.to_string().contains("empty payload"), "{e}");
        }
    }
    // Unknown commands are kept, empty or not.
    let m = Codec::new()
        .decode(&mut BytesMut::from(&[0, 0x99, 0][..]))
        .unwrap()
        .unwrap();
    assert_eq!(
        m,
        Message::Unknown {
            command: 0x99,
            payload: Bytes::new()
        }
    );
    assert_eq!(m.command_name(), "unknown");
    let m = Codec::new()
        .decode(&mut BytesMut::from(&[0, 0x99, 2, 5, 6][..]))
        .unwrap()
        .unwrap();
    assert_eq!(m.command_byte(), 0x99);
}

fn header() -> Header {
    Header {
        version: 0,
        prev_hash: UInt256::ZERO,
        merkle_root: UInt256::ZERO,
        timestamp: 1,
        nonce: 2,
        index: 3,
        primary_index: 0,
        next_consensus: UInt160::ZERO,
        witness: Witness {
            invocation: Bytes::from_static(&[1]),
            verification: Bytes::from_static(&[2]),
        },
    }
}

fn tx() -> Transaction {
    Transaction {
        version: 0,
        nonce: 1,
        system_fee: 0,
        network_fee: 0,
        valid_until_block: 10,
        signers: vec![Signer::new(UInt160([1; 20]), WitnessScope::CALLED_BY_ENTRY)],
        attributes: vec![],
        script: Bytes::from_static(&[0x11]),
        witnesses: vec![Witness::default()],
    }
}

/// Encodes without validation, then decodes.
fn reencode<T: Encode + Decode>(v: &T) -> Result<T, DecodeError> {
    T::decode_exact(v.to_bytes())
}

#[test]
fn header_rules() {
    let good = header().to_bytes();
    assert!(Header::decode_exact(good.clone()).is_ok());
    for count in [0u8, 2] {
        let mut b = good.to_vec();
        b[109] = count;
        let e = Header::from_slice(&b).unwrap_err();
        assert!(e.to_string().contains("exactly 1"), "{e}");
    }
    let mut h = header();
    h.version = 1;
    assert!(reencode(&h).is_err());
    assert!(h.validate().is_err());
    let mut h = header();
    h.witness.invocation = Bytes::from(vec![0; 1025]);
    assert!(reencode(&h).is_err());
}

#[test]
fn transaction_rules() {
    assert_eq!(reencode(&tx()).unwrap(), tx());
    let bad: Vec<(&str, Transaction)> = vec![
        ("version", Transaction { version: 1, ..tx() }),
        (
            "negative fee",
            Transaction {
                system_fee: -1,
                ..tx()
            },
        ),
        (
            "negative fee",
            Transaction {
                network_fee: -1,
                ..tx()
            },
        ),
        (
            "overflow",
            Transaction {
                system_fee: i64::MAX,
                network_fee: 1,
                ..tx()
            },
        ),
        (
            "empty script",
            Transaction {
                script: Bytes::new(),
                ..tx()
            },
        ),
        (
            "no signer",
            Transaction {
                signers: vec![],
                witnesses: vec![],
                ..tx()
            },
        ),
        (
            "witness count",
            Transaction {
                witnesses: vec![],
                ..tx()
            },
        ),
        (
            "duplicate signer",
            Transaction {
                signers: vec![tx().signers[0].clone(), tx().signers[0].clone()],
                witnesses: vec![Witness::default(); 2],
                ..tx()
            },
        ),
        (
            "too many attributes",
            Transaction {
                attributes: vec![
                    TransactionAttribute::Conflicts {
                        hash: UInt256::ZERO
                    };
                    16
                ],
                ..tx()
            },
        ),
        (
            "duplicate attribute",
            Transaction {
                attributes: vec![TransactionAttribute::HighPriority; 2],
                ..tx()
            },
        ),
        (
            "oracle result",
            Transaction {
                attributes: vec![TransactionAttribute::OracleResponse {
                    id: 1,
                    code: neo_peer::wire::n3::OracleResponseCode::NotFound,
                    result: Bytes::from_static(b"x"),
                }],
                ..tx()
            },
        ),
        (
            "size",
            Transaction {
                signers: (0..16u8)
                    .map(|i| Signer {
                        allowed_contracts: vec![UInt160::ZERO; 16],
                        ..Signer::new(UInt160([i; 20]), WitnessScope::CUSTOM_CONTRACTS)
                    })
                    .collect(),
                witnesses: vec![
                    Witness {
                        invocation: Bytes::from(vec![0; 1024]),
                        verification: Bytes::from(vec![0; 1024]),
                    };
                    16
                ],
                script: Bytes::from(vec![0; 65535]),
                ..tx()
            },
        ),
    ];
    for (what, t) in bad {
        assert!(reencode(&t).is_err(), "{what} decoded");
        assert!(t.validate().is_err(), "{what} validated");
        let mut out = BytesMut::new();
        let e = Codec::new()
            .encode(&Message::Transaction(t), &mut out)
            .unwrap_err();
        assert!(matches!(e, FrameError::Payload { .. }), "{what}: {e}");
        assert!(out.is_empty());
    }
    // Conflicts may repeat; 15 attributes fit beside one signer.
    let ok = Transaction {
        attributes: vec![
            TransactionAttribute::Conflicts {
                hash: UInt256::ZERO
            };
            15
        ],
        ..tx()
    };
    assert_eq!(reencode(&ok).unwrap(), ok);
    // Reserved (0xE0..) and undefined attribute types are refused.
    let mut raw = tx().to_bytes().to_vec();
    let attrs_at = 25 + 1 + 21;
    assert_eq!(raw[attrs_at], 0);
    for ty in [0xE0u8, 0xFF, 0x02] {
        let mut b = raw.clone();
        b[attrs_at] = 1;
        b.splice(attrs_at + 1..attrs_at + 1, [ty, 0]);
        let e = Transaction::from_slice(&b).unwrap_err();
        assert!(e.to_string().contains("attribute.type"), "{e}");
    }
    raw.push(0);
    assert!(matches!(
        Transaction::from_slice(&raw),
        Err(DecodeError::TrailingBytes { .. })
    ));
}

#[test]
fn signer_and_condition_rules() {
    let acct = [0u8; 20];
    let signer_bytes = |scope: u8, tail: &[u8]| {
        let mut b = acct.to_vec();
        b.push(scope);
        b.extend_from_slice(tail);
        b
    };
    for scope in [0x02u8, 0x04, 0x08, 0x81, 0x90, 0xC0] {
        assert!(
            Signer::from_slice(&signer_bytes(scope, &[])).is_err(),
            "{scope:#x}"
        );
    }
    assert!(Signer::from_slice(&signer_bytes(0x80, &[])).is_ok());
    // 17 allowed contracts.
    assert!(Signer::from_slice(&signer_bytes(0x10, &[17])).is_err());
    // Groups: bad prefixes.
    for prefix in [0x00u8, 0x01, 0x05] {
        let mut tail = vec![1, prefix];
        tail.extend_from_slice(&[0; 64]);
        assert!(Signer::from_slice(&signer_bytes(0x20, &tail[..34])).is_err());
    }
    let mut tail = vec![1, 0x04];
    tail.extend_from_slice(&[0; 64]);
    assert!(Signer::from_slice(&signer_bytes(0x20, &tail)).is_ok());
    // Rules: action 2, boolean 2, empty And, 17 Or children, nesting 4.
    for rule in [
        &[2u8, 0, 1][..],
        &[1, 0, 2],
        &[1, 2, 0],
        &[1, 0x42],
        &[1, 1, 1, 1, 0, 1],
    ] {
        let mut tail = vec![1];
        tail.extend_from_slice(rule);
        assert!(
            Signer::from_slice(&signer_bytes(0x40, &tail)).is_err(),
            "{rule:?}"
        );
    }
    let mut or17 = vec![1, 1, 3, 17];
    or17.extend_from_slice(&[0x20; 17]);
    assert!(Signer::from_slice(&signer_bytes(0x40, &or17)).is_err());
    let mut or16 = vec![1, 1, 3, 16];
    or16.extend_from_slice(&[0x20; 16]);
    assert!(Signer::from_slice(&signer_bytes(0x40, &or16)).is_ok());
    // Three levels are fine, four are not.
    assert!(WitnessCondition::from_slice(&[1, 1, 0, 1]).is_ok());
    assert!(WitnessCondition::from_slice(&[1, 1, 1, 0, 1]).is_err());
    let deep = WitnessCondition::Not(Box::new(WitnessCondition::Not(Box::new(
        WitnessCondition::Not(Box::new(WitnessCondition::Boolean(true))),
    ))));
    assert!(deep.validate_nested(3).is_err());
}

#[test]
fn payload_rules() {
    // getblockbyindex / getheaders count.
    for count in [0i16, -2, 2001, i16::MIN] {
        let p = GetBlockByIndexPayload {
            index_start: 1,
            count,
        };
        assert!(reencode(&p).is_err(), "{count}");
        assert!(
            Codec::new()
                .encode(&Message::GetHeaders(p), &mut BytesMut::new())
                .is_err()
        );
    }
    // headers 0 / 2001.
    assert!(HeadersPayload::from_slice(&[0]).is_err());
    let many = HeadersPayload::new(&vec![header(); 2001]);
    assert!(reencode(&many).is_err());
    assert!(
        Codec::new()
            .encode(&Message::Headers(many), &mut BytesMut::new())
            .is_err()
    );
    let max = HeadersPayload::new(&vec![header(); 2000]);
    assert_eq!(reencode(&max).unwrap(), max);
    // inv: 501 hashes, bad type.
    let inv = InvPayload {
        kind: InventoryType::Block,
        hashes: vec![UInt256::ZERO; 501],
    };
    assert!(reencode(&inv).is_err());
    assert!(
        Codec::new()
            .encode(&Message::Inv(inv), &mut BytesMut::new())
            .is_err()
    );
    assert!(InvPayload::from_slice(&[0x2D, 0]).is_err());
    // Empty inventories decode (the reference accepts them) but are never sent.
    let empty = InvPayload::from_slice(&[0x2C, 0]).unwrap();
    assert!(
        Codec::new()
            .encode(&Message::GetData(empty), &mut BytesMut::new())
            .is_err()
    );
    // addr: 0 / 201 entries. An empty one, as neo-go answers getaddr when it
    // knows no address, decodes; neither is ever sent.
    let entry = NetworkAddressWithTime {
        timestamp: 0,
        address: std::net::Ipv6Addr::LOCALHOST,
        capabilities: vec![NodeCapability::TcpServer { port: 10333 }],
    };
    assert_eq!(entry.socket_addr(), Some("[::1]:10333".parse().unwrap()));
    for n in [0, 201] {
        let addr = AddrPayload {
            addresses: vec![entry.clone(); n],
        };
        assert_eq!(reencode(&addr).is_ok(), n == 0, "{n}");
        let err = Codec::new()
            .encode(&Message::Addr(addr), &mut BytesMut::new())
            .unwrap_err();
        assert!(err.to_string().contains("addr.addresses"), "{err}");
    }
    assert_eq!(
        Message::decode_payload(
            neo_peer::wire::n3::Command::Addr as u8,
            Bytes::from_static(&[0])
        )
        .unwrap(),
        Message::Addr(AddrPayload { addresses: vec![] })
    );
    // Capabilities: duplicates of known types, ArchivalNode byte, 33 entries.
    let version = |caps: Vec<NodeCapability>| VersionPayload {
        network: 1,
        version: 0,
        timestamp: 0,
        nonce: 0,
        user_agent: "/x/".into(),
        capabilities: caps,
    };
    let dup = version(vec![NodeCapability::FullNode { start_height: 1 }; 2]);
    assert!(reencode(&dup).is_err());
    let unknown = NodeCapability::Unknown {
        kind: 0x42,
        data: Bytes::new(),
    };
    assert!(reencode(&version(vec![unknown.clone(), unknown.clone()])).is_ok());
    assert!(reencode(&version(vec![unknown; 33])).is_err());
    assert!(NodeCapability::from_slice(&[0x11, 0x01]).is_err());
    assert!(NodeCapability::from_slice(&[0x03, 0x01]).is_err());
    let long_ua = VersionPayload {
        user_agent: "a".repeat(1025),
        ..version(vec![])
    };
    assert!(reencode(&long_ua).is_err());
    let mut bad_utf8 = version(vec![]).to_bytes().to_vec();
    bad_utf8[17] = 0xFF;
    assert!(matches!(
        VersionPayload::from_slice(&bad_utf8),
        Err(DecodeError::Utf8 { .. })
    ));
    // Extensible: start >= end, witness count byte.
    let ext = ExtensiblePayload {
        category: "dBFT".into(),
        valid_block_start: 5,
        valid_block_end: 5,
        sender: UInt160::ZERO,
        data: Bytes::from_static(&[0x30]),
        witness: Witness::default(),
    };
    assert!(reencode(&ext).is_err());
    let ok = ExtensiblePayload {
        valid_block_end: 6,
        ..ext
    };
    assert_eq!(reencode(&ok).unwrap(), ok);
    assert_eq!(ok.dbft(), None);
    let mut b = ok.to_bytes().to_vec();
    let at = b.len() - 3;
    for count in [0u8, 2] {
        b[at] = count;
        assert!(ExtensiblePayload::from_slice(&b).is_err());
    }
    // Raw payloads must not be empty when sent.
    assert!(
        Codec::new()
            .encode(&Message::Reject(Bytes::new()), &mut BytesMut::new())
            .is_err()
    );
}

#[test]
fn encoder_respects_the_cap() {
    let mut codec = Codec::new();
    codec.set_max_payload(100);
    let msg = Message::FilterLoad(neo_peer::wire::n3::FilterLoadPayload {
        filter: Bytes::from(vec![0; 200]),
        k: 1,
        tweak: 0,
    });
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode(&msg, &mut out),
        Err(FrameError::PayloadTooLarge { len: 206, max: 100 })
    ));
    assert!(out.is_empty());
}

#[test]
fn compression_follows_the_reference_rules() {
    let mut t = tx();
    t.script = Bytes::from(vec![0x11; 2000]);
    let block = Message::Block(Block {
        header: header(),
        transactions: vec![t.clone()],
    });
    let inv = Message::Inv(InvPayload {
        kind: InventoryType::Transaction,
        hashes: vec![UInt256::ZERO; 500],
    });
    let small = Message::Transaction(tx());
    let mut on = Codec::new();
    on.set_compression(true);
    assert!(on.compression());
    assert!(!Codec::new().compression());
    for (msg, compressed) in [(&block, true), (&inv, false), (&small, false)] {
        let mut out = BytesMut::new();
        on.encode(msg, &mut out).unwrap();
        assert_eq!(out[0] == 1, compressed, "{}", msg.command_name());
        let frame = on.decode_frame(&mut out).unwrap().unwrap();
        assert_eq!(frame.compressed(), compressed);
        assert_eq!(&frame.decode_message().unwrap(), msg);
        let mut off = BytesMut::new();
        Codec::new().encode(msg, &mut off).unwrap();
        assert_eq!(off[0], 0);
    }
    // Random bytes do not compress: sent as they are.
    let noisy: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let msg = Message::FilterLoad(neo_peer::wire::n3::FilterLoadPayload {
        filter: Bytes::from(noisy),
        k: 3,
        tweak: 9,
    });
    let mut out = BytesMut::new();
    on.encode(&msg, &mut out).unwrap();
    let frame = on.decode_frame(&mut out).unwrap().unwrap();
    assert_eq!(frame.decode_message().unwrap(), msg);
}

/// A frame header: flags, command, and `len` as a 5-byte var-int.
fn frame_header(flags: u8, command: u8, len: u32) -> BytesMut {
    let mut f = BytesMut::from(&[flags, command, 0xFE][..]);
    f.extend_from_slice(&len.to_le_bytes());
    f
}

#[test]
fn a_ping_declaring_30_mb_is_refused_at_its_header() {
    // The header alone, in a buffer with no room to spare.
    let mut buf = BytesMut::with_capacity(7);
    buf.extend_from_slice(&frame_header(0, 0x18, 30_000_000));
    let room = buf.capacity();
    let err = Codec::new().decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        FrameError::CommandTooLarge {
            command: "ping".into(),
            what: "payload",
            len: 30_000_000,
            max: 12,
        }
    );
    assert_eq!(
        err.to_string(),
        "ping: payload of 30000000 bytes declared, at most 12 allowed"
    );
    assert_eq!(buf.len(), 7, "nothing consumed");
    assert_eq!(buf.capacity(), room, "nothing reserved");
    // The same once 1 MiB of it has arrived: refused, nothing reserved.
    buf.extend_from_slice(&vec![0; 1 << 20]);
    let room = buf.capacity();
    assert!(matches!(
        Codec::new().decode(&mut buf),
        Err(FrameError::CommandTooLarge {
            len: 30_000_000,
            ..
        })
    ));
    assert_eq!(buf.capacity(), room);
    // An undefined command is named by its byte.
    let err = Codec::new()
        .decode(&mut frame_header(0, 0x99, 1 << 20))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown 0x99: payload of 1048576 bytes declared, at most 65536 allowed"
    );
}

#[test]
fn every_command_waits_for_its_cap_and_refuses_one_byte_more() {
    let mut codec = Codec::new();
    for command in 0..=255u8 {
        let cap = codec.payload_cap(command);
        let mut at = frame_header(0, command, cap as u32);
        let room = at.capacity();
        if cap > 0 {
            assert_eq!(codec.decode_frame(&mut at), Ok(None), "{command:#x}");
            assert_eq!(at.capacity(), room, "a declared length buys no memory");
        }
        let err = codec
            .decode_frame(&mut frame_header(0, command, cap as u32 + 1))
            .unwrap_err();
        if cap == MAX_PAYLOAD {
            assert!(matches!(err, FrameError::PayloadTooLarge { .. }), "{err}");
        } else {
            assert!(
                matches!(err, FrameError::CommandTooLarge { what: "payload", len, max, .. }
                    if len == cap as u64 + 1 && max == cap as u64),
                "{command:#x}: {err}"
            );
        }
    }
    // The frame cap lowers every command's cap (before the handshake).
    codec.set_max_payload(4096);
    assert_eq!(codec.payload_cap(0x2C), 4096);
    assert_eq!(codec.payload_cap(0x18), 12);
}

#[test]
fn compressed_frames_are_capped_on_both_lengths() {
    let codec = Codec::new();
    // The length on the wire may exceed the cap by what LZ4 adds to
    // incompressible data, and no more.
    let block_cap = codec.payload_cap(0x2C);
    let wire_cap = 4 + block_cap + block_cap / 255 + 16;
    let mut f = frame_header(1, 0x2C, wire_cap as u32);
    assert_eq!(codec.clone().decode_frame(&mut f), Ok(None));
    let mut f = frame_header(1, 0x2C, wire_cap as u32 + 1);
    assert_eq!(
        codec.clone().decode_frame(&mut f),
        Err(FrameError::CommandTooLarge {
            command: "block".into(),
            what: "compressed payload",
            len: wire_cap as u64 + 1,
            max: wire_cap as u64,
        })
    );
    // The decompressed size is refused as soon as its 4 bytes are there,
    // before the rest of the body.
    for (command, declared) in [(0x18u8, 13u32), (0x2C, block_cap as u32 + 1)] {
        let mut f = frame_header(1, command, 20);
        f.extend_from_slice(&declared.to_le_bytes()[..3]);
        assert_eq!(codec.clone().decode_frame(&mut f), Ok(None), "3 of 4 bytes");
        f.extend_from_slice(&declared.to_le_bytes()[3..]);
        let room = f.capacity();
        let err = codec.clone().decode_frame(&mut f).unwrap_err();
        assert!(
            matches!(err, FrameError::CommandTooLarge { what: "decompressed payload", len, .. }
                if len == u64::from(declared)),
            "{err}"
        );
        assert_eq!(f.capacity(), room);
    }
    // Exactly the cap, compressed: decoded.
    let payload = vec![0x42; 12];
    let mut body = 12u32.to_le_bytes().to_vec();
    body.extend_from_slice(&lz4_flex::block::compress(&payload));
    let mut f = BytesMut::from(&[1, 0x18, body.len() as u8][..]);
    f.extend_from_slice(&body);
    let frame = codec.clone().decode_frame(&mut f).unwrap().unwrap();
    assert_eq!(&frame.payload[..], &payload[..]);
}

#[test]
fn the_block_and_transaction_caps_are_the_network_s() {
    let mut codec = Codec::new();
    assert_eq!(codec.limits(), &PayloadLimits::N3);
    assert_eq!(codec.payload_cap(0x2C), 2 << 20);
    assert_eq!(codec.payload_cap(0x2B), 102_400);
    assert_eq!(codec.payload_cap(0x2E), 2 << 20, "extensible: as a block");
    let mut limits = PayloadLimits::N3;
    limits.block = 8 << 20;
    limits.transaction = 1 << 20;
    limits.unknown = 10;
    codec.set_limits(limits);
    assert_eq!(codec.payload_cap(0x2C), 8 << 20);
    // No transaction is larger than the protocol allows, whatever the limit.
    assert_eq!(codec.payload_cap(0x2B), 102_400);
    assert_eq!(codec.payload_cap(0x2E), 8 << 20);
    assert_eq!(codec.payload_cap(0x99), 10);
    assert_eq!(codec.payload_cap(0x2F), 10, "reject");
    assert_eq!(codec.payload_cap(0x18), 12);
    limits.block = 1000;
    codec.set_limits(limits);
    assert_eq!(codec.payload_cap(0x2E), 1000);
    assert!(matches!(
        codec.decode_frame(&mut frame_header(0, 0x2C, 1001)),
        Err(FrameError::CommandTooLarge {
            len: 1001,
            max: 1000,
            ..
        })
    ));
}

#[test]
fn nothing_is_sent_that_its_command_s_cap_would_refuse() {
    let unknown = |n: usize| Message::Unknown {
        command: 0x99,
        payload: Bytes::from(vec![0; n]),
    };
    let codec = Codec::new();
    let mut out = BytesMut::from(&b"queued"[..]);
    assert_eq!(
        codec.encode(&unknown(MAX_UNKNOWN_PAYLOAD + 1), &mut out),
        Err(FrameError::CommandTooLarge {
            command: "unknown 0x99".into(),
            what: "payload",
            len: MAX_UNKNOWN_PAYLOAD as u64 + 1,
            max: MAX_UNKNOWN_PAYLOAD as u64,
        })
    );
    assert_eq!(&out[..], b"queued", "nothing written on refusal");
    codec
        .encode(&unknown(MAX_UNKNOWN_PAYLOAD), &mut out)
        .unwrap();
    // A block over the cap is refused even when it would compress below it.
    let mut t = tx();
    t.script = Bytes::from(vec![0x11; 5000]);
    let block = Message::Block(Block {
        header: header(),
        transactions: vec![t],
    });
    let mut limits = PayloadLimits::N3;
    limits.block = block.payload_size() - 1;
    let mut codec = Codec::new();
    codec.set_limits(limits);
    codec.set_compression(true);
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode(&block, &mut out),
        Err(FrameError::CommandTooLarge { ref command, .. }) if command == "block"
    ));
    assert!(out.is_empty());
    limits.block += 1;
    codec.set_limits(limits);
    codec.encode(&block, &mut out).unwrap();
    assert_eq!(out[0], 1, "sent compressed");
    assert_eq!(codec.decode(&mut out), Ok(Some(block)));
}

#[test]
fn every_real_message_block_and_transaction_fits_its_cap() {
    let codec = Codec::new();
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    for v in vectors() {
        let name = v["name"].as_str().unwrap_or("captured").to_owned();
        let command = match v["kind"].as_str().unwrap() {
            "message" => {
                frames.push((name, hexv(&v)));
                continue;
            }
            "block" => 0x2C,
            "tx" => 0x2B,
            _ => continue,
        };
        // Blocks and transactions as the frames that would carry them.
        let mut f = BytesMut::from(&[0, command][..]);
        f.put_var_bytes(&hexv(&v));
        frames.push((name, f.to_vec()));
    }
    let path = format!(
        "{}/tests/vectors/recorded-neogo.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (i, f) in recorded.as_array().unwrap().iter().enumerate() {
        frames.push((format!("recorded {i}"), hexv(f)));
    }
    let mut largest = 0;
    for (name, bytes) in frames {
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = codec.clone().decode_frame(&mut buf);
        let frame = frame.unwrap_or_else(|e| panic!("{name}: {e}")).unwrap();
        assert!(
            frame.payload.len() <= codec.payload_cap(frame.command),
            "{name}"
        );
        largest = largest.max(frame.payload.len());
    }
    // The largest real payloads (`headers` from neo-go) take a few KiB.
    assert!(largest > 4000, "{largest}");
}
