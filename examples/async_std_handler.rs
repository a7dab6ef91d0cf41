//! The handler style, on async-std: a `LocalConfig` says who we are, the
//! peer handshakes by itself, `request_headers` returns only whether the
//! request went out, and the headers reach the handler's `on_headers`, which
//! asks for the next ones until the node's height.
//!
//! ```sh
//! cargo run --features async-std --example async_std_handler -- 127.0.0.1:20333 56753
//! ```
//!
//! The arguments are a Neo N3 node's address and its network magic
//! (56753 by default: a private network).

use std::sync::Arc;

use neo_peer::executor::AsyncStd;
use neo_peer::peer::{Direction, LocalConfig, N3Handler, Peer};
use neo_peer::protocol::N3;
use neo_peer::wire::UInt256;
use neo_peer::wire::n3::{HeadersPayload, PRIVNET_MAGIC};

/// What the peer calls when messages arrive. Every method has a default that
/// does nothing: we implement only `on_headers`.
struct OnHeaders {
    /// Where the last index and hash go once the node's height is reached.
    done: async_channel::Sender<(u32, UInt256)>,
}

impl N3Handler for OnHeaders {
    /// Runs on the peer's handler task, one message at a time, off the read
    /// path: while it runs the peer keeps reading (up to a bounded queue),
    /// and the time it takes never counts against the node.
    async fn on_headers(&self, peer: &Peer<N3>, headers: HeadersPayload) {
        // The hashes come straight from the received bytes.
        let (Some(first), Some(last), Some(hash)) = (
            headers.first_index(),
            headers.last_index(),
            headers.hashes().next_back(),
        ) else {
            return;
        };
        println!("on_headers: {first}..={last}");
        // The peer's height comes from its `version` and rises with its
        // pings, pongs, headers and blocks.
        if last >= peer.height() {
            let _ = self.done.send((last, hash)).await;
            return;
        }
        // Ask for the next ones; they come back to this method. The result
        // says only whether the request was written (or why not).
        if let Err(e) = peer.request_headers(last + 1, -1).await {
            eprintln!("request_headers: {e}");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:20333".into());
    let magic: u32 = args.next().map_or(Ok(PRIVNET_MAGIC), |m| m.parse())?;

    async_std::task::block_on(async {
        let conn = async_std::net::TcpStream::connect(addr.as_str()).await?;
        // Who we are; what is not set here keeps its default.
        let mut config = LocalConfig::new(magic);
        config.identity.user_agent = "/neo-peer-example:async-std/".into();
        config.identity.relay = false; // no transactions announced to us, please
        config.identity.current_height = Arc::new(|| 0); // asked whenever a `version` or `ping` needs our height

        let (done, finished) = async_channel::bounded(1);
        let peer: Peer<N3> = Peer::new(
            conn,
            Direction::Outbound,
            config,
            OnHeaders { done },
            AsyncStd,
        );
        // The handshake: `version` and `verack` both ways, within 10 s.
        peer.run().await?;
        println!("connected to {addr}, height {}", peer.height());

        // From genesis, as many as the node sends at once (2000).
        peer.request_headers(0, -1).await?;
        // Wait for the handler, or for the peer to go.
        let (last, hash) = futures_lite::future::or(
            async { finished.recv().await.map_err(|e| e.to_string()) },
            async { Err(format!("peer gone: {}", peer.closed().await)) },
        )
        .await?;
        println!("headers 0..={last} reached the handler, last {hash}");
        peer.disconnect();
        Ok(())
    })
}
