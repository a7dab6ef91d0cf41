//! Frames recorded from real nodes (`tests/record_real_nodes.rs`) decode and
//! re-encode to the bytes the nodes sent.

use bytes::BytesMut;
use neo_peer::wire::{legacy, n3};
use serde_json::Value;

fn load(file: &str) -> Vec<Value> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn neo_go_frames_round_trip() {
    let frames = load("recorded-neogo.json");
    assert!(frames.len() >= 10);
    for v in &frames {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let mut buf = BytesMut::from(&bytes[..]);
        let raw = n3::Codec::new().decode_frame(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "one frame per vector");
        let msg = raw.decode_message().unwrap();
        assert_eq!(msg.command_name(), v["command"].as_str().unwrap());
        let mut again = BytesMut::new();
        let mut codec = n3::Codec::new();
        codec.set_compression(raw.compressed());
        codec.encode(&msg, &mut again).unwrap();
        if raw.compressed() {
            // compressed bytes differ between LZ4 encoders: compare what they carry
            let back = codec.decode_frame(&mut again).unwrap().unwrap();
            assert_eq!(back.payload, raw.payload);
        } else {
            assert_eq!(hex::encode(&again), v["hex"].as_str().unwrap());
        }
        if let n3::Message::Block(b) = &msg {
            assert!(b.check().is_ok(), "block {}", b.header.index);
        }
        if let n3::Message::Version(version) = &msg {
            assert!(version.user_agent.starts_with("/NEO-GO:0.120"));
            assert_eq!(version.network, n3::PRIVNET_MAGIC);
        }
    }
}

#[test]
fn neo_one_frames_round_trip() {
    let frames = load("recorded-neoone.json");
    assert!(frames.len() >= 5);
    for v in &frames {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let mut buf = BytesMut::from(&bytes[..]);
        let codec = legacy::Codec::new(legacy::PRIVNET_MAGIC);
        let msg = codec.clone().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "one frame per vector");
        assert_eq!(msg.command_name(), v["command"].as_str().unwrap());
        let mut again = BytesMut::new();
        codec.encode(&msg, &mut again).unwrap();
        assert_eq!(hex::encode(&again), v["hex"].as_str().unwrap());
        if let legacy::Message::Block(b) = &msg {
            assert!(b.check().is_ok(), "block {}", b.base.index);
        }
        if let legacy::Message::Version(version) = &msg {
            assert!(version.user_agent.contains("neo-one"));
        }
    }
}
