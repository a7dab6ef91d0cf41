//! A writer killed with SIGKILL in the middle of flushing loses nothing it
//! had reported as flushed, and never leaves a half-written flush behind.
//!
//! The test runs its own binary again as the writer (an environment
//! variable tells it so). The writer opens the book and loops: each
//! generation `g` adds one address and rewrites 64 others, every field
//! derived from `g`, then flushes and prints `flushed g`. The parent kills
//! it a few milliseconds after its first report, reopens the file and checks
//! that it opens, that the 64 records all carry one generation, at least the
//! last one reported, and that the address of every generation up to that
//! one is there, intact (and none after it). Then again, on the same file.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use neo_peer::book::{AddrRecord, AddressBook, BookConfig, Connected, Source};

const CHILD_ENV: &str = "NEO_PEER_BOOK_DURABILITY_WRITER";
const TEST_NAME: &str = "kill_nine_loses_nothing_flushed";
/// Records rewritten by every generation.
const FIXED: u32 = 64;
const ITERATIONS: usize = 40;
/// No new iteration starts after this long (once `MIN_ITERATIONS` are done),
/// so that a loaded machine still finishes in reasonable time.
const TIME_BUDGET: Duration = Duration::from_secs(25);
const MIN_ITERATIONS: usize = 10;

fn config() -> BookConfig {
    BookConfig::new("n3", 56_753)
}

/// Every address in a /16 of its own, so that the book's tables (which
/// bound what one /16 can hold) keep them all.
fn fixed_addr(i: u32) -> SocketAddr {
    SocketAddr::from(([10, 100 + i as u8, 0, 1], 20333))
}

fn gen_addr(generation: u64) -> SocketAddr {
    let g = generation as u32;
    SocketAddr::from(([11 + (g / 250) as u8, (g % 250) as u8, 0, 1], 20333))
}

fn facts(generation: u64) -> Connected {
    Connected {
        user_agent: format!("/gen:{generation}/"),
        services: generation,
        capabilities: vec![format!("FullNode:{generation}")],
        start_height: generation as u32,
    }
}

/// Whether `r` is exactly what generation `generation` wrote.
fn intact(r: &AddrRecord, generation: u64) -> bool {
    r.user_agent.as_deref() == Some(format!("/gen:{generation}/").as_str())
        && r.services == generation
        && r.capabilities == [format!("FullNode:{generation}")]
        && u64::from(r.start_height) == generation
        && u64::from(r.last_height) == generation
        && r.rtt_ms == Some((generation % 1000) as u32)
        && r.failures == 0
}

fn write(book: &AddressBook, addr: SocketAddr, generation: u64) {
    book.record_attempt(addr);
    book.record_success(addr, &facts(generation));
    book.record_rtt(addr, Duration::from_millis(generation % 1000));
}

/// The writer: never returns.
fn writer(path: &str) -> ! {
    let book = AddressBook::open(path, config()).expect("writer: open");
    let mut generation = (0..FIXED)
        .filter_map(|i| book.get(fixed_addr(i)))
        .map(|r| u64::from(r.last_height))
        .max()
        .unwrap_or(0);
    for i in 0..FIXED {
        book.add(fixed_addr(i), Source::Seed);
    }
    loop {
        generation += 1;
        book.add(gen_addr(generation), Source::Gossip);
        write(&book, gen_addr(generation), generation);
        for i in 0..FIXED {
            write(&book, fixed_addr(i), generation);
        }
        book.flush().expect("writer: flush");
        println!("flushed {generation}");
    }
}

/// Checks the file after a kill; returns the generation found.
fn check(path: &std::path::Path, reported: u64) -> u64 {
    let book = AddressBook::open(path, config())
        .unwrap_or_else(|e| panic!("the book does not open after SIGKILL: {e}"));
    let fixed: Vec<AddrRecord> = (0..FIXED)
        .map(|i| book.get(fixed_addr(i)).expect("a fixed record is missing"))
        .collect();
    let found = u64::from(fixed[0].last_height);
    for r in &fixed {
        assert!(
            intact(r, found),
            "half a flush: {r:?} is not generation {found}"
        );
    }
    assert!(
        found >= reported,
        "flushed {reported} was reported, the file holds {found}"
    );
    for g in 1..=found {
        let r = book
            .get(gen_addr(g))
            .unwrap_or_else(|| panic!("generation {g} lost (file at {found})"));
        assert!(intact(&r, g), "generation {g} damaged: {r:?}");
    }
    assert!(
        book.get(gen_addr(found + 1)).is_none(),
        "generation {} is there without its flush",
        found + 1
    );
    assert_eq!(book.len() as u64, u64::from(FIXED) + found);
    found
}

/// A few milliseconds, different every time.
fn jitter_ms(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % 16
}

#[test]
fn kill_nine_loses_nothing_flushed() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        writer(&path);
    }
    let path = std::env::temp_dir().join(format!(
        "neo-peer-durability-{}-{}.redb",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let exe = std::env::current_exe().unwrap();
    let mut seed = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish() | 1
    };
    let start = Instant::now();
    let mut reported = 0u64;
    let mut iterations = 0;
    let mut unreported_commits = 0;
    let mut flushes = 0u64;
    while iterations < ITERATIONS && (iterations < MIN_ITERATIONS || start.elapsed() < TIME_BUDGET)
    {
        let mut child = Command::new(&exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the writer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(g) = line.strip_prefix("flushed ") {
                    let _ = tx.send(g.parse::<u64>().expect("a generation"));
                }
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(60));
        if first.is_ok() {
            std::thread::sleep(Duration::from_millis(jitter_ms(&mut seed)));
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        reader.join().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .ok();
        let first =
            first.unwrap_or_else(|_| panic!("the writer reported no flush; it said: {stderr}"));
        assert!(first > reported, "generations go up");
        reported = first;
        flushes += 1;
        for g in rx.try_iter() {
            assert!(g > reported, "generations go up");
            reported = g;
            flushes += 1;
        }
        let found = check(&path, reported);
        if found > reported {
            unreported_commits += 1;
        }
        reported = found;
        iterations += 1;
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    std::fs::remove_file(&path).ok();
    eprintln!(
        "{iterations} SIGKILLs in {:.1?}: {flushes} flushes reported, final generation {reported}, \
         {unreported_commits} kills found a commit not yet reported, file {size} bytes",
        start.elapsed()
    );
    assert!(iterations >= MIN_ITERATIONS);
}
