// The signing service as several replicas on one PostgreSQL database: `serve` processes sharing nothing but
// the database. Under load with one replica killed with -9 mid-run, every answered request has exactly one
// audit row and no request is signed twice; a token revoked through one replica (or the CLI) is refused by
// every replica within 1 s; rate limits are per replica; PostgreSQL terminating every session, then
// refusing connections for a while, gets bounded 503s, /readyz unready, and recovery without a restart.
import { expect } from 'chai';
import { createPublicKey, randomBytes, verify as verifySignature } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { type Database, openDatabase } from '../../src/db/database';
import { TokenManager } from '../../src/db/tokens';
import { DetachedSignature } from '../../src/formats/v1';
import { DbKeyManager } from '../../src/keys/db-key-manager';
import { DbPackageSigner } from '../../src/signing/db-signer';
import { tempDir } from '../helpers';
import { postgresRequired } from '../db/engines';
import { adminQuery, createScratchDatabase, POSTGRES_URL, type ScratchDatabase } from '../db/scratch-postgres';
import { cli, http, randomPackage, type ServiceProcess, signRequest, startService, Transcript } from './harness';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const REPLICAS = 3;
const SIGN_REQUESTS = 10_000;
const UPLOADS = 20;
const IN_FLIGHT = 24;
/** One request in this many asks the service to store its signature (a write transaction of its own). */
const STORE_EVERY = 20;
/** The share of the requests sent before one replica is killed. */
const KILL_AT = 0.4;
/** The documented bound within which every service process refuses a revoked token. */
const REVOCATION_BOUND_MS = 1000;
/** CLOACINA_DATABASE_TIMEOUT of the failover replicas, in seconds. */
const FAILOVER_DB_TIMEOUT_S = 2;
/** A request answered while the database fails over: within the database bound plus this margin. */
const FAILOVER_MARGIN_MS = 3000;

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The answer to one request, or why there was none (the connection was refused or cut). */
interface Exchange {
  status?: number;
  body: string;
  error?: string;
  ms: number;
}

/** One HTTP request on a keep-alive agent; never retried, never rejected: a cut request is an answer-less Exchange. */
function exchange(
  agent: Agent,
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  timeoutMs = 30_000,
): Promise<Exchange> {
  const url = new URL(`${base}${path}`);
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: Omit<Exchange, 'ms'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...outcome, ms: Date.now() - started });
    };
    const req = httpRequest(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers: { ...headers, 'content-length': String(body?.length ?? 0) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => settle({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (error: NodeJS.ErrnoException) => settle({ body: '', error: error.code ?? error.message }));
        res.on('aborted', () => settle({ body: '', error: 'ECONNRESET' }));
      },
    );
    req.setTimeout(timeoutMs, () => {
      settle({ body: '', error: 'HUNG' });
      req.destroy();
    });
    req.on('error', (error: NodeJS.ErrnoException) => settle({ body: '', error: error.code ?? error.message }));
    req.end(body);
  });
}

/** What the load run sent and got, one entry per request. */
interface Sent {
  kind: 'sign' | 'upload';
  digest: string;
  store: boolean;
  replica: number;
  /** Sent after the kill signal. */
  afterKill: boolean;
  /** Sent before the killed process was seen to exit (so it may have reached it). */
  beforeExit: boolean;
  outcome?: Exchange;
}

