//! Synthetic chains through the codecs, and the answers a chain gives to
//! `getheaders`, `getblocks`, `getblockbyindex` and `getdata` in both
//! generations. Every answer is framed with the codec and decoded back.

use bytes::BytesMut;
use std::ops::RangeInclusive;

use neo_peer::chain::{Chain, Generation, LegacyChain, N3Chain, Synthetic};
use neo_peer::wire::{Decode, Encode, PingPayload, UInt256, legacy, n3};

fn spec(blocks: u32, txs_per_block: u32, with_bodies: bool) -> Synthetic {
    Synthetic {
        blocks,
        txs_per_block,
        seed: 0x5EED,
        with_bodies,
    }
}

/// Frames every message, decodes the stream back and checks that the same
/// messages come out.
fn n3_wire(msgs: &[n3::Message]) {
    let mut codec = n3::Codec::new();
    let mut buf = BytesMut::new();
    for m in msgs {
        codec.encode(m, &mut buf).expect("answer must be encodable");
    }
    for m in msgs {
        assert_eq!(codec.decode(&mut buf).unwrap().as_ref(), Some(m));
    }
    assert!(buf.is_empty());
}

fn legacy_wire(msgs: &[legacy::Message]) {
    let mut codec = legacy::Codec::new(legacy::PRIVNET_MAGIC);
    let mut buf = BytesMut::new();
    for m in msgs {
        codec.encode(m, &mut buf).expect("answer must be encodable");
    }
    for m in msgs {
        assert_eq!(codec.decode(&mut buf).unwrap().as_ref(), Some(m));
    }
    assert!(buf.is_empty());
}

fn n3_answer(chain: &N3Chain, msg: n3::Message) -> Vec<n3::Message> {
    let answer = chain.answer(&msg);
    n3_wire(&answer);
    answer
}

fn legacy_answer(chain: &LegacyChain, msg: legacy::Message) -> Vec<legacy::Message> {
    let answer = chain.answer(&msg);
    legacy_wire(&answer);
    answer
}

fn n3_get_headers(index_start: u32, count: i16) -> n3::Message {
    n3::Message::GetHeaders(n3::GetBlockByIndexPayload { index_start, count })
}

fn n3_get_blocks_by_index(index_start: u32, count: i16) -> n3::Message {
    n3::Message::GetBlockByIndex(n3::GetBlockByIndexPayload { index_start, count })
}

fn n3_get_blocks(hash_start: UInt256, count: i16) -> n3::Message {
    n3::Message::GetBlocks(n3::GetBlocksPayload { hash_start, count })
}

fn n3_get_data(kind: n3::InventoryType, hashes: Vec<UInt256>) -> n3::Message {
    n3::Message::GetData(n3::InvPayload { kind, hashes })
}

fn legacy_locator(start: Vec<UInt256>, stop: UInt256) -> legacy::GetBlocksPayload {
    legacy::GetBlocksPayload {
        hash_start: start,
        hash_stop: stop,
    }
}

fn unknown(i: u32) -> UInt256 {
    let mut raw = [0xEE; 32];
    raw[..4].copy_from_slice(&i.to_le_bytes());
    UInt256(raw)
}

/// Indices of the headers in an N3 `headers` answer.
fn n3_header_indices(answer: &[n3::Message]) -> Vec<u32> {
    match answer {
        [n3::Message::Headers(p)] => p.iter().map(|h| h.index).collect(),
        [] => Vec::new(),
        other => panic!("unexpected answer {other:?}"),
    }
}

