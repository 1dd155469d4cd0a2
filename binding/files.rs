use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cloacina_sign_core::codes;
use cloacina_sign_core::digest::{self, Digest};
use cloacina_sign_core::keys;
use cloacina_sign_core::pem;
use cloacina_sign_core::signature::DetachedSignature;
use cloacina_sign_core::verify::{self, Candidate};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;
use zeroize::Zeroizing;

use cloacina_sign_core::CoreError;

use crate::errors::{core_error, OrThrow};

/// Bytes of a file processed so far, readable from JS while a task runs (for progress bars).
#[napi]
pub struct ProgressCounter {
    bytes: Arc<AtomicU64>,
}

#[napi]
impl ProgressCounter {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ProgressCounter {
            bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    #[napi(getter)]
    pub fn bytes(&self) -> f64 {
        self.bytes.load(Ordering::Relaxed) as f64
    }
}

fn counter(progress: Option<&ProgressCounter>) -> Option<Arc<AtomicU64>> {
    progress.map(|p| p.bytes.clone())
}

fn hash(path: &std::path::Path, progress: &Option<Arc<AtomicU64>>) -> napi::Result<Digest> {
    digest::sha256_file(path, progress.as_deref()).or_throw()
}

pub struct HashFileTask {
    path: PathBuf,
    progress: Option<Arc<AtomicU64>>,
}

impl Task for HashFileTask {
    type Output = Digest;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Digest> {
        hash(&self.path, &self.progress)
    }

    fn resolve(&mut self, _env: Env, output: Digest) -> napi::Result<String> {
        Ok(digest::to_hex(&output))
    }
}

/// Lowercase hex SHA-256 of a file, streamed on a worker thread.
#[napi(ts_return_type = "Promise<string>")]
pub fn hash_file(path: String, progress: Option<&ProgressCounter>) -> AsyncTask<HashFileTask> {
    AsyncTask::new(HashFileTask {
        path: path.into(),
        progress: counter(progress),
    })
}

/// A package's digest and the signature document beside it, read by one task.
#[napi(object)]
pub struct HashedWithSignature {
    pub package_hash: String,
    /// The canonical document of the signature file; absent when there is no such file.
    pub signature: Option<String>,
}

pub struct HashWithSignatureTask {
    path: PathBuf,
    signature_path: PathBuf,
    progress: Option<Arc<AtomicU64>>,
}

impl Task for HashWithSignatureTask {
    type Output = HashedWithSignature;
    type JsValue = HashedWithSignature;

    fn compute(&mut self) -> napi::Result<HashedWithSignature> {
        // The package first: a missing package is UNREADABLE_FILE, not a missing signature.
        let digest = hash(&self.path, &self.progress)?;
        let signature = match DetachedSignature::read_file(&self.signature_path) {
            Ok(signature) => Some(signature.to_json()),
            Err(CoreError::SignatureNotFound(_)) => None,
            Err(error) => return Err(core_error(error)),
        };
        Ok(HashedWithSignature {
            package_hash: digest::to_hex(&digest),
            signature,
        })
    }

    fn resolve(
        &mut self,
        _env: Env,
        output: HashedWithSignature,
    ) -> napi::Result<HashedWithSignature> {
        Ok(output)
    }
}

/// Hashes a package and reads the signature file beside it in one task (the verifier's common case:
/// one trip to the worker pool instead of two).
#[napi(ts_return_type = "Promise<HashedWithSignature>")]
pub fn hash_file_with_signature(
    path: String,
    signature_path: String,
    progress: Option<&ProgressCounter>,
) -> AsyncTask<HashWithSignatureTask> {
    AsyncTask::new(HashWithSignatureTask {
        path: path.into(),
        signature_path: signature_path.into(),
        progress: counter(progress),
    })
}

pub struct VerifyFileTask {
    path: PathBuf,
    signature_path: PathBuf,
    trusted_keys: Vec<Vec<u8>>,
    progress: Option<Arc<AtomicU64>>,
}

impl Task for VerifyFileTask {
    type Output = VerifiedPackage;
    type JsValue = VerifiedPackage;

    fn compute(&mut self) -> napi::Result<VerifiedPackage> {
        let digest = hash(&self.path, &self.progress)?;
        let signature = DetachedSignature::read_file(&self.signature_path).or_throw()?;
        // The trusted key the signature names, if any (a raw key's fingerprint is the SHA-256 of its bytes).
        let public_key = self
            .trusted_keys
            .iter()
            .find(|key| digest::sha256(key) == signature.key_fingerprint)
            .map(|key| pem::parse_public_key(key).or_throw())
            .transpose()?;
        let candidates = [Candidate {
            signature,
            public_key,
        }];
        let index = verify::verify_any(&digest, &candidates).or_throw()?;
        Ok(verified(&digest, &candidates, index))
    }

