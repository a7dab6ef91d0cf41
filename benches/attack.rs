//! Hostile peers against `neo-peer serve`, one row per attack, with the
//! serving process's peak memory and an honest peer's worst latency.
//!
//! ```text
//! cargo bench --bench attack
//! NEO_PEER_BIN=/path/to/neo-peer cargo bench --bench attack
//! ```
//!
//! The binary attacked is `NEO_PEER_BIN`, or else the `neo-peer` this bench
//! was built with (cargo builds it for the bench). For each row and each
//! generation a fresh `neo-peer serve --synthetic 2100` is started on
//! loopback (ports 32000 and up, `PORT` to move them), an honest peer
//! connects from 127.0.0.1 and asks for one header every 100 ms while the
//! attackers play the row, then the server is stopped. Attackers dial either
//! from one address (127.0.0.2: per-IP limits apply to all of them) or each
//! from its own (127.2.x.y: per-IP limits do not hide the attack).
//!
//! Each row prints the server's peak resident memory (`VmHWM` of
//! `/proc/PID/status`, the kernel's own high-water mark), its resident memory
//! before the attack and at the end, how many attackers were served a
//! handshake, how many the server had dropped by the end, and the honest
//! peer's worst latency for `getheaders` of one header (a lost honest peer is
//! shown as `lost`).
//!
//! | row | attack |
//! |---|---|
//! | `ping` | 300 peers each handshake, declare a 30 MB `ping`, send 1 MiB of it, stall |
//! | `block` | 200 peers each handshake, declare a 30 MB `block`, send 4 MiB of it, stall |
//! | `block-cap` | 200 peers each handshake, declare a 2 MiB `block` (N3's default cap), send all but its last byte, stall |
//! | `getheaders` | 300 peers each handshake, send 50 `getheaders` of 2000 and never read |
//! | `reconnect` | one address sends a frame over the 32 MiB frame cap, then reconnects 1,000 times (one address only) |
//! | `same-headers` | 200 peers ask for the same first 2000 headers at once and read them |
//!
//! Environment: `PROTOCOLS` (`n3,legacy`), `IPS` (`one,many`), `ROWS` (all
//! of the above), `HOLD` (seconds the stalled attackers are held after
//! sending, 10), `HOLD_GETHEADERS` (45: well past the server's 30 s write
//! timeout, so that a drop is seen), `SERVER_LOG` (a directory: each
//! server's standard output goes to `serve-GEN-PORT.log` there, its
//! standard error, the log of its connections, to `serve-GEN-PORT.err`).
//! The soft limit on open files is raised to the hard limit (each attacker
//! is two sockets on this machine).

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use bytes::BytesMut;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use neo_peer::protocol::{Identity, Legacy, N3, Protocol, Role};
use neo_peer::wire::{UInt256, legacy, n3};
use socket2::{Domain, Socket, Type};

/// The network magic the server is started with (`--network`).
const NET: u32 = 56753;
/// Blocks after genesis in the served chain: enough for 2000 headers.
const BLOCKS: u32 = 2100;
const MIB: usize = 1 << 20;

// ------------------------------------------------------------ generations

/// What the attackers need to say in each generation.
trait Gen: Protocol {
    /// `getheaders` of up to 2000 headers from genesis.
    fn headers_2000(genesis: UInt256) -> Self::Message;
    /// `getheaders` of exactly one header, the first after genesis (Legacy:
    /// stopping before `second`, the hash of the second).
    fn headers_1(genesis: UInt256, second: UInt256) -> Self::Message;
    /// The hashes of a `headers` message.
    fn header_hashes(m: &Self::Message) -> Option<Vec<UInt256>>;
    /// A frame header for `command` declaring `len` payload bytes.
    fn frame_header(command: Big, len: u32) -> Vec<u8>;
}

/// The commands the partial-frame attacks declare.
#[derive(Clone, Copy)]
enum Big {
    Ping,
    Block,
    Inv,
}

impl Gen for N3 {
    fn headers_2000(_genesis: UInt256) -> n3::Message {
        n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
            index_start: 0,
            count: 2000,
        })
    }
    fn headers_1(_genesis: UInt256, _second: UInt256) -> n3::Message {
        n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
            index_start: 1,
            count: 1,
        })
    }
    fn header_hashes(m: &n3::Message) -> Option<Vec<UInt256>> {
        match m {
            n3::Message::Headers(h) => Some(h.hashes().collect()),
            _ => None,
        }
    }
    fn frame_header(command: Big, len: u32) -> Vec<u8> {
        let command = match command {
            Big::Ping => n3::Command::Ping,
            Big::Block => n3::Command::Block,
            Big::Inv => n3::Command::Inv,
        };
        let mut f = vec![0x00, command.as_u8(), 0xFE];
        f.extend_from_slice(&len.to_le_bytes());
        f
    }
}

