//! Reading and writing the primitive encodings shared by both wire generations.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::DecodeError;
use super::hash::{UInt160, UInt256};

/// Default maximum for arrays and byte strings read without a tighter limit (`0x1000000`).
pub const MAX_ARRAY_DEFAULT: u64 = 0x0100_0000;

/// A cursor over a received buffer.
///
/// Byte strings are returned as [`Bytes`] slices of the input, so decoding a
/// structure copies nothing but its fixed-size fields. Every length or count
/// read from the input is checked against a maximum before it is used, and
/// [`Reader::count`] additionally refuses a count whose elements cannot fit in
/// the bytes that remain, so no allocation is ever sized by a number an
/// attacker chose.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    /// Reads from `buf`, starting at its first byte.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Reads from a copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The whole underlying buffer (also the bytes already read).
    pub fn buffer(&self) -> &Bytes {
        &self.buf
    }

    /// The input between two offsets previously returned by [`Reader::position`].
    pub fn span(&self, start: usize, end: usize) -> &[u8] {
        &self.buf[start..end]
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was read.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }

    /// Fails with [`DecodeError::Truncated`] unless `n` bytes remain.
    pub(crate) fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.remaining() < n {
            Err(DecodeError::Truncated {
                what,
                needed: n as u64,
                remaining: self.remaining(),
            })
        } else {
            Ok(())
        }
    }

    /// The bytes not yet read.
    #[inline]
    pub(crate) fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Moves past `n` bytes.
    #[inline]
    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.need(n, what)?;
        self.pos += n;
        Ok(())
    }

    /// Reads `N` bytes into an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        self.need(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    /// Reads `n` bytes as a slice of the input (no copy).
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, what)?;
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.need(1, what)?;
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_le_bytes)
    }

    /// Reads a big-endian `u16` (only the Legacy `addr` port uses it).
    pub fn u16_be(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_be_bytes)
    }

    /// Reads a little-endian `i16`.
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        self.array(what).map(i16::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a little-endian `i64`.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        self.array(what).map(i64::from_le_bytes)
    }

    /// Reads a boolean the lenient way (any non-zero byte is true): Legacy rules.
    pub fn bool_lenient(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.u8(what)? != 0)
    }

    /// Reads a boolean the strict way (only 0 or 1): N3 rules.
    pub fn bool_strict(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError::InvalidValue {
                what,
                value: v.into(),
            }),
        }
    }

    /// Reads a [`UInt160`] (20 raw bytes).
    pub fn uint160(&mut self, what: &'static str) -> Result<UInt160, DecodeError> {
        self.array(what).map(UInt160)
    }

    /// Reads a [`UInt256`] (32 raw bytes).
    pub fn uint256(&mut self, what: &'static str) -> Result<UInt256, DecodeError> {
        self.array(what).map(UInt256)
    }

    /// Reads a var-int in any of its four forms (canonical or not) and checks it against `max`.
    pub fn var_int(&mut self, max: u64, what: &'static str) -> Result<u64, DecodeError> {
        let value = match self.u8(what)? {
            0xFD => u64::from(self.u16(what)?),
            0xFE => u64::from(self.u32(what)?),
            0xFF => self.u64(what)?,
            b => u64::from(b),
        };
        if value > max {
            return Err(DecodeError::TooMany {
                what,
                count: value,
                max,
            });
        }
        Ok(value)
    }

    /// Reads an element count for an array whose elements take at least
    /// `min_element_size` bytes each.
    ///
    /// Fails if the count is above `max`, or if that many elements cannot fit in
    /// the bytes left, so the result is always safe to pass to `Vec::with_capacity`.
    pub fn count(
        &mut self,
        max: u64,
        min_element_size: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let n = self.var_int(max, what)?;
        let needed = n.saturating_mul(min_element_size.max(1) as u64);
        if needed > self.remaining() as u64 {
            return Err(DecodeError::Truncated {
                what,
                needed,
                remaining: self.remaining(),
            });
        }
        // `n <= remaining`, so it fits in usize.
        Ok(n as usize)
    }

    /// Reads a var-bytes field of at most `max` bytes (no copy).
    pub fn var_bytes(&mut self, max: u64, what: &'static str) -> Result<Bytes, DecodeError> {
        let (start, n) = self.skip_var_bytes(max, what)?;
        Ok(self.buf.slice(start..start + n))
    }

    /// Moves past a var-bytes of at most `max` bytes, checked as
    /// [`Reader::var_bytes`] checks it; returns where its bytes start and how
    /// many there are.
    #[inline]
    pub(crate) fn skip_var_bytes(
        &mut self,
        max: u64,
        what: &'static str,
    ) -> Result<(usize, usize), DecodeError> {
        let n = self.var_int(max, what)?;
        if n > self.remaining() as u64 {
            return Err(DecodeError::Truncated {
                what,
                needed: n,
                remaining: self.remaining(),
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok((start, n as usize))
    }

    /// Reads a var-string (UTF-8) of at most `max` bytes.
    pub fn var_string(&mut self, max: u64, what: &'static str) -> Result<String, DecodeError> {
        let raw = self.var_bytes(max, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::Utf8 { what })
    }

    /// Reads an array of elements with `read`, after a count checked by [`Reader::count`].
    pub fn vec<T>(
        &mut self,
        max: u64,
        min_element_size: usize,
        what: &'static str,
        mut read: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.count(max, min_element_size, what)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(read(self)?);
        }
        Ok(out)
    }
}

/// Writing the primitive encodings into a [`BufMut`] (normally a [`BytesMut`]).
pub trait WriteExt: BufMut {
    /// Writes a var-int in its canonical (shortest) form, as the C# nodes do.
    fn put_var_int(&mut self, v: u64) {
        if v < 0xFD {
            self.put_u8(v as u8);
        } else if v <= 0xFFFF {
            self.put_u8(0xFD);
            self.put_u16_le(v as u16);
        } else if v <= 0xFFFF_FFFF {
            self.put_u8(0xFE);
            self.put_u32_le(v as u32);
        } else {
            self.put_u8(0xFF);
            self.put_u64_le(v);
        }
    }

    /// Writes a var-bytes field.
    fn put_var_bytes(&mut self, bytes: &[u8]) {
        self.put_var_int(bytes.len() as u64);
        self.put_slice(bytes);
    }
}

impl<B: BufMut + ?Sized> WriteExt for B {}

/// Size in bytes of the canonical var-int encoding of `v`.
pub const fn var_int_size(v: u64) -> usize {
    if v < 0xFD {
        1
    } else if v <= 0xFFFF {
        3
    } else if v <= 0xFFFF_FFFF {
        5
    } else {
        9
    }
}

/// Size in bytes of a var-bytes field holding `len` bytes.
pub const fn var_bytes_size(len: usize) -> usize {
    var_int_size(len as u64) + len
}

/// A structure with a wire encoding.
pub trait Encode {
    /// Appends the encoding to `out`.
    fn encode(&self, out: &mut BytesMut);

    /// Length of the encoding in bytes (what [`Encode::encode`] appends).
    fn size(&self) -> usize;

    /// The encoding as a fresh buffer.
    fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.size());
        self.encode(&mut out);
        out.freeze()
    }
}

