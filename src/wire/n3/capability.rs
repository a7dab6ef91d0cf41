//! Node capabilities, advertised in `version` payloads and address entries.

use bytes::{BufMut, Bytes, BytesMut};

use super::MAX_CAPABILITIES;
use super::MAX_CAPABILITY_DATA;
use crate::wire::{Decode, DecodeError, Encode, Reader, WriteExt, var_bytes_size};

/// One capability of a node: `type u8` followed by type-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCapability {
    /// `0x01`: the node accepts TCP connections on this port.
    TcpServer {
        /// Listening port.
        port: u16,
    },
    /// `0x02`: the node accepts WebSocket connections on this port (obsolete).
    WsServer {
        /// Listening port.
        port: u16,
    },
    /// `0x03`: do not send compressed messages to this node (one `0x00` byte on the wire).
    DisableCompression,
    /// `0x10`: the node relays and keeps the chain; carries its current height.
    FullNode {
        /// Height of the node's last block.
        start_height: u32,
    },
    /// `0x11`: the node keeps every block (one `0x00` byte on the wire).
    ArchivalNode,
    /// `0xF0..=0xFF`: a private extension, data kept as received.
    Extension {
        /// The type byte (`0xF0` is Extension0).
        kind: u8,
        /// Its data (at most [`MAX_CAPABILITY_DATA`] bytes).
        data: Bytes,
    },
    /// Any other type: kept as received and passed on unchanged.
    Unknown {
        /// The type byte.
        kind: u8,
        /// Its data (at most [`MAX_CAPABILITY_DATA`] bytes).
        data: Bytes,
    },
}

impl NodeCapability {
    /// Type byte of `TcpServer`.
    pub const TCP_SERVER: u8 = 0x01;
    /// Type byte of `WsServer`.
    pub const WS_SERVER: u8 = 0x02;
    /// Type byte of `DisableCompression`.
    pub const DISABLE_COMPRESSION: u8 = 0x03;
    /// Type byte of `FullNode`.
    pub const FULL_NODE: u8 = 0x10;
    /// Type byte of `ArchivalNode`.
    pub const ARCHIVAL_NODE: u8 = 0x11;
    /// First type byte of the private extensions (`Extension0`).
    pub const EXTENSION0: u8 = 0xF0;

    /// The type byte.
    pub fn kind(&self) -> u8 {
        match self {
            NodeCapability::TcpServer { .. } => Self::TCP_SERVER,
            NodeCapability::WsServer { .. } => Self::WS_SERVER,
            NodeCapability::DisableCompression => Self::DISABLE_COMPRESSION,
            NodeCapability::FullNode { .. } => Self::FULL_NODE,
            NodeCapability::ArchivalNode => Self::ARCHIVAL_NODE,
            NodeCapability::Extension { kind, .. } | NodeCapability::Unknown { kind, .. } => *kind,
        }
    }

    /// Name of the type as the reference node spells it.
    pub fn name(&self) -> &'static str {
        match self {
            NodeCapability::TcpServer { .. } => "TcpServer",
            NodeCapability::WsServer { .. } => "WsServer",
            NodeCapability::DisableCompression => "DisableCompression",
            NodeCapability::FullNode { .. } => "FullNode",
            NodeCapability::ArchivalNode => "ArchivalNode",
            NodeCapability::Extension { .. } => "Extension",
            NodeCapability::Unknown { .. } => "Unknown",
        }
    }

    /// True for the types that may appear only once in a list.
    fn is_unique(&self) -> bool {
        !matches!(
            self,
            NodeCapability::Extension { .. } | NodeCapability::Unknown { .. }
        )
    }

    /// Checks what decoding checks, for values built by hand.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self {
            NodeCapability::Extension { kind, data } => {
                if *kind < Self::EXTENSION0 {
                    return Err(DecodeError::InvalidValue {
                        what: "capability.type",
                        value: (*kind).into(),
                    });
                }
                check_data(data)
            }
            NodeCapability::Unknown { kind, data } => {
                if matches!(*kind, 0x01..=0x03 | 0x10 | 0x11 | 0xF0..=0xFF) {
                    return Err(DecodeError::InvalidValue {
                        what: "capability.type",
                        value: (*kind).into(),
                    });
                }
                check_data(data)
            }
            _ => Ok(()),
        }
    }
}

fn check_data(data: &Bytes) -> Result<(), DecodeError> {
    if data.len() > MAX_CAPABILITY_DATA {
        return Err(DecodeError::TooMany {
            what: "capability.data",
            count: data.len() as u64,
            max: MAX_CAPABILITY_DATA as u64,
        });
    }
    Ok(())
}

fn zero_byte(r: &mut Reader) -> Result<(), DecodeError> {
    match r.u8("capability.data")? {
        0 => Ok(()),
        v => Err(DecodeError::InvalidValue {
            what: "capability.data",
            value: v.into(),
        }),
    }
}

