//! Who the local node is to a remote: what its `version` says.

use std::fmt;
use std::sync::Arc;

use super::Protocol;
use crate::wire::n3::NodeCapability;

/// Returns the local chain height whenever a `version`, `ping` or `pong`
/// needs it.
pub type CurrentHeight = Arc<dyn Fn() -> u32 + Send + Sync>;

/// The local node as its `version` presents it, the same to every peer.
/// `extra` holds what only one generation says ([`LegacyExtra`],
/// [`N3Extra`]).
pub struct Identity<P: Protocol> {
    /// Network magic (Legacy: in every frame; N3: in `version`).
    pub network: u32,
    /// User agent sent in `version`.
    pub user_agent: String,
    /// Random number identifying this node (detects connections to ourselves).
    pub nonce: u32,
    /// Protocol version sent in `version` (0 on every network).
    pub protocol_version: u32,
    /// Whether we want relayed inventories (Legacy `relay`; N3 announces
    /// `FullNode` either way).
    pub relay: bool,
    /// TCP port we listen on (0: not listening).
    pub port: u16,
    /// The local chain height, asked each time it is sent.
    pub current_height: CurrentHeight,
    /// What only this generation's `version` carries.
    pub extra: P::Extra,
}

impl<P: Protocol> Identity<P> {
    /// An identity on `network` with every default: user agent
    /// `/neo-peer:<version>/`, a random nonce, protocol version 0, relay on,
    /// not listening, height 0, the generation's default extra.
    pub fn new(network: u32) -> Self {
        Identity {
            network,
            user_agent: format!("/neo-peer:{}/", env!("CARGO_PKG_VERSION")),
            nonce: random_nonce(),
            protocol_version: 0,
            relay: true,
            port: 0,
            current_height: Arc::new(|| 0),
            extra: P::Extra::default(),
        }
    }

    /// The local height now.
    pub fn height(&self) -> u32 {
        (self.current_height)()
    }
}

impl<P: Protocol> Clone for Identity<P> {
    fn clone(&self) -> Self {
        Identity {
            network: self.network,
            user_agent: self.user_agent.clone(),
            nonce: self.nonce,
            protocol_version: self.protocol_version,
            relay: self.relay,
            port: self.port,
            current_height: self.current_height.clone(),
            extra: self.extra.clone(),
        }
    }
}

impl<P: Protocol> fmt::Debug for Identity<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("protocol", &P::NAME)
            .field("network", &self.network)
            .field("user_agent", &self.user_agent)
            .field("nonce", &self.nonce)
            .field("protocol_version", &self.protocol_version)
            .field("relay", &self.relay)
            .field("port", &self.port)
            .field("current_height", &self.height())
            .field("extra", &self.extra)
            .finish()
    }
}

/// What a NEO Legacy `version` carries besides the common fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyExtra {
    /// The `services` bit field (1 = NODE_NETWORK).
    pub services: u64,
}

impl Default for LegacyExtra {
    fn default() -> Self {
        LegacyExtra { services: 1 }
    }
}

/// What a Neo N3 `version` carries besides the common fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct N3Extra {
    /// Capabilities besides `TcpServer(port)` (when the port is non-zero)
    /// and `FullNode(current height)`, which are added automatically; e.g.
    /// `ArchivalNode`.
    pub capabilities: Vec<NodeCapability>,
}

/// A random nonce, from `rand`'s thread generator (a ChaCha stream seeded by
/// the operating system): nobody can predict it, so nobody can forge our
/// identity in the self-connection check.
pub fn random_nonce() -> u32 {
    rand::random()
}
