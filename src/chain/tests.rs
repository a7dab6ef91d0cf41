//! Unit tests of the chain store and the generator.

use super::synthetic::interop_id;
use super::*;
use crate::wire::{Witness, n3};
use bytes::Bytes;

fn n3_spec(blocks: u32, txs: u32, seed: u64, with_bodies: bool) -> Synthetic {
    Synthetic {
        blocks,
        txs_per_block: txs,
        seed,
        with_bodies,
    }
}

/// A linked N3 header after `prev` (no transactions).
fn n3_next(prev: &n3::Header) -> n3::Header {
    n3::Header {
        prev_hash: prev.hash(),
        index: prev.index + 1,
        timestamp: prev.timestamp + 15_000,
        ..prev.clone()
    }
}

#[test]
fn genesis_must_be_at_height_zero() {
    let chain = N3Chain::synthetic(&n3_spec(2, 0, 1, false));
    let h1 = chain.header(1).unwrap().clone();
    assert_eq!(
        N3Chain::new(h1).unwrap_err(),
        ChainError::GenesisIndex { got: 1 }
    );
    assert_eq!(
        N3Chain::from_headers(Vec::new()).unwrap_err(),
        ChainError::NoGenesis
    );
    assert_eq!(
        LegacyChain::from_blocks(Vec::new()).unwrap_err(),
        ChainError::NoGenesis
    );
}

#[test]
fn push_header_checks_index_and_prev_hash() {
    let source = N3Chain::synthetic(&n3_spec(3, 0, 7, false));
    let chain = N3Chain::new(source.header(0).unwrap().clone()).unwrap();

    // Skipping a height.
    let h2 = source.header(2).unwrap().clone();
    assert_eq!(
        chain.push_header(h2.clone()),
        Err(ChainError::Index {
            expected: 1,
            got: 2
        })
    );
    // Right index, wrong parent.
    let mut stray = source.header(1).unwrap().clone();
    stray.prev_hash = UInt256([9; 32]);
    assert_eq!(
        chain.push_header(stray),
        Err(ChainError::PrevHash {
            index: 1,
            expected: source.genesis_hash(),
            got: UInt256([9; 32]),
        })
    );
    assert_eq!(chain.height(), 0);
    assert_eq!(chain.len(), 1);

    chain
        .push_header(source.header(1).unwrap().clone())
        .unwrap();
    chain.push_header(h2).unwrap();
    assert_eq!(chain.height(), 2);
    assert_eq!(chain.tip_hash(), source.hash(2).unwrap());
    // The same header twice does not link any more.
    assert!(matches!(
        chain.push_header(source.header(2).unwrap().clone()),
        Err(ChainError::Index {
            expected: 3,
            got: 2
        })
    ));
}

#[test]
fn push_header_refuses_what_cannot_be_sent() {
    let source = N3Chain::synthetic(&n3_spec(1, 0, 7, false));
    let chain = N3Chain::new(source.header(0).unwrap().clone()).unwrap();
    let mut h = n3_next(source.header(0).unwrap());
    h.witness = Witness {
        invocation: Bytes::from(vec![0u8; 1025]),
        verification: Bytes::new(),
    };
    assert!(matches!(
        chain.push_header(h),
        Err(ChainError::InvalidHeader { index: 1, .. })
    ));
    let mut h = n3_next(source.header(0).unwrap());
    h.version = 1;
    assert!(matches!(
        chain.push_header(h),
        Err(ChainError::InvalidHeader { index: 1, .. })
    ));
    assert_eq!(chain.height(), 0);
}

