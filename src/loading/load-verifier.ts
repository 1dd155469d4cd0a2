// Binds a guarded load to an organization's trust in the database and to the audit trail.
import type { DbKeyManager } from '../keys/db-key-manager';
import { SignatureSource } from '../verification/signature-source';
import { createVerificationContext, resolveCandidates } from '../verification/verify';
import { LoadVerifier } from './guarded-load';

export function loadVerifier(keyManager: DbKeyManager, orgId: string, source: SignatureSource): LoadVerifier {
  const ctx = createVerificationContext(keyManager);
  return {
    candidates: (packagePath, packageHash) => resolveCandidates(packagePath, packageHash, orgId, source, ctx),
    recordLoad: async (event) => {
      await ctx.audit.record({
        eventType: event.success ? 'package.load.success' : 'package.load.failure',
        orgId,
        packagePath: event.packagePath,
        packageHash: event.packageHash,
        signerFingerprint: event.signerFingerprint,
        signatureVerified: event.signerFingerprint !== null,
        reason: event.reason,
      });
    },
  };
}
