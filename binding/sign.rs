//! The one signing task: a package's digest (hashed here from its file, or given by a caller that
//! never had the package) signed with a key (a private key the caller holds, or a sealed key opened
//! here under its KEK) into a version-1 or version-2 document, all on a worker thread.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use cloacina_sign_core::codes;
use cloacina_sign_core::digest::{self, DigestSet, PackageDigests};
use cloacina_sign_core::keys;
use cloacina_sign_core::pem;
use cloacina_sign_core::signature::{encode_signature, DetachedSignature};
use cloacina_sign_core::statement::{DigestAlgorithm, SignedStatement, Statement};
use napi::bindgen_prelude::{AsyncTask, Buffer, Either};
use napi::{Env, Task};
use napi_derive::napi;
use zeroize::Zeroizing;

use crate::errors::{coded, OrThrow};
use crate::files::{counter, ProgressCounter};
use crate::kek::{KekArg, KeyBinding};
use crate::sealing::SealedKey;
use crate::verify::Digests;

/// A private key sealed under a KEK (bytes or a token's), as its database row stores it.
#[napi(object, object_to_js = false)]
pub struct SealedKeyInput {
    pub kek: KekArg,
    pub sealed_private_key: Buffer,
    pub binding: KeyBinding,
    pub public_key: Buffer,
}

/// What a version-2 signature will say, besides the package's size and digest (computed when signing).
#[napi(object)]
pub struct StatementInput {
    pub name: String,
    pub version: String,
    pub organization: Option<String>,
    /// `blake3` (default) or `sha256`.
    pub digest_algorithm: Option<String>,
    /// RFC 3339 UTC, written `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
    pub issued_at: String,
    pub expires_at: Option<String>,
}

/// Which document to sign.
#[napi(object, object_to_js = false)]
pub struct SignatureRequest {
    /// 1 (Cloacina's document: the SHA-256 digest alone) or 2 (a signed statement).
    pub version: u32,
    /// Version 1: the document's `signed_at`, RFC 3339 UTC.
    pub signed_at: Option<String>,
    /// Version 2: what the statement says besides the package's size and digest.
    pub statement: Option<StatementInput>,
}

/// The statement for a package of these digests; INVALID_INPUT (with what is wrong) for bad fields.
fn statement_for(input: &StatementInput, digests: &PackageDigests) -> napi::Result<Statement> {
    let name = input.digest_algorithm.as_deref().unwrap_or("blake3");
    let algorithm = DigestAlgorithm::from_name(name).ok_or_else(|| {
        coded(
            codes::INVALID_INPUT,
            format!("unknown digest {name:?}: blake3 or sha256"),
        )
    })?;
    let digest = match algorithm {
        DigestAlgorithm::Blake3 => digests.blake3,
        DigestAlgorithm::Sha256 => digests.sha256,
    }
    .ok_or_else(|| {
        coded(
            codes::INVALID_INPUT,
            "the package's digest was not computed",
        )
    })?;
    let statement = Statement {
        name: input.name.clone(),
        version: input.version.clone(),
        organization: input.organization.clone(),
        size: digests.size,
        digest_algorithm: algorithm,
        digest,
        issued_at: input.issued_at.clone(),
        expires_at: input.expires_at.clone(),
    };
    // A statement we could not read back is refused before it is signed (reported as bad input).
    statement
        .validate()
        .map_err(|e| coded(codes::INVALID_INPUT, e))?;
    Ok(statement)
}

/// The document to produce, checked on the JS thread before any work is queued.
enum Document {
    V1 { signed_at: String },
    V2(StatementInput),
}

impl Document {
    fn from_request(request: SignatureRequest) -> napi::Result<Self> {
        let refuse = |message: &str| Err(coded(codes::INVALID_INPUT, message.to_string()));
        match (request.version, request.signed_at, request.statement) {
            (1, Some(signed_at), None) => Ok(Document::V1 { signed_at }),
            (2, None, Some(statement)) => Ok(Document::V2(statement)),
            (1, _, _) => refuse("a version-1 signature takes signed_at and no statement"),
            (2, _, _) => refuse("a version-2 signature takes a statement and no signed_at"),
            _ => refuse("the signature version must be 1 or 2"),
        }
    }

    /// The digests this document signs.
    fn digests_needed(&self) -> DigestSet {
        match self {
            Document::V1 { .. } => DigestSet::SHA256,
            // An unknown name is refused by `statement_for`.
            Document::V2(input) => match input.digest_algorithm.as_deref() {
                Some("sha256") => DigestSet::SHA256,
                _ => DigestSet::BLAKE3,
            },
        }
    }

    /// What is signed for a package of these digests (INVALID_INPUT when a needed digest is missing).
    fn prepare(&self, digests: &PackageDigests) -> napi::Result<Prepared> {
        match self {
            Document::V1 { signed_at } => Ok(Prepared::V1 {
                package_hash: digests.sha256.ok_or_else(|| {
                    coded(
                        codes::INVALID_INPUT,
                        "a version-1 signature needs the package's SHA-256",
                    )
                })?,
                signed_at: signed_at.clone(),
            }),
            Document::V2(input) => Ok(Prepared::V2(statement_for(input, digests)?)),
        }
    }

    fn sign(&self, seed: &[u8; 32], digests: &PackageDigests) -> napi::Result<String> {
        let prepared = self.prepare(digests)?;
        let signature = keys::sign(seed, &prepared.message());
        prepared.document(&keys::public_key_of(seed), &signature)
    }
}

