//! Framing (§2 of the Legacy wire reference) and the streaming codec.
//!
//! A frame is a 24-byte header — magic (u32 LE), command (12 bytes,
//! NUL-padded ASCII), payload length (u32 LE), checksum (first 4 bytes of
//! `Hash256(payload)`) — followed by the payload.

use bytes::{BufMut, Bytes, BytesMut};

use super::{MAINNET_MAGIC, Message, limits};
use crate::wire::{FrameError, MAX_PAYLOAD, PayloadLimits, hash256};

/// Length of the frame header.
pub const HEADER_SIZE: usize = 24;

/// Length of the command field.
pub const COMMAND_SIZE: usize = 12;

/// A frame taken off the stream, payload not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The network magic the frame carries.
    pub magic: u32,
    /// The command name (printable ASCII, at most 12 bytes).
    pub command: String,
    /// The payload (checksum already verified).
    pub payload: Bytes,
}

impl RawFrame {
    /// Decodes the payload.
    pub fn message(&self) -> Result<Message, FrameError> {
        Message::decode_payload(&self.command, self.payload.clone()).map_err(|source| {
            FrameError::Payload {
                command: self.command.clone(),
                source,
            }
        })
    }

    /// Length of the whole frame on the wire.
    pub fn wire_size(&self) -> usize {
        HEADER_SIZE + self.payload.len()
    }
}

/// The first 4 bytes of `Hash256(payload)`, as the frame header carries them.
pub fn checksum(payload: &[u8]) -> [u8; 4] {
    let h = hash256(payload);
    [h[0], h[1], h[2], h[3]]
}

/// Parses the 12-byte command field: the name runs up to the first NUL, must be
/// non-empty printable ASCII, and everything after it must be NUL.
pub fn parse_command(field: &[u8; COMMAND_SIZE]) -> Result<&str, FrameError> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(COMMAND_SIZE);
    let (name, padding) = field.split_at(len);
    if name.is_empty() {
        return Err(FrameError::BadCommand("empty command".into()));
    }
    if !name.iter().all(u8::is_ascii_graphic) {
        return Err(FrameError::BadCommand(format!(
            "not printable ASCII: {}",
            hex::encode(field)
        )));
    }
    if padding.iter().any(|&b| b != 0) {
        return Err(FrameError::BadCommand(format!(
            "bytes after the terminating NUL: {}",
            hex::encode(field)
        )));
    }
    // only ASCII graphic characters: valid UTF-8
    std::str::from_utf8(name).map_err(|_| FrameError::BadCommand(hex::encode(field)))
}

fn command_field(command: &str) -> Result<[u8; COMMAND_SIZE], FrameError> {
    let bytes = command.as_bytes();
    if bytes.is_empty() || bytes.len() > COMMAND_SIZE || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(FrameError::BadCommand(format!(
            "cannot send command {command:?}"
        )));
    }
    let mut field = [0u8; COMMAND_SIZE];
    field[..bytes.len()].copy_from_slice(bytes);
    Ok(field)
}

/// The streaming codec: takes frames off a byte stream and puts messages on it.
///
/// It holds no buffer of its own: [`Codec::decode`] reads from the caller's
/// [`BytesMut`], consuming a frame only once it is complete, and hands out the
/// payload without copying it.
///
/// Every frame is held to two caps, both checked from its 24-byte header
/// before any of its payload is buffered, on receive and on send alike: the
/// frame cap ([`Codec::max_payload`]) and its command's cap
/// ([`Codec::payload_cap`], from the [`limits`] and the configurable
/// [`PayloadLimits`]).
#[derive(Debug, Clone)]
pub struct Codec {
    magic: u32,
    any_magic: bool,
    max_payload: usize,
    limits: PayloadLimits,
}

impl Codec {
    /// A codec for the network with this magic (e.g. [`MAINNET_MAGIC`]),
    /// with the default limits ([`PayloadLimits::LEGACY`]).
    pub fn new(magic: u32) -> Self {
        Codec {
            magic,
            any_magic: false,
            max_payload: MAX_PAYLOAD,
            limits: PayloadLimits::LEGACY,
        }
    }

    /// A codec that accepts frames of every network (for inspection tools).
    /// It encodes with [`MAINNET_MAGIC`].
    pub fn any_magic() -> Self {
        Codec {
            any_magic: true,
            ..Codec::new(MAINNET_MAGIC)
        }
    }

