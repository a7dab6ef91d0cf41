//! The relayed items of each generation, and the messages that carry them.

use std::fmt;

use crate::chain::Serve;
use crate::protocol::{Legacy, N3, Protocol};
use crate::wire::{UInt256, legacy, n3};

/// What a relayed item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    /// A transaction (`tx` on Legacy, `transaction` on N3).
    Transaction,
    /// A full block.
    Block,
    /// An N3 extensible payload (dBFT consensus messages, state roots).
    Extensible,
    /// A Legacy `consensus` payload.
    Consensus,
}

impl ItemKind {
    /// A short lower-case name (`"tx"`, `"block"`, `"extensible"`,
    /// `"consensus"`).
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Transaction => "tx",
            ItemKind::Block => "block",
            ItemKind::Extensible => "extensible",
            ItemKind::Consensus => "consensus",
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One relayable item: its kind, its hash, the height it belongs to, and
/// the decoded message that carries it.
///
/// The hash is computed once, when the item is made from its message
/// ([`Inventory::item`]).
#[derive(Debug, Clone)]
pub struct Item<P: Protocol> {
    /// What it is.
    pub kind: ItemKind,
    /// Its hash (the inventory hash peers announce and ask for).
    pub hash: UInt256,
    /// A block's index; an extensible's first valid height; a Legacy
    /// consensus payload's block index; `None` for a transaction.
    pub height: Option<u32>,
    /// The message that carries it (`block`, `tx`/`transaction`,
    /// `extensible`, `consensus`).
    pub message: P::Message,
}

/// Most hashes one `inv`, `getdata` or `notfound` carries (both
/// generations): longer lists are split.
pub const MAX_INV_HASHES: usize = n3::MAX_INV_HASHES;

/// The relay messages of one generation: `inv`, `getdata`, `notfound`
/// (N3 only) and the item messages, seen through [`Item`] and [`ItemKind`]
/// so that relay logic is written once for both.
///
/// ```
/// use neo_peer::protocol::N3;
/// use neo_peer::relay::{Inventory, ItemKind};
/// use neo_peer::wire::UInt256;
///
/// let hashes = [UInt256([1; 32]), UInt256([2; 32])];
/// let inv = N3::inv(ItemKind::Transaction, &hashes).unwrap();
/// assert_eq!(N3::announced(&inv), Some((ItemKind::Transaction, &hashes[..])));
/// assert!(N3::inv(ItemKind::Consensus, &hashes).is_none(), "a Legacy kind");
/// ```
pub trait Inventory: Serve {
    /// Whether this generation carries items of `kind`.
    fn carries(kind: ItemKind) -> bool;
    /// The item `msg` carries (`None` for any other message).
    fn item(msg: &Self::Message) -> Option<Item<Self>>;
    /// An `inv` announcing `hashes` (at most [`MAX_INV_HASHES`] are taken);
    /// `None` when `hashes` is empty or the kind is not of this generation.
    fn inv(kind: ItemKind, hashes: &[UInt256]) -> Option<Self::Message>;
    /// A `getdata` asking for `hashes` (at most [`MAX_INV_HASHES`]); `None`
    /// as for [`Inventory::inv`].
    fn get_data(kind: ItemKind, hashes: &[UInt256]) -> Option<Self::Message>;
    /// A `notfound` listing `hashes` (at most [`MAX_INV_HASHES`]); `None` as
    /// for [`Inventory::inv`], and always on Legacy, which has none.
    fn not_found(kind: ItemKind, hashes: &[UInt256]) -> Option<Self::Message>;
    /// The kind and hashes of an `inv` (`None` for other messages and for
    /// kinds that are not relayed, such as Legacy state roots).
    fn announced(msg: &Self::Message) -> Option<(ItemKind, &[UInt256])>;
    /// The kind and hashes of a `getdata`, as [`Inventory::announced`].
    fn asked(msg: &Self::Message) -> Option<(ItemKind, &[UInt256])>;
    /// The kind and hashes of a `notfound` (N3), as [`Inventory::announced`].
    fn missing(msg: &Self::Message) -> Option<(ItemKind, &[UInt256])>;
}

fn n3_type(kind: ItemKind) -> Option<n3::InventoryType> {
    match kind {
        ItemKind::Transaction => Some(n3::InventoryType::Transaction),
        ItemKind::Block => Some(n3::InventoryType::Block),
        ItemKind::Extensible => Some(n3::InventoryType::Extensible),
        ItemKind::Consensus => None,
    }
}

fn n3_kind(t: n3::InventoryType) -> Option<ItemKind> {
    match t {
        n3::InventoryType::Transaction => Some(ItemKind::Transaction),
        n3::InventoryType::Block => Some(ItemKind::Block),
        n3::InventoryType::Extensible => Some(ItemKind::Extensible),
        n3::InventoryType::P2PNotaryRequest => None,
    }
}

fn n3_payload(kind: ItemKind, hashes: &[UInt256]) -> Option<n3::InvPayload> {
    if hashes.is_empty() {
        return None;
    }
    Some(n3::InvPayload {
        kind: n3_type(kind)?,
        hashes: hashes[..hashes.len().min(MAX_INV_HASHES)].to_vec(),
    })
}

fn n3_list(p: &n3::InvPayload) -> Option<(ItemKind, &[UInt256])> {
    Some((n3_kind(p.kind)?, &p.hashes))
}

impl Inventory for N3 {
    fn carries(kind: ItemKind) -> bool {
        n3_type(kind).is_some()
    }

