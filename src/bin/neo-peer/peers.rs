//! `neo-peer peers`: what an address book holds.

use std::path::PathBuf;

use neo_peer::book::{AddrRecord, AddressBook, now_ms};
use serde_json::{Value, json};

use crate::output::{self, ago, within};

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
        "{}: protocol {}, network {}, {}",
        args.db.display(),
        config.protocol,
        config.network,
        output::count(records.len() as u64, "address", "addresses")
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
    let rows = records.iter().map(|r| {
        vec![
            r.addr.to_string(),
            r.source.to_string(),
            r.user_agent.clone().unwrap_or_else(|| "-".into()),
            r.last_height.max(r.start_height).to_string(),
            r.last_success_ms
                .map_or("never".into(), |t| ago(now.saturating_sub(t))),
            r.failures.to_string(),
            // The book keeps whole milliseconds: a loopback node is below one.
            r.rtt_ms.map_or("-".into(), |ms| match ms {
                0 => "<1 ms".into(),
                ms => format!("{ms} ms"),
            }),
            match r.banned_until_ms {
                Some(until) if until > now => within(until - now),
                _ => "-".into(),
            },
        ]
    });
    output::table(&header, &[], rows)
}
