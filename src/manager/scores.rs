//! Scores and bans: misbehaviour points per address, a ban past the
//! threshold (kept in the address book), and the peers it ends.

use std::net::SocketAddr;

use super::{Inner, ManagerEvent, PeerId, PeerManager};
use crate::peer::{DisconnectReason, Peer};
use crate::protocol::Protocol;
use crate::telemetry;

impl<P: Protocol> Inner<P> {
    /// Adds `points` to `addr`'s score; bans it past the threshold.
    pub(super) fn penalise(&self, addr: Option<SocketAddr>, points: u32, why: &str) {
        let Some(addr) = addr.filter(|_| points > 0) else {
            return;
        };
        let mut reg = self.lock();
        let score = reg.scores.entry(addr).or_insert(0);
        *score = score.saturating_add(points);
        tracing::debug!(remote = %addr, points, score = *score, why, "misbehaviour");
        let banned = *score >= self.config.ban_threshold;
        telemetry::penalised(points, banned);
        if !banned {
            return;
        }
        reg.scores.remove(&addr);
        let victims: Vec<Peer<P>> = reg
            .peers
            .values()
            .filter(|e| e.addr == Some(addr))
            .map(|e| e.peer.clone())
            .collect();
        drop(reg);
        let reason = format!("banned: {why}");
        self.book.ban(addr, self.config.ban_duration, why);
        tracing::warn!(remote = %addr, why, "banned");
        self.emit(ManagerEvent::Banned {
            addr,
            reason: why.to_string(),
        });
        for peer in victims {
            peer.disconnect_with(DisconnectReason::Misbehaviour(reason.clone()));
        }
    }
}

impl<P: Protocol> PeerManager<P> {
    /// Adds misbehaviour points to the address of peer `id` (banned past the
    /// threshold) and returns whether the peer was known.
    pub fn report(&self, id: PeerId, points: u32, why: &str) -> bool {
        let addr = self.inner.addr_of(id);
        self.inner.penalise(addr, points, why);
        addr.is_some()
    }
}
