//! How the library starts its tasks.
//!
//! Nothing in `neo-peer` calls a runtime's `spawn` directly: every task (one
//! reader and one writer per peer, and a handler task while it has messages
//! to handle) is handed to an
//! [`Executor`]. Adapters exist for smol (feature `smol`), async-std (feature
//! `async-std`), tokio (feature `tokio`) and any executor of the
//! `executor-trait` 3 family (feature `executor-trait`, `ExecutorTrait`);
//! any other runtime plugs in by implementing the one method.
//!
//! Timers and sockets come from `async-io`, which drives itself, so the tasks
//! run the same on every executor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed task as the library spawns it.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Something that can run tasks in the background.
///
/// Tasks are detached: the library ends them itself (a peer's tasks end when
/// the peer disconnects), so an executor need not keep handles.
///
/// ```
/// use neo_peer::executor::{Executor, Task};
///
/// /// Runs every task on a thread of its own.
/// struct Threads;
///
/// impl Executor for Threads {
///     fn spawn(&self, task: Task) {
///         std::thread::spawn(move || futures_lite::future::block_on(task));
///     }
/// }
/// ```
pub trait Executor: Send + Sync + 'static {
    /// Starts `task` and returns at once.
    fn spawn(&self, task: Task);
}

impl<E: Executor + ?Sized> Executor for Arc<E> {
    fn spawn(&self, task: Task) {
        (**self).spawn(task)
    }
}

impl<E: Executor + ?Sized> Executor for Box<E> {
    fn spawn(&self, task: Task) {
        (**self).spawn(task)
    }
}

/// smol's global executor (`smol::spawn`).
#[cfg(feature = "smol")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolGlobal;

#[cfg(feature = "smol")]
impl Executor for SmolGlobal {
    fn spawn(&self, task: Task) {
        smol::spawn(task).detach();
    }
}

/// A smol executor that the application runs itself (`Arc<smol::Executor>`).
#[cfg(feature = "smol")]
impl Executor for smol::Executor<'static> {
    fn spawn(&self, task: Task) {
        smol::Executor::spawn(self, task).detach();
    }
}

/// async-std's global executor (`async_std::task::spawn`).
#[cfg(feature = "async-std")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

#[cfg(feature = "async-std")]
impl Executor for AsyncStd {
    fn spawn(&self, task: Task) {
        drop(async_std::task::spawn(task));
    }
}

/// A tokio runtime, through its handle. Its sockets plug in through
/// `neo_peer::tokio::compat`.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone)]
pub struct Tokio(pub tokio::runtime::Handle);

#[cfg(feature = "tokio")]
impl Tokio {
    /// The runtime the caller runs in.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::runtime::Handle::current`] does.
    pub fn current() -> Self {
        Tokio(tokio::runtime::Handle::current())
    }
}

#[cfg(feature = "tokio")]
impl Executor for Tokio {
    fn spawn(&self, task: Task) {
        drop(self.0.spawn(task));
    }
}

/// Any executor of the `executor-trait` 3 family (`smol-executor-trait`,
/// `tokio-executor-trait`, `async-global-executor-trait`, or an
/// application's own), as lapin and other crates take them.
///
/// The handle `executor_trait::Executor::spawn` returns is dropped at once:
/// in that family dropping a task handle lets the task run on (detaches it).
///
/// ```
/// use neo_peer::executor::{Executor, ExecutorTrait};
///
/// let executor = ExecutorTrait(smol_executor_trait::Smol);
/// let (done, finished) = async_channel::bounded(1);
/// executor.spawn(Box::pin(async move {
///     done.send(()).await.unwrap();
/// }));
/// assert!(smol::block_on(finished.recv()).is_ok());
/// ```
#[cfg(feature = "executor-trait")]
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecutorTrait<E>(pub E);

#[cfg(feature = "executor-trait")]
impl<E: executor_trait::Executor + Send + Sync + 'static> Executor for ExecutorTrait<E> {
    fn spawn(&self, task: Task) {
        drop(self.0.spawn(task));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping_through(ex: impl Executor) -> bool {
        let (tx, rx) = async_channel::bounded(1);
        ex.spawn(Box::pin(async move {
            let _ = tx.send(()).await;
        }));
        futures_lite::future::block_on(rx.recv()).is_ok()
    }

    #[cfg(feature = "smol")]
    #[test]
    fn smol_adapters_run_tasks() {
        assert!(ping_through(SmolGlobal));
        let ex = Arc::new(smol::Executor::new());
        let runner = ex.clone();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            futures_lite::future::block_on(runner.run(async { stopped.recv().await.ok() }))
        });
        assert!(ping_through(ex));
        drop(stop);
        thread.join().unwrap();
    }

    #[cfg(feature = "async-std")]
    #[test]
    fn async_std_adapter_runs_tasks() {
        assert!(ping_through(AsyncStd));
    }

    #[cfg(feature = "executor-trait")]
    #[test]
    fn executor_trait_adapter_runs_detached_tasks() {
        // The handle is dropped at once; the task still runs to its end.
        assert!(ping_through(ExecutorTrait(smol_executor_trait::Smol)));
        assert!(ping_through(Arc::new(ExecutorTrait(
            async_global_executor_trait::AsyncGlobalExecutor
        ))));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_adapter_runs_tasks() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert!(ping_through(Tokio(rt.handle().clone())));
        assert!(ping_through(rt.block_on(async { Tokio::current() })));
    }
}
