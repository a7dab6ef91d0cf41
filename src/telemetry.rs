//! What a node built on this crate tells its operator: metrics and logs.
//!
//! # Metrics
//!
//! The crate records metrics through the [`metrics`](https://docs.rs/metrics)
//! facade: nothing is recorded, at the cost of a few loads, until the
//! application installs a recorder (`metrics-exporter-prometheus` for
//! Prometheus, or any other); the facade runs on no runtime of its own. The
//! `neo-peer` tool serves them with `--metrics ADDR`. [`describe`] gives the
//! recorder each metric's help text and unit.
//!
//! Install the recorder before the first peer starts: a peer looks up the
//! handles of its per-command metrics once, the first time it sees each
//! command, and keeps them.
//!
//! The names are stable; every label takes values from a small fixed set.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `neo_peer_peers_connected` | gauge | `direction` | peers that completed the handshake and have not ended, managed or not |
//! | `neo_peer_handshakes_completed_total` | counter | `direction` | handshakes completed |
//! | `neo_peer_handshakes_failed_total` | counter | `direction`, `reason` | connections that ended before the handshake completed |
//! | `neo_peer_handshake_duration_seconds` | histogram | `direction` | from [`Peer::run`] to the completed handshake |
//! | `neo_peer_disconnects_total` | counter | `direction`, `reason` | handshaken peers that ended (`handshakes_completed - disconnects = peers_connected`) |
//! | `neo_peer_received_messages_total` | counter | `command` | messages received |
//! | `neo_peer_received_bytes_total` | counter | `command` | bytes received, framing included |
//! | `neo_peer_sent_messages_total` | counter | `command` | messages sent (queued for the connection) |
//! | `neo_peer_sent_bytes_total` | counter | `command` | bytes sent, framing included |
//! | `neo_peer_handler_duration_seconds` | histogram | `command` | time a handler took over one received message |
//! | `neo_peer_request_duration_seconds` | histogram | `request` | round trip of a request: from sending it to its last answer (time the local handler was busy not counted) |
//! | `neo_peer_stalls_total` | counter | `request` | requests left unanswered past the stall timeout (each drops its peer) |
//! | `neo_peer_misbehaviour_points_total` | counter | | misbehaviour points a [`PeerManager`] gave remotes |
//! | `neo_peer_bans_total` | counter | | addresses a [`PeerManager`] banned |
//! | `neo_peer_book_addresses` | gauge | `table` | addresses in a manager's address book, per table (`new`, `tried`, and `kept` for manual addresses and bans kept aside), updated when the manager starts, a peer joins, addresses are learned and the book is flushed |
//! | `neo_peer_sync_headers` | gauge | | headers the running header sync has fetched and checked |
//! | `neo_peer_sync_target_headers` | gauge | | headers the running header sync wants |
//!
//! The labels:
//!
//! - `direction`: `inbound` or `outbound` ([`Direction`]);
//! - `reason`: [`DisconnectReason::label`] (`remote_closed`, `idle_timeout`,
//!   `stalled`, `handshake_timeout`, `wrong_network`, ...);
//! - `command`: the wire command (`headers`, `getheaders`, `ping`, ...;
//!   every unknown command is `unknown`);
//! - `request`: the command of the request, [`RequestKind::command`]
//!   (`getheaders`, `getblockbyindex`, `getdata`, `getaddr`, `ping`, ...).
//!
//! The same list, for programs, is [`METRICS`].
//!
//! # Logs
//!
//! The crate logs through [`tracing`](https://docs.rs/tracing). Every peer has a
//! span, `peer`, with the fields `id` (its [`Peer::id`]), `protocol`, `remote`
//! (its address, when known) and `direction`; everything the peer's tasks
//! log (its driver, its handler), and what a [`PeerManager`] logs about the
//! peer, is inside it, so each line names its peer. The span is at the
//! `error` level, so that a filter that lets any of the peer's events
//! through keeps it too. [`Peer::span`] gives it, to put your own work on a
//! peer inside it. What has no peer yet (a failed dial, a refused connection,
//! a ban) names the address as `remote`.
//!
//! | level | what |
//! |---|---|
//! | `warn` | a disconnect or failed handshake for the remote's fault (a stall, a bad frame, a broken rule, a blocked write, misbehaviour), a ban |
//! | `info` | a handshake completed, any other disconnect or failed handshake, a failed dial |
//! | `debug` | misbehaviour points, unknown commands, refused inbound connections |
//! | `trace` | every message each way: its command and size |
//!
//! [`Peer::run`]: crate::peer::Peer::run
//! [`Peer::id`]: crate::peer::Peer::id
//! [`Peer::span`]: crate::peer::Peer::span
//! [`PeerManager`]: crate::manager::PeerManager
//! [`Direction`]: crate::peer::Direction
//! [`DisconnectReason::label`]: crate::peer::DisconnectReason::label
//! [`RequestKind::command`]: crate::protocol::RequestKind::command