fn legacy_header_indices(answer: &[legacy::Message]) -> Vec<u32> {
    match answer {
        [legacy::Message::Headers(p)] => p.headers.iter().map(|h| h.base.index).collect(),
        [] => Vec::new(),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// The hashes a chain holds at `heights`.
fn hash_range<G: Generation>(chain: &Chain<G>, heights: RangeInclusive<u32>) -> Vec<UInt256> {
    heights.map(|i| chain.hash(i).unwrap()).collect()
}

fn range(first: u32, last: u32) -> Vec<u32> {
    (first..=last).collect()
}

// ---------------------------------------------------------------- generator

#[test]
fn n3_synthetic_chain_goes_through_the_codec() {
    let chain = N3Chain::synthetic(&spec(40, 3, true));
    assert_eq!(chain.height(), 40);
    assert_eq!(chain.len(), 41);
    let mut prev: Option<UInt256> = None;
    for (i, block) in chain.blocks().enumerate() {
        let bytes = block.to_bytes();
        let decoded = n3::Block::decode_exact(bytes.clone()).unwrap();
        assert_eq!(&decoded, block);
        assert_eq!(decoded.to_bytes(), bytes);
        decoded.check().unwrap();
        decoded.validate().unwrap();
        let h = &decoded.header;
        assert_eq!(h.index as usize, i);
        assert_eq!(h.hash(), chain.hash(i as u32).unwrap());
        assert_eq!(h.prev_hash, prev.unwrap_or(UInt256::ZERO));
        if i > 0 {
            assert_eq!(decoded.transactions.len(), 3);
            assert!(h.timestamp > chain.header(i as u32 - 1).unwrap().timestamp);
        }
        for tx in &decoded.transactions {
            let tx_bytes = tx.to_bytes();
            assert_eq!(n3::Transaction::decode_exact(tx_bytes).unwrap(), *tx);
        }
        prev = Some(h.hash());
    }
    let mut nonces: Vec<u32> = chain
        .blocks()
        .flat_map(|b| b.transactions.iter().map(|t| t.nonce))
        .collect();
    nonces.sort_unstable();
    nonces.dedup();
    assert_eq!(nonces.len(), 40 * 3);
    n3_wire(&[
        n3::Message::Headers(n3::HeadersPayload::new(
            &chain.headers().cloned().collect::<Vec<_>>(),
        )),
        n3::Message::Block(chain.block(40).unwrap().clone()),
    ]);
}

#[test]
fn legacy_synthetic_chain_goes_through_the_codec() {
    let chain = LegacyChain::synthetic(&spec(40, 3, true));
    assert_eq!(chain.height(), 40);
    let mut prev: Option<UInt256> = None;
    for (i, block) in chain.blocks().enumerate() {
        let bytes = block.to_bytes();
        let decoded = legacy::Block::decode_exact(bytes.clone()).unwrap();
        assert_eq!(&decoded, block);
        assert_eq!(decoded.to_bytes(), bytes);
        decoded.check().unwrap();
        let h = &decoded.base;
        assert_eq!(h.index as usize, i);
        assert_eq!(h.hash(), chain.hash(i as u32).unwrap());
        assert_eq!(h.prev_hash, prev.unwrap_or(UInt256::ZERO));
        let header = legacy::Header::decode_exact(decoded.header().to_bytes()).unwrap();
        assert_eq!(header.hash(), h.hash());
        if i > 0 {
            assert_eq!(decoded.transactions.len(), 4);
        }
        for tx in &decoded.transactions {
            tx.check_limits().unwrap();
            assert_eq!(
                legacy::Transaction::decode_exact(tx.to_bytes()).unwrap(),
                *tx
            );
        }
        prev = Some(h.hash());
    }
    legacy_wire(&[
        legacy::Message::Headers(legacy::HeadersPayload {
            headers: chain.headers().cloned().collect(),
        }),
        legacy::Message::Block(Box::new(chain.block(40).unwrap().clone())),
    ]);
}

#[test]
fn header_only_chains_link_and_decode() {
    let chain = N3Chain::synthetic(&spec(300, 2, false));
    assert_eq!(chain.block_count(), 0);
    for w in chain.headers().collect::<Vec<_>>().windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash());
        assert_eq!(w[1].index, w[0].index + 1);
        let h = n3::Header::decode_exact(w[1].to_bytes()).unwrap();
        assert_eq!(h.hash(), w[1].hash());
    }
    let chain = LegacyChain::synthetic(&spec(300, 2, false));
    for w in chain.headers().collect::<Vec<_>>().windows(2) {
        assert_eq!(w[1].base.prev_hash, w[0].hash());
        assert_eq!(w[1].base.index, w[0].base.index + 1);
        let h = legacy::Header::decode_exact(w[1].to_bytes()).unwrap();
        assert_eq!(h.hash(), w[1].hash());
    }
}

