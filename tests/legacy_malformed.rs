//! Malformed input never panics, is rejected with the right error, and never
//! makes the codec allocate what a peer asked for.

use bytes::{BufMut, Bytes, BytesMut};
use neo_peer::wire::legacy::{
    AddrPayload, Block, Codec, GetBlocksPayload, Header, HeadersPayload, InvPayload, InventoryType,
    MAINNET_MAGIC, Message, PRIVNET_MAGIC, TESTNET_MAGIC, Transaction, TransactionData,
    VersionPayload, checksum,
};
use neo_peer::wire::{
    Decode, DecodeError, Encode, FrameError, MAX_PAYLOAD, MAX_UNKNOWN_PAYLOAD, PayloadLimits,
    UInt256, WriteExt,
};
use serde_json::Value;

fn load(file: &str) -> Vec<Value> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Vector {
    name: String,
    kind: String,
    payload_type: String,
    bytes: Bytes,
}

fn vectors() -> Vec<Vector> {
    load("neo2.json")
        .into_iter()
        .map(|v| Vector {
            name: v["name"].as_str().unwrap().to_owned(),
            kind: v["kind"].as_str().unwrap().to_owned(),
            payload_type: v["payload_type"].as_str().unwrap_or("").to_owned(),
            bytes: Bytes::from(hex::decode(v["hex"].as_str().unwrap()).unwrap()),
        })
        .collect()
}

/// Whole frames: the message vectors and every captured frame.
fn frames() -> Vec<(String, Bytes)> {
    let mut out: Vec<(String, Bytes)> = vectors()
        .into_iter()
        .filter(|v| v.kind == "message")
        .map(|v| (v.name, v.bytes))
        .collect();
    for (i, f) in load("neo2-captured.json").iter().enumerate() {
        out.push((
            format!("captured frame {i}"),
            Bytes::from(hex::decode(f["hex"].as_str().unwrap()).unwrap()),
        ));
    }
    out
}

