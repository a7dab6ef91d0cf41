//! Deterministic synthetic chains for both generations.
//!
//! The chains look like the real ones on the wire: a standby-style set of
//! seven validators signs every block with a 5-of-7 multi-signature witness,
//! timestamps advance 15 seconds per block, transactions are small and
//! well formed. Nothing is really signed: public keys and signatures are
//! pseudo-random bytes of the right shape, so every byte decodes but no
//! signature verifies.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Chain, Legacy, N3};
use crate::wire::legacy::{self, Fixed8};
use crate::wire::{UInt160, UInt256, Witness, hash160, merkle_root, n3, sha256};

/// What [`Chain::synthetic`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Synthetic {
    /// Blocks after the genesis block: the chain's height (it holds
    /// `blocks + 1` headers).
    pub blocks: u32,
    /// Transactions per block after the genesis block. A Legacy block always
    /// starts with its `MinerTransaction` and holds these after it; an N3
    /// block holds just these (0 gives empty blocks, which are normal in N3).
    /// Capped so that a block holds at most 65535 transactions.
    pub txs_per_block: u32,
    /// Seed of every pseudo-random choice: the same description always gives
    /// the same chain.
    pub seed: u64,
    /// Keep the full blocks, not only the headers. The headers (and so every
    /// hash) are the same either way: their Merkle roots are those of the
    /// transactions generated.
    pub with_bodies: bool,
}

impl Default for Synthetic {
    /// 100 blocks of 2 transactions, seed 0, bodies kept.
    fn default() -> Self {
        Synthetic {
            blocks: 100,
            txs_per_block: 2,
            seed: 0,
            with_bodies: true,
        }
    }
}

/// Time of the MainNet genesis block of both generations, in seconds.
const GENESIS_TIME: u32 = 1_468_595_301;
/// Consensus data / nonce of the MainNet genesis block of both generations.
const GENESIS_NONCE: u64 = 2_083_236_893;
/// Seconds between two blocks.
const BLOCK_TIME: u32 = 15;
/// Number of validators and signatures required.
const VALIDATORS: usize = 7;
const SIGNATURES: usize = 5;
/// Distinct accounts sending the generated transactions.
const ACCOUNTS: usize = 16;
/// How long a generated N3 transaction stays valid, in blocks (one day).
const N3_VALIDITY: u32 = 5760;

/// Script hash of the N3 GAS contract (`0xd2a4cff3…8be276cf`), wire order.
const N3_GAS_CONTRACT: UInt160 = UInt160([
    0xcf, 0x76, 0xe2, 0x8b, 0xd0, 0x06, 0x2c, 0x4a, 0x47, 0x8e, 0xe3, 0x55, 0x61, 0x01, 0x13, 0x19,
    0xf3, 0xcf, 0xa4, 0xd2,
]);

/// NeoVM (N3) opcodes used by the generated scripts.
mod n3op {
    pub const PUSHNULL: u8 = 0x0B;
    pub const PUSHDATA1: u8 = 0x0C;
    pub const PUSH1: u8 = 0x11;
    pub const PUSH4: u8 = 0x14;
    pub const PUSH5: u8 = 0x15;
    pub const PUSH7: u8 = 0x17;
    pub const PUSH15: u8 = 0x1F;
    pub const SYSCALL: u8 = 0x41;
    pub const PACK: u8 = 0xC0;
}

/// NEO 2 AVM opcodes used by the generated scripts (`PUSHBYTESn` is `n`).
mod avm {
    pub const PUSH1: u8 = 0x51;
    pub const PUSH3: u8 = 0x53;
    pub const PUSH5: u8 = 0x55;
    pub const PUSH7: u8 = 0x57;
    pub const APPCALL: u8 = 0x67;
    pub const CHECKSIG: u8 = 0xAC;
    pub const CHECKMULTISIG: u8 = 0xAE;
    pub const PACK: u8 = 0xC1;
}

