//! The request contract against the serving side: for any request and any
//! chain, what our server answers is exactly what our client expects — every
//! answer matches the request, an owed request is complete at the last
//! answer, and a request the contract lets go unanswered is one the server
//! may leave unanswered. The answers come from the in-memory chain and, the
//! same, from a store of our own read through `ChainStore` only. Then the
//! contract against what the reference nodes were measured to do
//! (`protocol/*-behaviour.md`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use neo_peer::chain::{Chain, Serve, Synthetic};
use neo_peer::peer::StallDetector;
use neo_peer::protocol::{Legacy, N3, Obligation, Protocol, ReplyKey, RequestKind, Silence};
use neo_peer::wire::{PingPayload, UInt256, legacy, n3};
use proptest::prelude::*;

mod tiny_store;

use tiny_store::TinyStore;

const BLOCKS: u32 = 40;

fn n3_chain() -> &'static Chain<N3> {
    static CHAIN: OnceLock<Chain<N3>> = OnceLock::new();
    CHAIN.get_or_init(|| {
        Chain::<N3>::synthetic(&Synthetic {
            blocks: BLOCKS,
            txs_per_block: 2,
            seed: 3,
            with_bodies: true,
        })
    })
}

fn n3_store() -> &'static TinyStore<N3> {
    static STORE: OnceLock<TinyStore<N3>> = OnceLock::new();
    STORE.get_or_init(|| TinyStore::copy_of(n3_chain()))
}

fn legacy_store() -> &'static TinyStore<Legacy> {
    static STORE: OnceLock<TinyStore<Legacy>> = OnceLock::new();
    STORE.get_or_init(|| TinyStore::copy_of(legacy_chain()))
}

/// The chain's answers to `ask`, after checking that the store answers the same.
fn answers<P: Serve>(chain: &Chain<P>, store: &TinyStore<P>, ask: &P::Message) -> Vec<P::Message>
where
    P::Message: PartialEq,
{
    let answer = chain.answer(ask);
    assert!(
        P::answer(store, ask) == answer,
        "{ask:?}: the store answers otherwise"
    );
    answer
}

fn legacy_chain() -> &'static Chain<Legacy> {
    static CHAIN: OnceLock<Chain<Legacy>> = OnceLock::new();
    CHAIN.get_or_init(|| {
        Chain::<Legacy>::synthetic(&Synthetic {
            blocks: BLOCKS,
            txs_per_block: 1,
            seed: 3,
            with_bodies: true,
        })
    })
}

/// Plays `answers` against the obligation of `ask` sent to a remote at the
/// chain's height, and checks that they fit it exactly.
fn holds<P: Protocol>(ask: &P::Message, reach: Option<u32>, height: u32, answers: &[P::Message]) {
    let obligation = P::obligation(ask, reach, height);
    let expected = match obligation {
        Obligation::Nothing | Obligation::Beyond { .. } => {
            assert!(
                answers.is_empty(),
                "{ask:?}: {obligation:?}, but the server sent {answers:?}"
            );
            return;
        }
        Obligation::Answers(expected) => expected,
    };
    let now = Instant::now();
    let mut d = StallDetector::new(Duration::from_secs(1), 8);
    let id = d.arm(expected.clone(), true, now).unwrap();
    let mut complete = false;
    for (i, answer) in answers.iter().enumerate() {
        let reply = P::reply(answer).unwrap_or_else(|| panic!("{answer:?} answers nothing"));
        let a = d
            .answer(&reply, now)
            .unwrap_or_else(|| panic!("{ask:?}: answer {i} ({answer:?}) fits no request"));
        assert_eq!(a.id, id);
        assert!(
            !a.complete || i + 1 == answers.len(),
            "{ask:?}: answer {i} of {} completes it early",
            answers.len()
        );
        assert_eq!(a.proven_height, None, "our server does not lie");
        complete = a.complete;
    }
    if expected.silence == Silence::Stall {
        assert!(
            complete,
            "{ask:?}: an owed request answered in part: {answers:?}"
        );
    }
    if let Some(items) = expected.items {
        let lens: Vec<usize> = answers
            .iter()
            .filter_map(|a| match P::reply(a)?.key {
                ReplyKey::Headers { len, .. } => Some(len),
                _ => None,
            })
            .collect();
        assert_eq!(lens, [items as usize], "{ask:?}: the headers owed");
    }
}