/// Decodes `bytes` as the vector's kind; `Ok` only if everything was valid.
fn decode_as(v: &Vector, bytes: Bytes) -> Result<(), String> {
    let r = match v.kind.as_str() {
        "block" => Block::decode_exact(bytes).map(|_| ()),
        "tx" => Transaction::decode_exact(bytes).map(|_| ()),
        "header" if v.payload_type == "blockbase_unsigned" => return Ok(()),
        "header" => Header::decode_exact(bytes).map(|_| ()),
        "payload" => Message::decode_payload(&v.payload_type, bytes).map(|_| ()),
        "message" => {
            let mut buf = BytesMut::from(&bytes[..]);
            return match Codec::any_magic().decode(&mut buf) {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
        }
        other => panic!("kind {other}"),
    };
    r.map_err(|e| e.to_string())
}

/// Cut points: all of them for small inputs, a spread for large ones
/// (always including the first and last 64 positions).
fn cut_points(len: usize) -> Vec<usize> {
    if len <= 1024 {
        (0..len).collect()
    } else {
        (0..64)
            .chain((64..len).step_by(len / 256))
            .chain(len - 64..len)
            .collect()
    }
}

#[test]
fn every_truncation_of_every_vector_is_an_error_or_incomplete() {
    for v in vectors() {
        if v.payload_type == "blockbase_unsigned" {
            continue;
        }
        for cut in cut_points(v.bytes.len()) {
            let prefix = v.bytes.slice(..cut);
            if v.kind == "message" {
                let mut buf = BytesMut::from(&prefix[..]);
                let got = Codec::any_magic().decode(&mut buf);
                assert!(matches!(got, Ok(None)), "{} cut at {cut}: {got:?}", v.name);
                assert_eq!(buf.len(), cut, "{}: consumed a partial frame", v.name);
            } else {
                // the empty inv payload's only prefixes are shorter still
                assert!(decode_as(&v, prefix).is_err(), "{} cut at {cut}", v.name);
            }
        }
    }
}

/// Byte positions to flip: every one for small inputs, about 200 spread over
/// large ones (always including the first and last 64 bytes).
fn flip_positions(len: usize) -> Vec<usize> {
    if len <= 256 {
        return (0..len).collect();
    }
    let step = len / 128;
    let mut v: Vec<usize> = (0..64).chain((64..len).step_by(step)).collect();
    v.extend(len - 64..len);
    v
}

#[test]
fn bit_flips_never_panic() {
    for v in vectors() {
        for i in flip_positions(v.bytes.len()) {
            for bit in 0..8 {
                let mut b = v.bytes.to_vec();
                b[i] ^= 1 << bit;
                let _ = decode_as(&v, Bytes::from(b));
            }
        }
    }
}

/// Flipped payload bits (as if behind a correct checksum) reach the payload decoders.
#[test]
fn payload_bit_flips_never_panic() {
    for (name, frame) in frames() {
        let raw = Codec::any_magic()
            .decode_frame(&mut BytesMut::from(&frame[..]))
            .unwrap()
            .unwrap();
        for i in flip_positions(raw.payload.len()) {
            for bit in 0..8 {
                let mut p = raw.payload.to_vec();
                p[i] ^= 1 << bit;
                if let Ok(m) = Message::decode_payload(&raw.command, Bytes::from(p)) {
                    // whatever decodes must encode again, to its stated size
                    let mut out = BytesMut::new();
                    m.encode_payload(&mut out);
                    assert_eq!(out.len(), m.payload_size(), "{name}");
                }
            }
        }
    }
}

/// A flipped bit anywhere in a frame gives a frame error, never a panic.
#[test]
fn frame_bit_flips_are_caught() {
    for (name, frame) in frames().into_iter().filter(|(_, f)| f.len() < 100) {
        let magic = u32::from_le_bytes(frame[..4].try_into().unwrap());
        let original = Codec::new(magic)
            .decode(&mut BytesMut::from(&frame[..]))
            .unwrap()
            .unwrap();
        for i in 0..frame.len() {
            for bit in 0..8 {
                let mut b = BytesMut::from(&frame[..]);
                b[i] ^= 1 << bit;
                match Codec::new(magic).decode(&mut b) {
                    Err(_) => {}
                    // a longer declared length: waiting for more bytes
                    Ok(None) => assert!((16..20).contains(&i), "{name}: flip {i}:{bit}"),
                    // the command is not covered by the checksum: another command
                    Ok(Some(m)) => assert!(
                        (4..16).contains(&i) && m.command() != original.command(),
                        "{name}: flip {i}:{bit} accepted: {m:?}"
                    ),
                }
            }
        }
    }
}

#[test]
fn every_frame_split_at_every_point_yields_the_same_message() {
    for (name, frame) in frames() {
        let whole = Codec::any_magic()
            .decode(&mut BytesMut::from(&frame[..]))
            .unwrap()
            .unwrap();
        for cut in cut_points(frame.len()) {
            let mut codec = Codec::any_magic();
            let mut buf = BytesMut::from(&frame[..cut]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None, "{name} at {cut}");
            assert_eq!(buf.len(), cut, "{name} at {cut}: consumed");
            buf.extend_from_slice(&frame[cut..]);
            assert_eq!(
                codec.decode(&mut buf).unwrap().as_ref(),
                Some(&whole),
                "{name} at {cut}"
            );
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn byte_by_byte_feeding_yields_every_captured_frame() {
    let frames = frames();
    let stream: Vec<u8> = frames.iter().flat_map(|(_, f)| f.to_vec()).collect();
    let mut codec = Codec::any_magic();
    let mut buf = BytesMut::new();
    let mut got = 0;
    for b in stream {
        buf.put_u8(b);
        while codec.decode(&mut buf).unwrap().is_some() {
            got += 1;
        }
    }
    assert_eq!(got, frames.len());
}

fn header_bytes(magic: u32, command: &[u8], len: u32, sum: [u8; 4]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u32_le(magic);
    let mut field = [0u8; 12];
    field[..command.len()].copy_from_slice(command);
    b.put_slice(&field);
    b.put_u32_le(len);
    b.put_slice(&sum);
    b
}

fn frame(magic: u32, command: &str, payload: &[u8]) -> BytesMut {
    let mut b = header_bytes(
        magic,
        command.as_bytes(),
        payload.len() as u32,
        checksum(payload),
    );
    b.put_slice(payload);
    b
}

#[test]
fn huge_declared_length_is_refused_before_buffering() {
    let mut buf = header_bytes(MAINNET_MAGIC, b"block", 0xFFFF_FFFF, [0; 4]);
    buf.put_slice(&[1, 2, 3]);
    let cap = buf.capacity();
    let err = Codec::new(MAINNET_MAGIC).decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::PayloadTooLarge {
                len: 0xFFFF_FFFF,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(buf.capacity(), cap, "nothing was reserved");
    // exactly the cap is accepted and waited for, without reserving room for it
    let mut buf = header_bytes(MAINNET_MAGIC, b"block", 0x0200_0000, [0; 4]);
    let cap = buf.capacity();
    assert_eq!(Codec::new(MAINNET_MAGIC).decode(&mut buf).unwrap(), None);
    assert_eq!(buf.capacity(), cap, "a declared length buys no memory");
    assert_eq!(buf.len(), 24, "nothing consumed");
    let mut buf = header_bytes(MAINNET_MAGIC, b"block", 0x0200_0001, [0; 4]);
    assert!(Codec::new(MAINNET_MAGIC).decode(&mut buf).is_err());
}

#[test]
fn a_lower_cap_applies_to_decoding_and_encoding() {
    let mut codec = Codec::new(MAINNET_MAGIC);
    codec.set_max_payload(4096);
    let mut buf = header_bytes(MAINNET_MAGIC, b"headers", 5000, [0; 4]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::PayloadTooLarge {
            len: 5000,
            max: 4096
        })
    ));
    let big = Message::Alert(Bytes::from(vec![0u8; 4097]));
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode(&big, &mut out),
        Err(FrameError::PayloadTooLarge { .. })
    ));
    assert!(out.is_empty(), "nothing written on refusal");
}

#[test]
fn wrong_magic_is_caught_at_four_bytes_even_mid_stream() {
    let mut codec = Codec::new(MAINNET_MAGIC);
    let mut buf = frame(MAINNET_MAGIC, "verack", &[]);
    buf.put_u32_le(TESTNET_MAGIC);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::Verack));
    assert_eq!(
        codec.decode(&mut buf).unwrap_err(),
        FrameError::WrongMagic {
            expected: MAINNET_MAGIC,
            got: TESTNET_MAGIC
        }
    );
    // three bytes are not enough to tell
    let mut buf = BytesMut::from(&[0x41, 0x6E, 0x74][..]);
    assert_eq!(Codec::new(TESTNET_MAGIC).decode(&mut buf).unwrap(), None);
}

