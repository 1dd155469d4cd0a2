// `package upload` (through the signing service with --api-url, or directly into the database) and
// `package sign --key-id --api-url` (the key never leaves the service; only the digest travels).
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { DatabaseAuditSink } from '../../audit/database-sink';
import { type DocumentInfo, native } from '../../native';
import { nativeCounter } from '../../progress';
import type { ApiUploadResult } from '../../signing/api-client';
import type { StatementOptions } from '../../signing/statement';
import type { NameConflict } from '../../db/packages';
import { CloacinaSignError } from '../../errors';
import { checkName } from '../../names';
import { checkOutputFile } from '../../files';
import { DetachedSignature } from '../../formats/v1';
import { writeSignatureDocument } from '../../formats/v2';
import { type DatabaseOptions, withDatabase } from '../context';
import { printData, say } from '../output';
import { withProgress } from '../progress';
import { client, type ServiceOptions, waitingFor } from './service-client';
import { reportSignedWithKeyId, signatureOutput, signaturePathFor, statementSigned } from './sign-output';

export interface ApiSignOptions extends ServiceOptions, DatabaseOptions {
  keyId: string;
  store?: boolean;
  output?: string;
  force?: boolean;
}

export interface UploadOptions extends DatabaseOptions {
  signature?: string;
  org: string;
  apiUrl?: string;
  apiTimeout?: number;
  name?: string;
  rename?: boolean;
  allowInsecureHttp?: boolean;
}

/**
 * `package sign <pkg> --key-id <id> --api-url <url> [--format v2 ...]`: hashed here, signed by the service,
 * written byte for byte as it answered.
 */
export async function signThroughService(packagePath: string, options: ApiSignOptions, statement?: StatementOptions): Promise<void> {
  const service = await client(options);
  const signaturePath = signaturePathFor(packagePath, options, statement);
  const output = signatureOutput(packagePath, options);
  // Before anything is hashed or signed: a refused output costs nothing.
  if (signaturePath) await checkOutputFile(signaturePath, output);
  const [{ signPackage }, { serviceSigner }] = await Promise.all([import('../../signing/sign'), import('../../signing/signers/service-signer')]);
  const what = statement ? 'the signing service to sign the statement' : 'the signing service to sign';
  const signer = serviceSigner({ service, keyId: options.keyId, store: options.store, waiting: (work) => waitingFor(what, service, work) });
  if (statement) {
    const signed = await withProgress(packagePath, (progress) => signPackage(packagePath, signer, { format: 'v2', statement, progress }));
    await writeSignatureDocument(signaturePath as string, signed.document, output);
    say(
      `Signed ${signed.statement.name} ${signed.statement.version} (${packagePath}) with key ${options.keyId} (${signed.keyFingerprint}) through ${service.where}`,
    );
    printData(options, statementSigned(signaturePath as string, signed, options.keyId), signaturePath as string);
    return;
  }
  const signed = await withProgress(packagePath, (progress) => signPackage(packagePath, signer, { progress }));
  // The canonical document and a newline: exactly the answer (checked by the client).
  if (signaturePath) await writeSignatureDocument(signaturePath, signed.document, output);
  reportSignedWithKeyId(packagePath, signaturePath, { ...signed, keyId: options.keyId }, options);
}

async function uploadThroughService(packagePath: string, document: DetachedSignature, name: string, options: UploadOptions & ServiceOptions): Promise<void> {
  const service = await client(options);
  const result = await waitingFor('the signing service to receive, verify and store the upload', service, () =>
    service.upload(options.org, packagePath, document.toString(), { name, nameConflict: nameConflict(options) }),
  ).catch(nameTaken);
  report(packagePath, result, options);
}

/** A name given with --name is honoured or refused, never dropped; the file name (the default) yields to a stored name. */
function nameConflict(options: UploadOptions): NameConflict {
  if (options.rename) return 'rename';
  return options.name === undefined ? 'keep' : 'refuse';
}

/** A package stored under another name: the refusal says how to rename it. */
function nameTaken(error: unknown): never {
  if (error instanceof CloacinaSignError && error.code === 'ALREADY_EXISTS') {
    throw new CloacinaSignError('ALREADY_EXISTS', `${error.message} (--rename stores it under the name given)`);
  }
  throw error;
}

