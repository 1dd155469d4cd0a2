//! "Verified before loaded" as a type: the only value [`crate::GuardedLibrary::load`] accepts.

use cloacina_sign_core::policy::Policy;
use cloacina_sign_core::verification_key::VerificationKey;
use cloacina_sign_core::verify::{verify_any, Candidate};

use crate::deps::{check_dependencies, DependencyCheck};
use crate::error::LoadError;
use crate::process::{serialize_guarded, unique_proc_path};
use crate::sealed::SealedImage;

/// Why a [`ClearedImage`] may be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clearance {
    /// A signature over the sealed digest verified under a trusted key.
    Verified {
        /// Which candidate verified (its index in the list given to [`SealedImage::verify`]).
        candidate: usize,
        /// The fingerprint of the trusted public key that verified it (SHA-256 of its stored form:
        /// the raw Ed25519 key, or the SubjectPublicKeyInfo DER of a P-256 key).
        signer_fingerprint: [u8; 32],
    },
    /// The caller's policy does not require signatures and the package carried none.
    UnsignedAllowed,
}

/// A sealed image whose load was decided. It can only be made by [`SealedImage::verify`] (a
/// signature over exactly these sealed bytes verified under a trusted key) or by
/// [`SealedImage::allow_unsigned`] (an explicit policy decision, recorded in [`Clearance`]).
/// Its bytes, and the format checks on them ([`ClearedImage::check_format`]), exist only here.
#[derive(Debug)]
pub struct ClearedImage {
    image: SealedImage,
    clearance: Clearance,
}

/// What cleared bytes must be before anything may use them. Checked by
/// [`ClearedImage::check_format`], i.e. only after the signature (or policy) decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageFormat {
    /// An ELF shared object for this machine that passes the ELF checks and the dependency policy
    /// ([`crate::check_shared_library`], [`check_dependencies`]).
    SharedLibrary,
    /// A WebAssembly module: starts with the WebAssembly magic (`\0asm`).
    Wasm,
    /// Anything: the signature alone decides.
    Any,
}

const WASM_MAGIC: &[u8] = b"\0asm";

#[cfg(test)]
thread_local! {
    /// How many times this thread parsed a package's bytes (`dependency_check`): the order tests
    /// count that it never happens for bytes whose signature failed.
    pub(crate) static FORMAT_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl ClearedImage {
    pub fn clearance(&self) -> &Clearance {
        &self.clearance
    }

    /// The sealed bytes that were cleared (their descriptor, size and digests).
    pub fn image(&self) -> &SealedImage {
        &self.image
    }

    /// The cleared bytes: exactly what was hashed, and what a load maps.
    ///
    /// ```no_run
    /// # use cloacina_sign_core::digest::DigestSet;
    /// use cloacina_sign_loader::PackageFormat;
    /// let image = cloacina_sign_loader::SealedImage::from_path(
    ///     std::path::Path::new("pkg.so"), 1 << 20, DigestSet::SHA256).unwrap();
    /// let cleared = image.allow_unsigned(); // or image.verify(&candidates, &policy)?
    /// cleared.check_format(PackageFormat::SharedLibrary).unwrap();
    /// let _ = cleared.bytes();
    /// ```
    pub fn bytes(&self) -> &[u8] {
        self.image.bytes()
    }

    /// Checks that the cleared bytes are what the caller will use them as. The only way to run the
    /// format checks on a package's bytes: taking `&ClearedImage` makes "signature first, then
    /// parsing" a rule of the types. Errors: `NotASharedLibrary`, `UnsafeDependency`,
    /// `UnsafeEnvironment` (a shared library), `NotAWasmModule`.
    pub fn check_format(&self, format: PackageFormat) -> Result<(), LoadError> {
        match format {
            // What the dependency check holds loaded is let go here: a load checks again, under
            // the guarded-load lock, right before dlopen.
            PackageFormat::SharedLibrary => self.dependency_check().map(drop),
            PackageFormat::Wasm if self.bytes().starts_with(WASM_MAGIC) => Ok(()),
            PackageFormat::Wasm => Err(LoadError::NotAWasmModule(
                "the file does not start with the WebAssembly magic bytes".into(),
            )),
            PackageFormat::Any => Ok(()),
        }
    }

    /// The ELF checks, then the dependency policy ([`check_dependencies`]), on the cleared bytes:
    /// the one way this crate parses a package's bytes (`check_format`, `open_with` and
    /// [`crate::GuardedLibrary::load`] all come here).
    pub(crate) fn dependency_check(&self) -> Result<DependencyCheck, LoadError> {
        #[cfg(test)]
        FORMAT_CHECKS.with(|n| n.set(n.get() + 1));
        check_dependencies(self.bytes())
    }

    pub(crate) fn into_image(self) -> SealedImage {
        self.image
    }

    /// Runs `open(path)`, for a loader of shared objects other than our own `dlopen` (Node's
    /// `process.dlopen`), with a `/proc/self/fd/...` path of this image no load used before, under
    /// the guarded-load lock and after the same ELF and dependency checks as
    /// [`crate::GuardedLibrary::load`]. Keep the image alive for as long as what `open` loaded.
    pub fn open_with<T>(&self, open: impl FnOnce(&str) -> T) -> Result<T, LoadError> {
        serialize_guarded(|| {
            // Holds already-loaded dependencies loaded until `open` has returned.
            let _dependencies = self.dependency_check()?;
            let path = unique_proc_path(self.image.fd());
            Ok(open(&path))
        })
    }
}

impl SealedImage {
    /// Accepts the image when any candidate signature verifies over the sealed bytes' digests and
    /// satisfies the policy (see [`verify_any`] for the order of checks and which error is
    /// reported). On refusal the image is dropped: nothing of it can be loaded.
    pub fn verify(
        self,
        candidates: &[Candidate],
        policy: &Policy,
    ) -> Result<ClearedImage, LoadError> {
        let candidate =
            verify_any(self.digests(), candidates, policy).map_err(LoadError::Rejected)?;
        let key: &VerificationKey = candidates[candidate]
            .public_key
            .as_ref()
            .expect("a verified candidate has a trusted key");
        let signer_fingerprint = key.fingerprint();
        Ok(ClearedImage {
            image: self,
            clearance: Clearance::Verified {
                candidate,
                signer_fingerprint,
            },
        })
    }

    /// The policy decision of a caller that does not require signatures, for a package that has
    /// none. Never call it for a package whose signature failed: a bad signature is never ignored.
    pub fn allow_unsigned(self) -> ClearedImage {
        ClearedImage {
            image: self,
            clearance: Clearance::UnsignedAllowed,
        }
    }
}
