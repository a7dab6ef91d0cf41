//! `neo-peer decode`: hex in, RPC-shaped JSON out.

use bytes::{Bytes, BytesMut};
use neo_peer::wire::{Decode, legacy, n3};
use serde_json::Value;

use crate::{Kind, Protocol};

/// Decodes `bytes` as `kind` of `protocol` into one JSON object.
pub fn decode(protocol: Protocol, kind: Kind, bytes: &[u8]) -> Result<Value, String> {
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
