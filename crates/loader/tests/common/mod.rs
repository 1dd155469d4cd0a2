#![allow(dead_code)]
//! Shared helpers: compile C fixtures from tests/fixtures with `cc -shared -fPIC`.

use std::path::{Path, PathBuf};
use std::process::Command;

use cloacina_sign_core::digest::sha256;
use cloacina_sign_core::keys::{self, PublicKey};
use cloacina_sign_core::signature::DetachedSignature;
use cloacina_sign_core::verify::{sign_digest, Candidate};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
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

/// The test's signing key; `trusted_signature` pairs its signature with its public key.
const TEST_SEED: [u8; 32] = [7u8; 32];

fn test_signature(digest: &[u8; 32]) -> DetachedSignature {
    DetachedSignature {
        package_hash: *digest,
        key_fingerprint: sha256(&keys::public_key_of(&TEST_SEED)),
        signature: sign_digest(&TEST_SEED, digest),
        signed_at: "2026-01-01T00:00:00Z".into(),
    }
}

/// A valid signature over `digest` by a trusted key: the load is cleared.
pub fn accept_all(digest: &[u8; 32]) -> Vec<Candidate> {
    let key = PublicKey::from_bytes(&keys::public_key_of(&TEST_SEED)).unwrap();
    vec![Candidate {
        signature: test_signature(digest),
        public_key: Some(key),
    }]
}

/// A valid signature over `digest` by a key nobody trusts: the load is refused (UNTRUSTED_SIGNER).
pub fn reject(digest: &[u8; 32]) -> Vec<Candidate> {
    vec![Candidate {
        signature: test_signature(digest),
        public_key: None,
    }]
}

pub const MAX: u64 = 64 << 20;

pub type WhichFn = unsafe extern "C" fn() -> libc::c_int;
