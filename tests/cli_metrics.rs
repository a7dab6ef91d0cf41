//! `--metrics ADDR` and `RUST_LOG`, as an operator uses them: `neo-peer
//! serve` and `crawl` scraped over plain HTTP while peers come and go, and
//! the logs of `neo-peer sync` naming each peer by its address.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Kill, free_port, listening, neo_peer};
use neo_peer::executor::SmolGlobal;
use neo_peer::peer::{Direction, IgnoreAll, LocalConfig, Peer};
use neo_peer::protocol::N3;
use neo_peer::wire::n3::PRIVNET_MAGIC;

const BLOCKS: u32 = 3000;

/// `neo-peer serve --synthetic BLOCKS` with `extra` arguments; its address.
fn serve(extra: &[&str]) -> (Kill, SocketAddr) {
    let blocks = BLOCKS.to_string();
    let args = ["serve", "--listen", "127.0.0.1:0", "--synthetic", &blocks];
    let (child, first) = listening(&[&args[..], extra].concat());
    (child, first.addr.parse().unwrap())
}

/// `neo-peer sync --connect addr ARGS`, which must succeed, with `RUST_LOG`
/// set to `log` (or unset); what it wrote on standard error.
fn sync(addr: SocketAddr, log: Option<&str>, args: &[&str]) -> String {
    let mut command = neo_peer();
    match log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let out = command
        .args(["sync", "--connect", &addr.to_string()])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// `GET path` over a plain TCP connection: the status line and the body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect(&response);
    let status = head.lines().next().unwrap_or_default().to_string();
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    (status, body.to_string())
}

fn scrape(addr: SocketAddr) -> String {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    body
}

