//! Transactions: signers and their scopes, witness rules and conditions, attributes.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    MAX_CONDITION_NESTING, MAX_INVOCATION_SCRIPT, MAX_ORACLE_RESULT, MAX_SCRIPT,
    MAX_SIGNER_SUBITEMS, MAX_SUBITEMS, MAX_TRANSACTION_ATTRIBUTES, MAX_TRANSACTION_SIZE,
    MAX_VERIFICATION_SCRIPT,
};
use crate::wire::{
    Decode, DecodeError, Encode, Reader, UInt160, UInt256, Witness, WriteExt, encode_vec, sha256,
    var_bytes_size, vec_size,
};

/// Fails unless `min <= n <= max`.
pub(crate) fn check_count(
    what: &'static str,
    n: usize,
    min: usize,
    max: usize,
) -> Result<(), DecodeError> {
    if n > max {
        Err(DecodeError::TooMany {
            what,
            count: n as u64,
            max: max as u64,
        })
    } else if n < min {
        Err(DecodeError::TooFew {
            what,
            count: n as u64,
            min: min as u64,
        })
    } else {
        Ok(())
    }
}

/// Reads a witness with the N3 script limits.
pub(crate) fn decode_witness(r: &mut Reader) -> Result<Witness, DecodeError> {
    Ok(Witness {
        invocation: r.var_bytes(MAX_INVOCATION_SCRIPT as u64, "witness.invocation")?,
        verification: r.var_bytes(MAX_VERIFICATION_SCRIPT as u64, "witness.verification")?,
    })
}

/// Checks a witness built by hand against the N3 script limits.
pub(crate) fn validate_witness(w: &Witness) -> Result<(), DecodeError> {
    validate_script_lengths(w.invocation.len(), w.verification.len())
}

/// Checks the lengths of a witness's two scripts against the N3 limits.
pub(crate) fn validate_script_lengths(
    invocation: usize,
    verification: usize,
) -> Result<(), DecodeError> {
    check_count("witness.invocation", invocation, 0, MAX_INVOCATION_SCRIPT)?;
    check_count(
        "witness.verification",
        verification,
        0,
        MAX_VERIFICATION_SCRIPT,
    )
}

/// A public key on secp256r1, as encoded on the wire.
///
/// Only the prefix is checked (`0x02`/`0x03` + 32 bytes, or `0x04` + 64
/// bytes); whether the point lies on the curve is left to signature
/// verification. The received form is kept so that re-encoding gives the
/// same bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcPoint {
    /// Compressed form: `0x02`/`0x03` and the X coordinate.
    Compressed([u8; 33]),
    /// Uncompressed form: `0x04`, X and Y.
    Uncompressed([u8; 65]),
}

impl EcPoint {
    /// The encoded bytes, prefix included.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            EcPoint::Compressed(b) => b,
            EcPoint::Uncompressed(b) => b,
        }
    }

    /// Parses an encoded point (33 or 65 bytes with a valid prefix).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        EcPoint::decode_exact(Bytes::copy_from_slice(bytes))
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let ok = match self {
            EcPoint::Compressed(b) => matches!(b[0], 0x02 | 0x03),
            EcPoint::Uncompressed(b) => b[0] == 0x04,
        };
        if ok {
            Ok(())
        } else {
            Err(DecodeError::InvalidValue {
                what: "ecpoint",
                value: self.as_bytes()[0].into(),
            })
        }
    }
}

impl fmt::Debug for EcPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcPoint({})", hex::encode(self.as_bytes()))
    }
}

impl fmt::Display for EcPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.as_bytes()))
    }
}

impl Decode for EcPoint {
    const NAME: &'static str = "ecpoint";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let prefix = r.u8("ecpoint")?;
        match prefix {
            0x02 | 0x03 => {
                let mut b = [0u8; 33];
                b[0] = prefix;
                b[1..].copy_from_slice(&r.array::<32>("ecpoint")?);
                Ok(EcPoint::Compressed(b))
            }
            0x04 => {
                let mut b = [0u8; 65];
                b[0] = prefix;
                b[1..].copy_from_slice(&r.array::<64>("ecpoint")?);
                Ok(EcPoint::Uncompressed(b))
            }
            v => Err(DecodeError::InvalidValue {
                what: "ecpoint",
                value: v.into(),
            }),
        }
    }
}

impl Encode for EcPoint {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(self.as_bytes());
    }
    fn size(&self) -> usize {
        self.as_bytes().len()
    }
}

