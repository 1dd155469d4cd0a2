//! Error types with stable machine-readable codes.

use cloacina_sign_core::{codes, CoreError};

/// Everything that can go wrong before (and while) a package is loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file (or what was copied of it) exceeds the caller's limit.
    /// `size` is the size seen (for a file that grew while being copied: a lower bound).
    #[error("package is too large: {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },

    /// The sealed bytes are not a loadable ELF shared object for this machine.
    #[error("not a shared library: {0}")]
    NotASharedLibrary(String),

    /// The cleared bytes were expected to be a WebAssembly module and are not.
    #[error("not a WebAssembly module: {0}")]
    NotAWasmModule(String),

    /// The file could not be opened/read, or is not a regular file.
    #[error("cannot read package file {path}: {reason}")]
    Unreadable { path: String, reason: String },

    /// The platform lacks a facility guarded loading depends on (memfd sealing, /proc/self/fd).
    /// The loader fails closed rather than loading unguarded.
    #[error("guarded loading is not supported here: {0}")]
    Unsupported(String),

    /// Verification refused the sealed bytes; the verification error is carried unchanged.
    #[error("{0}")]
    Rejected(CoreError),

    /// The dynamic loader refused the image (dlerror text included) or a post-load check failed.
    #[error("loading the package failed: {0}")]
    LoadFailed(String),

    /// A required ABI symbol is absent.
    #[error("the package does not export the symbol {0}")]
    MissingSymbol(String),

    /// The metadata returned by `cloacina_get_task_metadata` is unusable.
    #[error("invalid package metadata: {0}")]
    InvalidMetadata(String),

    /// A dependency of the package could be supplied by someone other than root: the package has
    /// its own library search path (`DT_RPATH`/`DT_RUNPATH`) or audit libraries, a dependency
    /// name is a path or uses `$ORIGIN`-style tokens, or a dependency that is not already loaded
    /// resolves to (or could be planted in) a place that is not root-owned and closed to others,
    /// or cannot be found at all. The message names the entry, the library and the path.
    #[error("unsafe dependency: {0}")]
    UnsafeDependency(String),

    /// `LD_PRELOAD`, `LD_LIBRARY_PATH` or `LD_AUDIT` is set in the environment the process was
    /// started with, or in its current one. The message names the variable.
    #[error("unsafe environment: {0}")]
    UnsafeEnvironment(String),
}

impl LoadError {
    /// Stable machine-readable code. For `Rejected` it is the verification error's code.
    pub fn code(&self) -> &str {
        match self {
            LoadError::TooLarge { .. } => codes::PACKAGE_TOO_LARGE,
            LoadError::NotASharedLibrary(_) => codes::NOT_A_SHARED_LIBRARY,
            LoadError::NotAWasmModule(_) => codes::NOT_A_WASM_MODULE,
            LoadError::Unreadable { .. } => codes::UNREADABLE_FILE,
            LoadError::Unsupported(_) => codes::GUARDED_LOAD_UNSUPPORTED,
            LoadError::Rejected(e) => e.code(),
            LoadError::LoadFailed(_) => codes::LOAD_FAILED,
            LoadError::MissingSymbol(_) => codes::MISSING_SYMBOL,
            LoadError::InvalidMetadata(_) => codes::INVALID_METADATA,
            LoadError::UnsafeDependency(_) => codes::UNSAFE_DEPENDENCY,
            LoadError::UnsafeEnvironment(_) => codes::UNSAFE_ENVIRONMENT,
        }
    }

    /// The verification error, if this is a rejection.
    pub fn rejection(&self) -> Option<&CoreError> {
        match self {
            LoadError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

/// Errors of [`crate::WorkflowPackage::execute_task`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The task returned -1; the payload is the library's error JSON
    /// (`{"error": "...", "status": "error"}`).
    #[error("task failed: {0}")]
    Failed(String),
    /// The task returned a code other than 0 or -1.
    #[error("the package returned ABI error code {0}")]
    AbiError(i32),
    /// The result filled the whole buffer and is not valid JSON: it was probably cut off.
    #[error("the task result filled the whole {capacity}-byte buffer and appears truncated")]
    Truncated { capacity: u32 },
    /// The library reported an impossible length or wrote non-UTF-8 output.
    #[error("the package produced invalid output: {0}")]
    InvalidOutput(String),
    /// The caller's input cannot be passed through the ABI (length exceeds u32::MAX).
    #[error("invalid task input: {0}")]
    InvalidInput(String),
}

impl TaskError {
    pub fn code(&self) -> &'static str {
        match self {
            TaskError::Failed(_) => codes::TASK_FAILED,
            TaskError::AbiError(_) => codes::TASK_ABI_ERROR,
            TaskError::Truncated { .. } => codes::TASK_RESULT_TRUNCATED,
            TaskError::InvalidOutput(_) => codes::TASK_INVALID_OUTPUT,
            TaskError::InvalidInput(_) => codes::TASK_INVALID_INPUT,
        }
    }
}