/// The short text form: `TcpServer:20333`, `WsServer:20334`, `FullNode:1234`,
/// `DisableCompression`, `ArchivalNode`, `Extension0:<hex data>`,
/// `Unknown(0x42):<hex data>` (the address book keeps capabilities so).
///
/// ```
/// use neo_peer::wire::n3::NodeCapability;
///
/// assert_eq!(NodeCapability::TcpServer { port: 20333 }.to_string(), "TcpServer:20333");
/// assert_eq!(NodeCapability::FullNode { start_height: 7 }.to_string(), "FullNode:7");
/// assert_eq!(NodeCapability::ArchivalNode.to_string(), "ArchivalNode");
/// ```
impl std::fmt::Display for NodeCapability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let with_data = |f: &mut std::fmt::Formatter<'_>, data: &[u8]| {
            if data.is_empty() {
                Ok(())
            } else {
                write!(f, ":{}", hex::encode(data))
            }
        };
        match self {
            NodeCapability::TcpServer { port } | NodeCapability::WsServer { port } => {
                write!(f, "{}:{port}", self.name())
            }
            NodeCapability::FullNode { start_height } => {
                write!(f, "{}:{start_height}", self.name())
            }
            NodeCapability::Extension { kind, data } => {
                write!(f, "Extension{}", kind.wrapping_sub(Self::EXTENSION0))?;
                with_data(f, data)
            }
            NodeCapability::Unknown { kind, data } => {
                write!(f, "Unknown({kind:#04x})")?;
                with_data(f, data)
            }
            _ => f.write_str(self.name()),
        }
    }
}

impl Decode for NodeCapability {
    const NAME: &'static str = "capability";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let kind = r.u8("capability.type")?;
        Ok(match kind {
            Self::TCP_SERVER => NodeCapability::TcpServer {
                port: r.u16("capability.port")?,
            },
            Self::WS_SERVER => NodeCapability::WsServer {
                port: r.u16("capability.port")?,
            },
            Self::DISABLE_COMPRESSION => {
                zero_byte(r)?;
                NodeCapability::DisableCompression
            }
            Self::FULL_NODE => NodeCapability::FullNode {
                start_height: r.u32("capability.start_height")?,
            },
            Self::ARCHIVAL_NODE => {
                zero_byte(r)?;
                NodeCapability::ArchivalNode
            }
            0xF0..=0xFF => NodeCapability::Extension {
                kind,
                data: r.var_bytes(MAX_CAPABILITY_DATA as u64, "capability.data")?,
            },
            _ => NodeCapability::Unknown {
                kind,
                data: r.var_bytes(MAX_CAPABILITY_DATA as u64, "capability.data")?,
            },
        })
    }
}

impl Encode for NodeCapability {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.kind());
        match self {
            NodeCapability::TcpServer { port } | NodeCapability::WsServer { port } => {
                out.put_u16_le(*port)
            }
            NodeCapability::DisableCompression | NodeCapability::ArchivalNode => out.put_u8(0),
            NodeCapability::FullNode { start_height } => out.put_u32_le(*start_height),
            NodeCapability::Extension { data, .. } | NodeCapability::Unknown { data, .. } => {
                out.put_var_bytes(data)
            }
        }
    }

    fn size(&self) -> usize {
        1 + match self {
            NodeCapability::TcpServer { .. } | NodeCapability::WsServer { .. } => 2,
            NodeCapability::DisableCompression | NodeCapability::ArchivalNode => 1,
            NodeCapability::FullNode { .. } => 4,
            NodeCapability::Extension { data, .. } | NodeCapability::Unknown { data, .. } => {
                var_bytes_size(data.len())
            }
        }
    }
}

/// Reads a capability list (at most [`MAX_CAPABILITIES`], known types unique).
pub(crate) fn decode_capabilities(r: &mut Reader) -> Result<Vec<NodeCapability>, DecodeError> {
    let caps = r.vec(
        MAX_CAPABILITIES as u64,
        2,
        "capabilities",
        NodeCapability::decode,
    )?;
    check_unique(&caps)?;
    Ok(caps)
}

/// Checks a capability list the way decoding does.
pub(crate) fn validate_capabilities(caps: &[NodeCapability]) -> Result<(), DecodeError> {
    if caps.len() > MAX_CAPABILITIES {
        return Err(DecodeError::TooMany {
            what: "capabilities",
            count: caps.len() as u64,
            max: MAX_CAPABILITIES as u64,
        });
    }
    caps.iter().try_for_each(NodeCapability::validate)?;
    check_unique(caps)
}

/// Both reference nodes refuse two capabilities of the same known type.
fn check_unique(caps: &[NodeCapability]) -> Result<(), DecodeError> {
    let mut seen = [false; 256];
    for cap in caps.iter().filter(|c| c.is_unique()) {
        let slot = &mut seen[usize::from(cap.kind())];
        if *slot {
            return Err(DecodeError::Invalid {
                what: "capabilities",
                reason: "duplicate capability type",
            });
        }
        *slot = true;
    }
    Ok(())
}
