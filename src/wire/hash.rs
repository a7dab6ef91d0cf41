//! Hashes, hash types and addresses.
//!
//! NEO keeps hashes in *wire order* (the raw digest bytes) and shows them to
//! people in *display order*: the bytes reversed, as hex, usually with `0x`.
//! [`UInt160`] and [`UInt256`] store wire order; their `Display` and `FromStr`
//! use display order.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::error::DecodeError;

/// A 20-byte hash in wire order (script hashes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct UInt160(pub [u8; 20]);

/// A 32-byte hash in wire order (block, transaction and payload hashes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct UInt256(pub [u8; 32]);

/// A hash given as text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {kind}: expected {digits} hex digits (optionally 0x-prefixed), got {input:?}")]
pub struct ParseHashError {
    kind: &'static str,
    digits: usize,
    input: String,
}

macro_rules! hash_type {
    ($name:ident, $len:expr) => {
        impl $name {
            /// The all-zero value.
            pub const ZERO: $name = $name([0; $len]);

            /// Builds a value from its display form (byte-reversed hex, `0x` optional).
            pub fn from_display_hex(s: &str) -> Result<Self, ParseHashError> {
                let digits = s.strip_prefix("0x").unwrap_or(s);
                let mut raw = [0u8; $len];
                hex::decode_to_slice(digits, &mut raw).map_err(|_| ParseHashError {
                    kind: stringify!($name),
                    digits: 2 * $len,
                    input: s.to_string(),
                })?;
                raw.reverse();
                Ok($name(raw))
            }

            /// Display form without the `0x` prefix (byte-reversed, lower-case hex).
            pub fn to_display_hex(&self) -> String {
                let mut rev = self.0;
                rev.reverse();
                hex::encode(rev)
            }

            /// True for the all-zero value.
            pub fn is_zero(&self) -> bool {
                self.0 == [0; $len]
            }

            /// The raw wire-order bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", self.to_display_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_display_hex(s)
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(raw: [u8; $len]) -> Self {
                $name(raw)
            }
        }
    };
}

hash_type!(UInt160, 20);
hash_type!(UInt256, 32);

/// SHA-256 (uses the CPU's SHA extensions where it has them).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Double SHA-256, `SHA256(SHA256(data))`.
pub fn hash256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// `RIPEMD160(SHA256(data))`: the script hash of a script.
pub fn hash160(data: &[u8]) -> UInt160 {
    UInt160(ripemd::Ripemd160::digest(Sha256::digest(data)).into())
}

/// Merkle root of transaction hashes as both generations compute it.
///
/// Nodes are paired and hashed with double SHA-256; an odd node is paired with
/// itself; a single leaf is the root; no leaves give the zero hash.
pub fn merkle_root(leaves: &[UInt256]) -> UInt256 {
    if leaves.is_empty() {
        return UInt256::ZERO;
    }
    let mut level: Vec<[u8; 32]> = leaves.iter().map(|h| h.0).collect();
    let mut pair = [0u8; 64];
    while level.len() > 1 {
        let next_len = level.len().div_ceil(2);
        for i in 0..next_len {
            let left = level[2 * i];
            let right = *level.get(2 * i + 1).unwrap_or(&left);
            pair[..32].copy_from_slice(&left);
            pair[32..].copy_from_slice(&right);
            level[i] = hash256(&pair);
        }
        level.truncate(next_len);
    }
    UInt256(level[0])
}

/// The checks a block's transaction hashes must pass in both generations: no
/// hash twice, and their Merkle root equal to the header's.
pub fn check_tx_hashes(
    hashes: &[UInt256],
    header_merkle_root: &UInt256,
) -> Result<(), DecodeError> {
    let mut sorted = hashes.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(DecodeError::Invalid {
            what: "block.transactions",
            reason: "duplicate transaction",
        });
    }
    if merkle_root(hashes) != *header_merkle_root {
        return Err(DecodeError::Invalid {
            what: "block.merkle_root",
            reason: "does not match the transactions",
        });
    }
    Ok(())
}

/// Base58Check address version byte of NEO Legacy (addresses start with `A`).
pub const ADDRESS_VERSION_LEGACY: u8 = 0x17;
/// Base58Check address version byte of Neo N3 (addresses start with `N`).
pub const ADDRESS_VERSION_N3: u8 = 0x35;

