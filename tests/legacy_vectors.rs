//! Every Legacy vector (`tests/vectors/neo2.json`) and every frame captured
//! from a NEO•ONE 2.7.4 node (`tests/vectors/neo2-captured.json`) decodes,
//! re-encodes to the same bytes and matches every stated fact.

use std::collections::{BTreeSet, HashMap};

use bytes::{Bytes, BytesMut};
use neo_peer::wire::legacy::{
    Block, BlockBase, Codec, ConsensusPayload, HeadersPayload, InvPayload, Message, PRIVNET_MAGIC,
    Transaction, TransactionData,
};
use neo_peer::wire::{
    ADDRESS_VERSION_LEGACY, Decode, Encode, UInt160, UInt256, hash256, to_address,
};
use serde_json::{Map, Value};

fn load(file: &str) -> Vec<Value> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn legacy_vectors() -> Vec<Value> {
    load("neo2.json")
        .into_iter()
        .filter(|v| v["protocol"] == "neo2")
        .collect()
}

fn unhex(s: &str) -> Bytes {
    Bytes::from(hex::decode(s).unwrap())
}

fn disp(h: &UInt256) -> String {
    h.to_display_hex()
}

fn disp160(h: &UInt160) -> String {
    h.to_display_hex()
}

fn int(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn obj(v: &Value) -> &Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
}

fn address(h: &UInt160) -> String {
    to_address(ADDRESS_VERSION_LEGACY, h)
}

/// Compares one expected fact about a transaction; panics on a key it does not know.
fn check_tx_key(name: &str, tx: &Transaction, key: &str, want: &Value) {
    let ctx = format!("{name}: {key}");
    match key {
        "hash" => assert_eq!(disp(&tx.hash()), text(want), "{ctx}"),
        "type" => assert_eq!(tx.tx_type().name(), text(want), "{ctx}"),
        "type_byte" => assert_eq!(u64::from(tx.tx_type().to_byte()), int(want), "{ctx}"),
        "version" => assert_eq!(u64::from(tx.version), int(want), "{ctx}"),
        "size" => assert_eq!(tx.size() as u64, int(want), "{ctx}"),
        "attributes_count" => assert_eq!(tx.attributes.len() as u64, int(want), "{ctx}"),
        "inputs_count" => assert_eq!(tx.inputs.len() as u64, int(want), "{ctx}"),
        "outputs_count" => assert_eq!(tx.outputs.len() as u64, int(want), "{ctx}"),
        "witnesses_count" => assert_eq!(tx.witnesses.len() as u64, int(want), "{ctx}"),
        "attributes" => {
            let want = want.as_array().unwrap();
            assert_eq!(tx.attributes.len(), want.len(), "{ctx}");
            for (a, w) in tx.attributes.iter().zip(want) {
                assert_eq!(u64::from(a.usage.to_byte()), int(&w["usage"]), "{ctx}");
                assert_eq!(hex::encode(&a.data), text(&w["data"]), "{ctx}");
                assert_eq!(obj(w).len(), 2, "{ctx}: unchecked attribute keys");
            }
        }
        "input0" | "claim0" => {
            let c = if key == "input0" {
                tx.inputs[0]
            } else {
                match &tx.data {
                    TransactionData::Claim { claims } => claims[0],
                    _ => panic!("{ctx}: not a claim"),
                }
            };
            assert_eq!(disp(&c.prev_hash), text(&want["prev_hash"]), "{ctx}");
            assert_eq!(u64::from(c.prev_index), int(&want["prev_index"]), "{ctx}");
            assert_eq!(obj(want).len(), 2, "{ctx}: unchecked keys");
        }
        "output0" => {
            let o = &tx.outputs[0];
            assert_eq!(disp(&o.asset_id), text(&want["asset"]), "{ctx}");
            assert_eq!(o.value.0 as u64, int(&want["value"]), "{ctx}");
            assert_eq!(disp160(&o.script_hash), text(&want["script_hash"]), "{ctx}");
            assert_eq!(obj(want).len(), 3, "{ctx}: unchecked keys");
        }
        "output0_address" => assert_eq!(address(&tx.outputs[0].script_hash), text(want), "{ctx}"),
        "output0_asset" => assert_eq!(disp(&tx.outputs[0].asset_id), text(want), "{ctx}"),
        "output0_value" => assert_eq!(tx.outputs[0].value.0 as u64, int(want), "{ctx}"),
        _ => check_exclusive_key(&ctx, &tx.data, key, want),
    }
}

