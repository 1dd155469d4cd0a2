use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[cfg(target_os = "wasi")]
use crate::guarded_unavailable::{
    self as loader, Clearance, ClearedImage, GuardedLibrary, LoadError, PackageMetadata,
    SealedImage, TaskError, WorkflowPackage,
};
use cloacina_sign_core::codes;
use cloacina_sign_core::digest::{to_hex, DigestSet, PackageDigests};
#[cfg(not(target_os = "wasi"))]
use cloacina_sign_loader::{
    self as loader, Clearance, ClearedImage, GuardedLibrary, LoadError, PackageMetadata,
    SealedImage, TaskError, WorkflowPackage,
};
use napi::bindgen_prelude::{AsyncTask, Buffer, Function};
use napi::{Env, Task};
use napi_derive::napi;

use crate::errors::coded;
use crate::verify::{
    parse_candidates, policy_from, verified, DigestRequest, Digests, PolicyOptions,
    VerifiedPackage, VerifyCandidate,
};

fn load_error(err: LoadError) -> napi::Error {
    let code = err.code().to_string();
    coded(&code, err)
}

fn task_error(err: TaskError) -> napi::Error {
    let code = err.code().to_string();
    coded(&code, err)
}

/// What the cleared bytes must be, checked only after the signature (or policy) decision.
#[napi(string_enum)]
pub enum PackageFormat {
    SharedLibrary,
    Wasm,
    Any,
}

impl From<PackageFormat> for loader::PackageFormat {
    fn from(format: PackageFormat) -> Self {
        match format {
            PackageFormat::SharedLibrary => loader::PackageFormat::SharedLibrary,
            PackageFormat::Wasm => loader::PackageFormat::Wasm,
            PackageFormat::Any => loader::PackageFormat::Any,
        }
    }
}

/// A package copied once into a sealed memory file and hashed there. Nothing of it can be loaded:
/// `verify` (a signature verified over the sealed digest) or `allowUnsigned` (the caller's policy)
/// turns it into a `ClearedPackage`, the only thing that loads.
#[napi]
pub struct SealedPackage {
    image: Mutex<Option<SealedImage>>,
    digests: PackageDigests,
}

impl SealedPackage {
    fn take(&self) -> napi::Result<SealedImage> {
        self.image
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| coded(codes::LOAD_FAILED, "this sealed package was already used"))
    }
}

#[napi]
impl SealedPackage {
    /// Lowercase hex SHA-256 of the sealed bytes (exactly what would be loaded), when it was computed.
    #[napi(getter)]
    pub fn package_hash(&self) -> Option<String> {
        self.digests.sha256.map(|h| to_hex(&h))
    }

    /// The size and the computed digests of the sealed bytes.
    #[napi(getter)]
    pub fn digests(&self) -> Digests {
        Digests::from(&self.digests)
    }

    #[napi(getter)]
    pub fn size(&self) -> f64 {
        self.image
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0.0, |image| image.len() as f64)
    }

    /// Clears the sealed bytes when any candidate signature verifies over their digests and
    /// satisfies the policy; on refusal the image is released and the error thrown.
    #[napi]
    pub fn verify(
        &self,
        candidates: Vec<VerifyCandidate>,
        policy: Option<PolicyOptions>,
    ) -> napi::Result<ClearedPackage> {
        let candidates = parse_candidates(&candidates)?;
        let policy = policy_from(policy.as_ref())?;
        let cleared = self
            .take()?
            .verify(&candidates, &policy)
            .map_err(load_error)?;
        let Clearance::Verified { candidate, .. } = *cleared.clearance() else {
            unreachable!("verify clears as verified")
        };
        Ok(ClearedPackage::new(
            cleared,
            Some(verified(&self.digests, &candidates, candidate)),
        ))
    }

    /// The policy decision of a caller that does not require signatures, for a package without any.
    #[napi]
    pub fn allow_unsigned(&self) -> napi::Result<ClearedPackage> {
        Ok(ClearedPackage::new(self.take()?.allow_unsigned(), None))
    }

    /// Releases the sealed memory now rather than at garbage collection.
    #[napi]
    pub fn discard(&self) {
        self.image.lock().unwrap().take();
    }
}

/// Sealed bytes whose load was decided (see `ClearedImage` in the loader crate).
#[napi]
pub struct ClearedPackage {
    // Shared with a running format check.
    image: Arc<Mutex<Option<ClearedImage>>>,
    verified: Option<VerifiedPackage>,
}

fn with_cleared<T>(
    image: &Mutex<Option<ClearedImage>>,
    f: impl FnOnce(&ClearedImage) -> napi::Result<T>,
) -> napi::Result<T> {
    let image = image.lock().unwrap();
    f(image.as_ref().ok_or_else(|| {
        coded(
            codes::LOAD_FAILED,
            "this cleared package was already loaded or discarded",
        )
    })?)
}

impl ClearedPackage {
    fn new(image: ClearedImage, verified: Option<VerifiedPackage>) -> Self {
        ClearedPackage {
            image: Arc::new(Mutex::new(Some(image))),
            verified,
        }
    }

