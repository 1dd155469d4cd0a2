// Verification of one package against a trust source, audited as verification.success|failure.
import { type AuditTrail, recordFailure } from '../audit/audit-trail';
import { CloacinaSignError } from '../errors';
import { type Digests, type DocumentInfo, native, type NativeVerified } from '../native';
import { DetachedSignature } from '../formats/v1';
import { nativeCounter, type ProgressCounter } from '../progress';
import { refuseRevoked, revokedPackagesOf } from '../trust/revoked-packages';
import type { TrustSource } from '../trust/trust-source';
import { candidatesFor, digestsToCompute, documentsBeforeHashing, namedFileError, usesStoredSignatures } from './candidates';
import { nativePolicy, type PackagePolicy } from './policy';
import { noSignature, type PackageFormatName, resultOf, type VerificationResult } from './result';
import { checkFormats, checkPackageLimit, decideSealed, nativeFormat } from './sealed-decision';
import { SignatureSource } from './signature-source';

export interface VerifyOptions {
  /** Where the signatures are (default SignatureSource.Auto: the `.sig` beside the package and the stored ones). */
  signature?: SignatureSource;
  progress?: ProgressCounter;
  /**
   * What the package must be (default `any`). Checked only once the signature verified, on the very bytes it
   * covers (a sealed copy): NOT_A_SHARED_LIBRARY, NOT_A_WASM_MODULE.
   */
  format?: PackageFormatName;
  /** Largest package accepted, checked before it is hashed (PACKAGE_TOO_LARGE). Default: no limit. */
  maxPackageBytes?: number;
}

export interface VerificationContext {
  trust: TrustSource;
  trail: AuditTrail;
  /** The operator's policy on signed fields (none: today's verification). */
  policy?: PackagePolicy;
}

/**
 * Verifies a package: every signature a trusted key made over exactly its bytes is accepted; the
 * event is audited before the result is returned (AUDIT_FAILED when it cannot be).
 * Throws TamperedPackage, UntrustedSigner, InvalidSignature, SignatureNotFound or MalformedSignature.
 */
export async function verifyWithTrust(ctx: VerificationContext, path: string, options: VerifyOptions = {}): Promise<VerificationResult> {
  return audited(ctx, path, (attempt) => decide(ctx, path, options, attempt));
}

export interface DigestDecisionOptions {
  /** How messages name the package (default: the hash). */
  label?: string;
  /** The package's size in bytes (version-2 statements sign it). */
  size?: number;
  /** The package's BLAKE3, when the caller computed it too (a version-2 statement naming BLAKE3 needs it). */
  blake3?: string;
  policy?: PackagePolicy;
}

/**
 * @internal
 * The decision alone, unaudited, for a package whose SHA-256 the caller computed (the signing service
 * hashed an upload as it streamed): the candidates (the given document, or the stored signatures),
 * paired with the keys the trust source trusts now, then hash, signer, signature and policy, as
 * `verifyWithTrust` decides. A version-2 statement naming BLAKE3 cannot be checked against a SHA-256.
 * Callers audit the outcome themselves.
 */
export async function decideDigest(
  trust: TrustSource,
  packageHash: string,
  source: SignatureSource,
  options: DigestDecisionOptions = {},
): Promise<NativeVerified> {
  const label = options.label ?? `package ${packageHash}`;
  // Without a path there is no `.sig` beside the package: Auto is the stored signatures alone.
  const effective = source.kind === 'auto' ? SignatureSource.Database : source;
  const before = await documentsBeforeHashing(null, effective);
  const digests = { size: options.size ?? 0, sha256: packageHash, ...(options.blake3 ? { blake3: options.blake3 } : {}) };
  return decideDigests(trust, digests, before, usesStoredSignatures(effective, trust), options.policy ?? {}, label, effective);
}

/** Candidates for these digests, then the native decision (hash, signer, signature, policy). */
async function decideDigests(
  trust: TrustSource,
  digests: Digests,
  before: readonly DocumentInfo[],
  stored: boolean,
  policy: PackagePolicy,
  label: string,
  source: SignatureSource,
): Promise<NativeVerified> {
  const candidates = await candidatesFor(before, stored ? (digests.sha256 ?? null) : null, trust);
  if (candidates.length === 0) throw noSignature(label, digests.sha256 ?? digests.blake3 ?? '', trust, source);
  const verified = await native.verifyDigests(digests, candidates, await nativePolicy(policy, trust, before));
  // After the signature decision: a revoked package is refused whoever signed it.
  refuseRevoked(await revokedPackagesOf(trust), digests, label);
  return verified;
}

