//! RPC-shaped JSON views of N3 objects (feature `json`).
//!
//! Blocks, headers and transactions look like the verbose answers of the
//! node RPC (`getblock`, `getblockheader`, `getrawtransaction`): hashes in
//! display form with `0x`, byte strings in base64, fees as decimal strings
//! of the integer datoshi amount, addresses in Base58Check (version `0x35`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{
    Block, DbftMessageHeader, ExtensiblePayload, Header, InvPayload, Message, NodeCapability,
    Signer, Transaction, TransactionAttribute, WitnessCondition, WitnessRule, WitnessScope,
};
use crate::wire::{ADDRESS_VERSION_N3, Encode, UInt160, UInt256, Witness, to_address};

fn b64(bytes: &[u8]) -> Value {
    Value::from(STANDARD.encode(bytes))
}

fn hash(h: &UInt256) -> Value {
    Value::from(h.to_string())
}

fn hash160(h: &UInt160) -> Value {
    Value::from(h.to_string())
}

fn address(h: &UInt160) -> Value {
    Value::from(to_address(ADDRESS_VERSION_N3, h))
}

/// A witness: `{"invocation", "verification"}` in base64.
pub fn witness(w: &Witness) -> Value {
    json!({"invocation": b64(&w.invocation), "verification": b64(&w.verification)})
}

fn header_fields(h: &Header, size: usize) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("hash".into(), hash(&h.hash()));
    m.insert("size".into(), size.into());
    m.insert("version".into(), h.version.into());
    m.insert("previousblockhash".into(), hash(&h.prev_hash));
    m.insert("merkleroot".into(), hash(&h.merkle_root));
    m.insert("time".into(), h.timestamp.into());
    m.insert("nonce".into(), format!("{:016X}", h.nonce).into());
    m.insert("index".into(), h.index.into());
    m.insert("primary".into(), h.primary_index.into());
    m.insert("nextconsensus".into(), address(&h.next_consensus));
    m.insert("witnesses".into(), json!([witness(&h.witness)]));
    m
}

/// A header as `getblockheader` (verbose) shows it.
pub fn header(h: &Header) -> Value {
    Value::Object(header_fields(h, h.size()))
}

/// A block as `getblock` (verbose) shows it: the header fields and `tx`.
pub fn block(b: &Block) -> Value {
    let mut m = header_fields(&b.header, b.size());
    m.insert(
        "tx".into(),
        b.transactions.iter().map(transaction).collect(),
    );
    Value::Object(m)
}

/// A witness condition (`{"type": "And", "expressions": [...]}` ...).
pub fn condition(c: &WitnessCondition) -> Value {
    match c {
        WitnessCondition::Boolean(b) => json!({"type": c.name(), "expression": b}),
        WitnessCondition::Not(inner) => json!({"type": c.name(), "expression": condition(inner)}),
        WitnessCondition::And(items) | WitnessCondition::Or(items) => json!({
            "type": c.name(),
            "expressions": items.iter().map(condition).collect::<Vec<_>>(),
        }),
        WitnessCondition::ScriptHash(h) | WitnessCondition::CalledByContract(h) => {
            json!({"type": c.name(), "hash": hash160(h)})
        }
        WitnessCondition::Group(p) | WitnessCondition::CalledByGroup(p) => {
            json!({"type": c.name(), "group": p.to_string()})
        }
        WitnessCondition::CalledByEntry => json!({"type": c.name()}),
    }
}

/// A witness rule: `{"action": "Allow", "condition": {...}}`.
pub fn rule(r: &WitnessRule) -> Value {
    json!({"action": r.action.name(), "condition": condition(&r.condition)})
}

/// A signer: `account`, `scopes` (e.g. `"CalledByEntry, CustomContracts"`)
/// and the lists its scopes carry.
pub fn signer(s: &Signer) -> Value {
    let mut m = Map::new();
    m.insert("account".into(), hash160(&s.account));
    m.insert("scopes".into(), s.scopes.to_string().into());
    if s.scopes.contains(WitnessScope::CUSTOM_CONTRACTS) {
        m.insert(
            "allowedcontracts".into(),
            s.allowed_contracts.iter().map(hash160).collect(),
        );
    }
    if s.scopes.contains(WitnessScope::CUSTOM_GROUPS) {
        m.insert(
            "allowedgroups".into(),
            s.allowed_groups
                .iter()
                .map(|g| Value::from(g.to_string()))
                .collect(),
        );
    }
    if s.scopes.contains(WitnessScope::WITNESS_RULES) {
        m.insert("rules".into(), s.rules.iter().map(rule).collect());
    }
    Value::Object(m)
}

/// A transaction attribute: `{"type": "HighPriority"}` and its fields.
pub fn attribute(a: &TransactionAttribute) -> Value {
    let ty = a.name();
    match a {
        TransactionAttribute::HighPriority => json!({"type": ty}),
        TransactionAttribute::OracleResponse { id, code, result } => {
            json!({"type": ty, "id": id, "code": code.name(), "result": b64(result)})
        }
        TransactionAttribute::NotValidBefore { height } => json!({"type": ty, "height": height}),
        TransactionAttribute::Conflicts { hash: h } => json!({"type": ty, "hash": hash(h)}),
        TransactionAttribute::NotaryAssisted { nkeys } => json!({"type": ty, "nkeys": nkeys}),
    }
}

