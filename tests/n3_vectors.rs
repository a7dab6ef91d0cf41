//! Every N3 vector (`tests/vectors/n3.json`) and every captured frame
//! (`tests/vectors/n3-captured.json`): decode, re-encode to the same bytes,
//! and check every expected fact.

use bytes::BytesMut;
use neo_peer::wire::n3::{
    AddrPayload, Block, Codec, ExtensiblePayload, FilterAddPayload, FilterLoadPayload,
    GetBlockByIndexPayload, GetBlocksPayload, Header, HeadersPayload, InvPayload,
    MerkleBlockPayload, Message, NodeCapability, PingPayload, RawFrame, Signer, Transaction,
    TransactionAttribute, VersionPayload, WitnessCondition, WitnessRule, WitnessScope,
};
use neo_peer::wire::{
    ADDRESS_VERSION_N3, Decode, Encode, UInt160, UInt256, Witness, hash160, to_address,
    var_int_size,
};
use serde_json::{Map, Value, json};

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn h256(h: &UInt256) -> Value {
    Value::from(h.to_display_hex())
}

fn h160(h: &UInt160) -> Value {
    Value::from(h.to_display_hex())
}

fn condition(c: &WitnessCondition) -> Value {
    match c {
        WitnessCondition::Boolean(b) => json!({"type": "Boolean", "expression": b}),
        WitnessCondition::Not(inner) => json!({"type": "Not", "expression": condition(inner)}),
        WitnessCondition::And(items) | WitnessCondition::Or(items) => json!({
            "type": c.name(),
            "expressions": items.iter().map(condition).collect::<Vec<_>>(),
        }),
        WitnessCondition::ScriptHash(h) | WitnessCondition::CalledByContract(h) => {
            json!({"type": c.name(), "hash": h160(h)})
        }
        WitnessCondition::Group(p) | WitnessCondition::CalledByGroup(p) => {
            json!({"type": c.name(), "group": hex::encode(p.as_bytes())})
        }
        WitnessCondition::CalledByEntry => json!({"type": "CalledByEntry"}),
    }
}

fn rule(r: &WitnessRule) -> Value {
    json!({"action": r.action.name(), "condition": condition(&r.condition)})
}

fn signer(s: &Signer) -> Value {
    let mut m = Map::new();
    m.insert("account".into(), h160(&s.account));
    m.insert("scopes".into(), s.scopes.bits().into());
    if s.scopes.contains(WitnessScope::CUSTOM_CONTRACTS) {
        m.insert(
            "allowed_contracts".into(),
            s.allowed_contracts.iter().map(h160).collect(),
        );
    }
    if s.scopes.contains(WitnessScope::CUSTOM_GROUPS) {
        m.insert(
            "allowed_groups".into(),
            s.allowed_groups
                .iter()
                .map(|g| Value::from(hex::encode(g.as_bytes())))
                .collect(),
        );
    }
    if s.scopes.contains(WitnessScope::WITNESS_RULES) {
        m.insert("rules".into(), s.rules.iter().map(rule).collect());
    }
    Value::Object(m)
}

fn attribute(a: &TransactionAttribute) -> Value {
    match a {
        TransactionAttribute::HighPriority => json!({"type": "HighPriority"}),
        TransactionAttribute::OracleResponse { id, code, result } => json!({
            "type": "OracleResponse", "id": id, "code": *code as u8, "result": hex::encode(result)
        }),
        TransactionAttribute::NotValidBefore { height } => {
            json!({"type": "NotValidBefore", "height": height})
        }
        TransactionAttribute::Conflicts { hash } => {
            json!({"type": "Conflicts", "hash": h256(hash)})
        }
        TransactionAttribute::NotaryAssisted { nkeys } => {
            json!({"type": "NotaryAssisted", "nkeys": nkeys})
        }
    }
}

fn capability(c: &NodeCapability) -> Value {
    match c {
        NodeCapability::TcpServer { port } | NodeCapability::WsServer { port } => {
            json!({"type": c.kind(), "port": port})
        }
        NodeCapability::FullNode { start_height } => {
            json!({"type": c.kind(), "start_height": start_height})
        }
        NodeCapability::DisableCompression | NodeCapability::ArchivalNode => {
            json!({"type": c.kind()})
        }
        NodeCapability::Extension { data, .. } | NodeCapability::Unknown { data, .. } => {
            json!({"type": c.kind(), "data": hex::encode(data)})
        }
    }
}

