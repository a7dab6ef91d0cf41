//! `neo-peer peers`: what an address book holds.

use std::path::PathBuf;

use neo_peer::book::{AddrRecord, AddressBook, now_ms};
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct PeersArgs {
    /// The address book (a redb file written by a node).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Print a JSON array of the records instead of a table (with the
    /// table, `new` or `tried`, and the bucket of each; both null for a
    /// record kept aside).
    #[arg(long)]
    json: bool,
}

pub fn peers(args: PeersArgs) -> Result<(), String> {
    let book = AddressBook::open_existing(&args.db).map_err(|e| e.to_string())?;
    let records = book.records();
    if args.json {
        let all: Vec<Value> = records.iter().map(to_json).collect();
        println!("{}", Value::Array(all));
        return Ok(());
    }
    let config = book.config();
    println!(
        "{}: protocol {}, network {}, {} addresses",
        args.db.display(),
        config.protocol,
        config.network,
        records.len()
    );
    print!("{}", table(&records, now_ms()));
    Ok(())
}

fn to_json(r: &AddrRecord) -> Value {
    json!({
        "address": r.addr.to_string(),
        "source": r.source.as_str(),
        "services": r.services,
        "capabilities": r.capabilities,
        "user_agent": r.user_agent,
        "start_height": r.start_height,
        "last_height": r.last_height,
        "first_seen_ms": r.first_seen_ms,
        "last_seen_ms": r.last_seen_ms,
        "last_attempt_ms": r.last_attempt_ms,
        "last_success_ms": r.last_success_ms,
        "failures": r.failures,
        "rtt_ms": r.rtt_ms,
        "banned_until_ms": r.banned_until_ms,
        "ban_reason": r.ban_reason,
        "last_disconnect": r.last_disconnect,
        "learned_from": r.learned_from.map(|ip| ip.to_string()),
        "table": r.table().map(|t| t.as_str()),
        "bucket": r.slot.map(|s| s.bucket),
    })
}

/// `ms` as a short span: `45s`, `12m`, `3h`, `5d`.
fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn table(records: &[AddrRecord], now: u64) -> String {
    let header = [
        "ADDRESS",
        "SOURCE",
        "USER AGENT",
        "HEIGHT",
        "LAST SUCCESS",
        "FAILURES",
        "RTT",
        "BANNED UNTIL",
    ];
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            [
                r.addr.to_string(),
                r.source.to_string(),
                r.user_agent.clone().unwrap_or_else(|| "-".into()),
                r.last_height.max(r.start_height).to_string(),
                r.last_success_ms.map_or("never".into(), |t| {
                    format!("{} ago", span(now.saturating_sub(t)))
                }),
                r.failures.to_string(),
                // The book keeps whole milliseconds: a loopback node is below one.
                r.rtt_ms.map_or("-".into(), |ms| match ms {
                    0 => "<1 ms".into(),
                    ms => format!("{ms} ms"),
                }),
                match r.banned_until_ms {
                    Some(until) if until > now => format!("in {}", span(until - now)),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}
