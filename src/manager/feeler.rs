//! Feelers: short connections that keep the address book's "tried" table
//! fresh without handing gossip an outbound slot.
//!
//! Every [`feeler_interval`](super::ManagerConfig::feeler_interval), while
//! the outbound slots are all filled, the dialer asks the book for one
//! address to probe ([`AddressBook::select_feeler`](crate::book::AddressBook::select_feeler)):
//! the occupant of a "tried" slot that a newly reached address is waiting
//! for (test-before-evict), or an address of the "new" table. The feeler
//! dials it, runs the handshake, records the outcome (a success moves the
//! address to "tried", or keeps a tested occupant there) and hangs up. The
//! peer is never registered: no request is routed to it, it takes no slot.

use futures_lite::future;

use super::net::open;
use super::{ManagerError, PeerManager};
use crate::book::Connected;
use crate::peer::{Direction, DisconnectReason, IgnoreAll, Peer, PeerInfo};
use crate::protocol::Protocol;

/// What a completed handshake told us, for the book.
pub(super) fn facts<P: Protocol>(info: &PeerInfo<P>) -> Connected {
    match info.version.as_ref().map(P::version_facts) {
        Some(v) => Connected::from(&v),
        None => Connected {
            start_height: info.height,
            ..Connected::default()
        },
    }
}

impl<P: Protocol> PeerManager<P> {
    /// Starts one feeler connection, if the book names an address to probe.
    pub(super) fn start_feeler(&self) {
        let Some(addr) = self.inner.book.select_feeler(&self.busy()) else {
            return;
        };
        if !self.inner.lock().dialing.insert(addr) {
            return;
        }
        let manager = self.clone();
        self.inner.spawn(async move {
            let outcome = manager.feel(addr).await;
            manager.inner.lock().dialing.remove(&addr);
            match outcome {
                Ok(()) => tracing::debug!(%addr, "feeler answered"),
                Err(e) => tracing::debug!(%addr, error = %e, "feeler failed"),
            }
        });
    }

    /// Dials `addr`, runs the handshake, records the outcome and hangs up.
    async fn feel(&self, addr: std::net::SocketAddr) -> Result<(), ManagerError> {
        let inner = &self.inner;
        let book = &inner.book;
        book.record_attempt(addr);
        let conn = match open(addr, inner.config.dial_timeout).await {
            Ok(conn) => conn,
            Err(e) => {
                book.record_failure(addr);
                return Err(e);
            }
        };
        let peer: Peer<P> = Peer::new(
            conn,
            Direction::Outbound,
            inner.config.local.clone(),
            IgnoreAll,
            inner.executor.clone(),
        )
        .with_remote_addr(addr);
        let ran = future::or(async { Some(peer.run().await) }, async {
            self.stopped().await;
            None
        })
        .await;
        match ran {
            None => {
                peer.disconnect_with(DisconnectReason::Shutdown);
                Err(ManagerError::Shutdown)
            }
            Some(Err(error)) => {
                book.record_failure(addr);
                Err(ManagerError::Handshake {
                    addr: addr.to_string(),
                    error,
                })
            }
            Some(Ok(())) => {
                book.record_success(addr, &facts(&peer.info()));
                peer.disconnect();
                Ok(())
            }
        }
    }
}