    /// The magic this codec checks (`None` if it accepts any).
    pub fn magic(&self) -> Option<u32> {
        (!self.any_magic).then_some(self.magic)
    }

    /// The largest payload accepted or produced.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Sets the largest payload accepted or produced (e.g. a few KiB before the
    /// handshake is complete). Values above [`MAX_PAYLOAD`] are lowered to it.
    pub fn set_max_payload(&mut self, max: usize) {
        self.max_payload = max.min(MAX_PAYLOAD);
    }

    /// The configurable part of the per-command caps.
    pub fn limits(&self) -> &PayloadLimits {
        &self.limits
    }

    /// Sets the configurable part of the per-command caps (the block and
    /// transaction sizes of the network, the cap of unknown commands).
    pub fn set_limits(&mut self, limits: PayloadLimits) {
        self.limits = limits;
    }

    /// The largest payload a `command` frame may declare, received or sent:
    /// the command's cap (see [`limits`]), and never more than
    /// [`Codec::max_payload`].
    ///
    /// ```
    /// use neo_peer::wire::legacy::{Codec, MAINNET_MAGIC};
    ///
    /// let codec = Codec::new(MAINNET_MAGIC);
    /// assert_eq!(codec.payload_cap("ping"), 12);
    /// assert_eq!(codec.payload_cap("verack"), 0);
    /// assert_eq!(codec.payload_cap("xyzzy"), 64 * 1024);
    /// ```
    #[inline]
    pub fn payload_cap(&self, command: &str) -> usize {
        limits::payload_cap(&self.limits, command).min(self.max_payload)
    }

    /// Checks a payload length against the frame cap, then against the
    /// command's cap: the one check of both directions.
    #[inline]
    fn check_len(&self, command: &str, len: usize) -> Result<(), FrameError> {
        if len > self.max_payload {
            return Err(FrameError::PayloadTooLarge {
                len: len as u64,
                max: self.max_payload as u64,
            });
        }
        let max = self.payload_cap(command);
        if len > max {
            return Err(FrameError::CommandTooLarge {
                command: command.to_owned(),
                what: "payload",
                len: len as u64,
                max: max as u64,
            });
        }
        Ok(())
    }

    /// The length on the wire of the frame at the front of `buf` (header
    /// and payload), as its header declares it: `None` until the 24-byte
    /// header is there. Nothing is checked: this is for a reader that
    /// already had [`Codec::decode_frame`] check the header and wants to
    /// know how many bytes the frame still needs.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use neo_peer::wire::legacy::{Codec, Message, MAINNET_MAGIC};
    ///
    /// let codec = Codec::new(MAINNET_MAGIC);
    /// let mut frame = BytesMut::new();
    /// codec.encode(&Message::GetAddr, &mut frame).unwrap();
    /// assert_eq!(Codec::frame_len(&frame[..23]), None);
    /// assert_eq!(Codec::frame_len(&frame[..24]), Some(24));
    /// ```
    pub fn frame_len(buf: &[u8]) -> Option<usize> {
        let header = buf.first_chunk::<HEADER_SIZE>()?;
        let len = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
        usize::try_from(len).ok()?.checked_add(HEADER_SIZE)
    }