type Facts = Map<String, Value>;

fn put(f: &mut Facts, k: &str, v: impl Into<Value>) {
    f.insert(k.to_string(), v.into());
}

fn header_facts(h: &Header, f: &mut Facts) {
    put(f, "hash", h256(&h.hash()));
    put(f, "version", h.version);
    put(f, "prev_hash", h256(&h.prev_hash));
    put(f, "merkle_root", h256(&h.merkle_root));
    put(f, "timestamp", h.timestamp);
    put(f, "nonce", h.nonce);
    put(f, "index", h.index);
    put(f, "primary_index", h.primary_index);
    put(
        f,
        "next_consensus",
        to_address(ADDRESS_VERSION_N3, &h.next_consensus),
    );
    put(f, "next_consensus_script_hash", h160(&h.next_consensus));
    put(f, "size", h.size());
}

fn tx_facts(tx: &Transaction, f: &mut Facts) {
    put(f, "hash", h256(&tx.hash()));
    put(f, "size", tx.size());
    put(f, "version", tx.version);
    put(f, "nonce", tx.nonce);
    put(f, "system_fee", tx.system_fee);
    put(f, "network_fee", tx.network_fee);
    put(f, "valid_until_block", tx.valid_until_block);
    put(
        f,
        "signers",
        tx.signers.iter().map(signer).collect::<Value>(),
    );
    put(f, "signers_count", tx.signers.len());
    put(
        f,
        "attributes",
        tx.attributes.iter().map(attribute).collect::<Value>(),
    );
    put(f, "attributes_count", tx.attributes.len());
    put(f, "script", hex::encode(&tx.script));
    put(f, "witnesses_count", tx.witnesses.len());
}

fn block_facts(b: &Block, f: &mut Facts) {
    header_facts(&b.header, f);
    put(f, "size", b.size());
    put(f, "tx_count", b.transactions.len());
    put(
        f,
        "tx_hashes",
        b.tx_hashes().iter().map(h256).collect::<Value>(),
    );
    put(f, "next_block_prev_hash", h256(&b.hash()));
    put(f, "merkle_ok", b.merkle_root_ok());
    let txs = b
        .transactions
        .iter()
        .map(|tx| {
            json!({
                "hash": h256(&tx.hash()), "size": tx.size(), "version": tx.version,
                "signers_count": tx.signers.len(), "attributes_count": tx.attributes.len(),
                "witnesses_count": tx.witnesses.len(),
            })
        })
        .collect::<Value>();
    put(f, "txs", txs);
}

/// Decodes `bytes` as `T`, checks that it re-encodes to the same bytes and
/// that `size()` is the encoded length.
fn roundtrip<T: Decode + Encode>(bytes: &[u8], name: &str) -> Result<T, String> {
    let v = T::from_slice(bytes).map_err(|e| e.to_string())?;
    let again = v.to_bytes();
    assert_eq!(
        hex::encode(&again),
        hex::encode(bytes),
        "{name}: re-encoding"
    );
    assert_eq!(v.size(), bytes.len(), "{name}: size()");
    Ok(v)
}

