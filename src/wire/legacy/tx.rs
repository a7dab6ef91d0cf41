//! Transactions (§8 of the Legacy wire reference): the nine types, their
//! exclusive data, attributes, inputs, outputs and witnesses.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    Fixed8, MAX_INVOCATION_SCRIPT, MAX_PUBLISH_DESCRIPTION, MAX_PUBLISH_SCRIPT, MAX_PUBLISH_STRING,
    MAX_REGISTER_NAME, MAX_STATE_DESCRIPTORS, MAX_STATE_FIELD, MAX_STATE_KEY, MAX_STATE_VALUE,
    MAX_TX_ATTRIBUTES, MAX_TX_OUTPUTS, MAX_WITNESS_SCRIPT, UTILITY_TOKEN_ID,
};
use crate::wire::{
    Decode, DecodeError, Encode, MAX_ARRAY_DEFAULT, Reader, UInt160, UInt256, Witness, WriteExt,
    encode_vec, hash256, var_bytes_size, vec_size,
};

/// Largest attribute payload carried as var-bytes (`Description`, `Remark*`).
const MAX_ATTRIBUTE_VAR_DATA: u64 = 0xFFFF;

/// A secp256r1 public key as the Legacy wire carries it.
///
/// The point is kept in the form it arrived in (it is not decompressed or
/// checked to lie on the curve), so re-encoding gives the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcPoint {
    /// The point at infinity: the single byte `0x00`.
    Infinity,
    /// Compressed form: `0x02`/`0x03` followed by the 32-byte X coordinate.
    Compressed([u8; 33]),
    /// Uncompressed form: `0x04`, X and Y (65 bytes).
    Uncompressed([u8; 65]),
}

impl EcPoint {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            EcPoint::Infinity => &[0],
            EcPoint::Compressed(b) => b,
            EcPoint::Uncompressed(b) => b,
        }
    }

    /// Parses an encoded point (the whole slice must be one point).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        EcPoint::decode_exact(Bytes::copy_from_slice(bytes))
    }
}

impl Decode for EcPoint {
    const NAME: &'static str = "ecpoint";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.u8("ecpoint")? {
            0x00 => Ok(EcPoint::Infinity),
            prefix @ (0x02 | 0x03) => {
                let mut out = [0u8; 33];
                out[0] = prefix;
                out[1..].copy_from_slice(&r.array::<32>("ecpoint.x")?);
                Ok(EcPoint::Compressed(out))
            }
            0x04 => {
                let mut out = [0u8; 65];
                out[0] = 0x04;
                out[1..].copy_from_slice(&r.array::<64>("ecpoint.xy")?);
                Ok(EcPoint::Uncompressed(out))
            }
            value => Err(DecodeError::InvalidValue {
                what: "ecpoint",
                value: value.into(),
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

impl fmt::Display for EcPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.as_bytes()))
    }
}

/// The type byte of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TransactionType {
    /// `MinerTransaction` (0x00): the first transaction of every block.
    Miner = 0x00,
    /// `IssueTransaction` (0x01): issues a registered asset.
    Issue = 0x01,
    /// `ClaimTransaction` (0x02): claims GAS.
    Claim = 0x02,
    /// `EnrollmentTransaction` (0x20, obsolete): validator enrollment.
    Enrollment = 0x20,
    /// `RegisterTransaction` (0x40, obsolete): registers an asset.
    Register = 0x40,
    /// `ContractTransaction` (0x80): a plain transfer.
    Contract = 0x80,
    /// `StateTransaction` (0x90): votes and validator registration.
    State = 0x90,
    /// `PublishTransaction` (0xD0, obsolete): deploys a contract.
    Publish = 0xD0,
    /// `InvocationTransaction` (0xD1): runs a script.
    Invocation = 0xD1,
}

