//! A ready-made handler that serves a [`ChainStore`] to peers.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{Chain, ChainStore, Serve};
use crate::peer::{Handler, Peer};
use crate::protocol::GossipAddr;

/// Answers `getheaders`, `getblocks`, `getblockbyindex` and `getdata` from a
/// shared chain store ([`Serve::answer`]), and `getaddr` from a list of
/// addresses (no answer while the list is empty: an empty `addr` is refused
/// by the reference nodes); ignores everything else.
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
    protocol: PhantomData<fn() -> P>,
}

impl<P: Serve, S: ChainStore<P> + ?Sized> Clone for ChainServer<P, S> {
    fn clone(&self) -> Self {
        ChainServer {
            store: self.store.clone(),
            addresses: self.addresses.clone(),
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
            .finish()
    }
}

impl<P: Serve, S: ChainStore<P> + ?Sized> ChainServer<P, S> {
    /// A server of `store` that knows no addresses.
    pub fn new(store: Arc<S>) -> Self {
        ChainServer {
            store,
            addresses: Arc::from(Vec::new()),
            protocol: PhantomData,
        }
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
        for answer in P::answer(&*self.store, &msg) {
            if peer.send(answer).await.is_err() {
                break;
            }
        }
    }
}
