//! `neo-peer` is the peer-to-peer layer of a NEO node.
//!
//! It speaks both NEO wire generations through one engine:
//! - **NEO Legacy (2.x)**: 24-byte frames carrying the network magic, a
//!   12-byte command name, the payload length and a double-SHA-256 checksum;
//! - **Neo N3**: a flags byte, a command byte and a var-bytes payload that may
//!   be LZ4-compressed.
//!
//! # How it fits together
//!
//! - [`wire`]: sans-I/O codecs. Every message, block, header and transaction
//!   of both generations, decoded from and encoded into [`bytes`] buffers,
//!   with every limit of the protocol enforced before anything is allocated.
//! - [`protocol`]: the [`Protocol`](protocol::Protocol) trait that binds one
//!   generation to the engine, and its two implementations,
//!   [`Legacy`](protocol::Legacy) and [`N3`](protocol::N3).
//! - [`peer`]: the engine. A [`Peer`](peer::Peer) takes any connection
//!   (`AsyncRead + AsyncWrite`), runs the version/verack handshake, then lives
//!   as an actor on its own tasks: it answers `ping`, drops a remote that goes
//!   idle or leaves a request unanswered, hands every other message to your
//!   [`Handler`](peer::Handler), and keeps per-command statistics. It is
//!   configured by a [`LocalConfig`](peer::LocalConfig) and depends on no
//!   other part of a node.
//! - [`executor`]: the engine starts its tasks through the
//!   [`Executor`](executor::Executor) trait; adapters exist for smol,
//!   async-std and tokio. Timers come from `async-io`; a socket of any of
//!   them will do (tokio's through `neo_peer::tokio`, feature `tokio`).
//! - [`manager`]: many peers of one protocol, the API a node, a relay or a
//!   crawler is built on. A [`PeerManager`](manager::PeerManager) takes
//!   peers from a listener, a dialer fed by the [`book`], or by hand; routes
//!   each request to the best free peer and retries it on another when that
//!   one leaves or stalls; enforces connection limits, scores misbehaviour
//!   and bans. Built on it: [`manager::sync`] (a header chain from many
//!   peers at once), [`manager::download`] (full blocks in a bounded window,
//!   each checked against its header, and [`follow`](manager::download::follow)
//!   at the tip), [`Follower`](manager::Follower) (keeps a
//!   [`Chain`](chain::Chain) at the tip and streams what it appends), and
//!   [`PeerManager::start_relay`](manager::PeerManager::start_relay)
//!   (transactions, blocks and payloads passed on, each downloaded once).
//! - [`book`]: the address book. Every node we have heard of (seeds file,
//!   gossip, inbound, manual), how dials to it went, its height, round trip
//!   and bans; picks whom to dial (backoff, spread over address groups) and
//!   what to answer `getaddr` with; kept in one redb file, written in
//!   transactions. The same book serves both generations.
//! - [`chain`]: an in-memory chain that grows while it is served (appends
//!   checked for linkage, readers never see half an append), the
//!   [`ChainStore`](chain::ChainStore) trait for serving from a node's own
//!   database, a synthetic chain generator, and
//!   [`ChainServer`](chain::ChainServer), a handler that serves headers and
//!   blocks from a store.
//! - [`relay`]: the bookkeeping of relaying, without I/O: what each peer is
//!   known to have (never announced or sent to it again), and one download
//!   per announced item, asked of one peer at a time.
//! - [`telemetry`]: the metrics the crate records (through the `metrics`
//!   facade, a no-op until you install a recorder), listed in one table, and
//!   how its `tracing` logs name each peer.
//!
//! # Quick start (smol)
//!
//! Connect to an N3 node, handshake, fetch the first headers:
//!
//! ```no_run
//! use neo_peer::executor::SmolGlobal;
//! use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
//! use neo_peer::protocol::N3;
//! use neo_peer::wire::n3::PRIVNET_MAGIC;
//!
//! smol::block_on(async {
//!     let conn = smol::net::TcpStream::connect("127.0.0.1:20333").await?;
//!     let config = LocalConfig::new(PRIVNET_MAGIC);
//!     let peer: Peer<N3> = Peer::new(conn, Direction::Outbound, config, IgnoreAll, SmolGlobal);
//!     peer.run().await?; // the handshake
//!     let headers = peer.get_headers(0, 2000).await?;
//!     println!("{} headers, the peer is at {}", headers.len(), peer.height());
//!     print!("{}", peer.stats());
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Quick start (async-std), with a handler
//!
//! The seed's way: `request_headers` returns once the request is written,
//! and the headers arrive at the handler.
//!
//! ```no_run
//! # #[cfg(feature = "async-std")]
//! # {
//! use neo_peer::executor::AsyncStd;
//! use neo_peer::peer::{Direction, LegacyHandler, LocalConfig, Peer};
//! use neo_peer::protocol::Legacy;
//! use neo_peer::wire::legacy::{HeadersPayload, MAINNET_GENESIS_HASH, MAINNET_MAGIC};
//! use neo_peer::wire::UInt256;
//!
//! struct OnHeaders;
//!
//! impl LegacyHandler for OnHeaders {
//!     async fn on_headers(&self, _peer: &Peer<Legacy>, msg: HeadersPayload) {
//!         println!("{} headers", msg.headers.len());
//!     }
//! }
//!
//! async_std::task::block_on(async {
//!     let conn = async_std::net::TcpStream::connect("127.0.0.1:10333").await?;
//!     let config = LocalConfig::new(MAINNET_MAGIC);
//!     let peer: Peer<Legacy> = Peer::new(conn, Direction::Outbound, config, OnHeaders, AsyncStd);
//!     peer.run().await?;
//!     peer.request_headers(MAINNET_GENESIS_HASH, UInt256::ZERO).await?;
//!     let reason = peer.closed().await;
//!     println!("gone: {reason}");
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # A peer manager that syncs headers
//!
//! The manager dials its peers, and [`sync_n3`](manager::sync::sync_n3)
//! fetches ranges of headers from all of them at once, each header checked
//! against the one before. For full blocks next, see
//! [`manager::download`]; to stay at the tip,
//! [`Follower`](manager::Follower) or [`download::follow`](manager::download::follow);
//! to pass transactions and blocks on,
//! [`PeerManager::start_relay`](manager::PeerManager::start_relay).
//!
//! ```no_run
//! # #[cfg(feature = "smol")]
//! # {
//! use std::time::Duration;
//!
//! use neo_peer::book::{AddressBook, BookConfig};
//! use neo_peer::executor::SmolGlobal;
//! use neo_peer::manager::sync::{SyncOptions, sync_n3};
//! use neo_peer::manager::{ManagerConfig, PeerManager};
//! use neo_peer::peer::{IgnoreAll, LocalConfig};
//! use neo_peer::protocol::{N3, Protocol};
//! use neo_peer::wire::n3::PRIVNET_MAGIC;
//!
//! smol::block_on(async {
//!     // The address book: in memory here, a redb file with `AddressBook::open`.
//!     let book = AddressBook::in_memory(BookConfig::new(N3::NAME, PRIVNET_MAGIC));
//!     let config = ManagerConfig::new(LocalConfig::new(PRIVNET_MAGIC));
//!     let manager = PeerManager::<N3>::new(config, book, IgnoreAll, SmolGlobal)?;
//!     for addr in ["127.0.0.1:20333", "127.0.0.1:20334"] {
//!         manager.connect(addr.parse()?).await?;
//!     }
//!     // Or let the dialer keep the outbound slots filled from the book.
//!     manager.start_dialer();
//!     manager.wait_for_peers(2, Duration::from_secs(3)).await;
//!     // Up to the best peer's height (`SyncOptions::target` to stop before).
//!     let synced = sync_n3(
//!         &manager,
//!         0,
//!         &SyncOptions::default(),
//!         |headers| println!("{} more headers", headers.len()),
//!         |have, want| eprintln!("{have}/{want}"),
//!     )
//!     .await?;
//!     println!("{} headers, tip {} {}", synced.count, synced.tip_index, synced.tip_hash);
//!     // Disconnects everyone, waits for every task and flushes the book.
//!     manager.shutdown().await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # The codec alone
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

pub mod book;
pub mod chain;
pub mod executor;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod manager;
pub mod peer;
pub mod protocol;
pub mod relay;
pub mod telemetry;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod wire;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
