//! A ready-made handler that serves a [`Chain`] to peers.

use std::sync::Arc;

use super::{Chain, Generation};
use crate::peer::{Handler, Peer};
use crate::protocol::{Legacy, N3, Protocol};
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
/// shared in-memory chain; ignores everything else.
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
/// config.start_height = Arc::new(move || height);
/// let peer: Peer<N3> = Peer::new(conn, Direction::Inbound, config, ChainServer::new(chain), SmolGlobal);
/// peer.run().await.unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct ChainServer<P: Serve> {
    chain: Arc<Chain<P>>,
}

impl<P: Serve> Clone for ChainServer<P> {
    fn clone(&self) -> Self {
        ChainServer {
            chain: self.chain.clone(),
        }
    }
}

impl<P: Serve> ChainServer<P> {
    /// A server of `chain`.
    pub fn new(chain: Arc<Chain<P>>) -> Self {
        ChainServer { chain }
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
        for answer in P::answer(&self.chain, &msg) {
            if peer.send(answer).await.is_err() {
                break;
            }
        }
    }
}
