//! Outstanding requests and their deadlines: which answer completes which
//! request, and when a silent remote has stalled.
//!
//! This is plain logic with no clock of its own: every method takes the
//! current [`Instant`], so tests drive it with made-up times.
//!
//! Each request that expects answers is *armed* with its [`Expected`]
//! answers (from the [contract](crate::protocol::contract)). A received
//! message is matched to the oldest request its [`Reply`] fits; every answer
//! pushes that request's deadline forward (a long transfer that keeps making
//! progress is not a stall) and the last one retires it. A request whose
//! deadline passes has [expired](StallDetector::expired): a stall, or, where
//! the contract allows silence, merely an unanswered request. Time the local
//! side spends unable to read (its handlers are busy and the reader is held
//! back) is not the remote's fault: while the detector is
//! [paused](StallDetector::pause) no deadline runs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::protocol::{Expected, Matcher, Reply, ReplyKey, RequestKind, Silence};

/// A request could not be armed because too many are already outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many outstanding requests ({0})")]
pub struct TooManyPending(pub usize);

/// Identifies one armed request (unique per detector, never reused).
pub type RequestId = u64;

/// What an answer did to the request it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The request that was answered.
    pub id: RequestId,
    /// Its kind.
    pub kind: RequestKind,
    /// Time from sending the request to this answer (paused time excluded).
    pub latency: Duration,
    /// True when this was the last answer the request expected.
    pub complete: bool,
    /// Whether the request's caller waits for its answers (rather than the handler).
    pub reply: bool,
    /// A `headers` answer that holds fewer headers than the remote's
    /// claimed height obliges: the height it proves instead.
    pub proven_height: Option<u32>,
}

/// A request whose deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The request.
    pub id: RequestId,
    /// Its kind.
    pub kind: RequestKind,
    /// Whether its silence is a stall or legitimate.
    pub silence: Silence,
    /// Whether its caller waits for its answers.
    pub reply: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    id: RequestId,
    expected: Expected,
    answered: u32,
    reply: bool,
    sent: Instant,
    deadline: Instant,
}

impl Pending {
    fn fits(&mut self, key: &ReplyKey<'_>) -> u32 {
        let expected = self.expected.answers;
        self.expected.matcher.take(key, self.answered, expected)
    }
}

/// Outstanding requests of one peer and their deadlines.
#[derive(Debug, Clone)]
pub struct StallDetector {
    timeout: Duration,
    capacity: usize,
    pending: VecDeque<Pending>,
    paused_since: Option<Instant>,
    next_id: RequestId,
}

impl StallDetector {
    /// A detector that allows `timeout` per answer and at most `capacity`
    /// outstanding requests.
    pub fn new(timeout: Duration, capacity: usize) -> Self {
        StallDetector {
            timeout,
            capacity,
            pending: VecDeque::new(),
            paused_since: None,
            next_id: 0,
        }
    }

    /// The time allowed for each answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Number of outstanding requests.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Number of outstanding requests of one kind.
    pub fn pending_of(&self, kind: RequestKind) -> usize {
        self.pending
            .iter()
            .filter(|p| p.expected.kind == kind)
            .count()
    }

    /// Records a request sent at `now` that expects `expected`; `reply`
    /// says whether its caller waits for the answers. Refused past the
    /// capacity, and for a request whose silence is allowed
    /// ([`Silence::Allowed`]) once they would leave less than an eighth of
    /// it (at least one place): such requests end only at the timeout when
    /// the remote says nothing, and must not fill the room of the ones it
    /// owes.
    pub fn arm(
        &mut self,
        expected: Expected,
        reply: bool,
        now: Instant,
    ) -> Result<RequestId, TooManyPending> {
        if self.pending.len() >= self.capacity {
            return Err(TooManyPending(self.capacity));
        }
        if expected.silence == Silence::Allowed {
            // Requests a correct remote may leave unanswered (they end only
            // at the timeout) leave an eighth of the room (at least one
            // place) to the requests that are owed.
            let most = self.capacity - (self.capacity / 8).max(1);
            let silent = self
                .pending
                .iter()
                .filter(|p| p.expected.silence == Silence::Allowed)
                .count();
            if silent >= most {
                return Err(TooManyPending(most));
            }
        }
        let now = self.effective(now);
        let id = self.next_id;
        self.next_id += 1;
        self.pending.push_back(Pending {
            id,
            expected: Expected {
                answers: expected.answers.max(1),
                ..expected
            },
            answered: 0,
            reply,
            sent: now,
            deadline: now + self.timeout,
        });
        Ok(id)
    }

