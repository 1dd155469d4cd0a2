import { expect } from 'chai';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { AuditTrail } from '../../src/audit/audit-trail';
import { auditToDatabase } from '../../src/audit/database-sink';
import { type Database, openDatabase } from '../../src/db/database';
import { DbKeyManager } from '../../src/keys/db-key-manager';
import { runCli, tempDir } from '../helpers';
import { describeEngines } from './engines';
import { adminQuery, createScratchDatabase, POSTGRES_URL } from './scratch-postgres';

const ROWS = 6;
const WITNESS_NAME = 'witness.example/w1';

/** The cosignature check of c2sp.org/tlog-cosignature, written from the text of the spec with node:crypto alone. */
function verifyCosignatureIndependently(note: string, name: string, rawPublicKey: Buffer): bigint {
  const split = note.lastIndexOf('\n\n');
  const body = note.slice(0, split + 1);
  const lines = note
    .slice(split + 2)
    .split('\n')
    .filter((line) => line.startsWith(`\u2014 ${name} `));
  expect(lines).to.have.length(1);
  const bytes = Buffer.from(lines[0].split(' ')[2], 'base64');
  expect(bytes).to.have.length(4 + 8 + 64);
  const keyId = createHash('sha256')
    .update(Buffer.concat([Buffer.from(name), Buffer.from([0x0a, 0x04]), rawPublicKey]))
    .digest()
    .subarray(0, 4);
  expect(bytes.subarray(0, 4).equals(keyId), 'key ID').to.equal(true);
  const time = bytes.readBigUInt64BE(4);
  const message = Buffer.from(`cosignature/v1\ntime ${time}\n${body}`);
  const spki = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), rawPublicKey]), format: 'der', type: 'spki' });
  expect(verify(null, message, spki, bytes.subarray(12)), 'Ed25519 cosignature').to.equal(true);
  return time;
}

function headOfNote(note: string): string {
  return Buffer.from(note.split('\n')[2], 'base64').toString('hex');
}

