//! Streamed file hashing.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use cloacina_sign_core::digest::{sha256, sha256_file, sha256_file_with_chunk, CHUNK_SIZE};

fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

fn check_sizes(chunk: usize, real: bool) {
    for n in [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 5] {
        let data = pattern(n);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        f.flush().unwrap();
        let progress = AtomicU64::new(u64::MAX);
        let got = if real {
            sha256_file(f.path(), Some(&progress)).unwrap()
        } else {
            sha256_file_with_chunk(f.path(), Some(&progress), chunk).unwrap()
        };
        assert_eq!(got, sha256(&data), "size {n}, chunk {chunk}");
        assert_eq!(
            progress.load(Ordering::Relaxed),
            n as u64,
            "progress for size {n}"
        );
    }
}

#[test]
fn matches_in_memory_hash_around_real_chunk_boundaries() {
    check_sizes(CHUNK_SIZE, true);
}

#[test]
fn matches_in_memory_hash_around_small_chunk_boundaries() {
    // Small chunks exercise the pipelined path with many buffer recycles.
    for chunk in [1, 2, 7, 64, 4096] {
        check_sizes(chunk.max(2), false);
    }
}

#[test]
fn missing_file_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.bin");
    let e = sha256_file(&p, None).unwrap_err();
    assert_eq!(e.code(), "UNREADABLE_FILE");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("cannot read {}: ", p.display())),
        "{msg}"
    );
    assert!(msg.contains("No such file or directory"), "{msg}");
}

#[test]
fn directory_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let e = sha256_file(dir.path(), None).unwrap_err();
    assert_eq!(e.code(), "UNREADABLE_FILE");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot read {}: a directory is not a regular file",
            dir.path().display()
        )
    );
}

#[test]
fn a_fifo_or_a_device_is_refused_at_once_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Opening a FIFO for reading would block until a writer came; reading /dev/zero never ends.
    let e = sha256_file(&fifo, None).unwrap_err();
    assert!(
        e.to_string().ends_with("a FIFO is not a regular file"),
        "{e}"
    );
    let e = sha256_file(std::path::Path::new("/dev/zero"), None).unwrap_err();
    assert_eq!(e.code(), "UNREADABLE_FILE");
    assert!(
        e.to_string()
            .ends_with("a character device is not a regular file"),
        "{e}"
    );
}

#[test]
fn file_with_wrong_reported_size_is_hashed_fully() {
    // /proc files report length 0 but have content.
    let p = std::path::Path::new("/proc/self/status");
    if p.exists() {
        // Content changes between reads, so only check that something was hashed.
        let progress = AtomicU64::new(0);
        sha256_file(p, Some(&progress)).unwrap();
        assert!(progress.load(Ordering::Relaxed) > 0);
    }
}
