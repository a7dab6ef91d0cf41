//! Fault injection: a scripted hostile remote over loopback TCP plays each
//! scenario against our `Peer`, when the remote dialed us (inbound) and when
//! we dialed it (outbound), for both wire generations, on smol and on
//! async-std.
//!
//! Every case asserts the outcome (a disconnect with the right
//! [`DisconnectReason`], or that the peer stays up and answers a `ping`),
//! that every task of the peer ended (its connection and handler were
//! dropped, and the remote reads the end of the stream), and that memory
//! stayed bounded (a counting global allocator):
//!
//! - the cases where the remote tries to make us allocate (a 4 GiB frame, an
//!   LZ4 bomb, floods, a remote that never reads, an oversized request) run
//!   alone and assert the bytes live during the case stay under
//!   [`EXCLUSIVE_BOUND`] above what was live when it started;
//! - the others run side by side and assert the high-water mark of the whole
//!   binary stays under [`SHARED_BOUND`];
//! - every case asserts no single allocation ever exceeded [`LARGEST_BOUND`].

mod hostile;
#[allow(dead_code)]
mod rt;

use rt::{AsyncStdRt, Rt, SmolRt};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;
use neo_peer::peer::{
    Direction, DisconnectReason, Handler, LocalConfig, Peer, PeerError, Violation,
};
use neo_peer::protocol::{Legacy, N3, Protocol};
use neo_peer::wire::{FrameError, MAX_PAYLOAD, legacy};

use hostile::{Counting, Hostile, LARGEST, NET, Ours, PEAK, Remote, live, ours, tcp_pair};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes a case that runs alone may have live above its start.
const EXCLUSIVE_BOUND: usize = 2 << 20;
/// High-water mark of the whole binary while cases run side by side.
const SHARED_BOUND: usize = 32 << 20;
/// Largest single allocation anywhere (the read buffer's largest step is 1 MiB;
/// no case sends a frame that needs it).
const LARGEST_BOUND: usize = 1 << 20;
/// The idle timeout of the idle cases.
const IDLE: Duration = Duration::from_millis(200);
/// The write timeout.
const WRITE: Duration = Duration::from_millis(200);
/// How long anything that should happen at once may take.
const SOON: Duration = Duration::from_secs(3);

/// Cases that measure their own memory hold it for writing; the rest share it.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn config<P: Protocol>(nonce: u32) -> LocalConfig<P> {
    let mut c = LocalConfig::new(NET);
    c.identity.nonce = nonce;
    c.identity.user_agent = format!("/ours:{nonce}/");
    c.timeouts.handshake = Duration::from_secs(2);
    c.timeouts.idle = Duration::from_secs(3);
    c.timeouts.stall = Duration::from_secs(3);
    c.timeouts.stall_check_interval = Duration::from_millis(50);
    c.timeouts.ping_interval = Duration::from_secs(60);
    c.timeouts.write = WRITE;
    c
}

/// Counts what it handles, holds at a gate while the gate is shut, and
/// panics on an `inv` if told to.
#[derive(Clone, Default)]
struct Script {
    seen: Arc<AtomicUsize>,
    unknown: Arc<AtomicUsize>,
    gate: Option<async_channel::Receiver<()>>,
    panic_on_inv: bool,
}

