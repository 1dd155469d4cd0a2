//! A signature document of any kind: Cloacina's version 1 (the bare digest), our version 2 (a signed
//! statement), or a cosign blob signature (base64 of a DER ECDSA P-256 signature over the SHA-256).
//!
//! The kind is decided from the content before anything is parsed, and only that kind is tried: a
//! document whose first byte that is not whitespace is `{` is JSON (the `version` field then decides
//! between 1 and 2); text made only of base64 characters and whitespace is a cosign signature
//! ([`crate::cosign::looks_like_cosign`]); anything else is read as JSON, and refused with JSON's error.

use serde_json::Value;

use crate::cosign::{looks_like_cosign, CosignSignature};
use crate::error::{CoreError, Result};
use crate::json::{json_type, malformed, parse_object};
use crate::signature::{DetachedSignature, MAX_SIGNATURE_FILE_BYTES};
use crate::statement::SignedStatement;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureDocument {
    V1(DetachedSignature),
    V2(SignedStatement),
    /// A cosign blob signature: names no key, signs only the SHA-256 of the package.
    Cosign(CosignSignature),
}

impl SignatureDocument {
    /// Strict reader of every kind (see the module documentation); everything else is
    /// `MalformedSignature` saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let json = bytes.trim_ascii_start().first() == Some(&b'{');
        if !json && looks_like_cosign(bytes) {
            return CosignSignature::parse(bytes).map(SignatureDocument::Cosign);
        }
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

    /// The fingerprint of the signer's key, as the document names it (SHA-256 of the raw Ed25519
    /// public key); `None` for a cosign signature, which names no key.
    pub fn key_fingerprint(&self) -> Option<&[u8; 32]> {
        match self {
            SignatureDocument::V1(sig) => Some(&sig.key_fingerprint),
            SignatureDocument::V2(signed) => Some(&signed.key_fingerprint),
            SignatureDocument::Cosign(_) => None,
        }
    }

    /// What kind of document this is: `v1`, `v2` or `cosign`.
    pub fn kind(&self) -> &'static str {
        match self {
            SignatureDocument::V1(_) => "v1",
            SignatureDocument::V2(_) => "v2",
            SignatureDocument::Cosign(_) => "cosign",
        }
    }

    /// The canonical text: compact JSON for Cloacina's documents, the standard base64 of the DER
    /// for a cosign signature; no trailing newline. [`SignatureDocument::parse`] reads it back.
    pub fn canonical(&self) -> String {
        match self {
            SignatureDocument::V1(sig) => sig.to_json(),
            SignatureDocument::V2(signed) => signed.to_json(),
            SignatureDocument::Cosign(cosign) => cosign.to_base64(),
        }
    }

    /// [`SignatureDocument::canonical`] (JSON for versions 1 and 2).
    pub fn to_json(&self) -> String {
        self.canonical()
    }
}
