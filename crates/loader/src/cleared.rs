//! "Verified before loaded" as a type: the only value [`crate::GuardedLibrary::load`] accepts.

use cloacina_sign_core::keys::VerificationKey;
use cloacina_sign_core::policy::Policy;
use cloacina_sign_core::verify::{verify_any, Candidate};

use crate::deps::check_dependencies;
use crate::elf::check_shared_library;
use crate::error::LoadError;
use crate::guarded::{serialize_guarded, unique_proc_path};
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
#[derive(Debug)]
pub struct ClearedImage {
    image: SealedImage,
    clearance: Clearance,
}

impl ClearedImage {
    pub fn clearance(&self) -> &Clearance {
        &self.clearance
    }

    /// The sealed bytes that were cleared.
    pub fn image(&self) -> &SealedImage {
        &self.image
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
            check_shared_library(self.image.bytes())?;
            // Holds already-loaded dependencies loaded until `open` has returned.
            let _dependencies = check_dependencies(self.image.bytes())?;
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
