//! Opening the files we read (packages, signatures, keys): once, without ever blocking, and only
//! regular files. The checks are made on the opened descriptor, so nothing can be swapped between a
//! check and the read: a FIFO, a terminal, `/dev/zero`, a socket or a directory is refused at once.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
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

fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
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

fn regular(path: &Path, file: File) -> Result<(File, u64)> {
    let meta = file
        .metadata()
        .map_err(|e| unreadable(path, format!("fstat: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(unreadable(
            path,
            format!("{} is not a regular file", kind(meta.file_type())),
        ));
    }
    Ok((file, meta.len()))
}

/// Opens `path` for reading (O_NONBLOCK | O_NOCTTY, so opening a FIFO or a terminal cannot hang or
/// take a controlling terminal) and returns it with its size, if it is a regular file.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    let file = open_nonblocking(path).map_err(|e| open_failure(path, e))?;
    regular(path, file)
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
    let file = match open_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SmallFile::Missing),
        Err(e) => return Err(open_failure(path, e)),
    };
    let (file, size) = regular(path, file)?;
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
