//! One remote NEO node as seen by the local one.
//!
//! The pieces here are the sans-I/O building blocks of the peer engine, each
//! a plain state machine with no sockets and no clock of its own:
//! [`handshake`] runs version/verack, [`stall`] tracks outstanding requests
//! and their deadlines, and [`stats`] counts traffic per command.

pub mod handshake;
pub mod stall;
pub mod stats;

pub use handshake::{Handshake, Received, Step, Violation};
pub use stall::{Answered, StallDetector, TooManyPending};
pub use stats::{CommandStats, Latency, Stats, StatsSnapshot};
