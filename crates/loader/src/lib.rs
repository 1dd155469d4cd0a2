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
//! use cloacina_sign_core::digest::PackageDigests;
//! use cloacina_sign_core::policy::Policy;
//! use cloacina_sign_loader::{verify_and_load_package, Candidate};
//! # fn candidates_for(digests: &PackageDigests) -> Vec<Candidate> { Vec::new() }
//! // `candidates_for` pairs the package's signatures with the keys the caller trusts.
//! let policy = Policy::default();
//! let pkg = verify_and_load_package(std::path::Path::new("pkg.so"), 64 << 20, &policy, candidates_for)?;
//! println!("{:?}", pkg.metadata()?);
//! # Ok::<(), cloacina_sign_loader::LoadError>(())
//! ```

#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

#[cfg(not(target_os = "linux"))]
compile_error!("cloacina-sign-loader's guarded loading is implemented for Linux only");

mod cleared;
mod deps;
mod elf;
mod error;
mod guarded;
mod package;
mod sealed;
#[cfg(test)]
mod test_cc;

use std::path::Path;

use cloacina_sign_core::digest::{DigestSet, PackageDigests};
use cloacina_sign_core::policy::Policy;

pub use cleared::{Clearance, ClearedImage};
pub use cloacina_sign_core::verify::Candidate;
pub use deps::{
    check_dependencies, check_environment, Dependency, DependencyCheck, Resolution,
    LOADER_VARIABLES,
};
pub use elf::{check_shared_library, MAX_PHNUM};
pub use error::{LoadError, TaskError};
pub use guarded::{serialize_guarded, unique_proc_path, GuardedLibrary};
pub use package::{
    PackageMetadata, TaskMetadata, WorkflowPackage, DEFAULT_RESULT_CAPACITY, MAX_METADATA_STRING,
    MAX_TASK_COUNT, SYM_EXECUTE_TASK, SYM_GET_TASK_METADATA,
};
pub use sealed::SealedImage;

/// Seal, check, verify, and only then load.
///
/// Order: [`SealedImage::from_path`] (size limit, seal, copy and hash, seal for good) ->
/// [`check_shared_library`] -> `candidates_for(&digest)` -> [`SealedImage::verify`] ->
/// [`GuardedLibrary::load`] (which enforces the dependency policy, [`check_dependencies`], right
/// before `dlopen`). No code from the package runs (no constructor) unless every earlier
/// step succeeded. `candidates_for` receives the size, SHA-256 and BLAKE3 of the sealed bytes,
/// i.e. of exactly what will be loaded, and returns the package's signatures paired with the
/// trusted keys. A refusal is [`LoadError::Rejected`] carrying the verification (or policy) error.
pub fn verify_and_load<F>(
    path: &Path,
    max_size: u64,
    policy: &Policy,
    candidates_for: F,
) -> Result<GuardedLibrary, LoadError>
where
    F: FnOnce(&PackageDigests) -> Vec<Candidate>,
{
    let image = SealedImage::from_path(
        path,
        max_size,
        DigestSet {
            sha256: true,
            blake3: true,
        },
    )?;
    check_shared_library(image.bytes())?;
    let candidates = candidates_for(image.digests());
    GuardedLibrary::load(image.verify(&candidates, policy)?)
}

/// [`verify_and_load`] followed by [`WorkflowPackage::new`].
pub fn verify_and_load_package<F>(
    path: &Path,
    max_size: u64,
    policy: &Policy,
    candidates_for: F,
) -> Result<WorkflowPackage, LoadError>
where
    F: FnOnce(&PackageDigests) -> Vec<Candidate>,
{
    WorkflowPackage::new(verify_and_load(path, max_size, policy, candidates_for)?)
}

// `cargo test` runs test binaries with LD_LIBRARY_PATH set, which the dependency policy refuses:
// the test binary re-executes itself without it (see the file).
#[cfg(test)]
#[path = "../tests/common/loader_env.rs"]
mod loader_env;
