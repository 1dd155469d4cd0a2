//! Ed25519 key encodings: raw bytes, DER and PEM (SPKI / PKCS#8).
//!
//! DER is written by hand because ed25519-dalek's own PKCS#8 output is v2
//! (with the public key), which OpenSSL 3.0 rejects; we write v1 and read both.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{CoreError, Result};
use crate::keys::{public_key_of, PublicKey, PublicKeyBytes, SeedBytes};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
pub const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 PKCS#8 v1 private key; the 32 seed bytes follow.
pub const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Content of the AlgorithmIdentifier SEQUENCE for Ed25519: OID 1.3.101.112, no parameters.
const ED25519_ALG_CONTENT: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

const PUBLIC_LABEL: &str = "PUBLIC KEY";
const PRIVATE_LABEL: &str = "PRIVATE KEY";

/// PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----"), 64-char lines, trailing newline.
pub fn public_key_to_pem(pk: &[u8; 32]) -> String {
    let mut der = Vec::with_capacity(44);
    der.extend_from_slice(&SPKI_PREFIX);
    der.extend_from_slice(pk);
    to_pem(PUBLIC_LABEL, &der)
}

/// PEM PKCS#8 v1 private key ("-----BEGIN PRIVATE KEY-----"); wiped on drop.
pub fn private_key_to_pem(seed: &[u8; 32]) -> Zeroizing<String> {
    let mut der = Zeroizing::new(Vec::with_capacity(48));
    der.extend_from_slice(&PKCS8_V1_PREFIX);
    der.extend_from_slice(seed);
    Zeroizing::new(to_pem(PRIVATE_LABEL, &der))
}

/// Accepts: raw 32 bytes; DER SPKI; PEM SPKI (tolerant of CRLF, surrounding
/// whitespace and line lengths). The key is then checked by
/// [`PublicKey::from_bytes`].
pub fn public_key_from_any(input: &[u8]) -> Result<PublicKeyBytes> {
    parse_public_key(input).map(|key| key.to_bytes())
}

/// [`public_key_from_any`], keeping the parsed key for verification.
pub fn parse_public_key(input: &[u8]) -> Result<PublicKey> {
    if input.len() == 32 {
        return PublicKey::from_bytes(input);
    }
    if looks_like_pem(input) {
        let (label, der) = parse_pem(input)?;
        if label != PUBLIC_LABEL {
            return Err(wrong_label(&label, PUBLIC_LABEL));
        }
        return public_key_from_spki(&der);
    }
    public_key_from_spki(input)
}

/// Accepts: raw 32-byte seed; DER/PEM PKCS#8 v1 and v2 (RFC 8410
/// OneAsymmetricKey with the `[1]` public key, which must match the seed).
pub fn private_key_from_any(input: &[u8]) -> Result<SeedBytes> {
    if input.len() == 32 {
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(input);
        return Ok(seed);
    }
    if looks_like_pem(input) {
        let (label, der) = parse_pem(input)?;
        if label != PRIVATE_LABEL {
            return Err(wrong_label(&label, PRIVATE_LABEL));
        }
        return seed_from_pkcs8(&der);
    }
    seed_from_pkcs8(input)
}