#[test]
fn checksum_mismatch_is_rejected() {
    let mut buf = frame(PRIVNET_MAGIC, "ping", &[0; 12]);
    buf[20] ^= 1;
    assert!(matches!(
        Codec::new(PRIVNET_MAGIC).decode(&mut buf),
        Err(FrameError::ChecksumMismatch { .. })
    ));
    let mut buf = frame(PRIVNET_MAGIC, "ping", &[0; 12]);
    buf[30] ^= 1;
    assert!(matches!(
        Codec::new(PRIVNET_MAGIC).decode(&mut buf),
        Err(FrameError::ChecksumMismatch { .. })
    ));
}

#[test]
fn malformed_command_fields_are_rejected_early() {
    for cmd in [
        &b"ver\0ack"[..],
        b"",
        b"ver ack",
        b"verack\xff",
        b"\0verack",
        b"verack\0\0\0\0\0x",
    ] {
        // no payload yet: the command is judged on the header alone
        let mut buf = header_bytes(MAINNET_MAGIC, cmd, 100, [0; 4]);
        let err = Codec::new(MAINNET_MAGIC).decode(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::BadCommand(_)), "{cmd:?}: {err}");
    }
    let mut buf = header_bytes(MAINNET_MAGIC, b"abcdefghijkl", 0, checksum(&[]));
    assert_eq!(
        Codec::new(MAINNET_MAGIC).decode(&mut buf).unwrap(),
        Some(Message::Unknown {
            command: "abcdefghijkl".into(),
            payload: Bytes::new()
        })
    );
    let long = Message::Unknown {
        command: "abcdefghijklm".into(),
        payload: Bytes::new(),
    };
    assert!(matches!(
        Codec::new(MAINNET_MAGIC).encode(&long, &mut BytesMut::new()),
        Err(FrameError::BadCommand(_))
    ));
}

#[test]
fn unknown_commands_are_values_not_errors() {
    let mut buf = frame(MAINNET_MAGIC, "foo", b"xyz");
    let m = Codec::new(MAINNET_MAGIC).decode(&mut buf).unwrap().unwrap();
    assert_eq!(m.command_name(), "unknown");
    assert_eq!(m.command(), "foo");
    assert_eq!(
        m,
        Message::Unknown {
            command: "foo".into(),
            payload: Bytes::from_static(b"xyz")
        }
    );
}

fn payload_err(command: &str, payload: &[u8]) -> DecodeError {
    Message::decode_payload(command, Bytes::copy_from_slice(payload)).unwrap_err()
}

#[test]
fn empty_commands_require_empty_payloads() {
    for cmd in ["verack", "getaddr", "mempool", "filterclear"] {
        assert!(Message::decode_payload(cmd, Bytes::new()).is_ok());
        let e = payload_err(cmd, &[0, 0, 0]);
        assert!(
            matches!(e, DecodeError::TrailingBytes { count: 3, .. }),
            "{e}"
        );
    }
    // A frame declaring a payload for them is refused at its header.
    let mut buf = frame(MAINNET_MAGIC, "getaddr", &[1, 2, 3]);
    assert_eq!(
        Codec::new(MAINNET_MAGIC).decode(&mut buf),
        Err(FrameError::CommandTooLarge {
            command: "getaddr".into(),
            what: "payload",
            len: 3,
            max: 0
        })
    );
}

