//! What the commands print: tables and durations for a person, a progress
//! bar on a terminal, or one JSON object per line for a program (`--json`).

use std::io::Write;
use std::time::{Duration, Instant};

use comfy_table::{CellAlignment, Table, presets};
use indicatif::{HumanDuration, ProgressBar, ProgressState, ProgressStyle};
use serde_json::Value;

/// A table without borders: columns two spaces apart, each as wide as its
/// widest cell in terminal columns (a long user agent widens its column
/// instead of pushing the next ones), the columns numbered in `right`
/// aligned right. One line per row, no trailing spaces.
pub fn table(
    header: &[&str],
    right: &[usize],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    let last = header.len().saturating_sub(1);
    for (i, column) in t.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 2 }));
        if right.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    t.lines()
        .map(|line| format!("{}\n", line.trim_end()))
        .collect()
}

/// `n` and the noun that goes with it: `1 peer`, `2 peers`.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// How long ago, short: `8s ago`, `12m ago`, `3h ago`.
pub fn ago(ms: u64) -> String {
    format!("{:#} ago", HumanDuration(Duration::from_millis(ms)))
}

/// How long until, short: `in 45s`, `in 2h`.
pub fn within(ms: u64) -> String {
    format!("in {:#}", HumanDuration(Duration::from_millis(ms)))
}

/// Where a command's running commentary goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// Lines for a person on standard error, a progress bar on a terminal.
    Human,
    /// One JSON object per line on standard output.
    Json,
}

impl Out {
    /// `--json` or not.
    pub fn new(json: bool) -> Self {
        if json { Out::Json } else { Out::Human }
    }

    /// Reports one event: `text` on standard error for a person, or
    /// `{"event": name, ...fields}` on standard output.
    pub fn event(self, name: &str, fields: Value, text: impl FnOnce() -> String) {
        match self {
            Out::Human => eprintln!("{}", text()),
            Out::Json => json_line(name, fields),
        }
    }

    /// Reports what the command produced: `text` on standard output for a
    /// person (a line, or several), or the event.
    pub fn outcome(self, name: &str, fields: Value, text: impl FnOnce() -> String) {
        match self {
            Out::Human => {
                let text = text();
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{}", text.trim_end_matches('\n'));
                let _ = stdout.flush();
            }
            Out::Json => json_line(name, fields),
        }
    }

    /// Reports one event for programs only (`--json`); a person sees it in
    /// a table or a progress bar instead.
    pub fn record(self, name: &str, fields: Value) {
        if self == Out::Json {
            json_line(name, fields);
        }
    }

    /// Progress towards a total of `unit`s: a bar on a terminal, a
    /// `progress` event at most once a second with `--json`, nothing else.
    pub fn progress(self, unit: &'static str) -> Progress {
        let bar = match self {
            // Draws on standard error, and only when that is a terminal.
            Out::Human => ProgressBar::new(0),
            Out::Json => ProgressBar::hidden(),
        };
        let template =
            "[{elapsed_precise}] [{bar:40}] {human_pos}/{human_len} {msg} ({rate}, {eta} left)";
        if let Ok(style) = ProgressStyle::with_template(template) {
            let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            };
            bar.set_style(style.with_key("rate", rate).progress_chars("#>-"));
        }
        bar.set_message(unit);
        Progress {
            bar,
            out: self,
            unit,
            last_event: None,
            last_recorded: None,
        }
    }
}

/// `{"event": name, ...fields}` as one line on standard output.
fn json_line(name: &str, fields: Value) {
    let line = event_line(name, fields);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// `{"event": name, ...fields}`, `event` first so that a person reading the
/// lines, or `grep`, sees it at once (a JSON map keeps its keys sorted).
fn event_line(name: &str, fields: Value) -> String {
    let name = Value::from(name);
    match fields {
        Value::Object(map) if !map.is_empty() => {
            let rest = Value::Object(map).to_string();
            format!("{{\"event\":{name},{}", &rest[1..])
        }
        _ => format!("{{\"event\":{name}}}"),
    }
}

/// See [`Out::progress`].
pub struct Progress {
    bar: ProgressBar,
    out: Out,
    unit: &'static str,
    last_event: Option<Instant>,
    /// The last `progress` event reported, so that `finish` does not repeat it.
    last_recorded: Option<(u64, u64)>,
}

impl Progress {
    /// `have` of `total` done.
    pub fn show(&mut self, have: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(have);
        if self.out == Out::Json
            && self
                .last_event
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_event = Some(Instant::now());
            self.record(have, total);
        }
    }

    /// Done: the bar goes, and `--json` reports where it ended (unless the
    /// last event already said so).
    pub fn finish(mut self) {
        self.bar.finish_and_clear();
        let (have, total) = (self.bar.position(), self.bar.length().unwrap_or(0));
        if self.last_recorded != Some((have, total)) {
            self.record(have, total);
        }
    }

    fn record(&mut self, have: u64, total: u64) {
        self.last_recorded = Some((have, total));
        self.out.record(
            "progress",
            serde_json::json!({ self.unit: have, "target": total }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_stay_aligned_whatever_the_cell_widths() {
        let text = table(
            &["PEER", "USER AGENT", "HEIGHT"],
            &[2],
            [
                vec![
                    "127.0.0.1:20333".into(),
                    "NEO:neo-one-js:1.0.0-preview".into(),
                    "7".into(),
                ],
                vec![
                    "[::1]:10333".into(),
                    "/NEO-GO:0.120.0/".into(),
                    "123456".into(),
                ],
            ],
        );
        assert_eq!(
            text,
            "PEER             USER AGENT                    HEIGHT\n\
             127.0.0.1:20333  NEO:neo-one-js:1.0.0-preview       7\n\
             [::1]:10333      /NEO-GO:0.120.0/              123456\n"
        );
    }

    #[test]
    fn events_are_one_object_with_the_event_first() {
        let line = event_line("peer", serde_json::json!({"addr": "[::1]:1", "zz": [1, 2]}));
        assert_eq!(line, r#"{"event":"peer","addr":"[::1]:1","zz":[1,2]}"#);
        assert_eq!(
            event_line("done", serde_json::json!({})),
            r#"{"event":"done"}"#
        );
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["event"], "peer");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1u32, "peer", "peers"), "1 peer");
        assert_eq!(count(0u32, "peer", "peers"), "0 peers");
        assert_eq!(count(2u64, "address", "addresses"), "2 addresses");
    }

    #[test]
    fn durations_are_short_and_rounded() {
        assert_eq!(ago(8_200), "8s ago");
        assert_eq!(ago(12 * 60_000), "12m ago");
        assert_eq!(within(7_199_900), "in 2h");
    }
}
