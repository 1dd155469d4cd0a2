//! Small files read whole (key, KEK, PIN and revocation files) through the core's bounded read, which
//! opens once without blocking and refuses anything but a regular file.

use std::path::PathBuf;

use cloacina_sign_core::files::{read_small_inspecting, SmallFile};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;

use crate::errors::OrThrow;

/// A small file as read, with the mode and owner of the descriptor that was read. The WebAssembly
/// build has neither: WASI does not report them.
#[napi(object)]
pub struct SmallFileRead {
    /// The content; absent when there is no file or it is over the limit.
    pub bytes: Option<Buffer>,
    /// There is no file at that path.
    pub missing: bool,
    /// The file's size when it is over the limit.
    pub too_large: Option<f64>,
    /// Permission bits and file type, as `st_mode`.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
}

/// What a read found, before its bytes become a JS buffer.
pub struct Outcome {
    content: SmallFile,
    mode: Option<u32>,
    uid: Option<u32>,
}

impl From<Outcome> for SmallFileRead {
    fn from(outcome: Outcome) -> Self {
        let (bytes, missing, too_large) = match outcome.content {
            SmallFile::Read(bytes) => (Some(bytes.into()), false, None),
            SmallFile::TooLarge(size) => (None, false, Some(size as f64)),
            SmallFile::Missing => (None, true, None),
        };
        SmallFileRead {
            bytes,
            missing,
            too_large,
            mode: outcome.mode,
            uid: outcome.uid,
        }
    }
}

#[cfg(unix)]
fn mode_and_owner(meta: &std::fs::Metadata) -> (Option<u32>, Option<u32>) {
    use std::os::unix::fs::MetadataExt;
    (Some(meta.mode()), Some(meta.uid()))
}

#[cfg(not(unix))]
fn mode_and_owner(_meta: &std::fs::Metadata) -> (Option<u32>, Option<u32>) {
    (None, None)
}

fn read(path: &std::path::Path, limit: u32) -> napi::Result<Outcome> {
    let (mut mode, mut uid) = (None, None);
    let content = read_small_inspecting(path, limit as usize, |meta| {
        (mode, uid) = mode_and_owner(meta);
    })
    .or_throw()?;
    Ok(Outcome { content, mode, uid })
}

/// Reads a regular file of at most `limit` bytes on the calling thread, for the callers that are
/// synchronous: key, KEK and PIN files (kilobytes) and a pinned revocation list (4 MiB at most).
#[napi]
pub fn read_small_file_sync(path: String, limit: u32) -> napi::Result<SmallFileRead> {
    read(path.as_ref(), limit).map(SmallFileRead::from)
}

pub struct ReadSmallFileTask {
    path: PathBuf,
    limit: u32,
}

impl Task for ReadSmallFileTask {
    type Output = Outcome;
    type JsValue = SmallFileRead;

    fn compute(&mut self) -> napi::Result<Outcome> {
        read(&self.path, self.limit)
    }

    fn resolve(&mut self, _env: Env, output: Outcome) -> napi::Result<SmallFileRead> {
        Ok(output.into())
    }
}

/// Reads a regular file of at most `limit` bytes on a worker thread.
#[napi(ts_return_type = "Promise<SmallFileRead>")]
pub fn read_small_file(path: String, limit: u32) -> AsyncTask<ReadSmallFileTask> {
    AsyncTask::new(ReadSmallFileTask {
        path: path.into(),
        limit,
    })
}
