// The initial schema, in the spirit of Cloacina's: organizations, keys, trust ACLs, stored signatures, audit.
// IDs are application-made UUIDs; timestamps are ISO 8601 UTC strings (identical on SQLite and PostgreSQL).
// Revoked rows are kept (revoked_at set); partial unique indexes apply to active rows only, so a revoked
// key can be trusted again, a revoked grant granted again and a revoked key's name reused.
import type { Knex } from 'knex';

const ID = 36;
const TIME = 32;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('organizations', (t) => {
    t.string('id', ID).primary();
    t.string('name', 255).notNullable().unique();
    t.string('created_at', TIME).notNullable();
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.string('id', ID).primary();
    t.string('org_id', ID).notNullable().references('id').inTable('organizations');
    t.string('name', 255).notNullable();
    t.binary('public_key').notNullable();
    t.string('fingerprint', 64).notNullable();
    // AES-256-GCM nonce || ciphertext || tag; associated data = (key id, org id, public key).
    t.binary('sealed_private_key').notNullable();
    t.integer('seal_version').notNullable();
    // Identifies the KEK (a domain-separated hash prefix, never the KEK).
    t.string('kek_id', 32).notNullable();
    t.string('created_at', TIME).notNullable();
    t.string('updated_at', TIME).notNullable();
    t.string('revoked_at', TIME).nullable();
    t.index(['org_id']);
    t.index(['fingerprint']);
  });
  await knex.raw('create unique index signing_keys_active_name on signing_keys (org_id, name) where revoked_at is null');

  await knex.schema.createTable('trusted_keys', (t) => {
    t.string('id', ID).primary();
    t.string('org_id', ID).notNullable().references('id').inTable('organizations');
    t.string('name', 255).nullable();
    t.binary('public_key').notNullable();
    t.string('fingerprint', 64).notNullable();
    t.string('created_at', TIME).notNullable();
    t.string('revoked_at', TIME).nullable();
    t.index(['org_id']);
  });
  await knex.raw('create unique index trusted_keys_active_fingerprint on trusted_keys (org_id, fingerprint) where revoked_at is null');

  await knex.schema.createTable('key_trust_acls', (t) => {
    t.string('id', ID).primary();
    t.string('parent_org_id', ID).notNullable().references('id').inTable('organizations');
    t.string('child_org_id', ID).notNullable().references('id').inTable('organizations');
    t.string('created_at', TIME).notNullable();
    t.string('revoked_at', TIME).nullable();
  });
  await knex.raw('create unique index key_trust_acls_active_pair on key_trust_acls (parent_org_id, child_org_id) where revoked_at is null');

  await knex.schema.createTable('packages', (t) => {
    t.string('id', ID).primary();
    t.string('package_hash', 64).notNullable().unique();
    t.text('package_name').nullable();
    t.string('created_at', TIME).notNullable();
  });

  await knex.schema.createTable('package_signatures', (t) => {
    t.string('id', ID).primary();
    t.string('package_id', ID).notNullable().references('id').inTable('packages');
    t.string('package_hash', 64).notNullable();
    t.string('key_fingerprint', 64).notNullable();
    t.string('signature', 128).notNullable();
    t.string('signed_at', TIME).notNullable();
    t.string('signing_key_id', ID).nullable().references('id').inTable('signing_keys');
    t.string('created_at', TIME).notNullable();
    t.unique(['package_hash', 'key_fingerprint', 'signature']);
    t.index(['package_hash']);
  });

  await knex.schema.createTable('audit_events', (t) => {
    t.string('id', ID).primary();
    t.string('event_type', 64).notNullable();
    t.string('timestamp', TIME).notNullable();
    t.string('org_id', ID).nullable();
    t.string('key_id', ID).nullable();
    t.text('package_path').nullable();
    t.string('package_hash', 64).nullable();
    t.string('signer_fingerprint', 64).nullable();
    t.boolean('signature_verified').nullable();
    t.text('reason').nullable();
    t.index(['org_id', 'timestamp']);
    t.index(['timestamp']);
  });

  // One row whose version every trust-, key- or signature-changing transaction increments: the cheap
  // change check of other processes (PostgreSQL also NOTIFYs on commit).
  await knex.schema.createTable('change_version', (t) => {
    t.integer('id').primary();
    t.bigInteger('version').notNullable();
  });
  await knex('change_version').insert({ id: 1, version: 0 });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['change_version', 'audit_events', 'package_signatures', 'packages', 'key_trust_acls', 'trusted_keys', 'signing_keys', 'organizations']) {
    await knex.schema.dropTableIfExists(table);
  }
}
