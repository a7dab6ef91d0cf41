//! Routing a request to a peer, and trying it again elsewhere.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_io::Timer;
use futures_lite::future;

use super::registry::Registry;
use super::routing::{self, Candidate};
use super::{Inner, ManagerError, ManagerEvent, PeerId, PeerManager, kind_index};
use crate::peer::{Answers, DisconnectReason, Peer, PeerError};
use crate::protocol::{Legacy, N3, Protocol, RequestKind, contract};
use crate::wire::{UInt256, legacy, n3};

/// A request slot taken on one peer; given back when dropped.
pub(super) struct Lease<P: Protocol> {
    inner: Arc<Inner<P>>,
    id: PeerId,
    kind: RequestKind,
    peer: Peer<P>,
    started: Instant,
    /// Whether an answer counts as served for the peer (the manager's own
    /// requests, such as its `getaddr`, do not).
    pub(super) counted: bool,
}

impl<P: Protocol> Lease<P> {
    /// The request was answered: the peer served it in this time.
    fn answered(&self) {
        let elapsed = self.started.elapsed();
        let mut reg = self.inner.lock();
        if let Some(e) = reg.peers.get_mut(&self.id) {
            e.served += u64::from(self.counted);
            // A smoothed round trip, weighting the last answer by 1/4.
            e.rtt = Some(e.rtt.map_or(elapsed, |r| (r * 3 + elapsed) / 4));
        }
    }
}

impl<P: Protocol> Drop for Lease<P> {
    fn drop(&mut self) {
        let mut reg = self.inner.lock();
        if let Some(e) = reg.peers.get_mut(&self.id) {
            let slot = &mut e.in_flight[kind_index(self.kind)];
            *slot = slot.saturating_sub(1);
        }
        drop(reg);
        self.inner.changed.notify(usize::MAX);
    }
}

/// What to do after a failed attempt.
enum Retry {
    /// Try another peer (this one is excluded).
    Elsewhere,
    /// Give up: no other peer would do better.
    Stop,
}

fn classify(error: &PeerError) -> Retry {
    match error {
        PeerError::Disconnected(_)
        | PeerError::TooManyPending(_)
        | PeerError::UnexpectedAnswer(_)
        | PeerError::Unanswered { .. } => Retry::Elsewhere,
        _ => Retry::Stop,
    }
}

impl<P: Protocol> Inner<P> {
    /// Takes a request slot on the best peer for `kind`, waiting (up to the
    /// route timeout) while every fitting peer is busy.
    async fn acquire(
        self: &Arc<Self>,
        kind: RequestKind,
        min_height: u32,
        excluded: &[PeerId],
    ) -> Result<Lease<P>, ManagerError> {
        let deadline = Instant::now() + self.config.route_timeout;
        loop {
            if self.is_shutting_down() {
                return Err(ManagerError::Shutdown);
            }
            let listener = self.changed.listen();
            if let Some(lease) = self.try_acquire(kind, min_height, excluded) {
                return Ok(lease);
            }
            let timed_out = future::or(
                async {
                    listener.await;
                    false
                },
                async {
                    Timer::at(deadline).await;
                    true
                },
            )
            .await;
            if timed_out {
                return Err(ManagerError::NoAvailablePeers { kind, min_height });
            }
        }
    }

    fn try_acquire(
        self: &Arc<Self>,
        kind: RequestKind,
        min_height: u32,
        excluded: &[PeerId],
    ) -> Option<Lease<P>> {
        let k = kind_index(kind);
        let mut reg = self.lock();
        let candidates = reg
            .peers
            .iter()
            .filter(|(_, e)| !e.peer.is_closed())
            .map(|(&id, e)| Candidate {
                id,
                height: e.peer.height(),
                in_flight_kind: e.in_flight[k],
                in_flight: e.in_flight.iter().sum(),
                rtt: e.rtt,
                last_used: e.last_used,
            });
        let id = routing::choose(
            candidates,
            min_height,
            self.config.max_in_flight_per_kind,
            excluded,
        )?;
        self.take_slot(&mut reg, id, kind)
    }

    /// Takes a slot of `kind` on registered peer `id`, which the caller
    /// found free; `None` when `id` is not registered.
    fn take_slot(
        self: &Arc<Self>,
        reg: &mut Registry<P>,
        id: PeerId,
        kind: RequestKind,
    ) -> Option<Lease<P>> {
        reg.clock += 1;
        let clock = reg.clock;
        let e = reg.peers.get_mut(&id)?;
        e.in_flight[kind_index(kind)] += 1;
        e.last_used = clock;
        Some(Lease {
            inner: self.clone(),
            id,
            kind,
            peer: e.peer.clone(),
            started: Instant::now(),
            counted: true,
        })
    }
}