function report(packagePath: string, result: ApiUploadResult, options: UploadOptions): void {
  say(
    `Uploaded ${packagePath}${result.name === null ? '' : ` as ${JSON.stringify(result.name)}`} (${result.packageHash}), signed by ${result.keyFingerprint}: verified against the trust of ${options.org}, stored`,
  );
  printData(options, result, result.packageId);
}

/**
 * Without --api-url: the same checks and rows as the service, straight into the database (no KEK needed).
 * A version-1 document goes to package_signatures (Cloacina's), a version-2 one to package_statements.
 */
async function uploadIntoDatabase(packagePath: string, document: DocumentInfo, name: string, options: UploadOptions): Promise<void> {
  const [{ auditEvent, recordFailure }, { auditToDatabase }, { databaseTrust }, { uploadVerified }] = await Promise.all([
    import('../../audit/audit-trail'),
    import('../../audit/database-sink'),
    import('../../trust/database-trust'),
    import('../../verification/upload'),
  ]);
  await withDatabase(options, async ({ db, keys, lines, org }) => {
    const owner = await org(options.org);
    const fields = { orgId: owner.id, packagePath: name, signerFingerprint: document.keyFingerprint ?? null };
    let packageHash: string | null = null;
    let verified = false;
    const hashedAndStored = async () => {
      // SHA-256 always (packages are found by it); BLAKE3 too when the statement names it.
      const digests = await withProgress(packagePath, (progress) =>
        native.hashFileDigests(packagePath, { sha256: true, blake3: document.statement?.digestAlgorithm === 'blake3' }, nativeCounter(progress)),
      );
      const sha256 = digests.sha256 as string;
      packageHash = sha256;
      const upload = await uploadVerified(
        db,
        databaseTrust(db, { org: owner.id }),
        document,
        { label: packagePath, sha256, size: digests.size, blake3: digests.blake3 },
        {
          name,
          nameConflict: nameConflict(options),
          rows: auditToDatabase(db) as DatabaseAuditSink,
          event: () => {
            verified = true;
            return auditEvent({ eventType: 'package.uploaded', ...fields, packageHash: sha256, signatureVerified: true });
          },
        },
      );
      return { ...upload, packageHash: sha256 };
    };
    const uploaded = await hashedAndStored().catch(async (error: unknown) => {
      // A package that was not verified is a failed upload; one that was, but could not be stored, is refused as such.
      if (!verified) {
        await recordFailure(keys.audit, { eventType: 'package.upload.failure', ...fields, packageHash, signatureVerified: false }, error);
        throw error;
      }
      return nameTaken(error);
    });
    if (lines) {
      await lines.write(uploaded.event).catch((error: Error) => {
        throw new CloacinaSignError('AUDIT_FAILED', `the package was stored with its audit row, but the audit line could not be written: ${error.message}`);
      });
    }
    report(
      packagePath,
      {
        ...uploaded.stored,
        orgId: owner.id,
        packageHash: uploaded.packageHash,
        keyFingerprint: uploaded.verified.keyFingerprint,
        signedAt: uploaded.verified.signedAt,
        bytes: (await stat(packagePath)).size,
      },
      options,
    );
  });
}

export async function upload(packagePath: string, options: UploadOptions): Promise<void> {
  if (options.apiTimeout !== undefined && !options.apiUrl)
    throw new CloacinaSignError('USAGE', '--api-timeout bounds the wait for the signing service: give --api-url');
  const signaturePath = options.signature ?? DetachedSignature.defaultPath(packagePath);
  // Read (and checked) first: a missing or malformed signature is exit 1 before anything is sent or hashed; a
  // --signature file that is not there is a file that cannot be read (exit 2), most often a typo.
  const { namedFileError } = await import('../../verification/candidates');
  const read = native.readSignatureFile(signaturePath);
  const document = await (options.signature ? read.catch(namedFileError(signaturePath)) : read);
  if (document.kind === 'cosign')
    throw new CloacinaSignError('USAGE', `${signaturePath} is a cosign signature: uploads store Cloacina's documents (version 1 or 2)`);
  // The one name rule before the name reaches the service, the store or an audit row.
  const name = checkName(options.name ?? basename(packagePath), 'a package name');
  if (options.apiUrl) {
    if (document.version === 2)
      throw new CloacinaSignError('USAGE', `${signaturePath} is a version-2 document: the signing service stores version 1; upload it without --api-url`);
    return uploadThroughService(packagePath, DetachedSignature.parse(document.canonical), name, { ...options, apiUrl: options.apiUrl });
  }
  return uploadIntoDatabase(packagePath, document, name, options);
}