    fn with_image<T>(&self, f: impl FnOnce(&ClearedImage) -> napi::Result<T>) -> napi::Result<T> {
        with_cleared(&self.image, f)
    }
}

pub struct CheckFormatTask {
    image: Arc<Mutex<Option<ClearedImage>>>,
    format: loader::PackageFormat,
}

impl Task for CheckFormatTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        with_cleared(&self.image, |cleared| {
            cleared.check_format(self.format).map_err(load_error)
        })
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

#[napi]
impl ClearedPackage {
    /// Which signature verified; null when the package was allowed unsigned.
    #[napi(getter)]
    pub fn verified(&self) -> Option<VerifiedPackage> {
        self.verified.clone()
    }

    /// Checks that the cleared bytes are what they will be used as (ELF checks and dependency
    /// policy, or WebAssembly magic), off the JS thread: the bytes are parsed only now, after the
    /// decision.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn check_format(&self, format: PackageFormat) -> AsyncTask<CheckFormatTask> {
        AsyncTask::new(CheckFormatTask {
            image: Arc::clone(&self.image),
            format: format.into(),
        })
    }

    /// dlopen()s the sealed memory file (off the JS thread: library constructors run here).
    #[napi(ts_return_type = "Promise<NativePackage>")]
    pub fn load(&self) -> napi::Result<AsyncTask<LoadTask>> {
        let image = self.image.lock().unwrap().take();
        let image = image.ok_or_else(|| {
            coded(
                codes::LOAD_FAILED,
                "this cleared package was already loaded or discarded",
            )
        })?;
        Ok(AsyncTask::new(LoadTask { image: Some(image) }))
    }

    /// Calls `open(path)` with a unique `/proc/self/fd/...` path of the sealed file, inside the
    /// process-wide guarded-load lock; for `process.dlopen` of a native addon. Keep this object
    /// alive for as long as the addon is loaded: it owns the descriptor.
    #[napi]
    pub fn open_through_proc_path(&self, open: Function<String, ()>) -> napi::Result<()> {
        self.with_image(|cleared| {
            cleared
                .open_with(|path| open.call(path.to_string()))
                .map_err(load_error)?
        })
    }

    /// A copy of the sealed bytes (for WebAssembly compilation).
    #[napi]
    pub fn bytes(&self) -> napi::Result<Buffer> {
        self.with_image(|cleared| Ok(cleared.bytes().to_vec().into()))
    }

    /// Releases the sealed memory now (a load that was not audited is never performed).
    #[napi]
    pub fn discard(&self) {
        self.image.lock().unwrap().take();
    }
}

pub struct SealTask {
    path: PathBuf,
    max_size: u64,
    digests: DigestSet,
}

impl Task for SealTask {
    type Output = SealedImage;
    type JsValue = SealedPackage;

    fn compute(&mut self) -> napi::Result<SealedImage> {
        // Nothing here parses the bytes: they are only copied and hashed (see `check_format`).
        SealedImage::from_path(&self.path, self.max_size, self.digests).map_err(load_error)
    }

    fn resolve(&mut self, _env: Env, image: SealedImage) -> napi::Result<SealedPackage> {
        Ok(SealedPackage {
            digests: *image.digests(),
            image: Mutex::new(Some(image)),
        })
    }
}

/// The WebAssembly build refuses every guarded load here, before the file is touched, naming the host.
#[cfg(target_os = "wasi")]
fn guarded_loading_here(env: &Env) -> napi::Result<()> {
    Err(load_error(crate::guarded_unavailable::unsupported_here(
        env,
    )))
}

#[cfg(not(target_os = "wasi"))]
fn guarded_loading_here(_: &Env) -> napi::Result<()> {
    Ok(())
}

/// Copies a package once into a sealed memory file (at most `max_size` bytes: the size is checked
/// before anything is copied) and computes the requested digests of the sealed bytes while copying.
#[napi(ts_return_type = "Promise<SealedPackage>")]
pub fn seal_package(
    env: Env,
    path: String,
    max_size: f64,
    digests: DigestRequest,
) -> napi::Result<AsyncTask<SealTask>> {
    guarded_loading_here(&env)?;
    if !(max_size.is_finite() && max_size >= 0.0) {
        return Err(coded(
            codes::INVALID_INPUT,
            "the package size limit must be a non-negative number",
        ));
    }
    Ok(AsyncTask::new(SealTask {
        path: path.into(),
        max_size: max_size as u64,
        digests: DigestSet::from(&digests),
    }))
}

pub struct LoadTask {
    image: Option<ClearedImage>,
}

impl Task for LoadTask {
    type Output = WorkflowPackage;
    type JsValue = NativePackage;

    fn compute(&mut self) -> napi::Result<WorkflowPackage> {
        let image = self
            .image
            .take()
            .ok_or_else(|| coded(codes::LOAD_FAILED, "the package was already loaded"))?;
        let library = GuardedLibrary::load(image).map_err(load_error)?;
        WorkflowPackage::new(library).map_err(load_error)
    }

