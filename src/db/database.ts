// One open database: a knex pool for SQLite (embedded default) or PostgreSQL, plus its change feed.
// Nothing waits on the database without bound (default 5 s, OpenOptions.timeoutMs or
// CLOACINA_DATABASE_TIMEOUT): every operation is raced against it, and on PostgreSQL so is every step
// that precedes a query: the TCP connect, TLS, start-up and authentication, knex's own version query,
// the pool's acquire. A wait that outlives the bound means the path to the server is stalled: every
// connection, established or still being set up, is torn down (its socket destroyed, so nothing keeps
// the process alive), and for one bound after that the database is not asked again: operations fail at
// once, so a caller making several in a row (a verification, then its audit) is refused within one
// bound. The pool recovers on fresh connections once the server answers again, and closing never waits
// on a silent server. SQLite waits at most that long for a lock. The one wait allowed to last longer is
// for the migration lock (see migrate.ts), made of short bounded steps.
import { accessSync, constants, existsSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { ChangeFeed } from './change-feed';
import { requireDriver } from './drivers';
import { databaseError } from './errors';
import { type DatabaseTarget, type Engine, parseDatabaseUrl, urlSecrets } from './url';

export const DEFAULT_DATABASE_TIMEOUT_MS = 5000;
/** The bound in seconds (decimals allowed) when `timeoutMs` is not given; the CLI's way to set it. */
export const DATABASE_TIMEOUT_ENV = 'CLOACINA_DATABASE_TIMEOUT';
export const DEFAULT_MIGRATION_LOCK_TIMEOUT_MS = 60_000;
/** The longest bound a timer holds (a longer one would fire at once) and the pool's whole-millisecond waits. */
const MAX_DATABASE_TIMEOUT_MS = 2 ** 31 - 1;

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
  /** Largest staleness of cached trust, in ms (default 250; the propagation bound is 1000). */
  maxStalenessMs?: number;
  /** PostgreSQL: invalidate caches on NOTIFY (default true). */
  listen?: boolean;
  /**
   * Longest wait for any one database operation, connecting included, before it fails with
   * DATABASE_UNAVAILABLE (default: CLOACINA_DATABASE_TIMEOUT in seconds, else 5000 ms).
   */
  timeoutMs?: number;
  /** Whose errors these are: the CLI's messages name its commands, never these options. */
  commandLine?: boolean;
}

export class Database {
  /** @internal Queries go through the package's own modules; the public type has no knex handle. */
  readonly knex: Knex;
  readonly engine: Engine;
  readonly target: DatabaseTarget;
  /** @internal */
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

  /** @internal openDatabase makes one. */
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
   * DATABASE_UNAVAILABLE when the database has not answered within the bound, or at once while a wait
   * for it ran out less than one bound ago (PostgreSQL).
   * @internal
   */
  async run<T>(work: (knex: Knex) => Promise<T> | Knex.QueryBuilder | Knex.Raw, options: { timeoutMs?: number } = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const silentFor = this.connections?.recentSilence();
    if (silentFor !== undefined) {
      throw new CloacinaSignError(
        'DATABASE_UNAVAILABLE',
        `${this.unansweredMessage(this.timeoutMs)} (${silentFor} ms ago); it is not asked again for ${this.timeoutMs - silentFor} ms`,
      );
    }
    const startedAt = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const pending = Promise.resolve().then(() => work(this.knex)) as Promise<T>;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A shorter wait chosen by the caller (a health probe) says nothing about the server as a whole.
        if (timeoutMs >= this.timeoutMs) this.connections?.unanswered();
        reject(new CloacinaSignError('DATABASE_UNAVAILABLE', this.unansweredMessage(timeoutMs)));
      }, timeoutMs);
    });
    try {
      return await Promise.race([pending, deadline]);
    } catch (error) {
      // Torn down because a wait ran out meanwhile, or timed out by the server or SQLite: say which bound.
      throw databaseError(error, this.target.display, this.secrets, { boundMs: this.timeoutMs, stalled: this.connections?.silentSince(startedAt) });
    } finally {
      clearTimeout(timer);
      // The late outcome of a query that lost the race is nobody's business any more.
      pending.catch(() => undefined);
    }
  }

  private unansweredMessage(timeoutMs: number): string {
    return `the database ${this.target.display} did not answer within ${timeoutMs} ms`;
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

/** The part of knex's client that sets up a raw connection. */
interface KnexPgClient {
  acquireRawConnection(): Promise<PgClient>;
}

/** A server error (it has a SQLSTATE) is an answer; a lost connection is not. */
function isServerAnswer(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return error === null || error === undefined || (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code));
}

