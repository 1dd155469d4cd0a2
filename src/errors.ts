// One error base class with a stable string code, so callers branch on `code`, never on messages.
// The codes are owned by Rust (crates/core/src/codes.rs); src/error-codes.ts is generated from there.
import { ERROR_CODES, VERIFICATION_FAILURE_CODES } from './error-codes';

/** Codes saying the package must not be trusted. */
export type VerificationFailureCode = (typeof VERIFICATION_FAILURE_CODES)[number];

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Whether `code` is one of the known error codes. */
export function isErrorCode(code: string): code is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code);
}

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

/**
 * The package is not the one the signature covers: its SHA-256 differs from a version-1 signature's hash, or
 * its digest (BLAKE3 or SHA-256, as the statement names) or size differs from a version-2 statement's. A cosign
 * signature carries no digest: a modified package fails its check as InvalidSignature.
 */
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

/**
 * The signature does not verify under the trusted key: the Ed25519 check of a version-1 digest or a version-2
 * statement failed, or the ECDSA P-256 check of a cosign signature did under every trusted P-256 key (a
 * modified package, or another key signed it).
 */
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

/**
 * The signature verified, but the operator's policy refuses the package: `V2_REQUIRED`,
 * `PACKAGE_NAME_MISMATCH`, `ORGANIZATION_MISMATCH`, `VERSION_NOT_ALLOWED`, `ROLLBACK_REFUSED` or `SIGNATURE_EXPIRED`.
 */
export class PolicyViolation extends VerificationFailure {
  constructor(code: VerificationFailureCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/**
 * The package is refused for what it is, whatever its signature says: larger than the size limit
 * (`PACKAGE_TOO_LARGE`, checked before hashing) or not a WebAssembly module where one is required
 * (`NOT_A_WASM_MODULE`, checked on the verified bytes), or revoked by the organization (`PACKAGE_REVOKED`, checked
 * after the signature decision).
 */
export class PackageRejected extends VerificationFailure {
  constructor(code: VerificationFailureCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

const rejectedPackages: ReadonlySet<string> = new Set<VerificationFailureCode>(['PACKAGE_TOO_LARGE', 'NOT_A_WASM_MODULE', 'PACKAGE_REVOKED']);

const verificationFailures: Partial<Record<VerificationFailureCode, new (message: string, options?: ErrorOptions) => VerificationFailure>> = {
  TAMPERED_PACKAGE: TamperedPackage,
  UNTRUSTED_SIGNER: UntrustedSigner,
  INVALID_SIGNATURE: InvalidSignature,
  SIGNATURE_NOT_FOUND: SignatureNotFound,
  MALFORMED_SIGNATURE: MalformedSignature,
};

/** The typed error for a code, whichever layer (Rust or TypeScript) reported it. */
export function errorForCode(code: ErrorCode, message: string, options?: ErrorOptions): CloacinaSignError {
  if (!(VERIFICATION_FAILURE_CODES as readonly string[]).includes(code)) return new CloacinaSignError(code, message, options);
  if (rejectedPackages.has(code)) return new PackageRejected(code as VerificationFailureCode, message, options);
  const failure = verificationFailures[code as VerificationFailureCode];
  return failure ? new failure(message, options) : new PolicyViolation(code as VerificationFailureCode, message, options);
}