    fn item(msg: &n3::Message) -> Option<Item<N3>> {
        let (kind, hash, height) = match msg {
            n3::Message::Transaction(tx) => (ItemKind::Transaction, tx.hash(), None),
            n3::Message::Block(b) => (ItemKind::Block, b.hash(), Some(b.index())),
            n3::Message::Extensible(e) => {
                (ItemKind::Extensible, e.hash(), Some(e.valid_block_start))
            }
            _ => return None,
        };
        Some(Item {
            kind,
            hash,
            height,
            message: msg.clone(),
        })
    }

    fn inv(kind: ItemKind, hashes: &[UInt256]) -> Option<n3::Message> {
        n3_payload(kind, hashes).map(n3::Message::Inv)
    }

    fn get_data(kind: ItemKind, hashes: &[UInt256]) -> Option<n3::Message> {
        n3_payload(kind, hashes).map(n3::Message::GetData)
    }

    fn not_found(kind: ItemKind, hashes: &[UInt256]) -> Option<n3::Message> {
        n3_payload(kind, hashes).map(n3::Message::NotFound)
    }

    fn announced(msg: &n3::Message) -> Option<(ItemKind, &[UInt256])> {
        match msg {
            n3::Message::Inv(p) => n3_list(p),
            _ => None,
        }
    }

    fn asked(msg: &n3::Message) -> Option<(ItemKind, &[UInt256])> {
        match msg {
            n3::Message::GetData(p) => n3_list(p),
            _ => None,
        }
    }

    fn missing(msg: &n3::Message) -> Option<(ItemKind, &[UInt256])> {
        match msg {
            n3::Message::NotFound(p) => n3_list(p),
            _ => None,
        }
    }
}

fn legacy_type(kind: ItemKind) -> Option<legacy::InventoryType> {
    match kind {
        ItemKind::Transaction => Some(legacy::InventoryType::Tx),
        ItemKind::Block => Some(legacy::InventoryType::Block),
        ItemKind::Consensus => Some(legacy::InventoryType::Consensus),
        ItemKind::Extensible => None,
    }
}

fn legacy_kind(t: legacy::InventoryType) -> Option<ItemKind> {
    match t {
        legacy::InventoryType::Tx => Some(ItemKind::Transaction),
        legacy::InventoryType::Block => Some(ItemKind::Block),
        legacy::InventoryType::Consensus => Some(ItemKind::Consensus),
        legacy::InventoryType::StateRoot => None,
    }
}

fn legacy_payload(kind: ItemKind, hashes: &[UInt256]) -> Option<legacy::InvPayload> {
    if hashes.is_empty() {
        return None;
    }
    Some(legacy::InvPayload {
        kind: legacy_type(kind)?,
        hashes: hashes[..hashes.len().min(MAX_INV_HASHES)].to_vec(),
    })
}

fn legacy_list(p: &legacy::InvPayload) -> Option<(ItemKind, &[UInt256])> {
    Some((legacy_kind(p.kind)?, &p.hashes))
}

impl Inventory for Legacy {
    fn carries(kind: ItemKind) -> bool {
        legacy_type(kind).is_some()
    }

    fn item(msg: &legacy::Message) -> Option<Item<Legacy>> {
        let (kind, hash, height) = match msg {
            legacy::Message::Tx(tx) => (ItemKind::Transaction, tx.hash(), None),
            legacy::Message::Block(b) => (ItemKind::Block, b.hash(), Some(b.index())),
            legacy::Message::Consensus(c) => (ItemKind::Consensus, c.hash(), Some(c.block_index)),
            _ => return None,
        };
        Some(Item {
            kind,
            hash,
            height,
            message: msg.clone(),
        })
    }

