//! The address book through a peer manager's life, over loopback: shutdown
//! stores the outbound peers as anchors and releases the file, the next
//! start dials the anchors before anything else, and feelers move addresses
//! of the "new" table to "tried" without taking a slot.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use neo_peer::book::{AddressBook, BookConfig, Source, Table};
use neo_peer::chain::{Chain, ChainServer, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::{ManagerConfig, PeerManager};
use neo_peer::peer::{Direction, IgnoreAll, LocalConfig};
use neo_peer::protocol::{GossipAddr, N3};

const NET: u32 = 56753;

fn config(slots: usize) -> ManagerConfig<N3> {
    let mut local = LocalConfig::new(NET);
    local.identity.current_height = Arc::new(|| 10);
    let mut c = ManagerConfig::new(local);
    c.target_outbound = slots;
    c.max_outbound = slots.max(1);
    c.dial_interval = Duration::from_millis(20);
    c
}

fn book_config() -> BookConfig {
    BookConfig::new("n3", NET)
}

/// `n` serving nodes, node i on 127.(40+i).0.1: each in a /16 of its own.
async fn nodes(n: u8) -> Vec<(PeerManager<N3>, SocketAddr)> {
    let chain = Arc::new(Chain::<N3>::synthetic(&Synthetic {
        blocks: 10,
        ..Synthetic::default()
    }));
    let mut out = Vec::new();
    for i in 0..n {
        let m = PeerManager::<N3>::new(
            config(0),
            AddressBook::in_memory(book_config()),
            ChainServer::new(chain.clone()),
            SmolGlobal,
        )
        .unwrap();
        let ip = Ipv4Addr::new(127, 40 + i, 0, 1);
        let addr = m.listen(SocketAddr::from((ip, 0))).await.unwrap();
        out.push((m, addr));
    }
    out
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "neo-peer-restart-{}-{}-{name}.redb",
        std::process::id(),
        neo_peer::book::now_ms()
    ))
}

fn outbound(m: &PeerManager<N3>) -> Vec<SocketAddr> {
    m.peers()
        .iter()
        .filter(|p| p.peer.direction() == Direction::Outbound)
        .filter_map(|p| p.addr)
        .collect()
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes.
async fn eventually(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        Timer::after(Duration::from_millis(5)).await;
    }
    true
}

#[test]
fn shutdown_stores_anchors_that_the_next_start_dials_first() {
    smol::block_on(async {
        let nodes = nodes(6).await;
        let path = temp_path("anchors");
        // First run: the dialer fills three slots from the three first nodes.
        let book = AddressBook::open(&path, book_config()).unwrap();
        for (_, a) in &nodes[..3] {
            book.add(*a, Source::Seed);
        }
        let m = PeerManager::<N3>::new(config(3), book, IgnoreAll, SmolGlobal).unwrap();
        m.start_dialer();
        assert_eq!(m.wait_for_peers(3, Duration::from_secs(10)).await, 3);
        let report = m.shutdown().await;
        assert!(report.flushed.is_ok(), "{report:?}");
        // The file is released at shutdown, while the manager still lives;
        // the anchors are the three peers held, oldest first.
        let book = AddressBook::open(&path, book_config()).unwrap();
        let held = book.anchors();
        let mut sorted = held.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            nodes[..3].iter().map(|(_, a)| *a).collect::<Vec<_>>()
        );
        assert_eq!(book.get(held[0]).unwrap().table(), Some(Table::Tried));
        drop(m);
        for (_, a) in &nodes[3..] {
            book.add(*a, Source::Seed);
        }

        // Second run with two slots: exactly the two oldest anchors, though
        // three other reachable nodes are in the book.
        let m = PeerManager::<N3>::new(config(2), book, IgnoreAll, SmolGlobal).unwrap();
        m.start_dialer();
        assert_eq!(m.wait_for_peers(2, Duration::from_secs(10)).await, 2);
        Timer::after(Duration::from_millis(100)).await;
        let mut now = outbound(&m);
        now.sort();
        let mut want = held[..2].to_vec();
        want.sort();
        assert_eq!(now, want);
        // Taken: they are dialed once per start, not again after a crash.
        assert!(m.book().anchors().is_empty());
        m.shutdown().await;
        drop(m);
        let book = AddressBook::open(&path, book_config()).unwrap();
        assert_eq!(book.anchors().len(), 2);
        drop(book);
        for (n, _) in &nodes {
            n.shutdown().await;
        }
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn feelers_move_new_addresses_to_tried_without_a_slot() {
    smol::block_on(async {
        let nodes = nodes(3).await;
        let book = AddressBook::in_memory(book_config());
        book.add(nodes[0].1, Source::Seed);
        let mut c = config(1);
        c.feeler_interval = Duration::from_millis(50);
        let m = PeerManager::<N3>::new(c, book, IgnoreAll, SmolGlobal).unwrap();
        m.start_dialer();
        assert_eq!(m.wait_for_peers(1, Duration::from_secs(10)).await, 1);
        // Heard of through gossip: two more nodes, in "new".
        let heard: Vec<GossipAddr> = nodes[1..]
            .iter()
            .map(|(_, a)| GossipAddr {
                addr: *a,
                timestamp: (neo_peer::book::now_ms() / 1000) as u32,
                services: 0,
            })
            .collect();
        assert_eq!(m.book().learn(Some(nodes[0].1), &heard), 2);
        let tried = |a: SocketAddr| m.book().get(a).and_then(|r| r.table()) == Some(Table::Tried);
        let promoted = eventually(Duration::from_secs(10), || {
            nodes[1..].iter().all(|(_, a)| tried(*a))
        })
        .await;
        assert!(promoted, "{:?}", m.book().records());
        // The one slot is still held by the first node; the feelers left.
        assert_eq!(outbound(&m), vec![nodes[0].1]);
        for (n, _) in &nodes[1..] {
            assert!(
                eventually(Duration::from_secs(5), || n.is_empty()).await,
                "a feeler stayed connected"
            );
        }
        let report = m.shutdown().await;
        assert_eq!(report.tasks_left, 0, "{report:?}");
        for (n, _) in &nodes {
            n.shutdown().await;
        }
    });
}
