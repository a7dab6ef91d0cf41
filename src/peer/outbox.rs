//! The bytes a peer has queued for its connection and not yet written.
//!
//! Small frames are encoded one after the other into one buffer, so that a
//! few of them go out in one write; a large frame, and a frame encoded once
//! and shared by many peers ([`Frame`](super::Frame)), is kept as a chunk of
//! its own, referenced rather than copied. Memory: the unsent bytes, plus
//! the small buffer's spare room, which is given back once it is emptied if
//! it grew beyond [`KEEP_CAPACITY`] (a large frame never enters it: the
//! buffer keeps no allocation a burst of answers made).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::frame::Holding;

/// Capacity the small-frame buffer keeps once emptied; also the size from
/// which a frame is queued as a chunk of its own.
pub(crate) const KEEP_CAPACITY: usize = 4 * 1024;

/// Queued bytes, in order: the chunks, then the open buffer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Sealed chunks, written first, front first; a frame shared with other
    /// peers comes with its hold on the frame's charge to the send budget.
    chunks: VecDeque<(Bytes, Option<Holding>)>,
    /// Frames encoded in place, after every chunk; written from `pos`.
    tail: BytesMut,
    pos: usize,
    /// Unsent bytes in all.
    len: usize,
    /// Of `len`, the unsent bytes of shared frames (charged to the send
    /// budget by the frame, once for all the peers holding it).
    shared: usize,
}

impl Outbox {
    /// Unsent bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Unsent bytes of this peer's own (not of shared frames).
    pub(crate) fn own(&self) -> usize {
        self.len - self.shared
    }

    /// Unsent bytes of shared frames.
    pub(crate) fn shared(&self) -> usize {
        self.shared
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer a frame of about `size` bytes is encoded into: the open
    /// buffer for a small frame, a new one for a large frame. Hand it back
    /// to [`commit`](Outbox::commit) once the frame is written into it.
    pub(crate) fn writer(&mut self, size: usize) -> Writer {
        if size > KEEP_CAPACITY {
            Writer::Own(BytesMut::with_capacity(size))
        } else {
            Writer::Tail(self.tail.len())
        }
    }

    /// The buffer of `writer`.
    pub(crate) fn buffer<'a>(&'a mut self, writer: &'a mut Writer) -> &'a mut BytesMut {
        match writer {
            Writer::Own(buf) => buf,
            Writer::Tail(_) => &mut self.tail,
        }
    }

    /// Keeps what was written into `writer` (at most everything, none if
    /// `keep` is false); returns how many bytes were queued.
    pub(crate) fn commit(&mut self, writer: Writer, keep: bool) -> usize {
        match writer {
            Writer::Tail(start) => {
                if !keep {
                    self.tail.truncate(start);
                    return 0;
                }
                let n = self.tail.len() - start;
                self.len += n;
                n
            }
            Writer::Own(buf) if keep => {
                let n = buf.len();
                // A frame that came out much smaller than the room taken for
                // it (compressed) keeps only its own bytes.
                let spare = buf.capacity() - n;
                let chunk = if spare > KEEP_CAPACITY.max(n / 8) {
                    Bytes::copy_from_slice(&buf)
                } else {
                    buf.freeze()
                };
                self.push(chunk, None);
                n
            }
            Writer::Own(_) => 0,
        }
    }

    /// Queues `chunk` as it is (no copy); `hold`, for a frame shared with
    /// other peers, is kept until it is written.
    pub(crate) fn push(&mut self, chunk: Bytes, hold: Option<Holding>) {
        if chunk.is_empty() {
            return;
        }
        if self.pos < self.tail.len() {
            // What the open buffer holds goes first.
            let tail = std::mem::take(&mut self.tail).freeze().slice(self.pos..);
            self.chunks.push_back((tail, None));
        } else {
            self.tail.clear();
        }
        self.pos = 0;
        self.len += chunk.len();
        if hold.is_some() {
            self.shared += chunk.len();
        }
        self.chunks.push_back((chunk, hold));
    }

    /// The next bytes to write (a prefix of the unsent bytes; empty when
    /// none).
    pub(crate) fn front(&self) -> &[u8] {
        match self.chunks.front() {
            Some((chunk, _)) => chunk,
            None => &self.tail[self.pos..],
        }
    }

    /// The connection took `n` bytes of [`front`](Outbox::front) (at most
    /// all of them).
    pub(crate) fn advance(&mut self, n: usize) {
        let n = n.min(self.front().len());
        self.len -= n;
        match self.chunks.front_mut() {
            Some((chunk, hold)) => {
                chunk.advance(n);
                if hold.is_some() {
                    self.shared -= n;
                }
                if chunk.is_empty() {
                    // Its hold, if shared, goes with it.
                    self.chunks.pop_front();
                }
            }
            None => {
                self.pos += n;
                if self.pos == self.tail.len() {
                    self.pos = 0;
                    if self.tail.capacity() > KEEP_CAPACITY {
                        self.tail = BytesMut::new();
                    } else {
                        self.tail.clear();
                    }
                }
            }
        }
    }

    /// Drops everything queued and every buffer.
    pub(crate) fn clear(&mut self) {
        *self = Outbox::default();
    }

    /// Bytes of memory it holds of its own (the open buffer's capacity and
    /// the chunks' unsent bytes, shared or not).
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        self.tail.capacity() + self.chunks.iter().map(|(c, _)| c.len()).sum::<usize>()
    }
}

