// The signing service's audit checkpoints: GET /v1/audit/checkpoint, `serve --checkpoint-key-id
// --checkpoint-every` (start-up checks, a checkpoint per interval in which the chain grew, several replicas
// on one database), and the audit.checkpoint.issued row of the CLI and of the service. Real `serve`
// processes, the CLI as child processes, a fresh database per test.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { AuditTrail } from '../../src/audit/audit-trail';
import { lastChainRow, verifyChainSegment } from '../../src/audit/chain-verify';
import { auditToDatabase } from '../../src/audit/database-sink';
import { type Database, openDatabase } from '../../src/db/database';
import { TokenManager } from '../../src/db/tokens';
import { DbKeyManager } from '../../src/keys/db-key-manager';
import { tempDir, waitUntil } from '../helpers';
import { describeEngines } from '../db/engines';
import { verifyNoteIndependently } from '../signed-note-check';
import { cli, cliAsync, http, type ServiceProcess, signRequest, startService, Transcript } from './harness';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Fixture {
  url: string;
  db: Database;
  keys: DbKeyManager;
  orgId: string;
  packageKeyId: string;
  checkpointKeyId: string;
  /** The checkpoint key's raw public key, and a file holding it (for --trust-key). */
  publicKey: Buffer;
  pubPath: string;
  token: string;
}

