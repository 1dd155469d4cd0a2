// `cloacina-sign package sign --key-id`: signing with a database key.
import { DbPackageSigner } from '../../signing/db-signer';
import { checkOutputFile } from '../../files';
import { DetachedSignature } from '../../signing/detached-signature';
import { type DatabaseOptions, withDatabase } from '../context';
import { printData, say } from '../output';
import { signatureOutput } from './package';

export async function signWithDatabaseKey(
  packagePath: string,
  options: DatabaseOptions & { keyId: string; store?: boolean; output?: string; force?: boolean },
): Promise<void> {
  const signaturePath = options.output ?? (options.store ? undefined : DetachedSignature.defaultPath(packagePath));
  const output = signatureOutput(packagePath, options);
  // Before the database is opened: a refused output never leaves a stored signature behind.
  if (signaturePath) await checkOutputFile(signaturePath, output);
  await withDatabase(
    options,
    async ({ keys, kek }) => {
      const signed = await new DbPackageSigner(keys).signPackageWithDbKey(packagePath, options.keyId, kek!, Boolean(options.store));
      if (signaturePath) await DetachedSignature.fromSignatureInfo(signed).writeToFile(signaturePath, output);
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