/// The 4 bytes a `SYSCALL` carries for an interop service: the first four
/// bytes of the SHA-256 of its name.
pub(crate) fn interop_id(name: &str) -> [u8; 4] {
    let h = sha256(name.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// SplitMix64: small, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Keep streams of neighbouring seeds apart.
        Rng(seed ^ 0x4E45_4F5F_5045_4552)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }

    /// A compressed public key: `0x02`/`0x03` and 32 bytes.
    fn public_key(&mut self) -> [u8; 33] {
        let mut k = [0u8; 33];
        k[0] = 0x02 | (self.next_u32() & 1) as u8;
        self.fill(&mut k[1..]);
        k
    }

    /// `count` pushes of a fake 64-byte signature, each `prefix ‖ 64 bytes`.
    fn signatures(&mut self, prefix: &[u8], count: usize) -> Bytes {
        let mut out = BytesMut::with_capacity(count * (prefix.len() + 64));
        for _ in 0..count {
            out.put_slice(prefix);
            let at = out.len();
            out.put_bytes(0, 64);
            self.fill(&mut out[at..]);
        }
        out.freeze()
    }
}

/// Seven validator keys in the order a multi-signature script lists them
/// (by X coordinate).
fn validator_keys(rng: &mut Rng) -> Vec<[u8; 33]> {
    let mut keys: Vec<[u8; 33]> = (0..VALIDATORS).map(|_| rng.public_key()).collect();
    keys.sort_unstable_by(|a, b| a[1..].cmp(&b[1..]));
    keys
}

/// One sending account: its single-signature verification script and hash.
struct Account {
    verification: Bytes,
    hash: UInt160,
}

impl Account {
    fn new(verification: Vec<u8>) -> Self {
        let hash = hash160(&verification);
        Account {
            verification: Bytes::from(verification),
            hash,
        }
    }
}

/// Builds the N3 chain step by step.
struct N3Builder {
    rng: Rng,
    multisig: Bytes,
    next_consensus: UInt160,
    accounts: Vec<Account>,
    tx_nonce: u32,
    contract_call: [u8; 4],
}

