//! `neo-peer serve`, and what the networked commands share.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;

use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{Chain, ChainServer, Serve, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::{ManagerConfig, ManagerEvent, PeerId, PeerManager};
use neo_peer::peer::{Handler, LocalConfig};
use neo_peer::protocol::{CurrentHeight, Legacy, N3};
use neo_peer::wire::{UInt256, legacy, n3};
use serde_json::json;

use crate::output::Out;
use crate::telemetry::TelemetryArgs;
use crate::{Protocol, mirror};

/// Timeouts given on the command line, in seconds.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct TimeoutArgs {
    /// Handshake timeout in seconds, fractions allowed [default: 10].
    #[arg(long, value_name = "S")]
    handshake_timeout: Option<f64>,
    /// Idle timeout in seconds: a peer silent this long is dropped [default: 120].
    #[arg(long, value_name = "S")]
    idle_timeout: Option<f64>,
    /// Stall timeout in seconds: a request unanswered this long drops its peer [default: 60].
    #[arg(long, value_name = "S")]
    stall_timeout: Option<f64>,
    /// Ping interval in seconds [default: 30].
    #[arg(long, value_name = "S")]
    ping_interval: Option<f64>,
}

fn seconds(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|e| format!("invalid duration {s}: {e}"))
}

/// The magic of a network name or number for `protocol`.
/// The Legacy genesis hash to check a chain against: `given`, or the one
/// built in for MainNet and TestNet; `None` on another network without one.
pub fn legacy_genesis(given: Option<UInt256>, magic: u32) -> Option<UInt256> {
    match (given, magic) {
        (Some(g), _) => Some(g),
        (None, legacy::MAINNET_MAGIC) => Some(legacy::MAINNET_GENESIS_HASH),
        (None, legacy::TESTNET_MAGIC) => Some(legacy::TESTNET_GENESIS_HASH),
        (None, _) => None,
    }
}

pub fn network(protocol: Protocol, name: &str) -> Result<u32, String> {
    let known = match (protocol, name) {
        (Protocol::Legacy, "mainnet") => Some(legacy::MAINNET_MAGIC),
        (Protocol::Legacy, "testnet") => Some(legacy::TESTNET_MAGIC),
        (Protocol::Legacy, "privnet") => Some(legacy::PRIVNET_MAGIC),
        (Protocol::N3, "mainnet") => Some(n3::MAINNET_MAGIC),
        (Protocol::N3, "testnet") => Some(n3::TESTNET_MAGIC),
        (Protocol::N3, "privnet") => Some(n3::PRIVNET_MAGIC),
        _ => None,
    };
    if let Some(m) = known {
        return Ok(m);
    }
    let parsed = match name.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => name.parse(),
    };
    parsed.map_err(|_| {
        format!("unknown network {name:?}: use mainnet, testnet, privnet or a magic number")
    })
}

pub fn config<P: neo_peer::protocol::Protocol>(
    magic: u32,
    t: &TimeoutArgs,
    height: u32,
    port: u16,
) -> Result<LocalConfig<P>, String> {
    let mut c = LocalConfig::new(magic);
    c.identity.port = port;
    c.identity.current_height = Arc::new(move || height);
    if let Some(s) = t.handshake_timeout {
        c.timeouts.handshake = seconds(s)?;
    }
    if let Some(s) = t.idle_timeout {
        c.timeouts.idle = seconds(s)?;
    }
    if let Some(s) = t.stall_timeout {
        c.timeouts.stall = seconds(s)?;
    }
    if let Some(s) = t.ping_interval {
        c.timeouts.ping_interval = seconds(s)?;
    }
    Ok(c)
}

