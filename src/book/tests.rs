use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::state::State;
use super::store::{RECORDS, decode_record, encode_record};
use super::tables::BucketKey;
use super::*;

const NOW: u64 = 1_700_000_000_000;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config() -> BookConfig {
    let mut c = BookConfig::new("n3", 56_753);
    c.backoff_base = Duration::from_secs(1);
    c.backoff_max = Duration::from_secs(60);
    c
}

/// A fresh path in the temporary directory, removed when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "neo-peer-book-{}-{}-{n}-{name}.redb",
            std::process::id(),
            now_ms()
        ));
        TempDb(path)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn full_record() -> AddrRecord {
    AddrRecord {
        addr: sa("[2001:db8::7]:20333"),
        source: Source::Manual,
        services: 1,
        capabilities: vec!["TcpServer:20333".into(), "FullNode:1234".into()],
        user_agent: Some("/Neo:3.8.2/".into()),
        start_height: 1234,
        last_height: 1300,
        first_seen_ms: NOW - 5000,
        last_seen_ms: NOW,
        last_attempt_ms: Some(NOW - 100),
        last_success_ms: Some(NOW - 50),
        failures: 3,
        rtt_ms: Some(42),
        banned_until_ms: Some(NOW + 60_000),
        ban_reason: Some("misbehaviour: bad block".into()),
        last_disconnect: Some("idle timeout".into()),
        learned_from: Some("2001:db8::1".parse().unwrap()),
        slot: None,
    }
}

// ---------------------------------------------------------------- seeds

#[test]
fn book_seeds_comments_blank_lines_ipv6_and_default_port() {
    let text = "# seeds\n\n  seed1.neo.org:10333  # first\n10.0.0.7\n[2001:db8::1]:20333\n[::1]\n\
                2001:db8::2\n\t\n1.2.3.4:1 #x\n";
    let seeds = parse_seeds(text).unwrap();
    let got: Vec<_> = seeds
        .iter()
        .map(|e| (e.line, e.host.as_str(), e.port))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "seed1.neo.org", Some(10333)),
            (4, "10.0.0.7", None),
            (5, "2001:db8::1", Some(20333)),
            (6, "::1", None),
            (7, "2001:db8::2", None),
            (9, "1.2.3.4", Some(1)),
        ]
    );
    assert_eq!(seeds[0].ip(), None);
    assert_eq!(seeds[2].ip(), Some("2001:db8::1".parse().unwrap()));
    assert!(parse_seeds("# nothing\n\n").unwrap().is_empty());
}

