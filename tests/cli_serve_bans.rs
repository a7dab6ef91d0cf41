//! `neo-peer serve` runs on the peer manager: a peer that sends a bad frame
//! is disconnected and banned, and its reconnects are closed at accept,
//! before any handshake (not a byte written to them), in both generations.
#![cfg(feature = "cli")]

#[allow(dead_code)]
mod hostile;
#[allow(dead_code)]
mod rt;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use hostile::{Hostile, NET, Remote};
use neo_peer::protocol::{Legacy, N3};
use serde_json::Value;

/// Reads from a connection the server closed at accept: nothing came, and
/// the stream ended.
fn closed_at_accept(addr: &str) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(SOON)).unwrap();
    let mut first = [0u8; 64];
    match stream.read(&mut first) {
        Ok(0) => {}
        Ok(n) => panic!("a refused peer was sent {n} bytes"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
            "the server kept a refused peer: {e}"
        ),
    }
}

/// Reconnects tried after the ban.
const RECONNECTS: usize = 5;
/// How long anything the server should do at once may take (the machine may
/// be loaded).
const SOON: Duration = Duration::from_secs(20);

/// Kills the server when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `neo-peer serve --json` of a small synthetic chain on network [`NET`]:
/// the server, its address and its events as they come.
fn serve(protocol: &str, extra: &[&str]) -> (Server, String, Receiver<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args([
            "serve",
            "--protocol",
            protocol,
            "--network",
            &NET.to_string(),
        ])
        .args(["--listen", "127.0.0.1:0", "--synthetic", "20", "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let server = Server(child);
    let (tx, events) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { return };
            let event: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    let listening = events.recv_timeout(SOON).expect("listening");
    assert_eq!(listening["event"], "listening", "{listening}");
    let addr = listening["addr"].as_str().unwrap().to_string();
    (server, addr, events)
}

/// The next event named `name`, skipping others (returned too).
fn next_named(events: &Receiver<Value>, name: &str) -> (Value, Vec<Value>) {
    let mut skipped = Vec::new();
    loop {
        let event = events
            .recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("no {name} event; saw {skipped:?}"));
        if event["event"] == name {
            return (event, skipped);
        }
        skipped.push(event);
    }
}

fn a_bad_frame_bans_the_peer_at_the_door<P: Hostile>(protocol: &str) {
    let (_server, addr, events) = serve(protocol, &[]);

    // An honest handshake, then a frame declaring 4 GiB.
    let stream = TcpStream::connect(&addr).unwrap();
    let mut remote: Remote<P> = Remote::new(stream, 0xBAD);
    smol::block_on(async {
        remote.handshake().await;
        assert!(remote.raw(&P::huge_frame()).await);
        assert!(remote.closes_within(SOON).await, "not disconnected");
    });
    let (connected, _) = next_named(&events, "connected");
    assert!(
        connected["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("/hostile:"),
        "{connected}"
    );
    let (banned, _) = next_named(&events, "banned");
    assert!(
        banned["addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{banned}"
    );
    let (gone, _) = next_named(&events, "disconnected");
    assert_eq!(gone["addr"], connected["addr"], "{gone}");
    let reason = gone["reason"].as_str().unwrap();
    assert!(reason.contains("too large"), "{reason}");

    // Each reconnect is accepted by the kernel and closed by the server at
    // once, before it writes a byte (its `version` would come first).
    for _ in 0..RECONNECTS {
        closed_at_accept(&addr);
    }
    // Reported as they come, a line a second at most: the counts add up.
    let mut refusals = 0u64;
    while refusals < RECONNECTS as u64 {
        let (refused, skipped) = next_named(&events, "refused");
        assert!(
            skipped.iter().all(|e| e["event"] != "connected"),
            "a banned peer joined: {skipped:?}"
        );
        assert!(
            refused["reason"].as_str().unwrap().contains("banned"),
            "{refused}"
        );
        refusals += refused["count"].as_u64().unwrap();
    }
    assert_eq!(refusals, RECONNECTS as u64);
}

#[test]
fn n3_a_bad_frame_bans_the_peer_at_the_door() {
    a_bad_frame_bans_the_peer_at_the_door::<N3>("n3");
}

#[test]
fn legacy_a_bad_frame_bans_the_peer_at_the_door() {
    a_bad_frame_bans_the_peer_at_the_door::<Legacy>("legacy");
}

#[test]
fn over_the_per_ip_limit_is_refused_at_accept() {
    let (_server, addr, events) = serve("n3", &["--max-per-ip", "1"]);
    smol::block_on(async {
        let mut held: Remote<N3> = Remote::new(TcpStream::connect(&addr).unwrap(), 1);
        held.handshake().await;
        let (connected, _) = next_named(&events, "connected");
        closed_at_accept(&addr);
        let (refused, skipped) = next_named(&events, "refused");
        assert!(skipped.is_empty(), "{skipped:?}");
        let reason = refused["reason"].as_str().unwrap();
        assert!(reason.contains("connections per IP"), "{reason}");
        // Once the first has gone, the IP is served again.
        drop(held);
        let (gone, _) = next_named(&events, "disconnected");
        assert_eq!(gone["addr"], connected["addr"]);
        let mut again: Remote<N3> = Remote::new(TcpStream::connect(&addr).unwrap(), 2);
        again.handshake().await;
        next_named(&events, "connected");
    });
}
