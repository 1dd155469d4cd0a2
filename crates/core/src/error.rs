//! The single error type of the crate, with stable machine-readable codes.

/// Every failure the core can report. Messages describe *what* is wrong and
/// never include private keys, seeds or KEKs.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A file could not be opened or read (or is a directory).
    #[error("cannot read {path}: {reason}")]
    UnreadableFile { path: String, reason: String },
    /// A key could not be parsed or is unacceptable (e.g. weak).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The detached signature document is not a valid version-1 document.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The Ed25519 check failed.
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    /// The package digest does not match the one that was signed.
    #[error("package was modified after signing: expected SHA-256 {expected}, got {actual}")]
    TamperedPackage { expected: String, actual: String },
    /// The signature was made by a key other than the trusted one.
    #[error("signature was made by untrusted key {fingerprint}")]
    UntrustedSigner { fingerprint: String },
    /// Unsealing failed: wrong KEK, wrong associated data or tampered data
    /// (deliberately indistinguishable).
    #[error("cannot unseal key: {0}")]
    UnsealFailed(String),
    /// No signature exists for the package.
    #[error("{0}")]
    SignatureNotFound(String),
    /// A caller-supplied argument is unusable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl CoreError {
    /// Stable code for programmatic handling (surfaced as `err.code` in JS).
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::UnreadableFile { .. } => "UNREADABLE_FILE",
            CoreError::InvalidKey(_) => "INVALID_KEY",
            CoreError::MalformedSignature(_) => "MALFORMED_SIGNATURE",
            CoreError::InvalidSignature(_) => "INVALID_SIGNATURE",
            CoreError::TamperedPackage { .. } => "TAMPERED_PACKAGE",
            CoreError::UntrustedSigner { .. } => "UNTRUSTED_SIGNER",
            CoreError::UnsealFailed(_) => "KEY_UNSEAL_FAILED",
            CoreError::SignatureNotFound(_) => "SIGNATURE_NOT_FOUND",
            CoreError::InvalidInput(_) => "INVALID_INPUT",
        }
    }
}

/// Crate-wide result alias.
pub type Result<T> = std::result::Result<T, CoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = CoreError::UnreadableFile {
            path: "/x".into(),
            reason: "is a directory".into(),
        };
        assert_eq!(e.code(), "UNREADABLE_FILE");
        assert_eq!(e.to_string(), "cannot read /x: is a directory");
        let e = CoreError::UntrustedSigner {
            fingerprint: "ab12".into(),
        };
        assert_eq!(e.code(), "UNTRUSTED_SIGNER");
        assert!(e.to_string().contains("ab12"));
        assert_eq!(
            CoreError::UnsealFailed("x".into()).code(),
            "KEY_UNSEAL_FAILED"
        );
        let e = CoreError::TamperedPackage {
            expected: "aa".into(),
            actual: "bb".into(),
        };
        assert_eq!(e.code(), "TAMPERED_PACKAGE");
        assert!(e.to_string().contains("aa") && e.to_string().contains("bb"));
    }
}