impl N3Builder {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut multisig = Vec::with_capacity(3 + VALIDATORS * 35 + 4);
        multisig.push(n3op::PUSH5);
        for key in validator_keys(&mut rng) {
            multisig.extend_from_slice(&[n3op::PUSHDATA1, 33]);
            multisig.extend_from_slice(&key);
        }
        multisig.push(n3op::PUSH7);
        multisig.push(n3op::SYSCALL);
        multisig.extend_from_slice(&interop_id("System.Crypto.CheckMultisig"));
        let check_sig = interop_id("System.Crypto.CheckSig");
        let accounts = (0..ACCOUNTS)
            .map(|_| {
                let mut v = vec![n3op::PUSHDATA1, 33];
                v.extend_from_slice(&rng.public_key());
                v.push(n3op::SYSCALL);
                v.extend_from_slice(&check_sig);
                Account::new(v)
            })
            .collect();
        let next_consensus = hash160(&multisig);
        let tx_nonce = rng.next_u32();
        N3Builder {
            rng,
            multisig: Bytes::from(multisig),
            next_consensus,
            accounts,
            tx_nonce,
            contract_call: interop_id("System.Contract.Call"),
        }
    }

    fn genesis(&self) -> n3::Block {
        n3::Block {
            header: n3::Header {
                version: 0,
                prev_hash: UInt256::ZERO,
                merkle_root: UInt256::ZERO,
                timestamp: u64::from(GENESIS_TIME) * 1000,
                nonce: GENESIS_NONCE,
                index: 0,
                primary_index: 0,
                next_consensus: self.next_consensus,
                witness: Witness {
                    invocation: Bytes::new(),
                    verification: Bytes::from_static(&[n3op::PUSH1]),
                },
            },
            transactions: Vec::new(),
        }
    }

    /// A GAS transfer from one account to another, signed by the sender.
    fn transaction(&mut self, index: u32) -> n3::Transaction {
        let from = self.rng.below(ACCOUNTS as u32) as usize;
        let to: [u8; 20] = self.rng.array();
        let amount = self.rng.below(16) as u8;
        let mut script = Vec::with_capacity(96);
        script.push(n3op::PUSHNULL);
        script.push(n3op::PUSH1 + amount);
        for account in [&to, &self.accounts[from].hash.0] {
            script.extend_from_slice(&[n3op::PUSHDATA1, 20]);
            script.extend_from_slice(account);
        }
        script.extend_from_slice(&[n3op::PUSH4, n3op::PACK, n3op::PUSH15]);
        script.extend_from_slice(&[n3op::PUSHDATA1, 8]);
        script.extend_from_slice(b"transfer");
        script.extend_from_slice(&[n3op::PUSHDATA1, 20]);
        script.extend_from_slice(&N3_GAS_CONTRACT.0);
        script.push(n3op::SYSCALL);
        script.extend_from_slice(&self.contract_call);
        let nonce = self.tx_nonce;
        self.tx_nonce = self.tx_nonce.wrapping_add(1);
        let account = &self.accounts[from];
        let verification = account.verification.clone();
        let signer = n3::Signer::new(account.hash, n3::WitnessScope::CALLED_BY_ENTRY);
        n3::Transaction {
            version: 0,
            nonce,
            system_fee: 997_775 + i64::from(self.rng.below(100_000)),
            network_fee: 1_228_520 + i64::from(self.rng.below(10_000)),
            valid_until_block: index.saturating_add(N3_VALIDITY),
            signers: vec![signer],
            attributes: Vec::new(),
            script: Bytes::from(script),
            witnesses: vec![Witness {
                invocation: self.rng.signatures(&[n3op::PUSHDATA1, 64], 1),
                verification,
            }],
        }
    }

    fn block(&mut self, prev_hash: UInt256, index: u32, txs: u32) -> n3::Block {
        let transactions: Vec<n3::Transaction> =
            (0..txs).map(|_| self.transaction(index)).collect();
        let hashes: Vec<UInt256> = transactions.iter().map(n3::Transaction::hash).collect();
        let time = u64::from(GENESIS_TIME) * 1000 + u64::from(index) * u64::from(BLOCK_TIME) * 1000;
        n3::Block {
            header: n3::Header {
                version: 0,
                prev_hash,
                merkle_root: merkle_root(&hashes),
                timestamp: time,
                nonce: self.rng.next_u64(),
                index,
                primary_index: (index % VALIDATORS as u32) as u8,
                next_consensus: self.next_consensus,
                witness: Witness {
                    invocation: self.rng.signatures(&[n3op::PUSHDATA1, 64], SIGNATURES),
                    verification: self.multisig.clone(),
                },
            },
            transactions,
        }
    }
}

impl Chain<N3> {
    /// A deterministic synthetic N3 chain (see [`Synthetic`]).
    ///
    /// The genesis block is shaped like MainNet's (no transactions, a
    /// `PUSH1` witness, MainNet's time and nonce); every later block carries
    /// the validators' 5-of-7 witness (five `PUSHDATA1` pushes of a fake
    /// 64-byte signature; `PUSH5`, seven 33-byte keys, `PUSH7`, `SYSCALL
    /// System.Crypto.CheckMultisig`), a millisecond timestamp 15 s after its
    /// parent's and the requested number of GAS transfers (one
    /// `CalledByEntry` signer, one single-signature witness, distinct nonces).
    pub fn synthetic(spec: &Synthetic) -> Self {
        let mut b = N3Builder::new(spec.seed);
        let txs = spec
            .txs_per_block
            .min(n3::MAX_TRANSACTIONS_PER_BLOCK as u32);
        let genesis = b.genesis();
        let chain = if spec.with_bodies {
            Chain::from_genesis_block(genesis)
        } else {
            Chain::new(genesis.header)
        }
        .expect("the synthetic genesis block is valid");
        for index in 1..=spec.blocks {
            let block = b.block(chain.tip_hash(), index, txs);
            let pushed = if spec.with_bodies {
                chain.push_block(block)
            } else {
                chain.push_header(block.header)
            };
            pushed.expect("synthetic blocks link to their parent");
        }
        chain
    }
}

