//! A ready-made handler that serves a [`Chain`] to peers.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Chain, Generation};
use crate::peer::{Handler, Peer};
use crate::protocol::{GossipAddr, Legacy, N3, Protocol};
use crate::wire::{legacy, n3};

/// A generation whose chain can answer requests (both generations can).
pub trait Serve: Protocol + Generation {
    /// The answers to `msg` (empty when it is not a request the chain answers).
    fn answer(chain: &Chain<Self>, msg: &Self::Message) -> Vec<Self::Message>;
}

impl Serve for N3 {
    fn answer(chain: &Chain<N3>, msg: &n3::Message) -> Vec<n3::Message> {
        chain.answer(msg)
    }
}

impl Serve for Legacy {
    fn answer(chain: &Chain<Legacy>, msg: &legacy::Message) -> Vec<legacy::Message> {
        chain.answer(msg)
    }
}

/// Answers `getheaders`, `getblocks`, `getblockbyindex` and `getdata` from a
/// shared in-memory chain, and `getaddr` from a list of addresses (no answer
/// while the list is empty: an empty `addr` is refused by the reference
/// nodes); ignores everything else.
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
/// let height = chain.height();
/// config.identity.current_height = Arc::new(move || height);
/// let peer: Peer<N3> = Peer::new(conn, Direction::Inbound, config, ChainServer::new(chain), SmolGlobal);
/// peer.run().await.unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct ChainServer<P: Serve> {
    chain: Arc<Chain<P>>,
    addresses: Arc<[SocketAddr]>,
}

impl<P: Serve> Clone for ChainServer<P> {
    fn clone(&self) -> Self {
        ChainServer {
            chain: self.chain.clone(),
            addresses: self.addresses.clone(),
        }
    }
}

impl<P: Serve> ChainServer<P> {
    /// A server of `chain` that knows no addresses.
    pub fn new(chain: Arc<Chain<P>>) -> Self {
        ChainServer {
            chain,
            addresses: Arc::from(Vec::new()),
        }
    }

    /// The same server, answering `getaddr` with (the first 200 of) `addresses`.
    pub fn with_addresses(mut self, addresses: Vec<SocketAddr>) -> Self {
        self.addresses = addresses.into();
        self
    }

    /// The chain served.
    pub fn chain(&self) -> &Arc<Chain<P>> {
        &self.chain
    }
}

impl<P: Serve + Sync> Handler<P> for ChainServer<P>
where
    Chain<P>: Send + Sync,
{
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
        for answer in P::answer(&self.chain, &msg) {
            if peer.send(answer).await.is_err() {
                break;
            }
        }
    }
}
