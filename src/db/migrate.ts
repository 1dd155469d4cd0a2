// Schema migrations: TypeScript files in migrations/, compiled to dist/migrations/ and run by knex.
import { join } from 'node:path';
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import type { Database } from './database';

export const MIGRATIONS_DIRECTORY = join(__dirname, '../../migrations');

function config(): Knex.MigratorConfig {
  return { directory: MIGRATIONS_DIRECTORY, loadExtensions: ['.js'], tableName: 'knex_migrations' };
}

/** Applies every pending migration; returns the names applied. */
export async function migrateLatest(db: Database): Promise<string[]> {
  const [, applied] = (await db.run((knex) => knex.migrate.latest(config()))) as [number, string[]];
  return applied;
}

/** Names of migrations not yet applied. */
export async function pendingMigrations(db: Database): Promise<string[]> {
  const [, pending] = (await db.run((knex) => knex.migrate.list(config()))) as [unknown, { file: string }[]];
  return pending.map((migration) => migration.file);
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
