//! Verification across the binding: signature documents (version 1 or 2), the digests a decision
//! needs, the operator's policy, and the decision itself (`verify_any`, in Rust, on a worker thread).

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use cloacina_sign_core::codes;
use cloacina_sign_core::digest::{self, DigestSet, PackageDigests};
use cloacina_sign_core::document::SignatureDocument;
use cloacina_sign_core::pem;
use cloacina_sign_core::policy::{AllowedVersions, Policy, DEFAULT_CLOCK_SKEW_SECS};
use cloacina_sign_core::statement::Statement;
use cloacina_sign_core::verify::{self, digests_needed, Candidate};
use cloacina_sign_core::CoreError;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;

use crate::errors::{coded, core_error, OrThrow};
use crate::files::{counter, digest_from_hex, ProgressCounter};

/// A package's size and the digests computed of it (lowercase hex).
#[napi(object)]
#[derive(Clone)]
pub struct Digests {
    pub size: f64,
    pub sha256: Option<String>,
    pub blake3: Option<String>,
}

impl From<&PackageDigests> for Digests {
    fn from(d: &PackageDigests) -> Self {
        Digests {
            size: d.size as f64,
            sha256: d.sha256.map(|h| digest::to_hex(&h)),
            blake3: d.blake3.map(|h| digest::to_hex(&h)),
        }
    }
}

impl Digests {
    pub(crate) fn to_core(&self) -> napi::Result<PackageDigests> {
        if !(self.size.is_finite() && self.size >= 0.0 && self.size.fract() == 0.0) {
            return Err(coded(
                codes::INVALID_INPUT,
                "a package size must be a non-negative integer",
            ));
        }
        Ok(PackageDigests {
            size: self.size as u64,
            sha256: self.sha256.as_deref().map(digest_from_hex).transpose()?,
            blake3: self.blake3.as_deref().map(digest_from_hex).transpose()?,
        })
    }
}

/// Which digests to compute.
#[napi(object)]
pub struct DigestRequest {
    pub sha256: bool,
    pub blake3: bool,
}

impl From<&DigestRequest> for DigestSet {
    fn from(r: &DigestRequest) -> Self {
        DigestSet {
            sha256: r.sha256,
            blake3: r.blake3,
        }
    }
}

/// The signed fields of a version-2 statement.
#[napi(object)]
#[derive(Clone)]
pub struct StatementFields {
    pub name: String,
    pub version: String,
    pub organization: Option<String>,
    pub size: f64,
    pub digest_algorithm: String,
    pub digest: String,
    pub issued_at: String,
    pub expires_at: Option<String>,
}

impl From<&Statement> for StatementFields {
    fn from(s: &Statement) -> Self {
        StatementFields {
            name: s.name.clone(),
            version: s.version.clone(),
            organization: s.organization.clone(),
            size: s.size as f64,
            digest_algorithm: s.digest_algorithm.name().to_string(),
            digest: digest::to_hex(&s.digest),
            issued_at: s.issued_at.clone(),
            expires_at: s.expires_at.clone(),
        }
    }
}

/// What a parsed signature document says (nothing of it is verified yet).
#[napi(object)]
pub struct DocumentInfo {
    /// 1 or 2 (Cloacina's documents); 0 for a cosign signature.
    pub version: u32,
    /// `v1`, `v2` or `cosign`.
    pub kind: String,
    /// The fingerprint of the key the document names; absent for a cosign signature (it names none).
    pub key_fingerprint: Option<String>,
    /// The canonical document: compact JSON, or a cosign signature's base64.
    pub canonical: String,
    /// Version 2: the statement's fields.
    pub statement: Option<StatementFields>,
}

fn document_info(document: &SignatureDocument) -> DocumentInfo {
    let (version, statement) = match document {
        SignatureDocument::V1(_) => (1, None),
        SignatureDocument::V2(signed) => (2, Some(StatementFields::from(&signed.statement))),
        SignatureDocument::Cosign(_) => (0, None),
    };
    DocumentInfo {
        version,
        kind: document.kind().to_string(),
        key_fingerprint: document.key_fingerprint().map(|f| digest::to_hex(f)),
        canonical: document.canonical(),
        statement,
    }
}

