//! Key encodings: raw bytes, DER and PEM (SPKI / PKCS#8) of Ed25519 keys, and the SPKI of ECDSA
//! P-256 public keys (`cosign.pub`; see [`parse_verification_key`] and [`crate::ecdsa`]).
//!
//! DER is written by hand because ed25519-dalek's own PKCS#8 output is v2
//! (with the public key), which OpenSSL 3.0 rejects; we write v1 and read both.
//!
//! # How key input is read (`public_key_from_any`, `parse_public_key`, `private_key_from_any`)
//!
//! The form is decided from the bytes before anything is parsed, and only that form is tried:
//!
//! 1. **PEM**: the input, after optional leading whitespace, begins with `-----` (five hyphens,
//!    as every PEM boundary line does; or is one to four hyphens and nothing else). It must be
//!    exactly one complete PEM block with the expected label (`PUBLIC KEY` / `PRIVATE KEY`) and
//!    nothing around it but whitespace. A truncated or garbled PEM is `INVALID_KEY` "incomplete
//!    or invalid PEM: ...", never a raw key or DER, whatever its length (also exactly 32 bytes).
//!    Another label is refused and says what the text is ("this is a private key, not a public
//!    key" and vice versa), even when the rest of the block is cut off.
//! 2. **Raw**: exactly 32 bytes that do not look like PEM text are the raw key (public key or
//!    seed), even when they happen to be printable ASCII. 32 bytes look like PEM text, and are
//!    refused as incomplete or invalid PEM, when they contain `-----` anywhere (a piece of a
//!    boundary line, e.g. a PEM with text before its BEGIN line or cut at the front) or are base64
//!    whose decoding starts like an Ed25519 DER key (a PEM body without its BEGIN/END lines).
//!    32 bytes that themselves start like an Ed25519 DER key (a SEQUENCE holding the Ed25519
//!    AlgorithmIdentifier in its first 20 bytes) are refused as incomplete DER. A random 32-byte
//!    key meets one of these by chance with probability below 2^-35.
//! 3. **DER**: any other length is SubjectPublicKeyInfo / PKCS#8 (v1 or v2) DER. When it is not
//!    valid DER but contains `-----`, the error describes it as invalid PEM.
//!
//! Empty or whitespace-only input is refused as an empty key. A DER or PEM private key given
//! where a public key is expected (and vice versa) is refused saying so. No error message
//! contains key material.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::der;
use crate::ecdsa::{is_ec_spki, P256PublicKey, EC_PUBLIC_KEY_OID};
use crate::error::{CoreError, Result};
use crate::keys::{public_key_of, PublicKey, PublicKeyBytes, SeedBytes};
use crate::verification_key::VerificationKey;

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

/// Reads a public key given as PEM SPKI (tolerant of CRLF, surrounding whitespace and line
/// lengths), raw 32 bytes or DER SPKI, decided as the module documentation describes. The key
/// is then checked by [`PublicKey::from_bytes`].
pub fn public_key_from_any(input: &[u8]) -> Result<PublicKeyBytes> {
    parse_public_key(input).map(|key| key.to_bytes())
}

/// [`public_key_from_any`], keeping the parsed key for verification.
pub fn parse_public_key(input: &[u8]) -> Result<PublicKey> {
    match form_of(input)? {
        Form::Pem => {
            let der = pem_body(input, PUBLIC_LABEL)?;
            match spki_key(&der) {
                Some(pk) => PublicKey::from_bytes(pk),
                None if pkcs8_is_valid(&der) => Err(private_given_as_public("the PEM body")),
                None => Err(CoreError::InvalidKey(
                    "the PEM body is not an Ed25519 SubjectPublicKeyInfo".to_string(),
                )),
            }
        }
        Form::Raw => PublicKey::from_bytes(input).map_err(|e| match e {
            CoreError::InvalidKey(m) => {
                CoreError::InvalidKey(format!("{m} (32 bytes are read as a raw key)"))
            }
            other => other,
        }),
        Form::Der => match spki_key(input) {
            Some(pk) => PublicKey::from_bytes(pk),
            None => Err(pem_error_if_text(input).unwrap_or_else(|| {
                if pkcs8_is_valid(input) {
                    private_given_as_public("this DER")
                } else {
                    CoreError::InvalidKey(format!(
                        "expected an Ed25519 public key (raw 32 bytes, or SubjectPublicKeyInfo DER/PEM), got {}",
                        describe_len(input)
                    ))
                }
            })),
        },
    }
}

