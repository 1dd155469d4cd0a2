//! The revocation list of pinned-key runners: signed with a sealed database key, verified with pinned keys.

use cloacina_sign_core::digest::to_hex;
use cloacina_sign_core::revocation_list::{RevocationList, RevokedPackage, SignedRevocationList};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;

use crate::errors::{coded, OrThrow};
use crate::files::digest_from_hex;
use crate::kek::KeyBinding;
use crate::sealing::SealedKey;

#[napi(object)]
pub struct RevokedPackageFields {
    pub sha256: Option<String>,
    pub blake3: Option<String>,
    pub reason: String,
}

#[napi(object)]
pub struct RevocationListFields {
    pub organization: String,
    pub sequence: f64,
    pub issued_at: String,
    pub expires_at: String,
    pub revoked: Vec<RevokedPackageFields>,
    /// Seconds since the Unix epoch of `expires_at` (output only; ignored when signing).
    pub expires_at_unix: Option<f64>,
    /// Lowercase hex fingerprint of the signing key (output only; ignored when signing).
    pub key_fingerprint: Option<String>,
}

fn list_of(fields: &RevocationListFields) -> napi::Result<RevocationList> {
    let sequence = fields.sequence;
    if !(sequence.is_finite() && sequence.fract() == 0.0 && sequence >= 1.0) {
        return Err(coded(
            cloacina_sign_core::codes::INVALID_INPUT,
            "the sequence must be a whole number from 1",
        ));
    }
    let digest = |hex: &Option<String>| hex.as_deref().map(digest_from_hex).transpose();
    Ok(RevocationList {
        organization: fields.organization.clone(),
        sequence: sequence as u64,
        issued_at: fields.issued_at.clone(),
        expires_at: fields.expires_at.clone(),
        revoked: fields
            .revoked
            .iter()
            .map(|entry| {
                Ok(RevokedPackage {
                    sha256: digest(&entry.sha256)?,
                    blake3: digest(&entry.blake3)?,
                    reason: entry.reason.clone(),
                })
            })
            .collect::<napi::Result<_>>()?,
    })
}

pub struct SignRevocationListTask {
    key: SealedKey,
    list: RevocationList,
}

impl Task for SignRevocationListTask {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        let seed = self.key.unseal()?;
        Ok(self.list.clone().sign(&seed).or_throw()?.to_json())
    }

    fn resolve(&mut self, _env: Env, document: String) -> napi::Result<String> {
        Ok(document)
    }
}

/// Signs a revocation list with a sealed private key, unsealed and used only inside Rust; resolves
/// to the canonical document.
#[napi(ts_return_type = "Promise<string>")]
pub fn sign_revocation_list_with_sealed_key(
    kek: crate::kek::KekArg,
    sealed_private_key: Buffer,
    binding: KeyBinding,
    public_key: Buffer,
    list: RevocationListFields,
) -> napi::Result<AsyncTask<SignRevocationListTask>> {
    Ok(AsyncTask::new(SignRevocationListTask {
        key: SealedKey::new(kek, sealed_private_key, binding, public_key),
        list: list_of(&list)?,
    }))
}

/// Reads a revocation list strictly and checks its signature with the pinned Ed25519 key (raw 32
/// bytes) its fingerprint names. Expiry and sequence are the caller's to check.
#[napi]
pub fn verify_revocation_list(
    document: Buffer,
    public_keys: Vec<Buffer>,
) -> napi::Result<RevocationListFields> {
    let signed = SignedRevocationList::parse(&document).or_throw()?;
    let keys: Vec<[u8; 32]> = public_keys
        .iter()
        .filter_map(|key| <[u8; 32]>::try_from(key.as_ref()).ok())
        .collect();
    signed.verify(&keys).or_throw()?;
    let list = signed.list;
    Ok(RevocationListFields {
        expires_at_unix: Some(list.expires_at_unix() as f64),
        key_fingerprint: Some(to_hex(&signed.key_fingerprint)),
        organization: list.organization,
        sequence: list.sequence as f64,
        issued_at: list.issued_at,
        expires_at: list.expires_at,
        revoked: list
            .revoked
            .into_iter()
            .map(|entry| RevokedPackageFields {
                sha256: entry.sha256.map(|d| to_hex(&d)),
                blake3: entry.blake3.map(|d| to_hex(&d)),
                reason: entry.reason,
            })
            .collect(),
    })
}
