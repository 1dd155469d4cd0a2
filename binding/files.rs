use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cloacina_sign_core::codes;
use cloacina_sign_core::digest::{self, Digest};
use cloacina_sign_core::keys;
use cloacina_sign_core::pem;
use cloacina_sign_core::verify;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;
use zeroize::Zeroizing;

use crate::errors::OrThrow;

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

pub(crate) fn counter(progress: Option<&ProgressCounter>) -> Option<Arc<AtomicU64>> {
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