/// Strict parse of a signature document of any kind (version 1, version 2, cosign); MALFORMED_SIGNATURE
/// saying what is wrong.
#[napi]
pub fn parse_signature_document(document: Buffer) -> napi::Result<DocumentInfo> {
    Ok(document_info(
        &SignatureDocument::parse(&document).or_throw()?,
    ))
}

pub struct ReadSignatureTask {
    path: PathBuf,
}

impl Task for ReadSignatureTask {
    type Output = SignatureDocument;
    type JsValue = DocumentInfo;

    fn compute(&mut self) -> napi::Result<SignatureDocument> {
        SignatureDocument::read_file(&self.path).or_throw()
    }

    fn resolve(&mut self, _env: Env, document: SignatureDocument) -> napi::Result<DocumentInfo> {
        Ok(document_info(&document))
    }
}

/// Reads a signature file off the JS thread (never blocking on a FIFO, at most 64 KiB);
/// SIGNATURE_NOT_FOUND when there is no file, MALFORMED_SIGNATURE when invalid.
#[napi(ts_return_type = "Promise<DocumentInfo>")]
pub fn read_signature_file(path: String) -> AsyncTask<ReadSignatureTask> {
    AsyncTask::new(ReadSignatureTask { path: path.into() })
}

/// A package version the organization already loaded (rollback protection).
#[napi(object)]
pub struct VersionMark {
    pub name: String,
    pub version: String,
}

/// The operator's policy on signed fields; every field optional.
#[napi(object)]
pub struct PolicyOptions {
    pub expect_name: Option<String>,
    pub expect_organization: Option<String>,
    /// Exact versions (`1.0.0,1.1.0`) or a range (`>=1.2.0, <2.0.0`).
    pub allowed_versions: Option<String>,
    pub require_v2: Option<bool>,
    /// Clock skew allowed when checking expiry, in seconds.
    pub clock_skew_seconds: Option<f64>,
    pub rollback_floors: Option<Vec<VersionMark>>,
    /// Seconds since the epoch to check expiry against (tests); now when absent.
    pub now_unix: Option<f64>,
}

pub(crate) fn policy_from(options: Option<&PolicyOptions>) -> napi::Result<Policy> {
    let Some(options) = options else {
        return Ok(Policy::default());
    };
    let version = |text: &str| {
        semver::Version::parse(text).map_err(|e| {
            coded(
                codes::INVALID_INPUT,
                format!("{text:?} is not a SemVer 2.0.0 version: {e}"),
            )
        })
    };
    Ok(Policy {
        expect_name: options.expect_name.clone(),
        expect_organization: options.expect_organization.clone(),
        allowed_versions: options
            .allowed_versions
            .as_deref()
            .map(AllowedVersions::parse)
            .transpose()
            .or_throw()?,
        require_v2: options.require_v2.unwrap_or(false),
        rollback_floors: options
            .rollback_floors
            .iter()
            .flatten()
            .map(|mark| Ok((mark.name.clone(), version(&mark.version)?)))
            .collect::<napi::Result<_>>()?,
        now_unix: options.now_unix.map(|t| t as i64),
        clock_skew_secs: options
            .clock_skew_seconds
            .map_or(DEFAULT_CLOCK_SKEW_SECS, |s| s.max(0.0) as i64),
    })
}

/// One signature to try, with the public key the caller trusts for it (if any).
#[napi(object)]
pub struct VerifyCandidate {
    /// The signature document (JSON text of either version, or a cosign signature's base64).
    pub document: Buffer,
    /// The trusted public key to try: the one whose fingerprint the signature names, or for a cosign
    /// signature one trusted ECDSA P-256 key; absent when no trusted key matches.
    pub public_key: Option<Buffer>,
}