/// An address given as text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not valid Base58.
    #[error("address is not valid base58")]
    Base58,
    /// Wrong decoded length (must be 25 bytes).
    #[error("address decodes to {0} bytes, expected 25")]
    Length(usize),
    /// The 4-byte checksum does not match.
    #[error("address checksum mismatch")]
    Checksum,
    /// The version byte is not the one asked for.
    #[error("address version {got:#04x}, expected {expected:#04x}")]
    Version {
        /// Version byte wanted.
        expected: u8,
        /// Version byte found.
        got: u8,
    },
}

/// Base58Check address of a script hash: `base58(version ‖ hash ‖ checksum)`.
pub fn to_address(version: u8, script_hash: &UInt160) -> String {
    let mut raw = [0u8; 25];
    raw[0] = version;
    raw[1..21].copy_from_slice(&script_hash.0);
    let check = hash256(&raw[..21]);
    raw[21..].copy_from_slice(&check[..4]);
    bs58::encode(raw).into_string()
}

/// Parses a Base58Check address and returns its script hash.
pub fn from_address(version: u8, address: &str) -> Result<UInt160, AddressError> {
    let raw = bs58::decode(address)
        .into_vec()
        .map_err(|_| AddressError::Base58)?;
    if raw.len() != 25 {
        return Err(AddressError::Length(raw.len()));
    }
    if hash256(&raw[..21])[..4] != raw[21..] {
        return Err(AddressError::Checksum);
    }
    if raw[0] != version {
        return Err(AddressError::Version {
            expected: version,
            got: raw[0],
        });
    }
    let mut h = [0u8; 20];
    h.copy_from_slice(&raw[1..21]);
    Ok(UInt160(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_form_is_reversed_hex() {
        let h = UInt256::from_display_hex(
            "0xd42561e3d30e15be6400b6df2f328e02d2bf6354c41dce433bc57687c82144bf",
        )
        .unwrap();
        assert_eq!(h.0[0], 0xbf);
        assert_eq!(
            h.to_string(),
            "0xd42561e3d30e15be6400b6df2f328e02d2bf6354c41dce433bc57687c82144bf"
        );
        assert!(UInt256::from_display_hex("0x12").is_err());
        assert!(UInt160::from_display_hex(&"zz".repeat(20)).is_err());
    }

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(&hash256(b"")[..4]),
            "5df6e0e2",
            "empty-payload checksum"
        );
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn merkle_root_shapes() {
        let a = UInt256([1; 32]);
        let b = UInt256([2; 32]);
        let c = UInt256([3; 32]);
        assert_eq!(merkle_root(&[]), UInt256::ZERO);
        assert_eq!(merkle_root(&[a]), a);
        let ab = UInt256(hash256(&[a.0, b.0].concat()));
        assert_eq!(merkle_root(&[a, b]), ab);
        let cc = UInt256(hash256(&[c.0, c.0].concat()));
        let root = UInt256(hash256(&[ab.0, cc.0].concat()));
        assert_eq!(merkle_root(&[a, b, c]), root);
    }

    #[test]
    fn addresses_round_trip_and_reject_bad_input() {
        // N3 mainnet genesis next consensus
        let a = "NVg7LjGcUSrgxgjX3zEgqaksfMaiS8Z6e1";
        let h = from_address(ADDRESS_VERSION_N3, a).unwrap();
        assert_eq!(
            h.to_display_hex(),
            "9f8f056a53e39585c7bb52886418c7bed83d126b"
        );
        assert_eq!(to_address(ADDRESS_VERSION_N3, &h), a);
        assert!(matches!(
            from_address(ADDRESS_VERSION_LEGACY, a),
            Err(AddressError::Version { .. })
        ));
        assert_eq!(
            from_address(ADDRESS_VERSION_N3, "NVg7LjGcUSrgxgjX3zEgqaksfMaiS8Z6e2"),
            Err(AddressError::Checksum)
        );
        assert_eq!(
            from_address(ADDRESS_VERSION_N3, "0OIl"),
            Err(AddressError::Base58)
        );
        let legacy = to_address(ADDRESS_VERSION_LEGACY, &h);
        assert!(legacy.starts_with('A'));
    }
}