impl TransactionType {
    /// The type for a wire byte; `None` for bytes no 2.x node decodes
    /// (including the long-gone 0x24 Voting and 0xB0 Agency).
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x00 => TransactionType::Miner,
            0x01 => TransactionType::Issue,
            0x02 => TransactionType::Claim,
            0x20 => TransactionType::Enrollment,
            0x40 => TransactionType::Register,
            0x80 => TransactionType::Contract,
            0x90 => TransactionType::State,
            0xD0 => TransactionType::Publish,
            0xD1 => TransactionType::Invocation,
            _ => return None,
        })
    }

    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// The reference node's class name, as RPC shows it (`"MinerTransaction"`).
    pub fn name(self) -> &'static str {
        match self {
            TransactionType::Miner => "MinerTransaction",
            TransactionType::Issue => "IssueTransaction",
            TransactionType::Claim => "ClaimTransaction",
            TransactionType::Enrollment => "EnrollmentTransaction",
            TransactionType::Register => "RegisterTransaction",
            TransactionType::Contract => "ContractTransaction",
            TransactionType::State => "StateTransaction",
            TransactionType::Publish => "PublishTransaction",
            TransactionType::Invocation => "InvocationTransaction",
        }
    }

    /// Highest `version` the reference node accepts for this type
    /// (`StateTransaction` versions are not checked).
    pub fn max_version(self) -> u8 {
        match self {
            TransactionType::Issue | TransactionType::Publish | TransactionType::Invocation => 1,
            TransactionType::State => u8::MAX,
            _ => 0,
        }
    }
}

/// A reference to an unspent output: transaction hash and output index (34 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoinReference {
    /// Hash of the transaction holding the output.
    pub prev_hash: UInt256,
    /// Index of the output in that transaction.
    pub prev_index: u16,
}

impl Decode for CoinReference {
    const NAME: &'static str = "coin_reference";

    #[inline]
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CoinReference {
            prev_hash: r.uint256("input.prev_hash")?,
            prev_index: r.u16("input.prev_index")?,
        })
    }
}

impl Encode for CoinReference {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.prev_hash.0);
        out.put_u16_le(self.prev_index);
    }
    fn size(&self) -> usize {
        34
    }
}

/// A transaction output (60 bytes): asset, amount and recipient script hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionOutput {
    /// Asset id (hash of the asset's `RegisterTransaction`).
    pub asset_id: UInt256,
    /// Amount; always positive (the decoder rejects `<= 0`, as the reference node does).
    pub value: Fixed8,
    /// Script hash of the recipient.
    pub script_hash: UInt160,
}

impl Decode for TransactionOutput {
    const NAME: &'static str = "tx.output";

    #[inline]
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let asset_id = r.uint256("output.asset_id")?;
        let value = Fixed8(r.i64("output.value")?);
        if value.0 <= 0 {
            return Err(DecodeError::Invalid {
                what: "output.value",
                reason: "must be positive",
            });
        }
        Ok(TransactionOutput {
            asset_id,
            value,
            script_hash: r.uint160("output.script_hash")?,
        })
    }
}

impl Encode for TransactionOutput {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.asset_id.0);
        out.put_i64_le(self.value.0);
        out.put_slice(&self.script_hash.0);
    }
    fn size(&self) -> usize {
        60
    }
}

