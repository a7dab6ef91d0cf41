//! Error types of the sans-I/O codecs.

use thiserror::Error;

/// Why a structure could not be decoded from its bytes.
///
/// Every variant names the field (`what`) so that a message such as
/// `headers: 2001 > 2000` or `truncated witness.invocation: need 66 bytes, have 3`
/// says exactly what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the field was complete.
    #[error("truncated {what}: need {needed} bytes, have {remaining}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A count or length is above the field's maximum.
    #[error("{what}: {count} > {max}")]
    TooMany {
        /// The field being read.
        what: &'static str,
        /// The count or length found.
        count: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// A count or length is below the field's minimum.
    #[error("{what}: {count} < {min}")]
    TooFew {
        /// The field being read.
        what: &'static str,
        /// The count or length found.
        count: u64,
        /// The smallest value allowed.
        min: u64,
    },
    /// A field holds a value the protocol does not define or allow.
    #[error("invalid {what}: {value:#x}")]
    InvalidValue {
        /// The field being read.
        what: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A rule that spans several fields is broken (e.g. a duplicate signer).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The structure being read.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string field is not valid UTF-8.
    #[error("{what}: not valid UTF-8")]
    Utf8 {
        /// The field being read.
        what: &'static str,
    },
    /// Bytes are left over after a complete structure.
    #[error("{what}: {count} trailing bytes")]
    TrailingBytes {
        /// The structure that was read.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
}

/// Why a frame could not be taken off a byte stream.
///
/// Any of these means the stream can no longer be trusted: a peer that
/// produces one is disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Legacy: the frame's magic is not the network's.
    #[error("wrong magic: {got:#010x}, expected {expected:#010x}")]
    WrongMagic {
        /// The configured network magic.
        expected: u32,
        /// The magic in the frame.
        got: u32,
    },
    /// The declared payload length is above the frame cap (for every
    /// command); nothing was buffered.
    #[error("payload too large: {len} > {max}")]
    PayloadTooLarge {
        /// The declared length.
        len: u64,
        /// The cap in force.
        max: u64,
    },
    /// The declared payload length is above what the frame's command can
    /// carry (see [`PayloadLimits`](super::PayloadLimits)): refused from the
    /// frame header, before any of the payload was buffered.
    #[error("{command}: {what} of {len} bytes declared, at most {max} allowed")]
    CommandTooLarge {
        /// The command the frame header names (for an undefined N3
        /// command byte, `unknown 0x..`).
        command: String,
        /// Which length: `"payload"`, or for a compressed N3 frame
        /// `"compressed payload"` (its length on the wire) or
        /// `"decompressed payload"` (the size it declares).
        what: &'static str,
        /// The declared length.
        len: u64,
        /// The cap of that command.
        max: u64,
    },
    /// Legacy: the checksum does not match the payload.
    #[error("checksum mismatch: frame says {expected}, payload hashes to {actual}")]
    ChecksumMismatch {
        /// Checksum carried by the frame (hex, wire order).
        expected: String,
        /// Checksum of the payload received (hex, wire order).
        actual: String,
    },
    /// Legacy: the 12-byte command field is not NUL-padded ASCII.
    #[error("malformed command field: {0}")]
    BadCommand(String),
    /// N3: the compressed payload is malformed.
    #[error("decompression failed: {0}")]
    Decompress(String),
    /// The payload of a known command does not decode.
    #[error("{command}: {source}")]
    Payload {
        /// The command whose payload failed.
        command: String,
        /// What was wrong with it.
        #[source]
        source: DecodeError,
    },
}
