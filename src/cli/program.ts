// The command tree. Usage errors exit 2; with --json they still print exactly one JSON object.
import { Command, CommanderError } from 'commander';
import { keysCommand } from './commands/keys';
import { kekCommand } from './commands/kek';
import { packageCommand } from './commands/package';
import { packagesCommand } from './commands/packages';
import { orgsCommand } from './commands/orgs';
import { auditCommand } from './commands/audit';
import { dbCommand } from './commands/db';
import { serveCommand } from './commands/serve';
import { tokensCommand } from './commands/tokens';
import { metricsCommand } from './commands/metrics';
import { AUDIT_LOG_HELP } from './context';
import { EXIT_USAGE } from './output';

export function buildProgram(): Command {
  const program = new Command('cloacina-sign')
    .description('Sign and verify Cloacina workflow packages; load only what a trusted organization signed')
    .version(require('../../../package.json').version)
    // Program options only before a command: `package sign x.so --version 1.0.0` is the package version, never the program's.
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  program.addCommand(keysCommand());
  program.addCommand(kekCommand());
  program.addCommand(packageCommand());
  program.addCommand(packagesCommand());
  program.addCommand(orgsCommand());
  program.addCommand(auditCommand());
  program.addCommand(dbCommand());
  program.addCommand(tokensCommand());
  program.addCommand(serveCommand());
  program.addCommand(metricsCommand());
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
  const program = buildProgram();
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
