use std::path::PathBuf;

use cloacina_sign_core::{digest, keys, seal};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;
use zeroize::Zeroizing;

use crate::errors::OrThrow;
use crate::files::{signed_digest, SignedDigest};
use crate::pkcs11::{Kek, KekArg};
use crate::verify::{digests_for, statement_for, Digests, StatementInput};

/// Which row a sealed private key belongs to; it is the AES-GCM associated data.
#[napi(object)]
pub struct KeyBinding {
    pub key_id: String,
    pub org_id: String,
}

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

/// Where a version-1 signature's digest comes from: the package file (hashed here), or the caller
/// (the signing service, which never receives the package).
enum PackageDigest {
    File(PathBuf),
    Given(digest::Digest),
}

pub struct SignWithSealedKeyTask {
    digest: PackageDigest,
    key: SealedKey,
}

impl Task for SignWithSealedKeyTask {
    type Output = SignedDigest;
    type JsValue = SignedDigest;

    fn compute(&mut self) -> napi::Result<SignedDigest> {
        let seed = self.key.unseal()?;
        let digest = match &self.digest {
            PackageDigest::File(path) => digest::sha256_file(path, None).or_throw()?,
            PackageDigest::Given(digest) => *digest,
        };
        Ok(signed_digest(&seed, &digest))
    }

    fn resolve(&mut self, _env: Env, output: SignedDigest) -> napi::Result<SignedDigest> {
        Ok(output)
    }
}

/// Signs a file with a sealed private key, unsealed and used only inside Rust.
#[napi(ts_return_type = "Promise<SignedDigest>")]
pub fn sign_file_with_sealed_key(
    path: String,
    kek: KekArg,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
) -> AsyncTask<SignWithSealedKeyTask> {
    AsyncTask::new(SignWithSealedKeyTask {
        digest: PackageDigest::File(path.into()),
        key: SealedKey::new(kek, sealed_private_key, binding, public_key),
    })
}

/// Signs a package digest computed elsewhere (the signing service: the package never travels) with a
/// sealed private key, unsealed and used only inside Rust.
#[napi(ts_return_type = "Promise<SignedDigest>")]
pub fn sign_digest_with_sealed_key(
    package_hash: String,
    kek: KekArg,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
) -> napi::Result<AsyncTask<SignWithSealedKeyTask>> {
    Ok(AsyncTask::new(SignWithSealedKeyTask {
        digest: PackageDigest::Given(crate::files::digest_from_hex(&package_hash)?),
        key: SealedKey::new(kek, sealed_private_key, binding, public_key),
    }))
}

/// Where a statement's digests come from: the package file (hashed here), or the caller (the
/// signing service, which never receives the package).
enum StatementDigests {
    File(PathBuf),
    Given(digest::PackageDigests),
}

pub struct SignStatementWithSealedKeyTask {
    digests: StatementDigests,
    key: SealedKey,
    input: StatementInput,
}

impl Task for SignStatementWithSealedKeyTask {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        let seed = self.key.unseal()?;
        let statement = match &self.digests {
            StatementDigests::File(path) => {
                let digests =
                    digest::digest_file(path, digests_for(&self.input), None, None).or_throw()?;
                statement_for(&self.input, &digests)?
            }
            StatementDigests::Given(digests) => statement_for(&self.input, digests)?,
        };
        Ok(statement.sign(&seed).or_throw()?.to_json())
    }

    fn resolve(&mut self, _env: Env, document: String) -> napi::Result<String> {
        Ok(document)
    }
}

/// Signs a version-2 statement about a package with a sealed private key, unsealed and used only
/// inside Rust; resolves to the canonical document.
#[napi(ts_return_type = "Promise<string>")]
pub fn sign_statement_file_with_sealed_key(
    path: String,
    kek: KekArg,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
    input: StatementInput,
) -> AsyncTask<SignStatementWithSealedKeyTask> {
    AsyncTask::new(SignStatementWithSealedKeyTask {
        digests: StatementDigests::File(path.into()),
        key: SealedKey::new(kek, sealed_private_key, binding, public_key),
        input,
    })
}

/// Signs a version-2 statement about a package hashed elsewhere (the signing service: the package
/// never travels) with a sealed private key; `digest` is the package's digest in the input's
/// algorithm and `size` its size. Resolves to the canonical document.
#[napi(ts_return_type = "Promise<string>")]
pub fn sign_statement_digest_with_sealed_key(
    kek: KekArg,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
    input: StatementInput,
    digest: String,
    size: f64,
) -> napi::Result<AsyncTask<SignStatementWithSealedKeyTask>> {
    let raw = crate::files::digest_from_hex(&digest)?;
    let sha256 = digests_for(&input).sha256;
    let digests = Digests {
        size,
        sha256: sha256.then(|| digest.clone()),
        blake3: (!sha256).then(|| digest.clone()),
    }
    .to_core()?;
    debug_assert_eq!(digests.sha256.or(digests.blake3), Some(raw));
    Ok(AsyncTask::new(SignStatementWithSealedKeyTask {
        digests: StatementDigests::Given(digests),
        key: SealedKey::new(kek, sealed_private_key, binding, public_key),
        input,
    }))
}
