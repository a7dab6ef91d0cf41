//! `neo-peer sync`, `neo-peer demo` and `neo-peer crawl`: many peers through
//! a peer manager and an address book.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use neo_peer::book::{AddressBook, BookConfig, now_ms};
use neo_peer::chain::{Chain, ChainServer, Serve, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::download::{
    BlockSource, DownloadOutcome, Fetched, ScheduleConfig, Signers, download, follow,
};
use neo_peer::manager::sync::{SyncOptions, SyncOutcome, sync_legacy, sync_n3};
use neo_peer::manager::{ManagerConfig, ManagerEvent, PeerManager};
use neo_peer::peer::{CommandStats, Direction, IgnoreAll, LocalConfig, StatsSnapshot};
use neo_peer::protocol::{Legacy, N3, Protocol as Proto};
use neo_peer::wire::{UInt160, UInt256, legacy};
use serde_json::{Value, json};

use crate::Protocol;
use crate::net::{TimeoutArgs, config, network};
use crate::output::{Out, count, table};
use crate::telemetry::TelemetryArgs;

/// How long to wait for the dialer to fill the slots from the address book
/// before syncing with the peers there are.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);

/// `neo-peer sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Wire generation.
    #[arg(long, value_enum, default_value = "n3")]
    protocol: Protocol,
    /// mainnet, testnet, privnet or a magic number.
    #[arg(long, default_value = "privnet", value_name = "NET")]
    network: String,
    /// A node to sync from (may be repeated).
    #[arg(long, value_name = "ADDR")]
    connect: Vec<SocketAddr>,
    /// A seeds file (`host:port` per line, `#` comments), read when the
    /// address book is empty.
    #[arg(long, value_name = "FILE")]
    seeds: Option<PathBuf>,
    /// The address book (created if missing; in memory without it).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Most peers to sync from at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    max_peers: usize,
    /// Stop after this many headers (genesis included); by default, at
    /// the best height the peers claim when the sync starts. With
    /// --follow it bounds only what is fetched before following.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Legacy: the genesis hash to start from (built in for mainnet and testnet).
    #[arg(long, value_name = "0xHASH")]
    genesis: Option<UInt256>,
    /// After the headers, fetch the full blocks too, from every peer at
    /// once, each checked against its header (keeps 32 bytes a header).
    #[arg(long)]
    blocks: bool,
    /// With --blocks (which it needs): after the blocks, keep following
    /// the tip until SIGINT or SIGTERM: one line per new block, `block INDEX
    /// 0x<hash> txs N from PEER`, then the final `synced` line.
    #[arg(long, requires = "blocks")]
    follow: bool,
    /// With --blocks: check every block's validators' signatures too,
    /// against the contract the block before names (the standard signature
    /// contracts of both generations), from the one after genesis; a block
    /// that fails is its peer's fault. About 2 ms a MainNet block.
    #[arg(long, requires = "blocks")]
    witnesses: bool,
    /// Report events (peers, progress, the result, each peer's share and
    /// each command's totals) as JSON, one object per line on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    timeouts: TimeoutArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// `neo-peer demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Wire generation.
    #[arg(long, value_enum, default_value = "n3")]
    protocol: Protocol,
    /// Serving nodes started on loopback.
    #[arg(long, default_value_t = 4, value_name = "K")]
    nodes: usize,
    /// Blocks of the synthetic chain after genesis.
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    headers: u32,
    /// Where the seeds file and the address book live (a temporary
    /// directory, removed afterwards, by default). Run twice with the same
    /// directory and the second run dials from the book.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// `neo-peer crawl`.
#[derive(Debug, clap::Args)]
pub struct CrawlArgs {
    /// Wire generation.
    #[arg(long, value_enum, default_value = "n3")]
    protocol: Protocol,
    /// mainnet, testnet, privnet or a magic number.
    #[arg(long, default_value = "privnet", value_name = "NET")]
    network: String,
    /// The seeds file, read when the book is empty.
    #[arg(long, value_name = "FILE")]
    seeds: Option<PathBuf>,
    /// The address book (created if missing).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// How long to crawl, in seconds.
    #[arg(long, default_value_t = 30.0, value_name = "S")]
    duration: f64,
    /// Most peers connected at once.
    #[arg(long, default_value_t = 32, value_name = "N")]
    max_peers: usize,
    /// Report events (peers, dials, addresses learned, progress each second,
    /// the summary) as JSON, one object per line on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    timeouts: TimeoutArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// What the command line needs from each generation.
trait Cli: Serve + BlockSource + Sized {
    /// A synthetic chain.
    fn synthetic(s: &Synthetic) -> Chain<Self>;
    /// Syncs through `manager` up to index `target` (or the best height);
    /// with `hashes`, pushes the hash of every header there, by height from
    /// genesis.
    async fn sync(
        manager: &PeerManager<Self>,
        genesis: UInt256,
        target: Option<u32>,
        hashes: Option<&mut Vec<UInt256>>,
        progress: impl FnMut(u64, u64),
    ) -> Result<SyncOutcome, String>;
}

impl Cli for N3 {
    fn synthetic(s: &Synthetic) -> Chain<N3> {
        Chain::<N3>::synthetic(s)
    }

    async fn sync(
        manager: &PeerManager<N3>,
        _genesis: UInt256,
        target: Option<u32>,
        mut hashes: Option<&mut Vec<UInt256>>,
        progress: impl FnMut(u64, u64),
    ) -> Result<SyncOutcome, String> {
        let options = SyncOptions {
            target,
            ..SyncOptions::default()
        };
        let keep = |headers: &[neo_peer::wire::n3::Header]| {
            if let Some(h) = hashes.as_deref_mut() {
                h.extend(headers.iter().map(|h| h.hash()));
            }
        };
        sync_n3(manager, 0, &options, keep, progress)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Cli for Legacy {
    fn synthetic(s: &Synthetic) -> Chain<Legacy> {
        Chain::<Legacy>::synthetic(s)
    }

    async fn sync(
        manager: &PeerManager<Legacy>,
        genesis: UInt256,
        target: Option<u32>,
        mut hashes: Option<&mut Vec<UInt256>>,
        progress: impl FnMut(u64, u64),
    ) -> Result<SyncOutcome, String> {
        let options = SyncOptions {
            target,
            ..SyncOptions::default()
        };
        if let Some(h) = hashes.as_deref_mut() {
            h.push(genesis);
        }
        let keep = |headers: &[legacy::Header]| {
            if let Some(h) = hashes.as_deref_mut() {
                h.extend(headers.iter().map(|h| h.hash()));
            }
        };
        sync_legacy(manager, genesis, 0, &options, keep, progress)
            .await
            .map_err(|e| e.to_string())
    }
}

fn book_for(protocol: Protocol, magic: u32, db: Option<&Path>) -> Result<AddressBook, String> {
    let name = match protocol {
        Protocol::N3 => N3::NAME,
        Protocol::Legacy => Legacy::NAME,
    };
    let config = BookConfig::new(name, magic);
    match db {
        Some(path) => AddressBook::open(path, config).map_err(|e| e.to_string()),
        None => Ok(AddressBook::in_memory(config)),
    }
}

/// Fills the book from `seeds` when it is empty; says where addresses come from.
async fn bootstrap(
    book: &AddressBook,
    seeds: Option<&Path>,
    port: u16,
    out: Out,
) -> Result<(), String> {
    match seeds {
        Some(file) if book.is_empty() => {
            let n = book
                .load_seeds(file, port)
                .await
                .map_err(|e| e.to_string())?;
            out.event(
                "book",
                json!({"addresses": n, "from": "seeds", "seeds": file.display().to_string()}),
                || {
                    format!(
                        "address book empty: {} from {}",
                        count(n as u64, "address", "addresses"),
                        file.display()
                    )
                },
            );
        }
        _ if !book.is_empty() => {
            let n = book.len();
            out.event("book", json!({"addresses": n, "from": "book"}), || {
                format!(
                    "address book: {}, seeds not read",
                    count(n as u64, "address", "addresses")
                )
            });
        }
        _ => {}
    }
    Ok(())
}

/// A manager's event as `--json` reports it.
fn record_event(out: Out, event: &ManagerEvent) {
    let addr = |a: &Option<SocketAddr>| a.map(|a| a.to_string());
    let (name, fields) = match event {
        ManagerEvent::Connected {
            id,
            addr: a,
            direction,
            user_agent,
            height,
        } => (
            "connected",
            json!({
                "id": id,
                "addr": addr(a),
                "direction": match direction {
                    Direction::Inbound => "inbound",
                    Direction::Outbound => "outbound",
                },
                "user_agent": user_agent,
                "height": height,
            }),
        ),
        ManagerEvent::Disconnected {
            id,
            addr: a,
            reason,
        } => (
            "disconnected",
            json!({"id": id, "addr": addr(a), "reason": reason.to_string()}),
        ),
        ManagerEvent::DialFailed { addr, error } => (
            "dial_failed",
            json!({"addr": addr.to_string(), "error": error}),
        ),
        ManagerEvent::Banned { addr, reason } => (
            "banned",
            json!({"addr": addr.to_string(), "reason": reason}),
        ),
        ManagerEvent::Learned { from, new } => ("learned", json!({"from": addr(from), "new": new})),
        ManagerEvent::WrongBlock {
            id,
            addr: a,
            index,
            reason,
        } => (
            "wrong_block",
            json!({"id": id, "addr": addr(a), "index": index, "reason": reason}),
        ),
        ManagerEvent::RequestFailed { kind, error } => (
            "request_failed",
            json!({"request": kind.command(), "error": error}),
        ),
        _ => return,
    };
    out.record(name, fields);
}

/// Addresses of lost peers remembered to say when one is back; past it,
/// a peer coming back is not mentioned.
const MAX_LOST: usize = 1024;

/// A manager's event as a person sees it: a line when a peer is lost, and
/// one when a lost peer (an address of `lost`, at most [`MAX_LOST`]) is
/// connected again. Nothing else: the tables say the rest.
fn say_event(out: Out, event: &ManagerEvent, lost: &mut Vec<SocketAddr>) {
    match event {
        ManagerEvent::Disconnected {
            addr: Some(addr),
            reason,
            ..
        } => {
            if !lost.contains(addr) && lost.len() < MAX_LOST {
                lost.push(*addr);
            }
            out.outcome("disconnected", Value::Null, || {
                format!("peer {addr} lost: {reason}")
            });
        }
        ManagerEvent::Connected {
            addr: Some(addr), ..
        } => {
            if let Some(i) = lost.iter().position(|a| a == addr) {
                lost.swap_remove(i);
                out.outcome("connected", Value::Null, || {
                    format!("peer {addr} connected again")
                });
            }
        }
        _ => {}
    }
}

/// Runs `work`; meanwhile reports the manager's events: each one with
/// `--json`, lost peers (and their return) for a person.
async fn reporting_events<P: Proto, T>(
    manager: &PeerManager<P>,
    out: Out,
    work: impl std::future::Future<Output = T>,
) -> T {
    let events = manager.events();
    let report = async {
        let mut lost = Vec::new();
        while let Ok(event) = events.recv().await {
            match out {
                Out::Json => record_event(out, &event),
                Out::Human => say_event(out, &event, &mut lost),
            }
        }
        std::future::pending().await
    };
    futures_lite::future::or(work, report).await
}

/// Connects to every `connect` address at once, and waits until each is
/// connected or has failed. Then, if the book had addresses before (from a
/// seeds file or an earlier run), dials from it until `want` peers are live
/// or [`GATHER_TIMEOUT`] passes; with only `connect` addresses, waits for
/// nothing more.
async fn gather<P: Proto>(
    manager: &PeerManager<P>,
    connect: &[SocketAddr],
    want: usize,
) -> Result<(), String> {
    // Before the connections below add their addresses to it.
    let from_book = !manager.book().is_empty();
    let dials: Vec<_> = connect
        .iter()
        .map(|&addr| {
            let manager = manager.clone();
            smol::spawn(async move { manager.connect(addr).await.map(drop) })
        })
        .collect();
    let mut errors = Vec::new();
    for dial in dials {
        if let Err(e) = dial.await {
            errors.push(e.to_string());
        }
    }
    if from_book {
        manager.start_dialer();
        manager.wait_for_peers(want.max(1), GATHER_TIMEOUT).await;
    }
    if manager.is_empty() {
        let why = if errors.is_empty() {
            "no address to dial (give --connect or --seeds)".to_string()
        } else {
            errors.join("; ")
        };
        return Err(format!("no peers: {why}"));
    }
    Ok(())
}

fn manager_config<P: neo_peer::protocol::Protocol>(
    local: LocalConfig<P>,
    max_peers: usize,
) -> ManagerConfig<P> {
    let mut c = ManagerConfig::new(local);
    c.target_outbound = max_peers;
    c.max_outbound = max_peers.max(1);
    // Loopback nodes share one IP.
    c.max_per_ip = max_peers.max(1);
    c
}

pub fn sync(args: SyncArgs) -> Result<(), String> {
    let magic = network(args.protocol, &args.network)?;
    args.telemetry.start(Out::new(args.json))?;
    let book = book_for(args.protocol, magic, args.db.as_deref())?;
    let target = args
        .count
        .map(|n| u32::try_from(n.saturating_sub(1)).unwrap_or(u32::MAX));
    match args.protocol {
        Protocol::N3 => {
            let config = manager_config(config(magic, &args.timeouts, 0, 0)?, args.max_peers);
            run_sync::<N3>(config, book, &args, UInt256::ZERO, target)
        }
        Protocol::Legacy => {
            let genesis = crate::net::legacy_genesis(args.genesis, magic)
                .ok_or("Legacy sync needs --genesis 0x<hash> on this network")?;
            let config = manager_config(config(magic, &args.timeouts, 0, 0)?, args.max_peers);
            run_sync::<Legacy>(config, book, &args, genesis, target)
        }
    }
}

fn default_port(protocol: Protocol, magic: u32) -> u16 {
    match (protocol, magic) {
        (Protocol::N3, neo_peer::wire::n3::TESTNET_MAGIC) => 20333,
        (Protocol::N3, _) => 10333,
        (Protocol::Legacy, legacy::TESTNET_MAGIC) => 20333,
        (Protocol::Legacy, _) => 10333,
    }
}

fn run_sync<P: Cli>(
    config: ManagerConfig<P>,
    book: AddressBook,
    args: &SyncArgs,
    genesis: UInt256,
    target: Option<u32>,
) -> Result<(), String> {
    let port = default_port(args.protocol, config.local.identity.network);
    let manager =
        PeerManager::<P>::new(config, book, IgnoreAll, SmolGlobal).map_err(|e| e.to_string())?;
    let out = Out::new(args.json);
    // Taken before anything is printed, so that no signal meant to end the
    // following can kill the process instead.
    let signals = args
        .follow
        .then(|| {
            async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term])
        })
        .transpose()
        .map_err(|e| format!("signals: {e}"))?;
    let following = AtomicBool::new(false);
    smol::block_on(async {
        let interrupt = signals.map(Interrupt::watch);
        let work = reporting_events(&manager, out, async {
            bootstrap(manager.book(), args.seeds.as_deref(), port, out).await?;
            gather(&manager, &args.connect, args.max_peers).await?;
            let mut progress = out.progress("headers");
            let mut hashes = Vec::new();
            let keep = args.blocks.then_some(&mut hashes);
            let synced = P::sync(&manager, genesis, target, keep, |have, want| {
                progress.show(have, want)
            })
            .await?;
            progress.finish();
            out.outcome("synced", synced_fields(&synced), || synced_line(&synced));
            if args.blocks {
                let network = manager.config().local.identity.network;
                let witnesses = args.witnesses.then_some(network);
                let (blocks, signers) = fetch_blocks(&manager, hashes, witnesses, out).await?;
                out.outcome("synced_blocks", blocks_fields(&blocks), || {
                    blocks_line(&blocks)
                });
                if let Some(interrupt) = &interrupt {
                    report_peers(&manager, out);
                    following.store(true, Ordering::Release);
                    // A `--connect` peer lost is dialed again until it is
                    // back (dropped, the task stops).
                    let _redial = (!args.connect.is_empty()).then(|| {
                        crate::relay::keep_connected(manager.clone(), args.connect.clone())
                    });
                    return follow_tip(&manager, &blocks, signers, genesis, out, interrupt).await;
                }
            }
            report_peers(&manager, out);
            Ok(())
        });
        // A signal before the following began ends the sync at once.
        let interrupted = async {
            match &interrupt {
                Some(i) => i.wait().await,
                None => std::future::pending().await,
            }
            if following.load(Ordering::Acquire) {
                // The following ends by itself, with its final line.
                std::future::pending::<()>().await;
            }
            Err("interrupted before the sync ended".to_string())
        };
        let result = futures_lite::future::or(work, interrupted).await;
        manager.shutdown().await;
        result
    })
}

/// SIGINT or SIGTERM, once received: every waiter sees it.
struct Interrupt {
    received: Arc<AtomicBool>,
    event: Arc<event_listener::Event>,
    _watch: smol::Task<()>,
}

impl Interrupt {
    /// Watches `signals` from now on.
    fn watch(mut signals: async_signal::Signals) -> Self {
        use futures_lite::StreamExt;
        let received = Arc::new(AtomicBool::new(false));
        let event = Arc::new(event_listener::Event::new());
        let (r, e) = (received.clone(), event.clone());
        let watch = smol::spawn(async move {
            if let Some(signal) = signals.next().await {
                tracing::info!(?signal, "stopping");
            }
            r.store(true, Ordering::Release);
            e.notify(usize::MAX);
        });
        Interrupt {
            received,
            event,
            _watch: watch,
        }
    }

    /// Resolves once a signal was received.
    async fn wait(&self) {
        loop {
            let listener = self.event.listen();
            if self.received.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }
}

/// Downloads the blocks of heights 1 to the last of `hashes` (the header
/// hashes by height from genesis), each checked against its header, and
/// with `witnesses` (the network) against its validators' signatures too;
/// then also returns what signs the block after the last.
async fn fetch_blocks<P: Cli>(
    manager: &PeerManager<P>,
    hashes: Vec<UInt256>,
    witnesses: Option<u32>,
    out: Out,
) -> Result<(DownloadOutcome, Option<Signers>), String> {
    let Some(tip) = hashes.len().checked_sub(1) else {
        return Err("no headers to fetch the blocks of".into());
    };
    let tip = u32::try_from(tip).map_err(|_| "too many headers".to_string())?;
    let genesis = hashes[0];
    let mut signers = match witnesses {
        Some(network) => Some(Signers {
            network,
            first: genesis_signer(manager, genesis).await?,
        }),
        None => None,
    };
    let mut last_signer: Option<UInt160> = None;
    let mut progress = out.progress("blocks");
    let mut have = 0u64;
    let outcome = download(
        manager,
        ScheduleConfig {
            witnesses: signers,
            ..ScheduleConfig::default()
        },
        1,
        Some(tip),
        Some(genesis),
        move |i| hashes.get(i as usize).copied(),
        |block, _from| {
            have += 1;
            last_signer = block.next_consensus();
            progress.show(have, u64::from(tip));
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    progress.finish();
    if let (Some(s), Some(last)) = (signers.as_mut(), last_signer) {
        s.first = last;
    }
    Ok((outcome, signers))
}

/// The contract that signs block 1: the `next_consensus` of the genesis
/// block, fetched from a peer and checked against the genesis hash.
async fn genesis_signer<P: Cli>(
    manager: &PeerManager<P>,
    genesis: UInt256,
) -> Result<UInt160, String> {
    let mut signer = None;
    download(
        manager,
        ScheduleConfig::default(),
        0,
        Some(0),
        None,
        move |i| (i == 0).then_some(genesis),
        |block, _from| signer = block.next_consensus(),
    )
    .await
    .map_err(|e| format!("the genesis block: {e}"))?;
    signer.ok_or_else(|| "the genesis block names no signer".to_string())
}

/// How often a follower pings its peers for their heights (new blocks
/// announced with `inv` are asked for at once).
const FOLLOW_CHECK: Duration = Duration::from_millis(500);

/// Follows the tip after `synced` until SIGINT or SIGTERM, printing each
/// new block once, in order; then the final `synced` line, over the blocks
/// of `synced` and those followed.
async fn follow_tip<P: Cli>(
    manager: &PeerManager<P>,
    synced: &DownloadOutcome,
    signers: Option<Signers>,
    genesis: UInt256,
    out: Out,
    interrupt: &Interrupt,
) -> Result<(), String> {
    let from = synced.tip_index.map_or(1, |t| t + 1);
    let after = synced.tip_hash.unwrap_or(genesis);
    let total = std::cell::RefCell::new(synced.clone());
    let started = Instant::now();
    let following = follow(
        manager,
        ScheduleConfig {
            witnesses: signers,
            ..ScheduleConfig::default()
        },
        from,
        Some(after),
        |_| None,
        FOLLOW_CHECK,
        |block, from| {
            let peer = manager
                .peer(from)
                .and_then(|p| p.addr())
                .map_or_else(|| "?".to_string(), |a| a.to_string());
            let (index, hash, txs) = (block.index(), block.hash(), block.tx_count());
            let mut t = total.borrow_mut();
            t.count += 1;
            t.bytes += block.wire_size() as u64;
            t.tip_index = Some(index);
            t.tip_hash = Some(hash);
            out.outcome(
                "block",
                json!({
                    "index": index,
                    "hash": hash.to_string(),
                    "txs": txs,
                    "size": block.wire_size(),
                    "peer": peer,
                }),
                || format!("block {index} {hash} txs {txs} from {peer}"),
            );
            std::ops::ControlFlow::Continue(())
        },
    );
    let stopped = async {
        interrupt.wait().await;
        Ok(())
    };
    futures_lite::future::or(
        async { following.await.map(drop).map_err(|e| e.to_string()) },
        stopped,
    )
    .await?;
    let mut total = total.into_inner();
    total.elapsed = synced.elapsed + started.elapsed();
    out.outcome("synced_blocks", blocks_fields(&total), || {
        blocks_line(&total)
    });
    Ok(())
}

/// Blocks a second over a whole download.
fn block_rate(d: &DownloadOutcome) -> f64 {
    d.count as f64 / d.elapsed.as_secs_f64().max(1e-9)
}

/// `synced N blocks, tip INDEX 0x<hash> in T (B blocks/s)`.
fn blocks_line(d: &DownloadOutcome) -> String {
    format!(
        "synced {} blocks, tip {} {} in {:.2?} ({:.0} blocks/s)",
        d.count,
        d.tip_index.unwrap_or(0),
        d.tip_hash.unwrap_or(UInt256::ZERO),
        d.elapsed,
        block_rate(d)
    )
}

/// What `synced_blocks` reports with `--json`.
fn blocks_fields(d: &DownloadOutcome) -> Value {
    let secs = d.elapsed.as_secs_f64();
    json!({
        "blocks": d.count,
        "bytes": d.bytes,
        "tip_index": d.tip_index,
        "tip_hash": d.tip_hash.map(|h| h.to_string()),
        "seconds": secs,
        "blocks_per_second": block_rate(d).round(),
        "megabytes_per_second": (d.bytes as f64 / secs.max(1e-9) / 1e4).round() / 100.0,
        "faults": d.faults,
        "requests": d.requests,
    })
}

/// Headers a second over a whole sync.
fn rate(s: &SyncOutcome) -> f64 {
    s.count as f64 / s.elapsed.as_secs_f64().max(1e-9)
}

/// `synced N headers, tip INDEX 0x<hash> in T (R headers/s)`.
fn synced_line(s: &SyncOutcome) -> String {
    format!(
        "synced {} headers, tip {} {} in {:.2?} ({:.0} headers/s)",
        s.count,
        s.tip_index,
        s.tip_hash,
        s.elapsed,
        rate(s)
    )
}

/// What `synced` reports with `--json`.
fn synced_fields(s: &SyncOutcome) -> Value {
    json!({
        "headers": s.count,
        "tip_index": s.tip_index,
        "tip_hash": s.tip_hash.to_string(),
        "seconds": s.elapsed.as_secs_f64(),
        "headers_per_second": rate(s).round(),
    })
}

/// Milliseconds, two decimals.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Each peer's share, round trip and traffic, then the totals per command:
/// two tables, or `peer` and `command` events.
fn report_peers<P: Proto>(manager: &PeerManager<P>, out: Out) {
    let peers = manager.peers();
    let total: u64 = peers.iter().map(|p| p.served).sum::<u64>().max(1);
    let mut rows = Vec::new();
    let mut commands: BTreeMap<String, CommandStats> = BTreeMap::new();
    for p in &peers {
        let t = p.stats.total();
        let addr = p.addr.map_or_else(|| "?".into(), |a| a.to_string());
        let agent = p.info.user_agent.clone().unwrap_or_default();
        let share = p.served as f64 * 100.0 / total as f64;
        let rtt = p.rtt.or(p.info.rtt);
        out.record(
            "peer",
            json!({
                "addr": addr,
                "user_agent": agent,
                "served": p.served,
                "share_percent": (share * 10.0).round() / 10.0,
                "rtt_ms": rtt.map(ms),
                "bytes_in": t.bytes_in,
                "bytes_out": t.bytes_out,
            }),
        );
        rows.push(vec![
            addr,
            agent,
            format!("{share:.1}%"),
            p.served.to_string(),
            rtt.map_or_else(|| "-".into(), |r| format!("{:.2}", ms(r))),
            t.bytes_in.to_string(),
            t.bytes_out.to_string(),
        ]);
        for (name, c) in &p.stats.commands {
            let sum = commands.entry(name.clone()).or_default();
            sum.messages_in += c.messages_in;
            sum.bytes_in += c.bytes_in;
            sum.messages_out += c.messages_out;
            sum.bytes_out += c.bytes_out;
            sum.handled += c.handled;
            sum.handler_time += c.handler_time;
            sum.latency.count += c.latency.count;
            sum.latency.total += c.latency.total;
            sum.latency.max = sum.latency.max.max(c.latency.max);
            if sum.latency.min.is_zero() || c.latency.min < sum.latency.min {
                sum.latency.min = c.latency.min;
            }
        }
    }
    if out == Out::Human {
        let header = [
            "peer",
            "user agent",
            "share",
            "requests",
            "rtt ms",
            "bytes in",
            "bytes out",
        ];
        print!("{}", table(&header, &[2, 3, 4, 5, 6], rows));
        println!();
        print!("{}", StatsSnapshot { commands });
        return;
    }
    for (name, c) in commands {
        out.record(
            "command",
            json!({
                "command": name,
                "messages_in": c.messages_in,
                "bytes_in": c.bytes_in,
                "messages_out": c.messages_out,
                "bytes_out": c.bytes_out,
                "handled": c.handled,
                "handler_ms": ms(c.handler_time),
                "rtt_ms": c.latency.mean().map(ms),
            }),
        );
    }
}

// ---------------------------------------------------------------------------

/// A unique directory under the system's temporary directory.
fn temp_dir() -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("neo-peer-demo-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

pub fn demo(args: DemoArgs) -> Result<(), String> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let (dir, temporary) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            (d.clone(), false)
        }
        None => (temp_dir()?, true),
    };
    let synthetic = Synthetic {
        blocks: args.headers,
        txs_per_block: 1,
        seed: 0,
        // Legacy sync learns the hashes ahead from `getblocks`, which only
        // announces blocks whose bodies a node holds.
        with_bodies: args.protocol == Protocol::Legacy,
    };
    let result = match args.protocol {
        Protocol::N3 => run_demo::<N3>(&args, &dir, &synthetic),
        Protocol::Legacy => run_demo::<Legacy>(&args, &dir, &synthetic),
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_demo<P: Cli>(args: &DemoArgs, dir: &Path, synthetic: &Synthetic) -> Result<(), String> {
    let magic = network(args.protocol, "privnet")?;
    let started = Instant::now();
    let chain = Arc::new(P::synthetic(synthetic));
    let (genesis, height) = (chain.genesis_hash(), chain.height());
    let db = dir.join("peers.db");
    let seeds = dir.join("seeds.txt");
    let book = book_for(args.protocol, magic, Some(&db))?;
    // Nodes come back on the ports the book remembers, so that a second run
    // finds them where the first left them.
    let mut ports: Vec<u16> = book.records().iter().map(|r| r.addr.port()).collect();
    ports.truncate(args.nodes);
    smol::block_on(async {
        let mut nodes = Vec::new();
        for i in 0..args.nodes {
            let mut local = LocalConfig::new(magic);
            local.identity.user_agent = format!("/neo-peer-demo:node{i}/");
            local.identity.current_height = Arc::new(move || height);
            let config = manager_config(local, 1024);
            let node = PeerManager::<P>::new(
                config,
                AddressBook::in_memory(BookConfig::new(P::NAME, magic)),
                ChainServer::new(chain.clone()),
                SmolGlobal,
            )
            .map_err(|e| e.to_string())?;
            let port = ports.get(i).copied().unwrap_or(0);
            let addr = match node.listen(([127, 0, 0, 1], port).into()).await {
                Ok(a) => a,
                Err(_) => node
                    .listen(([127, 0, 0, 1], 0).into())
                    .await
                    .map_err(|e| e.to_string())?,
            };
            nodes.push((node, addr));
        }
        let list: String = nodes.iter().map(|(_, a)| format!("{a}\n")).collect();
        std::fs::write(&seeds, format!("# neo-peer demo nodes\n{list}"))
            .map_err(|e| format!("cannot write {}: {e}", seeds.display()))?;
        eprintln!(
            "{} {} {} on 127.0.0.1 serving {} (made in {:.1?})",
            args.nodes,
            P::NAME,
            if args.nodes == 1 { "node" } else { "nodes" },
            count(height + 1, "header", "headers"),
            started.elapsed()
        );
        let mut local = LocalConfig::new(magic);
        local.identity.user_agent = "/neo-peer-demo:client/".into();
        let manager = PeerManager::<P>::new(
            manager_config(local, args.nodes),
            book,
            IgnoreAll,
            SmolGlobal,
        )
        .map_err(|e| e.to_string())?;
        let result = async {
            bootstrap(manager.book(), Some(&seeds), 0, Out::Human).await?;
            gather(&manager, &[], args.nodes).await?;
            eprintln!(
                "connected to {}",
                count(manager.len() as u64, "peer", "peers")
            );
            let mut progress = Out::Human.progress("headers");
            let out = P::sync(&manager, genesis, None, None, |have, want| {
                progress.show(have, want)
            })
            .await?;
            progress.finish();
            if out.tip_hash != chain.tip_hash() {
                return Err(format!("synced tip {} is not the chain's", out.tip_hash));
            }
            println!("{}", synced_line(&out));
            report_peers(&manager, Out::Human);
            Ok(())
        }
        .await;
        let report = manager.shutdown().await;
        for (node, _) in &nodes {
            node.shutdown().await;
        }
        let flushed = report.flushed.map_err(|e| format!("address book: {e}"))?;
        // A temporary directory is gone by now: only a kept book is named.
        let book_line = format!(
            "{} ({} written at shutdown)",
            count(manager.book().len() as u64, "address", "addresses"),
            flushed
        );
        if args.dir.is_some() {
            eprintln!("address book {}: {book_line}", db.display());
        } else {
            eprintln!("address book (temporary, removed): {book_line}");
        }
        result
    })
}

// ---------------------------------------------------------------------------

pub fn crawl(args: CrawlArgs) -> Result<(), String> {
    let magic = network(args.protocol, &args.network)?;
    args.telemetry.start(Out::new(args.json))?;
    let book = book_for(args.protocol, magic, Some(&args.db))?;
    let duration = Duration::try_from_secs_f64(args.duration)
        .map_err(|e| format!("invalid --duration {}: {e}", args.duration))?;
    let port = default_port(args.protocol, magic);
    match args.protocol {
        Protocol::N3 => {
            let config = crawl_config(config(magic, &args.timeouts, 0, 0)?, &args);
            run_crawl::<N3>(config, book, &args, duration, port)
        }
        Protocol::Legacy => {
            let config = crawl_config(config(magic, &args.timeouts, 0, 0)?, &args);
            run_crawl::<Legacy>(config, book, &args, duration, port)
        }
    }
}

/// A crawler asks for addresses often and writes them down soon.
fn crawl_config<P: neo_peer::protocol::Protocol>(
    local: LocalConfig<P>,
    args: &CrawlArgs,
) -> ManagerConfig<P> {
    let mut config = manager_config(local, args.max_peers);
    config.addr_interval = Duration::from_secs(5);
    config.flush_interval = Duration::from_secs(2);
    config.dial_interval = Duration::from_millis(200);
    config
}

fn run_crawl<P: Proto>(
    config: ManagerConfig<P>,
    book: AddressBook,
    args: &CrawlArgs,
    duration: Duration,
    port: u16,
) -> Result<(), String> {
    let manager =
        PeerManager::<P>::new(config, book, IgnoreAll, SmolGlobal).map_err(|e| e.to_string())?;
    let events = manager.events();
    let out = Out::new(args.json);
    smol::block_on(async {
        bootstrap(manager.book(), args.seeds.as_deref(), port, out).await?;
        if manager.book().is_empty() {
            return Err("the address book is empty: give --seeds".into());
        }
        manager.start_dialer();
        manager.start_maintenance();
        let deadline = Instant::now() + duration;
        let mut connected = 0usize;
        let mut failed = 0usize;
        let mut learned = 0usize;
        let mut last_report = Instant::now();
        while Instant::now() < deadline {
            let wait = deadline.saturating_duration_since(Instant::now());
            let next = futures_lite::future::or(async { events.recv().await.ok() }, async {
                async_io::Timer::after(wait.min(Duration::from_millis(500))).await;
                None
            })
            .await;
            if let Some(event) = &next {
                record_event(out, event);
            }
            match next {
                Some(ManagerEvent::Connected { id, .. }) => {
                    connected += 1;
                    // A round trip for the book (N3 nodes answer pings).
                    if let Some(peer) = manager.peer(id) {
                        smol::spawn(async move {
                            let _ = peer.ping().await;
                        })
                        .detach();
                    }
                }
                Some(ManagerEvent::DialFailed { .. }) => failed += 1,
                Some(ManagerEvent::Learned { new, .. }) => learned += new,
                _ => {}
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                let (live, known) = (manager.len(), manager.book().len());
                out.event(
                    "progress",
                    json!({
                        "live": live,
                        "handshakes": connected,
                        "failed_dials": failed,
                        "learned": learned,
                        "known": known,
                    }),
                    || format!("crawling: {live} live, {connected} handshakes, {failed} failed dials, {learned} addresses learned, {known} known"),
                );
            }
        }
        manager.shutdown().await;
        let summary = CrawlSummary::of(manager.book());
        out.outcome("summary", summary.to_json(), || summary.to_string());
        Ok(())
    })
}

/// What a crawl found: reachable, unreachable, banned and untried
/// addresses, user agents and the best height.
struct CrawlSummary {
    addresses: usize,
    reachable: usize,
    unreachable: usize,
    banned: usize,
    untried: usize,
    /// Reachable nodes per user agent.
    agents: BTreeMap<String, usize>,
    best_height: Option<u32>,
}

impl CrawlSummary {
    fn of(book: &AddressBook) -> Self {
        let now = now_ms();
        let records = book.records();
        let reachable: Vec<_> = records
            .iter()
            .filter(|r| r.last_success_ms.is_some() && r.failures == 0)
            .collect();
        let mut agents = BTreeMap::new();
        for r in &reachable {
            *agents
                .entry(r.user_agent.clone().unwrap_or_else(|| "?".into()))
                .or_default() += 1;
        }
        CrawlSummary {
            addresses: records.len(),
            reachable: reachable.len(),
            unreachable: records
                .iter()
                .filter(|r| r.failures > 0 && !r.is_banned_at(now))
                .count(),
            banned: records.iter().filter(|r| r.is_banned_at(now)).count(),
            untried: records
                .iter()
                .filter(|r| r.last_attempt_ms.is_none())
                .count(),
            agents,
            best_height: reachable
                .iter()
                .map(|r| r.start_height.max(r.last_height))
                .max(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "addresses": self.addresses,
            "reachable": self.reachable,
            "unreachable": self.unreachable,
            "banned": self.banned,
            "untried": self.untried,
            "user_agents": self.agents,
            "best_height": self.best_height,
        })
    }
}

impl std::fmt::Display for CrawlSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "addresses {}: reachable {}, unreachable {}, banned {}, not tried {}",
            self.addresses, self.reachable, self.unreachable, self.banned, self.untried
        )?;
        for (agent, n) in &self.agents {
            writeln!(f, "  {n:>5}  {agent}")?;
        }
        if let Some(h) = self.best_height {
            writeln!(f, "best height {h}")?;
        }
        Ok(())
    }
}
