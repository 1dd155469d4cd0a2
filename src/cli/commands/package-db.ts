// `cloacina-sign package sign --key-id`: signing with a database key.
import { DbPackageSigner } from '../../signing/db-signer';
import { checkOutputFile } from '../../files';
import { DetachedSignature, type SignatureInfo } from '../../signing/detached-signature';
import { type StatementOptions, writeSignatureDocument } from '../../signing/statement';
import type { PackageStatement } from '../../verification/verifier';
import { type DatabaseOptions, withDatabase } from '../context';
import { type OutputOptions, printData, say } from '../output';
import { signatureOutput } from './package';

export async function signWithDatabaseKey(
  packagePath: string,
  options: DatabaseOptions & { keyId: string; store?: boolean; output?: string; force?: boolean },
  statement?: StatementOptions,
): Promise<void> {
  if (statement) return signStatementWithDatabaseKey(packagePath, options, statement);
  const signaturePath = options.output ?? (options.store ? undefined : DetachedSignature.defaultPath(packagePath));
  const output = signatureOutput(packagePath, options);
  // Before the database is opened: a refused output never leaves a stored signature behind.
  if (signaturePath) await checkOutputFile(signaturePath, output);
  await withDatabase(
    options,
    async ({ keys, kek }) => {
      const signed = await new DbPackageSigner(keys).signPackageWithDbKey(packagePath, options.keyId, kek!, Boolean(options.store));
      if (signaturePath) await DetachedSignature.fromSignatureInfo(signed).writeToFile(signaturePath, output);
      reportSignedWithKeyId(packagePath, signaturePath, { ...signed, keyId: options.keyId }, options);
    },
    { needsKek: true },
  );
}

/**
 * What `package sign --key-id` (version 1) prints, the same whether this process or the signing service
 * (--api-url) signed: the human line on stderr, the signature file (else the stored signature's id, else the
 * digest) on stdout, or one JSON object.
 */
export function reportSignedWithKeyId(
  packagePath: string,
  signaturePath: string | undefined,
  signed: SignatureInfo & { keyId: string; signatureId?: string },
  options: OutputOptions,
): void {
  say(
    `Signed ${packagePath} with key ${signed.keyId} (${signed.keyFingerprint})${signed.signatureId ? ', stored' : ''}${signaturePath ? `, wrote ${signaturePath}` : ''}`,
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
      stored: Boolean(signed.signatureId),
    },
    signaturePath ?? signed.signatureId ?? signed.packageHash,
  );
}

/** Version 2 with a database key: the statement signed inside Rust, written as the `.sig` (never stored). */
async function signStatementWithDatabaseKey(
  packagePath: string,
  options: DatabaseOptions & { keyId: string; output?: string; force?: boolean },
  statement: StatementOptions,
): Promise<void> {
  const signaturePath = options.output ?? DetachedSignature.defaultPath(packagePath);
  const output = signatureOutput(packagePath, options);
  await checkOutputFile(signaturePath, output);
  await withDatabase(
    options,
    async ({ keys, kek }) => {
      const signed = await new DbPackageSigner(keys).signStatementWithDbKey(packagePath, options.keyId, kek!, statement);
      await writeSignatureDocument(signaturePath, signed.document, output);
      say(
        `Signed ${signed.statement.name} ${signed.statement.version} (${packagePath}) with key ${options.keyId} (${signed.keyFingerprint}), wrote ${signaturePath}`,
      );
      printData(options, statementSigned(signaturePath, signed, options.keyId), signaturePath);
    },
    { needsKek: true },
  );
}

/** The `package sign --json` object of a version-2 signature. */
export function statementSigned(
  signaturePath: string,
  signed: { statement: PackageStatement; keyFingerprint: string },
  keyId?: string,
): Record<string, unknown> {
  return {
    signaturePath,
    format: 'v2',
    packageHash: signed.statement.digest,
    digestAlgorithm: signed.statement.digestAlgorithm,
    keyFingerprint: signed.keyFingerprint,
    ...(keyId ? { keyId } : {}),
    statement: signed.statement,
  };
}
