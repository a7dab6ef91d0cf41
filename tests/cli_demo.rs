//! `neo-peer demo`, run as a user would: twice in one directory, the second
//! run dialing from the address book the first one left.
#![cfg(feature = "cli")]

use std::process::Command;

fn demo(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neo-peer"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn synced_line(stdout: &str, headers: u32) {
    let first = stdout.lines().next().unwrap();
    let want = format!("synced {} headers, tip {headers} 0x", headers + 1);
    assert!(first.starts_with(&want), "{stdout}");
}

/// The table has one row per node, and every node served a share.
fn table_rows(stdout: &str, nodes: usize) {
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("/neo-peer-demo:node"))
        .collect();
    assert_eq!(rows.len(), nodes, "{stdout}");
    for row in rows {
        assert!(!row.contains(" 0.0%"), "a node served nothing: {row}");
    }
    assert!(stdout.contains("getheaders"), "{stdout}");
}

#[test]
fn demo_twice_reuses_the_address_book() {
    let dir = std::env::temp_dir().join(format!("neo-peer-cli-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let (out, err) = demo(&["--nodes", "3", "--headers", "6000", "--dir", d]);
    synced_line(&out, 6000);
    table_rows(&out, 3);
    assert!(err.contains("addresses from"), "{err}");
    assert!(dir.join("peers.db").exists());
    let (out, err) = demo(&["--nodes", "3", "--headers", "6000", "--dir", d]);
    synced_line(&out, 6000);
    assert!(
        err.contains("address book: 3 addresses, seeds not read"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn legacy_demo_in_a_temporary_directory() {
    let (out, _) = demo(&["--protocol", "legacy", "--nodes", "2", "--headers", "1500"]);
    synced_line(&out, 1500);
    table_rows(&out, 2);
}
