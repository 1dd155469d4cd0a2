// A statement run on one of the pool's own connections, outside knex's query builder and runner, for the
// few statements on a hot path (the audit writer's batch INSERT): knex's per-query work (compiling the
// query object, its runner, the driver's statement set-up) costs more than such a statement itself.
// SQLite: the statement is prepared once per connection and reused (node-sqlite3 would prepare and
// finalize it for every call). PostgreSQL: an unnamed statement, as knex sends: a named one would save the
// server a parse per batch but breaks behind PgBouncer in transaction mode before 1.21, where the next
// batch may reach a server connection that never saw it.
import type { Knex } from 'knex';
import type { Engine } from './url';

interface SqliteStatement {
  all(parameters: unknown[], callback: (error: Error | null, rows: unknown[]) => void): void;
  finalize(callback?: () => void): void;
}

interface SqliteConnection {
  prepare(sql: string, callback: (error: Error | null) => void): SqliteStatement;
  close(callback: (error: Error | null) => void): void;
}

interface PgConnection {
  query(config: { text: string; values: unknown[] }, callback: (error: Error | null, result: { rowCount: number | null }) => void): void;
}

interface PoolClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
}

/** Statements prepared on each SQLite connection, by their SQL. */
const prepared = new WeakMap<SqliteConnection, Map<string, SqliteStatement>>();

function preparedOn(connection: SqliteConnection, sql: string): SqliteStatement {
  let statements = prepared.get(connection);
  if (!statements) {
    const cached = new Map<string, SqliteStatement>();
    statements = cached;
    prepared.set(connection, cached);
    // SQLite refuses to close a connection with a statement not finalized (SQLITE_BUSY): when the pool
    // closes this one, its statements are finalized first.
    const close = connection.close.bind(connection);
    connection.close = (callback) => {
      const open = [...cached.values()];
      cached.clear();
      let left = open.length;
      if (left === 0) return close(callback);
      for (const statement of open) statement.finalize(() => (--left === 0 ? close(callback) : undefined));
    };
  }
  let statement = statements.get(sql);
  if (!statement) {
    // A statement that fails to compile reports it to the call below (and is dropped then).
    statement = connection.prepare(sql, () => undefined);
    statements.set(sql, statement);
  }
  return statement;
}

function runSqlite(connection: SqliteConnection, sql: string, parameters: unknown[]): Promise<number | null> {
  const statement = preparedOn(connection, sql);
  return new Promise((resolve, reject) => {
    statement.all(parameters, (error) => {
      if (!error) return resolve(null);
      // After a failure the statement is dropped, not reused: the next call prepares it afresh.
      if (prepared.get(connection)?.get(sql) === statement) prepared.get(connection)?.delete(sql);
      statement.finalize();
      reject(error);
    });
  });
}

function runPostgres(connection: PgConnection, sql: string, parameters: unknown[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    connection.query({ text: sql, values: parameters }, (error, result) => (error ? reject(error) : resolve(result.rowCount)));
  });
}

/**
 * Runs one autocommitted statement on a connection of `knex`'s pool (waiting for one as any query does);
 * resolves with the number of rows it changed on PostgreSQL, null on SQLite.
 */
export async function runStatement(knex: Knex, engine: Engine, sql: string, parameters: unknown[]): Promise<number | null> {
  const client = knex.client as unknown as PoolClient;
  const connection = await client.acquireConnection();
  try {
    return engine === 'postgres'
      ? await runPostgres(connection as PgConnection, sql, parameters)
      : await runSqlite(connection as SqliteConnection, sql, parameters);
  } finally {
    await client.releaseConnection(connection);
  }
}
