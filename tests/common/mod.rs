//! Real nodes for the interop tests: started by the project's scripts
//! (`scripts/neogo`, `scripts/neoone`), ended with the test process.
// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Seconds a node lives at most, whatever happens to the test process.
const LIFETIME: &str = "240";

/// A free TCP port on 127.0.0.1: one the system picks, or, with
/// `NEO_PEER_TEST_PORTS=LOW-HIGH` set, one of that range (where the nodes
/// of runs sharing the machine are kept apart).
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let range = std::env::var("NEO_PEER_TEST_PORTS").ok().and_then(|r| {
        let (low, high) = r.split_once('-')?;
        Some((
            low.trim().parse::<u16>().ok()?,
            high.trim().parse::<u16>().ok()?,
        ))
    });
    if let Some((low, high)) = range.filter(|(l, h)| l <= h) {
        let span = u32::from(high) - u32::from(low) + 1;
        let start = std::process::id() % span;
        for _ in 0..span {
            let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span;
            let port = (u32::from(low) + (start + step) % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
        panic!("no free port in NEO_PEER_TEST_PORTS={low}-{high}");
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Ports for real nodes that must not meet the ports the OS hands out
/// ([`free_port`], other tests' connections): below the ephemeral range.
pub const NODE_PORTS: std::ops::Range<u16> = 31000..31500;

/// A port of [`NODE_PORTS`] free now, never the same twice in one process
/// (each process starts at its own place in the range).
pub fn node_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(NODE_PORTS.end - NODE_PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let k = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = NODE_PORTS.start + k as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {NODE_PORTS:?}")
}

/// A node run by one of the scripts.
pub struct RealNode {
    /// Its P2P address.
    pub p2p: SocketAddr,
    /// Its JSON-RPC port.
    pub rpc: u16,
    script: &'static str,
    dir: PathBuf,
}

impl RealNode {
    /// `scripts/<script> start`: a fresh chain, returned once it reaches `height`.
    pub fn start(script: &'static str, height: u32, env: &[(&str, &str)]) -> RealNode {
        Self::run(script, "start", height.to_string(), env)
    }

    /// `scripts/neogo follow`: a neo-go without consensus whose only seed is `seed`.
    pub fn follow(seed: &str) -> RealNode {
        Self::run("neogo", "follow", seed.to_string(), &[])
    }

    /// [`RealNode::start`] on the given P2P and RPC ports.
    pub fn start_on(
        script: &'static str,
        ports: (u16, u16),
        height: u32,
        env: &[(&str, &str)],
    ) -> RealNode {
        Self::run_on(script, "start", height.to_string(), env, ports)
    }

    /// `scripts/<script> follow` on the given P2P and RPC ports: a node
    /// without consensus whose only peer is `seed`.
    pub fn follow_on(script: &'static str, seed: &str, ports: (u16, u16)) -> RealNode {
        Self::run_on(script, "follow", seed.to_string(), &[], ports)
    }

    fn run(script: &'static str, verb: &str, last: String, env: &[(&str, &str)]) -> RealNode {
        Self::run_on(script, verb, last, env, (free_port(), free_port()))
    }

    fn run_on(
        script: &'static str,
        verb: &str,
        last: String,
        env: &[(&str, &str)],
        (p2p, rpc): (u16, u16),
    ) -> RealNode {
        let dir = std::env::temp_dir().join(format!(
            "neo-peer-{script}-{verb}-{p2p}-{}",
            std::process::id()
        ));
        let out = Command::new(Self::path(script))
            .env("NEO_PEER_WATCH_PID", std::process::id().to_string())
            .envs(env.iter().copied())
            .arg(verb)
            .arg(&dir)
            .args([p2p.to_string(), rpc.to_string(), last, LIFETIME.into()])
            .output()
            .unwrap_or_else(|e| panic!("scripts/{script} does not run: {e}"));
        assert!(
            out.status.success(),
            "scripts/{script} {verb} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        RealNode {
            p2p: SocketAddr::from(([127, 0, 0, 1], p2p)),
            rpc,
            script,
            dir,
        }
    }

    fn path(script: &str) -> String {
        format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"))
    }

    /// One JSON-RPC call (or a batch).
    pub fn rpc(&self, body: &Value) -> Value {
        // NEO•ONE answers on /rpc, neo-go on /.
        let path = if self.script == "neoone" { "/rpc" } else { "" };
        let mut child = Command::new("curl")
            .args(["-s", "-m", "30", "-H", "Content-Type: application/json"])
            .args(["-d", "@-"])
            .arg(format!("http://127.0.0.1:{}{path}", self.rpc))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        serde_json::from_slice(&out.stdout).expect("JSON-RPC answer")
    }

    /// The `result` of one call of `method`.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.rpc(&body)["result"].clone()
    }

    /// Stops the node now.
    pub fn stop(&self) {
        let _ = Command::new(Self::path(self.script))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// Kills the child process it holds when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first line `neo-peer serve` prints once it listens:
/// `listening on ADDR, genesis 0x<hash>, height N`.
pub struct Listening {
    /// The address it listens on, as printed.
    pub addr: String,
    /// The hash of its genesis block, `0x` and hex.
    pub genesis: String,
    /// The height of the chain it serves.
    pub height: u32,
}

impl Listening {
    /// Reads `line`; `None` if it is not a listening line.
    pub fn parse(line: &str) -> Option<Listening> {
        let rest = line.strip_prefix("listening on ")?;
        let (addr, rest) = rest.split_once(", genesis ")?;
        let (genesis, height) = rest.split_once(", height ")?;
        Some(Listening {
            addr: addr.to_string(),
            genesis: genesis.to_string(),
            height: height.trim().parse().ok()?,
        })
    }
}

/// The `neo-peer` binary, in the test crates built with it (the `cli`
/// feature).
pub fn neo_peer() -> Command {
    match option_env!("CARGO_BIN_EXE_neo-peer") {
        Some(path) => Command::new(path),
        None => panic!("the neo-peer binary is built only with the `cli` feature"),
    }
}

/// `neo-peer ARGS` (standard error dropped), once it printed its first
/// line: the process and that line read as [`Listening`]; `None`, the
/// process ended, when the line is not one (e.g. it could not listen).
pub fn try_listening(args: &[&str]) -> Option<(Kill, Listening)> {
    let (child, line) = first_line(args);
    Listening::parse(&line).map(|first| (child, first))
}

/// [`try_listening`] which must succeed.
pub fn listening(args: &[&str]) -> (Kill, Listening) {
    let (child, line) = first_line(args);
    let first = Listening::parse(&line).unwrap_or_else(|| panic!("not listening: {line:?}"));
    (child, first)
}

/// `neo-peer serve` of `blocks` synthetic blocks of `protocol` (privnet)
/// on a port the system picks, once it listens.
pub fn serve_synthetic(protocol: &str, blocks: u32) -> (Kill, Listening) {
    let blocks = blocks.to_string();
    listening(&[
        "serve",
        "--protocol",
        protocol,
        "--network",
        "privnet",
        "--listen",
        "127.0.0.1:0",
        "--synthetic",
        &blocks,
    ])
}

fn first_line(args: &[&str]) -> (Kill, String) {
    let mut child = neo_peer()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    (child, line)
}
