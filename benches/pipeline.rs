//! The block download pipeline alone, fed by simulated serving peers.
//!
//! `cargo bench --bench pipeline` runs the library's real
//! [`Schedule`] (the rules of the download pipeline: bounded window, ranges
//! to free and fast peers, deadlines, the range holding up a full window
//! taken from a slow peer after `steal_after`) against serving peers
//! simulated with a virtual clock: a binary heap of timed events (a request
//! reaching a peer, a block reaching us, a request's end, the schedule's
//! timer), popped in order of time. A peer answers its requests one after
//! the other, one block every `1 / rate` seconds, each block reaching us a
//! one-way latency later; a request taken from it is still served to the
//! end (its blocks arrive and are dropped as stale), as a real peer would.
//!
//! A normal peer serves RATE blocks/s (default 1000) with a one-way
//! latency of 10 ms; the slow peer is 10× slower on both (RATE / 10
//! blocks/s, 100 ms). BLOCKS blocks (default 50,000) are downloaded with the
//! default [`ScheduleConfig`] (window 8000, ranges of 500, two requests per
//! peer, 10 s deadline, steal after 2 s) from 1, 4 and 16 peers, with and
//! without one slow peer; with the slow peer and `steal_after` lowered to
//! 250 ms; and with the slow peer and the deadline and `steal_after` at one
//! hour (only the steal measured by the idle peers' speed is left). Like the library's
//! driver with blocks this small (it passes a request's blocks on in 4 MiB
//! groups), the simulation feeds a request's blocks when its whole answer
//! has come, asks for new ranges before handing blocks out, and looks again
//! at least every 100 ms when nothing happens. The schedule breaks ties
//! between equal peers in hash map order, so figures vary slightly between
//! runs.
//!
//! Blocks are tiny stand-ins (a height and a hash chained to the one before):
//! what is measured is the schedule, not hashing. It prints, per row, the
//! virtual time and blocks per second of virtual time next to the sum of
//! the peers' rates (the most they could give), the share of blocks the slow
//! peer served, the requests taken from their peers (deadline or steal),
//! the blocks that arrived for a request no longer live, the most blocks
//! held at once, and the wall-clock cost of the run and of the schedule's
//! own calls per block.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use neo_peer::manager::download::{Arrival, Fetched, Ready, RequestId, Schedule, ScheduleConfig};
use neo_peer::wire::UInt256;

/// How often the library's driver looks again when nothing happens
/// (microseconds).
const REFRESH: u64 = 100_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A stand-in block: its height, its hash and its parent's.
#[derive(Clone)]
struct Block(u32);

fn hash_of(index: u32) -> UInt256 {
    let mut h = [0xb1; 32];
    h[..4].copy_from_slice(&index.to_le_bytes());
    UInt256(h)
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Block({})", self.0)
    }
}

impl Fetched for Block {
    fn index(&self) -> u32 {
        self.0
    }
    fn hash(&self) -> UInt256 {
        hash_of(self.0)
    }
    fn prev_hash(&self) -> UInt256 {
        hash_of(self.0.wrapping_sub(1))
    }
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    fn wire_size(&self) -> usize {
        // An N3 MainNet block with a few transactions.
        4096
    }
    fn tx_count(&self) -> usize {
        0
    }
}

#[derive(Clone, Copy)]
struct Server {
    /// Microseconds per block.
    per_block: u64,
    /// One way, in microseconds.
    latency: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A request reaches its peer: (peer, request).
    Request,
    /// A request's whole answer reaches us: (request, 0).
    Answer,
    /// The schedule's timer.
    Wake,
}

/// At, sequence number, kind, and two numbers whose meaning depends on it.
type Event = Reverse<(u64, u64, Kind, u64, u64)>;

struct Row {
    name: String,
    servers: Vec<Server>,
    config: ScheduleConfig,
}

struct Outcome {
    virtual_time: Duration,
    wall: Duration,
    in_schedule: Duration,
    slow_share: Option<f64>,
    abandoned: usize,
    stale: u64,
    most_held: usize,
}