    /// Counts a received `reply` as the answer of the oldest request it fits
    /// (trying its kinds in order); a `headers` that fits none goes to the
    /// oldest `getheaders`, whose caller judges it. `None`: it answers no
    /// outstanding request (it is unsolicited).
    pub fn answer(&mut self, reply: &Reply<'_>, now: Instant) -> Option<Answered> {
        let now = self.effective(now);
        let (i, n) = reply
            .kinds
            .iter()
            .find_map(|&kind| {
                self.pending.iter_mut().enumerate().find_map(|(i, p)| {
                    (p.expected.kind == kind)
                        .then(|| p.fits(&reply.key))
                        .filter(|&n| n > 0)
                        .map(|n| (i, n))
                })
            })
            .or_else(|| {
                // A `headers` is never unsolicited: one that fits no request
                // is a wrong answer, for the oldest request's caller to judge.
                if !matches!(reply.key, ReplyKey::Headers { .. }) {
                    return None;
                }
                let i = self
                    .pending
                    .iter()
                    .position(|p| p.expected.kind == RequestKind::Headers)?;
                Some((i, 1))
            })?;
        let timeout = self.timeout;
        let p = &mut self.pending[i];
        p.answered = p.answered.saturating_add(n).min(p.expected.answers);
        p.deadline = now + timeout;
        let proven_height = match (&p.expected.matcher, p.expected.items, reply.key) {
            (Matcher::From(start), Some(want), ReplyKey::Headers { first, len, .. })
                if first == Some(*start) && (len as u64) < u64::from(want) =>
            {
                Some((u64::from(*start) + len as u64).saturating_sub(1) as u32)
            }
            _ => None,
        };
        let answered = Answered {
            id: p.id,
            kind: p.expected.kind,
            latency: now.saturating_duration_since(p.sent),
            complete: p.answered >= p.expected.answers,
            reply: p.reply,
            proven_height,
        };
        if answered.complete {
            self.pending.remove(i);
        }
        Some(answered)
    }

    /// Forgets the request `id`, answered or not. Returns whether it was outstanding.
    pub fn remove(&mut self, id: RequestId) -> bool {
        match self.pending.iter().position(|p| p.id == id) {
            Some(i) => self.pending.remove(i).is_some(),
            None => false,
        }
    }

    /// Forgets everything outstanding; returns the ids of the requests whose
    /// callers wait for answers.
    pub fn clear(&mut self) -> Vec<RequestId> {
        self.pending
            .drain(..)
            .filter(|p| p.reply)
            .map(|p| p.id)
            .collect()
    }

    /// Stops every deadline from running (local handlers are busy and the
    /// answers cannot be read). Pausing twice is harmless.
    pub fn pause(&mut self, now: Instant) {
        if self.paused_since.is_none() {
            self.paused_since = Some(now);
        }
    }

    /// Lets deadlines run again; they are pushed back by the paused time.
    pub fn resume(&mut self, now: Instant) {
        if let Some(since) = self.paused_since.take() {
            let paused = now.saturating_duration_since(since);
            for p in &mut self.pending {
                p.deadline += paused;
                p.sent += paused;
            }
        }
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Takes out the request whose deadline passed first at `now`, if any.
    /// Nothing expires while paused.
    pub fn expired(&mut self, now: Instant) -> Option<Expired> {
        if self.paused_since.is_some() {
            return None;
        }
        let (i, _) = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.deadline <= now)
            .min_by_key(|(_, p)| p.deadline)?;
        let p = self.pending.remove(i)?;
        Some(Expired {
            id: p.id,
            kind: p.expected.kind,
            silence: p.expected.silence,
            reply: p.reply,
        })
    }

