//! The version-2 signature document: a signed statement about one package.
//!
//! Version 1 signs the bare package digest. Version 2 signs a statement saying which package, which
//! version, for which organization (optional), how large, with which digest, when it was issued and
//! until when it is valid (optional). The signature covers the statement's canonical encoding,
//! which starts with a fixed context string, so it can never be replayed as another protocol's
//! message or as a version-1 signature.
//!
//! ```json
//! {"version":2,"algorithm":"ed25519",
//!  "statement":{"name":"data-pipeline","version":"1.2.0","organization":"acme","size":16384,
//!               "digest_algorithm":"blake3","digest":"<64 hex>","issued_at":"2026-11-25T10:00:00Z",
//!               "expires_at":"2027-02-23T10:00:00Z"},
//!  "key_fingerprint":"<64 hex>","signature":"<base64 of 64 bytes>"}
//! ```
//!
//! The signed message (what Ed25519 signs), byte for byte:
//!
//! ```text
//! "cloacina-sign/package-statement/v2" 0x00
//! str(name) str(version) opt(organization) u64be(size)
//! str(digest_algorithm) digest (32 raw bytes) str(issued_at) opt(expires_at)
//!
//! str(s)    = u32be(byte length of s) || UTF-8 bytes of s
//! opt(None) = u32be(0xFFFFFFFF);  opt(Some(s)) = str(s)
//! ```
//!
//! The strings are exactly the JSON string values (after JSON unescaping). Nothing else in the
//! document is signed, and nothing else is read: the fields used after verification are the ones
//! that were signed.

use serde_json::Value;

use crate::digest::to_hex;
use crate::error::Result;
use crate::json::{
    expect_str, json_type, malformed, object_fields, parse_hex32, parse_signature_b64,
    parse_utc_timestamp, quoted,
};
use crate::signature::encode_signature;

/// The fixed context string that starts every signed statement.
pub const CONTEXT: &str = "cloacina-sign/package-statement/v2";

/// Longest package name, version or organization (bytes).
pub const MAX_FIELD_BYTES: usize = 255;

/// Top-level fields of the version-2 document, in canonical order.
const FIELDS: [&str; 5] = [
    "version",
    "algorithm",
    "statement",
    "key_fingerprint",
    "signature",
];

/// Fields of the statement, in canonical (and signed) order; `organization` and `expires_at` are optional.
const STATEMENT_FIELDS: [&str; 8] = [
    "name",
    "version",
    "organization",
    "size",
    "digest_algorithm",
    "digest",
    "issued_at",
    "expires_at",
];
const REQUIRED_STATEMENT_FIELDS: [&str; 6] = [
    "name",
    "version",
    "size",
    "digest_algorithm",
    "digest",
    "issued_at",
];

/// The digest a statement names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// BLAKE3 (the default of version 2: hashes one file on every core).
    Blake3,
    /// SHA-256, for those who must use it.
    Sha256,
}

impl DigestAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Blake3 => "blake3",
            DigestAlgorithm::Sha256 => "sha256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "blake3" => Some(DigestAlgorithm::Blake3),
            "sha256" => Some(DigestAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// What a version-2 signature says about a package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub name: String,
    /// A SemVer 2.0.0 version.
    pub version: String,
    pub organization: Option<String>,
    /// The package file's size in bytes.
    pub size: u64,
    pub digest_algorithm: DigestAlgorithm,
    pub digest: [u8; 32],
    /// RFC 3339 UTC, kept exactly as written.
    pub issued_at: String,
    /// RFC 3339 UTC, later than `issued_at`.
    pub expires_at: Option<String>,
}

/// A parsed, validated version-2 document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedStatement {
    pub statement: Statement,
    /// SHA-256 of the signer's raw 32-byte public key.
    pub key_fingerprint: [u8; 32],
    /// Ed25519 over [`Statement::signed_message`].
    pub signature: [u8; 64],
}

/// Sizes above this cannot be represented exactly by every JSON reader (JavaScript's numbers).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