    fn inv(kind: ItemKind, hashes: &[UInt256]) -> Option<legacy::Message> {
        legacy_payload(kind, hashes).map(legacy::Message::Inv)
    }

    fn get_data(kind: ItemKind, hashes: &[UInt256]) -> Option<legacy::Message> {
        legacy_payload(kind, hashes).map(legacy::Message::GetData)
    }

    fn not_found(_kind: ItemKind, _hashes: &[UInt256]) -> Option<legacy::Message> {
        None
    }

    fn announced(msg: &legacy::Message) -> Option<(ItemKind, &[UInt256])> {
        match msg {
            legacy::Message::Inv(p) => legacy_list(p),
            _ => None,
        }
    }

    fn asked(msg: &legacy::Message) -> Option<(ItemKind, &[UInt256])> {
        match msg {
            legacy::Message::GetData(p) => legacy_list(p),
            _ => None,
        }
    }

    fn missing(_msg: &legacy::Message) -> Option<(ItemKind, &[UInt256])> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{LegacyChain, N3Chain, Synthetic};

    fn hashes(n: u8) -> Vec<UInt256> {
        (0..n).map(|i| UInt256([i; 32])).collect()
    }

    #[test]
    fn n3_lists_round_trip_and_are_capped() {
        let hs = hashes(3);
        for kind in [ItemKind::Transaction, ItemKind::Block, ItemKind::Extensible] {
            assert!(N3::carries(kind));
            let inv = N3::inv(kind, &hs).unwrap();
            assert_eq!(N3::announced(&inv), Some((kind, &hs[..])));
            assert_eq!(N3::asked(&inv), None);
            let get = N3::get_data(kind, &hs).unwrap();
            assert_eq!(N3::asked(&get), Some((kind, &hs[..])));
            let nf = N3::not_found(kind, &hs).unwrap();
            assert_eq!(N3::missing(&nf), Some((kind, &hs[..])));
        }
        assert!(!N3::carries(ItemKind::Consensus));
        assert!(
            N3::inv(ItemKind::Block, &[]).is_none(),
            "never an empty list"
        );
        let many = vec![UInt256::ZERO; 1200];
        let n3::Message::Inv(p) = N3::inv(ItemKind::Block, &many).unwrap() else {
            panic!()
        };
        assert_eq!(p.hashes.len(), MAX_INV_HASHES);
    }

    #[test]
    fn legacy_lists_round_trip_and_have_no_notfound() {
        let hs = hashes(2);
        for kind in [ItemKind::Transaction, ItemKind::Block, ItemKind::Consensus] {
            assert!(Legacy::carries(kind));
            let inv = Legacy::inv(kind, &hs).unwrap();
            assert_eq!(Legacy::announced(&inv), Some((kind, &hs[..])));
            let get = Legacy::get_data(kind, &hs).unwrap();
            assert_eq!(Legacy::asked(&get), Some((kind, &hs[..])));
            assert!(Legacy::not_found(kind, &hs).is_none());
        }
        assert!(Legacy::inv(ItemKind::Extensible, &hs).is_none());
        let roots = legacy::Message::Inv(legacy::InvPayload {
            kind: legacy::InventoryType::StateRoot,
            hashes: hs,
        });
        assert_eq!(
            Legacy::announced(&roots),
            None,
            "state roots are not relayed"
        );
    }

    #[test]
    fn items_carry_their_hash_and_height() {
        let chain = N3Chain::synthetic(&Synthetic::default());
        let block = chain.block(1).unwrap().clone();
        let item = N3::item(&n3::Message::Block(block.clone())).unwrap();
        assert_eq!(
            (item.kind, item.hash, item.height),
            (ItemKind::Block, block.hash(), Some(1))
        );
        if let Some(tx) = block.transactions.first() {
            let item = N3::item(&n3::Message::Transaction(tx.clone())).unwrap();
            assert_eq!(
                (item.kind, item.hash, item.height),
                (ItemKind::Transaction, tx.hash(), None)
            );
        }
        assert!(N3::item(&n3::Message::Verack).is_none());

        let chain = LegacyChain::synthetic(&Synthetic::default());
        let block = chain.block(2).unwrap().clone();
        let item = Legacy::item(&legacy::Message::Block(Box::new(block.clone()))).unwrap();
        assert_eq!(
            (item.kind, item.hash, item.height),
            (ItemKind::Block, block.hash(), Some(2))
        );
        assert_eq!(ItemKind::Consensus.to_string(), "consensus");
    }
}
