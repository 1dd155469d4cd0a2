//! The verification decision and digest signing.

use crate::cosign::CosignSignature;
use crate::digest::{to_hex, Digest, DigestSet, PackageDigests};
use crate::document::SignatureDocument;
use crate::error::{CoreError, Result};
use crate::keys::{self, PublicKey};
use crate::policy::Policy;
use crate::signature::DetachedSignature;
use crate::statement::{DigestAlgorithm, SignedStatement};
use crate::verification_key::VerificationKey;

/// The verification decision for one version-1 signature over an already computed SHA-256 of the
/// package, in the order of Cloacina's verification flow (a wrong digest is tampering, whoever signed):
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

/// The Ed25519 key of a candidate of a version-1 or version-2 document, which names it by fingerprint.
fn named_ed25519_key<'a>(named: &[u8; 32], key: &'a VerificationKey) -> Result<&'a PublicKey> {
    match key {
        VerificationKey::Ed25519(key) => {
            check_signer(named, key)?;
            Ok(key)
        }
        // The document names an Ed25519 key by the fingerprint of this P-256 key: it cannot verify.
        VerificationKey::EcdsaP256(_) if key.fingerprint() == *named => {
            Err(CoreError::InvalidSignature(format!(
                "the document is an Ed25519 signature, but the key it names ({}) is an ECDSA P-256 key",
                to_hex(named)
            )))
        }
        VerificationKey::EcdsaP256(_) => Err(untrusted(named)),
    }
}

/// Why no key verified a cosign signature, by what was tried.
fn no_trusted_p256_key() -> CoreError {
    CoreError::NoTrustedKey(
        "signature was made by an untrusted key: a cosign signature names no key, and no ECDSA P-256 key is trusted"
            .to_string(),
    )
}

/// The decision for a cosign signature and one trusted key: ECDSA P-256 over the package's SHA-256.
/// A cosign signature carries no digest, so a modified package and a signature by another key look
/// the same: both are `InvalidSignature`.
fn verify_cosign(
    digests: &PackageDigests,
    cosign: &CosignSignature,
    key: Option<&VerificationKey>,
) -> Result<()> {
    let digest = computed(digests.sha256, "SHA-256")?;
    let key = match key {
        Some(VerificationKey::EcdsaP256(key)) => key,
        Some(VerificationKey::Ed25519(_)) | None => return Err(no_trusted_p256_key()),
    };
    key.verify_digest(&digest, cosign.signature()).map_err(|_| {
        CoreError::InvalidSignature(format!(
            "the cosign signature does not verify under trusted ECDSA P-256 key {} (a cosign signature carries no digest: the package was modified, or another key signed it)",
            to_hex(&key.fingerprint())
        ))
    })
}

/// Signs the raw 32-byte digest (Cloacina's format: the message is the raw
/// digest bytes, not hex).
pub fn sign_digest(seed: &[u8; 32], digest: &Digest) -> [u8; 64] {
    keys::sign(seed, digest)
}

/// One signature to try, with the trusted public key to try it with: for Cloacina's documents the
/// key their fingerprint resolved to, for a cosign signature (which names no key) one of the trusted
/// P-256 keys (see [`candidates_for`]); `None`: no trusted key.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub signature: SignatureDocument,
    pub public_key: Option<VerificationKey>,
}

impl Candidate {
    /// The digests this candidate's check needs of the package.
    pub fn needs(&self) -> DigestSet {
        match &self.signature {
            SignatureDocument::V1(_) | SignatureDocument::Cosign(_) => DigestSet::SHA256,
            SignatureDocument::V2(signed) => match signed.statement.digest_algorithm {
                DigestAlgorithm::Sha256 => DigestSet::SHA256,
                DigestAlgorithm::Blake3 => DigestSet::BLAKE3,
            },
        }
    }
}

/// The candidates one document makes with the trusted keys, given in their stored form (raw 32
/// bytes for Ed25519, SubjectPublicKeyInfo DER for P-256; the fingerprint is the SHA-256 of that):
///
/// - a version-1 or version-2 document: one candidate, with the trusted key whose fingerprint it
///   names (`None` when no trusted key has it);
/// - a cosign signature, which names no key: one candidate per trusted P-256 key, in the given
///   order (the first that verifies is the signer), or one without a key when none is trusted.
///
/// Only the keys a document can use are parsed; a key that does not parse is `INVALID_KEY`.
pub fn candidates_for<K: AsRef<[u8]>>(
    document: &SignatureDocument,
    trusted: &[K],
) -> Result<Vec<Candidate>> {
    let candidate = |public_key| Candidate {
        signature: document.clone(),
        public_key,
    };
    match document.key_fingerprint() {
        Some(named) => {
            let key = trusted
                .iter()
                .find(|key| crate::digest::sha256(key.as_ref()) == *named)
                .map(|key| crate::pem::parse_verification_key(key.as_ref()))
                .transpose()?;
            Ok(vec![candidate(key)])
        }
        None => {
            let keys = trusted
                .iter()
                .filter(|key| crate::ecdsa::is_ec_spki(key.as_ref()))
                .map(|key| crate::pem::parse_verification_key(key.as_ref()).map(Some))
                .collect::<Result<Vec<_>>>()?;
            if keys.is_empty() {
                return Ok(vec![candidate(None)]);
            }
            Ok(keys.into_iter().map(candidate).collect())
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

/// The decision for one candidate, in that same order: hash (and size), signer trusted, signature.
pub fn verify_candidate(digests: &PackageDigests, candidate: &Candidate) -> Result<()> {
    match &candidate.signature {
        SignatureDocument::V1(sig) => {
            let digest = computed(digests.sha256, "SHA-256")?;
            check_hash(&digest, &sig.package_hash)?;
            let key = candidate
                .public_key
                .as_ref()
                .ok_or_else(|| untrusted(&sig.key_fingerprint))?;
            named_ed25519_key(&sig.key_fingerprint, key)?.verify(&digest, &sig.signature)
        }
        SignatureDocument::V2(signed) => {
            check_statement_hash(digests, signed)?;
            let key = candidate
                .public_key
                .as_ref()
                .ok_or_else(|| untrusted(&signed.key_fingerprint))?;
            named_ed25519_key(&signed.key_fingerprint, key)?
                .verify(&signed.statement.signed_message(), &signed.signature)
        }
        SignatureDocument::Cosign(cosign) => {
            verify_cosign(digests, cosign, candidate.public_key.as_ref())
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
///
/// A cosign signature carries no digest and names no key, so it is never `TamperedPackage`: it is
/// `UntrustedSigner` when no P-256 key is trusted (its one candidate has no key), and
/// `InvalidSignature` when P-256 keys are trusted and none verifies it.
pub fn verify_any(
    digests: &PackageDigests,
    candidates: &[Candidate],
    policy: &Policy,
) -> Result<usize> {
    let mut furthest: Option<CoreError> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        let outcome = verify_candidate(digests, candidate)
            .and_then(|()| policy.check_document(&candidate.signature));
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
        CoreError::UntrustedSigner { .. } | CoreError::NoTrustedKey(_) => 2,
        CoreError::InvalidSignature(_) | CoreError::InvalidKey(_) => 3,
        CoreError::PolicyRefused { .. } => 4,
        _ => 0,
    }
}
