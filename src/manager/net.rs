//! TCP for a manager: dialing, the listener and the dialer that keeps the
//! outbound slots filled from the address book.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::future;

use super::{ManagedPeer, ManagerError, ManagerEvent, PeerManager};
use crate::peer::Direction;
use crate::protocol::Protocol;

/// Opens a TCP connection within `timeout`, with Nagle off: requests are
/// small, and a Nagle delay against delayed acknowledgements costs 40 ms a
/// round trip.
pub(super) async fn open(
    addr: SocketAddr,
    timeout: std::time::Duration,
) -> Result<Async<TcpStream>, ManagerError> {
    let connect = async {
        Async::<TcpStream>::connect(addr)
            .await
            .map_err(|e| e.to_string())
    };
    let timed = async {
        Timer::after(timeout).await;
        Err(format!("no answer within {timeout:?}"))
    };
    let conn = future::or(connect, timed)
        .await
        .map_err(|error| ManagerError::Connect { addr, error })?;
    conn.get_ref()
        .set_nodelay(true)
        .map_err(|e| ManagerError::Connect {
            addr,
            error: e.to_string(),
        })?;
    Ok(conn)
}

impl<P: Protocol> PeerManager<P> {
    /// Dials `addr`, runs the handshake and adds the peer. The attempt and
    /// its outcome are recorded in the address book.
    pub async fn connect(&self, addr: SocketAddr) -> Result<ManagedPeer<P>, ManagerError> {
        self.inner.book.add(addr, crate::book::Source::Manual);
        self.dial(addr).await
    }

    /// Dials an address the book knows.
    async fn dial(&self, addr: SocketAddr) -> Result<ManagedPeer<P>, ManagerError> {
        let book = &self.inner.book;
        if book.is_banned(addr) {
            return Err(ManagerError::Banned(addr));
        }
        book.record_attempt(addr);
        let conn = match open(addr, self.inner.config.dial_timeout).await {
            Ok(conn) => conn,
            Err(e) => {
                book.record_failure(addr);
                return Err(e);
            }
        };
        let local = conn.get_ref().local_addr().ok();
        self.add_connection(conn, Direction::Outbound, Some(addr), local)
            .await
    }

    /// Listens on `addr` and adds every peer that connects (within the
    /// limits) until shutdown. Returns the address bound (useful with port 0).
    ///
    /// A connection from a banned IP (a peer of it broke a rule, see
    /// [`Penalties`](super::Penalties)), or one over the inbound or per-IP
    /// limit, is closed as soon as it is accepted, before any handshake:
    /// not even our `version` is written, and no task is started for it
    /// ([`ManagerEvent::Refused`]).
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, ManagerError> {
        let listener = TcpListener::bind(addr).map_err(|e| ManagerError::Connect {
            addr,
            error: format!("cannot listen: {e}"),
        })?;
        self.listen_on(listener)
    }

