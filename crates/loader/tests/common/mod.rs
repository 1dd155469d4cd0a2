#![allow(dead_code)]
//! Shared helpers: compile C fixtures from tests/fixtures with `cc -shared -fPIC` (see
//! [`c_compiler`]); re-execute the
//! test binary without the loader variables `cargo test` sets (see `loader_env.rs`).

mod loader_env;
#[path = "../../src/test_cc.rs"]
mod test_cc;

pub use test_cc::c_compiler;

use std::path::{Path, PathBuf};
use std::process::Command;

use cloacina_sign_core::digest::sha256;
use cloacina_sign_core::digest::PackageDigests;
use cloacina_sign_core::document::SignatureDocument;
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
    let status = Command::new(c_compiler())
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

/// Whether `name` is how a package built by [`c_compiler`] names the C library: glibc's
/// `libc.so.6`; for musl, Debian's `libc.so` or Alpine's `libc.musl-<arch>.so.1`.
pub fn names_the_c_library(name: &str) -> bool {
    if cfg!(target_env = "musl") {
        name == "libc.so" || name.starts_with("libc.musl-")
    } else {
        name == "libc.so.6"
    }
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
pub fn accept_all(digests: &PackageDigests) -> Vec<Candidate> {
    let digest = &digests.sha256.expect("the test hashes SHA-256");
    let key = PublicKey::from_bytes(&keys::public_key_of(&TEST_SEED)).unwrap();
    vec![Candidate {
        signature: SignatureDocument::V1(test_signature(digest)),
        public_key: Some(key.into()),
    }]
}

/// A valid signature over `digest` by a key nobody trusts: the load is refused (UNTRUSTED_SIGNER).
pub fn reject(digests: &PackageDigests) -> Vec<Candidate> {
    let digest = &digests.sha256.expect("the test hashes SHA-256");
    vec![Candidate {
        signature: SignatureDocument::V1(test_signature(digest)),
        public_key: None,
    }]
}

pub const MAX: u64 = 64 << 20;

pub type WhichFn = unsafe extern "C" fn() -> libc::c_int;

/// The environment variable naming the scenario a child copy of a test binary runs.
pub const CHILD_SCENARIO: &str = "CLOACINA_TEST_CHILD";

/// Runs the test `test` of this test binary again, alone, in a fresh process with `envs` added
/// to the environment. With `keep_loader_env`, LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT among
/// `envs` reach the child's initial environment (otherwise the child strips them, see
/// `loader_env.rs`).
pub fn run_test_in_child(
    test: &str,
    envs: &[(&str, &std::ffi::OsStr)],
    keep_loader_env: bool,
) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    if keep_loader_env {
        cmd.env("CLOACINA_TEST_KEEP_LOADER_ENV", "1");
    }
    cmd.output().expect("running the test binary")
}

/// The child's combined output, for assertion messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A program header, as located in a file.
#[derive(Debug, Clone, Copy)]
pub struct Phdr {
    /// File offset of the header itself.
    pub at: usize,
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;

pub fn rd64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

pub fn wr64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The program headers of a (well-formed) ELF64 file.
pub fn phdrs(b: &[u8]) -> Vec<Phdr> {
    let phoff = rd64(b, 32) as usize;
    let phnum = u16::from_le_bytes([b[56], b[57]]) as usize;
    (0..phnum)
        .map(|i| {
            let at = phoff + 56 * i;
            Phdr {
                at,
                p_type: u32::from_le_bytes(b[at..at + 4].try_into().unwrap()),
                p_flags: u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()),
                p_offset: rd64(b, at + 8),
                p_vaddr: rd64(b, at + 16),
                p_filesz: rd64(b, at + 32),
                p_memsz: rd64(b, at + 40),
                p_align: rd64(b, at + 48),
            }
        })
        .collect()
}

/// A dynamic entry: file offset of the entry, tag, value.
#[derive(Debug, Clone, Copy)]
pub struct DynEntry {
    pub at: usize,
    pub tag: u64,
    pub val: u64,
}

/// The dynamic entries of a (well-formed) ELF64 shared object, up to and including DT_NULL.
pub fn dyn_entries(b: &[u8]) -> Vec<DynEntry> {
    let dynamic = phdrs(b)
        .into_iter()
        .find(|p| p.p_type == PT_DYNAMIC)
        .expect("PT_DYNAMIC");
    let mut out = Vec::new();
    let mut at = dynamic.p_offset as usize;
    loop {
        let e = DynEntry {
            at,
            tag: rd64(b, at),
            val: rd64(b, at + 8),
        };
        out.push(e);
        if e.tag == 0 {
            return out;
        }
        at += 16;
    }
}

/// The dynamic entry with `tag` (panics when absent).
pub fn dyn_entry(b: &[u8], tag: u64) -> DynEntry {
    dyn_entries(b)
        .into_iter()
        .find(|e| e.tag == tag)
        .unwrap_or_else(|| panic!("no dynamic tag 0x{tag:x}"))
}

/// Maps a virtual address of a (well-formed) file to its file offset.
pub fn file_offset(b: &[u8], vaddr: u64) -> usize {
    let p = phdrs(b)
        .into_iter()
        .find(|p| p.p_type == PT_LOAD && vaddr >= p.p_vaddr && vaddr < p.p_vaddr + p.p_filesz)
        .expect("address inside a PT_LOAD");
    (p.p_offset + (vaddr - p.p_vaddr)) as usize
}

/// Builds tests/fixtures/fuzz_target.c (see the file).
pub fn build_fuzz_target(dir: &Path) -> PathBuf {
    build(
        dir,
        "fuzz_target.c",
        "fuzz_target.so",
        &[
            "-nostartfiles",
            "-Wl,--hash-style=both",
            "-Wl,-soname,libfuzz_target.so",
            "-Wl,--no-as-needed",
            "-lc",
        ],
    )
}

/// The SHA-256-only digests of a version-1 check, for tests that build them by hand.
pub fn sha256_digests(digest: [u8; 32]) -> PackageDigests {
    PackageDigests {
        size: 0,
        sha256: Some(digest),
        blake3: None,
    }
}