impl<P: Hostile> Handler<P> for Script {
    async fn handle(&self, _peer: &Peer<P>, msg: P::Message) {
        if let Some(gate) = &self.gate {
            // opens when the sender is dropped
            let _ = gate.recv().await;
        }
        if self.panic_on_inv && P::command_name(&msg) == "inv" {
            panic!("the handler fails on inv");
        }
        if P::is_unknown(&msg) {
            self.unknown.fetch_add(1, Ordering::SeqCst);
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    HalfFrameThenSilence,
    Trickle,
    ResetMidFrame,
    Frame4GiB,
    Lz4Bomb,
    WrongMagic,
    BadChecksum,
    VersionTwice,
    VerackTwice,
    VerackBeforeVersion,
    UnknownCommands,
    GetHeadersOverLimit,
    AddrFlood,
    InvFlood,
    NeverReads,
    HandlerPanics,
}

impl Scenario {
    /// Whether the remote tries to make us allocate: such cases run alone.
    fn exclusive(self) -> bool {
        use Scenario::*;
        matches!(
            self,
            Frame4GiB | Lz4Bomb | GetHeadersOverLimit | AddrFlood | InvFlood | NeverReads
        )
    }
}

/// What the case ends with.
enum Outcome {
    /// The handshake failed (`run` returned the error) with this reason.
    Refused(DisconnectReason),
    /// The peer disconnected after the handshake with this reason.
    Closed(DisconnectReason),
    /// The peer stayed up (it answered a ping); we then disconnected it.
    StayedUp,
}

/// A frame of `bytes` cut in half: the first half.
fn half(frame: &[u8]) -> &[u8] {
    &frame[..frame.len() / 2]
}

/// Handshakes `us` with `remote`.
async fn connect<P: Hostile>(us: &Ours<P>, remote: &mut Remote<P>) {
    let (ran, ()) = future::zip(us.peer.run(), remote.handshake()).await;
    ran.unwrap();
}

/// Waits until `f` holds (true) or `d` passes (false).
async fn until(d: Duration, f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        Timer::after(Duration::from_millis(5)).await;
    }
    f()
}

/// Floods our peer with `n` unsolicited messages while its handler is held:
/// reading must pause (no more than the handler queue taken off the socket),
/// memory must stay bounded; once the handler runs again every message is
/// handled and the peer answers a ping.
async fn flood<P: Hostile, R: Rt>(
    rt: R,
    dir: Direction,
    make: impl Fn(u32) -> P::Message,
    n: u32,
) -> Outcome {
    let (a, b) = tcp_pair(dir);
    let (open, gate) = async_channel::bounded::<()>(1);
    let script = Script {
        gate: Some(gate),
        ..Script::default()
    };
    let seen = script.seen.clone();
    let cfg = config(1);
    let queue = cfg.queues.handler;
    let us: Ours<P> = ours(rt, a, dir, cfg, script);
    let mut remote = Remote::<P>::new(b, 2);
    connect(&us, &mut remote).await;
    let command = P::command_name(&make(0));
    let bytes: Vec<u8> = (0..n).flat_map(|i| remote.frame(&make(i))).collect();
    let start = live();
    let peer = us.peer.clone();
    let watch = async {
        // Reading has paused: only what fits the handler queue, plus the one
        // message being handled and the one waiting for room, was taken.
        Timer::after(Duration::from_millis(100)).await;
        let taken = peer.stats().get(command).messages_in as usize;
        assert!(
            taken <= queue + 2,
            "{taken} {command} read while the handler is held"
        );
        assert!(!peer.is_closed());
        let grown = live().saturating_sub(start);
        assert!(
            grown <= EXCLUSIVE_BOUND,
            "{grown} bytes live during the flood"
        );
        drop(open);
    };
    let (wrote, ()) = future::zip(remote.raw(&bytes), watch).await;
    assert!(wrote);
    assert!(
        until(SOON, || seen.load(Ordering::SeqCst) == n as usize).await,
        "{} of {n} handled",
        seen.load(Ordering::SeqCst)
    );
    assert!(remote.pinged_within(SOON).await, "no pong after the flood");
    finish(us, remote, Outcome::StayedUp).await
}

/// Disconnects a peer that stayed up, then checks everything ended.
async fn finish<P: Hostile>(us: Ours<P>, mut remote: Remote<P>, outcome: Outcome) -> Outcome {
    if let Outcome::StayedUp = outcome {
        assert!(!us.peer.is_closed());
        us.peer.disconnect();
    }
    let _ = future::or(us.peer.closed(), async {
        Timer::after(SOON).await;
        panic!("closed() did not resolve");
    })
    .await;
    assert!(
        us.tasks_end_within(SOON).await,
        "a task of the peer lives on"
    );
    assert!(
        remote.closes_within(SOON).await,
        "the remote still sees an open connection"
    );
    outcome
}

async fn play<P: Hostile, R: Rt>(rt: R, dir: Direction, s: Scenario) -> Outcome {
    use Scenario::*;
    let (a, b) = tcp_pair(dir);
    let mut cfg = config(1);
    if matches!(s, HalfFrameThenSilence | Trickle) {
        cfg.timeouts.idle = IDLE;
    }
    let script = Script {
        panic_on_inv: s == HandlerPanics,
        ..Script::default()
    };
    let seen = script.seen.clone();
    let unknown = script.unknown.clone();
    let us: Ours<P> = ours(rt, a, dir, cfg, script);
    let mut remote = Remote::<P>::new(b, 2);

    // Cases that break the handshake itself.
    if matches!(s, VersionTwice | VerackBeforeVersion) {
        let v = P::version(&remote.config.identity);
        let script = match s {
            VersionTwice => [remote.frame(&v), remote.frame(&v)].concat(),
            _ => [remote.frame(&P::verack()), remote.frame(&v)].concat(),
        };
        let (ran, _) = future::zip(us.peer.run(), remote.raw(&script)).await;
        let Err(PeerError::Disconnected(reason)) = ran else {
            panic!("the handshake went through: {ran:?}")
        };
        assert_eq!(us.peer.closed().await, reason);
        return finish(us, remote, Outcome::Refused(reason)).await;
    }

    connect(&us, &mut remote).await;
    let inv = remote.frame(&P::inv(1, 1));
    let outcome = match s {
        HalfFrameThenSilence => {
            assert!(remote.raw(half(&inv)).await);
            Outcome::Closed(us.peer.closed().await)
        }
        Trickle => {
            let peer = us.peer.clone();
            let trickle = async {
                for b in &inv {
                    if peer.is_closed() || !remote.raw(&[*b]).await {
                        break;
                    }
                    Timer::after(IDLE / 4).await;
                }
            };
            let (reason, ()) = future::zip(us.peer.closed(), trickle).await;
            Outcome::Closed(reason)
        }
        ResetMidFrame => {
            // Our pong stays unread in the remote's socket, so dropping it
            // sends a reset rather than a clean end.
            let ping = P::ping(Default::default(), false);
            remote.send(&ping).await;
            Timer::after(Duration::from_millis(50)).await;
            assert!(remote.raw(half(&inv)).await);
            Timer::after(Duration::from_millis(20)).await;
            drop(remote);
            let reason = us.peer.closed().await;
            assert!(
                us.tasks_end_within(SOON).await,
                "a task of the peer lives on"
            );
            return Outcome::Closed(reason);
        }
        Frame4GiB => {
            assert!(remote.raw(&P::huge_frame()).await);
            Outcome::Closed(us.peer.closed().await)
        }
        Lz4Bomb => {
            // N3 only: flags "compressed", block, a body that claims 32 MiB
            let mut body = (MAX_PAYLOAD as u32).to_le_bytes().to_vec();
            body.extend_from_slice(&[0x1F, 0x00, 0x01, 0x00, 0x50, 0x00, 0x00, 0x00]);
            let mut frame = vec![0x01, 0x2C, body.len() as u8];
            frame.extend_from_slice(&body);
            assert!(remote.raw(&frame).await);
            Outcome::Closed(us.peer.closed().await)
        }
        WrongMagic => {
            // A good frame, then one of MainNet.
            let mut frame = bytes::BytesMut::new();
            legacy::Codec::new(legacy::MAINNET_MAGIC)
                .encode(&Legacy::inv(1, 1), &mut frame)
                .unwrap();
            assert!(remote.raw(&inv).await);
            assert!(remote.raw(&frame).await);
            Outcome::Closed(us.peer.closed().await)
        }
        BadChecksum => {
            let mut frame = inv.clone();
            frame[20] ^= 0xFF;
            assert!(remote.raw(&frame).await);
            Outcome::Closed(us.peer.closed().await)
        }
        VerackTwice => {
            remote.send(&P::verack()).await;
            Outcome::Closed(us.peer.closed().await)
        }
        UnknownCommands => {
            let start = live();
            for _ in 0..3 {
                remote.send(&P::unknown()).await;
            }
            remote.send(&P::inv(1, 1)).await;
            assert!(until(SOON, || seen.load(Ordering::SeqCst) == 4).await);
            assert_eq!(
                unknown.load(Ordering::SeqCst),
                3,
                "the handler sees unknown commands"
            );
            assert_eq!(us.peer.stats().get("unknown").messages_in, 3);
            assert!(remote.pinged_within(SOON).await);
            assert!(live().saturating_sub(start) <= EXCLUSIVE_BOUND);
            Outcome::StayedUp
        }
        GetHeadersOverLimit => {
            assert!(remote.raw(&P::too_much_getheaders()).await);
            Outcome::Closed(us.peer.closed().await)
        }
        NeverReads => {
            // The remote reads nothing more. Our callers keep sending until
            // the socket buffers fill, the writer blocks for the write
            // timeout and the peer goes; every call resolves.
            let start = live();
            let big = P::inv(7, 500);
            let peer = us.peer.clone();
            let sent = Arc::new(AtomicUsize::new(0));
            let sender = {
                let sent = sent.clone();
                async move {
                    loop {
                        match peer.send(big.clone()).await {
                            Ok(()) => sent.fetch_add(1, Ordering::SeqCst),
                            Err(e) => break e,
                        };
                    }
                }
            };
            // More callers than the mailbox holds, all waiting at once.
            let (results_tx, results) = async_channel::unbounded();
            let callers = 3 * us.peer.config().queues.mailbox;
            let peer = us.peer.clone();
            let ex = rt.ex();
            let spawn_callers = async move {
                // Let the big sends fill the socket first.
                Timer::after(Duration::from_millis(50)).await;
                for i in 0..callers {
                    let peer = peer.clone();
                    let tx = results_tx.clone();
                    neo_peer::executor::Executor::spawn(
                        &ex,
                        Box::pin(async move {
                            let _ = tx.send(peer.send(P::inv(i as u32, 1)).await).await;
                        }),
                    );
                }
            };
            let (err, ()) = future::zip(sender, spawn_callers).await;
            let reason = DisconnectReason::WriteTimeout(WRITE);
            assert_eq!(err, PeerError::Disconnected(reason.clone()));
            for _ in 0..callers {
                let r = future::or(async { results.recv().await.unwrap() }, async {
                    Timer::after(SOON).await;
                    panic!("a caller never heard back");
                })
                .await;
                // written before the writer blocked, or failed with the reason
                assert!(
                    r.is_ok() || r == Err(PeerError::Disconnected(reason.clone())),
                    "{r:?}"
                );
            }
            assert!(sent.load(Ordering::SeqCst) > 0);
            let grown = live().saturating_sub(start);
            assert!(
                grown <= EXCLUSIVE_BOUND,
                "{grown} bytes live while writes block"
            );
            Outcome::Closed(us.peer.closed().await)
        }
        HandlerPanics => {
            // A second pair of our peers on the same executor.
            let (c, d) = tcp_pair(dir);
            let good: Ours<P> = ours(rt, c, Direction::Outbound, config(3), Script::default());
            let other: Ours<P> = ours(rt, d, Direction::Inbound, config(4), Script::default());
            let (r1, r2) = future::zip(good.peer.run(), other.peer.run()).await;
            r1.unwrap();
            r2.unwrap();
            remote.send(&P::inv(1, 1)).await;
            let reason = us.peer.closed().await;
            assert!(good.peer.ping().await.is_ok(), "the other peer lives on");
            assert!(!good.peer.is_closed() && !other.peer.is_closed());
            good.peer.disconnect();
            assert!(good.tasks_end_within(SOON).await);
            assert!(other.tasks_end_within(SOON).await);
            Outcome::Closed(reason)
        }
        AddrFlood | InvFlood | VersionTwice | VerackBeforeVersion => unreachable!(),
    };
    let _ = seen;
    finish(us, remote, outcome).await
}

/// The reason each scenario must end with (`None`: the peer stays up).
fn expected<P: Hostile>(s: Scenario, reason: &DisconnectReason) {
    use Scenario::*;
    let ok = match (s, reason) {
        (HalfFrameThenSilence | Trickle, DisconnectReason::IdleTimeout(d)) => *d == IDLE,
        // Reset by the peer; an orderly end if the reset lost the race.
        (ResetMidFrame, DisconnectReason::Io(e)) => e.contains("reset"),
        (Frame4GiB, DisconnectReason::Frame(FrameError::PayloadTooLarge { len, max })) => {
            *len >= u64::from(u32::MAX) && *max == MAX_PAYLOAD as u64
        }
        (Lz4Bomb, DisconnectReason::Frame(FrameError::Decompress(_))) => true,
        (WrongMagic, DisconnectReason::Frame(FrameError::WrongMagic { expected, got })) => {
            *expected == NET && *got == legacy::MAINNET_MAGIC
        }
        (BadChecksum, DisconnectReason::Frame(FrameError::ChecksumMismatch { .. })) => true,
        (VersionTwice, DisconnectReason::Handshake(Violation::DuplicateVersion)) => true,
        (VerackTwice, DisconnectReason::Protocol(Violation::DuplicateVerack)) => true,
        (VerackBeforeVersion, DisconnectReason::Handshake(Violation::VerackBeforeVersion)) => true,
        (GetHeadersOverLimit, DisconnectReason::Frame(FrameError::Payload { command, .. })) => {
            command == "getheaders"
        }
        (NeverReads, DisconnectReason::WriteTimeout(d)) => *d == WRITE,
        (HandlerPanics, DisconnectReason::HandlerPanicked("inv")) => true,
        _ => false,
    };
    assert!(ok, "{} {s:?}: wrong reason: {reason}", P::NAME);
}

/// Panics print their message and place only: the default hook may capture
/// a backtrace, whose symbols take megabytes and would blur the bounds.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if msg != "the handler fails on inv" {
                let at = info.location().map(|l| l.to_string()).unwrap_or_default();
                eprintln!("panicked at {at}: {msg}");
            }
        }));
    });
}