#[test]
fn same_seed_same_bytes() {
    let a = N3Chain::synthetic(&spec(20, 2, true));
    let b = N3Chain::synthetic(&spec(20, 2, true));
    let bytes = |c: &N3Chain| -> Vec<u8> { c.blocks().flat_map(|b| b.to_bytes()).collect() };
    assert_eq!(bytes(&a), bytes(&b));
    let a = LegacyChain::synthetic(&spec(20, 2, true));
    let b = LegacyChain::synthetic(&spec(20, 2, true));
    let bytes = |c: &LegacyChain| -> Vec<u8> { c.blocks().flat_map(|b| b.to_bytes()).collect() };
    assert_eq!(bytes(&a), bytes(&b));
}

// ----------------------------------------------------------------- N3 rules

#[test]
fn n3_getheaders() {
    let chain = N3Chain::synthetic(&spec(2500, 0, false));
    // -1 and 2000 give 2000, from the start height inclusive.
    for count in [-1, 2000] {
        let a = n3_answer(&chain, n3_get_headers(0, count));
        assert_eq!(n3_header_indices(&a), range(0, 1999));
    }
    assert_eq!(
        n3_header_indices(&n3_answer(&chain, n3_get_headers(7, 3))),
        [7, 8, 9]
    );
    // Stops at the tip.
    assert_eq!(
        n3_header_indices(&n3_answer(&chain, n3_get_headers(2000, -1))),
        range(2000, 2500)
    );
    assert_eq!(
        n3_header_indices(&n3_answer(&chain, n3_get_headers(2500, 2000))),
        [2500]
    );
    // Above the tip, or a count the decoder refuses: silence.
    for (start, count) in [
        (2501, -1),
        (u32::MAX, -1),
        (u32::MAX, 2000),
        (5, 0),
        (5, -2),
    ] {
        assert!(n3_answer(&chain, n3_get_headers(start, count)).is_empty());
    }
    // The headers are the chain's.
    let a = n3_answer(&chain, n3_get_headers(100, 2));
    let [n3::Message::Headers(p)] = a.as_slice() else {
        panic!()
    };
    assert!(p.iter().eq(chain.headers().skip(100).take(2).cloned()));
}

