// Schema migrations: TypeScript files in migrations/, compiled to dist/migrations/ and run by knex.
//
// Several processes may migrate one database at once (runners starting with { migrate: true }, several
// `db migrate`): a lock held for the whole run serializes them, so exactly one applies each migration and
// the others wait, then find nothing left to do. knex's own lock row cannot do this (it fails instead of
// waiting, and the tables holding it are themselves created racily).
//  - PostgreSQL: a session advisory lock on one dedicated pooled connection, tried with
//    pg_try_advisory_lock every ~100 ms, never awaited with pg_advisory_lock: no query waits longer than
//    the per-operation deadline, which would read as a stalled server and tear the pool down.
//  - SQLite: the whole run is one transaction on knex's single connection whose first statement is a
//    write, so it holds the database's write lock from the start (no second connection that could
//    deadlock with it; no read-then-write upgrade that fails with SQLITE_BUSY). Each attempt waits at
//    most the busy timeout; attempts repeat.
// The wait is bounded (default 60 s, OpenOptions.migrationLockTimeoutMs); then DATABASE_UNAVAILABLE says
// another migration holds the lock.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import type { Database } from './database';

export const MIGRATIONS_DIRECTORY = join(__dirname, '../../migrations');

const TABLE = 'knex_migrations';
/** The advisory lock key of migrations (the first 8 bytes of SHA-256("cloacina-sign migrations")). */
const POSTGRES_LOCK_KEY = '4726229390252597722';
/** Created and dropped inside the SQLite migration transaction: it never exists outside it. */
const SQLITE_LOCK_TABLE = 'cloacina_sign_migration_lock';
const RETRY_MS = 100;
/**
 * How long one run of the migrations may take once it holds the lock: a migration may rewrite a large table
 * (the audit chain's back-fill), far longer than any one operation's bound. It still never hangs: on
 * PostgreSQL every statement stays under the per-operation bound (a longer one reads as a stalled server),
 * and SQLite works on a local file it holds the write lock of.
 */
const MIGRATION_RUN_TIMEOUT_MS = 10 * 60_000;

function config(): Knex.MigratorConfig {
  return { directory: MIGRATIONS_DIRECTORY, loadExtensions: ['.js'], tableName: TABLE };
}

/** The migration names knex records (file names, in order). */
export function migrationNames(): string[] {
  return readdirSync(MIGRATIONS_DIRECTORY)
    .filter((file) => file.endsWith('.js'))
    .sort();
}

/** Applies every pending migration, waiting for any other process migrating the same database; returns the names applied. */
export async function migrateLatest(db: Database, options: { lockTimeoutMs?: number } = {}): Promise<string[]> {
  if (db.readOnly) throw new CloacinaSignError('DATABASE_ERROR', `the database ${db.target.display} was opened read-only: it cannot be migrated`);
  const lockTimeoutMs = options.lockTimeoutMs ?? db.migrationLockTimeoutMs;
  return db.engine === 'postgres' ? migratePostgres(db, lockTimeoutMs) : migrateSqlite(db, lockTimeoutMs);
}

