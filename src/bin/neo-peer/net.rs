//! `neo-peer serve`, and what the networked commands share.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_io::Async;
use neo_peer::chain::{Chain, ChainServer, Serve, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::peer::{Direction, LocalConfig, Peer};
use neo_peer::protocol::{Legacy, N3};
use neo_peer::wire::{legacy, n3};
use serde_json::json;

use crate::Protocol;
use crate::output::Out;
use crate::telemetry::TelemetryArgs;

/// Timeouts given on the command line, in seconds.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct TimeoutArgs {
    /// Handshake timeout in seconds (fractions allowed).
    #[arg(long, value_name = "S")]
    handshake_timeout: Option<f64>,
    /// Idle timeout in seconds.
    #[arg(long, value_name = "S")]
    idle_timeout: Option<f64>,
    /// Stall (response) timeout in seconds.
    #[arg(long, value_name = "S")]
    stall_timeout: Option<f64>,
    /// Ping interval in seconds.
    #[arg(long, value_name = "S")]
    ping_interval: Option<f64>,
}

fn seconds(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|e| format!("invalid duration {s}: {e}"))
}

/// The magic of a network name or number for `protocol`.
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
    protocol: Protocol,
    /// mainnet, testnet, privnet or a magic number.
    #[arg(long, default_value = "privnet", value_name = "NET")]
    network: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:20333", value_name = "ADDR")]
    listen: SocketAddr,
    /// Serve a synthetic chain of this many blocks after genesis.
    #[arg(long, value_name = "N")]
    synthetic: Option<u32>,
    /// Mirror the N3 node at this address: copy its whole chain (headers and
    /// blocks, each checked and linked) before listening, then serve the copy.
    #[arg(long, value_name = "ADDR")]
    mirror: Option<SocketAddr>,
    /// Most peers served at once.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    max_peers: usize,
    /// Report events (listening, connected, disconnected, refused) as JSON,
    /// one object per line on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    timeouts: TimeoutArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

