// One open database: a knex pool for SQLite (embedded default) or PostgreSQL, plus its change feed.
import { existsSync } from 'node:fs';
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { ChangeFeed } from '../trust/change-feed';
import { databaseError } from './errors';
import { DatabaseTarget, Engine, parseDatabaseUrl } from './url';

export interface OpenOptions {
  /** Run pending migrations after opening. */
  migrate?: boolean;
  /** Refuse to create a missing SQLite file (the CLI's read and write commands, except `db migrate`). */
  mustExist?: boolean;
  /** Largest staleness of cached trust, in ms (default 250; the bound the issue promises is 1000). */
  maxStalenessMs?: number;
  /** PostgreSQL: invalidate caches on NOTIFY (default true). */
  listen?: boolean;
}

export class Database {
  readonly knex: Knex;
  readonly engine: Engine;
  readonly target: DatabaseTarget;
  readonly changes: ChangeFeed;
  private closed = false;

  constructor(target: DatabaseTarget, knex: Knex, options: OpenOptions = {}) {
    this.target = target;
    this.engine = target.engine;
    this.knex = knex;
    this.changes = new ChangeFeed(this, { maxStalenessMs: options.maxStalenessMs, listen: options.listen });
  }

  /** Runs a query, mapping driver errors (unreachable, unique violations...) to typed ones. */
  async run<T>(work: (knex: Knex) => Promise<T>): Promise<T> {
    try {
      return await work(this.knex);
    } catch (error) {
      throw databaseError(error, this.target.display);
    }
  }

  /** Stops the change listener and destroys the pool, so the process can exit. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.changes.close();
    await this.knex.destroy();
  }
}

// knex would print pool errors itself (on stdout, which carries command data); errors reach callers typed instead.
const quiet = { warn: () => undefined, error: () => undefined, deprecate: () => undefined, debug: () => undefined };

function knexConfig(target: DatabaseTarget): Knex.Config {
  if (target.engine === 'postgres') {
    return {
      log: quiet,
      client: 'pg',
      connection: { connectionString: target.connection, connectionTimeoutMillis: 5000 },
      pool: { min: 0, max: 8 },
      acquireConnectionTimeout: 10000,
    };
  }
  return {
    log: quiet,
    client: 'sqlite3',
    connection: { filename: target.connection },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate: (conn: { exec: (sql: string, done: (error: Error | null) => void) => void }, done: (error: Error | null, conn: unknown) => void) => {
        // WAL and a busy timeout let several processes share the file; foreign keys are off by default in SQLite.
        conn.exec('PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;', (error) => done(error, conn));
      },
    },
    acquireConnectionTimeout: 10000,
  };
}

/** Opens the database named by `url` (default: CLOACINA_DATABASE_URL, else SQLite ./cloacina.db). */
export async function openDatabase(url?: string, options: OpenOptions = {}): Promise<Database> {
  const target = parseDatabaseUrl(url);
  if (options.mustExist && target.engine === 'sqlite' && target.connection !== ':memory:' && !existsSync(target.connection)) {
    throw new CloacinaSignError('DATABASE_ERROR', `no database at ${target.display}: run \`cloacina-sign db migrate\` first`);
  }
  // Loaded here, not at the top, so commands that never touch a database do not pay for knex and its drivers.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const createKnex: (config: Knex.Config) => Knex = require('knex');
  const db = new Database(target, createKnex(knexConfig(target)), options);
  try {
    await db.run((knex) => knex.raw('select 1'));
    if (options.migrate) {
      const { migrateLatest } = await import('./migrate');
      await migrateLatest(db);
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}