/// Builds the Legacy chain step by step.
struct LegacyBuilder {
    rng: Rng,
    multisig: Bytes,
    next_consensus: UInt160,
    accounts: Vec<Account>,
    miner_nonce: u32,
    remark: u64,
}

impl LegacyBuilder {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut multisig = Vec::with_capacity(3 + VALIDATORS * 34);
        multisig.push(avm::PUSH5);
        for key in validator_keys(&mut rng) {
            multisig.push(33);
            multisig.extend_from_slice(&key);
        }
        multisig.push(avm::PUSH7);
        multisig.push(avm::CHECKMULTISIG);
        let accounts = (0..ACCOUNTS)
            .map(|_| {
                let mut v = vec![33];
                v.extend_from_slice(&rng.public_key());
                v.push(avm::CHECKSIG);
                Account::new(v)
            })
            .collect();
        let next_consensus = hash160(&multisig);
        let miner_nonce = rng.next_u32();
        let remark = rng.next_u64();
        LegacyBuilder {
            rng,
            multisig: Bytes::from(multisig),
            next_consensus,
            accounts,
            miner_nonce,
            remark,
        }
    }

    fn miner(nonce: u32) -> legacy::Transaction {
        legacy::Transaction {
            version: 0,
            data: legacy::TransactionData::Miner { nonce },
            attributes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            witnesses: Vec::new(),
        }
    }

    fn genesis(&self) -> legacy::Block {
        let miner = Self::miner(GENESIS_NONCE as u32);
        legacy::Block {
            base: legacy::BlockBase {
                version: 0,
                prev_hash: UInt256::ZERO,
                merkle_root: miner.hash(),
                timestamp: GENESIS_TIME,
                index: 0,
                consensus_data: GENESIS_NONCE,
                next_consensus: self.next_consensus,
                witness: Witness {
                    invocation: Bytes::new(),
                    verification: Bytes::from_static(&[avm::PUSH1]),
                },
            },
            transactions: vec![miner],
        }
    }

    fn witness(&mut self, account: usize) -> Witness {
        Witness {
            invocation: self.rng.signatures(&[64], 1),
            verification: self.accounts[account].verification.clone(),
        }
    }

    /// A NEO or GAS transfer spending one pseudo-random output.
    fn contract(&mut self) -> legacy::Transaction {
        let from = self.rng.below(ACCOUNTS as u32) as usize;
        let asset = if self.rng.below(2) == 0 {
            legacy::GOVERNING_TOKEN_ID
        } else {
            legacy::UTILITY_TOKEN_ID
        };
        let input = legacy::CoinReference {
            prev_hash: UInt256(self.rng.array()),
            prev_index: self.rng.below(4) as u16,
        };
        let output = legacy::TransactionOutput {
            asset_id: asset,
            value: Fixed8(i64::from(self.rng.below(1000) + 1) * Fixed8::ONE.0),
            script_hash: UInt160(self.rng.array()),
        };
        legacy::Transaction {
            version: 0,
            data: legacy::TransactionData::Contract,
            attributes: Vec::new(),
            inputs: vec![input],
            outputs: vec![output],
            witnesses: vec![self.witness(from)],
        }
    }

    /// A NEP-5 `transfer` call, with the sender as `Script` attribute and a
    /// `Remark` making it unique, as wallets build them.
    fn invocation(&mut self) -> legacy::Transaction {
        let from = self.rng.below(ACCOUNTS as u32) as usize;
        let to: [u8; 20] = self.rng.array();
        let token: [u8; 20] = self.rng.array();
        let sender = self.accounts[from].hash;
        let mut script = Vec::with_capacity(80);
        script.push(avm::PUSH1 + self.rng.below(16) as u8);
        for account in [&to, &sender.0] {
            script.push(20);
            script.extend_from_slice(account);
        }
        script.extend_from_slice(&[avm::PUSH3, avm::PACK, 8]);
        script.extend_from_slice(b"transfer");
        script.push(avm::APPCALL);
        script.extend_from_slice(&token);
        let remark = self.remark;
        self.remark = self.remark.wrapping_add(1);
        legacy::Transaction {
            version: 1,
            data: legacy::TransactionData::Invocation {
                script: Bytes::from(script),
                gas: Fixed8(0),
            },
            attributes: vec![
                legacy::TransactionAttribute {
                    usage: legacy::AttributeUsage::Script,
                    data: Bytes::copy_from_slice(&sender.0),
                },
                legacy::TransactionAttribute {
                    usage: legacy::AttributeUsage::Remark,
                    data: Bytes::copy_from_slice(&remark.to_le_bytes()),
                },
            ],
            inputs: Vec::new(),
            outputs: Vec::new(),
            witnesses: vec![self.witness(from)],
        }
    }

    fn block(&mut self, prev_hash: UInt256, index: u32, txs: u32) -> legacy::Block {
        let mut transactions = Vec::with_capacity(txs as usize + 1);
        transactions.push(Self::miner(self.miner_nonce.wrapping_add(index)));
        for i in 0..txs {
            let tx = if i % 2 == 0 {
                self.contract()
            } else {
                self.invocation()
            };
            transactions.push(tx);
        }
        let hashes: Vec<UInt256> = transactions.iter().map(legacy::Transaction::hash).collect();
        let time = GENESIS_TIME.saturating_add(index.saturating_mul(BLOCK_TIME));
        legacy::Block {
            base: legacy::BlockBase {
                version: 0,
                prev_hash,
                merkle_root: merkle_root(&hashes),
                timestamp: time,
                index,
                consensus_data: self.rng.next_u64(),
                next_consensus: self.next_consensus,
                witness: Witness {
                    invocation: self.rng.signatures(&[64], SIGNATURES),
                    verification: self.multisig.clone(),
                },
            },
            transactions,
        }
    }
}