describe('the signing service as several replicas on one PostgreSQL database [@postgres]', function () {
  this.timeout(180_000);
  const dir = tempDir();
  const transcript = new Transcript();
  const kek = randomBytes(32);
  const kekText = kek.toString('hex');
  const secrets: (string | Buffer)[] = [kek, kekText];
  const started: ServiceProcess[] = [];
  let scratch: ScratchDatabase | undefined;
  let db: Database;
  let keys: DbKeyManager;
  let org: { id: string; name: string };
  let key: { id: string; fingerprint: string; publicKey: Buffer };
  /** The audit-checkpoint key every replica of the load run signs checkpoints with, and its public key file. */
  let checkpointKey: { id: string; pubPath: string };
  /** The replicas of the load run (the killed one replaced afterwards), shared by the tests that follow it. */
  let replicas: ServiceProcess[] = [];
  /** The load run's requests, for checks added after it. */
  let sent: Sent[] = [];

  const start = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const service = await startService({ database: scratch!.url, kek: kekText, args, env, transcript });
    started.push(service);
    return service;
  };
  const startReplicas = (args: string[], env: NodeJS.ProcessEnv = {}) => Promise.all(Array.from({ length: REPLICAS }, () => start(args, env)));
  const newToken = async (scopes = [`sign:${key.id}`, 'upload']) => {
    const created = await new TokenManager(keys).create({ orgId: org.id, scopes });
    secrets.push(created.token);
    return created;
  };
  const signBody = () => ({ keyId: key.id, packageHash: randomBytes(32).toString('hex') });
  const auditRows = (where: Record<string, string>) => db.run((knex) => knex('audit_events').where(where));

  before(async function () {
    try {
      await adminQuery('select 1');
    } catch (error) {
      if (postgresRequired()) throw new Error(`PostgreSQL is required but unreachable at ${POSTGRES_URL}: ${(error as Error).message}`);
      console.log(`    skipping the replicas suite: PostgreSQL unreachable at ${POSTGRES_URL}`);
      this.skip();
    }
    scratch = await createScratchDatabase('cloacina_test_replicas');
    db = await openDatabase(scratch.url, { migrate: true });
    keys = new DbKeyManager(db);
    org = await keys.createOrganization(`replicas-${randomBytes(4).toString('hex')}`);
    const created = await keys.createSigningKey(org.id, 'release', kek);
    key = { id: created.id, fingerprint: created.fingerprint, publicKey: created.publicKey };
    await keys.trustPublicKey(org.id, key.publicKey, 'release');
    const checkpoints = await keys.createSigningKey(org.id, 'checkpoints', kek, 'audit-checkpoint');
    checkpointKey = { id: checkpoints.id, pubPath: dir.join('checkpoints.pub') };
    writeFileSync(checkpointKey.pubPath, checkpoints.publicKey);
  });

  after(async function () {
    this.timeout(60_000);
    for (const service of started) await service.stop('SIGKILL');
    await db?.close();
    await scratch?.drop();
    dir.cleanup();
  });

  describe('under load, with one replica killed with -9 after 40% of the requests', () => {
    let token: string;
    let tokenId: string;
    let victim: number;
    /** Unanswered requests sent to the victim before its exit was seen: the ones that may have reached it. */
    let cutCandidates: Set<string>;
    let inFlightAtKill = 0;

    before(async () => {
      const made = await newToken();
      token = made.token;
      tokenId = made.info.id;
      // Every replica also signs a checkpoint of the one audit chain each second.
      replicas = await startReplicas(['--rate-limit', '100000', '--rate-burst', '100000', '--checkpoint-key-id', checkpointKey.id, '--checkpoint-every', '1s']);
      victim = 1;
      // Small packages, signed offline with the database key beforehand, uploaded during the run.
      const uploads: { digest: string; bytes: Buffer; signature: string }[] = [];
      const signer = new DbPackageSigner(keys);
      for (let i = 0; i < UPLOADS; i += 1) {
        const path = randomPackage(dir.join(`upload-${i}.so`), 8 * 1024);
        const signed = await signer.signPackageWithDbKey(path, key.id, kek);
        uploads.push({
          digest: signed.packageHash,
          bytes: readFileSync(path),
          signature: Buffer.from(DetachedSignature.fromSignatureInfo(signed).toString()).toString('base64'),
        });
      }

      const total = SIGN_REQUESTS + UPLOADS;
      const uploadAt = new Map<number, number>();
      for (let k = 0; k < UPLOADS; k += 1) uploadAt.set(Math.floor(((k + 0.5) * total) / UPLOADS), k);
      const agents = replicas.map(() => new Agent({ keepAlive: true, maxSockets: IN_FLIGHT }));
      const alive = replicas.map((_, index) => index);
      const pendingToVictim = new Set<Sent>();
      let next = 0;
      let killed = false;
      let exited = false;
      replicas[victim].exited.then(() => {
        exited = true;
      });
      sent = [];
      const startedAt = Date.now();

      const worker = async () => {
        for (;;) {
          const index = next;
          next += 1;
          if (index >= total) return;
          if (!killed && index >= Math.floor(total * KILL_AT)) {
            killed = true;
            inFlightAtKill = pendingToVictim.size;
            replicas[victim].child.kill('SIGKILL');
          }
          const replica = alive[index % alive.length];
          const upload = uploadAt.get(index);
          const request: Sent =
            upload === undefined
              ? { kind: 'sign', digest: randomBytes(32).toString('hex'), store: index % STORE_EVERY === 0, replica, afterKill: killed, beforeExit: !exited }
              : { kind: 'upload', digest: uploads[upload].digest, store: true, replica, afterKill: killed, beforeExit: !exited };
          sent.push(request);
          const headers = { authorization: `Bearer ${token}` };
          if (replica === victim) pendingToVictim.add(request);
          request.outcome =
            request.kind === 'sign'
              ? await exchange(
                  agents[replica],
                  replicas[replica].url,
                  'POST',
                  '/v1/sign',
                  { ...headers, 'content-type': 'application/json' },
                  Buffer.from(JSON.stringify({ keyId: key.id, packageHash: request.digest, ...(request.store ? { store: true } : {}) })),
                )
              : await exchange(
                  agents[replica],
                  replicas[replica].url,
                  'POST',
                  `/v1/orgs/${org.id}/packages`,
                  { ...headers, 'content-type': 'application/octet-stream', 'cloacina-signature': uploads[upload!].signature },
                  uploads[upload!].bytes,
                );
          pendingToVictim.delete(request);
          // Unanswered: the replica is gone. Later requests go to the others; this one is never resent.
          if (request.outcome.status === undefined && alive.includes(replica) && replica === victim) alive.splice(alive.indexOf(replica), 1);
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      const seconds = (Date.now() - startedAt) / 1000;
      for (const agent of agents) agent.destroy();
      for (const request of sent) transcript.add(`answer ${request.outcome?.status}`, request.outcome?.body ?? '');
      cutCandidates = new Set(sent.filter((r) => r.outcome?.status === undefined && r.beforeExit).map((r) => r.digest));
      console.log(
        `      ${sent.length} requests in ${seconds.toFixed(1)} s (${Math.round(sent.length / seconds)}/s) over ${REPLICAS} replicas, ${IN_FLIGHT} in flight; ` +
          `${inFlightAtKill} in flight to the killed replica at the kill, ${sent.filter((r) => r.outcome?.status === undefined).length} unanswered`,
      );
      // Killing the replica replaced afterwards: the tests that follow have three again.
      replicas[victim] = await start(['--rate-limit', '100000', '--rate-burst', '100000']);
    });

    it('when the run ended, the killed replica was the only one that left requests unanswered, and each of those was cut or refused', () => {
      const unanswered = sent.filter((r) => r.outcome?.status === undefined);
      expect(unanswered.length).to.be.greaterThan(0);
      for (const request of unanswered) {
        expect(request.replica).to.equal(victim);
        expect(request.outcome!.error).to.be.oneOf(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'socket hang up']);
      }
      expect(sent.length).to.equal(SIGN_REQUESTS + UPLOADS);
    });

    it('when the kill came, the surviving replicas answered every request sent to them after it, with success', () => {
      const toSurvivors = sent.filter((r) => r.afterKill && r.replica !== victim);
      expect(toSurvivors.length).to.be.greaterThan(0.5 * SIGN_REQUESTS);
      const failed = toSurvivors.filter((r) => r.outcome?.status === undefined || r.outcome.status >= 300);
      expect(failed.map((r) => r.outcome)).to.deep.equal([]);
      // Before the kill too, every answer was a success (the requests it cut have none).
      const before = sent.filter((r) => !r.afterKill && r.outcome?.status !== undefined);
      expect(before.filter((r) => r.outcome?.status !== 200 && r.outcome?.status !== 201).map((r) => r.outcome)).to.deep.equal([]);
    });

    it('when a request was answered with success, it has exactly one audit row, and no digest has two', async () => {
      const rows = await db.run((knex) =>
        knex('audit_events')
          .where({ actor: tokenId })
          .whereIn('event_type', ['package.signed', 'package.uploaded', 'package.sign.failure', 'package.upload.failure'])
          .select('event_type', 'package_hash'),
      );
      const count = new Map<string, number>();
      for (const row of rows as { event_type: string; package_hash: string }[]) {
        const id = `${row.event_type} ${row.package_hash}`;
        count.set(id, (count.get(id) ?? 0) + 1);
      }
      expect(rows.filter((row: { event_type: string }) => row.event_type.endsWith('.failure'))).to.deep.equal([]);
      expect([...count].filter(([, n]) => n > 1)).to.deep.equal([]);
      for (const request of sent.filter((r) => r.outcome?.status === 200 || r.outcome?.status === 201)) {
        const event = request.kind === 'sign' ? 'package.signed' : 'package.uploaded';
        expect(count.get(`${event} ${request.digest}`), `${event} ${request.digest}`).to.equal(1);
      }
      // Stored signatures: one row for each stored signing answered, never two for one digest.
      const stored = await db.run((knex) => knex('package_signatures').select('package_hash').count({ n: '*' }).groupBy('package_hash'));
      const storedCount = new Map((stored as { package_hash: string; n: string | number }[]).map((row) => [row.package_hash, Number(row.n)]));
      expect([...storedCount].filter(([, n]) => n > 1)).to.deep.equal([]);
      for (const request of sent.filter((r) => r.kind === 'sign' && r.store && r.outcome?.status === 200)) {
        expect(storedCount.get(request.digest), request.digest).to.equal(1);
      }
    });

    it('when a request was cut by the kill, it has a row only if it was in flight to the killed replica when it died', async () => {
      const unanswered = sent.filter((r) => r.outcome?.status === undefined);
      const digests = unanswered.map((r) => r.digest);
      const rows = (await db.run((knex) =>
        knex('audit_events')
          .where({ actor: tokenId })
          .whereIn('event_type', ['package.signed', 'package.uploaded'])
          .whereIn('package_hash', digests)
          .select('package_hash'),
      )) as { package_hash: string }[];
      console.log(
        `      ${unanswered.length} unanswered requests (${cutCandidates.size} of them sent to the killed replica before its exit was seen): ${rows.length} of them have a committed row`,
      );
      expect(rows.length).to.be.at.most(cutCandidates.size);
      for (const row of rows) expect(cutCandidates.has(row.package_hash), row.package_hash).to.equal(true);
      // Sent after the process was seen gone: refused at connect, never signed.
      for (const request of unanswered.filter((r) => !r.beforeExit)) expect(request.outcome!.error).to.equal('ECONNREFUSED');
    });

    it('when a signature was answered, it verifies against the signing key, over the digest that was sent', () => {
      const publicKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, key.publicKey]), format: 'der', type: 'spki' });
      const answered = sent.filter((r) => r.kind === 'sign' && r.outcome?.status === 200);
      expect(answered.length).to.be.greaterThan(0.9 * SIGN_REQUESTS);
      for (const request of answered) {
        const document = JSON.parse(request.outcome!.body);
        expect(document.package_hash).to.equal(request.digest);
        expect(document.key_fingerprint).to.equal(key.fingerprint);
        const valid = verifySignature(null, Buffer.from(request.digest, 'hex'), publicKey, Buffer.from(document.signature, 'base64'));
        expect(valid, request.digest).to.equal(true);
      }
    });

    it('when the run ended, the audit chain verifies (cloacina-sign audit verify)', () => {
      const verified = cli(transcript, ['audit', 'verify', '--database', scratch!.url, '--json']);
      expect(verified.status, verified.stderr).to.equal(0);
    });

    it('when the replicas made checkpoints during the run, they are of one log: one origin, and every one verifies with all the others against the chain', async () => {
      // What each running replica publishes (read first: every checkpoint published is stored before).
      const published: string[] = [];
      for (const replica of replicas) {
        if (replica.child.exitCode !== null || replica.child.signalCode !== null) continue;
        const answer = await http(transcript, `${replica.url}/v1/audit/checkpoint`);
        expect(answer.status, answer.text).to.equal(200);
        published.push(answer.text);
      }
      expect(published.length).to.be.at.least(REPLICAS - 1);
      const stored = (await db.run((knex) => knex('audit_checkpoints').orderBy('seq'))) as { note: string; origin: string }[];
      expect(stored.length).to.be.greaterThan(1);
      expect(new Set(stored.map((row) => row.origin)).size).to.equal(1);
      for (const note of published) expect(stored.map((row) => row.note)).to.include(note);
      const args = ['audit', 'verify', '--database', scratch!.url, '--trust-key', checkpointKey.pubPath];
      for (const [index, row] of stored.entries()) {
        const path = dir.join(`checkpoint-${index}.note`);
        writeFileSync(path, row.note);
        args.push('--checkpoint', path);
      }
      const verified = cli(transcript, args);
      expect(verified.status, verified.stderr).to.equal(0);
    });
  });

  /** Polls `service` with `token` until it answers 401; the time from `since` until then. */
  const refusedAfter = async (service: ServiceProcess, token: string, since: number) => {
    for (;;) {
      const answer = await signRequest(transcript, service.url, token, signBody());
      if (answer.status === 401) return Date.now() - since;
      expect(answer.status, answer.text).to.equal(200);
      if (Date.now() - since > 3 * REVOCATION_BOUND_MS) throw new Error(`${service.url} still accepted the token 3 s after its revocation`);
      await sleep(20);
    }
  };

  /** Every one of `services` refuses `token` within the revocation bound of `since`; the delays are printed. */
  const expectRefusedByAll = async (services: ServiceProcess[], token: string, since: number) => {
    const delays = await Promise.all(services.map((service) => refusedAfter(service, token, since)));
    console.log(`      refused after ${delays.join(', ')} ms (replica A, B, C)`);
    for (const delay of delays) expect(delay).to.be.lessThan(REVOCATION_BOUND_MS);
  };

  describe('token revocation', () => {
    it('when a token revokes itself through one replica (DELETE /v1/tokens/self), every replica refuses it within 1 s, and the revocation is audited', async () => {
      const { token, info } = await newToken();
      for (const service of replicas) expect((await signRequest(transcript, service.url, token, signBody())).status).to.equal(200);
      const [a, b, c] = replicas;
      const revoked = await http(transcript, `${a.url}/v1/tokens/self`, { method: 'DELETE', token });
      const answeredAt = Date.now();
      expect(revoked.status, revoked.text).to.equal(204);
      expect(revoked.text).to.equal('');
      await expectRefusedByAll([a, b, c], token, answeredAt);
      const rows = await auditRows({ event_type: 'token.revoked', org_id: org.id, actor: info.id });
      expect(rows).to.have.length(1);
      expect(rows[0].reason).to.include(info.id);
      const again = await http(transcript, `${b.url}/v1/tokens/self`, { method: 'DELETE', token });
      expect(again.status).to.equal(401);
      expect(again.json().error.code).to.equal('API_UNAUTHORIZED');
    });

    it('when a token is revoked with the CLI (tokens revoke), every replica refuses it within 1 s', async () => {
      const { token, info } = await newToken();
      for (const service of replicas) expect((await signRequest(transcript, service.url, token, signBody())).status).to.equal(200);
      const revoked = cli(transcript, ['tokens', 'revoke', info.id, '--database', scratch!.url, '--json']);
      const revokedAt = Date.now();
      expect(revoked.status, revoked.stderr).to.equal(0);
      await expectRefusedByAll(replicas, token, revokedAt);
    });

    it('when a request to DELETE /v1/tokens/self has no valid token, it is 401 and nothing is revoked', async () => {
      const { token, info } = await newToken();
      const answer = await http(transcript, `${replicas[0].url}/v1/tokens/self`, { method: 'DELETE', token: `cst_${'A'.repeat(43)}` });
      expect(answer.status).to.equal(401);
      expect((await http(transcript, `${replicas[0].url}/v1/tokens/self`, { method: 'DELETE' })).status).to.equal(401);
      expect((await signRequest(transcript, replicas[1].url, token, signBody())).status).to.equal(200);
      expect(await auditRows({ event_type: 'token.revoked', actor: info.id })).to.have.length(0);
    });

    it('when asked, /v1/openapi.json describes DELETE /v1/tokens/self with its 204 and its bearer token', async () => {
      const openapi = (await http(transcript, `${replicas[0].url}/v1/openapi.json`)).json();
      const operation = openapi.paths['/v1/tokens/self'].delete;
      expect(operation.operationId).to.equal('revokeOwnToken');
      expect(operation.security).to.deep.equal([{ bearerToken: [] }]);
      expect(operation.responses['204']).to.deep.equal({ description: operation.responses['204'].description });
      expect(operation.responses['4XX']).to.have.property('content');
    });
  });

  describe('rate limits', () => {
    const burst = 5;
    let limited: ServiceProcess[];
    /** The token's requests each replica accepted, in order; every other answer was 429. */
    const accepted: number[] = [];
    let token: string;

    before(async () => {
      // A rate so low that nothing refills during the test: only the bursts count.
      limited = await startReplicas(['--rate-limit', '0.001', '--rate-burst', String(burst)]);
      token = (await newToken()).token;
      for (const service of limited) {
        let count = 0;
        for (let i = 0; i < burst + 3; i += 1) {
          const answer = await signRequest(transcript, service.url, token, signBody());
          if (answer.status === 200) count += 1;
          else expect(answer.json().error.code).to.equal('API_RATE_LIMITED');
        }
        accepted.push(count);
      }
    });

    after(async () => {
      for (const service of limited) await service.stop();
    });

    it('when a token has a burst of B, one replica accepts exactly B of its requests, and three replicas together 3B: the limit is per replica', () => {
      const total = accepted.reduce((sum, n) => sum + n, 0);
      console.log(`      accepted per replica: ${accepted.join(', ')} (burst ${burst})`);
      expect(accepted[0]).to.equal(burst);
      expect(total).to.be.at.most(REPLICAS * burst);
      expect(total).to.be.greaterThan(burst);
    });

    it('when a token has used up its burst, it may still revoke itself (DELETE /v1/tokens/self is not rate limited)', async () => {
      expect((await signRequest(transcript, limited[0].url, token, signBody())).status).to.equal(429);
      const revoked = await http(transcript, `${limited[0].url}/v1/tokens/self`, { method: 'DELETE', token });
      expect(revoked.status, revoked.text).to.equal(204);
    });
  });

  describe('PostgreSQL terminating every session, then refusing connections for 3 s', () => {
    const timeoutMs = FAILOVER_DB_TIMEOUT_S * 1000;
    let failover: ServiceProcess[];
    let token: string;
    const results: { phase: string; outcome: Exchange }[] = [];
    const readiness: { phase: string; outcome: Exchange }[] = [];
    let recoveredWithinMs = 0;
    const database = () => new URL(scratch!.url).pathname.slice(1);
    const terminateAll = () => adminQuery(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${database()}' and pid <> pg_backend_pid()`);

    before(async () => {
      token = (await newToken()).token;
      failover = await startReplicas(['--rate-limit', '100000', '--rate-burst', '100000'], { CLOACINA_DATABASE_TIMEOUT: String(FAILOVER_DB_TIMEOUT_S) });
      const agents = failover.map(() => new Agent({ keepAlive: true, maxSockets: 8 }));
      let phase = 'before';
      let stop = false;
      let n = 0;
      const worker = async () => {
        while (!stop) {
          const startedIn = phase;
          const replica = n % failover.length;
          n += 1;
          const outcome = await exchange(
            agents[replica],
            failover[replica].url,
            'POST',
            '/v1/sign',
            { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            Buffer.from(JSON.stringify(signBody())),
            30_000,
          );
          results.push({ phase: startedIn, outcome });
          if (outcome.status !== 200) await sleep(20);
        }
      };
      const load = Promise.all(Array.from({ length: 6 }, worker));
      await sleep(1000);
      // Every session ended by the server, three times, while requests run; new connections still work.
      phase = 'terminated';
      for (let i = 0; i < 3; i += 1) {
        await terminateAll();
        await sleep(300);
      }
      // Then the database refuses connections (a primary gone, its replacement not yet up).
      await adminQuery(`alter database ${database()} allow_connections false`);
      await terminateAll();
      // Caches checked just before may still be used for 250 ms (a signing then fails at its audit row,
      // AUDIT_FAILED); requests started after that reach the database first.
      await sleep(300);
      phase = 'down';
      await sleep(700);
      for (const service of failover) readiness.push({ phase, outcome: await exchange(agents[0], service.url, 'GET', '/readyz', {}, undefined, 30_000) });
      await sleep(2000);
      await adminQuery(`alter database ${database()} allow_connections true`);
      const upAt = Date.now();
      phase = 'recovering';
      // Recovered: every replica ready and signing again.
      for (const service of failover) {
        for (;;) {
          const ready = await exchange(agents[0], service.url, 'GET', '/readyz', {}, undefined, 30_000);
          const signed = await signRequest(transcript, service.url, token, signBody());
          if (ready.status === 200 && signed.status === 200) break;
          if (Date.now() - upAt > 30_000) throw new Error(`${service.url} did not recover within 30 s`);
          await sleep(100);
        }
      }
      recoveredWithinMs = Date.now() - upAt;
      phase = 'after';
      await sleep(1000);
      stop = true;
      await load;
      for (const agent of agents) agent.destroy();
      for (const { outcome } of [...results, ...readiness]) transcript.add(`answer ${outcome.status}`, outcome.body);
      // The test's own handle lost its sessions too: a fresh one.
      await db.close();
      db = await openDatabase(scratch!.url);
      keys = new DbKeyManager(db);
      const by = (p: string) => results.filter((r) => r.phase === p);
      const codes = new Map<string, number>();
      for (const { outcome } of results.filter((r) => r.outcome.status !== 200)) {
        const code = `${outcome.status ?? outcome.error} ${outcome.status ? JSON.parse(outcome.body).error?.code : ''}`;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      console.log(
        `      ${results.length} requests: ${['before', 'terminated', 'down', 'recovering', 'after']
          .map((p) => `${p} ${by(p).filter((r) => r.outcome.status === 200).length}/${by(p).length} ok`)
          .join(
            ', ',
          )}; failures ${[...codes].map(([code, count]) => `${count} x ${code}`).join(', ')}; slowest ${Math.max(...results.map((r) => r.outcome.ms))} ms; all replicas ready and signing ${recoveredWithinMs} ms after the database came back`,
      );
    });

    it('when the sessions are terminated and the database refuses connections, every request is answered, each failure a 503 naming the database failure', () => {
      expect(results.filter((r) => r.outcome.status === undefined).map((r) => r.outcome)).to.deep.equal([]);
      const failures = results.filter((r) => r.outcome.status !== 200);
      expect(failures.length).to.be.greaterThan(0);
      for (const { outcome } of failures) {
        expect(outcome.status, outcome.body).to.equal(503);
        expect(JSON.parse(outcome.body).error.code, outcome.body).to.be.oneOf(['DATABASE_UNAVAILABLE', 'DATABASE_ERROR', 'AUDIT_FAILED']);
      }
      // While the database refused connections, the answer names the database, not the audit.
      const down = results.filter((r) => r.phase === 'down' && r.outcome.status !== 200);
      expect(down.length).to.be.greaterThan(0);
      for (const { outcome } of down) expect(JSON.parse(outcome.body).error.code, outcome.body).to.be.oneOf(['DATABASE_UNAVAILABLE', 'DATABASE_ERROR']);
    });

    it(`when the database fails over, no request takes longer than CLOACINA_DATABASE_TIMEOUT (${FAILOVER_DB_TIMEOUT_S} s) plus ${FAILOVER_MARGIN_MS / 1000} s`, () => {
      for (const { outcome } of results) expect(outcome.ms, outcome.body).to.be.below(timeoutMs + FAILOVER_MARGIN_MS);
    });

    it('when the database refuses connections, /readyz on every replica answers 503 unready, naming the database', () => {
      expect(readiness).to.have.length(REPLICAS);
      for (const { outcome } of readiness) {
        expect(outcome.status, outcome.body).to.equal(503);
        expect(JSON.parse(outcome.body).status).to.equal('unready');
        expect(JSON.parse(outcome.body).reason).to.match(/^the database is not available/);
        expect(outcome.ms).to.be.below(timeoutMs + FAILOVER_MARGIN_MS);
      }
    });

    it('when the database answers again, every replica recovers by itself: ready, signing, the same processes', () => {
      expect(recoveredWithinMs).to.be.below(30_000);
      expect(results.filter((r) => r.phase === 'after').every((r) => r.outcome.status === 200)).to.equal(true);
      for (const service of failover) expect(service.child.exitCode).to.equal(null);
    });

    it('when the database is back, a token revoked through one replica is refused by every replica within 1 s again', async () => {
      const { token: victim } = await newToken();
      for (const service of failover) expect((await signRequest(transcript, service.url, victim, signBody())).status).to.equal(200);
      const revoked = await http(transcript, `${failover[0].url}/v1/tokens/self`, { method: 'DELETE', token: victim });
      const answeredAt = Date.now();
      expect(revoked.status, revoked.text).to.equal(204);
      await expectRefusedByAll(failover, victim, answeredAt);
    });

    it('when everything was answered, each signature answered has its audit row and the chain verifies', async () => {
      const verified = cli(transcript, ['audit', 'verify', '--database', scratch!.url, '--json']);
      expect(verified.status, verified.stderr).to.equal(0);
      const answered = results.filter((r) => r.outcome.status === 200).map((r) => JSON.parse(r.outcome.body).package_hash as string);
      const rows = await db.run((knex) =>
        knex('audit_events').where({ event_type: 'package.signed' }).whereIn('package_hash', answered).select('package_hash'),
      );
      expect(new Set(rows.map((row: { package_hash: string }) => row.package_hash)).size).to.equal(answered.length);
      expect(rows).to.have.length(answered.length);
    });
  });

  describe('afterwards', () => {
    it('when everything above ran, no log line, answer or CLI output holds a token, the KEK or key material', async () => {
      for (const row of await db.run((knex) => knex('signing_keys').select('sealed_private_key'))) secrets.push(Buffer.from(row.sealed_private_key));
      transcript.expectFreeOf(secrets);
    });
  });
});
