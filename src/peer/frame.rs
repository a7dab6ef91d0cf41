//! Frames encoded ahead of time, to be sent to many peers without being
//! encoded (or copied) again: see [`Frame`] and [`Encoder`].

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use super::budget::{Budget, Claim};
use super::{LocalConfig, PeerError};
use crate::protocol::{Obligation, Protocol};
use crate::wire::MAX_PAYLOAD;

/// One message encoded as it goes on the wire, for a given network and
/// compression setting ([`Encoder::key`]), cheap to clone: its bytes are
/// shared ([`Bytes`]), so a frame queued on many peers at once
/// ([`Peer::send_frame`](super::Peer::send_frame)) is in memory once.
///
/// Only messages that ask for nothing become frames (answers and
/// announcements: `headers`, `block`, `inv`, …): a request must go through
/// [`Peer::send`](super::Peer::send) or the `request_*` methods, which track
/// its answers.
///
/// Queued on many peers at once, it is charged to their
/// [`SendBudget`](super::SendBudget) once, not once per peer: the first
/// peer to queue it while no peer holds it unsent charges its bytes, the
/// others join that charge, and the last one to write it (or to end) gives
/// them back.
#[derive(Clone)]
pub struct Frame {
    bytes: Bytes,
    command: &'static str,
    charge: Arc<Charge>,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.bytes == other.bytes && self.command == other.command
    }
}

impl Eq for Frame {}

/// The send budget's charge for one frame, shared by every clone of it.
#[derive(Default)]
struct Charge {
    state: Mutex<ChargeState>,
}

#[derive(Default)]
struct ChargeState {
    /// Peers holding it unsent.
    holders: usize,
    /// Its bytes, charged to the budget of the first of them.
    claim: Option<Claim>,
}

impl Charge {
    fn lock(&self) -> std::sync::MutexGuard<'_, ChargeState> {
        // Never left half-updated: a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One peer's hold on a frame it has unsent: while any peer has one, the
/// frame's bytes are charged once to the send budget. Dropping the last
/// hold gives them back.
pub(crate) struct Holding {
    charge: Arc<Charge>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        let released = {
            let mut state = self.charge.lock();
            state.holders = state.holders.saturating_sub(1);
            if state.holders == 0 {
                state.claim.take()
            } else {
                None
            }
        };
        // Given back outside the frame's lock.
        drop(released);
    }
}

impl Holding {
    /// Whether it is a hold on `frame` (or a clone of it).
    pub(crate) fn is_of(&self, frame: &Frame) -> bool {
        Arc::ptr_eq(&self.charge, &frame.charge)
    }
}

impl fmt::Debug for Holding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Holding").finish_non_exhaustive()
    }
}

impl Frame {
    /// The encoded bytes (header and payload).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it has no bytes (never true of an encoded frame).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The command it carries.
    pub fn command(&self) -> &'static str {
        self.command
    }

    /// A hold on it for one more peer. The first holder charges its bytes
    /// to `budget`: only if the budget has room for all of them (`None`
    /// otherwise), or whatever it has left when `force` is set (the bytes
    /// are in memory already).
    pub(crate) fn hold(&self, budget: &Budget, force: bool) -> Option<Holding> {
        let mut state = self.charge.lock();
        if state.holders == 0 {
            let claim = budget.claim();
            if force {
                claim.set(self.len());
            } else if claim.take(self.len()) < self.len() {
                // All or nothing: dropping the claim gives back what it took.
                return None;
            }
            state.claim = Some(claim);
        }
        state.holders += 1;
        Some(Holding {
            charge: self.charge.clone(),
        })
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("command", &self.command)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Encodes messages into [`Frame`]s the way one peer's connection wants
/// them: its network, its payload limits, and on N3 whether the remote
/// takes compressed payloads. Get it from
/// [`Peer::encoder`](super::Peer::encoder) (after the handshake) or build it
/// with [`Encoder::new`].
///
/// Two peers with the same [`key`](Encoder::key) take the same bytes, so a
/// cache of frames shared between peers is keyed by it.
///
/// ```
/// use neo_peer::peer::{Encoder, LocalConfig};
/// use neo_peer::protocol::N3;
/// use neo_peer::wire::n3::{self, PRIVNET_MAGIC};
///
/// let config = LocalConfig::<N3>::new(PRIVNET_MAGIC);
/// let encoder = Encoder::new(&config, true);
/// let inv = n3::Message::Inv(n3::InvPayload {
///     kind: n3::InventoryType::Block,
///     hashes: vec![Default::default()],
/// });
/// let frame = encoder.encode(&inv).unwrap();
/// assert_eq!(frame.command(), "inv");
/// assert_eq!(encoder.key(), (PRIVNET_MAGIC, true));
/// ```
pub struct Encoder<P: Protocol> {
    codec: P::Codec,
    network: u32,
    compress: bool,
}

impl<P: Protocol> Encoder<P> {
    /// An encoder for the peers of `config`; `compress` turns N3 payload
    /// compression on (for a remote that allows it; no effect on Legacy).
    pub fn new(config: &LocalConfig<P>, compress: bool) -> Self {
        let network = config.identity.network;
        let mut codec = P::codec(network);
        P::set_max_payload(&mut codec, MAX_PAYLOAD);
        P::set_limits(&mut codec, config.payload_limits);
        P::set_compression(&mut codec, compress);
        Encoder {
            codec,
            network,
            compress,
        }
    }

    /// What decides its bytes: the network magic and whether compression
    /// is on.
    pub fn key(&self) -> (u32, bool) {
        (self.network, self.compress)
    }

    /// The frame of `msg`. Fails when `msg` breaks a limit of the protocol
    /// ([`PeerError::Encode`]) or is a request ([`PeerError::NotShareable`]).
    pub fn encode(&self, msg: &P::Message) -> Result<Frame, PeerError> {
        let command = P::command_name(msg);
        if P::obligation(msg, None, u32::MAX) != Obligation::Nothing {
            return Err(PeerError::NotShareable(command));
        }
        let mut out = BytesMut::with_capacity(P::frame_size(msg));
        P::encode(&self.codec, msg, &mut out).map_err(PeerError::Encode)?;
        // A compressed frame keeps only its own bytes, not the room taken
        // for the uncompressed form (it may be kept long, by many peers).
        let bytes = if out.capacity() - out.len() > out.len() / 8 {
            Bytes::copy_from_slice(&out)
        } else {
            out.freeze()
        };
        Ok(Frame {
            bytes,
            command,
            charge: Arc::default(),
        })
    }
}

impl<P: Protocol> fmt::Debug for Encoder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("protocol", &P::NAME)
            .field("network", &self.network)
            .field("compress", &self.compress)
            .finish()
    }
}
