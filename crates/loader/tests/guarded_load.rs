//! Sealing, checks before load, verification ordering, constructors.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::cell::Cell;
use std::path::Path;

use cloacina_sign_core::digest::DigestSet;
use cloacina_sign_core::policy::Policy;
use cloacina_sign_core::CoreError;
use cloacina_sign_loader::{
    check_shared_library, verify_and_load, Clearance, GuardedLibrary, LoadError, SealedImage,
};
use common::*;

fn ctor_lib(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let marker = dir.join(format!("{name}.marker"));
    let def = format!("-DMARKER_PATH=\"{}\"", marker.display());
    let so = build(dir, "constructor.c", &format!("{name}.so"), &[&def]);
    (so, marker)
}

/// Runs verify_and_load with candidates that verify (or come from an untrusted key), recording
/// whether verification was reached.
fn load_counting(path: &Path, max: u64, accept: bool) -> (Result<GuardedLibrary, LoadError>, bool) {
    let called = Cell::new(false);
    let r = verify_and_load(path, max, &Policy::default(), |d| {
        called.set(true);
        if accept {
            accept_all(d)
        } else {
            reject(d)
        }
    });
    (r, called.get())
}

#[test]
fn constructor_runs_only_after_acceptance() {
    let dir = tempfile::tempdir().unwrap();
    let (so, marker) = ctor_lib(dir.path(), "ctor");

    let (r, called) = load_counting(&so, MAX, false);
    let err = r.unwrap_err();
    assert!(called);
    assert_eq!(err.code(), "UNTRUSTED_SIGNER");
    assert!(matches!(err, LoadError::Rejected(_)));
    assert!(!marker.exists(), "constructor ran for a rejected package");

    let (r, called) = load_counting(&so, MAX, true);
    let lib = r.unwrap();
    assert!(called);
    assert!(
        marker.exists(),
        "constructor did not run for the accepted package"
    );
    // SAFETY: `which` is `int which(void)` in the fixture, called only while `lib` lives.
    let which: WhichFn = unsafe { lib.symbol("which").unwrap() };
    // SAFETY: a fixture function taking no arguments; the library is still loaded.
    assert_eq!(unsafe { which() }, 42);
}

#[test]
fn the_verification_error_comes_back_and_nothing_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (so, marker) = ctor_lib(dir.path(), "typed");
    let err = verify_and_load(&so, MAX, &Policy::default(), reject).unwrap_err();
    assert_eq!(err.code(), "UNTRUSTED_SIGNER");
    assert!(
        matches!(err.rejection(), Some(CoreError::UntrustedSigner { .. })),
        "{err:?}"
    );
    // A signature over other bytes: the hash is checked first.
    let err = verify_and_load(&so, MAX, &Policy::default(), |_| {
        accept_all(&sha256_digests([0u8; 32]))
    })
    .unwrap_err();
    assert!(
        matches!(err.rejection(), Some(CoreError::TamperedPackage { .. })),
        "{err:?}"
    );
    // No signature at all.
    let err = verify_and_load(&so, MAX, &Policy::default(), |_| Vec::new()).unwrap_err();
    assert_eq!(err.code(), "SIGNATURE_NOT_FOUND");
    assert!(!marker.exists());
    assert!(LoadError::LoadFailed("x".into()).rejection().is_none());
}

#[test]
fn only_a_cleared_image_loads_and_it_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (so, marker) = ctor_lib(dir.path(), "cleared");
    let image = SealedImage::from_path(&so, MAX, DigestSet::SHA256).unwrap();
    let digests = *image.digests();
    let cleared = image
        .verify(&accept_all(&digests), &Policy::default())
        .unwrap();
    assert!(matches!(
        cleared.clearance(),
        Clearance::Verified { candidate: 0, .. }
    ));
    assert!(!marker.exists(), "verification must not run package code");
    let lib = GuardedLibrary::load(cleared).unwrap();
    assert!(marker.exists());
    assert!(matches!(lib.clearance(), Clearance::Verified { .. }));
    let unsigned = GuardedLibrary::load(
        SealedImage::from_path(&so, MAX, DigestSet::SHA256)
            .unwrap()
            .allow_unsigned(),
    )
    .unwrap();
    assert_eq!(unsigned.clearance(), &Clearance::UnsignedAllowed);
}

