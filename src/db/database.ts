// One open database: a knex pool for SQLite (embedded default) or PostgreSQL, plus its change feed.
// Nothing waits on the database without bound: every query is raced against a deadline (default 5 s);
// on PostgreSQL a query that outlives it means the path to the server is stalled, so every pooled
// connection is torn down (the pool recovers on fresh connections once the server answers again, and
// closing never waits on a silent server); SQLite waits at most that long for a lock.
import { existsSync } from 'node:fs';
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { ChangeFeed } from '../trust/change-feed';
import { databaseError } from './errors';
import { type DatabaseTarget, type Engine, parseDatabaseUrl } from './url';

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

  constructor(
    target: DatabaseTarget,
    knex: Knex,
    options: OpenOptions = {},
    private readonly connections?: PgConnections,
  ) {
    this.target = target;
    this.engine = target.engine;
    this.knex = knex;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS;
    this.changes = new ChangeFeed(this, { maxStalenessMs: options.maxStalenessMs, listen: options.listen });
    connections?.onStall(() => this.changes.reconnect());
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

  /** Stops the change listener and destroys the pool, so the process can exit (within the bound, even when the server is silent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.changes.close(), this.knex.destroy()]);
    this.connections?.destroyAll();
  }
}

// knex would print pool errors itself (on stdout, which carries command data); errors reach callers typed instead.
const quiet = { warn: () => undefined, error: () => undefined, deprecate: () => undefined, debug: () => undefined };

/** The part of pg's Client used here (pg ships no types). */
interface PgClient {
  query: (...args: unknown[]) => unknown;
  end: (...args: unknown[]) => unknown;
  on: (event: 'end', listener: () => void) => void;
  connection: { stream: { destroy: (error?: Error) => void } };
}

/**
 * The pool's PostgreSQL connections. A query with no answer within `timeoutMs` means the path to the
 * server is stalled (a silent network, a hung proxy): then every connection is torn down at once, so
 * pending queries fail, knex discards the connections, and the next query opens a fresh one. Without
 * this, silent connections would stay in the pool, each costing a full timeout when next used, and
 * closing would wait on a server that never answers.
 */
class PgConnections {
  private readonly clients = new Set<PgClient>();
  private readonly stallListeners: (() => void)[] = [];

  constructor(private readonly timeoutMs: number) {}

  onStall(listener: () => void): void {
    this.stallListeners.push(listener);
  }

  /** Called by the pool for every new connection. */
  adopt(client: PgClient): void {
    this.clients.add(client);
    client.on('end', () => this.clients.delete(client));
    const query = client.query.bind(client);
    client.query = (...args: unknown[]) => {
      const callbackIndex = args.length - 1;
      if (typeof args[callbackIndex] !== 'function') return query(...args);
      const callback = args[callbackIndex] as (...results: unknown[]) => void;
      const timer = setTimeout(() => this.stalled(), this.timeoutMs);
      timer.unref();
      args[callbackIndex] = (...results: unknown[]) => {
        clearTimeout(timer);
        callback(...results);
      };
      return query(...args);
    };
    // Ending politely waits for the server; a silent one gets its socket destroyed instead.
    const end = client.end.bind(client);
    client.end = (...args: unknown[]) => {
      const timer = setTimeout(() => client.connection.stream.destroy(), this.timeoutMs);
      timer.unref();
      const callback = typeof args[0] === 'function' ? (args[0] as (...results: unknown[]) => void) : undefined;
      if (!callback) {
        return Promise.resolve(end()).finally(() => clearTimeout(timer));
      }
      return end((...results: unknown[]) => {
        clearTimeout(timer);
        callback(...results);
      });
    };
  }

  private stalled(): void {
    this.destroyAll(new Error(`no answer within ${this.timeoutMs} ms`));
    for (const listener of this.stallListeners) listener();
  }

  destroyAll(error?: Error): void {
    for (const client of this.clients) client.connection.stream.destroy(error);
    this.clients.clear();
  }
}

function knexConfig(target: DatabaseTarget, timeoutMs: number, connections: PgConnections): Knex.Config {
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
        destroyTimeoutMillis: timeoutMs,
        afterCreate: (client: PgClient, done: (error: Error | null, client: unknown) => void) => {
          connections.adopt(client);
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
  const createKnex: (config: Knex.Config) => Knex = require('knex');
  const connections = new PgConnections(timeoutMs);
  const db = new Database(
    target,
    createKnex(knexConfig(target, timeoutMs, connections)),
    { ...options, timeoutMs },
    target.engine === 'postgres' ? connections : undefined,
  );
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
