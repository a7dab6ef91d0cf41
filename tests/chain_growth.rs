//! A chain that grows while it is served. Many readers answer requests from
//! it while one writer appends (headers then their blocks, or blocks with
//! their headers), and every header, block, hash and transaction served
//! re-hashes to what the source chain holds at its height: no reader ever
//! sees half an append. Appends that do not link are refused and leave
//! nothing behind. A store of our own serves real peers through the same
//! trait.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use neo_peer::chain::{
    Chain, ChainError, ChainServer, ChainStore, LegacyChain, N3Chain, Serve, Synthetic,
};
use neo_peer::executor::SmolGlobal;
use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer, PeerError};
use neo_peer::protocol::{Legacy, N3};
use neo_peer::wire::{UInt256, legacy, n3};

mod tiny_store;

use tiny_store::TinyStore;

const NET: u32 = 0x4E45_4F50;

fn synthetic(blocks: u32, txs_per_block: u32) -> Synthetic {
    Synthetic {
        blocks,
        txs_per_block,
        seed: 0xC4A1,
        with_bodies: true,
    }
}

/// A small xorshift, so that each reader asks its own sequence of requests.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n.max(1))) as u32
    }
}

/// What a reader checks about each answer, per generation.
trait Grows: Serve<Message: std::fmt::Debug> {
    /// A request about heights around `0..=top` of `source`.
    fn ask(source: &Chain<Self>, rng: &mut Rng, top: u32) -> Self::Message;
    /// Checks `answer` to `ask` against `source`; returns how many items
    /// (headers, hashes, blocks, transactions) it checked.
    fn check(source: &Chain<Self>, ask: &Self::Message, answer: &[Self::Message]) -> usize;
}

/// Lets a writer wait for its readers: after each batch of appends the
/// writer publishes the batch's number, and starts the next batch only when
/// every reader has answered from the chain as it stood then. So the readers
/// answer while the chain grows, however the threads are scheduled.
struct Turns {
    batch: AtomicU32,
    read: Vec<AtomicU32>,
}

impl Turns {
    fn new(readers: usize) -> Self {
        Turns {
            batch: AtomicU32::new(0),
            read: (0..readers).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The last batch appended in full, for a reader about to read.
    fn current(&self) -> u32 {
        self.batch.load(Ordering::Acquire)
    }

    /// Reader `r` answered from the chain after `batch`.
    fn done(&self, r: usize, batch: u32) {
        self.read[r].fetch_max(batch, Ordering::AcqRel);
    }

    /// The writer appended a batch: publishes it, and waits until every
    /// reader has answered from it.
    fn next(&self) {
        let batch = self.batch.fetch_add(1, Ordering::AcqRel) + 1;
        while self.read.iter().any(|r| r.load(Ordering::Acquire) < batch) {
            // Polls, leaving the cores to the readers meanwhile.
            thread::sleep(Duration::from_micros(100));
        }
    }

    /// Reader `r` reads no more (also when it panics): it is waited for no
    /// more.
    fn leaving(&self, r: usize) -> impl Drop + '_ {
        struct Leave<'a>(&'a Turns, usize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.done(self.1, u32::MAX);
            }
        }
        Leave(self, r)
    }
}

/// Appends `source` (beyond its genesis) to `live`: ten heights at a time,
/// either headers first and then their blocks, or blocks with their headers,
/// each batch once the readers have read from the one before.
fn append_all<G: Serve>(source: &Chain<G>, live: &Chain<G>, turns: &Turns) {
    let top = source.height();
    let mut next = 1;
    while next <= top {
        let last = (next + 9).min(top);
        if next % 20 == 1 {
            for i in next..=last {
                live.push_header(source.header(i).unwrap().clone()).unwrap();
            }
            turns.next();
        }
        for i in next..=last {
            live.push_block(source.block(i).unwrap().clone()).unwrap();
        }
        turns.next();
        next = last + 1;
    }
}

