//! `cargo test` runs test binaries with `LD_LIBRARY_PATH` pointing into `target/`, and the
//! dependency policy refuses every guarded load in a process started with it (glibc applied it at
//! start-up; removing it from `std::env` later changes nothing). So a test binary that finds
//! `LD_PRELOAD`, `LD_LIBRARY_PATH` or `LD_AUDIT` in its initial environment re-executes itself,
//! before `main`, with the same arguments and the environment without them, unless
//! `CLOACINA_TEST_KEEP_LOADER_ENV` is set (tests that start a copy of the test binary with such a
//! variable on purpose, to see it refused).

use std::ffi::{c_char, c_int, CStr};

const KEEP: &[u8] = b"CLOACINA_TEST_KEEP_LOADER_ENV=";
const STRIP: [&[u8]; 3] = [b"LD_PRELOAD=", b"LD_LIBRARY_PATH=", b"LD_AUDIT="];

type InitFn = extern "C" fn(c_int, *const *const c_char, *const *const c_char);

// glibc calls the executable's `.init_array` functions with (argc, argv, envp) before `main`.
#[used]
#[link_section = ".init_array"]
static STRIP_LOADER_ENV: InitFn = strip_loader_env;

extern "C" fn strip_loader_env(
    _argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    if argv.is_null() || envp.is_null() {
        return;
    }
    let mut kept: Vec<*const c_char> = Vec::new();
    let mut strip = false;
    for i in 0.. {
        // SAFETY: `envp` is the NULL-terminated environment array glibc passes to init functions
        // (the one the kernel built for this process); we stop at its NULL.
        let entry = unsafe { *envp.add(i) };
        if entry.is_null() {
            break;
        }
        // SAFETY: every entry of the environment array is a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(entry) }.to_bytes();
        if bytes.starts_with(KEEP) {
            return;
        }
        if STRIP.iter().any(|p| bytes.starts_with(p)) {
            strip = true;
        } else {
            kept.push(entry);
        }
    }
    if !strip {
        return;
    }
    kept.push(std::ptr::null());
    // SAFETY: `argv` and `kept` are NULL-terminated arrays of NUL-terminated strings that stay
    // valid until execve replaces the process image. If execve fails it returns, and the tests run
    // in this process (their guarded loads then report UNSAFE_ENVIRONMENT).
    unsafe { libc::execve(c"/proc/self/exe".as_ptr(), argv, kept.as_ptr()) };
}