fn payload_facts(ty: &str, bytes: &[u8], name: &str, f: &mut Facts) -> Result<(), String> {
    match ty {
        "extensible" => {
            let p: ExtensiblePayload = roundtrip(bytes, name)?;
            put(f, "category", p.category.clone());
            put(f, "valid_block_start", p.valid_block_start);
            put(f, "valid_block_end", p.valid_block_end);
            put(f, "sender", h160(&p.sender));
            put(f, "hash", h256(&p.hash()));
            let d = p.dbft().expect("dBFT message");
            put(f, "dbft_type", d.kind);
            put(f, "dbft_block_index", d.block_index);
            put(f, "dbft_validator_index", d.validator_index);
            put(f, "dbft_view_number", d.view_number);
        }
        "version" => {
            let p: VersionPayload = roundtrip(bytes, name)?;
            put(f, "network", p.network);
            put(f, "version", p.version);
            put(f, "timestamp", p.timestamp);
            put(f, "nonce", p.nonce);
            put(f, "user_agent", p.user_agent.clone());
            put(
                f,
                "capabilities",
                p.capabilities.iter().map(capability).collect::<Value>(),
            );
        }
        "addr" => {
            let p: AddrPayload = roundtrip(bytes, name)?;
            let list = p
                .addresses
                .iter()
                .map(|a| {
                    json!({
                        "timestamp": a.timestamp, "ip": hex::encode(a.address.octets()),
                        "capabilities": a.capabilities.iter().map(capability).collect::<Value>(),
                    })
                })
                .collect::<Value>();
            put(f, "addresses", list);
        }
        "getblocks" => {
            let p: GetBlocksPayload = roundtrip(bytes, name)?;
            put(f, "hash_start", h256(&p.hash_start));
            put(f, "count", p.count);
        }
        "getblockbyindex" => {
            let p: GetBlockByIndexPayload = roundtrip(bytes, name)?;
            put(f, "index_start", p.index_start);
            put(f, "count", p.count);
        }
        "inv" => {
            let p: InvPayload = roundtrip(bytes, name)?;
            put(f, "type", p.kind as u8);
            put(f, "hashes", p.hashes.iter().map(h256).collect::<Value>());
        }
        "ping" => {
            let p: PingPayload = roundtrip(bytes, name)?;
            put(f, "last_block_index", p.last_block_index);
            put(f, "timestamp", p.timestamp);
            put(f, "nonce", p.nonce);
        }
        "filteradd" => {
            let p: FilterAddPayload = roundtrip(bytes, name)?;
            put(f, "data", hex::encode(&p.data));
        }
        "filterload" => {
            let p: FilterLoadPayload = roundtrip(bytes, name)?;
            put(f, "filter", hex::encode(&p.filter));
            put(f, "k", p.k);
            put(f, "tweak", p.tweak);
        }
        "headers" => {
            let p: HeadersPayload = roundtrip(bytes, name)?;
            put(f, "count", p.len());
            put(f, "size", p.size());
            let hashes: Vec<UInt256> = p.hashes().collect();
            let built: Vec<UInt256> = p.iter().map(|h| h.hash()).collect();
            assert_eq!(
                hashes, built,
                "{name}: hashes off the wire and of built headers"
            );
            put(f, "hashes", hashes.iter().map(h256).collect::<Value>());
        }
        "merkleblock" => {
            let p: MerkleBlockPayload = roundtrip(bytes, name)?;
            put(f, "tx_count", p.tx_count);
            put(f, "hashes", p.hashes.iter().map(h256).collect::<Value>());
            put(f, "flags", hex::encode(&p.flags));
            put(f, "header_hash", h256(&p.header.hash()));
            put(f, "size", p.size());
            // The reference's `Size` property counts tx_count as 4 bytes.
            put(
                f,
                "csharp_size_property",
                p.size() - var_int_size(p.tx_count.into()) + 4,
            );
        }
        "signer" => {
            let s: Signer = roundtrip(bytes, name)?;
            f.extend(signer(&s).as_object().unwrap().clone());
        }
        "witness" => {
            let w = Witness::decode_limited(&mut neo_peer::wire::Reader::from_slice(bytes), 1024)
                .map_err(|e| e.to_string())?;
            assert_eq!(w.to_bytes().as_ref(), bytes, "{name}");
            put(f, "invocation", hex::encode(&w.invocation));
            put(f, "verification", hex::encode(&w.verification));
            put(
                f,
                "verification_script_hash",
                h160(&hash160(&w.verification)),
            );
        }
        "witness_rule" => {
            let r: WitnessRule = roundtrip(bytes, name)?;
            f.extend(rule(&r).as_object().unwrap().clone());
        }
        "witness_condition" => {
            let c: WitnessCondition = roundtrip(bytes, name)?;
            f.extend(condition(&c).as_object().unwrap().clone());
        }
        "capability" => {
            let c: NodeCapability = roundtrip(bytes, name)?;
            f.extend(capability(&c).as_object().unwrap().clone());
        }
        other => panic!("{name}: no decoder for payload type {other}"),
    }
    Ok(())
}

/// Takes one frame off `bytes` (which must hold exactly one).
fn one_frame(bytes: &[u8]) -> Result<RawFrame, String> {
    let mut buf = BytesMut::from(bytes);
    let frame = Codec::new()
        .decode_frame(&mut buf)
        .map_err(|e| e.to_string())?
        .ok_or("incomplete frame")?;
    assert!(buf.is_empty(), "one frame, nothing after it");
    Ok(frame)
}