fn check_exclusive_key(ctx: &str, data: &TransactionData, key: &str, want: &Value) {
    match (data, key) {
        (TransactionData::Miner { nonce }, "nonce") => {
            assert_eq!(u64::from(*nonce), int(want), "{ctx}")
        }
        (TransactionData::Claim { claims }, "claims_count") => {
            assert_eq!(claims.len() as u64, int(want), "{ctx}")
        }
        (TransactionData::Enrollment { public_key }, "public_key") => {
            assert_eq!(public_key.to_string(), text(want), "{ctx}")
        }
        (TransactionData::Invocation { gas, .. }, "gas") => {
            assert_eq!(gas.0 as u64, int(want), "{ctx}")
        }
        (TransactionData::Invocation { script, .. }, "script") => {
            assert_eq!(hex::encode(script), text(want), "{ctx}")
        }
        (TransactionData::Publish(p), "author") => assert_eq!(p.author, text(want), "{ctx}"),
        (TransactionData::Publish(p), "description") => {
            assert_eq!(p.description, text(want), "{ctx}")
        }
        (TransactionData::Publish(p), "params") => {
            assert_eq!(hex::encode(&p.parameter_list), text(want), "{ctx}")
        }
        (TransactionData::Publish(p), "return_type") => {
            assert_eq!(u64::from(p.return_type), int(want), "{ctx}")
        }
        (TransactionData::Register(r), "name") => assert_eq!(r.name, text(want), "{ctx}"),
        (TransactionData::Register(r), "precision") => {
            assert_eq!(u64::from(r.precision), int(want), "{ctx}")
        }
        (TransactionData::Register(r), "amount") => {
            assert_eq!(r.amount.0 as u64, int(want), "{ctx}")
        }
        (TransactionData::Register(r), "asset_type") => {
            assert_eq!(u64::from(r.asset_type.to_byte()), int(want), "{ctx}")
        }
        (TransactionData::Register(r), "owner") => {
            assert_eq!(r.owner.to_string(), text(want), "{ctx}")
        }
        (TransactionData::Register(r), "admin_address") => {
            assert_eq!(address(&r.admin), text(want), "{ctx}")
        }
        (TransactionData::State { descriptors }, "descriptors_count") => {
            assert_eq!(descriptors.len() as u64, int(want), "{ctx}")
        }
        (TransactionData::State { descriptors }, "descriptor0") => {
            let d = &descriptors[0];
            assert_eq!(u64::from(d.state_type as u8), int(&want["type"]), "{ctx}");
            assert_eq!(hex::encode(&d.key), text(&want["key"]), "{ctx}");
            assert_eq!(d.field, text(&want["field"]), "{ctx}");
            assert_eq!(hex::encode(&d.value), text(&want["value"]), "{ctx}");
            assert_eq!(obj(want).len(), 4, "{ctx}: unchecked keys");
        }
        _ => panic!("{ctx}: expectation key not checked by this test"),
    }
}

/// Facts shared by blocks and headers.
fn check_base_key(ctx: &str, b: &BlockBase, key: &str, want: &Value) -> bool {
    match key {
        "hash" => assert_eq!(disp(&b.hash()), text(want), "{ctx}"),
        "index" => assert_eq!(u64::from(b.index), int(want), "{ctx}"),
        "version" => assert_eq!(u64::from(b.version), int(want), "{ctx}"),
        "prev_hash" => assert_eq!(disp(&b.prev_hash), text(want), "{ctx}"),
        "merkle_root" => assert_eq!(disp(&b.merkle_root), text(want), "{ctx}"),
        "timestamp" => assert_eq!(u64::from(b.timestamp), int(want), "{ctx}"),
        "consensus_data" => assert_eq!(b.consensus_data, int(want), "{ctx}"),
        "next_consensus" => assert_eq!(address(&b.next_consensus), text(want), "{ctx}"),
        _ => return false,
    }
    true
}

