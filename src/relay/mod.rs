//! Relay bookkeeping: who has what, and who is asked for what.
//!
//! Two sans-I/O data structures that a node uses to pass transactions,
//! blocks and consensus payloads on without echo and without downloading
//! anything twice. Neither touches a socket or reads a clock: time comes in
//! as an argument, so every rule is tested with made-up instants.
//!
//! - [`KnownInventory`]: per peer, the items it is known to have (it
//!   announced or sent them to us, or we announced or sent them to it).
//!   Such an item is never announced or sent to that peer again. Bounded
//!   per peer ([`KnownSet`], oldest forgotten first).
//! - [`RequestTracker`]: an announced item we lack is asked of one peer at
//!   a time, preferred (outbound) and faster peers first, then of the next
//!   announcer on `notfound`, deadline or disconnect, never of the same
//!   peer twice; a request late by a few round trips lets the next
//!   announcer be asked too (at most two requests per item at once).
//!   Bounded per peer (requests in flight, announcements) and in total; a
//!   peer that floods announcements gets [`Announce::Flood`] verdicts to
//!   turn into misbehaviour points, and costs no more memory.
//!
//! How a node drives them, for every peer message:
//!
//! | event | known inventory | tracker |
//! |---|---|---|
//! | peer connects | `add_peer` | `add_peer` with its [`Rank`] |
//! | `inv` from a peer | `mark` each hash | `announced` each hash, then `poll_requests` |
//! | an item arrives | `mark` | `delivered`, then `poll_requests` |
//! | `notfound` | | `not_found`, then `poll_requests` |
//! | timer ([`RequestTracker::poll_timeout`]) | | `poll_requests` |
//! | we relay an item | `to_announce` over the peers | `have` |
//! | peer leaves | `remove_peer` | `remove_peer`, then `poll_requests` |
//!
//! [`InvBatcher`] gathers the announcements to each peer into one `inv`
//! per batch, for a node that accepts a delay to send fewer messages.
//!
//! [`Inventory`] gives both generations' relay messages (`inv`, `getdata`,
//! `notfound`, and the items: transactions, blocks, N3 extensibles, Legacy
//! consensus payloads) one shape, [`Item`] and [`ItemKind`], so that relay
//! logic is written once.

mod batch;
mod item;
mod known;
mod tracker;

#[cfg(test)]
mod tests;

pub use batch::{Flush, InvBatcher};
pub use item::{Inventory, Item, ItemKind, MAX_INV_HASHES};
pub use known::{KnownInventory, KnownSet, PeerId};
pub use tracker::{
    Announce, Delivery, MAX_ANNOUNCED_PER_PEER, MAX_ASKED_PER_ITEM, MAX_IN_FLIGHT_PER_PEER,
    MAX_ITEMS, REMEMBER_DELIVERED, REQUEST_TIMEOUT, RETRY_MIN, RETRY_RTTS, RETRY_UNKNOWN_RTT, Rank,
    Request, RequestTracker, TrackerConfig, TrackerStats,
};
