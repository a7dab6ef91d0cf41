//! `neo-peer serve` and `neo-peer sync`, run as a user would, against each other.
#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use neo_peer::chain::{LegacyChain, N3Chain, Synthetic};

const BLOCKS: u32 = 4321;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server; returns it with its address and genesis hash.
fn serve(protocol: &str) -> (Server, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .args(["serve", "--protocol", protocol, "--network", "privnet"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--synthetic",
            &BLOCKS.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // listening on ADDR, genesis 0x<hash>, height N
    let rest = line.strip_prefix("listening on ").expect(&line);
    let (addr, rest) = rest.split_once(", genesis ").expect(&line);
    let (genesis, height) = rest.split_once(", height ").expect(&line);
    assert_eq!(height.trim(), BLOCKS.to_string());
    (Server(child), addr.to_string(), genesis.to_string())
}

fn sync(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .arg("sync")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn synthetic() -> Synthetic {
    Synthetic {
        blocks: BLOCKS,
        txs_per_block: 1,
        seed: 0,
        with_bodies: false,
    }
}

#[test]
fn n3_sync_fetches_the_served_chain() {
    let (_server, addr, genesis) = serve("n3");
    let chain = N3Chain::synthetic(&synthetic());
    assert_eq!(genesis, chain.genesis_hash().to_string());
    let out = sync(&[
        "--protocol",
        "n3",
        "--network",
        "privnet",
        "--connect",
        &addr,
    ]);
    let first = out.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "synced {} headers, tip {BLOCKS} {}",
            BLOCKS + 1,
            chain.tip_hash()
        )
    );
    // the statistics table follows
    assert!(out.contains("getheaders") && out.contains("headers"));
    let out = sync(&["--connect", &addr, "--count", "1000"]);
    assert!(
        out.starts_with(&format!(
            "synced 1000 headers, tip 999 {}",
            chain.hash(999).unwrap()
        )),
        "{out}"
    );
}

#[test]
fn legacy_sync_fetches_the_served_chain() {
    let (_server, addr, genesis) = serve("legacy");
    let chain = LegacyChain::synthetic(&synthetic());
    assert_eq!(genesis, chain.genesis_hash().to_string());
    let out = sync(&[
        "--protocol",
        "legacy",
        "--network",
        "privnet",
        "--connect",
        &addr,
        "--genesis",
        &genesis,
    ]);
    assert!(
        out.starts_with(&format!(
            "synced {} headers, tip {BLOCKS} {}",
            BLOCKS + 1,
            chain.tip_hash()
        )),
        "{out}"
    );
}