fn check_block(name: &str, bytes: &Bytes, expect: &Map<String, Value>) {
    let b = Block::decode_exact(bytes.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(b.to_bytes(), *bytes, "{name}: re-encoding");
    assert_eq!(b.size(), bytes.len(), "{name}: size()");
    b.check().unwrap_or_else(|e| panic!("{name}: check: {e}"));
    assert!(b.merkle_root_ok(), "{name}");
    let hashes: Vec<String> = b.tx_hashes().iter().map(disp).collect();
    for (key, want) in expect {
        let ctx = format!("{name}: {key}");
        if check_base_key(&ctx, &b.base, key, want) {
            continue;
        }
        match key.as_str() {
            "size" => assert_eq!(bytes.len() as u64, int(want), "{ctx}"),
            "tx_count" => assert_eq!(b.transactions.len() as u64, int(want), "{ctx}"),
            "tx_hashes" => {
                let want: Vec<&str> = want.as_array().unwrap().iter().map(text).collect();
                assert_eq!(hashes, want, "{ctx}");
            }
            "tx_hashes_unordered" => {
                let want: BTreeSet<&str> = want.as_array().unwrap().iter().map(text).collect();
                let got: BTreeSet<&str> = hashes.iter().map(String::as_str).collect();
                assert_eq!(got, want, "{ctx}");
                assert_eq!(hashes.len(), want.len(), "{ctx}");
            }
            "txs" => {
                let want = want.as_array().unwrap();
                assert_eq!(b.transactions.len(), want.len(), "{ctx}");
                for (i, (tx, w)) in b.transactions.iter().zip(want).enumerate() {
                    for (k, v) in obj(w) {
                        check_tx_key(&format!("{name}: tx {i}"), tx, k, v);
                    }
                }
            }
            "big_claim_tx" => {
                let h = text(&want["hash"]);
                let tx = b
                    .transactions
                    .iter()
                    .find(|t| disp(&t.hash()) == h)
                    .unwrap_or_else(|| panic!("{ctx}: no tx {h}"));
                for (k, v) in obj(want) {
                    check_tx_key(&ctx, tx, k, v);
                }
            }
            _ => panic!("{ctx}: expectation key not checked by this test"),
        }
    }
}

fn check_header(name: &str, v: &Value, bytes: &Bytes, expect: &Map<String, Value>) {
    if v["payload_type"] == "blockbase_unsigned" {
        assert_eq!(bytes.len(), 104, "{name}");
        // Decode the 104 bytes as the fixed part of a BlockBase (marker and
        // empty witness appended) to check our layout and hash.
        let mut full = BytesMut::from(&bytes[..]);
        full.extend_from_slice(&[1, 0, 0]);
        let base = BlockBase::decode_exact(full.freeze()).unwrap();
        assert_eq!(&base.unsigned_bytes()[..], &bytes[..], "{name}");
        for (key, want) in expect {
            match key.as_str() {
                "hash" => assert_eq!(disp(&base.hash()), text(want), "{name}"),
                "double_sha256_wire" => assert_eq!(hex::encode(hash256(bytes)), text(want)),
                _ => panic!("{name}: {key}: expectation key not checked by this test"),
            }
        }
        return;
    }
    let h = neo_peer::wire::legacy::Header::decode_exact(bytes.clone())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(h.to_bytes(), *bytes, "{name}: re-encoding");
    assert_eq!(h.size(), bytes.len(), "{name}: size()");
    for (key, want) in expect {
        let ctx = format!("{name}: {key}");
        if !check_base_key(&ctx, &h.base, key, want) {
            panic!("{ctx}: expectation key not checked by this test");
        }
    }
}

fn check_payload(name: &str, v: &Value, bytes: &Bytes, expect: &Map<String, Value>) {
    match text(&v["payload_type"]) {
        "headers" => {
            let p = HeadersPayload::decode_exact(bytes.clone()).unwrap();
            assert_eq!(p.to_bytes(), *bytes, "{name}");
            assert_eq!(p.size(), bytes.len(), "{name}");
            for (key, want) in expect {
                let ctx = format!("{name}: {key}");
                if key == "count" {
                    assert_eq!(p.headers.len() as u64, int(want), "{ctx}");
                } else if let Some(k) = key.strip_prefix("header0_") {
                    assert!(check_base_key(&ctx, &p.headers[0].base, k, want), "{ctx}");
                } else {
                    panic!("{ctx}: expectation key not checked by this test");
                }
            }
        }
        "consensus" => {
            let p = ConsensusPayload::decode_exact(bytes.clone()).unwrap();
            assert_eq!(p.to_bytes(), *bytes, "{name}");
            assert_eq!(p.size(), bytes.len(), "{name}");
            for (key, want) in expect {
                let ctx = format!("{name}: {key}");
                match key.as_str() {
                    "hash" => assert_eq!(disp(&p.hash()), text(want), "{ctx}"),
                    "version" => assert_eq!(u64::from(p.version), int(want), "{ctx}"),
                    "prev_hash" => assert_eq!(disp(&p.prev_hash), text(want), "{ctx}"),
                    "block_index" => assert_eq!(u64::from(p.block_index), int(want), "{ctx}"),
                    "validator_index" => {
                        assert_eq!(u64::from(p.validator_index), int(want), "{ctx}")
                    }
                    "timestamp" => assert_eq!(u64::from(p.timestamp), int(want), "{ctx}"),
                    "message_type" => {
                        assert_eq!(p.message_type().map(u64::from), Some(int(want)), "{ctx}")
                    }
                    _ => panic!("{ctx}: expectation key not checked by this test"),
                }
            }
        }
        "inv" => {
            let p = InvPayload::decode_exact(bytes.clone()).unwrap();
            assert_eq!(p.to_bytes(), *bytes, "{name}");
            assert_eq!(p.size(), bytes.len(), "{name}");
            for (key, want) in expect {
                let ctx = format!("{name}: {key}");
                match key.as_str() {
                    "type" => assert_eq!(p.kind as u64, int(want), "{ctx}"),
                    "count" => assert_eq!(p.hashes.len() as u64, int(want), "{ctx}"),
                    "hash0_wire_hex" => assert_eq!(hex::encode(p.hashes[0].0), text(want)),
                    _ => panic!("{ctx}: expectation key not checked by this test"),
                }
            }
        }
        other => panic!("{name}: payload type {other} not handled by this test"),
    }
}

fn check_message(name: &str, bytes: &Bytes, expect: &Map<String, Value>) {
    let mut codec = Codec::any_magic();
    let mut buf = BytesMut::from(&bytes[..]);
    let frame = codec
        .decode_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: incomplete"));
    assert!(buf.is_empty(), "{name}: bytes left after the frame");
    let msg = frame.message().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        !matches!(msg, Message::Unknown { .. }),
        "{name}: decoded as unknown"
    );
    let mut out = BytesMut::new();
    Codec::new(frame.magic).encode(&msg, &mut out).unwrap();
    assert_eq!(out.freeze(), *bytes, "{name}: re-encoding");
    for (key, want) in expect {
        let ctx = format!("{name}: {key}");
        match key.as_str() {
            "magic" => assert_eq!(u64::from(frame.magic), int(want), "{ctx}"),
            "command" => {
                assert_eq!(frame.command, text(want), "{ctx}");
                assert_eq!(msg.command_name(), text(want), "{ctx}");
            }
            "payload_length" => assert_eq!(frame.payload.len() as u64, int(want), "{ctx}"),
            "checksum" => assert_eq!(hex::encode(&bytes[20..24]), text(want), "{ctx}"),
            "payload_hex" => assert_eq!(hex::encode(&frame.payload), text(want), "{ctx}"),
            _ => panic!("{ctx}: expectation key not checked by this test"),
        }
    }
}

