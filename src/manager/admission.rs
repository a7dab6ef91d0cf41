//! Admission: who may connect (bans, inbound, outbound and per-IP limits,
//! one connection per node), the handshake, and registration.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::feeler;
use super::handle::ManagedPeer;
use super::registry::{Entry, KINDS, direction_index, node_addr, release_ip};
use super::{Inner, ManagerError, ManagerEvent, PeerManager, routing};
use crate::peer::{Connection, Direction, DisconnectReason, PeerError};
use crate::protocol::Protocol;
use crate::telemetry;

/// Undoes a connection's reservation (per-IP count, handshaking slot) unless
/// it became a registered peer.
struct Reservation<'a, P: Protocol> {
    inner: &'a Inner<P>,
    ip: Option<IpAddr>,
    direction: Direction,
    keep_ip: bool,
}

impl<P: Protocol> Drop for Reservation<'_, P> {
    fn drop(&mut self) {
        let mut reg = self.inner.lock();
        reg.handshaking[direction_index(self.direction)] -= 1;
        if !self.keep_ip {
            if let Some(ip) = self.ip {
                release_ip(&mut reg.per_ip, ip);
            }
        }
    }
}

impl<P: Protocol> PeerManager<P> {
    /// Runs the handshake over `conn` and adds the peer. `remote` is the
    /// address it came from (for an outbound peer: the address dialed).
    pub async fn add_peer<C: Connection>(
        &self,
        conn: C,
        direction: Direction,
        remote: Option<SocketAddr>,
    ) -> Result<ManagedPeer<P>, ManagerError> {
        self.add_connection(conn, direction, remote, None).await
    }

    /// [`PeerManager::add_peer`], knowing our end of the connection.
    pub(super) async fn add_connection<C: Connection>(
        &self,
        conn: C,
        direction: Direction,
        remote: Option<SocketAddr>,
        local: Option<SocketAddr>,
    ) -> Result<ManagedPeer<P>, ManagerError> {
        let inner = &self.inner;
        if inner.is_shutting_down() {
            return Err(ManagerError::Shutdown);
        }
        let ip = remote.map(|a| a.ip());
        if let Some(addr) = remote {
            self.check_ban(addr, direction)?;
        }
        let mut reservation = self.reserve(direction, ip)?;
        let mut peer = (inner.make_peer)(Box::new(conn), direction, Arc::downgrade(inner));
        let id = peer.id();
        if let Some(addr) = remote {
            peer = peer.with_remote_addr(addr);
        }
        if let Some(addr) = local {
            peer = peer.with_local_addr(addr);
        }
        let shown = remote.map_or_else(|| "?".to_string(), |a| a.to_string());
        if let Err(error) = peer.run().await {
            if let (Direction::Outbound, Some(addr)) = (direction, remote) {
                inner.book.record_failure(addr);
            }
            if let PeerError::Disconnected(reason) = &error {
                let points = routing::penalty(reason, &inner.config.penalties);
                inner.penalise(remote, points, &reason.to_string());
            }
            return Err(ManagerError::Handshake { addr: shown, error });
        }
        let info = peer.info();
        let nonce = info.nonce.unwrap_or(0);
        let addr = node_addr(&peer);
        if let Some(a) = addr.filter(|a| a.port() != 0 && inner.book.is_banned(*a)) {
            peer.disconnect_with(DisconnectReason::Misbehaviour("banned".into()));
            return Err(ManagerError::Banned(a));
        }
        {
            let mut reg = inner.lock();
            if inner.is_shutting_down() {
                drop(reg);
                peer.disconnect_with(DisconnectReason::Shutdown);
                return Err(ManagerError::Shutdown);
            }
            if reg.peers.values().any(|e| e.nonce == nonce) {
                drop(reg);
                peer.disconnect_with(DisconnectReason::Duplicate(nonce));
                return Err(ManagerError::Handshake {
                    addr: shown,
                    error: PeerError::Disconnected(DisconnectReason::Duplicate(nonce)),
                });
            }
            reg.peers.insert(
                id,
                Entry {
                    peer: peer.clone(),
                    addr,
                    ip,
                    nonce,
                    in_flight: [0; KINDS],
                    served: 0,
                    rtt: None,
                    last_used: 0,
                },
            );
            reservation.keep_ip = true;
        }
        drop(reservation);
        // The peer may have ended before it was registered: the watcher
        // sees that at once and takes it out again.
        let watcher = self.inner.clone();
        let watched = peer.clone();
        // In the peer's span: what the departure logs (points, a ban) names it.
        let span = peer.span();
        inner.spawn(tracing::Instrument::instrument(
            async move {
                let reason = watched.closed().await;
                watcher.departure(id, reason);
            },
            span,
        ));
        let facts = feeler::facts(&info);
        if let Some(a) = addr.filter(|a| a.port() != 0) {
            match direction {
                Direction::Inbound => inner.book.record_inbound(a, &facts),
                Direction::Outbound => inner.book.record_success(a, &facts),
            }
        }
        telemetry::address_book(&inner.book);
        inner.changed.notify(usize::MAX);
        inner.emit(ManagerEvent::Connected {
            id,
            addr,
            direction,
            user_agent: facts.user_agent,
            height: info.height,
        });
        if direction == Direction::Outbound {
            self.ask_addresses(id).await;
        }
        Ok(ManagedPeer::new(self.clone(), addr, peer))
    }

