//! Per-command payload caps: what a frame may declare, given its command.
//!
//! Both frame headers name the command before the payload arrives, so a
//! codec can refuse a frame whose declared length is more than its command
//! can legitimately carry, before a byte of that payload is buffered. Each
//! generation derives its caps in its own `limits` module
//! ([`legacy::limits`](super::legacy::limits), [`n3::limits`](super::n3::limits));
//! what is shared, and what a user may configure, is here.

use super::MAX_PAYLOAD;
use super::filter::{MAX_FILTER_ADD, MAX_FILTER_SIZE};

/// Longest var-int the decoders accept: `0xFF` and a `u64`.
///
/// Decoders accept every var-int in any of its four forms (both reference
/// nodes do, and neo-go writes some boundary values in the longer form), so
/// the caps count every length and count at this size: a cap is never below
/// what the decoder would accept.
pub const VAR_INT_MAX: usize = 9;

/// Largest encoding of a var-bytes (or var-string, or count) of up to `n` bytes,
/// its var-int prefix at its longest.
pub(crate) const fn var_bytes_max(n: usize) -> usize {
    VAR_INT_MAX + n
}

/// Payload of `ping` and `pong`: three `u32`, in both generations.
pub const PING_PAYLOAD: usize = 12;

/// Largest `filterload` payload: a filter of [`MAX_FILTER_SIZE`] bytes, the
/// hash function count (`u8`) and the tweak (`u32`).
pub const MAX_FILTERLOAD_PAYLOAD: usize = var_bytes_max(MAX_FILTER_SIZE) + 1 + 4;

/// Largest `filteradd` payload: one element of [`MAX_FILTER_ADD`] bytes.
pub const MAX_FILTERADD_PAYLOAD: usize = var_bytes_max(MAX_FILTER_ADD);

/// Default cap of a payload no layout is defined for: unknown commands, and
/// `alert` and `reject` (and Legacy's `notfound`), which were never given one.
///
/// Such a payload is kept as bytes and never decoded, so it needs room only
/// for some small extension a future node might send. 64 KiB is far more
/// than any message a node sends today besides blocks, transactions and
/// long lists, and a hostile peer that declares one buys 64 KiB at most,
/// where the frame cap alone would let it make us wait for 32 MiB.
pub const MAX_UNKNOWN_PAYLOAD: usize = 64 * 1024;

/// The configurable part of the per-command caps.
///
/// Most commands have a cap that follows from the protocol's own limits
/// (a `ping` is 12 bytes, a `headers` at most 2000 of the largest valid
/// header) and is not configurable. Blocks and transactions have no
/// protocol bound below the 32 MiB frame cap, only a size each network
/// configures: these are the fields here, with defaults for the public
/// networks of each generation ([`PayloadLimits::N3`],
/// [`PayloadLimits::LEGACY`]). Set them on a codec with `set_limits`.
///
/// Whatever is set here, the frame cap ([`MAX_PAYLOAD`], or what
/// `set_max_payload` lowered it to) still applies, and no cap is raised above
/// what the protocol's decoding rules allow (an N3 transaction is at most
/// 102,400 bytes however large `transaction` is).
///
/// ```
/// use neo_peer::wire::PayloadLimits;
/// use neo_peer::wire::n3::{Codec, Command};
///
/// // A private network that makes blocks of up to 8 MiB.
/// let mut limits = PayloadLimits::N3;
/// limits.block = 8 << 20;
/// let mut codec = Codec::new();
/// codec.set_limits(limits);
/// assert_eq!(codec.payload_cap(Command::Block.as_u8()), 8 << 20);
/// assert_eq!(codec.payload_cap(Command::Ping.as_u8()), 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PayloadLimits {
    /// Largest `block` payload. In N3 it also bounds `extensible` payloads,
    /// which carry consensus messages about one block: the largest, a
    /// recovery message, lists at most the hashes of the proposed block's
    /// transactions (32 bytes each, where the smallest transaction takes 53)
    /// and a few signatures per validator.
    pub block: usize,
    /// Largest `tx` (Legacy) or `transaction` (N3) payload; an N3
    /// `p2pnotaryrequest` carries two of them.
    pub transaction: usize,
    /// Largest payload of a command no layout is defined for (see
    /// [`MAX_UNKNOWN_PAYLOAD`]).
    pub unknown: usize,
}

impl PayloadLimits {
    /// The defaults for Neo N3: blocks of up to
    /// [`n3::MAX_BLOCK_SIZE`](super::n3::MAX_BLOCK_SIZE) (2 MiB),
    /// transactions of up to
    /// [`n3::MAX_TRANSACTION_SIZE`](super::n3::MAX_TRANSACTION_SIZE), unknown
    /// payloads of up to [`MAX_UNKNOWN_PAYLOAD`].
    pub const N3: PayloadLimits = PayloadLimits {
        block: super::n3::MAX_BLOCK_SIZE,
        transaction: super::n3::MAX_TRANSACTION_SIZE,
        unknown: MAX_UNKNOWN_PAYLOAD,
    };

