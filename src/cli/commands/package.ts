// `cloacina-sign package sign|verify` (run and inspect: ./package-run)
import { Command } from 'commander';
import { CloacinaSignError } from '../../errors';
import { checkOutputFile, type OutputOptions } from '../../files';
import { readPrivateKeyFile } from '../../keys/key-files';
import { DetachedSignature } from '../../signing/detached-signature';
import { signPackage } from '../../signing/sign';
import { SignatureSource } from '../../verification/signature-source';
import type { VerificationResult } from '../../verification/verifier';
import { type DatabaseOptions, withDbOptions } from '../context';
import { errorCode, errorMessage, EXIT_OK, exitCodeFor, green, printData, reportError, runAction, say } from '../output';
import { withProgress } from '../progress';
import { collect, type TrustOptions, withLoader } from '../trust';
import { addRunCommands } from './package-run';
import { addUploadCommand } from './package-upload';

interface SignOptions extends DatabaseOptions {
  key?: string;
  keyId?: string;
  store?: boolean;
  output?: string;
  force?: boolean;
  allowInsecureKeyFile?: boolean;
  apiUrl?: string;
  allowInsecureHttp?: boolean;
}

interface VerifyOptions extends TrustOptions {
  signature?: string;
}

async function sign(packagePath: string, options: SignOptions): Promise<void> {
  if (options.key && options.keyId) throw new CloacinaSignError('USAGE', 'package sign takes --key (a key file) or --key-id (a database key), not both');
  if (options.apiUrl) {
    if (!options.keyId) throw new CloacinaSignError('USAGE', '--api-url signs with a database key held by the service: give --key-id');
    return (await import('./package-upload')).signThroughService(packagePath, { ...options, keyId: options.keyId, apiUrl: options.apiUrl });
  }
  if (options.keyId) return (await import('./package-db')).signWithDatabaseKey(packagePath, { ...options, keyId: options.keyId });
  return signWithKeyFile(packagePath, options);
}

async function signWithKeyFile(packagePath: string, options: SignOptions): Promise<void> {
  if (!options.key) throw new CloacinaSignError('USAGE', 'package sign needs --key <key.pem> or --key-id <id>');
  const privateKey = await readPrivateKeyFile(options.key, { allowInsecureKeyFile: options.allowInsecureKeyFile });
  // With --store (the signature kept in the database), a file is written only with --output, as with --key-id.
  const signaturePath = options.output ?? (options.store ? undefined : DetachedSignature.defaultPath(packagePath));
  const output = signatureOutput(packagePath, options, [{ path: options.key, what: 'the private key (--key)' }]);
  // Checked before hashing, so a refused output costs nothing; checked again when written.
  if (signaturePath) await checkOutputFile(signaturePath, output);
  if (options.store) return (await import('./package-upload')).signAndStore(packagePath, privateKey, signaturePath, output, options);
  if (!signaturePath) return;
  const info = await withProgress(packagePath, (progress) => signPackage(packagePath, privateKey, undefined, { progress }));
  await DetachedSignature.fromSignatureInfo(info).writeToFile(signaturePath, output);
  say(`Signed ${packagePath} with key ${info.keyFingerprint}`);
  printData(options, { signaturePath, packageHash: info.packageHash, keyFingerprint: info.keyFingerprint }, signaturePath);
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
    ...(error === undefined ? {} : { error: { code: errorCode(error), message: errorMessage(error) } }),
  };
}

/** Verifies every package (one after another); the exit code is the worst outcome: 2, then 1, then 0. */
async function verify(packagePaths: string[], options: VerifyOptions): Promise<void> {
  if (options.signature && packagePaths.length > 1)
    throw new CloacinaSignError('USAGE', '--signature names the signature of one package; give one package with it');
  const source = options.signature ? SignatureSource.DetachedFile(options.signature) : SignatureSource.Auto;
  await withLoader(options, true, async (loader) => {
    const results: Record<string, unknown>[] = [];
    let exitCode = EXIT_OK;
    for (const packagePath of packagePaths) {
      try {
        const result = await withProgress(packagePath, (progress) => loader.verify(packagePath, { signature: source, progress }));
        say(`${green('verified')} ${packagePath}: signed by ${result.signerFingerprint} at ${result.signedAt}`);
        if (!options.json) process.stdout.write(`verified ${result.packageHash}  ${packagePath}\n`);
        results.push(verifyResult(packagePath, result));
      } catch (error) {
        reportError(error);
        if (!options.json) process.stdout.write(`REJECTED ${errorCode(error)}  ${packagePath}\n`);
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
      .command('sign <package>')
      .description(
        'sign a package with a key file (--key) or a database key (--key-id; with --api-url through the signing service): writes a version-1 detached signature',
      )
      .option('--key <key.pem>', 'PKCS#8 PEM private key, accessible by its owner only (chmod 600)')
      .option('--key-id <id>', 'a signing key in the database; needs CLOACINA_KEY_ENCRYPTION_KEY (or, with --api-url, the service holds it)')
      .option('--api-url <url>', 'with --key-id: sign through the signing service (token from CLOACINA_API_TOKEN; no KEK, no database here)')
      .option('--store', 'store the signature in the database (then a file is written only with --output); with --key: needs --database')
      .option('--allow-insecure-http', 'allow an http:// --api-url that is not a loopback address (the token travels in clear text)')
      .option('--output <file.sig>', 'where to write the signature (default <package>.sig); an existing file is kept unless --force')
      .option('--force', 'replace an existing regular file (never the package itself, the --key file or any file holding a private key)')
      .option('--allow-insecure-key-file', 'read a --key file that group or others can access (refused by default, as ssh does)'),
  ).action((packagePath: string, options: SignOptions) => runAction(options, () => sign(packagePath, options)));
  withDbOptions(
    pkg
      .command('verify <packages...>')
      .description(
        'verify packages against pinned public keys (--trust-key) or what an organization trusts (--org); exit 0 all verified, 1 one was rejected, 2 usage or I/O error',
      )
      .option('--trust-key <pub.pem>', 'a public key you trust (SPKI PEM, DER or raw 32 bytes); repeatable; no database', collect)
      .option('--public-key <pub.pem>', 'the same as --trust-key', collect)
      .option('--org <org>', "verify against this organization's trust in the database (id or name)")
      .option('--signature <file.sig>', 'the detached signature of a single package (default <package>.sig, and with --org the stored signatures)'),
  ).action((packagePaths: string[], options: VerifyOptions) =>
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
