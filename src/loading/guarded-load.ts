// One guarded load: seal, verify, audit the decision, and only then hand the cleared bytes over.
// No package code runs (no constructor, no addon init, no WASM compile) before the decision is
// audited: if it cannot be, nothing is loaded (AUDIT_FAILED).
import { type AuditTrail, recordFailure } from '../audit/audit-trail';
import { CloacinaSignError } from '../errors';
import { type ClearedPackage, native, nativeMethods, type PackageFormat } from '../native';
import type { TrustSource } from '../trust/trust-source';
import { candidatesFor } from '../verification/candidates';
import type { SignatureSource } from '../verification/signature-source';
import { noSignature } from '../verification/verifier';
import { serializeLoads } from './load-lock';

export interface LoadPolicy {
  trust: TrustSource;
  trail: AuditTrail;
  requireSignatures: boolean;
  maxPackageBytes: number;
}

/** What was decided about the sealed bytes. */
export interface LoadDecision {
  packageHash: string;
  /** Null when the package was allowed unsigned. */
  signerFingerprint: string | null;
}

/**
 * Copies the package once into sealed memory and decides on exactly those bytes. With signatures
 * required, a missing or failing signature is a hard failure. Without, an unsigned package is
 * allowed, but a signature that is present must still verify: a bad signature is never ignored.
 */
async function decide(policy: LoadPolicy, path: string, format: PackageFormat, source: SignatureSource, noteHash: (hash: string) => void) {
  const sealed = await native.sealPackage(path, policy.maxPackageBytes, format);
  try {
    const packageHash = sealed.packageHash;
    noteHash(packageHash);
    const candidates = await candidatesFor(path, packageHash, source, policy.trust);
    if (candidates.length === 0 && !policy.requireSignatures) {
      return { cleared: nativeMethods.allowUnsigned(sealed), decision: { packageHash, signerFingerprint: null } };
    }
    if (candidates.length === 0) throw noSignature(path, packageHash, policy.trust, source);
    const cleared = nativeMethods.verifySealed(sealed, candidates);
    return { cleared, decision: { packageHash, signerFingerprint: cleared.verified!.keyFingerprint } };
  } finally {
    // A cleared package owns the image now; on a refusal this releases the sealed memory at once.
    sealed.discard();
  }
}

/** Runs one guarded load, serialized in the process, audited as package.load.success|failure. */
export function guardedLoad<T>(
  policy: LoadPolicy,
  path: string,
  format: PackageFormat,
  source: SignatureSource,
  finish: (cleared: ClearedPackage, decision: LoadDecision) => Promise<T>,
): Promise<T> {
  return serializeLoads(async () => {
    let orgId: string | null = null;
    let packageHash: string | null = null;
    const failed = (error: unknown) =>
      recordFailure(policy.trail, { eventType: 'package.load.failure', orgId, packagePath: path, packageHash, signatureVerified: false }, error);

    let cleared: ClearedPackage;
    let decision: LoadDecision;
    try {
      orgId = await policy.trust.organization();
      ({ cleared, decision } = await decide(policy, path, format, source, (hash) => (packageHash = hash)));
    } catch (error) {
      await failed(error);
      throw error;
    }

    const conclusion = decision.signerFingerprint
      ? `signature verified (signed by ${decision.signerFingerprint})`
      : 'unsigned package allowed: signatures are not required';
    try {
      await policy.trail.record({
        eventType: 'package.load.success',
        orgId,
        packagePath: path,
        packageHash: decision.packageHash,
        signerFingerprint: decision.signerFingerprint,
        signatureVerified: decision.signerFingerprint !== null,
        reason: decision.signerFingerprint ? 'signature verified' : 'unsigned package allowed: signatures are not required',
      });
    } catch (error) {
      cleared.discard();
      throw new CloacinaSignError('AUDIT_FAILED', `${path} was not loaded: ${conclusion}, but the load could not be audited: ${(error as Error).message}`, {
        cause: error,
      });
    }

    try {
      return await finish(cleared, decision);
    } catch (error) {
      cleared.discard();
      await failed(error);
      throw error;
    }
  });
}