    fn resolve(&mut self, _env: Env, output: VerifiedPackage) -> napi::Result<VerifiedPackage> {
        Ok(output)
    }
}

/// The whole verification of a package against pinned keys in one task: hash the package, read the
/// signature file, pair it with the trusted raw key of its fingerprint, and decide (`verify_any`).
#[napi(ts_return_type = "Promise<VerifiedPackage>")]
pub fn verify_file_with_keys(
    path: String,
    signature_path: String,
    trusted_keys: Vec<Buffer>,
    progress: Option<&ProgressCounter>,
) -> AsyncTask<VerifyFileTask> {
    AsyncTask::new(VerifyFileTask {
        path: path.into(),
        signature_path: signature_path.into(),
        trusted_keys: trusted_keys.iter().map(|key| key.to_vec()).collect(),
        progress: counter(progress),
    })
}

/// What a signing produced; the caller adds `signed_at` when it writes the document.
#[napi(object)]
pub struct SignedDigest {
    pub package_hash: String,
    pub key_fingerprint: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub signature: String,
}

pub(crate) fn signed_digest(seed: &[u8; 32], digest: &Digest) -> SignedDigest {
    let public_key = keys::public_key_of(seed);
    let signature = verify::sign_digest(seed, digest);
    SignedDigest {
        package_hash: digest::to_hex(digest),
        key_fingerprint: keys::fingerprint(&public_key),
        signature: cloacina_sign_core::signature::encode_signature(&signature),
    }
}

pub struct SignFileTask {
    path: PathBuf,
    seed: Zeroizing<[u8; 32]>,
    progress: Option<Arc<AtomicU64>>,
}

impl Task for SignFileTask {
    type Output = SignedDigest;
    type JsValue = SignedDigest;

    fn compute(&mut self) -> napi::Result<SignedDigest> {
        let digest = hash(&self.path, &self.progress)?;
        Ok(signed_digest(&self.seed, &digest))
    }

    fn resolve(&mut self, _env: Env, output: SignedDigest) -> napi::Result<SignedDigest> {
        Ok(output)
    }
}

/// Hashes a file and signs the raw 32-byte digest with an Ed25519 private key (raw seed, DER or PEM).
#[napi(ts_return_type = "Promise<SignedDigest>")]
pub fn sign_file(
    path: String,
    private_key: Buffer,
    progress: Option<&ProgressCounter>,
) -> napi::Result<AsyncTask<SignFileTask>> {
    let seed = pem::private_key_from_any(&private_key).or_throw()?;
    Ok(AsyncTask::new(SignFileTask {
        path: path.into(),
        seed,
        progress: counter(progress),
    }))
}

/// One signature to try, with the public key the caller trusts for its fingerprint (if any).
#[napi(object)]
pub struct VerifyCandidate {
    /// The detached signature document (JSON text).
    pub document: Buffer,
    /// The trusted public key whose fingerprint the signature names; absent when no trusted key matches.
    pub public_key: Option<Buffer>,
}

#[napi(object)]
#[derive(Clone)]
pub struct VerifiedPackage {
    pub package_hash: String,
    pub key_fingerprint: String,
    pub signed_at: String,
    /// Which candidate verified.
    pub candidate_index: u32,
}

fn parse_candidate(document: &[u8], public_key: Option<&[u8]>) -> napi::Result<Candidate> {
    let signature = DetachedSignature::parse(document).or_throw()?;
    let public_key = public_key
        .map(|key| pem::parse_public_key(key).or_throw())
        .transpose()?;
    Ok(Candidate {
        signature,
        public_key,
    })
}

pub(crate) fn parse_candidates(candidates: &[VerifyCandidate]) -> napi::Result<Vec<Candidate>> {
    candidates
        .iter()
        .map(|c| parse_candidate(&c.document, c.public_key.as_deref()))
        .collect()
}

pub(crate) fn verified(digest: &Digest, candidates: &[Candidate], index: usize) -> VerifiedPackage {
    let sig = &candidates[index].signature;
    VerifiedPackage {
        package_hash: digest::to_hex(digest),
        key_fingerprint: sig.key_fingerprint_hex(),
        signed_at: sig.signed_at.clone(),
        candidate_index: index as u32,
    }
}

pub struct VerifyDigestTask {
    digest: Digest,
    candidates: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Task for VerifyDigestTask {
    type Output = VerifiedPackage;
    type JsValue = VerifiedPackage;

    fn compute(&mut self) -> napi::Result<VerifiedPackage> {
        let candidates = self
            .candidates
            .iter()
            .map(|(document, public_key)| parse_candidate(document, public_key.as_deref()))
            .collect::<napi::Result<Vec<_>>>()?;
        let index = verify::verify_any(&self.digest, &candidates).or_throw()?;
        Ok(verified(&self.digest, &candidates, index))
    }

    fn resolve(&mut self, _env: Env, output: VerifiedPackage) -> napi::Result<VerifiedPackage> {
        Ok(output)
    }
}

/// Accepts the package digest when any candidate signature verifies (tried in order). The Ed25519
/// checks run on a worker thread, so a runner verifying many packages uses every core.
#[napi(ts_return_type = "Promise<VerifiedPackage>")]
pub fn verify_digest(
    package_hash: String,
    candidates: Vec<VerifyCandidate>,
) -> napi::Result<AsyncTask<VerifyDigestTask>> {
    let digest = digest_from_hex(&package_hash)?;
    let candidates = candidates
        .iter()
        .map(|c| {
            (
                c.document.to_vec(),
                c.public_key.as_ref().map(|k| k.to_vec()),
            )
        })
        .collect();
    Ok(AsyncTask::new(VerifyDigestTask { digest, candidates }))
}

pub(crate) fn digest_from_hex(hex_digest: &str) -> napi::Result<Digest> {
    let mut out = [0u8; 32];
    match hex_digest.len() == 64
        && hex_digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        true if hex::decode_to_slice(hex_digest, &mut out).is_ok() => Ok(out),
        _ => Err(crate::errors::coded(
            codes::INVALID_INPUT,
            "package hash must be 64 lowercase hex characters",
        )),
    }
}
