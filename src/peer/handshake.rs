//! The version/verack handshake as a plain state machine.
//!
//! Both sides send `version` as soon as the connection exists; each answers
//! the other's `version` with `verack`. The rules (common to the reference
//! nodes of both generations):
//!
//! - the first message received must be `version`, the second `verack`;
//! - a `version` carrying our own nonce is a connection to ourselves;
//! - a `version` for another network is refused;
//! - `version` or `verack` received a second time, during or after the
//!   handshake, is a protocol violation;
//! - nothing but `version`/`verack` may arrive before the handshake completes.
//!
//! The machine does no I/O: it is told what was sent and received and answers
//! with what to do next.

use thiserror::Error;

/// A received message, as far as the handshake is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A `version` message.
    Version {
        /// The sender's nonce.
        nonce: u32,
        /// The sender's network magic, where the protocol carries one in `version` (N3).
        network: Option<u32>,
    },
    /// A `verack` message.
    Verack,
    /// Any other message, by command name.
    Other(&'a str),
}

/// What to do after a message was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send `verack` now (the remote's `version` was accepted).
    SendVerack,
    /// The handshake just completed.
    Completed,
    /// Nothing to do for the handshake: an ordinary message after completion.
    Deliver,
}

/// Why the handshake (or a later handshake message) condemns the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Violation {
    /// The remote's nonce equals ours: we connected to ourselves.
    #[error("self-connection (nonce {0:#010x})")]
    SelfConnection(u32),
    /// The remote is on another network.
    #[error("wrong network: {got:#x}, expected {expected:#x}")]
    WrongNetwork {
        /// Our network magic.
        expected: u32,
        /// The remote's.
        got: u32,
    },
    /// A second `version`.
    #[error("duplicate version")]
    DuplicateVersion,
    /// A second `verack`.
    #[error("duplicate verack")]
    DuplicateVerack,
    /// `verack` before the remote's `version`.
    #[error("verack before version")]
    VerackBeforeVersion,
    /// Another message before the handshake completed.
    #[error("{0} before the handshake completed")]
    Unexpected(String),
}

/// Handshake progress of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    local_nonce: u32,
    network: u32,
    version_sent: bool,
    version_received: bool,
    verack_sent: bool,
    verack_received: bool,
}

impl Handshake {
    /// A handshake for a node with `local_nonce` on `network`.
    pub fn new(local_nonce: u32, network: u32) -> Self {
        Handshake {
            local_nonce,
            network,
            version_sent: false,
            version_received: false,
            verack_sent: false,
            verack_received: false,
        }
    }

    /// Records that our `version` went out.
    pub fn version_sent(&mut self) {
        self.version_sent = true;
    }

    /// Records that our `verack` went out.
    pub fn verack_sent(&mut self) {
        self.verack_sent = true;
    }

    /// True once the remote's `verack` arrived.
    pub fn remote_verack(&self) -> bool {
        self.verack_received
    }

    /// True once both sides sent and received `version` and `verack`.
    pub fn is_complete(&self) -> bool {
        self.version_sent && self.version_received && self.verack_sent && self.verack_received
    }

    /// Feeds one received message.
    pub fn received(&mut self, msg: Received<'_>) -> Result<Step, Violation> {
        match msg {
            Received::Version { nonce, network } => {
                if self.version_received {
                    return Err(Violation::DuplicateVersion);
                }
                if let Some(got) = network.filter(|&n| n != self.network) {
                    return Err(Violation::WrongNetwork {
                        expected: self.network,
                        got,
                    });
                }
                if nonce == self.local_nonce {
                    return Err(Violation::SelfConnection(nonce));
                }
                self.version_received = true;
                Ok(Step::SendVerack)
            }
            Received::Verack => {
                if self.verack_received {
                    return Err(Violation::DuplicateVerack);
                }
                if !self.version_received {
                    return Err(Violation::VerackBeforeVersion);
                }
                self.verack_received = true;
                Ok(if self.is_complete() {
                    Step::Completed
                } else {
                    Step::Deliver
                })
            }
            Received::Other(command) => {
                if self.is_complete() {
                    Ok(Step::Deliver)
                } else {
                    Err(Violation::Unexpected(command.to_string()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u32 = 7;
    const NET: u32 = 56753;

    fn version(nonce: u32) -> Received<'static> {
        Received::Version {
            nonce,
            network: Some(NET),
        }
    }

    fn ready() -> Handshake {
        let mut h = Handshake::new(US, NET);
        h.version_sent();
        h
    }

    #[test]
    fn completes_in_either_order_of_our_sends() {
        let mut h = ready();
        assert_eq!(h.received(version(9)), Ok(Step::SendVerack));
        h.verack_sent();
        assert!(!h.is_complete());
        assert_eq!(h.received(Received::Verack), Ok(Step::Completed));
        assert!(h.is_complete());
        assert_eq!(h.received(Received::Other("ping")), Ok(Step::Deliver));
    }

    #[test]
    fn repeated_handshake_messages_are_violations() {
        let mut h = ready();
        h.received(version(9)).unwrap();
        assert_eq!(h.received(version(9)), Err(Violation::DuplicateVersion));
        h.verack_sent();
        h.received(Received::Verack).unwrap();
        assert_eq!(h.received(version(9)), Err(Violation::DuplicateVersion));
        assert_eq!(
            h.received(Received::Verack),
            Err(Violation::DuplicateVerack)
        );
    }

    #[test]
    fn refuses_self_wrong_network_and_early_messages() {
        assert_eq!(
            ready().received(version(US)),
            Err(Violation::SelfConnection(US))
        );
        let wrong = Received::Version {
            nonce: 9,
            network: Some(1),
        };
        assert_eq!(
            ready().received(wrong),
            Err(Violation::WrongNetwork {
                expected: NET,
                got: 1
            })
        );
        assert_eq!(
            ready().received(Received::Verack),
            Err(Violation::VerackBeforeVersion)
        );
        let mut h = ready();
        assert_eq!(
            h.received(Received::Other("getaddr")),
            Err(Violation::Unexpected("getaddr".into()))
        );
        h.received(version(9)).unwrap();
        assert!(h.received(Received::Other("inv")).is_err());
    }

    #[test]
    fn legacy_version_has_no_network_field() {
        let mut h = ready();
        let v = Received::Version {
            nonce: 9,
            network: None,
        };
        assert_eq!(h.received(v), Ok(Step::SendVerack));
    }
}
