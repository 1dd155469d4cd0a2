//! AES-256-GCM sealing of private keys under a 32-byte key-encryption key.
//!
//! Format: `nonce (12) || ciphertext || tag (16)`, with a fresh random nonce
//! per seal. The associated data binds the sealed key to its context.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{CoreError, Result};

/// Nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// GCM tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Seals `plaintext` under `kek` (32 bytes) with a random 96-bit nonce from
/// the OS CSPRNG. Output = nonce(12) || ciphertext || tag(16).
pub fn seal(kek: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|_| CoreError::InvalidInput("the OS random number generator failed".into()))?;
    seal_with_nonce(kek, &nonce, plaintext, aad)
}

/// [`seal`] with a caller-chosen nonce. Only for known-answer tests: reusing a
/// nonce under the same KEK destroys GCM's security.
#[doc(hidden)]
pub fn seal_with_nonce(
    kek: &[u8],
    nonce: &[u8; 12],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let cipher = cipher(kek)?;
    // Sized up front so no reallocation leaves a plaintext copy in freed memory.
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut out[NONCE_LEN..])
        .map_err(|_| {
            // Only reachable for absurd (> 64 GiB) inputs; wipe the partial plaintext.
            zeroize::Zeroize::zeroize(&mut out);
            CoreError::InvalidInput("plaintext is too long to seal".into())
        })?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a [`seal`]ed blob. Any authentication failure (wrong KEK, wrong
/// `aad`, modified bytes) is `UnsealFailed` without saying which.
pub fn open(kek: &[u8], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let cipher = cipher(kek)?;
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CoreError::InvalidInput(format!(
            "sealed data must be at least {} bytes, got {}",
            NONCE_LEN + TAG_LEN,
            sealed.len()
        )));
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    // Decrypt inside a wiped buffer so no plaintext survives on any path.
    let mut buf = Zeroizing::new(ct.to_vec());
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut buf, tag.into())
        .map_err(|_| {
            CoreError::UnsealFailed(
                "wrong key-encryption key, wrong associated data, or corrupted sealed key".into(),
            )
        })?;
    Ok(buf)
}

fn cipher(kek: &[u8]) -> Result<Aes256Gcm> {
    if kek.len() != 32 {
        return Err(CoreError::InvalidInput(format!(
            "key-encryption key must be 32 bytes, got {}",
            kek.len()
        )));
    }
    Aes256Gcm::new_from_slice(kek)
        .map_err(|_| CoreError::InvalidInput("key-encryption key must be 32 bytes".into()))
}

/// Domain label of the associated data that binds a sealed private key to its database row.
const PRIVATE_KEY_AAD_LABEL: &[u8] = b"cloacina-sign/private-key/v1";

/// The associated data for a sealed private key: its key id, its organization and its public key,
/// length-prefixed so no two different rows can produce the same bytes. A ciphertext copied to
/// another row therefore does not open.
pub fn private_key_aad(key_id: &str, org_id: &str, public_key: &[u8]) -> Vec<u8> {
    let mut aad =
        Vec::with_capacity(PRIVATE_KEY_AAD_LABEL.len() + key_id.len() + org_id.len() + 56);
    for part in [
        PRIVATE_KEY_AAD_LABEL,
        key_id.as_bytes(),
        org_id.as_bytes(),
        public_key,
    ] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

/// Opens a sealed private key of a row, then re-derives its public key and compares it with the
/// stored one, so a row whose public key was altered cannot sign under the wrong identity.
pub fn open_private_key(
    kek: &[u8],
    sealed: &[u8],
    key_id: &str,
    org_id: &str,
    public_key: &[u8],
) -> Result<Zeroizing<[u8; 32]>> {
    let plaintext = open(kek, sealed, &private_key_aad(key_id, org_id, public_key))?;
    private_key_matching(&plaintext, public_key)
}

/// An opened private key (a 32-byte seed), once its public key is re-derived and equals the stored
/// one. Shared by every KEK source, software or token.
pub fn private_key_matching(plaintext: &[u8], public_key: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(plaintext.try_into().map_err(|_| {
        CoreError::UnsealFailed("the sealed private key has the wrong length".into())
    })?);
    if crate::keys::public_key_of(&seed).as_slice() != public_key {
        return Err(CoreError::UnsealFailed(
            "the unsealed private key does not match the stored public key".into(),
        ));
    }
    Ok(seed)
}
