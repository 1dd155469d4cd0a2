// The CLI side of the signing service and of stored signatures: `package upload` (through the service with
// --api-url, or directly into the database), `package sign --key-id --api-url` (the key never leaves the
// service; only the digest travels) and `package sign --key --store` (a key file, the signature stored).
// The token comes from CLOACINA_API_TOKEN, never from the command line.
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { DatabaseAuditSink } from '../../audit/database-sink';
import { type DocumentInfo, native } from '../../native';
import { nativeCounter } from '../../progress';
import type { ApiUploadResult, SigningServiceClient } from '../../signing/api-client';
import type { StatementOptions } from '../../signing/statement';
import type { NameConflict } from '../../db/packages';
import { CloacinaSignError } from '../../errors';
import { checkName } from '../../names';
import { checkOutputFile } from '../../files';
import { DetachedSignature } from '../../formats/v1';
import { writeSignatureDocument } from '../../formats/v2';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { printData, runAction, say } from '../output';
import { withProgress } from '../progress';
import { signatureOutput } from './package';

export interface ServiceOptions {
  apiUrl: string;
  /** --api-timeout: the longest silence of the service, in seconds (default 30). */
  apiTimeout?: number;
  allowInsecureHttp?: boolean;
}

const DEFAULT_API_TIMEOUT_SECONDS = 30;
const MAX_API_TIMEOUT_SECONDS = 3600;
/** How long a person at a terminal waits in silence before being told what for. */
const WAITING_NOTICE_MS = 2000;

/** --api-timeout <seconds>: a positive number of seconds, at most an hour. */
export function apiTimeoutSeconds(value: string): number {
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_API_TIMEOUT_SECONDS) {
    throw new InvalidArgumentError(`must be a number of seconds greater than 0 and at most ${MAX_API_TIMEOUT_SECONDS}`);
  }
  return seconds;
}

export const API_TIMEOUT_HELP = `with --api-url: give up when the signing service is silent this long (default ${DEFAULT_API_TIMEOUT_SECONDS} s)`;

/**
 * Runs `work` (a request to the service); when it takes longer than 2 s and a person watches stderr,
 * says what is awaited and for how long at most, so a slow or unreachable service is no silent hang.
 */
async function waitingFor<T>(what: string, service: SigningServiceClient, work: () => Promise<T>): Promise<T> {
  if (!process.stderr.isTTY) return work();
  const seconds = service.timeoutMs / 1000;
  const timer = setTimeout(
    () => say(`waiting for ${what} at ${service.where} (giving up after ${seconds} s without an answer: --api-timeout)`),
    WAITING_NOTICE_MS,
  );
  try {
    return await work();
  } finally {
    clearTimeout(timer);
  }
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
  apiTimeout?: number;
  name?: string;
  rename?: boolean;
  allowInsecureHttp?: boolean;
}

export async function client(options: ServiceOptions) {
  const { apiTokenFromEnv, SigningServiceClient } = await import('../../signing/api-client');
  return new SigningServiceClient({
    url: options.apiUrl,
    token: apiTokenFromEnv(),
    allowInsecureHttp: options.allowInsecureHttp,
    timeoutMs: (options.apiTimeout ?? DEFAULT_API_TIMEOUT_SECONDS) * 1000,
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
  const [{ signPackage }, { serviceSigner }, { reportSignedWithKeyId, statementSigned }] = await Promise.all([
    import('../../signing/sign'),
    import('../../signing/signers/service-signer'),
    import('./package-db'),
  ]);
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
  const [{ auditEvent, recordFailure }, { auditToDatabase }, { databaseTrust }, { decideDigest }, { SignatureSource }, { storeDocument }] = await Promise.all([
    import('../../audit/audit-trail'),
    import('../../audit/database-sink'),
    import('../../trust/database-trust'),
    import('../../verification/verifier'),
    import('../../verification/signature-source'),
    import('../../db/packages'),
  ]);
  await withDatabase(options, async ({ db, keys, lines, org }) => {
    const owner = await org(options.org);
    const fields = { orgId: owner.id, packagePath: name, signerFingerprint: document.keyFingerprint ?? null };
    let packageHash: string | null = null;
    let verified: Awaited<ReturnType<typeof decideDigest>>;
    try {
      // SHA-256 always (packages are found by it); BLAKE3 too when the statement names it.
      const digests = await withProgress(packagePath, (progress) =>
        native.hashFileDigests(packagePath, { sha256: true, blake3: document.statement?.digestAlgorithm === 'blake3' }, nativeCounter(progress)),
      );
      packageHash = digests.sha256 as string;
      verified = await decideDigest(databaseTrust(db, { org: owner.id }), packageHash, SignatureSource.Memory(document.canonical), {
        label: packagePath,
        size: digests.size,
        blake3: digests.blake3,
      });
    } catch (error) {
      await recordFailure(keys.audit, { eventType: 'package.upload.failure', ...fields, packageHash, signatureVerified: false }, error);
      throw error;
    }
    const event = auditEvent({ eventType: 'package.uploaded', ...fields, packageHash, signatureVerified: true });
    const rows = auditToDatabase(db) as DatabaseAuditSink;
    const stored = await storeDocument(db, document, { packageHash, name, nameConflict: nameConflict(options), audit: { rows, event } }).catch(nameTaken);
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
      .option('--name <name>', "the package's name (default: its file name); a package stored under another name is refused unless --rename")
      .option('--rename', 'when this package is stored under another name already, rename it to --name (or its file name)')
      .option('--api-timeout <seconds>', API_TIMEOUT_HELP, apiTimeoutSeconds)
      .option('--allow-insecure-http', 'allow an http:// --api-url that is not a loopback address (the token travels in clear text)'),
  ).action((packagePath: string, options: UploadOptions) => runAction(options, () => upload(packagePath, options)));
}
