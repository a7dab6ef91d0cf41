//! A scripted hostile remote over loopback TCP, the runtimes it is played on,
//! and the bookkeeping the fault-injection cases assert with: a counting
//! allocator, drop flags that show every task of a peer ended.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use bytes::{Bytes, BytesMut};
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use neo_peer::peer::{Direction, Handler, LocalConfig, Peer};
use neo_peer::protocol::{GossipAddr, Legacy, N3, Protocol, Role};
use neo_peer::wire::{UInt256, legacy, n3};

pub const NET: u32 = 56753;

// ---------------------------------------------------------------- memory

/// Counts the bytes live on the heap, their high-water mark and the largest
/// single allocation, over the whole test binary.
pub struct Counting;

pub static LIVE: AtomicUsize = AtomicUsize::new(0);
pub static PEAK: AtomicUsize = AtomicUsize::new(0);
pub static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
    LARGEST.fetch_max(size, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only touches atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

/// Heap bytes live right now.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------- runtimes

use crate::rt::Rt;

// ---------------------------------------------------------------- task ends

/// Set when the value holding it is dropped.
#[derive(Clone, Default)]
pub struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
}

struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Our side of the connection; dropped only when both the reader and the
/// writer task let go of it.
pub struct Tracked<C> {
    inner: C,
    _guard: DropGuard,
}

impl<C: AsyncRead + Unpin> AsyncRead for Tracked<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Tracked<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// A handler whose drop (the end of the handler task) is seen.
pub struct Watched<H> {
    inner: H,
    _guard: DropGuard,
}

impl<P: Protocol, H: Handler<P>> Handler<P> for Watched<H> {
    fn handle(&self, peer: &Peer<P>, msg: P::Message) -> impl Future<Output = ()> + Send {
        self.inner.handle(peer, msg)
    }
}

/// Our peer under test and the flags that show its tasks are gone.
pub struct Ours<P: Protocol> {
    pub peer: Peer<P>,
    pub conn_dropped: DropFlag,
    pub handler_dropped: DropFlag,
}

impl<P: Protocol> Ours<P> {
    /// True once the connection and the handler are dropped: the reader,
    /// writer and handler tasks (or the handshake) have all ended.
    pub async fn tasks_end_within(&self, d: Duration) -> bool {
        let deadline = std::time::Instant::now() + d;
        while std::time::Instant::now() < deadline {
            if self.conn_dropped.is_set() && self.handler_dropped.is_set() {
                return true;
            }
            Timer::after(Duration::from_millis(5)).await;
        }
        false
    }
}

/// Our peer over `s`, with its connection and handler watched.
pub fn ours<P: Protocol, R: Rt>(
    rt: R,
    s: TcpStream,
    dir: Direction,
    cfg: LocalConfig<P>,
    h: impl Handler<P>,
) -> Ours<P> {
    let conn_dropped = DropFlag::default();
    let handler_dropped = DropFlag::default();
    let conn = Tracked {
        inner: rt.stream(s),
        _guard: conn_dropped.guard(),
    };
    let handler = Watched {
        inner: h,
        _guard: handler_dropped.guard(),
    };
    Ours {
        peer: Peer::new(conn, dir, cfg, handler, rt.ex()),
        conn_dropped,
        handler_dropped,
    }
}

/// A connected pair (ours, the remote's). `Inbound`: the remote dialed our
/// listener; `Outbound`: we dialed the remote's.
pub fn tcp_pair(dir: Direction) -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let dialer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (accepted, _) = l.accept().unwrap();
    match dir {
        Direction::Outbound => (dialer, accepted),
        Direction::Inbound => (accepted, dialer),
    }
}

// ---------------------------------------------------------------- the remote

/// What the hostile remote needs to say in each generation.
pub trait Hostile: Protocol<Message: PartialEq> {
    /// `inv` with `n` hashes, the first four bytes of the first being `i`.
    fn inv(i: u32, n: usize) -> Self::Message;
    /// `addr` with one address.
    fn one_addr(i: u32) -> Self::Message;
    /// A command nobody defined.
    fn unknown() -> Self::Message;
    fn is_unknown(m: &Self::Message) -> bool {
        Self::command_name(m) == "unknown"
    }
    /// A frame header declaring a payload of 4 GiB.
    fn huge_frame() -> Vec<u8>;
    /// A `getheaders` asking for more than the protocol allows.
    fn too_much_getheaders() -> Vec<u8>;
}

fn hash(i: u32) -> UInt256 {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&i.to_le_bytes());
    UInt256(h)
}