/// The scopes of a signer's witness (bit flags).
///
/// `None` (0) limits the witness to fee payment; `Global` may not be combined
/// with anything else; other bits are invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WitnessScope(u8);

impl WitnessScope {
    /// Only pays fees.
    pub const NONE: WitnessScope = WitnessScope(0x00);
    /// Valid in the entry script only.
    pub const CALLED_BY_ENTRY: WitnessScope = WitnessScope(0x01);
    /// Valid in the listed contracts (`allowed_contracts`).
    pub const CUSTOM_CONTRACTS: WitnessScope = WitnessScope(0x10);
    /// Valid in contracts of the listed groups (`allowed_groups`).
    pub const CUSTOM_GROUPS: WitnessScope = WitnessScope(0x20);
    /// Valid where the rules allow (`rules`).
    pub const WITNESS_RULES: WitnessScope = WitnessScope(0x40);
    /// Valid everywhere.
    pub const GLOBAL: WitnessScope = WitnessScope(0x80);

    const ALL: u8 = 0x01 | 0x10 | 0x20 | 0x40 | 0x80;
    const NAMES: [(u8, &'static str); 5] = [
        (0x01, "CalledByEntry"),
        (0x10, "CustomContracts"),
        (0x20, "CustomGroups"),
        (0x40, "WitnessRules"),
        (0x80, "Global"),
    ];

    /// Builds a scope set from its byte, applying the decoding rules.
    pub fn from_bits(bits: u8) -> Result<Self, DecodeError> {
        if bits & !Self::ALL != 0 || (bits & 0x80 != 0 && bits != 0x80) {
            return Err(DecodeError::InvalidValue {
                what: "signer.scopes",
                value: bits.into(),
            });
        }
        Ok(WitnessScope(bits))
    }

    /// The byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True if every flag of `other` is set.
    pub const fn contains(self, other: WitnessScope) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two scope sets (not checked: combine `GLOBAL` with nothing).
    pub const fn union(self, other: WitnessScope) -> WitnessScope {
        WitnessScope(self.0 | other.0)
    }
}

impl std::ops::BitOr for WitnessScope {
    type Output = WitnessScope;
    fn bitor(self, rhs: WitnessScope) -> WitnessScope {
        self.union(rhs)
    }
}

/// The RPC spelling: `"None"`, `"Global"` or flags joined by `", "`
/// (e.g. `"CalledByEntry, CustomContracts"`).
impl fmt::Display for WitnessScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("None");
        }
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for WitnessScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WitnessScope({self})")
    }
}

/// A condition under which a witness rule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessCondition {
    /// `0x00`: a constant.
    Boolean(bool),
    /// `0x01`: negation of the inner condition.
    Not(Box<WitnessCondition>),
    /// `0x02`: all of 1..=16 conditions.
    And(Vec<WitnessCondition>),
    /// `0x03`: any of 1..=16 conditions.
    Or(Vec<WitnessCondition>),
    /// `0x18`: the current script hash is this one.
    ScriptHash(UInt160),
    /// `0x19`: the current contract belongs to this group.
    Group(EcPoint),
    /// `0x20`: called by the entry script.
    CalledByEntry,
    /// `0x28`: called by this contract.
    CalledByContract(UInt160),
    /// `0x29`: called by a contract of this group.
    CalledByGroup(EcPoint),
}

impl WitnessCondition {
    /// Type byte of `Boolean`.
    pub const BOOLEAN: u8 = 0x00;
    /// Type byte of `Not`.
    pub const NOT: u8 = 0x01;
    /// Type byte of `And`.
    pub const AND: u8 = 0x02;
    /// Type byte of `Or`.
    pub const OR: u8 = 0x03;
    /// Type byte of `ScriptHash`.
    pub const SCRIPT_HASH: u8 = 0x18;
    /// Type byte of `Group`.
    pub const GROUP: u8 = 0x19;
    /// Type byte of `CalledByEntry`.
    pub const CALLED_BY_ENTRY: u8 = 0x20;
    /// Type byte of `CalledByContract`.
    pub const CALLED_BY_CONTRACT: u8 = 0x28;
    /// Type byte of `CalledByGroup`.
    pub const CALLED_BY_GROUP: u8 = 0x29;

