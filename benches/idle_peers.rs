//! Many idle peers in one process: memory per peer and handshake storm time.
//!
//! `cargo bench --bench idle_peers` connects PEERS/2 pairs of N3 peers over
//! loopback TCP (PEERS from the environment, default 10,000 peers, so 10,000
//! sockets: mind `ulimit -n`), runs every handshake at once, waits, and prints
//! the resident-memory growth per handshaken idle peer and the storm time.
//! Linux only (it reads /proc/self/status).

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use neo_peer::executor::SmolGlobal;
use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
use neo_peer::protocol::N3;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let peers: usize = std::env::var("PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let pairs = peers / 2;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sockets: Vec<(TcpStream, TcpStream)> = (0..pairs)
        .map(|_| {
            let a = TcpStream::connect(addr).unwrap();
            let (b, _) = listener.accept().unwrap();
            (a, b)
        })
        .collect();
    let before = rss_kib();
    let started = Instant::now();
    let live: Vec<(Peer<N3>, Peer<N3>)> = smol::block_on(async {
        let mut live = Vec::with_capacity(pairs);
        let mut handshakes = Vec::with_capacity(pairs);
        for (i, (a, b)) in sockets.into_iter().enumerate() {
            let config = |nonce| {
                let mut c = LocalConfig::new(56753);
                c.identity.nonce = nonce;
                c
            };
            let x: Peer<N3> = Peer::new(
                smol::Async::new(a).unwrap(),
                Direction::Outbound,
                config(2 * i as u32 + 1),
                IgnoreAll,
                SmolGlobal,
            );
            let y: Peer<N3> = Peer::new(
                smol::Async::new(b).unwrap(),
                Direction::Inbound,
                config(2 * i as u32 + 2),
                IgnoreAll,
                SmolGlobal,
            );
            let (x2, y2) = (x.clone(), y.clone());
            handshakes.push(smol::spawn(async move {
                let (r1, r2) = futures_lite::future::zip(x2.run(), y2.run()).await;
                r1.is_ok() && r2.is_ok()
            }));
            live.push((x, y));
        }
        let mut ok = 0;
        for h in handshakes {
            ok += usize::from(h.await);
        }
        assert_eq!(ok, pairs, "every handshake completes");
        live
    });
    let storm = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let grown = rss_kib().saturating_sub(before);
    let n = 2 * live.len();
    println!("peers: {n} handshaken, idle");
    println!("handshake storm: {storm:.2?}");
    println!(
        "resident memory: +{grown} KiB, {:.1} KiB per peer",
        grown as f64 / n as f64
    );
    drop(live);
}
