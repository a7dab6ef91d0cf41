//! `neo-peer decode`: hex or base64 in, RPC-shaped JSON out.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use bytes::{Bytes, BytesMut};
use neo_peer::wire::{Decode, legacy, n3};
use serde_json::Value;

use crate::{Kind, Protocol};

/// How the input is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// Hex if the input is made only of hex digits (or starts with `0x`),
    /// base64 otherwise.
    Auto,
    /// Hex, with or without `0x`.
    Hex,
    /// Standard base64 (`+`, `/`), with or without `=` padding.
    Base64,
}

/// Standard base64 with or without padding: the N3 RPC pads, hand-copied text may not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes `text` (whitespace ignored), written in `encoding`, as `kind` of
/// `protocol` into one JSON object.
pub fn decode_text(
    protocol: Protocol,
    kind: Kind,
    encoding: Encoding,
    text: &str,
) -> Result<Value, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err("no input: expected hex or base64".into());
    }
    let hex_digits = compact.strip_prefix("0x");
    let looks_hex = hex_digits.is_some() || compact.chars().all(|c| c.is_ascii_hexdigit());
    match encoding {
        Encoding::Hex => decode(protocol, kind, &from_hex(&compact)?),
        Encoding::Base64 => decode(protocol, kind, &from_base64(&compact)?),
        Encoding::Auto if !looks_hex => decode(protocol, kind, &from_base64(&compact)?),
        Encoding::Auto => from_hex(&compact)
            .and_then(|bytes| decode(protocol, kind, &bytes))
            .map_err(|e| {
                // A short base64 text can be made of hex digits only
                // ("AAEA"): the hint is given only when the text, read as
                // base64, decodes as what was asked for.
                let as_base64 = || from_base64(&compact).and_then(|b| decode(protocol, kind, &b));
                if hex_digits.is_none() && as_base64().is_ok() {
                    format!("{e} (read as hex; for base64 give --encoding base64)")
                } else {
                    e
                }
            }),
    }
}

fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits).map_err(|e| format!("invalid hex: {e}"))
}

fn from_base64(text: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(text)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// Decodes `bytes` as `kind` of `protocol` into one JSON object.
fn decode(protocol: Protocol, kind: Kind, bytes: &[u8]) -> Result<Value, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let data = Bytes::copy_from_slice(bytes);
    Ok(match (protocol, kind) {
        (Protocol::Legacy, Kind::Block) => {
            legacy::json::block(&legacy::Block::decode_exact(data).map_err(|e| err(&e))?)
        }
        (Protocol::Legacy, Kind::Header) => {
            legacy::json::header(&legacy::Header::decode_exact(data).map_err(|e| err(&e))?)
        }
        (Protocol::Legacy, Kind::Tx) => legacy::json::transaction(
            &legacy::Transaction::decode_exact(data).map_err(|e| err(&e))?,
        ),
        (Protocol::Legacy, Kind::Message) => {
            let mut buf = BytesMut::from(bytes);
            let mut codec = legacy::Codec::any_magic();
            let frame = whole_frame(codec.decode_frame(&mut buf), &buf)?;
            let msg = frame.message().map_err(|e| err(&e))?;
            legacy::json::frame_message(&frame, &msg)
        }
        (Protocol::N3, Kind::Block) => {
            n3::json::block(&n3::Block::decode_exact(data).map_err(|e| err(&e))?)
        }
        (Protocol::N3, Kind::Header) => {
            n3::json::header(&n3::Header::decode_exact(data).map_err(|e| err(&e))?)
        }
        (Protocol::N3, Kind::Tx) => {
            n3::json::transaction(&n3::Transaction::decode_exact(data).map_err(|e| err(&e))?)
        }
        (Protocol::N3, Kind::Message) => {
            let mut buf = BytesMut::from(bytes);
            let mut codec = n3::Codec::new();
            let frame = whole_frame(codec.decode_frame(&mut buf), &buf)?;
            let msg = frame.decode_message().map_err(|e| err(&e))?;
            n3::json::message(&msg, frame.compressed())
        }
    })
}

/// The one frame the input must consist of.
fn whole_frame<F, E: std::fmt::Display>(
    decoded: Result<Option<F>, E>,
    rest: &BytesMut,
) -> Result<F, String> {
    match decoded.map_err(|e| e.to_string())? {
        None => Err("truncated frame: the input ends before the frame does".into()),
        Some(_) if !rest.is_empty() => {
            Err(format!("{} trailing bytes after the frame", rest.len()))
        }
        Some(frame) => Ok(frame),
    }
}
