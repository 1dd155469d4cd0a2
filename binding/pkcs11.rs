//! Sealing and opening under a KEK given as bytes or held in a PKCS#11 token (see kek.rs), and the
//! token's own operations. Token operations may block, so each is an `AsyncTask` on a worker thread.
use cloacina_sign_core::{keys, seal};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;

use crate::kek::{token_error, token_key, Kek, KekArg, KeyBinding, Pkcs11Kek};
use crate::sealing::SealedKeypair;

/// A task running one closure on a worker thread.
pub struct KekTask<T: Send + 'static>(Option<Box<dyn FnOnce() -> napi::Result<T> + Send>>);

impl<T: Send + napi::bindgen_prelude::ToNapiValue + napi::bindgen_prelude::TypeName + 'static> Task
    for KekTask<T>
{
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<T> {
        (self.0.take().expect("a task runs once"))()
    }

    fn resolve(&mut self, _env: Env, output: T) -> napi::Result<T> {
        Ok(output)
    }
}

fn task<T: Send + 'static>(
    op: impl FnOnce() -> napi::Result<T> + Send + 'static,
) -> AsyncTask<KekTask<T>>
where
    KekTask<T>: Task,
{
    AsyncTask::new(KekTask(Some(Box::new(op))))
}

/// Generates a key pair and seals its private half under the KEK (bytes or token), off the JS thread.
#[napi(ts_return_type = "Promise<SealedKeypair>")]
pub fn generate_sealed_keypair_under(
    kek: KekArg,
    binding: KeyBinding,
) -> AsyncTask<KekTask<SealedKeypair>> {
    let kek = Kek::from(kek);
    task(move || {
        let (seed, public_key) = keys::generate_keypair();
        let aad = seal::private_key_aad(&binding.key_id, &binding.org_id, &public_key);
        let sealed = kek.seal(seed.as_slice(), &aad)?;
        Ok(SealedKeypair {
            public_key: public_key.to_vec().into(),
            fingerprint: keys::fingerprint(&public_key),
            sealed_private_key: sealed.into(),
        })
    })
}

/// Re-seals a private key from one KEK to another (bytes or token, either way), all inside Rust.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn rewrap_sealed_key_between(
    old_kek: KekArg,
    new_kek: KekArg,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
) -> AsyncTask<KekTask<Buffer>> {
    let (old_kek, new_kek) = (Kek::from(old_kek), Kek::from(new_kek));
    let (sealed, public_key) = (sealed_private_key.to_vec(), public_key.to_vec());
    task(move || {
        let seed = old_kek.open_private_key(&sealed, &binding, &public_key)?;
        let aad = seal::private_key_aad(
            &binding.key_id,
            &binding.org_id,
            &keys::public_key_of(&seed),
        );
        Ok(new_kek.seal(seed.as_slice(), &aad)?.into())
    })
}

/// Checks that the KEK (bytes or token) opens a sealed key, without signing anything.
#[napi(ts_return_type = "Promise<void>")]
pub fn check_sealed_key_under(
    kek: KekArg,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
) -> AsyncTask<KekTask<()>> {
    let kek = Kek::from(kek);
    let (sealed, public_key) = (sealed_private_key.to_vec(), public_key.to_vec());
    task(move || {
        kek.open_private_key(&sealed, &binding, &public_key)
            .map(|_| ())
    })
}

/// The public id of a token KEK (an AES-CMAC of a fixed string, computed in the token). Also the
/// readiness probe of a token KEK: it needs the module, the token, the PIN and the key object.
#[napi(ts_return_type = "Promise<string>")]
pub fn pkcs11_kek_id(kek: Pkcs11Kek) -> AsyncTask<KekTask<String>> {
    let key = token_key(kek);
    task(move || key.kek_id().map_err(token_error))
}

#[napi(object)]
pub struct Pkcs11CreatedKek {
    /// False when a sensitive, non-extractable AES-256 object of that label existed already.
    pub created: bool,
    pub kek_id: String,
}

/// Makes the KEK object in the token (AES-256, sensitive, not extractable), or accepts an existing
/// one with those attributes; an extractable one is refused (INVALID_KEY).
#[napi(ts_return_type = "Promise<Pkcs11CreatedKek>")]
pub fn pkcs11_create_kek(kek: Pkcs11Kek) -> AsyncTask<KekTask<Pkcs11CreatedKek>> {
    let key = token_key(kek);
    task(move || {
        let created = key.create().map_err(token_error)?;
        Ok(Pkcs11CreatedKek {
            created: created.created,
            kek_id: created.kek_id,
        })
    })
}

/// Whether the token releases the KEK object's CKA_VALUE (a KEK's must not be released). Never
/// returns the value.
#[napi(ts_return_type = "Promise<boolean>")]
pub fn pkcs11_kek_value_readable(kek: Pkcs11Kek) -> AsyncTask<KekTask<bool>> {
    let key = token_key(kek);
    task(move || key.value_readable().map_err(token_error))
}