#[test]
fn digest_is_sha256_of_the_file_and_outcome_is_returned() {
    let dir = tempfile::tempdir().unwrap();
    let (so, _) = ctor_lib(dir.path(), "digest");
    let expected = sha256_file(&so);
    let seen = Cell::new(None);
    let lib = verify_and_load(&so, MAX, &Policy::default(), |d| {
        seen.set(d.sha256);
        accept_all(d)
    })
    .unwrap();
    assert_eq!(seen.get(), Some(expected));
    assert_eq!(lib.digests().sha256, Some(expected));
    assert_eq!(
        lib.digests().blake3,
        Some(cloacina_sign_core::digest::blake3(
            &std::fs::read(&so).unwrap()
        ))
    );
    assert_eq!(lib.digests().size, std::fs::metadata(&so).unwrap().len());
    let image = lib.image();
    assert_eq!(lib.bytes(), std::fs::read(&so).unwrap().as_slice());
    assert_eq!(image.len() as u64, std::fs::metadata(&so).unwrap().len());
    // The library was loaded under a unique /proc/self/fd path naming the memfd.
    assert!(lib.path().starts_with("/proc/self/fd/"));
    assert!(lib.path().ends_with(&format!("/{}", image.fd())));
    let link = std::fs::read_link(format!("/proc/self/fd/{}", image.fd())).unwrap();
    assert!(
        link.to_string_lossy()
            .starts_with("/memfd:cloacina-package"),
        "{link:?}"
    );
}

#[test]
fn sealed_image_is_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let (so, _) = ctor_lib(dir.path(), "seal");
    let image = SealedImage::from_path(&so, MAX, DigestSet::SHA256).unwrap();
    // SAFETY: F_GET_SEALS only queries the image's memfd.
    let seals = unsafe { libc::fcntl(image.fd(), libc::F_GET_SEALS) };
    let all = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    assert_eq!(seals & all, all);
    // Writing through a fresh descriptor opened via /proc fails, as does truncation.
    let p = format!("/proc/self/fd/{}", image.fd());
    let f = std::fs::OpenOptions::new().write(true).open(&p);
    match f {
        Ok(f) => {
            use std::io::Write;
            assert!((&f).write_all(b"evil").is_err());
            assert!(f.set_len(10).is_err());
        }
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
    }
    // Overwriting the original file does not change the image.
    let cleared = image.allow_unsigned();
    let before = cleared.bytes().to_vec();
    std::fs::write(&so, b"changed").unwrap();
    assert_eq!(cleared.bytes(), before.as_slice());
}

#[test]
fn wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notelf.so");
    std::fs::write(&p, b"MZ\x90\x00 this is not an ELF file at all").unwrap();
    let (r, called) = load_counting(&p, MAX, true);
    let err = r.unwrap_err();
    assert!(called, "the signature is decided before any byte is parsed");
    assert_eq!(err.code(), "NOT_A_SHARED_LIBRARY");
    assert!(
        err.to_string().contains("not an ELF file (magic 4d5a9000"),
        "{err}"
    );
}