pub(crate) fn check_text(name: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_FIELD_BYTES {
        return Err(malformed(format!(
            "field \"{name}\" must be 1 to {MAX_FIELD_BYTES} bytes, got {}",
            value.len()
        )));
    }
    // Line and paragraph separators break a line as a newline does (the name rule of every stored name).
    let control = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if value.chars().any(control) {
        return Err(malformed(format!(
            "field \"{name}\" contains a control character"
        )));
    }
    // Bidirectional overrides and isolates would make a name display as another one.
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if value.chars().any(bidi) {
        return Err(malformed(format!(
            "field \"{name}\" contains a bidirectional control character"
        )));
    }
    Ok(())
}

fn check_version(version: &str) -> Result<()> {
    check_text("version", version)?;
    semver::Version::parse(version).map_err(|e| {
        malformed(format!(
            "field \"version\" is not a SemVer 2.0.0 version ({}): {e}",
            quoted(version)
        ))
    })?;
    Ok(())
}

/// Version 2 timestamps are written one way only: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, a valid UTC time.
pub(crate) fn timestamp_field(name: &str, value: &Value) -> Result<String> {
    let text = parse_utc_timestamp(name, value)?;
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let fraction = b.get(19..b.len() - 1).unwrap_or(&[]);
    let canonical = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[17..19] < b"60"[..]
        && b[b.len() - 1] == b'Z'
        && (fraction.is_empty()
            || (fraction.len() >= 2
                && fraction.len() <= 10
                && fraction[0] == b'.'
                && fraction[1..].iter().all(u8::is_ascii_digit)));
    if !canonical {
        return Err(malformed(format!(
            "field \"{name}\" must be written YYYY-MM-DDTHH:MM:SS[.fraction]Z, got {}",
            quoted(&text)
        )));
    }
    Ok(text)
}

fn text_field(name: &str, value: &Value) -> Result<String> {
    let text = expect_str(name, value)?.to_string();
    check_text(name, &text)?;
    Ok(text)
}

fn parse_size(value: &Value) -> Result<u64> {
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(size) if size <= MAX_SAFE_INTEGER => Ok(size),
            _ => Err(malformed(format!(
                "field \"size\" must be an integer from 0 to {MAX_SAFE_INTEGER}, got {n}"
            ))),
        },
        other => Err(malformed(format!(
            "field \"size\" must be a JSON number, found {}",
            json_type(other)
        ))),
    }
}

pub(crate) fn push_str(message: &mut Vec<u8>, text: &str) {
    message.extend_from_slice(&(text.len() as u32).to_be_bytes());
    message.extend_from_slice(text.as_bytes());
}

fn push_opt(message: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_str(message, text),
        None => message.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
}

impl Statement {
    /// Checks every field as the reader does (so nothing is signed that could not be read back).
    pub fn validate(&self) -> Result<()> {
        check_text("name", &self.name)?;
        check_version(&self.version)?;
        if let Some(organization) = &self.organization {
            check_text("organization", organization)?;
        }
        if self.size > MAX_SAFE_INTEGER {
            return Err(malformed(format!(
                "field \"size\" must be at most {MAX_SAFE_INTEGER}"
            )));
        }
        let issued = timestamp_field("issued_at", &Value::String(self.issued_at.clone()))?;
        if let Some(expires) = &self.expires_at {
            let expires = timestamp_field("expires_at", &Value::String(expires.clone()))?;
            if timestamp(&expires) <= timestamp(&issued) {
                return Err(malformed(
                    "field \"expires_at\" must be later than \"issued_at\"",
                ));
            }
        }
        Ok(())
    }

    /// The exact bytes the signature covers (see the module documentation).
    pub fn signed_message(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(160 + self.name.len() + self.version.len());
        message.extend_from_slice(CONTEXT.as_bytes());
        message.push(0);
        push_str(&mut message, &self.name);
        push_str(&mut message, &self.version);
        push_opt(&mut message, self.organization.as_deref());
        message.extend_from_slice(&self.size.to_be_bytes());
        push_str(&mut message, self.digest_algorithm.name());
        message.extend_from_slice(&self.digest);
        push_str(&mut message, &self.issued_at);
        push_opt(&mut message, self.expires_at.as_deref());
        message
    }

    /// Seconds since the Unix epoch when the statement stops being valid, if it expires.
    pub fn expires_at_unix(&self) -> Option<i64> {
        self.expires_at.as_deref().map(timestamp)
    }

