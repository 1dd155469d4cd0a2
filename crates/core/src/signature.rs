//! The Cloacina detached signature document, version 1, with a strict reader.
//!
//! ```json
//! {"version":1,"algorithm":"ed25519","package_hash":"<hex>","key_fingerprint":"<hex>","signature":"<base64>","signed_at":"<RFC 3339 UTC>"}
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::digest::to_hex;
use crate::error::Result;
pub use crate::json::MAX_SIGNATURE_FILE_BYTES;
use crate::json::{
    expect_str, json_type, malformed, object_fields, parse_hex32, parse_signature_b64,
    parse_utc_timestamp, quoted,
};

/// Field names in canonical (written) order.
const FIELDS: [&str; 6] = [
    "version",
    "algorithm",
    "package_hash",
    "key_fingerprint",
    "signature",
    "signed_at",
];

/// A parsed, validated version-1 detached signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedSignature {
    /// SHA-256 of the package file.
    pub package_hash: [u8; 32],
    /// SHA-256 of the signer's raw 32-byte public key.
    pub key_fingerprint: [u8; 32],
    /// Ed25519 signature over the raw 32 `package_hash` bytes.
    pub signature: [u8; 64],
    /// RFC 3339 UTC timestamp, kept exactly as written.
    pub signed_at: String,
}

impl DetachedSignature {
    /// Strict reader for exactly the version-1 object (any JSON whitespace and
    /// field order; trailing whitespace allowed). Everything else is
    /// `MalformedSignature` with a message saying what is wrong. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        // parse_object also enforces MAX_SIGNATURE_FILE_BYTES.
        let pairs = crate::json::parse_object(bytes, "signature file")?;
        Self::from_pairs(&pairs)
    }

    /// The version-1 document from the fields of an already parsed top-level object.
    pub(crate) fn from_pairs(pairs: &[(String, Value)]) -> Result<Self> {
        let [Some(version), Some(algorithm), Some(hash), Some(fpr), Some(sig), Some(at)] =
            object_fields(pairs, &FIELDS, &FIELDS)?
        else {
            unreachable!("every field is required")
        };

        match version {
            Value::Number(n) if n.as_u64() == Some(1) => {}
            Value::Number(n) => {
                return Err(malformed(format!(
                    "unsupported version {n} (only version 1 is supported)"
                )))
            }
            other => {
                return Err(malformed(format!(
                    "field \"version\" must be a JSON number, found {}",
                    json_type(other)
                )))
            }
        }
        let alg = expect_str("algorithm", algorithm)?;
        if alg != "ed25519" {
            return Err(malformed(format!(
                "unsupported algorithm {} (only \"ed25519\" is supported)",
                quoted(alg)
            )));
        }
        Ok(DetachedSignature {
            package_hash: parse_hex32("package_hash", hash)?,
            key_fingerprint: parse_hex32("key_fingerprint", fpr)?,
            signature: parse_signature_b64(sig)?,
            signed_at: parse_utc_timestamp("signed_at", at)?,
        })
    }

    /// Builds a signature from its encoded fields, each validated exactly as `parse` would.
    pub fn from_fields(
        package_hash: &str,
        key_fingerprint: &str,
        signature: &str,
        signed_at: &str,
    ) -> Result<Self> {
        let text = |s: &str| Value::String(s.to_string());
        Ok(DetachedSignature {
            package_hash: parse_hex32("package_hash", &text(package_hash))?,
            key_fingerprint: parse_hex32("key_fingerprint", &text(key_fingerprint))?,
            signature: parse_signature_b64(&text(signature))?,
            signed_at: parse_utc_timestamp("signed_at", &text(signed_at))?,
        })
    }

    pub fn package_hash_hex(&self) -> String {
        to_hex(&self.package_hash)
    }

    pub fn key_fingerprint_hex(&self) -> String {
        to_hex(&self.key_fingerprint)
    }

    pub fn signature_base64(&self) -> String {
        encode_signature(&self.signature)
    }

    /// Compact JSON in canonical field order, no trailing newline.
    pub fn to_json(&self) -> String {
        // serde_json escapes signed_at in case the struct was built by hand.
        let signed_at = serde_json::to_string(&self.signed_at).unwrap_or_else(|_| "\"\"".into());
        format!(
            "{{\"version\":1,\"algorithm\":\"ed25519\",\"package_hash\":\"{}\",\"key_fingerprint\":\"{}\",\"signature\":\"{}\",\"signed_at\":{}}}",
            self.package_hash_hex(),
            self.key_fingerprint_hex(),
            self.signature_base64(),
            signed_at
        )
    }
}

/// Standard padded base64, the signature's encoding in the document and in the database.
pub fn encode_signature(signature: &[u8; 64]) -> String {
    STANDARD.encode(signature)
}
