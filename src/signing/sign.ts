// Signing a package, version 1 or 2, with any signer: a key file's key, a database key or the signing service.
import { nowIso } from '../db/ids';
import { DetachedSignature, type SignatureInfo } from '../formats/v1';
import { type SignedStatementDocument, signedStatementOf } from '../formats/v2';
import type { KeyInput } from '../keys/keypair';
import type { ProgressCounter } from '../progress';
import type { PackageToSign, Signer } from './signer';
import { keySigner } from './signers/key-signer';
import { type StatementOptions, statementRequest } from './statement';

interface CommonSignOptions {
  /** Filled with the bytes hashed so far, for progress reporting. */
  progress?: ProgressCounter;
}

export interface V1SignOptions extends CommonSignOptions {
  /** Version 1 (default): Cloacina's document, the SHA-256 digest alone. */
  format?: 'v1';
}

export interface V2SignOptions extends CommonSignOptions {
  /** Version 2: a signed statement of name, version, size, digest and expiry. */
  format: 'v2';
  statement: StatementOptions;
}

export type SignOptions = V1SignOptions | V2SignOptions;

/** A version-1 signature: its fields and its canonical document. */
export interface SignedPackage extends SignatureInfo {
  document: string;
  /** Set when the signer stored the signature too (the signing service, asked to store it). */
  signatureId?: string;
}

export interface SignedStatement extends SignedStatementDocument {
  /** Set when the signer stored the signature too. */
  signatureId?: string;
}

/**
 * Signs a package with `signer` (or with a private key, as keySigner(key) would): version 1 unless
 * `options.format` is `v2`. The package is its file's path, or its digests computed elsewhere (the
 * signing service never receives the package). Resolves to the canonical document and what it says.
 */
export async function signPackage(target: string | PackageToSign, signer: Signer | KeyInput, options?: V1SignOptions): Promise<SignedPackage>;
export async function signPackage(target: string | PackageToSign, signer: Signer | KeyInput, options: V2SignOptions): Promise<SignedStatement>;
export async function signPackage(target: string | PackageToSign, signer: Signer | KeyInput, options: SignOptions): Promise<SignedPackage | SignedStatement>;
export async function signPackage(
  target: string | PackageToSign,
  signer: Signer | KeyInput,
  options: SignOptions = {},
): Promise<SignedPackage | SignedStatement> {
  const by = isSigner(signer) ? signer : keySigner(signer);
  const pkg = typeof target === 'string' ? { path: target, progress: options.progress } : target;
  if (options.format === 'v2') {
    const { document, signatureId } = await by.sign({ package: pkg, document: { version: 2, statement: statementRequest(options.statement) } });
    return { ...signedStatementOf(document), ...(signatureId ? { signatureId } : {}) };
  }
  const { document, signatureId } = await by.sign({ package: pkg, document: { version: 1, signedAt: nowIso() } });
  const signature = DetachedSignature.parse(document);
  return {
    packageHash: signature.packageHash,
    keyFingerprint: signature.keyFingerprint,
    signature: signature.signature,
    signedAt: signature.signedAt,
    document: signature.toString(),
    ...(signatureId ? { signatureId } : {}),
  };
}

/** signPackage(packagePath, signer, { format: 'v2', statement, progress }). */
export function signStatement(
  packagePath: string,
  signer: Signer | KeyInput,
  statement: StatementOptions,
  options: CommonSignOptions = {},
): Promise<SignedStatement> {
  return signPackage(packagePath, signer, { ...options, format: 'v2', statement });
}

function isSigner(value: Signer | KeyInput): value is Signer {
  return typeof value === 'object' && value !== null && typeof (value as Signer).sign === 'function';
}