fn to_pem(label: &str, der: &[u8]) -> String {
    // base64 output is ASCII, so splitting at byte offsets is safe.
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn looks_like_pem(input: &[u8]) -> bool {
    input.trim_ascii_start().starts_with(b"-----BEGIN ")
}

fn wrong_label(found: &str, expected: &str) -> CoreError {
    if found == "ENCRYPTED PRIVATE KEY" {
        return CoreError::InvalidKey(
            "PEM label is ENCRYPTED PRIVATE KEY, expected PRIVATE KEY (encrypted PKCS#8 is not supported)"
                .to_string(),
        );
    }
    CoreError::InvalidKey(format!("PEM label is {found}, expected {expected}"))
}

/// Parses exactly one PEM block; returns its label and decoded body.
fn parse_pem(input: &[u8]) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let bad = |what: &str| CoreError::InvalidKey(format!("malformed PEM: {what}"));
    let text = std::str::from_utf8(input)
        .map_err(|_| bad("not UTF-8 text"))?
        .trim();
    let rest = text
        .strip_prefix("-----BEGIN ")
        .ok_or_else(|| bad("missing BEGIN line"))?;
    let label_end = rest
        .find("-----")
        .ok_or_else(|| bad("unterminated BEGIN line"))?;
    let label = &rest[..label_end];
    // Only echo labels that look like labels; the text might be anything.
    if label.is_empty()
        || label.len() > 40
        || !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
    {
        return Err(bad("unrecognised BEGIN label"));
    }
    let rest = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find("-----").ok_or_else(|| bad("missing END line"))?;
    if &rest[body_end..] != end_marker.as_str() {
        return Err(bad(
            "END line does not match BEGIN line or is followed by more data",
        ));
    }
    let body: Zeroizing<String> = Zeroizing::new(
        rest[..body_end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| bad("body is not valid base64"))?;
    Ok((label.to_string(), Zeroizing::new(der)))
}

fn public_key_from_spki(der: &[u8]) -> Result<PublicKey> {
    match der.strip_prefix(&SPKI_PREFIX[..]) {
        Some(pk) if pk.len() == 32 => PublicKey::from_bytes(pk),
        _ => Err(CoreError::InvalidKey(
            "expected an Ed25519 public key (raw 32 bytes, or SubjectPublicKeyInfo DER/PEM)"
                .to_string(),
        )),
    }
}

/// Minimal DER reader: enough for PKCS#8, rejects non-minimal/indefinite lengths.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads one tag-length-value; `None` if truncated or badly encoded.
    fn read(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0..=0x7f => (first as usize, rest),
            0x81 => {
                let (&b, rest) = rest.split_first()?;
                if b < 0x80 {
                    return None;
                }
                (b as usize, rest)
            }
            0x82 => {
                if rest.len() < 2 || rest[0] == 0 {
                    return None;
                }
                ((rest[0] as usize) << 8 | rest[1] as usize, &rest[2..])
            }
            _ => return None,
        };
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.0 = rest;
        Some((tag, value))
    }
}

fn seed_from_pkcs8(der: &[u8]) -> Result<SeedBytes> {
    let not_pkcs8 = || CoreError::InvalidKey("expected an Ed25519 PKCS#8 private key".to_string());
    let bad =
        |what: &str| CoreError::InvalidKey(format!("invalid Ed25519 PKCS#8 private key: {what}"));

    let mut outer = Der(der);
    let content = match outer.read() {
        Some((0x30, c)) if outer.is_empty() => c,
        _ => return Err(not_pkcs8()),
    };
    let mut seq = Der(content);
    let version = match seq.read() {
        Some((0x02, [0])) => 0,
        Some((0x02, [1])) => 1,
        Some((0x02, _)) => return Err(bad("unsupported version (expected v1 or v2)")),
        _ => return Err(not_pkcs8()),
    };
    match seq.read() {
        Some((0x30, alg)) if alg == ED25519_ALG_CONTENT => {}
        Some((0x30, _)) => return Err(bad("algorithm is not Ed25519 (OID 1.3.101.112)")),
        _ => return Err(not_pkcs8()),
    }
    // privateKey OCTET STRING wraps CurvePrivateKey ::= OCTET STRING (32-byte seed).
    let seed_bytes = match seq.read() {
        Some((0x04, [0x04, 0x20, s @ ..])) if s.len() == 32 => s,
        Some((0x04, _)) => return Err(bad("private key is not a 32-byte Ed25519 seed")),
        _ => return Err(not_pkcs8()),
    };
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(seed_bytes);

    if seq.peek_tag() == Some(0xa0) {
        seq.read().ok_or_else(|| bad("truncated attributes"))?;
    }
    if let Some(tag @ (0x81 | 0xa1)) = seq.peek_tag() {
        if version != 1 {
            return Err(bad("a version 1 (v1) key must not contain a public key"));
        }
        let (_, value) = seq.read().ok_or_else(|| bad("truncated public key"))?;
        // RFC 8410 uses IMPLICIT [1] BIT STRING (0x81); some writers wrap it explicitly (0xa1).
        let bits = if tag == 0x81 {
            value
        } else {
            let mut inner = Der(value);
            match inner.read() {
                Some((0x03, b)) if inner.is_empty() => b,
                _ => return Err(bad("malformed embedded public key")),
            }
        };
        let pk = match bits {
            [0x00, pk @ ..] if pk.len() == 32 => pk,
            _ => return Err(bad("embedded public key is not 32 bytes")),
        };
        if pk != public_key_of(&seed) {
            return Err(bad("embedded public key does not match the private key"));
        }
    }
    if !seq.is_empty() {
        return Err(bad("unexpected trailing fields"));
    }
    Ok(seed)
}