/** What is known of a verification so far, for its failure event. */
export interface Attempt {
  organization: string | null;
  packageHash: string | null;
  /** Set once a signature verified (a later check may still refuse the package). */
  signerFingerprint?: string;
}

/**
 * @internal
 * Runs a decision and audits it: verification.failure (then rethrows) or verification.success (AUDIT_FAILED when it cannot be written).
 */
export async function audited(
  ctx: VerificationContext,
  packagePath: string,
  work: (attempt: Attempt) => Promise<VerificationResult>,
): Promise<VerificationResult> {
  const attempt: Attempt = { organization: null, packageHash: null };
  let result: VerificationResult;
  try {
    result = await work(attempt);
  } catch (error) {
    await recordFailure(
      ctx.trail,
      {
        eventType: 'verification.failure',
        orgId: attempt.organization,
        packagePath,
        packageHash: attempt.packageHash,
        signerFingerprint: attempt.signerFingerprint ?? null,
        signatureVerified: attempt.signerFingerprint !== undefined,
        actor: null,
      },
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
      actor: null,
      digestAlgorithm: result.digestAlgorithm,
    });
  } catch (error) {
    throw new CloacinaSignError(
      'AUDIT_FAILED',
      `${packagePath} verified (signed by ${result.signerFingerprint}), but the verification could not be audited, so it does not count: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return result;
}

async function decide(ctx: VerificationContext, path: string, options: VerifyOptions, attempt: Attempt): Promise<VerificationResult> {
  const source = options.signature ?? SignatureSource.Auto;
  const progress = options.progress;
  const organization = await ctx.trust.organization();
  attempt.organization = organization;
  const policy = ctx.policy ?? {};
  const format = nativeFormat(options.format ?? 'any');
  checkPackageLimit(options.maxPackageBytes);
  if (options.format !== undefined || options.maxPackageBytes !== undefined) {
    // The format is checked on the bytes the signature covers: a sealed copy, decided first.
    const limits = { trust: ctx.trust, requireSignatures: true, maxPackageBytes: options.maxPackageBytes ?? Number.MAX_SAFE_INTEGER, policy };
    const { cleared, decision } = await decideSealed(
      limits,
      path,
      source,
      (hash) => (attempt.packageHash = hash),
      (fingerprint) => (attempt.signerFingerprint = fingerprint),
    );
    attempt.signerFingerprint = decision.signerFingerprint ?? undefined;
    await checkFormats(cleared, [format]);
    cleared.discard();
    return resultOf(path, decision.verified!, organization);
  }
  const counter = nativeCounter(progress);
  const revoked = await revokedPackagesOf(ctx.trust);
  if (!ctx.trust.storedSignatures && revoked.size === 0 && (source.kind === 'auto' || source.kind === 'detached-file')) {
    // Pinned keys and one signature file: the whole decision in one task on the worker pool.
    const signaturePath = source.kind === 'auto' ? DetachedSignature.defaultPath(path) : source.path;
    const keys = [...(await ctx.trust.trustedKeys()).values()].map((key) => key.publicKey);
    let verified = native.verifyFileWithKeys(path, signaturePath, keys, await nativePolicy(policy, ctx.trust, []), counter);
    if (source.kind === 'detached-file') verified = verified.catch(namedFileError(signaturePath));
    return resultOf(path, await verified, organization);
  }
  // A missing or unreadable package is UNREADABLE_FILE. With Auto, the `.sig` beside it is read in the same task.
  const stored = usesStoredSignatures(source, ctx.trust);
  let before: DocumentInfo[];
  let digests: Digests;
  if (source.kind === 'auto' && revoked.size === 0) {
    const read = await native.hashFileWithSignature(path, DetachedSignature.defaultPath(path), counter);
    before = read.signature ? [native.parseSignatureDocument(Buffer.from(read.signature))] : [];
    digests = read.digests;
  } else {
    before = await documentsBeforeHashing(path, source);
    // Revocations naming one digest only need that digest computed too.
    digests = await native.hashFileDigests(path, revoked.widen(digestsToCompute(before, stored)), counter);
  }
  attempt.packageHash = digests.sha256 ?? digests.blake3 ?? null;
  return resultOf(path, await decideDigests(ctx.trust, digests, before, stored, policy, path, source), organization);
}
