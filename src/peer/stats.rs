//! Per-command statistics of one peer.
//!
//! Counters are kept per command name: messages and bytes in each direction,
//! time spent in handlers, and round-trip latency of the requests that command
//! answered. [`Stats::snapshot`] can be called at any time, from any thread.
//!
//! The same counts feed the process-wide metrics of [`crate::telemetry`]
//! (messages, bytes and handler time per command, request round trips per
//! request): this is the one place both are counted.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::stall::Answered;
use crate::telemetry::{self, CommandMeters};

/// Most distinct command names tracked; further names (only unknown commands
/// can produce them) are counted under [`OTHER`], so a peer cannot grow the map.
pub const MAX_TRACKED_COMMANDS: usize = 64;

/// Bucket for commands beyond [`MAX_TRACKED_COMMANDS`].
pub const OTHER: &str = "(other)";

/// Request round-trip latencies of one command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Number of round trips measured.
    pub count: u64,
    /// Sum of all round trips.
    pub total: Duration,
    /// Shortest round trip.
    pub min: Duration,
    /// Longest round trip.
    pub max: Duration,
}

impl Latency {
    /// Records one round trip.
    pub fn record(&mut self, d: Duration) {
        if self.count == 0 || d < self.min {
            self.min = d;
        }
        self.max = self.max.max(d);
        self.count += 1;
        self.total += d;
    }

    /// Mean round trip, if any was measured.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| self.total / self.count.min(u64::from(u32::MAX)) as u32)
    }
}

/// Counters of one command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandStats {
    /// Messages received.
    pub messages_in: u64,
    /// Bytes received, framing included.
    pub bytes_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Bytes sent, framing included.
    pub bytes_out: u64,
    /// Handler invocations for received messages.
    pub handled: u64,
    /// Time spent in handlers.
    pub handler_time: Duration,
    /// Round trips of requests answered by this command.
    pub latency: Latency,
}

/// A copy of every counter at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Counters per command name.
    pub commands: BTreeMap<String, CommandStats>,
}

impl StatsSnapshot {
    /// Counters of one command (all zero if it was never seen).
    pub fn get(&self, command: &str) -> CommandStats {
        self.commands.get(command).copied().unwrap_or_default()
    }

    /// Sum over all commands.
    pub fn total(&self) -> CommandStats {
        let mut t = CommandStats::default();
        for c in self.commands.values() {
            t.messages_in += c.messages_in;
            t.bytes_in += c.bytes_in;
            t.messages_out += c.messages_out;
            t.bytes_out += c.bytes_out;
            t.handled += c.handled;
            t.handler_time += c.handler_time;
            if c.latency.count > 0 {
                let l = &mut t.latency;
                if l.count == 0 || c.latency.min < l.min {
                    l.min = c.latency.min;
                }
                l.max = l.max.max(c.latency.max);
                l.count += c.latency.count;
                l.total += c.latency.total;
            }
        }
        t
    }
}

impl fmt::Display for StatsSnapshot {
    /// A table with one row per command, as the command-line tool prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:>9} {:>12} {:>9} {:>12} {:>11} {:>11}",
            "command", "msgs in", "bytes in", "msgs out", "bytes out", "handler ms", "rtt ms"
        )?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for (name, c) in &self.commands {
            let rtt = c
                .latency
                .mean()
                .map_or_else(|| "-".to_string(), |d| format!("{:.2}", ms(d)));
            writeln!(
                f,
                "{:<16} {:>9} {:>12} {:>9} {:>12} {:>11.2} {:>11}",
                name,
                c.messages_in,
                c.bytes_in,
                c.messages_out,
                c.bytes_out,
                ms(c.handler_time),
                rtt
            )?;
        }
        Ok(())
    }
}

/// Shared, thread-safe statistics of one peer (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    // A short list rather than a map: an idle peer has seen two or three
    // commands, and a B-tree node for them would take 1.5 KiB.
    inner: Arc<Mutex<Vec<Entry>>>,
}

/// The counters of one command, and the handles of its metrics.
#[derive(Debug)]
struct Entry {
    name: String,
    counts: CommandStats,
    meters: CommandMeters,
}

