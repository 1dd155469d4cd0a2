//! Witness cosignatures of checkpoints (see cloacina_sign_core::cosignature): the message is built in
//! Rust, so only "cosignature/v1" messages are ever signed with a witness key here.

use cloacina_sign_core::{cosignature, pem};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::errors::{coded, OrThrow};

/// Cosigns a checkpoint note text (c2sp.org/tlog-cosignature, Ed25519) at `time` (unix seconds) with a
/// private key (raw seed or PKCS#8); returns the cosignature line (`— <name> <base64>\n`).
#[napi]
pub fn cosign_checkpoint(
    private_key: Buffer,
    name: String,
    time: i64,
    text: String,
) -> napi::Result<String> {
    let time = u64::try_from(time)
        .map_err(|_| coded("INVALID_INPUT", "a cosignature time must not be negative"))?;
    let seed = pem::private_key_from_any(&private_key).or_throw()?;
    cosignature::cosign(&seed, &name, time, &text).or_throw()
}
