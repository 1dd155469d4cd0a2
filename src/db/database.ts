// One open database: a knex pool for SQLite (embedded default) or PostgreSQL, plus its change feed.
// Nothing waits on the database without bound: every query is raced against a deadline (default 5 s);
// on PostgreSQL a query that outlives it means the path to the server is stalled, so every pooled
// connection is torn down (the pool recovers on fresh connections once the server answers again, and
// closing never waits on a silent server); SQLite waits at most that long for a lock. The one wait
// allowed to last longer is for the migration lock (see migrate.ts), made of short bounded steps.
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { ChangeFeed } from '../trust/change-feed';
import { requireDriver } from './drivers';
import { databaseError } from './errors';
import { type DatabaseTarget, type Engine, parseDatabaseUrl, urlSecrets } from './url';

export const DEFAULT_DATABASE_TIMEOUT_MS = 5000;
export const DEFAULT_MIGRATION_LOCK_TIMEOUT_MS = 60_000;

export interface OpenOptions {
  /**
   * Run pending migrations after opening, serialized with every other process migrating the same
   * database (PostgreSQL: an advisory lock; SQLite: the write lock). The only option that creates a
   * missing SQLite file.
   */
  migrate?: boolean;
  /** Longest wait for another process's migration to finish before DATABASE_UNAVAILABLE (default 60000 ms). */
  migrationLockTimeoutMs?: number;
  /**
   * A missing SQLite file is always refused unless `migrate` is set; `mustExist` refuses it even then.
   */
  mustExist?: boolean;
  /**
   * SQLite: open the file read-only. Nothing is created or written (no -wal/-shm files when the file or
   * its directory is not writable: the checkpointed file is then read as immutable). Any write fails with
   * DATABASE_ERROR. Not combinable with `migrate`. PostgreSQL: no effect.
   */
  readOnly?: boolean;
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
  /** The migrations `openDatabase(url, { migrate: true })` applied (empty otherwise, or when up to date). */
  appliedMigrations: readonly string[] = [];
  /** A SQLite file opened with `readOnly`. */
  readonly readOnly: boolean;
  /** Migrations wait at most this long for another process's migration (ms). */
  readonly migrationLockTimeoutMs: number;
  /** The URL's password (raw and decoded), masked in every error message. */
  private readonly secrets: readonly string[];
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
    this.readOnly = target.engine === 'sqlite' && target.connection !== ':memory:' && options.readOnly === true;
    this.migrationLockTimeoutMs = options.migrationLockTimeoutMs ?? DEFAULT_MIGRATION_LOCK_TIMEOUT_MS;
    this.secrets = target.engine === 'postgres' ? urlSecrets(target.connection) : [];
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
      throw databaseError(error, this.target.display, this.secrets);
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

function knexConfig(target: DatabaseTarget, timeoutMs: number, connections: PgConnections, readOnly: boolean): Knex.Config {
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
  const readOnlyFile = readOnly && target.connection !== ':memory:';
  return {
    log: quiet,
    client: 'sqlite3',
    connection: readOnlyFile ? { filename: readOnlyUri(target.connection), flags: ['OPEN_URI'] } : { filename: target.connection },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate: (conn: { exec: (sql: string, done: (error: Error | null) => void) => void }, done: (error: Error | null, conn: unknown) => void) => {
        // WAL and a busy timeout let several processes share the file; foreign keys are off by default in SQLite.
        // Read-only: the file is already in WAL mode (set when it was created), and setting it would be a write.
        const journal = readOnlyFile ? '' : ' PRAGMA journal_mode = WAL;';
        conn.exec(`PRAGMA busy_timeout = ${Math.floor(timeoutMs)};${journal} PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;`, (error) =>
          done(error, conn),
        );
      },
    },
    acquireConnectionTimeout: timeoutMs,
  };
}

/** Whether this process may write `path` (undefined) or why not. */
function notWritable(path: string): string | undefined {
  try {
    accessSync(path, constants.W_OK);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'not writable';
  }
}

