//! How many peers a manager keeps, and how strict it is with them.

use std::time::Duration;

use crate::peer::LocalConfig;
use crate::protocol::Protocol;

/// Outbound connections the dialer keeps (the C# nodes keep 10, neo-go 20 to 40 peers in all).
pub const TARGET_OUTBOUND: usize = 8;
/// Most outbound connections, dialed or added by hand.
pub const MAX_OUTBOUND: usize = 16;
/// Most inbound connections.
pub const MAX_INBOUND: usize = 64;
/// Most connections to or from one IP address (the C# nodes allow 3).
pub const MAX_PER_IP: usize = 3;
/// Peers one request is tried on before its caller gets an error.
pub const MAX_ATTEMPTS: u32 = 4;
/// Requests of one kind outstanding at once on one peer through the manager
/// (the seed's rule is one: a request goes to a peer with none of its kind).
pub const MAX_IN_FLIGHT_PER_KIND: u32 = 1;
/// How long a request waits for a peer that can take it.
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the dialer looks at its slots.
pub const DIAL_INTERVAL: Duration = Duration::from_millis(500);
/// Time allowed for a TCP connect.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the dialer makes a feeler connection (Bitcoin Core's interval):
/// a short handshake with an address of the book's "new" table, which moves
/// it to "tried" if it answers, or a test of a "tried" address that a newly
/// reached one wants to replace. Only while every outbound slot is filled.
pub const FEELER_INTERVAL: Duration = Duration::from_secs(120);
/// How often every peer is asked for addresses (`getaddr`).
pub const ADDR_INTERVAL: Duration = Duration::from_secs(300);
/// Misbehaviour points at which an address is banned.
pub const BAN_THRESHOLD: u32 = 100;
/// How long a ban lasts (the C# nodes and neo-go forget a bad peer at restart;
/// a day outlives a restart without punishing a fixed node for long).
pub const BAN_DURATION: Duration = Duration::from_secs(24 * 3600);
/// How often the address book is written to disk: the book's own default
/// (a crash loses at most this much of what was learned).
pub const FLUSH_INTERVAL: Duration = crate::book::DEFAULT_FLUSH_INTERVAL;
/// How long [`PeerManager::shutdown`](super::PeerManager::shutdown) waits for
/// every task to end.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const _: () = {
    assert!(TARGET_OUTBOUND <= MAX_OUTBOUND);
    assert!(FEELER_INTERVAL.as_secs() > DIAL_INTERVAL.as_secs());
    assert!(MAX_ATTEMPTS >= 2);
    assert!(MAX_IN_FLIGHT_PER_KIND >= 1);
};

/// Misbehaviour points per offence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalties {
    /// A frame that breaks the framing or payload rules.
    pub bad_frame: u32,
    /// A rule of the handshake or a second `version`/`verack` broken.
    pub protocol: u32,
    /// A request not answered in time.
    pub stall: u32,
    /// An `addr` nobody asked for (neo-go disconnects at the first one).
    pub unsolicited_addr: u32,
    /// An answer of the wrong kind, or headers that do not fit the request.
    pub bad_answer: u32,
    /// A height claimed (in `version`, `ping` or `pong`) that the peer's own
    /// `headers` answer disproved.
    pub height_lie: u32,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties {
            bad_frame: 100,
            protocol: 100,
            stall: 34,
            unsolicited_addr: 25,
            bad_answer: 50,
            height_lie: 50,
        }
    }
}

/// A [`PeerManager`](super::PeerManager)'s settings; each default is a
/// constant of this module.
#[derive(Debug, Clone)]
pub struct ManagerConfig<P: Protocol> {
    /// Who we are to every peer. All peers share its nonce, which is how a
    /// connection to ourselves is recognised.
    pub local: LocalConfig<P>,
    /// [`TARGET_OUTBOUND`].
    pub target_outbound: usize,
    /// [`MAX_OUTBOUND`].
    pub max_outbound: usize,
    /// [`MAX_INBOUND`].
    pub max_inbound: usize,
    /// [`MAX_PER_IP`].
    pub max_per_ip: usize,
    /// [`MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// [`MAX_IN_FLIGHT_PER_KIND`].
    pub max_in_flight_per_kind: u32,
    /// [`ROUTE_TIMEOUT`].
    pub route_timeout: Duration,
    /// [`DIAL_INTERVAL`].
    pub dial_interval: Duration,
    /// [`DIAL_TIMEOUT`].
    pub dial_timeout: Duration,
    /// [`FEELER_INTERVAL`].
    pub feeler_interval: Duration,
    /// [`ADDR_INTERVAL`].
    pub addr_interval: Duration,
    /// [`BAN_THRESHOLD`].
    pub ban_threshold: u32,
    /// [`BAN_DURATION`].
    pub ban_duration: Duration,
    /// Points per offence.
    pub penalties: Penalties,
    /// Whether `getaddr` is answered from the address book (true by
    /// default). When false, the answer names only our own listening
    /// address (nothing when not listening), so peers learn of no one
    /// through us: for a node that must not tell its peers of each other or
    /// of whom it dials (a mirror of one node, a relay between validators).
    pub share_addresses: bool,
    /// [`FLUSH_INTERVAL`].
    pub flush_interval: Duration,
    /// [`SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
}

impl<P: Protocol> ManagerConfig<P> {
    /// The defaults, with `local` as who we are.
    pub fn new(local: LocalConfig<P>) -> Self {
        ManagerConfig {
            local,
            target_outbound: TARGET_OUTBOUND,
            max_outbound: MAX_OUTBOUND,
            max_inbound: MAX_INBOUND,
            max_per_ip: MAX_PER_IP,
            max_attempts: MAX_ATTEMPTS,
            max_in_flight_per_kind: MAX_IN_FLIGHT_PER_KIND,
            route_timeout: ROUTE_TIMEOUT,
            dial_interval: DIAL_INTERVAL,
            dial_timeout: DIAL_TIMEOUT,
            feeler_interval: FEELER_INTERVAL,
            addr_interval: ADDR_INTERVAL,
            ban_threshold: BAN_THRESHOLD,
            ban_duration: BAN_DURATION,
            penalties: Penalties::default(),
            share_addresses: true,
            flush_interval: FLUSH_INTERVAL,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}
