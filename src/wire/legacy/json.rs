//! JSON views shaped like the Legacy node's RPC answers (`getblock`,
//! `getblockheader`, `getrawtransaction` in verbose mode), and of messages.
//!
//! Hashes are in display form with `0x`, byte strings in lower-case hex,
//! amounts as decimal strings, script hashes as addresses where RPC shows
//! addresses. Fields that need the chain (`confirmations`, `sys_fee`, …) are
//! not produced.

use serde_json::{Map, Value, json};

use super::{
    AddrPayload, AttributeUsage, Block, BlockBase, ConsensusPayload, GetBlocksPayload, Header,
    InvPayload, MerkleBlockPayload, Message, NetworkAddressWithTime, RawFrame, StateRoot,
    StateType, Transaction, TransactionAttribute, TransactionData, VersionPayload,
};
use crate::wire::{ADDRESS_VERSION_LEGACY, Encode, UInt160, UInt256, Witness, to_address};

fn h256(h: &UInt256) -> Value {
    Value::String(h.to_string())
}

fn address(h: &UInt160) -> Value {
    Value::String(to_address(ADDRESS_VERSION_LEGACY, h))
}

fn witness(w: &Witness) -> Value {
    json!({
        "invocation": hex::encode(&w.invocation),
        "verification": hex::encode(&w.verification),
    })
}

fn base_fields(b: &BlockBase, size: usize) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("hash".into(), h256(&b.hash()));
    m.insert("size".into(), size.into());
    m.insert("version".into(), b.version.into());
    m.insert("previousblockhash".into(), h256(&b.prev_hash));
    m.insert("merkleroot".into(), h256(&b.merkle_root));
    m.insert("time".into(), b.timestamp.into());
    m.insert("index".into(), b.index.into());
    m.insert("nonce".into(), format!("{:016x}", b.consensus_data).into());
    m.insert("nextconsensus".into(), address(&b.next_consensus));
    m.insert("script".into(), witness(&b.witness));
    m
}

/// A block as `getblock` (verbose) shows it, with full transactions in `tx`.
pub fn block(b: &Block) -> Value {
    let mut m = base_fields(&b.base, b.size());
    m.insert(
        "tx".into(),
        b.transactions.iter().map(transaction).collect(),
    );
    Value::Object(m)
}

/// A header as `getblockheader` (verbose) shows it.
pub fn header(h: &Header) -> Value {
    // RPC reports the size of the header as stored: BlockBase plus the 0x00.
    Value::Object(base_fields(&h.base, h.size()))
}

fn attribute(a: &TransactionAttribute) -> Value {
    // RPC shows an ECDH key with its implied prefix byte.
    let data = match a.usage {
        AttributeUsage::Ecdh02 | AttributeUsage::Ecdh03 => {
            format!("{:02x}{}", a.usage.to_byte(), hex::encode(&a.data))
        }
        _ => hex::encode(&a.data),
    };
    json!({ "usage": a.usage.name(), "data": data })
}

fn coin(prev_hash: &UInt256, prev_index: u16) -> Value {
    json!({ "txid": h256(prev_hash), "vout": prev_index })
}

fn asset_name(name: &str) -> Value {
    serde_json::from_str(name).unwrap_or_else(|_| Value::String(name.to_owned()))
}

/// A transaction as `getrawtransaction` (verbose) shows it.
pub fn transaction(tx: &Transaction) -> Value {
    let mut m = Map::new();
    m.insert("txid".into(), h256(&tx.hash()));
    m.insert("size".into(), tx.size().into());
    m.insert("type".into(), tx.tx_type().name().into());
    m.insert("version".into(), tx.version.into());
    m.insert(
        "attributes".into(),
        tx.attributes.iter().map(attribute).collect(),
    );
    m.insert(
        "vin".into(),
        tx.inputs
            .iter()
            .map(|i| coin(&i.prev_hash, i.prev_index))
            .collect(),
    );
    m.insert(
        "vout".into(),
        tx.outputs
            .iter()
            .enumerate()
            .map(|(n, o)| {
                json!({
                    "n": n,
                    "asset": h256(&o.asset_id),
                    "value": o.value.to_string(),
                    "address": address(&o.script_hash),
                })
            })
            .collect(),
    );
    m.insert("scripts".into(), tx.witnesses.iter().map(witness).collect());
    match &tx.data {
        TransactionData::Miner { nonce } => {
            m.insert("nonce".into(), (*nonce).into());
        }
        TransactionData::Issue | TransactionData::Contract => {}
        TransactionData::Claim { claims } => {
            m.insert(
                "claims".into(),
                claims
                    .iter()
                    .map(|c| coin(&c.prev_hash, c.prev_index))
                    .collect(),
            );
        }
        TransactionData::Enrollment { public_key } => {
            m.insert("pubkey".into(), public_key.to_string().into());
        }
        TransactionData::Register(d) => {
            m.insert(
                "asset".into(),
                json!({
                    "type": format!("{:?}", d.asset_type),
                    "name": asset_name(&d.name),
                    "amount": d.amount.to_string(),
                    "precision": d.precision,
                    "owner": d.owner.to_string(),
                    "admin": address(&d.admin),
                }),
            );
        }
        TransactionData::State { descriptors } => {
            m.insert(
                "descriptors".into(),
                descriptors
                    .iter()
                    .map(|d| {
                        json!({
                            "type": match d.state_type {
                                StateType::Account => "Account",
                                StateType::Validator => "Validator",
                            },
                            "key": hex::encode(&d.key),
                            "field": d.field,
                            "value": hex::encode(&d.value),
                        })
                    })
                    .collect(),
            );
        }
        TransactionData::Publish(d) => {
            m.insert(
                "contract".into(),
                json!({
                    "code": {
                        "hash": crate::wire::hash160(&d.script).to_string(),
                        "script": hex::encode(&d.script),
                        "parameters": hex::encode(&d.parameter_list),
                        "returntype": d.return_type,
                    },
                    "needstorage": d.need_storage,
                    "name": d.name,
                    "version": d.code_version,
                    "author": d.author,
                    "email": d.email,
                    "description": d.description,
                }),
            );
        }
        TransactionData::Invocation { script, gas } => {
            m.insert("script".into(), hex::encode(script).into());
            m.insert("gas".into(), gas.to_string().into());
        }
    }
    Value::Object(m)
}