fn decode_kind(v: &Value, bytes: Bytes) -> Result<(), String> {
    match text(&v["kind"]) {
        "block" => Block::decode_exact(bytes)
            .map_err(|e| e.to_string())
            .and_then(|b| b.check().map_err(|e| e.to_string())),
        "tx" => Transaction::decode_exact(bytes)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "header" => neo_peer::wire::legacy::Header::decode_exact(bytes)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "payload" => Message::decode_payload(text(&v["payload_type"]), bytes)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "message" => {
            let mut buf = BytesMut::from(&bytes[..]);
            match Codec::any_magic().decode(&mut buf) {
                Ok(Some(_)) if buf.is_empty() => Ok(()),
                Ok(_) => Err("incomplete or trailing".into()),
                Err(e) => Err(e.to_string()),
            }
        }
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn every_legacy_vector_decodes_reencodes_and_matches() {
    let vectors = legacy_vectors();
    assert!(vectors.len() >= 48, "only {} vectors", vectors.len());
    let mut positive = 0;
    for v in &vectors {
        let name = text(&v["name"]);
        let bytes = unhex(text(&v["hex"]));
        if v.get("valid") == Some(&Value::Bool(false)) {
            assert!(
                decode_kind(v, bytes).is_err(),
                "{name}: negative vector accepted"
            );
            continue;
        }
        positive += 1;
        let expect = obj(&v["expect"]);
        match text(&v["kind"]) {
            "block" => check_block(name, &bytes, expect),
            "header" => check_header(name, v, &bytes, expect),
            "payload" => check_payload(name, v, &bytes, expect),
            "message" => check_message(name, &bytes, expect),
            "tx" => {
                let tx = Transaction::decode_exact(bytes.clone())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(tx.to_bytes(), bytes, "{name}: re-encoding");
                assert_eq!(tx.size(), bytes.len(), "{name}: size()");
                for (key, want) in expect {
                    check_tx_key(name, &tx, key, want);
                }
            }
            other => panic!("{name}: unknown kind {other}"),
        }
    }
    assert_eq!(positive, 48);
}

#[test]
fn mainnet_block_2000000_has_its_18_transactions() {
    let v = legacy_vectors()
        .into_iter()
        .find(|v| v["name"] == "mainnet block 2000000")
        .unwrap();
    let b = Block::decode_exact(unhex(text(&v["hex"]))).unwrap();
    assert_eq!(b.base.index, 2_000_000);
    assert_eq!(b.transactions.len(), 18);
    let got: BTreeSet<String> = b.tx_hashes().iter().map(disp).collect();
    let want: BTreeSet<String> = v["expect"]["tx_hashes_unordered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| text(h).to_owned())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn big_claim_transaction_decodes() {
    let v = legacy_vectors()
        .into_iter()
        .find(|v| v["name"] == "mainnet block 1050514")
        .unwrap();
    let b = Block::decode_exact(unhex(text(&v["hex"]))).unwrap();
    let claims = b
        .transactions
        .iter()
        .filter_map(|t| match &t.data {
            TransactionData::Claim { claims } => Some(claims.len()),
            _ => None,
        })
        .max();
    assert_eq!(claims, Some(1756));
}

// ---------------------------------------------------------------------------
// Captured NEO•ONE frames

/// The text after `marker` in `note`, up to the next `;`.
fn field<'a>(note: &'a str, marker: &str) -> Option<&'a str> {
    let start = note.find(marker)? + marker.len();
    let rest = &note[start..];
    Some(rest.split(';').next().unwrap_or(rest).trim())
}

/// `key=value` pairs of a note (the value ends at a space, `,` or `;`).
fn kv(note: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=");
    // the last occurrence: notes may describe a field in words first
    let start = note.rfind(&pat)? + pat.len();
    Some(
        note[start..]
            .split([' ', ',', ';', ')', ']'])
            .next()
            .unwrap()
            .to_owned(),
    )
}

/// `index:hash` tokens of a note.
fn index_hashes(s: &str) -> HashMap<u32, String> {
    s.split_whitespace()
        .filter_map(|tok| {
            let (i, h) = tok.split_once(':')?;
            Some((i.parse().ok()?, h.trim_end_matches([',', ';']).to_owned()))
        })
        .collect()
}

fn check_capture_note(
    i: usize,
    msg: &Message,
    note: &str,
    chain: &mut HashMap<u32, String>,
) -> usize {
    let ctx = format!("captured frame {i}");
    let mut facts = 0;
    match msg {
        Message::Version(p) => {
            let dec = field(note, "decoded: {").unwrap();
            let get = |k: &str| {
                let pat = format!("'{k}': ");
                let s = &dec[dec.find(&pat).unwrap() + pat.len()..];
                s.split([',', '}'])
                    .next()
                    .unwrap()
                    .trim()
                    .trim_matches('\'')
                    .to_owned()
            };
            assert_eq!(get("version"), p.version.to_string(), "{ctx}");
            assert_eq!(get("services"), p.services.to_string(), "{ctx}");
            assert_eq!(get("timestamp"), p.timestamp.to_string(), "{ctx}");
            assert_eq!(get("port"), p.port.to_string(), "{ctx}");
            assert_eq!(get("nonce"), p.nonce.to_string(), "{ctx}");
            assert_eq!(get("user_agent"), p.user_agent, "{ctx}");
            assert_eq!(get("start_height"), p.start_height.to_string(), "{ctx}");
            assert_eq!(get("relay"), u8::from(p.relay).to_string(), "{ctx}");
            facts += 8;
        }
        Message::Headers(p) => {
            let before = note.split(" header(s)").next().unwrap();
            let count: usize = before.split_whitespace().last().unwrap().parse().unwrap();
            assert_eq!(p.headers.len(), count, "{ctx}");
            assert_eq!(p.len(), count, "{ctx}");
            assert!(p.hashes().eq(p.headers.iter().map(|h| h.hash())), "{ctx}");
            assert!(
                p.indices().eq(p.headers.iter().map(|h| h.base.index)),
                "{ctx}"
            );
            assert_eq!(p.last_index(), p.headers.last().map(|h| h.base.index));
            assert_eq!(p.get(0).as_ref(), p.headers.first());
            assert_eq!(p.to_vec(), p.headers);
            facts += 1;
            let list = field(note, "all (index:hash) = ")
                .or_else(|| field(note, "hashes (RPC order): "))
                .unwrap_or("");
            let by_index = index_hashes(list);
            for h in &p.headers {
                if let Some(want) = by_index.get(&h.base.index) {
                    assert_eq!(&disp(&h.hash()), want, "{ctx}: header {}", h.base.index);
                    facts += 1;
                }
                chain.insert(h.base.index, disp(&h.hash()));
            }
            if count > 0 {
                assert!(!by_index.is_empty(), "{ctx}: no hashes found in note");
            }
        }
        Message::Inv(p) | Message::GetData(p) => {
            let t = kv(note, "type").unwrap();
            assert_eq!(t[..4], format!("0x{:02x}", p.kind as u8), "{ctx}");
            let typed = &note[note.rfind("type=0x").unwrap()..];
            let after = &typed[typed.find(") ").unwrap() + 2..];
            let count: usize = after.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(p.hashes.len(), count, "{ctx}");
            facts += 2;
            if let Some(list) = field(note, "hash(es): ") {
                let listed = list.split_whitespace().take_while(|w| *w != "...");
                for (h, want) in p.hashes.iter().zip(listed) {
                    assert_eq!(disp(h), want, "{ctx}");
                    facts += 1;
                }
            }
            // block hashes announced must be those of the headers seen earlier
            if let Some(list) = field(note, "block indexes per RPC: [") {
                let indexes = list.trim_end_matches(']').split(", ");
                for (h, idx) in p.hashes.iter().zip(indexes) {
                    if let Some(known) = idx.parse().ok().and_then(|i: u32| chain.get(&i)) {
                        assert_eq!(&disp(h), known, "{ctx}: block {idx}");
                        facts += 1;
                    }
                }
            }
        }
        Message::GetHeaders(p) | Message::GetBlocks(p) => {
            let start = kv(note, "hash_start").unwrap();
            let start = start.trim_start_matches('[');
            assert_eq!(disp(&p.hash_start[0]), start, "{ctx}");
            assert_eq!(disp(&p.hash_stop), kv(note, "hash_stop").unwrap(), "{ctx}");
            facts += 2;
        }
        Message::Block(b) => {
            let idx = field(note, "block index ").unwrap();
            let mut words = idx.split_whitespace();
            assert_eq!(words.next().unwrap(), b.base.index.to_string(), "{ctx}");
            assert_eq!(words.next(), Some("hash"));
            assert_eq!(words.next().unwrap(), disp(&b.hash()), "{ctx}");
            assert_eq!(words.next(), Some("prev"));
            assert_eq!(words.next().unwrap(), disp(&b.base.prev_hash), "{ctx}");
            let txs = note.split("; ").nth(1).unwrap();
            let mut words = txs.split_whitespace();
            assert_eq!(words.next().unwrap(), b.transactions.len().to_string());
            assert_eq!(words.next(), Some("tx:"));
            for (tx, tok) in b.transactions.iter().zip(words) {
                let (ty, id) = tok.split_once(':').unwrap();
                assert_eq!(format!("{ty}Transaction"), tx.tx_type().name(), "{ctx}");
                assert_eq!(disp(&tx.hash()), id, "{ctx}");
                facts += 2;
            }
            b.check().unwrap();
            facts += 3;
        }
        Message::Tx(tx) => {
            let mut words = note.split_whitespace();
            assert_eq!(words.next().unwrap(), tx.tx_type().name(), "{ctx}");
            assert_eq!(words.next(), Some("txid"));
            assert_eq!(
                words.next().unwrap().trim_end_matches(','),
                disp(&tx.hash())
            );
            assert_eq!(words.next().unwrap(), tx.size().to_string(), "{ctx}");
            facts += 3;
        }
        Message::Consensus(p) => {
            let h = field(note, "consensus payload hash ").unwrap();
            assert_eq!(h.split(':').next().unwrap(), disp(&p.hash()), "{ctx}");
            assert_eq!(kv(note, "version").unwrap(), p.version.to_string());
            assert_eq!(kv(note, "prev_hash").unwrap(), disp(&p.prev_hash));
            assert_eq!(kv(note, "block_index").unwrap(), p.block_index.to_string());
            assert_eq!(
                kv(note, "validator_index").unwrap(),
                p.validator_index.to_string()
            );
            assert_eq!(kv(note, "timestamp").unwrap(), p.timestamp.to_string());
            let ty = &note[note.find("(0x").unwrap() + 3..][..2];
            assert_eq!(
                u8::from_str_radix(ty, 16).unwrap(),
                p.message_type().unwrap()
            );
            assert_eq!(
                kv(note, "view").unwrap(),
                p.view_number().unwrap().to_string()
            );
            facts += 8;
        }
        Message::Ping(p) => {
            assert_eq!(
                kv(note, "last_block_index").unwrap(),
                p.last_block_index.to_string()
            );
            assert_eq!(kv(note, "timestamp").unwrap(), p.timestamp.to_string());
            assert_eq!(kv(note, "nonce").unwrap(), p.nonce.to_string());
            facts += 3;
        }
        Message::Addr(p) => {
            let before = note.split(" address(es)").next().unwrap();
            let count: usize = before.split_whitespace().last().unwrap().parse().unwrap();
            assert_eq!(p.addresses.len(), count, "{ctx}");
            let a = &p.addresses[0];
            let want = format!(
                "[{}]:{}(ts={},svc={})",
                a.address, a.port, a.timestamp, a.services
            );
            assert!(note.contains(&want), "{ctx}: {want} not in note");
            assert_eq!(a.socket_addr().to_string(), "127.0.0.1:0");
            facts += 5;
        }
        Message::Verack | Message::GetAddr | Message::Mempool => {
            assert!(note.contains("empty payload"), "{ctx}");
            facts += 1;
        }
        other => panic!("{ctx}: unexpected message {}", other.command_name()),
    }
    facts
}

#[test]
fn every_captured_neoone_frame_decodes_and_reencodes() {
    let frames = load("neo2-captured.json");
    assert_eq!(frames.len(), 78);
    let mut codec = Codec::new(PRIVNET_MAGIC);
    let mut facts = 0;
    let mut chain = HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        let bytes = unhex(text(&f["hex"]));
        let mut buf = BytesMut::from(&bytes[..]);
        let msg = codec
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("frame {i}: {e}"))
            .unwrap_or_else(|| panic!("frame {i}: incomplete"));
        assert!(buf.is_empty(), "frame {i}");
        assert_eq!(msg.command(), text(&f["command"]), "frame {i}");
        let mut out = BytesMut::new();
        codec.encode(&msg, &mut out).unwrap();
        assert_eq!(out.freeze(), bytes, "frame {i}: re-encoding");
        facts += check_capture_note(i, &msg, text(&f["note"]), &mut chain);
    }
    assert!(facts > 300, "only {facts} facts checked");
}

