use cloacina_sign_core::{keys, pem, signature::DetachedSignature};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::errors::OrThrow;

#[napi(object)]
pub struct GeneratedKeypair {
    /// The raw 32-byte Ed25519 seed.
    pub private_key: Buffer,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: Buffer,
    pub fingerprint: String,
}

/// A fresh Ed25519 key pair from the operating system's CSPRNG.
#[napi]
pub fn generate_keypair() -> GeneratedKeypair {
    let (seed, public_key) = keys::generate_keypair();
    GeneratedKeypair {
        private_key: seed.to_vec().into(),
        public_key: public_key.to_vec().into(),
        fingerprint: keys::fingerprint(&public_key),
    }
}

/// Reads a public key: Ed25519 as raw 32 bytes, SPKI DER or SPKI PEM (weak keys refused), or ECDSA
/// P-256 as SPKI DER or PEM (`cosign.pub`; uncompressed point on the curve). Returns its stored form:
/// the raw 32 bytes of an Ed25519 key, the 91-byte SPKI DER of a P-256 key.
#[napi]
pub fn public_key_from_any(input: Buffer) -> napi::Result<Buffer> {
    Ok(pem::parse_verification_key(&input)
        .or_throw()?
        .encoded()
        .into())
}

/// `ed25519` or `ecdsa-p256`: the algorithm of a public key (read as `publicKeyFromAny` reads it).
#[napi]
pub fn public_key_algorithm(public_key: Buffer) -> napi::Result<String> {
    let key = pem::parse_verification_key(&public_key).or_throw()?;
    Ok(key.algorithm().name().to_string())
}

/// Reads a private key given as a raw 32-byte seed, PKCS#8 DER or PKCS#8 PEM (v1 or v2).
#[napi]
pub fn private_key_from_any(input: Buffer) -> napi::Result<Buffer> {
    Ok(pem::private_key_from_any(&input)
        .or_throw()?
        .to_vec()
        .into())
}

#[napi]
pub fn public_key_of(private_key: Buffer) -> napi::Result<Buffer> {
    let seed = pem::private_key_from_any(&private_key).or_throw()?;
    Ok(keys::public_key_of(&seed).to_vec().into())
}

/// SPKI PEM of a public key of either algorithm.
#[napi]
pub fn public_key_to_pem(public_key: Buffer) -> napi::Result<String> {
    let key = pem::parse_verification_key(&public_key).or_throw()?;
    Ok(pem::verification_key_to_pem(&key))
}

#[napi]
pub fn private_key_to_pem(private_key: Buffer) -> napi::Result<String> {
    let seed = pem::private_key_from_any(&private_key).or_throw()?;
    Ok(pem::private_key_to_pem(&seed).to_string())
}

/// Lowercase hex SHA-256 of the key's stored form: the raw 32-byte Ed25519 key, or the SPKI DER of
/// an ECDSA P-256 key.
#[napi]
pub fn fingerprint(public_key: Buffer) -> napi::Result<String> {
    let key = pem::parse_verification_key(&public_key).or_throw()?;
    Ok(key.fingerprint_hex())
}

/// Strict Ed25519 verification of an arbitrary message; throws INVALID_KEY or INVALID_SIGNATURE. Only
/// the conformance vectors need it (the package verifies digests, never free-form messages), so only
/// the test run's addon (feature `test-hooks`) has it.
#[cfg(feature = "test-hooks")]
#[napi]
pub fn verify_message(public_key: Buffer, message: Buffer, signature: Buffer) -> napi::Result<()> {
    keys::verify(&public_key, &message, &signature).or_throw()
}

/// The fields of a version-1 detached signature, hex and base64 as in the document.
#[napi(object)]
pub struct SignatureFields {
    pub package_hash: String,
    pub key_fingerprint: String,
    pub signature: String,
    pub signed_at: String,
}

impl From<&DetachedSignature> for SignatureFields {
    fn from(sig: &DetachedSignature) -> Self {
        SignatureFields {
            package_hash: sig.package_hash_hex(),
            key_fingerprint: sig.key_fingerprint_hex(),
            signature: sig.signature_base64(),
            signed_at: sig.signed_at.clone(),
        }
    }
}

impl SignatureFields {
    pub(crate) fn to_signature(&self) -> napi::Result<DetachedSignature> {
        DetachedSignature::from_fields(
            &self.package_hash,
            &self.key_fingerprint,
            &self.signature,
            &self.signed_at,
        )
        .or_throw()
    }
}

/// Strict parse of a detached signature document; throws MALFORMED_SIGNATURE saying what is wrong.
#[napi]
pub fn parse_signature(document: Buffer) -> napi::Result<SignatureFields> {
    let sig = DetachedSignature::parse(&document).or_throw()?;
    Ok(SignatureFields::from(&sig))
}

/// The canonical document for the given fields, each validated as the reader would.
#[napi]
pub fn format_signature(fields: SignatureFields) -> napi::Result<String> {
    Ok(fields.to_signature()?.to_json())
}

/// Largest signature file read (bytes); larger ones are MALFORMED_SIGNATURE.
#[napi]
pub const MAX_SIGNATURE_FILE_BYTES: u32 =
    cloacina_sign_core::signature::MAX_SIGNATURE_FILE_BYTES as u32;
