//! Many peers syncing headers at once from one serving node, then its
//! shutdown.
//!
//! `cargo bench --bench many_syncs` starts one node (a `PeerManager` serving
//! a synthetic N3 chain of HEADERS blocks, default 10,000) and PEERS client
//! peers (default 1,000) that each fetch the whole header chain with
//! `getheaders` (2000 at a time) at the same moment. It prints the aggregate
//! headers per second, the fastest, median and slowest peer, then shuts the
//! node down and prints how long that took, the tasks still running (0 when
//! every peer task ended) and the connections the clients saw close. Mind
//! `ulimit -n` (two sockets per peer).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{ChainServer, N3Chain, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::{ManagerConfig, PeerManager};
use neo_peer::peer::{Direction, DisconnectReason, IgnoreAll, LocalConfig, Peer};
use neo_peer::protocol::N3;

const NET: u32 = 56753;

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let peers = env("PEERS", 1000) as usize;
    let blocks = env("HEADERS", 10_000);
    let made = Instant::now();
    let chain = Arc::new(N3Chain::synthetic(&Synthetic {
        blocks,
        txs_per_block: 1,
        seed: 0,
        with_bodies: false,
    }));
    let height = chain.height();
    println!(
        "chain of {} headers made in {:.2?}",
        height + 1,
        made.elapsed()
    );
    let mut local = LocalConfig::new(NET);
    local.identity.current_height = Arc::new(move || height);
    let mut config = ManagerConfig::new(local);
    config.max_inbound = peers + 16;
    config.max_per_ip = peers + 16;
    let node = PeerManager::<N3>::new(
        config,
        AddressBook::in_memory(BookConfig::new("n3", NET)),
        ChainServer::new(chain.clone()),
        SmolGlobal,
    )
    .unwrap();
    smol::block_on(async {
        let addr: SocketAddr = node.listen(([127, 0, 0, 1], 0).into()).await.unwrap();
        // Every client connected and handshaken first, so that the timing
        // below is the sync alone.
        let mut clients = Vec::with_capacity(peers);
        for _ in 0..peers {
            let conn = smol::Async::<std::net::TcpStream>::connect(addr)
                .await
                .unwrap();
            let peer: Peer<N3> = Peer::new(
                conn,
                Direction::Outbound,
                LocalConfig::new(NET),
                IgnoreAll,
                SmolGlobal,
            );
            clients.push(peer);
        }
        let handshakes: Vec<_> = clients
            .iter()
            .map(|p| {
                let p = p.clone();
                smol::spawn(async move { p.run().await })
            })
            .collect();
        for h in handshakes {
            h.await.unwrap();
        }
        node.wait_for_peers(peers, Duration::from_secs(30)).await;
        println!(
            "{peers} peers handshaken, syncing {} headers each",
            height + 1
        );

        let started = Instant::now();
        let runs: Vec<_> = clients
            .iter()
            .map(|p| {
                let p = p.clone();
                smol::spawn(async move {
                    let mut next = 0u32;
                    while next <= height {
                        let headers = p.get_headers(next, 2000).await.unwrap();
                        next += headers.len() as u32;
                    }
                    started.elapsed()
                })
            })
            .collect();
        let mut times = Vec::with_capacity(peers);
        for r in runs {
            times.push(r.await);
        }
        let all = started.elapsed();
        times.sort();
        let total = peers as f64 * f64::from(height + 1);
        println!(
            "aggregate {:.0} headers/s ({:.2} s for {} headers in all)",
            total / all.as_secs_f64(),
            all.as_secs_f64(),
            total as u64
        );
        println!(
            "per peer: fastest {:.2?}, median {:.2?}, slowest {:.2?}",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );

        let stop = Instant::now();
        let report = node.shutdown().await;
        let took = stop.elapsed();
        let mut closed = 0;
        for p in &clients {
            if p.closed().await == DisconnectReason::RemoteClosed {
                closed += 1;
            }
        }
        println!(
            "shutdown: {} peers in {:.2?}, tasks left {}, {closed}/{peers} clients saw the connection close, book flush: {:?} records",
            report.peers, took, report.tasks_left, report.flushed
        );
    });
}
