//! Codec throughput of both wire generations, next to a hash-only baseline.
//!
//! `cargo bench --bench codec` prints, for each workload, decode and encode
//! throughput in bytes per second. The `hash_only` group hashes exactly what a
//! decoder of a `headers` message cannot avoid hashing (Legacy: the frame
//! checksum, a double SHA-256 of the payload, plus each header's 104 hashed
//! bytes; N3: each header's 109 hashed bytes), so "decode ÷ hash-only" is the
//! cost of decoding beyond the hashing it needs.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use neo_peer::protocol::{Legacy, N3, Protocol};
use neo_peer::wire::{self, Decode, UInt160, UInt256, Witness, legacy, n3};

const HEADERS: usize = 2000;

/// A realistic 5-of-7 multi-signature witness: five 64-byte signatures and
/// seven 33-byte public keys (about 580 bytes).
fn witness(seed: u32) -> Witness {
    let mut invocation = Vec::with_capacity(5 * 66);
    for i in 0..5u8 {
        invocation.extend_from_slice(&[0x0C, 0x40]);
        invocation.extend((0..64u8).map(|b| b ^ i ^ seed as u8));
    }
    let mut verification = vec![0x15];
    for k in 0..7u8 {
        verification.extend_from_slice(&[0x0C, 0x21, 0x02 + (k & 1)]);
        verification.extend((0..32u8).map(|b| b.wrapping_mul(k + 3)));
    }
    verification.extend_from_slice(&[0x17, 0x41, 0x9E, 0xD0, 0xDC, 0x3A]);
    Witness {
        invocation: invocation.into(),
        verification: verification.into(),
    }
}

fn fake_hash(i: u32, salt: u8) -> UInt256 {
    let mut raw = [salt; 32];
    raw[..4].copy_from_slice(&i.to_le_bytes());
    UInt256(wire::sha256(&raw))
}

fn n3_headers() -> Vec<n3::Header> {
    let mut prev = UInt256::ZERO;
    (0..HEADERS as u32)
        .map(|i| {
            let h = n3::Header {
                version: 0,
                prev_hash: prev,
                merkle_root: fake_hash(i, 1),
                timestamp: 1_700_000_000_000 + u64::from(i) * 15_000,
                nonce: u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                index: i,
                primary_index: (i % 7) as u8,
                next_consensus: UInt160([7; 20]),
                witness: witness(i),
            };
            prev = h.hash();
            h
        })
        .collect()
}

fn legacy_headers() -> Vec<legacy::Header> {
    let mut prev = UInt256::ZERO;
    (0..HEADERS as u32)
        .map(|i| {
            let base = legacy::BlockBase {
                version: 0,
                prev_hash: prev,
                merkle_root: fake_hash(i, 1),
                timestamp: 1_500_000_000 + i * 15,
                index: i,
                consensus_data: u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                next_consensus: UInt160([7; 20]),
                witness: witness(i),
            };
            prev = base.hash();
            legacy::Header { base }
        })
        .collect()
}

fn n3_frame(msg: &n3::Message) -> BytesMut {
    let mut out = BytesMut::new();
    n3::Codec::new().encode(msg, &mut out).unwrap();
    out
}

fn legacy_frame(msg: &legacy::Message) -> BytesMut {
    let mut out = BytesMut::new();
    legacy::Codec::new(legacy::MAINNET_MAGIC)
        .encode(msg, &mut out)
        .unwrap();
    out
}

/// Decodes every frame in `buf` with the codec of `P`; returns how many.
fn decode_all<P: Protocol>(mut buf: BytesMut) -> usize {
    let mut codec = P::codec(legacy::MAINNET_MAGIC);
    let mut n = 0;
    while let Some(m) = P::decode(&mut codec, &mut buf).unwrap() {
        black_box(&m);
        n += 1;
    }
    n
}

/// Decodes the N3 `headers` frame in `buf`.
fn n3_headers_of(buf: &mut BytesMut) -> n3::HeadersPayload {
    match n3::Codec::new().decode(buf).unwrap() {
        Some(n3::Message::Headers(p)) => p,
        other => panic!("not a headers frame: {other:?}"),
    }
}

