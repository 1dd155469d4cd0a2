// `cloacina-sign package sign`: one package with a key file (--key) or a database key (--key-id, here or
// through the signing service), or several through the signing service.
import { CloacinaSignError } from '../../errors';
import { checkOutputFile } from '../../files';
import { writeSignatureDocument } from '../../formats/v2';
import { readPrivateKeyFile } from '../../keys/key-files';
import { signPackage } from '../../signing/sign';
import { keySigner } from '../../signing/signers/key-signer';
import type { StatementOptions } from '../../signing/statement';
import type { DatabaseOptions } from '../context';
import { printData, say } from '../output';
import { withProgress } from '../progress';
import { signatureOutput, signaturePathFor, statementSigned } from './sign-output';

export interface SignCommandOptions extends DatabaseOptions {
  format?: string;
  name?: string;
  version?: string;
  organization?: string;
  expires?: string;
  digest?: string;
  key?: string;
  keyId?: string;
  store?: boolean;
  output?: string;
  force?: boolean;
  allowInsecureKeyFile?: boolean;
  apiUrl?: string;
  apiTimeout?: number;
  allowInsecureHttp?: boolean;
}

/** The version-2 statement the options describe; undefined for version 1 (where its options are refused). */
function statementFrom(options: SignCommandOptions): StatementOptions | undefined {
  const format = options.format ?? 'v1';
  if (format !== 'v1' && format !== 'v2') throw new CloacinaSignError('USAGE', '--format must be v1 or v2');
  const statementFlags = (['name', 'version', 'organization', 'expires', 'digest'] as const).filter((flag) => options[flag] !== undefined);
  if (format === 'v1') {
    if (statementFlags.length > 0) {
      const flags = statementFlags.map((f) => `--${f}`).join(', ');
      throw new CloacinaSignError('USAGE', `${flags} ${statementFlags.length === 1 ? 'describes' : 'describe'} a signed statement: add --format v2`);
    }
    return undefined;
  }
  if (!options.name || !options.version) throw new CloacinaSignError('USAGE', '--format v2 needs --name <package name> and --version <semver version>');
  if (options.digest !== undefined && options.digest !== 'blake3' && options.digest !== 'sha256')
    throw new CloacinaSignError('USAGE', '--digest must be blake3 or sha256');
  if (options.store && options.apiUrl)
    throw new CloacinaSignError('USAGE', '--format v2 --store signs here (--key or --key-id): the signing service stores version-1 signatures only');
  return {
    name: options.name,
    version: options.version,
    organization: options.organization,
    expires: options.expires,
    digest: options.digest as StatementOptions['digest'],
  };
}

async function sign(packagePath: string, options: SignCommandOptions): Promise<void> {
  if (options.key && options.keyId) throw new CloacinaSignError('USAGE', 'package sign takes --key (a key file) or --key-id (a database key), not both');
  const statement = statementFrom(options);
  if (options.apiTimeout !== undefined && !options.apiUrl)
    throw new CloacinaSignError('USAGE', '--api-timeout bounds the wait for the signing service: give --api-url');
  if (options.apiUrl) {
    if (!options.keyId) throw new CloacinaSignError('USAGE', '--api-url signs with a database key held by the service: give --key-id');
    return (await import('./package-upload')).signThroughService(packagePath, { ...options, keyId: options.keyId, apiUrl: options.apiUrl }, statement);
  }
  if (options.keyId) return (await import('./package-db')).signWithDatabaseKey(packagePath, { ...options, keyId: options.keyId }, statement);
  return signWithKeyFile(packagePath, options, statement);
}

/** One package as always; several only through the signing service (--key-id --api-url), as version 1, in batches. */
export async function signEach(packagePaths: string[], options: SignCommandOptions): Promise<void> {
  if (packagePaths.length === 1) return sign(packagePaths[0], options);
  if (!options.apiUrl || !options.keyId)
    throw new CloacinaSignError('USAGE', 'several packages are signed through the signing service: give --key-id and --api-url');
  if (options.format === 'v2' || options.store || options.output)
    throw new CloacinaSignError(
      'USAGE',
      'several packages are signed as version 1, each into <package>.sig: --format v2, --store and --output sign one package',
    );
  statementFrom(options);
  return (await import('./package-sign-batch')).signSeveralThroughService(packagePaths, { ...options, keyId: options.keyId, apiUrl: options.apiUrl });
}

/** `package sign --key <key.pem>`: signed here, version 1 or (with a statement) 2; with --store kept in the database too. */
async function signWithKeyFile(packagePath: string, options: SignCommandOptions, statement?: StatementOptions): Promise<void> {
  if (!options.key) throw new CloacinaSignError('USAGE', 'package sign needs --key <key.pem> or --key-id <id>');
  const privateKey = await readPrivateKeyFile(options.key, { allowInsecureKeyFile: options.allowInsecureKeyFile });
  const signaturePath = signaturePathFor(packagePath, options, statement);
  const output = signatureOutput(packagePath, options, [{ path: options.key, what: 'the private key (--key)' }]);
  // Checked before hashing, so a refused output costs nothing; checked again when written.
  if (signaturePath) await checkOutputFile(signaturePath, output);
  if (statement) {
    if (options.store)
      return (await import('./package-db')).storeStatementSignedWithKeyFile(packagePath, privateKey, statement, signaturePath as string, output, options);
    const signed = await withProgress(packagePath, (progress) => signPackage(packagePath, keySigner(privateKey), { format: 'v2', statement, progress }));
    await writeSignatureDocument(signaturePath as string, signed.document, output);
    say(`Signed ${signed.statement.name} ${signed.statement.version} (${packagePath}) with key ${signed.keyFingerprint}`);
    printData(options, statementSigned(signaturePath as string, signed), signaturePath as string);
    return;
  }
  if (options.store) return (await import('./package-db')).signAndStore(packagePath, privateKey, signaturePath, output, options);
  const info = await withProgress(packagePath, (progress) => signPackage(packagePath, keySigner(privateKey), { progress }));
  await writeSignatureDocument(signaturePath as string, info.document, output);
  say(`Signed ${packagePath} with key ${info.keyFingerprint}`);
  printData(options, { signaturePath, packageHash: info.packageHash, keyFingerprint: info.keyFingerprint }, signaturePath as string);
}
