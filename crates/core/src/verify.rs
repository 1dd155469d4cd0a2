//! The verification decision and digest signing.

use crate::digest::{to_hex, Digest, DigestSet, PackageDigests};
use crate::document::SignatureDocument;
use crate::error::{CoreError, Result};
use crate::keys::{self, PublicKey};
use crate::policy::Policy;
use crate::signature::DetachedSignature;
use crate::statement::{DigestAlgorithm, SignedStatement};

/// The verification decision for one version-1 signature over an already computed SHA-256 of the
/// package, in the order of the design's verification flow:
/// 1. the package hash (`TamperedPackage`),
/// 2. the signer: the trusted key must be the one the signature names (`UntrustedSigner`),
/// 3. the Ed25519 signature over the raw 32 digest bytes (`InvalidSignature`).
pub fn verify_detached(
    digest: &Digest,
    sig: &DetachedSignature,
    public_key: &PublicKey,
) -> Result<()> {
    check_hash(digest, &sig.package_hash)?;
    check_signer(&sig.key_fingerprint, public_key)?;
    public_key.verify(digest, &sig.signature)
}

fn check_hash(actual: &Digest, signed: &Digest) -> Result<()> {
    if actual != signed {
        return Err(CoreError::TamperedPackage {
            expected: to_hex(signed),
            actual: to_hex(actual),
        });
    }
    Ok(())
}

fn untrusted(fingerprint: &[u8; 32]) -> CoreError {
    CoreError::UntrustedSigner {
        fingerprint: to_hex(fingerprint),
    }
}

fn check_signer(named: &[u8; 32], public_key: &PublicKey) -> Result<()> {
    if crate::digest::sha256(&public_key.to_bytes()) != *named {
        return Err(untrusted(named));
    }
    Ok(())
}

/// Signs the raw 32-byte digest (Cloacina's format: the message is the raw
/// digest bytes, not hex).
pub fn sign_digest(seed: &[u8; 32], digest: &Digest) -> [u8; 64] {
    keys::sign(seed, digest)
}

/// One signature to try, with the trusted public key its fingerprint resolved to (None: not trusted).
#[derive(Clone, Debug)]
pub struct Candidate {
    pub signature: SignatureDocument,
    pub public_key: Option<PublicKey>,
}

impl Candidate {
    /// The digests this candidate's check needs of the package.
    pub fn needs(&self) -> DigestSet {
        match &self.signature {
            SignatureDocument::V1(_) => DigestSet::SHA256,
            SignatureDocument::V2(signed) => match signed.statement.digest_algorithm {
                DigestAlgorithm::Sha256 => DigestSet::SHA256,
                DigestAlgorithm::Blake3 => DigestSet::BLAKE3,
            },
        }
    }
}

/// The digests every candidate needs, together.
pub fn digests_needed(candidates: &[Candidate]) -> DigestSet {
    candidates
        .iter()
        .fold(DigestSet::default(), |set, candidate| {
            let needs = candidate.needs();
            DigestSet {
                sha256: set.sha256 || needs.sha256,
                blake3: set.blake3 || needs.blake3,
            }
        })
}

fn computed(digest: Option<Digest>, algorithm: &str) -> Result<Digest> {
    digest.ok_or_else(|| {
        CoreError::InvalidInput(format!("the package's {algorithm} digest was not computed"))
    })
}

/// The hash check of a version-2 statement: its digest and its size must be the package's.
fn check_statement_hash(digests: &PackageDigests, signed: &SignedStatement) -> Result<()> {
    let statement = &signed.statement;
    let actual = match statement.digest_algorithm {
        DigestAlgorithm::Sha256 => computed(digests.sha256, "SHA-256")?,
        DigestAlgorithm::Blake3 => computed(digests.blake3, "BLAKE3")?,
    };
    check_hash(&actual, &statement.digest)?;
    if digests.size != statement.size {
        return Err(CoreError::TamperedPackage {
            expected: format!("{} ({} bytes)", to_hex(&statement.digest), statement.size),
            actual: format!("{} ({} bytes)", to_hex(&actual), digests.size),
        });
    }
    Ok(())
}

/// The decision for one candidate, in the design's order: hash (and size), signer trusted, signature.
pub fn verify_candidate(digests: &PackageDigests, candidate: &Candidate) -> Result<()> {
    match &candidate.signature {
        SignatureDocument::V1(sig) => {
            let digest = computed(digests.sha256, "SHA-256")?;
            match &candidate.public_key {
                Some(key) => verify_detached(&digest, sig, key),
                None => {
                    check_hash(&digest, &sig.package_hash).and(Err(untrusted(&sig.key_fingerprint)))
                }
            }
        }
        SignatureDocument::V2(signed) => {
            check_statement_hash(digests, signed)?;
            let key = candidate
                .public_key
                .as_ref()
                .ok_or_else(|| untrusted(&signed.key_fingerprint))?;
            check_signer(&signed.key_fingerprint, key)?;
            key.verify(&signed.statement.signed_message(), &signed.signature)
        }
    }
}

/// A package may carry several signatures (key rotation, a `.sig` beside stored ones): it is
/// accepted when any candidate, tried in the given order, verifies and satisfies the policy.
/// Returns the index of the first that does.
///
/// When none does, the error reported is that of the candidate that got furthest through the
/// checks: a policy refusal (the signature verified) over `InvalidSignature` (hash and trusted
/// signer matched) over `UntrustedSigner` (the hash matched) over `TamperedPackage`; among equals,
/// the first in order. With no candidates at all: `SignatureNotFound`.
pub fn verify_any(
    digests: &PackageDigests,
    candidates: &[Candidate],
    policy: &Policy,
) -> Result<usize> {
    let mut furthest: Option<CoreError> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        let outcome = verify_candidate(digests, candidate).and_then(|()| {
            policy.check(match &candidate.signature {
                SignatureDocument::V1(_) => None,
                SignatureDocument::V2(signed) => Some(&signed.statement),
            })
        });
        match outcome {
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
        CoreError::PolicyRefused { .. } => 4,
        _ => 0,
    }
}