fn version(p: &VersionPayload) -> Value {
    json!({
        "version": p.version,
        "services": p.services,
        "timestamp": p.timestamp,
        "port": p.port,
        "nonce": p.nonce,
        "useragent": p.user_agent,
        "start_height": p.start_height,
        "relay": p.relay,
    })
}

fn net_addr(a: &NetworkAddressWithTime) -> Value {
    let sock = a.socket_addr();
    json!({
        "timestamp": a.timestamp,
        "services": a.services,
        "ip": sock.ip().to_string(),
        "port": a.port,
    })
}

fn addr(p: &AddrPayload) -> Value {
    json!({ "addresses": p.addresses.iter().map(net_addr).collect::<Vec<_>>() })
}

fn get_blocks(p: &GetBlocksPayload) -> Value {
    json!({
        "hash_start": p.hash_start.iter().map(h256).collect::<Vec<_>>(),
        "hash_stop": h256(&p.hash_stop),
    })
}

fn inv(p: &InvPayload) -> Value {
    json!({
        "type": p.kind.name(),
        "hashes": p.hashes.iter().map(h256).collect::<Vec<_>>(),
    })
}

fn consensus(p: &ConsensusPayload) -> Value {
    json!({
        "hash": h256(&p.hash()),
        "version": p.version,
        "previousblockhash": h256(&p.prev_hash),
        "block_index": p.block_index,
        "validator_index": p.validator_index,
        "timestamp": p.timestamp,
        "message_type": p.message_type(),
        "view_number": p.view_number(),
        "data": hex::encode(&p.data),
        "script": witness(&p.witness),
    })
}

fn merkle_block(p: &MerkleBlockPayload) -> Value {
    let mut m = base_fields(&p.base, p.size());
    m.insert("tx_count".into(), p.tx_count.into());
    m.insert("hashes".into(), p.hashes.iter().map(h256).collect());
    m.insert("flags".into(), hex::encode(&p.flags).into());
    Value::Object(m)
}

fn state_root(r: &StateRoot) -> Value {
    json!({
        "hash": h256(&r.hash()),
        "version": r.version,
        "index": r.index,
        "prehash": h256(&r.prev_hash),
        "stateroot": h256(&r.root),
        "witness": r.witness.as_ref().map(witness),
    })
}

fn payload(m: &Message) -> Value {
    match m {
        Message::Verack | Message::GetAddr | Message::Mempool | Message::FilterClear => json!({}),
        Message::Version(p) => version(p),
        Message::Addr(p) => addr(p),
        Message::GetHeaders(p) | Message::GetBlocks(p) => get_blocks(p),
        Message::Headers(p) => {
            json!({ "headers": p.headers.iter().map(header).collect::<Vec<_>>() })
        }
        Message::Inv(p) | Message::GetData(p) => inv(p),
        Message::Block(b) => block(b),
        Message::Tx(t) => transaction(t),
        Message::Consensus(p) => consensus(p),
        Message::Ping(p) | Message::Pong(p) => json!({
            "last_block_index": p.last_block_index,
            "timestamp": p.timestamp,
            "nonce": p.nonce,
        }),
        Message::FilterLoad(p) => json!({
            "filter": hex::encode(&p.filter),
            "k": p.k,
            "tweak": p.tweak,
        }),
        Message::FilterAdd(p) => json!({ "data": hex::encode(&p.data) }),
        Message::MerkleBlock(p) => merkle_block(p),
        Message::GetRoots(p) => json!({ "start_index": p.start_index, "count": p.count }),
        Message::Roots(p) => json!({ "roots": p.roots.iter().map(state_root).collect::<Vec<_>>() }),
        Message::StateRoot(r) => state_root(r),
        Message::Alert(b) | Message::Reject(b) | Message::NotFound(b) => {
            json!({ "raw": hex::encode(b) })
        }
        Message::Unknown { payload, .. } => json!({ "raw": hex::encode(payload) }),
    }
}

/// A message as `{"command": …, "payload": {…}}`.
pub fn message(m: &Message) -> Value {
    json!({ "command": m.command(), "payload": payload(m) })
}

/// A message with the frame it came in: `{"magic", "command", "size", "payload"}`,
/// `size` being the whole frame's length.
pub fn frame_message(frame: &RawFrame, m: &Message) -> Value {
    json!({
        "magic": frame.magic,
        "command": m.command(),
        "size": frame.wire_size(),
        "payload": payload(m),
    })
}
