//! Block announcements: the block hashes the peers announce (`inv`), for
//! whoever follows the chain.

use super::{Inner, PeerId, PeerManager};
use crate::protocol::Protocol;
use crate::wire::UInt256;

/// Announcements kept for one subscriber before the newest are dropped.
pub const ANNOUNCEMENT_CAPACITY: usize = 256;
/// Hashes kept of one announcement (the last ones of the `inv`; a peer
/// announces a new block alone or with a few others).
pub const ANNOUNCED_HASHES: usize = 16;

/// A peer announced blocks (an `inv` of blocks that answers no request of
/// ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The peer.
    pub peer: PeerId,
    /// The hashes, as announced (at most [`ANNOUNCED_HASHES`], the last ones
    /// of the `inv`).
    pub hashes: Vec<UInt256>,
}

impl<P: Protocol> Inner<P> {
    /// Hands the blocks `msg` announces, if any, to every subscriber.
    pub(super) fn announce(&self, peer: PeerId, msg: &P::Message) {
        let hashes = P::announced_blocks(msg);
        if hashes.is_empty() {
            return;
        }
        let mut subscribers = self.announcements.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|s| !s.is_closed());
        if subscribers.is_empty() {
            return;
        }
        let keep = &hashes[hashes.len().saturating_sub(ANNOUNCED_HASHES)..];
        let announcement = Announcement {
            peer,
            hashes: keep.to_vec(),
        };
        for s in subscribers.iter() {
            // A full queue drops the announcement: a follower also checks
            // the peers' heights on its own.
            let _ = s.try_send(announcement.clone());
        }
    }
}

impl<P: Protocol> PeerManager<P> {
    /// A new subscription to the blocks the peers announce: every
    /// unsolicited `inv` of blocks, as an [`Announcement`], in the order
    /// received. The handler still gets each `inv` (unless the relay takes
    /// it: [`PeerManager::start_relay`]).
    ///
    /// Each subscription has its own queue of at most
    /// [`ANNOUNCEMENT_CAPACITY`] announcements of at most
    /// [`ANNOUNCED_HASHES`] hashes; while it is full, new announcements are
    /// dropped for it. Dropping the receiver ends the subscription.
    pub fn block_announcements(&self) -> async_channel::Receiver<Announcement> {
        let (tx, rx) = async_channel::bounded(ANNOUNCEMENT_CAPACITY);
        self.inner
            .announcements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }
}
