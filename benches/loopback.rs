//! Request/response round trips on one loopback connection.
//!
//! `cargo bench --bench loopback` measures `get_headers` round trips between
//! two peers of this crate over TCP on 127.0.0.1: one header per request and
//! 2000 headers per request, for both generations. Criterion prints the time
//! per round trip; round trips per second are its inverse, and the
//! throughput line gives headers per second.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use neo_peer::chain::{ChainServer, LegacyChain, N3Chain, Serve, Synthetic};
use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
use neo_peer::protocol::{Legacy, N3};
use neo_peer::wire::UInt256;

const NET: u32 = 56753;
const BLOCKS: u32 = 4000;

fn synthetic() -> Synthetic {
    Synthetic {
        blocks: BLOCKS,
        txs_per_block: 0,
        seed: 1,
        with_bodies: false,
    }
}

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

/// The executor both peers run on; the bench thread drives it while it waits.
type Ex = Arc<smol::Executor<'static>>;

fn wait<T>(ex: &Ex, fut: impl std::future::Future<Output = T>) -> T {
    smol::block_on(ex.run(fut))
}

/// A client peer connected to a server peer holding `chain`.
fn connect<P: Serve>(ex: &Ex, chain: neo_peer::chain::Chain<P>) -> Peer<P>
where
    neo_peer::chain::Chain<P>: Send + Sync,
{
    let (a, b) = tcp_pair();
    let height = chain.height();
    let mut server_config = LocalConfig::new(NET);
    server_config.identity.current_height = Arc::new(move || height);
    let client: Peer<P> = Peer::new(
        smol::Async::new(a).unwrap(),
        Direction::Outbound,
        LocalConfig::new(NET),
        IgnoreAll,
        ex.clone(),
    );
    let server: Peer<P> = Peer::new(
        smol::Async::new(b).unwrap(),
        Direction::Inbound,
        server_config,
        ChainServer::new(Arc::new(chain)),
        ex.clone(),
    );
    let (x, y) = wait(ex, futures_lite::future::zip(client.run(), server.run()));
    x.unwrap();
    y.unwrap();
    client
}

fn round_trips(c: &mut Criterion) {
    let ex: Ex = Arc::new(smol::Executor::new());
    let n3 = connect::<N3>(&ex, N3Chain::synthetic(&synthetic()));
    let mut g = c.benchmark_group("round_trip/n3");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_header", |b| {
        let mut i = 0u32;
        b.iter(|| {
            i = (i + 1) % BLOCKS;
            let h = wait(&ex, n3.get_headers(i, 1)).unwrap();
            assert_eq!(h.len(), 1);
        })
    });
    g.throughput(Throughput::Elements(2000));
    g.bench_function("2000_headers", |b| {
        b.iter(|| {
            let h = wait(&ex, n3.get_headers(0, 2000)).unwrap();
            assert_eq!(h.len(), 2000);
        })
    });
    g.finish();

    let chain = LegacyChain::synthetic(&synthetic());
    let hashes: Vec<UInt256> = chain.hashes().collect();
    let legacy = connect::<Legacy>(&ex, chain);
    let mut g = c.benchmark_group("round_trip/legacy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_header", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % (BLOCKS as usize - 2);
            // the headers after `start`, stopping before `stop`: exactly one
            let h = wait(&ex, legacy.get_headers(hashes[i], hashes[i + 2])).unwrap();
            assert_eq!(h.len(), 1);
        })
    });
    g.throughput(Throughput::Elements(2000));
    g.bench_function("2000_headers", |b| {
        b.iter(|| {
            let h = wait(&ex, legacy.get_headers(hashes[0], UInt256::ZERO)).unwrap();
            assert_eq!(h.len(), 2000);
        })
    });
    g.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
