// One guarded load: seal, verify, audit the decision, and only then hand the cleared bytes over.
// No package code runs (no constructor, no addon init, no WASM compile) before the decision is
// audited: if it cannot be, nothing is loaded (AUDIT_FAILED).
import { type AuditTrail, recordFailure } from '../audit/audit-trail';
import { CloacinaSignError } from '../errors';
import { type ClearedPackage, native, nativeMethods, type PackageFormat } from '../native';
import type { TrustSource } from '../trust/trust-source';
import { candidatesFor, digestsToCompute, documentsBeforeHashing, usesStoredSignatures } from '../verification/candidates';
import { nativePolicy, type PackagePolicy } from '../verification/policy';
import type { SignatureSource } from '../verification/signature-source';
import { noSignature, type PackageStatement, resultOf } from '../verification/verifier';
import { serializeLoads } from './load-lock';
import type { LoadObserver } from './metrics';

export interface LoadPolicy {
  trust: TrustSource;
  trail: AuditTrail;
  requireSignatures: boolean;
  maxPackageBytes: number;
  /** The operator's policy on signed fields. */
  policy: PackagePolicy;
}

/** What was decided about the sealed bytes. */
export interface LoadDecision {
  /** Lowercase hex digest of the sealed bytes: the one the signature covers (SHA-256 when unsigned). */
  packageHash: string;
  /** Null when the package was allowed unsigned. */
  signerFingerprint: string | null;
  /** Version 2: the signed statement. */
  statement: PackageStatement | null;
  /** Size of the sealed bytes. */
  size: number;
}

/**
 * Copies the package once into sealed memory and decides on exactly those bytes. With signatures
 * required, a missing or failing signature is a hard failure. Without, an unsigned package is
 * allowed, but a signature that is present must still verify: a bad signature is never ignored.
 */
async function decide(policy: LoadPolicy, path: string, format: PackageFormat, source: SignatureSource, noteHash: (hash: string) => void) {
  // The documents that do not depend on the digest say which digests the sealing pass computes.
  const before = await documentsBeforeHashing(path, source);
  const stored = usesStoredSignatures(source, policy.trust);
  const sealed = await native.sealPackage(path, policy.maxPackageBytes, format, digestsToCompute(before, stored));
  try {
    const digests = sealed.digests;
    const hash = (digests.sha256 ?? digests.blake3) as string;
    noteHash(hash);
    const candidates = await candidatesFor(before, stored ? (digests.sha256 ?? null) : null, policy.trust);
    if (candidates.length === 0 && !policy.requireSignatures) {
      return { cleared: nativeMethods.allowUnsigned(sealed), decision: { packageHash: hash, signerFingerprint: null, statement: null, size: digests.size } };
    }
    if (candidates.length === 0) throw noSignature(path, hash, policy.trust, source);
    const cleared = nativeMethods.verifySealed(sealed, candidates, await nativePolicy(policy.policy, policy.trust, before));
    const verified = resultOf(path, cleared.verified!, null);
    noteHash(verified.packageHash);
    return {
      cleared,
      decision: { packageHash: verified.packageHash, signerFingerprint: verified.signerFingerprint, statement: verified.statement, size: digests.size },
    };
  } finally {
    // A cleared package owns the image now; on a refusal this releases the sealed memory at once.
    sealed.discard();
  }
}

/**
 * Runs one guarded load, serialized in the process, audited as package.load.success|failure. The
 * observer (metrics), when there is one, is told when the decision starts and what it was.
 */
export function guardedLoad<T>(
  policy: LoadPolicy,
  path: string,
  format: PackageFormat,
  source: SignatureSource,
  finish: (cleared: ClearedPackage, decision: LoadDecision) => Promise<T>,
  observer?: LoadObserver,
): Promise<T> {
  return serializeLoads(async () => {
    observer?.deciding();
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
      observer?.decided({ error });
      await failed(error);
      throw error;
    }

    observer?.decided({ documentVersion: decision.signerFingerprint === null ? null : decision.statement ? 2 : 1, bytes: decision.size });
    const conclusion = decision.signerFingerprint
      ? `signature verified (signed by ${decision.signerFingerprint})`
      : 'unsigned package allowed: signatures are not required';
    // Rollback protection: the version about to load becomes the organization's mark, before any of its code runs.
    const marks = policy.policy.rollbackProtection ? policy.trust.versionMarks : undefined;
    if (marks && decision.statement) {
      try {
        await marks.record(decision.statement.name, decision.statement.version);
      } catch (error) {
        cleared.discard();
        await failed(error);
        throw error;
      }
    }
    const signed = decision.statement ? ` (${decision.statement.name} ${decision.statement.version})` : '';
    try {
      await policy.trail.record({
        eventType: 'package.load.success',
        orgId,
        packagePath: path,
        packageHash: decision.packageHash,
        signerFingerprint: decision.signerFingerprint,
        signatureVerified: decision.signerFingerprint !== null,
        reason: decision.signerFingerprint ? `signature verified${signed}` : 'unsigned package allowed: signatures are not required',
        digestAlgorithm: decision.statement?.digestAlgorithm,
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
