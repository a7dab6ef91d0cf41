//! A book file written before the tables existed opens, its records are
//! placed into the tables, and the next flush rewrites it in today's layout.
//!
//! `tests/data/book-v1.redb.lz4` is such a file (LZ4-compressed, size
//! prepended: redb files are mostly allocator state), written by the
//! previous version of the library: an N3 book (network 56753) with a node
//! reached (seed, user agent, capabilities, heights, round trip, last
//! disconnect), a seed never dialed, a manual address, two gossiped IPv4
//! addresses and one IPv6, a banned inbound address, an inbound one, and an
//! IPv6 seed that failed twice.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use neo_peer::book::{AddressBook, BookConfig, Slot, Source, Table};

/// When the file was written (Unix ms): every record's first sighting.
const WRITTEN_MS: u64 = 1_796_231_602_749;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A fresh copy of the old file, removed when dropped.
struct OldFile(PathBuf);

impl OldFile {
    fn new(name: &str) -> Self {
        let packed = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/book-v1.redb.lz4"),
        )
        .unwrap();
        let raw = lz4_flex::block::decompress_size_prepended(&packed).unwrap();
        let path = std::env::temp_dir().join(format!(
            "neo-peer-migration-{}-{name}.redb",
            std::process::id()
        ));
        std::fs::write(&path, raw).unwrap();
        OldFile(path)
    }
}

impl Drop for OldFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn config() -> BookConfig {
    BookConfig::new("n3", 56_753)
}

/// Every field the old file holds, whatever the tables made of it.
fn check_fields(book: &AddressBook) {
    assert_eq!(book.len(), 9);
    let get = |a: &str| book.get(sa(a)).unwrap_or_else(|| panic!("{a} lost"));
    let reached = get("10.1.0.1:20333");
    assert_eq!(reached.source, Source::Seed);
    assert_eq!(reached.user_agent.as_deref(), Some("/Neo:3.8.2/"));
    assert_eq!(reached.capabilities, ["TcpServer:20333", "FullNode:1200"]);
    assert_eq!((reached.start_height, reached.last_height), (1200, 1300));
    assert_eq!(reached.rtt_ms, Some(15));
    assert_eq!(reached.last_success_ms, Some(WRITTEN_MS));
    assert_eq!(reached.last_disconnect.as_deref(), Some("idle timeout"));
    assert_eq!(get("10.3.0.1:20333").source, Source::Manual);
    let gossip = get("10.4.0.2:20333");
    assert_eq!(
        (gossip.source, gossip.services, gossip.last_seen_ms),
        (Source::Gossip, 1, 1_700_000_100_000)
    );
    assert_eq!(gossip.first_seen_ms, WRITTEN_MS);
    let banned = get("10.5.0.1:20333");
    assert_eq!(banned.source, Source::Inbound);
    assert_eq!(banned.banned_until_ms, Some(4_949_831_602_749));
    assert_eq!(
        banned.ban_reason.as_deref(),
        Some("misbehaviour: bad frame")
    );
    assert!(book.is_banned(banned.addr));
    let failing = get("[2001:db8::5]:20333");
    assert_eq!(
        (failing.failures, failing.last_attempt_ms),
        (2, Some(WRITTEN_MS))
    );
    assert!(book.get(sa("[2001:db8:1::9]:10333")).is_some());
}

fn tables(book: &AddressBook) -> Vec<(SocketAddr, Option<Table>)> {
    book.records().iter().map(|r| (r.addr, r.table())).collect()
}

#[test]
fn a_book_from_before_the_tables_is_migrated() {
    let old = OldFile::new("open");
    let book = AddressBook::open(&old.0, config()).unwrap();
    check_fields(&book);
    // The node reached goes to "tried", the manual address aside, the
    // others to "new"; nothing says who told us of them.
    let placed = tables(&book);
    for (addr, table) in &placed {
        let expected = match addr.to_string().as_str() {
            "10.1.0.1:20333" => Some(Table::Tried),
            "10.3.0.1:20333" => None,
            _ => Some(Table::New),
        };
        assert_eq!(*table, expected, "{addr}");
    }
    assert!(book.records().iter().all(|r| r.learned_from.is_none()));
    let counts = book.counts();
    assert_eq!((counts.new, counts.tried, counts.kept), (7, 1, 1));
    // Every record is rewritten in today's layout at the next flush.
    assert_eq!(book.dirty(), 9);
    assert_eq!(book.close().unwrap(), 9);

    // Reopened: the same records in the same slots (the key was stored),
    // nothing left to write.
    let book = AddressBook::open(&old.0, config()).unwrap();
    check_fields(&book);
    let slots = |b: &AddressBook| -> Vec<(SocketAddr, Option<Slot>)> {
        b.records().iter().map(|r| (r.addr, r.slot)).collect()
    };
    assert_eq!(tables(&book), placed);
    assert_eq!(book.dirty(), 0);
    let before = slots(&book);
    drop(book);
    let book = AddressBook::open(&old.0, config()).unwrap();
    assert_eq!(slots(&book), before);
}

#[test]
fn a_tool_reads_an_old_book_without_writing_it() {
    let old = OldFile::new("read");
    let bytes = std::fs::read(&old.0).unwrap();
    let book = AddressBook::open_existing(&old.0).unwrap();
    check_fields(&book);
    assert_eq!(book.config().network, 56_753);
    assert_eq!(
        book.records().iter().filter(|r| r.slot.is_some()).count(),
        8
    );
    drop(book);
    assert!(
        std::fs::read(&old.0).unwrap() == bytes,
        "the file was written"
    );
}

#[test]
fn an_old_book_for_another_network_is_refused() {
    let old = OldFile::new("mismatch");
    let err = AddressBook::open(&old.0, BookConfig::new("n3", 1)).unwrap_err();
    assert!(err.to_string().contains("network 56753"), "{err}");
    // Refused before anything was written: it still opens for its own.
    let book = AddressBook::open(&old.0, config()).unwrap();
    check_fields(&book);
}