    fn from_value(value: &Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(malformed(format!(
                "field \"statement\" must be a JSON object, found {}",
                json_type(value)
            )));
        };
        // Duplicated keys were refused while parsing (json::parse_object).
        let pairs: Vec<(String, Value)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let [name, version, organization, size, algorithm, digest, issued_at, expires_at] =
            object_fields(&pairs, &STATEMENT_FIELDS, &REQUIRED_STATEMENT_FIELDS)?;
        fn required(value: Option<&Value>) -> &Value {
            value.expect("required fields are present")
        }
        let version = expect_str("version", required(version))?.to_string();
        check_version(&version)?;
        let algorithm_name = expect_str("digest_algorithm", required(algorithm))?;
        let digest_algorithm = DigestAlgorithm::from_name(algorithm_name).ok_or_else(|| {
            malformed(format!(
                "unsupported digest_algorithm {} (\"blake3\" or \"sha256\")",
                quoted(algorithm_name)
            ))
        })?;
        let statement = Statement {
            name: text_field("name", required(name))?,
            version,
            organization: organization
                .map(|v| text_field("organization", v))
                .transpose()?,
            size: parse_size(required(size))?,
            digest_algorithm,
            digest: parse_hex32("digest", required(digest))?,
            issued_at: timestamp_field("issued_at", required(issued_at))?,
            expires_at: expires_at
                .map(|v| timestamp_field("expires_at", v))
                .transpose()?,
        };
        statement.validate()?;
        Ok(statement)
    }

    fn to_json(&self) -> String {
        let string = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let mut json = format!(
            "{{\"name\":{},\"version\":{}",
            string(&self.name),
            string(&self.version)
        );
        if let Some(organization) = &self.organization {
            json.push_str(&format!(",\"organization\":{}", string(organization)));
        }
        json.push_str(&format!(
            ",\"size\":{},\"digest_algorithm\":\"{}\",\"digest\":\"{}\",\"issued_at\":{}",
            self.size,
            self.digest_algorithm.name(),
            to_hex(&self.digest),
            string(&self.issued_at)
        ));
        if let Some(expires_at) = &self.expires_at {
            json.push_str(&format!(",\"expires_at\":{}", string(expires_at)));
        }
        json.push('}');
        json
    }
}

/// Seconds since the Unix epoch of an already validated RFC 3339 timestamp.
pub(crate) fn timestamp(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).map_or(i64::MIN, |dt| dt.timestamp())
}

impl SignedStatement {
    /// The version-2 document from the fields of an already parsed top-level object.
    pub(crate) fn from_pairs(pairs: &[(String, Value)]) -> Result<Self> {
        let [Some(version), Some(algorithm), Some(statement), Some(fpr), Some(sig)] =
            object_fields(pairs, &FIELDS, &FIELDS)?
        else {
            unreachable!("every field is required")
        };
        if !matches!(version, Value::Number(n) if n.as_u64() == Some(2)) {
            return Err(malformed("field \"version\" must be 2"));
        }
        let alg = expect_str("algorithm", algorithm)?;
        if alg != "ed25519" {
            return Err(malformed(format!(
                "unsupported algorithm {} (only \"ed25519\" is supported)",
                quoted(alg)
            )));
        }
        Ok(SignedStatement {
            statement: Statement::from_value(statement)?,
            key_fingerprint: parse_hex32("key_fingerprint", fpr)?,
            signature: parse_signature_b64(sig)?,
        })
    }

    /// Canonical compact JSON, no trailing newline.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"version\":2,\"algorithm\":\"ed25519\",\"statement\":{},\"key_fingerprint\":\"{}\",\"signature\":\"{}\"}}",
            self.statement.to_json(),
            to_hex(&self.key_fingerprint),
            encode_signature(&self.signature)
        )
    }
}

impl Statement {
    /// Signs the statement with an Ed25519 seed (after validating every field).
    pub fn sign(self, seed: &[u8; 32]) -> Result<SignedStatement> {
        self.validate()?;
        let public_key = crate::keys::public_key_of(seed);
        let signature = crate::keys::sign(seed, &self.signed_message());
        Ok(SignedStatement {
            statement: self,
            key_fingerprint: crate::digest::sha256(&public_key),
            signature,
        })
    }
}
