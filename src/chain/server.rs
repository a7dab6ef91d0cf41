//! A ready-made handler that serves a [`ChainStore`] to peers.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{Chain, ChainStore, FrameCache, Part, Serve};
use crate::peer::{Handler, Peer};
use crate::protocol::GossipAddr;

/// Answers `getheaders`, `getblocks`, `getblockbyindex` and `getdata` from a
/// shared chain store ([`Serve::answer`]), and `getaddr` from a list of
/// addresses (no answer while the list is empty: an empty `addr` is refused
/// by the reference nodes); ignores everything else.
///
/// The answers many peers ask for (`headers` ranges, blocks: see
/// [`Serve::plan`]) are encoded once for all the peers that share an
/// encoding, kept in a bounded [`FrameCache`] shared by every clone of the
/// server, and queued on each peer as the same bytes
/// ([`Peer::send_frame`]): 200 peers syncing from genesis cost one copy of
/// each answer.
///
/// The store is an in-memory [`Chain`] by default, or any [`ChainStore`]
/// (a node's own database). It may grow while it is served: every answer
/// reads what the store holds when the request is handled. Keep the height
/// the handshake announces current by reading it from the store, as below.
///
/// ```no_run
/// # async fn demo(conn: async_io::Async<std::net::TcpStream>) {
/// use std::sync::Arc;
/// use neo_peer::chain::{ChainServer, N3Chain, Synthetic};
/// use neo_peer::executor::SmolGlobal;
/// use neo_peer::peer::{Direction, LocalConfig, Peer};
/// use neo_peer::protocol::N3;
///
/// let chain = Arc::new(N3Chain::synthetic(&Synthetic { blocks: 1000, ..Synthetic::default() }));
/// let mut config = LocalConfig::new(neo_peer::wire::n3::PRIVNET_MAGIC);
/// let served = chain.clone();
/// config.identity.current_height = Arc::new(move || served.height());
/// let peer: Peer<N3> = Peer::new(conn, Direction::Inbound, config, ChainServer::new(chain.clone()), SmolGlobal);
/// peer.run().await.unwrap();
/// // Meanwhile, `chain.push_block(..)` appends what the node downloads.
/// # }
/// ```
pub struct ChainServer<P: Serve, S: ChainStore<P> + ?Sized = Chain<P>> {
    store: Arc<S>,
    addresses: Arc<[SocketAddr]>,
    frames: Arc<FrameCache>,
    protocol: PhantomData<fn() -> P>,
}

impl<P: Serve, S: ChainStore<P> + ?Sized> Clone for ChainServer<P, S> {
    fn clone(&self) -> Self {
        ChainServer {
            store: self.store.clone(),
            addresses: self.addresses.clone(),
            frames: self.frames.clone(),
            protocol: PhantomData,
        }
    }
}

impl<P: Serve, S: ChainStore<P> + ?Sized> fmt::Debug for ChainServer<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainServer")
            .field("protocol", &P::NAME)
            .field("height", &self.store.height())
            .field("addresses", &self.addresses)
            .field("frames", &self.frames)
            .finish()
    }
}

impl<P: Serve, S: ChainStore<P> + ?Sized> ChainServer<P, S> {
    /// A server of `store` that knows no addresses, with a frame cache of
    /// the default bounds ([`FrameCache::default`]).
    pub fn new(store: Arc<S>) -> Self {
        ChainServer {
            store,
            addresses: Arc::from(Vec::new()),
            frames: Arc::new(FrameCache::default()),
            protocol: PhantomData,
        }
    }

    /// The same server, with `frames` as its cache of encoded answers (to
    /// change its bounds, or to share one cache between servers of the same
    /// store).
    pub fn with_frame_cache(mut self, frames: Arc<FrameCache>) -> Self {
        self.frames = frames;
        self
    }

    /// Its cache of encoded answers.
    pub fn frames(&self) -> &Arc<FrameCache> {
        &self.frames
    }

    /// The same server, answering `getaddr` with (the first 200 of) `addresses`.
    pub fn with_addresses(mut self, addresses: Vec<SocketAddr>) -> Self {
        self.addresses = addresses.into();
        self
    }

    /// The store served.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }
}

impl<P: Serve + Sync, S: ChainStore<P> + ?Sized + 'static> Handler<P> for ChainServer<P, S> {
    async fn handle(&self, peer: &Peer<P>, msg: P::Message) {
        if P::is_get_addr(&msg) {
            let timestamp = crate::protocol::unix_seconds();
            let addrs: Vec<GossipAddr> = self
                .addresses
                .iter()
                .map(|&addr| GossipAddr {
                    addr,
                    timestamp,
                    services: 1,
                })
                .collect();
            if let Some(addr) = P::addr(&addrs) {
                let _ = peer.send(addr).await;
            }
            return;
        }
        let parts = P::plan(&*self.store, &msg);
        if parts.is_empty() {
            return;
        }
        let encoder = peer.encoder();
        for part in parts {
            let sent = match part {
                Part::Message(answer) => peer.send(answer).await,
                Part::Shared(shared) => {
                    let frame = self.frames.get_or_build(encoder.key(), shared, || {
                        let answer = P::build(&*self.store, &shared)?;
                        encoder
                            .encode(&answer)
                            .inspect_err(|e| tracing::debug!(error = %e, "answer not sent"))
                            .ok()
                    });
                    match frame {
                        Some(frame) => peer.send_frame(frame).await,
                        None => continue,
                    }
                }
            };
            if sent.is_err() {
                break;
            }
        }
    }
}
