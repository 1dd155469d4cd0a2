//! The Cloacina detached signature document, version 1, with a strict reader.
//!
//! ```json
//! {"version":1,"algorithm":"ed25519","package_hash":"<hex>","key_fingerprint":"<hex>","signature":"<base64>","signed_at":"<RFC 3339 UTC>"}
//! ```

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::digest::to_hex;
use crate::error::{CoreError, Result};

/// Largest signature file we will read; real ones are ~300 bytes.
pub const MAX_SIGNATURE_FILE_BYTES: usize = 64 * 1024;

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

fn malformed(msg: impl Into<String>) -> CoreError {
    CoreError::MalformedSignature(msg.into())
}

/// All key/value pairs of the top-level object, in order, duplicates kept
/// (a `serde_json::Value` map would silently keep only the last duplicate).
struct Pairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Value>()?;
                    pairs.push((key, value));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// Quotes a document-supplied name for an error message, bounded in length.
fn quoted(name: &str) -> String {
    let mut s: String = name.chars().take(64).collect();
    if s.len() < name.len() {
        s.push('…');
    }
    serde_json::to_string(&s).unwrap_or_else(|_| "\"?\"".into())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expect_str<'a>(name: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str().ok_or_else(|| {
        malformed(format!(
            "field \"{name}\" must be a JSON string, found {}",
            json_type(v)
        ))
    })
}

fn parse_hex32(name: &str, v: &Value) -> Result<[u8; 32]> {
    let s = expect_str(name, v)?;
    let is_lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if s.len() != 64 || !s.bytes().all(is_lower_hex) {
        let detail = if s.bytes().any(|b| b.is_ascii_uppercase()) {
            " (uppercase is not accepted)".to_string()
        } else {
            format!(" (got {} characters)", s.chars().count())
        };
        return Err(malformed(format!(
            "field \"{name}\" must be 64 lowercase hex characters{detail}"
        )));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| {
        malformed(format!(
            "field \"{name}\" must be 64 lowercase hex characters"
        ))
    })?;
    Ok(out)
}

fn parse_signature_b64(v: &Value) -> Result<[u8; 64]> {
    let s = expect_str("signature", v)?;
    let why = if s.contains(['-', '_']) {
        Some("uses the URL-safe alphabet".to_string())
    } else if s.contains(|c: char| c.is_whitespace()) {
        Some("contains whitespace".to_string())
    } else {
        None
    };
    let bytes = match (why, STANDARD.decode(s)) {
        (None, Ok(b)) => b,
        (Some(w), _) => {
            return Err(malformed(format!(
                "field \"signature\" is not standard padded base64: {w}"
            )))
        }
        (None, Err(e)) => {
            return Err(malformed(format!(
                "field \"signature\" is not standard padded base64: {e}"
            )))
        }
    };
    bytes.as_slice().try_into().map_err(|_| {
        malformed(format!(
            "field \"signature\" must decode to 64 bytes, got {}",
            bytes.len()
        ))
    })
}

fn parse_signed_at(v: &Value) -> Result<String> {
    let s = expect_str("signed_at", v)?;
    let dt = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
        malformed(format!(
            "field \"signed_at\" is not an RFC 3339 timestamp: {e}"
        ))
    })?;
    // chrono also accepts a space separator; the format always uses 'T'.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(malformed(
            "field \"signed_at\" is not an RFC 3339 timestamp: expected 'T' between date and time",
        ));
    }
    // "-00:00" parses as offset 0 but means "local offset unknown" (RFC 3339 4.3).
    if dt.offset().local_minus_utc() != 0 || s.ends_with("-00:00") {
        return Err(malformed(format!(
            "field \"signed_at\" must be in UTC (offset Z or +00:00), got offset {}",
            // get() rather than indexing: never panic on a char boundary.
            quoted(s.get(s.len().saturating_sub(6)..).unwrap_or(s))
        )));
    }
    Ok(s.to_string())
}

impl DetachedSignature {
    /// Strict reader for exactly the version-1 object (any JSON whitespace and
    /// field order; trailing whitespace allowed). Everything else is
    /// `MalformedSignature` with a message saying what is wrong. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_SIGNATURE_FILE_BYTES {
            return Err(malformed(format!(
                "signature file is over {} KiB ({} bytes)",
                MAX_SIGNATURE_FILE_BYTES / 1024,
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| malformed(format!("signature file is not UTF-8 ({e})")))?;
        if text.starts_with('\u{feff}') {
            return Err(malformed(
                "signature file is not valid JSON: it starts with a byte order mark",
            ));
        }

        let mut de = serde_json::Deserializer::from_str(text);
        let pairs = Pairs::deserialize(&mut de).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => malformed("signature file is not a JSON object"),
            _ => malformed(format!("signature file is not valid JSON: {e}")),
        })?;
        de.end()
            .map_err(|_| malformed("trailing bytes after the JSON object in signature file"))?;

        // Slot per known field, in FIELDS order.
        let mut slots: [Option<&Value>; 6] = [None; 6];
        for (key, value) in &pairs.0 {
            match FIELDS.iter().position(|f| f == key) {
                Some(i) if slots[i].is_some() => {
                    return Err(malformed(format!("duplicated field \"{key}\"")))
                }
                Some(i) => slots[i] = Some(value),
                None => return Err(malformed(format!("unknown field {}", quoted(key)))),
            }
        }
        for (slot, name) in slots.iter().zip(FIELDS) {
            if slot.is_none() {
                return Err(malformed(format!("missing field \"{name}\"")));
            }
        }
        let [Some(version), Some(algorithm), Some(hash), Some(fpr), Some(sig), Some(at)] = slots
        else {
            unreachable!("all slots were checked above")
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
            signed_at: parse_signed_at(at)?,
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
            signed_at: parse_signed_at(&text(signed_at))?,
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