/// Reads a public key of either algorithm: an ECDSA P-256 SubjectPublicKeyInfo (PEM or DER; the
/// `cosign.pub` format, read strictly by [`P256PublicKey::from_spki_der`]), or an Ed25519 key in
/// any form [`parse_public_key`] reads (with its errors). The form is decided as the module
/// documentation describes; a SubjectPublicKeyInfo whose algorithm is id-ecPublicKey is a P-256
/// key or an error saying why not (another curve, a compressed point, a point not on the curve).
pub fn parse_verification_key(input: &[u8]) -> Result<VerificationKey> {
    let ec_der: Option<Zeroizing<Vec<u8>>> = match form_of(input) {
        Ok(Form::Pem) => match parse_pem(input) {
            Ok((label, Ok(body))) if label == PUBLIC_LABEL && is_ec_spki(&body) => Some(body),
            _ => None,
        },
        Ok(Form::Der) if is_ec_spki(input) => Some(Zeroizing::new(input.to_vec())),
        _ => None,
    };
    match ec_der {
        Some(der) => P256PublicKey::from_spki_der(&der).map(VerificationKey::EcdsaP256),
        None => parse_public_key(input).map(VerificationKey::Ed25519),
    }
}

/// SubjectPublicKeyInfo PEM of a key of either algorithm.
pub fn verification_key_to_pem(key: &VerificationKey) -> String {
    match key {
        VerificationKey::Ed25519(key) => public_key_to_pem(&key.to_bytes()),
        VerificationKey::EcdsaP256(key) => to_pem(PUBLIC_LABEL, &key.spki_der()),
    }
}

/// Reads a private key given as PEM PKCS#8, a raw 32-byte seed or DER PKCS#8, decided as the
/// module documentation describes. PKCS#8 v1 and v2 (RFC 8410 OneAsymmetricKey with the `[1]`
/// public key, which must match the seed) are read.
pub fn private_key_from_any(input: &[u8]) -> Result<SeedBytes> {
    match form_of(input)? {
        Form::Pem => {
            let der = pem_body(input, PRIVATE_LABEL)?;
            seed_from_pkcs8(&der).map_err(|e| match e {
                Pkcs8Error::NotPkcs8 if spki_key(&der).is_some() => {
                    public_given_as_private("the PEM body")
                }
                Pkcs8Error::NotPkcs8 => CoreError::InvalidKey(
                    "the PEM body is not an Ed25519 PKCS#8 private key".to_string(),
                ),
                Pkcs8Error::Invalid(e) => e,
            })
        }
        Form::Raw => {
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(input);
            Ok(seed)
        }
        Form::Der => seed_from_pkcs8(input).map_err(|e| match e {
            Pkcs8Error::NotPkcs8 => pem_error_if_text(input).unwrap_or_else(|| {
                if spki_key(input).is_some() {
                    public_given_as_private("this DER")
                } else {
                    CoreError::InvalidKey(format!(
                        "expected an Ed25519 private key (raw 32-byte seed, or PKCS#8 DER/PEM), got {}",
                        describe_len(input)
                    ))
                }
            }),
            Pkcs8Error::Invalid(e) => e,
        }),
    }
}

/// How a key input is read; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Pem,
    Raw,
    Der,
}

const BOUNDARY: &[u8] = b"-----";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Decides the form from the bytes alone, before any parsing (the rule in the module docs).
fn form_of(input: &[u8]) -> Result<Form> {
    let text = input.trim_ascii();
    if text.is_empty() {
        return Err(CoreError::InvalidKey(if input.is_empty() {
            "the key is empty (0 bytes)".to_string()
        } else {
            format!("the key is empty (only whitespace, {} bytes)", input.len())
        }));
    }
    // A shorter run of hyphens is a BEGIN line cut off early.
    if text.starts_with(BOUNDARY) || BOUNDARY.starts_with(text) {
        return Ok(Form::Pem);
    }
    if input.len() == 32 {
        if contains(input, BOUNDARY) || looks_like_pem_body(input) {
            return Ok(Form::Pem);
        }
        if looks_like_der_key(input) {
            return Err(CoreError::InvalidKey(
                "incomplete DER: 32 bytes that begin like an Ed25519 DER key (truncated?), not a raw key"
                    .to_string(),
            ));
        }
        return Ok(Form::Raw);
    }
    Ok(Form::Der)
}

/// The start of an Ed25519 SubjectPublicKeyInfo or PKCS#8 DER: a SEQUENCE whose first 20 bytes
/// hold the Ed25519 AlgorithmIdentifier (SEQUENCE { OID 1.3.101.112 }).
fn looks_like_der_key(bytes: &[u8]) -> bool {
    const ALGORITHM: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
    bytes.first() == Some(&0x30) && contains(&bytes[..bytes.len().min(20)], &ALGORITHM)
}