impl Gen for Legacy {
    fn headers_2000(genesis: UInt256) -> legacy::Message {
        legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![genesis],
            hash_stop: UInt256([0; 32]),
        })
    }
    fn headers_1(genesis: UInt256, second: UInt256) -> legacy::Message {
        legacy::Message::GetHeaders(legacy::GetBlocksPayload {
            hash_start: vec![genesis],
            hash_stop: second,
        })
    }
    fn header_hashes(m: &legacy::Message) -> Option<Vec<UInt256>> {
        match m {
            legacy::Message::Headers(h) => Some(h.hashes().collect()),
            _ => None,
        }
    }
    fn frame_header(command: Big, len: u32) -> Vec<u8> {
        let name: &[u8] = match command {
            Big::Ping => b"ping",
            Big::Block => b"block",
            Big::Inv => b"inv",
        };
        let mut f = NET.to_le_bytes().to_vec();
        let mut field = [0u8; legacy::COMMAND_SIZE];
        field[..name.len()].copy_from_slice(name);
        f.extend_from_slice(&field);
        f.extend_from_slice(&len.to_le_bytes());
        // Any checksum: the payload never completes.
        f.extend_from_slice(&[0; 4]);
        f
    }
}

// ------------------------------------------------------------ connections

/// Dials `server` from `source` (blocking: loopback connects at once, or is
/// refused).
fn dial(source: Ipv4Addr, server: SocketAddr) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
    s.connect_timeout(&server.into(), Duration::from_secs(5))?;
    s.set_tcp_nodelay(true)?;
    Ok(s.into())
}

/// One connection speaking generation `P` by hand.
struct Conn<P: Gen> {
    io: Async<TcpStream>,
    codec: P::Codec,
    buf: BytesMut,
}

impl<P: Gen> Conn<P> {
    fn open(source: Ipv4Addr, server: SocketAddr) -> io::Result<Self> {
        Ok(Conn {
            io: Async::new(dial(source, server)?)?,
            codec: P::codec(NET),
            buf: BytesMut::new(),
        })
    }

    async fn send(&mut self, m: &P::Message) -> io::Result<()> {
        let mut out = BytesMut::new();
        P::encode(&self.codec, m, &mut out).map_err(io::Error::other)?;
        self.io.write_all(&out).await
    }

