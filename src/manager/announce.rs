//! Block announcements: the block hashes the peers announce (`inv`), for
//! whoever follows the chain; and the blocks peers send unasked, which a
//! relay room that leaves blocks to the follower hands over.

use super::{Inner, PeerId, PeerManager};
use crate::protocol::Protocol;
use crate::wire::UInt256;

/// Announcements kept for one subscriber before the newest are dropped.
pub const ANNOUNCEMENT_CAPACITY: usize = 256;
/// Hashes kept of one announcement (the last ones of the `inv`; a peer
/// announces a new block alone or with a few others).
pub const ANNOUNCED_HASHES: usize = 16;

/// Blocks sent unasked kept for one follower before newer ones are dropped
/// (a follower takes only the next height it needs, so a few suffice).
pub const PUSHED_CAPACITY: usize = 8;

/// A block message a peer sent unasked, with the peer.
pub(crate) type Pushed<P> = (PeerId, <P as Protocol>::Message);

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

impl<P: Protocol> Inner<P> {
    /// Offers `block`, a block message `peer` sent unasked, to every
    /// follower of the chain; each queue holds at most [`PUSHED_CAPACITY`]
    /// and drops newer blocks while full (the follower fetches them).
    pub(super) fn push_block(&self, peer: PeerId, block: &P::Message) {
        let mut followers = self.pushed.lock().unwrap_or_else(|e| e.into_inner());
        followers.retain(|s| !s.is_closed());
        for s in followers.iter() {
            let _ = s.try_send((peer, block.clone()));
        }
    }
}

impl<P: Protocol> PeerManager<P> {
    /// A new subscription to the blocks peers send unasked, as the relay
    /// room hands them over ([`RelayConfig::blocks_by_follower`](
    /// super::RelayConfig::blocks_by_follower)): at most
    /// [`PUSHED_CAPACITY`] queued. Dropping the receiver ends it.
    pub(crate) fn pushed_blocks(&self) -> async_channel::Receiver<Pushed<P>> {
        let (tx, rx) = async_channel::bounded(PUSHED_CAPACITY);
        self.inner
            .pushed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

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