fn count() -> impl Strategy<Value = i16> {
    prop_oneof![
        Just(-1i16),
        Just(0),
        Just(-2),
        1i16..60,
        Just(2000),
        Just(i16::MAX)
    ]
}

/// A hash from the chain (by height), or one it does not hold.
fn some_hash(known: impl Fn(u32) -> Option<UInt256>) -> impl Fn(u32) -> UInt256 {
    move |i| known(i).unwrap_or(UInt256([i as u8; 32]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn n3_server_answers_what_the_client_expects(
        kind in 0u8..4,
        start in 0u32..(BLOCKS + 6),
        count in count(),
        picks in proptest::collection::vec(0u32..(BLOCKS + 8), 0..6),
        data_kind in 0u8..3,
    ) {
        let chain = n3_chain();
        let hash = some_hash(|i| chain.hash(i));
        let ask = match kind {
            0 => n3::Message::GetHeaders(n3::GetBlockByIndexPayload { index_start: start, count }),
            1 => n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload { index_start: start, count }),
            2 => n3::Message::GetBlocks(n3::GetBlocksPayload { hash_start: hash(start), count }),
            _ => {
                let (kind, hashes) = match data_kind {
                    0 => (n3::InventoryType::Block, picks.iter().map(|&i| hash(i)).collect()),
                    1 => {
                        let txs = picks.iter().map(|&i| {
                            chain.block(i).and_then(|b| b.transactions.first()).map_or(UInt256([9; 32]), |t| t.hash())
                        });
                        (n3::InventoryType::Transaction, txs.collect())
                    }
                    _ => (n3::InventoryType::Extensible, picks.iter().map(|&i| UInt256([i as u8; 32])).collect()),
                };
                n3::Message::GetData(n3::InvPayload { kind, hashes })
            }
        };
        let reach = (kind == 2 && start < BLOCKS).then_some(start + 1);
        holds::<N3>(&ask, reach, chain.height(), &answers(chain, n3_store(), &ask));
    }

    #[test]
    fn legacy_server_answers_what_the_client_expects(
        kind in 0u8..3,
        start in 0u32..(BLOCKS + 6),
        stop in proptest::option::of(0u32..(BLOCKS + 6)),
        picks in proptest::collection::vec(0u32..(BLOCKS + 8), 0..6),
        known_reach in any::<bool>(),
    ) {
        let chain = legacy_chain();
        let hash = some_hash(|i| chain.hash(i));
        let stop_hash = stop.map_or(UInt256::ZERO, &hash);
        let locator = legacy::GetBlocksPayload { hash_start: vec![hash(start)], hash_stop: stop_hash };
        // The caller knows the start's height when it holds the start, and
        // the request asks for something (a stop right after the start asks
        // for nothing).
        let asks_something = stop.is_none_or(|s| s != start && s != start + 1);
        let (ask, reach) = match kind {
            0 => (legacy::Message::GetHeaders(locator), start + 1),
            1 => (legacy::Message::GetBlocks(locator), start + 1),
            _ => {
                let hashes: Vec<UInt256> = picks.iter().map(|&i| hash(i)).collect();
                let top = picks.iter().copied().max().unwrap_or(0);
                (
                    legacy::Message::GetData(legacy::InvPayload { kind: legacy::InventoryType::Block, hashes }),
                    top,
                )
            }
        };
        let held = match kind {
            2 => picks.iter().all(|&i| i <= BLOCKS),
            _ => start <= BLOCKS && asks_something && stop.is_none_or(|s| s <= BLOCKS),
        };
        let reach = (known_reach && held).then_some(reach);
        holds::<Legacy>(&ask, reach, chain.height(), &answers(chain, legacy_store(), &ask));
    }
}

// ---- the contract against the reference nodes, as measured

fn n3_headers(start: u32) -> n3::Message {
    n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
        index_start: start,
        count: -1,
    })
}

