// The signing service as a process: several of them sharing a database (revocation reaches every one
// within 1 s), killed with -9 mid-upload, stopped with SIGTERM while a request is in flight, an idle
// upload, rate limits, an unmigrated database, an audit table that cannot be written, TLS.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, ftruncateSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { TokenManager } from '../../src/db/tokens';
import { hashFile } from '../../src/hashing';
import { tempDir, waitUntil } from '../helpers';
import { describeEngines } from '../db/engines';
import { createScratchDatabase } from '../db/scratch-postgres';
import { cli, cliAsync, http, metric, randomPackage, type ServiceProcess, signRequest, startService, Transcript } from './harness';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An upload whose body the test sends piece by piece: `send(bytes)`, `end()`, and the answer. */
function manualUpload(base: string, path: string, headers: Record<string, string>) {
  const url = new URL(`${base}${path}`);
  let resolveAnswer: (answer: { status?: number; body: string; error?: string }) => void;
  const answer = new Promise<{ status?: number; body: string; error?: string }>((resolve) => {
    resolveAnswer = resolve;
  });
  const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers }, (res) => {
    let body = '';
    res.on('data', (chunk) => {
      body += chunk;
    });
    res.on('end', () => resolveAnswer({ status: res.statusCode, body }));
    res.on('error', (error) => resolveAnswer({ status: res.statusCode, body, error: error.message }));
  });
  req.on('error', (error) => resolveAnswer({ body: '', error: (error as NodeJS.ErrnoException).code ?? error.message }));
  req.flushHeaders();
  return { send: (bytes: Buffer) => new Promise<void>((resolve) => req.write(bytes, () => resolve())), end: () => req.end(), answer };
}