/// A structure that can be read from the wire.
pub trait Decode: Sized {
    /// Name used in errors about trailing bytes.
    const NAME: &'static str;

    /// Reads one value, leaving the reader after it.
    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;

    /// Reads one value that must span all of `bytes` (no trailing bytes).
    fn decode_exact(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish(Self::NAME)?;
        Ok(v)
    }

    /// Like [`Decode::decode_exact`], from a borrowed slice (copied once).
    fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_exact(Bytes::copy_from_slice(bytes))
    }
}

impl Encode for UInt256 {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.0);
    }
    fn size(&self) -> usize {
        32
    }
}

impl Encode for UInt160 {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.0);
    }
    fn size(&self) -> usize {
        20
    }
}

/// Writes a var-int count followed by every element.
pub fn encode_vec<T: Encode>(items: &[T], out: &mut BytesMut) {
    out.put_var_int(items.len() as u64);
    for item in items {
        item.encode(out);
    }
}

/// Size of what [`encode_vec`] writes.
pub fn vec_size<T: Encode>(items: &[T]) -> usize {
    var_int_size(items.len() as u64) + items.iter().map(Encode::size).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_int_canonical_encoding_and_sizes() {
        for (v, hex) in [
            (0u64, "00"),
            (0xFC, "fc"),
            (0xFD, "fdfd00"),
            (0xFFFF, "fdffff"),
            (0x1_0000, "fe00000100"),
            (0xFFFF_FFFF, "feffffffff"),
            (0x1_0000_0000, "ff0000000001000000"),
        ] {
            let mut out = BytesMut::new();
            out.put_var_int(v);
            assert_eq!(hex::encode(&out), hex, "value {v:#x}");
            assert_eq!(var_int_size(v), out.len());
            let mut r = Reader::from_slice(&out);
            assert_eq!(r.var_int(u64::MAX, "v").unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn var_int_lenient_forms_decode() {
        for hex_in in ["01", "fd0100", "fe01000000", "ff0100000000000000"] {
            let mut r = Reader::from_slice(&hex::decode(hex_in).unwrap());
            assert_eq!(r.var_int(10, "x").unwrap(), 1, "{hex_in}");
        }
        // neo-go's non-canonical boundary forms
        let mut r = Reader::from_slice(&hex::decode("feffff0000").unwrap());
        assert_eq!(r.var_int(u64::MAX, "x").unwrap(), 0xFFFF);
    }

    #[test]
    fn var_int_maximum_is_enforced() {
        let mut r = Reader::from_slice(&[0xFD, 0xD1, 0x07]);
        let e = r.var_int(2000, "headers").unwrap_err();
        assert_eq!(e.to_string(), "headers: 2001 > 2000");
    }

    #[test]
    fn count_never_exceeds_remaining_bytes() {
        // claims 0xFFFFFFFF elements of 32 bytes with 3 bytes behind it
        let mut r = Reader::from_slice(&[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
        let e = r.count(u64::MAX, 32, "hashes").unwrap_err();
        assert!(matches!(e, DecodeError::Truncated { .. }), "{e}");
    }

    #[test]
    fn var_bytes_is_zero_copy_and_bounded() {
        let input = Bytes::from_static(&[3, b'a', b'b', b'c', 9]);
        let mut r = Reader::new(input.clone());
        let s = r.var_bytes(10, "s").unwrap();
        assert_eq!(&s[..], b"abc");
        assert_eq!(s.as_ptr(), input[1..].as_ptr());
        let mut r = Reader::from_slice(&[5, 1, 2]);
        assert!(matches!(
            r.var_bytes(10, "s"),
            Err(DecodeError::Truncated { .. })
        ));
        let mut r = Reader::from_slice(&[5, 1, 2, 3, 4, 5]);
        assert_eq!(r.var_bytes(4, "s").unwrap_err().to_string(), "s: 5 > 4");
    }

    #[test]
    fn strict_and_lenient_booleans() {
        assert!(Reader::from_slice(&[2]).bool_lenient("b").unwrap());
        assert!(Reader::from_slice(&[2]).bool_strict("b").is_err());
        assert!(!Reader::from_slice(&[0]).bool_strict("b").unwrap());
    }

    #[test]
    fn truncation_is_reported_with_the_field() {
        let e = Reader::from_slice(&[1, 2]).u32("timestamp").unwrap_err();
        assert_eq!(e.to_string(), "truncated timestamp: need 4 bytes, have 2");
    }
}
