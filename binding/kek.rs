//! The key-encryption key as the caller configured it: 32 bytes (variable or file), or a secret key
//! object in a PKCS#11 token, where sealing and opening run; and the row a sealed key is bound to.
use cloacina_sign_core::seal;
use cloacina_sign_pkcs11::{Pkcs11Error, TokenKey};
use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;
use zeroize::Zeroizing;

use crate::errors::{coded, OrThrow};

/// Which row a sealed private key belongs to; it is the AES-GCM associated data.
#[napi(object)]
pub struct KeyBinding {
    pub key_id: String,
    pub org_id: String,
}

/// A KEK in a PKCS#11 token, as `pkcs11:` URI parsing in TypeScript resolved it.
#[napi(object)]
pub struct Pkcs11Kek {
    pub module_path: String,
    pub token_label: String,
    pub object_label: String,
    /// The user PIN; wiped in Rust once the operation ends, never in a message.
    pub pin: String,
}

/// What JS passes for a KEK: its bytes, or where it lives in a token.
pub type KekArg = Either<Buffer, Pkcs11Kek>;

/// A KEK carried to a worker thread.
pub(crate) enum Kek {
    Bytes(Zeroizing<Vec<u8>>),
    Token(TokenKey),
}

pub(crate) fn token_key(spec: Pkcs11Kek) -> TokenKey {
    TokenKey {
        module_path: spec.module_path,
        token_label: spec.token_label,
        object_label: spec.object_label,
        pin: Zeroizing::new(spec.pin),
    }
}

impl From<KekArg> for Kek {
    fn from(arg: KekArg) -> Self {
        match arg {
            Either::A(bytes) => Kek::Bytes(Zeroizing::new(bytes.to_vec())),
            Either::B(spec) => Kek::Token(token_key(spec)),
        }
    }
}

pub(crate) fn token_error(err: Pkcs11Error) -> napi::Error {
    coded(err.code(), err)
}

impl Kek {
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> napi::Result<Vec<u8>> {
        match self {
            Kek::Bytes(kek) => seal::seal(kek, plaintext, aad).or_throw(),
            Kek::Token(key) => key.seal(plaintext, aad).map_err(token_error),
        }
    }

    /// Opens the sealed private key of a row and checks it against the stored public key.
    pub(crate) fn open_private_key(
        &self,
        sealed: &[u8],
        binding: &KeyBinding,
        public_key: &[u8],
    ) -> napi::Result<Zeroizing<[u8; 32]>> {
        match self {
            Kek::Bytes(kek) => {
                seal::open_private_key(kek, sealed, &binding.key_id, &binding.org_id, public_key)
                    .or_throw()
            }
            Kek::Token(key) => key
                .open_private_key(sealed, &binding.key_id, &binding.org_id, public_key)
                .map_err(token_error),
        }
    }
}