/// `neo-peer serve`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("chain").required(true).args(["synthetic", "mirror"])))]
pub struct ServeArgs {
    /// Wire generation.
    #[arg(long, value_enum, default_value = "n3")]
    pub protocol: Protocol,
    /// mainnet, testnet, privnet or a magic number.
    #[arg(long, default_value = "privnet", value_name = "NET")]
    network: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:20333", value_name = "ADDR")]
    listen: SocketAddr,
    /// Serve a synthetic chain of this many blocks after genesis.
    #[arg(long, value_name = "N")]
    synthetic: Option<u32>,
    /// Mirror the node at this address: copy its chain (headers and blocks,
    /// each checked and linked) before listening, then keep following it and
    /// serve the growing copy.
    #[arg(long, value_name = "ADDR")]
    pub mirror: Option<SocketAddr>,
    /// Legacy --mirror: the genesis hash of the mirrored network (built in
    /// for mainnet and testnet).
    #[arg(long, value_name = "0xHASH")]
    pub genesis: Option<UInt256>,
    /// Most peers served at once.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    max_peers: usize,
    /// Most peers served at once from one IP address (default: --max-peers).
    #[arg(long, value_name = "N")]
    max_per_ip: Option<usize>,
    /// Report events as JSON, one object per line on standard output:
    /// metrics, progress and mirrored (--mirror), listening, connected,
    /// disconnected, refused, banned, mirror_lost (their fields: README,
    /// "--json").
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

pub fn serve(args: ServeArgs) -> Result<(), String> {
    let magic = network(args.protocol, &args.network)?;
    args.telemetry.start(Out::new(args.json))?;
    if let Some(source) = args.mirror {
        return match args.protocol {
            Protocol::N3 => mirror::mirror::<N3>(source, magic, UInt256::ZERO, &args),
            Protocol::Legacy => {
                let genesis = legacy_genesis(args.genesis, magic)
                    .ok_or("a Legacy --mirror needs --genesis 0x<hash> on this network")?;
                mirror::mirror::<Legacy>(source, magic, genesis, &args)
            }
        };
    }
    let synthetic = Synthetic {
        blocks: args.synthetic.unwrap_or_default(),
        txs_per_block: 1,
        seed: 0,
        with_bodies: true,
    };
    match args.protocol {
        Protocol::N3 => serve_chain(Arc::new(Chain::<N3>::synthetic(&synthetic)), magic, &args),
        Protocol::Legacy => serve_chain(
            Arc::new(Chain::<Legacy>::synthetic(&synthetic)),
            magic,
            &args,
        ),
    }
}

/// A server made and bound, not yet accepting: its manager serves through
/// `handler` and announces the height `height` gives.
pub struct Bound<P: Serve> {
    pub manager: PeerManager<P>,
    listener: TcpListener,
    pub local: SocketAddr,
    pub out: Out,
}

/// Binds `args.listen` and makes the manager that will serve on it: at most
/// `--max-peers` inbound peers, `--max-per-ip` from one IP, and `outbound`
/// connections of its own (0: it never dials). Its address book is in
/// memory; nothing dials from it, and `getaddr` is answered with our own
/// address only (peers are not told of each other, nor of a mirrored node).
pub fn bind<P: Serve, H: Handler<P>>(
    args: &ServeArgs,
    magic: u32,
    height: CurrentHeight,
    handler: H,
    outbound: usize,
) -> Result<Bound<P>, String> {
    let listener = TcpListener::bind(args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let mut local_config = config(magic, &args.timeouts, 0, local.port())?;
    local_config.identity.current_height = height;
    let mut config = ManagerConfig::new(local_config);
    config.max_inbound = args.max_peers;
    config.max_per_ip = args.max_per_ip.unwrap_or(args.max_peers);
    config.max_outbound = outbound;
    config.target_outbound = 0;
    // `getaddr` is answered with our own address only.
    config.share_addresses = false;
    let book = AddressBook::in_memory(BookConfig::new(P::NAME, magic));
    let manager =
        PeerManager::<P>::new(config, book, handler, SmolGlobal).map_err(|e| e.to_string())?;
    Ok(Bound {
        manager,
        listener,
        local,
        out: Out::new(args.json),
    })
}

impl<P: Serve> Bound<P> {
    /// Says where it listens and starts accepting; the manager's events are
    /// reported from then on.
    pub fn start(self, genesis: UInt256, height: u32) -> Result<PeerManager<P>, String> {
        let (local, out) = (self.local, self.out);
        out.outcome(
            "listening",
            json!({"addr": local.to_string(), "genesis": genesis.to_string(), "height": height}),
            || format!("listening on {local}, genesis {genesis}, height {height}"),
        );
        self.manager
            .listen_on(self.listener)
            .map_err(|e| e.to_string())?;
        smol::spawn(report(self.manager.clone(), out)).detach();
        Ok(self.manager)
    }
}

/// Reports a serving manager's events until it shuts down: a peer that
/// joined or left, a connection refused at accept or whose handshake
/// failed, a ban. Refusals are summed per IP (see [`Refusals`]).
async fn report<P: Serve>(manager: PeerManager<P>, out: Out) {
    let events = manager.events();
    // The remote address of each live peer, as shown when it joined (at
    // most the live peers: removed when each leaves).
    let mut shown: HashMap<PeerId, String> = HashMap::new();
    let mut refusals = Refusals::default();
    loop {
        let next = future::or(async { Some(events.recv().await) }, async {
            Timer::after(REFUSALS_EVERY).await;
            None
        })
        .await;
        let event = match next {
            None => {
                refused_lines(out, refusals.flush(Instant::now()));
                continue;
            }
            Some(Err(_)) => return,
            Some(Ok(event)) => event,
        };
        match event {
            ManagerEvent::Connected {
                id,
                addr,
                user_agent,
                height,
                ..
            } => {
                let remote = manager.peer(id).and_then(|p| p.remote_addr()).or(addr);
                let remote = remote.map_or_else(|| "?".to_string(), |a| a.to_string());
                shown.insert(id, remote.clone());
                out.event(
                    "connected",
                    json!({"addr": remote, "user_agent": user_agent, "height": height}),
                    || format!("connected {remote} {user_agent} height {height}"),
                );
            }
            ManagerEvent::Disconnected { id, addr, reason } => {
                let remote = shown
                    .remove(&id)
                    .unwrap_or_else(|| addr.map_or_else(|| "?".to_string(), |a| a.to_string()));
                disconnected(out, &remote, &reason.to_string());
            }
            ManagerEvent::HandshakeFailed { addr, error } => {
                disconnected(out, &addr.to_string(), &error);
            }
            ManagerEvent::Refused { addr, reason } => {
                refused_lines(out, refusals.refused(addr, reason, Instant::now()));
            }
            ManagerEvent::Banned { addr, reason } => out.event(
                "banned",
                json!({"addr": addr.to_string(), "reason": reason}),
                || format!("banned {addr}: {reason}"),
            ),
            _ => {}
        }
    }
}

/// How often refusals from one IP are reported at most.
const REFUSALS_EVERY: Duration = Duration::from_secs(1);
/// IPs whose refusals are being summed; past it, all are reported at once
/// and forgotten.
const REFUSALS_KEPT: usize = 1024;

/// Refused connections, summed per IP: the first is reported at once, the
/// next ones within [`REFUSALS_EVERY`] in one line after it (a line's count
/// says how many refusals it stands for), so that a peer reconnecting in a
/// loop costs a line a second, not a line a connection. Holds at most
/// [`REFUSALS_KEPT`] IPs. The caller reports what it returns and calls
/// [`Refusals::flush`] every [`REFUSALS_EVERY`].
#[derive(Default)]
struct Refusals {
    /// Per IP: when its last line was due, and the refusals since (with the
    /// address and reason of the last).
    by_ip: HashMap<IpAddr, (Instant, u64, SocketAddr, String)>,
}

/// One line to report: the last address refused, why, and how many
/// refusals it stands for.
type Refused = (SocketAddr, String, u64);

impl Refusals {
    /// A connection from `addr` refused at `now`: the lines to report.
    fn refused(&mut self, addr: SocketAddr, reason: String, now: Instant) -> Vec<Refused> {
        let mut lines = Vec::new();
        if self.by_ip.len() >= REFUSALS_KEPT && !self.by_ip.contains_key(&addr.ip()) {
            lines = self.flush(now + REFUSALS_EVERY);
            self.by_ip.clear();
        }
        match self.by_ip.get_mut(&addr.ip()) {
            Some(entry) if now < entry.0 + REFUSALS_EVERY => {
                *entry = (entry.0, entry.1 + 1, addr, reason);
            }
            _ => {
                lines.push((addr, reason.clone(), 1));
                self.by_ip.insert(addr.ip(), (now, 0, addr, reason));
            }
        }
        lines
    }

    /// The refusals summed for at least [`REFUSALS_EVERY`] by `now`, one
    /// line per IP; forgets the IPs quiet that long.
    fn flush(&mut self, now: Instant) -> Vec<Refused> {
        let mut lines = Vec::new();
        self.by_ip.retain(|_, (last, count, addr, reason)| {
            if now < *last + REFUSALS_EVERY {
                return true;
            }
            if *count == 0 {
                return false;
            }
            lines.push((*addr, reason.clone(), *count));
            (*last, *count) = (now, 0);
            true
        });
        lines
    }
}

fn refused_lines(out: Out, lines: Vec<Refused>) {
    for (addr, reason, count) in lines {
        refused_line(out, addr, &reason, count);
    }
}

fn refused_line(out: Out, addr: SocketAddr, reason: &str, count: u64) {
    out.event(
        "refused",
        json!({"addr": addr.to_string(), "reason": reason, "count": count}),
        || match count {
            1 => format!("refused {addr}: {reason}"),
            n => format!("refused {addr}: {reason} ({n} connections from its IP)"),
        },
    );
}

fn disconnected(out: Out, addr: &str, reason: &str) {
    out.event(
        "disconnected",
        json!({"addr": addr, "reason": reason}),
        || format!("disconnected {addr}: {reason}"),
    );
}

/// Serves `chain` until killed. The chain may grow meanwhile (appended to
/// through another handle): every answer, and the height each handshake
/// announces, is read from it when needed.
fn serve_chain<P: Serve>(chain: Arc<Chain<P>>, magic: u32, args: &ServeArgs) -> Result<(), String> {
    let served = chain.clone();
    let height: CurrentHeight = Arc::new(move || served.height());
    let bound = bind(args, magic, height, ChainServer::new(chain.clone()), 0)?;
    smol::block_on(async {
        let manager = bound.start(chain.genesis_hash(), chain.height())?;
        // Until killed: the manager's tasks do the work.
        let _serving = manager;
        std::future::pending::<Result<(), String>>().await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, ip], port))
    }