#[test]
fn neo_go_getheaders_above_its_height_is_not_answered() {
    // neo-go: "getheaders starting above its height: no reply".
    assert_eq!(
        N3::obligation(&n3_headers(11), None, 10),
        Obligation::Beyond {
            kind: RequestKind::Headers,
            height: 10
        }
    );
    assert!(matches!(
        N3::obligation(&n3_headers(10), None, 10),
        Obligation::Answers(e) if e.silence == Silence::Stall && e.items == Some(1)
    ));
}

#[test]
fn neo_go_getdata_answers_unknown_blocks_with_notfound_and_skips_extensibles() {
    let ask = |kind| {
        n3::Message::GetData(n3::InvPayload {
            kind,
            hashes: vec![UInt256([1; 32]), UInt256([1; 32]), UInt256([2; 32])],
        })
    };
    let Obligation::Answers(e) = N3::obligation(&ask(n3::InventoryType::Block), None, 0) else {
        panic!()
    };
    assert_eq!(
        (e.answers, e.silence),
        (2, Silence::Stall),
        "one per distinct hash"
    );
    let Obligation::Answers(e) = N3::obligation(&ask(n3::InventoryType::Extensible), None, 0)
    else {
        panic!()
    };
    assert_eq!(e.silence, Silence::Allowed, "a stale extensible: no reply");
}

#[test]
fn n3_ping_is_always_answered_legacy_ping_never_expected() {
    let ping = PingPayload {
        last_block_index: 0,
        timestamp: 0,
        nonce: 0,
    };
    assert!(matches!(
        N3::obligation(&N3::ping(ping, false), None, 0),
        Obligation::Answers(e) if e.kind == RequestKind::Ping && e.silence == Silence::Stall
    ));
    // NEO•ONE: "ping: ignored, no pong".
    assert_eq!(
        Legacy::obligation(&Legacy::ping(ping, false), None, 0),
        Obligation::Nothing
    );
}

#[test]
fn neo_one_and_csharp_legacy_silences_are_legitimate() {
    let chain = legacy_chain();
    let at = |i| {
        legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![chain.hash(i).unwrap()],
            hash_stop: UInt256::ZERO,
        })
    };
    // C#: silence at its tip; NEO•ONE: an empty `headers` there. Neither
    // may cost a correct remote the connection.
    assert!(matches!(
        Legacy::obligation(&at(BLOCKS), None, BLOCKS),
        Obligation::Answers(e) if e.silence == Silence::Allowed
    ));
    assert!(matches!(
        Legacy::obligation(&at(BLOCKS), Some(BLOCKS + 1), BLOCKS),
        Obligation::Beyond { .. }
    ));
    // NEO•ONE: unknown getdata hashes are skipped silently (no notfound).
    let data = legacy::Message::GetData(legacy::InvPayload {
        kind: legacy::InventoryType::Tx,
        hashes: vec![UInt256([5; 32])],
    });
    assert!(matches!(
        Legacy::obligation(&data, None, BLOCKS),
        Obligation::Answers(e) if e.silence == Silence::Allowed
    ));
    // A node that knows no address (C#) says nothing to getaddr.
    for o in [
        Legacy::obligation(&Legacy::get_addr(), None, 0),
        N3::obligation(&N3::get_addr(), None, 0),
    ] {
        assert!(matches!(o, Obligation::Answers(e) if e.silence == Silence::Allowed));
    }
}
