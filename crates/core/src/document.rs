//! A signature document of either version: Cloacina's version 1 (the bare digest) or our version 2
//! (a signed statement). Readers take both; the `version` field decides.

use serde_json::Value;

use crate::error::{CoreError, Result};
use crate::json::{json_type, malformed, parse_object};
use crate::signature::{DetachedSignature, MAX_SIGNATURE_FILE_BYTES};
use crate::statement::SignedStatement;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureDocument {
    V1(DetachedSignature),
    V2(SignedStatement),
}

impl SignatureDocument {
    /// Strict reader of either version; everything else is `MalformedSignature` saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let pairs = parse_object(bytes, "signature file")?;
        let versions: Vec<&Value> = pairs
            .iter()
            .filter(|(key, _)| key == "version")
            .map(|(_, value)| value)
            .collect();
        match versions.as_slice() {
            [] => Err(malformed("missing field \"version\"")),
            [Value::Number(n)] if n.as_u64() == Some(1) => {
                DetachedSignature::from_pairs(&pairs).map(SignatureDocument::V1)
            }
            [Value::Number(n)] if n.as_u64() == Some(2) => {
                SignedStatement::from_pairs(&pairs).map(SignatureDocument::V2)
            }
            [Value::Number(n)] => Err(malformed(format!(
                "unsupported version {n} (versions 1 and 2 are supported)"
            ))),
            [other] => Err(malformed(format!(
                "field \"version\" must be a JSON number, found {}",
                json_type(other)
            ))),
            _ => Err(malformed("duplicated field \"version\"")),
        }
    }

    /// Reads and strictly parses a signature file: `SignatureNotFound` when there is none,
    /// `UnreadableFile` when it cannot be read or is not a regular file (a FIFO never blocks),
    /// `MalformedSignature` (naming the file) when it is over 64 KiB or not a valid document.
    pub fn read_file(path: &std::path::Path) -> Result<Self> {
        use crate::files::{read_small, SmallFile};
        let shown = path.display();
        match read_small(path, MAX_SIGNATURE_FILE_BYTES)? {
            SmallFile::Missing => Err(CoreError::SignatureNotFound(format!(
                "no signature file at {shown}"
            ))),
            SmallFile::TooLarge(size) => Err(malformed(format!(
                "{shown}: the signature file is {size} bytes; the limit is {MAX_SIGNATURE_FILE_BYTES}"
            ))),
            SmallFile::Read(bytes) => Self::parse(&bytes).map_err(|e| match e {
                CoreError::MalformedSignature(m) => malformed(format!("{shown}: {m}")),
                other => other,
            }),
        }
    }

    /// SHA-256 of the signer's raw public key, as the document names it.
    pub fn key_fingerprint(&self) -> &[u8; 32] {
        match self {
            SignatureDocument::V1(sig) => &sig.key_fingerprint,
            SignatureDocument::V2(signed) => &signed.key_fingerprint,
        }
    }

    /// Canonical compact JSON, no trailing newline.
    pub fn to_json(&self) -> String {
        match self {
            SignatureDocument::V1(sig) => sig.to_json(),
            SignatureDocument::V2(signed) => signed.to_json(),
        }
    }
}
