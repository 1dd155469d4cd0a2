//! The revocation list: a signed, versioned, expiring list of the packages (exact digests) an
//! organization revoked, for runners that trust pinned keys and have no database.
//!
//! ```json
//! {"kind":"revocation-list","version":1,"algorithm":"ed25519",
//!  "list":{"organization":"acme","sequence":7,"issued_at":"2026-12-05T10:00:00Z",
//!          "expires_at":"2026-12-12T10:00:00Z",
//!          "revoked":[{"sha256":"<64 hex>","blake3":"<64 hex>","reason":"compromised build"}]},
//!  "key_fingerprint":"<64 hex>","signature":"<base64 of 64 bytes>"}
//! ```
//!
//! Each revoked package names its SHA-256, its BLAKE3 or both, and a reason. The signed message
//! starts with its own context string, so a list's signature can never pass as a package signature
//! (whose messages start otherwise, or are a bare digest) and no package signature as a list's:
//!
//! ```text
//! "cloacina-sign/revocation-list/v1" 0x00
//! str(organization) u64be(sequence) str(issued_at) str(expires_at) u32be(count)
//! count x ( digest(sha256) digest(blake3) str(reason) )
//!
//! str(s)          = u32be(byte length of s) || UTF-8 bytes of s
//! digest(None)    = 0x00;  digest(Some(d)) = 0x01 || d (32 raw bytes)
//! ```
//!
//! The reader is strict (unknown, duplicated or missing fields, wrong types and encodings are
//! `MalformedSignature`); the signature is checked with the pinned key its fingerprint names
//! (`UntrustedSigner` when none, `InvalidSignature` when it does not verify). Expiry and the
//! sequence (replay) are the runner's to check: it knows the time and the highest sequence seen.

use serde_json::Value;

use crate::digest::{sha256, to_hex};
use crate::error::{CoreError, Result};
use crate::json::{
    expect_str, json_type, malformed, object_fields, parse_hex32, parse_object_within,
    parse_signature_b64,
};
use crate::signature::encode_signature;
use crate::statement::{check_text, push_str, timestamp, timestamp_field};

/// The fixed context string that starts every signed revocation list.
pub const CONTEXT: &str = "cloacina-sign/revocation-list/v1";

/// The value of the document's `kind` field.
pub const KIND: &str = "revocation-list";

/// Largest list document read (bytes): some ten thousand revoked packages.
pub const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;

/// Sequences above this cannot be represented exactly by every JSON reader (JavaScript's numbers).
const MAX_SEQUENCE: u64 = (1 << 53) - 1;

const FIELDS: [&str; 6] = [
    "kind",
    "version",
    "algorithm",
    "list",
    "key_fingerprint",
    "signature",
];
const LIST_FIELDS: [&str; 5] = [
    "organization",
    "sequence",
    "issued_at",
    "expires_at",
    "revoked",
];
const ENTRY_FIELDS: [&str; 3] = ["sha256", "blake3", "reason"];

/// One revoked package: its SHA-256, its BLAKE3 or both, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedPackage {
    pub sha256: Option<[u8; 32]>,
    pub blake3: Option<[u8; 32]>,
    pub reason: String,
}

/// What a revocation list says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationList {
    /// The organization whose revocations these are (its name).
    pub organization: String,
    /// Grows with every list the organization issues (from 1): a runner refuses a lower one.
    pub sequence: u64,
    /// RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
    pub issued_at: String,
    /// RFC 3339 UTC, later than `issued_at`: a runner refuses the list from then on.
    pub expires_at: String,
    pub revoked: Vec<RevokedPackage>,
}

/// A parsed list with its signature (not yet checked: see [`SignedRevocationList::verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRevocationList {
    pub list: RevocationList,
    /// SHA-256 of the signer's raw 32-byte public key.
    pub key_fingerprint: [u8; 32],
    pub signature: [u8; 64],
}

fn push_digest(message: &mut Vec<u8>, digest: Option<&[u8; 32]>) {
    match digest {
        Some(digest) => {
            message.push(1);
            message.extend_from_slice(digest);
        }
        None => message.push(0),
    }
}

fn parse_sequence(value: &Value) -> Result<u64> {
    match value.as_u64() {
        Some(sequence) if (1..=MAX_SEQUENCE).contains(&sequence) => Ok(sequence),
        _ => Err(malformed(format!(
            "field \"sequence\" must be an integer from 1 to {MAX_SEQUENCE}, found {}",
            json_type(value)
        ))),
    }
}

impl RevokedPackage {
    fn validate(&self) -> Result<()> {
        if self.sha256.is_none() && self.blake3.is_none() {
            return Err(malformed(
                "a revoked package must name its \"sha256\", its \"blake3\" or both",
            ));
        }
        check_text("reason", &self.reason)
    }

