//! The order of a guarded load with real libraries: the signature decides before any byte is
//! parsed, the format checks run on cleared bytes only, and they run no code of the package.

mod common;

use std::path::Path;

use cloacina_sign_core::digest::DigestSet;
use cloacina_sign_core::policy::Policy;
use cloacina_sign_loader::{verify_and_load, PackageFormat, SealedImage};
use common::*;

/// A library whose constructor leaves a marker file; its path and the marker's.
fn marker_lib(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let marker = dir.join(format!("{name}.marker"));
    let def = format!("-DMARKER_PATH=\"{}\"", marker.display());
    let so = build(dir, "constructor.c", &format!("{name}.so"), &[&def]);
    (so, marker)
}

#[test]
fn when_a_byte_of_the_program_headers_changed_after_signing_it_is_tampered_and_no_code_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (so, marker) = marker_lib(dir.path(), "headers");
    let signed = sha256_digests(sha256_file(&so));
    let mut bytes = std::fs::read(&so).unwrap();
    bytes[72] ^= 0xff;
    std::fs::write(&so, &bytes).unwrap();
    let err = verify_and_load(&so, MAX, &Policy::default(), |_| accept_all(&signed)).unwrap_err();
    assert_eq!(err.code(), "TAMPERED_PACKAGE", "{err}");
    assert!(!marker.exists(), "a constructor ran for a tampered package");
}

#[test]
fn when_the_signature_verifies_the_format_checks_pass_without_running_any_code() {
    let dir = tempfile::tempdir().unwrap();
    let (so, marker) = marker_lib(dir.path(), "checked");
    let image = SealedImage::from_path(&so, MAX, DigestSet::SHA256).unwrap();
    let candidates = accept_all(image.digests());
    let cleared = image.verify(&candidates, &Policy::default()).unwrap();
    cleared.check_format(PackageFormat::SharedLibrary).unwrap();
    assert!(
        !marker.exists(),
        "a format check ran the package's constructor"
    );
    let err = cleared.check_format(PackageFormat::Wasm).unwrap_err();
    assert_eq!(err.code(), "NOT_A_WASM_MODULE", "{err}");
}
