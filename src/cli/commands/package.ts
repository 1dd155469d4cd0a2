// `cloacina-sign package sign|verify`
import { Command } from 'commander';
import { CloacinaSignError } from '../../errors';
import { readPrivateKeyFile, readPublicKeyFile } from '../../keys/key-files';
import { DetachedSignature } from '../../signing/detached-signature';
import { signPackage } from '../../signing/sign';
import { verifyPackageOffline } from '../../verification/offline';
import { DatabaseOptions, withDbOptions } from '../context';
import { green, OutputOptions, printData, runAction, say } from '../output';
import { withProgress } from '../progress';
import { addRunCommands } from './package-run';

interface SignOptions extends DatabaseOptions {
  key?: string;
  keyId?: string;
  store?: boolean;
  output?: string;
}

interface VerifyOptions extends DatabaseOptions {
  publicKey?: string;
  org?: string;
  signature?: string;
}

async function sign(packagePath: string, options: SignOptions): Promise<void> {
  if (options.key && options.keyId) throw new CloacinaSignError('USAGE', 'package sign takes --key (a key file) or --key-id (a database key), not both');
  if (options.keyId) return (await import('./package-db')).signWithDatabaseKey(packagePath, { ...options, keyId: options.keyId });
  if (options.store) throw new CloacinaSignError('USAGE', '--store needs --key-id');
  return signWithKeyFile(packagePath, options);
}

async function signWithKeyFile(packagePath: string, options: SignOptions): Promise<void> {
  if (!options.key) throw new CloacinaSignError('USAGE', 'package sign needs --key <key.pem> or --key-id <id>');
  const privateKey = await readPrivateKeyFile(options.key);
  const info = await withProgress(packagePath, (progress) => signPackage(packagePath, privateKey, undefined, { progress }));
  const signaturePath = options.output ?? DetachedSignature.defaultPath(packagePath);
  await DetachedSignature.fromSignatureInfo(info).writeToFile(signaturePath);
  say(`Signed ${packagePath} with key ${info.keyFingerprint}`);
  printData(options, { signaturePath, packageHash: info.packageHash, keyFingerprint: info.keyFingerprint }, signaturePath);
}

/** The verify JSON shape, the same for success and failure, offline or with a database. */
export function verifyJson(
  result: { packageHash?: string; signerFingerprint?: string; signedAt?: string } | undefined,
  error?: { code: string; message: string },
): Record<string, unknown> {
  return {
    verified: error === undefined,
    packageHash: result?.packageHash ?? null,
    keyFingerprint: result?.signerFingerprint ?? null,
    signedAt: result?.signedAt ?? null,
    ...(error ? { error } : {}),
  };
}

export function reportVerified(
  options: OutputOptions,
  packagePath: string,
  result: { packageHash: string; signerFingerprint: string; signedAt: string },
): void {
  say(`${green('verified')} ${packagePath}: signed by ${result.signerFingerprint} at ${result.signedAt}`);
  printData(options, verifyJson(result), `verified ${result.packageHash}`);
}

async function verify(packagePath: string, options: VerifyOptions): Promise<void> {
  if (options.org && options.publicKey) throw new CloacinaSignError('USAGE', 'package verify takes --public-key or --org, not both');
  if (options.org) return (await import('./package-db')).verifyWithDatabase(packagePath, { ...options, org: options.org });
  return verifyWithKeyFile(packagePath, options);
}

async function verifyWithKeyFile(packagePath: string, options: VerifyOptions): Promise<void> {
  if (!options.publicKey) throw new CloacinaSignError('USAGE', 'package verify needs --public-key <pub.pem> or --org <org>');
  const publicKey = await readPublicKeyFile(options.publicKey);
  const signaturePath = options.signature ?? DetachedSignature.defaultPath(packagePath);
  const result = await withProgress(packagePath, (progress) =>
    verifyPackageOffline(packagePath, signaturePath, publicKey, { progress }),
  );
  reportVerified(options, packagePath, result);
}

export function packageCommand(): Command {
  const pkg = new Command('package').description('sign, verify, inspect and run workflow packages');
  withDbOptions(
    pkg
      .command('sign <package>')
      .description('sign a package with a key file (--key) or a database key (--key-id): writes a version-1 detached signature')
      .option('--key <key.pem>', 'PKCS#8 PEM private key')
      .option('--key-id <id>', 'a signing key in the database; needs CLOACINA_KEY_ENCRYPTION_KEY')
      .option('--store', 'with --key-id: store the signature in the database (then a file is written only with --output)')
      .option('--output <file.sig>', 'where to write the signature (default <package>.sig)'),
  ).action((packagePath: string, options: SignOptions) => runAction(options, () => sign(packagePath, options)));
  withDbOptions(
    pkg
      .command('verify <package>')
      .description('verify a package against a public key (--public-key) or what an organization trusts (--org); exit 0 verified, 1 rejected, 2 usage or I/O error')
      .option('--public-key <pub.pem>', 'SPKI PEM public key of the signer you trust')
      .option('--org <org>', "verify against this organization's trust in the database (id or name)")
      .option('--signature <file.sig>', 'the detached signature (default <package>.sig; with --org, else the stored signatures)'),
  ).action((packagePath: string, options: VerifyOptions) =>
    runAction(options, () => verify(packagePath, options), (error) => verifyJson(undefined, error)),
  );
  addRunCommands(pkg);
  return pkg;
}
