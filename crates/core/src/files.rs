//! Opening the files we read (packages, signatures, keys): once, without ever blocking, and only
//! regular files. The checks are made on the opened descriptor, so nothing can be swapped between a
//! check and the read: a FIFO, a terminal, `/dev/zero`, a socket or a directory is refused at once.
//!
//! The same holds in the WebAssembly (WASI) build: there the file is opened through wasi-libc with
//! `O_NONBLOCK`, which becomes WASI's `nonblock` descriptor flag, so the host opens a FIFO without
//! waiting for a writer, and the file type comes from the descriptor's WASI `filestat`.

use std::fs::File;
use std::io::{self, Read};
#[cfg(unix)]
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{CoreError, Result};

fn unreadable(path: &Path, reason: impl Into<String>) -> CoreError {
    CoreError::UnreadableFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// What a file that is not a regular file is, for the error message.
#[cfg(unix)]
fn kind(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// What a file that is not a regular file is, for the error message. WASI knows devices and sockets
/// but std names them only behind an unstable feature, and WASI has no file type for a FIFO (hosts
/// report one as a socket or as unknown): all of them are special files here.
#[cfg(target_os = "wasi")]
fn kind(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else {
        "a special file (a device, FIFO or socket)"
    }
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// std has no stable way to pass open flags on WASI, so wasi-libc's `open` does it (it resolves the
/// path against the preopened directories as std does). There is no terminal to take, so no
/// `O_NOCTTY`.
#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `open` just returned this descriptor, and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Why opening failed, in words: a socket cannot be opened at all (ENXIO), so name what it is.
fn open_failure(path: &Path, error: io::Error) -> CoreError {
    if error.raw_os_error() == Some(libc::ENXIO) {
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.file_type().is_file() {
                return unreadable(
                    path,
                    format!("{} is not a regular file", kind(meta.file_type())),
                );
            }
        }
    }
    unreadable(path, error.to_string())
}

fn regular(path: &Path, file: File) -> Result<(File, std::fs::Metadata)> {
    let meta = file
        .metadata()
        .map_err(|e| unreadable(path, format!("fstat: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(unreadable(
            path,
            format!("{} is not a regular file", kind(meta.file_type())),
        ));
    }
    Ok((file, meta))
}

/// Opens `path` for reading (O_NONBLOCK | O_NOCTTY, so opening a FIFO or a terminal cannot hang or
/// take a controlling terminal) and returns it with its size, if it is a regular file.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    let file = open_nonblocking(path).map_err(|e| open_failure(path, e))?;
    let (file, meta) = regular(path, file)?;
    Ok((file, meta.len()))
}

/// The content of a small regular file, or why there is none.
pub enum SmallFile {
    Read(Vec<u8>),
    /// The file (or what could be read of it) is larger than the limit.
    TooLarge(u64),
    /// There is no file at that path.
    Missing,
}

/// Reads a regular file of at most `limit` bytes (one byte past the limit is read, so a file that
/// grew after fstat is still caught).
pub fn read_small(path: &Path, limit: usize) -> Result<SmallFile> {
    read_small_inspecting(path, limit, |_| {})
}

/// As `read_small`, showing `inspect` the fstat of the descriptor that is read, before the read: a
/// secret file's owner and mode are judged on the very file whose bytes are used.
pub fn read_small_inspecting(
    path: &Path,
    limit: usize,
    inspect: impl FnOnce(&std::fs::Metadata),
) -> Result<SmallFile> {
    let file = match open_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SmallFile::Missing),
        Err(e) => return Err(open_failure(path, e)),
    };
    let (file, meta) = regular(path, file)?;
    inspect(&meta);
    let size = meta.len();
    if size > limit as u64 {
        return Ok(SmallFile::TooLarge(size));
    }
    let mut bytes = Vec::with_capacity(size as usize + 1);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(path, e.to_string()))?;
    if bytes.len() > limit {
        return Ok(SmallFile::TooLarge(bytes.len() as u64));
    }
    Ok(SmallFile::Read(bytes))
}