    /// The next message; `None` when the connection closed or the stream is
    /// bad. Pings are answered on the way.
    async fn recv(&mut self) -> Option<P::Message> {
        loop {
            if let Some(d) = P::decode(&mut self.codec, &mut self.buf).ok()? {
                if let Role::Ping(p) = P::role(&d.message) {
                    self.send(&P::ping(p, true)).await.ok()?;
                    continue;
                }
                return Some(d.message);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.io.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// `version` and `verack` both ways; false if refused or closed.
    async fn handshake(&mut self, nonce: u32) -> bool {
        let mut id = Identity::<P>::new(NET);
        id.nonce = nonce;
        id.user_agent = format!("/attack:{nonce}/");
        if self.send(&P::version(&id)).await.is_err() {
            return false;
        }
        let mut version = false;
        while let Some(m) = self.recv().await {
            match P::role(&m) {
                Role::Version(_) if !version => {
                    version = true;
                    if self.send(&P::verack()).await.is_err() {
                        return false;
                    }
                }
                Role::Verack if version => return true,
                _ => {}
            }
        }
        false
    }

    /// The next `headers` message's hashes, skipping anything else.
    async fn headers(&mut self) -> Option<Vec<UInt256>> {
        loop {
            let m = self.recv().await?;
            if let Some(h) = P::header_hashes(&m) {
                return Some(h);
            }
        }
    }

    /// Whether the server has closed this connection: the TCP state is no
    /// longer established, or reading what is in flight (at most 16 MiB)
    /// reaches the end of the stream.
    async fn dropped(&mut self) -> bool {
        if !established(self.io.get_ref()) {
            return true;
        }
        let mut chunk = vec![0u8; 256 * 1024];
        let mut read = 0;
        while read < 16 * MIB {
            match within(Duration::from_millis(200), self.io.read(&mut chunk)).await {
                None => return false,
                Some(Ok(0)) | Some(Err(_)) => return true,
                Some(Ok(n)) => read += n,
            }
        }
        false
    }
}

/// Whether the kernel still sees `s` as established (`TCP_INFO`'s state).
fn established(s: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes; the kernel writes at most that.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // The first byte of `tcp_info` is the state; 1 is TCP_ESTABLISHED.
    r != 0 || info[0] == 1
}

/// `f`, or `None` after `d`.
async fn within<T>(d: Duration, f: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        Timer::after(d).await;
        None
    })
    .await
}

// ------------------------------------------------------------ the server

struct Server {
    child: Child,
    addr: SocketAddr,
    genesis: UInt256,
}

impl Server {
    fn start(bin: &str, protocol: &str, port: u16) -> Server {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = Command::new(bin)
            .args(["serve", "--protocol", protocol, "--network"])
            .arg(NET.to_string())
            .args(["--synthetic", &BLOCKS.to_string(), "--listen"])
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(match std::env::var("SERVER_LOG") {
                Ok(dir) => {
                    let path = format!("{dir}/serve-{protocol}-{port}.err");
                    std::fs::File::create(&path)
                        .unwrap_or_else(|e| panic!("cannot create {path}: {e}"))
                        .into()
                }
                Err(_) => Stdio::null(),
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut out = child.stdout.take().expect("piped");
        // The first line names the genesis; the rest is drained so that the
        // server never waits on a full pipe.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let log = std::env::var("SERVER_LOG").ok().map(|dir| {
            let path = format!("{dir}/serve-{protocol}-{port}.log");
            std::fs::File::create(&path).unwrap_or_else(|e| panic!("cannot create {path}: {e}"))
        });
        std::thread::spawn(move || match log {
            Some(mut file) => io::copy(&mut out, &mut file),
            None => io::copy(&mut out, &mut io::sink()),
        });
        let line = String::from_utf8_lossy(&line).into_owned();
        let genesis = line
            .split_whitespace()
            .skip_while(|w| *w != "genesis")
            .nth(1)
            .and_then(|h| h.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no genesis in the server's first line: {line:?}"));
        Server {
            child,
            addr,
            genesis,
        }
    }

    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0)
    }

    /// Resident memory now, in KiB.
    fn rss(&self) -> u64 {
        self.status("VmRSS")
    }

