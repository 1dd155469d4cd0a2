// `cloacina-sign package sign --key-id`: signing with a database key.
import { DbPackageSigner } from '../../signing/db-signer';
import { DetachedSignature } from '../../signing/detached-signature';
import { type DatabaseOptions, withDatabase } from '../context';
import { printData, say } from '../output';

export async function signWithDatabaseKey(packagePath: string, options: DatabaseOptions & { keyId: string; store?: boolean; output?: string }): Promise<void> {
  await withDatabase(
    options,
    async ({ keys, kek }) => {
      const signed = await new DbPackageSigner(keys).signPackageWithDbKey(packagePath, options.keyId, kek!, Boolean(options.store));
      const signaturePath = options.output ?? (options.store ? undefined : DetachedSignature.defaultPath(packagePath));
      if (signaturePath) await DetachedSignature.fromSignatureInfo(signed).writeToFile(signaturePath);
      say(
        `Signed ${packagePath} with key ${options.keyId} (${signed.keyFingerprint})${signed.signatureId ? ', stored' : ''}${signaturePath ? `, wrote ${signaturePath}` : ''}`,
      );
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