#[napi(object)]
#[derive(Clone)]
pub struct VerifiedPackage {
    /// Lowercase hex SHA-256 of the package, when it was computed.
    pub package_hash: Option<String>,
    pub digests: Digests,
    /// The fingerprint of the trusted key that verified.
    pub key_fingerprint: String,
    /// Version 1: `signed_at` (not signed); version 2: the signed `issued_at`; cosign: empty (it has
    /// no time).
    pub signed_at: String,
    /// Which candidate verified.
    pub candidate_index: u32,
    /// 1 or 2; 0 for a cosign signature.
    pub document_version: u32,
    /// `v1`, `v2` or `cosign`.
    pub document_kind: String,
    /// Version 2: the signed statement.
    pub statement: Option<StatementFields>,
}

/// Pairs each signature document with the trusted keys it can be verified with (see
/// [`verify::candidates_for`]): a version-1 or version-2 document with the key its fingerprint names (none
/// when no trusted key has it), a cosign signature, which names no key, with every trusted ECDSA P-256 key
/// in the given order (none when no P-256 key is trusted). Documents keep their order and their bytes; keys
/// are given and returned in their stored form (raw 32-byte Ed25519, or P-256 SubjectPublicKeyInfo DER).
/// MALFORMED_SIGNATURE for a document that does not parse, INVALID_KEY for a paired key that does not.
#[napi]
pub fn pair_with_trusted_keys(
    documents: Vec<Buffer>,
    trusted_keys: Vec<Buffer>,
) -> napi::Result<Vec<VerifyCandidate>> {
    let mut paired = Vec::new();
    for document in &documents {
        let signature = SignatureDocument::parse(document).or_throw()?;
        for candidate in verify::candidates_for(&signature, &trusted_keys).or_throw()? {
            paired.push(VerifyCandidate {
                document: document.to_vec().into(),
                public_key: candidate.public_key.map(|key| key.encoded().into()),
            });
        }
    }
    Ok(paired)
}

fn parse_candidate(document: &[u8], public_key: Option<&[u8]>) -> napi::Result<Candidate> {
    let signature = SignatureDocument::parse(document).or_throw()?;
    let public_key = public_key
        .map(|key| pem::parse_verification_key(key).or_throw())
        .transpose()?;
    Ok(Candidate {
        signature,
        public_key,
    })
}

pub(crate) fn parse_candidates(candidates: &[VerifyCandidate]) -> napi::Result<Vec<Candidate>> {
    candidates
        .iter()
        .map(|c| parse_candidate(&c.document, c.public_key.as_deref()))
        .collect()
}

pub(crate) fn verified(
    digests: &PackageDigests,
    candidates: &[Candidate],
    index: usize,
) -> VerifiedPackage {
    let candidate = &candidates[index];
    let document = &candidate.signature;
    let (signed_at, statement, version) = match document {
        SignatureDocument::V1(sig) => (sig.signed_at.clone(), None, 1),
        SignatureDocument::V2(signed) => (
            signed.statement.issued_at.clone(),
            Some(StatementFields::from(&signed.statement)),
            2,
        ),
        SignatureDocument::Cosign(_) => (String::new(), None, 0),
    };
    // The key that verified: the one a version-1 or -2 document names, or the P-256 key a cosign
    // signature verified under.
    let key_fingerprint = candidate
        .public_key
        .as_ref()
        .map(|key| key.fingerprint_hex())
        .or_else(|| document.key_fingerprint().map(|f| digest::to_hex(f)))
        .unwrap_or_default();
    VerifiedPackage {
        package_hash: digests.sha256.map(|h| digest::to_hex(&h)),
        digests: Digests::from(digests),
        key_fingerprint,
        signed_at,
        candidate_index: index as u32,
        document_version: version,
        document_kind: document.kind().to_string(),
        statement,
    }
}

pub struct HashDigestsTask {
    path: PathBuf,
    set: DigestSet,
    threads: Option<usize>,
    progress: Option<Arc<AtomicU64>>,
}

impl Task for HashDigestsTask {
    type Output = PackageDigests;
    type JsValue = Digests;

