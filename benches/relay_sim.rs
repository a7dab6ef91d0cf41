//! How an item spreads over a network of 1,000 relay nodes, by simulation.
//!
//! `cargo bench --bench relay_sim` builds NODES (default 1000) nodes in one
//! process, each dialling OUTBOUND (default 8) random others (so about 16
//! links per node), every link with its own one-way latency drawn
//! uniformly from 10 to 100 ms. The random number generator is seeded
//! (SEED, printed; the default is fixed), so a run is repeatable.
//!
//! It is a discrete-event simulation with a virtual clock: a binary heap of
//! timed events (a message reaching a node, a node's timer), popped in
//! order of time. Every node drives the library's real relay types,
//! [`KnownInventory`] and [`RequestTracker`], with the virtual instants, so
//! what is measured is their rules, not the scheduling of threads: runs are
//! deterministic, and the whole bench takes 15 s or so. Messages
//! cost only their link's latency (no bandwidth, no processing time), and
//! each carries one hash.
//!
//! Two kinds of node are compared:
//!
//! - **known inventory on** (the library's rules): an item is never
//!   announced to a peer that announced it to us or was sent or announced
//!   it by us; an announced item is asked of one announcer at a time
//!   (outbound, then lowest round trip first), and of the next announcer
//!   too once the request is late ([`TrackerConfig::retry_delay`]: four
//!   round trips of the asked peer, at least 200 ms), or on timeout
//!   ([`REQUEST_TIMEOUT`], 5 s). The same rules with early retries turned
//!   off (`retry_rtts` 0: the next announcer waits for the timeout) are
//!   shown too, as "deadline";
//! - **off** (a node without per-peer inventory): a new item is announced
//!   to every peer, the one it came from included, and asked of every peer
//!   that announces it while we lack it.
//!
//! For one item injected at a random node, ten items injected at once at
//! ten random nodes, and one item with 5 % of the links lossy (each message
//! on such a link is lost with probability 1/2), it prints the time for an
//! item to reach 50 %, 90 % and 100 % of the nodes (mean over items and
//! TRIALS runs, default 10), the messages per node per item (`inv`,
//! `getdata`, the item itself, and items received twice), the requests that
//! timed out, the early retries, and the share of nodes reached.
//!
//! Without building the other benches: `cargo build --release --bench
//! relay_sim`, then run `target/release/deps/relay_sim-*` (the newest).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use neo_peer::relay::{
    KnownInventory, REQUEST_TIMEOUT, RETRY_RTTS, Rank, RequestTracker, TrackerConfig,
};
use neo_peer::wire::UInt256;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: small, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn hash(&mut self) -> UInt256 {
        let mut h = [0u8; 32];
        for chunk in h.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        UInt256(h)
    }
}

/// One end of a link, as a node sees it.
#[derive(Clone, Copy)]
struct Link {
    peer: u32,
    /// The index of this link in the peer's list.
    back: u32,
    /// One way, in microseconds.
    latency: u64,
    /// We dialled it.
    outbound: bool,
    /// Drawn once per link: the link is lossy when this is below the
    /// scenario's share of lossy links.
    loss_draw: f64,
}

/// Who is connected to whom; fixed for a whole run.
struct Topology {
    links: Vec<Vec<Link>>,
}