fn message_facts(ty: &str, bytes: &[u8], name: &str, f: &mut Facts) -> Result<(), String> {
    let frame = one_frame(bytes)?;
    let msg = frame.decode_message().map_err(|e| e.to_string())?;
    assert_eq!(msg.command_name(), ty, "{name}: payload_type");
    let header_len = 2 + var_int_size(frame.payload.len() as u64);
    put(f, "flags", frame.flags);
    put(f, "command", frame.command);
    put(f, "command_name", frame.command_name());
    put(f, "payload_hex", hex::encode(&frame.payload));
    put(f, "payload_length", frame.payload.len());
    put(f, "decompressed_length", frame.payload.len());
    put(f, "total_length", frame.wire_len);
    let wire_prefix = var_int_size((frame.wire_len - 2) as u64);
    put(f, "wire_payload_length", frame.wire_len - 2 - wire_prefix);
    // The typed payload re-encodes to the (decompressed) payload bytes.
    let mut payload = BytesMut::new();
    msg.encode_payload(&mut payload);
    assert_eq!(payload.as_ref(), frame.payload.as_ref(), "{name}: payload");
    assert_eq!(
        msg.payload_size(),
        frame.payload.len(),
        "{name}: payload size"
    );
    // The whole frame re-encodes to the same bytes when it was sent
    // uncompressed with a canonical length prefix.
    let mut out = BytesMut::new();
    Codec::new().encode(&msg, &mut out).unwrap();
    if !frame.compressed() && frame.wire_len == header_len + frame.payload.len() {
        assert_eq!(hex::encode(&out), hex::encode(bytes), "{name}: frame");
    } else {
        assert_eq!(out.len(), header_len + frame.payload.len());
    }
    // With compression on, what we send decodes to the same message.
    let mut c = Codec::new();
    c.set_compression(true);
    let mut out = BytesMut::new();
    c.encode(&msg, &mut out).unwrap();
    if name.starts_with("transaction message (C# UT") {
        // The reference node's sending policy: same decision as ours.
        assert_eq!(out[0], frame.flags, "{name}: compression decision");
    }
    assert_eq!(c.decode(&mut out).unwrap(), Some(msg.clone()), "{name}");
    assert!(out.is_empty());
    Ok(())
}

/// Decodes a vector and returns the facts it yields.
fn facts(v: &Value) -> Result<Facts, String> {
    let name = v["name"].as_str().unwrap();
    let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
    let ty = v["payload_type"].as_str().unwrap_or("");
    let mut f = Facts::new();
    match v["kind"].as_str().unwrap() {
        "block" => {
            let b: Block = roundtrip(&bytes, name)?;
            block_facts(&b, &mut f);
        }
        "header" => {
            let h: Header = roundtrip(&bytes, name)?;
            header_facts(&h, &mut f);
        }
        "tx" => {
            let tx: Transaction = roundtrip(&bytes, name)?;
            tx_facts(&tx, &mut f);
        }
        "payload" => payload_facts(ty, &bytes, name, &mut f)?,
        "message" => message_facts(ty, &bytes, name, &mut f)?,
        other => panic!("{name}: unknown kind {other}"),
    }
    Ok(f)
}

#[test]
fn every_n3_vector() {
    let vectors = load("n3.json");
    assert_eq!(vectors.len(), 70);
    let (mut good, mut bad, mut keys) = (0, 0, 0);
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let expect = v["expect"].as_object().unwrap();
        if v.get("valid") == Some(&Value::Bool(false)) {
            let err = facts(v).expect_err(name);
            let wanted = match expect["error"].as_str().unwrap() {
                e if e.contains("witness count") => "witness count",
                e if e.contains("duplicate signer") => "duplicate signer",
                e if e.contains("count must be") => "getblockbyindex.count",
                e if e.contains("nesting") => "nesting",
                e => panic!("{name}: unexpected error class {e}"),
            };
            assert!(err.contains(wanted), "{name}: {err} lacks {wanted:?}");
            bad += 1;
            continue;
        }
        let f = facts(v).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (k, want) in expect {
            let got = f
                .get(k)
                .unwrap_or_else(|| panic!("{name}: expected key {k:?} is not checked"));
            assert_eq!(got, want, "{name}: {k}");
            keys += 1;
        }
        if v["kind"] == "block" && !expect.contains_key("merkle_ok") {
            assert_eq!(f["merkle_ok"], Value::Bool(true), "{name}: merkle root");
        }
        good += 1;
    }
    assert_eq!((good, bad), (64, 6));
    assert!(keys >= 334, "{keys} facts checked");
}

