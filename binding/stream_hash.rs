//! SHA-256 of an upload as it arrives: the JS thread only copies each socket read in (`update`); the
//! hash runs on a thread of its own (see `cloacina_sign_core::stream_hash`). Waiting, for room or for
//! the digest, happens on a libuv worker, never on the JS thread.

use cloacina_sign_core::codes;
use cloacina_sign_core::digest::{self, Digest};
use cloacina_sign_core::stream_hash::{Room, StreamSha256};
use napi::bindgen_prelude::{AsyncTask, BufferSlice};
use napi::{Env, Task};
use napi_derive::napi;

use crate::errors::coded;

/// One stream's SHA-256. Feed it with `update`; when `update` returns false, stop reading and await
/// `room()`; `finish()` resolves to the hex digest. Used once.
#[napi]
pub struct StreamHasher {
    inner: Option<StreamSha256>,
}

fn finished() -> napi::Error {
    coded(
        codes::INVALID_INPUT,
        "this stream hasher has already finished or been abandoned",
    )
}

#[napi]
impl StreamHasher {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        StreamHasher {
            inner: Some(StreamSha256::new()),
        }
    }

    /// Copies the next bytes of the stream in. `false`: the hash is behind; await `room()` before more.
    #[napi]
    pub fn update(&mut self, chunk: BufferSlice) -> napi::Result<bool> {
        Ok(self.inner.as_mut().ok_or_else(finished)?.update(&chunk))
    }

    /// Resolves once the hashing thread has caught up enough to take more bytes.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn room(&self) -> napi::Result<AsyncTask<RoomTask>> {
        let room = self.inner.as_ref().ok_or_else(finished)?.room();
        Ok(AsyncTask::new(RoomTask(room)))
    }

    /// Resolves to the lowercase hex SHA-256 of every byte fed, in order.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn finish(&mut self) -> napi::Result<AsyncTask<FinishTask>> {
        let hasher = self.inner.take().ok_or_else(finished)?;
        Ok(AsyncTask::new(FinishTask(Some(hasher))))
    }

    /// Drops what was fed (an aborted upload): the hashing thread ends without a digest.
    #[napi]
    pub fn abandon(&mut self) {
        self.inner = None;
    }
}

pub struct RoomTask(Room);

impl Task for RoomTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        self.0.wait();
        Ok(())
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

pub struct FinishTask(Option<StreamSha256>);

impl Task for FinishTask {
    type Output = Digest;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Digest> {
        let hasher = self.0.take().ok_or_else(finished)?;
        hasher
            .finish()
            .map_err(|_| coded(codes::INTERNAL, "the hashing thread of an upload failed"))
    }

    fn resolve(&mut self, _env: Env, output: Digest) -> napi::Result<String> {
        Ok(digest::to_hex(&output))
    }
}