fn run(row: &Row, blocks: u32) -> Outcome {
    let started = Instant::now();
    let base = Instant::now();
    let at = |us: u64| base + Duration::from_micros(us);
    let mut in_schedule = Duration::ZERO;
    let mut schedule: Schedule<Block> =
        Schedule::new(row.config, 1, Some(blocks), Some(hash_of(0)), |_| None);
    for peer in 0..row.servers.len() {
        schedule.set_peer(peer as u64, blocks);
    }
    let mut events: BinaryHeap<Event> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |events: &mut BinaryHeap<Event>, t: u64, kind: Kind, a: u64, b: u64| {
        seq += 1;
        events.push(Reverse((t, seq, kind, a, b)));
    };
    // Request id -> (peer, start, count).
    let mut requests: HashMap<RequestId, (u64, u32, u32)> = HashMap::new();
    let mut busy_until = vec![0u64; row.servers.len()];
    let mut served = vec![0u64; row.servers.len()];
    let mut next_wake: Option<u64> = None;
    let (mut now, mut abandoned, mut stale, mut most_held) = (0u64, 0usize, 0u64, 0usize);
    let mut fresh = true;
    loop {
        if !fresh {
            let Some(Reverse((t, _, kind, a, b))) = events.pop() else {
                break;
            };
            now = t;
            match kind {
                Kind::Request => {
                    let server = row.servers[a as usize];
                    let (_, _, count) = requests[&b];
                    let begin = now.max(busy_until[a as usize]);
                    busy_until[a as usize] = begin + u64::from(count) * server.per_block;
                    push(
                        &mut events,
                        busy_until[a as usize] + server.latency,
                        Kind::Answer,
                        b,
                        0,
                    );
                }
                Kind::Answer => {
                    let (_, start, count) = requests[&a];
                    let clock = Instant::now();
                    for index in start..start + count {
                        match schedule.on_block(a, Block(index), at(now)) {
                            Arrival::Kept => {}
                            Arrival::Stale => stale += 1,
                            Arrival::Bad { why, .. } => panic!("a good block refused: {why}"),
                        }
                    }
                    schedule.on_end(a);
                    in_schedule += clock.elapsed();
                    most_held = most_held.max(schedule.held());
                }
                Kind::Wake => {
                    if next_wake == Some(now) {
                        next_wake = None;
                    }
                    let clock = Instant::now();
                    let gone = schedule.handle_timeout(at(now));
                    in_schedule += clock.elapsed();
                    abandoned += gone.len();
                }
            }
        }
        fresh = false;
        let clock = Instant::now();
        let mut sent = Vec::new();
        while let Some(r) = schedule.poll_request(at(now)) {
            sent.push(r);
        }
        let mut ready = Vec::new();
        while let Some(r) = schedule.poll_ready() {
            ready.push(r);
        }
        let wake = schedule.poll_timeout();
        in_schedule += clock.elapsed();
        for r in ready {
            match r {
                Ready::Block { from, .. } => served[from as usize] += 1,
                Ready::Fault { why, .. } => panic!("a good block refused: {why}"),
            }
        }
        if schedule.is_done() {
            break;
        }
        for r in sent {
            let latency = row.servers[r.peer as usize].latency;
            requests.insert(r.id, (r.peer, r.start, r.count));
            push(&mut events, now + latency, Kind::Request, r.peer, r.id);
        }
        // As the driver does: wake at the schedule's next deadline, and
        // at least every `REFRESH` to look again.
        {
            let t = wake.map_or(now + REFRESH, |w| {
                // Rounded up: a deadline between two microseconds is
                // met at the later one.
                let micros = w.saturating_duration_since(base).as_nanos().div_ceil(1000);
                (micros as u64).min(now + REFRESH)
            });
            if next_wake.is_none_or(|w| t < w) {
                next_wake = Some(t);
                push(&mut events, t, Kind::Wake, 0, 0);
            }
        }
    }
    assert!(
        schedule.is_done(),
        "{}: the download did not finish",
        row.name
    );
    let slow = row
        .servers
        .iter()
        .position(|s| s.per_block > row.servers[0].per_block);
    Outcome {
        virtual_time: Duration::from_micros(now),
        wall: started.elapsed(),
        in_schedule,
        slow_share: slow.map(|p| served[p] as f64 / f64::from(blocks)),
        abandoned,
        stale,
        most_held,
    }
}

