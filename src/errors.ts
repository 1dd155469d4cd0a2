// One error base class with a stable string code, so callers branch on `code`, never on messages.

export type VerificationFailureCode = 'TAMPERED_PACKAGE' | 'UNTRUSTED_SIGNER' | 'INVALID_SIGNATURE' | 'SIGNATURE_NOT_FOUND' | 'MALFORMED_SIGNATURE';

export type ErrorCode =
  | VerificationFailureCode
  | 'UNREADABLE_FILE'
  | 'INVALID_KEY'
  | 'INVALID_INPUT'
  | 'KEY_UNSEAL_FAILED'
  | 'OUTPUT_EXISTS'
  | 'WRITE_FAILED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'KEY_REVOKED'
  | 'MISSING_KEK'
  | 'DATABASE_ERROR'
  | 'DATABASE_UNAVAILABLE'
  | 'AUDIT_FAILED'
  | 'UNSUPPORTED_PLATFORM'
  | 'PACKAGE_TOO_LARGE'
  | 'NOT_A_SHARED_LIBRARY'
  | 'NOT_A_WASM_MODULE'
  | 'GUARDED_LOAD_UNSUPPORTED'
  | 'LOAD_FAILED'
  | 'MISSING_SYMBOL'
  | 'PACKAGE_CLOSED'
  | 'TASK_FAILED'
  | 'TASK_ABI_ERROR'
  | 'TASK_RESULT_TRUNCATED'
  | 'TASK_INVALID_OUTPUT'
  | 'TASK_INVALID_INPUT'
  | 'INVALID_METADATA'
  | 'USAGE'
  | 'INTERNAL';

export class CloacinaSignError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A package that must not be trusted: the CLI exits 1 for these, 2 for every other error. */
export abstract class VerificationFailure extends CloacinaSignError {
  declare readonly code: VerificationFailureCode;
}

type ErrorOptions = { cause?: unknown };

/** The file's SHA-256 differs from the hash the signature covers. */
export class TamperedPackage extends VerificationFailure {
  constructor(message: string, options?: ErrorOptions) {
    super('TAMPERED_PACKAGE', message, options);
  }
}

/** The signature's key is not one we trust; the message names the fingerprint. */
export class UntrustedSigner extends VerificationFailure {
  constructor(message: string, options?: ErrorOptions) {
    super('UNTRUSTED_SIGNER', message, options);
  }
}

/** The Ed25519 check failed. */
export class InvalidSignature extends VerificationFailure {
  constructor(message: string, options?: ErrorOptions) {
    super('INVALID_SIGNATURE', message, options);
  }
}

export class SignatureNotFound extends VerificationFailure {
  constructor(message: string, options?: ErrorOptions) {
    super('SIGNATURE_NOT_FOUND', message, options);
  }
}

export class MalformedSignature extends VerificationFailure {
  constructor(message: string, options?: ErrorOptions) {
    super('MALFORMED_SIGNATURE', message, options);
  }
}

const verificationFailures: Record<VerificationFailureCode, new (message: string, options?: ErrorOptions) => VerificationFailure> = {
  TAMPERED_PACKAGE: TamperedPackage,
  UNTRUSTED_SIGNER: UntrustedSigner,
  INVALID_SIGNATURE: InvalidSignature,
  SIGNATURE_NOT_FOUND: SignatureNotFound,
  MALFORMED_SIGNATURE: MalformedSignature,
};

/** The typed error for a code, whichever layer (Rust or TypeScript) reported it. */
export function errorForCode(code: ErrorCode, message: string, options?: ErrorOptions): CloacinaSignError {
  const failure = verificationFailures[code as VerificationFailureCode];
  return failure ? new failure(message, options) : new CloacinaSignError(code, message, options);
}
