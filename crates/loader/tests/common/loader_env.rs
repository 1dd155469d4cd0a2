//! `cargo test` runs test binaries with `LD_LIBRARY_PATH` pointing into `target/`, and the
//! dependency policy refuses every guarded load in a process started with it (the dynamic loader
//! applied it at start-up; removing it from `std::env` later changes nothing). So a test binary
//! that finds `LD_PRELOAD`, `LD_LIBRARY_PATH` or `LD_AUDIT` in its initial environment
//! re-executes itself, before `main`, with the same arguments and the environment without them,
//! unless `CLOACINA_TEST_KEEP_LOADER_ENV` is set (tests that start a copy of the test binary with
//! such a variable on purpose, to see it refused).

use std::ffi::{c_char, CStr};

const KEEP: &[u8] = b"CLOACINA_TEST_KEEP_LOADER_ENV=";
const STRIP: [&[u8]; 3] = [b"LD_PRELOAD=", b"LD_LIBRARY_PATH=", b"LD_AUDIT="];

// glibc calls the executable's `.init_array` functions with (argc, argv, envp) before `main`.
#[cfg(target_env = "gnu")]
#[used]
#[link_section = ".init_array"]
static STRIP_LOADER_ENV: extern "C" fn(
    std::ffi::c_int,
    *const *const c_char,
    *const *const c_char,
) = strip_loader_env;

#[cfg(target_env = "gnu")]
extern "C" fn strip_loader_env(
    _argc: std::ffi::c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    if argv.is_null() || envp.is_null() {
        return;
    }
    let mut env: Vec<*const c_char> = Vec::new();
    for i in 0.. {
        // SAFETY: `envp` is the NULL-terminated environment array glibc passes to init functions
        // (the one the kernel built for this process); we stop at its NULL.
        let entry = unsafe { *envp.add(i) };
        if entry.is_null() {
            break;
        }
        env.push(entry);
    }
    reexec_without_loader_env(argv, &env);
}

// musl calls `.init_array` functions without arguments: the argument and environment vectors
// are read from /proc/self, where the kernel recorded them.
#[cfg(target_env = "musl")]
#[used]
#[link_section = ".init_array"]
static STRIP_LOADER_ENV: extern "C" fn() = strip_loader_env;

#[cfg(target_env = "musl")]
extern "C" fn strip_loader_env() {
    use std::ffi::CString;
    let strings = |file: &str| -> Option<Vec<CString>> {
        let block = std::fs::read(file).ok()?;
        let block = block.strip_suffix(&[0]).unwrap_or(&block);
        if block.is_empty() {
            return Some(Vec::new());
        }
        block
            .split(|&b| b == 0)
            .map(|s| CString::new(s).ok())
            .collect()
    };
    let (Some(args), Some(env)) = (strings("/proc/self/cmdline"), strings("/proc/self/environ"))
    else {
        return;
    };
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let env: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
    reexec_without_loader_env(argv.as_ptr(), &env);
}

/// Re-executes the test binary with `argv` and `env` less the loader variables, when `env` has
/// one of them and does not ask to keep them.
fn reexec_without_loader_env(argv: *const *const c_char, env: &[*const c_char]) {
    let mut kept: Vec<*const c_char> = Vec::new();
    let mut strip = false;
    for &entry in env {
        // SAFETY: every entry of the environment array is a NUL-terminated string that outlives
        // this call.
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
