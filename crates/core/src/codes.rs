//! The one list of error codes of cloacina-sign, owned here. The Rust errors take their codes from
//! it, the binding's build script writes it to `src/error-codes.ts`, and the TypeScript errors are
//! typed by that file, so a code exists in one place only.
//!
//! This file is self-contained (the build script includes it by path).

macro_rules! error_codes {
    ($($name:ident: $kind:ident, $doc:literal;)*) => {
        $(
            #[doc = $doc]
            pub const $name: &str = stringify!($name);
        )*

        /// Every code with its kind and meaning, in this order.
        pub const ALL: &[(&str, Kind, &str)] = &[$((stringify!($name), Kind::$kind, $doc)),*];
    };
}

/// Whether a code says the package must not be trusted (the CLI exits 1) or something else failed (exit 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    VerificationFailure,
    Error,
}

error_codes! {
    TAMPERED_PACKAGE: VerificationFailure, "The package's digest or size differs from what was signed.";
    UNTRUSTED_SIGNER: VerificationFailure, "The signature was made by a key the organization does not trust (now).";
    INVALID_SIGNATURE: VerificationFailure, "The cryptographic signature check failed.";
    SIGNATURE_NOT_FOUND: VerificationFailure, "The package has no signature.";
    MALFORMED_SIGNATURE: VerificationFailure, "A signature document is not a valid document of a supported version.";
    V2_REQUIRED: VerificationFailure, "The policy needs a signed statement (version 2) and the signature is version 1.";
    PACKAGE_NAME_MISMATCH: VerificationFailure, "The signed statement names another package than the policy expects.";
    ORGANIZATION_MISMATCH: VerificationFailure, "The signed statement names another organization (or none) than the policy expects.";
    VERSION_NOT_ALLOWED: VerificationFailure, "The signed version is not one the policy allows.";
    ROLLBACK_REFUSED: VerificationFailure, "The signed version is lower than one the organization already loaded.";
    SIGNATURE_EXPIRED: VerificationFailure, "The signed statement has expired.";
    UNREADABLE_FILE: Error, "A file cannot be read, or is not a regular file.";
    INVALID_KEY: Error, "A key cannot be read or is unacceptable.";
    INSECURE_KEY_FILE: Error, "A private key file can be read by others.";
    INVALID_INPUT: Error, "An argument is unusable.";
    KEY_UNSEAL_FAILED: Error, "A sealed private key cannot be opened with this key-encryption key.";
    OUTPUT_EXISTS: Error, "An output file exists and may not be replaced.";
    WRITE_FAILED: Error, "An output file cannot be written.";
    NOT_FOUND: Error, "No such organization, key, token or record.";
    ALREADY_EXISTS: Error, "Such an organization, key, grant or record exists already.";
    KEY_REVOKED: Error, "The key was revoked.";
    MISSING_KEK: Error, "No key-encryption key was given.";
    KEK_UNAVAILABLE: Error, "The key-encryption key's token cannot be reached, refuses the PIN, or lacks the key object.";
    DATABASE_ERROR: Error, "The database refused an operation, or is missing or not migrated.";
    DATABASE_UNAVAILABLE: Error, "The database did not answer within the bound.";
    DATABASE_DRIVER_MISSING: Error, "The npm package that drives this kind of database (sqlite3 or pg) is not installed or does not load.";
    AUDIT_FAILED: Error, "An event could not be audited, so what it records did not happen.";
    UNSUPPORTED_PLATFORM: Error, "The native addon does not run on this platform.";
    PACKAGE_TOO_LARGE: VerificationFailure, "The package exceeds the size limit.";
    NOT_A_SHARED_LIBRARY: Error, "The package is not a loadable ELF shared object for this machine.";
    NOT_A_WASM_MODULE: VerificationFailure, "The package is not a WebAssembly module.";
    GUARDED_LOAD_UNSUPPORTED: Error, "The system lacks what guarded loading needs; nothing is loaded unguarded.";
    UNSAFE_DEPENDENCY: Error, "A dependency of the package could be supplied by someone other than root.";
    UNSAFE_ENVIRONMENT: Error, "LD_PRELOAD, LD_LIBRARY_PATH or LD_AUDIT is set for this process.";
    LOAD_FAILED: Error, "The dynamic loader refused the package.";
    MISSING_SYMBOL: Error, "The package does not export a required symbol.";
    INVALID_METADATA: Error, "The package's metadata is unusable.";
    PACKAGE_CLOSED: Error, "The package was closed.";
    TASK_FAILED: Error, "A task of the package reported a failure.";
    TASK_ABI_ERROR: Error, "A task returned a code outside the package ABI.";
    TASK_RESULT_TRUNCATED: Error, "A task's result filled the whole buffer.";
    TASK_INVALID_OUTPUT: Error, "A task produced invalid output.";
    TASK_INVALID_INPUT: Error, "A task's input cannot be passed through the ABI.";
    USAGE: Error, "The command line is wrong.";
    API_UNREACHABLE: Error, "The signing service cannot be reached.";
    API_TLS_ERROR: Error, "The TLS connection to the signing service failed.";
    API_UNAUTHORIZED: Error, "The signing service refused the token.";
    API_FORBIDDEN: Error, "The token may not do this.";
    API_RATE_LIMITED: Error, "The signing service is rate limiting this token.";
    API_ERROR: Error, "The signing service failed.";
    UPLOAD_ABORTED: Error, "An upload was cut off before it completed.";
    PACKAGE_REVOKED: VerificationFailure, "The organization revoked this exact package (its digest), whoever signed it.";
    REVOCATION_LIST_EXPIRED: VerificationFailure, "The pinned revocation list has expired: without a current one nothing is loaded.";
    INTERNAL: Error, "A bug: an error nobody expected.";
}

/// The TypeScript module the build script writes to `src/error-codes.ts`.
pub fn typescript() -> String {
    let list = |kind: Option<Kind>| {
        ALL.iter()
            .filter(|(_, k, _)| kind.is_none_or(|kind| *k == kind))
            .map(|(code, _, doc)| format!("  /** {doc} */\n  '{code}',\n"))
            .collect::<String>()
    };
    format!(
        "// Generated from crates/core/src/codes.rs by build.rs: the one list of error codes. Do not edit.\n\n\
         /** Codes saying the package must not be trusted (VerificationFailure; the CLI exits 1). */\n\
         export const VERIFICATION_FAILURE_CODES = [\n{}] as const;\n\n\
         /** Every error code. */\n\
         export const ERROR_CODES = [\n{}] as const;\n",
        list(Some(Kind::VerificationFailure)),
        list(None)
    )
}
