// `cloacina-sign package verify`: packages against pinned keys or an organization's trust.
import { CloacinaSignError } from '../../errors';
import { SignatureSource } from '../../verification/signature-source';
import type { PackageFormatName, VerificationResult } from '../../verification/result';
import type { VerificationOutcome } from '../../verification/verify-many';
import { errorCode, errorMessage, errorReport, EXIT_OK, exitCodeFor, green, printData, terminalSafe } from '../output';
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

/** Packages decided per `verifyMany` call: outcomes are printed a chunk at a time while the next is verified. */
const PACKAGES_PER_CHUNK = 1024;

/** Verifies every package; outcomes are printed in the order given. The exit code is the worst outcome: 2, then 1, then 0. */
export async function verify(packagePaths: string[], options: PackageVerifyOptions): Promise<void> {
  if (options.signature && packagePaths.length > 1)
    throw new CloacinaSignError('USAGE', '--signature names the signature of one package; give one package with it');
  const source = options.signature ? SignatureSource.DetachedFile(options.signature) : SignatureSource.Auto;
  await withLoader(options, true, async (loader) => {
    const results: Record<string, unknown>[] = [];
    let exitCode = EXIT_OK;
    // The format is checked on the verified bytes themselves (a sealed copy), when one is required.
    const checksOf = (packagePath: string) => {
      const format = formatOf(packagePath, options, 'any');
      return { signature: source, format: format === 'any' ? undefined : format, maxPackageBytes: options.maxSize };
    };
    // Each outcome's lines, written per package with a terminal, per chunk otherwise (one write for a chunk's lines).
    const report = ({ path: packagePath, verified: result, error }: VerificationOutcome, said: string[], printed: string[]): void => {
      // A file name is anyone's choice: it reaches the terminal with its control characters escaped.
      const shownPath = terminalSafe(packagePath);
      if (result) {
        const what = result.statement
          ? ` ${result.statement.name} ${result.statement.version}${result.statement.expiresAt ? ` (valid until ${result.statement.expiresAt})` : ''}`
          : '';
        const when = result.signedAt === null ? ' (a cosign signature, ECDSA P-256)' : ` at ${result.signedAt}`;
        said.push(`${green('verified')} ${shownPath}${what}: signed by ${result.signerFingerprint}${when}`);
        if (!options.json) printed.push(`verified ${result.packageHash}  ${shownPath}`);
        if (options.json) results.push(verifyResult(packagePath, result));
      } else {
        said.push(...errorReport(error));
        if (!options.json) printed.push(`REJECTED ${errorCode(error)}  ${shownPath}`);
        if (options.json) results.push(verifyResult(packagePath, undefined, error));
        exitCode = Math.max(exitCode, exitCodeFor(error));
      }
    };
    const reportAll = (outcomes: readonly VerificationOutcome[]): void => {
      const said: string[] = [];
      const printed: string[] = [];
      for (const outcome of outcomes) report(outcome, said, printed);
      if (said.length > 0) process.stderr.write(`${said.join('\n')}\n`);
      if (printed.length > 0) process.stdout.write(`${printed.join('\n')}\n`);
    };
    if (process.stderr.isTTY) {
      // A person watching a terminal: one package at a time, each large one with its progress bar.
      for (const packagePath of packagePaths) {
        const outcome = await withProgress(packagePath, (progress) => loader.verify(packagePath, { ...checksOf(packagePath), progress })).then(
          (verified): VerificationOutcome => ({ path: packagePath, verified }),
          (error: Error): VerificationOutcome => ({ path: packagePath, error }),
        );
        reportAll([outcome]);
      }
    } else {
      // Packages that share their checks go together; each chunk is verified while the one before is printed.
      const chunks: string[][] = [];
      let chunkFormat: PackageFormatName | undefined;
      for (const packagePath of packagePaths) {
        const last = chunks[chunks.length - 1];
        const format = checksOf(packagePath).format;
        if (last && last.length < PACKAGES_PER_CHUNK && format === chunkFormat) last.push(packagePath);
        else chunks.push([packagePath]);
        chunkFormat = format;
      }
      let pending = chunks.length > 0 ? loader.verifyMany(chunks[0], checksOf(chunks[0][0])) : undefined;
      for (let index = 0; index < chunks.length; index += 1) {
        const outcomes = await pending!;
        pending = index + 1 < chunks.length ? loader.verifyMany(chunks[index + 1], checksOf(chunks[index + 1][0])) : undefined;
        reportAll(outcomes);
      }
    }
    if (options.json) printData(options, { verified: exitCode === EXIT_OK, results }, '');
    process.exitCode = exitCode;
  });
}
