//! Who we are to a remote node, and how patient we are with it.

use std::fmt;
use std::time::Duration;

use super::budget::{ReceiveBudget, SEND_LIMIT, SendBudget};
use crate::protocol::{Identity, Protocol};
use crate::wire::PayloadLimits;

/// Time allowed for the whole version/verack exchange.
///
/// The C# nodes want the first bytes within 10 s of connecting; NEO•ONE waits
/// 30 s for `version`. A node that has not said who it is within 10 s is not
/// worth a connection slot.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Silence after which a peer is dropped: no complete message for this long.
///
/// C# nodes drop a peer after 60 s without data and ping about once a
/// minute; 120 s leaves room for that cadence while still dropping dead
/// connections far sooner than neo-go (never) or the 5 minutes of the first
/// Go peer package.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Time an outstanding request may go without an answer (or, for a request
/// with several answers, without progress) before the peer counts as stalled
/// and is dropped. The C# task manager gives a task 60 s.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How often deadlines are checked at the latest (they are also checked at
/// the exact next deadline).
pub const STALL_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Ping a peer after this much silence on our side, so that no remote sees
/// 60 s of silence from us (the C# idle rule); both reference nodes use 30 s.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

/// Time one write may block (a peer that stops reading) before the peer is dropped.
/// neo-go allows one block time (15 s on the public networks) per write.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest payload accepted before the handshake completes. A `version` is
/// under 100 bytes in practice; nobody has business sending megabytes before
/// saying who they are.
pub const HANDSHAKE_MAX_PAYLOAD: usize = 4096;

/// Messages a peer's mailbox holds (requests from callers waiting to be written).
pub const MAILBOX_CAPACITY: usize = 64;

/// Received messages waiting for the handler. When it is full the peer stops
/// reading from the socket, so a slow handler pushes back on the remote
/// instead of growing memory.
pub const HANDLER_QUEUE_CAPACITY: usize = 32;

/// Most requests outstanding at once per peer.
pub const MAX_PENDING_REQUESTS: usize = 128;

// The defaults keep their relations, checked when the crate compiles.
const _: () = {
    // We ping well before anyone's idle rule (ours, or C#'s 60 s) fires.
    assert!(PING_INTERVAL.as_nanos() * 2 <= Duration::from_secs(60).as_nanos());
    assert!(PING_INTERVAL.as_nanos() < IDLE_TIMEOUT.as_nanos());
    // Deadlines are checked several times within one stall timeout.
    assert!(STALL_CHECK_INTERVAL.as_nanos() * 4 <= STALL_TIMEOUT.as_nanos());
    // A handshake ends long before a peer could count as idle.
    assert!(HANDSHAKE_TIMEOUT.as_nanos() < IDLE_TIMEOUT.as_nanos());
    // A `version` with a 1024-byte user agent fits before the handshake.
    assert!(HANDSHAKE_MAX_PAYLOAD >= 1024 + 64);
    // A full mailbox of requests can all be outstanding at once.
    assert!(MAX_PENDING_REQUESTS >= MAILBOX_CAPACITY);
};

/// Timeouts of a peer; see the constants of this module for the defaults and
/// why they were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// [`HANDSHAKE_TIMEOUT`].
    pub handshake: Duration,
    /// [`IDLE_TIMEOUT`].
    pub idle: Duration,
    /// [`STALL_TIMEOUT`].
    pub stall: Duration,
    /// [`STALL_CHECK_INTERVAL`].
    pub stall_check_interval: Duration,
    /// [`PING_INTERVAL`].
    pub ping_interval: Duration,
    /// [`WRITE_TIMEOUT`].
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: HANDSHAKE_TIMEOUT,
            idle: IDLE_TIMEOUT,
            stall: STALL_TIMEOUT,
            stall_check_interval: STALL_CHECK_INTERVAL,
            ping_interval: PING_INTERVAL,
            write: WRITE_TIMEOUT,
        }
    }
}

/// Queue sizes of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queues {
    /// [`MAILBOX_CAPACITY`].
    pub mailbox: usize,
    /// [`HANDLER_QUEUE_CAPACITY`].
    pub handler: usize,
    /// [`MAX_PENDING_REQUESTS`].
    pub pending_requests: usize,
}

