// The CLI side of the signing service and of stored signatures: `package upload` (through the service with
// --api-url, or directly into the database), `package sign --key-id --api-url` (the key never leaves the
// service; only the digest travels) and `package sign --key --store` (a key file, the signature stored).
// The token comes from CLOACINA_API_TOKEN, never from the command line.
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { DatabaseAuditSink } from '../../audit/database-sink';
import { native } from '../../native';
import { nativeCounter } from '../../progress';
import type { ApiUploadResult, SigningServiceClient } from '../../signing/api-client';
import type { StatementOptions } from '../../signing/statement';
import { CloacinaSignError } from '../../errors';
import { checkOutputFile, type OutputOptions } from '../../files';
import { hashFile } from '../../hashing';
import { DetachedSignature } from '../../signing/detached-signature';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { printData, runAction, say } from '../output';
import { withProgress } from '../progress';
import { signatureOutput } from './package';

interface ServiceOptions {
  apiUrl: string;
  allowInsecureHttp?: boolean;
}

export interface ApiSignOptions extends ServiceOptions, DatabaseOptions {
  keyId: string;
  store?: boolean;
  output?: string;
  force?: boolean;
}

interface UploadOptions extends DatabaseOptions {
  signature?: string;
  org: string;
  apiUrl?: string;
  name?: string;
  allowInsecureHttp?: boolean;
}

async function client(options: ServiceOptions) {
  const { apiTokenFromEnv, SigningServiceClient } = await import('../../signing/api-client');
  return new SigningServiceClient({ url: options.apiUrl, token: apiTokenFromEnv(), allowInsecureHttp: options.allowInsecureHttp });
}

/** `package sign <pkg> --key <key.pem> --store [--output <f.sig>]`: signed here, the signature stored in the database (no KEK needed). */
export async function signAndStore(
  packagePath: string,
  privateKey: Buffer,
  signaturePath: string | undefined,
  output: OutputOptions,
  options: DatabaseOptions,
): Promise<void> {
  const [{ signPackage }, { DbPackageSigner }] = await Promise.all([import('../../signing/sign'), import('../../signing/db-signer')]);
  await withDatabase(options, async ({ keys }) => {
    const info = await withProgress(packagePath, (progress) => signPackage(packagePath, privateKey, undefined, { progress }));
    const stored = await new DbPackageSigner(keys).storeSignature(info, { packagePath });
    await keys.audit.record({
      eventType: 'package.signed',
      packagePath,
      packageHash: info.packageHash,
      signerFingerprint: info.keyFingerprint,
      reason: 'signed with a key file; signature stored',
    });
    if (signaturePath) await DetachedSignature.fromSignatureInfo(info).writeToFile(signaturePath, output);
    say(`Signed ${packagePath} with key ${info.keyFingerprint}, stored${signaturePath ? `, wrote ${signaturePath}` : ''}`);
    printData(
      options,
      { id: stored.id, signaturePath: signaturePath ?? null, packageHash: info.packageHash, keyFingerprint: info.keyFingerprint, signedAt: info.signedAt },
      signaturePath ?? stored.id,
    );
  });
}

/**
 * `package sign <pkg> --key-id <id> --api-url <url> [--format v2 ...]`: hashed here, signed by the service,
 * written byte for byte as it answered.
 */
export async function signThroughService(packagePath: string, options: ApiSignOptions, statement?: StatementOptions): Promise<void> {
  const service = await client(options);
  const signaturePath = options.output ?? (options.store ? undefined : DetachedSignature.defaultPath(packagePath));
  const output = signatureOutput(packagePath, options);
  // Before anything is hashed or signed: a refused output costs nothing.
  if (signaturePath) await checkOutputFile(signaturePath, output);
  if (statement) return signStatementThroughService(packagePath, service, options, statement, signaturePath as string, output);
  const packageHash = await withProgress(packagePath, (progress) => hashFile(packagePath, { progress }));
  const { signature } = await service.sign(options.keyId, packageHash, { store: options.store });
  // writeToFile writes the canonical document and a newline: exactly the answer (checked by the client).
  if (signaturePath) await signature.writeToFile(signaturePath, output);
  say(
    `Signed ${packagePath} with key ${options.keyId} (${signature.keyFingerprint}) through ${service.where}${options.store ? ', stored' : ''}${signaturePath ? `, wrote ${signaturePath}` : ''}`,
  );
  printData(
    options,
    {
      signaturePath: signaturePath ?? null,
      packageHash: signature.packageHash,
      keyFingerprint: signature.keyFingerprint,
      keyId: options.keyId,
      signedAt: signature.signedAt,
      stored: Boolean(options.store),
    },
    signaturePath ?? signature.packageHash,
  );
}