fn case<P: Hostile, R: Rt>(rt: R, s: Scenario) {
    quiet_panics();
    let _turn = if s.exclusive() {
        Err(EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner()))
    } else {
        Ok(EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner()))
    };
    let start = live();
    PEAK.store(start, Ordering::Relaxed);
    for dir in [Direction::Inbound, Direction::Outbound] {
        let began = Instant::now();
        let outcome = rt.block_on(async {
            match s {
                Scenario::AddrFlood => flood::<P, R>(rt, dir, P::one_addr, 2000).await,
                Scenario::InvFlood => flood::<P, R>(rt, dir, |i| P::inv(i, 1), 2000).await,
                _ => play::<P, R>(rt, dir, s).await,
            }
        });
        match outcome {
            Outcome::Refused(r) | Outcome::Closed(r) => expected::<P>(s, &r),
            Outcome::StayedUp => assert!(
                matches!(
                    s,
                    Scenario::UnknownCommands | Scenario::AddrFlood | Scenario::InvFlood
                ),
                "{s:?} should not stay up"
            ),
        }
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(start);
        if s.exclusive() {
            assert!(
                peak <= EXCLUSIVE_BOUND,
                "{s:?} {dir:?}: {peak} bytes live at the peak"
            );
        } else {
            assert!(
                peak <= SHARED_BOUND,
                "{s:?} {dir:?}: {peak} bytes live at the peak"
            );
        }
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest <= LARGEST_BOUND,
            "one allocation of {largest} bytes"
        );
        eprintln!(
            "{} {} {s:?} {dir:?}: ok in {:?}, peak {} KiB",
            R::NAME,
            P::NAME,
            began.elapsed(),
            peak >> 10
        );
    }
}