    fn resolve(&mut self, _env: Env, package: WorkflowPackage) -> napi::Result<NativePackage> {
        Ok(NativePackage {
            package: Mutex::new(Some(package)),
        })
    }
}

#[napi(object)]
pub struct TaskInfo {
    pub index: u32,
    pub local_id: String,
    pub namespaced_id_template: Option<String>,
    pub dependencies_json: Option<String>,
    pub description: Option<String>,
    pub source_location: Option<String>,
}

#[napi(object)]
pub struct PackageInfo {
    pub package_name: Option<String>,
    pub package_description: Option<String>,
    pub package_author: Option<String>,
    pub workflow_fingerprint: Option<String>,
    pub graph_data_json: Option<String>,
    pub tasks: Vec<TaskInfo>,
}

impl From<PackageMetadata> for PackageInfo {
    fn from(m: PackageMetadata) -> Self {
        PackageInfo {
            package_name: m.package_name,
            package_description: m.package_description,
            package_author: m.package_author,
            workflow_fingerprint: m.workflow_fingerprint,
            graph_data_json: m.graph_data_json,
            tasks: m
                .tasks
                .into_iter()
                .map(|t| TaskInfo {
                    index: t.index,
                    local_id: t.local_id,
                    namespaced_id_template: t.namespaced_id_template,
                    dependencies_json: t.dependencies_json,
                    description: t.description,
                    source_location: t.source_location,
                })
                .collect(),
        }
    }
}

/// A workflow package loaded from verified, sealed bytes.
#[napi]
pub struct NativePackage {
    package: Mutex<Option<WorkflowPackage>>,
}

impl NativePackage {
    fn package(&self) -> napi::Result<WorkflowPackage> {
        self.package
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| coded(codes::PACKAGE_CLOSED, "the package was closed"))
    }
}

#[napi]
impl NativePackage {
    /// The package's tasks and description, copied out of the library.
    #[napi]
    pub fn metadata(&self) -> napi::Result<PackageInfo> {
        Ok(self.package()?.metadata().map_err(load_error)?.into())
    }

    /// The descriptor of the sealed memory file the library was loaded from (-1 once closed).
    #[napi(getter)]
    pub fn descriptor(&self) -> i32 {
        self.package
            .lock()
            .unwrap()
            .as_ref()
            .map_or(-1, |p| p.library().image().fd())
    }

    #[napi]
    pub fn has_symbol(&self, name: String) -> napi::Result<bool> {
        Ok(self.package()?.library().has_symbol(&name))
    }

    /// Runs one task on a worker thread with a result buffer of `resultCapacity` bytes.
    #[napi(ts_return_type = "Promise<TaskOutcome>")]
    pub fn execute_task(
        &self,
        task_name: String,
        context_json: String,
        result_capacity: u32,
    ) -> napi::Result<AsyncTask<ExecuteTask>> {
        Ok(AsyncTask::new(ExecuteTask {
            package: self.package()?,
            task_name,
            context_json,
            result_capacity,
        }))
    }

    /// Drops this handle; the library unloads once running tasks finish. Unmapping a large image
    /// takes milliseconds, so it happens on a background thread, not on the JS thread; when no
    /// thread can be started (thread or memory limits), it happens here instead of aborting.
    #[napi]
    pub fn close(&self) {
        if let Some(package) = self.package.lock().unwrap().take() {
            drop_in_background(package);
        }
    }
}

/// Drops `value` on a new thread, or on this one when no thread can be created:
/// `std::thread::spawn` would panic (and abort the Node process across the N-API boundary).
fn drop_in_background<T: Send + 'static>(value: T) {
    // Shared with the thread, so that the value is still reachable here if the spawn fails.
    let slot = std::sync::Arc::new(Mutex::new(Some(value)));
    let theirs = std::sync::Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("cloacina-close".into())
        .spawn(move || drop(theirs.lock().unwrap_or_else(|e| e.into_inner()).take()));
    if spawned.is_err() {
        drop(slot.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

pub struct ExecuteTask {
    package: WorkflowPackage,
    task_name: String,
    context_json: String,
    result_capacity: u32,
}

/// What a task produced: its output context, or the failure it reported (its error JSON, as data).
#[napi(object)]
pub struct TaskOutcome {
    /// The output context (JSON text) when the task succeeded.
    pub output: Option<String>,
    /// The package's error JSON when the task reported a failure (returned -1).
    pub failure: Option<String>,
}

impl Task for ExecuteTask {
    type Output = TaskOutcome;
    type JsValue = TaskOutcome;

    fn compute(&mut self) -> napi::Result<TaskOutcome> {
        match self
            .package
            .execute_task(&self.task_name, &self.context_json, self.result_capacity)
        {
            Ok(output) => Ok(TaskOutcome {
                output: Some(output),
                failure: None,
            }),
            Err(TaskError::Failed(details)) => Ok(TaskOutcome {
                output: None,
                failure: Some(details),
            }),
            Err(other) => Err(task_error(other)),
        }
    }

    fn resolve(&mut self, _env: Env, outcome: TaskOutcome) -> napi::Result<TaskOutcome> {
        Ok(outcome)
    }
}
