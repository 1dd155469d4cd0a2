//! WebAssembly builds cannot load a PKCS#11 module: every token operation is refused, typed.
use zeroize::Zeroizing;

use crate::{Pkcs11Error, Result, TokenKey};

fn refused<T>() -> Result<T> {
    Err(Pkcs11Error::Unavailable(
        "PKCS#11 is not available in the WebAssembly build".into(),
    ))
}

pub(crate) fn gcm_encrypt(_: &TokenKey, _: &[u8], _: &[u8], _: &[u8]) -> Result<Vec<u8>> {
    refused()
}
pub(crate) fn gcm_decrypt(
    _: &TokenKey,
    _: &[u8],
    _: &[u8],
    _: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    refused()
}
pub(crate) fn cmac(_: &TokenKey, _: &[u8]) -> Result<Vec<u8>> {
    refused()
}
pub(crate) fn create(_: &TokenKey) -> Result<bool> {
    refused()
}
pub(crate) fn value_readable(_: &TokenKey) -> Result<bool> {
    refused()
}
