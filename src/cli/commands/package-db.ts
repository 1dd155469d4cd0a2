// The database variants of `cloacina-sign package sign|verify`.
import { DbPackageSigner } from '../../signing/db-signer';
import { DetachedSignature } from '../../signing/detached-signature';
import { SignatureSource } from '../../verification/signature-source';
import { createVerificationContext, verifyPackage } from '../../verification/verify';
import { DatabaseOptions, withDatabase } from '../context';
import { printData, say } from '../output';
import { reportVerified } from './package';

export async function signWithDatabaseKey(packagePath: string, options: DatabaseOptions & { keyId: string; store?: boolean; output?: string }): Promise<void> {
  await withDatabase(
    options,
    async ({ keys, audit, kek }) => {
      const signed = await new DbPackageSigner(keys, audit).signPackageWithDbKey(packagePath, options.keyId, kek!, Boolean(options.store));
      const signaturePath = options.output ?? (options.store ? undefined : DetachedSignature.defaultPath(packagePath));
      if (signaturePath) await DetachedSignature.fromSignatureInfo(signed).writeToFile(signaturePath);
      say(`Signed ${packagePath} with key ${options.keyId} (${signed.keyFingerprint})${signed.signatureId ? ', stored' : ''}${signaturePath ? `, wrote ${signaturePath}` : ''}`);
      printData(
        options,
        {
          ...(signed.signatureId ? { id: signed.signatureId } : {}),
          signaturePath: signaturePath ?? null,
          packageHash: signed.packageHash,
          keyFingerprint: signed.keyFingerprint,
          fingerprint: signed.keyFingerprint,
          keyId: signed.keyId,
          signedAt: signed.signedAt,
        },
        signaturePath ?? signed.signatureId ?? signed.packageHash,
      );
    },
    { needsKek: true },
  );
}

export async function verifyWithDatabase(packagePath: string, options: DatabaseOptions & { org: string; signature?: string }): Promise<void> {
  await withDatabase(options, async (ctx) => {
    const org = await ctx.org(options.org);
    const source = options.signature ? SignatureSource.DetachedFile(options.signature) : SignatureSource.Auto;
    const result = await verifyPackage(packagePath, org.id, source, createVerificationContext(ctx.keys));
    reportVerified(options, packagePath, result);
  });
}
