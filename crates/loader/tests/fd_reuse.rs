//! Descriptor-number reuse with resident (`-z nodelete`) libraries.
//!
//! This binary holds a single test on purpose: with no other test opening descriptors
//! concurrently, the kernel's lowest-free-number rule makes a new memfd reuse the number of the
//! memfd that was just closed, deterministically.

#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

mod common;

use cloacina_sign_core::digest::DigestSet;
use std::ffi::CString;

use cloacina_sign_loader::{GuardedLibrary, SealedImage};
use common::*;

fn which_of(lib: &GuardedLibrary) -> i32 {
    // SAFETY: `which` is `int which(void)` in the fixture, called while `lib` lives.
    let f: WhichFn = unsafe { lib.symbol("which").unwrap() };
    // SAFETY: a fixture function taking no arguments; the library is still loaded.
    unsafe { f() }
}

/// # Safety
/// `h` must be a live handle of a library built from `which.c`.
unsafe fn which_of_handle(h: *mut libc::c_void) -> i32 {
    // SAFETY: `h` is live (the caller's contract); dlsym only looks the symbol up.
    let s = unsafe { libc::dlsym(h, c"which".as_ptr()) };
    assert!(!s.is_null());
    // SAFETY: in `which.c`, `which` is `int which(void)`: a function pointer of type WhichFn.
    let f: WhichFn = unsafe { std::mem::transmute::<*mut libc::c_void, WhichFn>(s) };
    // SAFETY: no arguments; the library stays loaded during the call (the caller's contract).
    unsafe { f() }
}

#[test]
fn same_descriptor_number_loads_the_new_library() {
    let dir = tempfile::tempdir().unwrap();
    let nodelete = "-Wl,-z,nodelete";
    let a = build(dir.path(), "which.c", "a.so", &["-DWHICH=1", nodelete]);
    let b = build(dir.path(), "which.c", "b.so", &["-DWHICH=2", nodelete]);
    let c = build(dir.path(), "which.c", "c.so", &["-DWHICH=3", nodelete]);
    let d = build(dir.path(), "which.c", "d.so", &["-DWHICH=4", nodelete]);

    // --- Guarded loads: A, drop A, then B on the same descriptor number.
    let image_a = SealedImage::from_path(&a, MAX, DigestSet::SHA256).unwrap();
    let fd_a = image_a.fd();
    let lib_a = GuardedLibrary::load(image_a.allow_unsigned()).unwrap();
    assert_eq!(which_of(&lib_a), 1);
    let path_a = CString::new(lib_a.path()).unwrap();
    drop(lib_a); // dlclose (a no-op for a nodelete object) + close(memfd)
    assert_eq!(
        // SAFETY: F_GETFD only queries a descriptor number.
        unsafe { libc::fcntl(fd_a, libc::F_GETFD) },
        -1,
        "A's memfd was closed"
    );
    // A is still resident under its (unique) name. (musl finds loaded objects by file identity
    // only: with A's memfd closed, no path leads to A.)
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: a valid C string; the fixtures' constructors do nothing.
        let h = unsafe { libc::dlopen(path_a.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        assert!(!h.is_null(), "nodelete should keep A resident");
        // SAFETY: `h` is a live handle of a `which.c` fixture (asserted non-null above).
        assert_eq!(unsafe { which_of_handle(h) }, 1);
        // SAFETY: `h` came from the dlopen above and is closed once.
        unsafe { libc::dlclose(h) };
    }

    let image_b = SealedImage::from_path(&b, MAX, DigestSet::SHA256).unwrap();
    assert_eq!(
        image_b.fd(),
        fd_a,
        "the kernel reuses the lowest free descriptor number"
    );
    let lib_b = GuardedLibrary::load(image_b.allow_unsigned()).unwrap();
    assert_ne!(lib_b.path().as_bytes(), path_a.as_bytes());
    assert_eq!(
        which_of(&lib_b),
        2,
        "B's memfd must load B, not the resident A"
    );

    // --- Why unique paths matter: the naive `/proc/self/fd/N` name.
    let image_c = SealedImage::from_path(&c, MAX, DigestSet::SHA256).unwrap();
    let fd_c = image_c.fd();
    let naive = CString::new(format!("/proc/self/fd/{fd_c}")).unwrap();
    // SAFETY: a valid C string; the fixtures' constructors do nothing.
    let h = unsafe { libc::dlopen(naive.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null());
    // SAFETY: `h` is a live handle of a `which.c` fixture (asserted non-null above).
    assert_eq!(unsafe { which_of_handle(h) }, 3);
    // SAFETY: `h` came from the dlopen above and is closed once.
    unsafe { libc::dlclose(h) };
    drop(image_c);

    let image_d = SealedImage::from_path(&d, MAX, DigestSet::SHA256).unwrap();
    assert_eq!(image_d.fd(), fd_c);
    #[cfg(target_env = "gnu")]
    naive_name_finds_the_stale_object(&naive);
    // musl compares the file the name opens (D's memfd) with the loaded objects: C is not found.
    #[cfg(target_env = "musl")]
    {
        // SAFETY: a valid C string; RTLD_NOLOAD loads nothing.
        let h = unsafe { libc::dlopen(naive.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        assert!(h.is_null(), "musl matched the stale object C by name");
    }
    // The guarded load of the same descriptor gets D.
    let lib_d = GuardedLibrary::load(image_d.allow_unsigned()).unwrap();
    assert!(lib_d.path().ends_with(&format!("/{fd_c}")));
    assert_eq!(which_of(&lib_d), 4);
}

/// glibc: once descriptor `naive` names has been reused for another library, the naive name
/// still finds the object first loaded under it.
#[cfg(target_env = "gnu")]
fn naive_name_finds_the_stale_object(naive: &CString) {
    // The naive name now "finds" C although descriptor fd_c is D's sealed memfd...
    // SAFETY: a valid C string; the fixtures' constructors do nothing.
    let h = unsafe { libc::dlopen(naive.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    assert!(!h.is_null(), "glibc matches the stale object by name");
    assert_eq!(
        // SAFETY: `h` is a live handle of a `which.c` fixture (asserted non-null above).
        unsafe { which_of_handle(h) },
        3,
        "a naive load would run C's code, not D's"
    );
    // SAFETY: `h` came from the dlopen above and is closed once.
    unsafe { libc::dlclose(h) };
    // ...a full naive dlopen returns C too.
    // SAFETY: a valid C string; the fixtures' constructors do nothing.
    let h = unsafe { libc::dlopen(naive.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null());
    // SAFETY: `h` is a live handle of a `which.c` fixture (asserted non-null above).
    assert_eq!(unsafe { which_of_handle(h) }, 3);
    // SAFETY: `h` came from the dlopen above and is closed once.
    unsafe { libc::dlclose(h) };
}
