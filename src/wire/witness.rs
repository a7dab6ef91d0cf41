//! Block witnesses: whether a header was signed by the validators the block
//! before it named, checked without a virtual machine.
//!
//! Every NEO block names, in `next_consensus`, the script hash of the
//! contract that must sign the next one: the validators' multi-signature
//! contract (or one validator's single-signature contract). A header's
//! witness is that contract's verification script and an invocation script
//! that pushes the signatures. This module reads the two standard contract
//! shapes of both generations and checks the signatures (ECDSA over
//! secp256r1 with SHA-256), so that a peer cannot pass off a block of its
//! own making that merely links to the chain:
//!
//! | | N3 | Legacy |
//! |---|---|---|
//! | single signature | `PUSHDATA1 33 <key>`, `SYSCALL System.Crypto.CheckSig` | `PUSHBYTES33 <key>`, `CHECKSIG` |
//! | m of n | `PUSH m`, n × `PUSHDATA1 33 <key>`, `PUSH n`, `SYSCALL System.Crypto.CheckMultisig` | `PUSH m`, n × `PUSHBYTES33 <key>`, `PUSH n`, `CHECKMULTISIG` |
//! | invocation | one `PUSHDATA1 64 <signature>` per signature | one `PUSHBYTES64 <signature>` per signature |
//! | signed message | the network magic (4 bytes, little-endian) and the block hash | the header's hashed bytes |
//!
//! The signatures must be exactly the `m` the contract asks for, in the
//! order of the keys they belong to (as the multi-signature check of both
//! virtual machines requires). A witness of any other shape is refused:
//! validators' blocks use these.
//!
//! Checking is not free: a MainNet block (five signatures, tried against
//! up to seven keys) takes about 2 ms in a release build
//! (`cargo bench --bench codec -- witness`).

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{UInt160, Witness, hash160, legacy, n3};

/// Why a witness does not sign a header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The verification script is not the contract the block before named.
    #[error("witness of script hash {got}, the block before names {want}")]
    WrongSigner {
        /// The script hash of the verification script.
        got: UInt160,
        /// The `next_consensus` of the block before.
        want: UInt160,
    },
    /// The verification script is neither a single- nor a multi-signature
    /// contract.
    #[error("verification script not a standard signature contract: {0}")]
    NotStandard(&'static str),
    /// The invocation script does not push exactly the signatures the
    /// contract needs.
    #[error("invocation script pushes {got} signatures, the contract needs {want}")]
    SignatureCount {
        /// Signatures pushed.
        got: usize,
        /// Signatures needed.
        want: usize,
    },
    /// A public key is not a point of the curve.
    #[error("public key {0} of the contract is not valid")]
    BadKey(usize),
    /// The signatures do not match the keys, in order.
    #[error("signature {0} matches no key after the one before it")]
    BadSignature(usize),
}

/// A standard signature contract: `m` signatures of `keys`, in order.
struct Contract<'a> {
    m: usize,
    keys: Vec<&'a [u8]>,
}

/// Most keys a multi-signature contract may list (both virtual machines).
const MAX_KEYS: usize = 1024;

// N3 opcodes.
const N3_PUSHINT8: u8 = 0x00;
const N3_PUSHINT16: u8 = 0x01;
const N3_PUSH0: u8 = 0x10;
const N3_PUSHDATA1: u8 = 0x0C;
const N3_SYSCALL: u8 = 0x41;

// Legacy opcodes.
const LEGACY_PUSHBYTES1: u8 = 0x01;
const LEGACY_PUSHBYTES2: u8 = 0x02;
const LEGACY_PUSHBYTES33: u8 = 0x21;
const LEGACY_PUSHBYTES64: u8 = 0x40;
const LEGACY_PUSH1: u8 = 0x51;
const LEGACY_PUSH16: u8 = 0x60;
const LEGACY_CHECKSIG: u8 = 0xAC;
const LEGACY_CHECKMULTISIG: u8 = 0xAE;

