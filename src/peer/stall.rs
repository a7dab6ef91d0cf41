//! Stall detection: a request that is not answered in time condemns the peer.
//!
//! This is plain logic with no clock of its own: every method takes the
//! current [`Instant`], so tests drive it with made-up times.
//!
//! Each request that expects an answer is *armed* with the number of answers
//! it expects (one `headers` for a `getheaders`, one `block` per hash for a
//! `getdata`). Every answer pushes that request's deadline forward (a long
//! transfer that keeps making progress is not a stall) and the last answer
//! retires it. Time the local side spends unable to read — its handlers are
//! busy and the reader is held back — is not the remote's fault: while the
//! detector is [paused](StallDetector::pause) no deadline runs.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// A request could not be armed because too many are already outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many outstanding requests ({0})")]
pub struct TooManyPending(pub usize);

/// Identifies one armed request (unique per detector).
pub type RequestId = u64;

/// What an answer did to the request it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered<K> {
    /// The request kind that was answered.
    pub kind: K,
    /// The request that was answered.
    pub id: RequestId,
    /// Time from sending the request to this answer (paused time excluded).
    pub latency: Duration,
    /// True when this was the last answer the request expected.
    pub complete: bool,
}

#[derive(Debug, Clone)]
struct Pending<K> {
    id: RequestId,
    kind: K,
    remaining: u32,
    sent: Instant,
    deadline: Instant,
}

/// Outstanding requests of one peer and their deadlines.
#[derive(Debug, Clone)]
pub struct StallDetector<K> {
    timeout: Duration,
    capacity: usize,
    pending: VecDeque<Pending<K>>,
    paused_since: Option<Instant>,
    next_id: RequestId,
}

impl<K: Copy + Eq + Debug> StallDetector<K> {
    /// A detector that allows `timeout` per answer and at most `capacity` outstanding requests.
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
    pub fn pending_of(&self, kind: K) -> usize {
        self.pending.iter().filter(|p| p.kind == kind).count()
    }

    /// Records a request sent at `now` that expects `answers` answers (at least one).
    pub fn arm(
        &mut self,
        kind: K,
        answers: u32,
        now: Instant,
    ) -> Result<RequestId, TooManyPending> {
        if self.pending.len() >= self.capacity {
            return Err(TooManyPending(self.capacity));
        }
        let now = self.effective(now);
        let id = self.next_id;
        self.next_id += 1;
        self.pending.push_back(Pending {
            id,
            kind,
            remaining: answers.max(1),
            sent: now,
            deadline: now + self.timeout,
        });
        Ok(id)
    }

    /// Counts one answer to the oldest outstanding request of `kind`.
    ///
    /// Returns `None` when no such request is outstanding (an unsolicited answer).
    pub fn answer(&mut self, kind: K, now: Instant) -> Option<Answered<K>> {
        self.answer_many(kind, 1, now)
    }

    /// Counts `n` answers at once (e.g. a `notfound` listing several hashes).
    pub fn answer_many(&mut self, kind: K, n: u32, now: Instant) -> Option<Answered<K>> {
        let now = self.effective(now);
        let i = self.pending.iter().position(|p| p.kind == kind)?;
        let timeout = self.timeout;
        let p = &mut self.pending[i];
        p.remaining = p.remaining.saturating_sub(n.max(1));
        p.deadline = now + timeout;
        let answered = Answered {
            kind,
            id: p.id,
            latency: now.saturating_duration_since(p.sent),
            complete: p.remaining == 0,
        };
        if answered.complete {
            self.pending.remove(i);
        }
        Some(answered)
    }

    /// Forgets the oldest outstanding request of `kind` without an answer
    /// (the caller learnt that silence is legitimate). Returns whether one was found.
    pub fn cancel(&mut self, kind: K) -> bool {
        self.remove_first(|p| p.kind == kind)
    }

    /// Forgets the request `id`, answered or not. Returns whether it was outstanding.
    pub fn remove(&mut self, id: RequestId) -> bool {
        self.remove_first(|p| p.id == id)
    }

