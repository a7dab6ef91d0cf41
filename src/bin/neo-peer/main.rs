//! `neo-peer`: the command-line face of the `neo-peer` library.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod decode;
mod fleet;
mod net;
mod peers;

/// The peer-to-peer layer of a NEO node, as a tool.
#[derive(Debug, Parser)]
#[command(name = "neo-peer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Decode hex into the JSON a NEO node's RPC would show.
    Decode(DecodeArgs),
    /// Serve a synthetic chain to any number of peers.
    Serve(net::ServeArgs),
    /// Start nodes on loopback, sync their chain from all of them at once
    /// through a peer manager and an address book, and show who served what.
    Demo(fleet::DemoArgs),
    /// Fetch and check the headers of a chain from one or many peers.
    Sync(fleet::SyncArgs),
    /// Connect to the network, ask every peer for addresses, try the new
    /// ones and record what is learned in an address book.
    Crawl(fleet::CrawlArgs),
    /// List the addresses an address book holds.
    Peers(peers::PeersArgs),
}

/// Which NEO wire generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// NEO Legacy (2.x).
    Legacy,
    /// Neo N3.
    N3,
}

/// What the hex holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A whole framed message.
    Message,
    /// The payload of a `block` message.
    Block,
    /// One header.
    Header,
    /// One transaction.
    Tx,
}

#[derive(Debug, clap::Args)]
struct DecodeArgs {
    /// Wire generation.
    #[arg(long, value_enum, default_value = "n3")]
    protocol: Protocol,
    /// What the hex holds.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Hex to decode; `-` or nothing reads standard input. Whitespace is ignored.
    hex: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Decode(args) => run_decode(args),
        Cmd::Serve(args) => net::serve(args),
        Cmd::Demo(args) => fleet::demo(args),
        Cmd::Sync(args) => fleet::sync(args),
        Cmd::Crawl(args) => fleet::crawl(args),
        Cmd::Peers(args) => peers::peers(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error says.
            eprintln!("error: {}", e.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run_decode(args: DecodeArgs) -> Result<(), String> {
    let text = match args.hex.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            s
        }
        Some(h) => h.to_string(),
    };
    let bytes = parse_hex(&text)?;
    let json = decode::decode(args.protocol, args.kind, &bytes)?;
    println!("{json}");
    Ok(())
}

/// Hex with any whitespace and an optional `0x` prefix.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = compact.strip_prefix("0x").unwrap_or(&compact);
    if digits.is_empty() {
        return Err("no input: expected hex".into());
    }
    hex::decode(digits).map_err(|e| format!("invalid hex: {e}"))
}