    #[test]
    fn refusals_are_summed_per_ip_a_line_a_second() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut r = Refusals::default();
        let why = || "banned".to_string();
        // The first of an IP at once; the next ones within the second wait.
        assert_eq!(
            r.refused(addr(1, 1), why(), at(0)),
            [(addr(1, 1), why(), 1)]
        );
        for port in 2..=100 {
            assert!(r.refused(addr(1, port), why(), at(10)).is_empty());
        }
        // Another IP is its own.
        assert_eq!(r.refused(addr(2, 1), why(), at(20)).len(), 1);
        assert!(r.flush(at(999)).is_empty());
        // A second on: one line for the 99, with the last address.
        assert_eq!(r.flush(at(1000)), [(addr(1, 100), why(), 99)]);
        // Quiet for a second: forgotten, and the next is at once again.
        assert!(r.flush(at(2100)).is_empty());
        assert!(r.by_ip.is_empty());
        assert_eq!(r.refused(addr(1, 7), why(), at(2200)).len(), 1);
    }

    #[test]
    fn refusals_hold_a_bounded_number_of_ips() {
        let now = Instant::now();
        let mut r = Refusals::default();
        for i in 0..REFUSALS_KEPT {
            let ip = SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 1));
            r.refused(ip, "limit".into(), now);
            r.refused(ip, "limit".into(), now);
        }
        assert_eq!(r.by_ip.len(), REFUSALS_KEPT);
        // One more IP: the sums so far are reported, then forgotten.
        let lines = r.refused(addr(9, 9), "limit".into(), now);
        assert_eq!(lines.len(), REFUSALS_KEPT + 1);
        assert!(lines[..REFUSALS_KEPT].iter().all(|l| l.2 == 1));
        assert_eq!(r.by_ip.len(), 1);
    }
}