#[test]
fn book_seeds_garbage_names_its_line() {
    for (text, line) in [
        ("ok.example:1\nnot an address\n", 2),
        ("1.2.3.4:0\n", 1),
        ("\n\n1.2.3.4:70000\n", 3),
        ("host:port\n", 1),
        ("1.2.3.999\n", 1),
        ("::1:20333:x\n", 1),
        ("[::1\n", 1),
        ("[::1]20333\n", 1),
        ("[1.2.3.4]:5\n", 1),
        (":20333\n", 1),
        ("bad_-.\n", 1),
        ("-bad.example\n", 1),
    ] {
        match parse_seeds(text) {
            Err(BookError::SeedLine { line: l, reason }) => {
                assert_eq!(l, line, "{text:?}: {reason}")
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn book_load_seeds_adds_seeds_and_names_the_bad_line() {
    let dir = std::env::temp_dir();
    let good = dir.join(format!(
        "neo-peer-seeds-{}-{}.txt",
        std::process::id(),
        now_ms()
    ));
    std::fs::write(
        &good,
        "10.0.0.1:1\n10.0.0.2\n[::1]:3\n10.0.0.1:1\nlocalhost:4\n",
    )
    .unwrap();
    let book = AddressBook::in_memory(config());
    let n = smol::block_on(book.load_seeds(&good, 20333)).unwrap();
    // localhost resolves to at least one address; the duplicate is not new.
    assert!(n >= 4, "{n}");
    assert_eq!(book.get(sa("10.0.0.2:20333")).unwrap().source, Source::Seed);
    assert!(book.get(sa("[::1]:3")).is_some());
    assert!(book.records().iter().any(|r| r.addr.port() == 4));

    std::fs::write(&good, "10.0.0.1:1\n\n10.0.0.2:x\n").unwrap();
    let err = smol::block_on(book.load_seeds(&good, 20333)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3: ", good.display())),
        "{err}"
    );
    std::fs::remove_file(&good).unwrap();
    let err = smol::block_on(book.load_seeds(&good, 20333)).unwrap_err();
    assert!(matches!(err, BookError::ReadSeeds { .. }), "{err}");
}

// --------------------------------------------------------------- groups

#[test]
fn book_groups() {
    let g = |s: &str| address_group(s.parse().unwrap());
    assert_eq!(g("10.1.2.3"), AddrGroup::V4([10, 1]));
    assert_eq!(g("10.1.255.255"), g("10.1.0.0"));
    assert_ne!(g("10.1.2.3"), g("10.2.2.3"));
    assert_eq!(
        g("2001:db8:1234::1"),
        AddrGroup::V6([0x20, 0x01, 0x0d, 0xb8])
    );
    assert_ne!(g("2001:db8::1"), g("2001:db9::1"));
    assert_eq!(g("::ffff:10.1.2.3"), g("10.1.7.7"));
    assert_eq!(g("2001:db8::1").to_string(), "2001:db8::/32");
    assert_eq!(g("127.0.0.1").to_string(), "127.0.0.0/16");
}

// ------------------------------------------------------------ selection

/// A book with a fixed key and a seeded generator: every draw repeats.
fn seeded(seed: u8) -> AddressBook {
    use rand::SeedableRng;
    let state = State::new(
        config(),
        BucketKey([seed; 32]),
        rand::rngs::StdRng::seed_from_u64(u64::from(seed)),
    );
    AddressBook::from_state(state, None, PathBuf::from("(test)"))
}

fn book_with(addrs: &[&str]) -> AddressBook {
    let book = seeded(1);
    for a in addrs {
        assert!(book.state().add(sa(a), Source::Gossip, NOW));
    }
    book
}

/// `addr` added from `source` and reached at `at`.
fn reached(book: &AddressBook, addr: SocketAddr, at: u64) {
    let mut st = book.state();
    st.add(addr, Source::Seed, at);
    st.attempt(addr, at);
    st.success(addr, &Connected::default(), at);
}

#[test]
fn book_select_excludes_banned_and_connected() {
    let book = book_with(&["10.0.0.1:1", "10.1.0.1:1", "10.2.0.1:1"]);
    book.state()
        .ban(sa("10.0.0.1:1"), Duration::from_secs(60), "test", NOW);
    let picked = book.state().select_for_dial(8, &[sa("10.1.0.1:1")], NOW);
    assert_eq!(picked, vec![sa("10.2.0.1:1")]);
    // The ban ends.
    let mut picked = book.state().select_for_dial(8, &[], NOW + 60_000);
    picked.sort();
    assert_eq!(picked.len(), 3);
    assert_eq!(book.state().select_for_dial(0, &[], NOW), vec![]);
}

#[test]
fn book_select_respects_backoff() {
    let book = book_with(&["10.0.0.1:1"]);
    let a = sa("10.0.0.1:1");
    let pick = |t| book.state().select_for_dial(1, &[], t);
    // A dial under way keeps the address out for the base wait.
    book.state().attempt(a, NOW);
    assert!(pick(NOW + 999).is_empty());
    assert_eq!(pick(NOW + 1000), vec![a]);
    // Three failures in a row: 1 s * 2^2 = 4 s.
    for _ in 0..3 {
        book.state().failure(a, NOW);
    }
    assert_eq!(book.get(a).unwrap().failures, 3);
    assert!(pick(NOW + 3999).is_empty());
    assert_eq!(pick(NOW + 4000), vec![a]);
    // Many failures: capped at 60 s.
    for _ in 0..40 {
        book.state().failure(a, NOW);
    }
    assert!(pick(NOW + 59_999).is_empty());
    assert_eq!(pick(NOW + 60_000), vec![a]);
    // A success resets the count.
    book.state().success(a, &Connected::default(), NOW);
    assert_eq!(book.get(a).unwrap().failures, 0);
    assert_eq!(pick(NOW + 1000), vec![a]);
}

#[test]
fn book_quick_restart_skips_no_good_peer() {
    let store = MemoryStore::new();
    let (good, flaky) = (sa("10.0.0.1:1"), sa("10.1.0.1:1"));
    {
        let book = AddressBook::with_store(store.clone(), config()).unwrap();
        book.add(good, Source::Seed);
        book.add(flaky, Source::Seed);
        let now = now_ms();
        let mut st = book.state();
        st.attempt(good, now);
        st.success(good, &Connected::default(), now);
        for _ in 0..5 {
            st.failure(flaky, now);
        }
        // In this run both wait: a dial just ended, and five failures.
        assert!(st.select_for_dial(8, &[], now).is_empty());
        drop(st);
        book.flush().unwrap();
    }
    // The restart comes a moment later: both are dialed at once, the
    // failures only weigh the draw.
    let book = AddressBook::with_store(store, config()).unwrap();
    let mut picked = book.select_for_dial(8, &[]);
    picked.sort();
    assert_eq!(picked, vec![good, flaky]);
    assert_eq!(book.get(flaky).unwrap().failures, 5);
}

#[test]
fn book_select_spreads_over_groups() {
    // Five in 10.0/16, one each in 10.1/16 and 10.2/16.
    let book = book_with(&[
        "10.0.0.1:1",
        "10.0.0.2:1",
        "10.0.0.3:1",
        "10.0.1.4:1",
        "10.0.2.5:1",
        "10.1.0.1:1",
        "10.2.0.1:1",
    ]);
    let groups = |v: &[SocketAddr]| {
        let mut g: Vec<_> = v.iter().map(|a| address_group(a.ip())).collect();
        g.sort();
        g
    };
    for _ in 0..20 {
        let picked = book.state().select_for_dial(3, &[], NOW);
        assert_eq!(
            groups(&picked),
            vec![
                AddrGroup::V4([10, 0]),
                AddrGroup::V4([10, 1]),
                AddrGroup::V4([10, 2])
            ]
        );
    }
    // A connected peer in 10.1/16 counts: 10.0 and 10.2 come first.
    let picked = book.state().select_for_dial(2, &[sa("10.1.9.9:1")], NOW);
    assert_eq!(
        groups(&picked),
        vec![AddrGroup::V4([10, 0]), AddrGroup::V4([10, 2])]
    );
    // Four slots: a second one from 10.0/16 only after every group has one.
    let picked = book.state().select_for_dial(4, &[], NOW);
    assert_eq!(
        groups(&picked),
        vec![
            AddrGroup::V4([10, 0]),
            AddrGroup::V4([10, 0]),
            AddrGroup::V4([10, 1]),
            AddrGroup::V4([10, 2])
        ]
    );
}

#[test]
fn book_select_one_group_still_fills_the_slots() {
    let book = book_with(&[
        "127.0.0.1:20001",
        "127.0.0.1:20002",
        "127.0.0.1:20003",
        "127.0.0.1:20004",
    ]);
    let picked = book
        .state()
        .select_for_dial(3, &[sa("127.0.0.1:20004")], NOW);
    assert_eq!(picked.len(), 3);
    assert!(!picked.contains(&sa("127.0.0.1:20004")));
    assert_eq!(book.state().select_for_dial(10, &[], NOW).len(), 4);
}

/// How often each address comes first in `draws` single picks.
fn first_picks(book: &AddressBook, draws: usize) -> HashMap<SocketAddr, usize> {
    let mut seen = HashMap::new();
    for _ in 0..draws {
        for a in book.state().select_for_dial(1, &[], NOW) {
            *seen.entry(a).or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn book_select_tried_or_new_with_even_odds() {
    let book = seeded(2);
    // One reached node that failed once since, and 30 gossiped addresses
    // never tried, each in its own group.
    let reached_once = sa("10.0.0.1:1");
    reached(&book, reached_once, NOW - 60_000);
    book.state().failure(reached_once, NOW - 50_000);
    let from = Some(sa("10.250.0.1:1"));
    let gossip: Vec<GossipAddr> = (1..=30)
        .map(|i| GossipAddr {
            addr: sa(&format!("10.{i}.0.1:1")),
            timestamp: (NOW / 1000) as u32,
            services: 0,
        })
        .collect();
    assert_eq!(book.state().learn(from, &gossip, NOW), 30);
    let seen = first_picks(&book, 4000);
    // Tried holds one address, new thirty: the tried one still comes first
    // about half the time (its failure weighs it 0.66 only within "tried").
    let share = seen[&reached_once] as f64 / 4000.0;
    assert!((0.45..0.55).contains(&share), "{share}");
}

#[test]
fn book_select_weighs_a_crowded_group_as_one() {
    let book = seeded(3);
    // Reached: 40 addresses of 10.0/16, one each of ten other /16s.
    for i in 0..40 {
        reached(&book, sa(&format!("10.0.{i}.1:1")), NOW - 1000);
    }
    for g in 1..=10 {
        reached(&book, sa(&format!("10.{g}.0.1:1")), NOW - 1000);
    }
    assert_eq!(book.counts().tried, 50);
    let seen = first_picks(&book, 4400);
    let crowd: usize = seen
        .iter()
        .filter(|(a, _)| address_group(a.ip()) == AddrGroup::V4([10, 0]))
        .map(|(_, n)| n)
        .sum();
    // One group of eleven: about 400 of 4400, where a draw by address
    // would give it 40 of 50 (about 3520).
    assert!((300..500).contains(&crowd), "{crowd}");
}

// --------------------------------------------------------------- tables

/// `n` gossiped addresses over `n` distinct /16s (20.x.y.1 and up).
fn flood(n: usize, stamp: u64) -> Vec<GossipAddr> {
    (0..n)
        .map(|i| GossipAddr {
            addr: SocketAddr::from(([20 + (i / 256) as u8, i as u8, 0, 1], 20333)),
            timestamp: (stamp / 1000) as u32,
            services: 0,
        })
        .collect()
}

fn new_buckets_of(book: &AddressBook, addrs: impl Fn(&AddrRecord) -> bool) -> HashSet<u16> {
    book.records()
        .iter()
        .filter(|r| addrs(r))
        .filter_map(|r| r.slot.filter(|s| s.table == Table::New).map(|s| s.bucket))
        .collect()
}

#[test]
fn book_one_source_group_fills_a_bounded_share_of_new() {
    let book = seeded(4);
    // Honest addresses first, each told by a source of its own /16.
    for i in 0..50u8 {
        let g = GossipAddr {
            addr: sa(&format!("30.{i}.0.1:20333")),
            timestamp: (NOW / 1000) as u32,
            services: 0,
        };
        let from = sa(&format!("40.{i}.0.1:20333"));
        assert_eq!(book.state().learn(Some(from), &[g], NOW), 1);
    }
    // One source sends 2000 addresses over 2000 groups; then 64 more
    // sources of the same /16 send 300 each.
    let attack = |r: &AddrRecord| matches!(r.addr.ip(), IpAddr::V4(v4) if v4.octets()[0] < 30);
    let cap = NEW_BUCKETS_PER_SOURCE_GROUP * BUCKET_SIZE;
    let kept = book
        .state()
        .learn(Some(sa("66.6.0.1:1")), &flood(2000, NOW), NOW);
    assert!(kept <= cap, "{kept}");
    for i in 2..66u8 {
        let from = sa(&format!("66.6.{i}.1:1"));
        assert_eq!(book.state().learn(Some(from), &flood(300, NOW), NOW), 0);
    }
    // Its addresses sit in at most 8 buckets (fewer when two of its lanes
    // hash to one bucket), each of them full.
    let buckets = new_buckets_of(&book, attack);
    assert!(buckets.len() <= NEW_BUCKETS_PER_SOURCE_GROUP);
    let in_them = book
        .records()
        .iter()
        .filter(|r| {
            r.slot
                .is_some_and(|s| s.table == Table::New && buckets.contains(&s.bucket))
        })
        .count();
    assert_eq!(in_them, buckets.len() * BUCKET_SIZE);
    assert_eq!(book.counts().new, 50 + kept);
    // Every honest address is still there, and in the draw the flood's
    // addresses weigh as its few buckets.
    assert_eq!(book.records().iter().filter(|r| !attack(r)).count(), 50);
    let honest_buckets = new_buckets_of(&book, |r| !attack(r)).len();
    assert!(honest_buckets >= 40, "{honest_buckets}");
}

#[test]
fn book_one_group_fills_a_bounded_share_of_tried() {
    let book = seeded(5);
    let cap = TRIED_BUCKETS_PER_GROUP * BUCKET_SIZE;
    // 400 reachable addresses in one /16, each told by a distinct source.
    for i in 0..400u32 {
        let a = SocketAddr::from(([50, 5, (i / 250) as u8, (i % 250) as u8 + 1], 20333));
        let from = SocketAddr::from(([61 + (i % 100) as u8, (i / 100) as u8, 0, 1], 1));
        let g = GossipAddr {
            addr: a,
            timestamp: (NOW / 1000) as u32,
            services: 0,
        };
        book.state().learn(Some(from), &[g], NOW);
        book.state().success(a, &Connected::default(), NOW);
    }
    // At most 4 buckets (fewer when two lanes hash to one), each full.
    let counts = book.counts();
    let buckets: HashSet<u16> = book
        .records()
        .iter()
        .filter_map(|r| r.slot.filter(|s| s.table == Table::Tried))
        .map(|s| s.bucket)
        .collect();
    assert!(buckets.len() <= TRIED_BUCKETS_PER_GROUP);
    assert_eq!(counts.tried, buckets.len() * BUCKET_SIZE);
    assert!(counts.tried <= cap);
    // The rest wait in "new"; at most ten collisions are remembered.
    assert_eq!(counts.tried + counts.new, 400);
    assert_eq!(book.state().collisions.len(), MAX_TRIED_COLLISIONS);
}

/// `n + 1` addresses of 10.7/16 whose "tried" slots start in one bucket.
fn same_tried_bucket(book: &AddressBook, n: usize) -> Vec<SocketAddr> {
    let st = book.state();
    let mut by_bucket: HashMap<u16, Vec<SocketAddr>> = HashMap::new();
    for port in 1..u16::MAX {
        let a = SocketAddr::from(([10, 7, 0, 1], port));
        let v = by_bucket.entry(st.key.tried_bucket(a)).or_default();
        v.push(a);
        if v.len() > n {
            return v.clone();
        }
    }
    unreachable!("65534 ports over 4 buckets")
}

#[test]
fn book_test_before_evict() {
    let book = seeded(6);
    let addrs = same_tried_bucket(&book, BUCKET_SIZE);
    let (fill, newcomer) = addrs.split_at(BUCKET_SIZE);
    let newcomer = newcomer[0];
    let t0 = NOW - 10 * 3600 * 1000;
    for &a in fill {
        reached(&book, a, t0);
        assert_eq!(book.get(a).unwrap().table(), Some(Table::Tried));
    }
    // The bucket is full: the newcomer stays in "new", and a feeler is
    // asked to test the occupant of its slot.
    reached(&book, newcomer, NOW);
    assert_eq!(book.get(newcomer).unwrap().table(), Some(Table::New));
    let rival = book.state().tried_rival(newcomer).unwrap();
    assert!(fill.contains(&rival));
    assert_eq!(book.state().select_feeler(&[], NOW + 1000), Some(rival));

    // The occupant answers the test: it keeps its slot, the collision ends.
    book.state().attempt(rival, NOW + 1000);
    book.state()
        .success(rival, &Connected::default(), NOW + 1100);
    book.state().resolve_collisions(NOW + 2000);
    assert!(book.state().collisions.is_empty());
    assert_eq!(book.get(newcomer).unwrap().table(), Some(Table::New));
    assert_eq!(book.get(rival).unwrap().table(), Some(Table::Tried));

    // Later the newcomer is reached again; this time the occupant was last
    // reached long ago and does not answer its test.
    let t1 = NOW + 5 * 3600 * 1000;
    book.state().success(newcomer, &Connected::default(), t1);
    assert_eq!(book.state().collisions, vec![newcomer]);
    assert_eq!(book.state().select_feeler(&[], t1), Some(rival));
    book.state().attempt(rival, t1);
    book.state().failure(rival, t1 + 5000);
    // Within a minute of the failed dial it still counts as under way.
    book.state().resolve_collisions(t1 + 30_000);
    assert_eq!(book.get(newcomer).unwrap().table(), Some(Table::New));
    book.state().resolve_collisions(t1 + 66_000);
    let slot = book.get(newcomer).unwrap().slot.unwrap();
    assert_eq!(slot.table, Table::Tried);
    assert_eq!(
        slot.position,
        book.state().key.start(Table::Tried, slot.bucket, newcomer)
    );
    assert_eq!(book.get(rival).unwrap().table(), Some(Table::New));
    assert!(book.state().collisions.is_empty());
}

#[test]
fn book_untested_collision_resolves_after_the_window() {
    let book = seeded(7);
    let addrs = same_tried_bucket(&book, BUCKET_SIZE);
    let (fill, newcomer) = addrs.split_at(BUCKET_SIZE);
    let t0 = NOW - 10 * 3600 * 1000;
    for &a in fill {
        reached(&book, a, t0);
    }
    reached(&book, newcomer[0], NOW);
    let window = TEST_WINDOW.as_millis() as u64;
    book.state().resolve_collisions(NOW + window);
    assert_eq!(book.get(newcomer[0]).unwrap().table(), Some(Table::New));
    book.state().resolve_collisions(NOW + window + 1);
    assert_eq!(book.get(newcomer[0]).unwrap().table(), Some(Table::Tried));
}

#[test]
fn book_feeler_picks_new_addresses_in_fresh_groups() {
    let book = seeded(8);
    reached(&book, sa("10.0.0.1:1"), NOW);
    assert_eq!(book.state().select_feeler(&[], NOW), None);
    book.state().add(sa("10.1.0.1:1"), Source::Gossip, NOW);
    book.state().add(sa("10.2.0.1:1"), Source::Gossip, NOW);
    // Never a group we are connected to.
    for _ in 0..20 {
        assert_eq!(
            book.state().select_feeler(&[sa("10.2.9.9:1")], NOW),
            Some(sa("10.1.0.1:1"))
        );
    }
    // A feeler that answers moves its address to "tried".
    book.state()
        .success(sa("10.1.0.1:1"), &Connected::default(), NOW);
    assert_eq!(
        book.get(sa("10.1.0.1:1")).unwrap().table(),
        Some(Table::Tried)
    );
}

#[test]
fn book_full_new_bucket_takes_newcomers_only_for_worthless_entries() {
    let book = seeded(9);
    // One source, one address group: every address lands in one bucket.
    let from = Some(sa("10.9.0.1:1"));
    let g = |i: u16| GossipAddr {
        addr: SocketAddr::from(([10, 8, 0, 1], i)),
        timestamp: (NOW / 1000) as u32,
        services: 0,
    };
    let all: Vec<GossipAddr> = (1..=20).map(g).collect();
    assert_eq!(book.state().learn(from, &all, NOW), BUCKET_SIZE);
    assert_eq!(book.state().learn(from, &[g(100)], NOW), 0);
    // Three failed dials of a never reached address make it worthless
    // (once its last dial is a minute old).
    let victim = book.records()[0].addr;
    for _ in 0..3 {
        book.state().failure(victim, NOW);
    }
    assert_eq!(book.state().learn(from, &[g(100)], NOW + 30_000), 0);
    assert_eq!(book.state().learn(from, &[g(100)], NOW + 61_000), 1);
    assert!(book.get(victim).is_none());
    assert_eq!(book.counts().new, BUCKET_SIZE);
}

#[test]
fn book_kept_records_are_bounded() {
    let book = seeded(10);
    let manual = sa("10.0.0.1:1");
    book.state().add(manual, Source::Manual, NOW);
    assert_eq!(book.get(manual).unwrap().slot, None);
    // Bans of unknown addresses are kept aside, the longest ones kept.
    for i in 0..(MAX_KEPT + 10) as u32 {
        let a = SocketAddr::from(([11, (i >> 8) as u8, i as u8, 1], 1));
        let ban = Duration::from_secs(60 + u64::from(i));
        book.state().ban(a, ban, "test", NOW);
    }
    assert_eq!(book.counts().kept, MAX_KEPT);
    assert!(book.get(manual).is_some());
    assert!(book.get(SocketAddr::from(([11, 0, 0, 1], 1))).is_none());
    assert!(book.get(SocketAddr::from(([11, 4, 9, 1], 1))).is_some());
}

// ------------------------------------------------------------ getaddr

#[test]
fn book_for_getaddr_caps_and_filters() {
    let book = seeded(11);
    let old = NOW - GETADDR_MAX_AGE.as_millis() as u64 - 1;
    {
        let mut st = book.state();
        for i in 0..50 {
            st.add(sa(&format!("10.{i}.0.1:1")), Source::Gossip, NOW);
        }
        st.add(sa("10.200.0.1:1"), Source::Gossip, old); // stale
        st.add(sa("10.201.0.1:1"), Source::Gossip, NOW);
        st.failure(sa("10.201.0.1:1"), NOW); // failing
        st.add(sa("10.202.0.1:1"), Source::Gossip, NOW);
        st.ban(sa("10.202.0.1:1"), Duration::from_secs(60), "x", NOW); // banned
        st.add(sa("10.203.0.1:1"), Source::Inbound, NOW); // never reached
        st.add(sa("10.204.0.1:1"), Source::Inbound, NOW);
        st.success(sa("10.204.0.1:1"), &Connected::default(), NOW);
    }
    let all = book.state().for_getaddr(1000, NOW);
    assert_eq!(all.len(), 51);
    for bad in [
        "10.200.0.1:1",
        "10.201.0.1:1",
        "10.202.0.1:1",
        "10.203.0.1:1",
    ] {
        assert!(!all.iter().any(|g| g.addr == sa(bad)), "{bad}");
    }
    // What we reached comes first.
    assert_eq!(all[0].addr, sa("10.204.0.1:1"));
    assert!(all.iter().all(|g| u64::from(g.timestamp) == NOW / 1000));
    let some = book.state().for_getaddr(10, NOW);
    assert_eq!(some.len(), 10);
    // Shuffled: twenty draws of 10 out of 51 are not all the same.
    let draws: HashSet<Vec<SocketAddr>> = (0..20)
        .map(|_| {
            book.state()
                .for_getaddr(10, NOW)
                .iter()
                .map(|g| g.addr)
                .collect()
        })
        .collect();
    assert!(draws.len() > 1);
}

// -------------------------------------------------------------- learn

#[test]
fn book_learn_ignores_junk_and_keeps_better_info() {
    let book = seeded(12);
    let g = |a: &str, ts: u64, services: u64| GossipAddr {
        addr: sa(a),
        timestamp: (ts / 1000) as u32,
        services,
    };
    let junk = [
        g("0.0.0.0:20333", NOW, 0),
        g("[::]:20333", NOW, 0),
        g("10.0.0.1:0", NOW, 0),
        g("224.0.0.1:20333", NOW, 0),
        g("255.255.255.255:20333", NOW, 0),
        g("[ff02::1]:20333", NOW, 0),
        g("[::ffff:0.0.0.0]:20333", NOW, 0),
    ];
    assert_eq!(book.state().learn(None, &junk, NOW), 0);
    assert!(book.is_empty());
    assert!(!book.add(sa("0.0.0.0:1"), Source::Manual));

    // Seen by us: gossip changes neither source, services nor last_seen.
    let seed = sa("10.0.0.1:20333");
    {
        let mut st = book.state();
        st.add(seed, Source::Seed, NOW - 10_000);
        let facts = Connected {
            user_agent: "/x/".into(),
            services: 1,
            ..Default::default()
        };
        st.success(seed, &facts, NOW - 10_000);
    }
    let before = book.get(seed).unwrap();
    let from = Some(sa("10.9.9.9:20333"));
    let penalty = GOSSIP_TIME_PENALTY.as_millis() as u64;
    let n = book.state().learn(
        from,
        &[
            g("10.0.0.1:20333", NOW, 5),
            g("10.0.0.2:20333", NOW - 1000, 7),
            g("10.0.0.3:20333", NOW + 3_600_000, 0),
        ],
        NOW,
    );
    assert_eq!(n, 2);
    assert_eq!(book.get(seed).unwrap(), before);
    let r = book.get(sa("10.0.0.2:20333")).unwrap();
    assert_eq!(
        (r.source, r.services, r.last_seen_ms, r.learned_from),
        (
            Source::Gossip,
            7,
            NOW - 1000 - penalty,
            from.map(|a| a.ip())
        )
    );
    assert_eq!(r.table(), Some(Table::New));
    // A claim from the future is taken as now, less the penalty: never
    // fresher than the node we reached ten seconds ago.
    let r3 = book.get(sa("10.0.0.3:20333")).unwrap();
    assert_eq!(r3.last_seen_ms, NOW - penalty);
    assert!(r3.last_seen_ms < before.last_seen_ms);
    // Gossip again: fills services, moves last_seen forward, never back.
    book.state().learn(
        from,
        &[
            g("10.0.0.3:20333", NOW - 5000, 9),
            g("10.0.0.2:20333", NOW, 0),
        ],
        NOW + 1,
    );
    let r3 = book.get(sa("10.0.0.3:20333")).unwrap();
    assert_eq!((r3.services, r3.last_seen_ms), (9, NOW - penalty));
    let r2 = book.get(sa("10.0.0.2:20333")).unwrap();
    assert_eq!((r2.services, r2.last_seen_ms), (7, NOW - penalty));
    // A node speaking of itself is believed.
    let me = sa("10.5.0.1:20333");
    book.state()
        .learn(Some(me), &[g("10.5.0.1:20333", NOW, 0)], NOW);
    assert_eq!(book.get(me).unwrap().last_seen_ms, NOW);
    // A better source wins, a worse one does not; manual is kept aside.
    assert!(!book.add(sa("10.0.0.2:20333"), Source::Manual));
    assert!(!book.add(sa("10.0.0.2:20333"), Source::Gossip));
    let r2 = book.get(sa("10.0.0.2:20333")).unwrap();
    assert_eq!((r2.source, r2.slot), (Source::Manual, None));
}

#[test]
fn book_inbound_nodes_are_not_reached() {
    let book = seeded(13);
    let a = sa("10.3.0.1:20333");
    let facts = Connected {
        user_agent: "/in/".into(),
        start_height: 9,
        ..Default::default()
    };
    book.record_inbound(a, &facts);
    let r = book.get(a).unwrap();
    assert_eq!((r.source, r.table()), (Source::Inbound, Some(Table::New)));
    assert_eq!((r.user_agent.as_deref(), r.start_height), (Some("/in/"), 9));
    assert_eq!(r.last_success_ms, None);
}

// ------------------------------------------------------------- anchors

#[test]
fn book_anchors_survive_a_restart_once() {
    let store = MemoryStore::new();
    let (a, b, c, banned) = (
        sa("10.0.0.1:1"),
        sa("10.1.0.1:1"),
        sa("10.2.0.1:1"),
        sa("10.3.0.1:1"),
    );
    {
        let book = AddressBook::with_store(store.clone(), config()).unwrap();
        for x in [a, b, c, banned] {
            book.add(x, Source::Seed);
        }
        book.ban(banned, Duration::from_secs(60), "test");
        // Unknown and banned addresses are no anchors; the order is kept.
        book.set_anchors(&[c, sa("10.9.0.1:1"), a, banned, c]);
        assert_eq!(book.anchors(), vec![c, a]);
        book.flush().unwrap();
    }
    let book = AddressBook::with_store(store.clone(), config()).unwrap();
    assert_eq!(book.take_anchors(), vec![c, a]);
    assert!(book.take_anchors().is_empty());
    book.flush().unwrap();
    drop(book);
    // Taken is taken: a crash before the next shutdown leaves none.
    let book = AddressBook::with_store(store, config()).unwrap();
    assert!(book.anchors().is_empty());
    // At most MAX_ANCHORS.
    let many: Vec<SocketAddr> = (0..40)
        .map(|i| SocketAddr::from(([12, i, 0, 1], 1)))
        .collect();
    for &x in &many {
        book.add(x, Source::Seed);
    }
    book.set_anchors(&many);
    assert_eq!(book.anchors(), many[..MAX_ANCHORS].to_vec());
}

// ----------------------------------------------------------- persistence

#[test]
fn book_file_stays_small_and_is_released_by_close() {
    let db = TempDb::new("size");
    let book = AddressBook::open(&db.0, config()).unwrap();
    book.add(sa("10.0.0.1:1"), Source::Seed);
    book.add(sa("10.1.0.1:1"), Source::Seed);
    assert_eq!(book.flush().unwrap(), 2);
    // The size is redb's, not the records': about 1 MiB while open, and
    // 2.8 MiB once closed, when redb writes its page allocator's state
    // (the older redb format: 1.5 and 3.5 MiB).
    let size = || std::fs::metadata(&db.0).unwrap().len();
    assert!(size() <= 1 << 20, "{} bytes for two records", size());
    assert_eq!(book.close().unwrap(), 0);
    assert!(size() <= 3 << 20, "{} bytes for two records", size());
    // Released: the file opens again while the first book lives on, in
    // memory only.
    let again = AddressBook::open(&db.0, config()).unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(book.len(), 2);
    book.add(sa("10.2.0.1:1"), Source::Seed);
    assert!(matches!(book.flush(), Err(BookError::Closed { .. })));
    assert_eq!(book.close().unwrap(), 0);
}

#[test]
fn book_ban_persists_across_reopen() {
    let db = TempDb::new("ban");
    let a = sa("10.0.0.1:20333");
    {
        let book = AddressBook::open(&db.0, config()).unwrap();
        book.ban(a, Duration::from_secs(3600), "sent garbage");
        assert!(book.is_banned(a));
        assert_eq!(book.flush().unwrap(), 1);
    }
    let book = AddressBook::open(&db.0, config()).unwrap();
    assert!(book.is_banned(a));
    let r = book.get(a).unwrap();
    assert_eq!(r.ban_reason.as_deref(), Some("sent garbage"));
    assert!(r.banned_until_ms.unwrap() > now_ms() + 3_500_000);
    assert!(!book.state().is_banned(a, r.banned_until_ms.unwrap()));
    assert!(book.is_ip_banned(a.ip()));
    assert!(!book.is_banned(sa("10.0.0.1:20334")));
    assert!(!book.is_ip_banned("10.0.0.2".parse().unwrap()));
    // The tool's way in: protocol and network from the file.
    drop(book);
    let book = AddressBook::open_existing(&db.0).unwrap();
    assert_eq!(book.config().protocol, "n3");
    assert_eq!(book.config().network, 56_753);
    assert!(book.is_banned(a));
}

#[test]
fn book_open_for_another_protocol_or_network_is_an_error() {
    let db = TempDb::new("mismatch");
    drop(AddressBook::open(&db.0, config()).unwrap());
    let err = AddressBook::open(&db.0, BookConfig::new("legacy", 56_753)).unwrap_err();
    assert!(matches!(err, BookError::Mismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&db.0.display().to_string()), "{msg}");
    assert!(msg.contains("legacy") && msg.contains("n3"), "{msg}");
    let err = AddressBook::open(&db.0, BookConfig::new("n3", 1)).unwrap_err();
    assert!(matches!(
        err,
        BookError::Mismatch {
            network: 1,
            found_network: 56_753,
            ..
        }
    ));
    // The same with a memory store.
    let store = MemoryStore::new();
    drop(AddressBook::with_store(store.clone(), config()).unwrap());
    assert!(AddressBook::with_store(store.clone(), BookConfig::new("legacy", 56_753)).is_err());
    assert!(AddressBook::with_store(store, config()).is_ok());
    // A file that is not there is not created by open_existing.
    let missing = TempDb::new("missing");
    let err = AddressBook::open_existing(&missing.0).unwrap_err();
    assert!(matches!(err, BookError::NotFound { .. }), "{err}");
    assert!(!missing.0.exists());
}

#[test]
fn book_corrupt_value_is_an_error_not_a_panic() {
    let db = TempDb::new("corrupt");
    {
        let book = AddressBook::open(&db.0, config()).unwrap();
        book.add(sa("10.0.0.1:1"), Source::Seed);
        book.flush().unwrap();
    }
    {
        let db = redb::Database::create(&db.0).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(RECORDS)
            .unwrap()
            .insert("10.0.0.2:1", &[1u8, 0, 0][..])
            .unwrap();
        txn.commit().unwrap();
    }
    let err = AddressBook::open(&db.0, config()).unwrap_err();
    match &err {
        BookError::Corrupt { key, what, .. } => {
            assert_eq!((key.as_str(), *what), ("10.0.0.2:1", "record"))
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("10.0.0.2:1"), "{err}");
    // A bad key is named too.
    assert!(decode_record("nonsense", &[1]).is_err());
}

#[test]
fn book_record_layout_roundtrips_and_refuses_every_truncation() {
    let mut placed = full_record();
    placed.slot = Some(Slot {
        table: Table::Tried,
        bucket: 63,
        position: 15,
    });
    let mut v4 = AddrRecord::new(sa("1.2.3.4:5"), Source::Gossip, NOW);
    v4.learned_from = Some("10.0.0.9".parse().unwrap());
    v4.slot = Some(Slot {
        table: Table::New,
        bucket: 127,
        position: 0,
    });
    for r in [full_record(), placed, v4] {
        let mut buf = Vec::new();
        encode_record(&r, &mut buf);
        let key = r.addr.to_string();
        assert_eq!(decode_record(&key, &buf).unwrap(), r);
        for cut in 0..buf.len() {
            assert!(decode_record(&key, &buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = buf.clone();
        long.push(0);
        assert!(decode_record(&key, &long).is_err());
        let mut bad = buf.clone();
        bad[0] = 3;
        assert!(decode_record(&key, &bad).unwrap_err().contains("layout"));
    }
    // A slot out of range, an unknown table or address kind.
    let mut buf = Vec::new();
    let mut r = AddrRecord::new(sa("1.2.3.4:5"), Source::Gossip, NOW);
    r.slot = Some(Slot {
        table: Table::Tried,
        bucket: TRIED_BUCKETS as u16,
        position: 0,
    });
    encode_record(&r, &mut buf);
    assert!(
        decode_record("1.2.3.4:5", &buf)
            .unwrap_err()
            .contains("range")
    );
    let n = buf.len();
    buf[n - 5] = 7;
    assert!(
        decode_record("1.2.3.4:5", &buf)
            .unwrap_err()
            .contains("table")
    );
    buf[n - 6] = 5;
    assert!(
        decode_record("1.2.3.4:5", &buf)
            .unwrap_err()
            .contains("kind")
    );
    // The bare record, and its form from before the tables (layout 1: no
    // source address, no slot).
    let bare = AddrRecord::new(sa("1.2.3.4:5"), Source::Gossip, NOW);
    buf.clear();
    encode_record(&bare, &mut buf);
    assert_eq!(decode_record("1.2.3.4:5", &buf).unwrap(), bare);
    assert_eq!(&buf[buf.len() - 2..], &[0, 0]);
    let mut v1 = buf[..buf.len() - 2].to_vec();
    v1[0] = 1;
    assert_eq!(decode_record("1.2.3.4:5", &v1).unwrap(), bare);
}

/// One body for every store: what is flushed comes back after a reopen,
/// evictions are removed, unflushed changes are not there.
fn store_contract<S: PeerStore>(mut open: impl FnMut() -> S) {
    let full = full_record();
    let a = sa("10.0.0.1:20333");
    {
        let book = AddressBook::with_store(open(), config()).unwrap();
        assert!(book.is_empty());
        book.add(a, Source::Seed);
        book.state().records.insert(full.addr, full.clone());
        book.state().touch(full.addr);
        book.record_attempt(a);
        book.record_success(
            a,
            &Connected {
                user_agent: "/NEO-GO:0.120.0/".into(),
                services: 0,
                capabilities: vec!["TcpServer:20333".into()],
                start_height: 77,
            },
        );
        book.record_height(a, 80);
        book.record_rtt(a, Duration::from_millis(12));
        book.record_disconnect(a, "stall: getheaders");
        assert_eq!(book.dirty(), 2);
        assert_eq!(book.flush().unwrap(), 2);
        assert_eq!(book.flush().unwrap(), 0);
        // Not flushed: lost at the "restart".
        book.add(sa("10.0.0.9:1"), Source::Gossip);
    }
    let book = AddressBook::with_store(open(), config()).unwrap();
    assert_eq!(book.len(), 2);
    assert_eq!(book.get(full.addr).unwrap(), full);
    let r = book.get(a).unwrap();
    assert_eq!(r.source, Source::Seed);
    assert_eq!(r.user_agent.as_deref(), Some("/NEO-GO:0.120.0/"));
    assert_eq!(r.capabilities, vec!["TcpServer:20333".to_string()]);
    assert_eq!(
        (r.start_height, r.last_height, r.rtt_ms),
        (77, 80, Some(12))
    );
    assert_eq!(r.last_disconnect.as_deref(), Some("stall: getheaders"));
    assert!(r.last_success_ms.is_some() && r.last_attempt_ms.is_some());
    assert_eq!(book.records().iter().map(|r| r.addr).collect::<Vec<_>>(), {
        let mut v = vec![a, full.addr];
        v.sort();
        v
    });
    // A record forgotten is removed from the store.
    book.state().forget(a);
    assert_eq!(book.len(), 1);
    assert_eq!(book.flush().unwrap(), 1);
    drop(book);
    let book = AddressBook::with_store(open(), config()).unwrap();
    assert_eq!(book.records(), vec![full]);
}

#[test]
fn book_memory_and_redb_stores_behave_the_same() {
    let memory = MemoryStore::new();
    store_contract(|| memory.clone());
    let db = TempDb::new("contract");
    store_contract(|| RedbStore::open(&db.0).unwrap());
}

#[test]
fn book_flush_error_keeps_records_dirty() {
    struct Failing(bool);
    impl PeerStore for Failing {
        fn meta(&mut self) -> Result<Option<StoreMeta>, BookError> {
            Ok(None)
        }
        fn set_meta(&mut self, _: &StoreMeta) -> Result<(), BookError> {
            Ok(())
        }
        fn load(&mut self) -> Result<Vec<AddrRecord>, BookError> {
            Ok(Vec::new())
        }
        fn anchors(&mut self) -> Result<Vec<SocketAddr>, BookError> {
            Ok(Vec::new())
        }
        fn save(&mut self, _: &Batch<'_>) -> Result<(), BookError> {
            if std::mem::replace(&mut self.0, false) {
                Err(BookError::NoMeta {
                    path: self.location(),
                })
            } else {
                Ok(())
            }
        }
    }
    let book = AddressBook::with_store(Failing(true), config()).unwrap();
    book.add(sa("10.0.0.1:1"), Source::Seed);
    assert!(book.flush().is_err());
    assert_eq!(book.dirty(), 1);
    assert_eq!(smol::block_on(book.flush_async()).unwrap(), 1);
    assert_eq!(book.dirty(), 0);
}

#[test]
fn book_source_names_roundtrip() {
    for s in Source::ALL {
        assert_eq!(s.to_string().parse::<Source>().unwrap(), s);
        assert_eq!(Source::from_code(s.code()), Some(s));
    }
    assert!("Seed".parse::<Source>().is_err());
    assert_eq!(Source::from_code(9), None);
}

#[test]
fn book_is_send_sync_and_clones_share_one_book() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<AddressBook>();
    let book = AddressBook::in_memory(config());
    let other = book.clone();
    std::thread::spawn(move || other.add(sa("10.0.0.1:1"), Source::Manual))
        .join()
        .unwrap();
    assert_eq!(book.len(), 1);
}

#[test]
fn book_connected_from_either_version() {
    use crate::wire::n3::NodeCapability;
    use crate::wire::{legacy, n3};
    let v = legacy::VersionPayload {
        version: 0,
        services: 1,
        timestamp: 0,
        port: 20333,
        nonce: 1,
        user_agent: "/NEO:2.12.2/".into(),
        start_height: 99,
        relay: true,
    };
    assert_eq!(
        Connected::from(&v),
        Connected {
            user_agent: "/NEO:2.12.2/".into(),
            services: 1,
            capabilities: vec![],
            start_height: 99
        }
    );
    let v = n3::VersionPayload {
        network: 56_753,
        version: 0,
        timestamp: 0,
        nonce: 1,
        user_agent: "/NEO-GO:0.120.0/".into(),
        capabilities: vec![
            NodeCapability::TcpServer { port: 20333 },
            NodeCapability::WsServer { port: 20334 },
            NodeCapability::DisableCompression,
            NodeCapability::FullNode { start_height: 1234 },
            NodeCapability::ArchivalNode,
            NodeCapability::Extension {
                kind: 0xF1,
                data: bytes::Bytes::from_static(&[0xab]),
            },
            NodeCapability::Unknown {
                kind: 0x42,
                data: bytes::Bytes::new(),
            },
        ],
    };
    let c = Connected::from(&v);
    assert_eq!((c.services, c.start_height), (0, 1234));
    assert_eq!(
        c.capabilities,
        [
            "TcpServer:20333",
            "WsServer:20334",
            "DisableCompression",
            "FullNode:1234",
            "ArchivalNode",
            "Extension1:ab",
            "Unknown(0x42)"
        ]
    );
    let mut v = v;
    v.capabilities
        .retain(|c| !matches!(c, NodeCapability::FullNode { .. }));
    assert_eq!(Connected::from(&v).start_height, 0);
}
