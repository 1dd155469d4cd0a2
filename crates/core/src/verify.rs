//! The verification decision and digest signing.

use crate::digest::{to_hex, Digest};
use crate::error::{CoreError, Result};
use crate::keys::{self, PublicKey};
use crate::signature::DetachedSignature;

/// The verification decision for one signature over an already computed package digest, in the
/// order of the design's verification flow:
/// 1. the package hash (`TamperedPackage`),
/// 2. the signer: the trusted key must be the one the signature names (`UntrustedSigner`),
/// 3. the Ed25519 signature over the raw 32 digest bytes (`InvalidSignature`).
pub fn verify_detached(
    digest: &Digest,
    sig: &DetachedSignature,
    public_key: &PublicKey,
) -> Result<()> {
    check_hash(digest, sig)?;
    if crate::digest::sha256(&public_key.to_bytes()) != sig.key_fingerprint {
        return Err(untrusted(sig));
    }
    public_key.verify(digest, &sig.signature)
}

fn check_hash(digest: &Digest, sig: &DetachedSignature) -> Result<()> {
    if *digest != sig.package_hash {
        return Err(CoreError::TamperedPackage {
            expected: to_hex(&sig.package_hash),
            actual: to_hex(digest),
        });
    }
    Ok(())
}

fn untrusted(sig: &DetachedSignature) -> CoreError {
    CoreError::UntrustedSigner {
        fingerprint: to_hex(&sig.key_fingerprint),
    }
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

/// The decision for one candidate: `verify_detached` under its trusted key, or, when no trusted
/// key matches its fingerprint, the same order with the signer check failing.
pub fn verify_candidate(digest: &Digest, candidate: &Candidate) -> Result<()> {
    match &candidate.public_key {
        Some(key) => verify_detached(digest, &candidate.signature, key),
        None => check_hash(digest, &candidate.signature).and(Err(untrusted(&candidate.signature))),
    }
}

/// A package may carry several signatures (key rotation, a `.sig` beside stored ones): it is
/// accepted when any candidate, tried in the given order, verifies. Returns the index of the
/// first that does.
///
/// When none verifies, the error reported is that of the candidate that got furthest through
/// the checks: `InvalidSignature` (hash and trusted signer matched) over `UntrustedSigner` (the
/// hash matched) over `TamperedPackage`; among equals, the first in order. With no candidates at
/// all: `SignatureNotFound`.
pub fn verify_any(digest: &Digest, candidates: &[Candidate]) -> Result<usize> {
    let mut furthest: Option<CoreError> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        match verify_candidate(digest, candidate) {
            Ok(()) => return Ok(index),
            Err(error) => {
                if furthest.as_ref().is_none_or(|f| stage(&error) > stage(f)) {
                    furthest = Some(error);
                }
            }
        }
    }
    Err(furthest.unwrap_or(CoreError::SignatureNotFound(
        "the package has no signature".to_string(),
    )))
}

/// How far through the checks a failing candidate got.
fn stage(error: &CoreError) -> u8 {
    match error {
        CoreError::TamperedPackage { .. } => 1,
        CoreError::UntrustedSigner { .. } => 2,
        CoreError::InvalidSignature(_) | CoreError::InvalidKey(_) => 3,
        _ => 0,
    }
}