/// The 4-byte id of an N3 interop service: its name's SHA-256, first bytes.
fn interop(name: &str) -> [u8; 4] {
    let digest = Sha256::digest(name.as_bytes());
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Checks that `header` is signed by the contract whose script hash is
/// `signer` (the `next_consensus` of the block before it), on the N3
/// network `network`.
pub fn check_n3(header: &n3::Header, network: u32, signer: &UInt160) -> Result<(), WitnessError> {
    let mut message = [0u8; 36];
    message[..4].copy_from_slice(&network.to_le_bytes());
    message[4..].copy_from_slice(&header.hash().0);
    let witness = &header.witness;
    check_signer(witness, signer)?;
    let contract = n3_contract(&witness.verification)?;
    let signatures = n3_signatures(&witness.invocation)?;
    check_signatures(&contract, &signatures, &message)
}

/// Checks that `header` (the part every Legacy block and header shares) is
/// signed by the contract whose script hash is `signer` (the
/// `next_consensus` of the block before it).
pub fn check_legacy(header: &legacy::BlockBase, signer: &UInt160) -> Result<(), WitnessError> {
    let witness = &header.witness;
    check_signer(witness, signer)?;
    let contract = legacy_contract(&witness.verification)?;
    let signatures = legacy_signatures(&witness.invocation)?;
    check_signatures(&contract, &signatures, &header.unsigned_bytes())
}

fn check_signer(witness: &Witness, signer: &UInt160) -> Result<(), WitnessError> {
    let got = hash160(&witness.verification);
    if got != *signer {
        return Err(WitnessError::WrongSigner { got, want: *signer });
    }
    Ok(())
}

/// The signatures in order against the keys in order: each must match a
/// key after the one the signature before it matched.
fn check_signatures(
    contract: &Contract<'_>,
    signatures: &[&[u8]],
    message: &[u8],
) -> Result<(), WitnessError> {
    if signatures.len() != contract.m {
        return Err(WitnessError::SignatureCount {
            got: signatures.len(),
            want: contract.m,
        });
    }
    let mut keys = contract.keys.iter().enumerate();
    for (i, raw) in signatures.iter().enumerate() {
        let signature = Signature::from_slice(raw).map_err(|_| WitnessError::BadSignature(i))?;
        let left = signatures.len() - i;
        let matched = loop {
            // Fewer keys left than signatures: it cannot succeed.
            if keys.len() < left {
                break false;
            }
            let Some((k, key)) = keys.next() else {
                break false;
            };
            let key = VerifyingKey::from_sec1_bytes(key).map_err(|_| WitnessError::BadKey(k))?;
            if key.verify(message, &signature).is_ok() {
                break true;
            }
        };
        if !matched {
            return Err(WitnessError::BadSignature(i));
        }
    }
    Ok(())
}

/// Reads an N3 verification script of one of the two standard shapes.
fn n3_contract(script: &[u8]) -> Result<Contract<'_>, WitnessError> {
    let mut r = Script(script);
    let check_sig = interop("System.Crypto.CheckSig");
    let check_multisig = interop("System.Crypto.CheckMultisig");
    if script.first() == Some(&N3_PUSHDATA1) {
        let key = r.n3_key()?;
        r.n3_syscall(check_sig)?;
        r.end()?;
        return Ok(Contract {
            m: 1,
            keys: vec![key],
        });
    }
    let m = r.n3_int()?;
    let mut keys = Vec::new();
    while r.peek() == Some(N3_PUSHDATA1) {
        if keys.len() == MAX_KEYS {
            return Err(WitnessError::NotStandard("too many keys"));
        }
        keys.push(r.n3_key()?);
    }
    let n = r.n3_int()?;
    r.n3_syscall(check_multisig)?;
    r.end()?;
    contract(m, n, keys)
}

/// Reads a Legacy verification script of one of the two standard shapes.
fn legacy_contract(script: &[u8]) -> Result<Contract<'_>, WitnessError> {
    let mut r = Script(script);
    if script.first() == Some(&LEGACY_PUSHBYTES33) {
        let key = r.legacy_key()?;
        r.byte(LEGACY_CHECKSIG, "CHECKSIG")?;
        r.end()?;
        return Ok(Contract {
            m: 1,
            keys: vec![key],
        });
    }
    let m = r.legacy_int()?;
    let mut keys = Vec::new();
    while r.peek() == Some(LEGACY_PUSHBYTES33) {
        if keys.len() == MAX_KEYS {
            return Err(WitnessError::NotStandard("too many keys"));
        }
        keys.push(r.legacy_key()?);
    }
    let n = r.legacy_int()?;
    r.byte(LEGACY_CHECKMULTISIG, "CHECKMULTISIG")?;
    r.end()?;
    contract(m, n, keys)
}

