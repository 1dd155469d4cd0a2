// `cloacina-sign package run|inspect`: verify, load from sealed memory, then run a task or read metadata.
import type { Command } from 'commander';
import { CloacinaSignError } from '../../errors';
import type { LoadedPackage } from '../../loading/loaded-package';
import { SignatureSource } from '../../verification/signature-source';
import { withDbOptions } from '../context';
import { green, printData, runAction, say, terminalSafe } from '../output';
import { addPackageCheckOptions, formatOf, type PackageCheckOptions } from '../package-checks';
import { addPolicyOptions, collect, requireSignaturesFrom, type TrustOptions, withLoader } from '../trust';

interface InspectOptions extends TrustOptions, PackageCheckOptions {
  signature?: string;
}

interface RunOptions extends InspectOptions {
  task: string;
  context?: string;
  requireSignatures?: boolean;
}

function parseContext(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let context: unknown;
  try {
    context = JSON.parse(text);
  } catch {
    throw new CloacinaSignError('USAGE', '--context must be a JSON object');
  }
  if (typeof context !== 'object' || context === null || Array.isArray(context)) throw new CloacinaSignError('USAGE', '--context must be a JSON object');
  return context as Record<string, unknown>;
}

/** Loads the package for one command and always releases it. */
async function withLoadedPackage<T>(
  packagePath: string,
  options: InspectOptions,
  requireSignatures: boolean,
  work: (pkg: LoadedPackage) => Promise<T>,
): Promise<T> {
  return withLoader(options, requireSignatures, async (loader) => {
    const source = options.signature ? SignatureSource.DetachedFile(options.signature) : SignatureSource.Auto;
    const pkg = await loader.load(packagePath, { signature: source, format: formatOf(packagePath, options, 'elf') });
    try {
      say(
        pkg.signerFingerprint
          ? `${green('verified')} ${terminalSafe(packagePath)}: signed by ${pkg.signerFingerprint}; loaded from sealed memory`
          : `loaded ${terminalSafe(packagePath)} unsigned (signatures are not required)`,
      );
      return await work(pkg);
    } finally {
      pkg.close();
    }
  });
}

async function run(packagePath: string, options: RunOptions): Promise<void> {
  const context = parseContext(options.context);
  await withLoadedPackage(packagePath, options, requireSignaturesFrom(options.requireSignatures), async (pkg) => {
    const output = await pkg.executeTask(options.task, context);
    printData(options, { packageHash: pkg.packageHash, keyFingerprint: pkg.signerFingerprint, task: options.task, output }, JSON.stringify(output));
  });
}

async function inspect(packagePath: string, options: InspectOptions): Promise<void> {
  await withLoadedPackage(packagePath, options, true, async (pkg) => {
    const metadata = pkg.metadata();
    const text = [
      `${metadata.packageName ?? '(unnamed)'}: ${metadata.description ?? ''}`.trimEnd(),
      ...metadata.tasks.map(
        (task) => `  ${task.localId}${task.dependencies.length ? ` (after ${task.dependencies.join(', ')})` : ''}: ${task.description ?? ''}`,
      ),
    ].join('\n');
    printData(options, { packageHash: pkg.packageHash, keyFingerprint: pkg.signerFingerprint, metadata }, text);
  });
}

export function addRunCommands(pkg: Command): void {
  addPolicyOptions(
    withDbOptions(
      addPackageCheckOptions(pkg.command('run <package>'), 'elf')
        .description('verify a workflow package, load it from sealed memory and run one task; prints the task output')
        .option('--org <org>', 'the organization whose trust decides (id or name), in the database')
        .option('--trust-key <pub.pem>', 'a public key you trust, instead of --org (no database); repeatable', collect)
        .option('--public-key <pub.pem>', 'the same as --trust-key', collect)
        .requiredOption('--task <name>', 'the task to run')
        .option('--context <json>', 'the input context, a JSON object', '{}')
        .option('--signature <file.sig>', 'the detached signature (default <package>.sig, and with --org the stored signatures)')
        .option(
          '--require-signatures',
          'refuse an unsigned package (also CLOACINA_REQUIRE_SIGNATURES=1; without it an unsigned package runs, a bad signature never does)',
        ),
    ),
  ).action((packagePath: string, options: RunOptions) => runAction(options, () => run(packagePath, options)));
  addPolicyOptions(
    withDbOptions(
      addPackageCheckOptions(pkg.command('inspect <package>'), 'elf')
        .description('verify a workflow package (signature required), load it from sealed memory and print its tasks')
        .option('--org <org>', 'the organization whose trust decides (id or name), in the database')
        .option('--trust-key <pub.pem>', 'a public key you trust, instead of --org (no database); repeatable', collect)
        .option('--public-key <pub.pem>', 'the same as --trust-key', collect)
        .option('--signature <file.sig>', 'the detached signature (default <package>.sig, and with --org the stored signatures)'),
    ),
  ).action((packagePath: string, options: InspectOptions) => runAction(options, () => inspect(packagePath, options)));
}