/** The file is read-only for this process, or its directory is (so SQLite cannot create its -wal/-shm files). */
function sqliteNotWritable(file: string): string | undefined {
  const fileProblem = notWritable(file);
  if (fileProblem) return `no write permission on the file (${fileProblem})`;
  const sidecarsWritable = [`${file}-wal`, `${file}-shm`].every((sidecar) => existsSync(sidecar) && !notWritable(sidecar));
  const dirProblem = notWritable(dirname(file));
  if (dirProblem && !sidecarsWritable) return `no write permission on its directory (${dirProblem})`;
  return undefined;
}

/**
 * The URI a read-only connection opens. `mode=ro` never writes the file; when the -wal/-shm files
 * neither exist (no process has the database open for writing) nor can be created by this process,
 * SQLite cannot read a WAL database without them unless it is told the file is `immutable`: then it
 * reads the checkpointed file as is, without locks (a writer with more rights starting meanwhile could
 * go unseen by this read; the commands using it are short).
 */
function readOnlyUri(file: string): string {
  const path = file
    .split('/')
    .map((part) => encodeURIComponent(part))
    .join('/');
  const sidecarsExist = existsSync(`${file}-wal`) || existsSync(`${file}-shm`);
  const immutable = !sidecarsExist && sqliteNotWritable(file) !== undefined;
  return `file:${path}?mode=ro${immutable ? '&immutable=1' : ''}`;
}

/** Refuses what SQLite would fail at obscurely: a missing file (unless migrating), a read-only one for writing. */
function checkSqliteFile(target: DatabaseTarget, options: OpenOptions): void {
  if (target.engine !== 'sqlite' || target.connection === ':memory:') return;
  const file = target.connection;
  if (!existsSync(file)) {
    if (!options.migrate || options.mustExist || options.readOnly) {
      throw new CloacinaSignError(
        'DATABASE_ERROR',
        `no database at ${target.display}: run \`cloacina-sign db migrate\` first (or open it with { migrate: true }); nothing was created`,
      );
    }
    return;
  }
  if (options.readOnly) return;
  const why = sqliteNotWritable(file);
  if (why) {
    throw new CloacinaSignError(
      'DATABASE_ERROR',
      `the database ${target.display} is read-only for this process: ${why}; this operation writes (reading works: open it with { readOnly: true }, as the CLI's list commands do)`,
    );
  }
}

/**
 * Opens the database named by `url` (default: CLOACINA_DATABASE_URL, else SQLite ./cloacina.db).
 * A missing SQLite file is refused (DATABASE_ERROR, nothing created) unless `migrate` is set.
 */
export async function openDatabase(url?: string, options: OpenOptions = {}): Promise<Database> {
  const target = parseDatabaseUrl(url);
  const timeoutMs = options.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new CloacinaSignError('INVALID_INPUT', 'timeoutMs must be a positive number of milliseconds');
  const lockTimeoutMs = options.migrationLockTimeoutMs ?? DEFAULT_MIGRATION_LOCK_TIMEOUT_MS;
  if (!(Number.isFinite(lockTimeoutMs) && lockTimeoutMs >= 0)) {
    throw new CloacinaSignError('INVALID_INPUT', 'migrationLockTimeoutMs must be a non-negative number of milliseconds');
  }
  if (options.readOnly && options.migrate) throw new CloacinaSignError('INVALID_INPUT', 'a database opened readOnly cannot be migrated');
  checkSqliteFile(target, options);
  requireDriver(target.engine);
  // Loaded here, not at the top, so commands that never touch a database do not pay for knex and its drivers.
  const createKnex: (config: Knex.Config) => Knex = require('knex');
  const connections = new PgConnections(timeoutMs);
  const db = new Database(
    target,
    createKnex(knexConfig(target, timeoutMs, connections, options.readOnly === true)),
    { ...options, timeoutMs },
    target.engine === 'postgres' ? connections : undefined,
  );
  try {
    await db.run((knex) => knex.raw('select 1'));
    if (options.migrate) {
      const { migrateLatest } = await import('./migrate');
      db.appliedMigrations = await migrateLatest(db);
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}