/// Four readers answer requests from `live` while `source` is appended to
/// it; every answer is checked. Returns (items checked, distinct heights the
/// readers saw).
fn serve_while_growing<G: Grows>(source: &Chain<G>) -> (usize, usize) {
    let live = Chain::<G>::from_genesis_block(source.block(0).unwrap().clone()).unwrap();
    let done = AtomicBool::new(false);
    let readers = 4;
    let turns = Turns::new(readers);
    let (checked, heights) = thread::scope(|s| {
        let handles: Vec<_> = (0..readers)
            .map(|r| {
                let (live, done, turns) = (&live, &done, &turns);
                s.spawn(move || {
                    let _leave = turns.leaving(r);
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (r as u64 + 1));
                    let mut seen = Vec::new();
                    let mut checked = 0;
                    let mut last = 0;
                    while !done.load(Ordering::Acquire) {
                        let batch = turns.current();
                        let (height, tip) = live.tip();
                        assert!(height >= last, "the tip went back from {last} to {height}");
                        assert_eq!(Some(tip), source.hash(height), "a torn tip at {height}");
                        assert!(live.block_height() <= Some(live.height()));
                        last = height;
                        seen.push(height);
                        let ask = G::ask(source, &mut rng, height + 3);
                        let answer = live.answer(&ask);
                        checked += G::check(source, &ask, &answer);
                        turns.done(r, batch);
                    }
                    (checked, seen)
                })
            })
            .collect();
        append_all(source, &live, &turns);
        done.store(true, Ordering::Release);
        let mut checked = 0;
        let mut heights = Vec::new();
        for h in handles {
            let (c, seen) = h.join().unwrap();
            checked += c;
            heights.extend(seen);
        }
        heights.sort_unstable();
        heights.dedup();
        (checked, heights.len())
    });
    // At the end, the live chain is the source.
    assert_eq!(live.tip(), source.tip());
    assert!(live.hashes().eq(source.hashes()));
    assert!(live.blocks().eq(source.blocks()));
    assert_eq!(live.tx_count(), source.tx_count());
    (checked, heights)
}

/// Checks that `headers` are those of `source` from height `first` on.
fn same_headers<G: Serve>(source: &Chain<G>, first: u32, headers: &[G::Header]) -> usize {
    for (k, h) in headers.iter().enumerate() {
        let at = first + k as u32;
        assert_eq!(G::header_index(h), at, "headers out of order");
        assert_eq!(
            Some(G::header_hash(h)),
            source.hash(at),
            "a torn header at {at}"
        );
    }
    headers.len()
}

/// Checks that `hashes` are those of `source` from height `first` on.
fn same_hashes<G: Serve>(source: &Chain<G>, first: u32, hashes: &[UInt256]) -> usize {
    for (k, h) in hashes.iter().enumerate() {
        assert_eq!(Some(*h), source.hash(first + k as u32), "a wrong hash");
    }
    hashes.len()
}

