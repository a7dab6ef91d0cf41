//! Gossip: `getaddr` answered from the book, `addr` answers learned into
//! it, unsolicited `addr` penalised, and the periodic asking.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::ManagerEvent;
use super::registry::node_addr;
use super::{Inner, PeerId, PeerManager};
use crate::peer::{Handler, Misbehaviour, Peer};
use crate::protocol::{Protocol, RequestKind};
use crate::telemetry;

/// The handler every managed peer runs: the manager's own business
/// (`getaddr`, `addr`, misbehaviour) first, everything else to the caller's
/// handler.
pub(super) struct Managed<P: Protocol, H> {
    pub(super) user: Arc<H>,
    pub(super) inner: Weak<Inner<P>>,
}

impl<P: Protocol, H: Handler<P>> Handler<P> for Managed<P, H> {
    async fn handle(&self, peer: &Peer<P>, msg: P::Message) {
        if let Some(inner) = self.inner.upgrade() {
            if P::is_get_addr(&msg) {
                let known = inner.addresses_for(peer);
                if let Some(answer) = P::addr(&known) {
                    let _ = peer.send(answer).await;
                }
                return;
            }
            if P::addresses(&msg).is_some() {
                // An `addr` that answers no `getaddr` of ours (the peer
                // machine matched our requests' answers; this is not one).
                let addr = node_addr(peer);
                let points = inner.config.penalties.unsolicited_addr;
                inner.penalise(addr, points, "unsolicited addr");
                return;
            }
            inner.announce(peer.id(), &msg);
            if inner.relay_takes(peer, &msg, None) {
                return;
            }
        }
        self.user.handle(peer, msg).await;
    }

    async fn handle_answer(&self, peer: &Peer<P>, msg: P::Message, request: RequestKind) {
        if let Some(inner) = self.inner.upgrade() {
            if let Some(addrs) = P::addresses(&msg) {
                inner.learn(peer, &addrs);
            }
            if inner.relay_takes(peer, &msg, Some(request)) {
                return;
            }
        }
        self.user.handle_answer(peer, msg, request).await;
    }

    async fn misbehaved(&self, peer: &Peer<P>, what: Misbehaviour) {
        if let Some(inner) = self.inner.upgrade() {
            let points = match what {
                Misbehaviour::HeightLie { .. } => inner.config.penalties.height_lie,
            };
            inner.penalise(node_addr(peer), points, &what.to_string());
        }
        self.user.misbehaved(peer, what).await;
    }
}

impl<P: Protocol> Inner<P> {
    /// What to answer `peer`'s `getaddr` with: the book's best
    /// addresses or, while it has none, the listening addresses of the live
    /// peers (neither when [`ManagerConfig::share_addresses`](super::ManagerConfig::share_addresses)
    /// is off); our own listener (as `peer` reaches us) always, so that the
    /// answer is never empty while we listen (an unanswered `getaddr`
    /// stalls the asker). Our end of the connection is read from the peer,
    /// not the registry: its `getaddr` can come before it is registered.
    pub(super) fn addresses_for(&self, peer: &Peer<P>) -> Vec<crate::protocol::GossipAddr> {
        const MOST: usize = 200;
        let now = crate::protocol::unix_seconds();
        let gossip = |addr| crate::protocol::GossipAddr {
            addr,
            timestamp: now,
            services: P::services(&self.config.local.identity),
        };
        let share = self.config.share_addresses;
        let mut known = if share {
            self.book.for_getaddr(MOST - 1)
        } else {
            Vec::new()
        };
        if known.is_empty() && share {
            known.extend(
                self.lock()
                    .peers
                    .values()
                    .filter_map(|e| e.addr)
                    .filter(|a| a.port() != 0)
                    .take(MOST - 1)
                    .map(gossip),
            );
        }
        let port = self.listen_port.load(Ordering::Relaxed);
        if let Some(local) = peer.local_addr().filter(|_| port != 0) {
            let me = SocketAddr::new(local.ip(), port);
            if !known.iter().any(|g| g.addr == me) {
                known.push(gossip(me));
            }
        }
        known
    }

    /// Addresses `peer` sent in answer to our `getaddr`: into the book.
    pub(super) fn learn(&self, peer: &Peer<P>, addrs: &[crate::protocol::GossipAddr]) {
        let from = node_addr(peer);
        let new = self.book.learn(from, addrs);
        if new > 0 {
            telemetry::address_book(&self.book);
            self.emit(ManagerEvent::Learned { from, new });
        }
    }
}

impl<P: Protocol> PeerManager<P> {
    /// Sends `getaddr` to peer `id`; its `addr` answer feeds the book.
    pub(super) async fn ask_addresses(&self, id: PeerId) {
        if let Some(peer) = self.peer(id) {
            let _ = peer.send_reporting(P::get_addr(), false).await;
        }
    }

    /// Asks every live peer for addresses now.
    pub async fn refresh_addresses(&self) {
        let ids: Vec<PeerId> = self.inner.lock().peers.keys().copied().collect();
        for id in ids {
            self.ask_addresses(id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::{AddressBook, BookConfig};
    use crate::executor::SmolGlobal;
    use crate::manager::ManagerConfig;
    use crate::peer::{Direction, IgnoreAll, LocalConfig};
    use crate::protocol::N3;
    use crate::wire::n3::PRIVNET_MAGIC;

    /// A remote can send `getaddr` as soon as the handshake ends, before the
    /// manager has registered it: the answer still names our listener as
    /// the remote reaches us (an empty answer would go unsent and stall it).
    #[test]
    fn a_getaddr_before_registration_is_answered_with_our_listener() {
        let book = AddressBook::in_memory(BookConfig::new(N3::NAME, PRIVNET_MAGIC));
        let config = ManagerConfig::new(LocalConfig::new(PRIVNET_MAGIC));
        let manager = PeerManager::<N3>::new(config, book, IgnoreAll, SmolGlobal).unwrap();
        let inner = &manager.inner;
        inner.listen_port.store(20333, Ordering::Relaxed);
        let conn = futures_lite::io::Cursor::new(Vec::new());
        let local: SocketAddr = "127.0.0.7:40000".parse().unwrap();
        let remote: SocketAddr = "127.0.0.8:50000".parse().unwrap();
        let peer = (inner.make_peer)(Box::new(conn), Direction::Inbound, Arc::downgrade(inner))
            .with_remote_addr(remote)
            .with_local_addr(local);
        assert!(inner.lock().peers.is_empty());
        let known = inner.addresses_for(&peer);
        let listed: Vec<SocketAddr> = known.iter().map(|g| g.addr).collect();
        assert_eq!(listed, ["127.0.0.7:20333".parse().unwrap()]);
        assert!(N3::addr(&known).is_some());
        // Its node address (inbound: its IP, the port of its `version`,
        // none yet) is known without the registry too.
        assert_eq!(node_addr(&peer), Some("127.0.0.8:0".parse().unwrap()));
    }
}
