//! A managed peer: one of the manager's peers, handed out so that every
//! request made on it goes through the manager's bookkeeping.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ManagerError, PeerId, PeerManager};
use crate::peer::{Direction, DisconnectReason, Peer, PeerError, PeerInfo, StatsSnapshot};
use crate::protocol::contract::{Expected, Obligation};
use crate::protocol::{Protocol, RequestKind};

/// One of a [`PeerManager`]'s peers.
///
/// It tells what the peer is (its number, addresses, height, statistics)
/// and lets the embedder talk to that very peer, but only in ways the
/// manager keeps count of: a request takes one of the peer's request slots
/// ([`ManagerConfig::max_in_flight_per_kind`](super::ManagerConfig::max_in_flight_per_kind))
/// for as long as its answers come, so routing sees the peer busy, and
/// answers that feed the manager (`addr`) reach the address book. To let
/// the manager pick the peer, use the manager's own requests
/// ([`PeerManager::request`], `get_headers`, ...).
///
/// Cheap to clone; it stays valid after the peer leaves (calls then fail
/// with the peer's disconnect reason).
///
/// ```no_run
/// # use neo_peer::manager::PeerManager;
/// # use neo_peer::protocol::N3;
/// # async fn demo(manager: PeerManager<N3>) -> Result<(), Box<dyn std::error::Error>> {
/// for summary in manager.peers() {
///     let rtt = summary.peer.ping().await?;
///     println!("{} {:?} answers pings in {rtt:?}", summary.id, summary.addr);
/// }
/// # Ok(())
/// # }
/// ```
pub struct ManagedPeer<P: Protocol> {
    manager: PeerManager<P>,
    id: PeerId,
    addr: Option<SocketAddr>,
    peer: Peer<P>,
}

impl<P: Protocol> Clone for ManagedPeer<P> {
    fn clone(&self) -> Self {
        ManagedPeer {
            manager: self.manager.clone(),
            id: self.id,
            addr: self.addr,
            peer: self.peer.clone(),
        }
    }
}

impl<P: Protocol> std::fmt::Debug for ManagedPeer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedPeer")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("direction", &self.peer.direction())
            .finish()
    }
}

impl<P: Protocol> ManagedPeer<P> {
    pub(super) fn new(manager: PeerManager<P>, addr: Option<SocketAddr>, peer: Peer<P>) -> Self {
        ManagedPeer {
            manager,
            id: peer.id(),
            addr,
            peer,
        }
    }