#[test]
fn truncated_elf_never_runs_constructor() {
    let dir = tempfile::tempdir().unwrap();
    let (so, marker) = ctor_lib(dir.path(), "trunc");
    let bytes = std::fs::read(&so).unwrap();
    let half = dir.path().join("half.so");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let (r, called) = load_counting(&half, MAX, true);
    let err = r.unwrap_err();
    assert!(called, "the signature is decided before any byte is parsed");
    assert_eq!(err.code(), "NOT_A_SHARED_LIBRARY");
    assert!(err.to_string().contains("truncated:"), "{err}");
    assert!(!marker.exists());
    // GuardedLibrary::load repeats the check even if a caller skips verify_and_load.
    let image = SealedImage::from_path(&half, MAX, DigestSet::SHA256)
        .unwrap()
        .allow_unsigned();
    assert_eq!(
        GuardedLibrary::load(image).unwrap_err().code(),
        "NOT_A_SHARED_LIBRARY"
    );
    assert!(!marker.exists());
    // Every prefix of the library is either rejected or (header-only prefixes) never panics.
    for n in (0..bytes.len()).step_by(97) {
        assert!(
            check_shared_library(&bytes[..n]).is_err(),
            "prefix {n} accepted"
        );
    }
    assert!(check_shared_library(&bytes).is_ok());
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.so");
    std::fs::write(&p, b"").unwrap();
    let image = SealedImage::from_path(&p, MAX, DigestSet::SHA256).unwrap();
    assert!(image.is_empty());
    assert_eq!(image.allow_unsigned().bytes(), b"");
    let (r, called) = load_counting(&p, MAX, true);
    let err = r.unwrap_err();
    assert!(called, "the signature is decided before any byte is parsed");
    assert_eq!(err.code(), "NOT_A_SHARED_LIBRARY");
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn directory_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (r, called) = load_counting(dir.path(), MAX, true);
    let err = r.unwrap_err();
    assert!(!called);
    assert!(
        matches!(err, LoadError::Unreadable { ref reason, .. } if reason.contains("directory")),
        "{err:?}"
    );
    assert_eq!(err.code(), "UNREADABLE_FILE");

    let (r, _) = load_counting(&dir.path().join("nope.so"), MAX, true);
    let err = r.unwrap_err();
    assert!(
        matches!(err, LoadError::Unreadable { ref reason, .. } if reason.contains("No such file")),
        "{err:?}"
    );
}

#[test]
fn oversized_never_runs_constructor() {
    let dir = tempfile::tempdir().unwrap();
    let (so, marker) = ctor_lib(dir.path(), "big");
    let size = std::fs::metadata(&so).unwrap().len();
    let (r, called) = load_counting(&so, size - 1, true);
    let err = r.unwrap_err();
    assert!(!called);
    assert!(
        matches!(err, LoadError::TooLarge { size: s, limit } if s == size && limit == size - 1),
        "{err:?}"
    );
    assert_eq!(err.code(), "PACKAGE_TOO_LARGE");
    assert!(!marker.exists());
    // Exactly at the limit is fine.
    let (r, _) = load_counting(&so, size, true);
    r.unwrap();
    assert!(marker.exists());
}

#[test]
fn fifo_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fifo.so");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let err = SealedImage::from_path(&p, MAX, DigestSet::SHA256).unwrap_err(); // must not block
    assert_eq!(err.code(), "UNREADABLE_FILE");
}

#[test]
fn elf_header_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (so, _) = ctor_lib(dir.path(), "hdr");
    let good = std::fs::read(&so).unwrap();
    let mutate = |off: usize, val: u8| {
        let mut b = good.clone();
        b[off] = val;
        check_shared_library(&b).unwrap_err().to_string()
    };
    assert!(mutate(4, 1).contains("64-bit"));
    assert!(mutate(5, 2).contains("little-endian"));
    assert!(mutate(16, 2).contains("ET_EXEC"));
    assert!(mutate(18, 40).contains("machine"));
    assert!(mutate(54, 55).contains("program header entry size"));
    // Program header offset pointing past the end.
    let mut b = good.clone();
    b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(check_shared_library(&b).is_err());
    // Random garbage after a valid ident never panics.
    let mut seed = 0x1234_5678_9abc_def0u64;
    for _ in 0..2000 {
        let mut b = good[..64.min(good.len())].to_vec();
        for _ in 0..(seed % 512) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b.push(seed as u8);
        }
        for byte in &mut b[16..64] {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed.is_multiple_of(5) {
                *byte = seed as u8;
            }
        }
        let _ = check_shared_library(&b);
    }
}

#[test]
fn a_file_with_more_bytes_than_its_size_is_refused() {
    // procfs files stat as size 0 but yield data, like a file that grows while being read: the
    // copy is a snapshot of the stat'ed size, so anything beyond it means the file changed.
    let err = SealedImage::from_path(Path::new("/proc/self/maps"), 1 << 24, DigestSet::SHA256)
        .unwrap_err();
    assert_eq!(err.code(), "UNREADABLE_FILE", "{err:?}");
    assert!(
        err.to_string()
            .contains("the file grew while it was being read"),
        "{err}"
    );
}