macro_rules! cases {
    ($($name:ident: $scenario:ident for $($module:ident = $proto:ident),+;)*) => {
        $(
            mod $name {
                use super::*;
                $(
                    mod $module {
                        use super::*;
                        #[test]
                        fn smol() {
                            case::<$proto, _>(SmolRt, Scenario::$scenario);
                        }
                        #[test]
                        fn async_std() {
                            case::<$proto, _>(AsyncStdRt, Scenario::$scenario);
                        }
                    }
                )+
            }
        )*
    };
}

cases! {
    half_frame_then_silence: HalfFrameThenSilence for n3 = N3, legacy = Legacy;
    trickle_slower_than_idle: Trickle for n3 = N3, legacy = Legacy;
    reset_mid_frame: ResetMidFrame for n3 = N3, legacy = Legacy;
    frame_of_4_gib: Frame4GiB for n3 = N3, legacy = Legacy;
    lz4_claims_32_mib: Lz4Bomb for n3 = N3;
    wrong_magic_mid_stream: WrongMagic for legacy = Legacy;
    bad_checksum: BadChecksum for legacy = Legacy;
    version_twice: VersionTwice for n3 = N3, legacy = Legacy;
    verack_twice: VerackTwice for n3 = N3, legacy = Legacy;
    verack_before_version: VerackBeforeVersion for n3 = N3, legacy = Legacy;
    unknown_commands: UnknownCommands for n3 = N3, legacy = Legacy;
    getheaders_over_limit: GetHeadersOverLimit for n3 = N3, legacy = Legacy;
    addr_flood: AddrFlood for n3 = N3, legacy = Legacy;
    inv_flood: InvFlood for n3 = N3, legacy = Legacy;
    never_reads: NeverReads for n3 = N3, legacy = Legacy;
    handler_panics: HandlerPanics for n3 = N3, legacy = Legacy;
}
