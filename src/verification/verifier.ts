// Verification of one package against a trust source, audited as verification.success|failure.
import { type AuditTrail, recordFailure } from '../audit/audit-trail';
import { CloacinaSignError, SignatureNotFound } from '../errors';
import { native } from '../native';
import { DetachedSignature } from '../signing/detached-signature';
import { nativeCounter, type ProgressCounter } from '../progress';
import type { TrustSource } from '../trust/trust-source';
import { candidatesFor } from './candidates';
import { SignatureSource } from './signature-source';

export interface VerificationResult {
  /** The package as given. */
  path: string;
  /** Lowercase hex SHA-256 of the package. */
  packageHash: string;
  /** Fingerprint of the trusted key whose signature verified. */
  signerFingerprint: string;
  /** `signed_at` of that signature (information, not evidence: version 1 does not sign it). */
  signedAt: string;
  /** The organization whose trust decided; null for pinned public keys. */
  organization: string | null;
}

export interface VerifyOptions {
  /** Where the signatures are (default SignatureSource.Auto: the `.sig` beside the package and the stored ones). */
  signature?: SignatureSource;
  progress?: ProgressCounter;
}

export interface VerificationContext {
  trust: TrustSource;
  trail: AuditTrail;
}

/** SignatureNotFound for a package without any signature, saying where we looked. */
export function noSignature(path: string, packageHash: string, trust: TrustSource, source: SignatureSource): SignatureNotFound {
  const where = source.kind === 'auto' ? (trust.storedSignatures ? 'no .sig file and none stored' : 'no .sig file') : 'none found';
  return new SignatureNotFound(`no signature for ${path} (${packageHash}): ${where}`);
}

/**
 * Verifies a package: every signature a trusted key made over exactly its bytes is accepted; the
 * event is audited before the result is returned (AUDIT_FAILED when it cannot be).
 * Throws TamperedPackage, UntrustedSigner, InvalidSignature, SignatureNotFound or MalformedSignature.
 */
export async function verifyWithTrust(ctx: VerificationContext, path: string, options: VerifyOptions = {}): Promise<VerificationResult> {
  const attempt: Attempt = { organization: null, packageHash: null };
  let result: VerificationResult;
  try {
    result = await decide(ctx, path, options.signature ?? SignatureSource.Auto, options.progress, attempt);
  } catch (error) {
    await recordFailure(
      ctx.trail,
      { eventType: 'verification.failure', orgId: attempt.organization, packagePath: path, packageHash: attempt.packageHash, signatureVerified: false },
      error,
    );
    throw error;
  }
  try {
    await ctx.trail.record({
      eventType: 'verification.success',
      orgId: result.organization,
      packagePath: path,
      packageHash: result.packageHash,
      signerFingerprint: result.signerFingerprint,
      signatureVerified: true,
    });
  } catch (error) {
    throw new CloacinaSignError(
      'AUDIT_FAILED',
      `${path} verified (signed by ${result.signerFingerprint}), but the verification could not be audited, so it does not count: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return result;
}

/** What is known of a verification so far, for its failure event. */
interface Attempt {
  organization: string | null;
  packageHash: string | null;
}

async function decide(
  ctx: VerificationContext,
  path: string,
  source: SignatureSource,
  progress: ProgressCounter | undefined,
  attempt: Attempt,
): Promise<VerificationResult> {
  const organization = await ctx.trust.organization();
  attempt.organization = organization;
  const counter = nativeCounter(progress);
  if (!ctx.trust.storedSignatures && (source.kind === 'auto' || source.kind === 'detached-file')) {
    // Pinned keys and one signature file: the whole decision in one task on the worker pool.
    const signaturePath = source.kind === 'auto' ? DetachedSignature.defaultPath(path) : source.path;
    const keys = [...(await ctx.trust.trustedKeys()).values()].map((key) => key.publicKey);
    const verified = await native.verifyFileWithKeys(path, signaturePath, keys, counter);
    return { path, packageHash: verified.packageHash, signerFingerprint: verified.keyFingerprint, signedAt: verified.signedAt, organization };
  }
  // A missing or unreadable package is UNREADABLE_FILE. With Auto, the `.sig` beside it is read in the same task.
  let packageHash: string;
  let beside: Buffer[] | undefined;
  if (source.kind === 'auto') {
    const read = await native.hashFileWithSignature(path, DetachedSignature.defaultPath(path), counter);
    packageHash = read.packageHash;
    beside = read.signature ? [Buffer.from(read.signature)] : [];
  } else {
    packageHash = await native.hashFile(path, counter);
  }
  attempt.packageHash = packageHash;
  const candidates = await candidatesFor(path, packageHash, source, ctx.trust, beside);
  if (candidates.length === 0) throw noSignature(path, packageHash, ctx.trust, source);
  const verified = await native.verifyDigest(packageHash, candidates);
  return { path, packageHash, signerFingerprint: verified.keyFingerprint, signedAt: verified.signedAt, organization };
}