macro_rules! attribute_usages {
    ($($(#[$doc:meta])* $variant:ident = $byte:literal, $name:literal;)*) => {
        /// The usage byte of a transaction attribute; it decides the data layout.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum AttributeUsage {
            $($(#[$doc])* $variant = $byte,)*
        }

        impl AttributeUsage {
            /// The usage for a wire byte; `None` for undefined usages (which the
            /// reference node refuses, as it does `0x80` CertUrl).
            pub fn from_byte(b: u8) -> Option<Self> {
                match b {
                    $($byte => Some(AttributeUsage::$variant),)*
                    _ => None,
                }
            }

            /// The reference node's name, as RPC shows it (`"Script"`, `"ECDH02"`, `"Remark3"`).
            pub fn name(self) -> &'static str {
                match self {
                    $(AttributeUsage::$variant => $name,)*
                }
            }
        }
    };
}

attribute_usages! {
    /// Hash of a contract (32 bytes).
    ContractHash = 0x00, "ContractHash";
    /// ECDH key exchange, even Y (32-byte X coordinate; the `0x02` prefix is implied).
    Ecdh02 = 0x02, "ECDH02";
    /// ECDH key exchange, odd Y (32-byte X coordinate; the `0x03` prefix is implied).
    Ecdh03 = 0x03, "ECDH03";
    /// A script hash that must also sign (20 bytes).
    Script = 0x20, "Script";
    /// Vote (32 bytes).
    Vote = 0x30, "Vote";
    /// URL of a description (1-byte length, up to 255 bytes).
    DescriptionUrl = 0x81, "DescriptionUrl";
    /// Description (var-bytes, up to 65535 bytes).
    Description = 0x90, "Description";
    /// User-defined hash 1 (32 bytes).
    Hash1 = 0xA1, "Hash1";
    /// User-defined hash 2 (32 bytes).
    Hash2 = 0xA2, "Hash2";
    /// User-defined hash 3 (32 bytes).
    Hash3 = 0xA3, "Hash3";
    /// User-defined hash 4 (32 bytes).
    Hash4 = 0xA4, "Hash4";
    /// User-defined hash 5 (32 bytes).
    Hash5 = 0xA5, "Hash5";
    /// User-defined hash 6 (32 bytes).
    Hash6 = 0xA6, "Hash6";
    /// User-defined hash 7 (32 bytes).
    Hash7 = 0xA7, "Hash7";
    /// User-defined hash 8 (32 bytes).
    Hash8 = 0xA8, "Hash8";
    /// User-defined hash 9 (32 bytes).
    Hash9 = 0xA9, "Hash9";
    /// User-defined hash 10 (32 bytes).
    Hash10 = 0xAA, "Hash10";
    /// User-defined hash 11 (32 bytes).
    Hash11 = 0xAB, "Hash11";
    /// User-defined hash 12 (32 bytes).
    Hash12 = 0xAC, "Hash12";
    /// User-defined hash 13 (32 bytes).
    Hash13 = 0xAD, "Hash13";
    /// User-defined hash 14 (32 bytes).
    Hash14 = 0xAE, "Hash14";
    /// User-defined hash 15 (32 bytes).
    Hash15 = 0xAF, "Hash15";
    /// Remark (var-bytes, up to 65535 bytes).
    Remark = 0xF0, "Remark";
    /// Remark 1 (var-bytes).
    Remark1 = 0xF1, "Remark1";
    /// Remark 2 (var-bytes).
    Remark2 = 0xF2, "Remark2";
    /// Remark 3 (var-bytes).
    Remark3 = 0xF3, "Remark3";
    /// Remark 4 (var-bytes).
    Remark4 = 0xF4, "Remark4";
    /// Remark 5 (var-bytes).
    Remark5 = 0xF5, "Remark5";
    /// Remark 6 (var-bytes).
    Remark6 = 0xF6, "Remark6";
    /// Remark 7 (var-bytes).
    Remark7 = 0xF7, "Remark7";
    /// Remark 8 (var-bytes).
    Remark8 = 0xF8, "Remark8";
    /// Remark 9 (var-bytes).
    Remark9 = 0xF9, "Remark9";
    /// Remark 10 (var-bytes).
    Remark10 = 0xFA, "Remark10";
    /// Remark 11 (var-bytes).
    Remark11 = 0xFB, "Remark11";
    /// Remark 12 (var-bytes).
    Remark12 = 0xFC, "Remark12";
    /// Remark 13 (var-bytes).
    Remark13 = 0xFD, "Remark13";
    /// Remark 14 (var-bytes).
    Remark14 = 0xFE, "Remark14";
    /// Remark 15 (var-bytes).
    Remark15 = 0xFF, "Remark15";
}

/// How the data of an attribute is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeData {
    /// Exactly this many bytes, no length prefix.
    Fixed(usize),
    /// A one-byte length, then that many bytes (`DescriptionUrl`).
    ByteLength,
    /// A var-int length (at most 65535), then that many bytes.
    VarBytes,
}

impl AttributeUsage {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// The layout of the data that follows this usage byte.
    pub fn data_layout(self) -> AttributeData {
        use AttributeUsage::*;
        match self {
            Script => AttributeData::Fixed(20),
            DescriptionUrl => AttributeData::ByteLength,
            Description | Remark | Remark1 | Remark2 | Remark3 | Remark4 | Remark5 | Remark6
            | Remark7 | Remark8 | Remark9 | Remark10 | Remark11 | Remark12 | Remark13
            | Remark14 | Remark15 => AttributeData::VarBytes,
            _ => AttributeData::Fixed(32),
        }
    }
}

/// A transaction attribute: a usage and its data.
///
/// `data` holds exactly the bytes that follow the usage byte and its length
/// prefix, if any. For `ECDH02`/`ECDH03` that is the 32-byte X coordinate (the
/// `0x02`/`0x03` prefix of the key is implied by the usage and not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionAttribute {
    /// What the attribute means; decides the data layout.
    pub usage: AttributeUsage,
    /// The data (32 bytes, 20 for `Script`, up to 255 for `DescriptionUrl`,
    /// up to 65535 for `Description` and `Remark*`).
    pub data: Bytes,
}

