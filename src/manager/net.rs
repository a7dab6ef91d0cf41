//! TCP for a manager: dialing, the listener and the dialer that keeps the
//! outbound slots filled from the address book.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::future;

use super::{ManagerError, ManagerEvent, PeerManager};
use crate::peer::{Direction, Peer};
use crate::protocol::Protocol;

/// Opens a TCP connection within `timeout`, with Nagle off: requests are
/// small, and a Nagle delay against delayed acknowledgements costs 40 ms a
/// round trip.
async fn open(
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
    pub async fn connect(&self, addr: SocketAddr) -> Result<Peer<P>, ManagerError> {
        self.inner.book.add(addr, crate::book::Source::Manual);
        self.dial(addr).await
    }

    /// Dials an address the book knows.
    async fn dial(&self, addr: SocketAddr) -> Result<Peer<P>, ManagerError> {
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
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, ManagerError> {
        let listener = Async::<TcpListener>::bind(addr).map_err(|e| ManagerError::Connect {
            addr,
            error: format!("cannot listen: {e}"),
        })?;
        let bound = listener
            .get_ref()
            .local_addr()
            .map_err(|e| ManagerError::Connect {
                addr,
                error: e.to_string(),
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
                let _ = conn.get_ref().set_nodelay(true);
                let local = conn.get_ref().local_addr().ok();
                let m = manager.clone();
                manager.inner.spawn(async move {
                    let added = m
                        .add_connection(conn, Direction::Inbound, Some(remote), local)
                        .await;
                    if let Err(e) = added {
                        tracing::debug!(%remote, error = %e, "inbound peer refused");
                    }
                });
            }
        });
        Ok(bound)
    }

    /// Starts the dialer: every [`dial_interval`](super::ManagerConfig::dial_interval)
    /// it dials addresses from the book (best first, spread across address
    /// groups, failed ones backed off by the book) until
    /// [`target_outbound`](super::ManagerConfig::target_outbound) outbound
    /// peers are live; it stops at shutdown.
    pub fn start_dialer(&self) {
        let manager = self.clone();
        self.inner.spawn(async move {
            loop {
                manager.dial_round();
                let wake = Instant::now() + manager.inner.config.dial_interval;
                if !manager.sleep_until(wake).await {
                    return;
                }
            }
        });
    }

    /// One look at the outbound slots: starts the dials that fill them.
    fn dial_round(&self) {
        let inner = &self.inner;
        if inner.is_shutting_down() {
            return;
        }
        let (need, busy) = {
            let reg = inner.lock();
            let outbound = reg
                .peers
                .values()
                .filter(|e| e.peer.direction() == Direction::Outbound)
                .count();
            let need = inner
                .config
                .target_outbound
                .saturating_sub(outbound + reg.dialing.len());
            let busy: Vec<SocketAddr> = reg
                .peers
                .values()
                .filter_map(|e| e.addr)
                .chain(reg.dialing.iter().copied())
                .collect();
            (need, busy)
        };
        if need == 0 {
            return;
        }
        for addr in inner.book.select_for_dial(need, &busy) {
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
    }
}
