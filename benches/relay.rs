//! The time an item takes through relaying managers over loopback TCP.
//!
//! `cargo bench --bench relay` runs three managers in a line, A–B–C, each
//! relaying every item it receives, and has A relay ITEMS (200 by default)
//! transactions one after the other: each goes A→B→C as `inv`, `getdata`
//! and `transaction`, twice. It prints the median and 90th percentile of
//! the time from `relay` at A to the item's arrival at C, the same per hop,
//! and the messages B sent per item.

use std::time::{Duration, Instant};

use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{N3Chain, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::{ManagerConfig, PeerManager, RelayConfig};
use neo_peer::peer::{IgnoreAll, LocalConfig};
use neo_peer::protocol::{N3, Protocol};
use neo_peer::relay::{Inventory, Item};
use neo_peer::wire::{UInt256, n3};

const NET: u32 = 56753;

fn manager() -> (PeerManager<N3>, async_channel::Receiver<(UInt256, Instant)>) {
    let mut c = ManagerConfig::new(LocalConfig::new(NET));
    c.max_per_ip = 100;
    let book = AddressBook::in_memory(BookConfig::new(N3::NAME, NET));
    let m = PeerManager::<N3>::new(c, book, IgnoreAll, SmolGlobal).unwrap();
    let (tx, rx) = async_channel::unbounded();
    let relay = m.clone();
    m.start_relay(RelayConfig::default(), None, move |_, item: Item<N3>| {
        let _ = tx.try_send((item.hash, Instant::now()));
        relay.relay(item);
    })
    .unwrap();
    (m, rx)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let items: u32 = std::env::var("ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let chain = N3Chain::synthetic(&Synthetic {
        blocks: items,
        txs_per_block: 1,
        seed: 11,
        with_bodies: true,
    });
    let txs: Vec<Item<N3>> = (1..=items)
        .map(|i| {
            let tx = chain.block(i).unwrap().transactions[0].clone();
            N3::item(&n3::Message::Transaction(tx)).unwrap()
        })
        .collect();
    smol::block_on(async {
        let (a, _) = manager();
        let (b, _) = manager();
        let (c, at_c) = manager();
        let addr = b.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        a.connect(addr).await.unwrap();
        c.connect(addr).await.unwrap();
        b.wait_for_peers(2, Duration::from_secs(10)).await;
        let mut times = Vec::with_capacity(txs.len());
        for item in &txs {
            let start = Instant::now();
            a.relay(item.clone());
            let (hash, arrived) = at_c.recv().await.unwrap();
            assert_eq!(hash, item.hash);
            times.push(arrived - start);
        }
        times.sort();
        let per_hop: Vec<Duration> = times.iter().map(|t| *t / 2).collect();
        let sb = b.relay_stats().unwrap();
        let sent = sb.announced + sb.served + sb.requested;
        println!(
            "relay A-B-C, {} items: A to C median {:?}, p90 {:?}; per hop median {:?}, p90 {:?}; \
B sent {:.1} messages per item (inv, getdata, item)",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            percentile(&per_hop, 0.5),
            percentile(&per_hop, 0.9),
            sent as f64 / times.len() as f64,
        );
        for m in [a, b, c] {
            m.shutdown().await;
        }
    });
}