/// The value of one series (`name{labels}` as rendered), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `addr` until `done` holds of the text (or 30 s pass); the last text.
fn scrape_until(addr: SocketAddr, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(addr);
        if done(&text) || Instant::now() >= deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An N3 peer of the test process, connected to `addr` and handshaken.
fn hold_peer(addr: SocketAddr) -> Peer<N3> {
    smol::block_on(async {
        let conn = smol::Async::<TcpStream>::connect(addr).await.unwrap();
        let peer: Peer<N3> = Peer::new(
            conn,
            Direction::Outbound,
            LocalConfig::new(PRIVNET_MAGIC),
            IgnoreAll,
            SmolGlobal,
        )
        .with_remote_addr(addr);
        peer.run().await.unwrap();
        peer
    })
}

#[test]
fn serve_shows_live_metrics_while_peers_sync_from_it() {
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (_server, addr) = serve(&["--metrics", &metrics.to_string()]);

    // Nothing but /metrics; nothing recorded yet.
    assert_eq!(get(metrics, "/").0, "HTTP/1.1 404 Not Found");
    assert!(!scrape(metrics).contains("neo_peer_peers_connected"));

    // A peer that stays: counted while it is there.
    let held = hold_peer(addr);
    let inbound = |name: &str| format!("{name}{{direction=\"inbound\"}}");
    let text = scrape_until(metrics, |t| {
        value(t, &inbound("neo_peer_peers_connected")) == Some(1.0)
    });
    assert_eq!(
        value(&text, &inbound("neo_peer_peers_connected")),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# HELP neo_peer_peers_connected Peers that completed the handshake"),
        "{text}"
    );

    // A whole sync, start to end.
    sync(addr, None, &[]);
    let left = "neo_peer_disconnects_total{direction=\"inbound\",reason=\"remote_closed\"}";
    let text = scrape_until(metrics, |t| value(t, left) == Some(1.0));
    assert_eq!(value(&text, left), Some(1.0), "{text}");
    assert_eq!(
        value(&text, &inbound("neo_peer_peers_connected")),
        Some(1.0),
        "the held peer is still there: {text}"
    );
    assert_eq!(
        value(&text, &inbound("neo_peer_handshakes_completed_total")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, &inbound("neo_peer_handshake_duration_seconds_count")),
        Some(2.0),
        "{text}"
    );
    assert!(text.contains("# TYPE neo_peer_handshake_duration_seconds histogram"));
    let command = |name: &str, command: &str| {
        value(&text, &format!("{name}{{command=\"{command}\"}}")).unwrap_or(0.0)
    };
    // 3001 headers: two `getheaders`, answered by two `headers`.
    assert_eq!(
        command("neo_peer_received_messages_total", "getheaders"),
        2.0
    );
    assert!(command("neo_peer_received_bytes_total", "getheaders") > 0.0);
    assert_eq!(command("neo_peer_sent_messages_total", "headers"), 2.0);
    assert!(command("neo_peer_sent_bytes_total", "headers") > 100_000.0);
    assert_eq!(command("neo_peer_received_messages_total", "version"), 2.0);
    assert_eq!(
        command("neo_peer_handler_duration_seconds_count", "getheaders"),
        2.0
    );
    held.disconnect();
}

#[test]
fn crawl_shows_the_manager_s_metrics() {
    let (_server, addr) = serve(&[]);
    let dir = std::env::temp_dir().join(format!("neo-peer-cli-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seeds = dir.join("seeds.txt");
    std::fs::write(&seeds, format!("{addr}\n")).unwrap();
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let crawl = neo_peer()
        .args([
            "crawl",
            "--duration",
            "60",
            "--metrics",
            &metrics.to_string(),
        ])
        .arg("--seeds")
        .arg(&seeds)
        .arg("--db")
        .arg(dir.join("peers.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut crawl = Kill(crawl);
    // The metrics line comes first: then the responder is up.
    let mut stderr = BufReader::new(crawl.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("metrics on http://{metrics}/metrics"));
    // The rest is read (and dropped) so that the crawl never writes into a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let outbound = "neo_peer_peers_connected{direction=\"outbound\"}";
    // Every table of the book, summed.
    let book = |t: &str| {
        ["new", "tried", "kept"]
            .iter()
            .map(|table| value(t, &format!("neo_peer_book_addresses{{table=\"{table}\"}}")))
            .sum::<Option<f64>>()
    };
    // The crawl pings each peer (N3 answers) and asks it for addresses.
    let ping = "neo_peer_request_duration_seconds_count{request=\"ping\"}";
    let getaddr = "neo_peer_request_duration_seconds_count{request=\"getaddr\"}";
    let text = scrape_until(metrics, |t| {
        value(t, outbound) == Some(1.0)
            && book(t) == Some(1.0)
            && value(t, ping) == Some(1.0)
            && value(t, getaddr).is_some_and(|n| n >= 1.0)
    });
    assert_eq!(value(&text, outbound), Some(1.0), "{text}");
    assert_eq!(book(&text), Some(1.0), "{text}");
    assert_eq!(value(&text, ping), Some(1.0), "{text}");
    assert!(value(&text, getaddr).is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        value(
            &text,
            "neo_peer_handshakes_completed_total{direction=\"outbound\"}"
        ),
        Some(1.0),
        "{text}"
    );
    let _ = crawl.0.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sync_logs_name_each_peer_by_address() {
    let (_server, addr) = serve(&[]);
    let text = sync(addr, Some("info"), &["--count", "100"]);
    let remote = format!("remote={addr}");
    let line = |message: &str| {
        text.lines()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in {text}"))
    };
    for message in ["handshake complete", "disconnected"] {
        let l = line(message);
        assert!(l.contains(" INFO "), "{l}");
        assert!(l.contains("peer{id=") && l.contains(&remote), "{l}");
        assert!(l.contains("direction=Outbound"), "{l}");
    }
    assert!(line("disconnected").contains("reason_label=\"shutdown\""));

    // The same as JSON, one object per line, the peer's span in each.
    let text = sync(
        addr,
        Some("info"),
        &["--count", "100", "--log-format", "json"],
    );
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let complete = events
        .iter()
        .find(|e| e["fields"]["message"] == "handshake complete")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(complete["level"], "INFO");
    assert_eq!(complete["span"]["name"], "peer");
    assert_eq!(complete["span"]["remote"], addr.to_string());
    assert_eq!(complete["span"]["direction"], "Outbound");

    // Without RUST_LOG, nothing but what the tool always said.
    assert_eq!(sync(addr, None, &["--count", "100"]), "");
}
