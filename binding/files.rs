use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cloacina_sign_core::codes;
use cloacina_sign_core::digest::{self, Digest};
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;

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