/**
 * The pool's PostgreSQL connections, from the TCP connect on. A connection not set up within `timeoutMs`
 * (connect, TLS, start-up, authentication, knex's version query), or a query with no answer within it,
 * means the path to the server is stalled: then every connection is torn down at once, so pending
 * queries fail, knex discards the connections, and the next query opens a fresh one; and for one bound
 * nothing more is asked of the server. Without this, silent connections would stay in the pool, each
 * costing a full timeout when next used, a connection stuck in its set-up would keep its socket (and the
 * process) alive, and closing would wait on a server that never answers.
 */
class PgConnections {
  private readonly clients = new Set<PgClient>();
  /** Sockets of connections still being set up. */
  private readonly settingUp = new Set<Socket>();
  /** The sockets the set-up in progress opens (pg opens its socket synchronously when the client is created). */
  private opening: Socket[] | undefined;
  /** When a wait on the server last ran out, unless it answered since. */
  private silentAt: number | undefined;
  private readonly stallListeners: (() => void)[] = [];

  constructor(private readonly timeoutMs: number) {}

  onStall(listener: () => void): void {
    this.stallListeners.push(listener);
  }

  /** pg's `stream` option: every connection's socket, known (and destroyable) before it even connects. */
  readonly openSocket = (): Socket => {
    const socket = new Socket();
    this.opening?.push(socket);
    this.settingUp.add(socket);
    socket.once('close', () => this.settingUp.delete(socket));
    return socket;
  };

  /** Bounds every raw connection knex sets up for the pool. */
  attach(knex: Knex): void {
    const client = knex.client as KnexPgClient;
    const acquireRaw = client.acquireRawConnection.bind(client);
    client.acquireRawConnection = () => this.establish(acquireRaw);
  }

