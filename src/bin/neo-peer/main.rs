//! `neo-peer`: the command-line face of the `neo-peer` library.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod decode;
mod fleet;
mod mirror;
mod net;
mod output;
mod peers;
mod relay;
mod telemetry;

/// The peer-to-peer layer of a NEO node, as a tool.
#[derive(Debug, Parser)]
#[command(name = "neo-peer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Decode hex or base64 into the JSON a NEO node's RPC would show.
    Decode(DecodeArgs),
    /// Serve a synthetic chain, or mirror a real node's growing chain, to
    /// any number of peers.
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
    /// Relay transactions, blocks and consensus payloads between peers:
    /// each downloaded once, checked, and passed to every peer that lacks it.
    Relay(relay::RelayArgs),
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
#[command(
    after_help = "Hex or base64 (what the N3 RPC returns for raw blocks and \
transactions): with --encoding auto, input made only of hex digits (or starting \
with 0x) is hex and anything else is base64."
)]
struct DecodeArgs {
    /// Wire generation.
    #[arg(long, value_enum, default_value = "n3")]
    protocol: Protocol,
    /// What the input holds.
    #[arg(long, value_enum)]
    kind: Kind,
    /// How the input is written.
    #[arg(long, value_enum, default_value = "auto")]
    encoding: decode::Encoding,
    /// Hex or base64 to decode; `-` or nothing reads standard input.
    /// Whitespace is ignored.
    #[arg(value_name = "INPUT")]
    input: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Cmd::Serve(args) => args.telemetry.log_format,
        Cmd::Sync(args) => args.telemetry.log_format,
        Cmd::Crawl(args) => args.telemetry.log_format,
        Cmd::Relay(args) => args.telemetry.log_format,
        Cmd::Decode(_) | Cmd::Demo(_) | Cmd::Peers(_) => telemetry::LogFormat::Text,
    };
    telemetry::init_logs(log_format);
    let result = match cli.command {
        Cmd::Decode(args) => run_decode(args),
        Cmd::Serve(args) => net::serve(args),
        Cmd::Demo(args) => fleet::demo(args),
        Cmd::Sync(args) => fleet::sync(args),
        Cmd::Crawl(args) => fleet::crawl(args),
        Cmd::Peers(args) => peers::peers(args),
        Cmd::Relay(args) => relay::relay(args),
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
    let text = match args.input.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            s
        }
        Some(text) => text.to_string(),
    };
    let json = decode::decode_text(args.protocol, args.kind, args.encoding, &text)?;
    println!("{json}");
    Ok(())
}
