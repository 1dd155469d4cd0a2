// `cloacina-sign package sign|verify` (run and inspect: ./package-run)
import { Command } from 'commander';
import { CloacinaSignError } from '../../errors';
import { checkOutputFile, type OutputOptions } from '../../files';
import { readPrivateKeyFile } from '../../keys/key-files';
import { DetachedSignature } from '../../formats/v1';
import { writeSignatureDocument } from '../../formats/v2';
import { signPackage } from '../../signing/sign';
import { keySigner } from '../../signing/signers/key-signer';
import type { StatementOptions } from '../../signing/statement';
import { SignatureSource } from '../../verification/signature-source';
import type { VerificationResult } from '../../verification/verifier';
import { type DatabaseOptions, withDbOptions } from '../context';
import { errorCode, errorMessage, EXIT_OK, exitCodeFor, green, printData, reportError, runAction, say, terminalSafe } from '../output';
import { withProgress } from '../progress';
import { addPackageCheckOptions, formatOf, type PackageCheckOptions } from '../package-checks';
import { addPolicyOptions, collect, type TrustOptions, withLoader } from '../trust';
import { addRunCommands } from './package-run';
import { addUploadCommand, API_TIMEOUT_HELP, apiTimeoutSeconds } from './package-upload';

interface SignCommandOptions extends DatabaseOptions {
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

interface PackageVerifyOptions extends TrustOptions, PackageCheckOptions {
  signature?: string;
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
async function signEach(packagePaths: string[], options: SignCommandOptions): Promise<void> {
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
  // With --store (the signature kept in the database), a version-1 file is written only with --output, as with --key-id.
  const signaturePath = options.output ?? (options.store && !statement ? undefined : DetachedSignature.defaultPath(packagePath));
  const output = signatureOutput(packagePath, options, [{ path: options.key, what: 'the private key (--key)' }]);
  // Checked before hashing, so a refused output costs nothing; checked again when written.
  if (signaturePath) await checkOutputFile(signaturePath, output);
  if (statement) {
    const { statementSigned, storeStatementSignedWithKeyFile } = await import('./package-db');
    if (options.store) return storeStatementSignedWithKeyFile(packagePath, privateKey, statement, signaturePath as string, output, options);
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

/**
 * Where `package sign` may write: not over an existing file without --force, and never (not even with
 * it) over the package being signed, a private key file, or `protect`.
 */
export function signatureOutput(packagePath: string, options: { force?: boolean }, protect: { path: string; what: string }[] = []): OutputOptions {
  return { overwrite: Boolean(options.force), protectPrivateKeys: true, protect: [{ path: packagePath, what: 'the package being signed' }, ...protect] };
}

/** One package's outcome, in `package verify --json`. */
function verifyResult(packagePath: string, result?: VerificationResult, error?: unknown): Record<string, unknown> {
  return {
    package: packagePath,
    verified: error === undefined,
    packageHash: result?.packageHash ?? null,
    keyFingerprint: result?.signerFingerprint ?? null,
    signedAt: result?.signedAt ?? null,
    ...(result
      ? {
          documentVersion: result.documentVersion,
          signatureFormat: result.signatureFormat,
          digestAlgorithm: result.digestAlgorithm,
          statement: result.statement,
        }
      : {}),
    ...(error === undefined ? {} : { error: { code: errorCode(error), message: errorMessage(error) } }),
  };
}

/** Verifies every package (one after another); the exit code is the worst outcome: 2, then 1, then 0. */
async function verify(packagePaths: string[], options: PackageVerifyOptions): Promise<void> {
  if (options.signature && packagePaths.length > 1)
    throw new CloacinaSignError('USAGE', '--signature names the signature of one package; give one package with it');
  const source = options.signature ? SignatureSource.DetachedFile(options.signature) : SignatureSource.Auto;
  await withLoader(options, true, async (loader) => {
    const results: Record<string, unknown>[] = [];
    let exitCode = EXIT_OK;
    for (const packagePath of packagePaths) {
      // A file name is anyone's choice: it reaches the terminal with its control characters escaped.
      const shownPath = terminalSafe(packagePath);
      try {
        // The format is checked on the verified bytes themselves (a sealed copy), when one is required.
        const format = formatOf(packagePath, options, 'any');
        const checks = { format: format === 'any' ? undefined : format, maxPackageBytes: options.maxSize };
        const result = await withProgress(packagePath, (progress) => loader.verify(packagePath, { signature: source, progress, ...checks }));
        const what = result.statement
          ? ` ${result.statement.name} ${result.statement.version}${result.statement.expiresAt ? ` (valid until ${result.statement.expiresAt})` : ''}`
          : '';
        const when = result.signedAt === null ? ' (a cosign signature, ECDSA P-256)' : ` at ${result.signedAt}`;
        say(`${green('verified')} ${shownPath}${what}: signed by ${result.signerFingerprint}${when}`);
        if (!options.json) process.stdout.write(`verified ${result.packageHash}  ${shownPath}\n`);
        results.push(verifyResult(packagePath, result));
      } catch (error) {
        reportError(error);
        if (!options.json) process.stdout.write(`REJECTED ${errorCode(error)}  ${shownPath}\n`);
        results.push(verifyResult(packagePath, undefined, error));
        exitCode = Math.max(exitCode, exitCodeFor(error));
      }
    }
    if (options.json) printData(options, { verified: exitCode === EXIT_OK, results }, '');
    process.exitCode = exitCode;
  });
}

export function packageCommand(): Command {
  const pkg = new Command('package').description('sign, verify, inspect and run workflow packages');
  withDbOptions(
    pkg
      .command('sign <packages...>')
      .description(
        "sign a package with a key file (--key) or a database key (--key-id; with --api-url through the signing service): writes a detached signature, version 1 (Cloacina's format, the default) or 2 (a signed statement: --format v2 --name --version); several packages at once through the signing service (--key-id --api-url, version 1, each into <package>.sig)",
      )
      .option(
        '--format <v1|v2>',
        'v1: the signature covers the SHA-256 digest only (default); v2: a signed statement of name, version, size, digest and expiry',
      )
      .option('--name <name>', 'v2: the package name the statement signs')
      .option('--version <version>', 'v2: the package version (SemVer 2.0.0) the statement signs')
      .option('--organization <org>', 'v2: the organization the package is for (signed when given)')
      .option('--expires <time>', 'v2: when the signature stops being valid: an RFC 3339 time or a duration (90d, 12h, 30m, 45s)')
      .option('--digest <blake3|sha256>', 'v2: the digest the statement names (default blake3: hashes one file on every core)')
      .option('--key <key.pem>', 'PKCS#8 PEM private key, accessible by its owner only (chmod 600)')
      .option('--key-id <id>', 'a signing key in the database; needs CLOACINA_KEY_ENCRYPTION_KEY (or, with --api-url, the service holds it)')
      .option('--kek-file <path>', 'with --key-id: read the KEK from this file (as CLOACINA_KEY_ENCRYPTION_KEY_FILE: 0600, owned by the user)')
      .option('--api-url <url>', 'with --key-id: sign through the signing service (token from CLOACINA_API_TOKEN; no KEK, no database here)')
      .option('--store', 'store the signature in the database (then a file is written only with --output); with --key: needs --database')
      .option('--api-timeout <seconds>', API_TIMEOUT_HELP, apiTimeoutSeconds)
      .option('--allow-insecure-http', 'allow an http:// --api-url that is not a loopback address (the token travels in clear text)')
      .option('--output <file.sig>', 'where to write the signature (default <package>.sig); an existing file is kept unless --force')
      .option('--force', 'replace an existing regular file (never the package itself, the --key file or any file holding a private key)')
      .option('--allow-insecure-key-file', 'read a --key file that group or others can access (refused by default, as ssh does)'),
  ).action((packagePaths: string[], options: SignCommandOptions) => runAction(options, () => signEach(packagePaths, options)));
  addPolicyOptions(
    withDbOptions(
      addPackageCheckOptions(pkg.command('verify <packages...>'), 'any')
        .description(
          'verify packages against pinned public keys (--trust-key) or what an organization trusts (--org); exit 0 all verified, 1 one was rejected, 2 usage or I/O error',
        )
        .option(
          '--trust-key <pub.pem>',
          'a public key you trust: Ed25519 (SPKI PEM, DER or raw 32 bytes) or ECDSA P-256 (cosign.pub, SPKI PEM or DER); repeatable; no database',
          collect,
        )
        .option('--public-key <pub.pem>', 'the same as --trust-key', collect)
        .option('--org <org>', "verify against this organization's trust in the database (id or name)")
        .option(
          '--signature <file.sig>',
          "the detached signature of a single package: Cloacina's JSON document or a cosign sign-blob signature (default <package>.sig, and with --org the stored signatures)",
        ),
    ),
  ).action((packagePaths: string[], options: PackageVerifyOptions) =>
    runAction(
      options,
      () => verify(packagePaths, options),
      (error) => ({ verified: false, results: [], error }),
    ),
  );
  addRunCommands(pkg);
  addUploadCommand(pkg);
  return pkg;
}
