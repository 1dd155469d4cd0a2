// The signing service: API tokens (only their SHA-256 is stored, never the token) and the actor of an audit
// event (the id of the token behind a service request). Both engines, like the initial schema.
import type { Knex } from 'knex';

const ID = 36;
const TIME = 32;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_tokens', (t) => {
    t.string('id', ID).primary();
    t.string('org_id', ID).notNullable().references('id').inTable('organizations');
    t.string('name', 255).nullable();
    // Lowercase hex SHA-256 of the whole token (`cst_...`): the lookup key. The token itself is shown once.
    t.string('token_hash', 64).notNullable().unique();
    // JSON array of scopes: "sign:<signing key id>", "upload".
    t.text('scopes').notNullable();
    t.string('created_at', TIME).notNullable();
    t.string('expires_at', TIME).nullable();
    t.string('revoked_at', TIME).nullable();
    t.index(['org_id']);
  });

  await knex.schema.alterTable('audit_events', (t) => {
    t.string('actor', 64).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropColumn('actor');
  });
  await knex.schema.dropTableIfExists('api_tokens');
}
