//! Connect to a Neo N3 node, handshake, and fetch headers, on smol.
//!
//! ```sh
//! cargo run --example smol_headers -- 127.0.0.1:20333 56753
//! ```
//!
//! The arguments are the node's address and its network magic
//! (860833102: N3 mainnet, 894710606: testnet, 56753 by default: a private
//! network).

use neo_peer::executor::SmolGlobal;
use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
use neo_peer::protocol::N3;
use neo_peer::wire::n3::PRIVNET_MAGIC;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:20333".into());
    let magic: u32 = args.next().map_or(Ok(PRIVNET_MAGIC), |m| m.parse())?;

    smol::block_on(async {
        // Any `futures-io` byte stream will do: smol's TCP stream is one.
        let conn = smol::net::TcpStream::connect(addr.as_str()).await?;
        // Who we are. Everything but the network has a default: a random
        // nonce, our user agent, the timeouts (handshake 10 s, idle 120 s,
        // stall 60 s) and the queue sizes.
        let config = LocalConfig::new(magic);
        // `IgnoreAll`: no handler. We await the answers to our own requests,
        // and drop what the node sends unasked (`inv`, `addr`, ...).
        let peer: Peer<N3> = Peer::new(conn, Direction::Outbound, config, IgnoreAll, SmolGlobal);
        // The version/verack handshake. From here on the peer lives in tasks
        // of its own: it answers pings, and drops the node if it goes silent.
        peer.run().await?;
        let info = peer.info();
        println!(
            "connected to {addr}: {} at height {}",
            info.user_agent.unwrap_or_default(),
            peer.height()
        );

        // 2000 headers from genesis (fewer if the chain is shorter). The
        // answer is awaited; a node that does not answer within the stall
        // timeout is disconnected, and the call returns that error.
        let headers = peer.get_headers(0, 2000).await?;
        // Each header names the one before it.
        for pair in headers.windows(2) {
            if pair[1].prev_hash() != pair[0].hash() {
                return Err(
                    format!("header {} does not follow the one before", pair[1].index()).into(),
                );
            }
        }
        let last = headers.last().ok_or("the node sent no headers")?;
        println!("headers 0..={} linked, last {}", last.index(), last.hash());

        // What crossed the wire, per command.
        print!("{}", peer.stats());
        peer.disconnect();
        Ok(())
    })
}
