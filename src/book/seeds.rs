//! The seeds file: where a node starts the first time.
//!
//! One address per line: `host:port`, or `host` alone (the default port is
//! then used). A host is an IPv4 address, a DNS name, or an IPv6 address, in
//! brackets when a port follows (`[2001:db8::1]:20333`). `#` starts a
//! comment; blank lines are skipped.
//!
//! ```text
//! # N3 mainnet
//! seed1.neo.org:10333
//! 10.0.0.7            # the default port
//! [2001:db8::1]:10333
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::BookError;

/// One line of a seeds file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedEntry {
    /// The line it is on (from 1).
    pub line: usize,
    /// An IP address (IPv6 without brackets) or a DNS name.
    pub host: String,
    /// The port, when the line gives one.
    pub port: Option<u16>,
}

impl SeedEntry {
    /// The host as an IP address, when it is one (a DNS name is `None`).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// Parses seeds text; the error names the first bad line
/// ([`BookError::SeedLine`]).
///
/// One address per line: `host:port`, or `host` alone (the default port is
/// then used). A host is an IPv4 address, a DNS name, or an IPv6 address, in
/// brackets when a port follows (`[2001:db8::1]:20333`). `#` starts a
/// comment; blank lines are skipped.
///
/// ```
/// use neo_peer::book::parse_seeds;
///
/// let seeds = parse_seeds("# comment\nseed1.neo.org:10333\n\n[::1]\n").unwrap();
/// assert_eq!(seeds.len(), 2);
/// assert_eq!((seeds[0].host.as_str(), seeds[0].port), ("seed1.neo.org", Some(10333)));
/// assert_eq!((seeds[1].line, seeds[1].host.as_str(), seeds[1].port), (4, "::1", None));
/// assert!(parse_seeds("ok.example:1\nnot an address\n").is_err());
/// ```
pub fn parse_seeds(text: &str) -> Result<Vec<SeedEntry>, BookError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let (host, port) =
            parse_line(content).map_err(|reason| BookError::SeedLine { line, reason })?;
        out.push(SeedEntry { line, host, port });
    }
    Ok(out)
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) => Err("port 0".into()),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("bad port {text:?}")),
    }
}

fn parse_line(s: &str) -> Result<(String, Option<u16>), String> {
    if s.contains(char::is_whitespace) {
        return Err(format!("{s:?}: one address per line"));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: no closing ]"))?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| format!("{s:?}: bad IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(parse_port(p)?),
                None => return Err(format!("{s:?}: expected :port after ]")),
            },
        };
        return Ok((ip.to_string(), port));
    }
    if s.matches(':').count() > 1 {
        return match s.parse::<Ipv6Addr>() {
            Ok(ip) => Ok((ip.to_string(), None)),
            Err(_) => Err(format!(
                "{s:?}: bad IPv6 address (with a port it goes in brackets: [::1]:20333)"
            )),
        };
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(parse_port(p)?)),
        None => (s, None),
    };
    check_host(host).map_err(|e| format!("{s:?}: {e}"))?;
    Ok((host.to_string(), port))
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("no host".into());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| "bad IPv4 address".into());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err("name longer than 253 characters".into());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!("bad host name (label {label:?})"));
        }
    }
    Ok(())
}