    /// Refuses `addr` if it is banned; an inbound peer comes from a port of
    /// its own choosing, so for it its IP decides.
    fn check_ban(&self, addr: SocketAddr, direction: Direction) -> Result<(), ManagerError> {
        let book = &self.inner.book;
        let banned = book.is_banned(addr)
            || (direction == Direction::Inbound && book.is_ip_banned(addr.ip()));
        if banned {
            return Err(ManagerError::Banned(addr));
        }
        Ok(())
    }

    /// What the listener asks of a connection it has just accepted from
    /// `remote`, before it spends anything on it (no task, no buffer, not a
    /// byte written): refused if the manager is shutting down, the address
    /// is banned, or the inbound or per-IP limit is reached. A connection
    /// that passes is checked again, and its place held, as it is added.
    pub(super) fn door(&self, remote: SocketAddr) -> Result<(), ManagerError> {
        let inner = &self.inner;
        if inner.is_shutting_down() {
            return Err(ManagerError::Shutdown);
        }
        self.check_ban(remote, Direction::Inbound)?;
        let reg = inner.lock();
        let d = direction_index(Direction::Inbound);
        let live = reg
            .peers
            .values()
            .filter(|e| e.peer.direction() == Direction::Inbound)
            .count();
        if live + reg.handshaking[d] >= inner.config.max_inbound {
            return Err(ManagerError::Limit("inbound peers"));
        }
        if reg
            .per_ip
            .get(&remote.ip())
            .is_some_and(|n| *n >= inner.config.max_per_ip)
        {
            return Err(ManagerError::Limit("connections per IP"));
        }
        Ok(())
    }

    /// Checks the limits for a new connection and holds its place.
    fn reserve(
        &self,
        direction: Direction,
        ip: Option<IpAddr>,
    ) -> Result<Reservation<'_, P>, ManagerError> {
        let inner = &self.inner;
        let mut reg = inner.lock();
        let d = direction_index(direction);
        let live = reg
            .peers
            .values()
            .filter(|e| e.peer.direction() == direction)
            .count();
        let (max, what) = match direction {
            Direction::Inbound => (inner.config.max_inbound, "inbound peers"),
            Direction::Outbound => (inner.config.max_outbound, "outbound peers"),
        };
        if live + reg.handshaking[d] >= max {
            return Err(ManagerError::Limit(what));
        }
        if let Some(ip) = ip {
            let n = reg.per_ip.entry(ip).or_insert(0);
            if *n >= inner.config.max_per_ip {
                return Err(ManagerError::Limit("connections per IP"));
            }
            *n += 1;
        }
        reg.handshaking[d] += 1;
        Ok(Reservation {
            inner,
            ip,
            direction,
            keep_ip: false,
        })
    }
}
