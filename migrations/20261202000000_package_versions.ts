// Rollback protection: the highest version of each package an organization has loaded (from signed
// version-2 statements). A lower version is then refused until an operator lowers the mark, audited.
import type { Knex } from 'knex';

const ID = 36;
const TIME = 32;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('package_versions', (t) => {
    t.string('org_id', ID).notNullable().references('id').inTable('organizations');
    // The package name as signed in the statement.
    t.string('package_name', 255).notNullable();
    // A SemVer 2.0.0 version; compared as SemVer, never as text.
    t.string('highest_version', 255).notNullable();
    t.string('updated_at', TIME).notNullable();
    t.primary(['org_id', 'package_name']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('package_versions');
}