    /// The type byte.
    pub fn kind(&self) -> u8 {
        match self {
            WitnessCondition::Boolean(_) => Self::BOOLEAN,
            WitnessCondition::Not(_) => Self::NOT,
            WitnessCondition::And(_) => Self::AND,
            WitnessCondition::Or(_) => Self::OR,
            WitnessCondition::ScriptHash(_) => Self::SCRIPT_HASH,
            WitnessCondition::Group(_) => Self::GROUP,
            WitnessCondition::CalledByEntry => Self::CALLED_BY_ENTRY,
            WitnessCondition::CalledByContract(_) => Self::CALLED_BY_CONTRACT,
            WitnessCondition::CalledByGroup(_) => Self::CALLED_BY_GROUP,
        }
    }

    /// Name of the type as the reference node spells it.
    pub fn name(&self) -> &'static str {
        match self {
            WitnessCondition::Boolean(_) => "Boolean",
            WitnessCondition::Not(_) => "Not",
            WitnessCondition::And(_) => "And",
            WitnessCondition::Or(_) => "Or",
            WitnessCondition::ScriptHash(_) => "ScriptHash",
            WitnessCondition::Group(_) => "Group",
            WitnessCondition::CalledByEntry => "CalledByEntry",
            WitnessCondition::CalledByContract(_) => "CalledByContract",
            WitnessCondition::CalledByGroup(_) => "CalledByGroup",
        }
    }

    /// Reads a condition with a nesting budget: `Not`/`And`/`Or` read their
    /// children with one less, and a budget of 0 is an error.
    pub fn decode_nested(r: &mut Reader, budget: u8) -> Result<Self, DecodeError> {
        if budget == 0 {
            return Err(DecodeError::Invalid {
                what: "witness_condition",
                reason: "nesting deeper than 3",
            });
        }
        let kind = r.u8("witness_condition.type")?;
        Ok(match kind {
            Self::BOOLEAN => {
                WitnessCondition::Boolean(r.bool_strict("witness_condition.expression")?)
            }
            Self::NOT => WitnessCondition::Not(Box::new(Self::decode_nested(r, budget - 1)?)),
            Self::AND | Self::OR => {
                let items = r.vec(
                    MAX_SUBITEMS as u64,
                    1,
                    "witness_condition.expressions",
                    |r| Self::decode_nested(r, budget - 1),
                )?;
                check_count(
                    "witness_condition.expressions",
                    items.len(),
                    1,
                    MAX_SUBITEMS,
                )?;
                if kind == Self::AND {
                    WitnessCondition::And(items)
                } else {
                    WitnessCondition::Or(items)
                }
            }
            Self::SCRIPT_HASH => WitnessCondition::ScriptHash(r.uint160("witness_condition.hash")?),
            Self::GROUP => WitnessCondition::Group(EcPoint::decode(r)?),
            Self::CALLED_BY_ENTRY => WitnessCondition::CalledByEntry,
            Self::CALLED_BY_CONTRACT => {
                WitnessCondition::CalledByContract(r.uint160("witness_condition.hash")?)
            }
            Self::CALLED_BY_GROUP => WitnessCondition::CalledByGroup(EcPoint::decode(r)?),
            v => {
                return Err(DecodeError::InvalidValue {
                    what: "witness_condition.type",
                    value: v.into(),
                });
            }
        })
    }

    /// Checks what decoding checks with the given nesting budget.
    pub fn validate_nested(&self, budget: u8) -> Result<(), DecodeError> {
        if budget == 0 {
            return Err(DecodeError::Invalid {
                what: "witness_condition",
                reason: "nesting deeper than 3",
            });
        }
        match self {
            WitnessCondition::Not(inner) => inner.validate_nested(budget - 1),
            WitnessCondition::And(items) | WitnessCondition::Or(items) => {
                check_count(
                    "witness_condition.expressions",
                    items.len(),
                    1,
                    MAX_SUBITEMS,
                )?;
                items.iter().try_for_each(|c| c.validate_nested(budget - 1))
            }
            WitnessCondition::Group(p) | WitnessCondition::CalledByGroup(p) => p.validate(),
            _ => Ok(()),
        }
    }
}

impl Decode for WitnessCondition {
    const NAME: &'static str = "witness_condition";

    /// Reads a condition as found directly under a rule (budget 3).
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Self::decode_nested(r, MAX_CONDITION_NESTING)
    }
}

