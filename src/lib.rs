//! `neo-peer` is the peer-to-peer layer of a NEO node.
//!
//! It speaks both NEO wire generations:
//! - **NEO Legacy (2.x)**: 24-byte frames carrying the network magic, a
//!   12-byte command name, the payload length and a double-SHA-256 checksum;
//! - **Neo N3**: a flags byte, a command byte and a var-bytes payload that may
//!   be LZ4-compressed.
//!
//! The [`wire`] module holds the sans-I/O codecs: every message, block, header
//! and transaction of both generations, decoded from and encoded into
//! [`bytes`] buffers, with every limit of the protocol enforced before any
//! allocation.
//!
//! ```
//! use bytes::BytesMut;
//! use neo_peer::wire::n3::{Codec, Message, PingPayload};
//!
//! let mut codec = Codec::new();
//! let mut buf = BytesMut::new();
//! let ping = Message::Ping(PingPayload { last_block_index: 7, timestamp: 1, nonce: 42 });
//! codec.encode(&ping, &mut buf).unwrap();
//! // Frames may arrive in pieces: a partial frame yields `None` and is kept.
//! let mut partial = buf.split_to(5);
//! assert!(codec.decode(&mut partial).unwrap().is_none());
//! partial.unsplit(buf);
//! assert_eq!(codec.decode(&mut partial).unwrap(), Some(ping));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chain;
pub mod executor;
pub mod peer;
pub mod protocol;
pub mod wire;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