    /// [`PeerManager::listen`] on a listener bound already: useful to learn
    /// the port before the manager is made (to announce it in `version`).
    pub fn listen_on(&self, listener: TcpListener) -> Result<SocketAddr, ManagerError> {
        let bound = listener.local_addr().map_err(|e| ManagerError::Connect {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            error: e.to_string(),
        })?;
        let listener = Async::new(listener).map_err(|e| ManagerError::Connect {
            addr: bound,
            error: format!("cannot listen: {e}"),
        })?;
        self.inner
            .listen_port
            .store(bound.port(), std::sync::atomic::Ordering::Relaxed);
        let manager = self.clone();
        self.inner.spawn(async move {
            loop {
                let accepted = future::or(async { Some(listener.accept().await) }, async {
                    manager.stopped().await;
                    None
                })
                .await;
                let (conn, remote) = match accepted {
                    None => return,
                    Some(Ok(accepted)) => accepted,
                    Some(Err(e)) => {
                        // Out of descriptors and the like: back off a little.
                        tracing::warn!(error = %e, "accept failed");
                        Timer::after(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Banned or over a limit: closed at once, before any
                // handshake, costing nothing but the accept.
                if let Err(e) = manager.door(remote) {
                    tracing::debug!(%remote, error = %e, "inbound connection refused at accept");
                    drop(conn);
                    manager.refused(remote, &e);
                    continue;
                }
                let _ = conn.get_ref().set_nodelay(true);
                let local = conn.get_ref().local_addr().ok();
                let m = manager.clone();
                manager.inner.spawn(async move {
                    let added = m
                        .add_connection(conn, Direction::Inbound, Some(remote), local)
                        .await;
                    if let Err(e) = added {
                        tracing::debug!(%remote, error = %e, "inbound peer refused");
                        m.refused(remote, &e);
                    }
                });
            }
        });
        Ok(bound)
    }

    /// Reports an inbound connection from `remote` that did not join.
    fn refused(&self, remote: SocketAddr, error: &ManagerError) {
        let event = match error {
            ManagerError::Shutdown => return,
            ManagerError::Handshake { error, .. } => ManagerEvent::HandshakeFailed {
                addr: remote,
                error: error.to_string(),
            },
            other => ManagerEvent::Refused {
                addr: remote,
                reason: other.to_string(),
            },
        };
        self.inner.emit(event);
    }

    /// Starts the dialer. It first dials the book's anchors (the outbound
    /// peers held at the last shutdown, [`AddressBook::take_anchors`](crate::book::AddressBook::take_anchors)),
    /// then every [`dial_interval`](super::ManagerConfig::dial_interval)
    /// dials addresses the book selects (tried or new at random, one per
    /// address group, failed ones backed off) until
    /// [`target_outbound`](super::ManagerConfig::target_outbound) outbound
    /// peers are live. Every [`feeler_interval`](super::ManagerConfig::feeler_interval)
    /// in which all those slots are filled it makes one feeler connection.
    /// It stops at shutdown.
    pub fn start_dialer(&self) {
        let manager = self.clone();
        self.inner.spawn(async move {
            let config = &manager.inner.config;
            let mut anchors = manager.inner.book.take_anchors();
            let mut next_feeler = Instant::now() + config.feeler_interval;
            loop {
                let full = manager.dial_round(std::mem::take(&mut anchors));
                let now = Instant::now();
                if now >= next_feeler {
                    if full {
                        manager.start_feeler();
                    }
                    next_feeler = now + config.feeler_interval;
                }
                let wake = (now + config.dial_interval).min(next_feeler);
                if !manager.sleep_until(wake).await {
                    return;
                }
            }
        });
    }

    /// The addresses of the live peers and of the dials under way.
    pub(super) fn busy(&self) -> Vec<SocketAddr> {
        let reg = self.inner.lock();
        reg.peers
            .values()
            .filter_map(|e| e.addr)
            .chain(reg.dialing.iter().copied())
            .collect()
    }

    /// One look at the outbound slots: starts the dials that fill them,
    /// `anchors` first. Returns whether every slot is held by a live peer.
    fn dial_round(&self, anchors: Vec<SocketAddr>) -> bool {
        let inner = &self.inner;
        if inner.is_shutting_down() {
            return false;
        }
        let (need, full) = {
            let reg = inner.lock();
            let outbound = reg
                .peers
                .values()
                .filter(|e| e.peer.direction() == Direction::Outbound)
                .count();
            let target = inner.config.target_outbound;
            (
                target.saturating_sub(outbound + reg.dialing.len()),
                outbound >= target,
            )
        };
        if need == 0 {
            return full;
        }
        let mut busy = self.busy();
        let mut picks: Vec<SocketAddr> = anchors
            .into_iter()
            .filter(|a| !busy.contains(a))
            .take(need)
            .collect();
        if picks.len() < need {
            busy.extend(&picks);
            picks.extend(inner.book.select_for_dial(need - picks.len(), &busy));
        }
        for addr in picks {
            if !inner.lock().dialing.insert(addr) {
                continue;
            }
            let manager = self.clone();
            inner.spawn(async move {
                let result = manager.dial(addr).await;
                manager.inner.lock().dialing.remove(&addr);
                if let Err(e) = result {
                    tracing::info!(remote = %addr, direction = ?Direction::Outbound, error = %e, "dial failed");
                    manager.inner.emit(ManagerEvent::DialFailed {
                        addr,
                        error: e.to_string(),
                    });
                }
            });
        }
        full
    }

    /// Stores the outbound peers held now, oldest first, as the book's
    /// anchors (called at shutdown, before the peers are disconnected).
    pub(super) fn save_anchors(&self) {
        let held: Vec<SocketAddr> = {
            let reg = self.inner.lock();
            let mut held: Vec<(super::PeerId, SocketAddr)> = reg
                .peers
                .iter()
                .filter(|(_, e)| e.peer.direction() == Direction::Outbound)
                .filter_map(|(&id, e)| e.addr.map(|a| (id, a)))
                .collect();
            held.sort_unstable();
            held.into_iter().map(|(_, a)| a).collect()
        };
        self.inner.book.set_anchors(&held);
    }
}
