//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), one function per
//! target, taking the fuzzer's bytes.
//!
//! They live in the library (feature `fuzzing`) so that the fuzz targets are
//! one-liners and `tests/fuzz_corpus.rs` replays every corpus and regression
//! file through exactly the same code on stable Rust. Each function panics
//! when an invariant breaks; nothing else here may panic, whatever the input.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::peer::{Handshake, Received, StallDetector, Step, Violation};
use crate::wire::{Decode, Encode, FrameError, WriteExt, legacy, n3};

/// The body of one target.
pub type Target = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/` and
/// `fuzz/regressions/`) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("legacy_stream", legacy_stream),
    ("n3_stream", n3_stream),
    ("legacy_payload", legacy_payload),
    ("n3_payload", n3_payload),
    ("n3_lz4", n3_lz4),
    ("legacy_roundtrip", legacy_roundtrip),
    ("n3_roundtrip", n3_roundtrip),
    ("handshake", handshake),
    ("stall", stall),
];

/// How much a target may expand its input: LZ4 blocks grow up to 255 times.
pub fn expansion(target: &str) -> usize {
    if target.starts_with("n3_") { 256 } else { 64 }
}

/// Splits `data` into (chunk sizes, stream): byte 0 says how many size bytes
/// follow (0–15); each chunk is its size byte plus one.
fn split_sizes(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (vec![], &[]);
    };
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    (sizes.iter().map(|&b| usize::from(b) + 1).collect(), stream)
}

/// Everything a streaming decoder yields from a byte stream: the messages,
/// then either the error that stopped it or the bytes left undecoded.
#[derive(Debug, PartialEq)]
struct Outcome<M> {
    messages: Vec<M>,
    end: Result<usize, FrameError>,
}

/// Feeds `stream` to `decode` all at once, then chunk by chunk (sizes cycled
/// from `sizes`), and checks both yield the same.
fn stream_twice<C: Clone, M: PartialEq + std::fmt::Debug>(
    codec: &C,
    sizes: &[usize],
    stream: &[u8],
    decode: impl Fn(&mut C, &mut BytesMut) -> Result<Option<M>, FrameError>,
) {
    let run = |chunks: &mut dyn Iterator<Item = &[u8]>| {
        let mut codec = codec.clone();
        let mut buf = BytesMut::new();
        let mut messages = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match decode(&mut codec, &mut buf) {
                    Ok(Some(m)) => messages.push(m),
                    Ok(None) => break,
                    Err(e) => {
                        return Outcome {
                            messages,
                            end: Err(e),
                        };
                    }
                }
            }
        }
        Outcome {
            messages,
            end: Ok(buf.len()),
        }
    };
    let whole = run(&mut std::iter::once(stream));
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    let mut pieces = std::iter::from_fn(|| {
        if rest.is_empty() {
            return None;
        }
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        Some(piece)
    });
    let split = run(&mut pieces);
    assert_eq!(whole, split, "split points changed what was decoded");
}

/// Legacy streaming decoder: byte 0 picks the codec (low 2 bits: any magic,
/// MainNet, TestNet, private net; bit 2: the handshake's 4 KiB cap), the
/// rest is the split sizes (byte count, then one byte per size) and the stream.
pub fn legacy_stream(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let mut codec = match config & 3 {
        0 => legacy::Codec::any_magic(),
        1 => legacy::Codec::new(legacy::MAINNET_MAGIC),
        2 => legacy::Codec::new(legacy::TESTNET_MAGIC),
        _ => legacy::Codec::new(legacy::PRIVNET_MAGIC),
    };
    if config & 4 != 0 {
        codec.set_max_payload(crate::peer::HANDSHAKE_MAX_PAYLOAD);
    }
    let (sizes, stream) = split_sizes(rest);
    stream_twice(&codec, &sizes, stream, |c, b| c.decode(b));
}

/// N3 streaming decoder: byte 0 bit 2 sets the handshake's 4 KiB cap; the
/// rest is the split sizes (byte count, then one byte per size) and the stream.
pub fn n3_stream(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let mut codec = n3::Codec::new();
    if config & 4 != 0 {
        codec.set_max_payload(crate::peer::HANDSHAKE_MAX_PAYLOAD);
    }
    let (sizes, stream) = split_sizes(rest);
    stream_twice(&codec, &sizes, stream, |c, b| c.decode(b));
}

/// What is checked of any decoded value: its size agrees with its encoding.
fn sized<T: Encode>(value: &T) -> Bytes {
    let bytes = value.to_bytes();
    assert_eq!(value.size(), bytes.len(), "size() disagrees with encode()");
    bytes
}

/// Decodes `bytes` as `T`; if it decodes, its encoding decodes to the same
/// value and re-encodes byte for byte.
fn value_round_trip<T: Decode + Encode + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<T> {
    let value = T::from_slice(bytes).ok()?;
    let encoded = sized(&value);
    let again = T::decode_exact(encoded.clone()).expect("our own encoding decodes");
    assert_eq!(value, again, "decode(encode(x)) != x");
    assert_eq!(encoded, again.to_bytes(), "re-encoding is not byte-exact");
    Some(value)
}

/// Every Legacy payload decoder: byte 0 picks a command (the message decoder)
/// or a block, header, transaction or a piece of one; the rest is the input.
pub fn legacy_payload(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    let commands = legacy::COMMANDS.len();
    let which = usize::from(which);
    if which < commands {
        let payload = Bytes::copy_from_slice(input);
        if let Ok(msg) = legacy::Message::decode_payload(legacy::COMMANDS[which], payload) {
            let mut out = BytesMut::new();
            msg.encode_payload(&mut out);
            assert_eq!(msg.payload_size(), out.len());
            let _ = msg.check_limits();
        }
        return;
    }
    match which - commands {
        0 => {
            if let Some(b) = value_round_trip::<legacy::Block>(input) {
                let _ = b.check();
                let _ = b.hash();
                assert_eq!(b.header().hash(), b.hash());
            }
        }
        1 => {
            if let Some(h) = value_round_trip::<legacy::Header>(input) {
                let _ = h.hash();
            }
        }
        2 => {
            if let Some(tx) = value_round_trip::<legacy::Transaction>(input) {
                let _ = tx.check_limits();
                let _ = tx.hash();
            }
        }
        3 => drop(value_round_trip::<legacy::BlockBase>(input)),
        4 => drop(value_round_trip::<legacy::TransactionAttribute>(input)),
        5 => drop(value_round_trip::<legacy::TransactionOutput>(input)),
        6 => drop(value_round_trip::<legacy::EcPoint>(input)),
        7 => drop(value_round_trip::<legacy::NetworkAddressWithTime>(input)),
        8 => drop(value_round_trip::<legacy::StateRoot>(input)),
        9 => {
            let mut r = crate::wire::Reader::from_slice(input);
            let _ = crate::wire::Witness::decode_limited(&mut r, legacy::MAX_WITNESS_SCRIPT);
        }
        _ => {}
    }
}

/// Every N3 payload decoder: byte 0 picks a command byte (the message
/// decoder; any byte not a command is one too: unknown commands) or, from
/// 0xF0, a block, header, transaction or a piece of one.
pub fn n3_payload(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    if which < 0xF0 {
        let payload = Bytes::copy_from_slice(input);
        if let Ok(msg) = n3::Message::decode_payload(which, payload) {
            let mut out = BytesMut::new();
            msg.encode_payload(&mut out);
            assert_eq!(msg.payload_size(), out.len());
            let _ = msg.validate();
        }
        return;
    }
    match which - 0xF0 {
        0 => {
            if let Some(b) = value_round_trip::<n3::Block>(input) {
                let _ = b.check();
                let _ = b.validate();
            }
        }
        1 => {
            n3::check_header_forms(input);
            if let Some(h) = value_round_trip::<n3::Header>(input) {
                let _ = h.validate();
                let _ = h.hash();
            }
        }
        2 => {
            if let Some(tx) = value_round_trip::<n3::Transaction>(input) {
                let _ = tx.validate();
                let _ = tx.hash();
            }
        }
        3 => {
            if let Some(s) = value_round_trip::<n3::Signer>(input) {
                let _ = s.validate();
            }
        }
        4 => {
            if let Some(c) = value_round_trip::<n3::WitnessCondition>(input) {
                let _ = c.validate_nested(n3::MAX_CONDITION_NESTING);
            }
        }
        5 => drop(value_round_trip::<n3::WitnessRule>(input)),
        6 => {
            if let Some(c) = value_round_trip::<n3::NodeCapability>(input) {
                let _ = c.validate();
            }
        }
        7 => drop(value_round_trip::<n3::TransactionAttribute>(input)),
        8 => drop(value_round_trip::<n3::EcPoint>(input)),
        9 => {
            if let Some(e) = value_round_trip::<n3::ExtensiblePayload>(input) {
                let _ = e.dbft();
                let _ = e.hash();
            }
        }
        10 => {
            let mut r = crate::wire::Reader::from_slice(input);
            let _ = crate::wire::Witness::decode_limited(&mut r, n3::MAX_INVOCATION_SCRIPT as u64);
        }
        _ => {}
    }
}

/// The N3 LZ4 path. Byte 0 is a command byte; the rest is used twice: as the
/// body of a compressed frame (any outcome but a panic or a payload over the
/// cap is fine), and as a payload we compress ourselves, which must come
/// back out of the decoder unchanged.
pub fn n3_lz4(data: &[u8]) {
    let Some((&command, body)) = data.split_first() else {
        return;
    };
    let mut codec = n3::Codec::new();
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[n3::FLAG_COMPRESSED, command]);
    frame.put_var_bytes(body);
    if let Ok(Some(raw)) = codec.decode_frame(&mut frame) {
        assert!(raw.payload.len() <= codec.max_payload());
        assert!(raw.compressed());
        let _ = raw.decode_message();
    }

    let mut frame = BytesMut::new();
    let mut compressed = (body.len() as u32).to_le_bytes().to_vec();
    compressed.extend_from_slice(&lz4_flex::block::compress(body));
    frame.extend_from_slice(&[n3::FLAG_COMPRESSED, command]);
    frame.put_var_bytes(&compressed);
    let raw = codec
        .decode_frame(&mut frame)
        .expect("a well-formed LZ4 frame decodes")
        .expect("the frame is complete");
    assert_eq!(&raw.payload[..], body, "LZ4 round trip changed the payload");
    assert!(frame.is_empty());
}

/// Legacy round trip: byte 0 picks the kind (a whole frame, or a block,
/// header or transaction payload); what decodes must encode, decode to the
/// same and re-encode byte for byte.
pub fn legacy_roundtrip(data: &[u8]) {
    let Some((&kind, input)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            let mut codec = legacy::Codec::any_magic();
            let mut buf = BytesMut::from(input);
            let Ok(Some(frame)) = codec.decode_frame(&mut buf) else {
                return;
            };
            let Ok(msg) = frame.message() else {
                return;
            };
            let codec = legacy::Codec::new(frame.magic);
            let mut first = BytesMut::new();
            if codec.encode(&msg, &mut first).is_err() {
                // The decoder is more lenient than the encoder (e.g. a
                // count over what may be sent): nothing to compare.
                return;
            }
            let mut reader = legacy::Codec::new(frame.magic);
            let mut again = first.clone();
            let decoded = reader
                .decode(&mut again)
                .expect("our own frame decodes")
                .expect("our own frame is complete");
            assert_eq!(msg, decoded, "decode(encode(x)) != x");
            let mut second = BytesMut::new();
            codec.encode(&decoded, &mut second).expect("encodes again");
            assert_eq!(first, second, "re-encoding is not byte-exact");
        }
        1 => drop(value_round_trip::<legacy::Block>(input)),
        2 => drop(value_round_trip::<legacy::Header>(input)),
        _ => drop(value_round_trip::<legacy::Transaction>(input)),
    }
}

/// N3 round trip: byte 0 picks the kind (a whole frame, compression on or
/// off, or a block, header or transaction payload).
pub fn n3_roundtrip(data: &[u8]) {
    let Some((&kind, input)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            let mut codec = n3::Codec::new();
            let mut buf = BytesMut::from(input);
            let Ok(Some(msg)) = codec.decode(&mut buf) else {
                return;
            };
            let mut codec = n3::Codec::new();
            codec.set_compression(kind & 0x10 != 0);
            let mut first = BytesMut::new();
            if codec.encode(&msg, &mut first).is_err() {
                return;
            }
            let mut again = first.clone();
            let decoded = codec
                .decode(&mut again)
                .expect("our own frame decodes")
                .expect("our own frame is complete");
            assert_eq!(msg, decoded, "decode(encode(x)) != x");
            let mut second = BytesMut::new();
            codec.encode(&decoded, &mut second).expect("encodes again");
            assert_eq!(first, second, "re-encoding is not byte-exact");
        }
        1 => drop(value_round_trip::<n3::Block>(input)),
        2 => drop(value_round_trip::<n3::Header>(input)),
        _ => drop(value_round_trip::<n3::Transaction>(input)),
    }
}

/// The handshake state machine driven by arbitrary events, against a model
/// of the rules.
pub fn handshake(data: &[u8]) {
    const US: u32 = 7;
    const NET: u32 = 56753;
    let mut hs = Handshake::new(US, NET);
    // the model
    let (mut version_sent, mut verack_sent) = (false, false);
    let (mut version_received, mut verack_received) = (false, false);
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let before = hs.clone();
        let arg = bytes.next().unwrap_or(0);
        let result = match op % 5 {
            0 => {
                hs.version_sent();
                version_sent = true;
                None
            }
            1 => {
                hs.verack_sent();
                verack_sent = true;
                None
            }
            2 => {
                // nonce: ours or not; network: ours, another or absent (Legacy)
                let nonce = if arg & 1 != 0 {
                    US
                } else {
                    u32::from(arg) + 100
                };
                let network = match (arg >> 1) % 3 {
                    0 => Some(NET),
                    1 => Some(u32::from(arg)),
                    _ => None,
                };
                let got = hs.received(Received::Version { nonce, network });
                let want = if version_received {
                    Err(Violation::DuplicateVersion)
                } else if let Some(n) = network.filter(|&n| n != NET) {
                    Err(Violation::WrongNetwork {
                        expected: NET,
                        got: n,
                    })
                } else if nonce == US {
                    Err(Violation::SelfConnection(US))
                } else {
                    version_received = true;
                    Ok(Step::SendVerack)
                };
                Some((got, want))
            }
            3 => {
                let got = hs.received(Received::Verack);
                let want = if verack_received {
                    Err(Violation::DuplicateVerack)
                } else if !version_received {
                    Err(Violation::VerackBeforeVersion)
                } else {
                    verack_received = true;
                    Ok(if version_sent && verack_sent {
                        Step::Completed
                    } else {
                        Step::Deliver
                    })
                };
                Some((got, want))
            }
            _ => {
                let complete = version_sent && version_received && verack_sent && verack_received;
                let got = hs.received(Received::Other("inv"));
                let want = if complete {
                    Ok(Step::Deliver)
                } else {
                    Err(Violation::Unexpected("inv".into()))
                };
                Some((got, want))
            }
        };
        if let Some((got, want)) = result {
            assert_eq!(got, want, "op {op}, arg {arg}");
            if got.is_err() {
                assert_eq!(hs, before, "a violation changed the state");
            }
        }
        let complete = version_sent && version_received && verack_sent && verack_received;
        assert_eq!(
            hs.is_complete(),
            complete,
            "complete without the four steps"
        );
        assert_eq!(hs.remote_verack(), verack_received);
    }
}

/// The stall detector driven by arbitrary events (byte 0: capacity; then
/// pairs of operation and argument), checking its invariants after each
/// against a model of the outstanding requests.
pub fn stall(data: &[u8]) {
    use crate::protocol::{Expected, Matcher, Reply, ReplyKey, RequestKind, Silence};
    const KINDS: [RequestKind; 3] = [RequestKind::Headers, RequestKind::Addr, RequestKind::Data];
    let Some((&cap, rest)) = data.split_first() else {
        return;
    };
    let capacity = usize::from(cap % 9);
    let timeout = Duration::from_millis(1000);
    let t0 = Instant::now();
    let mut now = t0;
    let mut d = StallDetector::new(timeout, capacity);
    let mut paused = false;
    let mut next_id = 0u64;
    // the model: (id, kind, answers still expected) of every pending request, oldest first
    let mut ids: Vec<(u64, RequestKind, u32)> = Vec::new();
    let mut bytes = rest.iter().copied();
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        let kind = KINDS[usize::from(arg % 3)];
        let len = d.len();
        match op % 10 {
            0 => {
                let answers = u32::from(arg >> 2);
                let expected = Expected {
                    kind,
                    matcher: Matcher::Any,
                    answers,
                    silence: Silence::Stall,
                    items: None,
                };
                match d.arm(expected, arg & 1 == 0, now) {
                    Ok(id) => {
                        assert!(len < capacity);
                        assert_eq!(id, next_id, "ids are handed out in order, never reused");
                        next_id += 1;
                        ids.push((id, kind, answers.max(1)));
                        assert_eq!(d.len(), len + 1);
                    }
                    Err(e) => {
                        assert_eq!(len, capacity);
                        assert_eq!(e.0, capacity);
                    }
                }
            }
            1 => {
                let kinds: &'static [RequestKind] = match kind {
                    RequestKind::Headers => &[RequestKind::Headers],
                    RequestKind::Addr => &[RequestKind::Addr],
                    _ => &[RequestKind::Data],
                };
                let reply = Reply {
                    kinds,
                    key: ReplyKey::Plain,
                };
                let had = d.pending_of(kind);
                match d.answer(&reply, now) {
                    Some(a) => {
                        assert!(had > 0);
                        assert_eq!(a.kind, kind);
                        let oldest = ids.iter().position(|p| p.1 == kind);
                        let Some(i) = oldest else {
                            panic!("an answer found a request the model does not have");
                        };
                        assert_eq!(a.id, ids[i].0, "answers go to the oldest of their kind");
                        assert!(a.latency <= now - t0);
                        ids[i].2 -= 1;
                        assert_eq!(a.complete, ids[i].2 == 0);
                        if a.complete {
                            ids.remove(i);
                            assert_eq!(d.len(), len - 1);
                        } else {
                            assert_eq!(d.len(), len);
                        }
                    }
                    None => assert_eq!(had, 0, "an answer found no request of its kind"),
                }
            }
            2 => {
                let expired = d.expired(now);
                if let Some(e) = expired {
                    assert!(!paused, "nothing expires while paused");
                    let i = ids.iter().position(|p| p.0 == e.id);
                    assert!(i.is_some(), "an unknown request expired");
                    ids.retain(|p| p.0 != e.id);
                    assert_eq!(d.len(), len - 1);
                }
            }
            3 => {
                let id = ids.get(usize::from(arg) % ids.len().max(1)).map(|p| p.0);
                let id = id.unwrap_or(u64::from(arg) + next_id);
                let known = d.remove(id);
                assert_eq!(known, ids.iter().any(|p| p.0 == id));
                if known {
                    ids.retain(|p| p.0 != id);
                    assert_eq!(d.len(), len - 1);
                } else {
                    assert_eq!(d.len(), len);
                }
            }
            4 => {
                d.pause(now);
                paused = true;
            }
            5 => {
                let before = d.next_deadline();
                let was_paused = d.is_paused();
                d.resume(now);
                paused = false;
                if !was_paused {
                    assert_eq!(d.next_deadline(), before, "resume without pause moved time");
                }
            }
            6 => {
                if arg == 0 {
                    d.clear();
                    ids.clear();
                }
            }
            _ => {
                // time passes: up to 2.5 timeouts
                now += Duration::from_millis(u64::from(arg) * 10);
            }
        }
        assert_eq!(ids.len(), d.len(), "the detector lost or kept a request");
        assert!(d.len() <= capacity, "more pending than the capacity");
        assert_eq!(d.is_paused(), paused);
        assert_eq!(
            KINDS.iter().map(|&k| d.pending_of(k)).sum::<usize>(),
            d.len(),
            "every request has one of the kinds"
        );
        if paused {
            assert_eq!(d.next_deadline(), None, "no deadline runs while paused");
        } else if d.next_deadline().is_none() {
            assert!(d.is_empty());
        }
    }
}
