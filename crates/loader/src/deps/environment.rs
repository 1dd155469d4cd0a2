//! The environment check: the variables through which the dynamic loader lets the environment
//! choose code (step 1 of the dependency policy).

use std::ffi::c_void;
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use super::shorten;
use crate::error::LoadError;

/// The variables through which the dynamic loader (glibc's, and musl's for the first two) lets
/// the environment choose code.
pub const LOADER_VARIABLES: [&str; 3] = ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"];

/// Refuses when `LD_PRELOAD`, `LD_LIBRARY_PATH` or `LD_AUDIT` is set (even empty) in the
/// environment the process was started with, or in its current environment.
///
/// glibc's dynamic loader reads these variables once, at process start, from the environment the
/// kernel handed to the new program: what `std::env` says later neither causes nor undoes their
/// effect (a library preloaded at start stays loaded and keeps interposing symbols; the search
/// path stays in force for every later `dlopen`). So the initial environment, as the kernel
/// recorded it (`/proc/self/environ`), is what decides. The current environment is checked as
/// well: a variable set at run time means the runner's environment is being tampered with, and
/// every process it starts would inherit it.
pub fn check_environment() -> Result<(), LoadError> {
    let initial = initial_loader_variables().map_err(|e| {
        LoadError::Unsupported(format!(
            "the process's initial environment cannot be read, so LD_PRELOAD, LD_LIBRARY_PATH and LD_AUDIT cannot be ruled out: {e}"
        ))
    })?;
    if let Some((name, value)) = initial.first() {
        return Err(LoadError::UnsafeEnvironment(format!(
            "{name} is set in the environment the process was started with (to \"{}\"): the dynamic loader read it at start-up and would let it choose the code a package binds to; start the runner without {name}",
            shorten(value)
        )));
    }
    for name in LOADER_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            return Err(LoadError::UnsafeEnvironment(format!(
                "{name} is set in the process's current environment (to \"{}\"); unset it (and find out what set it)",
                shorten(value.as_bytes())
            )));
        }
    }
    Ok(())
}

/// (name, value) of the loader variables found in an environment.
type LoaderVariables = Vec<(String, Vec<u8>)>;

/// The loader variables of the initial environment, read once: the block never changes (a process
/// that overwrites it in place could only hide a variable, so the first reading is kept).
fn initial_loader_variables() -> Result<&'static [(String, Vec<u8>)], String> {
    static INITIAL: OnceLock<Result<LoaderVariables, String>> = OnceLock::new();
    INITIAL
        .get_or_init(|| {
            let block = initial_environment_block()?;
            Ok(loader_variables_in(&block))
        })
        .as_ref()
        .map(|v| v.as_slice())
        .map_err(|e| e.clone())
}

fn loader_variables_in(block: &[u8]) -> LoaderVariables {
    let mut found = Vec::new();
    for entry in block.split(|&b| b == 0) {
        for name in LOADER_VARIABLES {
            if let Some(value) = entry
                .strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
            {
                found.push((name.to_string(), value.to_vec()));
            }
        }
    }
    found
}

/// The environment block the process was started with.
fn initial_environment_block() -> Result<Vec<u8>, String> {
    match std::fs::read("/proc/self/environ") {
        Ok(block) => Ok(block),
        // While the process is not dumpable the file belongs to root and cannot be opened by the
        // process itself; the block is still in our own memory, where /proc/self/stat says.
        Err(e) => environment_block_from_memory()
            .map_err(|e2| format!("/proc/self/environ: {e}; reading it from memory: {e2}")),
    }
}

pub(crate) fn environment_block_from_memory() -> Result<Vec<u8>, String> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or("/proc/self/stat has no command field")?;
    // Fields 50 and 51 of proc(5) (env_start, env_end); `rest` starts at field 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> Result<usize, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<usize>().ok())
            .ok_or_else(|| "/proc/self/stat has no env_start/env_end".to_string())
    };
    let (start, end) = (num(47)?, num(48)?);
    if start == 0 || end < start || end - start > 16 << 20 {
        return Err(format!(
            "implausible environment block 0x{start:x}..0x{end:x}"
        ));
    }
    let mut buf = vec![0u8; end - start];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: start as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: process_vm_readv copies from our own address space into `buf`, which is valid for
    // `buf.len()` bytes; an unmapped source range makes the kernel return EFAULT, never a fault
    // in this process.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(format!(
            "process_vm_readv: {}",
            std::io::Error::last_os_error()
        ));
    }
    buf.truncate(n as usize);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_are_found_in_a_block() {
        let block = b"A=1\0LD_PRELOAD=/x.so\0LD_LIBRARY_PATHX=1\0LD_AUDIT=\0";
        let found = loader_variables_in(block);
        assert_eq!(
            found,
            vec![
                ("LD_PRELOAD".to_string(), b"/x.so".to_vec()),
                ("LD_AUDIT".to_string(), Vec::new())
            ]
        );
    }

    #[test]
    fn the_environment_block_can_be_read_from_memory() {
        let from_proc = std::fs::read("/proc/self/environ").unwrap();
        match environment_block_from_memory() {
            Ok(from_memory) => assert_eq!(from_memory, from_proc),
            // Some sandboxes (seccomp profiles) forbid process_vm_readv even on oneself.
            Err(e) if e.contains("process_vm_readv") => eprintln!("skipped: {e}"),
            Err(e) => panic!("{e}"),
        }
    }
}