    /// The defaults for NEO Legacy: blocks of up to
    /// [`legacy::MAX_BLOCK_SIZE`](super::legacy::MAX_BLOCK_SIZE) (the frame
    /// cap: nothing in NEO 2 bounds a block below it), transactions of up to
    /// [`legacy::MAX_TX_SIZE`](super::legacy::MAX_TX_SIZE), unknown payloads
    /// of up to [`MAX_UNKNOWN_PAYLOAD`].
    pub const LEGACY: PayloadLimits = PayloadLimits {
        block: super::legacy::MAX_BLOCK_SIZE,
        transaction: super::legacy::MAX_TX_SIZE,
        unknown: MAX_UNKNOWN_PAYLOAD,
    };
}

/// LZ4's worst case: the most an LZ4 block of `n` input bytes may take (all
/// literals, with their length bytes and the last sequence's overhead).
pub(crate) const fn lz4_bound(n: usize) -> usize {
    n + n / 255 + 16
}

// The relations the caps rely on.
const _: () = {
    assert!(MAX_UNKNOWN_PAYLOAD <= MAX_PAYLOAD);
    // A transaction fits in a block, in both generations' defaults.
    assert!(PayloadLimits::N3.transaction < PayloadLimits::N3.block);
    assert!(PayloadLimits::LEGACY.transaction < PayloadLimits::LEGACY.block);
    assert!(PayloadLimits::N3.block <= MAX_PAYLOAD);
    assert!(PayloadLimits::LEGACY.block <= MAX_PAYLOAD);
};

/// The value `build(n)` whose encoding is exactly `target` bytes, for the
/// `n` found by stepping towards it (sizes grow by one per step of `n`, but
/// for var-int prefixes, so targets away from their boundaries are reached).
#[cfg(test)]
pub(crate) fn fill<T: super::Encode>(target: usize, build: impl Fn(usize) -> T) -> T {
    let mut n = 0;
    for _ in 0..8 {
        let value = build(n);
        let size = value.size();
        if size == target {
            return value;
        }
        n = (n + target)
            .checked_sub(size)
            .expect("the smallest value is too big");
    }
    panic!("no value of exactly {target} bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in the `wire` docs says what the codecs do.
    #[test]
    fn the_documented_caps_are_the_codecs_caps() {
        use crate::wire::{legacy, n3};
        let number = |cell: &str| -> Option<usize> { cell.trim().replace(',', "").parse().ok() };
        let n3_codec = n3::Codec::new();
        let legacy_codec = legacy::Codec::new(legacy::MAINNET_MAGIC);
        let mut seen = 0;
        for row in include_str!("mod.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//! | "))
            .filter(|row| row.starts_with('`'))
        {
            let cells: Vec<&str> = row.split('|').collect();
            let (n3_cap, legacy_cap) = (number(cells[1]), number(cells[2]));
            for name in cells[0].split('`').skip(1).step_by(2) {
                let n3_byte = match name {
                    "unknown" => Some(0x99),
                    _ => n3::Command::ALL
                        .into_iter()
                        .find(|c| c.name() == name)
                        .map(n3::Command::as_u8),
                };
                let legacy_name = match name {
                    "unknown" => Some("xyzzy"),
                    _ => legacy::COMMANDS.into_iter().find(|&c| c == name),
                };
                assert!(n3_byte.is_some() || legacy_name.is_some(), "{name}");
                if let Some(byte) = n3_byte {
                    assert_eq!(n3_cap, Some(n3_codec.payload_cap(byte)), "n3 {name}");
                    seen += 1;
                }
                if let Some(command) = legacy_name {
                    let cap = legacy_codec.payload_cap(command);
                    assert_eq!(legacy_cap, Some(cap), "legacy {name}");
                    seen += 1;
                }
            }
        }
        // Every command of both generations, and an unknown one for each.
        assert_eq!(seen, n3::Command::ALL.len() + legacy::COMMANDS.len() + 2);
    }

    #[test]
    fn lz4_bound_covers_incompressible_input() {
        for n in [0usize, 1, 15, 16, 254, 255, 256, 4096, 100_000] {
            let noise: Vec<u8> = (0..n as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let compressed = lz4_flex::block::compress(&noise);
            assert!(
                compressed.len() <= lz4_bound(n),
                "{n}: {}",
                compressed.len()
            );
        }
    }

    #[test]
    fn shared_fixed_sizes_match_their_encodings() {
        use crate::wire::{Encode, FilterAddPayload, FilterLoadPayload, PingPayload};
        assert_eq!(PingPayload::default().size(), PING_PAYLOAD);
        let load = FilterLoadPayload {
            filter: vec![0; MAX_FILTER_SIZE].into(),
            k: 50,
            tweak: 0,
        };
        // Canonical var-ints: the cap allows the longest form on top.
        assert_eq!(load.size() + VAR_INT_MAX - 3, MAX_FILTERLOAD_PAYLOAD);
        let add = FilterAddPayload {
            data: vec![0; MAX_FILTER_ADD].into(),
        };
        assert_eq!(add.size() + VAR_INT_MAX - 3, MAX_FILTERADD_PAYLOAD);
    }
}