impl Encode for WitnessCondition {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.kind());
        match self {
            WitnessCondition::Boolean(b) => out.put_u8(u8::from(*b)),
            WitnessCondition::Not(inner) => inner.encode(out),
            WitnessCondition::And(items) | WitnessCondition::Or(items) => encode_vec(items, out),
            WitnessCondition::ScriptHash(h) | WitnessCondition::CalledByContract(h) => {
                h.encode(out)
            }
            WitnessCondition::Group(p) | WitnessCondition::CalledByGroup(p) => p.encode(out),
            WitnessCondition::CalledByEntry => {}
        }
    }

    fn size(&self) -> usize {
        1 + match self {
            WitnessCondition::Boolean(_) => 1,
            WitnessCondition::Not(inner) => inner.size(),
            WitnessCondition::And(items) | WitnessCondition::Or(items) => vec_size(items),
            WitnessCondition::ScriptHash(_) | WitnessCondition::CalledByContract(_) => 20,
            WitnessCondition::Group(p) | WitnessCondition::CalledByGroup(p) => p.size(),
            WitnessCondition::CalledByEntry => 0,
        }
    }
}

/// What a witness rule does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WitnessRuleAction {
    /// `0`: the witness is not valid.
    Deny = 0,
    /// `1`: the witness is valid.
    Allow = 1,
}

impl WitnessRuleAction {
    /// Name as the reference node spells it.
    pub fn name(self) -> &'static str {
        match self {
            WitnessRuleAction::Deny => "Deny",
            WitnessRuleAction::Allow => "Allow",
        }
    }
}

/// A rule of a signer with the `WitnessRules` scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessRule {
    /// Allow or deny.
    pub action: WitnessRuleAction,
    /// When the rule applies.
    pub condition: WitnessCondition,
}

impl Decode for WitnessRule {
    const NAME: &'static str = "witness_rule";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let action = match r.u8("witness_rule.action")? {
            0 => WitnessRuleAction::Deny,
            1 => WitnessRuleAction::Allow,
            v => {
                return Err(DecodeError::InvalidValue {
                    what: "witness_rule.action",
                    value: v.into(),
                });
            }
        };
        Ok(WitnessRule {
            action,
            condition: WitnessCondition::decode(r)?,
        })
    }
}

impl Encode for WitnessRule {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.action as u8);
        self.condition.encode(out);
    }
    fn size(&self) -> usize {
        1 + self.condition.size()
    }
}

/// A signer of a transaction: an account and where its witness is valid.
///
/// `allowed_contracts`, `allowed_groups` and `rules` are on the wire only
/// when `scopes` has `CustomContracts`, `CustomGroups`, `WitnessRules`
/// respectively; otherwise they are empty (and not encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Script hash of the account.
    pub account: UInt160,
    /// Where the witness is valid.
    pub scopes: WitnessScope,
    /// Contracts allowed by `CustomContracts` (at most 16).
    pub allowed_contracts: Vec<UInt160>,
    /// Groups allowed by `CustomGroups` (at most 16).
    pub allowed_groups: Vec<EcPoint>,
    /// Rules of `WitnessRules` (at most 16).
    pub rules: Vec<WitnessRule>,
}

impl Signer {
    /// A signer with the given scopes and no lists.
    pub fn new(account: UInt160, scopes: WitnessScope) -> Self {
        Signer {
            account,
            scopes,
            allowed_contracts: Vec::new(),
            allowed_groups: Vec::new(),
            rules: Vec::new(),
        }
    }

    /// Checks what decoding checks (and that lists absent from the wire are empty).
    pub fn validate(&self) -> Result<(), DecodeError> {
        WitnessScope::from_bits(self.scopes.bits())?;
        let lists = [
            (
                WitnessScope::CUSTOM_CONTRACTS,
                self.allowed_contracts.len(),
                "signer.allowed_contracts",
            ),
            (
                WitnessScope::CUSTOM_GROUPS,
                self.allowed_groups.len(),
                "signer.allowed_groups",
            ),
            (
                WitnessScope::WITNESS_RULES,
                self.rules.len(),
                "signer.rules",
            ),
        ];
        for (scope, len, what) in lists {
            let max = if self.scopes.contains(scope) {
                MAX_SIGNER_SUBITEMS
            } else {
                0
            };
            check_count(what, len, 0, max)?;
        }
        self.allowed_groups.iter().try_for_each(EcPoint::validate)?;
        self.rules
            .iter()
            .try_for_each(|rule| rule.condition.validate_nested(MAX_CONDITION_NESTING))
    }
}