#[test]
fn the_whole_capture_decodes_as_one_stream() {
    let frames = load("neo2-captured.json");
    let mut stream = BytesMut::new();
    for f in &frames {
        stream.extend_from_slice(&hex::decode(text(&f["hex"])).unwrap());
    }
    let mut codec = Codec::new(PRIVNET_MAGIC);
    let mut n = 0;
    while let Some(msg) = codec.decode(&mut stream).unwrap() {
        assert_eq!(msg.command(), text(&frames[n]["command"]));
        n += 1;
    }
    assert_eq!(n, frames.len());
    assert!(stream.is_empty());
}

// ---------------------------------------------------------------------------
// JSON views

#[cfg(feature = "json")]
mod json_views {
    use super::*;
    use neo_peer::wire::legacy::json;

    #[test]
    fn blocks_and_transactions_render_like_rpc() {
        for v in legacy_vectors() {
            let name = text(&v["name"]);
            let bytes = unhex(text(&v["hex"]));
            match text(&v["kind"]) {
                "block" => {
                    let b = Block::decode_exact(bytes.clone()).unwrap();
                    let j = json::block(&b);
                    assert_eq!(j["hash"], format!("0x{}", disp(&b.hash())), "{name}");
                    assert_eq!(j["size"], bytes.len(), "{name}");
                    assert_eq!(j["index"], b.base.index, "{name}");
                    assert_eq!(
                        j["nonce"],
                        format!("{:016x}", b.base.consensus_data),
                        "{name}"
                    );
                    if let Some(nc) = v["expect"].get("next_consensus") {
                        assert_eq!(&j["nextconsensus"], nc, "{name}");
                    }
                    if let Some(prev) = v["expect"].get("prev_hash") {
                        assert_eq!(j["previousblockhash"], format!("0x{}", text(prev)));
                    }
                    let txids: Vec<String> = j["tx"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| text(&t["txid"]).trim_start_matches("0x").to_owned())
                        .collect();
                    let want: Vec<String> = b.tx_hashes().iter().map(disp).collect();
                    assert_eq!(txids, want, "{name}");
                    if let Some(hashes) = v["expect"].get("tx_hashes") {
                        let hashes: Vec<&str> =
                            hashes.as_array().unwrap().iter().map(text).collect();
                        assert_eq!(txids, hashes, "{name}");
                    }
                    let h = json::header(&b.header());
                    assert_eq!(h["hash"], j["hash"], "{name}");
                    assert!(h.get("tx").is_none());
                    assert!(j["script"]["verification"].is_string());
                }
                "tx" => {
                    let tx = Transaction::decode_exact(bytes.clone()).unwrap();
                    let j = json::transaction(&tx);
                    let e = &v["expect"];
                    assert_eq!(j["txid"], format!("0x{}", text(&e["hash"])), "{name}");
                    assert_eq!(j["size"], bytes.len(), "{name}");
                    assert_eq!(j["type"], e["type"], "{name}");
                    assert_eq!(j["version"], e["version"], "{name}");
                    assert_eq!(j["vin"].as_array().unwrap().len(), tx.inputs.len());
                    assert_eq!(j["vout"].as_array().unwrap().len(), tx.outputs.len());
                    if let Some(addr) = e.get("output0_address") {
                        assert_eq!(&j["vout"][0]["address"], addr, "{name}");
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn transaction_fields_use_rpc_names_and_decimal_values() {
        let v = legacy_vectors()
            .into_iter()
            .find(|v| v["name"] == "mainnet ContractTransaction bdf6cc3b")
            .unwrap();
        let tx = Transaction::decode_exact(unhex(text(&v["hex"]))).unwrap();
        let j = json::transaction(&tx);
        assert_eq!(j["vout"][0]["value"], "706");
        assert_eq!(
            j["vout"][0]["asset"],
            "0xc56f33fc6ecfcd0c225c4ab356fee59390af8560be0e930faebe74a6daff7c9b"
        );
        assert_eq!(j["vout"][0]["n"], 0);
        assert_eq!(
            j["vin"][0]["txid"],
            "0xeec17cc828d6ede932b57e4eaf79c2591151096a7825435cd67f498f9fa98d88"
        );
        assert_eq!(j["vin"][0]["vout"], 0);
        assert_eq!(j["scripts"].as_array().unwrap().len(), 1);

        let v = legacy_vectors()
            .into_iter()
            .find(|v| v["name"].as_str().unwrap().contains("DescriptionUrl"))
            .unwrap();
        let tx = Transaction::decode_exact(unhex(text(&v["hex"]))).unwrap();
        let j = json::transaction(&tx);
        assert_eq!(j["attributes"][1]["usage"], "DescriptionUrl");
        assert_eq!(
            j["attributes"][1]["data"],
            "f9f504da6334935a2db42b18296d8870"
        );
        assert_eq!(j["gas"], "0");
        assert!(j["script"].as_str().unwrap().starts_with("08005b95"));
    }

    #[test]
    fn messages_render_with_command_and_payload() {
        let frames = load("neo2-captured.json");
        let mut codec = Codec::new(PRIVNET_MAGIC);
        for f in &frames {
            let mut buf = BytesMut::from(&hex::decode(text(&f["hex"])).unwrap()[..]);
            let frame = codec.decode_frame(&mut buf).unwrap().unwrap();
            let msg = frame.message().unwrap();
            let j = json::message(&msg);
            assert_eq!(j["command"], f["command"]);
            assert!(j["payload"].is_object());
            let jf = json::frame_message(&frame, &msg);
            assert_eq!(jf["magic"], PRIVNET_MAGIC);
            assert_eq!(jf["payload"], j["payload"]);
            match &msg {
                Message::Inv(p) => {
                    assert_eq!(j["payload"]["type"], p.kind.name());
                    assert_eq!(
                        j["payload"]["hashes"].as_array().unwrap().len(),
                        p.hashes.len()
                    );
                }
                Message::Addr(_) => {
                    assert_eq!(j["payload"]["addresses"][0]["ip"], "127.0.0.1");
                    assert_eq!(j["payload"]["addresses"][0]["port"], 0);
                }
                Message::Consensus(p) => {
                    assert_eq!(j["payload"]["hash"], p.hash().to_string());
                }
                Message::Version(p) => assert_eq!(j["payload"]["useragent"], p.user_agent),
                _ => {}
            }
        }
    }
}