  private establish(acquireRaw: () => Promise<PgClient>): Promise<PgClient> {
    const sockets: Socket[] = [];
    this.opening = sockets;
    let attempt: Promise<PgClient>;
    try {
      attempt = acquireRaw();
    } finally {
      this.opening = undefined;
    }
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        const error = new Error(`no answer within ${this.timeoutMs} ms while connecting`);
        for (const socket of sockets) socket.destroy(error);
        this.stalled(error);
        reject(error);
      }, this.timeoutMs);
      timer.unref();
    });
    attempt.then(
      (client) => {
        for (const socket of sockets) this.settingUp.delete(socket);
        // Set up after the deadline: the pool was told it failed, so nobody else will close it.
        if (timedOut) client.connection.stream.destroy();
        else this.answered();
      },
      () => undefined,
    );
    return Promise.race([attempt, deadline]).finally(() => clearTimeout(timer));
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
      const timer = setTimeout(() => this.stalled(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref();
      args[callbackIndex] = (...results: unknown[]) => {
        clearTimeout(timer);
        if (isServerAnswer(results[0])) this.answered();
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

  /** An operation's deadline ran out: nothing is asked of the server for one bound (its connections are torn down by their own deadlines). */
  unanswered(): void {
    this.silentAt = Date.now();
  }

  private answered(): void {
    this.silentAt = undefined;
  }

  /** How long ago a wait on the server ran out, while that is less than one bound ago. */
  recentSilence(): number | undefined {
    if (this.silentAt === undefined) return undefined;
    const ago = Date.now() - this.silentAt;
    return ago < this.timeoutMs ? ago : undefined;
  }

  /** Whether a wait on the server has run out since `time` (and nothing answered after it). */
  silentSince(time: number): boolean {
    return this.silentAt !== undefined && this.silentAt >= time;
  }

  private stalled(error: Error): void {
    this.unanswered();
    this.destroyAll(error);
    for (const listener of this.stallListeners) listener();
  }

  destroyAll(error?: Error): void {
    for (const client of this.clients) client.connection.stream.destroy(error);
    this.clients.clear();
    for (const socket of this.settingUp) socket.destroy(error);
    this.settingUp.clear();
  }
}

/** The part of the bound the server's statement timeout takes; the rest leaves time for its answer to arrive. */
const SERVER_TIMEOUT_SHARE = 0.8;

function knexConfig(target: DatabaseTarget, timeoutMs: number, connections: PgConnections, readOnly: boolean): Knex.Config {
  if (target.engine === 'postgres') {
    return {
      log: quiet,
      client: 'pg',
      connection: {
        connectionString: target.connection,
        // The connection's set-up is bounded by PgConnections (pg's own connectionTimeoutMillis would not
        // cover knex's version query that follows it); its sockets come from there, to be destroyed on time.
        stream: connections.openSocket,
        // The server gives up too (a lock held on a table), a little before the client would: a server
        // that answers, even with its timeout, is never taken for a silent one (whose connections are torn down).
        statement_timeout: Math.max(1, Math.floor(timeoutMs * SERVER_TIMEOUT_SHARE)),
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
      },
      pool: {
        min: 0,
        max: 8,
        createTimeoutMillis: timeoutMs,
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
        `no database at ${target.display}: run \`cloacina-sign db migrate\` first${options.commandLine ? '' : ' (or open it with { migrate: true })'}; nothing was created`,
      );
    }
    return;
  }
  if (options.readOnly) return;
  const why = sqliteNotWritable(file);
  if (why) {
    throw new CloacinaSignError(
      'DATABASE_ERROR',
      `the database ${target.display} is read-only for this process: ${why}; this operation writes (${options.commandLine ? 'the list commands, which only read, work' : "reading works: open it with { readOnly: true }, as the CLI's list commands do"})`,
    );
  }
}

/** CLOACINA_DATABASE_TIMEOUT, in ms (undefined when unset). */
function timeoutFromEnvironment(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env[DATABASE_TIMEOUT_ENV]?.trim();
  if (!text) return undefined;
  const ms = /^\d+(\.\d+)?$/.test(text) ? Math.round(Number(text) * 1000) : Number.NaN;
  if (!(ms >= 1 && ms <= MAX_DATABASE_TIMEOUT_MS)) {
    throw new CloacinaSignError(
      'INVALID_INPUT',
      `${DATABASE_TIMEOUT_ENV} must be a positive number of seconds from 0.001 to ${Math.floor(MAX_DATABASE_TIMEOUT_MS / 1000)} (e.g. 5 or 0.5), not "${text}"`,
    );
  }
  return ms;
}

/**
 * Opens the database named by `url` (default: CLOACINA_DATABASE_URL, else SQLite ./cloacina.db).
 * A missing SQLite file is refused (DATABASE_ERROR, nothing created) unless `migrate` is set.
 */
export async function openDatabase(url?: string, options: OpenOptions = {}): Promise<Database> {
  const target = parseDatabaseUrl(url);
  const timeoutMs = options.timeoutMs ?? timeoutFromEnvironment() ?? DEFAULT_DATABASE_TIMEOUT_MS;
  if (!(Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= MAX_DATABASE_TIMEOUT_MS)) {
    throw new CloacinaSignError('INVALID_INPUT', `timeoutMs must be a whole number of milliseconds from 1 to ${MAX_DATABASE_TIMEOUT_MS}`);
  }
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
  const knex = createKnex(knexConfig(target, timeoutMs, connections, options.readOnly === true));
  if (target.engine === 'postgres') connections.attach(knex);
  const db = new Database(target, knex, { ...options, timeoutMs }, target.engine === 'postgres' ? connections : undefined);
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
