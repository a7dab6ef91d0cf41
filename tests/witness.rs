//! Block witnesses against real MainNet blocks of both generations
//! (`tests/vectors`): block 1 is signed by the contract genesis names, and
//! a block changed in any signed field, signed by others, or carrying a
//! witness of another shape is refused.

use neo_peer::wire::witness::{WitnessError, check_legacy, check_n3};
use neo_peer::wire::{Decode, UInt160, Witness, legacy, n3};
use serde_json::Value;

fn vector(file: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name:?}"));
    hex::decode(v["hex"].as_str().unwrap()).unwrap()
}

fn n3_block(name: &str) -> n3::Block {
    n3::Block::from_slice(&vector("n3.json", name)).unwrap()
}

fn legacy_block(name: &str) -> legacy::Block {
    legacy::Block::from_slice(&vector("neo2.json", name)).unwrap()
}

#[test]
fn n3_mainnet_block_1_is_signed_by_the_validators_genesis_names() {
    let genesis = n3_block("mainnet genesis block (index 0)");
    let one = n3_block("mainnet block 1");
    let signer = genesis.header.next_consensus;
    check_n3(&one.header, n3::MAINNET_MAGIC, &signer).unwrap();

    // On another network the signatures are not valid.
    let other = check_n3(&one.header, n3::TESTNET_MAGIC, &signer);
    assert!(
        matches!(other, Err(WitnessError::BadSignature(0))),
        "{other:?}"
    );
    // Any signed field changed: the signatures no longer hold.
    let mut forged = one.header.clone();
    forged.timestamp += 1;
    let got = check_n3(&forged, n3::MAINNET_MAGIC, &signer);
    assert!(matches!(got, Err(WitnessError::BadSignature(_))), "{got:?}");
    // Signed by a contract the block before does not name.
    let got = check_n3(&one.header, n3::MAINNET_MAGIC, &UInt160::ZERO);
    assert!(
        matches!(got, Err(WitnessError::WrongSigner { .. })),
        "{got:?}"
    );
}

#[test]
fn n3_signatures_must_be_all_and_in_order() {
    let genesis = n3_block("mainnet genesis block (index 0)");
    let one = n3_block("mainnet block 1");
    let signer = genesis.header.next_consensus;
    let invocation = &one.header.witness.invocation;
    assert_eq!(invocation.len() % 66, 0);
    let sigs: Vec<&[u8]> = invocation.chunks(66).collect();
    assert!(sigs.len() >= 2, "a multi-signature block");
    let with = |chunks: Vec<&[u8]>| {
        let mut h = one.header.clone();
        h.witness = Witness {
            invocation: chunks.concat().into(),
            verification: h.witness.verification.clone(),
        };
        check_n3(&h, n3::MAINNET_MAGIC, &signer)
    };
    // One short.
    let got = with(sigs[1..].to_vec());
    assert!(
        matches!(got, Err(WitnessError::SignatureCount { .. })),
        "{got:?}"
    );
    // Two swapped.
    let mut swapped = sigs.clone();
    swapped.swap(0, 1);
    let got = with(swapped);
    assert!(matches!(got, Err(WitnessError::BadSignature(_))), "{got:?}");
    // One repeated in place of another.
    let mut twice = sigs.clone();
    twice[1] = sigs[0];
    let got = with(twice);
    assert!(matches!(got, Err(WitnessError::BadSignature(_))), "{got:?}");
    // Not a signature push.
    let got = with(vec![&[0x11]]);
    assert!(matches!(got, Err(WitnessError::NotStandard(_))), "{got:?}");
    assert!(with(sigs).is_ok());
}

#[test]
fn n3_verification_scripts_of_other_shapes_are_refused() {
    let genesis = n3_block("mainnet genesis block (index 0)");
    let one = n3_block("mainnet block 1");
    let script = one.header.witness.verification.to_vec();
    for (what, bad) in [
        ("empty", Vec::new()),
        ("cut", script[..script.len() - 1].to_vec()),
        ("longer", [&script[..], &[0x40]].concat()),
        ("PUSHT", vec![0x08]),
    ] {
        let mut h = one.header.clone();
        h.witness.verification = bad.clone().into();
        // Named by the block before, so that the shape is what is judged.
        let signer = neo_peer::wire::hash160(&bad);
        let got = check_n3(&h, n3::MAINNET_MAGIC, &signer);
        assert!(
            matches!(got, Err(WitnessError::NotStandard(_))),
            "{what}: {got:?}"
        );
    }
    assert_ne!(genesis.header.next_consensus, UInt160::ZERO);
}

#[test]
fn legacy_mainnet_blocks_1_and_2_are_signed_by_the_validators_named_before() {
    let genesis = legacy_block("mainnet genesis block (index 0)");
    let one = legacy_block("mainnet block 1");
    let two = legacy_block("mainnet block 2");
    check_legacy(&one.base, &genesis.base.next_consensus).unwrap();
    check_legacy(&two.base, &one.base.next_consensus).unwrap();

    let mut forged = two.base.clone();
    forged.consensus_data ^= 1;
    let got = check_legacy(&forged, &one.base.next_consensus);
    assert!(matches!(got, Err(WitnessError::BadSignature(_))), "{got:?}");
    // Block 1's witness on block 2: signed, but not block 2.
    let mut moved = two.base.clone();
    moved.witness = one.base.witness.clone();
    let got = check_legacy(&moved, &one.base.next_consensus);
    assert!(matches!(got, Err(WitnessError::BadSignature(_))), "{got:?}");
    let got = check_legacy(&two.base, &UInt160::ZERO);
    assert!(
        matches!(got, Err(WitnessError::WrongSigner { .. })),
        "{got:?}"
    );
}
