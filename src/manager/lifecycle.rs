//! Lifecycle: the tasks a manager runs (counted, so that shutdown can wait
//! for them), periodic maintenance, and shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;

use super::{Inner, ManagerEvent, PeerManager, ShutdownReport};
use crate::executor::{Executor, Task};
use crate::peer::{DisconnectReason, Peer};
use crate::protocol::Protocol;
use crate::telemetry;

/// The executor of the manager's and its peers' tasks, counting them.
#[derive(Clone)]
pub(super) struct Counted {
    pub(super) inner: Arc<dyn Executor>,
    pub(super) live: Arc<AtomicUsize>,
}

struct LiveTask(Arc<AtomicUsize>);

impl Drop for LiveTask {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Executor for Counted {
    fn spawn(&self, task: Task) {
        self.live.fetch_add(1, Ordering::AcqRel);
        let guard = LiveTask(self.live.clone());
        self.inner.spawn(Box::pin(async move {
            let _guard = guard;
            task.await;
        }));
    }
}

impl<P: Protocol> Inner<P> {
    pub(super) fn emit(&self, event: ManagerEvent) {
        let _ = self.events.force_send(event);
    }

    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.executor.spawn(Box::pin(task));
    }
}

impl<P: Protocol> PeerManager<P> {
    /// Tasks running on behalf of the manager and its peers.
    pub fn live_tasks(&self) -> usize {
        self.inner.executor.live.load(Ordering::Acquire)
    }

    /// Stores the outbound peers as the book's anchors, disconnects every
    /// peer (reason [`DisconnectReason::Shutdown`]), stops the listener,
    /// dialer and periodic tasks, waits for every task to end (up to
    /// [`ManagerConfig::shutdown_grace`](super::ManagerConfig::shutdown_grace)), flushes the book and releases its
    /// file ([`AddressBook::close`](crate::book::AddressBook::close)).
    pub async fn shutdown(&self) -> ShutdownReport {
        let inner = &self.inner;
        self.save_anchors();
        inner.shutting_down.store(true, Ordering::Release);
        inner.stop.notify(usize::MAX);
        inner.changed.notify(usize::MAX);
        let peers: Vec<Peer<P>> = inner
            .lock()
            .peers
            .values()
            .map(|e| e.peer.clone())
            .collect();
        for peer in &peers {
            peer.disconnect_with(DisconnectReason::Shutdown);
        }
        let deadline = Instant::now() + inner.config.shutdown_grace;
        while (self.live_tasks() > 0 || !self.is_empty()) && Instant::now() < deadline {
            Timer::after(Duration::from_millis(2)).await;
        }
        telemetry::address_book(&inner.book);
        let flushed = inner.book.close_async().await.map_err(|e| e.to_string());
        ShutdownReport {
            peers: peers.len(),
            tasks_left: self.live_tasks(),
            flushed,
        }
    }

    /// Resolves when [`PeerManager::shutdown`] has been called.
    pub(super) async fn stopped(&self) {
        loop {
            let listener = self.inner.stop.listen();
            if self.inner.is_shutting_down() {
                return;
            }
            listener.await;
        }
    }

    /// Sleeps until `wake`; false if the manager began shutting down first.
    pub(super) async fn sleep_until(&self, wake: Instant) -> bool {
        future::or(
            async {
                self.stopped().await;
                false
            },
            async {
                Timer::at(wake).await;
                true
            },
        )
        .await
    }

    /// Flushes the book every [`ManagerConfig::flush_interval`](super::ManagerConfig::flush_interval) and asks the
    /// peers for addresses every [`ManagerConfig::addr_interval`](super::ManagerConfig::addr_interval), until
    /// shutdown.
    pub fn start_maintenance(&self) {
        let manager = self.clone();
        self.inner.spawn(async move {
            let config = &manager.inner.config;
            let mut next_flush = Instant::now() + config.flush_interval;
            let mut next_addr = Instant::now() + config.addr_interval;
            loop {
                if !manager.sleep_until(next_flush.min(next_addr)).await {
                    return;
                }
                let now = Instant::now();
                if now >= next_flush {
                    if let Err(e) = manager.inner.book.flush_async().await {
                        tracing::warn!(error = %e, "address book flush failed");
                    }
                    telemetry::address_book(&manager.inner.book);
                    next_flush = now + config.flush_interval;
                }
                if now >= next_addr {
                    manager.refresh_addresses().await;
                    next_addr = now + config.addr_interval;
                }
            }
        });
    }
}
