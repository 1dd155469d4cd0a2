// What a verification concludes, as the verifier returns it: the result, made from the native decision, and
// the error for a package without any signature.
import { SignatureNotFound } from '../errors';
import type { NativeVerified } from '../native';
import { type PackageStatement, statementOf } from '../formats/v2';
import type { TrustSource } from '../trust/trust-source';
import type { SignatureSource } from './signature-source';

/** The kinds of signature documents: Cloacina's versions 1 and 2, and cosign blob signatures. */
export type SignatureFormat = 'v1' | 'v2' | 'cosign';

export interface VerificationResult {
  /** The package as given. */
  path: string;
  /** Lowercase hex digest of the package that the signature covers: SHA-256 (version 1, cosign), or the statement's digest. */
  packageHash: string;
  digestAlgorithm: 'sha256' | 'blake3';
  /**
   * Fingerprint of the trusted key whose signature verified: SHA-256 of the raw Ed25519 key, or of the SPKI DER
   * of an ECDSA P-256 key (cosign).
   */
  signerFingerprint: string;
  /**
   * Version 1: `signed_at` (information, not evidence: it is not signed); version 2: the signed `issued_at`;
   * null for a cosign signature (it carries no time).
   */
  signedAt: string | null;
  /** The organization whose trust decided; null for pinned public keys. */
  organization: string | null;
  /**
   * The version of the signature document that verified: 2 for a signed statement, 1 for a signature of the
   * bare SHA-256 digest (version 1, and cosign signatures: `signatureFormat` tells them apart).
   */
  documentVersion: 1 | 2;
  /** Which kind of signature verified: Cloacina's version 1 or 2, or a cosign blob signature (ECDSA P-256). */
  signatureFormat: SignatureFormat;
  /** Version 2: the signed statement; null for version 1. */
  statement: PackageStatement | null;
}

/**
 * What a package's bytes must be: `elf` a loadable ELF shared library (the ELF checks and the dependency
 * policy), `wasm` a WebAssembly module (its magic bytes), `any` whatever was signed.
 */
export type PackageFormatName = 'elf' | 'wasm' | 'any';

/** @internal The result of a native decision. */
export function resultOf(path: string, verified: NativeVerified, organization: string | null): VerificationResult {
  const statement = verified.statement ? statementOf(verified.statement) : null;
  return {
    path,
    packageHash: statement ? statement.digest : (verified.packageHash as string),
    digestAlgorithm: statement ? statement.digestAlgorithm : 'sha256',
    signerFingerprint: verified.keyFingerprint,
    signedAt: verified.documentKind === 'cosign' ? null : verified.signedAt,
    organization,
    documentVersion: verified.documentVersion === 2 ? 2 : 1,
    signatureFormat: verified.documentKind as SignatureFormat,
    statement,
  };
}

/** SignatureNotFound for a package without any signature, saying where we looked. */
export function noSignature(path: string, packageHash: string, trust: TrustSource, source: SignatureSource): SignatureNotFound {
  const where = source.kind === 'auto' ? (trust.storedSignatures ? 'no .sig file and none stored' : 'no .sig file') : 'none found';
  return new SignatureNotFound(`no signature for ${path} (${packageHash}): ${where}`);
}
