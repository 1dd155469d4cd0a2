// `cloacina-sign package sign --key-id`: signing with a database key.
import { DbPackageSigner } from '../../signing/db-signer';
import { checkOutputFile, type OutputOptions as FileOutputOptions } from '../../files';
import { writeSignatureDocument } from '../../formats/v2';
import type { StatementOptions } from '../../signing/statement';
import type { AuditEvent } from '../../audit/events';
import type { DatabaseAuditSink } from '../../audit/database-sink';
import type { Database } from '../../db/database';
import { CloacinaSignError } from '../../errors';
import { native, type StatementFields } from '../../native';
import { type DatabaseOptions, withDatabase } from '../context';
import { printData, say } from '../output';
import { withProgress } from '../progress';
import { reportSignedWithKeyId, signatureOutput, signaturePathFor, statementSigned } from './sign-output';

/** `package sign --key-id <id>`: signed inside Rust with the sealed key, version 1 or (with a statement) 2; --store keeps it in the database. */
export async function signWithDatabaseKey(
  packagePath: string,
  options: DatabaseOptions & { keyId: string; store?: boolean; output?: string; force?: boolean },
  statement?: StatementOptions,
): Promise<void> {
  const signaturePath = signaturePathFor(packagePath, options, statement);
  const output = signatureOutput(packagePath, options);
  // Before the database is opened: a refused output never leaves a stored signature behind.
  if (signaturePath) await checkOutputFile(signaturePath, output);
  await withDatabase(
    options,
    async ({ db, keys, kek }) => {
      const signer = new DbPackageSigner(keys);
      if (statement) {
        const signed = await signer.signStatementWithDbKey(packagePath, options.keyId, kek!, statement);
        const id = options.store ? await storeStatement(db, packagePath, signed.document, { signingKeyId: options.keyId }) : undefined;
        await writeSignatureDocument(signaturePath as string, signed.document, output);
        say(
          `Signed ${signed.statement.name} ${signed.statement.version} (${packagePath}) with key ${options.keyId} (${signed.keyFingerprint})${id ? ', stored' : ''}, wrote ${signaturePath}`,
        );
        printData(
          options,
          { ...(id ? { id } : {}), ...statementSigned(signaturePath as string, signed, options.keyId), ...(options.store ? { stored: true } : {}) },
          signaturePath as string,
        );
        return;
      }
      const signed = await signer.signPackageWithDbKey(packagePath, options.keyId, kek!, Boolean(options.store));
      if (signaturePath) await writeSignatureDocument(signaturePath, signed.document, output);
      reportSignedWithKeyId(packagePath, signaturePath, { ...signed, keyId: options.keyId }, options);
    },
    { needsKek: true },
  );
}

/**
 * `--format v2 --store`: the statement kept in package_statements (its own table: package_signatures, which
 * Cloacina reads, stays version 1). The package is hashed once more for its SHA-256 (how packages are
 * found); a package that changed while it was signed is refused, nothing stored.
 */
export async function storeStatement(
  db: Database,
  packagePath: string,
  document: string,
  options: { signingKeyId?: string; event?: AuditEvent } = {},
): Promise<string> {
  const [{ auditToDatabase }, { storeStatement: store }] = await Promise.all([import('../../audit/database-sink'), import('../../db/packages')]);
  const info = native.parseSignatureDocument(Buffer.from(document));
  const statement = info.statement as StatementFields;
  const digests = await native.hashFileDigests(packagePath, { sha256: true, blake3: statement.digestAlgorithm === 'blake3' });
  const digest = statement.digestAlgorithm === 'blake3' ? digests.blake3 : digests.sha256;
  if (digest !== statement.digest || digests.size !== statement.size) {
    throw new CloacinaSignError('UNREADABLE_FILE', `${packagePath} changed while it was signed: nothing was stored`);
  }
  const audit = options.event ? { rows: auditToDatabase(db) as DatabaseAuditSink, event: options.event } : undefined;
  const stored = await store(db, info, { packageHash: digests.sha256 as string, signingKeyId: options.signingKeyId, audit });
  return stored.signatureId;
}

/** `package sign <pkg> --key <key.pem> --store [--output <f.sig>]`: signed here, the signature stored in the database (no KEK needed). */
export async function signAndStore(
  packagePath: string,
  privateKey: Buffer,
  signaturePath: string | undefined,
  output: FileOutputOptions,
  options: DatabaseOptions,
): Promise<void> {
  const [{ signPackage }, { keySigner }, { auditEvent }, { auditToDatabase }, { storeSignature }] = await Promise.all([
    import('../../signing/sign'),
    import('../../signing/signers/key-signer'),
    import('../../audit/audit-trail'),
    import('../../audit/database-sink'),
    import('../../db/packages'),
  ]);
  await withDatabase(options, async ({ db, lines }) => {
    const info = await withProgress(packagePath, (progress) => signPackage(packagePath, keySigner(privateKey), { progress }));
    const event = auditEvent({
      eventType: 'package.signed',
      packagePath,
      packageHash: info.packageHash,
      signerFingerprint: info.keyFingerprint,
      reason: 'signed with a key file; signature stored',
    });
    // The audit row is written in the store's transaction: a stored signature never lacks it.
    const audit = { rows: auditToDatabase(db) as DatabaseAuditSink, event };
    const { signature: stored } = await storeSignature(db, info, { name: packagePath, nameConflict: 'keep', audit });
    if (lines) await lines.write(event);
    if (signaturePath) await writeSignatureDocument(signaturePath, info.document, output);
    say(`Signed ${packagePath} with key ${info.keyFingerprint}, stored${signaturePath ? `, wrote ${signaturePath}` : ''}`);
    printData(
      options,
      { id: stored.id, signaturePath: signaturePath ?? null, packageHash: info.packageHash, keyFingerprint: info.keyFingerprint, signedAt: info.signedAt },
      signaturePath ?? stored.id,
    );
  });
}

/** `package sign --key <key.pem> --format v2 --store`: signed here, written as the `.sig` and kept in the database. */
export async function storeStatementSignedWithKeyFile(
  packagePath: string,
  privateKey: Buffer,
  statement: StatementOptions,
  signaturePath: string,
  output: FileOutputOptions,
  options: DatabaseOptions,
): Promise<void> {
  const [{ signPackage }, { keySigner }, { auditEvent }] = await Promise.all([
    import('../../signing/sign'),
    import('../../signing/signers/key-signer'),
    import('../../audit/audit-trail'),
  ]);
  await withDatabase(options, async ({ db, lines }) => {
    const signed = await signPackage(packagePath, keySigner(privateKey), { format: 'v2', statement });
    const event = auditEvent({
      eventType: 'package.signed',
      packagePath,
      packageHash: signed.statement.digest,
      digestAlgorithm: signed.statement.digestAlgorithm,
      signerFingerprint: signed.keyFingerprint,
      reason: 'signed with a key file; statement stored',
    });
    const id = await storeStatement(db, packagePath, signed.document, { event });
    if (lines) await lines.write(event);
    await writeSignatureDocument(signaturePath, signed.document, output);
    say(`Signed ${signed.statement.name} ${signed.statement.version} (${packagePath}) with key ${signed.keyFingerprint}, stored, wrote ${signaturePath}`);
    printData(options, { id, ...statementSigned(signaturePath, signed), stored: true }, signaturePath);
  });
}