fn headers(c: &mut Criterion) {
    // N3
    let msg = n3::Message::Headers(n3::HeadersPayload::new(&n3_headers()));
    let frame = n3_frame(&msg);
    let spans = n3_header_spans(&frame);
    assert_eq!(spans.len(), HEADERS);
    let mut g = c.benchmark_group("headers_2000/n3");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("decode+hash", |b| {
        b.iter_batched(
            || frame.clone(),
            |mut buf| {
                let p = n3_headers_of(&mut buf);
                for h in p.hashes() {
                    black_box(h);
                }
                p
            },
            BatchSize::LargeInput,
        )
    });
    // Decoding, then building every owned `Header` (what a caller that keeps
    // them all pays on top).
    g.bench_function("decode+hash+build", |b| {
        b.iter_batched(
            || frame.clone(),
            |mut buf| {
                let headers = n3_headers_of(&mut buf).to_vec();
                for h in &headers {
                    black_box(h.hash());
                }
                headers
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("decode", |b| {
        b.iter_batched(
            || frame.clone(),
            |buf| assert_eq!(decode_all::<N3>(buf), 1),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("encode", |b| {
        let codec = n3::Codec::new();
        let mut out = BytesMut::with_capacity(frame.len());
        b.iter(|| {
            out.clear();
            codec.encode(&msg, &mut out).unwrap();
            black_box(&out);
        })
    });
    g.finish();
    let mut g = c.benchmark_group("hash_only/n3");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("headers_2000", |b| {
        b.iter(|| {
            for &(start, end) in &spans {
                black_box(wire::sha256(&frame[start..end]));
            }
        })
    });
    g.finish();

    // Legacy
    let msg = legacy::Message::Headers(legacy::HeadersPayload {
        headers: legacy_headers(),
    });
    let frame = legacy_frame(&msg);
    let spans = legacy_header_spans(&frame);
    assert_eq!(spans.len(), HEADERS);
    let mut g = c.benchmark_group("headers_2000/legacy");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("decode+hash", |b| {
        b.iter_batched(
            || frame.clone(),
            |mut buf| {
                let Some(legacy::Message::Headers(p)) = legacy::Codec::new(legacy::MAINNET_MAGIC)
                    .decode(&mut buf)
                    .unwrap()
                else {
                    unreachable!()
                };
                for h in &p.headers {
                    black_box(h.hash());
                }
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("decode", |b| {
        b.iter_batched(
            || frame.clone(),
            |buf| assert_eq!(decode_all::<Legacy>(buf), 1),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("encode", |b| {
        let codec = legacy::Codec::new(legacy::MAINNET_MAGIC);
        let mut out = BytesMut::with_capacity(frame.len());
        b.iter(|| {
            out.clear();
            codec.encode(&msg, &mut out).unwrap();
            black_box(&out);
        })
    });
    g.finish();
    let mut g = c.benchmark_group("hash_only/legacy");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("headers_2000", |b| {
        b.iter(|| {
            black_box(wire::hash256(&frame[24..]));
            for &(start, end) in &spans {
                black_box(wire::hash256(&frame[start..end]));
            }
        })
    });
    g.finish();
}

/// Offsets of each header's 109 hashed bytes inside an N3 `headers` frame.
fn n3_header_spans(frame: &[u8]) -> Vec<(usize, usize)> {
    let mut r = wire::Reader::from_slice(frame);
    r.u8("flags").unwrap();
    r.u8("command").unwrap();
    r.var_int(u64::MAX, "len").unwrap();
    let n = r.var_int(u64::MAX, "count").unwrap();
    let mut spans = Vec::new();
    for _ in 0..n {
        let start = r.position();
        n3::Header::decode(&mut r).unwrap();
        spans.push((start, start + n3::HEADER_UNSIGNED_SIZE));
    }
    spans
}

/// Offsets of each header's 104 hashed bytes inside a Legacy `headers` frame.
fn legacy_header_spans(frame: &[u8]) -> Vec<(usize, usize)> {
    let mut r = wire::Reader::from_slice(&frame[24..]);
    let n = r.var_int(u64::MAX, "count").unwrap();
    let mut spans = Vec::new();
    for _ in 0..n {
        let start = 24 + r.position();
        legacy::Header::decode(&mut r).unwrap();
        spans.push((start, start + legacy::BLOCK_BASE_UNSIGNED_SIZE));
    }
    spans
}

fn vector_hex(file: &str, name: &str) -> Bytes {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    hex::decode(v["hex"].as_str().unwrap()).unwrap().into()
}

fn blocks(c: &mut Criterion) {
    // N3: a block of 1000 real NEP-17 transfers (distinct nonces), about 0.5 MB.
    let tx = n3::Transaction::decode_exact(vector_hex(
        "n3.json",
        "C# privnet tx 25426643 (NEP-17 transfer, 4-of-? multisig witness)",
    ))
    .unwrap();
    let transactions: Vec<n3::Transaction> = (0..1000u32)
        .map(|i| n3::Transaction {
            nonce: i,
            ..tx.clone()
        })
        .collect();
    let hashes: Vec<UInt256> = transactions.iter().map(|t| t.hash()).collect();
    let mut header = n3_headers().swap_remove(1);
    header.merkle_root = wire::merkle_root(&hashes);
    let block = n3::Message::Block(n3::Block {
        header,
        transactions,
    });
    let frame = n3_frame(&block);
    let mut g = c.benchmark_group("block/n3_1000_tx");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("decode", |b| {
        b.iter_batched(
            || frame.clone(),
            |buf| assert_eq!(decode_all::<N3>(buf), 1),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("decode+check", |b| {
        b.iter_batched(
            || frame.clone(),
            |mut buf| {
                let Some(n3::Message::Block(b)) = n3::Codec::new().decode(&mut buf).unwrap() else {
                    unreachable!()
                };
                b.check().unwrap();
                b
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("encode", |b| {
        let codec = n3::Codec::new();
        let mut out = BytesMut::new();
        b.iter(|| {
            out.clear();
            codec.encode(&block, &mut out).unwrap();
        })
    });
    g.finish();

    // Legacy: mainnet block 1050514 (126 KB, a ClaimTransaction with 1756 claims).
    let payload = vector_hex("neo2.json", "mainnet block 1050514");
    let block = legacy::Message::Block(Box::new(legacy::Block::decode_exact(payload).unwrap()));
    let frame = legacy_frame(&block);
    let mut g = c.benchmark_group("block/legacy_1050514");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("decode", |b| {
        b.iter_batched(
            || frame.clone(),
            |buf| assert_eq!(decode_all::<Legacy>(buf), 1),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("encode", |b| {
        let codec = legacy::Codec::new(legacy::MAINNET_MAGIC);
        let mut out = BytesMut::new();
        b.iter(|| {
            out.clear();
            codec.encode(&block, &mut out).unwrap();
        })
    });
    g.finish();
}

fn small_messages(c: &mut Criterion) {
    const N: u32 = 5000;
    // N3: alternating ping and one-hash inv
    let msgs: Vec<n3::Message> = (0..N)
        .map(|i| {
            if i % 2 == 0 {
                n3::Message::Ping(n3::PingPayload {
                    last_block_index: i,
                    timestamp: 1_700_000_000 + i,
                    nonce: i,
                })
            } else {
                n3::Message::Inv(n3::InvPayload {
                    kind: n3::InventoryType::Block,
                    hashes: vec![fake_hash(i, 2)],
                })
            }
        })
        .collect();
    let codec = n3::Codec::new();
    let mut stream = BytesMut::new();
    for m in &msgs {
        codec.encode(m, &mut stream).unwrap();
    }
    let mut g = c.benchmark_group("small_stream/n3_ping_inv");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("decode", |b| {
        b.iter_batched(
            || stream.clone(),
            |buf| assert_eq!(decode_all::<N3>(buf), N as usize),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("encode", |b| {
        let mut out = BytesMut::with_capacity(stream.len());
        b.iter(|| {
            out.clear();
            for m in &msgs {
                codec.encode(m, &mut out).unwrap();
            }
        })
    });
    g.finish();

    let msgs: Vec<legacy::Message> = (0..N)
        .map(|i| {
            if i % 2 == 0 {
                legacy::Message::Ping(legacy::PingPayload {
                    last_block_index: i,
                    timestamp: 1_500_000_000 + i,
                    nonce: i,
                })
            } else {
                legacy::Message::Inv(legacy::InvPayload {
                    kind: legacy::InventoryType::Block,
                    hashes: vec![fake_hash(i, 2)],
                })
            }
        })
        .collect();
    let codec = legacy::Codec::new(legacy::MAINNET_MAGIC);
    let mut stream = BytesMut::new();
    for m in &msgs {
        codec.encode(m, &mut stream).unwrap();
    }
    let mut g = c.benchmark_group("small_stream/legacy_ping_inv");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("decode", |b| {
        b.iter_batched(
            || stream.clone(),
            |buf| assert_eq!(decode_all::<Legacy>(buf), N as usize),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("encode", |b| {
        let mut out = BytesMut::with_capacity(stream.len());
        b.iter(|| {
            out.clear();
            for m in &msgs {
                codec.encode(m, &mut out).unwrap();
            }
        })
    });
    g.finish();
}

/// Checking a block's validators' signatures: N3 MainNet block 1 (five of
/// seven validators) and Legacy MainNet block 2 (five of seven), each
/// against the contract the block before names.
fn witnesses(c: &mut Criterion) {
    let n3_block = |name| n3::Block::from_slice(&vector_hex("n3.json", name)).unwrap();
    let genesis = n3_block("mainnet genesis block (index 0)");
    let one = n3_block("mainnet block 1");
    let signer = genesis.header.next_consensus;
    let mut g = c.benchmark_group("witness");
    g.bench_function("n3_mainnet_block_1", |b| {
        b.iter(|| wire::witness::check_n3(black_box(&one.header), n3::MAINNET_MAGIC, &signer))
    });
    let legacy_block = |name| legacy::Block::from_slice(&vector_hex("neo2.json", name)).unwrap();
    let one = legacy_block("mainnet block 1");
    let two = legacy_block("mainnet block 2");
    let signer = one.base.next_consensus;
    g.bench_function("legacy_mainnet_block_2", |b| {
        b.iter(|| wire::witness::check_legacy(black_box(&two.base), &signer))
    });
    g.finish();
}

criterion_group!(benches, headers, blocks, small_messages, witnesses);
criterion_main!(benches);