    fn from_value(value: &Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(malformed(format!(
                "every entry of \"revoked\" must be a JSON object, found {}",
                json_type(value)
            )));
        };
        let pairs: Vec<(String, Value)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let [sha256, blake3, reason] = object_fields(&pairs, &ENTRY_FIELDS, &["reason"])?;
        let entry = RevokedPackage {
            sha256: sha256.map(|v| parse_hex32("sha256", v)).transpose()?,
            blake3: blake3.map(|v| parse_hex32("blake3", v)).transpose()?,
            reason: expect_str("reason", reason.expect("required"))?.to_string(),
        };
        entry.validate()?;
        Ok(entry)
    }

    fn to_json(&self) -> String {
        let mut json = String::from("{");
        if let Some(digest) = &self.sha256 {
            json.push_str(&format!("\"sha256\":\"{}\",", to_hex(digest)));
        }
        if let Some(digest) = &self.blake3 {
            json.push_str(&format!("\"blake3\":\"{}\",", to_hex(digest)));
        }
        json.push_str(&format!("\"reason\":{}}}", string(&self.reason)));
        json
    }
}

fn string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

impl RevocationList {
    /// Checks every field as the reader does (so nothing is signed that could not be read back).
    pub fn validate(&self) -> Result<()> {
        check_text("organization", &self.organization)?;
        parse_sequence(&Value::from(self.sequence))?;
        let issued = timestamp_field("issued_at", &Value::String(self.issued_at.clone()))?;
        let expires = timestamp_field("expires_at", &Value::String(self.expires_at.clone()))?;
        if timestamp(&expires) <= timestamp(&issued) {
            return Err(malformed(
                "field \"expires_at\" must be later than \"issued_at\"",
            ));
        }
        if self.revoked.len() > u32::MAX as usize {
            return Err(malformed("too many revoked packages"));
        }
        self.revoked.iter().try_for_each(RevokedPackage::validate)
    }

    /// The exact bytes the signature covers (see the module documentation).
    pub fn signed_message(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(128 + self.revoked.len() * 100);
        message.extend_from_slice(CONTEXT.as_bytes());
        message.push(0);
        push_str(&mut message, &self.organization);
        message.extend_from_slice(&self.sequence.to_be_bytes());
        push_str(&mut message, &self.issued_at);
        push_str(&mut message, &self.expires_at);
        message.extend_from_slice(&(self.revoked.len() as u32).to_be_bytes());
        for entry in &self.revoked {
            push_digest(&mut message, entry.sha256.as_ref());
            push_digest(&mut message, entry.blake3.as_ref());
            push_str(&mut message, &entry.reason);
        }
        message
    }

    /// Seconds since the Unix epoch when the list stops being valid.
    pub fn expires_at_unix(&self) -> i64 {
        timestamp(&self.expires_at)
    }

    /// Signs the list with an Ed25519 seed (after validating every field).
    pub fn sign(self, seed: &[u8; 32]) -> Result<SignedRevocationList> {
        self.validate()?;
        let public_key = crate::keys::public_key_of(seed);
        let signature = crate::keys::sign(seed, &self.signed_message());
        Ok(SignedRevocationList {
            list: self,
            key_fingerprint: sha256(&public_key),
            signature,
        })
    }

    fn from_value(value: &Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(malformed(format!(
                "field \"list\" must be a JSON object, found {}",
                json_type(value)
            )));
        };
        let pairs: Vec<(String, Value)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let [Some(organization), Some(sequence), Some(issued_at), Some(expires_at), Some(revoked)] =
            object_fields(&pairs, &LIST_FIELDS, &LIST_FIELDS)?
        else {
            unreachable!("every field is required")
        };
        let Value::Array(entries) = revoked else {
            return Err(malformed(format!(
                "field \"revoked\" must be a JSON array, found {}",
                json_type(revoked)
            )));
        };
        let list = RevocationList {
            organization: expect_str("organization", organization)?.to_string(),
            sequence: parse_sequence(sequence)?,
            issued_at: timestamp_field("issued_at", issued_at)?,
            expires_at: timestamp_field("expires_at", expires_at)?,
            revoked: entries
                .iter()
                .map(RevokedPackage::from_value)
                .collect::<Result<_>>()?,
        };
        list.validate()?;
        Ok(list)
    }

    fn to_json(&self) -> String {
        let revoked: Vec<String> = self.revoked.iter().map(RevokedPackage::to_json).collect();
        format!(
            "{{\"organization\":{},\"sequence\":{},\"issued_at\":{},\"expires_at\":{},\"revoked\":[{}]}}",
            string(&self.organization),
            self.sequence,
            string(&self.issued_at),
            string(&self.expires_at),
            revoked.join(",")
        )
    }
}

