// Generated from crates/core/src/codes.rs by build.rs: the one list of error codes. Do not edit.

/** Codes saying the package must not be trusted (VerificationFailure; the CLI exits 1). */
export const VERIFICATION_FAILURE_CODES = [
  /** The package's digest or size differs from what was signed. */
  'TAMPERED_PACKAGE',
  /** The signature was made by a key the organization does not trust (now). */
  'UNTRUSTED_SIGNER',
  /** The cryptographic signature check failed. */
  'INVALID_SIGNATURE',
  /** The package has no signature. */
  'SIGNATURE_NOT_FOUND',
  /** A signature document is not a valid document of a supported version. */
  'MALFORMED_SIGNATURE',
  /** The policy needs a signed statement (version 2) and the signature is version 1. */
  'V2_REQUIRED',
  /** The signed statement names another package than the policy expects. */
  'PACKAGE_NAME_MISMATCH',
  /** The signed statement names another organization (or none) than the policy expects. */
  'ORGANIZATION_MISMATCH',
  /** The signed version is not one the policy allows. */
  'VERSION_NOT_ALLOWED',
  /** The signed version is lower than one the organization already loaded. */
  'ROLLBACK_REFUSED',
  /** The signed statement has expired. */
  'SIGNATURE_EXPIRED',
  /** The package exceeds the size limit. */
  'PACKAGE_TOO_LARGE',
  /** The package is not a WebAssembly module. */
  'NOT_A_WASM_MODULE',
  /** The organization revoked this exact package (its digest), whoever signed it. */
  'PACKAGE_REVOKED',
  /** The pinned revocation list has expired: without a current one nothing is loaded. */
  'REVOCATION_LIST_EXPIRED',
] as const;

/** Every error code. */
export const ERROR_CODES = [
  /** The package's digest or size differs from what was signed. */
  'TAMPERED_PACKAGE',
  /** The signature was made by a key the organization does not trust (now). */
  'UNTRUSTED_SIGNER',
  /** The cryptographic signature check failed. */
  'INVALID_SIGNATURE',
  /** The package has no signature. */
  'SIGNATURE_NOT_FOUND',
  /** A signature document is not a valid document of a supported version. */
  'MALFORMED_SIGNATURE',
  /** The policy needs a signed statement (version 2) and the signature is version 1. */
  'V2_REQUIRED',
  /** The signed statement names another package than the policy expects. */
  'PACKAGE_NAME_MISMATCH',
  /** The signed statement names another organization (or none) than the policy expects. */
  'ORGANIZATION_MISMATCH',
  /** The signed version is not one the policy allows. */
  'VERSION_NOT_ALLOWED',
  /** The signed version is lower than one the organization already loaded. */
  'ROLLBACK_REFUSED',
  /** The signed statement has expired. */
  'SIGNATURE_EXPIRED',
  /** A file cannot be read, or is not a regular file. */
  'UNREADABLE_FILE',
  /** A key cannot be read or is unacceptable. */
  'INVALID_KEY',
  /** A private key file can be read by others. */
  'INSECURE_KEY_FILE',
  /** An argument is unusable. */
  'INVALID_INPUT',
  /** A sealed private key cannot be opened with this key-encryption key. */
  'KEY_UNSEAL_FAILED',
  /** An output file exists and may not be replaced. */
  'OUTPUT_EXISTS',
  /** An output file cannot be written. */
  'WRITE_FAILED',
  /** No such organization, key, token or record. */
  'NOT_FOUND',
  /** Such an organization, key, grant or record exists already. */
  'ALREADY_EXISTS',
  /** The key was revoked. */
  'KEY_REVOKED',
  /** No key-encryption key was given. */
  'MISSING_KEK',
  /** The key-encryption key's token cannot be reached, refuses the PIN, or lacks the key object. */
  'KEK_UNAVAILABLE',
  /** The database refused an operation, or is missing or not migrated. */
  'DATABASE_ERROR',
  /** The database did not answer within the bound. */
  'DATABASE_UNAVAILABLE',
  /** The npm package that drives this kind of database (sqlite3 or pg) is not installed or does not load. */
  'DATABASE_DRIVER_MISSING',
  /** An event could not be audited, so what it records did not happen. */
  'AUDIT_FAILED',
  /** The native addon does not run on this platform. */
  'UNSUPPORTED_PLATFORM',
  /** The package exceeds the size limit. */
  'PACKAGE_TOO_LARGE',
  /** The package is not a loadable ELF shared object for this machine. */
  'NOT_A_SHARED_LIBRARY',
  /** The package is not a WebAssembly module. */
  'NOT_A_WASM_MODULE',
  /** The system lacks what guarded loading needs; nothing is loaded unguarded. */
  'GUARDED_LOAD_UNSUPPORTED',
  /** A dependency of the package could be supplied by someone other than root. */
  'UNSAFE_DEPENDENCY',
  /** LD_PRELOAD, LD_LIBRARY_PATH or LD_AUDIT is set for this process. */
  'UNSAFE_ENVIRONMENT',
  /** The dynamic loader refused the package. */
  'LOAD_FAILED',
  /** The package does not export a required symbol. */
  'MISSING_SYMBOL',
  /** The package's metadata is unusable. */
  'INVALID_METADATA',
  /** The package was closed. */
  'PACKAGE_CLOSED',
  /** A task of the package reported a failure. */
  'TASK_FAILED',
  /** A task returned a code outside the package ABI. */
  'TASK_ABI_ERROR',
  /** A task's result filled the whole buffer. */
  'TASK_RESULT_TRUNCATED',
  /** A task produced invalid output. */
  'TASK_INVALID_OUTPUT',
  /** A task's input cannot be passed through the ABI. */
  'TASK_INVALID_INPUT',
  /** The command line is wrong. */
  'USAGE',
  /** The signing service cannot be reached. */
  'API_UNREACHABLE',
  /** The TLS connection to the signing service failed. */
  'API_TLS_ERROR',
  /** The signing service refused the token. */
  'API_UNAUTHORIZED',
  /** The token may not do this. */
  'API_FORBIDDEN',
  /** The signing service is rate limiting this token. */
  'API_RATE_LIMITED',
  /** The signing service failed. */
  'API_ERROR',
  /** An upload was cut off before it completed. */
  'UPLOAD_ABORTED',
  /** The organization revoked this exact package (its digest), whoever signed it. */
  'PACKAGE_REVOKED',
  /** The pinned revocation list has expired: without a current one nothing is loaded. */
  'REVOCATION_LIST_EXPIRED',
  /** A bug: an error nobody expected. */
  'INTERNAL',
] as const;
