//! Signed notes (the audit trail's checkpoints): signed with a sealed database key inside Rust. Only
//! note texts are signed here (see cloacina_sign_core::signed_note), never a package digest or statement.

use cloacina_sign_core::signed_note;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;

use crate::errors::OrThrow;
use crate::kek::KeyBinding;
use crate::sealing::SealedKey;

pub struct SignNoteTask {
    key: SealedKey,
    key_name: String,
    text: String,
}

impl Task for SignNoteTask {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        let seed = self.key.unseal()?;
        signed_note::sign_note(&seed, &self.key_name, &self.text).or_throw()
    }

    fn resolve(&mut self, _env: Env, line: String) -> napi::Result<String> {
        Ok(line)
    }
}

/// Signs a note text (c2sp.org/signed-note, Ed25519) with a sealed private key, unsealed and used
/// only inside Rust; resolves to the signature line (`— <key name> <base64>\n`).
#[napi(ts_return_type = "Promise<string>")]
pub fn sign_note_with_sealed_key(
    kek: crate::kek::KekArg,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
    key_name: String,
    text: String,
) -> napi::Result<AsyncTask<SignNoteTask>> {
    signed_note::check_key_name(&key_name).or_throw()?;
    signed_note::check_note_text(&text).or_throw()?;
    Ok(AsyncTask::new(SignNoteTask {
        key: SealedKey::new(kek, sealed_private_key, binding, public_key),
        key_name,
        text,
    }))
}
