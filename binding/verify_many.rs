//! Many packages against pinned keys in one call: each is verified exactly as `verify_file_with_keys`
//! verifies one, on every core, and each outcome comes back as data (a failure does not stop the
//! others). A runner or the CLI checking hundreds of small packages pays one trip to the worker pool
//! instead of one per package.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use cloacina_sign_core::policy::Policy;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;

use crate::verify::{policy_from, verify_file_now, PolicyOptions, VerifiedPackage};

/// One package's outcome: `verified`, or `error` as `[CODE] message` (the binding's error form).
#[napi(object)]
pub struct PackageOutcome {
    pub verified: Option<VerifiedPackage>,
    pub error: Option<String>,
}

/// The most packages one call takes; the caller sends more in several calls.
const MAX_PACKAGES: usize = 4096;

pub struct VerifyFilesTask {
    files: Vec<(PathBuf, PathBuf)>,
    trusted_keys: Vec<Vec<u8>>,
    policy: Policy,
}

impl Task for VerifyFilesTask {
    type Output = Vec<PackageOutcome>;
    type JsValue = Vec<PackageOutcome>;

    fn compute(&mut self) -> napi::Result<Vec<PackageOutcome>> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(self.files.len())
            .max(1);
        let next = AtomicUsize::new(0);
        let outcomes: Vec<Mutex<Option<PackageOutcome>>> =
            self.files.iter().map(|_| Mutex::new(None)).collect();
        let work = || loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some((path, signature_path)) = self.files.get(index) else {
                break;
            };
            let outcome =
                match verify_file_now(path, signature_path, &self.trusted_keys, &self.policy, None)
                {
                    Ok(verified) => PackageOutcome {
                        verified: Some(verified),
                        error: None,
                    },
                    Err(error) => PackageOutcome {
                        verified: None,
                        error: Some(error.reason.clone()),
                    },
                };
            *outcomes[index].lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        };
        std::thread::scope(|scope| {
            // This worker-pool thread is one of them; a thread the system refuses is one fewer, not a failure.
            for _ in 1..threads {
                if std::thread::Builder::new()
                    .spawn_scoped(scope, work)
                    .is_err()
                {
                    break;
                }
            }
            work();
        });
        outcomes
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .ok_or_else(|| crate::errors::coded("INTERNAL", "a package was not verified"))
            })
            .collect()
    }

    fn resolve(
        &mut self,
        _env: Env,
        output: Vec<PackageOutcome>,
    ) -> napi::Result<Vec<PackageOutcome>> {
        Ok(output)
    }
}

/// Verifies each package with the signature file beside it (`signaturePaths[i]` for `paths[i]`)
/// against the pinned keys, as `verifyFileWithKeys` does one; the outcomes come back in order.
#[napi(ts_return_type = "Promise<Array<PackageOutcome>>")]
pub fn verify_files_with_keys(
    paths: Vec<String>,
    signature_paths: Vec<String>,
    trusted_keys: Vec<Buffer>,
    policy: Option<PolicyOptions>,
) -> napi::Result<AsyncTask<VerifyFilesTask>> {
    if paths.len() != signature_paths.len() {
        return Err(crate::errors::coded(
            "INVALID_INPUT",
            "one signature path is needed for each package path",
        ));
    }
    if paths.len() > MAX_PACKAGES {
        return Err(crate::errors::coded(
            "INVALID_INPUT",
            format!("at most {MAX_PACKAGES} packages are verified in one call"),
        ));
    }
    Ok(AsyncTask::new(VerifyFilesTask {
        files: paths
            .into_iter()
            .map(PathBuf::from)
            .zip(signature_paths.into_iter().map(PathBuf::from))
            .collect(),
        trusted_keys: trusted_keys.iter().map(|key| key.to_vec()).collect(),
        policy: policy_from(policy.as_ref())?,
    }))
}