use std::fmt;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::book::AddressBook;
use crate::peer::{Direction, DisconnectReason};
use crate::protocol::RequestKind;

/// Peers handshaken and not ended, by `direction`.
pub const PEERS_CONNECTED: &str = "neo_peer_peers_connected";
/// Handshakes completed, by `direction`.
pub const HANDSHAKES_COMPLETED: &str = "neo_peer_handshakes_completed_total";
/// Connections that ended before the handshake, by `direction` and `reason`.
pub const HANDSHAKES_FAILED: &str = "neo_peer_handshakes_failed_total";
/// Handshake durations, by `direction`.
pub const HANDSHAKE_DURATION: &str = "neo_peer_handshake_duration_seconds";
/// Handshaken peers that ended, by `direction` and `reason`.
pub const DISCONNECTS: &str = "neo_peer_disconnects_total";
/// Messages received, by `command`.
pub const RECEIVED_MESSAGES: &str = "neo_peer_received_messages_total";
/// Bytes received, by `command`.
pub const RECEIVED_BYTES: &str = "neo_peer_received_bytes_total";
/// Messages sent, by `command`.
pub const SENT_MESSAGES: &str = "neo_peer_sent_messages_total";
/// Bytes sent, by `command`.
pub const SENT_BYTES: &str = "neo_peer_sent_bytes_total";
/// Handler time per received message, by `command`.
pub const HANDLER_DURATION: &str = "neo_peer_handler_duration_seconds";
/// Request round trips, by `request`.
pub const REQUEST_DURATION: &str = "neo_peer_request_duration_seconds";
/// Stalled requests, by `request`.
pub const STALLS: &str = "neo_peer_stalls_total";
/// Misbehaviour points given.
pub const MISBEHAVIOUR_POINTS: &str = "neo_peer_misbehaviour_points_total";
/// Bans.
pub const BANS: &str = "neo_peer_bans_total";
/// Address book sizes, by `table`.
pub const BOOK_ADDRESSES: &str = "neo_peer_book_addresses";
/// Headers a header sync has.
pub const SYNC_HEADERS: &str = "neo_peer_sync_headers";
/// Headers a header sync wants.
pub const SYNC_TARGET: &str = "neo_peer_sync_target_headers";

/// What kind of value a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of observations (durations, in seconds).
    Histogram,
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        })
    }
}

/// One metric the crate records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// Its name.
    pub name: &'static str,
    /// Its kind.
    pub kind: MetricKind,
    /// The names of its labels.
    pub labels: &'static [&'static str],
    /// What it counts or measures.
    pub help: &'static str,
}

const fn metric(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        labels,
        help,
    }
}

use MetricKind::{Counter as C, Gauge as G, Histogram as H};

/// Every metric the crate records (the table of the [module docs](self)).
pub const METRICS: &[Metric] = &[
    metric(
        PEERS_CONNECTED,
        G,
        &["direction"],
        "Peers that completed the handshake and have not ended.",
    ),
    metric(
        HANDSHAKES_COMPLETED,
        C,
        &["direction"],
        "Handshakes completed.",
    ),
    metric(
        HANDSHAKES_FAILED,
        C,
        &["direction", "reason"],
        "Connections that ended before the handshake completed.",
    ),
    metric(
        HANDSHAKE_DURATION,
        H,
        &["direction"],
        "Time from starting a peer to its completed handshake.",
    ),
    metric(
        DISCONNECTS,
        C,
        &["direction", "reason"],
        "Handshaken peers that ended.",
    ),
    metric(RECEIVED_MESSAGES, C, &["command"], "Messages received."),
    metric(
        RECEIVED_BYTES,
        C,
        &["command"],
        "Bytes received, framing included.",
    ),
    metric(SENT_MESSAGES, C, &["command"], "Messages sent."),
    metric(SENT_BYTES, C, &["command"], "Bytes sent, framing included."),
    metric(
        HANDLER_DURATION,
        H,
        &["command"],
        "Time a handler took over one received message.",
    ),
    metric(
        REQUEST_DURATION,
        H,
        &["request"],
        "Round trip of a request, from sending it to its last answer.",
    ),
    metric(
        STALLS,
        C,
        &["request"],
        "Requests left unanswered past the stall timeout.",
    ),
    metric(
        MISBEHAVIOUR_POINTS,
        C,
        &[],
        "Misbehaviour points given to remotes.",
    ),
    metric(BANS, C, &[], "Addresses banned."),
    metric(
        BOOK_ADDRESSES,
        G,
        &["table"],
        "Addresses in the address book, per table.",
    ),
    metric(
        SYNC_HEADERS,
        G,
        &[],
        "Headers the header sync has fetched and checked.",
    ),
    metric(SYNC_TARGET, G, &[], "Headers the header sync wants."),
];