impl Topology {
    fn random(nodes: usize, outbound: usize, rng: &mut Rng) -> Topology {
        let mut links: Vec<Vec<Link>> = vec![Vec::new(); nodes];
        for a in 0..nodes {
            let mut dialled = 0;
            while dialled < outbound.min(nodes - 1) {
                let b = rng.below(nodes as u64) as usize;
                if b == a || links[a].iter().any(|l| l.peer as usize == b) {
                    continue;
                }
                let latency = 10_000 + rng.below(90_001);
                let loss_draw = rng.unit();
                let (ia, ib) = (links[a].len() as u32, links[b].len() as u32);
                links[a].push(Link {
                    peer: b as u32,
                    back: ib,
                    latency,
                    outbound: true,
                    loss_draw,
                });
                links[b].push(Link {
                    peer: a as u32,
                    back: ia,
                    latency,
                    outbound: false,
                    loss_draw,
                });
                dialled += 1;
            }
        }
        Topology { links }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Inv,
    GetData,
    Item,
    Wake,
}

/// At, sequence number (ties in time keep their order), node, link slot,
/// kind, item.
type Event = Reverse<(u64, u64, u32, u32, Kind, u32)>;

/// The library's relay state of one node (known inventory on).
struct Relay {
    known: KnownInventory,
    tracker: RequestTracker<()>,
    next_wake: Option<u64>,
}

#[derive(Clone, Copy)]
struct Scenario {
    known: bool,
    /// Early retries on (with `known`).
    early: bool,
    items: usize,
    lossy: f64,
}

#[derive(Default)]
struct Counts {
    inv: u64,
    getdata: u64,
    item: u64,
    duplicates: u64,
    timeouts: u64,
    retries: u64,
}

struct Sim<'a> {
    topo: &'a Topology,
    scenario: Scenario,
    rng: Rng,
    base: Instant,
    now: u64,
    seq: u64,
    events: BinaryHeap<Event>,
    relays: Vec<Relay>,
    hashes: Vec<UInt256>,
    /// Per item, per node: when it arrived.
    arrived: Vec<Vec<Option<u64>>>,
    counts: Counts,
}

