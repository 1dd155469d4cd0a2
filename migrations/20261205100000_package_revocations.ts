// Revoked packages: an exact artifact (its SHA-256, its BLAKE3 or both) an organization refuses whoever
// signed it, and the sequence of the signed revocation lists it issues to pinned-key runners.
import type { Knex } from 'knex';

const ID = 36;
const TIME = 32;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('package_revocations', (t) => {
    t.string('id', ID).primary();
    t.string('org_id', ID).notNullable().references('id').inTable('organizations');
    // Lowercase hex; at least one of the two. A package file revoked by path records both.
    t.string('sha256', 64).nullable();
    t.string('blake3', 64).nullable();
    t.string('reason', 255).notNullable();
    t.string('revoked_at', TIME).notNullable();
    t.unique(['org_id', 'sha256']);
    t.unique(['org_id', 'blake3']);
  });
  await knex.schema.createTable('revocation_list_sequences', (t) => {
    t.string('org_id', ID).primary().references('id').inTable('organizations');
    // The sequence of the last list issued: the next one is higher, so a runner refuses an older one.
    t.bigInteger('sequence').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('revocation_list_sequences');
  await knex.schema.dropTableIfExists('package_revocations');
}