impl Decode for Signer {
    const NAME: &'static str = "signer";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let account = r.uint160("signer.account")?;
        let scopes = WitnessScope::from_bits(r.u8("signer.scopes")?)?;
        let max = MAX_SIGNER_SUBITEMS as u64;
        let mut signer = Signer::new(account, scopes);
        if scopes.contains(WitnessScope::CUSTOM_CONTRACTS) {
            signer.allowed_contracts = r.vec(max, 20, "signer.allowed_contracts", |r| {
                r.uint160("signer.allowed_contracts")
            })?;
        }
        if scopes.contains(WitnessScope::CUSTOM_GROUPS) {
            signer.allowed_groups = r.vec(max, 33, "signer.allowed_groups", EcPoint::decode)?;
        }
        if scopes.contains(WitnessScope::WITNESS_RULES) {
            signer.rules = r.vec(max, 2, "signer.rules", WitnessRule::decode)?;
        }
        Ok(signer)
    }
}

impl Encode for Signer {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.account.0);
        out.put_u8(self.scopes.bits());
        if self.scopes.contains(WitnessScope::CUSTOM_CONTRACTS) {
            encode_vec(&self.allowed_contracts, out);
        }
        if self.scopes.contains(WitnessScope::CUSTOM_GROUPS) {
            encode_vec(&self.allowed_groups, out);
        }
        if self.scopes.contains(WitnessScope::WITNESS_RULES) {
            encode_vec(&self.rules, out);
        }
    }

    fn size(&self) -> usize {
        let mut n = 21;
        if self.scopes.contains(WitnessScope::CUSTOM_CONTRACTS) {
            n += vec_size(&self.allowed_contracts);
        }
        if self.scopes.contains(WitnessScope::CUSTOM_GROUPS) {
            n += vec_size(&self.allowed_groups);
        }
        if self.scopes.contains(WitnessScope::WITNESS_RULES) {
            n += vec_size(&self.rules);
        }
        n
    }
}

/// Result code of an oracle response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OracleResponseCode {
    /// `0x00`
    Success = 0x00,
    /// `0x10`
    ProtocolNotSupported = 0x10,
    /// `0x12`
    ConsensusUnreachable = 0x12,
    /// `0x14`
    NotFound = 0x14,
    /// `0x16`
    Timeout = 0x16,
    /// `0x18`
    Forbidden = 0x18,
    /// `0x1A`
    ResponseTooLarge = 0x1A,
    /// `0x1C`
    InsufficientFunds = 0x1C,
    /// `0x1F`
    ContentTypeNotSupported = 0x1F,
    /// `0xFF`
    Error = 0xFF,
}

impl OracleResponseCode {
    /// The code for a byte, if it is defined.
    pub fn from_u8(v: u8) -> Option<Self> {
        use OracleResponseCode::*;
        Some(match v {
            0x00 => Success,
            0x10 => ProtocolNotSupported,
            0x12 => ConsensusUnreachable,
            0x14 => NotFound,
            0x16 => Timeout,
            0x18 => Forbidden,
            0x1A => ResponseTooLarge,
            0x1C => InsufficientFunds,
            0x1F => ContentTypeNotSupported,
            0xFF => Error,
            _ => return None,
        })
    }

    /// Name as the reference node spells it.
    pub fn name(self) -> &'static str {
        use OracleResponseCode::*;
        match self {
            Success => "Success",
            ProtocolNotSupported => "ProtocolNotSupported",
            ConsensusUnreachable => "ConsensusUnreachable",
            NotFound => "NotFound",
            Timeout => "Timeout",
            Forbidden => "Forbidden",
            ResponseTooLarge => "ResponseTooLarge",
            InsufficientFunds => "InsufficientFunds",
            ContentTypeNotSupported => "ContentTypeNotSupported",
            Error => "Error",
        }
    }
}

/// A transaction attribute.
///
/// The types neo-go reserves for private use (`0xE0..=0xFF`) are rejected,
/// as the reference node does: they are never valid on public networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionAttribute {
    /// `0x01`: committee transaction served first.
    HighPriority,
    /// `0x11`: an oracle's answer.
    OracleResponse {
        /// Request id.
        id: u64,
        /// Result code.
        code: OracleResponseCode,
        /// Result (empty unless `code` is `Success`; at most 65535 bytes).
        result: Bytes,
    },
    /// `0x20`: not valid before this height.
    NotValidBefore {
        /// First valid height.
        height: u32,
    },
    /// `0x21`: conflicts with another transaction (may repeat).
    Conflicts {
        /// The conflicting transaction.
        hash: UInt256,
    },
    /// `0x22`: the notary service helps collect signatures.
    NotaryAssisted {
        /// Number of keys.
        nkeys: u8,
    },
}