impl Default for Queues {
    fn default() -> Self {
        Queues {
            mailbox: MAILBOX_CAPACITY,
            handler: HANDLER_QUEUE_CAPACITY,
            pending_requests: MAX_PENDING_REQUESTS,
        }
    }
}

/// Everything a peer needs to know about the local node, so that it depends
/// on no other part of a node: who we are ([`Identity`], what our `version`
/// says) and how patient we are with the remote.
pub struct LocalConfig<P: Protocol> {
    /// Who we are.
    pub identity: Identity<P>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Queue sizes.
    pub queues: Queues,
    /// [`HANDSHAKE_MAX_PAYLOAD`].
    pub handshake_max_payload: usize,
    /// The configurable per-command caps of received and sent payloads
    /// (block and transaction sizes, unknown commands); by default the
    /// generation's ([`Protocol::PAYLOAD_LIMITS`]).
    pub payload_limits: PayloadLimits,
    /// The budget the partial frames of this peer draw on, shared with
    /// every peer given a clone of this configuration (see
    /// [`ReceiveBudget`]). [`LocalConfig::new`] makes a new one of
    /// [`RECEIVE_BUDGET`](super::RECEIVE_BUDGET) bytes.
    pub receive_budget: ReceiveBudget,
    /// The per-peer send bound, in bytes ([`SEND_LIMIT`] by default): while
    /// the peer holds this many unsent bytes, or a message of ours waits
    /// because queuing it would pass this bound, the remote's requests are
    /// not read; a peer that then reads nothing is dropped by the write
    /// timeout. A message larger than the bound is sent alone. The unsent
    /// bytes of one peer are thus at most the bound, or one message when it
    /// is larger, plus a `pong` per `ping` already read.
    pub send_limit: usize,
    /// The budget the unsent bytes of this peer draw on, shared with every
    /// peer given a clone of this configuration (see [`SendBudget`]).
    /// [`LocalConfig::new`] makes a new one of
    /// [`SEND_BUDGET`](super::SEND_BUDGET) bytes.
    pub send_budget: SendBudget,
}

impl<P: Protocol> LocalConfig<P> {
    /// A configuration for `network` with every default (see
    /// [`Identity::new`] and the constants of this module).
    pub fn new(network: u32) -> Self {
        LocalConfig {
            identity: Identity::new(network),
            timeouts: Timeouts::default(),
            queues: Queues::default(),
            handshake_max_payload: HANDSHAKE_MAX_PAYLOAD,
            payload_limits: P::PAYLOAD_LIMITS,
            receive_budget: ReceiveBudget::default(),
            send_limit: SEND_LIMIT,
            send_budget: SendBudget::default(),
        }
    }

    /// The local height now.
    pub fn height(&self) -> u32 {
        self.identity.height()
    }
}

impl<P: Protocol> Clone for LocalConfig<P> {
    fn clone(&self) -> Self {
        LocalConfig {
            identity: self.identity.clone(),
            timeouts: self.timeouts,
            queues: self.queues,
            handshake_max_payload: self.handshake_max_payload,
            payload_limits: self.payload_limits,
            receive_budget: self.receive_budget.clone(),
            send_limit: self.send_limit,
            send_budget: self.send_budget.clone(),
        }
    }
}

impl<P: Protocol> fmt::Debug for LocalConfig<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalConfig")
            .field("identity", &self.identity)
            .field("timeouts", &self.timeouts)
            .field("queues", &self.queues)
            .field("handshake_max_payload", &self.handshake_max_payload)
            .field("payload_limits", &self.payload_limits)
            .field("receive_budget", &self.receive_budget)
            .field("send_limit", &self.send_limit)
            .field("send_budget", &self.send_budget)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{N3, random_nonce};

    #[test]
    fn nonces_vary() {
        let a = random_nonce();
        assert!((0..8).any(|_| random_nonce() != a));
        let c = LocalConfig::<N3>::new(56753);
        assert!(c.identity.user_agent.starts_with("/neo-peer:"));
        assert_eq!(c.height(), 0);
        assert!(format!("{c:?}").contains("56753"));
    }
}
