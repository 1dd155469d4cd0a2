// `cloacina-sign db migrate`
import { Command } from 'commander';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { printData, runAction, say } from '../output';

export function dbCommand(): Command {
  const db = new Command('db').description('database administration');
  withDbOptions(db.command('migrate').description('create or upgrade the schema (creates a missing SQLite file)')).action((options: DatabaseOptions) =>
    runAction(options, () =>
      withDatabase(
        options,
        async ({ db: database }) => {
          // Applied while opening, under the migration lock that serializes concurrent migrations.
          const applied = [...database.appliedMigrations];
          say(applied.length ? `Applied ${applied.length} migration(s) to ${database.target.display}` : `${database.target.display} is up to date`);
          printData(options, { applied, database: database.target.display }, applied.join('\n'));
        },
        { migrating: true },
      ),
    ),
  );
  return db;
}