impl Grows for N3 {
    fn ask(source: &N3Chain, rng: &mut Rng, top: u32) -> n3::Message {
        let start = rng.below(top + 1);
        let count = [-1, 1, 7, 500, 2000][rng.below(5) as usize];
        let hash = source.hash(start).unwrap_or(UInt256([7; 32]));
        match rng.below(5) {
            0 => n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
                index_start: start,
                count,
            }),
            1 => n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload {
                index_start: start,
                count: count.min(20),
            }),
            2 => n3::Message::GetBlocks(n3::GetBlocksPayload {
                hash_start: hash,
                count,
            }),
            3 => n3::Message::GetData(n3::InvPayload {
                kind: n3::InventoryType::Block,
                hashes: (0..4)
                    .filter_map(|_| source.hash(rng.below(top + 1)))
                    .collect(),
            }),
            _ => {
                let tx = |i| source.block(i).map(|b| b.transactions[0].hash());
                n3::Message::GetData(n3::InvPayload {
                    kind: n3::InventoryType::Transaction,
                    hashes: (0..4).filter_map(|_| tx(1 + rng.below(top))).collect(),
                })
            }
        }
    }

    fn check(source: &N3Chain, ask: &n3::Message, answer: &[n3::Message]) -> usize {
        use n3::Message as M;
        match (ask, answer) {
            (_, []) => 0,
            (M::GetHeaders(p), [M::Headers(h)]) => same_headers(source, p.index_start, &h.to_vec()),
            (M::GetBlocks(p), [M::Inv(inv)]) => {
                let first = source.index_of(&p.hash_start).unwrap() + 1;
                same_hashes(source, first, &inv.hashes)
            }
            (M::GetBlockByIndex(p), blocks) => {
                for (k, b) in blocks.iter().enumerate() {
                    let M::Block(b) = b else { panic!("{b:?}") };
                    let at = p.index_start + k as u32;
                    assert_eq!(b.index(), at);
                    assert_eq!(Some(b.hash()), source.hash(at), "a torn block at {at}");
                    b.check()
                        .expect("a block served re-hashes to its Merkle root");
                }
                blocks.len()
            }
            (M::GetData(p), objects) => {
                let mut n = 0;
                for o in objects {
                    match o {
                        M::Block(b) => {
                            assert!(p.hashes.contains(&b.hash()));
                            b.check()
                                .expect("a block served re-hashes to its Merkle root");
                        }
                        M::Transaction(tx) => assert!(p.hashes.contains(&tx.hash())),
                        M::NotFound(nf) => assert!(nf.hashes.iter().all(|h| p.hashes.contains(h))),
                        other => panic!("{other:?}"),
                    }
                    n += 1;
                }
                n
            }
            (ask, answer) => panic!("{ask:?} answered with {answer:?}"),
        }
    }
}

impl Grows for Legacy {
    fn ask(source: &LegacyChain, rng: &mut Rng, top: u32) -> legacy::Message {
        let start = rng.below(top + 1);
        let hash = source.hash(start).unwrap_or(UInt256([7; 32]));
        let locator = legacy::GetBlocksPayload {
            hash_start: vec![hash],
            hash_stop: UInt256::ZERO,
        };
        match rng.below(3) {
            0 => legacy::Message::GetHeaders(locator),
            1 => legacy::Message::GetBlocks(locator),
            _ => legacy::Message::GetData(legacy::InvPayload {
                kind: legacy::InventoryType::Block,
                hashes: (0..4)
                    .filter_map(|_| source.hash(rng.below(top + 1)))
                    .collect(),
            }),
        }
    }

    fn check(source: &LegacyChain, ask: &legacy::Message, answer: &[legacy::Message]) -> usize {
        use legacy::Message as M;
        match (ask, answer) {
            (_, []) => 0,
            (M::GetHeaders(p), [M::Headers(h)]) => {
                let first = source.index_of(&p.hash_start[0]).unwrap() + 1;
                same_headers(source, first, &h.headers)
            }
            (M::GetBlocks(p), [M::Inv(inv)]) => {
                let first = source.index_of(&p.hash_start[0]).unwrap() + 1;
                same_hashes(source, first, &inv.hashes)
            }
            (M::GetData(p), blocks) => {
                for b in blocks {
                    let M::Block(b) = b else { panic!("{b:?}") };
                    assert!(p.hashes.contains(&b.hash()));
                    b.check()
                        .expect("a block served re-hashes to its Merkle root");
                }
                blocks.len()
            }
            (ask, answer) => panic!("{ask:?} answered with {answer:?}"),
        }
    }
}

#[test]
fn n3_readers_never_see_half_an_append() {
    let source = N3Chain::synthetic(&synthetic(400, 2));
    let (checked, heights) = serve_while_growing(&source);
    // Every batch of ten was read from: at least 40 tips.
    assert!(heights >= 40, "{checked} items, {heights} heights");
}

#[test]
fn legacy_readers_never_see_half_an_append() {
    let source = LegacyChain::synthetic(&synthetic(400, 1));
    let (checked, heights) = serve_while_growing(&source);
    assert!(heights >= 40, "{checked} items, {heights} heights");
}

/// The counts and lookups of a chain, to see that a refusal changed nothing.
fn state<G: Serve>(chain: &Chain<G>) -> (u32, UInt256, Option<u32>, usize) {
    let (height, tip) = chain.tip();
    (height, tip, chain.block_height(), chain.tx_count())
}