/// Which peers a request has tried.
struct Attempts {
    tried: Vec<PeerId>,
    max: u32,
}

impl<P: Protocol> Inner<P> {
    /// Takes a request slot of `kind` on peer `id` itself, when fewer than
    /// `limit` requests of that kind are outstanding on it. Fails with
    /// `None` when the peer is not registered, or with its requests of that
    /// kind outstanding when it has no slot free.
    pub(super) fn lease_on(
        self: &Arc<Self>,
        id: PeerId,
        kind: RequestKind,
        limit: u32,
    ) -> Result<Lease<P>, Option<u32>> {
        let mut reg = self.lock();
        let in_flight = reg.peers.get(&id).ok_or(None)?.in_flight[kind_index(kind)];
        if in_flight >= limit {
            return Err(Some(in_flight));
        }
        self.take_slot(&mut reg, id, kind).ok_or(None)
    }

    /// Hands one answer of a routed request to the handler; `addr`
    /// answers feed the address book first.
    async fn hand_answer(&self, lease: &Lease<P>, answer: P::Message) {
        if let Some(addrs) = P::addresses(&answer) {
            self.learn(&lease.peer, &addrs);
        }
        (self.deliver)(lease.peer.clone(), answer, lease.kind).await;
    }
}

impl<P: Protocol> PeerManager<P> {
    /// The end of a request made on `lease`: an answer counts for the
    /// peer's round trip, a wrong answer costs it points.
    pub(super) fn settle<T>(
        &self,
        lease: &Lease<P>,
        outcome: Result<T, PeerError>,
    ) -> Result<T, ManagerError> {
        match outcome {
            Ok(value) => {
                lease.answered();
                Ok(value)
            }
            Err(error) => {
                self.blame(lease.id, &error);
                Err(ManagerError::Peer(error))
            }
        }
    }

    /// A wrong answer costs peer `id` points.
    fn blame(&self, id: PeerId, error: &PeerError) {
        if let PeerError::UnexpectedAnswer(what) = error {
            let addr = self.inner.addr_of(id);
            self.inner
                .penalise(addr, self.inner.config.penalties.bad_answer, what);
        }
    }

    /// Hands every answer of a request made on `lease` to the handler, and
    /// gives the slot back at the end.
    pub(super) async fn hand_over(
        &self,
        kind: RequestKind,
        mut answers: Answers<P>,
        lease: Lease<P>,
    ) -> Result<(), PeerError> {
        debug_assert_eq!(kind, lease.kind);
        while let Some(answer) = answers.next().await {
            self.inner.hand_answer(&lease, answer?).await;
        }
        lease.answered();
        Ok(())
    }

    /// Says that a request the caller no longer waits for failed.
    pub(super) fn request_failed(&self, kind: RequestKind, error: &ManagerError) {
        tracing::warn!(request = kind.command(), %error, "request failed");
        self.inner.emit(ManagerEvent::RequestFailed {
            kind,
            error: error.to_string(),
        });
    }

    /// Routes a request: `call` runs on the best peer for `kind` at least
    /// `min_height` high, and again on another peer when that peer
    /// disconnects, stalls, is too busy, has nothing for it or answers
    /// wrongly, up to
    /// [`ManagerConfig::max_attempts`](super::ManagerConfig::max_attempts)
    /// peers. Returns the first success or one error: the caller always gets
    /// exactly one result.
    pub async fn request<T, F, Fut>(
        &self,
        kind: RequestKind,
        min_height: u32,
        call: F,
    ) -> Result<T, ManagerError>
    where
        F: FnMut(Peer<P>) -> Fut,
        Fut: Future<Output = Result<T, PeerError>>,
    {
        let mut attempts = Attempts {
            tried: Vec::new(),
            max: self.inner.config.max_attempts,
        };
        let (value, lease) = self.route(kind, min_height, &mut attempts, call).await?;
        lease.answered();
        Ok(value)
    }

    /// The one routing path: runs `call` on the best peer not tried yet,
    /// then on the next, until one succeeds or the attempts run out. Returns
    /// the value and the request slot, still held, on the peer that gave it.
    async fn route<T, F, Fut>(
        &self,
        kind: RequestKind,
        min_height: u32,
        attempts: &mut Attempts,
        mut call: F,
    ) -> Result<(T, Lease<P>), ManagerError>
    where
        F: FnMut(Peer<P>) -> Fut,
        Fut: Future<Output = Result<T, PeerError>>,
    {
        let mut last = PeerError::Disconnected(DisconnectReason::RemoteClosed);
        while (attempts.tried.len() as u32) < attempts.max {
            let lease = self
                .inner
                .acquire(kind, min_height, &attempts.tried)
                .await?;
            attempts.tried.push(lease.id);
            let error = match call(lease.peer.clone()).await {
                Ok(value) => return Ok((value, lease)),
                Err(error) => error,
            };
            self.blame(lease.id, &error);
            drop(lease);
            match classify(&error) {
                Retry::Elsewhere => last = error,
                Retry::Stop => return Err(ManagerError::Peer(error)),
            }
        }
        Err(ManagerError::Exhausted {
            kind,
            attempts: attempts.tried.len() as u32,
            last,
        })
    }