impl<'a> Sim<'a> {
    fn new(topo: &'a Topology, scenario: Scenario, rng: Rng) -> Sim<'a> {
        let nodes = topo.links.len();
        let relays = if scenario.known {
            topo.links
                .iter()
                .map(|links| {
                    let mut known = KnownInventory::default();
                    let mut tracker = RequestTracker::new(TrackerConfig {
                        retry_rtts: if scenario.early { RETRY_RTTS } else { 0 },
                        ..TrackerConfig::default()
                    });
                    for (slot, l) in links.iter().enumerate() {
                        known.add_peer(slot as u64);
                        tracker.add_peer(
                            slot as u64,
                            Rank {
                                preferred: l.outbound,
                                rtt: Some(Duration::from_micros(2 * l.latency)),
                            },
                        );
                    }
                    Relay {
                        known,
                        tracker,
                        next_wake: None,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Sim {
            topo,
            scenario,
            rng,
            base: Instant::now(),
            now: 0,
            seq: 0,
            events: BinaryHeap::new(),
            relays,
            hashes: Vec::new(),
            arrived: vec![vec![None; nodes]; scenario.items],
            counts: Counts::default(),
        }
    }

    fn instant(&self, at: u64) -> Instant {
        self.base + Duration::from_micros(at)
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_micros() as u64
    }

    fn push(&mut self, at: u64, node: u32, slot: u32, kind: Kind, item: u32) {
        self.seq += 1;
        self.events
            .push(Reverse((at, self.seq, node, slot, kind, item)));
    }

    /// Sends `kind` of `item` from `node` over its link `slot`.
    fn send(&mut self, node: u32, slot: u32, kind: Kind, item: u32) {
        match kind {
            Kind::Inv => self.counts.inv += 1,
            Kind::GetData => self.counts.getdata += 1,
            Kind::Item => self.counts.item += 1,
            Kind::Wake => {}
        }
        let link = self.topo.links[node as usize][slot as usize];
        if link.loss_draw < self.scenario.lossy && self.rng.unit() < 0.5 {
            return;
        }
        self.push(self.now + link.latency, link.peer, link.back, kind, item);
    }

    fn has(&self, node: u32, item: u32) -> bool {
        self.arrived[item as usize][node as usize].is_some()
    }

    /// `node` has a new item: it keeps it and announces it.
    fn accept(&mut self, node: u32, item: u32) {
        self.arrived[item as usize][node as usize] = Some(self.now);
        let slots = self.topo.links[node as usize].len() as u64;
        let to: Vec<u64> = if self.scenario.known {
            let hash = self.hashes[item as usize];
            self.relays[node as usize].known.to_announce(hash, 0..slots)
        } else {
            (0..slots).collect()
        };
        for slot in to {
            self.send(node, slot as u32, Kind::Inv, item);
        }
    }

    /// Sends what `node`'s tracker asks for, and sets its timer.
    fn poll(&mut self, node: u32) {
        let now = self.instant(self.now);
        let relay = &mut self.relays[node as usize];
        let requests = relay.tracker.poll_requests(now);
        let wake = relay.tracker.poll_timeout();
        for r in requests {
            let item = self.hashes.iter().position(|h| *h == r.hash).unwrap_or(0);
            self.send(node, r.peer as u32, Kind::GetData, item as u32);
        }
        if let Some(wake) = wake {
            let at = self.micros(wake);
            let relay = &mut self.relays[node as usize];
            if relay.next_wake.is_none_or(|w| at < w) {
                relay.next_wake = Some(at);
                self.push(at, node, 0, Kind::Wake, 0);
            }
        }
    }

    fn inject(&mut self, node: u32, item: u32) {
        if self.scenario.known {
            let hash = self.hashes[item as usize];
            self.relays[node as usize].tracker.have(hash);
        }
        self.accept(node, item);
    }

    fn handle(&mut self, node: u32, slot: u32, kind: Kind, item: u32) {
        let known = self.scenario.known;
        let hash = self.hashes[item as usize];
        let peer = u64::from(slot);
        match kind {
            Kind::Inv => {
                let has = self.has(node, item);
                if known {
                    let now = self.instant(self.now);
                    let relay = &mut self.relays[node as usize];
                    relay.known.mark(peer, hash);
                    if !has {
                        relay.tracker.announced(now, peer, (), hash);
                        self.poll(node);
                    }
                } else if !has {
                    self.send(node, slot, Kind::GetData, item);
                }
            }
            Kind::GetData => {
                if self.has(node, item) {
                    if known {
                        self.relays[node as usize].known.mark(peer, hash);
                    }
                    self.send(node, slot, Kind::Item, item);
                }
            }
            Kind::Item => {
                if known {
                    let relay = &mut self.relays[node as usize];
                    relay.known.mark(peer, hash);
                    relay.tracker.delivered(peer, hash);
                }
                if self.has(node, item) {
                    self.counts.duplicates += 1;
                } else {
                    self.accept(node, item);
                }
                if known {
                    self.poll(node);
                }
            }
            Kind::Wake => {
                let relay = &mut self.relays[node as usize];
                if relay.next_wake == Some(self.now) {
                    relay.next_wake = None;
                }
                self.poll(node);
            }
        }
    }

    fn run(&mut self) {
        let nodes = self.topo.links.len() as u64;
        for item in 0..self.scenario.items as u32 {
            let hash = self.rng.hash();
            self.hashes.push(hash);
            let origin = self.rng.below(nodes) as u32;
            self.inject(origin, item);
        }
        while let Some(Reverse((at, _, node, slot, kind, item))) = self.events.pop() {
            self.now = at;
            self.handle(node, slot, kind, item);
        }
        self.counts.timeouts = self.relays.iter().map(|r| r.tracker.stats().timeouts).sum();
        self.counts.retries = self.relays.iter().map(|r| r.tracker.stats().retries).sum();
    }
}

/// What one scenario measured, summed over its trials.
#[derive(Default)]
struct Tally {
    /// Sums of the times (µs) to reach 50 %, 90 % and 100 %, and how many
    /// items reached each.
    reach: [(u64, u64); 3],
    items: u64,
    reached: u64,
    nodes: u64,
    counts: Counts,
}

impl Tally {
    fn add(&mut self, sim: &Sim) {
        let nodes = sim.topo.links.len();
        for times in &sim.arrived {
            let mut t: Vec<u64> = times.iter().flatten().copied().collect();
            t.sort_unstable();
            self.items += 1;
            self.nodes += nodes as u64;
            self.reached += t.len() as u64;
            for (i, share) in [0.5, 0.9, 1.0].into_iter().enumerate() {
                let need = ((nodes as f64 * share).ceil() as usize).max(1);
                if let Some(&at) = t.get(need - 1) {
                    self.reach[i].0 += at;
                    self.reach[i].1 += 1;
                }
            }
        }
        self.counts.inv += sim.counts.inv;
        self.counts.getdata += sim.counts.getdata;
        self.counts.item += sim.counts.item;
        self.counts.duplicates += sim.counts.duplicates;
        self.counts.timeouts += sim.counts.timeouts;
        self.counts.retries += sim.counts.retries;
    }

    fn row(&self, scenario: Scenario, wall: Duration) -> String {
        let reach = |i: usize| {
            let (sum, n) = self.reach[i];
            if n == 0 {
                "never".to_string()
            } else if n < self.items {
                format!(
                    "{:.0} ms ({n}/{})",
                    sum as f64 / n as f64 / 1000.0,
                    self.items
                )
            } else {
                format!("{:.0} ms", sum as f64 / n as f64 / 1000.0)
            }
        };
        let per = |c: u64| c as f64 / self.nodes as f64;
        format!(
            "| {:<5} | {:<8} | {:>5} | {:>5} | {:>8} | {:>8} | {:>16} | {:>5.2} | {:>7.2} | {:>5.2} | {:>5.2} | {:>8} | {:>7} | {:>7.2} % | {:>5.1} s |",
            if scenario.known { "on" } else { "off" },
            match (scenario.known, scenario.early) {
                (false, _) => "-",
                (true, true) => "early",
                (true, false) => "deadline",
            },
            scenario.items,
            format!("{:.0} %", scenario.lossy * 100.0),
            reach(0),
            reach(1),
            reach(2),
            per(self.counts.inv),
            per(self.counts.getdata),
            per(self.counts.item),
            per(self.counts.duplicates),
            self.counts.timeouts,
            self.counts.retries,
            self.reached as f64 * 100.0 / self.nodes as f64,
            wall.as_secs_f64(),
        )
    }
}

fn main() {
    let nodes = env("NODES", 1000).max(2) as usize;
    let outbound = env("OUTBOUND", 8) as usize;
    let trials = env("TRIALS", 10).max(1);
    let seed = env("SEED", 0x6e65_6f2d_7065_6572);
    println!(
        "relay_sim: {nodes} nodes, {outbound} outbound each, latency 10-100 ms per link, \
         seed {seed} (SEED=...), {trials} trials per row (TRIALS=...)"
    );
    let mut rng = Rng(seed);
    let topo = Topology::random(nodes, outbound, &mut rng);
    let total: usize = topo.links.iter().map(Vec::len).sum();
    println!(
        "{} links, {:.1} per node; request timeout {} s",
        total / 2,
        total as f64 / nodes as f64,
        REQUEST_TIMEOUT.as_secs()
    );
    println!();
    println!(
        "| known | retry    | items | lossy | 50 %     | 90 %     | 100 %            | inv   | getdata | item  | dup   | timeouts | retries | reached   | wall    |"
    );
    println!(
        "|-------|----------|-------|-------|----------|----------|------------------|-------|---------|-------|-------|----------|---------|-----------|---------|"
    );
    for (items, lossy) in [(1, 0.0), (10, 0.0), (1, 0.05)] {
        for (known, early) in [(true, true), (true, false), (false, false)] {
            let scenario = Scenario {
                known,
                early,
                items,
                lossy,
            };
            let started = Instant::now();
            let mut tally = Tally::default();
            for trial in 0..trials {
                let run_seed = seed ^ (trial + 1).wrapping_mul(0xa076_1d64_78bd_642f);
                let mut sim = Sim::new(&topo, scenario, Rng(run_seed));
                sim.run();
                tally.add(&sim);
            }
            println!("{}", tally.row(scenario, started.elapsed()));
        }
    }
    println!();
    println!(
        "times: from injection, mean over items and trials ((k/n): only k of n items got there); \
         messages per node per item; dup: items received again; timeouts, retries (early): \
         total over the row"
    );
}
