//! Which peer takes a request, and what a departure costs the remote: pure
//! functions, tested on their own.

use std::time::Duration;

use super::PeerId;
use super::config::Penalties;
use crate::peer::{DisconnectReason, Violation};

/// What routing looks at for one live peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub id: PeerId,
    /// The peer's best known height.
    pub height: u32,
    /// Requests of the kind being routed it is answering now.
    pub in_flight_kind: u32,
    /// All requests it is answering now.
    pub in_flight: u32,
    /// Smoothed round trip of its answers (unknown: not measured yet).
    pub rtt: Option<Duration>,
    /// When it was last given a request (a logical clock).
    pub last_used: u64,
}

/// The peer to send a request to: one at least `min_height` high, with fewer
/// than `max_per_kind` requests of the kind outstanding, not `excluded`.
/// Among those the least loaded wins, then the fastest (round trips compared
/// by the millisecond, so that noise does not pin every request on one peer;
/// an unmeasured peer counts as fast, so that it gets measured), then the
/// one unused for longest.
pub(crate) fn choose(
    candidates: impl IntoIterator<Item = Candidate>,
    min_height: u32,
    max_per_kind: u32,
    excluded: &[PeerId],
) -> Option<PeerId> {
    candidates
        .into_iter()
        .filter(|c| {
            c.height >= min_height && c.in_flight_kind < max_per_kind && !excluded.contains(&c.id)
        })
        .min_by_key(|c| {
            let rtt_ms = c.rtt.map_or(0, |r| r.as_millis());
            (c.in_flight, rtt_ms, c.last_used)
        })
        .map(|c| c.id)
}

/// Misbehaviour points a departure costs the address it came from.
pub(crate) fn penalty(reason: &DisconnectReason, p: &Penalties) -> u32 {
    match reason {
        DisconnectReason::Frame(_) => p.bad_frame,
        DisconnectReason::Protocol(_) => p.protocol,
        // Connecting to ourselves and a wrong network are not the remote's fault.
        DisconnectReason::Handshake(Violation::SelfConnection(_))
        | DisconnectReason::Handshake(Violation::WrongNetwork { .. }) => 0,
        DisconnectReason::Handshake(_) => p.protocol,
        DisconnectReason::Stalled(_) => p.stall,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RequestKind;
    use crate::wire::FrameError;

    fn c(id: PeerId, in_flight: u32, rtt_ms: Option<u64>, last_used: u64) -> Candidate {
        Candidate {
            id,
            height: 100,
            in_flight_kind: 0,
            in_flight,
            rtt: rtt_ms.map(Duration::from_millis),
            last_used,
        }
    }

    #[test]
    fn the_least_loaded_then_fastest_then_least_recent_peer_wins() {
        let peers = [
            c(1, 2, Some(1), 0),
            c(2, 1, Some(9), 5),
            c(3, 1, Some(3), 9),
        ];
        assert_eq!(choose(peers, 0, 1, &[]), Some(3));
        let peers = [
            c(1, 0, Some(3), 7),
            c(2, 0, Some(3), 2),
            c(3, 0, Some(4), 0),
        ];
        assert_eq!(choose(peers, 0, 1, &[]), Some(2));
        // Sub-millisecond differences do not count; an unmeasured peer goes first.
        let peers = [c(1, 0, Some(0), 1), c(2, 0, None, 3), c(3, 0, Some(5), 0)];
        assert_eq!(choose(peers, 0, 1, &[]), Some(1));
    }

    #[test]
    fn busy_low_and_excluded_peers_are_skipped() {
        let mut busy = c(1, 0, None, 0);
        busy.in_flight_kind = 1;
        let mut low = c(2, 0, None, 0);
        low.height = 10;
        let free = c(3, 5, Some(500), 9);
        assert_eq!(choose([busy, low, free], 50, 1, &[]), Some(3));
        assert_eq!(choose([busy, low, free], 50, 1, &[3]), None);
        assert_eq!(choose([busy, low, free], 50, 2, &[3]), Some(1));
        assert_eq!(choose([busy, low, free], 101, 9, &[]), None);
        assert_eq!(choose([], 0, 1, &[]), None);
    }

    #[test]
    fn only_the_remote_s_faults_cost_points() {
        let p = Penalties::default();
        assert_eq!(
            penalty(
                &DisconnectReason::Frame(FrameError::WrongMagic {
                    got: 1,
                    expected: 2
                }),
                &p
            ),
            100
        );
        assert_eq!(
            penalty(&DisconnectReason::Stalled(RequestKind::Headers), &p),
            p.stall
        );
        assert_eq!(
            penalty(&DisconnectReason::Protocol(Violation::DuplicateVersion), &p),
            p.protocol
        );
        for harmless in [
            DisconnectReason::Handshake(Violation::SelfConnection(1)),
            DisconnectReason::RemoteClosed,
            DisconnectReason::Requested,
            DisconnectReason::IdleTimeout(Duration::from_secs(1)),
            DisconnectReason::HandlerPanicked("headers"),
            DisconnectReason::Shutdown,
        ] {
            assert_eq!(penalty(&harmless, &p), 0, "{harmless}");
        }
    }
}
