// Version-2 documents (signed statements) stored by `package sign --store` and `package upload`, in a
// table of their own: package_signatures keeps exactly the version-1 columns Cloacina reads.
import type { Knex } from 'knex';

const ID = 36;
const TIME = 32;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('package_statements', (t) => {
    t.string('id', ID).primary();
    t.string('package_id', ID).notNullable().references('id').inTable('packages');
    // SHA-256 of the package, as in packages and package_signatures: how a package is found.
    t.string('package_hash', 64).notNullable();
    t.string('key_fingerprint', 64).notNullable();
    // The statement's own digest and its algorithm (blake3 or sha256).
    t.string('digest_algorithm', 16).notNullable();
    t.string('digest', 64).notNullable();
    t.text('name').notNullable();
    t.string('version', 255).notNullable();
    t.string('issued_at', TIME).notNullable();
    t.string('expires_at', TIME).nullable();
    // Standard base64 of the Ed25519 signature over the statement.
    t.string('signature', 128).notNullable();
    // The canonical document, byte for byte what verifies (the .sig file without its newline).
    t.text('document').notNullable();
    t.string('signing_key_id', ID).nullable().references('id').inTable('signing_keys');
    t.string('created_at', TIME).notNullable();
    t.unique(['package_hash', 'key_fingerprint', 'signature']);
    t.index(['package_hash']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('package_statements');
}