#[test]
fn oversized_counts_are_rejected_without_allocating() {
    // 2^32 - 1 hashes announced, 3 bytes behind
    let mut p = vec![0x02, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF];
    p.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(
        payload_err("inv", &p),
        DecodeError::TooMany { .. }
    ));
    // a count within the receive cap but beyond the bytes present
    let p = [0x02, 0xFE, 0x00, 0x00, 0x01, 0x00, 1, 2, 3];
    assert!(matches!(
        payload_err("getdata", &p),
        DecodeError::Truncated { .. }
    ));
    // 2^64 - 1 headers
    let p = [0xFF; 9];
    assert_eq!(
        payload_err("headers", &p).to_string(),
        format!("headers: {} > 2000", u64::MAX)
    );
    // transactions whose input count is absurd
    let tx = [0x80, 0x00, 0x00, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3];
    assert!(matches!(
        Transaction::from_slice(&tx),
        Err(DecodeError::TooMany {
            what: "tx.inputs",
            ..
        })
    ));
    let tx = [0x80, 0x00, 0x00, 0xFE, 0x00, 0x00, 0x01, 0x00, 1, 2, 3];
    assert!(matches!(
        Transaction::from_slice(&tx),
        Err(DecodeError::Truncated {
            what: "tx.inputs",
            ..
        })
    ));
    // a claim transaction claiming 2^32 - 1 coins
    let tx = [0x02, 0x00, 0xFE, 0xFF, 0xFF, 0xFF, 0x00, 1, 2, 3];
    assert!(matches!(
        Transaction::from_slice(&tx),
        Err(DecodeError::Truncated {
            what: "tx.claims",
            ..
        })
    ));
}

#[test]
fn headers_count_limit_is_2000() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "headers payload with mainnet header 10")
        .unwrap();
    let header = &v.bytes[1..];
    let mut p = BytesMut::new();
    p.put_var_int(2001);
    for _ in 0..2001 {
        p.put_slice(header);
    }
    assert_eq!(
        payload_err("headers", &p).to_string(),
        "headers: 2001 > 2000"
    );
    let mut p = BytesMut::new();
    p.put_var_int(2000);
    for _ in 0..2000 {
        p.put_slice(header);
    }
    let ok = HeadersPayload::decode_exact(p.freeze()).unwrap();
    assert_eq!(ok.headers.len(), 2000);
    // and the encoder refuses 2001
    let mut too_many = ok.clone();
    too_many.headers.push(too_many.headers[0].clone());
    let err = Codec::new(MAINNET_MAGIC)
        .encode(&Message::Headers(too_many), &mut BytesMut::new())
        .unwrap_err();
    assert!(matches!(err, FrameError::Payload { .. }), "{err}");
    assert_eq!(err.to_string(), "headers: headers: 2001 > 2000");
}

fn header_vector() -> Bytes {
    vectors()
        .into_iter()
        .find(|v| v.name == "C# UT synthetic header")
        .unwrap()
        .bytes
}

#[test]
fn header_trailing_byte_and_witness_marker_are_checked() {
    let h = header_vector();
    let mut bad = h.to_vec();
    *bad.last_mut().unwrap() = 1;
    assert!(matches!(
        Header::from_slice(&bad),
        Err(DecodeError::InvalidValue {
            what: "header.tx_count",
            value: 1
        })
    ));
    let mut bad = h.to_vec();
    bad[104] = 0;
    assert!(matches!(
        Header::from_slice(&bad),
        Err(DecodeError::InvalidValue {
            what: "block.witness_marker",
            value: 0
        })
    ));
    let mut bad = h.to_vec();
    bad[104] = 2;
    assert!(Header::from_slice(&bad).is_err());
    let mut extra = h.to_vec();
    extra.push(0);
    assert!(matches!(
        Header::from_slice(&extra),
        Err(DecodeError::TrailingBytes { count: 1, .. })
    ));
}

fn tx_vector(name_part: &str) -> Vec<u8> {
    vectors()
        .into_iter()
        .find(|v| v.kind == "tx" && v.name.contains(name_part))
        .unwrap()
        .bytes
        .to_vec()
}