#[test]
fn refused_appends_leave_nothing_behind() {
    let source = N3Chain::synthetic(&synthetic(4, 3));
    let chain = N3Chain::from_genesis_block(source.block(0).unwrap().clone()).unwrap();
    chain.push_block(source.block(1).unwrap().clone()).unwrap();
    let before = state(&chain);
    let next = source.block(2).unwrap();

    // A body that is not its header's: refused before anything is written,
    // so neither its hash nor its transactions can be found.
    let mut wrong_body = next.clone();
    wrong_body.transactions.swap(0, 1);
    let err = chain.push_block(wrong_body.clone()).unwrap_err();
    assert!(
        matches!(err, ChainError::MerkleRoot { index: 2, .. }),
        "{err}"
    );
    assert_eq!(err.height(), Some(2));
    // A header that does not follow the tip.
    let mut stray = next.header.clone();
    stray.prev_hash = UInt256([3; 32]);
    let err = chain.push_header(stray).unwrap_err();
    assert!(
        matches!(err, ChainError::PrevHash { index: 2, .. }),
        "{err}"
    );
    // A block two heights ahead.
    let err = chain
        .push_block(source.block(3).unwrap().clone())
        .unwrap_err();
    assert_eq!(
        err,
        ChainError::Index {
            expected: 2,
            got: 3
        }
    );
    assert_eq!(err.height(), Some(3));

    assert_eq!(state(&chain), before);
    assert_eq!(chain.index_of(&next.hash()), None);
    for tx in &wrong_body.transactions {
        assert_eq!(chain.tx_location(&tx.hash()), None);
    }
    let ask = n3::Message::GetData(n3::InvPayload {
        kind: n3::InventoryType::Block,
        hashes: vec![next.hash()],
    });
    assert!(matches!(
        chain.answer(&ask).as_slice(),
        [n3::Message::NotFound(_)]
    ));

    // The right block still goes in.
    chain.push_block(next.clone()).unwrap();
    assert_eq!(chain.index_of(&next.hash()), Some(2));
}

#[test]
fn legacy_refusals_name_the_check_and_the_height() {
    let source = LegacyChain::synthetic(&synthetic(3, 2));
    let chain = LegacyChain::from_headers(source.headers().cloned()).unwrap();
    let before = state(&chain);
    // Bodies come in order under the headers held.
    let err = chain
        .push_block(source.block(1).unwrap().clone())
        .unwrap_err();
    assert_eq!(
        err,
        ChainError::BodyGap {
            expected: 0,
            got: 1
        }
    );
    chain.push_block(source.block(0).unwrap().clone()).unwrap();
    // A block at a known height must be the one its header names.
    let other = LegacyChain::synthetic(&Synthetic {
        seed: 1,
        ..synthetic(3, 2)
    });
    let err = chain
        .push_block(other.block(1).unwrap().clone())
        .unwrap_err();
    assert!(
        matches!(err, ChainError::HashMismatch { index: 1, expected, got }
            if expected == source.hash(1).unwrap() && got == other.hash(1).unwrap()),
        "{err}"
    );
    // A body with its transactions reordered is not the header's.
    let mut shuffled = source.block(1).unwrap().clone();
    shuffled.transactions.swap(1, 2);
    let err = chain.push_block(shuffled).unwrap_err();
    assert!(
        matches!(err, ChainError::MerkleRoot { index: 1, .. }),
        "{err}"
    );
    assert_eq!(chain.block_count(), 1);
    assert_eq!((chain.height(), chain.tip_hash()), (before.0, before.1));
    assert_eq!(chain.tx_count(), 1, "the genesis miner transaction only");
}

// ---------------------------------------------------------- over real peers

fn config<P: neo_peer::protocol::Protocol>(
    height: impl Fn() -> u32 + Send + Sync + 'static,
) -> LocalConfig<P> {
    let mut c = LocalConfig::new(NET);
    c.identity.current_height = Arc::new(height);
    c.timeouts.stall = Duration::from_secs(20);
    c
}