#[test]
fn blocks_check_merkle_and_duplicates() {
    for v in load("n3.json") {
        if v["kind"] != "block" {
            continue;
        }
        let b = Block::from_slice(&hex::decode(v["hex"].as_str().unwrap()).unwrap()).unwrap();
        let ok = v["expect"].get("merkle_ok") != Some(&Value::Bool(false));
        assert_eq!(b.check().is_ok(), ok, "{}", v["name"]);
        if let Some(tx) = b.transactions.first() {
            let mut dup = b.clone();
            dup.transactions.push(tx.clone());
            assert!(dup.check().unwrap_err().to_string().contains("duplicate"));
        }
    }
}

#[test]
fn mainnet_genesis_matches_the_constant() {
    let v = &load("n3.json")[0];
    let b = Block::from_slice(&hex::decode(v["hex"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(b.hash(), neo_peer::wire::n3::MAINNET_GENESIS_HASH);
}

#[test]
fn non_canonical_length_prefix_is_accepted() {
    let frame = one_frame(&hex::decode("0010fd0000").unwrap()).unwrap();
    assert_eq!(frame.wire_len, 5);
    assert_eq!(frame.decode_message().unwrap(), Message::GetAddr);
}

fn note_field<'a>(note: &'a str, key: &str) -> &'a str {
    let start = note.find(key).unwrap_or_else(|| panic!("{key} in {note}")) + key.len();
    let rest = &note[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn note_num(note: &str, key: &str) -> u64 {
    note_field(note, key).parse().unwrap()
}

#[test]
fn every_captured_frame() {
    let frames = load("n3-captured.json");
    assert_eq!(frames.len(), 23);
    let genesis = "0x625b01600e23640e605f4faafafa7490eb1daece2d0db4c4572905de56c278fe";
    let mut checked_notes = 0;
    for (i, v) in frames.iter().enumerate() {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let note = v["note"].as_str().unwrap();
        let frame = one_frame(&bytes).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        let msg = frame
            .decode_message()
            .unwrap_or_else(|e| panic!("frame {i}: {e}"));
        assert_eq!(
            msg.command_name(),
            v["command"].as_str().unwrap(),
            "frame {i}"
        );
        if frame.compressed() {
            let mut p = BytesMut::new();
            msg.encode_payload(&mut p);
            assert_eq!(p.as_ref(), frame.payload.as_ref(), "frame {i}");
        } else {
            let mut out = BytesMut::new();
            Codec::new().encode(&msg, &mut out).unwrap();
            assert_eq!(hex::encode(&out), v["hex"].as_str().unwrap(), "frame {i}");
        }
        match &msg {
            Message::Version(p) => {
                assert_eq!(p.network, 56753);
                assert_eq!(u64::from(p.nonce), note_num(note, "'nonce': "));
                let ua = note_field(note, "'ua': '");
                assert_eq!(p.user_agent, ua.trim_end_matches('\''));
                if note.contains("TCPServer") {
                    assert_eq!(p.tcp_port(), Some(20343));
                    assert_eq!(p.start_height(), Some(36));
                    assert!(p.capabilities.contains(&NodeCapability::ArchivalNode));
                } else {
                    assert_eq!(
                        p.capabilities,
                        vec![NodeCapability::FullNode { start_height: 0 }]
                    );
                }
                checked_notes += 1;
            }
            Message::Ping(p) | Message::Pong(p) => {
                assert_eq!(
                    u64::from(p.last_block_index),
                    note_num(note, "LastBlockIndex=")
                );
                assert_eq!(u64::from(p.timestamp), note_num(note, "Timestamp="));
                assert_eq!(u64::from(p.nonce), note_num(note, "Nonce="));
                checked_notes += 1;
            }
            Message::GetHeaders(p) => {
                assert_eq!(u64::from(p.index_start), note_num(note, "IndexStart="));
                assert_eq!(
                    i64::from(p.count),
                    note_field(note, "Count=").parse::<i64>().unwrap()
                );
                checked_notes += 1;
            }
            Message::Headers(p) => {
                let headers = p.to_vec();
                assert!(note.starts_with(&format!("{} headers", headers.len())));
                for (j, h) in headers.iter().enumerate() {
                    assert_eq!(h.index as usize, j);
                    assert_eq!(h.hash().to_string(), note_field(note, &format!(" {j}:")));
                    assert!(h.validate().is_ok());
                }
                assert_eq!(headers[0].hash().to_string(), genesis);
                for w in headers.windows(2) {
                    assert_eq!(w[1].prev_hash, w[0].hash());
                }
                checked_notes += 1;
            }
            Message::Inv(p) | Message::GetData(p) => {
                let ty = note_field(note, "type=");
                assert_eq!(ty, format!("0x{:02x}", p.kind as u8));
                assert_eq!(p.hashes.len() as u64, note_num(note, "hashes="));
                checked_notes += 1;
            }
            Message::Extensible(p) => {
                assert_eq!(p.category, note_field(note, "category="));
                assert_eq!(
                    u64::from(p.valid_block_start),
                    note_num(note, "ValidBlockStart=")
                );
                assert_eq!(
                    u64::from(p.valid_block_end),
                    note_num(note, "ValidBlockEnd=")
                );
                assert!(p.dbft().is_some());
                checked_notes += 1;
            }
            Message::Block(b) => {
                assert_eq!(u64::from(b.header.index), note_num(note, "block index "));
                assert_eq!(b.hash().to_string(), note_field(note, "hash "));
                assert_eq!(b.transactions.len() as u64, note_num(note, ", "));
                assert!(b.check().is_ok());
                checked_notes += 1;
            }
            Message::Addr(p) => {
                assert_eq!(p.addresses.len() as u64, note_num(note, ""));
                for a in &p.addresses {
                    // neo-go advertised these peers without a TcpServer capability.
                    assert_eq!(a.ip().to_string(), "127.0.0.1");
                    assert_eq!(a.socket_addr(), None);
                }
                checked_notes += 1;
            }
            Message::Verack | Message::GetAddr => {
                assert_eq!(note, "empty payload");
                checked_notes += 1;
            }
            other => panic!("frame {i}: unexpected {other:?}"),
        }
    }
    assert_eq!(checked_notes, 23);
}

#[cfg(feature = "json")]
mod json_views {
    use super::*;
    use neo_peer::wire::n3::json;

    fn vector(name: &str) -> Vec<u8> {
        let v = load("n3.json")
            .into_iter()
            .find(|v| v["name"] == name)
            .unwrap();
        hexv(&v)
    }

    fn hexv(v: &Value) -> Vec<u8> {
        hex::decode(v["hex"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn block_and_header_views() {
        let b = Block::from_slice(&vector("mainnet block 1")).unwrap();
        let j = json::block(&b);
        assert_eq!(
            j["hash"],
            "0x5f3fbb43d1e516fe07771e2e873ebc9e2810662401acf603a775aace486220bd"
        );
        assert_eq!(
            j["previousblockhash"],
            "0x1f4d1defa46faa5e7b9b8d3f79a06bec777d7c26c4aa5f6f5899a291daa87c15"
        );
        assert_eq!(j["size"], 697);
        assert_eq!(j["version"], 0);
        assert_eq!(j["time"], 1627894840919u64);
        assert_eq!(j["nonce"], "BA8E021F1AEEA3F6");
        assert_eq!(j["index"], 1);
        assert_eq!(j["primary"], 0);
        assert_eq!(j["nextconsensus"], "NVg7LjGcUSrgxgjX3zEgqaksfMaiS8Z6e1");
        assert_eq!(j["tx"], json!([]));
        assert_eq!(j["witnesses"].as_array().unwrap().len(), 1);
        let h = json::header(&b.header);
        assert_eq!(h["hash"], j["hash"]);
        assert_eq!(h["size"], b.header.size());
        assert!(h.get("tx").is_none());

        let g = Block::from_slice(&vector("mainnet genesis block (index 0)")).unwrap();
        let j = json::block(&g);
        assert_eq!(
            j["witnesses"],
            json!([{"invocation": "", "verification": "EQ=="}])
        );
        assert_eq!(j["nonce"], format!("{:016X}", 2083236893u64));
    }

    #[test]
    fn transaction_views() {
        let b = Block::from_slice(&vector("C# privnet block 1 (2 NEP-17 transfers)")).unwrap();
        let j = json::block(&b);
        let txs = j["tx"].as_array().unwrap();
        assert_eq!(
            txs.iter().map(|t| t["hash"].clone()).collect::<Vec<_>>(),
            vec![
                json!("0x5a30127b16a628de6aa6823418d76214b97a0fc6db865024d3d2c6e939ce3433"),
                json!("0x25426643feed564cd3e57f346d6c68692f5622b3063da11c5572d99ee1a5b49a"),
            ]
        );
        let t = &txs[1];
        assert_eq!(t["size"], 492);
        assert_eq!(t["sysfee"], "11000000");
        assert_eq!(t["netfee"], "4500000");
        assert_eq!(t["nonce"], 431760600);
        assert_eq!(t["validuntilblock"], 1000);
        assert_eq!(t["version"], 0);
        assert_eq!(
            t["signers"],
            json!([{"account": "0xffc7a658923a0bb92e6abab09800f389c179eede", "scopes": "CalledByEntry"}])
        );
        let account =
            UInt160::from_display_hex("ffc7a658923a0bb92e6abab09800f389c179eede").unwrap();
        assert_eq!(t["sender"], to_address(ADDRESS_VERSION_N3, &account));
        assert_eq!(t["attributes"], json!([]));
        assert_eq!(t["witnesses"].as_array().unwrap().len(), 1);
        let script = &b.transactions[1].script;
        use base64::Engine;
        assert_eq!(
            t["script"],
            base64::engine::general_purpose::STANDARD.encode(script)
        );

        let tx = Transaction::from_slice(&vector("tx with HighPriority attribute")).unwrap();
        let j = json::transaction(&tx);
        assert_eq!(j["attributes"], json!([{"type": "HighPriority"}]));
        assert_eq!(j["signers"][0]["scopes"], "None");
        assert_eq!(j["script"], "AQI=");
    }

    #[test]
    fn signer_and_condition_views() {
        let s = Signer::from_slice(&vector("signer (CustomContracts|CustomGroups)")).unwrap();
        let j = json::signer(&s);
        assert_eq!(j["scopes"], "CustomContracts, CustomGroups");
        assert_eq!(
            j["allowedcontracts"],
            json!(["0x5b7074e873973a6ed3708862f219a6fbf4d1c411"])
        );
        assert_eq!(
            j["allowedgroups"],
            json!(["026241e7e26b38bb7154b8ad49458b97fb1c4797443dc921c5ca5774f511a2bbfc"])
        );
        let c = WitnessCondition::from_slice(&vector("witness condition And(true,false)")).unwrap();
        assert_eq!(
            json::condition(&c),
            json!({"type": "And", "expressions": [
                {"type": "Boolean", "expression": true}, {"type": "Boolean", "expression": false}]})
        );
        let r = WitnessRule::from_slice(&vector("witness rule Allow(Boolean true)")).unwrap();
        assert_eq!(
            json::rule(&r),
            json!({"action": "Allow", "condition": {"type": "Boolean", "expression": true}})
        );
    }

    #[test]
    fn message_views() {
        for v in load("n3.json")
            .iter()
            .chain(load("n3-captured.json").iter())
        {
            if v.get("kind").is_some_and(|k| k != "message") {
                continue;
            }
            let frame = one_frame(&hexv(v)).unwrap();
            let m = frame.decode_message().unwrap();
            let j = json::message(&m, frame.compressed());
            assert_eq!(j["command"], m.command_name());
            assert_eq!(j["compressed"], frame.compressed());
            assert!(j["payload"].is_object());
        }
        let ping = Message::Ping(PingPayload {
            last_block_index: 7,
            timestamp: 1,
            nonce: 42,
        });
        assert_eq!(
            json::message(&ping, false),
            json!({"command": "ping", "compressed": false,
                   "payload": {"lastblockindex": 7, "timestamp": 1, "nonce": 42}})
        );
        let ext = ExtensiblePayload::from_slice(&vector(
            "extensible payload carrying a dBFT Commit (privnet)",
        ))
        .unwrap();
        let j = json::message(&Message::Extensible(ext), false);
        assert_eq!(
            j["payload"]["hash"],
            "0x6dd075326ae0d2f22f3fd42bd2a844640c514751aa47ee7423bbd3503a2dfe6a"
        );
        assert_eq!(j["payload"]["dbft"]["type"], "Commit");
        assert_eq!(j["payload"]["dbft"]["validatorindex"], 3);
        let inv = InvPayload::from_slice(&vector("inv payload (block, 2 hashes)")).unwrap();
        let j = json::message(&Message::Inv(inv), true);
        assert_eq!(j["payload"]["type"], "Block");
        assert_eq!(j["payload"]["hashes"].as_array().unwrap().len(), 2);
    }
}
