// Verification of one package against a trust source, audited as verification.success|failure.
import { AuditTrail, recordFailure } from '../audit/audit-trail';
import { CloacinaSignError, SignatureNotFound } from '../errors';
import { native } from '../native';
import { nativeCounter, ProgressCounter } from '../progress';
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
  const source = options.signature ?? SignatureSource.Auto;
  let organization: string | null = null;
  let packageHash: string | null = null;
  let result: VerificationResult;
  try {
    organization = await ctx.trust.organization();
    // hashFile itself reports a missing or unreadable package as UNREADABLE_FILE.
    const hash = (packageHash = await native.hashFile(path, nativeCounter(options.progress)));
    const candidates = await candidatesFor(path, hash, source, ctx.trust);
    if (candidates.length === 0) throw noSignature(path, hash, ctx.trust, source);
    const verified = await native.verifyDigest(hash, candidates);
    result = { path, packageHash: hash, signerFingerprint: verified.keyFingerprint, signedAt: verified.signedAt, organization };
  } catch (error) {
    await recordFailure(ctx.trail, { eventType: 'verification.failure', orgId: organization, packagePath: path, packageHash, signatureVerified: false }, error);
    throw error;
  }
  try {
    await ctx.trail.record({
      eventType: 'verification.success',
      orgId: organization,
      packagePath: path,
      packageHash: result.packageHash,
      signerFingerprint: result.signerFingerprint,
      signatureVerified: true,
    });
  } catch (error) {
    throw new CloacinaSignError('AUDIT_FAILED', `${path} verified (signed by ${result.signerFingerprint}), but the verification could not be audited, so it does not count: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return result;
}