fn main() {
    let blocks = env("BLOCKS", 50_000).clamp(1, u64::from(u32::MAX - 1)) as u32;
    let rate = env("RATE", 1000).max(1);
    let normal = Server {
        per_block: 1_000_000 / rate,
        latency: 10_000,
    };
    let slow = Server {
        per_block: normal.per_block * 10,
        latency: normal.latency * 10,
    };
    let defaults = ScheduleConfig::default();
    let never = ScheduleConfig {
        timeout: Duration::from_secs(3600),
        steal_after: Duration::from_secs(3600),
        ..defaults
    };
    let quick = ScheduleConfig {
        steal_after: Duration::from_millis(250),
        ..defaults
    };
    let mut rows = vec![Row {
        name: "1 peer".into(),
        servers: vec![normal],
        config: defaults,
    }];
    for n in [4usize, 16] {
        let mut with_slow = vec![normal; n];
        with_slow[n - 1] = slow;
        rows.push(Row {
            name: format!("{n} peers"),
            servers: vec![normal; n],
            config: defaults,
        });
        rows.push(Row {
            name: format!("{n} peers, 1 slow"),
            servers: with_slow.clone(),
            config: defaults,
        });
        rows.push(Row {
            name: format!("{n} peers, 1 slow, steal after 0.25 s"),
            servers: with_slow.clone(),
            config: quick,
        });
        rows.push(Row {
            name: format!("{n} peers, 1 slow, deadline 1 h"),
            servers: with_slow,
            config: never,
        });
    }
    println!(
        "pipeline: {blocks} blocks (BLOCKS=...), normal peer {rate} blocks/s (RATE=...) and 10 ms \
         one way, slow peer {} blocks/s and 100 ms; window {}, range {}, {} requests per peer, \
         deadline {} s, steal after {} s",
        rate / 10,
        defaults.window,
        defaults.range,
        defaults.per_peer,
        defaults.timeout.as_secs(),
        defaults.steal_after.as_secs(),
    );
    println!();
    println!(
        "| peers                                | virtual time | blocks/s | peers' sum | slow share | taken | stale | most held | wall    | schedule per block |"
    );
    println!(
        "|--------------------------------------|--------------|----------|------------|------------|-------|-------|-----------|---------|--------------------|"
    );
    for row in &rows {
        let o = run(row, blocks);
        let sum: f64 = row.servers.iter().map(|s| 1e6 / s.per_block as f64).sum();
        println!(
            "| {:<36} | {:>10.2} s | {:>8.0} | {:>10.0} | {:>10} | {:>5} | {:>5} | {:>9} | {:>5.0} ms | {:>15.0} ns |",
            row.name,
            o.virtual_time.as_secs_f64(),
            f64::from(blocks) / o.virtual_time.as_secs_f64(),
            sum,
            o.slow_share
                .map_or("-".to_string(), |s| format!("{:.1} %", s * 100.0)),
            o.abandoned,
            o.stale,
            o.most_held,
            o.wall.as_secs_f64() * 1000.0,
            o.in_schedule.as_nanos() as f64 / f64::from(blocks),
        );
    }
    println!();
    println!(
        "blocks/s: of virtual time; peers' sum: the most the peers could serve; taken: requests \
         abandoned for their deadline or stolen from the peer holding up a full window; stale: \
         blocks that came for such a request; wall: the whole simulated run; schedule per block: \
         wall time inside the schedule's own calls"
    );
}