impl TransactionAttribute {
    /// Checks that `data` fits the usage's layout (always true after decoding).
    pub fn check(&self) -> Result<(), DecodeError> {
        let len = self.data.len() as u64;
        match self.usage.data_layout() {
            AttributeData::Fixed(n) if len != n as u64 => Err(DecodeError::Invalid {
                what: "tx.attribute.data",
                reason: "length does not match the usage",
            }),
            AttributeData::ByteLength if len > 0xFF => Err(DecodeError::TooMany {
                what: "tx.attribute.data",
                count: len,
                max: 0xFF,
            }),
            AttributeData::VarBytes if len > MAX_ATTRIBUTE_VAR_DATA => Err(DecodeError::TooMany {
                what: "tx.attribute.data",
                count: len,
                max: MAX_ATTRIBUTE_VAR_DATA,
            }),
            _ => Ok(()),
        }
    }
}

impl Decode for TransactionAttribute {
    const NAME: &'static str = "tx.attribute";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let byte = r.u8("tx.attribute.usage")?;
        let usage = AttributeUsage::from_byte(byte).ok_or(DecodeError::InvalidValue {
            what: "tx.attribute.usage",
            value: byte.into(),
        })?;
        let data = match usage.data_layout() {
            AttributeData::Fixed(n) => r.bytes(n, "tx.attribute.data")?,
            AttributeData::ByteLength => {
                let n = r.u8("tx.attribute.data")?;
                r.bytes(n.into(), "tx.attribute.data")?
            }
            AttributeData::VarBytes => r.var_bytes(MAX_ATTRIBUTE_VAR_DATA, "tx.attribute.data")?,
        };
        Ok(TransactionAttribute { usage, data })
    }
}

impl Encode for TransactionAttribute {
    /// Writes the attribute. `data` must fit the usage (see [`TransactionAttribute::check`]);
    /// a `DescriptionUrl` longer than 255 bytes is cut to 255.
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.usage.to_byte());
        match self.usage.data_layout() {
            AttributeData::Fixed(_) => out.put_slice(&self.data),
            AttributeData::ByteLength => {
                let n = self.data.len().min(0xFF);
                out.put_u8(n as u8);
                out.put_slice(&self.data[..n]);
            }
            AttributeData::VarBytes => out.put_var_bytes(&self.data),
        }
    }
    fn size(&self) -> usize {
        1 + match self.usage.data_layout() {
            AttributeData::Fixed(_) => self.data.len(),
            AttributeData::ByteLength => 1 + self.data.len().min(0xFF),
            AttributeData::VarBytes => var_bytes_size(self.data.len()),
        }
    }
}

/// Asset type of a `RegisterTransaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetType {
    /// 0x00: the governing token (NEO).
    GoverningToken,
    /// 0x01: the utility token (GAS).
    UtilityToken,
    /// 0x08: a currency.
    Currency,
    /// 0x40: credit flag.
    CreditFlag,
    /// 0x80: duty flag.
    DutyFlag,
    /// 0x90: a share.
    Share,
    /// 0x98: an invoice.
    Invoice,
    /// 0x60: a token.
    Token,
    /// Any other byte, kept as it was (the reference node does not check it on decode).
    Other(u8),
}

