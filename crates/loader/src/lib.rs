//! Guarded loading of Cloacina workflow packages (Linux).
//!
//! The runner must load exactly the bytes it verified, whatever other processes do to the file.
//! So the file is read ONCE into a memfd that is sealed against every other writer before the
//! first byte arrives, the bytes are hashed as they arrive, the memfd is sealed for good (no
//! write/grow/shrink, ever, through any descriptor), the caller's verifier decides on that digest,
//! and only then is the memfd itself dlopen'ed through `/proc/self/fd/...` — the file on disk is
//! never opened again.
//!
//! ```no_run
//! use cloacina_sign_loader::{verify_and_load, SimpleRejection, WorkflowPackage};
//! let trusted = [0u8; 32];
//! let (lib, ()) = verify_and_load(std::path::Path::new("pkg.so"), 64 << 20, |d| {
//!     if *d == trusted { Ok(()) } else { Err(SimpleRejection::new("UNTRUSTED", "unknown digest")) }
//! })?;
//! let pkg = WorkflowPackage::new(lib)?;
//! println!("{:?}", pkg.metadata()?);
//! # Ok::<(), cloacina_sign_loader::LoadError>(())
//! ```

#[cfg(not(target_os = "linux"))]
compile_error!("cloacina-sign-loader's guarded loading is implemented for Linux only");

mod elf;
mod error;
mod guarded;
mod package;
mod sealed;

use std::path::Path;

pub use elf::check_shared_library;
pub use error::{LoadError, Rejection, SimpleRejection, TaskError};
pub use guarded::{serialize_guarded, unique_proc_path, GuardedLibrary};
pub use package::{
    PackageMetadata, TaskMetadata, WorkflowPackage, DEFAULT_RESULT_CAPACITY, MAX_METADATA_STRING,
    MAX_TASK_COUNT, SYM_EXECUTE_TASK, SYM_GET_TASK_METADATA,
};
pub use sealed::SealedImage;

/// Seal, check, hash, verify, and only then load.
///
/// Order: [`SealedImage::from_path`] (size limit, seal, copy and hash, seal for good) -> [`check_shared_library`]
/// -> `verify(&digest)` -> [`GuardedLibrary::load`]. No code from the package runs (no
/// constructor) unless every earlier step succeeded. `verify` receives the SHA-256 of the sealed
/// bytes, i.e. of exactly what will be loaded; its `Ok` value is returned alongside the library,
/// its `Err` becomes [`LoadError::Rejected`] (recover the concrete type with
/// [`LoadError::downcast_rejection`]; [`LoadError::code`] returns the verifier's `code()`).
pub fn verify_and_load<V, O, E>(
    path: &Path,
    max_size: u64,
    verify: V,
) -> Result<(GuardedLibrary, O), LoadError>
where
    V: FnOnce(&[u8; 32]) -> Result<O, E>,
    E: Rejection,
{
    let image = SealedImage::from_path(path, max_size)?;
    check_shared_library(image.bytes())?;
    let digest = image.digest();
    let outcome = verify(&digest).map_err(|e| LoadError::Rejected(Box::new(e)))?;
    let lib = GuardedLibrary::load(image)?;
    Ok((lib, outcome))
}

/// [`verify_and_load`] followed by [`WorkflowPackage::new`].
pub fn verify_and_load_package<V, O, E>(
    path: &Path,
    max_size: u64,
    verify: V,
) -> Result<(WorkflowPackage, O), LoadError>
where
    V: FnOnce(&[u8; 32]) -> Result<O, E>,
    E: Rejection,
{
    let (lib, outcome) = verify_and_load(path, max_size, verify)?;
    Ok((WorkflowPackage::new(lib)?, outcome))
}
