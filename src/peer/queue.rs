//! A bounded queue that takes memory only for what it holds.
//!
//! `async_channel::bounded(n)` allocates its `n` slots up front: 1 KiB for a
//! mailbox of 64 boxed messages, held by every idle peer. This queue is an
//! unbounded channel (its slots come in small blocks, allocated as messages
//! arrive) with the bound kept by a counter: a sender reserves a place
//! before pushing and waits for room when there is none, the receiver gives
//! the place back when it takes a message. The bound is exact.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

#[cfg(test)]
use async_channel::RecvError;
use async_channel::{SendError, TryRecvError, TrySendError};
use event_listener::Event;

/// Places taken in one queue, and the senders waiting for one.
struct Room {
    taken: AtomicUsize,
    capacity: usize,
    /// Notified when a place is given back or the queue closes.
    freed: Event,
}

impl Room {
    fn reserve(&self) -> bool {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.taken.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify(1);
    }
}

/// A queue of at most `capacity` (at least 1) messages.
pub(super) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = async_channel::unbounded();
    let room = Arc::new(Room {
        taken: AtomicUsize::new(0),
        capacity: capacity.max(1),
        freed: Event::new(),
    });
    (
        Sender {
            tx,
            room: room.clone(),
        },
        Receiver {
            rx: Box::pin(rx),
            room,
        },
    )
}

/// The sending side (cheap to clone).
pub(super) struct Sender<T> {
    tx: async_channel::Sender<T>,
    room: Arc<Room>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            room: self.room.clone(),
        }
    }
}

impl<T> Sender<T> {
    /// Queues `msg` if there is room now.
    pub(super) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        if self.tx.is_closed() {
            return Err(TrySendError::Closed(msg));
        }
        if !self.room.reserve() {
            return Err(TrySendError::Full(msg));
        }
        self.tx.try_send(msg).inspect_err(|_| self.room.give_back())
    }

    /// Queues `msg`, waiting for room; fails once the queue is closed.
    pub(super) async fn send(&self, mut msg: T) -> Result<(), SendError<T>> {
        loop {
            match self.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(m)) => return Err(SendError(m)),
                Err(TrySendError::Full(m)) => msg = m,
            }
            let freed = self.room.freed.listen();
            match self.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(m)) => return Err(SendError(m)),
                Err(TrySendError::Full(m)) => msg = m,
            }
            freed.await;
        }
    }
}

/// The receiving side.
pub(super) struct Receiver<T> {
    // Pinned once, so that it can be polled in place by a hand-written future.
    rx: Pin<Box<async_channel::Receiver<T>>>,
    room: Arc<Room>,
}

impl<T> Receiver<T> {
    /// The next message; fails once the queue is empty and every sender is
    /// gone, or it is empty and closed.
    #[cfg(test)]
    pub(super) async fn recv(&self) -> Result<T, RecvError> {
        let msg = self.rx.recv().await?;
        self.room.give_back();
        Ok(msg)
    }

    /// The next message, for a hand-written future: `None` once the queue
    /// is empty and closed.
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let polled = futures_lite::Stream::poll_next(self.rx.as_mut(), cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.room.give_back();
        }
        polled
    }

    /// The next message if there is one now.
    pub(super) fn try_recv(&self) -> Result<T, TryRecvError> {
        let msg = self.rx.try_recv()?;
        self.room.give_back();
        Ok(msg)
    }

    /// Whether no message is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Refuses new messages (those queued can still be received) and wakes
    /// the senders waiting for room, which then fail.
    pub(super) fn close(&self) {
        self.rx.close();
        self.room.freed.notify(usize::MAX);
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_its_bound_and_frees_room() {
        futures_lite::future::block_on(async {
            let (tx, rx) = bounded::<u32>(2);
            tx.try_send(1).unwrap();
            tx.send(2).await.unwrap();
            assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
            let waiting = tx.clone();
            let third = async move { waiting.send(3).await };
            let take = async {
                assert_eq!(rx.recv().await, Ok(1));
                1
            };
            let (sent, _) = futures_lite::future::zip(third, take).await;
            sent.unwrap();
            assert_eq!(rx.try_recv(), Ok(2));
            assert_eq!(rx.try_recv(), Ok(3));
            assert!(rx.try_recv().is_err());
        });
    }

    #[test]
    fn closing_fails_waiting_senders() {
        futures_lite::future::block_on(async {
            let (tx, rx) = bounded::<u32>(1);
            tx.try_send(1).unwrap();
            let blocked = async { tx.send(2).await };
            let close = async {
                futures_lite::future::yield_now().await;
                rx.close();
            };
            let (sent, ()) = futures_lite::future::zip(blocked, close).await;
            assert_eq!(sent, Err(SendError(2)));
            assert_eq!(rx.try_recv(), Ok(1));
            drop(rx);
            assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
        });
    }
}
