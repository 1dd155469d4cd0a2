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
  return audited(ctx, path, path, (attempt) => decide(ctx, path, options.signature ?? SignatureSource.Auto, options.progress, attempt));
}

export interface DigestVerifyOptions {
  /**
   * Where the signatures are (default SignatureSource.Database: the stored ones). Memory: a document the
   * caller received with the digest; DetachedFile: that file. Auto means the stored signatures here (no
   * package path, so no `.sig` beside it).
   */
  signature?: SignatureSource;
  /** What the package is called in messages and in the audit event's package_path (default: none; messages name the hash). */
  name?: string;
  /** The actor of the audit event (the signing service: an API token's id). */
  actor?: string | null;
}

/**
 * The same decision for a package whose SHA-256 the caller computed (a service that hashed an upload as it
 * streamed, a digest received from elsewhere), audited as verification.success|failure. Nothing is read
 * but the signatures: the caller answers for the digest being that of the bytes it will use.
 */
export async function verifyDigestWithTrust(ctx: VerificationContext, packageHash: string, options: DigestVerifyOptions = {}): Promise<VerificationResult> {
  const label = options.name ?? `package ${packageHash}`;
  return audited(
    ctx,
    label,
    options.name ?? null,
    async (attempt) => {
      const organization = await ctx.trust.organization();
      attempt.organization = organization;
      attempt.packageHash = packageHash;
      const verified = await decideDigest(ctx.trust, packageHash, options.signature ?? SignatureSource.Database, { label });
      return { path: options.name ?? packageHash, packageHash, signerFingerprint: verified.keyFingerprint, signedAt: verified.signedAt, organization };
    },
    options.actor ?? null,
  );
}

/** What verified: the signature's key and its signed_at. */
export interface DigestDecision {
  packageHash: string;
  keyFingerprint: string;
  signedAt: string;
}

export interface DigestDecisionOptions {
  /** The package's path: Auto then also takes the `.sig` beside it. */
  path?: string;
  /** Auto with a path: the `.sig` beside the package, when the caller already read it ([] when there is none). */
  besideRead?: readonly Buffer[];
  /** How messages name the package (default: the path, else the hash). */
  label?: string;
}

/**
 * The decision alone, unaudited: the candidates for a package of this hash (paired with the keys the trust
 * source trusts now), then hash match, signer and Ed25519, as `verifyWithTrust` decides. Callers audit the
 * outcome themselves (the signing service writes one row per request).
 */
export async function decideDigest(
  trust: TrustSource,
  packageHash: string,
  source: SignatureSource,
  options: DigestDecisionOptions = {},
): Promise<DigestDecision> {
  const label = options.label ?? options.path ?? `package ${packageHash}`;
  // Without a path there is no `.sig` beside the package: Auto is the stored signatures alone.
  const besideRead = options.path === undefined && source.kind === 'auto' ? [] : options.besideRead;
  const candidates = await candidatesFor(options.path ?? '', packageHash, source, trust, besideRead);
  if (candidates.length === 0)
    throw noSignature(label, packageHash, trust, options.path === undefined && source.kind === 'auto' ? SignatureSource.Database : source);
  return native.verifyDigest(packageHash, candidates);
}

/** What is known of a verification so far, for its failure event. */
interface Attempt {
  organization: string | null;
  packageHash: string | null;
}

/** Runs a decision and audits it: verification.failure (then rethrows) or verification.success (AUDIT_FAILED when it cannot be written). */
async function audited(
  ctx: VerificationContext,
  label: string,
  packagePath: string | null,
  work: (attempt: Attempt) => Promise<VerificationResult>,
  actor: string | null = null,
): Promise<VerificationResult> {
  const attempt: Attempt = { organization: null, packageHash: null };
  let result: VerificationResult;
  try {
    result = await work(attempt);
  } catch (error) {
    await recordFailure(
      ctx.trail,
      { eventType: 'verification.failure', orgId: attempt.organization, packagePath, packageHash: attempt.packageHash, signatureVerified: false, actor },
      error,
    );
    throw error;
  }
  try {
    await ctx.trail.record({
      eventType: 'verification.success',
      orgId: result.organization,
      packagePath,
      packageHash: result.packageHash,
      signerFingerprint: result.signerFingerprint,
      signatureVerified: true,
      actor,
    });
  } catch (error) {
    throw new CloacinaSignError(
      'AUDIT_FAILED',
      `${label} verified (signed by ${result.signerFingerprint}), but the verification could not be audited, so it does not count: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return result;
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
  const verified = await decideDigest(ctx.trust, packageHash, source, { path, besideRead: beside });
  return { path, packageHash, signerFingerprint: verified.keyFingerprint, signedAt: verified.signedAt, organization };
}
