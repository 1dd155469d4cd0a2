// Verification against an organization's trust in the database: the package verifies when any of its
// signatures (tried in a fixed order) is valid under a key the organization trusts now.
import { AuditLog } from '../audit/audit-log';
import type { Database } from '../db/database';
import { CloacinaSignError, SignatureNotFound } from '../errors';
import { native, ProgressCounter, VerifyCandidate } from '../native';
import { DetachedSignature } from '../signing/detached-signature';
import { DbKeyManager } from '../keys/db-key-manager';
import { trustCacheFor } from '../trust/trust-cache';
import type { VerifiedPackage } from './offline';
import { signatureCacheFor } from './signature-cache';
import { SignatureSource } from './signature-source';

/** What database verification needs: the database (trust and signature caches hang off it) and the audit log. */
export interface VerificationContext {
  db: Database;
  audit: AuditLog;
}

/** From a database (audit rows only, no JSON line unless `audit` is given) or from a key manager (its db and audit log). */
export function createVerificationContext(source: Database | DbKeyManager, options: { audit?: AuditLog } = {}): VerificationContext {
  if (source instanceof DbKeyManager) return { db: source.db, audit: options.audit ?? source.audit };
  return { db: source, audit: options.audit ?? new AuditLog({ db: source, destination: false }) };
}

export interface DbVerifiedPackage extends VerifiedPackage {
  orgId: string;
}

async function documentsFor(packagePath: string, packageHash: string, source: SignatureSource, ctx: VerificationContext): Promise<Buffer[]> {
  switch (source.kind) {
    case 'detached-file':
      return [Buffer.from((await DetachedSignature.readFromFile(source.path)).toString())];
    case 'memory': {
      const signature = source.signature;
      const parsed = typeof signature === 'string' || signature instanceof Uint8Array ? DetachedSignature.parse(signature) : DetachedSignature.fromSignatureInfo(signature);
      return [Buffer.from(parsed.toString())];
    }
    case 'database':
      return signatureCacheFor(ctx.db).get(packageHash);
    case 'auto':
      try {
        return [Buffer.from((await DetachedSignature.readFromFile(DetachedSignature.defaultPath(packagePath))).toString())];
      } catch (error) {
        if (error instanceof SignatureNotFound) return signatureCacheFor(ctx.db).get(packageHash);
        throw error;
      }
  }
}

const FINGERPRINT = /"key_fingerprint":"([0-9a-f]{64})"/;

/**
 * The signatures to try for a package of this hash, each paired with the org's trusted key for its
 * fingerprint (undefined when untrusted, including revoked keys), in a fixed order: the detached file, or
 * the stored signatures by signed_at then id. An empty list when there is no signature at all (the loader may
 * allow unsigned packages; `native.verifyDigest([])` throws SignatureNotFound). NOT_FOUND for an unknown org;
 * MalformedSignature for an unparseable `.sig`.
 * The hash is the caller's (the loader hashes the sealed in-memory copy it will map).
 */
export async function resolveCandidates(
  packagePath: string,
  packageHash: string,
  orgId: string,
  source: SignatureSource,
  ctx: VerificationContext,
): Promise<VerifyCandidate[]> {
  const trusted = await trustCacheFor(ctx.db).trustedKeys(orgId);
  const documents = await documentsFor(packagePath, packageHash, source, ctx);
  return documents.map((document) => {
    // Canonical documents (made by DetachedSignature) always carry the fingerprint in this form.
    const fingerprint = FINGERPRINT.exec(document.toString('utf8'))?.[1];
    const key = fingerprint ? trusted.get(fingerprint) : undefined;
    return key ? { document, publicKey: key.publicKey } : { document };
  });
}

/**
 * Hashes the package, resolves candidates, verifies, and audits `verification.success|failure`.
 * Throws TamperedPackage, UntrustedSigner, InvalidSignature, SignatureNotFound or MalformedSignature as the
 * offline API does; NOT_FOUND for an unknown organization; DATABASE_ERROR if the outcome cannot be audited.
 */
export async function verifyPackage(
  packagePath: string,
  orgId: string,
  source: SignatureSource,
  ctx: VerificationContext,
  options: { progress?: ProgressCounter } = {},
): Promise<DbVerifiedPackage> {
  let packageHash: string | undefined;
  let result: DbVerifiedPackage;
  try {
    // hashFile itself reports a missing or unreadable package as UNREADABLE_FILE.
    packageHash = await native.hashFile(packagePath, options.progress);
    const candidates = await resolveCandidates(packagePath, packageHash, orgId, source, ctx);
    if (candidates.length === 0) throw new SignatureNotFound(`no signature for ${packagePath} (${packageHash}): no .sig file and none stored`);
    const verified = await native.verifyDigest(packageHash, candidates);
    result = { packageHash: verified.packageHash, signerFingerprint: verified.keyFingerprint, signedAt: verified.signedAt, orgId };
  } catch (error) {
    const reason = error instanceof CloacinaSignError ? `${error.code}: ${error.message}` : 'INTERNAL';
    await ctx.audit
      .record({ eventType: 'verification.failure', orgId, packagePath, packageHash, signatureVerified: false, reason })
      .catch(() => undefined);
    throw error;
  }
  await ctx.audit.record({
    eventType: 'verification.success',
    orgId,
    packagePath,
    packageHash: result.packageHash,
    signerFingerprint: result.signerFingerprint,
    signatureVerified: true,
  });
  return result;
}