#[test]
fn undefined_transaction_types_and_versions_are_rejected() {
    for ty in [0x24u8, 0xB0, 0x03, 0xD2, 0xFF] {
        let e = Transaction::from_slice(&[ty, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(
            e,
            DecodeError::InvalidValue {
                what: "tx.type",
                value: ty.into()
            }
        );
    }
    // ContractTransaction must be version 0; Invocation at most 1
    assert!(Transaction::from_slice(&[0x80, 1, 0, 0, 0, 0]).is_err());
    assert!(Transaction::from_slice(&[0x80, 0, 0, 0, 0, 0]).is_ok());
    assert!(
        Transaction::from_slice(&[0xD1, 2, 1, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err()
    );
    // StateTransaction versions are not checked
    assert!(Transaction::from_slice(&[0x90, 7, 0, 0, 0, 0, 0]).is_ok());
}

#[test]
fn attribute_rules() {
    // undefined usages, CertUrl (0x80) included
    for usage in [0x01u8, 0x80, 0x31, 0xA0, 0xB0, 0xEF] {
        let tx = [0x80, 0, 1, usage, 0, 0, 0, 0];
        assert_eq!(
            Transaction::from_slice(&tx).unwrap_err(),
            DecodeError::InvalidValue {
                what: "tx.attribute.usage",
                value: usage.into()
            }
        );
    }
    // DescriptionUrl: one-byte length pointing beyond the data
    let tx = [0x80, 0, 1, 0x81, 0x10, b'a', b'b', 0, 0, 0];
    assert!(matches!(
        Transaction::from_slice(&tx),
        Err(DecodeError::Truncated {
            what: "tx.attribute.data",
            ..
        })
    ));
    // DescriptionUrl with a length byte of 0xFD is 253 bytes, not a var-int
    let mut tx = vec![0x80, 0, 1, 0x81, 0xFD];
    tx.extend_from_slice(&[b'x'; 253]);
    tx.extend_from_slice(&[0, 0, 0]);
    let t = Transaction::from_slice(&tx).unwrap();
    assert_eq!(t.attributes[0].data.len(), 253);
    assert_eq!(t.to_bytes(), Bytes::from(tx));
    // ECDH02 carries 32 bytes without its prefix
    let mut tx = vec![0x80, 0, 1, 0x02];
    tx.extend_from_slice(&[7; 32]);
    tx.extend_from_slice(&[0, 0, 0]);
    let t = Transaction::from_slice(&tx).unwrap();
    assert_eq!(t.attributes[0].data.len(), 32);
    assert_eq!(t.size(), tx.len());
    // at most 16 attributes
    let mut tx = vec![0x80, 0, 17];
    for _ in 0..17 {
        tx.extend_from_slice(&[0xF0, 0]);
    }
    tx.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        Transaction::from_slice(&tx).unwrap_err().to_string(),
        "tx.attributes: 17 > 16"
    );
    // the real DescriptionUrl transaction still decodes, and a cut one does not
    let good = tx_vector("DescriptionUrl");
    assert!(Transaction::from_slice(&good).is_ok());
}

#[test]
fn invocation_script_must_not_be_empty_and_gas_not_negative() {
    let e = Transaction::from_slice(&[0xD1, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooFew {
            what: "tx.script",
            count: 0,
            min: 1
        }
    );
    let mut tx = vec![0xD1, 1, 1, 0x51];
    tx.extend_from_slice(&(-1i64).to_le_bytes());
    tx.extend_from_slice(&[0, 0, 0, 0]);
    assert!(matches!(
        Transaction::from_slice(&tx),
        Err(DecodeError::Invalid { what: "tx.gas", .. })
    ));
}

#[test]
fn claims_must_not_be_empty() {
    assert!(matches!(
        Transaction::from_slice(&[0x02, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::TooFew {
            what: "tx.claims",
            ..
        })
    ));
}

#[test]
fn output_values_must_be_positive() {
    let good = tx_vector("ContractTransaction bdf6cc3b");
    let t = Transaction::from_slice(&good).unwrap();
    // value field of output 0: after type, version, attrs(1), inputs(1+34), count(1), asset(32)
    let at = 2 + 1 + 35 + 1 + 32;
    assert_eq!(
        i64::from_le_bytes(good[at..at + 8].try_into().unwrap()),
        t.outputs[0].value.0
    );
    for v in [0i64, -1, i64::MIN] {
        let mut bad = good.clone();
        bad[at..at + 8].copy_from_slice(&v.to_le_bytes());
        assert!(
            matches!(
                Transaction::from_slice(&bad),
                Err(DecodeError::Invalid {
                    what: "output.value",
                    ..
                })
            ),
            "{v}"
        );
    }
}

#[test]
fn miner_transactions_take_no_inputs_and_pay_only_gas() {
    let miner = tx_vector("MinerTransaction a1f219dc");
    assert!(Transaction::from_slice(&miner).is_ok());
    // change the output's asset to NEO
    let mut bad = miner.clone();
    let at = 2 + 4 + 1 + 1 + 1;
    bad[at] ^= 0xFF;
    assert!(matches!(
        Transaction::from_slice(&bad),
        Err(DecodeError::Invalid {
            what: "tx.outputs",
            ..
        })
    ));
    // an input
    let mut with_input = vec![0, 0, 1, 2, 3, 4, 0, 1];
    with_input.extend_from_slice(&[9; 34]);
    with_input.extend_from_slice(&[0, 0]);
    assert!(matches!(
        Transaction::from_slice(&with_input),
        Err(DecodeError::Invalid {
            what: "tx.inputs",
            ..
        })
    ));
}

#[test]
fn the_1756_claim_transaction_is_fine() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "mainnet block 1050514")
        .unwrap();
    let b = Block::decode_exact(v.bytes.clone()).unwrap();
    let big = b
        .transactions
        .iter()
        .find(|t| matches!(&t.data, TransactionData::Claim { claims } if claims.len() == 1756))
        .unwrap();
    assert_eq!(Transaction::decode_exact(big.to_bytes()).unwrap(), *big);
}

#[test]
fn block_count_and_checks() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "mainnet genesis block (index 0)")
        .unwrap();
    let b = Block::decode_exact(v.bytes.clone()).unwrap();
    b.check().unwrap();
    // zero transactions
    let mut empty = b.header().to_bytes().to_vec();
    assert_eq!(empty.pop(), Some(0));
    empty.push(0);
    assert!(matches!(
        Block::from_slice(&empty),
        Err(DecodeError::TooFew { .. })
    ));
    // Miner not first
    let mut swapped = b.clone();
    swapped.transactions.swap(0, 1);
    assert!(matches!(swapped.check(), Err(DecodeError::Invalid { .. })));
    // two Miners
    let mut two = b.clone();
    two.transactions[1] = two.transactions[0].clone();
    assert!(two.check().is_err());
    // a duplicate
    let mut dup = b.clone();
    dup.transactions.push(dup.transactions[1].clone());
    assert_eq!(
        dup.check().unwrap_err(),
        DecodeError::Invalid {
            what: "block.transactions",
            reason: "duplicate transaction"
        }
    );
    // wrong merkle root
    let mut wrong = b.clone();
    wrong.base.merkle_root = UInt256::ZERO;
    assert!(!wrong.merkle_root_ok());
    assert!(wrong.check().is_err());
}

#[test]
fn inventory_types_and_addr_counts() {
    assert_eq!(
        payload_err("inv", &[0x99, 0]),
        DecodeError::InvalidValue {
            what: "inv.type",
            value: 0x99
        }
    );
    for t in [0x01u8, 0x02, 0x03, 0xE0] {
        assert!(Message::decode_payload("getdata", Bytes::copy_from_slice(&[t, 0])).is_ok());
    }
    // 501 hashes, as NEO•ONE sends, are accepted
    let mut p = vec![0x01, 0xFD, 0xF5, 0x01];
    p.extend_from_slice(&[0x11; 501 * 32]);
    let m = Message::decode_payload("getdata", Bytes::from(p)).unwrap();
    // ... but never sent
    let err = Codec::new(MAINNET_MAGIC)
        .encode(&m, &mut BytesMut::new())
        .unwrap_err();
    assert_eq!(err.to_string(), "getdata: inv.hashes: 501 > 500");
    let ok = Message::Inv(InvPayload {
        kind: InventoryType::Tx,
        hashes: vec![UInt256::ZERO; 500],
    });
    Codec::new(MAINNET_MAGIC)
        .encode(&ok, &mut BytesMut::new())
        .unwrap();

    // An empty addr (a node that knows no address) decodes, but is never sent.
    let empty = Message::decode_payload("addr", Bytes::from_static(&[0])).unwrap();
    assert_eq!(
        empty,
        Message::Addr(AddrPayload {
            addresses: Vec::new()
        })
    );
    let mut p = vec![201];
    p.extend_from_slice(&[0; 201 * 30]);
    assert_eq!(payload_err("addr", &p).to_string(), "addr: 201 > 200");
    for n in [0, 201] {
        let m = Message::Addr(AddrPayload {
            addresses: vec![
                neo_peer::wire::legacy::NetworkAddressWithTime::new(
                    0,
                    1,
                    "127.0.0.1:10333".parse().unwrap()
                );
                n
            ],
        });
        assert!(
            Codec::new(MAINNET_MAGIC)
                .encode(&m, &mut BytesMut::new())
                .is_err()
        );
    }
    let m = Message::GetBlocks(GetBlocksPayload {
        hash_start: vec![UInt256::ZERO; 17],
        hash_stop: UInt256::ZERO,
    });
    assert!(
        Codec::new(MAINNET_MAGIC)
            .encode(&m, &mut BytesMut::new())
            .is_err()
    );
    let mut p = vec![17];
    p.extend_from_slice(&[0; 18 * 32]);
    assert!(Message::decode_payload("getblocks", Bytes::from(p)).is_err());
}

#[test]
fn version_user_agent_and_trailing_bytes() {
    let v = VersionPayload {
        version: 0,
        services: 1,
        timestamp: 2,
        port: 10333,
        nonce: 3,
        user_agent: "x".repeat(1025),
        start_height: 4,
        relay: true,
    };
    let bytes = v.to_bytes();
    assert_eq!(
        payload_err("version", &bytes).to_string(),
        "version.user_agent: 1025 > 1024"
    );
    assert!(
        Codec::new(MAINNET_MAGIC)
            .encode(&Message::Version(v.clone()), &mut BytesMut::new())
            .is_err()
    );
    let mut ok = v;
    ok.user_agent = "/neo:2.13.0/".into();
    let mut bytes = ok.to_bytes().to_vec();
    bytes.push(0);
    assert!(matches!(
        payload_err("version", &bytes),
        DecodeError::TrailingBytes { count: 1, .. }
    ));
    // any non-zero relay byte means true, as in the reference node
    bytes.pop();
    *bytes.last_mut().unwrap() = 7;
    let m = Message::decode_payload("version", Bytes::from(bytes)).unwrap();
    assert!(matches!(
        m,
        Message::Version(VersionPayload { relay: true, .. })
    ));
}

#[test]
fn filters_state_roots_and_consensus_limits() {
    // k above 50
    let mut p = vec![1, 0xAA, 51];
    p.extend_from_slice(&[0; 4]);
    assert!(matches!(
        payload_err("filterload", &p),
        DecodeError::TooMany { .. }
    ));
    // filteradd above 520
    let mut p = vec![0xFD, 0x09, 0x02];
    p.extend_from_slice(&[0; 521]);
    assert!(matches!(
        payload_err("filteradd", &p),
        DecodeError::TooMany { .. }
    ));
    // getroots count 0
    assert!(matches!(
        payload_err("getroots", &[0; 8]),
        DecodeError::TooFew { .. }
    ));
    // a state root with two witnesses
    let mut p = vec![0u8; 69];
    p.extend_from_slice(&[2, 0, 0, 0, 0]);
    assert!(matches!(
        payload_err("stateroot", &p),
        DecodeError::TooMany { .. }
    ));
    // consensus witness marker
    let mut p = vec![0u8; 46];
    p.push(0); // empty data
    p.push(2); // marker
    p.extend_from_slice(&[0, 0]);
    assert!(matches!(
        payload_err("consensus", &p),
        DecodeError::InvalidValue {
            what: "consensus.witness_marker",
            value: 2
        }
    ));
    // merkleblock flags longer than (tx_count + 7) / 8
    let h = header_vector();
    let mut p = h[..h.len() - 1].to_vec();
    p.extend_from_slice(&[1, 0, 2, 0xFF, 0xFF]);
    assert!(matches!(
        payload_err("merkleblock", &p),
        DecodeError::TooMany { .. }
    ));
}

#[test]
fn raw_payload_commands_keep_their_bytes() {
    for cmd in ["alert", "reject", "notfound"] {
        let m = Message::decode_payload(cmd, Bytes::from_static(b"\x01\x02")).unwrap();
        assert_eq!(m.command_name(), cmd);
        let mut out = BytesMut::new();
        Codec::new(MAINNET_MAGIC).encode(&m, &mut out).unwrap();
        assert_eq!(&out[24..], b"\x01\x02");
    }
}

#[test]
fn a_ping_declaring_30_mb_is_refused_at_its_header() {
    // The header alone, in a buffer with no room to spare.
    let mut buf = BytesMut::with_capacity(24);
    buf.extend_from_slice(&header_bytes(MAINNET_MAGIC, b"ping", 30_000_000, [0; 4]));
    let room = buf.capacity();
    let err = Codec::new(MAINNET_MAGIC).decode(&mut buf).unwrap_err();
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
    assert_eq!(buf.len(), 24, "nothing consumed");
    assert_eq!(buf.capacity(), room, "nothing reserved");
    // The same once 1 MiB of it has arrived: refused, nothing reserved.
    buf.put_bytes(0, 1 << 20);
    let room = buf.capacity();
    assert!(matches!(
        Codec::new(MAINNET_MAGIC).decode(&mut buf),
        Err(FrameError::CommandTooLarge {
            len: 30_000_000,
            ..
        })
    ));
    assert_eq!(buf.capacity(), room);
}

#[test]
fn every_command_waits_for_its_cap_and_refuses_one_byte_more() {
    let mut codec = Codec::new(MAINNET_MAGIC);
    for command in neo_peer::wire::legacy::COMMANDS
        .into_iter()
        .chain(["xyzzy"])
    {
        let cap = codec.payload_cap(command);
        let mut at = header_bytes(MAINNET_MAGIC, command.as_bytes(), cap as u32, [0; 4]);
        let room = at.capacity();
        match cap {
            // Complete already: only its checksum is left to fail.
            0 => assert!(matches!(
                codec.decode(&mut at),
                Err(FrameError::ChecksumMismatch { .. })
            )),
            _ => assert_eq!(codec.decode(&mut at), Ok(None), "{command}"),
        }
        assert_eq!(
            at.capacity(),
            room,
            "{command}: a declared length buys no memory"
        );
        let mut over = header_bytes(MAINNET_MAGIC, command.as_bytes(), cap as u32 + 1, [0; 4]);
        let err = codec.decode(&mut over).unwrap_err();
        if cap == MAX_PAYLOAD {
            assert!(matches!(err, FrameError::PayloadTooLarge { .. }), "{err}");
        } else {
            assert_eq!(
                err,
                FrameError::CommandTooLarge {
                    command: command.into(),
                    what: "payload",
                    len: cap as u64 + 1,
                    max: cap as u64,
                }
            );
        }
    }
    // The frame cap lowers every command's cap (before the handshake).
    codec.set_max_payload(4096);
    assert_eq!(codec.payload_cap("block"), 4096);
    assert_eq!(codec.payload_cap("ping"), 12);
}

#[test]
fn the_block_and_transaction_caps_are_the_network_s() {
    let mut codec = Codec::new(MAINNET_MAGIC);
    assert_eq!(codec.limits(), &PayloadLimits::LEGACY);
    assert_eq!(codec.payload_cap("block"), MAX_PAYLOAD);
    assert_eq!(codec.payload_cap("tx"), 102_400);
    let mut limits = PayloadLimits::LEGACY;
    limits.block = 1 << 20;
    limits.transaction = 1000;
    limits.unknown = 10;
    codec.set_limits(limits);
    for (command, cap) in [
        ("block", 1 << 20),
        ("tx", 1000),
        ("xyzzy", 10),
        ("alert", 10),
    ] {
        assert_eq!(codec.payload_cap(command), cap);
        let mut buf = header_bytes(MAINNET_MAGIC, command.as_bytes(), cap as u32 + 1, [0; 4]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::CommandTooLarge { .. })
        ));
    }
    // What is not configurable stays.
    assert_eq!(codec.payload_cap("ping"), 12);
    assert_eq!(codec.payload_cap("headers"), MAX_PAYLOAD);
}

