//! The offline verification decision and digest signing.

use crate::digest::{to_hex, Digest};
use crate::error::{CoreError, Result};
use crate::keys::{self, PublicKey};
use crate::signature::DetachedSignature;

/// The offline verification decision for one signature over an already
/// computed package digest. Checks, in order: signer fingerprint
/// (`UntrustedSigner`), package hash (`TamperedPackage`), then the Ed25519
/// signature over the raw 32 digest bytes (`InvalidSignature`).
pub fn verify_detached(
    digest: &Digest,
    sig: &DetachedSignature,
    public_key: &PublicKey,
) -> Result<()> {
    let trusted = crate::digest::sha256(&public_key.to_bytes());
    if trusted != sig.key_fingerprint {
        return Err(CoreError::UntrustedSigner {
            fingerprint: to_hex(&sig.key_fingerprint),
        });
    }
    if *digest != sig.package_hash {
        return Err(CoreError::TamperedPackage {
            expected: to_hex(&sig.package_hash),
            actual: to_hex(digest),
        });
    }
    public_key.verify(digest, &sig.signature)
}

/// Signs the raw 32-byte digest (Cloacina's format: the message is the raw
/// digest bytes, not hex).
pub fn sign_digest(seed: &[u8; 32], digest: &Digest) -> [u8; 64] {
    keys::sign(seed, digest)
}

/// One signature to try, with the trusted public key its fingerprint resolved to (None: not trusted).
#[derive(Clone, Debug)]
pub struct Candidate {
    pub signature: DetachedSignature,
    pub public_key: Option<PublicKey>,
}

/// A package may carry several signatures (key rotation): it is accepted when any candidate,
/// tried in the given order, verifies. Returns the index of the first that does.
///
/// When none verifies, the error reported is the most telling one: a failure under a trusted key
/// (tampered package, then invalid signature) outranks an untrusted signer, so a tampered package
/// is never reported as merely "untrusted". With no candidates at all: `SignatureNotFound`.
pub fn verify_any(digest: &Digest, candidates: &[Candidate]) -> Result<usize> {
    let mut worst: Option<CoreError> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        let outcome = match &candidate.public_key {
            Some(key) => verify_detached(digest, &candidate.signature, key),
            None => Err(CoreError::UntrustedSigner {
                fingerprint: to_hex(&candidate.signature.key_fingerprint),
            }),
        };
        match outcome {
            Ok(()) => return Ok(index),
            Err(error) => {
                if worst.as_ref().is_none_or(|w| rank(&error) > rank(w)) {
                    worst = Some(error);
                }
            }
        }
    }
    Err(worst.unwrap_or(CoreError::SignatureNotFound(
        "the package has no signature".to_string(),
    )))
}

fn rank(error: &CoreError) -> u8 {
    match error {
        CoreError::TamperedPackage { .. } => 3,
        CoreError::InvalidSignature(_) | CoreError::InvalidKey(_) => 2,
        CoreError::UntrustedSigner { .. } => 1,
        _ => 0,
    }
}
