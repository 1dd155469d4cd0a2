use cloacina_sign_core::{keys, seal};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use zeroize::Zeroizing;

use crate::errors::OrThrow;
use crate::kek::{Kek, KekArg, KeyBinding};

#[napi(object)]
pub struct SealedKeypair {
    pub public_key: Buffer,
    pub fingerprint: String,
    /// nonce || ciphertext || tag of the 32-byte seed.
    pub sealed_private_key: Buffer,
}

/// Generates a key pair and seals its private half under the KEK; the private key never reaches JS.
#[napi]
pub fn generate_sealed_keypair(kek: Buffer, binding: KeyBinding) -> napi::Result<SealedKeypair> {
    let (seed, public_key) = keys::generate_keypair();
    let aad = seal::private_key_aad(&binding.key_id, &binding.org_id, &public_key);
    let sealed = seal::seal(&kek, seed.as_slice(), &aad).or_throw()?;
    Ok(SealedKeypair {
        public_key: public_key.to_vec().into(),
        fingerprint: keys::fingerprint(&public_key),
        sealed_private_key: sealed.into(),
    })
}

/// Opens a sealed private key, then checks it still belongs to the stored public key.
fn unseal(
    kek: &[u8],
    sealed: &[u8],
    binding: &KeyBinding,
    public_key: &[u8],
) -> napi::Result<Zeroizing<[u8; 32]>> {
    seal::open_private_key(kek, sealed, &binding.key_id, &binding.org_id, public_key).or_throw()
}

/// Re-seals a private key under a new KEK (key rotation of the KEK), all inside Rust.
#[napi]
pub fn rewrap_sealed_key(
    old_kek: Buffer,
    new_kek: Buffer,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
) -> napi::Result<Buffer> {
    let seed = unseal(&old_kek, &sealed_private_key, &binding, &public_key)?;
    let aad = seal::private_key_aad(
        &binding.key_id,
        &binding.org_id,
        &keys::public_key_of(&seed),
    );
    Ok(seal::seal(&new_kek, seed.as_slice(), &aad)
        .or_throw()?
        .into())
}

/// Checks that the KEK opens a sealed key, without signing anything (used before writes).
#[napi]
pub fn check_sealed_key(
    kek: Buffer,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
) -> napi::Result<()> {
    unseal(&kek, &sealed_private_key, &binding, &public_key).map(|_| ())
}

/// A sealed private key as a task carries it to the worker thread, where alone it is opened.
pub(crate) struct SealedKey {
    kek: Kek,
    sealed: Vec<u8>,
    binding: KeyBinding,
    public_key: Vec<u8>,
}

impl SealedKey {
    pub(crate) fn new(
        kek: KekArg,
        sealed: Buffer,
        binding: KeyBinding,
        public_key: Buffer,
    ) -> Self {
        SealedKey {
            kek: Kek::from(kek),
            sealed: sealed.to_vec(),
            binding,
            public_key: public_key.to_vec(),
        }
    }

    pub(crate) fn unseal(&self) -> napi::Result<Zeroizing<[u8; 32]>> {
        self.kek
            .open_private_key(&self.sealed, &self.binding, &self.public_key)
    }
}
