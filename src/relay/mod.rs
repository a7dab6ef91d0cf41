//! Relay bookkeeping: who has what.
//!
//! Sans-I/O data structures that a node uses to pass transactions, blocks
//! and consensus payloads on without echo. Nothing here touches a socket or
//! reads a clock, so every rule is tested with plain values.
//!
//! - [`KnownInventory`]: per peer, the items it is known to have (it
//!   announced or sent them to us, or we announced or sent them to it).
//!   Such an item is never announced or sent to that peer again. Bounded
//!   per peer ([`KnownSet`], oldest forgotten first).

mod known;

pub use known::{KnownInventory, KnownSet, PeerId};