impl Stats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // A panic while holding this lock cannot leave the counters inconsistent
        // in a way that matters, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, command: &str, f: impl FnOnce(&mut Entry)) {
        let mut list = self.lock();
        let key = if list.len() < MAX_TRACKED_COMMANDS || list.iter().any(|e| e.name == command) {
            command
        } else {
            OTHER
        };
        match list.iter_mut().find(|e| e.name == key) {
            Some(e) => f(e),
            None => {
                let mut e = Entry {
                    name: key.to_string(),
                    counts: CommandStats::default(),
                    meters: CommandMeters::default(),
                };
                f(&mut e);
                // One more place, not double: most peers see a few commands,
                // and a new command is rare enough to pay for the move.
                list.reserve_exact(1);
                list.push(e);
            }
        }
    }

    /// Counts a received message of `bytes` bytes.
    pub fn received(&self, command: &str, bytes: usize) {
        self.update(command, |e| {
            e.counts.messages_in += 1;
            e.counts.bytes_in += bytes as u64;
            e.meters.received(&e.name, bytes);
        });
    }

    /// Counts a sent message of `bytes` bytes.
    pub fn sent(&self, command: &str, bytes: usize) {
        self.update(command, |e| {
            e.counts.messages_out += 1;
            e.counts.bytes_out += bytes as u64;
            e.meters.sent(&e.name, bytes);
        });
    }

    /// Counts one handler run that took `took`.
    pub fn handled(&self, command: &str, took: Duration) {
        self.update(command, |e| {
            e.counts.handled += 1;
            e.counts.handler_time += took;
            e.meters.handled(&e.name, took);
        });
    }

    /// Records `answer`, a message of `command` that answered a request:
    /// its latency under `command` and, when it was the request's last
    /// answer, the request's round trip.
    pub fn answered(&self, command: &str, answer: &Answered) {
        self.update(command, |e| e.counts.latency.record(answer.latency));
        if answer.complete {
            telemetry::request_completed(answer.kind, answer.latency);
        }
    }

    /// A copy of every counter now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            commands: self
                .lock()
                .iter()
                .map(|e| (e.name.clone(), e.counts))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RequestKind;
    use crate::telemetry::tests::{recorded, value};

    fn answer(ms: u64, complete: bool) -> Answered {
        Answered {
            id: 1,
            kind: RequestKind::Headers,
            latency: Duration::from_millis(ms),
            complete,
            reply: false,
            proven_height: None,
        }
    }

    #[test]
    fn the_same_counts_reach_the_metrics() {
        let text = recorded(|| {
            let s = Stats::new();
            s.received("headers", 700);
            s.received("headers", 300);
            s.sent("getheaders", 9);
            s.handled("headers", Duration::from_millis(2));
            // Two answers of one request: one round trip.
            s.answered("block", &answer(10, false));
            s.answered("block", &answer(30, true));
        });
        let series = |name: &str, label: &str| value(&text, &format!("{name}{{{label}}}"));
        let headers = "command=\"headers\"";
        assert_eq!(
            series("neo_peer_received_messages_total", headers),
            Some(2.0)
        );
        assert_eq!(
            series("neo_peer_received_bytes_total", headers),
            Some(1000.0)
        );
        let get = "command=\"getheaders\"";
        assert_eq!(series("neo_peer_sent_messages_total", get), Some(1.0));
        assert_eq!(series("neo_peer_sent_bytes_total", get), Some(9.0));
        assert_eq!(
            series("neo_peer_handler_duration_seconds_count", headers),
            Some(1.0)
        );
        let request = "request=\"getheaders\"";
        assert_eq!(
            series("neo_peer_request_duration_seconds_count", request),
            Some(1.0)
        );
        assert_eq!(
            series("neo_peer_request_duration_seconds_sum", request),
            Some(0.03)
        );
    }

    #[test]
    fn counts_per_command_and_totals() {
        let s = Stats::new();
        s.received("headers", 700);
        s.received("headers", 300);
        s.sent("getheaders", 9);
        s.handled("headers", Duration::from_millis(2));
        s.answered("headers", &answer(10, true));
        s.answered("headers", &answer(30, true));
        let snap = s.snapshot();
        let h = snap.get("headers");
        assert_eq!((h.messages_in, h.bytes_in), (2, 1000));
        assert_eq!(h.handler_time, Duration::from_millis(2));
        assert_eq!(h.latency.mean(), Some(Duration::from_millis(20)));
        assert_eq!(h.latency.min, Duration::from_millis(10));
        assert_eq!(h.latency.max, Duration::from_millis(30));
        assert_eq!(snap.get("getheaders").bytes_out, 9);
        assert_eq!(snap.get("ping"), CommandStats::default());
        let t = snap.total();
        assert_eq!((t.messages_in, t.messages_out, t.latency.count), (2, 1, 2));
        let table = snap.to_string();
        assert!(table.contains("headers") && table.contains("getheaders"));
    }

    #[test]
    fn distinct_names_are_bounded() {
        let s = Stats::new();
        for i in 0..1000 {
            s.received(&format!("junk{i}"), 1);
        }
        let snap = s.snapshot();
        assert_eq!(snap.commands.len(), MAX_TRACKED_COMMANDS + 1);
        assert_eq!(
            snap.get(OTHER).messages_in,
            1000 - MAX_TRACKED_COMMANDS as u64
        );
        assert_eq!(snap.total().messages_in, 1000);
    }
}
