//! Many version-1 signatures with one sealed key in a single trip to the worker pool: the key is opened
//! (and its public key derived) once for the whole batch instead of once per signature.

use cloacina_sign_core::digest::Digest;
use cloacina_sign_core::keys;
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;

use crate::files::digest_from_hex;
use crate::sealing::SealedKey;
use crate::sign::{Prepared, SealedKeyInput};

pub struct SignDigestsTask {
    key: SealedKey,
    digests: Vec<Digest>,
    signed_at: String,
}

impl Task for SignDigestsTask {
    type Output = Vec<String>;
    type JsValue = Vec<String>;

    fn compute(&mut self) -> napi::Result<Vec<String>> {
        let seed = self.key.unseal()?;
        let public_key = keys::public_key_of(&seed);
        let signatures = keys::sign_each(&seed, self.digests.iter().map(|d| &d[..]));
        self.digests
            .iter()
            .zip(signatures)
            .map(|(package_hash, signature)| {
                // The very document a single version-1 signature gets.
                Prepared::V1 {
                    package_hash: *package_hash,
                    signed_at: self.signed_at.clone(),
                }
                .document(&public_key, &signature)
            })
            .collect()
    }

    fn resolve(&mut self, _env: Env, documents: Vec<String>) -> napi::Result<Vec<String>> {
        Ok(documents)
    }
}

/// Signs each SHA-256 digest (lowercase hex) into its version-1 document, all dated `signed_at`, with a
/// sealed key opened once on the worker thread; the documents come back in the digests' order.
#[napi(ts_return_type = "Promise<string[]>")]
pub fn sign_digests(
    sha256: Vec<String>,
    key: SealedKeyInput,
    signed_at: String,
) -> napi::Result<AsyncTask<SignDigestsTask>> {
    let digests = sha256
        .iter()
        .map(|hex| digest_from_hex(hex))
        .collect::<napi::Result<Vec<_>>>()?;
    Ok(AsyncTask::new(SignDigestsTask {
        key: SealedKey::new(key.kek, key.sealed_private_key, key.binding, key.public_key),
        digests,
        signed_at,
    }))
}
