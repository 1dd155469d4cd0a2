// One open database: a knex pool for SQLite (embedded default) or PostgreSQL, plus its change feed.
// Nothing waits on the database without bound: every query is raced against a deadline (default 5 s),
// PostgreSQL connections whose query outlives it are torn down (so the pool recovers once the server
// answers again), SQLite waits at most that long for a lock.
import { existsSync } from 'node:fs';
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { ChangeFeed } from '../trust/change-feed';
import { databaseError } from './errors';
import { DatabaseTarget, Engine, parseDatabaseUrl } from './url';

export const DEFAULT_DATABASE_TIMEOUT_MS = 5000;

export interface OpenOptions {
  /** Run pending migrations after opening. */
  migrate?: boolean;
  /** Refuse to create a missing SQLite file (the CLI's read and write commands, except `db migrate`). */
  mustExist?: boolean;
  /** Largest staleness of cached trust, in ms (default 250; the bound the issue promises is 1000). */
  maxStalenessMs?: number;
  /** PostgreSQL: invalidate caches on NOTIFY (default true). */
  listen?: boolean;
  /** Longest wait for any one database operation before it fails with DATABASE_UNAVAILABLE (default 5000 ms). */
  timeoutMs?: number;
}

export class Database {
  readonly knex: Knex;
  readonly engine: Engine;
  readonly target: DatabaseTarget;
  readonly changes: ChangeFeed;
  /** The bound on every operation, in ms. */
  readonly timeoutMs: number;
  private closed = false;

  constructor(target: DatabaseTarget, knex: Knex, options: OpenOptions = {}) {
    this.target = target;
    this.engine = target.engine;
    this.knex = knex;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS;
    this.changes = new ChangeFeed(this, { maxStalenessMs: options.maxStalenessMs, listen: options.listen });
  }

  /**
   * Runs a query, mapping driver errors (unreachable, unique violations...) to typed ones. Fails with
   * DATABASE_UNAVAILABLE when the database has not answered within the bound.
   */
  async run<T>(work: (knex: Knex) => Promise<T> | Knex.QueryBuilder | Knex.Raw, options: { timeoutMs?: number } = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const pending = Promise.resolve().then(() => work(this.knex)) as Promise<T>;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CloacinaSignError('DATABASE_UNAVAILABLE', `the database ${this.target.display} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([pending, deadline]);
    } catch (error) {
      throw databaseError(error, this.target.display);
    } finally {
      clearTimeout(timer);
      // The late outcome of a query that lost the race is nobody's business any more.
      pending.catch(() => undefined);
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

/** The part of pg's Client the deadline needs. */
interface PgClient {
  query: (...args: unknown[]) => unknown;
  connection: { stream: { destroy: (error?: Error) => void } };
}

/**
 * Tears down a PostgreSQL connection whose query has not answered within `timeoutMs`: its pending
 * queries fail, knex discards the connection, and the next query opens a new one. Without this a
 * stalled connection (a silent network, a hung proxy) would stay in the pool, busy, for good.
 */
function tearDownStalledQueries(client: PgClient, timeoutMs: number): void {
  const query = client.query.bind(client);
  client.query = (...args: unknown[]) => {
    const callbackIndex = args.length - 1;
    if (typeof args[callbackIndex] !== 'function') return query(...args);
    const callback = args[callbackIndex] as (...results: unknown[]) => void;
    const timer = setTimeout(() => client.connection.stream.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    args[callbackIndex] = (...results: unknown[]) => {
      clearTimeout(timer);
      callback(...results);
    };
    return query(...args);
  };
}

function knexConfig(target: DatabaseTarget, timeoutMs: number): Knex.Config {
  if (target.engine === 'postgres') {
    return {
      log: quiet,
      client: 'pg',
      connection: {
        connectionString: target.connection,
        connectionTimeoutMillis: timeoutMs,
        // The server gives up too (a lock held on a table is the same case as a silent network).
        statement_timeout: timeoutMs,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
      },
      pool: {
        min: 0,
        max: 8,
        afterCreate: (client: PgClient, done: (error: Error | null, client: unknown) => void) => {
          tearDownStalledQueries(client, timeoutMs);
          done(null, client);
        },
      },
      acquireConnectionTimeout: timeoutMs,
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
        conn.exec(
          `PRAGMA busy_timeout = ${Math.floor(timeoutMs)}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;`,
          (error) => done(error, conn),
        );
      },
    },
    acquireConnectionTimeout: timeoutMs,
  };
}

/** Opens the database named by `url` (default: CLOACINA_DATABASE_URL, else SQLite ./cloacina.db). */
export async function openDatabase(url?: string, options: OpenOptions = {}): Promise<Database> {
  const target = parseDatabaseUrl(url);
  const timeoutMs = options.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new CloacinaSignError('INVALID_INPUT', 'timeoutMs must be a positive number of milliseconds');
  if (options.mustExist && target.engine === 'sqlite' && target.connection !== ':memory:' && !existsSync(target.connection)) {
    throw new CloacinaSignError('DATABASE_ERROR', `no database at ${target.display}: run \`cloacina-sign db migrate\` first`);
  }
  // Loaded here, not at the top, so commands that never touch a database do not pay for knex and its drivers.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const createKnex: (config: Knex.Config) => Knex = require('knex');
  const db = new Database(target, createKnex(knexConfig(target, timeoutMs)), { ...options, timeoutMs });
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
