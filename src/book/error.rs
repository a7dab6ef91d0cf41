//! What can go wrong with an address book.

use std::io;
use std::path::PathBuf;

/// An address book error. Each variant names the file (or store) it is
/// about, and the line for a seeds file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BookError {
    /// The database refused an operation (open, read, write, commit).
    #[error("address book {path}: cannot {op}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// What the database said.
        source: Box<redb::Error>,
    },
    /// [`AddressBook::open_existing`](super::AddressBook::open_existing) was
    /// given a file that is not there.
    #[error("address book {path} does not exist")]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// The store says nothing of its protocol and network: it was never
    /// opened as an address book.
    #[error("address book {path} has no protocol and network: not an address book")]
    NoMeta {
        /// The store.
        path: PathBuf,
    },
    /// The store was made for another protocol or network.
    #[error(
        "address book {path} is for protocol {found_protocol} network {found_network}, \
         not protocol {protocol} network {network}"
    )]
    Mismatch {
        /// The store.
        path: PathBuf,
        /// The protocol asked for.
        protocol: String,
        /// The network asked for.
        network: u32,
        /// The protocol the store was made for.
        found_protocol: String,
        /// The network the store was made for.
        found_network: u32,
    },
    /// A stored value does not decode.
    #[error("address book {path}: {what} {key:?} is corrupt: {reason}")]
    Corrupt {
        /// The store.
        path: PathBuf,
        /// `record` or `meta`.
        what: &'static str,
        /// The key of the bad value.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A line of seeds text ([`parse_seeds`](super::parse_seeds)) is not an
    /// address.
    #[error("seeds line {line}: {reason}")]
    SeedLine {
        /// The line (from 1).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A line of a seeds file is not an address.
    #[error("{path}:{line}: {reason}")]
    Seeds {
        /// The seeds file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The book was [closed](super::AddressBook::close): its store is
    /// released and nothing more can be written.
    #[error("address book {path} is closed")]
    Closed {
        /// The store.
        path: PathBuf,
    },
    /// A seeds file cannot be read.
    #[error("cannot read seeds file {path}: {source}")]
    ReadSeeds {
        /// The seeds file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}