/// Base64 text (whitespace ignored) that decodes to the start of an Ed25519 DER key: the body
/// of a PEM file without its BEGIN/END lines.
fn looks_like_pem_body(input: &[u8]) -> bool {
    // Might be key material: wiped on drop.
    let chars: Zeroizing<Vec<u8>> = Zeroizing::new(
        input
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect(),
    );
    let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    let usable = chars.len() / 4 * 4;
    if usable < 16 || !chars[..usable].iter().all(is_b64) {
        return false;
    }
    match STANDARD.decode(&chars[..usable]).map(Zeroizing::new) {
        Ok(der) => looks_like_der_key(&der),
        Err(_) => false,
    }
}

/// The length of input that is no key form, with a hint for the usual careless cases.
fn describe_len(input: &[u8]) -> String {
    let n = input.len();
    let text = input.trim_ascii();
    if (n == 33 && input.ends_with(b"\n")) || (n == 34 && input.ends_with(b"\r\n")) {
        format!("{n} bytes (a raw key is exactly 32 bytes: is there a trailing newline?)")
    } else if text.len() == 64 && text.iter().all(u8::is_ascii_hexdigit) {
        format!("{n} bytes of hex text (a raw key is 32 bytes, not its hex encoding)")
    } else {
        format!("{n} bytes that are none of these")
    }
}

fn private_given_as_public(what: &str) -> CoreError {
    CoreError::InvalidKey(format!(
        "{what} is an Ed25519 private key (PKCS#8), expected a public key"
    ))
}