fn gossip(i: u32) -> GossipAddr {
    GossipAddr {
        addr: ([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 10333).into(),
        timestamp: 1_700_000_000,
        services: 1,
    }
}

impl Hostile for N3 {
    fn inv(i: u32, n: usize) -> n3::Message {
        n3::Message::Inv(n3::InvPayload {
            kind: n3::InventoryType::Transaction,
            hashes: (0..n as u32).map(|k| hash(i.wrapping_add(k))).collect(),
        })
    }
    fn one_addr(i: u32) -> n3::Message {
        <N3 as Protocol>::addr(&[gossip(i)]).unwrap()
    }
    fn unknown() -> n3::Message {
        n3::Message::Unknown {
            command: 0x99,
            payload: Bytes::from_static(&[0xAB, 0xCD]),
        }
    }
    fn huge_frame() -> Vec<u8> {
        // flags, inv, var-int 0xFF + u64 length 2^32
        let mut f = vec![0x00, 0x27, 0xFF];
        f.extend_from_slice(&(1u64 << 32).to_le_bytes());
        f
    }
    fn too_much_getheaders() -> Vec<u8> {
        let mut f = vec![0x00, 0x20, 0x06];
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&2001i16.to_le_bytes());
        f
    }
}

impl Hostile for Legacy {
    fn inv(i: u32, n: usize) -> legacy::Message {
        legacy::Message::Inv(legacy::InvPayload {
            kind: legacy::InventoryType::Tx,
            hashes: (0..n as u32).map(|k| hash(i.wrapping_add(k))).collect(),
        })
    }
    fn one_addr(i: u32) -> legacy::Message {
        <Legacy as Protocol>::addr(&[gossip(i)]).unwrap()
    }
    fn unknown() -> legacy::Message {
        legacy::Message::Unknown {
            command: "xyzzy".into(),
            payload: Bytes::from_static(&[1, 2, 3]),
        }
    }
    fn huge_frame() -> Vec<u8> {
        let mut f = NET.to_le_bytes().to_vec();
        f.extend_from_slice(b"inv\0\0\0\0\0\0\0\0\0");
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        f
    }
    fn too_much_getheaders() -> Vec<u8> {
        // 17 start hashes: one over the limit of 16
        let mut payload = vec![17u8];
        for i in 0..17 {
            payload.extend_from_slice(&hash(i).0);
        }
        payload.extend_from_slice(&[0; 32]);
        let msg = legacy::Message::Unknown {
            command: "getheaders".into(),
            payload: payload.into(),
        };
        let mut out = BytesMut::new();
        legacy::Codec::new(NET).encode(&msg, &mut out).unwrap();
        out.to_vec()
    }
}

/// The scripted remote: raw bytes or frames, as it pleases.
pub struct Remote<P: Protocol> {
    pub conn: Async<TcpStream>,
    pub codec: P::Codec,
    buf: BytesMut,
    pub config: LocalConfig<P>,
}

impl<P: Protocol> Remote<P> {
    pub fn new(s: TcpStream, nonce: u32) -> Self {
        let mut config = LocalConfig::new(NET);
        config.identity.nonce = nonce;
        config.identity.user_agent = format!("/hostile:{nonce}/");
        Remote {
            conn: Async::new(s).unwrap(),
            codec: P::codec(NET),
            buf: BytesMut::new(),
            config,
        }
    }

    pub fn frame(&self, m: &P::Message) -> Vec<u8> {
        let mut out = BytesMut::new();
        P::encode(&self.codec, m, &mut out).unwrap();
        out.to_vec()
    }

    pub async fn send(&mut self, m: &P::Message) {
        let f = self.frame(m);
        self.conn.write_all(&f).await.unwrap();
    }

    /// Writes raw bytes; false if the connection is gone.
    pub async fn raw(&mut self, bytes: &[u8]) -> bool {
        self.conn.write_all(bytes).await.is_ok()
    }

    /// Next message, or `None` when the connection closed.
    pub async fn recv(&mut self) -> Option<P::Message> {
        loop {
            if let Some(d) = P::decode(&mut self.codec, &mut self.buf).ok()? {
                return Some(d.message);
            }
            let mut chunk = [0u8; 4096];
            match self.conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the connection closes (read returns 0 or an error);
    /// true if it did within `d`.
    pub async fn closes_within(&mut self, d: Duration) -> bool {
        let wait = async {
            let mut chunk = [0u8; 4096];
            loop {
                match self.conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        };
        futures_lite::future::or(wait, async {
            Timer::after(d).await;
            false
        })
        .await
    }

    /// Sends `version` and, unless told otherwise, `verack`; reads ours.
    pub async fn handshake(&mut self) {
        let v = P::version(&self.config.identity);
        self.send(&v).await;
        let first = self.recv().await.expect("our version");
        assert!(matches!(P::role(&first), Role::Version(_)), "{first:?}");
        self.send(&P::verack()).await;
        let second = self.recv().await.expect("our verack");
        assert!(matches!(P::role(&second), Role::Verack), "{second:?}");
    }

    /// Pings and waits for the pong (skipping anything else); true if it came
    /// within `d`.
    pub async fn pinged_within(&mut self, d: Duration) -> bool {
        let nonce = 0x5EED;
        let ping = P::ping(
            neo_peer::wire::PingPayload {
                last_block_index: 0,
                timestamp: 0,
                nonce,
            },
            false,
        );
        self.send(&ping).await;
        let wait = async {
            while let Some(m) = self.recv().await {
                if let Role::Pong(p) = P::role(&m) {
                    if p.nonce == nonce {
                        return true;
                    }
                }
            }
            false
        };
        futures_lite::future::or(wait, async {
            Timer::after(d).await;
            false
        })
        .await
    }
}
