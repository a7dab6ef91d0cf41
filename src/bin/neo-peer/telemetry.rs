//! The tool's logs (`RUST_LOG`, `--log-format`) and metrics (`--metrics ADDR`).
//!
//! Metrics are served by a small HTTP responder of our own on async-io,
//! answering `GET /metrics` with the Prometheus text that
//! `metrics-exporter-prometheus` renders. The exporter's own listener is
//! left out on purpose: it is built on hyper and tokio, which a smol tool
//! would then carry only to answer one URL.

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::output::Out;

/// Logs and metrics of a long-running command.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct TelemetryArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics while the command runs.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// How log lines look on standard error (RUST_LOG chooses which; warn by default).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub log_format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event, its spans' fields before it.
    #[default]
    Text,
    /// One JSON object per event, with its spans and their fields.
    Json,
}

/// Logs to standard error, filtered by `RUST_LOG` (`warn` without it; a
/// directive it cannot read is ignored).
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Another subscriber already set (never, in the tool) keeps its place.
    let _ = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}

/// Bucket bounds of every duration histogram, in seconds: from the
/// sub-millisecond time of a handler to the minute of a stall timeout.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Most request bytes read before the request is refused.
const MAX_REQUEST: usize = 8 * 1024;

/// Most scrapes answered at once; more connections are closed at once.
const MAX_CONNECTIONS: usize = 16;

/// A scrape that does not finish its request in this time is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How often histogram samples are folded in between scrapes, so that
/// memory stays bounded however rarely anyone scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

impl TelemetryArgs {
    /// With `--metrics`: installs the recorder and serves it; reports the
    /// address on `out`.
    pub fn start(&self, out: Out) -> Result<(), String> {
        let Some(addr) = self.metrics else {
            return Ok(());
        };
        let bound = serve_metrics(addr)?;
        out.event("metrics", json!({"addr": bound.to_string()}), || {
            format!("metrics on http://{bound}/metrics")
        });
        Ok(())
    }
}

/// Installs the Prometheus recorder and answers `GET /metrics` on `addr`
/// on the smol executor until the process ends; returns the address bound.
fn serve_metrics(addr: SocketAddr) -> Result<SocketAddr, String> {
    let listener = Async::<TcpListener>::bind(addr)
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    let bound = listener.get_ref().local_addr().map_err(|e| e.to_string())?;
    let recorder = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .map_err(|e| e.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
    neo_peer::telemetry::describe();
    let upkeep = handle.clone();
    smol::spawn(async move {
        loop {
            Timer::after(UPKEEP_INTERVAL).await;
            upkeep.run_upkeep();
        }
    })
    .detach();
    let open = Arc::new(AtomicUsize::new(0));
    smol::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            let (open, handle) = (open.clone(), handle.clone());
            smol::spawn(async move {
                let timeout = async {
                    Timer::after(REQUEST_TIMEOUT).await;
                    Ok(())
                };
                if let Err(e) = future::or(respond(stream, &handle), timeout).await {
                    tracing::debug!(error = %e, "metrics: scrape failed");
                }
                open.fetch_sub(1, Ordering::AcqRel);
            })
            .detach();
        }
    })
    .detach();
    Ok(bound)
}

/// Reads one request off `stream` and answers it.
async fn respond(mut stream: Async<TcpStream>, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head_complete(&head) {
        if head.len() > MAX_REQUEST {
            return answer(&mut stream, Reply::TooLarge, handle).await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    answer(&mut stream, route(&head), handle).await
}

async fn answer(
    stream: &mut Async<TcpStream>,
    reply: Reply,
    handle: &PrometheusHandle,
) -> std::io::Result<()> {
    let (status, body) = match reply {
        Reply::Metrics => ("200 OK", handle.render()),
        Reply::NotFound => ("404 Not Found", "only /metrics is here\n".to_string()),
        Reply::NotAllowed => ("405 Method Not Allowed", "GET only\n".to_string()),
        Reply::TooLarge => ("431 Request Header Fields Too Large", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await
}

/// What a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Metrics,
    NotFound,
    NotAllowed,
    TooLarge,
}

/// Whether `head` holds a request's whole head (its blank line).
fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// The reply to a request whose head is `head`: `GET /metrics` (with any
/// query) is answered with the metrics.
fn route(head: &[u8]) -> Reply {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (method, target) = (words.next(), words.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (method, path) {
        (Some(b"GET"), b"/metrics") => Reply::Metrics,
        (Some(b"GET"), _) => Reply::NotFound,
        _ => Reply::NotAllowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_answered_with_the_metrics() {
        let req = |s: &str| route(s.as_bytes());
        assert_eq!(
            req("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Reply::Metrics
        );
        assert_eq!(req("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Reply::Metrics);
        assert_eq!(req("GET / HTTP/1.1\r\n\r\n"), Reply::NotFound);
        assert_eq!(req("GET /metricsx HTTP/1.1\r\n\r\n"), Reply::NotFound);
        assert_eq!(req("POST /metrics HTTP/1.1\r\n\r\n"), Reply::NotAllowed);
        assert_eq!(req(""), Reply::NotAllowed);
    }

    #[test]
    fn a_head_ends_at_its_blank_line() {
        assert!(!head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"));
        assert!(head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(head_complete(b"GET /metrics HTTP/1.0\n\n"));
    }
}