impl SignedRevocationList {
    /// The strict reader (see the module documentation); the signature is not checked here.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let pairs = parse_object_within(bytes, "the revocation list", MAX_LIST_BYTES)?;
        let [Some(kind), Some(version), Some(algorithm), Some(list), Some(fpr), Some(sig)] =
            object_fields(&pairs, &FIELDS, &FIELDS)?
        else {
            unreachable!("every field is required")
        };
        if expect_str("kind", kind)? != KIND {
            return Err(malformed(format!("field \"kind\" must be \"{KIND}\"")));
        }
        if !matches!(version, Value::Number(n) if n.as_u64() == Some(1)) {
            return Err(malformed("field \"version\" must be 1"));
        }
        if expect_str("algorithm", algorithm)? != "ed25519" {
            return Err(malformed(
                "unsupported algorithm (only \"ed25519\" is supported)",
            ));
        }
        Ok(SignedRevocationList {
            list: RevocationList::from_value(list)?,
            key_fingerprint: parse_hex32("key_fingerprint", fpr)?,
            signature: parse_signature_b64(sig)?,
        })
    }

    /// Checks the signature with the one of `public_keys` (raw 32-byte Ed25519) its fingerprint names.
    pub fn verify(&self, public_keys: &[[u8; 32]]) -> Result<()> {
        let key = public_keys
            .iter()
            .find(|key| sha256(key.as_slice()) == self.key_fingerprint)
            .ok_or_else(|| CoreError::UntrustedSigner {
                fingerprint: to_hex(&self.key_fingerprint),
            })?;
        crate::keys::verify(key, &self.list.signed_message(), &self.signature).map_err(|_| {
            CoreError::InvalidSignature("the revocation list's signature does not verify".into())
        })
    }

    /// Canonical compact JSON, no trailing newline.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"kind\":\"{KIND}\",\"version\":1,\"algorithm\":\"ed25519\",\"list\":{},\"key_fingerprint\":\"{}\",\"signature\":\"{}\"}}",
            self.list.to_json(),
            to_hex(&self.key_fingerprint),
            encode_signature(&self.signature)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];

    fn list() -> RevocationList {
        RevocationList {
            organization: "acme".into(),
            sequence: 3,
            issued_at: "2026-12-05T10:00:00Z".into(),
            expires_at: "2026-12-12T10:00:00Z".into(),
            revoked: vec![RevokedPackage {
                sha256: Some([1; 32]),
                blake3: None,
                reason: "compromised build".into(),
            }],
        }
    }

    fn public_key() -> [u8; 32] {
        crate::keys::public_key_of(&SEED)
    }

    #[test]
    fn a_signed_list_reads_back_and_verifies() {
        let json = list().sign(&SEED).unwrap().to_json();
        let parsed = SignedRevocationList::parse(json.as_bytes()).unwrap();
        assert_eq!(parsed.list, list());
        parsed.verify(&[public_key()]).unwrap();
        assert_eq!(parsed.to_json(), json);
    }

    #[test]
    fn a_changed_entry_fails_the_signature() {
        let json = list().sign(&SEED).unwrap().to_json();
        let tampered = json.replace("compromised build", "compromised built");
        let parsed = SignedRevocationList::parse(tampered.as_bytes()).unwrap();
        assert_eq!(
            parsed.verify(&[public_key()]).unwrap_err().code(),
            "INVALID_SIGNATURE"
        );
    }

    #[test]
    fn a_key_not_pinned_is_untrusted() {
        let parsed = list().sign(&SEED).unwrap();
        let other = crate::keys::public_key_of(&[8; 32]);
        assert_eq!(
            parsed.verify(&[other]).unwrap_err().code(),
            "UNTRUSTED_SIGNER"
        );
    }

    #[test]
    fn the_message_is_domain_separated_from_package_statements() {
        let message = list().signed_message();
        assert!(message.starts_with(b"cloacina-sign/revocation-list/v1\0"));
        assert!(!message.starts_with(crate::statement::CONTEXT.as_bytes()));
    }

    #[test]
    fn unknown_fields_and_entries_without_digest_are_malformed() {
        let json = list().sign(&SEED).unwrap().to_json();
        let unknown = json.replacen("{\"kind\"", "{\"extra\":1,\"kind\"", 1);
        assert_eq!(
            SignedRevocationList::parse(unknown.as_bytes())
                .unwrap_err()
                .code(),
            "MALFORMED_SIGNATURE"
        );
        let mut empty = list();
        empty.revoked[0].sha256 = None;
        assert_eq!(empty.sign(&SEED).unwrap_err().code(), "MALFORMED_SIGNATURE");
    }

    #[test]
    fn a_package_signature_is_not_a_list() {
        let statement = r#"{"version":2,"algorithm":"ed25519","statement":{},"key_fingerprint":"","signature":""}"#;
        assert_eq!(
            SignedRevocationList::parse(statement.as_bytes())
                .unwrap_err()
                .code(),
            "MALFORMED_SIGNATURE"
        );
    }
}