#[test]
fn nothing_is_sent_that_its_command_s_cap_would_refuse() {
    let mut codec = Codec::new(MAINNET_MAGIC);
    let over = Message::Alert(Bytes::from(vec![0; MAX_UNKNOWN_PAYLOAD + 1]));
    let mut out = BytesMut::from(&b"queued"[..]);
    assert_eq!(
        codec.encode(&over, &mut out),
        Err(FrameError::CommandTooLarge {
            command: "alert".into(),
            what: "payload",
            len: MAX_UNKNOWN_PAYLOAD as u64 + 1,
            max: MAX_UNKNOWN_PAYLOAD as u64,
        })
    );
    assert_eq!(&out[..], b"queued", "nothing written on refusal");
    let at = Message::Alert(Bytes::from(vec![0; MAX_UNKNOWN_PAYLOAD]));
    codec.encode(&at, &mut out).unwrap();
    // A transaction over a lowered cap is not sent either.
    let tx = tx_vector("ContractTransaction");
    let msg = Message::Tx(Box::new(Transaction::from_slice(&tx).unwrap()));
    let mut limits = PayloadLimits::LEGACY;
    limits.transaction = tx.len() - 1;
    codec.set_limits(limits);
    assert!(matches!(
        codec.encode(&msg, &mut BytesMut::new()),
        Err(FrameError::CommandTooLarge { ref command, .. }) if command == "tx"
    ));
}