/// A document about one package, but for its signature.
pub(crate) enum Prepared {
    V1 {
        package_hash: digest::Digest,
        signed_at: String,
    },
    V2(Statement),
}

impl Prepared {
    /// The exact bytes the signature covers: the raw SHA-256 (version 1), the statement's message (version 2).
    fn message(&self) -> Vec<u8> {
        match self {
            Prepared::V1 { package_hash, .. } => package_hash.to_vec(),
            Prepared::V2(statement) => statement.signed_message(),
        }
    }

    /// The canonical document with the signature of `public_key`'s key.
    pub(crate) fn document(
        self,
        public_key: &[u8; 32],
        signature: &[u8; 64],
    ) -> napi::Result<String> {
        match self {
            Prepared::V1 {
                package_hash,
                signed_at,
            } => {
                // Built from its encoded fields, each validated as a reader would: nothing is
                // written that could not be read back.
                let document = DetachedSignature::from_fields(
                    &digest::to_hex(&package_hash),
                    &keys::fingerprint(public_key),
                    &encode_signature(signature),
                    &signed_at,
                )
                .or_throw()?;
                Ok(document.to_json())
            }
            Prepared::V2(statement) => Ok(SignedStatement {
                statement,
                key_fingerprint: digest::sha256(public_key),
                signature: *signature,
            }
            .to_json()),
        }
    }
}

/// The signing key as the task carries it: the caller's own (parsed on the JS thread), or sealed
/// (opened on the worker thread only).
enum SigningKey {
    Seed(Zeroizing<[u8; 32]>),
    Sealed(SealedKey),
}

impl SigningKey {
    fn from_arg(arg: Either<Buffer, SealedKeyInput>) -> napi::Result<Self> {
        Ok(match arg {
            Either::A(private_key) => {
                SigningKey::Seed(pem::private_key_from_any(&private_key).or_throw()?)
            }
            Either::B(sealed) => SigningKey::Sealed(SealedKey::new(
                sealed.kek,
                sealed.sealed_private_key,
                sealed.binding,
                sealed.public_key,
            )),
        })
    }

    fn seed(&self) -> napi::Result<Zeroizing<[u8; 32]>> {
        match self {
            SigningKey::Seed(seed) => Ok(seed.clone()),
            SigningKey::Sealed(sealed) => sealed.unseal(),
        }
    }
}

/// Where the digest comes from: the package file (hashed here), or the caller.
enum PackageInput {
    File(PathBuf),
    Given(PackageDigests),
}

pub struct SignPackageTask {
    package: PackageInput,
    key: SigningKey,
    document: Document,
    progress: Option<Arc<AtomicU64>>,
}

impl Task for SignPackageTask {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        // The key first: a wrong KEK fails before a large package is read.
        let seed = self.key.seed()?;
        let hashed;
        let digests = match &self.package {
            PackageInput::Given(digests) => digests,
            PackageInput::File(path) => {
                hashed = digest::digest_file(
                    path,
                    self.document.digests_needed(),
                    self.progress.as_deref(),
                    None,
                )
                .or_throw()?;
                &hashed
            }
        };
        self.document.sign(&seed, digests)
    }

    fn resolve(&mut self, _env: Env, document: String) -> napi::Result<String> {
        Ok(document)
    }
}

/// Signs a package into its canonical signature document (version 1 or 2). `target` is the package
/// file's path (hashed on the worker thread, counted in `progress`) or its digests computed elsewhere
/// (the signing service never receives the package; the size is signed by version 2 only). `key` is
/// an Ed25519 private key (raw, DER or PEM) or a sealed key, opened and used inside Rust only.
#[napi(ts_return_type = "Promise<string>")]
pub fn sign_package(
    target: Either<String, Digests>,
    key: Either<Buffer, SealedKeyInput>,
    request: SignatureRequest,
    progress: Option<&ProgressCounter>,
) -> napi::Result<AsyncTask<SignPackageTask>> {
    let package = match target {
        Either::A(path) => PackageInput::File(path.into()),
        Either::B(digests) => PackageInput::Given(digests.to_core()?),
    };
    Ok(AsyncTask::new(SignPackageTask {
        package,
        document: Document::from_request(request)?,
        key: SigningKey::from_arg(key)?,
        progress: counter(progress),
    }))
}

/// The bytes a document's signature covers, for a key that signs outside this process (a hardware
/// token's): the package's raw SHA-256 (version 1) or the statement's signed message (version 2).
#[napi]
pub fn signature_message(digests: Digests, request: SignatureRequest) -> napi::Result<Buffer> {
    let prepared = Document::from_request(request)?.prepare(&digests.to_core()?)?;
    Ok(prepared.message().into())
}

/// The canonical document around a signature made outside this process (over `signature_message` of
/// the same digests and request) by the raw Ed25519 `public_key`. The signature is verified first
/// (INVALID_SIGNATURE otherwise): nothing is written that would not verify.
#[napi]
pub fn signature_document(
    digests: Digests,
    request: SignatureRequest,
    public_key: Buffer,
    signature: Buffer,
) -> napi::Result<String> {
    let prepared = Document::from_request(request)?.prepare(&digests.to_core()?)?;
    keys::verify(&public_key, &prepared.message(), &signature).or_throw()?;
    let public_key: [u8; 32] = public_key[..]
        .try_into()
        .map_err(|_| coded(codes::INVALID_KEY, "an Ed25519 public key is 32 bytes"))?;
    let signature: [u8; 64] = signature[..]
        .try_into()
        .map_err(|_| coded(codes::INVALID_SIGNATURE, "an Ed25519 signature is 64 bytes"))?;
    prepared.document(&public_key, &signature)
}
