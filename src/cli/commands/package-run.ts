// `cloacina-sign package run|inspect`: verify, load from sealed memory, then run a task or read metadata.
import { Command } from 'commander';
import { CloacinaSignError } from '../../errors';
import type { LoadedPackage } from '../../loading/loaded-package';
import { SignatureSource } from '../../verification/signature-source';
import { DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { green, printData, runAction, say } from '../output';

interface RunOptions extends DatabaseOptions {
  org: string;
  task: string;
  context?: string;
  signature?: string;
  requireSignatures?: boolean;
}

interface InspectOptions extends DatabaseOptions {
  org: string;
  signature?: string;
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
  options: DatabaseOptions & { org: string; signature?: string },
  requireSignatures: boolean,
  work: (pkg: LoadedPackage) => Promise<T>,
): Promise<T> {
  return withDatabase(options, async (ctx) => {
    const org = await ctx.org(options.org);
    const source = options.signature ? SignatureSource.DetachedFile(options.signature) : SignatureSource.Auto;
    const { verifyAndLoadPackage } = await import('../../loading/verify-and-load');
    const pkg = await verifyAndLoadPackage(packagePath, org.id, { requireSignatures }, ctx.keys, source);
    try {
      say(
        pkg.signerFingerprint
          ? `${green('verified')} ${packagePath}: signed by ${pkg.signerFingerprint}; loaded from sealed memory`
          : `loaded ${packagePath} unsigned (signatures are not required)`,
      );
      return await work(pkg);
    } finally {
      pkg.close();
    }
  });
}

async function run(packagePath: string, options: RunOptions): Promise<void> {
  const context = parseContext(options.context);
  await withLoadedPackage(packagePath, options, Boolean(options.requireSignatures), async (pkg) => {
    const output = await pkg.executeTask(options.task, context);
    printData(
      options,
      { packageHash: pkg.packageHash, keyFingerprint: pkg.signerFingerprint, task: options.task, output },
      JSON.stringify(output),
    );
  });
}

async function inspect(packagePath: string, options: InspectOptions): Promise<void> {
  await withLoadedPackage(packagePath, options, true, async (pkg) => {
    const metadata = pkg.metadata();
    const text = [
      `${metadata.packageName ?? '(unnamed)'}: ${metadata.description ?? ''}`.trimEnd(),
      ...metadata.tasks.map((task) => `  ${task.localId}${task.dependencies.length ? ` (after ${task.dependencies.join(', ')})` : ''}: ${task.description ?? ''}`),
    ].join('\n');
    printData(options, { packageHash: pkg.packageHash, keyFingerprint: pkg.signerFingerprint, metadata }, text);
  });
}

export function addRunCommands(pkg: Command): void {
  withDbOptions(
    pkg
      .command('run <package>')
      .description('verify a workflow package, load it from sealed memory and run one task; prints the task output')
      .requiredOption('--org <org>', "whose trust decides (id or name)")
      .requiredOption('--task <name>', 'the task to run')
      .option('--context <json>', 'the input context, a JSON object', '{}')
      .option('--signature <file.sig>', 'the detached signature (default <package>.sig, else the stored signatures)')
      .option('--require-signatures', 'refuse an unsigned package (without it an unsigned package runs; a bad signature never does)'),
  ).action((packagePath: string, options: RunOptions) => runAction(options, () => run(packagePath, options)));
  withDbOptions(
    pkg
      .command('inspect <package>')
      .description("verify a workflow package (signature required), load it from sealed memory and print its tasks")
      .requiredOption('--org <org>', "whose trust decides (id or name)")
      .option('--signature <file.sig>', 'the detached signature (default <package>.sig, else the stored signatures)'),
  ).action((packagePath: string, options: InspectOptions) => runAction(options, () => inspect(packagePath, options)));
}
