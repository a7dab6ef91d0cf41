//! The `neo-peer decode` command, run as a user would run it.
#![cfg(feature = "cli")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn vectors(file: &str) -> Vec<Value> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn vector(file: &str, name: &str) -> Value {
    vectors(file)
        .into_iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name:?}"))
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn decode_ok(args: &[&str], stdin: Option<&str>) -> Value {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "one JSON object: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

fn decode_err(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    err
}

fn display(hash: &str) -> String {
    format!("0x{hash}")
}

#[test]
fn legacy_block_2000000_lists_its_18_transactions() {
    let v = vector("neo2.json", "mainnet block 2000000");
    let json = decode_ok(
        &[
            "--protocol",
            "legacy",
            "--kind",
            "block",
            v["hex"].as_str().unwrap(),
        ],
        None,
    );
    assert_eq!(json["index"], 2000000);
    let txs = json["tx"].as_array().unwrap();
    assert_eq!(txs.len(), 18);
    let mut got: Vec<String> = txs
        .iter()
        .map(|t| t["txid"].as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = v["expect"]["tx_hashes_unordered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| display(h.as_str().unwrap()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(txs[0]["type"], "MinerTransaction");
    assert_eq!(json["size"], v["hex"].as_str().unwrap().len() / 2);
    for key in [
        "hash",
        "version",
        "previousblockhash",
        "merkleroot",
        "time",
        "nonce",
        "nextconsensus",
        "script",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["nonce"].as_str().unwrap().len(), 16);
    assert!(json["nextconsensus"].as_str().unwrap().starts_with('A'));
}

#[test]
fn legacy_transaction_fields_follow_the_rpc() {
    let v = vector("neo2.json", "mainnet ClaimTransaction abf142fa");
    let json = decode_ok(
        &[
            "--protocol",
            "legacy",
            "--kind",
            "tx",
            v["hex"].as_str().unwrap(),
        ],
        None,
    );
    assert_eq!(json["txid"], display(v["expect"]["hash"].as_str().unwrap()));
    assert_eq!(json["type"], "ClaimTransaction");
    assert_eq!(json["size"], 203);
    assert_eq!(json["claims"].as_array().unwrap().len(), 1);
    for key in ["version", "attributes", "vin", "vout", "scripts"] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn n3_block_header_and_tx() {
    let v = vector("n3.json", "mainnet genesis block (index 0)");
    let hex = v["hex"].as_str().unwrap();
    let json = decode_ok(&["--kind", "block", hex], None);
    assert_eq!(json["hash"], display(v["expect"]["hash"].as_str().unwrap()));
    assert_eq!(json["nextconsensus"], "NVg7LjGcUSrgxgjX3zEgqaksfMaiS8Z6e1");
    assert_eq!(json["time"], 1468595301000u64);
    assert_eq!(json["nonce"], format!("{:016X}", 2083236893u64));
    assert_eq!(json["size"], 114);
    assert_eq!(json["tx"].as_array().unwrap().len(), 0);
    for key in [
        "version",
        "previousblockhash",
        "merkleroot",
        "index",
        "primary",
        "witnesses",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }

    let h = vector("n3.json", "C#-captured header");
    let json = decode_ok(&["--kind", "header", h["hex"].as_str().unwrap()], None);
    assert_eq!(json["hash"], display(h["expect"]["hash"].as_str().unwrap()));
    assert_eq!(json["index"], 123);

    let t = vectors("n3.json")
        .into_iter()
        .find(|v| v["kind"] == "tx" && v.get("valid").is_none())
        .unwrap();
    let json = decode_ok(&["--kind", "tx", t["hex"].as_str().unwrap()], None);
    assert_eq!(json["hash"], display(t["expect"]["hash"].as_str().unwrap()));
    for key in [
        "size",
        "version",
        "nonce",
        "sender",
        "sysfee",
        "netfee",
        "validuntilblock",
        "signers",
        "attributes",
        "script",
        "witnesses",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn messages_of_both_generations() {
    let ping = vector("n3.json", "ping message");
    let json = decode_ok(&["--kind", "message", ping["hex"].as_str().unwrap()], None);
    assert_eq!(json["command"], "ping");
    assert_eq!(json["compressed"], false);
    assert!(json["payload"].is_object());

    let compressed = vectors("n3.json")
        .into_iter()
        .find(|v| v["kind"] == "message" && v["expect"]["flags"] == 1)
        .expect("a compressed N3 message vector");
    let json = decode_ok(
        &["--kind", "message", compressed["hex"].as_str().unwrap()],
        None,
    );
    assert_eq!(json["compressed"], true);

    let headers = vector("neo2.json", "mainnet headers message (header 10)");
    let json = decode_ok(
        &[
            "--protocol",
            "legacy",
            "--kind",
            "message",
            headers["hex"].as_str().unwrap(),
        ],
        None,
    );
    assert_eq!(json["command"], "headers");
    assert!(json["payload"].is_object() || json["payload"].is_array());
    assert!(
        json.to_string()
            .contains("0xf3c4ec44c07eccbda974f1ee34bc6654ab6d3f22cd89c2e5c593a16d6cc7e6e8")
    );
}

#[test]
fn reads_stdin_with_whitespace() {
    let v = vector("n3.json", "ping message");
    let hex = v["hex"].as_str().unwrap();
    let spaced: String = hex
        .as_bytes()
        .chunks(8)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" \n\t");
    let a = decode_ok(&["--kind", "message", "-"], Some(&spaced));
    let b = decode_ok(&["--kind", "message"], Some(hex));
    assert_eq!(a, b);
    assert_eq!(a["command"], "ping");
}

#[test]
fn bad_input_is_one_error_line() {
    // checksum mismatch
    let verack = vector("neo2.json", "mainnet verack message");
    let mut hex = verack["hex"].as_str().unwrap().to_string();
    hex.replace_range(46..48, "e3");
    let err = decode_err(&["--protocol", "legacy", "--kind", "message", &hex], None);
    assert!(err.starts_with("error: checksum mismatch"), "{err}");
    // Valid hex that means nothing as base64: no hint about base64.
    assert!(!err.contains("base64"), "{err}");

    // not hex
    decode_err(&["--kind", "tx", "zz"], None);
    // empty input
    decode_err(&["--kind", "tx"], Some("  \n"));
    // truncated block
    let v = vector("n3.json", "mainnet genesis block (index 0)");
    let hex = v["hex"].as_str().unwrap();
    let err = decode_err(&["--kind", "block", &hex[..hex.len() - 10]], None);
    assert!(err.contains("truncated"), "{err}");
    // trailing bytes after a complete structure
    decode_err(&["--kind", "block", &format!("{hex}00")], None);
    // a frame that is not complete
    let ping = vector("n3.json", "ping message");
    let p = ping["hex"].as_str().unwrap();
    decode_err(&["--kind", "message", &p[..p.len() - 2]], None);
    // payload over the cap
    let err = decode_err(&["--kind", "message", "0021fe00000004"], None);
    assert!(err.contains("payload too large"), "{err}");
}

/// `text` as standard base64, padded.
fn base64(hex: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hex::decode(hex).unwrap())
}

#[test]
fn base64_as_the_n3_rpc_returns_it() {
    let block = vector("n3.json", "mainnet genesis block (index 0)");
    let hex = block["hex"].as_str().unwrap();
    let from_hex = decode_ok(&["--kind", "block", hex], None);
    let b64 = base64(hex);
    assert!(!b64.chars().all(|c| c.is_ascii_hexdigit()));
    // Told apart from hex by itself, from the argument or from standard input.
    assert_eq!(decode_ok(&["--kind", "block", &b64], None), from_hex);
    assert_eq!(
        decode_ok(&["--kind", "block"], Some(&format!("{b64}\n"))),
        from_hex
    );

    // A transaction whose base64 is padded; padding is optional, and the
    // encoding can be named.
    let tx = vectors("n3.json")
        .into_iter()
        .find(|v| {
            v["kind"] == "tx"
                && v.get("valid").is_none()
                && base64(v["hex"].as_str().unwrap()).ends_with('=')
        })
        .expect("a transaction whose length is not a multiple of 3");
    let hex = tx["hex"].as_str().unwrap();
    let from_hex = decode_ok(&["--kind", "tx", hex], None);
    let b64 = base64(hex);
    assert_eq!(decode_ok(&["--kind", "tx", &b64], None), from_hex);
    let unpadded = b64.trim_end_matches('=');
    assert_eq!(
        decode_ok(&["--kind", "tx", "--encoding", "base64", unpadded], None),
        from_hex
    );
}

#[test]
fn base64_made_of_hex_digits_is_read_as_hex_unless_told() {
    // An N3 verack frame, 00 01 00, is "AAEA" in base64: hex digits only.
    assert_eq!(base64("000100"), "AAEA");
    let err = decode_err(&["--kind", "message", "AAEA"], None);
    assert!(
        err.ends_with("(read as hex; for base64 give --encoding base64)\n"),
        "{err}"
    );
    let json = decode_ok(&["--kind", "message", "--encoding", "base64", "AAEA"], None);
    assert_eq!(json["command"], "verack");
    assert_eq!(
        decode_ok(&["--kind", "message", "--encoding", "hex", "000100"], None),
        json
    );
    // A named encoding is not second-guessed.
    let err = decode_err(&["--kind", "message", "--encoding", "hex", "AAE="], None);
    assert!(err.starts_with("error: invalid hex"), "{err}");
    let err = decode_err(&["--kind", "message", "--encoding", "base64", "AA-A"], None);
    assert!(err.starts_with("error: invalid base64"), "{err}");
}
