//! tokio: its sockets as peer connections, its runtime as the executor
//! (feature `tokio`).
//!
//! A [`Peer`](crate::peer::Peer) reads and writes through the `futures-io`
//! traits, which smol, async-std and most async crates share; tokio has
//! reader and writer traits of its own. [`compat`] turns any tokio stream
//! (a `TcpStream`, a TLS stream from `tokio-rustls`, a `DuplexStream`) into
//! a connection, and [`connect`] dials one ready to use. The peer's tasks run
//! on the runtime through [`Tokio`]; its timers come from `async-io`, which
//! drives itself, so nothing else is needed.
//!
//! ```no_run
//! use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
//! use neo_peer::protocol::N3;
//! use neo_peer::tokio::Tokio;
//! use neo_peer::wire::n3::PRIVNET_MAGIC;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Inside a tokio runtime (`#[tokio::main]`):
//! let conn = neo_peer::tokio::connect("127.0.0.1:20333").await?;
//! let config = LocalConfig::new(PRIVNET_MAGIC);
//! let peer: Peer<N3> = Peer::new(conn, Direction::Outbound, config, IgnoreAll, Tokio::current());
//! peer.run().await?;
//! println!("{} headers", peer.get_headers(0, 100).await?.len());
//!
//! // A stream accepted by a tokio listener goes through `compat`:
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (stream, addr) = listener.accept().await?;
//! let inbound: Peer<N3> = Peer::new(
//!     neo_peer::tokio::compat(stream),
//!     Direction::Inbound,
//!     LocalConfig::new(PRIVNET_MAGIC),
//!     IgnoreAll,
//!     Tokio::current(),
//! )
//! .with_remote_addr(addr);
//! inbound.run().await?;
//! # Ok(())
//! # }
//! ```

use std::io;

use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::net::{TcpStream, ToSocketAddrs};
use tokio_util::compat::TokioAsyncReadCompatExt;

pub use crate::executor::Tokio;
pub use tokio_util::compat::Compat;

/// `io` as a connection a [`Peer`](crate::peer::Peer) or a
/// [`PeerManager`](crate::manager::PeerManager) takes: tokio's
/// `AsyncRead`/`AsyncWrite` seen as `futures-io`'s. Closing the connection
/// shuts down its write side, as tokio's `shutdown` does.
pub fn compat<T: AsyncRead + AsyncWrite>(io: T) -> Compat<T> {
    io.compat()
}

/// Dials `addr` with tokio and returns the connection for a
/// [`Peer`](crate::peer::Peer). Small frames (the handshake, requests) go out
/// at once: Nagle's algorithm is off, which with delayed acknowledgements
/// would cost up to 40 ms a round trip. Must be called inside a tokio
/// runtime.
pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<Compat<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(compat(stream))
}

#[cfg(test)]
mod tests {
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn a_tokio_stream_reads_writes_and_closes_through_futures_io() {
        let rt = ::tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = ::tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let (dialed, accepted) =
                futures_lite::future::zip(connect(addr), listener.accept()).await;
            let mut a = dialed.unwrap();
            let mut b = compat(accepted.unwrap().0);
            assert!(a.get_ref().nodelay().unwrap());
            a.write_all(b"version").await.unwrap();
            a.close().await.unwrap();
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"version");
        });
    }
}
