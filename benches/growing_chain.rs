//! What a chain that grows while it is served costs.
//!
//! `cargo bench --bench growing_chain` prints, for the in-memory N3 chain:
//!
//! - the append rate: headers (hashing included), blocks of TXS
//!   transactions (default 2) after their headers, and blocks with their
//!   headers; and the same for Legacy blocks;
//! - the time to answer `getheaders` for 2000 headers (what a peer asks most)
//!   while one thread appends headers as fast as it can, then with no
//!   writer, then while a thread keeps a core busy without touching the
//!   chain (the control: what remains is scheduling): median, 99th
//!   percentile and worst answer, answers a second, and the append rate;
//! - how long one append takes while a reader answers 2000-header requests
//!   in a loop (median, 99th percentile, worst): the writer waits for no
//!   reader;
//! - lookups by hash (and in a plain `HashMap`), and the rehash of one
//!   shard of the hash index at 10 million entries (the longest a lookup can
//!   wait on an append).
//!
//! APPENDS (default 1,000,000) headers are appended in the writer tests.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use neo_peer::chain::{Chain, LegacyChain, N3Chain, Synthetic};
use neo_peer::protocol::N3;
use neo_peer::wire::{UInt256, n3};

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Median, 99th percentile and worst of `samples`, sorted in place.
fn spread(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    format!(
        "median {:>9.2?}  p99 {:>9.2?}  worst {:>9.2?}  ({} samples)",
        at(0.5),
        at(0.99),
        samples[samples.len() - 1],
        samples.len()
    )
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>10.0}/s", n as f64 / d.as_secs_f64())
}

/// Endless headers following `tip`, shaped like the synthetic ones (a 5-of-7
/// multi-signature witness).
struct Headers {
    template: n3::Header,
    prev: UInt256,
    index: u32,
}

impl Headers {
    fn after(chain: &N3Chain, template: &n3::Header) -> Self {
        let (index, prev) = chain.tip();
        Headers {
            template: template.clone(),
            prev,
            index,
        }
    }
}

impl Iterator for Headers {
    type Item = n3::Header;
    fn next(&mut self) -> Option<n3::Header> {
        self.index += 1;
        let h = n3::Header {
            prev_hash: self.prev,
            index: self.index,
            timestamp: self.template.timestamp + u64::from(self.index) * 15_000,
            ..self.template.clone()
        };
        self.prev = h.hash();
        Some(h)
    }
}

fn get_headers(start: u32) -> n3::Message {
    n3::Message::GetHeaders(n3::GetBlockByIndexPayload {
        index_start: start,
        count: 2000,
    })
}

/// Answers 2000-header requests from `chain` until `stop`; the time of each.
fn serve_2000(chain: &N3Chain, stop: &AtomicBool, max: usize) -> Vec<Duration> {
    let mut took = Vec::new();
    let mut start = 0u32;
    while !stop.load(Ordering::Relaxed) && took.len() < max {
        let height = chain.height().saturating_sub(2000);
        start = (start + 7919) % height.max(1);
        let t = Instant::now();
        let answer = chain.answer(&get_headers(start));
        took.push(t.elapsed());
        black_box(answer);
    }
    took
}

