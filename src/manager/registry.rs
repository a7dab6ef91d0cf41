//! The registry: who is connected, what each peer is doing for the
//! manager, and who left.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::MutexGuard;
use std::time::{Duration, Instant, SystemTime};

use async_io::Timer;
use futures_lite::future;

use super::handle::ManagedPeer;
use super::{Departed, Inner, ManagerEvent, PeerId, PeerManager, PeerSummary, routing};
use crate::peer::{Direction, DisconnectReason, Peer};
use crate::protocol::{Protocol, RequestKind};

/// The request kinds, as indices of [`Entry::in_flight`].
pub(super) const KINDS: usize = 6;
/// Departed peers remembered.
const MAX_DEPARTED: usize = 256;

pub(super) fn kind_index(kind: RequestKind) -> usize {
    match kind {
        RequestKind::Headers => 0,
        RequestKind::BlockHashes => 1,
        RequestKind::BlocksByIndex => 2,
        RequestKind::Data => 3,
        RequestKind::Addr => 4,
        RequestKind::Ping => 5,
    }
}

pub(super) fn direction_index(d: Direction) -> usize {
    match d {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    }
}

/// The address that identifies the node behind `peer`: where it listens.
/// For an outbound peer that is the address dialed; for an inbound one, its
/// IP and the port its `version` names. Read from the peer itself, so that
/// its handler has it before the manager has registered the peer.
pub(super) fn node_addr<P: Protocol>(peer: &Peer<P>) -> Option<SocketAddr> {
    let remote = peer.remote_addr()?;
    Some(match peer.direction() {
        Direction::Outbound => remote,
        Direction::Inbound => SocketAddr::new(remote.ip(), peer.listen_port()),
    })
}

/// A live peer and the manager's records of it.
pub(super) struct Entry<P: Protocol> {
    pub(super) peer: Peer<P>,
    pub(super) addr: Option<SocketAddr>,
    pub(super) ip: Option<IpAddr>,
    pub(super) nonce: u32,
    pub(super) in_flight: [u32; KINDS],
    pub(super) served: u64,
    pub(super) rtt: Option<Duration>,
    pub(super) last_used: u64,
}

/// Every live peer, and the counts admission checks.
pub(super) struct Registry<P: Protocol> {
    pub(super) peers: HashMap<PeerId, Entry<P>>,
    pub(super) departed: VecDeque<Departed>,
    /// Addresses being dialed.
    pub(super) dialing: HashSet<SocketAddr>,
    /// Connections per IP, handshaking ones included.
    pub(super) per_ip: HashMap<IpAddr, usize>,
    /// Handshaking connections per direction (inbound, outbound).
    pub(super) handshaking: [usize; 2],
    /// Misbehaviour points per address.
    pub(super) scores: HashMap<SocketAddr, u32>,
    pub(super) clock: u64,
}

impl<P: Protocol> Registry<P> {
    pub(super) fn new() -> Self {
        Registry {
            peers: HashMap::new(),
            departed: VecDeque::new(),
            dialing: HashSet::new(),
            per_ip: HashMap::new(),
            handshaking: [0, 0],
            scores: HashMap::new(),
            clock: 0,
        }
    }
}

pub(super) fn release_ip(per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = per_ip.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            per_ip.remove(&ip);
        }
    }
}

impl<P: Protocol> Inner<P> {
    pub(super) fn lock(&self) -> MutexGuard<'_, Registry<P>> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn addr_of(&self, id: PeerId) -> Option<SocketAddr> {
        self.lock().peers.get(&id).and_then(|e| e.addr)
    }

    /// A peer left: out of the registry, into the departed list and the book.
    pub(super) fn departure(&self, id: PeerId, reason: DisconnectReason) {
        let mut reg = self.lock();
        let Some(entry) = reg.peers.remove(&id) else {
            return;
        };
        if let Some(ip) = entry.ip {
            release_ip(&mut reg.per_ip, ip);
        }
        reg.departed.push_back(Departed {
            id,
            addr: entry.addr,
            reason: reason.clone(),
            at: SystemTime::now(),
        });
        if reg.departed.len() > MAX_DEPARTED {
            reg.departed.pop_front();
        }
        drop(reg);
        self.changed.notify(usize::MAX);
        if let Some(addr) = entry.addr {
            self.book.record_disconnect(addr, &reason.to_string());
            self.book.record_height(addr, entry.peer.height());
            // The book keeps the ping round trip, not request latencies.
            if let Some(rtt) = entry.peer.info().rtt {
                self.book.record_rtt(addr, rtt);
            }
        }
        let points = routing::penalty(&reason, &self.config.penalties);
        self.penalise(entry.addr, points, &reason.to_string());
        self.emit(ManagerEvent::Disconnected {
            id,
            addr: entry.addr,
            reason,
        });
    }
}

impl<P: Protocol> PeerManager<P> {
    /// Live peers.
    pub fn len(&self) -> usize {
        self.inner.lock().peers.len()
    }

    /// True when no peer is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live peers, ordered by number.
    pub fn peers(&self) -> Vec<PeerSummary<P>> {
        let reg = self.inner.lock();
        let mut all: Vec<_> = reg
            .peers
            .iter()
            .map(|(&id, e)| PeerSummary {
                id,
                addr: e.addr,
                peer: ManagedPeer::new(self.clone(), e.addr, e.peer.clone()),
                info: e.peer.info(),
                stats: e.peer.stats(),
                served: e.served,
                in_flight: e.in_flight.iter().sum(),
                rtt: e.rtt,
                score: e
                    .addr
                    .and_then(|a| reg.scores.get(&a).copied())
                    .unwrap_or(0),
            })
            .collect();
        all.sort_by_key(|s| s.id);
        all
    }

    /// The live peer with number `id`.
    pub fn peer(&self, id: PeerId) -> Option<ManagedPeer<P>> {
        let reg = self.inner.lock();
        let e = reg.peers.get(&id)?;
        Some(ManagedPeer::new(self.clone(), e.addr, e.peer.clone()))
    }

    /// The last peers that left (at most 256), oldest first.
    pub fn departed(&self) -> Vec<Departed> {
        self.inner.lock().departed.iter().cloned().collect()
    }

    /// The live peers and their heights, in no order (cheaper than
    /// [`PeerManager::peers`]).
    pub(crate) fn heights(&self) -> Vec<(PeerId, u32)> {
        let reg = self.inner.lock();
        reg.peers
            .iter()
            .map(|(&id, e)| (id, e.peer.height()))
            .collect()
    }

    /// The highest height any live peer has shown.
    pub fn best_height(&self) -> u32 {
        let reg = self.inner.lock();
        reg.peers
            .values()
            .map(|e| e.peer.height())
            .max()
            .unwrap_or(0)
    }

    /// Disconnects peer `id` (it then leaves the registry by itself).
    pub fn remove(&self, id: PeerId) -> bool {
        match self.peer(id) {
            Some(peer) => {
                peer.disconnect();
                true
            }
            None => false,
        }
    }

    /// Waits until at least `n` peers are live, or `timeout` passes; returns
    /// how many are.
    pub async fn wait_for_peers(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let listener = self.inner.changed.listen();
            let live = self.len();
            if live >= n || Instant::now() >= deadline || self.inner.is_shutting_down() {
                return live;
            }
            future::or(listener, async {
                Timer::at(deadline).await;
            })
            .await;
        }
    }
}
