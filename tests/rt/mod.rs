//! The async runtimes the tests run on: smol, async-std and (feature `tokio`)
//! tokio, behind one trait.

use std::future::Future;
use std::net::TcpStream;

use neo_peer::executor::Executor;
use neo_peer::peer::Connection;

/// One async runtime: its executor, its TCP stream type, `block_on` and `spawn`.
pub trait Rt: Copy + Send + Sync + 'static {
    type Ex: Executor + Clone;
    const NAME: &'static str;
    fn ex(self) -> Self::Ex;
    fn stream(self, s: TcpStream) -> impl Connection;
    fn block_on<T>(self, f: impl Future<Output = T>) -> T;
    fn spawn<T: Send + 'static>(
        self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T>;
}

#[derive(Clone, Copy)]
pub struct SmolRt;
impl Rt for SmolRt {
    type Ex = neo_peer::executor::SmolGlobal;
    const NAME: &'static str = "smol";
    fn ex(self) -> Self::Ex {
        neo_peer::executor::SmolGlobal
    }
    fn stream(self, s: TcpStream) -> impl Connection {
        smol::net::TcpStream::try_from(s).unwrap()
    }
    fn block_on<T>(self, f: impl Future<Output = T>) -> T {
        smol::block_on(f)
    }
    fn spawn<T: Send + 'static>(
        self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> {
        smol::spawn(f)
    }
}

#[derive(Clone, Copy)]
pub struct AsyncStdRt;
impl Rt for AsyncStdRt {
    type Ex = neo_peer::executor::AsyncStd;
    const NAME: &'static str = "async-std";
    fn ex(self) -> Self::Ex {
        neo_peer::executor::AsyncStd
    }
    fn stream(self, s: TcpStream) -> impl Connection {
        async_std::net::TcpStream::from(s)
    }
    fn block_on<T>(self, f: impl Future<Output = T>) -> T {
        async_std::task::block_on(f)
    }
    fn spawn<T: Send + 'static>(
        self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> {
        async_std::task::spawn(f)
    }
}

/// A tokio runtime shared by the tests of one binary: two workers, as on a
/// two-core machine. Its sockets reach the peers through `neo_peer::tokio::compat`.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy)]
pub struct TokioRt;

#[cfg(feature = "tokio")]
impl TokioRt {
    fn runtime() -> &'static tokio::runtime::Runtime {
        static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_io()
                .build()
                .unwrap()
        })
    }
}

#[cfg(feature = "tokio")]
impl Rt for TokioRt {
    type Ex = neo_peer::tokio::Tokio;
    const NAME: &'static str = "tokio";
    fn ex(self) -> Self::Ex {
        neo_peer::tokio::Tokio(Self::runtime().handle().clone())
    }
    fn stream(self, s: TcpStream) -> impl Connection {
        s.set_nonblocking(true).unwrap();
        let _inside = Self::runtime().enter();
        neo_peer::tokio::compat(tokio::net::TcpStream::from_std(s).unwrap())
    }
    fn block_on<T>(self, f: impl Future<Output = T>) -> T {
        Self::runtime().block_on(f)
    }
    fn spawn<T: Send + 'static>(
        self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> {
        let task = Self::runtime().spawn(f);
        async move { task.await.unwrap() }
    }
}
