// Signed checkpoints of the audit hash chain. A signing key now has a purpose: `package` (every key made
// before, and the default) signs packages and revocation lists; `audit-checkpoint` signs checkpoints of the
// chain and nothing else, so neither kind of key can be made to sign the other's messages.
//
// audit_checkpoints keeps every checkpoint issued: the chain position it covers (seq, head_hash), the key
// that signed it, and the signed note itself. `origin` names this database's audit log in every note; it is
// chosen at the first checkpoint and read back from the earliest row after that.
import type { Knex } from 'knex';

const ID = 36;
const TIME = 32;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('signing_keys', (t) => {
    t.string('purpose', 32).notNullable().defaultTo('package');
  });
  await knex.schema.createTable('audit_checkpoints', (t) => {
    t.string('id', ID).primary();
    t.string('origin', 255).notNullable();
    t.bigInteger('seq').notNullable();
    t.string('head_hash', 64).notNullable();
    t.string('key_id', ID).notNullable().references('id').inTable('signing_keys');
    t.text('note').notNullable();
    t.string('created_at', TIME).notNullable();
    t.index(['created_at', 'id'], 'audit_checkpoints_created');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('audit_checkpoints');
  await knex.schema.alterTable('signing_keys', (t) => {
    t.dropColumn('purpose');
  });
}