/// Where one frame is being encoded (see [`Outbox::writer`]).
#[derive(Debug)]
pub(crate) enum Writer {
    /// At the end of the open buffer, from this length.
    Tail(usize),
    /// In a buffer of its own.
    Own(BytesMut),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(o: &mut Outbox, step: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while !o.is_empty() {
            let n = o.front().len().min(step);
            all.extend_from_slice(&o.front()[..n]);
            o.advance(n);
        }
        all
    }

    fn put(o: &mut Outbox, data: &[u8]) {
        let mut w = o.writer(data.len());
        o.buffer(&mut w).extend_from_slice(data);
        o.commit(w, true);
    }

    #[test]
    fn keeps_order_across_buffer_and_chunks() {
        let mut o = Outbox::default();
        put(&mut o, b"ab");
        o.push(Bytes::from_static(b"cd"), None);
        put(&mut o, b"ef");
        put(&mut o, &[b'g'; 5000]);
        put(&mut o, b"h");
        assert_eq!(o.len(), 2 + 2 + 2 + 5000 + 1);
        let mut want = b"abcdef".to_vec();
        want.extend_from_slice(&[b'g'; 5000]);
        want.push(b'h');
        assert_eq!(drain(&mut o, 3), want);
        assert_eq!(o.len(), 0);
        assert!(o.front().is_empty());
    }

    #[test]
    fn a_partly_written_buffer_keeps_its_order_when_a_chunk_follows() {
        let mut o = Outbox::default();
        put(&mut o, b"abcd");
        o.advance(1);
        o.push(Bytes::from_static(b"ef"), None);
        assert_eq!(drain(&mut o, 10), b"bcdef");
    }

    #[test]
    fn a_frame_not_kept_leaves_nothing() {
        let mut o = Outbox::default();
        put(&mut o, b"ab");
        let mut w = o.writer(3);
        o.buffer(&mut w).extend_from_slice(b"xyz");
        assert_eq!(o.commit(w, false), 0);
        let mut w = o.writer(10_000);
        o.buffer(&mut w).extend_from_slice(&[0; 10_000]);
        assert_eq!(o.commit(w, false), 0);
        assert_eq!(drain(&mut o, 10), b"ab");
    }

    #[test]
    fn large_frames_leave_no_capacity_behind() {
        let mut o = Outbox::default();
        for _ in 0..100 {
            put(&mut o, &[1; 3000]);
        }
        put(&mut o, &[2; 1 << 20]);
        assert!(o.footprint() >= 300_000 + (1 << 20));
        drain(&mut o, 64 * 1024);
        assert_eq!(o.footprint(), 0, "the grown buffer is given back");
        put(&mut o, b"small");
        drain(&mut o, 2);
        assert!(o.footprint() <= KEEP_CAPACITY);
    }

    #[test]
    fn shared_chunks_are_not_copied() {
        let shared = Bytes::from(vec![7u8; 10_000]);
        let mut o = Outbox::default();
        o.push(shared.clone(), None);
        assert_eq!(o.front().as_ptr(), shared.as_ptr());
        o.advance(4000);
        assert_eq!(o.front().as_ptr(), shared[4000..].as_ptr());
        o.clear();
        assert!(o.is_empty());
    }
}
