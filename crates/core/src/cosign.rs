//! A cosign blob signature: what `cosign sign-blob --key cosign.key --output-signature <file>`
//! writes, the third kind of signature document (besides Cloacina's versions 1 and 2).
//!
//! The file holds the standard, padded base64 of a DER ECDSA P-256 signature over the SHA-256 of
//! the signed file, optionally followed by one newline (`\n`). Nothing else: no carriage return, no
//! whitespace inside or around it, no URL-safe alphabet, no missing padding or non-zero padding
//! bits, no raw (undecoded) DER. The DER is read as Go's `ecdsa.VerifyASN1` reads it (see
//! [`crate::ecdsa`]).
//!
//! A cosign signature signs the file's digest and nothing else: it names no key, no package, no
//! version and no expiry, and it carries no copy of the digest.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::ecdsa::{EcdsaSignature, MAX_DER_SIGNATURE_LEN};
use crate::error::{CoreError, Result};

/// A parsed cosign signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignSignature {
    signature: EcdsaSignature,
    /// The DER bytes exactly as read (the canonical text is their base64).
    der: Vec<u8>,
}

const WHAT: &str = "not a JSON signature document, nor a cosign signature (standard base64 of a DER ECDSA P-256 signature)";

fn malformed(why: impl std::fmt::Display) -> CoreError {
    CoreError::MalformedSignature(format!("{WHAT}: {why}"))
}

/// Whether a signature file is meant as a cosign signature rather than JSON: its first byte that is
/// not whitespace is not `{`, and every byte is one a base64 text may hold (the base64 alphabets
/// of both kinds, padding and whitespace). Anything else is read as JSON, and its errors are
/// JSON's.
pub fn looks_like_cosign(bytes: &[u8]) -> bool {
    let text = bytes.trim_ascii();
    !text.is_empty()
        && text.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
                || b.is_ascii_whitespace()
        })
}

impl CosignSignature {
    /// Strict reader (see the module documentation); `MalformedSignature` saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        // One `\n`, as cosign writes it; a `\r\n` (a file that went through a Windows editor) is
        // refused like any other whitespace, so what verifies is exactly what the README allows.
        let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if text.ends_with(b"\r") {
            return Err(malformed(
                "the base64 ends in a carriage return (\\r\\n): only one trailing newline (\\n) is allowed",
            ));
        }
        if text.is_empty() {
            return Err(malformed("empty"));
        }
        if text.iter().any(u8::is_ascii_whitespace) {
            return Err(malformed(
                "the base64 contains whitespace (only one trailing newline is allowed)",
            ));
        }
        if text.iter().any(|b| matches!(b, b'-' | b'_')) {
            return Err(malformed("the base64 uses the URL-safe alphabet"));
        }
        // At most MAX_DER_SIGNATURE_LEN bytes: the base64 of a P-256 signature is at most 96 characters.
        let limit = MAX_DER_SIGNATURE_LEN.div_ceil(3) * 4;
        if text.len() > limit {
            return Err(malformed(format!(
                "{} characters of base64; a P-256 signature has at most {limit}",
                text.len()
            )));
        }
        let der = STANDARD
            .decode(text)
            .map_err(|e| malformed(format!("the base64 is invalid ({e})")))?;
        let signature = EcdsaSignature::from_der(&der).map_err(|e| match e {
            CoreError::MalformedSignature(m) => {
                CoreError::MalformedSignature(format!("the cosign signature decodes to an {m}"))
            }
            other => other,
        })?;
        Ok(CosignSignature { signature, der })
    }

    /// A signature from its DER bytes (strict, as in a file).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        Ok(CosignSignature {
            signature: EcdsaSignature::from_der(der)?,
            der: der.to_vec(),
        })
    }

    pub fn signature(&self) -> &EcdsaSignature {
        &self.signature
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The canonical text: standard padded base64 of the DER, no newline.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.der)
    }
}
