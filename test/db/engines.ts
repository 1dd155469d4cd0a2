// Runs a suite against SQLite and against a real PostgreSQL, each in a fresh database.
// PostgreSQL: CLOACINA_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test); each run creates
// and drops its own `cloacina_test_<random>` database. When PostgreSQL is unreachable the PostgreSQL suite is
// skipped with a printed line, unless CLOACINA_REQUIRE_POSTGRES=1 (CI), where the run fails.
import { randomBytes } from 'node:crypto';
import { type Database, openDatabase, type OpenOptions } from '../../src/db/database';
import { DbKeyManager } from '../../src/keys/db-key-manager';
import { tempDir } from '../helpers';
import { adminQuery, createScratchDatabase, POSTGRES_URL, type ScratchDatabase } from './scratch-postgres';

export { POSTGRES_URL };

export function postgresRequired(): boolean {
  return process.env.CLOACINA_REQUIRE_POSTGRES === '1' || process.env.CLOACINA_TEST_POSTGRES === 'required';
}

export interface EngineUnderTest {
  engine: 'sqlite' | 'postgres';
  /** The database URL of this run's fresh database. */
  url: string;
  /** Opens another handle (closed after the suite). */
  open(options?: OpenOptions): Promise<Database>;
  /** A handle opened before the tests, migrated. */
  db: Database;
  keys: DbKeyManager;
  /** A unique name, so tests sharing the database do not collide. */
  unique(prefix: string): string;
  /** The URL of another fresh, empty database of this engine (dropped after the suite). */
  freshUrl(): Promise<string>;
}

let reachable: Promise<string | undefined> | undefined;

/** undefined when reachable, else the reason. */
function postgresUnreachable(): Promise<string | undefined> {
  reachable ??= adminQuery('select 1').then(
    () => undefined,
    (error: Error) => error.message || String(error),
  );
  return reachable;
}

export function describeEngines(title: string, body: (engine: EngineUnderTest) => void): void {
  for (const engine of ['sqlite', 'postgres'] as const) {
    describe(`${title} [${engine === 'postgres' ? '@postgres' : 'sqlite'}]`, () => {
      const handles: Database[] = [];
      const dir = tempDir();
      let scratch: ScratchDatabase | undefined;
      const extra: ScratchDatabase[] = [];
      const state = { engine, url: '', unique: (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}` } as EngineUnderTest;
      state.open = async (options = {}) => {
        const db = await openDatabase(state.url, options);
        handles.push(db);
        return db;
      };
      state.freshUrl = async () => {
        if (engine === 'sqlite') return `sqlite:${dir.join(`${randomBytes(6).toString('hex')}.db`)}`;
        const fresh = await createScratchDatabase('cloacina_test');
        extra.push(fresh);
        return fresh.url;
      };

      before(async function () {
        if (engine === 'postgres') {
          const reason = await postgresUnreachable();
          if (reason !== undefined) {
            if (postgresRequired()) throw new Error(`PostgreSQL is required (CLOACINA_REQUIRE_POSTGRES=1) but unreachable at ${POSTGRES_URL}: ${reason}`);
            console.log(`    skipping the PostgreSQL suite "${title}": PostgreSQL unreachable at ${POSTGRES_URL} (${reason})`);
            this.skip();
          }
          scratch = await createScratchDatabase('cloacina_test');
          state.url = scratch.url;
        } else {
          state.url = `sqlite:${dir.join('test.db')}`;
        }
        state.db = await state.open({ migrate: true });
        state.keys = new DbKeyManager(state.db);
      });

      after(async () => {
        for (const db of handles) await db.close();
        dir.cleanup();
        await scratch?.drop();
        for (const fresh of extra) await fresh.drop();
      });

      body(state);
    });
  }
}
