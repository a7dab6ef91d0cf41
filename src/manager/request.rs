//! Routing a request to a peer, and trying it again elsewhere.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_io::Timer;
use futures_lite::future;

use super::routing::{self, Candidate};
use super::{Inner, ManagerError, ManagerEvent, PeerId, PeerManager, kind_index};
use crate::peer::{DisconnectReason, Peer, PeerError};
use crate::protocol::{Legacy, N3, Protocol, RequestKind};
use crate::wire::{UInt256, legacy, n3};

/// A request slot taken on one peer; given back when dropped.
struct Lease<P: Protocol> {
    inner: Arc<Inner<P>>,
    id: PeerId,
    kind: RequestKind,
    peer: Peer<P>,
    started: Instant,
}

impl<P: Protocol> Lease<P> {
    /// The request was answered: the peer served it in this time.
    fn answered(&self) {
        let elapsed = self.started.elapsed();
        let mut reg = self.inner.lock();
        if let Some(e) = reg.peers.get_mut(&self.id) {
            e.served += 1;
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
        | PeerError::UnexpectedAnswer(_) => Retry::Elsewhere,
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
        reg.clock += 1;
        let clock = reg.clock;
        let e = reg.peers.get_mut(&id)?;
        e.in_flight[k] += 1;
        e.last_used = clock;
        Some(Lease {
            inner: self.clone(),
            id,
            kind,
            peer: e.peer.clone(),
            started: Instant::now(),
        })
    }
}

impl<P: Protocol> PeerManager<P> {
    /// Routes a request: `call` runs on the best peer for `kind` at least
    /// `min_height` high, and again on another peer when that peer
    /// disconnects, stalls, is too busy or answers wrongly, up to
    /// [`ManagerConfig::max_attempts`](super::ManagerConfig::max_attempts) peers. Returns the first success or
    /// one error: the caller always gets exactly one result.
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
        let attempts = self.inner.config.max_attempts;
        self.request_bounded(kind, min_height, attempts, call).await
    }

    async fn request_bounded<T, F, Fut>(
        &self,
        kind: RequestKind,
        min_height: u32,
        max_attempts: u32,
        mut call: F,
    ) -> Result<T, ManagerError>
    where
        F: FnMut(Peer<P>) -> Fut,
        Fut: Future<Output = Result<T, PeerError>>,
    {
        let mut excluded = Vec::new();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let lease = self.inner.acquire(kind, min_height, &excluded).await?;
            let result = call(lease.peer.clone()).await;
            match result {
                Ok(value) => {
                    lease.answered();
                    return Ok(value);
                }
                Err(error) => {
                    if let PeerError::UnexpectedAnswer(what) = &error {
                        let addr = self.inner.addr_of(lease.id);
                        self.inner
                            .penalise(addr, self.inner.config.penalties.bad_answer, what);
                    }
                    excluded.push(lease.id);
                    drop(lease);
                    match classify(&error) {
                        Retry::Elsewhere if attempts < max_attempts => {}
                        Retry::Elsewhere => {
                            return Err(ManagerError::Exhausted {
                                kind,
                                attempts,
                                last: error,
                            });
                        }
                        Retry::Stop => return Err(ManagerError::Peer(error)),
                    }
                }
            }
        }
    }

    /// Sends a request that has one answer and returns once it is written;
    /// the answer reaches the handler. If the peer leaves before answering,
    /// the request is retried on other peers in the background, and the
    /// answer still reaches the handler exactly once; if every attempt
    /// fails, a [`ManagerEvent::RequestFailed`] says so.
    pub async fn dispatch(
        &self,
        kind: RequestKind,
        min_height: u32,
        msg: P::Message,
    ) -> Result<(), ManagerError> {
        let mut excluded = Vec::new();
        let mut attempts = 0;
        let (lease, answers) = loop {
            attempts += 1;
            let lease = self.inner.acquire(kind, min_height, &excluded).await?;
            match lease.peer.request_answers(msg.clone(), 1).await {
                Ok(answers) => break (lease, answers),
                Err(error) => {
                    excluded.push(lease.id);
                    drop(lease);
                    match classify(&error) {
                        Retry::Elsewhere if attempts < self.inner.config.max_attempts => {}
                        Retry::Elsewhere => {
                            return Err(ManagerError::Exhausted {
                                kind,
                                attempts,
                                last: error,
                            });
                        }
                        Retry::Stop => return Err(ManagerError::Peer(error)),
                    }
                }
            }
        };
        let manager = self.clone();
        self.inner.spawn(async move {
            let answered = match answers.recv().await {
                Ok(answer) => {
                    lease.answered();
                    Ok((lease.peer.clone(), answer))
                }
                Err(_) => {
                    drop(lease);
                    let left = manager.inner.config.max_attempts.saturating_sub(attempts);
                    manager.retry_detached(kind, min_height, msg, left).await
                }
            };
            match answered {
                Ok((peer, answer)) => (manager.inner.deliver)(peer, answer).await,
                Err(error) => {
                    tracing::warn!(request = kind.command(), %error, "request failed");
                    manager.inner.emit(ManagerEvent::RequestFailed {
                        kind,
                        error: error.to_string(),
                    });
                }
            }
        });
        Ok(())
    }

    /// The background part of [`PeerManager::dispatch`]: up to `left` more
    /// attempts; the answer and the peer that gave it.
    async fn retry_detached(
        &self,
        kind: RequestKind,
        min_height: u32,
        msg: P::Message,
        left: u32,
    ) -> Result<(Peer<P>, P::Message), ManagerError> {
        if left == 0 {
            return Err(ManagerError::Exhausted {
                kind,
                attempts: self.inner.config.max_attempts,
                last: PeerError::Disconnected(DisconnectReason::RemoteClosed),
            });
        }
        self.request_bounded(kind, min_height, left, |peer| {
            let msg = msg.clone();
            async move { peer.request(msg).await.map(|answer| (peer, answer)) }
        })
        .await
    }
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
        self.dispatch(RequestKind::Headers, index_start, msg).await
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
    /// written. The blocks reach the handler's `on_block`.
    pub async fn request_blocks(&self, index_start: u32, count: i16) -> Result<(), ManagerError> {
        let msg = n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload { index_start, count });
        let lease = self
            .inner
            .acquire(RequestKind::BlocksByIndex, index_start, &[])
            .await?;
        lease.peer.send(msg).await.map_err(ManagerError::Peer)
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
        self.request(RequestKind::Headers, min_height, |peer| async move {
            peer.get_headers(hash_start, hash_stop).await
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
        self.dispatch(RequestKind::Headers, min_height, msg).await
    }

    /// The block hashes after `hash_start` (`getblocks`, up to 500), from
    /// the best peer at least `min_height` high.
    pub async fn get_block_hashes(
        &self,
        hash_start: UInt256,
        min_height: u32,
    ) -> Result<Vec<UInt256>, ManagerError> {
        self.request(RequestKind::BlockHashes, min_height, |peer| async move {
            let answer = peer
                .request(legacy::Message::GetBlocks(legacy::GetBlocksPayload {
                    hash_start: vec![hash_start],
                    hash_stop: UInt256::ZERO,
                }))
                .await?;
            match answer {
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
        let lease = self
            .inner
            .acquire(RequestKind::BlockHashes, min_height, &[])
            .await?;
        lease
            .peer
            .request_blocks(hash_start)
            .await
            .map_err(ManagerError::Peer)
    }
}