impl TransactionAttribute {
    /// Type byte of `HighPriority`.
    pub const HIGH_PRIORITY: u8 = 0x01;
    /// Type byte of `OracleResponse`.
    pub const ORACLE_RESPONSE: u8 = 0x11;
    /// Type byte of `NotValidBefore`.
    pub const NOT_VALID_BEFORE: u8 = 0x20;
    /// Type byte of `Conflicts`.
    pub const CONFLICTS: u8 = 0x21;
    /// Type byte of `NotaryAssisted`.
    pub const NOTARY_ASSISTED: u8 = 0x22;

    /// The type byte.
    pub fn kind(&self) -> u8 {
        match self {
            TransactionAttribute::HighPriority => Self::HIGH_PRIORITY,
            TransactionAttribute::OracleResponse { .. } => Self::ORACLE_RESPONSE,
            TransactionAttribute::NotValidBefore { .. } => Self::NOT_VALID_BEFORE,
            TransactionAttribute::Conflicts { .. } => Self::CONFLICTS,
            TransactionAttribute::NotaryAssisted { .. } => Self::NOTARY_ASSISTED,
        }
    }

    /// Name as the reference node spells it.
    pub fn name(&self) -> &'static str {
        match self {
            TransactionAttribute::HighPriority => "HighPriority",
            TransactionAttribute::OracleResponse { .. } => "OracleResponse",
            TransactionAttribute::NotValidBefore { .. } => "NotValidBefore",
            TransactionAttribute::Conflicts { .. } => "Conflicts",
            TransactionAttribute::NotaryAssisted { .. } => "NotaryAssisted",
        }
    }

    /// True if several attributes of this type may appear in one transaction.
    pub fn allow_multiple(&self) -> bool {
        matches!(self, TransactionAttribute::Conflicts { .. })
    }

    fn validate(&self) -> Result<(), DecodeError> {
        if let TransactionAttribute::OracleResponse { code, result, .. } = self {
            check_count("attribute.result", result.len(), 0, MAX_ORACLE_RESULT)?;
            if *code != OracleResponseCode::Success && !result.is_empty() {
                return Err(DecodeError::Invalid {
                    what: "attribute.result",
                    reason: "result must be empty unless the code is Success",
                });
            }
        }
        Ok(())
    }
}

impl Decode for TransactionAttribute {
    const NAME: &'static str = "attribute";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match r.u8("attribute.type")? {
            Self::HIGH_PRIORITY => TransactionAttribute::HighPriority,
            Self::ORACLE_RESPONSE => {
                let id = r.u64("attribute.id")?;
                let raw = r.u8("attribute.code")?;
                let code = OracleResponseCode::from_u8(raw).ok_or(DecodeError::InvalidValue {
                    what: "attribute.code",
                    value: raw.into(),
                })?;
                let result = r.var_bytes(MAX_ORACLE_RESULT as u64, "attribute.result")?;
                let attr = TransactionAttribute::OracleResponse { id, code, result };
                attr.validate()?;
                attr
            }
            Self::NOT_VALID_BEFORE => TransactionAttribute::NotValidBefore {
                height: r.u32("attribute.height")?,
            },
            Self::CONFLICTS => TransactionAttribute::Conflicts {
                hash: r.uint256("attribute.hash")?,
            },
            Self::NOTARY_ASSISTED => TransactionAttribute::NotaryAssisted {
                nkeys: r.u8("attribute.nkeys")?,
            },
            v => {
                return Err(DecodeError::InvalidValue {
                    what: "attribute.type",
                    value: v.into(),
                });
            }
        })
    }
}