fn main() {
    let appends = env("APPENDS", 1_000_000) as usize;
    let txs = env("TXS", 2);
    println!("neo-peer growing chain bench ({appends} appends, {txs} transactions per block)");

    // ---- append rates
    let spec = Synthetic {
        blocks: 20_000,
        txs_per_block: txs,
        seed: 1,
        with_bodies: true,
    };
    let source = N3Chain::synthetic(&spec);
    let headers: Vec<n3::Header> = source.headers().cloned().collect();
    let blocks: Vec<n3::Block> = source.blocks().cloned().collect();

    let chain = N3Chain::new(headers[0].clone()).unwrap();
    let t = Instant::now();
    for h in &headers[1..] {
        chain.push_header(h.clone()).unwrap();
    }
    println!(
        "append N3 headers                    {}",
        rate(headers.len() - 1, t.elapsed())
    );
    let t = Instant::now();
    for b in &blocks {
        chain.push_block(b.clone()).unwrap();
    }
    println!(
        "append N3 blocks under their headers {}",
        rate(blocks.len(), t.elapsed())
    );
    let t = Instant::now();
    let chain = N3Chain::from_blocks(blocks.iter().cloned()).unwrap();
    println!(
        "append N3 blocks with their headers  {}",
        rate(blocks.len(), t.elapsed())
    );
    drop(chain);
    let legacy = LegacyChain::synthetic(&spec);
    let legacy_blocks: Vec<_> = legacy.blocks().cloned().collect();
    let t = Instant::now();
    let chain = LegacyChain::from_blocks(legacy_blocks.iter().cloned()).unwrap();
    println!(
        "append Legacy blocks with headers    {}",
        rate(legacy_blocks.len(), t.elapsed())
    );
    drop((chain, legacy, legacy_blocks, blocks));

    // ---- serving 2000 headers while appending, then idle
    let chain = Arc::new(N3Chain::from_headers(headers.iter().cloned()).unwrap());
    let template = headers[1].clone();
    let stop = AtomicBool::new(false);
    serve_2000(&chain, &stop, 200); // warm up
    let (mut busy, serving, appended, writing) = thread::scope(|s| {
        let writer = s.spawn(|| {
            let t = Instant::now();
            let mut n = 0;
            for h in Headers::after(&chain, &template).take(appends) {
                chain.push_header(h).unwrap();
                n += 1;
            }
            stop.store(true, Ordering::Relaxed);
            (n, t.elapsed())
        });
        let t = Instant::now();
        let took = serve_2000(&chain, &stop, usize::MAX);
        let serving = t.elapsed();
        let (n, d) = writer.join().unwrap();
        (took, serving, n, d)
    });
    println!(
        "getheaders 2000, while appending    {}  {}",
        spread(&mut busy),
        rate(busy.len(), serving)
    );
    println!(
        "  appended meanwhile                 {}  (height {})",
        rate(appended, writing),
        chain.height()
    );
    let stop = AtomicBool::new(false);
    let t = Instant::now();
    let mut idle = serve_2000(&chain, &stop, 2000);
    let serving = t.elapsed();
    println!(
        "getheaders 2000, no writer          {}  {}",
        spread(&mut idle),
        rate(idle.len(), serving)
    );
    // The control: a thread that keeps a core as busy as the writer did,
    // without touching the chain. What remains of the tail is scheduling.
    let (mut control, serving) = thread::scope(|s| {
        let spinner = s.spawn(|| {
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
        let t = Instant::now();
        let took = serve_2000(&chain, &AtomicBool::new(false), busy.len());
        let serving = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        (took, serving)
    });
    println!(
        "getheaders 2000, a core kept busy   {}  {}",
        spread(&mut control),
        rate(control.len(), serving)
    );

    // ---- how long an append waits while a reader serves
    let stop = AtomicBool::new(false);
    let mut waits = Vec::with_capacity(appends);
    let started = Instant::now();
    let served = thread::scope(|s| {
        let reader = s.spawn(|| serve_2000(&chain, &stop, usize::MAX).len());
        for h in Headers::after(&chain, &template).take(appends) {
            let t = Instant::now();
            chain.push_header(h).unwrap();
            waits.push(t.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    let took = started.elapsed();
    println!("append while serving (this chain)   {}", spread(&mut waits));
    println!(
        "  meanwhile: appends {}, 2000-header answers {}",
        rate(appends, took),
        rate(served, took)
    );

    // ---- lookups by hash, and the longest an append holds a shard
    let hashes: Vec<UInt256> = chain.hashes().step_by(97).collect();
    let lookups = |find: &dyn Fn(&UInt256) -> bool| {
        let t = Instant::now();
        let mut found = 0u32;
        for _ in 0..10 {
            for h in &hashes {
                found += u32::from(find(black_box(h)));
            }
        }
        t.elapsed() / found
    };
    let ours = lookups(&|h| chain.index_of(h).is_some());
    let plain: HashMap<UInt256, u32> = chain.hashes().zip(0..).collect();
    let baseline = lookups(&|h| plain.contains_key(h));
    println!(
        "index_of                             {ours:>9.1?} per lookup, a plain HashMap {baseline:.1?} ({} headers)",
        chain.len()
    );
    drop(plain);
    let shard = 10_000_000 / 256;
    let keys: Vec<UInt256> = (0..shard as u32)
        .map(|i| UInt256(neo_peer::wire::sha256(&i.to_le_bytes())))
        .collect();
    let mut worst = Vec::new();
    for _ in 0..5 {
        let mut map: HashMap<UInt256, u32> = HashMap::new();
        let mut longest = Duration::ZERO;
        for (i, k) in keys.iter().enumerate() {
            let t = Instant::now();
            map.insert(*k, i as u32);
            longest = longest.max(t.elapsed());
        }
        worst.push(longest);
    }
    println!(
        "longest insert into one of 256 shards of a 10M index (its last rehash): {}",
        spread(&mut worst)
    );
    black_box(Chain::<N3>::len(&chain));
}
