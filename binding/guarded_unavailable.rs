//! What the WebAssembly (WASI) build links instead of `cloacina-sign-loader`. Guarded loading needs a
//! sealed memory file and the host's dynamic loader, neither of which exists inside WebAssembly, so
//! nothing can be sealed here: `seal_package` refuses with GUARDED_LOAD_UNSUPPORTED before anything
//! is read, and every other type is uninhabited. `loader.rs` is compiled unchanged against these
//! names, so both builds export the same functions and classes (and generate the same typings).

use std::path::Path;
use std::sync::Arc;

use cloacina_sign_core::codes;
use cloacina_sign_core::digest::{DigestSet, PackageDigests};
use cloacina_sign_core::policy::Policy;
use cloacina_sign_core::verify::Candidate;

/// The refusal of every guarded load in this build, naming the host it runs on.
pub fn unsupported_here(env: &napi::Env) -> LoadError {
    let host = host_platform(env).unwrap_or_else(|| "this platform".to_string());
    LoadError::Unsupported(format!(
        "guarded loading of native code is not available in the WebAssembly build ({host}); \
         keys, signing and verification work"
    ))
}

/// `<platform>-<arch>` of the Node process hosting the module (WASI itself does not say).
fn host_platform(env: &napi::Env) -> Option<String> {
    use napi::bindgen_prelude::JsObjectValue;
    let process: napi::bindgen_prelude::Object =
        env.get_global().ok()?.get_named_property("process").ok()?;
    let platform: String = process.get_named_property("platform").ok()?;
    let arch: String = process.get_named_property("arch").ok()?;
    Some(format!("{platform}-{arch}"))
}

#[derive(Debug)]
pub enum LoadError {
    Unsupported(String),
}

impl LoadError {
    pub fn code(&self) -> &str {
        match self {
            LoadError::Unsupported(_) => codes::GUARDED_LOAD_UNSUPPORTED,
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Unsupported(reason) => f.write_str(reason),
        }
    }
}

/// Task failures exist only for loaded packages, and none can be loaded here.
#[derive(Debug)]
pub enum TaskError {
    Failed(String),
    Unsupported(LoadError),
}

impl TaskError {
    pub fn code(&self) -> &str {
        match self {
            TaskError::Failed(_) => codes::TASK_FAILED,
            TaskError::Unsupported(e) => e.code(),
        }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskError::Failed(details) => f.write_str(details),
            TaskError::Unsupported(e) => e.fmt(f),
        }
    }
}

/// What the sealed bytes must look like (the loader crate's formats, for the same binding code).
#[derive(Clone, Copy)]
pub enum PackageFormat {
    SharedLibrary,
    Wasm,
    Any,
}

fn not_here() -> LoadError {
    LoadError::Unsupported("guarded loading is not available in the WebAssembly build".into())
}

pub enum SealedImage {}

impl SealedImage {
    pub fn from_path(_: &Path, _: u64, _: DigestSet) -> Result<SealedImage, LoadError> {
        Err(not_here())
    }

    pub fn digests(&self) -> &PackageDigests {
        match *self {}
    }

    pub fn len(&self) -> usize {
        match *self {}
    }

    pub fn fd(&self) -> i32 {
        match *self {}
    }

    pub fn verify(self, _: &[Candidate], _: &Policy) -> Result<ClearedImage, LoadError> {
        match self {}
    }

    pub fn allow_unsigned(self) -> ClearedImage {
        match self {}
    }
}

pub enum Clearance {
    Verified { candidate: usize },
    UnsignedAllowed,
}

pub enum ClearedImage {}

impl ClearedImage {
    pub fn clearance(&self) -> &Clearance {
        match *self {}
    }

    pub fn image(&self) -> &SealedImage {
        match *self {}
    }

    pub fn bytes(&self) -> &[u8] {
        match *self {}
    }

    pub fn check_format(&self, _: PackageFormat) -> Result<(), LoadError> {
        match *self {}
    }

    pub fn open_with<T>(&self, _: impl FnOnce(&str) -> T) -> Result<T, LoadError> {
        match *self {}
    }
}

pub enum GuardedLibrary {}

impl GuardedLibrary {
    pub fn load(cleared: ClearedImage) -> Result<GuardedLibrary, LoadError> {
        match cleared {}
    }

    pub fn image(&self) -> &SealedImage {
        match *self {}
    }

    pub fn has_symbol(&self, _: &str) -> bool {
        match *self {}
    }
}

pub struct TaskMetadata {
    pub index: u32,
    pub local_id: String,
    pub namespaced_id_template: Option<String>,
    pub dependencies_json: Option<String>,
    pub description: Option<String>,
    pub source_location: Option<String>,
}

pub struct PackageMetadata {
    pub package_name: Option<String>,
    pub package_description: Option<String>,
    pub package_author: Option<String>,
    pub workflow_fingerprint: Option<String>,
    pub graph_data_json: Option<String>,
    pub tasks: Vec<TaskMetadata>,
}

#[derive(Clone)]
pub enum WorkflowPackage {}

impl WorkflowPackage {
    pub fn new(library: GuardedLibrary) -> Result<WorkflowPackage, LoadError> {
        match library {}
    }

    pub fn library(&self) -> &Arc<GuardedLibrary> {
        match *self {}
    }

    pub fn metadata(&self) -> Result<PackageMetadata, LoadError> {
        match *self {}
    }

    pub fn execute_task(&self, _: &str, _: &str, _: u32) -> Result<String, TaskError> {
        match *self {}
    }
}
