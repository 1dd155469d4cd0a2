// `cloacina-sign package sign|verify`
import { Command } from 'commander';
import { CloacinaSignError } from '../../errors';
import { readPrivateKeyFile, readPublicKeyFile } from '../../keys/key-files';
import { DetachedSignature } from '../../signing/detached-signature';
import { signPackage } from '../../signing/sign';
import { verifyPackageOffline } from '../../verification/offline';
import { green, OutputOptions, printData, runAction, say } from '../output';
import { withProgress } from '../progress';

interface SignOptions extends OutputOptions {
  key?: string;
  output?: string;
}

interface VerifyOptions extends OutputOptions {
  publicKey?: string;
  signature?: string;
}

async function signWithKeyFile(packagePath: string, options: SignOptions): Promise<void> {
  if (!options.key) throw new CloacinaSignError('USAGE', 'package sign needs --key <key.pem>');
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

async function verifyWithKeyFile(packagePath: string, options: VerifyOptions): Promise<void> {
  if (!options.publicKey) throw new CloacinaSignError('USAGE', 'package verify needs --public-key <pub.pem>');
  const publicKey = await readPublicKeyFile(options.publicKey);
  const signaturePath = options.signature ?? DetachedSignature.defaultPath(packagePath);
  const result = await withProgress(packagePath, (progress) =>
    verifyPackageOffline(packagePath, signaturePath, publicKey, { progress }),
  );
  reportVerified(options, packagePath, result);
}

export function packageCommand(): Command {
  const pkg = new Command('package').description('sign and verify workflow packages');
  pkg
    .command('sign <package>')
    .description('sign a package: writes a version-1 detached signature')
    .option('--key <key.pem>', 'PKCS#8 PEM private key')
    .option('--output <file.sig>', 'where to write the signature (default <package>.sig)')
    .option('--json', 'print one JSON object on stdout')
    .action((packagePath: string, options: SignOptions) => runAction(options, () => signWithKeyFile(packagePath, options)));
  pkg
    .command('verify <package>')
    .description('verify a package against its detached signature; exit 0 verified, 1 rejected, 2 usage or I/O error')
    .option('--public-key <pub.pem>', 'SPKI PEM public key of the signer you trust')
    .option('--signature <file.sig>', 'the detached signature (default <package>.sig)')
    .option('--json', 'print one JSON object on stdout')
    .action((packagePath: string, options: VerifyOptions) =>
      runAction(options, () => verifyWithKeyFile(packagePath, options), (error) => verifyJson(undefined, error)),
    );
  return pkg;
}