    /// Sends a request and returns once it is written; its answers reach the
    /// handler ([`Handler::handle_answer`](crate::peer::Handler::handle_answer)),
    /// each exactly once. If the peer leaves or stalls before the last
    /// answer, what is still missing is asked of other peers in the
    /// background (`rest` builds that request from the original and the
    /// number of answers delivered; `None`: nothing is missing). If every
    /// attempt fails, a [`ManagerEvent::RequestFailed`] says so.
    pub async fn dispatch(
        &self,
        kind: RequestKind,
        min_height: u32,
        msg: P::Message,
        rest: fn(&P::Message, u32) -> Option<P::Message>,
    ) -> Result<(), ManagerError> {
        let mut attempts = Attempts {
            tried: Vec::new(),
            max: self.inner.config.max_attempts,
        };
        let ask = |peer: Peer<P>| {
            let msg = msg.clone();
            async move { peer.request_answers(msg, Some(min_height)).await }
        };
        let (answers, lease) = self.route(kind, min_height, &mut attempts, ask).await?;
        let manager = self.clone();
        self.inner.spawn(async move {
            let failed = manager
                .deliver_all(kind, min_height, msg, rest, attempts, answers, lease)
                .await;
            if let Err(error) = failed {
                manager.request_failed(kind, &error);
            }
        });
        Ok(())
    }

    /// The background part of [`PeerManager::dispatch`]: hands every answer
    /// to the handler as it comes, and asks other peers for the rest when
    /// the request ends early.
    #[allow(clippy::too_many_arguments)]
    async fn deliver_all(
        &self,
        kind: RequestKind,
        min_height: u32,
        msg: P::Message,
        rest: fn(&P::Message, u32) -> Option<P::Message>,
        mut attempts: Attempts,
        mut answers: Answers<P>,
        mut lease: Lease<P>,
    ) -> Result<(), ManagerError> {
        let mut delivered = 0u32;
        loop {
            match answers.next().await {
                Some(Ok(answer)) => {
                    delivered += 1;
                    self.inner.hand_answer(&lease, answer).await;
                }
                None => {
                    lease.answered();
                    return Ok(());
                }
                Some(Err(error)) => {
                    drop(lease);
                    let Some(missing) = rest(&msg, delivered) else {
                        return Ok(());
                    };
                    if let Retry::Stop = classify(&error) {
                        return Err(ManagerError::Peer(error));
                    }
                    let ask = |peer: Peer<P>| {
                        let missing = missing.clone();
                        async move { peer.request_answers(missing, Some(min_height)).await }
                    };
                    (answers, lease) = self.route(kind, min_height, &mut attempts, ask).await?;
                }
            }
        }
    }
}

/// The `rest` of a request with one answer: all of it, until it came.
pub(super) fn whole<M: Clone>(msg: &M, delivered: u32) -> Option<M> {
    (delivered == 0).then(|| msg.clone())
}

impl PeerManager<N3> {
    /// `count` headers from `index_start` (at most 2000) from the best peer
    /// that has them, retried elsewhere when a peer fails. The headers are
    /// checked to start at `index_start` and follow each other by index.
    pub async fn get_headers(
        &self,
        index_start: u32,
        count: i16,
    ) -> Result<Vec<n3::Header>, ManagerError> {
        self.request(RequestKind::Headers, index_start, |peer| async move {
            let headers = peer.get_headers(index_start, count).await?;
            let in_order = headers
                .iter()
                .enumerate()
                .all(|(i, h)| u64::from(h.index) == u64::from(index_start) + i as u64);
            if headers.is_empty() || !in_order {
                return Err(PeerError::UnexpectedAnswer(
                    "headers not from the index asked",
                ));
            }
            Ok(headers)
        })
        .await
    }

    /// Asks the best peer that has them for `count` headers from
    /// `index_start`; returns once the request is written. The headers
    /// reach the handler's `on_headers` exactly once (see
    /// [`PeerManager::dispatch`]).
    pub async fn request_headers(&self, index_start: u32, count: i16) -> Result<(), ManagerError> {
        let msg = n3::Message::GetHeaders(n3::GetBlockByIndexPayload { index_start, count });
        self.dispatch(RequestKind::Headers, index_start, msg, whole)
            .await
    }