impl AssetType {
    /// The type for a wire byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0x00 => AssetType::GoverningToken,
            0x01 => AssetType::UtilityToken,
            0x08 => AssetType::Currency,
            0x40 => AssetType::CreditFlag,
            0x80 => AssetType::DutyFlag,
            0x90 => AssetType::Share,
            0x98 => AssetType::Invoice,
            0x60 => AssetType::Token,
            other => AssetType::Other(other),
        }
    }

    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            AssetType::GoverningToken => 0x00,
            AssetType::UtilityToken => 0x01,
            AssetType::Currency => 0x08,
            AssetType::CreditFlag => 0x40,
            AssetType::DutyFlag => 0x80,
            AssetType::Share => 0x90,
            AssetType::Invoice => 0x98,
            AssetType::Token => 0x60,
            AssetType::Other(b) => b,
        }
    }
}

/// The exclusive data of a `RegisterTransaction` (obsolete asset registration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterData {
    /// Kind of asset.
    pub asset_type: AssetType,
    /// Name (JSON text in practice), at most 1024 bytes.
    pub name: String,
    /// Total amount.
    pub amount: Fixed8,
    /// Number of decimals.
    pub precision: u8,
    /// Owner's public key.
    pub owner: EcPoint,
    /// Script hash of the administrator.
    pub admin: UInt160,
}

/// The exclusive data of a `PublishTransaction` (obsolete contract deployment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishData {
    /// Contract script (at most 65535 bytes).
    pub script: Bytes,
    /// Parameter types, one `ContractParameterType` byte each (at most 65535).
    pub parameter_list: Bytes,
    /// Return type (`ContractParameterType` byte).
    pub return_type: u8,
    /// Whether the contract uses storage; on the wire only when `version >= 1`
    /// (false otherwise).
    pub need_storage: bool,
    /// Contract name (at most 252 bytes).
    pub name: String,
    /// Contract version text (at most 252 bytes).
    pub code_version: String,
    /// Author (at most 252 bytes).
    pub author: String,
    /// E-mail (at most 252 bytes).
    pub email: String,
    /// Description (at most 65536 bytes).
    pub description: String,
}

/// Kind of state a `StateDescriptor` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StateType {
    /// 0x40: account state (votes).
    Account = 0x40,
    /// 0x48: validator state (registration).
    Validator = 0x48,
}

/// One state change of a `StateTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDescriptor {
    /// Account or validator.
    pub state_type: StateType,
    /// Key (at most 100 bytes): a script hash or a public key.
    pub key: Bytes,
    /// Field name (at most 32 bytes), e.g. `"Votes"`, `"Registered"`.
    pub field: String,
    /// New value (at most 65535 bytes).
    pub value: Bytes,
}

impl Decode for StateDescriptor {
    const NAME: &'static str = "state_descriptor";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let state_type = match r.u8("state_descriptor.type")? {
            0x40 => StateType::Account,
            0x48 => StateType::Validator,
            value => {
                return Err(DecodeError::InvalidValue {
                    what: "state_descriptor.type",
                    value: value.into(),
                });
            }
        };
        Ok(StateDescriptor {
            state_type,
            key: r.var_bytes(MAX_STATE_KEY, "state_descriptor.key")?,
            field: r.var_string(MAX_STATE_FIELD, "state_descriptor.field")?,
            value: r.var_bytes(MAX_STATE_VALUE, "state_descriptor.value")?,
        })
    }
}

impl Encode for StateDescriptor {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.state_type as u8);
        out.put_var_bytes(&self.key);
        out.put_var_bytes(self.field.as_bytes());
        out.put_var_bytes(&self.value);
    }
    fn size(&self) -> usize {
        1 + var_bytes_size(self.key.len())
            + var_bytes_size(self.field.len())
            + var_bytes_size(self.value.len())
    }
}

