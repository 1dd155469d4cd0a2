//! Ed25519 key generation, validation, fingerprints, signing and strict
//! verification (ed25519-dalek).

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::digest::{sha256, to_hex};
use crate::error::{CoreError, Result};

/// A raw 32-byte Ed25519 public key.
pub type PublicKeyBytes = [u8; 32];
/// A raw 32-byte Ed25519 seed (the private key); wiped on drop.
pub type SeedBytes = Zeroizing<[u8; 32]>;

/// Generates a fresh key pair from the OS CSPRNG.
pub fn generate_keypair() -> (SeedBytes, PublicKeyBytes) {
    let sk = SigningKey::generate(&mut OsRng);
    let seed = Zeroizing::new(sk.to_bytes());
    (seed, sk.verifying_key().to_bytes())
}

/// The public key belonging to `seed`.
pub fn public_key_of(seed: &[u8; 32]) -> PublicKeyBytes {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// An Ed25519 public key that decompressed and is not weak: parsed once, then used for any
/// number of verifications without decompressing it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Must be exactly 32 bytes, must decompress, must not be weak (small order).
    pub fn from_bytes(raw: &[u8]) -> Result<PublicKey> {
        let bytes: [u8; 32] = raw.try_into().map_err(|_| {
            CoreError::InvalidKey(format!("public key must be 32 bytes, got {}", raw.len()))
        })?;
        let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            CoreError::InvalidKey("public key is not a valid Ed25519 curve point".to_string())
        })?;
        // A small-order key makes every signature trivially forgeable for some messages.
        if vk.is_weak() {
            return Err(CoreError::InvalidKey(
                "public key is a weak (small-order) Ed25519 point".to_string(),
            ));
        }
        Ok(PublicKey(vk))
    }

    pub fn to_bytes(&self) -> PublicKeyBytes {
        self.0.to_bytes()
    }

    /// Strict Ed25519 verification (`verify_strict`: canonical S, no small-order R or key).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let sig: [u8; 64] = signature.try_into().map_err(|_| {
            CoreError::InvalidSignature(format!(
                "signature must be 64 bytes, got {}",
                signature.len()
            ))
        })?;
        self.0
            .verify_strict(message, &Signature::from_bytes(&sig))
            .map_err(|_| {
                CoreError::InvalidSignature("Ed25519 signature verification failed".to_string())
            })
    }
}

/// Parses and validates a public key (see [`PublicKey::from_bytes`]); returns its raw bytes.
pub fn validate_public_key(raw: &[u8]) -> Result<PublicKeyBytes> {
    PublicKey::from_bytes(raw).map(|key| key.to_bytes())
}

/// Lowercase hex SHA-256 of the raw 32 public key bytes.
pub fn fingerprint(public_key: &[u8; 32]) -> String {
    to_hex(&sha256(public_key))
}

/// Ed25519 (pure, RFC 8032) signature of `message` by `seed`.
pub fn sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    // SigningKey wipes its copy of the secret on drop (dalek "zeroize" feature).
    SigningKey::from_bytes(seed).sign(message).to_bytes()
}

/// Ed25519 signatures of each of `messages` by `seed`: the key is expanded (its public key derived)
/// once for all of them, which is most of the cost of signing one short message.
pub fn sign_each<'a>(
    seed: &[u8; 32],
    messages: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<[u8; 64]> {
    let key = SigningKey::from_bytes(seed);
    messages
        .into_iter()
        .map(|message| key.sign(message).to_bytes())
        .collect()
}

/// Strict verification with a raw 32-byte public key (validated first).
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<()> {
    PublicKey::from_bytes(public_key)?.verify(message, signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_each_signs_as_sign_does() {
        let (seed, pk) = generate_keypair();
        let messages: [&[u8]; 2] = [b"first", b"second"];
        let signatures = sign_each(&seed, messages);
        assert_eq!(signatures.len(), 2);
        for (message, signature) in messages.iter().zip(&signatures) {
            assert_eq!(*signature, sign(&seed, message));
            verify(&pk, message, signature).unwrap();
        }
    }

    #[test]
    fn generate_sign_verify() {
        let (seed, pk) = generate_keypair();
        assert_eq!(public_key_of(&seed), pk);
        let sig = sign(&seed, b"hello");
        verify(&pk, b"hello", &sig).unwrap();
        let e = verify(&pk, b"hellp", &sig).unwrap_err();
        assert_eq!(e.code(), "INVALID_SIGNATURE");
        let e = verify(&pk, b"hello", &sig[..63]).unwrap_err();
        assert!(e.to_string().contains("64 bytes"), "{e}");
        let (_, pk2) = generate_keypair();
        assert_ne!(pk, pk2);
        assert_eq!(fingerprint(&pk).len(), 64);
    }

    #[test]
    fn wrong_length_key() {
        let e = validate_public_key(&[1u8; 31]).unwrap_err();
        assert_eq!(e.code(), "INVALID_KEY");
        assert!(e.to_string().contains("32 bytes"));
    }

    #[test]
    fn weak_keys_rejected() {
        // Identity point and the order-2 point (-1,0) encodings: both small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let e = validate_public_key(&identity).unwrap_err();
        assert_eq!(e.code(), "INVALID_KEY");
        assert!(e.to_string().contains("weak"), "{e}");
        let mut order2 = [0xffu8; 32];
        order2[0] = 0xec;
        order2[31] = 0x7f;
        assert!(validate_public_key(&order2).is_err());
        // verify() rejects a weak key before looking at the signature.
        assert_eq!(
            verify(&identity, b"m", &[0u8; 64]).unwrap_err().code(),
            "INVALID_KEY"
        );
    }

    #[test]
    fn non_point_rejected() {
        // y = 2 is not on the curve (no x satisfies the equation).
        let mut b = [0u8; 32];
        b[0] = 2;
        let e = validate_public_key(&b).unwrap_err();
        assert!(e.to_string().contains("curve point"), "{e}");
    }
}
