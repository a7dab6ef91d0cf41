//! A peer manager with an address book, on smol. The book, one redb file,
//! starts from a seeds file the first time and remembers every node it hears
//! of; the dialer keeps the outbound slots filled from it; a request goes to
//! the best free peer and moves to another if that one fails.
//!
//! ```sh
//! printf '127.0.0.1:20333\n' > seeds.txt
//! cargo run --example manager -- peers.db seeds.txt 56753
//! cargo run --example manager -- peers.db seeds.txt 56753   # now dials from the book
//! ```
//!
//! The arguments are the book's file (created if missing), the seeds file
//! (`host:port` per line, `#` comments) and the Neo N3 network magic (56753 by
//! default: a private network).

use std::time::Duration;

use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::{ManagerConfig, PeerManager};
use neo_peer::peer::{IgnoreAll, LocalConfig};
use neo_peer::protocol::{N3, Protocol};
use neo_peer::wire::n3::PRIVNET_MAGIC;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let book_file = args.next().unwrap_or_else(|| "peers.db".into());
    let seeds = args.next().unwrap_or_else(|| "seeds.txt".into());
    let magic: u32 = args.next().map_or(Ok(PRIVNET_MAGIC), |m| m.parse())?;

    // A book remembers its protocol and network: opening it for another
    // network is an error rather than a mix.
    let book = AddressBook::open(&book_file, BookConfig::new(N3::NAME, magic))?;
    let mut config = ManagerConfig::new(LocalConfig::new(magic));
    config.target_outbound = 4; // peers the dialer keeps (8 by default)
    // Nodes on one machine share an IP; the default allows 3 per IP.
    config.max_per_ip = 4;
    let manager = PeerManager::<N3>::new(config, book, IgnoreAll, SmolGlobal)?;

    smol::block_on(async {
        let book = manager.book();
        if book.is_empty() {
            // Host names are resolved off the executor; 10333 is the port of
            // a line that names none.
            let n = book.load_seeds(&seeds, 10333).await?;
            println!("book empty: {n} addresses from {seeds}");
        } else {
            println!("book: {} addresses, seeds not read", book.len());
        }
        // Dial from the book (with backoff after failures), and every few
        // minutes ask the peers for addresses and flush the book.
        manager.start_dialer();
        manager.start_maintenance();
        if manager.wait_for_peers(1, Duration::from_secs(10)).await == 0 {
            manager.shutdown().await;
            return Err("no node of the book answered".into());
        }

        // Routed to the best free peer that has them; retried on another if
        // the peer leaves, stalls or answers wrongly.
        let headers = manager.get_headers(0, 2000).await?;
        let last = headers.last().ok_or("no headers")?;
        println!("headers 0..={} fetched, last {}", last.index(), last.hash());
        for p in manager.peers() {
            let addr = p.addr.map_or_else(|| "?".into(), |a| a.to_string());
            let agent = p.info.user_agent.unwrap_or_default();
            println!(
                "  {addr} {agent} height {}, served {}",
                p.info.height, p.served
            );
        }

        // Disconnect everyone, wait for every task, flush the book.
        let report = manager.shutdown().await;
        println!(
            "book {book_file}: {} addresses, {} written at shutdown",
            manager.book().len(),
            report.flushed?
        );
        Ok(())
    })
}