impl Encode for TransactionAttribute {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.kind());
        match self {
            TransactionAttribute::HighPriority => {}
            TransactionAttribute::OracleResponse { id, code, result } => {
                out.put_u64_le(*id);
                out.put_u8(*code as u8);
                out.put_var_bytes(result);
            }
            TransactionAttribute::NotValidBefore { height } => out.put_u32_le(*height),
            TransactionAttribute::Conflicts { hash } => hash.encode(out),
            TransactionAttribute::NotaryAssisted { nkeys } => out.put_u8(*nkeys),
        }
    }

    fn size(&self) -> usize {
        1 + match self {
            TransactionAttribute::HighPriority => 0,
            TransactionAttribute::OracleResponse { result, .. } => 9 + var_bytes_size(result.len()),
            TransactionAttribute::NotValidBefore { .. } => 4,
            TransactionAttribute::Conflicts { .. } => 32,
            TransactionAttribute::NotaryAssisted { .. } => 1,
        }
    }
}

/// A Neo N3 transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Format version (must be 0).
    pub version: u8,
    /// Random number making the hash unique.
    pub nonce: u32,
    /// System fee in datoshi (10^-8 GAS), at least 0.
    pub system_fee: i64,
    /// Network fee in datoshi, at least 0.
    pub network_fee: i64,
    /// Last height at which the transaction may be included.
    pub valid_until_block: u32,
    /// 1..=16 signers with distinct accounts; the first one pays the fees.
    pub signers: Vec<Signer>,
    /// At most `16 - signers.len()` attributes.
    pub attributes: Vec<TransactionAttribute>,
    /// The script to run (1..=65535 bytes).
    pub script: Bytes,
    /// One witness per signer, in the same order.
    pub witnesses: Vec<Witness>,
}

/// Size of the fixed fields (version to valid_until_block).
const TX_FIXED_SIZE: usize = 25;
/// Smallest possible transaction.
pub(crate) const MIN_TX_SIZE: usize = TX_FIXED_SIZE + 1 + 21 + 1 + 2 + 1 + 2;

impl Transaction {
    /// The transaction hash: SHA-256 of the unsigned part (everything but the
    /// witnesses), from its canonical encoding.
    pub fn hash(&self) -> UInt256 {
        let mut buf = BytesMut::with_capacity(self.unsigned_size());
        self.encode_unsigned(&mut buf);
        UInt256(sha256(&buf))
    }

    /// The account paying the fees: the first signer's.
    pub fn sender(&self) -> Option<UInt160> {
        self.signers.first().map(|s| s.account)
    }

    /// Writes the unsigned part (what [`Transaction::hash`] hashes).
    pub fn encode_unsigned(&self, out: &mut BytesMut) {
        out.put_u8(self.version);
        out.put_u32_le(self.nonce);
        out.put_i64_le(self.system_fee);
        out.put_i64_le(self.network_fee);
        out.put_u32_le(self.valid_until_block);
        encode_vec(&self.signers, out);
        encode_vec(&self.attributes, out);
        out.put_var_bytes(&self.script);
    }

    /// Length of the unsigned part.
    pub fn unsigned_size(&self) -> usize {
        TX_FIXED_SIZE
            + vec_size(&self.signers)
            + vec_size(&self.attributes)
            + var_bytes_size(self.script.len())
    }

    /// Checks every rule decoding checks, for a transaction built by hand.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_version(self.version)?;
        check_fees(self.system_fee, self.network_fee)?;
        check_count(
            "tx.signers",
            self.signers.len(),
            1,
            MAX_TRANSACTION_ATTRIBUTES,
        )?;
        self.signers.iter().try_for_each(Signer::validate)?;
        check_signers(&self.signers)?;
        check_count(
            "tx.attributes",
            self.attributes.len(),
            0,
            MAX_TRANSACTION_ATTRIBUTES - self.signers.len(),
        )?;
        self.attributes
            .iter()
            .try_for_each(TransactionAttribute::validate)?;
        check_attributes(&self.attributes)?;
        check_count("tx.script", self.script.len(), 1, MAX_SCRIPT)?;
        if self.witnesses.len() != self.signers.len() {
            return Err(DecodeError::Invalid {
                what: "tx.witnesses",
                reason: "witness count differs from signer count",
            });
        }
        self.witnesses.iter().try_for_each(validate_witness)?;
        check_count("tx.size", self.size(), 0, MAX_TRANSACTION_SIZE)
    }
}

fn check_version(version: u8) -> Result<(), DecodeError> {
    if version != 0 {
        return Err(DecodeError::InvalidValue {
            what: "tx.version",
            value: version.into(),
        });
    }
    Ok(())
}