/// Gives the installed recorder the help text and unit of every metric in
/// [`METRICS`]. Call it once, after installing the recorder.
pub fn describe() {
    for m in METRICS {
        let unit = if m.name.ends_with("_seconds") {
            Unit::Seconds
        } else if m.name.ends_with("_bytes_total") {
            Unit::Bytes
        } else {
            Unit::Count
        };
        match m.kind {
            C => metrics::describe_counter!(m.name, unit, m.help),
            G => metrics::describe_gauge!(m.name, unit, m.help),
            H => metrics::describe_histogram!(m.name, unit, m.help),
        }
    }
}

// ---- what the crate records, at its few call sites

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

/// A handshake completed after `took`.
pub(crate) fn handshake_completed(d: Direction, took: Duration) {
    metrics::counter!(HANDSHAKES_COMPLETED, "direction" => direction(d)).increment(1);
    metrics::histogram!(HANDSHAKE_DURATION, "direction" => direction(d)).record(took);
}

/// A connection ended before its handshake completed.
pub(crate) fn handshake_failed(d: Direction, reason: &DisconnectReason) {
    metrics::counter!(HANDSHAKES_FAILED, "direction" => direction(d), "reason" => reason.label())
        .increment(1);
}

/// A request completed: its last answer came `took` after it was sent.
pub(crate) fn request_completed(kind: RequestKind, took: Duration) {
    metrics::histogram!(REQUEST_DURATION, "request" => kind.command()).record(took);
}

/// A manager gave `points` misbehaviour points; `banned` if they made a ban.
pub(crate) fn penalised(points: u32, banned: bool) {
    metrics::counter!(MISBEHAVIOUR_POINTS).increment(u64::from(points));
    if banned {
        metrics::counter!(BANS).increment(1);
    }
}

/// The sizes of `book`'s tables. The one place that knows what the book
/// exposes: a manager calls it when it starts, when a peer joins, when it
/// learns addresses and after each flush.
pub(crate) fn address_book(book: &AddressBook) {
    let counts = book.counts();
    metrics::gauge!(BOOK_ADDRESSES, "table" => "new").set(counts.new as f64);
    metrics::gauge!(BOOK_ADDRESSES, "table" => "tried").set(counts.tried as f64);
    metrics::gauge!(BOOK_ADDRESSES, "table" => "kept").set(counts.kept as f64);
}

/// A header sync has `headers` of the `target` it wants.
pub(crate) fn sync_progress(headers: u64, target: u64) {
    metrics::gauge!(SYNC_HEADERS).set(headers as f64);
    metrics::gauge!(SYNC_TARGET).set(target as f64);
}

/// A handshaken peer, counted in [`PEERS_CONNECTED`] until it ends (or,
/// should its driver be dropped without seeing the end, until dropped).
pub(crate) struct LivePeer {
    direction: Direction,
    gauge: Gauge,
    ended: bool,
}

impl LivePeer {
    /// A peer of direction `d` completed its handshake.
    pub(crate) fn new(d: Direction) -> Self {
        let gauge = metrics::gauge!(PEERS_CONNECTED, "direction" => direction(d));
        gauge.increment(1.0);
        LivePeer {
            direction: d,
            gauge,
            ended: false,
        }
    }

    /// The peer ended, for `reason`.
    pub(crate) fn end(&mut self, reason: &DisconnectReason) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.gauge.decrement(1.0);
        let d = direction(self.direction);
        metrics::counter!(DISCONNECTS, "direction" => d, "reason" => reason.label()).increment(1);
        if let DisconnectReason::Stalled(kind) = reason {
            metrics::counter!(STALLS, "request" => kind.command()).increment(1);
        }
    }
}

impl Drop for LivePeer {
    fn drop(&mut self) {
        if !self.ended {
            self.gauge.decrement(1.0);
        }
    }
}

/// The metric handles of one command of one peer, each looked up the first
/// time it is used (a command a peer only receives never registers a
/// "sent" series).
#[derive(Default)]
pub(crate) struct CommandMeters {
    received: Option<[Counter; 2]>,
    sent: Option<[Counter; 2]>,
    handled: Option<Histogram>,
}

impl fmt::Debug for CommandMeters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandMeters")
            .field("received", &self.received.is_some())
            .field("sent", &self.sent.is_some())
            .field("handled", &self.handled.is_some())
            .finish()
    }
}

