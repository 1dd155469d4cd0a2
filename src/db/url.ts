// Where the database lives: CLOACINA_DATABASE_URL / --database, parsed into an engine and a target.
import { resolve } from 'node:path';
import { CloacinaSignError } from '../errors';

export type Engine = 'sqlite' | 'postgres';

export interface DatabaseTarget {
  engine: Engine;
  /** SQLite: the absolute file path (or ':memory:'). PostgreSQL: the connection string. */
  connection: string;
  /** The URL with any password masked, safe for messages and logs. */
  display: string;
}

export const DEFAULT_SQLITE_PATH = './cloacina.db';

/** Masks the password of a URL so it can appear in errors. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/** Unset -> SQLite `./cloacina.db`; `sqlite:<path>`, `sqlite://<path>`; `postgres://` or `postgresql://`. */
export function parseDatabaseUrl(url: string | undefined = process.env.CLOACINA_DATABASE_URL): DatabaseTarget {
  const text = url === undefined || url.trim() === '' ? `sqlite:${DEFAULT_SQLITE_PATH}` : url.trim();
  if (/^postgres(ql)?:\/\//i.test(text)) return { engine: 'postgres', connection: text, display: redactUrl(text) };
  const sqlite = /^sqlite:(?:\/\/)?(.*)$/i.exec(text);
  if (sqlite) {
    const path = sqlite[1];
    if (path === '') throw new CloacinaSignError('INVALID_INPUT', 'the sqlite: database URL needs a file path');
    const connection = path === ':memory:' ? path : resolve(path);
    return { engine: 'sqlite', connection, display: `sqlite:${connection}` };
  }
  throw new CloacinaSignError('INVALID_INPUT', `unsupported database URL "${redactUrl(text)}": use sqlite:<path> or postgres://user@host:port/database`);
}
