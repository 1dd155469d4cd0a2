// `cloacina-sign package verify`: packages against pinned keys or an organization's trust.
import { CloacinaSignError } from '../../errors';
import { SignatureSource } from '../../verification/signature-source';
import type { VerificationResult } from '../../verification/verifier';
import { errorCode, errorMessage, EXIT_OK, exitCodeFor, green, printData, reportError, say, terminalSafe } from '../output';
import { formatOf, type PackageCheckOptions } from '../package-checks';
import { withProgress } from '../progress';
import { type TrustOptions, withLoader } from '../trust';

export interface PackageVerifyOptions extends TrustOptions, PackageCheckOptions {
  signature?: string;
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
export async function verify(packagePaths: string[], options: PackageVerifyOptions): Promise<void> {
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