describeEngines('the signing service as a process', (t) => {
  const dir = tempDir();
  const transcript = new Transcript();
  const kek = randomBytes(32);
  const kekText = kek.toString('hex');
  const secrets: (string | Buffer)[] = [kek];
  const services: ServiceProcess[] = [];
  let org: { id: string; name: string };
  let key: { id: string; fingerprint: string; publicKey: Buffer };
  let token: string;
  let tokenId: string;

  const start = async (args: string[] = [], env: NodeJS.ProcessEnv = {}, database = t.url) => {
    const service = await startService({ database, kek: kekText, args: ['--access-log', ...args], env, transcript });
    services.push(service);
    return service;
  };
  const newToken = async (scopes: string[]) => {
    const created = await new TokenManager(t.keys).create({ orgId: org.id, scopes });
    secrets.push(created.token);
    return created;
  };
  const apiEnv = (value: string) => ({ CLOACINA_API_TOKEN: value });
  const signedPackage = async (service: ServiceProcess, name: string, size?: number) => {
    const pkg = randomPackage(dir.join(name), size);
    const signed = cli(transcript, ['package', 'sign', pkg, '--key-id', key.id, '--api-url', service.url], apiEnv(token));
    expect(signed.status, signed.stderr).to.equal(0);
    return pkg;
  };
  const signatureHeader = (pkg: string) => Buffer.from(readFileSync(`${pkg}.sig`, 'utf8').trimEnd()).toString('base64');
  /** An upload of a signed package written by hand: the test decides when each piece of the body goes. */
  const uploadBySocket = (service: ServiceProcess, pkg: string, length: number) =>
    manualUpload(service.url, `/v1/orgs/${org.id}/packages`, {
      authorization: `Bearer ${token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(length),
      'cloacina-signature': signatureHeader(pkg),
    });

  before(async () => {
    org = await t.keys.createOrganization(t.unique('proc'));
    const created = await t.keys.createSigningKey(org.id, 'release', kek);
    key = { id: created.id, fingerprint: created.fingerprint, publicKey: created.publicKey };
    await t.keys.trustPublicKey(org.id, key.publicKey, 'release');
    const made = await newToken([`sign:${key.id}`, 'upload']);
    token = made.token;
    tokenId = made.info.id;
  });

  after(async () => {
    for (const service of services) await service.stop('SIGKILL');
    dir.cleanup();
  });

  it('when a token is revoked, a second service process sharing the database refuses it within 1 s', async () => {
    const first = await start();
    const second = await start();
    const victim = await newToken([`sign:${key.id}`]);
    const body = { keyId: key.id, packageHash: 'e'.repeat(64) };
    for (const service of [first, second]) expect((await signRequest(transcript, service.url, victim.token, body)).status).to.equal(200);
    await new TokenManager(t.keys).revoke(victim.info.id);
    const revokedAt = Date.now();
    const refusedAfter = await Promise.all(
      [first, second].map(async (service) => {
        for (;;) {
          const answer = await signRequest(transcript, service.url, victim.token, body);
          if (answer.status === 401) return Date.now() - revokedAt;
          expect(answer.status).to.equal(200);
          if (Date.now() - revokedAt > 2000) throw new Error('still accepted 2 s after the revocation');
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }),
    );
    for (const delay of refusedAfter) expect(delay).to.be.lessThan(1000);
    // The CLI's `tokens revoke` too.
    const other = await newToken([`sign:${key.id}`]);
    expect((await signRequest(transcript, second.url, other.token, body)).status).to.equal(200);
    const revoked = cli(transcript, ['tokens', 'revoke', other.info.id, '--database', t.url, '--json']);
    expect(revoked.status, revoked.stderr).to.equal(0);
    expect(revoked.json()).to.include({ id: other.info.id, status: 'revoked' });
    await sleep(1000);
    expect((await signRequest(transcript, second.url, other.token, body)).status).to.equal(401);
    await first.stop();
    await second.stop();
  });

  it('when the service is killed with -9 during an upload, the CLI exits 2 cleanly and nothing is half-stored', async () => {
    const service = await start(['--max-upload-bytes', '4GiB']);
    // A sparse 1 GiB package: reading it is quick, sending it takes long enough to be interrupted.
    const pkg = dir.join('huge.so');
    const fd = openSync(pkg, 'w');
    ftruncateSync(fd, 1024 ** 3);
    closeSync(fd);
    writeFileSync(pkg, randomBytes(4096), { flag: 'r+' });
    const signed = cli(transcript, ['package', 'sign', pkg, '--key-id', key.id, '--api-url', service.url], apiEnv(token));
    expect(signed.status, signed.stderr).to.equal(0);
    const hash = await hashFile(pkg);
    const upload = cliAsync(transcript, ['package', 'upload', pkg, '--org', org.name, '--api-url', service.url, '--json'], apiEnv(token));
    for (;;) {
      const metrics = (await http(transcript, `${service.url}/metrics`)).text;
      if (metric(metrics, 'cloacina_sign_uploads_in_progress') > 0 && metric(metrics, 'cloacina_sign_upload_received_bytes_total') > 0) break;
      expect(upload.child.exitCode, 'the upload ended before it could be interrupted').to.equal(null);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    service.child.kill('SIGKILL');
    const outcome = await upload.done;
    expect(outcome.status, outcome.stderr).to.equal(2);
    expect(JSON.parse(outcome.stdout).error.code).to.equal('API_UNREACHABLE');
    expect(outcome.stderr).not.to.match(/INTERNAL|at .*\.js:\d+/);
    expect(await t.db.run((knex) => knex('packages').where({ package_hash: hash }))).to.have.length(0);
    expect(await t.db.run((knex) => knex('audit_events').where({ package_hash: hash, event_type: 'package.uploaded' }))).to.have.length(0);
  });

  it('when a package many times the hasher backlog arrives in uneven writes, the stored digest is that of the bytes in order', async () => {
    const service = await start(['--max-upload-bytes', '256MiB']);
    // 40 MiB: ten times the bytes the service lets wait for its hashing thread before it pauses the body.
    const pkg = await signedPackage(service, 'large.so', 40 * 1024 * 1024);
    const bytes = readFileSync(pkg);
    const upload = uploadBySocket(service, pkg, bytes.length);
    // Writes of 1 byte to 3 MiB, so reads straddle the service's 1 MiB batches at odd offsets.
    const sizes = [1, 7, 65_535, 3 * 1024 * 1024 + 3, 1024 * 1024 - 1, 4097];
    for (let offset = 0, i = 0; offset < bytes.length; i += 1) {
      const next = Math.min(bytes.length, offset + sizes[i % sizes.length]);
      await upload.send(bytes.subarray(offset, next));
      offset = next;
    }
    upload.end();
    const answer = await upload.answer;
    expect(answer.status, answer.body).to.equal(201);
    expect(JSON.parse(answer.body)).to.include({ packageHash: await hashFile(pkg), bytes: bytes.length });
  });

  it('when SIGTERM arrives during an upload, new connections are refused, the upload completes and is audited, and the service exits 0', async () => {
    const service = await start();
    const pkg = await signedPackage(service, 'graceful.so');
    const bytes = readFileSync(pkg);
    const upload = uploadBySocket(service, pkg, bytes.length);
    await upload.send(bytes.subarray(0, 1000));
    // The upload is in flight once the service counts it.
    const deadline = Date.now() + 10_000;
    while (metric((await http(transcript, `${service.url}/metrics`)).text, 'cloacina_sign_uploads_in_progress') !== 1) {
      expect(Date.now()).to.be.lessThan(deadline);
      await sleep(10);
    }
    service.child.kill('SIGTERM');
    await waitUntil(() => service.stderr.some((line) => line.includes('SIGTERM')), 'the service saw SIGTERM');
    const refused = await fetch(`${service.url}/healthz`).then(
      (response) => `answered ${response.status}`,
      (error: Error & { cause?: { code?: string } }) => error.cause?.code ?? error.message,
    );
    expect(refused).to.equal('ECONNREFUSED');
    await sleep(200);
    await upload.send(bytes.subarray(1000));
    upload.end();
    const answer = await upload.answer;
    transcript.add('graceful upload', answer.body);
    expect(answer.status, answer.body).to.equal(201);
    const exit = await service.exited;
    expect(exit).to.deep.equal({ code: 0, signal: null });
    const hash = await hashFile(pkg);
    const rows = await t.db.run((knex) => knex('audit_events').where({ package_hash: hash, event_type: 'package.uploaded' }));
    expect(rows).to.have.length(1);
    expect(rows[0].actor).to.equal(tokenId);
    expect(JSON.parse(answer.body).packageHash).to.equal(hash);
  });

  it('when an upload stalls mid-body, the connection is closed after --idle-timeout, audited, and nothing is stored', async () => {
    const service = await start(['--idle-timeout', '500']);
    const pkg = await signedPackage(service, 'stalled.so');
    const bytes = readFileSync(pkg);
    const started = Date.now();
    const upload = uploadBySocket(service, pkg, bytes.length);
    await upload.send(bytes.subarray(0, 1000));
    const answer = await upload.answer;
    expect(answer.status).to.equal(undefined);
    expect(answer.error).to.match(/ECONNRESET|socket hang up/);
    expect(Date.now() - started).to.be.lessThan(5000);
    const hash = await hashFile(pkg);
    expect(await t.db.run((knex) => knex('packages').where({ package_hash: hash }))).to.have.length(0);
    await sleep(300);
    const failures = await t.db.run((knex) =>
      knex('audit_events').where({ actor: tokenId, event_type: 'package.upload.failure' }).where('reason', 'like', 'UPLOAD_ABORTED%'),
    );
    expect(failures.length).to.be.greaterThan(0);
    await service.stop();
  });

  it('when a token goes over its rate limit, it answers 429 with Retry-After, audited; the CLI exits 2 with API_RATE_LIMITED', async () => {
    const service = await start(['--rate-limit', '1', '--rate-burst', '3']);
    const body = { keyId: key.id, packageHash: 'f'.repeat(64) };
    const statuses = [];
    let limited: Awaited<ReturnType<typeof signRequest>> | undefined;
    for (let i = 0; i < 5; i += 1) {
      const answer = await signRequest(transcript, service.url, token, body);
      statuses.push(answer.status);
      if (answer.status === 429) limited = answer;
    }
    expect(statuses.slice(0, 3)).to.deep.equal([200, 200, 200]);
    expect(statuses[4]).to.equal(429);
    expect(Number(limited!.headers.get('retry-after'))).to.be.greaterThanOrEqual(1);
    expect(limited!.json().error.code).to.equal('API_RATE_LIMITED');
    const pkg = randomPackage(dir.join('limited.so'));
    const result = cli(transcript, ['package', 'sign', pkg, '--key-id', key.id, '--api-url', service.url, '--json'], apiEnv(token));
    expect(result.status).to.equal(2);
    expect(result.json().error.code).to.equal('API_RATE_LIMITED');
    const refused = await t.db.run((knex) =>
      knex('audit_events').where({ actor: tokenId, event_type: 'api.request.refused' }).where('reason', 'like', 'API_RATE_LIMITED%'),
    );
    expect(refused.length).to.be.greaterThanOrEqual(2);
    await service.stop();
  });

  it('when the audit row cannot be written, the request fails with 503 AUDIT_FAILED and no signature is handed out', async () => {
    const service = await start();
    const body = { keyId: key.id, packageHash: '1'.repeat(64) };
    expect((await signRequest(transcript, service.url, token, body)).status).to.equal(200);
    await t.db.run((knex) => knex.schema.renameTable('audit_events', 'audit_events_away'));
    try {
      const answer = await signRequest(transcript, service.url, token, body);
      expect(answer.status).to.equal(503);
      expect(answer.json().error.code).to.equal('AUDIT_FAILED');
      expect(answer.text).not.to.include('"signature"');
      const pkg = randomPackage(dir.join('unaudited.so'));
      const result = cli(transcript, ['package', 'sign', pkg, '--key-id', key.id, '--api-url', service.url, '--json'], apiEnv(token));
      expect(result.status).to.equal(2);
      expect(result.json().error.code).to.equal('AUDIT_FAILED');
    } finally {
      await t.db.run((knex) => knex.schema.renameTable('audit_events_away', 'audit_events'));
    }
    expect((await signRequest(transcript, service.url, token, body)).status).to.equal(200);
    await service.stop();
  });

  it('when the database is not migrated, /readyz answers 503 until it is, and /healthz 200 all along', async () => {
    let url: string;
    let drop: (() => Promise<void>) | undefined;
    if (t.engine === 'postgres') {
      const scratch = await createScratchDatabase('cloacina_test_unmigrated');
      url = scratch.url;
      drop = scratch.drop;
    } else {
      url = `sqlite:${dir.join('empty.db')}`;
      writeFileSync(dir.join('empty.db'), '');
    }
    try {
      const service = await start([], {}, url);
      expect(service.stderr.join('\n')).to.include('pending migration');
      const unready = await http(transcript, `${service.url}/readyz`);
      expect(unready.status).to.equal(503);
      expect(unready.json()).to.include({ status: 'unready' });
      expect((await http(transcript, `${service.url}/healthz`)).status).to.equal(200);
      const migrated = cli(transcript, ['db', 'migrate', '--database', url]);
      expect(migrated.status, migrated.stderr).to.equal(0);
      expect((await http(transcript, `${service.url}/readyz`)).status).to.equal(200);
      await service.stop();
    } finally {
      await drop?.();
    }
  });

  it('when serving TLS with a self-signed Ed25519 certificate, the CLI signs through it when trusted and exits 2 API_TLS_ERROR when not', async () => {
    const keyFile = dir.join('tls.key.pem');
    const certFile = dir.join('tls.cert.pem');
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ed25519',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '2',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { encoding: 'utf8' },
    );
    expect(made.status, made.stderr).to.equal(0);
    secrets.push(readFileSync(keyFile, 'utf8').split('\n')[1]);
    const service = await start(['--tls-cert', certFile, '--tls-key', keyFile]);
    expect(service.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    const pkg = randomPackage(dir.join('tls.so'));
    const trusted = cli(transcript, ['package', 'sign', pkg, '--key-id', key.id, '--api-url', service.url, '--json'], {
      ...apiEnv(token),
      NODE_EXTRA_CA_CERTS: certFile,
    });
    expect(trusted.status, trusted.stderr).to.equal(0);
    const untrusted = cli(transcript, ['package', 'sign', pkg, '--key-id', key.id, '--api-url', service.url, '--output', dir.join('x.sig'), '--json'], {
      ...apiEnv(token),
      NODE_EXTRA_CA_CERTS: '',
    });
    expect(untrusted.status).to.equal(2);
    expect(untrusted.json().error.code).to.equal('API_TLS_ERROR');
    await service.stop();
  });

  it('when everything above ran, no log line, answer or CLI output holds a token, the KEK or key material', async () => {
    for (const row of await t.db.run((knex) => knex('signing_keys').select('sealed_private_key'))) secrets.push(Buffer.from(row.sealed_private_key));
    secrets.push(kekText);
    transcript.expectFreeOf(secrets);
  });
});