describeEngines('witness cosignatures of audit checkpoints', (t) => {
  const dir = tempDir();
  const kek = randomBytes(32);
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const drop of drops) await drop();
    dir.cleanup();
  });

  const cli = (url: string, args: string[]) =>
    runCli([...args, '--database', url], { CLOACINA_KEY_ENCRYPTION_KEY: kek.toString('base64'), CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: 'off' });

  function witnessKey(): { keyPath: string; pubPath: string; raw: Buffer } {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const id = randomBytes(6).toString('hex');
    const keyPath = dir.join(`${id}.pem`);
    writeFileSync(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const pubPath = dir.join(`${id}.pub`);
    writeFileSync(pubPath, publicKey.export({ format: 'pem', type: 'spki' }));
    return { keyPath, pubPath, raw: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32) };
  }

  async function emptyDatabase(): Promise<{ url: string; copy: () => Promise<string> }> {
    if (t.engine === 'sqlite') {
      const file = dir.join(`${randomBytes(6).toString('hex')}.db`);
      return {
        url: `sqlite:${file}`,
        copy: async () => {
          const copied = dir.join(`${randomBytes(6).toString('hex')}.db`);
          copyFileSync(file, copied);
          return `sqlite:${copied}`;
        },
      };
    }
    const scratch = await createScratchDatabase('cloacina_test');
    drops.push(scratch.drop);
    const source = new URL(scratch.url).pathname.slice(1);
    return {
      url: scratch.url,
      copy: async () => {
        const name = `cloacina_test_${randomBytes(6).toString('hex')}`;
        await adminQuery(`create database ${name} template ${source}`);
        drops.push(() => adminQuery(`drop database if exists ${name} with (force)`));
        const url = new URL(POSTGRES_URL);
        url.pathname = `/${name}`;
        return url.toString();
      },
    };
  }

  async function append(url: string, packagePath: string): Promise<void> {
    const db = await openDatabase(url, { migrate: false, listen: false });
    try {
      await new AuditTrail(auditToDatabase(db)).record({ eventType: 'verification.success', packagePath, signatureVerified: true });
    } finally {
      await db.close();
    }
  }

  function checkpoint(url: string, keyId: string): { note: string; path: string } {
    const path = dir.join(`${randomBytes(6).toString('hex')}.note`);
    const issued = cli(url, ['audit', 'checkpoint', '--key-id', keyId, '--output', path]);
    expect(issued.status, issued.stderr).to.equal(0);
    return { note: readFileSync(path, 'utf8'), path };
  }

  /** One database checkpointed at ROWS rows, copied (a backup restored elsewhere), then each copy appended to differently and checkpointed. */
  async function forked() {
    const { url, copy } = await emptyDatabase();
    const db: Database = await openDatabase(url, { migrate: true, listen: false });
    let keyId: string;
    let publicKey: Buffer;
    try {
      const keys = new DbKeyManager(db);
      const org = await keys.createOrganization('audit');
      const key = await keys.createSigningKey(org.id, 'checkpoints', kek, 'audit-checkpoint');
      keyId = key.id;
      publicKey = key.publicKey;
      const trail = new AuditTrail(auditToDatabase(db));
      while (Number((await db.knex('audit_chain_head').first()).seq) < ROWS) {
        await trail.record({ eventType: 'verification.success', packagePath: `/pkg/${randomBytes(3).toString('hex')}.so`, signatureVerified: true });
      }
    } finally {
      await db.close();
    }
    const base = checkpoint(url, keyId);
    const other = await copy();
    await append(url, '/pkg/shown-to-the-witness.so');
    await append(other, '/pkg/shown-to-someone-else.so');
    const pubPath = dir.join(`${keyId}.pub`);
    writeFileSync(pubPath, publicKey);
    return { url, other, base, first: checkpoint(url, keyId), second: checkpoint(other, keyId), pubPath };
  }

  function witness(url: string, notePath: string, key: { keyPath: string }, state: string, originKey: string, extra: string[] = []) {
    return cli(url, [
      'audit',
      'witness',
      '--checkpoint',
      notePath,
      '--key',
      key.keyPath,
      '--name',
      WITNESS_NAME,
      '--state',
      state,
      '--origin-key',
      originKey,
      ...extra,
    ]);
  }

  it('when two copies of one database diverge, each checkpoint verifies alone, but the witness cosigns the first and refuses the second naming both heads', async () => {
    const { url, other, first, second, pubPath } = await forked();
    expect(cli(url, ['audit', 'verify', '--checkpoint', first.path, '--trust-key', pubPath]).status).to.equal(0);
    expect(cli(other, ['audit', 'verify', '--checkpoint', second.path, '--trust-key', pubPath]).status).to.equal(0);
    const key = witnessKey();
    const state = dir.join(`${randomBytes(6).toString('hex')}.state`);
    const cosigned = witness(url, first.path, key, state, pubPath);
    expect(cosigned.status, cosigned.stderr).to.equal(0);
    expect(cosigned.stdout.startsWith(first.note)).to.equal(true);
    const refused = witness(other, second.path, key, state, pubPath);
    expect(refused.status).to.equal(1);
    expect(refused.stdout).to.not.include('\u2014 witness');
    expect(refused.stderr).to.include('fork').and.include(headOfNote(first.note)).and.include(headOfNote(second.note));
  });

  it('when the witness is shown an older checkpoint than it cosigned, it refuses a rollback naming both heads', async () => {
    const { url, base, first, pubPath } = await forked();
    const key = witnessKey();
    const state = dir.join(`${randomBytes(6).toString('hex')}.state`);
    expect(witness(url, first.path, key, state, pubPath).status).to.equal(0);
    const refused = witness(url, base.path, key, state, pubPath);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.include('rollback').and.include(headOfNote(first.note)).and.include(headOfNote(base.note));
  });

  it('when the chain grew between checkpoints, the witness cosigns both and keeps the last in a 0600 state file', async () => {
    const { url, base, first, pubPath } = await forked();
    const key = witnessKey();
    const state = dir.join(`${randomBytes(6).toString('hex')}.state`);
    expect(witness(url, base.path, key, state, pubPath).status).to.equal(0);
    const output = dir.join('cosigned.note');
    const grown = witness(url, first.path, key, state, pubPath, ['--output', output]);
    expect(grown.status, grown.stderr).to.equal(0);
    expect(statSync(state).mode & 0o777).to.equal(0o600);
    // The base checkpoint's audit.checkpoint.issued row, then the appended one.
    expect(JSON.parse(readFileSync(state, 'utf8'))).to.deep.equal({ origin: first.note.split('\n')[0], size: ROWS + 2, head: headOfNote(first.note) });
    expect(readFileSync(output, 'utf8').startsWith(first.note)).to.equal(true);
  });

  it('when a checkpoint is cosigned, an independent tlog-cosignature check verifies it and audit verify --witness accepts it', async () => {
    const { url, first, pubPath } = await forked();
    const key = witnessKey();
    const output = dir.join(`${randomBytes(6).toString('hex')}.note`);
    const before = BigInt(Math.floor(Date.now() / 1000));
    expect(witness(url, first.path, key, dir.join(`${randomBytes(6).toString('hex')}.state`), pubPath, ['--output', output]).status).to.equal(0);
    const time = verifyCosignatureIndependently(readFileSync(output, 'utf8'), WITNESS_NAME, key.raw);
    expect(time >= before && time <= BigInt(Math.floor(Date.now() / 1000))).to.equal(true);
    const verified = cli(url, ['audit', 'verify', '--checkpoint', output, '--trust-key', pubPath, '--witness', key.pubPath]);
    expect(verified.status, verified.stderr).to.equal(0);
  });

  it('when audit verify needs two witnesses and one cosigned, it exits 1 with UNTRUSTED_SIGNER naming 1 of 2', async () => {
    const { url, first, pubPath } = await forked();
    const [one, two] = [witnessKey(), witnessKey()];
    const output = dir.join(`${randomBytes(6).toString('hex')}.note`);
    expect(witness(url, first.path, one, dir.join(`${randomBytes(6).toString('hex')}.state`), pubPath, ['--output', output]).status).to.equal(0);
    const result = cli(url, ['audit', 'verify', '--checkpoint', output, '--trust-key', pubPath, '--witness', one.pubPath, '--witness', two.pubPath]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('UNTRUSTED_SIGNER').and.include('1 of 2');
    const lowered = cli(url, [
      'audit',
      'verify',
      '--checkpoint',
      output,
      '--trust-key',
      pubPath,
      '--witness',
      one.pubPath,
      '--witness',
      two.pubPath,
      '--witness-threshold',
      '1',
    ]);
    expect(lowered.status, lowered.stderr).to.equal(0);
  });

  it('when a cosignature of a named witness was altered, audit verify exits 1 with INVALID_SIGNATURE', async () => {
    const { url, first, pubPath } = await forked();
    const key = witnessKey();
    const output = dir.join(`${randomBytes(6).toString('hex')}.note`);
    expect(witness(url, first.path, key, dir.join(`${randomBytes(6).toString('hex')}.state`), pubPath, ['--output', output]).status).to.equal(0);
    const note = readFileSync(output, 'utf8');
    const line = note.trimEnd().split('\n').pop() as string;
    const bytes = Buffer.from(line.split(' ')[2], 'base64');
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(output, note.replace(line, `\u2014 ${WITNESS_NAME} ${bytes.toString('base64')}`));
    const result = cli(url, ['audit', 'verify', '--checkpoint', output, '--trust-key', pubPath, '--witness', key.pubPath]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('INVALID_SIGNATURE');
  });
});