    /// The earliest deadline (for arming a timer); `None` when idle or paused.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.paused_since.is_some() {
            return None;
        }
        self.pending.iter().map(|p| p.deadline).min()
    }

    // While paused, time does not move for the remote.
    fn effective(&self, now: Instant) -> Instant {
        self.paused_since.map_or(now, |since| since.min(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::UInt256;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn owed(kind: RequestKind, matcher: Matcher, answers: u32) -> Expected {
        Expected {
            kind,
            matcher,
            answers,
            silence: Silence::Stall,
            items: None,
        }
    }

    fn headers(first: u32, len: usize) -> Reply<'static> {
        Reply {
            kinds: &[RequestKind::Headers],
            key: ReplyKey::Headers {
                first: Some(first),
                after: None,
                len,
            },
        }
    }

    fn block(index: u32) -> Reply<'static> {
        Reply {
            kinds: &[RequestKind::BlocksByIndex, RequestKind::Data],
            key: ReplyKey::Block {
                index,
                hash: UInt256([index as u8; 32]),
            },
        }
    }

    #[test]
    fn requests_that_may_go_unanswered_leave_room_for_the_owed_ones() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(60), 16);
        let silent = || Expected {
            silence: Silence::Allowed,
            ..owed(RequestKind::Data, Matcher::Any, 1)
        };
        for _ in 0..14 {
            d.arm(silent(), false, t0).unwrap();
        }
        assert_eq!(d.arm(silent(), false, t0), Err(TooManyPending(14)));
        // The owed ones still find room, up to the capacity.
        for _ in 0..2 {
            d.arm(owed(RequestKind::Ping, Matcher::Any, 1), true, t0)
                .unwrap();
        }
        let full = d.arm(owed(RequestKind::Ping, Matcher::Any, 1), true, t0);
        assert_eq!(full, Err(TooManyPending(16)));
    }

    #[test]
    fn unanswered_request_expires_at_its_deadline() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        let id = d
            .arm(owed(RequestKind::Headers, Matcher::From(0), 1), true, t0)
            .unwrap();
        assert_eq!(d.next_deadline(), Some(t0 + s(10)));
        assert_eq!(d.expired(t0 + s(9)), None);
        let e = d.expired(t0 + s(10)).unwrap();
        assert_eq!(
            (e.id, e.kind, e.silence),
            (id, RequestKind::Headers, Silence::Stall)
        );
        assert!(d.is_empty());
    }

    #[test]
    fn answer_retires_request_and_reports_latency() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        d.arm(owed(RequestKind::Headers, Matcher::From(5), 1), false, t0)
            .unwrap();
        let a = d.answer(&headers(5, 3), t0 + s(3)).unwrap();
        assert_eq!(a.latency, s(3));
        assert!(a.complete && !a.reply);
        assert!(d.is_empty());
        assert_eq!(d.expired(t0 + s(100)), None);
        assert_eq!(d.answer(&headers(5, 3), t0 + s(4)), None, "unsolicited");
    }

    #[test]
    fn progress_pushes_the_deadline() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        d.arm(
            owed(RequestKind::BlocksByIndex, Matcher::From(7), 3),
            true,
            t0,
        )
        .unwrap();
        assert!(!d.answer(&block(7), t0 + s(8)).unwrap().complete);
        assert_eq!(d.expired(t0 + s(12)), None, "answer moved the deadline");
        assert!(!d.answer(&block(8), t0 + s(16)).unwrap().complete);
        assert!(d.answer(&block(9), t0 + s(17)).unwrap().complete);
        assert!(d.is_empty());
        assert_eq!(d.answer(&block(10), t0 + s(18)), None, "beyond the range");
    }

    #[test]
    fn answers_find_their_own_request() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        let a = d
            .arm(
                owed(RequestKind::BlocksByIndex, Matcher::From(0), 2),
                true,
                t0,
            )
            .unwrap();
        let b = d
            .arm(
                owed(RequestKind::BlocksByIndex, Matcher::From(100), 2),
                true,
                t0,
            )
            .unwrap();
        assert_eq!(d.answer(&block(100), t0).unwrap().id, b);
        assert_eq!(d.answer(&block(0), t0).unwrap().id, a);
        assert_eq!(d.answer(&block(50), t0), None, "in neither range");
        // A headers that fits no request still goes to the oldest getheaders.
        let h = d
            .arm(owed(RequestKind::Headers, Matcher::From(9), 1), true, t0)
            .unwrap();
        assert_eq!(d.answer(&headers(3, 1), t0).unwrap().id, h);
    }

    #[test]
    fn short_headers_prove_a_lower_height() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        let mut e = owed(RequestKind::Headers, Matcher::From(0), 1);
        e.items = Some(2000);
        d.arm(e.clone(), true, t0).unwrap();
        assert_eq!(
            d.answer(&headers(0, 101), t0).unwrap().proven_height,
            Some(100)
        );
        d.arm(e, true, t0).unwrap();
        assert_eq!(d.answer(&headers(0, 2000), t0).unwrap().proven_height, None);
    }

    #[test]
    fn paused_time_is_not_charged() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        d.arm(owed(RequestKind::Headers, Matcher::From(1), 1), true, t0)
            .unwrap();
        d.pause(t0 + s(5));
        assert_eq!(d.expired(t0 + s(60)), None);
        assert_eq!(d.next_deadline(), None);
        d.resume(t0 + s(65));
        assert_eq!(d.next_deadline(), Some(t0 + s(70)));
        assert_eq!(d.expired(t0 + s(69)), None);
        let a = d.answer(&headers(1, 1), t0 + s(66)).unwrap();
        assert_eq!(a.latency, s(6), "latency excludes the pause");
    }

    #[test]
    fn capacity_is_bounded_and_ids_never_reused() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 2);
        let any = || owed(RequestKind::Addr, Matcher::Any, 1);
        d.arm(any(), true, t0).unwrap();
        d.arm(any(), false, t0).unwrap();
        assert_eq!(d.arm(any(), true, t0), Err(TooManyPending(2)));
        assert!(d.remove(1));
        assert!(!d.remove(1));
        assert_eq!(d.arm(any(), true, t0), Ok(2));
        assert_eq!(d.clear(), [0, 2], "the ids callers wait on");
        assert!(d.is_empty());
    }
}
