//! What the local node does with what a peer sends.
//!
//! The engine calls a [`Handler`] for every message that is not handshake or
//! keep-alive traffic and not the awaited answer of a request. Handlers run
//! on a task of their own, one message at a time per peer, never on the read
//! path: a slow handler fills its queue and the peer then stops reading from
//! the socket, so the remote is slowed down instead of memory growing. Time
//! spent in handlers is not counted against the remote by the stall detector.
//!
//! Implement [`LegacyHandler`] or [`N3Handler`] (one method per message kind,
//! each with a do-nothing default, plus [`on_other`](N3Handler::on_other)),
//! or [`Handler`] directly for a single entry point.

use std::future::Future;

use super::{Misbehaviour, Peer};
use crate::protocol::{Legacy, N3, Protocol, RequestKind};
use crate::wire::{legacy, n3};

/// Receives the messages of one protocol's peers.
pub trait Handler<P: Protocol>: Send + Sync + 'static {
    /// Handles one message from `peer`.
    fn handle(&self, peer: &Peer<P>, msg: P::Message) -> impl Future<Output = ()> + Send;

    /// Handles a message that answers `request`, a request sent without
    /// waiting for its answer ([`Peer::send`], the `request_*` methods).
    /// Unsolicited messages of the same kind go to [`Handler::handle`]
    /// instead. By default, the same as `handle`.
    fn handle_answer(
        &self,
        peer: &Peer<P>,
        msg: P::Message,
        request: RequestKind,
    ) -> impl Future<Output = ()> + Send {
        let _ = request;
        self.handle(peer, msg)
    }

    /// Told of a fault of the remote that did not end the connection (a
    /// height it claimed and its own answer disproved). By default, nothing.
    fn misbehaved(&self, peer: &Peer<P>, what: Misbehaviour) -> impl Future<Output = ()> + Send {
        let _ = (peer, what);
        async {}
    }
}

/// A handler that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct IgnoreAll;

impl<P: Protocol> Handler<P> for IgnoreAll {
    async fn handle(&self, _peer: &Peer<P>, _msg: P::Message) {}
}

macro_rules! handler_methods {
    ($proto:ty, $( $(#[$doc:meta])* $name:ident($ty:ty) ),* $(,)?) => {
        $(
            $(#[$doc])*
            fn $name(&self, peer: &Peer<$proto>, msg: $ty) -> impl Future<Output = ()> + Send {
                let _ = (peer, msg);
                async {}
            }
        )*
    };
}

/// Per-kind handlers of NEO Legacy peers. Every method defaults to doing nothing.
pub trait LegacyHandler: Send + Sync + 'static {
    handler_methods!(Legacy,
        /// `headers`.
        on_headers(legacy::HeadersPayload),
        /// `block`.
        on_block(Box<legacy::Block>),
        /// `tx`.
        on_tx(Box<legacy::Transaction>),
        /// `inv`.
        on_inv(legacy::InvPayload),
        /// `addr`.
        on_addr(legacy::AddrPayload),
        /// `getheaders`.
        on_get_headers(legacy::GetBlocksPayload),
        /// `getblocks`.
        on_get_blocks(legacy::GetBlocksPayload),
        /// `getdata`.
        on_get_data(legacy::InvPayload),
        /// `getaddr`.
        on_get_addr(()),
        /// `consensus`.
        on_consensus(legacy::ConsensusPayload),
        /// Every other message (`mempool`, filters, state roots, unknown commands...).
        on_other(legacy::Message),
    );
}

impl<T: LegacyHandler> Handler<Legacy> for T {
    async fn handle(&self, peer: &Peer<Legacy>, msg: legacy::Message) {
        use legacy::Message as M;
        match msg {
            M::Headers(m) => self.on_headers(peer, m).await,
            M::Block(m) => self.on_block(peer, m).await,
            M::Tx(m) => self.on_tx(peer, m).await,
            M::Inv(m) => self.on_inv(peer, m).await,
            M::Addr(m) => self.on_addr(peer, m).await,
            M::GetHeaders(m) => self.on_get_headers(peer, m).await,
            M::GetBlocks(m) => self.on_get_blocks(peer, m).await,
            M::GetData(m) => self.on_get_data(peer, m).await,
            M::GetAddr => self.on_get_addr(peer, ()).await,
            M::Consensus(m) => self.on_consensus(peer, m).await,
            other => self.on_other(peer, other).await,
        }
    }
}

/// Per-kind handlers of Neo N3 peers. Every method defaults to doing nothing.
pub trait N3Handler: Send + Sync + 'static {
    handler_methods!(N3,
        /// `headers`.
        on_headers(n3::HeadersPayload),
        /// `block`.
        on_block(n3::Block),
        /// `transaction`.
        on_tx(n3::Transaction),
        /// `inv`.
        on_inv(n3::InvPayload),
        /// `addr`.
        on_addr(n3::AddrPayload),
        /// `getheaders`.
        on_get_headers(n3::GetBlockByIndexPayload),
        /// `getblockbyindex`.
        on_get_block_by_index(n3::GetBlockByIndexPayload),
        /// `getblocks`.
        on_get_blocks(n3::GetBlocksPayload),
        /// `getdata`.
        on_get_data(n3::InvPayload),
        /// `getaddr`.
        on_get_addr(()),
        /// `notfound`.
        on_not_found(n3::InvPayload),
        /// `extensible` (consensus, state service).
        on_extensible(n3::ExtensiblePayload),
        /// `mempool`.
        on_mempool(()),
        /// Every other message (filters, `merkleblock`, extensions, unknown commands...).
        on_other(n3::Message),
    );
}

impl<T: N3Handler> Handler<N3> for T {
    async fn handle(&self, peer: &Peer<N3>, msg: n3::Message) {
        use n3::Message as M;
        match msg {
            M::Headers(m) => self.on_headers(peer, m).await,
            M::Block(m) => self.on_block(peer, m).await,
            M::Transaction(m) => self.on_tx(peer, m).await,
            M::Inv(m) => self.on_inv(peer, m).await,
            M::Addr(m) => self.on_addr(peer, m).await,
            M::GetHeaders(m) => self.on_get_headers(peer, m).await,
            M::GetBlockByIndex(m) => self.on_get_block_by_index(peer, m).await,
            M::GetBlocks(m) => self.on_get_blocks(peer, m).await,
            M::GetData(m) => self.on_get_data(peer, m).await,
            M::GetAddr => self.on_get_addr(peer, ()).await,
            M::NotFound(m) => self.on_not_found(peer, m).await,
            M::Extensible(m) => self.on_extensible(peer, m).await,
            M::Mempool => self.on_mempool(peer, ()).await,
            other => self.on_other(peer, other).await,
        }
    }
}
