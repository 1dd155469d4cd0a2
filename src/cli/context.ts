// What every database command shares: open the database named by --database or CLOACINA_DATABASE_URL,
// refuse a missing or unmigrated one, read the KEK from the environment when needed, and always close the
// pool. Commands that only read open SQLite read-only, so they work on a file the user cannot write.
// The database stack is loaded on first use: commands without a database (the offline sign and verify
// every CI job runs) start that much faster.
import type { Command } from 'commander';
import { auditToFile, auditToStream, type AuditSink } from '../audit/sink';
import type { Database } from '../db/database';
import type { DbKeyManager } from '../keys/db-key-manager';
import type { Kek } from '../keys/kek';
import type { Organization } from '../db/organizations';
import type { OutputOptions } from './output';

export interface DatabaseOptions extends OutputOptions {
  database?: string;
  /** --kek-file, on the commands that take it (withKekOptions). */
  kekFile?: string;
  allowInsecureKeyFile?: boolean;
}

export interface CliContext {
  db: Database;
  /** The audit lines of this command (CLOACINA_AUDIT_LOG); rows go to the database. */
  lines: AuditSink | undefined;
  keys: DbKeyManager;
  /** The configured KEK (variable, file or PKCS#11 token), resolved before the database was opened. */
  kek: Kek | undefined;
  org(idOrName: string): Promise<Organization>;
}

/**
 * CLOACINA_AUDIT_LOG: `stderr`, a file path (appended), or unset / `off` (the default: no JSON lines, only the
 * human result line; with a database the audit_events rows are written all the same). Never stdout, which
 * carries data.
 */
export function auditLines(env: NodeJS.ProcessEnv = process.env): AuditSink | undefined {
  const value = env.CLOACINA_AUDIT_LOG?.trim();
  if (!value || value === 'off') return undefined;
  if (value === 'stderr') return auditToStream(process.stderr);
  return auditToFile(value);
}

export const AUDIT_LOG_HELP = `Audit events: with a database, always rows in audit_events. JSON lines (ECS) only when asked:
  CLOACINA_AUDIT_LOG=stderr   one JSON object per event on stderr
  CLOACINA_AUDIT_LOG=<path>   appended to that file
By default (unset or off) no JSON lines are written; stderr carries the human result line only.`;

export async function withDatabase<T>(
  options: DatabaseOptions,
  work: (ctx: CliContext) => Promise<T>,
  settings: { needsKek?: boolean; migrating?: boolean; readOnly?: boolean } = {},
): Promise<T> {
  const [{ resolveKek }, { openDatabase }, { assertMigrated }, { DbKeyManager }] = await Promise.all([
    import('../keys/kek'),
    import('../db/database'),
    import('../db/migrate'),
    import('../keys/db-key-manager'),
  ]);
  // The KEK is checked first, so a missing or malformed one fails before anything is opened or written.
  const kek = settings.needsKek ? await resolveKek({ kekFile: options.kekFile, allowInsecureKeyFile: options.allowInsecureKeyFile }) : undefined;
  // Migrating (`db migrate`) is the one way a missing SQLite file gets created; see db.appliedMigrations.
  const db = await openDatabase(options.database, {
    migrate: settings.migrating === true,
    readOnly: settings.readOnly === true,
    listen: false,
    commandLine: true,
  });
  try {
    if (!settings.migrating) await assertMigrated(db);
    const lines = auditLines();
    const keys = new DbKeyManager(db, { audit: lines ? [lines] : [] });
    const typed = new Map<string, string>();
    const org = async (idOrName: string) => {
      const found = await keys.getOrganization(idOrName);
      typed.set(found.id, idOrName);
      return found;
    };
    return await work({ db, lines, keys, kek, org }).catch((error: unknown) => {
      throw namingOrganizations(error, typed);
    });
  } finally {
    await db.close();
  }
}

/**
 * The library names organizations by id; a person typed a name (or an id). Messages that say
 * `organization <id>` then say `organization "<as typed>" (<id>)`, so the one on the command line is recognized.
 */
function namingOrganizations(error: unknown, typed: ReadonlyMap<string, string>): unknown {
  if (!(error instanceof Error)) return error;
  for (const [id, asTyped] of typed) {
    if (asTyped === id) continue;
    error.message = error.message.split(`organization ${id}`).join(`organization ${JSON.stringify(asTyped)} (${id})`);
  }
  return error;
}

export const DATABASE_OPTION_HELP = 'sqlite:<path> or postgres://... (default: CLOACINA_DATABASE_URL, else sqlite:./cloacina.db)';

/** Adds --kek-file and --allow-insecure-key-file, for the commands that need the KEK. */
export function withKekOptions(command: Command): Command {
  return command
    .option('--kek-file <path>', 'read the KEK from this file (as CLOACINA_KEY_ENCRYPTION_KEY_FILE: 0600, owned by the user)')
    .option('--allow-insecure-key-file', 'read a KEK or PIN file that group or others can access (refused by default)');
}

/** Adds --database and --json, which every database command takes. */
export function withDbOptions(command: Command): Command {
  return command.option('--database <url>', DATABASE_OPTION_HELP).option('--json', 'print JSON on stdout');
}