    fn compute(&mut self) -> napi::Result<PackageDigests> {
        digest::digest_file(&self.path, self.set, self.progress.as_deref(), self.threads).or_throw()
    }

    fn resolve(&mut self, _env: Env, output: PackageDigests) -> napi::Result<Digests> {
        Ok(Digests::from(&output))
    }
}

/// The size and the requested digests of a file in one pass (BLAKE3 alone: the file mapped and hashed
/// in place); BLAKE3 on `threads` cores (every core when absent).
#[napi(ts_return_type = "Promise<Digests>")]
pub fn hash_file_digests(
    path: String,
    request: DigestRequest,
    progress: Option<&ProgressCounter>,
    threads: Option<u32>,
) -> AsyncTask<HashDigestsTask> {
    AsyncTask::new(HashDigestsTask {
        path: path.into(),
        set: DigestSet::from(&request),
        threads: threads.map(|t| t.max(1) as usize),
        progress: counter(progress),
    })
}

/// What `hashFileWithSignature` found: the package's digests and the signature beside it.
#[napi(object)]
pub struct HashedWithSignature {
    pub digests: Digests,
    /// The signature file's canonical document; absent when there is no such file.
    pub signature: Option<String>,
}

/// Reads the signature file (if any), then hashes the package with SHA-256 (always: stored
/// signatures are found by it) and whatever the signature's statement names.
fn read_then_hash(
    path: &std::path::Path,
    signature_path: &std::path::Path,
    progress: Option<&AtomicU64>,
) -> napi::Result<(PackageDigests, Option<SignatureDocument>)> {
    // The package must exist first: a missing package is UNREADABLE_FILE, not a missing signature.
    let (package, _) = cloacina_sign_core::files::open_regular(path).or_throw()?;
    drop(package);
    let signature = match SignatureDocument::read_file(signature_path) {
        Ok(signature) => Some(signature),
        Err(CoreError::SignatureNotFound(_)) => None,
        Err(error) => return Err(core_error(error)),
    };
    let mut set = DigestSet::SHA256;
    if let Some(document) = &signature {
        set.blake3 = digests_needed(&[Candidate {
            signature: document.clone(),
            public_key: None,
        }])
        .blake3;
    }
    Ok((
        digest::digest_file(path, set, progress, None).or_throw()?,
        signature,
    ))
}

pub struct HashWithSignatureTask {
    path: PathBuf,
    signature_path: PathBuf,
    progress: Option<Arc<AtomicU64>>,
}

impl Task for HashWithSignatureTask {
    type Output = (PackageDigests, Option<SignatureDocument>);
    type JsValue = HashedWithSignature;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        read_then_hash(&self.path, &self.signature_path, self.progress.as_deref())
    }

    fn resolve(
        &mut self,
        _env: Env,
        (digests, signature): Self::Output,
    ) -> napi::Result<HashedWithSignature> {
        Ok(HashedWithSignature {
            digests: Digests::from(&digests),
            signature: signature.map(|s| s.canonical()),
        })
    }
}

/// Reads the signature file beside a package and hashes the package in one task (the verifier's
/// common case: one trip to the worker pool).
#[napi(ts_return_type = "Promise<HashedWithSignature>")]
pub fn hash_file_with_signature(
    path: String,
    signature_path: String,
    progress: Option<&ProgressCounter>,
) -> AsyncTask<HashWithSignatureTask> {
    AsyncTask::new(HashWithSignatureTask {
        path: path.into(),
        signature_path: signature_path.into(),
        progress: counter(progress),
    })
}

