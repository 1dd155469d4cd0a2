//! Test support, compiled only with the `test-hooks` feature (the test run's addon, never the
//! published one): one error of every Rust variant, thrown exactly as a failing binding call throws it,
//! so a test can walk each through the TypeScript mapping.

use cloacina_sign_core::{codes, CoreError};
use napi::Error;

use crate::errors::{coded, core_error};

/// One error of every Rust variant, as it crosses into JS (for the test that walks each through the
/// TypeScript mapping). Adding a variant fails to compile in `variant_name` until it is listed there;
/// list a sample of it here too.
fn samples() -> Vec<(&'static str, Error)> {
    use cloacina_sign_core::Violation;
    let text = || "sample".to_string();
    let core = vec![
        CoreError::UnreadableFile {
            path: "/p".into(),
            reason: text(),
        },
        CoreError::InvalidKey(text()),
        CoreError::MalformedSignature(text()),
        CoreError::InvalidSignature(text()),
        CoreError::TamperedPackage {
            expected: "aa".into(),
            actual: "bb".into(),
        },
        CoreError::UntrustedSigner {
            fingerprint: "ff".into(),
        },
        CoreError::NoTrustedKey(text()),
        CoreError::UnsealFailed(text()),
        CoreError::SignatureNotFound(text()),
        CoreError::InvalidInput(text()),
        CoreError::PolicyRefused {
            violation: Violation::V2Required,
            reason: text(),
        },
        CoreError::PolicyRefused {
            violation: Violation::NameMismatch,
            reason: text(),
        },
        CoreError::PolicyRefused {
            violation: Violation::VersionNotAllowed,
            reason: text(),
        },
        CoreError::PolicyRefused {
            violation: Violation::RollbackRefused,
            reason: text(),
        },
        CoreError::PolicyRefused {
            violation: Violation::Expired,
            reason: text(),
        },
    ];
    let mut all: Vec<(&'static str, Error)> = Vec::new();
    for e in core {
        all.push((variant_name(&Variant::Core(&e)), core_error(e)));
    }
    #[cfg(not(target_os = "wasi"))]
    all.extend(guarded_load_samples());
    // The binding's own refusals.
    all.push((
        "binding: cleared twice",
        coded(codes::LOAD_FAILED, "sample"),
    ));
    all.push((
        "binding: closed package",
        coded(codes::PACKAGE_CLOSED, "sample"),
    ));
    all.push((
        "binding: not WebAssembly",
        coded(codes::NOT_A_WASM_MODULE, "sample"),
    ));
    all
}

/// The loader crate's errors (not linked into the WebAssembly build, which loads nothing).
#[cfg(not(target_os = "wasi"))]
fn guarded_load_samples() -> Vec<(&'static str, Error)> {
    use cloacina_sign_loader::{LoadError, TaskError};
    let text = || "sample".to_string();
    let load = vec![
        LoadError::TooLarge { size: 2, limit: 1 },
        LoadError::NotASharedLibrary(text()),
        LoadError::NotAWasmModule(text()),
        LoadError::Unreadable {
            path: "/p".into(),
            reason: text(),
        },
        LoadError::Unsupported(text()),
        LoadError::Rejected(CoreError::UntrustedSigner {
            fingerprint: "ff".into(),
        }),
        LoadError::LoadFailed(text()),
        LoadError::MissingSymbol(text()),
        LoadError::InvalidMetadata(text()),
        LoadError::UnsafeDependency(text()),
        LoadError::UnsafeEnvironment(text()),
    ];
    let task = vec![
        TaskError::Failed("{\"error\":\"x\"}".into()),
        TaskError::AbiError(7),
        TaskError::Truncated { capacity: 8 },
        TaskError::InvalidOutput(text()),
        TaskError::InvalidInput(text()),
    ];
    let mut all: Vec<(&'static str, Error)> = Vec::new();
    for e in load {
        all.push((variant_name(&Variant::Load(&e)), coded(e.code(), &e)));
    }
    for e in task {
        all.push((variant_name(&Variant::Task(&e)), coded(e.code(), &e)));
    }
    all
}

enum Variant<'a> {
    Core(&'a CoreError),
    #[cfg(not(target_os = "wasi"))]
    Load(&'a cloacina_sign_loader::LoadError),
    #[cfg(not(target_os = "wasi"))]
    Task(&'a cloacina_sign_loader::TaskError),
}

/// Exhaustive on purpose: a new variant must be named (and sampled above).
fn variant_name(variant: &Variant) -> &'static str {
    #[cfg(not(target_os = "wasi"))]
    use cloacina_sign_loader::{LoadError as L, TaskError as T};
    match variant {
        Variant::Core(e) => match e {
            CoreError::UnreadableFile { .. } => "CoreError::UnreadableFile",
            CoreError::InvalidKey(_) => "CoreError::InvalidKey",
            CoreError::MalformedSignature(_) => "CoreError::MalformedSignature",
            CoreError::InvalidSignature(_) => "CoreError::InvalidSignature",
            CoreError::TamperedPackage { .. } => "CoreError::TamperedPackage",
            CoreError::UntrustedSigner { .. } => "CoreError::UntrustedSigner",
            CoreError::NoTrustedKey(_) => "CoreError::NoTrustedKey",
            CoreError::UnsealFailed(_) => "CoreError::UnsealFailed",
            CoreError::SignatureNotFound(_) => "CoreError::SignatureNotFound",
            CoreError::InvalidInput(_) => "CoreError::InvalidInput",
            CoreError::PolicyRefused { .. } => "CoreError::PolicyRefused",
        },
        #[cfg(not(target_os = "wasi"))]
        Variant::Load(e) => match e {
            L::TooLarge { .. } => "LoadError::TooLarge",
            L::NotASharedLibrary(_) => "LoadError::NotASharedLibrary",
            L::NotAWasmModule(_) => "LoadError::NotAWasmModule",
            L::Unreadable { .. } => "LoadError::Unreadable",
            L::Unsupported(_) => "LoadError::Unsupported",
            L::Rejected(_) => "LoadError::Rejected",
            L::LoadFailed(_) => "LoadError::LoadFailed",
            L::MissingSymbol(_) => "LoadError::MissingSymbol",
            L::InvalidMetadata(_) => "LoadError::InvalidMetadata",
            L::UnsafeDependency(_) => "LoadError::UnsafeDependency",
            L::UnsafeEnvironment(_) => "LoadError::UnsafeEnvironment",
        },
        #[cfg(not(target_os = "wasi"))]
        Variant::Task(e) => match e {
            T::Failed(_) => "TaskError::Failed",
            T::AbiError(_) => "TaskError::AbiError",
            T::Truncated { .. } => "TaskError::Truncated",
            T::InvalidOutput(_) => "TaskError::InvalidOutput",
            T::InvalidInput(_) => "TaskError::InvalidInput",
        },
    }
}

/// Each sample's variant, and the code and message it carries.
#[napi_derive::napi(object)]
pub struct ErrorSample {
    pub variant: String,
    pub code: String,
    pub message: String,
}

#[napi_derive::napi]
pub fn error_samples() -> Vec<ErrorSample> {
    samples()
        .into_iter()
        .map(|(variant, error)| {
            let reason = error.reason.clone();
            let (code, message) = reason
                .strip_prefix('[')
                .and_then(|r| r.split_once("] "))
                .unwrap_or(("", &reason));
            ErrorSample {
                variant: variant.to_string(),
                code: code.to_string(),
                message: message.to_string(),
            }
        })
        .collect()
}

/// Throws sample `index` exactly as a failing binding call would.
#[napi_derive::napi]
pub fn throw_error_sample(index: u32) -> napi::Result<()> {
    match samples().into_iter().nth(index as usize) {
        Some((_, error)) => Err(error),
        None => Err(coded(codes::INVALID_INPUT, "no such error sample")),
    }
}