    /// Up to `count` blocks (at most 500) from `index_start`, from the best
    /// peer that has them, retried elsewhere when a peer fails.
    pub async fn get_blocks(
        &self,
        index_start: u32,
        count: i16,
    ) -> Result<Vec<n3::Block>, ManagerError> {
        self.request(RequestKind::BlocksByIndex, index_start, |peer| async move {
            let blocks = peer.get_blocks_by_index(index_start, count).await?;
            if blocks.first().is_none_or(|b| b.header.index != index_start) {
                return Err(PeerError::UnexpectedAnswer(
                    "blocks not from the index asked",
                ));
            }
            Ok(blocks)
        })
        .await
    }

    /// Asks the best peer that has them for `count` blocks from
    /// `index_start` (`getblockbyindex`); returns once the request is
    /// written. The blocks reach the handler's `on_block`, each exactly
    /// once: if the peer leaves midway, the blocks still missing are asked
    /// of another (see [`PeerManager::dispatch`]).
    pub async fn request_blocks(&self, index_start: u32, count: i16) -> Result<(), ManagerError> {
        let msg = n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload { index_start, count });
        self.dispatch(
            RequestKind::BlocksByIndex,
            index_start,
            msg,
            |msg, delivered| {
                let n3::Message::GetBlockByIndex(p) = msg else {
                    return None;
                };
                let asked = contract::requested(p.count, n3::MAX_BLOCKS_PER_REQUEST) as u32;
                let left = asked.checked_sub(delivered).filter(|&n| n > 0)?;
                Some(n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
                    index_start: p.index_start.checked_add(delivered)?,
                    count: i16::try_from(left).ok()?,
                }))
            },
        )
        .await
    }
}

impl PeerManager<Legacy> {
    /// The headers after `hash_start` up to `hash_stop` (zero: up to 2000),
    /// from the best peer at least `min_height` high, retried elsewhere when
    /// a peer fails.
    pub async fn get_headers(
        &self,
        hash_start: UInt256,
        hash_stop: UInt256,
        min_height: u32,
    ) -> Result<Vec<legacy::Header>, ManagerError> {
        let msg = legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![hash_start],
            hash_stop,
        });
        self.request(RequestKind::Headers, min_height, |peer| {
            let msg = msg.clone();
            async move {
                match first_answer(&peer, msg, min_height).await? {
                    legacy::Message::Headers(h) => Ok(h.headers),
                    other => Err(PeerError::UnexpectedAnswer(other.command_name())),
                }
            }
        })
        .await
    }

    /// Asks the best peer at least `min_height` high for the headers after
    /// `hash_start`; returns once the request is written. The headers reach
    /// the handler's `on_headers` exactly once (see
    /// [`PeerManager::dispatch`]).
    pub async fn request_headers(
        &self,
        hash_start: UInt256,
        hash_stop: UInt256,
        min_height: u32,
    ) -> Result<(), ManagerError> {
        let msg = legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![hash_start],
            hash_stop,
        });
        self.dispatch(RequestKind::Headers, min_height, msg, whole)
            .await
    }

    /// The block hashes after `hash_start` (`getblocks`, up to 500), from
    /// the best peer at least `min_height` high.
    pub async fn get_block_hashes(
        &self,
        hash_start: UInt256,
        min_height: u32,
    ) -> Result<Vec<UInt256>, ManagerError> {
        self.request(RequestKind::BlockHashes, min_height, |peer| async move {
            let msg = legacy::Message::GetBlocks(legacy::GetBlocksPayload {
                hash_start: vec![hash_start],
                hash_stop: UInt256::ZERO,
            });
            match first_answer(&peer, msg, min_height).await? {
                legacy::Message::Inv(inv) => Ok(inv.hashes),
                other => Err(PeerError::UnexpectedAnswer(other.command_name())),
            }
        })
        .await
    }

    /// Asks the best peer for the blocks after `hash_start` (`getblocks`);
    /// the `inv` reaches the handler.
    pub async fn request_blocks(
        &self,
        hash_start: UInt256,
        min_height: u32,
    ) -> Result<(), ManagerError> {
        let msg = legacy::Message::GetBlocks(legacy::GetBlocksPayload {
            hash_start: vec![hash_start],
            hash_stop: UInt256::ZERO,
        });
        self.dispatch(RequestKind::BlockHashes, min_height, msg, whole)
            .await
    }
}

/// The first answer of a Legacy request that names a hash, whose height
/// makes the remote owe the answer when it is at least `reach` high.
async fn first_answer(
    peer: &Peer<Legacy>,
    msg: legacy::Message,
    reach: u32,
) -> Result<legacy::Message, PeerError> {
    let mut answers = peer.request_answers(msg, Some(reach)).await?;
    answers
        .next()
        .await
        .unwrap_or(Err(PeerError::NoAnswer("request")))
}