fn check_fees(system_fee: i64, network_fee: i64) -> Result<(), DecodeError> {
    if system_fee < 0 {
        return Err(DecodeError::Invalid {
            what: "tx.system_fee",
            reason: "negative fee",
        });
    }
    if network_fee < 0 {
        return Err(DecodeError::Invalid {
            what: "tx.network_fee",
            reason: "negative fee",
        });
    }
    if system_fee.checked_add(network_fee).is_none() {
        return Err(DecodeError::Invalid {
            what: "tx.network_fee",
            reason: "fee sum overflows",
        });
    }
    Ok(())
}

fn check_signers(signers: &[Signer]) -> Result<(), DecodeError> {
    for (i, s) in signers.iter().enumerate() {
        if signers[..i].iter().any(|o| o.account == s.account) {
            return Err(DecodeError::Invalid {
                what: "tx.signers",
                reason: "duplicate signer account",
            });
        }
    }
    Ok(())
}

fn check_attributes(attributes: &[TransactionAttribute]) -> Result<(), DecodeError> {
    for (i, a) in attributes.iter().enumerate() {
        if !a.allow_multiple() && attributes[..i].iter().any(|o| o.kind() == a.kind()) {
            return Err(DecodeError::Invalid {
                what: "tx.attributes",
                reason: "duplicate attribute type",
            });
        }
    }
    Ok(())
}

impl Decode for Transaction {
    const NAME: &'static str = "transaction";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let start = r.position();
        let version = r.u8("tx.version")?;
        check_version(version)?;
        let nonce = r.u32("tx.nonce")?;
        let system_fee = r.i64("tx.system_fee")?;
        let network_fee = r.i64("tx.network_fee")?;
        check_fees(system_fee, network_fee)?;
        let valid_until_block = r.u32("tx.valid_until_block")?;
        let signers = r.vec(
            MAX_TRANSACTION_ATTRIBUTES as u64,
            21,
            "tx.signers",
            Signer::decode,
        )?;
        check_count("tx.signers", signers.len(), 1, MAX_TRANSACTION_ATTRIBUTES)?;
        check_signers(&signers)?;
        let attributes = r.vec(
            (MAX_TRANSACTION_ATTRIBUTES - signers.len()) as u64,
            1,
            "tx.attributes",
            TransactionAttribute::decode,
        )?;
        check_attributes(&attributes)?;
        let script = r.var_bytes(MAX_SCRIPT as u64, "tx.script")?;
        check_count("tx.script", script.len(), 1, MAX_SCRIPT)?;
        let witnesses = r.vec(signers.len() as u64, 2, "tx.witnesses", decode_witness)?;
        if witnesses.len() != signers.len() {
            return Err(DecodeError::Invalid {
                what: "tx.witnesses",
                reason: "witness count differs from signer count",
            });
        }
        check_count("tx.size", r.position() - start, 0, MAX_TRANSACTION_SIZE)?;
        Ok(Transaction {
            version,
            nonce,
            system_fee,
            network_fee,
            valid_until_block,
            signers,
            attributes,
            script,
            witnesses,
        })
    }
}

impl Encode for Transaction {
    fn encode(&self, out: &mut BytesMut) {
        self.encode_unsigned(out);
        encode_vec(&self.witnesses, out);
    }

    fn size(&self) -> usize {
        self.unsigned_size() + vec_size(&self.witnesses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_print_as_rpc_does() {
        let s = |b| WitnessScope::from_bits(b).unwrap().to_string();
        assert_eq!(s(0x00), "None");
        assert_eq!(s(0x01), "CalledByEntry");
        assert_eq!(s(0x11), "CalledByEntry, CustomContracts");
        assert_eq!(s(0x70), "CustomContracts, CustomGroups, WitnessRules");
        assert_eq!(s(0x80), "Global");
        assert!(WitnessScope::from_bits(0x81).is_err());
        assert!(WitnessScope::from_bits(0x02).is_err());
        assert_eq!(
            WitnessScope::CALLED_BY_ENTRY | WitnessScope::CUSTOM_GROUPS,
            WitnessScope::from_bits(0x21).unwrap()
        );
    }

    #[test]
    fn ecpoint_prefixes() {
        let mut b = [0u8; 33];
        for (prefix, ok) in [(2u8, true), (3, true), (0, false), (4, false), (5, false)] {
            b[0] = prefix;
            assert_eq!(EcPoint::from_slice(&b).is_ok(), ok, "{prefix}");
        }
        let mut u = [0u8; 65];
        u[0] = 4;
        assert_eq!(EcPoint::from_slice(&u).unwrap().size(), 65);
    }
}
