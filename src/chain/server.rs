//! A ready-made handler that serves a [`Chain`] to peers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Chain, Generation};
use crate::peer::{Handler, Peer};
use crate::protocol::{Legacy, N3, Protocol};
use crate::wire::{legacy, n3};

/// A generation whose chain can answer requests (both generations can).
pub trait Serve: Protocol + Generation {
    /// The answers to `msg` (empty when it is not a request the chain answers).
    fn answer(chain: &Chain<Self>, msg: &Self::Message) -> Vec<Self::Message>;
    /// True for `getaddr`.
    fn is_get_addr(msg: &Self::Message) -> bool;
    /// An `addr` listing `addresses` (at most the protocol's 200; never empty).
    fn addr(addresses: &[SocketAddr]) -> Option<Self::Message>;
}

/// Most addresses in one `addr` (both generations).
const MAX_ADDR: usize = 200;

fn now_seconds() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

fn ipv6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

impl Serve for N3 {
    fn answer(chain: &Chain<N3>, msg: &n3::Message) -> Vec<n3::Message> {
        chain.answer(msg)
    }

    fn is_get_addr(msg: &n3::Message) -> bool {
        matches!(msg, n3::Message::GetAddr)
    }

    fn addr(addresses: &[SocketAddr]) -> Option<n3::Message> {
        let timestamp = now_seconds();
        let addresses: Vec<_> = addresses
            .iter()
            .take(MAX_ADDR)
            .map(|a| n3::NetworkAddressWithTime {
                timestamp,
                address: ipv6(a.ip()),
                // The dialable port travels in TcpServer; FullNode marks a relaying node.
                capabilities: vec![
                    n3::NodeCapability::TcpServer { port: a.port() },
                    n3::NodeCapability::FullNode { start_height: 0 },
                ],
            })
            .collect();
        (!addresses.is_empty()).then(|| n3::Message::Addr(n3::AddrPayload { addresses }))
    }
}

impl Serve for Legacy {
    fn answer(chain: &Chain<Legacy>, msg: &legacy::Message) -> Vec<legacy::Message> {
        chain.answer(msg)
    }

    fn is_get_addr(msg: &legacy::Message) -> bool {
        matches!(msg, legacy::Message::GetAddr)
    }

    fn addr(addresses: &[SocketAddr]) -> Option<legacy::Message> {
        let timestamp = now_seconds();
        let addresses: Vec<_> = addresses
            .iter()
            .take(MAX_ADDR)
            .map(|&a| legacy::NetworkAddressWithTime::new(timestamp, 1, a))
            .collect();
        (!addresses.is_empty()).then(|| legacy::Message::Addr(legacy::AddrPayload { addresses }))
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
/// config.start_height = Arc::new(move || height);
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
            if let Some(addr) = P::addr(&self.addresses) {
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