#[test]
fn every_real_message_block_and_transaction_fits_its_cap() {
    let codec = Codec::any_magic();
    let mut largest = (String::new(), 0);
    let mut frames = frames();
    for file in ["recorded-neoone.json"] {
        for (i, f) in load(file).iter().enumerate() {
            let hex = f["hex"].as_str().unwrap();
            frames.push((format!("{file} {i}"), hex::decode(hex).unwrap().into()));
        }
    }
    // Blocks and transactions as the frames that would carry them.
    for v in vectors() {
        let command = match v.kind.as_str() {
            "block" => "block",
            "tx" => "tx",
            _ => continue,
        };
        let mut f = header_bytes(
            MAINNET_MAGIC,
            command.as_bytes(),
            v.bytes.len() as u32,
            checksum(&v.bytes),
        );
        f.put_slice(&v.bytes);
        frames.push((v.name, f.freeze()));
    }
    for (name, bytes) in frames {
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = codec.clone().decode_frame(&mut buf);
        let frame = frame.unwrap_or_else(|e| panic!("{name}: {e}")).unwrap();
        assert!(frame.payload.len() <= codec.payload_cap(&frame.command));
        if frame.payload.len() > largest.1 {
            largest = (format!("{name} ({})", frame.command), frame.payload.len());
        }
    }
    // The largest real payload: a block with 1756 claims, far below its cap.
    assert!(largest.1 > 100_000, "{largest:?}");
}