async function signStatementThroughService(
  packagePath: string,
  service: SigningServiceClient,
  options: ApiSignOptions,
  statement: StatementOptions,
  signaturePath: string,
  output: OutputOptions,
): Promise<void> {
  const [{ expiryTime, writeSignatureDocument }, { statementSigned }] = await Promise.all([import('../../signing/statement'), import('./package-db')]);
  const digestAlgorithm = statement.digest ?? 'blake3';
  // The expiry is fixed here (a duration counts from now), before the package is hashed.
  const expiresAt = statement.expires === undefined ? undefined : expiryTime(statement.expires);
  const digests = await withProgress(packagePath, (progress) =>
    native.hashFileDigests(packagePath, { sha256: digestAlgorithm === 'sha256', blake3: digestAlgorithm === 'blake3' }, nativeCounter(progress)),
  );
  const digest = (digestAlgorithm === 'sha256' ? digests.sha256 : digests.blake3) as string;
  const signed = await service.signStatement(options.keyId, digest, {
    name: statement.name,
    version: statement.version,
    ...(statement.organization !== undefined ? { organization: statement.organization } : {}),
    size: digests.size,
    digestAlgorithm,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  });
  await writeSignatureDocument(signaturePath, signed.document, output);
  say(
    `Signed ${signed.statement.name} ${signed.statement.version} (${packagePath}) with key ${options.keyId} (${signed.keyFingerprint}) through ${service.where}`,
  );
  printData(options, statementSigned(signaturePath, signed, options.keyId), signaturePath);
}

async function uploadThroughService(packagePath: string, document: DetachedSignature, name: string, options: UploadOptions & ServiceOptions): Promise<void> {
  const service = await client(options);
  const result = await service.upload(options.org, packagePath, document.toString(), { name });
  report(packagePath, result, options);
}

function report(packagePath: string, result: ApiUploadResult, options: UploadOptions): void {
  say(`Uploaded ${packagePath} (${result.packageHash}), signed by ${result.keyFingerprint}: verified against the trust of ${options.org}, stored`);
  printData(options, result, result.packageId);
}

/** Without --api-url: the same checks and rows as the service, straight into the database (no KEK needed). */
async function uploadIntoDatabase(packagePath: string, document: DetachedSignature, name: string, options: UploadOptions): Promise<void> {
  const [{ auditEvent, recordFailure }, { auditToDatabase }, { databaseTrust }, { decideDigest }, { SignatureSource }, { storeSignedPackage }] =
    await Promise.all([
      import('../../audit/audit-trail'),
      import('../../audit/database-sink'),
      import('../../trust/database-trust'),
      import('../../verification/verifier'),
      import('../../verification/signature-source'),
      import('../../service/package-store'),
    ]);
  await withDatabase(options, async ({ db, keys, lines, org }) => {
    const owner = await org(options.org);
    const fields = { orgId: owner.id, packagePath: name, signerFingerprint: document.keyFingerprint };
    let packageHash: string | null = null;
    let verified: Awaited<ReturnType<typeof decideDigest>>;
    try {
      packageHash = await withProgress(packagePath, (progress) => hashFile(packagePath, { progress }));
      verified = await decideDigest(databaseTrust(db, { org: owner.id }), packageHash, SignatureSource.Memory(document.toString()), { label: packagePath });
    } catch (error) {
      await recordFailure(keys.audit, { eventType: 'package.upload.failure', ...fields, packageHash, signatureVerified: false }, error);
      throw error;
    }
    const event = auditEvent({ eventType: 'package.uploaded', ...fields, packageHash, signatureVerified: true });
    const stored = await storeSignedPackage(db, auditToDatabase(db) as DatabaseAuditSink, document, { name, event });
    if (lines) {
      await lines.write(event).catch((error: Error) => {
        throw new CloacinaSignError('AUDIT_FAILED', `the package was stored with its audit row, but the audit line could not be written: ${error.message}`);
      });
    }
    report(
      packagePath,
      { ...stored, orgId: owner.id, packageHash, keyFingerprint: verified.keyFingerprint, signedAt: verified.signedAt, bytes: (await stat(packagePath)).size },
      options,
    );
  });
}

async function upload(packagePath: string, options: UploadOptions): Promise<void> {
  const signaturePath = options.signature ?? DetachedSignature.defaultPath(packagePath);
  // Read (and checked) first: a missing or malformed signature is exit 1 before anything is sent or hashed.
  const document = await DetachedSignature.readFromFile(signaturePath);
  const name = options.name ?? basename(packagePath);
  if (options.apiUrl) return uploadThroughService(packagePath, document, name, { ...options, apiUrl: options.apiUrl });
  return uploadIntoDatabase(packagePath, document, name, options);
}

export function addUploadCommand(pkg: Command): void {
  withDbOptions(
    pkg
      .command('upload <package>')
      .description(
        "register a package with its signature: verified against the organization's trust, then stored (the package record and the signature); nothing is stored when it does not verify (exit 1)",
      )
      .requiredOption('--org <org>', 'the organization (id or name); through the service, the API token must belong to it')
      .option('--signature <file.sig>', 'the detached signature (default <package>.sig)')
      .option('--api-url <url>', 'upload through the signing service (token from CLOACINA_API_TOKEN); without it, straight into --database')
      .option('--name <name>', "the package's name (default: its file name)")
      .option('--allow-insecure-http', 'allow an http:// --api-url that is not a loopback address (the token travels in clear text)'),
  ).action((packagePath: string, options: UploadOptions) => runAction(options, () => upload(packagePath, options)));
}