fn pair(messages: &'static str, bytes: &'static str, command: &str) -> [Counter; 2] {
    [
        metrics::counter!(messages, "command" => command.to_owned()),
        metrics::counter!(bytes, "command" => command.to_owned()),
    ]
}

impl CommandMeters {
    /// A message of `command`, `bytes` long, was received.
    pub(crate) fn received(&mut self, command: &str, bytes: usize) {
        let [messages, total] = self
            .received
            .get_or_insert_with(|| pair(RECEIVED_MESSAGES, RECEIVED_BYTES, command));
        messages.increment(1);
        total.increment(bytes as u64);
    }

    /// A message of `command`, `bytes` long, was sent.
    pub(crate) fn sent(&mut self, command: &str, bytes: usize) {
        let [messages, total] = self
            .sent
            .get_or_insert_with(|| pair(SENT_MESSAGES, SENT_BYTES, command));
        messages.increment(1);
        total.increment(bytes as u64);
    }

    /// A handler took `took` over a message of `command`.
    pub(crate) fn handled(&mut self, command: &str, took: Duration) {
        self.handled
            .get_or_insert_with(
                || metrics::histogram!(HANDLER_DURATION, "command" => command.to_owned()),
            )
            .record(took);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The table of the module docs, row by row: name, type, labels.
    fn documented() -> Vec<(String, String, Vec<String>)> {
        include_str!("telemetry.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//! | `neo_peer_"))
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let name = format!("neo_peer_{}", cells[0].trim_end_matches('`'));
                let labels = cells[2]
                    .split(", ")
                    .map(|l| l.trim().trim_matches('`').to_string())
                    .filter(|l| !l.is_empty())
                    .collect();
                (name, cells[1].to_string(), labels)
            })
            .collect()
    }

    #[test]
    fn the_docs_table_is_the_list() {
        let listed: Vec<_> = METRICS
            .iter()
            .map(|m| {
                let labels = m.labels.iter().map(|l| l.to_string()).collect();
                (m.name.to_string(), m.kind.to_string(), labels)
            })
            .collect();
        assert_eq!(documented(), listed);
    }

    #[test]
    fn names_are_prefixed_unique_and_conventional() {
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        for m in METRICS {
            assert!(m.name.starts_with("neo_peer_"), "{}", m.name);
            assert_eq!(
                m.kind == MetricKind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            if m.kind == MetricKind::Histogram {
                assert!(m.name.ends_with("_seconds"), "{}", m.name);
            }
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
    }

    /// What `f` records, as Prometheus text.
    pub(crate) fn recorded(f: impl FnOnce()) -> String {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    /// The value of the series `series` (name and labels, as rendered).
    pub(crate) fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn a_peer_counts_in_the_gauge_until_it_ends_once() {
        let mut still_there = None;
        let text = recorded(|| {
            let mut a = LivePeer::new(Direction::Inbound);
            let b = LivePeer::new(Direction::Inbound);
            let c = LivePeer::new(Direction::Outbound);
            a.end(&DisconnectReason::Stalled(RequestKind::Headers));
            a.end(&DisconnectReason::Shutdown);
            drop(a);
            drop(c);
            still_there = Some(b);
        });
        drop(still_there);
        let gauge = |d: &str| value(&text, &format!("{PEERS_CONNECTED}{{direction=\"{d}\"}}"));
        assert_eq!(gauge("inbound"), Some(1.0), "{text}");
        assert_eq!(gauge("outbound"), Some(0.0), "{text}");
        let series = format!("{DISCONNECTS}{{direction=\"inbound\",reason=\"stalled\"}}");
        assert_eq!(value(&text, &series), Some(1.0), "{text}");
        assert!(!text.contains("reason=\"shutdown\""), "{text}");
        let stalls = format!("{STALLS}{{request=\"getheaders\"}}");
        assert_eq!(value(&text, &stalls), Some(1.0), "{text}");
    }

    #[test]
    fn command_series_appear_only_for_the_direction_used() {
        let text = recorded(|| {
            let mut m = CommandMeters::default();
            m.received("headers", 700);
            m.received("headers", 300);
            m.handled("headers", Duration::from_millis(3));
        });
        let series = |name: &str| format!("{name}{{command=\"headers\"}}");
        assert_eq!(value(&text, &series(RECEIVED_MESSAGES)), Some(2.0));
        assert_eq!(value(&text, &series(RECEIVED_BYTES)), Some(1000.0));
        assert_eq!(
            value(&text, &series(&format!("{HANDLER_DURATION}_count"))),
            Some(1.0)
        );
        assert!(!text.contains(SENT_MESSAGES), "{text}");
    }
}
