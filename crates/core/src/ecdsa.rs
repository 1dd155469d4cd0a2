//! ECDSA P-256 with SHA-256, for keys and signatures made by cosign (`cosign.pub`, `cosign
//! sign-blob`). Verification only: cloacina-sign signs with Ed25519.
//!
//! # Keys
//!
//! A P-256 public key is read from its SubjectPublicKeyInfo (what `cosign.pub` and `openssl ec
//! -pubout` hold), DER exactly: `SEQUENCE { SEQUENCE { OID id-ecPublicKey (1.2.840.10045.2.1),
//! OID prime256v1 (1.2.840.10045.3.1.7) }, BIT STRING (0 unused bits) 0x04 || X || Y }`. As Go's
//! `x509.ParsePKIXPublicKey` (which cosign uses), only the uncompressed point form is read; the
//! coordinates must be below the field prime and the point on the curve. A compressed or hybrid
//! point, the point at infinity, explicit curve parameters, another curve, trailing bytes or a
//! non-DER length are `INVALID_KEY`. The key's stored form is exactly these 91 bytes, and its
//! fingerprint is their SHA-256.
//!
//! # Signatures
//!
//! A signature is `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` in DER, over the SHA-256
//! of the signed bytes. Read exactly as Go's `ecdsa.VerifyASN1` reads it: short-form lengths only
//! (every valid P-256 signature is shorter than 128 bytes, so a long form is BER), minimal positive
//! integers (no superfluous leading zero, no missing one: a value with its top bit set is
//! negative), nothing after `s` or after the SEQUENCE, and `1 <= r, s < n`. Both `s` and `n - s`
//! verify: like Go, no low-S form is required.

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::ecdsa::{Signature, VerifyingKey};

use crate::der::{self, tlv};
use crate::digest::{sha256, Digest};
use crate::error::{CoreError, Result};

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point; the 65 point bytes follow.
pub const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Length of the SubjectPublicKeyInfo DER of a P-256 key (the stored form).
pub const SPKI_LEN: usize = SPKI_PREFIX.len() + 65;
/// OID id-ecPublicKey (1.2.840.10045.2.1), tag and length included.
pub const EC_PUBLIC_KEY_OID: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID prime256v1 / secp256r1 (1.2.840.10045.3.1.7), tag and length included.
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// Longest DER ECDSA-Sig-Value of P-256: two 33-byte INTEGERs.
pub const MAX_DER_SIGNATURE_LEN: usize = 2 + 2 * (2 + 33);

fn invalid_key(what: impl std::fmt::Display) -> CoreError {
    CoreError::InvalidKey(format!("invalid ECDSA P-256 public key: {what}"))
}

/// Whether `der` starts like a SubjectPublicKeyInfo whose algorithm is id-ecPublicKey (any curve, any
/// point form, complete or not): such input is read by [`P256PublicKey::from_spki_der`], whose errors
/// say what is wrong (rather than the Ed25519 reader's, which would not name the algorithm).
pub fn is_ec_spki(der: &[u8]) -> bool {
    match der::header(der) {
        Some((0x30, content)) => matches!(
            der::header(content),
            Some((0x30, algorithm)) if algorithm.starts_with(&EC_PUBLIC_KEY_OID)
        ),
        _ => false,
    }
}

/// An ECDSA P-256 public key whose point is on the curve (and not the point at infinity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct P256PublicKey(VerifyingKey);