    fn remove_first(&mut self, which: impl Fn(&Pending<K>) -> bool) -> bool {
        match self.pending.iter().position(which) {
            Some(i) => self.pending.remove(i).is_some(),
            None => false,
        }
    }

    /// Forgets everything outstanding.
    pub fn clear(&mut self) {
        self.pending.clear();
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

    /// The first request whose deadline has passed at `now`, if any.
    /// Nothing expires while paused.
    pub fn expired(&self, now: Instant) -> Option<K> {
        if self.paused_since.is_some() {
            return None;
        }
        self.pending
            .iter()
            .filter(|p| p.deadline <= now)
            .min_by_key(|p| p.deadline)
            .map(|p| p.kind)
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

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Req {
        Headers,
        Data,
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn unanswered_request_expires_at_its_deadline() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        d.arm(Req::Headers, 1, t0).unwrap();
        assert_eq!(d.next_deadline(), Some(t0 + s(10)));
        assert_eq!(d.expired(t0 + s(9)), None);
        assert_eq!(d.expired(t0 + s(10)), Some(Req::Headers));
    }

    #[test]
    fn answer_retires_request_and_reports_latency() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        d.arm(Req::Headers, 1, t0).unwrap();
        let a = d.answer(Req::Headers, t0 + s(3)).unwrap();
        assert_eq!(a.latency, s(3));
        assert!(a.complete);
        assert!(d.is_empty());
        assert_eq!(d.expired(t0 + s(100)), None);
        assert_eq!(d.answer(Req::Headers, t0 + s(4)), None, "unsolicited");
    }

    #[test]
    fn progress_pushes_the_deadline() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        d.arm(Req::Data, 3, t0).unwrap();
        assert!(!d.answer(Req::Data, t0 + s(8)).unwrap().complete);
        assert_eq!(d.expired(t0 + s(12)), None, "answer moved the deadline");
        assert!(!d.answer(Req::Data, t0 + s(16)).unwrap().complete);
        assert_eq!(d.expired(t0 + s(26)), Some(Req::Data));
        assert!(d.answer(Req::Data, t0 + s(17)).unwrap().complete);
        assert!(d.is_empty());
    }

    #[test]
    fn paused_time_is_not_charged() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        d.arm(Req::Headers, 1, t0).unwrap();
        d.pause(t0 + s(5));
        assert_eq!(d.expired(t0 + s(60)), None);
        assert_eq!(d.next_deadline(), None);
        d.resume(t0 + s(65));
        assert_eq!(d.next_deadline(), Some(t0 + s(70)));
        assert_eq!(d.expired(t0 + s(69)), None);
        assert_eq!(d.expired(t0 + s(70)), Some(Req::Headers));
        // latency excludes the pause
        let a = d.answer(Req::Headers, t0 + s(66)).unwrap();
        assert_eq!(a.latency, s(6));
    }

    #[test]
    fn answers_go_to_the_oldest_request_of_their_kind() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 8);
        d.arm(Req::Headers, 1, t0).unwrap();
        d.arm(Req::Data, 1, t0 + s(1)).unwrap();
        d.arm(Req::Headers, 1, t0 + s(2)).unwrap();
        assert_eq!(d.answer(Req::Headers, t0 + s(3)).unwrap().latency, s(3));
        assert_eq!(d.pending_of(Req::Headers), 1);
        assert_eq!(d.expired(t0 + s(11)), Some(Req::Data));
        assert!(d.cancel(Req::Data));
        assert_eq!(d.expired(t0 + s(11)), None);
        assert_eq!(d.expired(t0 + s(12)), Some(Req::Headers));
    }

    #[test]
    fn capacity_is_bounded() {
        let t0 = Instant::now();
        let mut d = StallDetector::new(s(10), 2);
        d.arm(Req::Data, 1, t0).unwrap();
        d.arm(Req::Data, 1, t0).unwrap();
        assert_eq!(d.arm(Req::Data, 1, t0), Err(TooManyPending(2)));
        assert!(d.remove(1));
        assert!(!d.remove(1));
        assert_eq!(d.arm(Req::Data, 1, t0), Ok(2), "ids are never reused");
        d.clear();
        assert!(d.is_empty());
    }
}
