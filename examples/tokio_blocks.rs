//! A peer on tokio: tokio's socket, tokio's runtime. Fetch headers, then a
//! few blocks, and check them.
//!
//! ```sh
//! cargo run --features tokio --example tokio_blocks -- 127.0.0.1:20333 56753
//! ```
//!
//! The arguments are a Neo N3 node's address and its network magic
//! (56753 by default: a private network).

use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
use neo_peer::protocol::N3;
use neo_peer::tokio::Tokio;
use neo_peer::wire::n3::PRIVNET_MAGIC;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:20333".into());
    let magic: u32 = args.next().map_or(Ok(PRIVNET_MAGIC), |m| m.parse())?;

    // tokio's `TcpStream`, wrapped for the peer (`neo_peer::tokio::compat`
    // wraps one you already have, e.g. from a `TcpListener`).
    let conn = neo_peer::tokio::connect(addr.as_str()).await?;
    // The peer's tasks run on this runtime.
    let peer: Peer<N3> = Peer::new(
        conn,
        Direction::Outbound,
        LocalConfig::new(magic),
        IgnoreAll,
        Tokio::current(),
    );
    peer.run().await?;
    println!("connected to {addr}, height {}", peer.height());

    // The headers payload as it came: its hashes are read from the received
    // bytes, without building a header.
    let headers = peer.get_headers_payload(0, 100).await?;
    println!("{} headers", headers.len());

    // Blocks 0..10 (`getblockbyindex`), each checked against its header.
    let blocks = peer.get_blocks_by_index(0, 10).await?;
    for (i, block) in blocks.iter().enumerate() {
        // Transactions match the Merkle root, none twice.
        block.check()?;
        if Some(block.hash()) != headers.hash(i) {
            return Err(format!("block {} is not the header's", block.index()).into());
        }
    }
    let last = blocks.last().ok_or("the node sent no blocks")?;
    let txs: usize = blocks.iter().map(|b| b.transactions.len()).sum();
    println!(
        "blocks 0..={} checked ({txs} transactions), last {}",
        last.index(),
        last.hash()
    );
    peer.disconnect();
    Ok(())
}