fn public_given_as_private(what: &str) -> CoreError {
    CoreError::InvalidKey(format!(
        "{what} is an Ed25519 public key (SubjectPublicKeyInfo), expected a private key"
    ))
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

/// Why an ECDSA (P-256, cosign) private key is refused where a signing key is expected.
const ECDSA_CANNOT_SIGN: &str = "cloacina-sign signs with Ed25519 only (ECDSA P-256 keys are \
     verification keys: trust the public key, e.g. cosign.pub, to verify cosign signatures)";

fn wrong_label(found: &str, expected: &str) -> CoreError {
    let kind = match found {
        "PRIVATE KEY"
        | "ENCRYPTED PRIVATE KEY"
        | "OPENSSH PRIVATE KEY"
        | "EC PRIVATE KEY"
        | "RSA PRIVATE KEY" => Some("a private key"),
        "PUBLIC KEY" | "RSA PUBLIC KEY" | "SSH2 PUBLIC KEY" => Some("a public key"),
        "CERTIFICATE" => Some("a certificate"),
        _ => None,
    };
    let wanted = if expected == PUBLIC_LABEL {
        "a public key"
    } else {
        "a private key"
    };
    let mut msg = format!("PEM label is {found}, expected {expected}");
    if let Some(kind) = kind.filter(|k| *k != wanted) {
        msg.push_str(&format!(": this is {kind}, not {wanted}"));
    }
    if found == "ENCRYPTED PRIVATE KEY" {
        msg.push_str(" (encrypted PKCS#8 is not supported)");
    }
    // ECDSA private keys (OpenSSL's SEC1 form, cosign's encrypted cosign.key) are the likely mistake
    // of someone who verifies cosign signatures: say why they cannot sign.
    let ecdsa = matches!(
        found,
        "EC PRIVATE KEY"
            | "EC PARAMETERS"
            | "ENCRYPTED SIGSTORE PRIVATE KEY"
            | "ENCRYPTED COSIGN PRIVATE KEY"
    );
    if expected == PRIVATE_LABEL && ecdsa {
        msg.push_str(&format!(": an ECDSA key: {ECDSA_CANNOT_SIGN}"));
    }
    CoreError::InvalidKey(msg)
}

fn invalid_pem(what: &str) -> CoreError {
    CoreError::InvalidKey(format!("incomplete or invalid PEM: {what}"))
}

/// The decoded body of the one PEM block in `input`, which must carry `expected` as its label.
/// A wrong label is reported even when the rest of the block is cut off or garbled: the BEGIN
/// line alone says what the text is.
fn pem_body(input: &[u8], expected: &str) -> Result<Zeroizing<Vec<u8>>> {
    let (label, body) = parse_pem(input)?;
    if label != expected {
        return Err(wrong_label(&label, expected));
    }
    body
}

/// Parses exactly one PEM block. `Err` when not even the BEGIN line and its label can be read;
/// otherwise the label and the decoded body, or why the rest of the block is unusable.
fn parse_pem(input: &[u8]) -> Result<(String, Result<Zeroizing<Vec<u8>>>)> {
    let text = std::str::from_utf8(input.trim_ascii()).map_err(|_| invalid_pem("not text"))?;
    let Some(rest) = text.strip_prefix("-----BEGIN ") else {
        return Err(invalid_pem(if text.contains("-----BEGIN ") {
            "text before the -----BEGIN line"
        } else if "-----BEGIN ".starts_with(text) {
            "the -----BEGIN line is cut off (truncated?)"
        } else if text.contains("-----END") {
            "no -----BEGIN line (the start of the PEM text is missing?)"
        } else {
            "no -----BEGIN line"
        }));
    };
    let Some(label_end) = rest.find("-----") else {
        return Err(invalid_pem("the -----BEGIN line is cut off (truncated?)"));
    };
    let label = &rest[..label_end];
    // Only echo labels that look like labels; the text might be anything.
    if label.is_empty()
        || label.len() > 40
        || !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
    {
        return Err(invalid_pem("unrecognised -----BEGIN label"));
    }
    Ok((
        label.to_string(),
        pem_block_body(label, &rest[label_end + 5..]),
    ))
}

/// The rest of a PEM block after its BEGIN line: base64 body, then exactly the END line.
fn pem_block_body(label: &str, rest: &str) -> Result<Zeroizing<Vec<u8>>> {
    let end_marker = format!("-----END {label}-----");
    let Some(body_end) = rest.find("-----") else {
        return Err(invalid_pem(&format!("no {end_marker} line (truncated?)")));
    };
    let tail = &rest[body_end..];
    if tail != end_marker {
        return Err(invalid_pem(&if end_marker.starts_with(tail) {
            format!("the {end_marker} line is cut off (truncated?)")
        } else if tail.starts_with(end_marker.as_str()) {
            format!("data after the {end_marker} line")
        } else {
            format!("the END line does not match the BEGIN line (expected {end_marker})")
        }));
    }
    let body: Zeroizing<String> = Zeroizing::new(
        rest[..body_end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    if body.is_empty() {
        return Err(invalid_pem("the body is empty"));
    }
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| invalid_pem("the body is not valid base64 (truncated or altered?)"))?;
    Ok(Zeroizing::new(der))
}

/// For text that failed as DER but carries a PEM boundary (text before the BEGIN line, a PEM
/// cut at the front): the PEM error, which says more than "not DER".
fn pem_error_if_text(input: &[u8]) -> Option<CoreError> {
    if !contains(input, BOUNDARY) || std::str::from_utf8(input).is_err() {
        return None;
    }
    match parse_pem(input) {
        Err(e) | Ok((_, Err(e))) => Some(e),
        Ok((_, Ok(_))) => None,
    }
}

/// The raw key of an Ed25519 SubjectPublicKeyInfo, if `der` is exactly one.
fn spki_key(der: &[u8]) -> Option<&[u8]> {
    der.strip_prefix(&SPKI_PREFIX[..])
        .filter(|pk| pk.len() == 32)
}

fn pkcs8_is_valid(der: &[u8]) -> bool {
    seed_from_pkcs8(der).is_ok()
}

/// Why DER is not an acceptable private key: not PKCS#8 at all (the caller says what it expected
/// or what it is instead), or a PKCS#8 structure that is wrong in a way worth naming.
enum Pkcs8Error {
    NotPkcs8,
    Invalid(CoreError),
}

fn seed_from_pkcs8(der: &[u8]) -> std::result::Result<SeedBytes, Pkcs8Error> {
    let not_pkcs8 = || Pkcs8Error::NotPkcs8;
    let bad = |what: &str| {
        Pkcs8Error::Invalid(CoreError::InvalidKey(format!(
            "invalid Ed25519 PKCS#8 private key: {what}"
        )))
    };

    let mut outer = der::Reader::new(der);
    let content = match outer.read() {
        Some((0x30, c)) if outer.is_empty() => c,
        _ => return Err(not_pkcs8()),
    };
    let mut seq = der::Reader::new(content);
    let version = match seq.read() {
        Some((0x02, [0])) => 0,
        Some((0x02, [1])) => 1,
        Some((0x02, _)) => return Err(bad("unsupported version (expected v1 or v2)")),
        _ => return Err(not_pkcs8()),
    };
    match seq.read() {
        Some((0x30, alg)) if alg == ED25519_ALG_CONTENT => {}
        // A P-256 key (`openssl pkey` of an `ecparam -genkey` key): say why it cannot sign.
        Some((0x30, alg)) if alg.starts_with(&EC_PUBLIC_KEY_OID) => {
            return Err(bad(&format!(
                "this is an ECDSA private key: {ECDSA_CANNOT_SIGN}"
            )))
        }
        Some((0x30, _)) => {
            return Err(bad(
                "algorithm is not Ed25519 (OID 1.3.101.112); cloacina-sign signs with Ed25519 only",
            ))
        }
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
            let mut inner = der::Reader::new(value);
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