fn contract(m: usize, n: usize, keys: Vec<&[u8]>) -> Result<Contract<'_>, WitnessError> {
    if n != keys.len() {
        return Err(WitnessError::NotStandard("key count not the keys listed"));
    }
    if m == 0 || m > n {
        return Err(WitnessError::NotStandard("signature count out of range"));
    }
    Ok(Contract { m, keys })
}

/// The signatures an N3 invocation script pushes (64 bytes each).
fn n3_signatures(script: &[u8]) -> Result<Vec<&[u8]>, WitnessError> {
    signatures(script, &[N3_PUSHDATA1, 64])
}

/// The signatures a Legacy invocation script pushes (64 bytes each).
fn legacy_signatures(script: &[u8]) -> Result<Vec<&[u8]>, WitnessError> {
    signatures(script, &[LEGACY_PUSHBYTES64])
}

/// The 64-byte signatures an invocation script pushes, each after `push`
/// (the generation's opcode, and its length byte where it has one).
fn signatures<'a>(script: &'a [u8], push: &[u8]) -> Result<Vec<&'a [u8]>, WitnessError> {
    let mut r = Script(script);
    let mut out = Vec::new();
    while r.peek().is_some() {
        if out.len() == MAX_KEYS {
            return Err(WitnessError::NotStandard("too many signatures"));
        }
        if r.take(push.len())? != push {
            return Err(WitnessError::NotStandard("not a 64-byte signature push"));
        }
        out.push(r.take(64)?);
    }
    Ok(out)
}

/// A script read front to back.
struct Script<'a>(&'a [u8]);

impl<'a> Script<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WitnessError> {
        if self.0.len() < n {
            return Err(WitnessError::NotStandard("script ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self, want: u8, what: &'static str) -> Result<(), WitnessError> {
        match self.take(1)? {
            [b] if *b == want => Ok(()),
            _ => Err(WitnessError::NotStandard(what)),
        }
    }

    fn end(&self) -> Result<(), WitnessError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WitnessError::NotStandard("bytes after the check"))
        }
    }

    /// `PUSHDATA1 33 <key>`.
    fn n3_key(&mut self) -> Result<&'a [u8], WitnessError> {
        self.byte(N3_PUSHDATA1, "PUSHDATA1 of a key")?;
        self.byte(33, "33-byte key")?;
        self.take(33)
    }

    /// `SYSCALL <id>`.
    fn n3_syscall(&mut self, id: [u8; 4]) -> Result<(), WitnessError> {
        self.byte(N3_SYSCALL, "SYSCALL")?;
        if self.take(4)? != id {
            return Err(WitnessError::NotStandard("not the signature check"));
        }
        Ok(())
    }

    /// A small non-negative integer: `PUSH0`..`PUSH16`, `PUSHINT8`, `PUSHINT16`.
    fn n3_int(&mut self) -> Result<usize, WitnessError> {
        let op = self.take(1)?[0];
        let value = match op {
            N3_PUSH0..=0x20 => i64::from(op - N3_PUSH0),
            N3_PUSHINT8 => i64::from(self.take(1)?[0] as i8),
            N3_PUSHINT16 => {
                let b = self.take(2)?;
                i64::from(i16::from_le_bytes([b[0], b[1]]))
            }
            _ => return Err(WitnessError::NotStandard("count not pushed")),
        };
        usize::try_from(value).map_err(|_| WitnessError::NotStandard("negative count"))
    }

    /// `PUSHBYTES33 <key>`.
    fn legacy_key(&mut self) -> Result<&'a [u8], WitnessError> {
        self.byte(LEGACY_PUSHBYTES33, "PUSHBYTES33 of a key")?;
        self.take(33)
    }

    /// A small count: `PUSH1`..`PUSH16`, or one or two bytes pushed.
    fn legacy_int(&mut self) -> Result<usize, WitnessError> {
        let op = self.take(1)?[0];
        Ok(match op {
            LEGACY_PUSH1..=LEGACY_PUSH16 => usize::from(op - LEGACY_PUSH1 + 1),
            LEGACY_PUSHBYTES1 => usize::from(self.take(1)?[0]),
            LEGACY_PUSHBYTES2 => {
                let b = self.take(2)?;
                usize::from(u16::from_le_bytes([b[0], b[1]]))
            }
            _ => return Err(WitnessError::NotStandard("count not pushed")),
        })
    }
}