impl P256PublicKey {
    /// Reads a SubjectPublicKeyInfo DER (see the module documentation).
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let Some((0x30, content, trailing)) = tlv(der) else {
            return Err(invalid_key("not a DER SubjectPublicKeyInfo"));
        };
        if !trailing.is_empty() {
            return Err(invalid_key("bytes after the SubjectPublicKeyInfo"));
        }
        let Some((0x30, algorithm, rest)) = tlv(content) else {
            return Err(invalid_key("no AlgorithmIdentifier"));
        };
        let Some(curve) = algorithm.strip_prefix(&EC_PUBLIC_KEY_OID[..]) else {
            return Err(invalid_key("the algorithm is not id-ecPublicKey"));
        };
        if curve != P256_OID {
            return Err(invalid_key(
                "the curve is not P-256 (prime256v1, named by its OID; explicit parameters are not read)",
            ));
        }
        let Some((0x03, bits, after)) = tlv(rest) else {
            return Err(invalid_key("no BIT STRING holding the point"));
        };
        if !after.is_empty() {
            return Err(invalid_key("fields after the public key"));
        }
        let point = match bits {
            [0x00, point @ ..] => point,
            _ => return Err(invalid_key("the BIT STRING has unused bits")),
        };
        Self::from_uncompressed_point(point)
    }

    /// Reads a SEC1 uncompressed point `0x04 || X || Y` (65 bytes), as Go's `elliptic.Unmarshal`.
    pub fn from_uncompressed_point(point: &[u8]) -> Result<Self> {
        match point {
            [] => Err(invalid_key("the point is empty")),
            [0x00] => Err(invalid_key("the point at infinity is not a public key")),
            [0x02 | 0x03, ..] => Err(invalid_key(
                "a compressed point (cosign and Go read uncompressed points only: 0x04 || X || Y)",
            )),
            [0x04, ..] if point.len() == 65 => VerifyingKey::from_sec1_bytes(point)
                .map(P256PublicKey)
                .map_err(|_| {
                    invalid_key("the point is not on the curve (or a coordinate is not below the field prime)")
                }),
            [0x04, ..] => Err(invalid_key(format!(
                "an uncompressed point is 65 bytes, got {}",
                point.len()
            ))),
            _ => Err(invalid_key(
                "the point is not in uncompressed form (0x04 || X || Y)",
            )),
        }
    }

    /// The uncompressed point `0x04 || X || Y`.
    pub fn uncompressed_point(&self) -> [u8; 65] {
        let encoded = self.0.to_encoded_point(false);
        let mut out = [0u8; 65];
        out.copy_from_slice(encoded.as_bytes());
        out
    }

    /// The SubjectPublicKeyInfo DER: the key's stored form (91 bytes).
    pub fn spki_der(&self) -> [u8; SPKI_LEN] {
        let mut out = [0u8; SPKI_LEN];
        out[..SPKI_PREFIX.len()].copy_from_slice(&SPKI_PREFIX);
        out[SPKI_PREFIX.len()..].copy_from_slice(&self.uncompressed_point());
        out
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER.
    pub fn fingerprint(&self) -> [u8; 32] {
        sha256(&self.spki_der())
    }

    /// Verifies an ECDSA signature over a SHA-256 digest (either S form).
    pub fn verify_digest(&self, digest: &Digest, signature: &EcdsaSignature) -> Result<()> {
        self.0.verify_prehash(digest, &signature.0).map_err(|_| {
            CoreError::InvalidSignature("ECDSA P-256 signature verification failed".to_string())
        })
    }
}

/// A parsed ECDSA P-256 signature: `1 <= r, s < n`, read from strict DER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcdsaSignature(Signature);

fn malformed(what: impl std::fmt::Display) -> CoreError {
    CoreError::MalformedSignature(format!("invalid DER ECDSA signature: {what}"))
}

/// One positive INTEGER in minimal DER, as 32 big-endian bytes; `name` for messages.
fn integer<'a>(input: &'a [u8], name: &str) -> Result<([u8; 32], &'a [u8])> {
    let (&tag, rest) = input
        .split_first()
        .ok_or_else(|| malformed(format!("{name} is missing")))?;
    if tag != 0x02 {
        return Err(malformed(format!(
            "{name} is not an INTEGER (tag 0x{tag:02x})"
        )));
    }
    let (&len, rest) = rest
        .split_first()
        .ok_or_else(|| malformed(format!("{name} is truncated")))?;
    if len >= 0x80 {
        return Err(malformed(format!(
            "the length of {name} is not in DER short form (BER)"
        )));
    }
    let len = len as usize;
    if rest.len() < len {
        return Err(malformed(format!("{name} is truncated")));
    }
    let (value, rest) = rest.split_at(len);
    match value {
        [] => return Err(malformed(format!("{name} is empty"))),
        [first, ..] if first & 0x80 != 0 => {
            return Err(malformed(format!(
                "{name} is negative (a leading zero byte is missing)"
            )))
        }
        [0x00, second, ..] if second & 0x80 == 0 => {
            return Err(malformed(format!(
                "{name} has a superfluous leading zero byte (not minimal DER)"
            )))
        }
        _ => {}
    }
    let digits = match value {
        [0x00, digits @ ..] => digits,
        digits => digits,
    };
    if digits.len() > 32 {
        return Err(malformed(format!("{name} is out of range (over 256 bits)")));
    }
    let mut out = [0u8; 32];
    out[32 - digits.len()..].copy_from_slice(digits);
    Ok((out, rest))
}