impl Chain<Legacy> {
    /// A deterministic synthetic Legacy chain (see [`Synthetic`]).
    ///
    /// The genesis block holds only a `MinerTransaction` (MainNet's nonce) and
    /// a `PUSH1` witness; every later block carries the validators' 5-of-7
    /// witness (five `PUSHBYTES64` fake signatures; `PUSH5`, seven
    /// `PUSHBYTES33` keys, `PUSH7`, `CHECKMULTISIG`), a timestamp 15 s after
    /// its parent's, a `MinerTransaction` with a distinct nonce and then the
    /// requested number of transactions, alternately `ContractTransaction`s
    /// (one input, one NEO or GAS output) and `InvocationTransaction`s (a
    /// NEP-5 `transfer` call), each with one single-signature witness.
    pub fn synthetic(spec: &Synthetic) -> Self {
        let mut b = LegacyBuilder::new(spec.seed);
        let txs = spec.txs_per_block.min(legacy::MAX_BLOCK_TXS as u32 - 1);
        let genesis = b.genesis();
        let chain = if spec.with_bodies {
            Chain::from_genesis_block(genesis)
        } else {
            Chain::new(genesis.header())
        }
        .expect("the synthetic genesis block is valid");
        for index in 1..=spec.blocks {
            let block = b.block(chain.tip_hash(), index, txs);
            let pushed = if spec.with_bodies {
                chain.push_block(block)
            } else {
                chain.push_header(block.header())
            };
            pushed.expect("synthetic blocks link to their parent");
        }
        chain
    }
}