#[test]
fn push_block_checks_the_merkle_root() {
    let source = N3Chain::synthetic(&n3_spec(2, 3, 5, true));
    let chain = N3Chain::from_genesis_block(source.block(0).unwrap().clone()).unwrap();
    let mut bad = source.block(1).unwrap().clone();
    bad.transactions.pop();
    // The header (and so the hash) is unchanged; only the body is wrong.
    assert_eq!(
        chain.push_block(bad.clone()),
        Err(ChainError::MerkleRoot {
            index: 1,
            expected: bad.header.merkle_root,
            got: crate::wire::merkle_root(&bad.tx_hashes()),
        })
    );
    // The same transaction twice gives the same root (the last one of an
    // odd count is paired with itself), but is no valid block.
    let mut doubled = source.block(1).unwrap().clone();
    let last = doubled.transactions[2].clone();
    doubled.transactions.push(last);
    assert!(doubled.merkle_root_ok());
    let err = chain.push_block(doubled).unwrap_err();
    assert!(
        matches!(err, ChainError::InvalidBlock { index: 1, .. }),
        "{err}"
    );
    assert_eq!(err.height(), Some(1));
    assert_eq!(chain.height(), 0);
    assert_eq!(chain.tx_count(), 0);
    chain.push_block(source.block(1).unwrap().clone()).unwrap();
    assert_eq!(chain.block_count(), 2);
    assert_eq!(chain.tx_count(), 3);
}