describeEngines('the signing service makes and publishes audit checkpoints', (t) => {
  const dir = tempDir();
  const transcript = new Transcript();
  const kek = randomBytes(32);
  const kekText = kek.toString('hex');
  const secrets: (string | Buffer)[] = [kek, kekText, kek.toString('base64')];
  const services: ServiceProcess[] = [];
  const handles: Database[] = [];

  after(async () => {
    for (const service of services) await service.stop('SIGKILL');
    for (const db of handles) await db.close();
    dir.cleanup();
  });

  /** A database of its own, migrated, with a package key, an audit-checkpoint key and a token that signs with the package key. */
  async function fixture(): Promise<Fixture> {
    const url = await t.freshUrl();
    const db = await openDatabase(url, { migrate: true, listen: false });
    handles.push(db);
    const keys = new DbKeyManager(db);
    const org = await keys.createOrganization('checkpoints');
    const packageKey = await keys.createSigningKey(org.id, 'release', kek);
    const checkpointKey = await keys.createSigningKey(org.id, 'checkpoints', kek, 'audit-checkpoint');
    const token = (await new TokenManager(keys).create({ orgId: org.id, scopes: [`sign:${packageKey.id}`] })).token;
    secrets.push(token);
    const pubPath = dir.join(`${checkpointKey.id}.pub`);
    writeFileSync(pubPath, checkpointKey.publicKey);
    return { url, db, keys, orgId: org.id, packageKeyId: packageKey.id, checkpointKeyId: checkpointKey.id, publicKey: checkpointKey.publicKey, pubPath, token };
  }

  const start = async (f: Fixture, args: string[] = []) => {
    const service = await startService({ database: f.url, kek: kekText, args, transcript });
    services.push(service);
    return service;
  };
  const withCheckpoints = (f: Fixture, every = '1s') => start(f, ['--checkpoint-key-id', f.checkpointKeyId, '--checkpoint-every', every]);
  const sign = async (f: Fixture, service: ServiceProcess) => {
    const answer = await signRequest(transcript, service.url, f.token, { keyId: f.packageKeyId, packageHash: randomBytes(32).toString('hex') });
    expect(answer.status, answer.text).to.equal(200);
  };
  const headSeq = async (f: Fixture) => Number((await f.db.knex('audit_chain_head').where({ id: 1 }).first()).seq);
  const checkpointCount = async (f: Fixture) => Number((await f.db.knex('audit_checkpoints').count({ n: '*' }))[0].n);
  const dbCli = (f: Fixture, args: string[]) => cli(transcript, [...args, '--database', f.url], { CLOACINA_KEY_ENCRYPTION_KEY: kekText });
  /** GET /v1/audit/checkpoint until it answers 200 (at most 15 s). */
  const awaitCheckpoint = async (service: ServiceProcess) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const answer = await http(transcript, `${service.url}/v1/audit/checkpoint`);
      if (answer.status === 200) return answer;
      expect(answer.status, answer.text).to.equal(404);
      if (Date.now() > deadline) throw new Error(`no checkpoint within 15 s: ${service.stderr.join('\n')}`);
      await sleep(100);
    }
  };
  /** Runs `serve` with `args`, expecting it to refuse to start: its exit code and output (it is killed if it still runs after 15 s). */
  const refusedStart = async (f: Fixture, args: string[], kekValue = kekText) => {
    const run = cliAsync(transcript, ['serve', '--listen', '127.0.0.1:0', '--database', f.url, ...args], { CLOACINA_KEY_ENCRYPTION_KEY: kekValue });
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 15_000);
    const result = await run.done;
    clearTimeout(timer);
    return { ...result, output: `${result.stdout}${result.stderr}` };
  };

  it('when no checkpoint exists, GET /v1/audit/checkpoint answers 404 NOT_FOUND with the JSON error, without a token', async () => {
    const f = await fixture();
    const service = await start(f);
    const answer = await http(transcript, `${service.url}/v1/audit/checkpoint`);
    expect(answer.status).to.equal(404);
    expect(answer.headers.get('content-type')).to.match(/^application\/json/);
    expect(answer.headers.get('cache-control')).to.equal('no-store');
    expect(answer.json()).to.deep.equal({ error: { code: 'NOT_FOUND', message: 'no audit checkpoint has been issued yet' } });
    await service.stop();
  });

  it('when /v1/openapi.json is read, it describes GET /v1/audit/checkpoint: no token, the note as text, the JSON error', async () => {
    const f = await fixture();
    const service = await start(f);
    const operation = (await http(transcript, `${service.url}/v1/openapi.json`)).json().paths['/v1/audit/checkpoint'].get;
    expect(operation.operationId).to.equal('auditCheckpoint');
    expect(operation).to.not.have.property('security');
    expect(Object.keys(operation.responses['200'].content)).to.deep.equal(['text/plain; charset=utf-8']);
    expect(operation.responses['4XX'].content['application/json'].schema.required).to.deep.equal(['error']);
    await service.stop();
  });

  it('when GET /v1/audit/checkpoint is asked past the per-address limit, it answers 429 with Retry-After', async () => {
    const f = await fixture();
    const service = await start(f);
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    // The default limit is 5/s with bursts of 20: 40 requests at once overrun it.
    const answers = await Promise.all(Array.from({ length: 40 }, () => http(transcript, `${service.url}/v1/audit/checkpoint`)));
    for (const answer of answers) {
      statuses.push(answer.status);
      if (answer.status === 429) retryAfter = answer.headers.get('retry-after');
    }
    expect(statuses).to.include(429);
    expect(statuses.filter((status) => status !== 429).every((status) => status === 404)).to.equal(true);
    expect(Number(retryAfter)).to.be.at.least(1);
    await service.stop();
  });

  it('when serve runs with --checkpoint-every 1s and requests are signed, GET returns a checkpoint covering them that both verifiers accept', async () => {
    const f = await fixture();
    const service = await withCheckpoints(f);
    for (let i = 0; i < 5; i += 1) await sign(f, service);
    const signedRows = await headSeq(f);
    const answer = await awaitCheckpoint(service);
    expect(answer.headers.get('content-type')).to.equal('text/plain; charset=utf-8');
    expect(answer.headers.get('cache-control')).to.equal('no-store');
    const note = answer.text;
    const notePath = dir.join(`${randomBytes(4).toString('hex')}.note`);
    writeFileSync(notePath, note);
    const origin = note.split('\n')[0];
    const { lines } = verifyNoteIndependently(note, origin, f.publicKey);
    expect(Number(lines[1])).to.be.at.least(signedRows);
    const verified = dbCli(f, ['audit', 'verify', '--checkpoint', notePath, '--trust-key', f.pubPath, '--json']);
    expect(verified.status, verified.stderr).to.equal(0);
    expect(verified.json().checkpoints[0].size).to.equal(Number(lines[1]));
    expect(service.stderr.some((line) => line.includes('"msg":"audit checkpoint issued"'))).to.equal(true);
    await service.stop();
  });

  it('when the service issues a checkpoint, an audit.checkpoint.issued row names the key, the org, the size and the head, and the chain still verifies', async () => {
    const f = await fixture();
    const service = await withCheckpoints(f);
    await sign(f, service);
    const note = (await awaitCheckpoint(service)).text;
    const [, size, head] = note.split('\n');
    const headHex = Buffer.from(head, 'base64').toString('hex');
    const rows = await f.db.knex('audit_events').where({ event_type: 'audit.checkpoint.issued' });
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ key_id: f.checkpointKeyId, org_id: f.orgId });
    expect(rows[0].reason).to.include(`size ${size}`).and.include(`head ${headHex}`);
    // Appended after the checkpoint: beyond the rows it covers.
    expect(Number(rows[0].seq)).to.be.greaterThan(Number(size));
    await service.stop();
    const verified = dbCli(f, ['audit', 'verify', '--json']);
    expect(verified.status, verified.stderr).to.equal(0);
    expect(verified.json().intact).to.equal(true);
  });

  it('when audit checkpoint runs from the CLI, an audit.checkpoint.issued row records it and the chain still verifies', async () => {
    const f = await fixture();
    const issued = dbCli(f, ['audit', 'checkpoint', '--key-id', f.checkpointKeyId, '--json']);
    expect(issued.status, issued.stderr).to.equal(0);
    const checkpoint = issued.json();
    const rows = await f.db.knex('audit_events').where({ event_type: 'audit.checkpoint.issued' });
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ key_id: f.checkpointKeyId, org_id: f.orgId });
    expect(rows[0].reason).to.include(`size ${checkpoint.size}`).and.include(`head ${checkpoint.headHash}`);
    expect(Number(rows[0].seq)).to.equal(checkpoint.size + 1);
    const verified = dbCli(f, ['audit', 'verify', '--json']);
    expect(verified.status, verified.stderr).to.equal(0);
    expect(verified.json().headSeq).to.equal(checkpoint.size + 1);
  });

  it('when the chain grew only by the checkpoint row since the latest checkpoint, the service signs no other one', async () => {
    const f = await fixture();
    const service = await withCheckpoints(f);
    await sign(f, service);
    await awaitCheckpoint(service);
    // Three more intervals without requests.
    await sleep(3500);
    expect(await checkpointCount(f)).to.equal(1);
    // A request later: the next interval covers it (and the checkpoint row before it).
    await sign(f, service);
    const seq = await headSeq(f);
    await waitUntil(() => service.stderr.filter((line) => line.includes('"msg":"audit checkpoint issued"')).length >= 2, 'a second checkpoint', 15_000);
    const latest = await f.db.knex('audit_checkpoints').orderBy('seq', 'desc').first();
    expect(Number(latest.seq)).to.be.at.least(seq);
    await service.stop();
  });

  it('when --checkpoint-key-id names a package key, serve refuses to start with INVALID_KEY', async () => {
    const f = await fixture();
    const { status, stderr } = await refusedStart(f, ['--checkpoint-key-id', f.packageKeyId, '--checkpoint-every', '1s']);
    expect(status).to.equal(2);
    expect(stderr).to.include('INVALID_KEY').and.include('--checkpoint-key-id').and.include('purpose package');
  });

  it('when --checkpoint-key-id names a revoked audit-checkpoint key, serve refuses to start with KEY_REVOKED', async () => {
    const f = await fixture();
    await f.keys.revokeSigningKey(f.checkpointKeyId);
    const { status, stderr } = await refusedStart(f, ['--checkpoint-key-id', f.checkpointKeyId, '--checkpoint-every', '1s']);
    expect(status).to.equal(2);
    expect(stderr).to.include('KEY_REVOKED').and.include(f.checkpointKeyId);
  });

  it('when --checkpoint-key-id names no key, serve refuses to start with NOT_FOUND', async () => {
    const f = await fixture();
    const unknown = '00000000-0000-4000-8000-000000000000';
    const { status, stderr } = await refusedStart(f, ['--checkpoint-key-id', unknown, '--checkpoint-every', '1s']);
    expect(status).to.equal(2);
    expect(stderr).to.include('NOT_FOUND').and.include(unknown);
  });

  it('when the key was sealed with another KEK, serve refuses to start with KEY_UNSEAL_FAILED', async () => {
    const f = await fixture();
    const { status, stderr } = await refusedStart(f, ['--checkpoint-key-id', f.checkpointKeyId, '--checkpoint-every', '1s'], randomBytes(32).toString('hex'));
    expect(status).to.equal(2);
    expect(stderr).to.include('KEY_UNSEAL_FAILED');
  });

  it('when only one of --checkpoint-key-id and --checkpoint-every is given, or the interval is not strict, serve exits 2 with a usage error', async () => {
    const f = await fixture();
    for (const args of [
      ['--checkpoint-every', '1s'],
      ['--checkpoint-key-id', f.checkpointKeyId],
    ]) {
      const { status, stderr } = await refusedStart(f, args);
      expect(status, args.join(' ')).to.equal(2);
      expect(stderr).to.include('--checkpoint-key-id and --checkpoint-every go together');
    }
    for (const interval of ['1.5s', '60', '5 m', '0s', '-1s', '25h', '1d', '01s']) {
      const { status, stderr } = await refusedStart(f, ['--checkpoint-key-id', f.checkpointKeyId, '--checkpoint-every', interval]);
      expect(status, interval).to.equal(2);
      expect(stderr, interval).to.include('--checkpoint-every');
    }
  });

  it('when a row of the chain was changed, the service signs no checkpoint, logs why, and keeps serving', async () => {
    const f = await fixture();
    const service = await withCheckpoints(f);
    await sign(f, service);
    await sign(f, service);
    await f.db.knex('audit_events').where({ seq: 1 }).update({ reason: 'nothing happened here' });
    await sign(f, service);
    await waitUntil(() => service.stderr.some((line) => line.includes('"msg":"audit chain not intact: no checkpoint signed"')), 'the log line', 15_000);
    expect(await checkpointCount(f)).to.equal(0);
    expect((await http(transcript, `${service.url}/v1/audit/checkpoint`)).status).to.equal(404);
    await sign(f, service);
    expect((await http(transcript, `${service.url}/healthz`)).status).to.equal(200);
    await service.stop();
  });

  it('when rows appended after the first checkpoint are changed, the next interval finds it in the rows since and signs nothing', async () => {
    const f = await fixture();
    const service = await withCheckpoints(f);
    await sign(f, service);
    await awaitCheckpoint(service);
    // Paused: the rows are appended and one changed between two of its intervals.
    service.child.kill('SIGSTOP');
    try {
      const trail = new AuditTrail(auditToDatabase(f.db));
      for (let i = 0; i < 3; i += 1) await trail.record({ eventType: 'verification.success', packagePath: `/pkg/${i}.so`, signatureVerified: true });
      const seq = await headSeq(f);
      await f.db
        .knex('audit_events')
        .where({ seq: seq - 1 })
        .update({ package_path: '/pkg/other.so' });
    } finally {
      service.child.kill('SIGCONT');
    }
    await waitUntil(() => service.stderr.some((line) => line.includes('"msg":"audit chain not intact: no checkpoint signed"')), 'the log line', 15_000);
    const line = service.stderr.find((text) => text.includes('"msg":"audit chain not intact'));
    expect(JSON.parse(line!).problem).to.match(/^changed at seq \d+/);
    expect(await checkpointCount(f)).to.equal(1);
    await service.stop();
  });

  it('when two serve processes on one database both make checkpoints while requests are signed, all their checkpoints verify together', async () => {
    const f = await fixture();
    const first = await withCheckpoints(f);
    const second = await withCheckpoints(f);
    const issuedBy = (service: ServiceProcess) => service.stderr.filter((line) => line.includes('"msg":"audit checkpoint issued"')).length;
    const deadline = Date.now() + 30_000;
    let signed = 0;
    while (issuedBy(first) < 2 || issuedBy(second) < 2) {
      if (Date.now() > deadline) throw new Error(`not both made two checkpoints within 30 s: ${issuedBy(first)}, ${issuedBy(second)}`);
      await Promise.all([sign(f, first), sign(f, second)]);
      signed += 2;
      await sleep(20);
    }
    const firstStop = await first.stop();
    const secondStop = await second.stop();
    expect([firstStop.code, secondStop.code]).to.deep.equal([0, 0]);
    const notes = (await f.db.knex('audit_checkpoints').orderBy('seq')) as { note: string; origin: string }[];
    expect(notes.length).to.be.at.least(4);
    expect(new Set(notes.map((row) => row.origin)).size).to.equal(1);
    const paths = notes.map((row, i) => {
      const path = dir.join(`replica-${randomBytes(3).toString('hex')}-${i}.note`);
      writeFileSync(path, row.note);
      return path;
    });
    const verified = dbCli(f, ['audit', 'verify', ...paths.flatMap((path) => ['--checkpoint', path]), '--trust-key', f.pubPath, '--json']);
    expect(verified.status, verified.stderr).to.equal(0);
    expect(verified.json().checkpoints).to.have.length(notes.length);
    expect(signed).to.be.greaterThan(0);
  });

  it('when SIGTERM arrives while checkpoints are being made, serve stops with exit code 0 within the shutdown bound', async () => {
    const f = await fixture();
    const service = await start(f, ['--checkpoint-key-id', f.checkpointKeyId, '--checkpoint-every', '1s', '--shutdown-timeout', '5000']);
    await sign(f, service);
    await awaitCheckpoint(service);
    await sign(f, service);
    // About when the next checkpoint is made.
    await sleep(900);
    const stoppedAt = Date.now();
    const { code } = await service.stop();
    expect(code).to.equal(0);
    // The bound (5 s) plus the 2 s exit guard, with margin.
    expect(Date.now() - stoppedAt).to.be.lessThan(8000);
  });

  describe('verifying only the rows appended since a verified position', () => {
    /** A chain of 10 rows; the position verified at seq 4. */
    async function chain() {
      const f = await fixture();
      const trail = new AuditTrail(auditToDatabase(f.db));
      while ((await headSeq(f)) < 10) await trail.record({ eventType: 'verification.success', packagePath: '/pkg/a.so', signatureVerified: true });
      const at = await f.db.knex('audit_events').where({ seq: 4 }).first();
      return { f, from: { seq: 4, hash: String(at.row_hash) }, to: (await lastChainRow(f.db))! };
    }

    it('when the rows since are intact, it finds no problem up to exactly the last row', async () => {
      const { f, from, to } = await chain();
      expect(to.seq).to.equal(10);
      expect(await verifyChainSegment(f.db, from, to)).to.equal(null);
    });

    it('when a row since was changed, it names it as changed', async () => {
      const { f, from, to } = await chain();
      const row = await f.db.knex('audit_events').where({ seq: 7 }).first();
      await f.db.knex('audit_events').where({ seq: 7 }).update({ reason: 'edited' });
      expect(await verifyChainSegment(f.db, from, to)).to.include({ kind: 'changed', seq: 7, id: row.id });
    });

    it('when a row since was removed, it names the missing position', async () => {
      const { f, from, to } = await chain();
      await f.db.knex('audit_events').where({ seq: 6 }).delete();
      expect(await verifyChainSegment(f.db, from, to)).to.include({ kind: 'removed', seq: 6 });
    });

    it('when the verified row no longer has its hash, it reports the chain rewritten there', async () => {
      const { f, to } = await chain();
      expect(await verifyChainSegment(f.db, { seq: 4, hash: 'ab'.repeat(32) }, to)).to.include({ kind: 'rewritten', seq: 4 });
    });

    it('when the chain ends before the verified position, it reports rows removed', async () => {
      const { f, from } = await chain();
      expect(await verifyChainSegment(f.db, from, { seq: 3, hash: from.hash })).to.include({ kind: 'rewritten', seq: 4 });
    });
  });

  it('when these runs are over, nothing printed or answered contains the KEK or an API token', () => {
    transcript.expectFreeOf(secrets);
  });
});