/// The type of a transaction together with the data only that type carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionData {
    /// `MinerTransaction`: a nonce.
    Miner {
        /// Random number making the transaction unique.
        nonce: u32,
    },
    /// `IssueTransaction`: nothing.
    Issue,
    /// `ClaimTransaction`: the spent outputs whose GAS is claimed (at least one).
    Claim {
        /// The claimed outputs.
        claims: Vec<CoinReference>,
    },
    /// `EnrollmentTransaction`: a validator key.
    Enrollment {
        /// The key being enrolled.
        public_key: EcPoint,
    },
    /// `RegisterTransaction`: an asset definition.
    Register(Box<RegisterData>),
    /// `ContractTransaction`: nothing.
    Contract,
    /// `StateTransaction`: state changes (at most 16).
    State {
        /// The changes.
        descriptors: Vec<StateDescriptor>,
    },
    /// `PublishTransaction`: a contract.
    Publish(Box<PublishData>),
    /// `InvocationTransaction`: a script and the GAS paid for it.
    Invocation {
        /// Script to run (1 to 65536 bytes).
        script: Bytes,
        /// System fee paid; on the wire only when `version >= 1` (zero otherwise).
        gas: Fixed8,
    },
}

impl TransactionData {
    /// The transaction type this data belongs to.
    pub fn tx_type(&self) -> TransactionType {
        match self {
            TransactionData::Miner { .. } => TransactionType::Miner,
            TransactionData::Issue => TransactionType::Issue,
            TransactionData::Claim { .. } => TransactionType::Claim,
            TransactionData::Enrollment { .. } => TransactionType::Enrollment,
            TransactionData::Register(_) => TransactionType::Register,
            TransactionData::Contract => TransactionType::Contract,
            TransactionData::State { .. } => TransactionType::State,
            TransactionData::Publish(_) => TransactionType::Publish,
            TransactionData::Invocation { .. } => TransactionType::Invocation,
        }
    }