#[test]
fn legacy_push_block_needs_a_miner_transaction() {
    let source = LegacyChain::synthetic(&n3_spec(1, 2, 5, true));
    let chain = LegacyChain::from_genesis_block(source.block(0).unwrap().clone()).unwrap();
    let mut bad = source.block(1).unwrap().clone();
    bad.transactions.remove(0);
    bad.base.merkle_root = bad.merkle_root();
    let err = chain.push_block(bad).unwrap_err();
    assert!(
        matches!(err, ChainError::InvalidBlock { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("MinerTransaction"), "{err}");
}

#[test]
fn bodies_follow_headers_in_order() {
    let source = LegacyChain::synthetic(&n3_spec(4, 1, 3, true));
    let chain = LegacyChain::from_headers(source.headers().cloned()).unwrap();
    assert_eq!(chain.block_count(), 0);
    assert_eq!(chain.block_height(), None);

    // Body of height 2 before those of 0 and 1.
    assert_eq!(
        chain.push_block(source.block(2).unwrap().clone()),
        Err(ChainError::BodyGap {
            expected: 0,
            got: 2
        })
    );
    chain.push_block(source.block(0).unwrap().clone()).unwrap();
    // A different block at a known height.
    let other = LegacyChain::synthetic(&n3_spec(4, 1, 4, true));
    assert_eq!(
        chain.push_block(other.block(1).unwrap().clone()),
        Err(ChainError::HashMismatch {
            index: 1,
            expected: source.hash(1).unwrap(),
            got: other.hash(1).unwrap(),
        })
    );
    for i in 1..=4 {
        chain.push_block(source.block(i).unwrap().clone()).unwrap();
    }
    assert_eq!(
        chain.push_block(source.block(3).unwrap().clone()),
        Err(ChainError::Duplicate {
            hash: source.hash(3).unwrap(),
            index: 3
        })
    );
    assert_eq!(chain.block_height(), Some(4));
    assert!(chain.hashes().eq(source.hashes()));
    assert!(chain.blocks().eq(source.blocks()));
}

#[test]
fn a_block_past_the_bodies_is_a_gap() {
    let source = N3Chain::synthetic(&n3_spec(2, 0, 3, true));
    let chain = N3Chain::new(source.header(0).unwrap().clone()).unwrap();
    chain
        .push_header(source.header(1).unwrap().clone())
        .unwrap();
    assert_eq!(
        chain.push_block(source.block(2).unwrap().clone()),
        Err(ChainError::BodyGap {
            expected: 0,
            got: 2
        })
    );
    assert_eq!(chain.height(), 1);
}

#[test]
fn lookups_by_height_and_hash() {
    let chain = N3Chain::synthetic(&n3_spec(20, 2, 11, true));
    assert_eq!(chain.len(), 21);
    assert!(!chain.is_empty());
    assert_eq!(chain.genesis_hash(), chain.hash(0).unwrap());
    for (i, h) in chain.headers().enumerate() {
        let i = i as u32;
        assert_eq!(chain.hash(i), Some(h.hash()));
        assert_eq!(chain.index_of(&h.hash()), Some(i));
        assert_eq!(chain.header_by_hash(&h.hash()), Some(h));
        assert_eq!(chain.block_by_hash(&h.hash()).map(|b| &b.header), Some(h));
    }
    assert_eq!(chain.header(21), None);
    assert_eq!(chain.block(u32::MAX), None);
    assert_eq!(chain.hash(u32::MAX), None);
    assert_eq!(chain.index_of(&UInt256([1; 32])), None);
    assert_eq!(chain.tx_count(), 40);
    let tx = &chain.block(7).unwrap().transactions[1];
    assert_eq!(chain.transaction(&tx.hash()), Some(tx));
    assert_eq!(
        chain.tx_location(&tx.hash()),
        Some(TxLocation {
            height: 7,
            position: 1
        })
    );
}

#[test]
fn generation_is_deterministic_and_seeded() {
    for bodies in [false, true] {
        let a = N3Chain::synthetic(&n3_spec(30, 2, 42, bodies));
        let b = N3Chain::synthetic(&n3_spec(30, 2, 42, bodies));
        let c = N3Chain::synthetic(&n3_spec(30, 2, 43, bodies));
        assert!(a.headers().eq(b.headers()));
        assert!(a.blocks().eq(b.blocks()));
        assert_ne!(a.tip_hash(), c.tip_hash());
        let a = LegacyChain::synthetic(&n3_spec(30, 2, 42, bodies));
        let b = LegacyChain::synthetic(&n3_spec(30, 2, 42, bodies));
        let c = LegacyChain::synthetic(&n3_spec(30, 2, 43, bodies));
        assert!(a.headers().eq(b.headers()));
        assert!(a.blocks().eq(b.blocks()));
        assert_ne!(a.tip_hash(), c.tip_hash());
    }
}

#[test]
fn headers_do_not_depend_on_keeping_bodies() {
    let full = N3Chain::synthetic(&n3_spec(25, 3, 9, true));
    let bare = N3Chain::synthetic(&n3_spec(25, 3, 9, false));
    assert!(full.headers().eq(bare.headers()));
    assert_eq!(bare.block_count(), 0);
    assert_eq!(bare.tx_count(), 0);
    let full = LegacyChain::synthetic(&n3_spec(25, 3, 9, true));
    let bare = LegacyChain::synthetic(&n3_spec(25, 3, 9, false));
    assert!(full.headers().eq(bare.headers()));
    assert_eq!(bare.block_count(), 0);
}

#[test]
fn interop_ids_are_the_known_ones() {
    assert_eq!(
        interop_id("System.Crypto.CheckMultisig"),
        [0x9e, 0xd0, 0xdc, 0x3a]
    );
    assert_eq!(
        interop_id("System.Crypto.CheckSig"),
        [0x56, 0xe7, 0xb3, 0x27]
    );
    assert_eq!(interop_id("System.Contract.Call"), [0x62, 0x7d, 0x5b, 0x52]);
}

#[test]
fn n3_witnesses_have_the_multisig_shape() {
    let chain = N3Chain::synthetic(&n3_spec(3, 1, 2, true));
    let genesis = &chain.header(0).unwrap().witness;
    assert!(genesis.invocation.is_empty());
    assert_eq!(&genesis.verification[..], &[0x11]);
    for h in chain.headers().skip(1) {
        let inv = &h.witness.invocation;
        assert_eq!(inv.len(), 5 * 66);
        assert!(inv.chunks(66).all(|s| s[0] == 0x0C && s[1] == 0x40));
        let ver = &h.witness.verification;
        assert_eq!(ver.len(), 1 + 7 * 35 + 1 + 5);
        assert_eq!(ver[0], 0x15);
        for k in ver[1..1 + 7 * 35].chunks(35) {
            assert_eq!(&k[..2], &[0x0C, 0x21]);
            assert!(matches!(k[2], 0x02 | 0x03));
        }
        assert_eq!(&ver[246..], &[0x17, 0x41, 0x9e, 0xd0, 0xdc, 0x3a]);
        assert_eq!(h.next_consensus, h.witness.script_hash());
    }
    let tx = &chain.block(1).unwrap().transactions[0];
    assert_eq!(tx.signers.len(), 1);
    assert_eq!(tx.signers[0].scopes, n3::WitnessScope::CALLED_BY_ENTRY);
    assert_eq!(tx.signers[0].account, tx.witnesses[0].script_hash());
    assert_eq!(&tx.witnesses[0].invocation[..2], &[0x0C, 0x40]);
}

#[test]
fn legacy_witnesses_have_the_multisig_shape() {
    let chain = LegacyChain::synthetic(&n3_spec(3, 2, 2, true));
    let genesis = &chain.header(0).unwrap().base.witness;
    assert_eq!(&genesis.verification[..], &[0x51]);
    for h in chain.headers().skip(1) {
        let inv = &h.base.witness.invocation;
        assert_eq!(inv.len(), 5 * 65);
        assert!(inv.chunks(65).all(|s| s[0] == 0x40));
        let ver = &h.base.witness.verification;
        assert_eq!(ver.len(), 1 + 7 * 34 + 2);
        assert_eq!(ver[0], 0x55);
        for k in ver[1..1 + 7 * 34].chunks(34) {
            assert_eq!(k[0], 0x21);
            assert!(matches!(k[1], 0x02 | 0x03));
        }
        assert_eq!(&ver[239..], &[0x57, 0xAE]);
        assert_eq!(h.base.next_consensus, h.base.witness.script_hash());
    }
    let types: Vec<_> = chain
        .block(2)
        .unwrap()
        .transactions
        .iter()
        .map(|t| t.tx_type())
        .collect();
    use crate::wire::legacy::TransactionType as T;
    assert_eq!(types, [T::Miner, T::Contract, T::Invocation]);
}

#[test]
fn timestamps_advance_fifteen_seconds() {
    let chain = N3Chain::synthetic(&n3_spec(5, 0, 1, false));
    for w in chain.headers().collect::<Vec<_>>().windows(2) {
        assert_eq!(w[1].timestamp - w[0].timestamp, 15_000);
    }
    let chain = LegacyChain::synthetic(&n3_spec(5, 0, 1, false));
    for w in chain.headers().collect::<Vec<_>>().windows(2) {
        assert_eq!(w[1].base.timestamp - w[0].base.timestamp, 15);
    }
}

#[test]
fn ten_thousand_headers() {
    let chain = N3Chain::synthetic(&n3_spec(10_000, 0, 3, false));
    assert_eq!(chain.height(), 10_000);
    assert_eq!(chain.index_of(&chain.tip_hash()), Some(10_000));
    let chain = LegacyChain::synthetic(&n3_spec(10_000, 0, 3, false));
    assert_eq!(chain.height(), 10_000);
}

#[test]
fn legacy_push_header_refuses_oversized_witnesses() {
    let source = LegacyChain::synthetic(&n3_spec(1, 0, 1, false));
    let chain = LegacyChain::new(source.header(0).unwrap().clone()).unwrap();
    let mut h = source.header(1).unwrap().clone();
    h.base.witness.verification = Bytes::from(vec![0u8; 65537]);
    assert!(matches!(
        chain.push_header(h),
        Err(ChainError::InvalidHeader { index: 1, .. })
    ));
}

#[test]
fn errors_say_what_was_expected() {
    let e = ChainError::PrevHash {
        index: 3,
        expected: UInt256([1; 32]),
        got: UInt256([2; 32]),
    };
    let text = e.to_string();
    assert!(text.contains(&UInt256([1; 32]).to_string()), "{text}");
    assert!(text.contains(&UInt256([2; 32]).to_string()), "{text}");
    let e = ChainError::Index {
        expected: 4,
        got: 9,
    };
    assert_eq!(e.to_string(), "index 9 does not follow the tip: expected 4");
}