pub fn serve(args: ServeArgs) -> Result<(), String> {
    let magic = network(args.protocol, &args.network)?;
    args.telemetry.start(Out::new(args.json))?;
    if let Some(source) = args.mirror {
        let config = config(magic, &args.timeouts, 0, 0)?;
        let out = Out::new(args.json);
        return match args.protocol {
            Protocol::N3 => serve_chain(Arc::new(mirror_n3(source, config, out)?), magic, &args),
            Protocol::Legacy => Err("--mirror speaks N3 only for now".into()),
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

/// Hands received blocks to the mirror.
struct BlockSink(async_channel::Sender<n3::Block>);

impl neo_peer::peer::N3Handler for BlockSink {
    async fn on_block(&self, _peer: &Peer<N3>, block: n3::Block) {
        let _ = self.0.send(block).await;
    }
}

/// The whole chain of the N3 node at `source`: every block, checked and
/// appended as it comes.
fn mirror_n3(source: SocketAddr, config: LocalConfig<N3>, out: Out) -> Result<Chain<N3>, String> {
    let conn = connect(source)?;
    smol::block_on(async {
        // Bounded: blocks the remote sends faster than we take them wait in TCP.
        let (tx, rx) = async_channel::bounded(n3::MAX_BLOCKS_PER_REQUEST);
        let peer: Peer<N3> =
            Peer::new(conn, Direction::Outbound, config, BlockSink(tx), SmolGlobal)
                .with_remote_addr(source);
        peer.run()
            .await
            .map_err(|e| format!("handshake with {source}: {e}"))?;
        let top = peer.height();
        let mut progress = out.progress("blocks");
        let mut chain: Option<Chain<N3>> = None;
        let mut next = 0u32;
        while next <= top {
            let n = (top - next + 1).min(n3::MAX_BLOCKS_PER_REQUEST as u32);
            peer.request_blocks_by_index(next, n as i16)
                .await
                .map_err(|e| format!("getblockbyindex {next}: {e}"))?;
            for i in next..next + n {
                let block = rx
                    .recv()
                    .await
                    .map_err(|_| format!("{source} left while sending block {i}"))?;
                if block.header.index != i {
                    return Err(format!("asked for block {i}, got {}", block.header.index));
                }
                let appended = match &chain {
                    Some(chain) => chain.push_block(block),
                    None => Chain::from_genesis_block(block).map(|genesis| chain = Some(genesis)),
                };
                appended.map_err(|e| format!("mirrored chain: {e}"))?;
            }
            next += n;
            progress.show(u64::from(next), u64::from(top) + 1);
        }
        progress.finish();
        peer.disconnect();
        let chain = chain.ok_or("the mirrored node sent no block")?;
        out.event(
            "mirrored",
            json!({"from": source.to_string(), "blocks": chain.len()}),
            || format!("mirrored {} blocks from {source}", chain.len()),
        );
        Ok(chain)
    })
}

/// Serves `chain` until killed. The chain may grow meanwhile (appended to
/// through another handle): every answer, and the height each handshake
/// announces, is read from it when needed.
fn serve_chain<P: Serve>(chain: Arc<Chain<P>>, magic: u32, args: &ServeArgs) -> Result<(), String> {
    let listener = TcpListener::bind(args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let listener = Async::new(listener).map_err(|e| e.to_string())?;
    let mut config = config(magic, &args.timeouts, 0, local.port())?;
    let served = chain.clone();
    config.identity.current_height = Arc::new(move || served.height());
    let out = Out::new(args.json);
    let (genesis, height) = (chain.genesis_hash(), chain.height());
    out.outcome(
        "listening",
        json!({"addr": local.to_string(), "genesis": genesis.to_string(), "height": height}),
        || format!("listening on {local}, genesis {genesis}, height {height}"),
    );
    // `getaddr` is answered with this node's own address.
    let server = ChainServer::new(chain).with_addresses(vec![local]);
    let active = Arc::new(AtomicUsize::new(0));
    smol::block_on(async {
        loop {
            let (stream, addr) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    out.event("accept_failed", json!({"error": e.to_string()}), || {
                        format!("accept failed: {e}")
                    });
                    // Out of descriptors and the like: back off a little.
                    async_io::Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Small frames go out at once (see `connect`); a socket that
            // refuses it still works.
            let _ = stream.get_ref().set_nodelay(true);
            if active.load(Ordering::SeqCst) >= args.max_peers {
                let max = args.max_peers;
                out.event(
                    "refused",
                    json!({"addr": addr.to_string(), "reason": format!("{max} peers already")}),
                    || format!("refused {addr}: {max} peers already"),
                );
                continue;
            }
            active.fetch_add(1, Ordering::SeqCst);
            let peer: Peer<P> = Peer::new(
                stream,
                Direction::Inbound,
                config.clone(),
                server.clone(),
                SmolGlobal,
            )
            .with_remote_addr(addr);
            let active = active.clone();
            smol::spawn(async move {
                let reason = match peer.run().await {
                    Ok(()) => {
                        let info = peer.info();
                        let agent = info.user_agent.unwrap_or_default();
                        let height = info.height;
                        out.event(
                            "connected",
                            json!({"addr": addr.to_string(), "user_agent": agent, "height": height}),
                            || format!("connected {addr} {agent} height {height}"),
                        );
                        peer.closed().await.to_string()
                    }
                    Err(e) => e.to_string(),
                };
                out.event(
                    "disconnected",
                    json!({"addr": addr.to_string(), "reason": reason}),
                    || format!("disconnected {addr}: {reason}"),
                );
                active.fetch_sub(1, Ordering::SeqCst);
            })
            .detach();
        }
    })
}

/// Dials `addr`. Small frames (handshake, requests) go out at once: no Nagle
/// delay, which with delayed acknowledgements costs 40 ms a round trip.
fn connect(addr: SocketAddr) -> Result<Async<TcpStream>, String> {
    let conn = smol::block_on(Async::<TcpStream>::connect(addr))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    conn.get_ref()
        .set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    Ok(conn)
}
