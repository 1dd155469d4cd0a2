#![allow(dead_code)]
//! Shared helpers: compile C fixtures from tests/fixtures with `cc -shared -fPIC`.

use std::path::{Path, PathBuf};
use std::process::Command;

use cloacina_sign_loader::{Rejection, SimpleRejection};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The package ABI header (`cloacina_package.h`), shared with the example package and the JS tests.
fn abi_include() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflow");
    format!("-I{}", dir.display())
}

/// Compiles tests/fixtures/<src> into <dir>/<out> and returns the output path.
pub fn build(dir: &Path, src: &str, out: &str, extra: &[&str]) -> PathBuf {
    let out_path = dir.join(out);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1"])
        .arg(abi_include())
        .arg("-o")
        .arg(&out_path)
        .arg(fixture(src))
        .args(extra)
        .status()
        .expect("running cc");
    assert!(status.success(), "cc failed for {src} {extra:?}");
    out_path
}

pub fn sha256_file(path: &Path) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).into()
}

pub fn accept_all(_: &[u8; 32]) -> Result<(), SimpleRejection> {
    Ok(())
}

pub fn reject(_: &[u8; 32]) -> Result<(), SimpleRejection> {
    Err(SimpleRejection::new("SIGNATURE_INVALID", "no valid signature"))
}

pub const MAX: u64 = 64 << 20;

pub type WhichFn = unsafe extern "C" fn() -> libc::c_int;

/// A verifier-error type of the caller's own, to test that the typed error comes back.
#[derive(Debug, PartialEq, Eq)]
pub struct Untrusted(pub String);
impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "untrusted digest {}", self.0)
    }
}
impl std::error::Error for Untrusted {}
impl Rejection for Untrusted {
    fn code(&self) -> &str {
        "UNTRUSTED_SIGNER"
    }
}
