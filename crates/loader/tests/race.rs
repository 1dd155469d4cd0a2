//! A concurrent writer keeps replacing the package file with a different library; the guarded
//! loader must only ever run the library whose digest the verifier accepted.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cloacina_sign_core::policy::Policy;
use cloacina_sign_loader::verify_and_load;
use common::*;

fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    // No O_TRUNC: overwrite, then fix up the length, in small chunks to widen the windows.
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path) {
        for chunk in bytes.chunks(4096) {
            if f.write_all(chunk).is_err() {
                return;
            }
            std::thread::yield_now();
        }
        let _ = f.set_len(bytes.len() as u64);
    }
}

fn replace_by_rename(dir: &Path, path: &Path, bytes: &[u8], n: u64) {
    let tmp = dir.join(format!("tmp-{n}"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn replace_by_symlink(dir: &Path, path: &Path, target: &Path, n: u64) {
    let tmp = dir.join(format!("link-{n}"));
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn concurrent_replacement_never_loads_the_other_library() {
    let dir = tempfile::tempdir().unwrap();
    let a = build(dir.path(), "which.c", "a.so", &["-DWHICH=1"]);
    let b = build(
        dir.path(),
        "which.c",
        "b.so",
        &["-DWHICH=2", "-DPADDING=200000"],
    );
    let a_bytes = std::fs::read(&a).unwrap();
    let b_bytes = std::fs::read(&b).unwrap();
    let digest_a = sha256_file(&a);
    let pkg = dir.path().join("package.so");
    std::fs::write(&pkg, &a_bytes).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, dir, pkg) = (Arc::clone(&stop), dir.path().to_owned(), pkg.clone());
        let (a, b) = (a.clone(), b.clone());
        let (a_bytes, b_bytes) = (a_bytes.clone(), b_bytes.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match n % 8 {
                    0 => replace_by_rename(&dir, &pkg, &b_bytes, n),
                    1 => rewrite_in_place(&pkg, &a_bytes),
                    2 => rewrite_in_place(&pkg, &b_bytes),
                    3 => {
                        let _ = std::fs::OpenOptions::new()
                            .write(true)
                            .open(&pkg)
                            .and_then(|f| f.set_len(a_bytes.len() as u64 / 2));
                    }
                    4 => replace_by_rename(&dir, &pkg, &a_bytes, n),
                    5 => replace_by_symlink(&dir, &pkg, &b, n),
                    6 => replace_by_symlink(&dir, &pkg, &a, n),
                    _ => {
                        // Start from A, then rewrite it into B while readers may be copying.
                        replace_by_rename(&dir, &pkg, &a_bytes, n);
                        rewrite_in_place(&pkg, &b_bytes);
                    }
                }
                if n.is_multiple_of(2) {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                n += 1;
            }
            n
        })
    };

    let (mut loaded_a, mut rejected, mut other_errors) = (0u32, 0u32, 0u32);
    let mut iterations = 0u32;
    while iterations < 300 || ((loaded_a == 0 || rejected == 0) && iterations < 5000) {
        iterations += 1;
        // The only signature is A's: any other sealed bytes are a tampered package.
        let r = verify_and_load(&pkg, MAX, &Policy::default(), |_| {
            accept_all(&sha256_digests(digest_a))
        });
        match r {
            Ok(lib) => {
                assert_eq!(lib.digests().sha256, Some(digest_a));
                // SAFETY: `which` is `int which(void)` in the fixture, called only while `lib` lives.
                let which: WhichFn = unsafe { lib.symbol("which").unwrap() };
                assert_eq!(
                    // SAFETY: a fixture function taking no arguments; the library is still loaded.
                    unsafe { which() },
                    1,
                    "iteration {iterations}: loaded a library other than A"
                );
                loaded_a += 1;
            }
            Err(e) if e.code() == "TAMPERED_PACKAGE" => rejected += 1,
            Err(e) => {
                assert!(
                    matches!(e.code(), "NOT_A_SHARED_LIBRARY" | "UNREADABLE_FILE"),
                    "unexpected error {e}"
                );
                other_errors += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    eprintln!(
        "race: {iterations} iterations, {writes} writer actions: {loaded_a} loads of A, \
         {rejected} rejections, {other_errors} other errors"
    );
    assert!(
        loaded_a > 0,
        "A was never loaded: the test did not exercise the success path"
    );
    assert!(
        rejected > 0,
        "nothing was ever rejected: the writer did not interfere"
    );
}
