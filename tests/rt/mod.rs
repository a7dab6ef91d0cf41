//! The async runtimes the tests run on: smol and async-std, behind one trait.

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