#[test]
fn n3_getblockbyindex() {
    let chain = N3Chain::synthetic(&spec(620, 0, true));
    let indices = |a: &[n3::Message]| -> Vec<u32> {
        a.iter()
            .map(|m| match m {
                n3::Message::Block(b) => b.header.index,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    for count in [-1, 500, 2000] {
        assert_eq!(
            indices(&n3_answer(&chain, n3_get_blocks_by_index(0, count))),
            range(0, 499)
        );
    }
    assert_eq!(
        indices(&n3_answer(&chain, n3_get_blocks_by_index(3, 1))),
        [3]
    );
    assert_eq!(
        indices(&n3_answer(&chain, n3_get_blocks_by_index(600, -1))),
        range(600, 620)
    );
    for (start, count) in [(621, -1), (u32::MAX, -1), (1, 0), (1, i16::MIN)] {
        assert!(n3_answer(&chain, n3_get_blocks_by_index(start, count)).is_empty());
    }
    // A chain of headers only has no block to give.
    let bare = N3Chain::synthetic(&spec(10, 1, false));
    assert!(n3_answer(&bare, n3_get_blocks_by_index(0, -1)).is_empty());
    // The blocks are the chain's, with their transactions.
    let full = N3Chain::synthetic(&spec(5, 4, true));
    let a = n3_answer(&full, n3_get_blocks_by_index(2, 2));
    assert_eq!(
        a,
        [
            n3::Message::Block(full.block(2).unwrap().clone()),
            n3::Message::Block(full.block(3).unwrap().clone())
        ]
    );
}

#[test]
fn n3_getblocks() {
    let chain = N3Chain::synthetic(&spec(620, 0, true));
    let hashes = |a: &[n3::Message]| -> Vec<UInt256> {
        match a {
            [n3::Message::Inv(p)] => {
                assert_eq!(p.kind, n3::InventoryType::Block);
                p.hashes.clone()
            }
            [] => Vec::new(),
            other => panic!("unexpected {other:?}"),
        }
    };
    let genesis = chain.genesis_hash();
    for count in [-1, 500, 501, i16::MAX] {
        let a = n3_answer(&chain, n3_get_blocks(genesis, count));
        assert_eq!(hashes(&a), hash_range(&chain, 1..=500));
    }
    let a = n3_answer(&chain, n3_get_blocks(chain.hash(10).unwrap(), 2));
    assert_eq!(hashes(&a), hash_range(&chain, 11..=12));
    let a = n3_answer(&chain, n3_get_blocks(chain.hash(615).unwrap(), -1));
    assert_eq!(hashes(&a), hash_range(&chain, 616..=620));
    // At the tip, unknown start, refused counts: silence (never an empty inv).
    for (start, count) in [
        (chain.tip_hash(), -1),
        (unknown(1), -1),
        (UInt256::ZERO, -1),
        (genesis, 0),
        (genesis, -5),
    ] {
        assert!(n3_answer(&chain, n3_get_blocks(start, count)).is_empty());
    }
    // Only blocks whose body is held are announced.
    let bare = N3Chain::synthetic(&spec(10, 0, false));
    assert!(n3_answer(&bare, n3_get_blocks(bare.genesis_hash(), -1)).is_empty());
}

#[test]
fn n3_getdata_blocks_and_notfound() {
    let chain = N3Chain::synthetic(&spec(10, 2, true));
    let ask = vec![
        chain.hash(3).unwrap(),
        unknown(1),
        chain.hash(5).unwrap(),
        unknown(2),
        chain.hash(3).unwrap(),
    ];
    let a = n3_answer(&chain, n3_get_data(n3::InventoryType::Block, ask));
    assert_eq!(
        a,
        [
            n3::Message::Block(chain.block(3).unwrap().clone()),
            n3::Message::Block(chain.block(5).unwrap().clone()),
            n3::Message::NotFound(n3::InvPayload {
                kind: n3::InventoryType::Block,
                hashes: vec![unknown(1), unknown(2)],
            }),
        ]
    );
    // All known: no notfound.
    let a = n3_answer(
        &chain,
        n3_get_data(n3::InventoryType::Block, vec![chain.tip_hash()]),
    );
    assert_eq!(a.len(), 1);
    // A transaction hash asked as a block is not a block.
    let tx = chain.block(2).unwrap().transactions[1].clone();
    let a = n3_answer(
        &chain,
        n3_get_data(n3::InventoryType::Block, vec![tx.hash()]),
    );
    assert!(matches!(a.as_slice(), [n3::Message::NotFound(_)]));
}

#[test]
fn n3_getdata_transactions() {
    let chain = N3Chain::synthetic(&spec(10, 3, true));
    let t1 = chain.block(1).unwrap().transactions[0].clone();
    let t9 = chain.block(9).unwrap().transactions[2].clone();
    let a = n3_answer(
        &chain,
        n3_get_data(
            n3::InventoryType::Transaction,
            vec![unknown(7), t9.hash(), t1.hash(), chain.hash(1).unwrap()],
        ),
    );
    assert_eq!(
        a,
        [
            n3::Message::Transaction(t9),
            n3::Message::Transaction(t1),
            n3::Message::NotFound(n3::InvPayload {
                kind: n3::InventoryType::Transaction,
                hashes: vec![unknown(7), chain.hash(1).unwrap()],
            }),
        ]
    );
}

#[test]
fn n3_getdata_splits_notfound_at_500() {
    let chain = N3Chain::synthetic(&spec(3, 0, true));
    let mut ask: Vec<UInt256> = (0..501).map(unknown).collect();
    ask.insert(250, chain.hash(2).unwrap());
    let a = n3_answer(&chain, n3_get_data(n3::InventoryType::Block, ask));
    let [
        n3::Message::Block(b),
        n3::Message::NotFound(first),
        n3::Message::NotFound(second),
    ] = a.as_slice()
    else {
        panic!("unexpected {a:?}")
    };
    assert_eq!(b.header.index, 2);
    assert_eq!(first.hashes, (0..500).map(unknown).collect::<Vec<_>>());
    assert_eq!(second.hashes, [unknown(500)]);
    // Exactly 500 missing: one notfound.
    let ask: Vec<UInt256> = (0..500).map(unknown).collect();
    let a = n3_answer(&chain, n3_get_data(n3::InventoryType::Transaction, ask));
    assert!(matches!(a.as_slice(), [n3::Message::NotFound(p)] if p.hashes.len() == 500));
}

#[test]
fn n3_getdata_skips_extensibles_and_empty_requests() {
    let chain = N3Chain::synthetic(&spec(3, 1, true));
    for kind in [
        n3::InventoryType::Extensible,
        n3::InventoryType::P2PNotaryRequest,
    ] {
        let ask = vec![unknown(1), chain.hash(1).unwrap()];
        assert!(n3_answer(&chain, n3_get_data(kind, ask)).is_empty());
    }
    assert!(n3_answer(&chain, n3_get_data(n3::InventoryType::Block, Vec::new())).is_empty());
}

#[test]
fn n3_header_only_getdata_block_is_notfound() {
    let chain = N3Chain::synthetic(&spec(3, 1, false));
    let a = n3_answer(
        &chain,
        n3_get_data(n3::InventoryType::Block, vec![chain.tip_hash()]),
    );
    assert_eq!(
        a,
        [n3::Message::NotFound(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes: vec![chain.tip_hash()],
        })]
    );
}

#[test]
fn n3_other_messages_get_no_answer() {
    let chain = N3Chain::synthetic(&spec(3, 1, true));
    let ping = PingPayload {
        last_block_index: 0,
        timestamp: 0,
        nonce: 1,
    };
    for m in [
        n3::Message::Ping(ping),
        n3::Message::Pong(ping),
        n3::Message::GetAddr,
        n3::Message::Mempool,
        n3::Message::Verack,
        n3::Message::Inv(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes: vec![chain.tip_hash()],
        }),
        n3::Message::NotFound(n3::InvPayload {
            kind: n3::InventoryType::Block,
            hashes: vec![chain.tip_hash()],
        }),
        n3::Message::Block(chain.block(1).unwrap().clone()),
    ] {
        assert!(chain.answer(&m).is_empty(), "{m:?}");
    }
}

// ------------------------------------------------------------- Legacy rules

#[test]
fn legacy_getheaders() {
    let chain = LegacyChain::synthetic(&spec(2500, 0, false));
    let ask = |start: Vec<UInt256>, stop: UInt256| {
        legacy_header_indices(&legacy_answer(
            &chain,
            legacy::Message::GetHeaders(legacy_locator(start, stop)),
        ))
    };
    let h = |i: u32| chain.hash(i).unwrap();
    // After the start (exclusive), up to 2000; a zero stop means no stop.
    assert_eq!(ask(vec![h(0)], UInt256::ZERO), range(1, 2000));
    assert_eq!(ask(vec![h(700)], UInt256::ZERO), range(701, 2500));
    // The stop header is not included.
    assert_eq!(ask(vec![h(0)], h(10)), range(1, 9));
    assert_eq!(ask(vec![h(5)], h(6)), Vec::<u32>::new());
    // A stop that is not ahead of the start does not stop anything.
    assert_eq!(ask(vec![h(2490)], h(3)), range(2491, 2500));
    assert_eq!(ask(vec![h(2490)], unknown(3)), range(2491, 2500));
    // Only the first start hash counts.
    assert_eq!(ask(vec![h(100), h(5)], UInt256::ZERO), range(101, 2100));
    assert_eq!(
        ask(vec![unknown(1), h(5)], UInt256::ZERO),
        Vec::<u32>::new()
    );
    // Silence: start == stop, unknown start, at the tip, no start.
    assert_eq!(ask(vec![h(4)], h(4)), Vec::<u32>::new());
    assert_eq!(ask(vec![unknown(9)], UInt256::ZERO), Vec::<u32>::new());
    assert_eq!(
        ask(vec![chain.tip_hash()], UInt256::ZERO),
        Vec::<u32>::new()
    );
    assert_eq!(ask(Vec::new(), UInt256::ZERO), Vec::<u32>::new());
    // The headers are the chain's.
    let a = legacy_answer(
        &chain,
        legacy::Message::GetHeaders(legacy_locator(vec![h(1)], h(4))),
    );
    let [legacy::Message::Headers(p)] = a.as_slice() else {
        panic!()
    };
    assert!(p.headers.iter().eq(chain.headers().skip(2).take(2)));
}

#[test]
fn legacy_getblocks() {
    let chain = LegacyChain::synthetic(&spec(620, 0, true));
    let h = |i: u32| chain.hash(i).unwrap();
    let ask = |start: Vec<UInt256>, stop: UInt256| -> Vec<UInt256> {
        let a = legacy_answer(
            &chain,
            legacy::Message::GetBlocks(legacy_locator(start, stop)),
        );
        match a.as_slice() {
            [legacy::Message::Inv(p)] => {
                assert_eq!(p.kind, legacy::InventoryType::Block);
                p.hashes.clone()
            }
            [] => Vec::new(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(ask(vec![h(0)], UInt256::ZERO), hash_range(&chain, 1..=500));
    assert_eq!(
        ask(vec![h(600)], UInt256::ZERO),
        hash_range(&chain, 601..=620)
    );
    assert_eq!(ask(vec![h(0)], h(4)), hash_range(&chain, 1..=3));
    for (start, stop) in [
        (vec![h(3)], h(3)),
        (vec![unknown(1)], UInt256::ZERO),
        (vec![chain.tip_hash()], UInt256::ZERO),
        (Vec::new(), UInt256::ZERO),
        (vec![h(3)], h(4)),
    ] {
        assert!(ask(start, stop).is_empty());
    }
    // Only blocks whose body is held are announced.
    let bare = LegacyChain::synthetic(&spec(10, 0, false));
    let a = bare.answer(&legacy::Message::GetBlocks(legacy_locator(
        vec![bare.genesis_hash()],
        UInt256::ZERO,
    )));
    assert!(a.is_empty());
}

#[test]
fn legacy_getdata_skips_unknown_hashes() {
    let chain = LegacyChain::synthetic(&spec(10, 3, true));
    let get = |kind, hashes| {
        legacy_answer(
            &chain,
            legacy::Message::GetData(legacy::InvPayload { kind, hashes }),
        )
    };
    let a = get(
        legacy::InventoryType::Block,
        vec![
            unknown(1),
            chain.hash(4).unwrap(),
            unknown(2),
            chain.hash(0).unwrap(),
        ],
    );
    assert_eq!(
        a,
        [
            legacy::Message::Block(Box::new(chain.block(4).unwrap().clone())),
            legacy::Message::Block(Box::new(chain.block(0).unwrap().clone())),
        ]
    );
    let miner = chain.block(6).unwrap().transactions[0].clone();
    let invocation = chain.block(2).unwrap().transactions[2].clone();
    let a = get(
        legacy::InventoryType::Tx,
        vec![miner.hash(), unknown(3), invocation.hash(), miner.hash()],
    );
    assert_eq!(
        a,
        [
            legacy::Message::Tx(Box::new(miner)),
            legacy::Message::Tx(Box::new(invocation)),
        ]
    );
    // Nothing known: silence (NEO 2 has no notfound), even for 600 hashes.
    assert!(
        get(
            legacy::InventoryType::Block,
            (0..600).map(unknown).collect()
        )
        .is_empty()
    );
    for kind in [
        legacy::InventoryType::Consensus,
        legacy::InventoryType::StateRoot,
    ] {
        assert!(get(kind, vec![chain.hash(1).unwrap()]).is_empty());
    }
}

#[test]
fn legacy_other_messages_get_no_answer() {
    let chain = LegacyChain::synthetic(&spec(3, 1, true));
    for m in [
        legacy::Message::GetAddr,
        legacy::Message::Mempool,
        legacy::Message::Verack,
        legacy::Message::Ping(PingPayload::default()),
        legacy::Message::Inv(legacy::InvPayload {
            kind: legacy::InventoryType::Block,
            hashes: vec![chain.tip_hash()],
        }),
        legacy::Message::Headers(legacy::HeadersPayload {
            headers: chain.headers().cloned().collect(),
        }),
    ] {
        assert!(chain.answer(&m).is_empty(), "{m:?}");
    }
}

#[test]
fn requests_from_the_wire_are_answered() {
    // A request as it arrives: framed by a peer, decoded, answered, framed back.
    let chain = N3Chain::synthetic(&spec(30, 1, true));
    let mut codec = n3::Codec::new();
    let mut buf = BytesMut::new();
    codec.encode(&n3_get_headers(25, -1), &mut buf).unwrap();
    let request = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        n3_header_indices(&n3_answer(&chain, request)),
        range(25, 30)
    );

    let chain = LegacyChain::synthetic(&spec(30, 1, true));
    let mut codec = legacy::Codec::new(legacy::MAINNET_MAGIC);
    let request =
        legacy::Message::GetHeaders(legacy_locator(vec![chain.hash(27).unwrap()], UInt256::ZERO));
    codec.encode(&request, &mut buf).unwrap();
    let request = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        legacy_header_indices(&legacy_answer(&chain, request)),
        [28, 29, 30]
    );
}

/// Many peers served by one [`ChainServer`] ask for the same answers: each
/// is built and encoded once, and every peer gets the same bytes.
fn shared_answers_are_built_once<P>(chain: Chain<P>, asks: Vec<P::Message>)
where
    P: neo_peer::chain::Serve,
    Chain<P>: Send + Sync,
{
    use neo_peer::chain::ChainServer;
    use neo_peer::executor::SmolGlobal;
    use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    const PEERS: usize = 12;
    let config = |nonce: u32| {
        let mut c = LocalConfig::<P>::new(0x0074_6E41);
        c.identity.nonce = nonce;
        c
    };
    let chain = Arc::new(chain);
    let server = ChainServer::new(chain.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let got: Vec<Vec<String>> = smol::block_on(async {
        let mut clients = Vec::new();
        for i in 0..PEERS as u32 {
            let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (b, _) = listener.accept().unwrap();
            let ours: Peer<P> = Peer::new(
                smol::Async::new(b).unwrap(),
                Direction::Inbound,
                config(1000 + i),
                server.clone(),
                SmolGlobal,
            );
            let theirs: Peer<P> = Peer::new(
                smol::Async::new(a).unwrap(),
                Direction::Outbound,
                config(2000 + i),
                IgnoreAll,
                SmolGlobal,
            );
            let (x, y) = futures_lite::future::zip(ours.run(), theirs.run()).await;
            x.unwrap();
            y.unwrap();
            clients.push((ours, theirs));
        }
        // Everyone asks at once.
        let asking: Vec<_> = clients
            .iter()
            .map(|(_, theirs)| {
                let (theirs, asks) = (theirs.clone(), asks.clone());
                smol::spawn(async move {
                    let mut answers = Vec::new();
                    for ask in asks {
                        for answer in theirs.request_all(ask).await.unwrap() {
                            answers.push(format!("{answer:?}"));
                        }
                    }
                    answers
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in asking {
            all.push(task.await);
        }
        all
    });
    let frames = server.frames();
    let want: Vec<String> = asks
        .iter()
        .flat_map(|ask| chain.answer(ask))
        .map(|m| format!("{m:?}"))
        .collect();
    assert!(!want.is_empty());
    for answers in &got {
        assert_eq!(answers, &want, "every peer gets the same answers");
    }
    // One encoding per answer, whatever the number of peers.
    assert_eq!(frames.encoded(), want.len() as u64, "{frames:?}");
    assert_eq!(
        frames.hits(),
        ((PEERS - 1) * want.len()) as u64,
        "{frames:?}"
    );
    assert!(frames.bytes() > 0 && frames.len() == want.len());
}

#[test]
fn n3_shared_answers_are_built_once() {
    let chain = N3Chain::synthetic(&spec(2100, 1, true));
    shared_answers_are_built_once(
        chain,
        vec![n3_get_headers(0, -1), n3_get_blocks_by_index(5, 3)],
    );
}

#[test]
fn legacy_shared_answers_are_built_once() {
    let chain = LegacyChain::synthetic(&spec(2100, 1, true));
    let ask =
        legacy::Message::GetHeaders(legacy_locator(vec![chain.hash(0).unwrap()], UInt256::ZERO));
    let blocks = legacy::Message::GetData(legacy::InvPayload {
        kind: legacy::InventoryType::Block,
        hashes: hash_range(&chain, 5..=7),
    });
    shared_answers_are_built_once(chain, vec![ask, blocks]);
}
