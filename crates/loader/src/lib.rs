//! Guarded loading of Cloacina workflow packages (Linux).
//!
//! The runner must load exactly the bytes it verified, whatever other processes do to the file.
//! So the file is read ONCE into a memfd that is sealed against every other writer before the
//! first byte arrives, the bytes are hashed as they arrive, the memfd is sealed for good (no
//! write/grow/shrink, ever, through any descriptor), the caller's verifier decides on that digest,
//! and only then are the bytes parsed (ELF checks, dependency policy) and the memfd itself
//! dlopen'ed through `/proc/self/fd/...` — the file on disk is never opened again. Nothing parses
//! bytes whose signature was not decided: a [`SealedImage`] does not hand its bytes out, a
//! [`ClearedImage`] does (see [`ClearedImage::check_format`]).
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
mod link_map;
mod package;
mod process;
mod sealed;
#[cfg(test)]
mod test_cc;

use std::path::Path;

use cloacina_sign_core::digest::{DigestSet, PackageDigests};
use cloacina_sign_core::policy::Policy;

pub use cleared::{Clearance, ClearedImage, PackageFormat};
pub use cloacina_sign_core::verify::Candidate;
pub use deps::{
    check_dependencies, check_environment, Dependency, DependencyCheck, Resolution,
    LOADER_VARIABLES,
};
pub use elf::{check_shared_library, MAX_PHNUM};
pub use error::{LoadError, TaskError};
pub use guarded::GuardedLibrary;
pub use package::{
    PackageMetadata, TaskMetadata, WorkflowPackage, DEFAULT_RESULT_CAPACITY, MAX_METADATA_STRING,
    MAX_TASK_COUNT, SYM_EXECUTE_TASK, SYM_GET_TASK_METADATA,
};
pub use process::{serialize_guarded, unique_proc_path};
pub use sealed::SealedImage;

/// Seal, check, verify, and only then load.
///
/// Order: [`SealedImage::from_path`] (size limit, seal, copy and hash, seal for good) ->
/// `candidates_for(&digest)` -> [`SealedImage::verify`] -> [`GuardedLibrary::load`] (which runs
/// the ELF checks and enforces the dependency policy, [`check_dependencies`], right before
/// `dlopen`). No byte of the package is parsed before its signature verified, and no code from
/// the package runs (no constructor) unless every earlier step succeeded. `candidates_for` receives the size, SHA-256 and BLAKE3 of the sealed bytes,
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

/// The order as a count: bytes whose signature failed are never parsed (no ELF check, no
/// dependency policy), and bytes whose signature verified are.
#[cfg(test)]
mod verify_first {
    use super::*;
    use crate::cleared::FORMAT_CHECKS;
    use cloacina_sign_core::digest::sha256;
    use cloacina_sign_core::document::SignatureDocument;
    use cloacina_sign_core::keys::{self, PublicKey};
    use cloacina_sign_core::signature::DetachedSignature;
    use cloacina_sign_core::verify::sign_digest;

    const SEED: [u8; 32] = [9u8; 32];

    /// A signature by the test key over `digest`, paired with that key (or, untrusted, with none).
    fn signed(digest: [u8; 32], trusted: bool) -> Vec<Candidate> {
        let key = PublicKey::from_bytes(&keys::public_key_of(&SEED)).unwrap();
        vec![Candidate {
            signature: SignatureDocument::V1(DetachedSignature {
                package_hash: digest,
                key_fingerprint: sha256(&keys::public_key_of(&SEED)),
                signature: sign_digest(&SEED, &digest),
                signed_at: "2026-01-01T00:00:00Z".into(),
            }),
            public_key: trusted.then(|| key.into()),
        }]
    }

    /// Writes `bytes`, loads them with the candidates `candidates_for` gives, and returns the error
    /// and how many times the package's bytes were parsed.
    fn parses_during(
        bytes: &[u8],
        candidates_for: impl FnOnce(&PackageDigests) -> Vec<Candidate>,
    ) -> (LoadError, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("package.so");
        std::fs::write(&path, bytes).unwrap();
        FORMAT_CHECKS.with(|n| n.set(0));
        let err = verify_and_load(&path, 1 << 20, &Policy::default(), candidates_for).unwrap_err();
        (err, FORMAT_CHECKS.with(|n| n.get()))
    }

    const NOT_ELF: &[u8] = b"\x7fELF but nothing an ELF parser would accept";

    #[test]
    fn when_the_bytes_differ_from_what_was_signed_they_are_never_parsed() {
        let (err, parsed) = parses_during(NOT_ELF, |_| signed(sha256(b"what was signed"), true));
        assert_eq!(err.code(), "TAMPERED_PACKAGE", "{err}");
        assert_eq!(parsed, 0);
    }

    #[test]
    fn when_the_signer_is_not_trusted_the_bytes_are_never_parsed() {
        let (err, parsed) = parses_during(NOT_ELF, |d| signed(d.sha256.unwrap(), false));
        assert_eq!(err.code(), "UNTRUSTED_SIGNER", "{err}");
        assert_eq!(parsed, 0);
    }

    #[test]
    fn when_there_is_no_signature_the_bytes_are_never_parsed() {
        let (err, parsed) = parses_during(NOT_ELF, |_| Vec::new());
        assert_eq!(err.code(), "SIGNATURE_NOT_FOUND", "{err}");
        assert_eq!(parsed, 0);
    }

    #[test]
    fn when_the_signature_verifies_the_bytes_are_parsed_and_refused_as_no_library() {
        let (err, parsed) = parses_during(NOT_ELF, |d| signed(d.sha256.unwrap(), true));
        assert_eq!(err.code(), "NOT_A_SHARED_LIBRARY", "{err}");
        assert_eq!(parsed, 1);
    }

    #[test]
    fn when_cleared_bytes_are_checked_as_webassembly_the_magic_decides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("module.wasm");
        let digests = DigestSet {
            sha256: true,
            blake3: false,
        };
        std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();
        let wasm = SealedImage::from_path(&path, 64, digests)
            .unwrap()
            .allow_unsigned();
        assert!(wasm.check_format(PackageFormat::Wasm).is_ok());
        std::fs::write(&path, b"MZ\x90\0").unwrap();
        let not_wasm = SealedImage::from_path(&path, 64, digests)
            .unwrap()
            .allow_unsigned();
        let err = not_wasm.check_format(PackageFormat::Wasm).unwrap_err();
        assert_eq!(err.code(), "NOT_A_WASM_MODULE", "{err}");
        assert!(not_wasm.check_format(PackageFormat::Any).is_ok());
    }
}
