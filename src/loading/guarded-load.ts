// Seal, check, hash, verify, audit: the steps every guarded load shares, whatever it loads.
import { CloacinaSignError } from '../errors';
import { native, nativeMethods, PackageFormat, SealedPackage } from '../native';
import { maxPackageBytes, requiresSignatures, SecurityConfig } from './security-config';

export interface ClearedPackage {
  sealed: SealedPackage;
  packageHash: string;
  /** Null when the package carried no signature and signatures are not required. */
  signerFingerprint: string | null;
}

/** Where a load finds signatures and records what happened; supplied by the trust layer. */
export interface LoadVerifier {
  /** Candidate signatures for the sealed bytes' hash, paired with the org's trusted keys. */
  candidates(packagePath: string, packageHash: string): Promise<Parameters<SealedPackage['verify']>[0]>;
  recordLoad(event: { packagePath: string; packageHash: string | null; signerFingerprint: string | null; success: boolean; reason: string }): Promise<void>;
}

/**
 * Copies the package once into sealed memory and decides on exactly those bytes. With signatures
 * required, a missing or failing signature is a hard failure. Without, an unsigned package is
 * allowed, but a signature that is present must still verify: a bad signature is never ignored.
 */
export async function sealAndClear(
  packagePath: string,
  format: PackageFormat,
  config: SecurityConfig,
  verifier: LoadVerifier,
  noteHash: (packageHash: string) => void,
): Promise<ClearedPackage> {
  const sealed = await native.sealPackage(packagePath, maxPackageBytes(config), format);
  const packageHash = sealed.packageHash;
  noteHash(packageHash);
  const candidates = await verifier.candidates(packagePath, packageHash);
  if (candidates.length === 0 && !requiresSignatures(config)) {
    sealed.allowUnsigned();
    return { sealed, packageHash, signerFingerprint: null };
  }
  const verified = nativeMethods.verifySealed(sealed, candidates);
  return { sealed, packageHash, signerFingerprint: verified.keyFingerprint };
}

/** Runs one guarded load and writes `package.load.success` or `package.load.failure`. */
export async function audited<T extends { packageHash: string; signerFingerprint: string | null }>(
  packagePath: string,
  verifier: LoadVerifier,
  load: (note: (hash: string) => void) => Promise<T>,
): Promise<T> {
  let packageHash: string | null = null;
  try {
    const result = await load((hash) => (packageHash = hash));
    const reason = result.signerFingerprint ? 'signature verified' : 'unsigned package loaded: signatures are not required';
    await verifier.recordLoad({ packagePath, packageHash: result.packageHash, signerFingerprint: result.signerFingerprint, success: true, reason });
    return result;
  } catch (error) {
    const reason = error instanceof CloacinaSignError ? `${error.code}: ${error.message}` : String(error);
    await verifier.recordLoad({ packagePath, packageHash, signerFingerprint: null, success: false, reason });
    throw error;
  }
}