    /// Its number ([`Peer::id`]).
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The address that identifies the node: the one dialed, or for an
    /// inbound peer its IP and the port it says it listens on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The other end of the connection.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.peer.remote_addr()
    }

    /// Who opened the connection.
    pub fn direction(&self) -> Direction {
        self.peer.direction()
    }

    /// The best height the peer has shown.
    pub fn height(&self) -> u32 {
        self.peer.height()
    }

    /// What is known about the remote.
    pub fn info(&self) -> PeerInfo<P> {
        self.peer.info()
    }

    /// Its per-command statistics.
    pub fn stats(&self) -> StatsSnapshot {
        self.peer.stats()
    }

    /// The tracing span its log lines are in.
    pub fn span(&self) -> tracing::Span {
        self.peer.span()
    }

    /// True once the peer has ended.
    pub fn is_closed(&self) -> bool {
        self.peer.is_closed()
    }

    /// Resolves once the peer has ended, with the reason.
    pub async fn closed(&self) -> DisconnectReason {
        self.peer.closed().await
    }

    /// Sends `msg` and returns once it is written. A request takes a
    /// request slot on this peer until its last answer; its answers reach
    /// the handler ([`Handler::handle_answer`](crate::peer::Handler::handle_answer))
    /// in the background, `addr` answers the address book too. Fails with
    /// [`ManagerError::Busy`] when the peer has no slot free for it. A
    /// request that fails after it was written is reported as a
    /// [`ManagerEvent::RequestFailed`](super::ManagerEvent::RequestFailed).
    pub async fn send(&self, msg: P::Message) -> Result<(), ManagerError> {
        self.send_reporting(msg, true).await
    }

    /// [`ManagedPeer::send`]; a failure after the request was written is
    /// reported as an event only when `report` (the manager's own requests,
    /// such as its `getaddr` to each new peer, fail quietly: the peer's
    /// departure is already an event).
    pub(super) async fn send_reporting(
        &self,
        msg: P::Message,
        report: bool,
    ) -> Result<(), ManagerError> {
        let Some(kind) = request_kind::<P>(&msg) else {
            return self.peer.send(msg).await.map_err(ManagerError::Peer);
        };
        let mut lease = self.lease(kind).await?;
        lease.counted = report;
        let answers = self
            .peer
            .request_answers(msg, None)
            .await
            .map_err(ManagerError::Peer)?;
        let manager = self.manager.clone();
        self.manager.inner.spawn(async move {
            match manager.hand_over(kind, answers, lease).await {
                Err(error) if report => manager.request_failed(kind, &ManagerError::Peer(error)),
                Err(error) => tracing::debug!(request = kind.command(), %error, "request failed"),
                Ok(()) => {}
            }
        });
        Ok(())
    }

    /// Sends a request and returns all its answers, as many as the request
    /// contract says the remote owes; the request holds a slot on this peer
    /// meanwhile. Fails with [`ManagerError::Busy`] when the peer has no
    /// slot free, and with [`PeerError::NoAnswer`] for a message that is
    /// not a request.
    pub async fn request(&self, msg: P::Message) -> Result<Vec<P::Message>, ManagerError> {
        let limit = self.manager.config().max_in_flight_per_kind;
        self.request_within(msg, limit).await
    }

    /// [`ManagedPeer::request`] with its own allowance: it takes a slot when
    /// fewer than `limit` requests of its kind are outstanding on the peer
    /// (the block pipeline keeps its next range on the way while the peer
    /// sends the one before). The slots it takes count for routing like any
    /// other.
    pub(crate) async fn request_within(
        &self,
        msg: P::Message,
        limit: u32,
    ) -> Result<Vec<P::Message>, ManagerError> {
        let mut all = Vec::new();
        self.request_each_within(msg, limit, usize::MAX, |answers| all.extend(answers))
            .await?;
        Ok(all)
    }

    /// [`ManagedPeer::request_within`], the answers handed to `each` in
    /// groups as they arrive, a group as soon as its frames reach
    /// `group_bytes`, the rest at the end: at most `group_bytes` and one
    /// answer are held here. Answers that came before an error are handed
    /// over before it is returned.
    pub(crate) async fn request_each_within(
        &self,
        msg: P::Message,
        limit: u32,
        group_bytes: usize,
        mut each: impl FnMut(Vec<P::Message>),
    ) -> Result<(), ManagerError> {
        let Some(kind) = request_kind::<P>(&msg) else {
            let command = P::command_name(&msg);
            return Err(ManagerError::Peer(PeerError::NoAnswer(command)));
        };
        let lease = self.lease_within(kind, limit).await?;
        let answered = async {
            let mut answers = self.peer.request_answers(msg, None).await?;
            let (mut came, mut bytes) = (Vec::new(), 0);
            let mut failed = None;
            while let Some(answer) = answers.next().await {
                match answer {
                    Ok(message) => {
                        bytes += P::frame_size(&message);
                        came.push(message);
                    }
                    Err(e) => failed = Some(e),
                }
                if bytes >= group_bytes {
                    each(std::mem::take(&mut came));
                    bytes = 0;
                }
            }
            if !came.is_empty() {
                each(came);
            }
            failed.map_or(Ok(()), Err)
        }
        .await;
        self.manager.settle(&lease, answered)
    }

    /// Pings and returns the round trip (zero on NEO Legacy, whose nodes
    /// need not answer); the ping holds a slot on this peer meanwhile.
    pub async fn ping(&self) -> Result<Duration, ManagerError> {
        let lease = self.lease(RequestKind::Ping).await?;
        let rtt = self.peer.ping().await;
        self.manager.settle(&lease, rtt)
    }

    /// Disconnects the peer ([`DisconnectReason::Requested`]); it then
    /// leaves the manager by itself.
    pub fn disconnect(&self) {
        self.peer.disconnect();
    }

    /// Adds misbehaviour points to the peer's address (banned past the
    /// threshold); see [`PeerManager::report`].
    pub fn report(&self, points: u32, why: &str) -> bool {
        self.manager.report(self.id, points, why)
    }

    /// A request slot of `kind` on this peer.
    async fn lease(&self, kind: RequestKind) -> Result<super::request::Lease<P>, ManagerError> {
        let limit = self.manager.config().max_in_flight_per_kind;
        self.lease_within(kind, limit).await
    }

    /// A request slot of `kind` on this peer, if fewer than `limit` are taken.
    async fn lease_within(
        &self,
        kind: RequestKind,
        limit: u32,
    ) -> Result<super::request::Lease<P>, ManagerError> {
        match self.manager.inner.lease_on(self.id, kind, limit) {
            Ok(lease) => Ok(lease),
            // Not registered: the peer has left (or is leaving).
            Err(None) => Err(ManagerError::Peer(PeerError::Disconnected(
                self.peer.closed().await,
            ))),
            Err(Some(in_flight)) => Err(ManagerError::Busy {
                id: self.id,
                kind,
                in_flight,
            }),
        }
    }
}

/// The request `msg` is, if it is one.
fn request_kind<P: Protocol>(msg: &P::Message) -> Option<RequestKind> {
    match P::obligation(msg, None, u32::MAX) {
        Obligation::Nothing => None,
        Obligation::Beyond { kind, .. } | Obligation::Answers(Expected { kind, .. }) => Some(kind),
    }
}
