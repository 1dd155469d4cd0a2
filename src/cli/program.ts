// The command tree. Usage errors exit 2; with --json they still print exactly one JSON object.
import { Command, CommanderError } from 'commander';
import { AUDIT_LOG_HELP } from './context';
import { EXIT_USAGE } from './output';

// Each command's module is required only when the program is built with it: a run of one command (the
// `package verify` of every CI job) loads that command's code, not the other nine and what they import.
const COMMANDS: readonly (readonly [name: string, build: () => Command])[] = [
  ['keys', () => (require('./commands/keys') as typeof import('./commands/keys')).keysCommand()],
  ['kek', () => (require('./commands/kek') as typeof import('./commands/kek')).kekCommand()],
  ['package', () => (require('./commands/package') as typeof import('./commands/package')).packageCommand()],
  ['packages', () => (require('./commands/packages') as typeof import('./commands/packages')).packagesCommand()],
  ['orgs', () => (require('./commands/orgs') as typeof import('./commands/orgs')).orgsCommand()],
  ['audit', () => (require('./commands/audit') as typeof import('./commands/audit')).auditCommand()],
  ['db', () => (require('./commands/db') as typeof import('./commands/db')).dbCommand()],
  ['tokens', () => (require('./commands/tokens') as typeof import('./commands/tokens')).tokensCommand()],
  ['serve', () => (require('./commands/serve') as typeof import('./commands/serve')).serveCommand()],
  ['metrics', () => (require('./commands/metrics') as typeof import('./commands/metrics')).metricsCommand()],
];

/**
 * The command tree: every command, or only `only` when it names one (what `main` runs needs nothing else;
 * the program's own help and version, and anything not a command name, take the whole tree).
 */
export function buildProgram(only?: string): Command {
  const program = new Command('cloacina-sign')
    .description('Sign and verify Cloacina workflow packages; load only what a trusted organization signed')
    .version(require('../../../package.json').version)
    // Program options only before a command: `package sign x.so --version 1.0.0` is the package version, never the program's.
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  const named = COMMANDS.filter(([name]) => name === only);
  for (const [, build] of named.length > 0 ? named : COMMANDS) program.addCommand(build());
  program.addHelpText('after', `\n${AUDIT_LOG_HELP}`);
  for (const command of allCommands(program)) {
    command.exitOverride();
    // The commands that sign, verify, load or upload: where a reader wonders what reaches stderr.
    if (command.parent?.name() === 'package') command.addHelpText('after', `\n${AUDIT_LOG_HELP}`);
  }
  return program;
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((child) => [child, ...allCommands(child)]);
}

export async function main(argv: string[]): Promise<number> {
  // argv[2]: the first word after `node <script>`, the command when it is one.
  const program = buildProgram(argv[2]);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.exitCode === 0) return 0;
    if (argv.includes('--json')) {
      process.stdout.write(`${JSON.stringify({ error: { code: 'USAGE', message: error.message } })}\n`);
    }
    return EXIT_USAGE;
  }
}