impl EcdsaSignature {
    /// Reads `SEQUENCE { r INTEGER, s INTEGER }` in strict DER (see the module documentation).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (&tag, rest) = der.split_first().ok_or_else(|| malformed("empty"))?;
        if tag != 0x30 {
            return Err(malformed(format!("not a SEQUENCE (tag 0x{tag:02x})")));
        }
        let (&len, rest) = rest.split_first().ok_or_else(|| malformed("truncated"))?;
        if len >= 0x80 {
            return Err(malformed(
                "the SEQUENCE length is not in DER short form (BER)",
            ));
        }
        let len = len as usize;
        if rest.len() < len {
            return Err(malformed("truncated"));
        }
        if rest.len() > len {
            return Err(malformed(format!(
                "{} bytes after the SEQUENCE",
                rest.len() - len
            )));
        }
        let (r, rest) = integer(rest, "r")?;
        let (s, rest) = integer(rest, "s")?;
        if !rest.is_empty() {
            return Err(malformed("fields after s in the SEQUENCE"));
        }
        Signature::from_scalars(r, s)
            .map(EcdsaSignature)
            .map_err(|_| malformed("r or s is zero, or not below the group order"))
    }

    /// The DER encoding (minimal; what [`EcdsaSignature::from_der`] accepts).
    pub fn to_der(&self) -> Vec<u8> {
        self.0.to_der().as_bytes().to_vec()
    }

    /// `r` and `s`, 32 big-endian bytes each.
    pub fn scalars(&self) -> ([u8; 32], [u8; 32]) {
        let (r, s) = self.0.split_bytes();
        (r.into(), s.into())
    }
}

/// Verifies a DER ECDSA P-256 signature over a SHA-256 digest with a SubjectPublicKeyInfo key.
pub fn verify_digest_der(spki_der: &[u8], digest: &Digest, signature_der: &[u8]) -> Result<()> {
    let key = P256PublicKey::from_spki_der(spki_der)?;
    let signature = EcdsaSignature::from_der(signature_der).map_err(|e| match e {
        CoreError::MalformedSignature(m) => CoreError::InvalidSignature(m),
        other => other,
    })?;
    key.verify_digest(digest, &signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_prefix_is_der_of_the_algorithm() {
        assert_eq!(SPKI_LEN, 91);
        // The prefix alone is a truncated P-256 key: recognized, and refused as not DER.
        assert!(is_ec_spki(&SPKI_PREFIX));
        assert_eq!(
            P256PublicKey::from_spki_der(&SPKI_PREFIX)
                .unwrap_err()
                .code(),
            "INVALID_KEY"
        );
        assert!(!is_ec_spki(&[0x30, 0x03, 0x30, 0x01, 0x06]));
        assert_eq!(&SPKI_PREFIX[4..13], &EC_PUBLIC_KEY_OID);
        assert_eq!(&SPKI_PREFIX[13..23], &P256_OID);
    }

    #[test]
    fn integers_must_be_minimal_and_positive() {
        assert!(integer(&[0x02, 0x01, 0x01], "r").is_ok());
        assert!(integer(&[0x02, 0x02, 0x00, 0x80], "r").is_ok());
        for bad in [
            &[0x02, 0x00][..],
            &[0x02, 0x01, 0x80],
            &[0x02, 0x02, 0x00, 0x01],
            &[0x02, 0x81, 0x01, 0x01],
            &[0x03, 0x01, 0x01],
            &[0x02, 0x02, 0x01],
        ] {
            assert!(integer(bad, "r").is_err(), "{bad:02x?}");
        }
    }
}