    /// Peak resident memory, in KiB.
    fn peak(&self) -> u64 {
        self.status("VmHWM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------ the honest peer

#[derive(Default)]
struct Honest {
    stop: AtomicBool,
    probes: AtomicU64,
    worst_us: AtomicU64,
    lost: AtomicBool,
}

/// Connects from 127.0.0.1, handshakes, finds the second header's hash, then
/// asks for that one header every 100 ms until told to stop, keeping the
/// worst latency. Returns once the first probe was answered.
fn honest<P: Gen>(server: &Server) -> Arc<Honest> {
    let state = Arc::new(Honest::default());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (addr, genesis) = (server.addr, server.genesis);
    let s = state.clone();
    std::thread::spawn(move || {
        smol::block_on(async {
            let mut c = Conn::<P>::open(Ipv4Addr::LOCALHOST, addr).expect("honest dial");
            assert!(c.handshake(1).await, "honest handshake");
            c.send(&P::headers_2000(genesis)).await.expect("honest ask");
            let second = c.headers().await.expect("honest headers")[1];
            let ask = P::headers_1(genesis, second);
            let _ = ready_tx.send(());
            while !s.stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                let answered = c.send(&ask).await.is_ok()
                    && within(Duration::from_secs(30), c.headers())
                        .await
                        .flatten()
                        .is_some_and(|h| h.len() == 1);
                s.worst_us
                    .fetch_max(t.elapsed().as_micros() as u64, Ordering::SeqCst);
                if !answered {
                    s.lost.store(true, Ordering::SeqCst);
                    return;
                }
                s.probes.fetch_add(1, Ordering::SeqCst);
                Timer::after(Duration::from_millis(100)).await;
            }
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the honest peer is served before the attack");
    state
}

// ------------------------------------------------------------ the attacks

#[derive(Clone, Copy, PartialEq)]
enum Row {
    Ping,
    Block,
    BlockCap,
    GetHeaders,
    Reconnect,
    SameHeaders,
}

impl Row {
    const ALL: [Row; 6] = [
        Row::Ping,
        Row::Block,
        Row::BlockCap,
        Row::GetHeaders,
        Row::Reconnect,
        Row::SameHeaders,
    ];

    fn name(self) -> &'static str {
        match self {
            Row::Ping => "ping",
            Row::Block => "block",
            Row::BlockCap => "block-cap",
            Row::GetHeaders => "getheaders",
            Row::Reconnect => "reconnect",
            Row::SameHeaders => "same-headers",
        }
    }

    fn peers(self) -> usize {
        match self {
            Row::Ping | Row::GetHeaders => 300,
            Row::Block | Row::BlockCap | Row::SameHeaders => 200,
            Row::Reconnect => 1000,
        }
    }
}

/// The source address of attacker `i`.
fn source(many: bool, i: usize) -> Ipv4Addr {
    if many {
        Ipv4Addr::new(127, 2, (i / 250) as u8, (i % 250) as u8 + 1)
    } else {
        Ipv4Addr::new(127, 0, 0, 2)
    }
}

/// What a row saw, besides the server's memory.
#[derive(Default)]
struct Seen {
    handshaken: usize,
    tried: usize,
    dropped: Option<usize>,
    note: String,
}

/// Dials and handshakes `n` attackers at once; those refused or closed are
/// left out.
async fn attackers<P: Gen>(server: SocketAddr, n: usize, many: bool) -> Vec<Conn<P>> {
    let mut dialed = Vec::with_capacity(n);
    for i in 0..n {
        if let Ok(c) = Conn::<P>::open(source(many, i), server) {
            dialed.push(c);
        }
    }
    let tasks: Vec<_> = dialed
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            smol::spawn(async move {
                let ok = within(Duration::from_secs(30), c.handshake(1000 + i as u32)).await;
                (ok == Some(true)).then_some(c)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.extend(t.await);
    }
    out
}

/// Each attacker declares `declared` bytes of `command`, sends `send` of
/// them (as far as the server takes them within 20 s), and stalls for
/// `hold`. Returns the attackers and the bytes the server took in all.
async fn partial<P: Gen>(
    conns: Vec<Conn<P>>,
    command: Big,
    declared: u32,
    send: usize,
) -> (Vec<Conn<P>>, usize) {
    let taken = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let taken = taken.clone();
            smol::spawn(async move {
                let header = P::frame_header(command, declared);
                let body = vec![0u8; 64 * 1024];
                let work = async {
                    c.io.write_all(&header).await?;
                    let mut left = send;
                    while left > 0 {
                        let n = left.min(body.len());
                        c.io.write_all(&body[..n]).await?;
                        taken.fetch_add(n, Ordering::Relaxed);
                        left -= n;
                    }
                    io::Result::Ok(())
                };
                let _ = within(Duration::from_secs(20), work).await;
                c
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await);
    }
    let taken = taken.load(Ordering::Relaxed);
    (out, taken)
}

/// How many of `conns` the server has closed (all looked at at once).
async fn count_dropped<P: Gen>(conns: Vec<Conn<P>>) -> usize {
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| smol::spawn(async move { c.dropped().await }))
        .collect();
    let mut dropped = 0;
    for t in tasks {
        if t.await {
            dropped += 1;
        }
    }
    dropped
}

async fn play<P: Gen>(row: Row, server: &Server, many: bool, hold: Duration) -> Seen {
    let addr = server.addr;
    let n = row.peers();
    let mut seen = Seen {
        tried: n,
        ..Seen::default()
    };
    match row {
        Row::Ping | Row::Block | Row::BlockCap => {
            let conns = attackers::<P>(addr, n, many).await;
            seen.handshaken = conns.len();
            let (command, declared, send) = match row {
                Row::Ping => (Big::Ping, 30_000_000, MIB),
                Row::Block => (Big::Block, 30_000_000, 4 * MIB),
                _ => (Big::Block, 2 * MIB as u32, 2 * MIB - 1),
            };
            let (conns, taken) = partial(conns, command, declared, send).await;
            seen.note = format!("{} MiB sent", taken / MIB);
            Timer::after(hold).await;
            seen.dropped = Some(count_dropped(conns).await);
        }
        Row::GetHeaders => {
            let conns = attackers::<P>(addr, n, many).await;
            seen.handshaken = conns.len();
            let mut frames = BytesMut::new();
            for _ in 0..50 {
                let codec = P::codec(NET);
                P::encode(&codec, &P::headers_2000(server.genesis), &mut frames).unwrap();
            }
            let mut kept = Vec::with_capacity(conns.len());
            for mut c in conns {
                let _ = within(Duration::from_secs(5), c.io.write_all(&frames)).await;
                kept.push(c);
            }
            Timer::after(hold).await;
            seen.dropped = Some(count_dropped(kept).await);
        }
        Row::Reconnect => {
            // One address, always: the attack is one peer coming back.
            let from = Ipv4Addr::new(127, 0, 0, 3);
            let oversized = P::frame_header(Big::Inv, 64 << 20);
            let started = Instant::now();
            for i in 0..n {
                let Ok(mut c) = Conn::<P>::open(from, addr) else {
                    continue;
                };
                let served = within(Duration::from_secs(5), c.handshake(5000 + i as u32)).await;
                if served == Some(true) {
                    seen.handshaken += 1;
                    let _ = c.io.write_all(&oversized).await;
                }
                // Gone before the next attempt, so that its end is known.
                let _ = within(Duration::from_secs(5), async {
                    let mut chunk = [0u8; 4096];
                    while let Ok(1..) = c.io.read(&mut chunk).await {}
                })
                .await;
            }
            seen.note = format!("{:.1} s", started.elapsed().as_secs_f64());
        }
        Row::SameHeaders => {
            let conns = attackers::<P>(addr, n, many).await;
            seen.handshaken = conns.len();
            let genesis = server.genesis;
            let started = Instant::now();
            let tasks: Vec<_> = conns
                .into_iter()
                .map(|mut c| {
                    smol::spawn(async move {
                        c.send(&P::headers_2000(genesis)).await.ok()?;
                        within(Duration::from_secs(60), c.headers()).await.flatten()
                    })
                })
                .collect();
            let mut answered = 0;
            for t in tasks {
                if t.await.is_some_and(|h| h.len() == 2000) {
                    answered += 1;
                }
            }
            seen.note = format!(
                "{answered} answered in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    seen
}

// ------------------------------------------------------------ main

fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// Raises the soft limit on open files to the hard limit; returns both.
fn raise_fd_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls on a valid, owned struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            let was = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            return (was, lim.rlim_max);
        }
    }
    (0, 0)
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

fn run<P: Gen>(bin: &str, row: Row, many: bool, port: u16) {
    let hold = if row == Row::GetHeaders {
        secs("HOLD_GETHEADERS", 45)
    } else {
        secs("HOLD", 10)
    };
    let server = Server::start(bin, P::NAME, port);
    let honest = honest::<P>(&server);
    let before = server.rss();
    let seen = smol::block_on(play::<P>(row, &server, many, hold));
    let (peak, end) = (server.peak(), server.rss());
    honest.stop.store(true, Ordering::SeqCst);
    let worst = honest.worst_us.load(Ordering::SeqCst) as f64 / 1000.0;
    let honest_cell = if honest.lost.load(Ordering::SeqCst) {
        format!("lost after {:.0} ms", worst)
    } else {
        format!("{worst:.0} ms")
    };
    let dropped = seen
        .dropped
        .map_or("-".to_string(), |d| format!("{d}/{}", seen.handshaken));
    println!(
        "| {} | {} | {} | {} | {} | {} | {}/{} | {} | {} ({} probes) | {} |",
        P::NAME,
        row.name(),
        if row == Row::Reconnect || !many {
            "one"
        } else {
            "many"
        },
        mib(peak),
        mib(before),
        mib(end),
        seen.handshaken,
        seen.tried,
        dropped,
        honest_cell,
        honest.probes.load(Ordering::SeqCst),
        seen.note,
    );
    drop(server);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let bin =
        std::env::var("NEO_PEER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_neo-peer").into());
    let (was, now) = raise_fd_limit();
    let protocols = list("PROTOCOLS", "n3,legacy");
    let ips = list("IPS", "one,many");
    let rows: Vec<Row> = {
        let wanted = list("ROWS", "");
        Row::ALL
            .into_iter()
            .filter(|r| wanted.is_empty() || wanted.iter().any(|w| w == r.name()))
            .collect()
    };
    let mut port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(32000u16);
    println!("attacking {bin} (open files: soft limit {was} raised to {now})");
    println!(
        "| gen | attack | from | peak MiB | before MiB | end MiB | handshaken | dropped | honest worst | notes |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---|");
    for proto in &protocols {
        for &row in &rows {
            for ip in &ips {
                let many = ip == "many";
                // One address only for the reconnecting peer.
                if row == Row::Reconnect && many && ips.len() > 1 {
                    continue;
                }
                match proto.as_str() {
                    "n3" => run::<N3>(&bin, row, many, port),
                    "legacy" => run::<Legacy>(&bin, row, many, port),
                    other => panic!("unknown protocol {other}"),
                }
                port += 1;
            }
        }
    }
}