/// A transaction as `getrawtransaction` (verbose) shows it.
pub fn transaction(tx: &Transaction) -> Value {
    json!({
        "hash": hash(&tx.hash()),
        "size": tx.size(),
        "version": tx.version,
        "nonce": tx.nonce,
        "sender": tx.sender().map_or(Value::Null, |s| address(&s)),
        "sysfee": tx.system_fee.to_string(),
        "netfee": tx.network_fee.to_string(),
        "validuntilblock": tx.valid_until_block,
        "signers": tx.signers.iter().map(signer).collect::<Vec<_>>(),
        "attributes": tx.attributes.iter().map(attribute).collect::<Vec<_>>(),
        "script": b64(&tx.script),
        "witnesses": tx.witnesses.iter().map(witness).collect::<Vec<_>>(),
    })
}

/// A node capability: `{"type": "TcpServer", "port": 10333}` ...
pub fn capability(c: &NodeCapability) -> Value {
    match c {
        NodeCapability::TcpServer { port } | NodeCapability::WsServer { port } => {
            json!({"type": c.name(), "port": port})
        }
        NodeCapability::FullNode { start_height } => {
            json!({"type": c.name(), "startheight": start_height})
        }
        NodeCapability::DisableCompression | NodeCapability::ArchivalNode => {
            json!({"type": c.name()})
        }
        NodeCapability::Extension { kind, data } | NodeCapability::Unknown { kind, data } => {
            json!({"type": c.name(), "code": kind, "data": b64(data)})
        }
    }
}

fn capabilities(caps: &[NodeCapability]) -> Value {
    caps.iter().map(capability).collect()
}

fn inv(p: &InvPayload) -> Value {
    json!({"type": p.kind.name(), "hashes": p.hashes.iter().map(hash).collect::<Vec<_>>()})
}

fn dbft(d: &DbftMessageHeader) -> Value {
    json!({
        "type": d.name(),
        "blockindex": d.block_index,
        "validatorindex": d.validator_index,
        "viewnumber": d.view_number,
    })
}

/// An extensible payload, with the dBFT message prefix when it carries one.
pub fn extensible(p: &ExtensiblePayload) -> Value {
    let mut v = json!({
        "hash": hash(&p.hash()),
        "category": p.category,
        "validblockstart": p.valid_block_start,
        "validblockend": p.valid_block_end,
        "sender": address(&p.sender),
        "data": b64(&p.data),
        "witnesses": [witness(&p.witness)],
    });
    if let (Some(d), Value::Object(m)) = (p.dbft(), &mut v) {
        m.insert("dbft".into(), dbft(&d));
    }
    v
}

fn payload(m: &Message) -> Value {
    use Message as M;
    match m {
        M::Verack | M::GetAddr | M::Mempool | M::FilterClear => json!({}),
        M::Version(p) => json!({
            "network": p.network,
            "version": p.version,
            "timestamp": p.timestamp,
            "nonce": p.nonce,
            "useragent": p.user_agent,
            "capabilities": capabilities(&p.capabilities),
        }),
        M::Addr(p) => json!({
            "addresses": p.addresses.iter().map(|a| json!({
                "timestamp": a.timestamp,
                "ip": a.ip().to_string(),
                "port": a.tcp_port(),
                "capabilities": capabilities(&a.capabilities),
            })).collect::<Vec<_>>(),
        }),
        M::Ping(p) | M::Pong(p) => json!({
            "lastblockindex": p.last_block_index,
            "timestamp": p.timestamp,
            "nonce": p.nonce,
        }),
        M::GetHeaders(p) | M::GetBlockByIndex(p) => {
            json!({"indexstart": p.index_start, "count": p.count})
        }
        M::Headers(p) => json!({"headers": p.iter().map(|h| header(&h)).collect::<Vec<_>>()}),
        M::GetBlocks(p) => json!({"hashstart": hash(&p.hash_start), "count": p.count}),
        M::Inv(p) | M::GetData(p) | M::NotFound(p) => inv(p),
        M::Transaction(tx) => transaction(tx),
        M::Block(b) => block(b),
        M::Extensible(p) => extensible(p),
        M::Reject(raw) | M::Alert(raw) => json!({"data": b64(raw)}),
        M::FilterLoad(p) => json!({"filter": b64(&p.filter), "k": p.k, "tweak": p.tweak}),
        M::FilterAdd(p) => json!({"data": b64(&p.data)}),
        M::MerkleBlock(p) => json!({
            "header": header(&p.header),
            "txcount": p.tx_count,
            "hashes": p.hashes.iter().map(hash).collect::<Vec<_>>(),
            "flags": b64(&p.flags),
        }),
        M::P2PNotaryRequest(p) => json!({
            "hash": hash(&p.hash()),
            "maintx": transaction(&p.main_tx),
            "fallbacktx": transaction(&p.fallback_tx),
            "witness": witness(&p.witness),
        }),
        M::GetMptData(p) => json!({"hashes": p.hashes.iter().map(hash).collect::<Vec<_>>()}),
        M::MptData(p) => json!({"nodes": p.nodes.iter().map(|n| b64(n)).collect::<Vec<_>>()}),
        M::Unknown { command, payload } => json!({"command": command, "data": b64(payload)}),
    }
}

/// A message: `{"command": "<name>", "compressed": bool, "payload": {...}}`.
pub fn message(m: &Message, compressed: bool) -> Value {
    json!({
        "command": m.command_name(),
        "compressed": compressed,
        "payload": payload(m),
    })
}
