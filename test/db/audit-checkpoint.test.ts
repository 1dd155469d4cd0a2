import { expect } from 'chai';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { AuditTrail } from '../../src/audit/audit-trail';
import { GENESIS_HASH, HASHED_COLUMNS, type HashedValues, rowHash } from '../../src/audit/chain';
import { auditToDatabase } from '../../src/audit/database-sink';
import { type Database, openDatabase } from '../../src/db/database';
import { TokenManager } from '../../src/db/tokens';
import { DbKeyManager } from '../../src/keys/db-key-manager';
import { runCli, tempDir } from '../helpers';
import { verifyNoteIndependently } from '../signed-note-check';
import { signRequest, startService, Transcript } from '../service/harness';
import { describeEngines } from './engines';

const ROWS = 8;

interface StoredRow extends Record<string, unknown> {
  id: string;
  seq: string | number;
}

describeEngines('signed checkpoints of the audit chain', (t) => {
  const dir = tempDir();
  const kek = randomBytes(32);
  const handles: Database[] = [];
  after(async () => {
    for (const db of handles) await db.close();
    dir.cleanup();
  });

  const cli = (url: string, args: string[]) =>
    runCli([...args, '--database', url], { CLOACINA_KEY_ENCRYPTION_KEY: kek.toString('base64'), CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: 'off' });

  /** A database of its own (tampering breaks a chain for good) with ROWS audit rows, a checkpoint key and a checkpoint of that chain. */
  async function checkpointed(): Promise<{ url: string; db: Database; note: string; notePath: string; pubPath: string; publicKey: Buffer }> {
    const url = await t.freshUrl();
    const db = await openDatabase(url, { migrate: true, listen: false });
    handles.push(db);
    const keys = new DbKeyManager(db);
    const org = await keys.createOrganization('audit');
    const key = await keys.createSigningKey(org.id, 'checkpoints', kek, 'audit-checkpoint');
    const trail = new AuditTrail(auditToDatabase(db));
    while (Number((await db.knex('audit_chain_head').first()).seq) < ROWS) {
      await trail.record({ eventType: 'verification.success', packagePath: `/pkg/${randomBytes(3).toString('hex')}.so`, signatureVerified: true });
    }
    const notePath = dir.join(`${randomBytes(6).toString('hex')}.note`);
    const issued = cli(url, ['audit', 'checkpoint', '--key-id', key.id, '--output', notePath, '--json']);
    expect(issued.status, issued.stderr).to.equal(0);
    const pubPath = dir.join(`${key.id}.pub`);
    writeFileSync(pubPath, key.publicKey);
    return { url, db, note: readFileSync(notePath, 'utf8'), notePath, pubPath, publicKey: key.publicKey };
  }

  function auditVerify(url: string, extra: string[] = []) {
    const result = cli(url, ['audit', 'verify', '--json', ...extra]);
    return { status: result.status, stderr: result.stderr, report: result.json() };
  }

  /** Recomputes every row hash from `from` on and the head, as the row-hash definition says: what someone with write access does. */
  async function rehash(db: Database, from: number): Promise<void> {
    const rows = (await db.knex('audit_events').orderBy('seq')) as StoredRow[];
    let prev = GENESIS_HASH;
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq >= from) {
        const values = Object.fromEntries(HASHED_COLUMNS.map((column) => [column, row[column] ?? null])) as HashedValues;
        if (typeof values.signature_verified === 'number') values.signature_verified = values.signature_verified === 1;
        const hash = rowHash(prev, seq, values);
        await db.knex('audit_events').where({ id: row.id }).update({ prev_hash: prev, row_hash: hash });
        prev = hash;
      } else prev = String(row.row_hash);
    }
    await db.knex('audit_chain_head').where({ id: 1 }).update({ seq: rows.length, head_hash: prev });
  }

  it('when a checkpoint is issued, it is a signed note an independent signed-note check verifies, recording the chain head', async () => {
    const { url, db, note, publicKey } = await checkpointed();
    const origin = note.split('\n')[0];
    expect(origin).to.match(/^cloacina-sign\/audit\/[0-9a-f-]{36}$/);
    const { lines } = verifyNoteIndependently(note, origin, publicKey);
    const { report } = auditVerify(url);
    expect(lines[1]).to.equal(String(ROWS));
    // The chain's head then; its audit.checkpoint.issued row came after it.
    expect(report.headSeq).to.equal(ROWS + 1);
    const last = (await db.knex('audit_events').where({ seq: ROWS }).first()) as StoredRow;
    expect(Buffer.from(lines[2], 'base64').toString('hex')).to.equal(last.row_hash);
    expect(lines[3]).to.match(/^timestamp \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('when the chain is intact and grew after two checkpoints, audit verify with both exits 0', async () => {
    const { url, db, notePath, pubPath } = await checkpointed();
    await new AuditTrail(auditToDatabase(db)).record({ eventType: 'package.signed', packageHash: 'ab'.repeat(32) });
    const keyId = (await db.knex('signing_keys').where({ purpose: 'audit-checkpoint' }).first()).id;
    const second = dir.join('second.note');
    expect(cli(url, ['audit', 'checkpoint', '--key-id', keyId, '--output', second]).status).to.equal(0);
    const { status, stderr, report } = auditVerify(url, ['--checkpoint', notePath, '--checkpoint', second, '--trust-key', pubPath]);
    expect(status, stderr).to.equal(0);
    expect(report.intact).to.equal(true);
    // The first checkpoint's audit.checkpoint.issued row, then the package.signed row.
    expect(report.checkpoints.map((c: { size: number }) => c.size)).to.deep.equal([ROWS, ROWS + 2]);
  });

  it('when the last rows were erased and the head moved back, audit verify passes without the checkpoint and fails with it', async () => {
    const { url, db, notePath, pubPath } = await checkpointed();
    await db
      .knex('audit_events')
      .where('seq', '>', ROWS - 2)
      .delete();
    await rehash(db, ROWS - 1);
    expect(auditVerify(url).status).to.equal(0);
    const { status, report } = auditVerify(url, ['--checkpoint', notePath, '--trust-key', pubPath]);
    expect(status).to.equal(1);
    expect(report.problem).to.include({ kind: 'rewritten', seq: ROWS });
  });

  it('when the whole chain was rewritten consistently, audit verify passes without the checkpoint and fails with it, naming the row', async () => {
    const { url, db, notePath, pubPath } = await checkpointed();
    await db.knex('audit_events').where({ seq: 2 }).update({ reason: 'nothing happened here' });
    await rehash(db, 1);
    expect(auditVerify(url).status).to.equal(0);
    const { status, report } = auditVerify(url, ['--checkpoint', notePath, '--trust-key', pubPath]);
    expect(status).to.equal(1);
    const last = (await db.knex('audit_events').where({ seq: ROWS }).first()) as StoredRow;
    expect(report.problem).to.include({ kind: 'rewritten', seq: ROWS, id: last.id });
  });

  it('when two rows were swapped and the chain rehashed, audit verify passes without the checkpoint and fails with it', async () => {
    const { url, db, notePath, pubPath } = await checkpointed();
    await db.knex('audit_events').where({ seq: 3 }).update({ seq: -3 });
    await db.knex('audit_events').where({ seq: 4 }).update({ seq: 3 });
    await db.knex('audit_events').where({ seq: -3 }).update({ seq: 4 });
    await rehash(db, 3);
    expect(auditVerify(url).status).to.equal(0);
    const { status, report } = auditVerify(url, ['--checkpoint', notePath, '--trust-key', pubPath]);
    expect(status).to.equal(1);
    expect(report.problem.kind).to.equal('rewritten');
  });

  it('when a checkpoint is checked with a key that did not sign it, audit verify refuses it as UNTRUSTED_SIGNER', async () => {
    const { url, notePath } = await checkpointed();
    const other = dir.join('other.pub');
    writeFileSync(other, createPublicKeyRaw());
    const result = cli(url, ['audit', 'verify', '--checkpoint', notePath, '--trust-key', other]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('UNTRUSTED_SIGNER');
  });

  it('when a checkpoint note was edited, audit verify refuses it as INVALID_SIGNATURE', async () => {
    const { url, note, pubPath } = await checkpointed();
    const edited = dir.join('edited.note');
    writeFileSync(edited, note.replace(`\n${ROWS}\n`, `\n${ROWS - 1}\n`));
    const result = cli(url, ['audit', 'verify', '--checkpoint', edited, '--trust-key', pubPath]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('INVALID_SIGNATURE');
  });

  it('when audit checkpoint is given a package signing key, it refuses it as INVALID_KEY and stores nothing', async () => {
    const { url, db } = await checkpointed();
    const keys = new DbKeyManager(db);
    const org = (await keys.listOrganizations())[0];
    const pkgKey = await keys.createSigningKey(org.id, 'release', kek);
    const result = cli(url, ['audit', 'checkpoint', '--key-id', pkgKey.id]);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.include('INVALID_KEY').and.include('purpose package');
    expect(await db.knex('audit_checkpoints').where({ key_id: pkgKey.id })).to.have.length(0);
  });

  it('when keys generate --purpose audit-checkpoint runs, keys list shows the purpose and the creation is audited with it', async () => {
    const { url, db } = await checkpointed();
    const created = cli(url, ['keys', 'generate', '--org', 'audit', '--name', 'second', '--purpose', 'audit-checkpoint', '--json']);
    expect(created.status, created.stderr).to.equal(0);
    const id = created.json().id;
    const listed = cli(url, ['keys', 'list', '--org', 'audit', '--json']).json();
    expect(listed.find((k: { id: string }) => k.id === id)).to.include({ purpose: 'audit-checkpoint' });
    const row = await db.knex('audit_events').where({ event_type: 'key.signing.created', key_id: id }).first();
    expect(row.reason).to.include('audit-checkpoint');
    expect(cli(url, ['keys', 'generate', '--org', 'audit', '--name', 'x', '--purpose', 'nonsense']).status).to.not.equal(0);
  });

  it('when the signing service is asked to sign with an audit-checkpoint key, it refuses with INVALID_KEY', async () => {
    const keys = new DbKeyManager(t.db);
    const org = await keys.createOrganization(t.unique('svc-checkpoint'));
    const key = await keys.createSigningKey(org.id, 'checkpoints', kek, 'audit-checkpoint');
    const token = (await new TokenManager(keys).create({ orgId: org.id, scopes: [`sign:${key.id}`] })).token;
    const transcript = new Transcript();
    const service = await startService({ database: t.url, kek: kek.toString('base64'), transcript });
    try {
      const answer = await signRequest(transcript, service.url, token, { keyId: key.id, packageHash: randomBytes(32).toString('hex') });
      expect(answer.status, answer.text).to.not.equal(200);
      expect(answer.json().error.code).to.equal('INVALID_KEY');
    } finally {
      await service.stop();
    }
  });
});

/** A raw Ed25519 public key nobody here signed with. */
function createPublicKeyRaw(): Buffer {
  return generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
}