/// The whole verification of one package against pinned keys, on the calling thread.
pub(crate) fn verify_file_now(
    path: &std::path::Path,
    signature_path: &std::path::Path,
    trusted_keys: &[Vec<u8>],
    policy: &Policy,
    progress: Option<&AtomicU64>,
) -> napi::Result<VerifiedPackage> {
    // The package must exist first: a missing package is UNREADABLE_FILE, not a missing signature.
    drop(cloacina_sign_core::files::open_regular(path).or_throw()?);
    let signature = SignatureDocument::read_file(signature_path).or_throw()?;
    // The trusted key the signature names, if any (a key's fingerprint is the SHA-256 of its stored
    // form); for a cosign signature, every trusted P-256 key.
    let candidates = verify::candidates_for(&signature, trusted_keys).or_throw()?;
    let digests =
        digest::digest_file(path, digests_needed(&candidates), progress, None).or_throw()?;
    let index = verify::verify_any(&digests, &candidates, policy).or_throw()?;
    Ok(verified(&digests, &candidates, index))
}

pub struct VerifyFileTask {
    path: PathBuf,
    signature_path: PathBuf,
    trusted_keys: Vec<Vec<u8>>,
    policy: Policy,
    progress: Option<Arc<AtomicU64>>,
}

impl Task for VerifyFileTask {
    type Output = VerifiedPackage;
    type JsValue = VerifiedPackage;

    fn compute(&mut self) -> napi::Result<VerifiedPackage> {
        verify_file_now(
            &self.path,
            &self.signature_path,
            &self.trusted_keys,
            &self.policy,
            self.progress.as_deref(),
        )
    }

    fn resolve(&mut self, _env: Env, output: VerifiedPackage) -> napi::Result<VerifiedPackage> {
        Ok(output)
    }
}

/// The whole verification of a package against pinned keys in one task: read the signature file,
/// hash the package with the digest it names, pair it with the trusted key of its fingerprint (a
/// cosign signature: with every trusted P-256 key), and decide (`verify_any`, policy included).
/// Keys are given in their stored form (raw 32-byte Ed25519, or P-256 SubjectPublicKeyInfo DER).
#[napi(ts_return_type = "Promise<VerifiedPackage>")]
pub fn verify_file_with_keys(
    path: String,
    signature_path: String,
    trusted_keys: Vec<Buffer>,
    policy: Option<PolicyOptions>,
    progress: Option<&ProgressCounter>,
) -> napi::Result<AsyncTask<VerifyFileTask>> {
    Ok(AsyncTask::new(VerifyFileTask {
        path: path.into(),
        signature_path: signature_path.into(),
        trusted_keys: trusted_keys.iter().map(|key| key.to_vec()).collect(),
        policy: policy_from(policy.as_ref())?,
        progress: counter(progress),
    }))
}

pub struct VerifyDigestsTask {
    digests: PackageDigests,
    candidates: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    policy: Policy,
}

impl Task for VerifyDigestsTask {
    type Output = VerifiedPackage;
    type JsValue = VerifiedPackage;

    fn compute(&mut self) -> napi::Result<VerifiedPackage> {
        let candidates = self
            .candidates
            .iter()
            .map(|(document, public_key)| parse_candidate(document, public_key.as_deref()))
            .collect::<napi::Result<Vec<_>>>()?;
        let index = verify::verify_any(&self.digests, &candidates, &self.policy).or_throw()?;
        Ok(verified(&self.digests, &candidates, index))
    }

    fn resolve(&mut self, _env: Env, output: VerifiedPackage) -> napi::Result<VerifiedPackage> {
        Ok(output)
    }
}

/// Accepts the package when any candidate signature verifies over its digests and satisfies the
/// policy (tried in order). The checks run on a worker thread, so a runner verifying many
/// packages uses every core.
#[napi(ts_return_type = "Promise<VerifiedPackage>")]
pub fn verify_digests(
    digests: Digests,
    candidates: Vec<VerifyCandidate>,
    policy: Option<PolicyOptions>,
) -> napi::Result<AsyncTask<VerifyDigestsTask>> {
    let candidates = candidates
        .iter()
        .map(|c| {
            (
                c.document.to_vec(),
                c.public_key.as_ref().map(|k| k.to_vec()),
            )
        })
        .collect();
    Ok(AsyncTask::new(VerifyDigestsTask {
        digests: digests.to_core()?,
        candidates,
        policy: policy_from(policy.as_ref())?,
    }))
}