    /// Takes the next frame off `buf` without decoding its payload.
    ///
    /// Returns `Ok(None)`, consuming nothing, while the frame is incomplete.
    /// The magic is checked as soon as 4 bytes are there, the command field and
    /// the declared length (against the frame cap, then the command's cap) as
    /// soon as the 24-byte header is there, so an oversized frame is refused
    /// before its payload is awaited; the checksum once the payload is
    /// complete.
    pub fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<RawFrame>, FrameError> {
        let Some(magic_bytes) = buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let magic = u32::from_le_bytes(*magic_bytes);
        if !self.any_magic && magic != self.magic {
            return Err(FrameError::WrongMagic {
                expected: self.magic,
                got: magic,
            });
        }
        let Some(header) = buf.first_chunk::<HEADER_SIZE>() else {
            return Ok(None);
        };
        let header = *header;
        let mut field = [0u8; COMMAND_SIZE];
        field.copy_from_slice(&header[4..16]);
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(&header[16..20]);
        // Whatever does not fit in a usize is over any cap.
        let len = usize::try_from(u32::from_le_bytes(len_bytes)).unwrap_or(usize::MAX);
        let command = parse_command(&field)?;
        self.check_len(command, len)?;
        let command = command.to_owned();
        let total = HEADER_SIZE + len;
        if buf.len() < total {
            // Nothing is reserved for the rest: a declared length buys no
            // memory until the bytes actually arrive.
            return Ok(None);
        }
        let expected = &header[20..24];
        let actual = checksum(&buf[HEADER_SIZE..total]);
        if expected != actual {
            return Err(FrameError::ChecksumMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            });
        }
        let _ = buf.split_to(HEADER_SIZE);
        let payload = buf.split_to(len).freeze();
        Ok(Some(RawFrame {
            magic,
            command,
            payload,
        }))
    }

    /// Takes the next message off `buf`: [`Codec::decode_frame`], then the payload.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, FrameError> {
        match self.decode_frame(buf)? {
            Some(frame) => frame.message().map(Some),
            None => Ok(None),
        }
    }

    /// Appends `msg` as one frame to `out`.
    ///
    /// Refuses (writing nothing) what a receiver would reject: a payload over
    /// the frame cap or its command's cap (so nothing is sent that this
    /// codec would refuse), or a message breaking the protocol's limits
    /// ([`Message::check_limits`]).
    pub fn encode(&self, msg: &Message, out: &mut BytesMut) -> Result<(), FrameError> {
        let command = msg.command();
        let field = command_field(command)?;
        msg.check_limits().map_err(|source| FrameError::Payload {
            command: command.to_owned(),
            source,
        })?;
        let len = msg.payload_size();
        self.check_len(command, len)?;
        out.reserve(HEADER_SIZE + len);
        let start = out.len();
        out.put_u32_le(self.magic);
        out.put_slice(&field);
        // length and checksum are patched in once the payload is written
        out.put_bytes(0, 8);
        msg.encode_payload(out);
        let payload_start = start + HEADER_SIZE;
        let written = out.len() - payload_start;
        debug_assert_eq!(written, len, "size() of {command} disagrees with encode()");
        let sum = checksum(&out[payload_start..]);
        out[start + 16..start + 20].copy_from_slice(&(written as u32).to_le_bytes());
        out[start + 20..start + 24].copy_from_slice(&sum);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::legacy::{EMPTY_CHECKSUM, PingPayload};

    #[test]
    fn command_field_parsing() {
        let mut f = [0u8; COMMAND_SIZE];
        f[..6].copy_from_slice(b"verack");
        assert_eq!(parse_command(&f).unwrap(), "verack");
        f[8] = b'x';
        assert!(parse_command(&f).is_err());
        assert!(parse_command(&[0; COMMAND_SIZE]).is_err());
        assert_eq!(parse_command(b"filterclear\0").unwrap(), "filterclear");
        assert_eq!(parse_command(b"abcdefghijkl").unwrap(), "abcdefghijkl");
        assert!(parse_command(b"tab\tcommand\0").is_err());
    }

    #[test]
    fn encoding_patches_length_and_checksum_in_place() {
        let codec = Codec::new(MAINNET_MAGIC);
        let mut out = BytesMut::from(&b"prefix"[..]);
        codec.encode(&Message::Verack, &mut out).unwrap();
        assert_eq!(
            hex::encode(&out[6..]),
            format!(
                "416e7400{}00000000{}",
                hex::encode(b"verack\0\0\0\0\0\0"),
                "5df6e0e2"
            )
        );
        assert_eq!(&out[6 + 20..], &EMPTY_CHECKSUM);
        let ping = Message::Ping(PingPayload {
            last_block_index: 2_000_000,
            timestamp: 1_527_894_405,
            nonce: 42,
        });
        let mut out = BytesMut::new();
        codec.encode(&ping, &mut out).unwrap();
        // the mainnet ping vector
        assert_eq!(&out[16..24], &hex::decode("0c0000003e2f2b53").unwrap()[..]);
    }

    #[test]
    fn any_magic_codec_reports_no_magic() {
        assert_eq!(Codec::any_magic().magic(), None);
        assert_eq!(Codec::new(7).magic(), Some(7));
        let mut c = Codec::new(7);
        c.set_max_payload(usize::MAX);
        assert_eq!(c.max_payload(), MAX_PAYLOAD);
    }
}