/// A served peer on one end of a loopback connection and a client peer on
/// the other; returns the client after the handshake.
async fn connect<P: Serve + Sync, S: ChainStore<P> + 'static>(store: Arc<S>) -> Peer<P> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (theirs, _) = listener.accept().unwrap();
    let served = store.clone();
    let server: Peer<P> = Peer::new(
        smol::net::TcpStream::try_from(theirs).unwrap(),
        Direction::Inbound,
        config(move || served.height()),
        ChainServer::new(store),
        SmolGlobal,
    );
    let client: Peer<P> = Peer::new(
        smol::net::TcpStream::try_from(ours).unwrap(),
        Direction::Outbound,
        config(|| 0),
        IgnoreAll,
        SmolGlobal,
    );
    let (a, b) = futures_lite::future::zip(server.run(), client.run()).await;
    a.unwrap();
    b.unwrap();
    client
}

/// Headers appended per batch in `peers_sync_from_a_chain_while_it_grows`.
const STEP: u32 = 500;

/// Client `r` asks for headers from 0, 2000 at a time, up to the top of
/// `source`, checking each; it pings whenever it must learn the remote's
/// height again. Returns how many `getheaders` were answered.
async fn follow(client: Peer<N3>, source: Arc<N3Chain>, r: usize, turns: Arc<Turns>) -> u32 {
    let _leave = turns.leaving(r);
    let mut next = 0;
    let mut answered = 0;
    while next <= source.height() {
        let batch = turns.current();
        match client.get_headers(next, -1).await {
            Ok(headers) => {
                same_headers(&*source, next, &headers);
                next += headers.len() as u32;
                answered += 1;
            }
            // Above the height it told us: ask it again.
            Err(PeerError::Unanswered { .. }) => {
                client.ping().await.unwrap();
            }
            Err(e) => panic!("getheaders {next}: {e}"),
        }
        if next > batch * STEP {
            turns.done(r, batch);
        }
    }
    answered
}

#[test]
fn peers_sync_from_a_chain_while_it_grows() {
    let source = Arc::new(N3Chain::synthetic(&synthetic(12 * STEP, 0)));
    let live = Arc::new(N3Chain::new(source.header(0).unwrap().clone()).unwrap());
    let turns = Arc::new(Turns::new(3));
    smol::block_on(async {
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(connect::<N3, _>(live.clone()).await);
        }
        let writer = {
            let (source, live, turns) = (source.clone(), live.clone(), turns.clone());
            thread::spawn(move || {
                for i in 1..=source.height() {
                    live.push_header(source.header(i).unwrap().clone()).unwrap();
                    if i % STEP == 0 {
                        turns.next();
                    }
                }
            })
        };
        let followers = clients
            .into_iter()
            .enumerate()
            .map(|(r, client)| smol::spawn(follow(client, source.clone(), r, turns.clone())));
        for follower in followers.collect::<Vec<_>>() {
            // Every client caught up with each of the twelve batches.
            assert!(follower.await >= 12);
        }
        writer.join().unwrap();
    });
    assert_eq!(live.tip(), source.tip());
}

#[test]
fn a_store_of_our_own_serves_peers() {
    let n3_chain = N3Chain::synthetic(&synthetic(2500, 1));
    let legacy_chain = LegacyChain::synthetic(&synthetic(2500, 1));
    smol::block_on(async {
        let n3 = connect::<N3, _>(Arc::new(TinyStore::copy_of(&n3_chain))).await;
        assert_eq!(n3.height(), 2500);
        let headers = n3.get_headers(0, -1).await.unwrap();
        assert!(headers.iter().eq(n3_chain.headers().take(2000)));
        let blocks = n3.get_blocks_by_index(2490, -1).await.unwrap();
        assert!(blocks.iter().eq(n3_chain.blocks().skip(2490)));

        let legacy = connect::<Legacy, _>(Arc::new(TinyStore::copy_of(&legacy_chain))).await;
        assert_eq!(legacy.height(), 2500);
        let headers = legacy
            .get_headers(legacy_chain.hash(1000).unwrap(), UInt256::ZERO)
            .await
            .unwrap();
        assert!(headers.iter().eq(legacy_chain.headers().skip(1001)));
    });
}
