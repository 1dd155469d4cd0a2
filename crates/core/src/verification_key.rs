//! A public key a signature may be verified with, of either algorithm: Ed25519 ([`crate::keys`])
//! or ECDSA P-256 ([`crate::ecdsa`]). Verification matches on it rather than on the key's bytes.

use crate::digest::{sha256, to_hex};
use crate::ecdsa::P256PublicKey;
use crate::keys::PublicKey;

/// The algorithm of a trusted public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519 (what cloacina-sign signs with).
    Ed25519,
    /// ECDSA P-256 with SHA-256 (cosign keys; verification only).
    EcdsaP256,
}

impl KeyAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
        }
    }
}

/// A public key a signature may be verified with: Ed25519 or ECDSA P-256.
///
/// Its stored form ([`VerificationKey::encoded`], what `trusted_keys.public_key` holds) is the raw 32
/// bytes of an Ed25519 key, and the 91-byte SubjectPublicKeyInfo DER of a P-256 key; the two never
/// collide (32 bytes are always read as a raw Ed25519 key, and a P-256 SubjectPublicKeyInfo is 91
/// bytes). The fingerprint is the SHA-256 of the stored form for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerificationKey {
    Ed25519(PublicKey),
    EcdsaP256(P256PublicKey),
}

impl From<PublicKey> for VerificationKey {
    fn from(key: PublicKey) -> Self {
        VerificationKey::Ed25519(key)
    }
}

impl From<P256PublicKey> for VerificationKey {
    fn from(key: P256PublicKey) -> Self {
        VerificationKey::EcdsaP256(key)
    }
}

impl VerificationKey {
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            VerificationKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            VerificationKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// The stored form: raw 32 bytes (Ed25519) or SubjectPublicKeyInfo DER (P-256).
    pub fn encoded(&self) -> Vec<u8> {
        match self {
            VerificationKey::Ed25519(key) => key.to_bytes().to_vec(),
            VerificationKey::EcdsaP256(key) => key.spki_der().to_vec(),
        }
    }

    /// SHA-256 of the stored form.
    pub fn fingerprint(&self) -> [u8; 32] {
        sha256(&self.encoded())
    }

    /// Lowercase hex of [`VerificationKey::fingerprint`].
    pub fn fingerprint_hex(&self) -> String {
        to_hex(&self.fingerprint())
    }

    /// The Ed25519 key, when it is one.
    pub fn ed25519(&self) -> Option<&PublicKey> {
        match self {
            VerificationKey::Ed25519(key) => Some(key),
            VerificationKey::EcdsaP256(_) => None,
        }
    }

    /// The P-256 key, when it is one.
    pub fn p256(&self) -> Option<&P256PublicKey> {
        match self {
            VerificationKey::EcdsaP256(key) => Some(key),
            VerificationKey::Ed25519(_) => None,
        }
    }
}