    fn decode(ty: TransactionType, version: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match ty {
            TransactionType::Miner => TransactionData::Miner {
                nonce: r.u32("tx.nonce")?,
            },
            TransactionType::Issue => TransactionData::Issue,
            TransactionType::Claim => {
                let claims = r.vec(MAX_ARRAY_DEFAULT, 34, "tx.claims", CoinReference::decode)?;
                if claims.is_empty() {
                    return Err(DecodeError::TooFew {
                        what: "tx.claims",
                        count: 0,
                        min: 1,
                    });
                }
                TransactionData::Claim { claims }
            }
            TransactionType::Enrollment => TransactionData::Enrollment {
                public_key: EcPoint::decode(r)?,
            },
            TransactionType::Register => TransactionData::Register(Box::new(RegisterData {
                asset_type: AssetType::from_byte(r.u8("tx.asset_type")?),
                name: r.var_string(MAX_REGISTER_NAME, "tx.name")?,
                amount: Fixed8(r.i64("tx.amount")?),
                precision: r.u8("tx.precision")?,
                owner: EcPoint::decode(r)?,
                admin: r.uint160("tx.admin")?,
            })),
            TransactionType::Contract => TransactionData::Contract,
            TransactionType::State => TransactionData::State {
                descriptors: r.vec(
                    MAX_STATE_DESCRIPTORS,
                    4,
                    "tx.descriptors",
                    StateDescriptor::decode,
                )?,
            },
            TransactionType::Publish => TransactionData::Publish(Box::new(PublishData {
                script: r.var_bytes(MAX_PUBLISH_SCRIPT, "tx.script")?,
                parameter_list: r.var_bytes(MAX_PUBLISH_SCRIPT, "tx.parameter_list")?,
                return_type: r.u8("tx.return_type")?,
                need_storage: version >= 1 && r.bool_lenient("tx.need_storage")?,
                name: r.var_string(MAX_PUBLISH_STRING, "tx.name")?,
                code_version: r.var_string(MAX_PUBLISH_STRING, "tx.code_version")?,
                author: r.var_string(MAX_PUBLISH_STRING, "tx.author")?,
                email: r.var_string(MAX_PUBLISH_STRING, "tx.email")?,
                description: r.var_string(MAX_PUBLISH_DESCRIPTION, "tx.description")?,
            })),
            TransactionType::Invocation => {
                let script = r.var_bytes(MAX_INVOCATION_SCRIPT, "tx.script")?;
                if script.is_empty() {
                    return Err(DecodeError::TooFew {
                        what: "tx.script",
                        count: 0,
                        min: 1,
                    });
                }
                let gas = if version >= 1 {
                    Fixed8(r.i64("tx.gas")?)
                } else {
                    Fixed8(0)
                };
                if gas.0 < 0 {
                    return Err(DecodeError::Invalid {
                        what: "tx.gas",
                        reason: "must not be negative",
                    });
                }
                TransactionData::Invocation { script, gas }
            }
        })
    }

    fn encode(&self, version: u8, out: &mut BytesMut) {
        match self {
            TransactionData::Miner { nonce } => out.put_u32_le(*nonce),
            TransactionData::Issue | TransactionData::Contract => {}
            TransactionData::Claim { claims } => encode_vec(claims, out),
            TransactionData::Enrollment { public_key } => public_key.encode(out),
            TransactionData::Register(d) => {
                out.put_u8(d.asset_type.to_byte());
                out.put_var_bytes(d.name.as_bytes());
                out.put_i64_le(d.amount.0);
                out.put_u8(d.precision);
                d.owner.encode(out);
                out.put_slice(&d.admin.0);
            }
            TransactionData::State { descriptors } => encode_vec(descriptors, out),
            TransactionData::Publish(d) => {
                out.put_var_bytes(&d.script);
                out.put_var_bytes(&d.parameter_list);
                out.put_u8(d.return_type);
                if version >= 1 {
                    out.put_u8(d.need_storage.into());
                }
                for s in [
                    &d.name,
                    &d.code_version,
                    &d.author,
                    &d.email,
                    &d.description,
                ] {
                    out.put_var_bytes(s.as_bytes());
                }
            }
            TransactionData::Invocation { script, gas } => {
                out.put_var_bytes(script);
                if version >= 1 {
                    out.put_i64_le(gas.0);
                }
            }
        }
    }

    fn size(&self, version: u8) -> usize {
        match self {
            TransactionData::Miner { .. } => 4,
            TransactionData::Issue | TransactionData::Contract => 0,
            TransactionData::Claim { claims } => vec_size(claims),
            TransactionData::Enrollment { public_key } => public_key.size(),
            TransactionData::Register(d) => {
                1 + var_bytes_size(d.name.len()) + 8 + 1 + d.owner.size() + 20
            }
            TransactionData::State { descriptors } => vec_size(descriptors),
            TransactionData::Publish(d) => {
                var_bytes_size(d.script.len())
                    + var_bytes_size(d.parameter_list.len())
                    + 1
                    + usize::from(version >= 1)
                    + [
                        &d.name,
                        &d.code_version,
                        &d.author,
                        &d.email,
                        &d.description,
                    ]
                    .iter()
                    .map(|s| var_bytes_size(s.len()))
                    .sum::<usize>()
            }
            TransactionData::Invocation { script, .. } => {
                var_bytes_size(script.len()) + if version >= 1 { 8 } else { 0 }
            }
        }
    }
}

/// A Legacy transaction.
///
/// Decoding applies the reference node's deserialisation rules: known type,
/// allowed version for the type, at most 16 attributes of defined usages,
/// at most 65536 outputs with positive values, witness scripts of at most
/// 65536 bytes, non-empty claims and invocation script, non-negative GAS, and
/// for `MinerTransaction` no inputs and outputs only in GAS. Rules that need
/// the chain (signatures, balances, fees) are not checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Version of the transaction format (its meaning depends on the type).
    pub version: u8,
    /// Type and type-specific data.
    pub data: TransactionData,
    /// Attributes (at most 16).
    pub attributes: Vec<TransactionAttribute>,
    /// Spent outputs.
    pub inputs: Vec<CoinReference>,
    /// New outputs (at most 65536).
    pub outputs: Vec<TransactionOutput>,
    /// Witnesses (signatures and verification scripts).
    pub witnesses: Vec<Witness>,
}

impl Transaction {
    /// The type of the transaction.
    pub fn tx_type(&self) -> TransactionType {
        self.data.tx_type()
    }

