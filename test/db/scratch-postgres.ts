// A throwaway PostgreSQL database per run (tests and benchmark), so runs never collide.
import { randomBytes } from 'node:crypto';

export const POSTGRES_URL = process.env.CLOACINA_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';

const { Client } = require('pg') as {
  Client: new (config: object) => { connect(): Promise<void>; query(sql: string): Promise<unknown>; end(): Promise<void> };
};

/** Runs one statement on the server's default database (create/drop database, reachability). */
export async function adminQuery(sql: string): Promise<void> {
  const client = new Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface ScratchDatabase {
  url: string;
  drop: () => Promise<void>;
}

/** Creates `<prefix>_<random>`; throws when PostgreSQL is unreachable. */
export async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminQuery(`drop database if exists ${name} with (force)`) };
}