function lockHeld(db: Database, lockTimeoutMs: number, cause?: unknown): CloacinaSignError {
  return new CloacinaSignError(
    'DATABASE_UNAVAILABLE',
    `another migration holds the migration lock of ${db.target.display}: it was not released within ${lockTimeoutMs} ms; nothing was migrated, try again when it has finished`,
    { cause },
  );
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Spread the retries of many waiting processes. */
const retryDelay = () => RETRY_MS / 2 + Math.random() * RETRY_MS;

interface PooledConnection {
  __knex__disposed?: unknown;
  connection?: { stream?: { destroy: () => void } };
}

interface KnexClient {
  acquireConnection(): Promise<PooledConnection>;
  releaseConnection(connection: PooledConnection): unknown;
}

async function migratePostgres(db: Database, lockTimeoutMs: number): Promise<string[]> {
  const client = db.knex.client as KnexClient;
  const acquiring = client.acquireConnection();
  let connection: PooledConnection;
  try {
    connection = await db.run(() => acquiring);
  } catch (error) {
    // A connection acquired after the deadline goes back to the pool.
    acquiring.then((late) => client.releaseConnection(late)).catch(() => undefined);
    throw error;
  }
  const onLockConnection = (sql: string) => db.run((knex) => knex.raw(sql, [POSTGRES_LOCK_KEY]).connection(connection));
  let locked = false;
  try {
    const started = Date.now();
    for (;;) {
      const result = (await onLockConnection('select pg_try_advisory_lock(?::bigint) as locked')) as { rows: { locked: boolean }[] };
      if (result.rows[0]?.locked === true) break;
      if (Date.now() - started >= lockTimeoutMs) throw lockHeld(db, lockTimeoutMs);
      await pause(retryDelay());
    }
    locked = true;
    const [, applied] = (await db.run((knex) => knex.migrate.latest(config()), { timeoutMs: MIGRATION_RUN_TIMEOUT_MS })) as [number, string[]];
    return applied;
  } finally {
    if (locked) {
      try {
        await onLockConnection('select pg_advisory_unlock(?::bigint)');
      } catch {
        // Never return a connection that may still hold the lock: closing its session releases it.
        connection.__knex__disposed = 'the migration lock could not be released';
        connection.connection?.stream?.destroy();
      }
    }
    client.releaseConnection(connection);
  }
}

function isBusy(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code === 'SQLITE_BUSY' || cause?.code === 'SQLITE_LOCKED';
}

async function migrateSqlite(db: Database, lockTimeoutMs: number): Promise<string[]> {
  const started = Date.now();
  try {
    for (;;) {
      // Each attempt waits for the write lock at most as long as any other operation, and never past the bound.
      const wait = Math.floor(Math.max(0, Math.min(db.timeoutMs, lockTimeoutMs - (Date.now() - started))));
      await db.run((knex) => knex.raw(`PRAGMA busy_timeout = ${wait}`));
      try {
        return await db.run(
          (knex) =>
            knex.transaction(async (trx) => {
              // A write first: the transaction holds the write lock from here to its commit.
              await trx.raw(`create table ${SQLITE_LOCK_TABLE} (id integer)`);
              // Migrations another process applied while this one waited are seen now, and skipped.
              const [, applied] = (await trx.migrate.latest(config())) as [number, string[]];
              await trx.raw(`drop table ${SQLITE_LOCK_TABLE}`);
              return applied;
            }),
          { timeoutMs: wait + MIGRATION_RUN_TIMEOUT_MS },
        );
      } catch (error) {
        if (!isBusy(error)) throw error;
        if (Date.now() - started >= lockTimeoutMs) throw lockHeld(db, lockTimeoutMs, (error as Error).cause);
        await pause(retryDelay());
      }
    }
  } finally {
    await db.run((knex) => knex.raw(`PRAGMA busy_timeout = ${Math.floor(db.timeoutMs)}`)).catch(() => undefined);
  }
}

/** Names of migrations not yet applied. Reads only (a read-only database can be checked). */
export async function pendingMigrations(db: Database): Promise<string[]> {
  const applied = await db.run(async (knex) => {
    if (!(await knex.schema.hasTable(TABLE))) return [];
    const rows: { name: string }[] = await knex(TABLE).select('name');
    return rows.map((row) => String(row.name));
  });
  const done = new Set(applied);
  return migrationNames().filter((name) => !done.has(name));
}

/** Fails with DATABASE_ERROR when the schema is behind, so no command writes into a half-made schema. */
export async function assertMigrated(db: Database): Promise<void> {
  const pending = await pendingMigrations(db);
  if (pending.length > 0) {
    throw new CloacinaSignError(
      'DATABASE_ERROR',
      `the database ${db.target.display} has ${pending.length} pending migration(s): run \`cloacina-sign db migrate\``,
    );
  }
}