    /// Writes the hashed (unsigned) part: everything but the witnesses.
    pub fn encode_unsigned(&self, out: &mut BytesMut) {
        out.put_u8(self.tx_type().to_byte());
        out.put_u8(self.version);
        self.data.encode(self.version, out);
        encode_vec(&self.attributes, out);
        encode_vec(&self.inputs, out);
        encode_vec(&self.outputs, out);
    }

    /// Length of the unsigned part.
    pub fn unsigned_size(&self) -> usize {
        2 + self.data.size(self.version)
            + vec_size(&self.attributes)
            + vec_size(&self.inputs)
            + vec_size(&self.outputs)
    }

    /// The transaction hash (txid): `Hash256` of the canonical unsigned encoding.
    pub fn hash(&self) -> UInt256 {
        let mut buf = BytesMut::with_capacity(self.unsigned_size());
        self.encode_unsigned(&mut buf);
        UInt256(hash256(&buf))
    }

    /// Same as [`Transaction::hash`], under the name RPC uses.
    pub fn txid(&self) -> UInt256 {
        self.hash()
    }

    /// Checks the limits the decoder enforces on values built in memory
    /// (counts, attribute layouts, script sizes), so that what is sent would be
    /// accepted by a receiver.
    pub fn check_limits(&self) -> Result<(), DecodeError> {
        let too_many = |what, count: usize, max: u64| {
            if count as u64 > max {
                Err(DecodeError::TooMany {
                    what,
                    count: count as u64,
                    max,
                })
            } else {
                Ok(())
            }
        };
        too_many("tx.attributes", self.attributes.len(), MAX_TX_ATTRIBUTES)?;
        too_many("tx.outputs", self.outputs.len(), MAX_TX_OUTPUTS)?;
        if self.version > self.tx_type().max_version() {
            return Err(DecodeError::InvalidValue {
                what: "tx.version",
                value: self.version.into(),
            });
        }
        for a in &self.attributes {
            a.check()?;
        }
        for w in &self.witnesses {
            too_many("witness.invocation", w.invocation.len(), MAX_WITNESS_SCRIPT)?;
            too_many(
                "witness.verification",
                w.verification.len(),
                MAX_WITNESS_SCRIPT,
            )?;
        }
        match &self.data {
            TransactionData::State { descriptors } => {
                too_many("tx.descriptors", descriptors.len(), MAX_STATE_DESCRIPTORS)
            }
            TransactionData::Invocation { script, .. } => {
                too_many("tx.script", script.len(), MAX_INVOCATION_SCRIPT)
            }
            _ => Ok(()),
        }
    }
}

impl Decode for Transaction {
    const NAME: &'static str = "tx";

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let type_byte = r.u8("tx.type")?;
        let ty = TransactionType::from_byte(type_byte).ok_or(DecodeError::InvalidValue {
            what: "tx.type",
            value: type_byte.into(),
        })?;
        let version = r.u8("tx.version")?;
        if version > ty.max_version() {
            return Err(DecodeError::InvalidValue {
                what: "tx.version",
                value: version.into(),
            });
        }
        let data = TransactionData::decode(ty, version, r)?;
        let attributes = r.vec(
            MAX_TX_ATTRIBUTES,
            2,
            "tx.attributes",
            TransactionAttribute::decode,
        )?;
        let inputs = r.vec(MAX_ARRAY_DEFAULT, 34, "tx.inputs", CoinReference::decode)?;
        let outputs = r.vec(MAX_TX_OUTPUTS, 60, "tx.outputs", TransactionOutput::decode)?;
        let witnesses = r.vec(MAX_ARRAY_DEFAULT, 2, "tx.witnesses", |r| {
            Witness::decode_limited(r, MAX_WITNESS_SCRIPT)
        })?;
        if ty == TransactionType::Miner {
            if !inputs.is_empty() {
                return Err(DecodeError::Invalid {
                    what: "tx.inputs",
                    reason: "a MinerTransaction has no inputs",
                });
            }
            if outputs.iter().any(|o| o.asset_id != UTILITY_TOKEN_ID) {
                return Err(DecodeError::Invalid {
                    what: "tx.outputs",
                    reason: "a MinerTransaction pays only GAS",
                });
            }
        }
        Ok(Transaction {
            version,
            data,
            attributes,
            inputs,
            outputs,
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
