// One guarded load: seal, verify, check the format of the cleared bytes, audit the decision, and only
// then hand the cleared bytes over. Nothing parses the bytes before the signature decision, and no
// package code runs (no constructor, no addon init, no WASM compile) before the decision is audited:
// if it cannot be, nothing is loaded (AUDIT_FAILED).
import { type AuditTrail, recordFailure } from '../audit/audit-trail';
import { CloacinaSignError } from '../errors';
import type { ClearedPackage, PackageFormat } from '../native';
import type { TrustSource } from '../trust/trust-source';
import type { PackagePolicy } from '../verification/policy';
import type { SignatureSource } from '../verification/signature-source';
import { checkFormats, decideSealed, type SealedDecision } from '../verification/sealed-decision';
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
export type LoadDecision = SealedDecision;

/**
 * Runs one guarded load, serialized in the process, audited as package.load.success|failure. The
 * observer (metrics), when there is one, is told when the decision starts and what it was.
 */
export function guardedLoad<T>(
  policy: LoadPolicy,
  path: string,
  formats: readonly PackageFormat[],
  source: SignatureSource,
  finish: (cleared: ClearedPackage, decision: LoadDecision) => Promise<T>,
  observer?: LoadObserver,
): Promise<T> {
  return serializeLoads(async () => {
    observer?.deciding();
    let orgId: string | null = null;
    let packageHash: string | null = null;
    // The signature's verdict, once there is one: a refusal after it (format, dependencies, the load) says who signed.
    let signerFingerprint: string | null = null;
    const failed = (error: unknown) =>
      recordFailure(
        policy.trail,
        { eventType: 'package.load.failure', orgId, packagePath: path, packageHash, signerFingerprint, signatureVerified: signerFingerprint !== null },
        error,
      );

    let cleared: ClearedPackage;
    let decision: LoadDecision;
    try {
      orgId = await policy.trust.organization();
      ({ cleared, decision } = await decideSealed(
        policy,
        path,
        source,
        (hash) => (packageHash = hash),
        (fingerprint) => (signerFingerprint = fingerprint),
      ));
    } catch (error) {
      observer?.decided({ error });
      await failed(error);
      throw error;
    }
    signerFingerprint = decision.signerFingerprint;

    observer?.decided({ documentVersion: decision.signerFingerprint === null ? null : decision.statement ? 2 : 1, bytes: decision.size });
    // Only now are the bytes parsed: they are exactly those the signature (or the policy) cleared.
    try {
      await checkFormats(cleared, formats);
    } catch (error) {
      await failed(error);
      throw error;
    }
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
