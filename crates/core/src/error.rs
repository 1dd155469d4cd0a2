//! The single error type of the crate, with stable machine-readable codes (from `codes`).

use crate::codes;

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
    /// A signature document is not a valid document of a supported kind.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The signature check (Ed25519 or ECDSA P-256) failed.
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    /// The package digest does not match the one that was signed.
    #[error("package was modified after signing: expected SHA-256 {expected}, got {actual}")]
    TamperedPackage { expected: String, actual: String },
    /// The signature was made by a key other than the trusted one.
    #[error("signature was made by untrusted key {fingerprint}")]
    UntrustedSigner { fingerprint: String },
    /// A signature that names no key (cosign) and no trusted key of its algorithm to try
    /// (code `UNTRUSTED_SIGNER`).
    #[error("{0}")]
    NoTrustedKey(String),
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
    /// The signature verified, but the operator's policy refuses the package.
    #[error("{reason}")]
    PolicyRefused {
        violation: Violation,
        reason: String,
    },
}

/// What a load policy refused (see `policy::Policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A version-1 signature where the policy needs a signed statement.
    V2Required,
    /// The statement names another package.
    NameMismatch,
    /// The statement names another organization, or none.
    OrganizationMismatch,
    /// The statement's version is not an allowed one.
    VersionNotAllowed,
    /// The version is lower than one the organization already loaded.
    RollbackRefused,
    /// The statement expired.
    Expired,
}

impl Violation {
    pub fn code(self) -> &'static str {
        match self {
            Violation::V2Required => codes::V2_REQUIRED,
            Violation::NameMismatch => codes::PACKAGE_NAME_MISMATCH,
            Violation::OrganizationMismatch => codes::ORGANIZATION_MISMATCH,
            Violation::VersionNotAllowed => codes::VERSION_NOT_ALLOWED,
            Violation::RollbackRefused => codes::ROLLBACK_REFUSED,
            Violation::Expired => codes::SIGNATURE_EXPIRED,
        }
    }
}

impl CoreError {
    /// Stable code for programmatic handling (surfaced as `err.code` in JS).
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::UnreadableFile { .. } => codes::UNREADABLE_FILE,
            CoreError::InvalidKey(_) => codes::INVALID_KEY,
            CoreError::MalformedSignature(_) => codes::MALFORMED_SIGNATURE,
            CoreError::InvalidSignature(_) => codes::INVALID_SIGNATURE,
            CoreError::TamperedPackage { .. } => codes::TAMPERED_PACKAGE,
            CoreError::UntrustedSigner { .. } | CoreError::NoTrustedKey(_) => {
                codes::UNTRUSTED_SIGNER
            }
            CoreError::UnsealFailed(_) => codes::KEY_UNSEAL_FAILED,
            CoreError::SignatureNotFound(_) => codes::SIGNATURE_NOT_FOUND,
            CoreError::InvalidInput(_) => codes::INVALID_INPUT,
            CoreError::PolicyRefused { violation, .. } => violation.code(),
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
