// API tokens: created with validated scopes, shown once, stored as a hash, listed without secrets, revoked,
// every change audited in its own transaction; and the small parsers and the rate limiter.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { generateKeypair } from '../../src/keys/keypair';
import { RateLimiter } from '../../src/service/rate-limit';
import { parseListen } from '../../src/service/server';
import { normalizeScope, parseExpiry } from '../../src/db/tokens';
import { parseSize } from '../../src/cli/commands/serve';
import { throwsWith, tempDir } from '../helpers';
import { describeEngines } from '../db/engines';
import { cli, Transcript } from './harness';

describeEngines('cloacina-sign tokens', (t) => {
  const dir = tempDir();
  const transcript = new Transcript();
  const tokens: string[] = [];
  let org: { id: string; name: string };
  let key: { id: string };
  after(() => dir.cleanup());
  const run = (args: string[]) => cli(transcript, [...args, '--database', t.url]);

  before(async () => {
    org = await t.keys.createOrganization(t.unique('tok'));
    key = await t.keys.createSigningKey(org.id, 'release', Buffer.alloc(32, 7));
  });

  it('when a token is created, it is printed once, stored only as its SHA-256, listed without it, and audited', async () => {
    const created = run(['tokens', 'create', '--org', org.name, '--scope', `sign:${key.id}`, '--scope', 'upload', '--expires', '30d', '--name', 'ci']);
    expect(created.status, created.stderr).to.equal(0);
    const token = created.stdout.trim();
    tokens.push(token);
    expect(token).to.match(/^cst_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).not.to.include(token);
    const rows = await t.db.run((knex) => knex('api_tokens').where({ org_id: org.id }));
    expect(rows).to.have.length(1);
    expect(rows[0].token_hash).to.equal(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(rows)).not.to.include(token);
    expect(JSON.parse(rows[0].scopes)).to.deep.equal([`sign:${key.id}`, 'upload']);
    expect(Date.parse(rows[0].expires_at) - Date.now()).to.be.within(29.9 * 86_400_000, 30 * 86_400_000);
    const listed = run(['tokens', 'list', '--org', org.id, '--json']);
    expect(listed.status, listed.stderr).to.equal(0);
    expect(listed.json()).to.have.length(1);
    expect(listed.json()[0]).to.have.keys(['id', 'orgId', 'name', 'scopes', 'createdAt', 'expiresAt', 'revokedAt', 'status']);
    expect(listed.json()[0]).to.include({ id: rows[0].id, name: 'ci', status: 'active' });
    const table = run(['tokens', 'list', '--org', org.name]);
    expect(table.stdout).to.match(/ID\s+NAME\s+SCOPES\s+CREATED\s+EXPIRES\s+STATUS/);
    for (const output of [listed.stdout, table.stdout]) {
      expect(output).not.to.include(token);
      expect(output).not.to.include(rows[0].token_hash);
    }
    const revoked = run(['tokens', 'revoke', rows[0].id, '--json']);
    expect(revoked.status, revoked.stderr).to.equal(0);
    expect(revoked.json()).to.include({ status: 'revoked' });
    expect(run(['tokens', 'revoke', rows[0].id]).status).to.equal(2);
    const events = await t.db.run((knex) => knex('audit_events').where({ org_id: org.id }).whereIn('event_type', ['token.created', 'token.revoked']));
    expect(events.map((e: { event_type: string }) => e.event_type).sort()).to.deep.equal(['token.created', 'token.revoked']);
    for (const event of events) expect(event.reason).to.include(rows[0].id);
    const json = run(['tokens', 'create', '--org', org.name, '--scope', 'upload', '--json']);
    expect(json.status, json.stderr).to.equal(0);
    expect(json.json().token).to.match(/^cst_/);
    expect(json.json().expiresAt).to.equal(null);
    tokens.push(json.json().token);
  });

  it("when a scope names another organization's key, a trusted key, a revoked key, nothing, or something unknown, nothing is created", async () => {
    const other = await t.keys.createOrganization(t.unique('tok-other'));
    const otherKey = await t.keys.createSigningKey(other.id, 'release', Buffer.alloc(32, 7));
    const trusted = await t.keys.trustPublicKey(org.id, generateKeypair().publicKey, 'pinned');
    const revoked = await t.keys.createSigningKey(org.id, 'old', Buffer.alloc(32, 7));
    await t.keys.revokeSigningKey(revoked.id);
    const count = async () => (await t.db.run((knex) => knex('api_tokens').count({ n: '*' })))[0].n;
    const before = Number(await count());
    for (const [scope, code] of [
      [`sign:${otherKey.id}`, 'INVALID_INPUT'],
      [`sign:${trusted.id}`, 'INVALID_INPUT'],
      [`sign:${revoked.id}`, 'KEY_REVOKED'],
      ['sign:not-a-uuid', 'INVALID_INPUT'],
      ['admin', 'INVALID_INPUT'],
    ]) {
      const result = run(['tokens', 'create', '--org', org.name, '--scope', scope, '--json']);
      expect(result.status, scope).to.equal(2);
      expect(result.json().error.code, scope).to.equal(code);
    }
    expect(run(['tokens', 'create', '--org', org.name, '--json']).json().error.code).to.equal('INVALID_INPUT');
    expect(run(['tokens', 'create', '--org', org.name, '--scope', 'upload', '--expires', 'soon', '--json']).json().error.code).to.equal('INVALID_INPUT');
    expect(Number(await count())).to.equal(before);
  });

  it("when a token's --expires is 2027-02-30, it is refused (INVALID_INPUT): that day does not exist", () => {
    for (const expires of ['2027-02-30T12:00:00Z', '2027-02-30']) {
      const result = run(['tokens', 'create', '--org', org.name, '--scope', 'upload', '--expires', expires, '--json']);
      expect(result.status, expires).to.equal(2);
      expect(result.json().error.code, expires).to.equal('INVALID_INPUT');
    }
  });

  it('when everything above ran, no output held a token it did not print on purpose', () => {
    // The creating command prints the token on stdout on purpose (it is shown once); every other output is free of it.
    const others = new Transcript();
    for (const entry of transcript.entries) if (!entry.startsWith('cli tokens create stdout')) others.add('entry', entry);
    others.expectFreeOf(tokens);
  });
});

describe('token scopes, expiry, limits and addresses', () => {
  it('when scopes are given, they are normalized or refused', () => {
    expect(normalizeScope(' upload ')).to.equal('upload');
    expect(normalizeScope('sign:{0A0B0C0D-0000-4000-8000-000000000000}')).to.equal('sign:0a0b0c0d-0000-4000-8000-000000000000');
    throwsWith(() => normalizeScope('sign:'), 'INVALID_INPUT');
    throwsWith(() => normalizeScope('read'), 'INVALID_INPUT');
  });

  it('when an expiry is given, durations and ISO times are accepted and the past refused', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseExpiry('30d', now)).to.equal('2026-01-31T00:00:00.000Z');
    expect(parseExpiry('12h', now)).to.equal('2026-01-01T12:00:00.000Z');
    expect(parseExpiry('2026-02-01T00:00:00Z', now)).to.equal('2026-02-01T00:00:00.000Z');
    throwsWith(() => parseExpiry('2025-01-01', now), 'INVALID_INPUT');
    throwsWith(() => parseExpiry('0s', now), 'INVALID_INPUT');
    throwsWith(() => parseExpiry('99999d', now), 'INVALID_INPUT');
    throwsWith(() => parseExpiry('tomorrow', now), 'INVALID_INPUT');
  });

  it('when a bucket is empty, the limiter says how long to wait, and refills at its rate', () => {
    const limiter = new RateLimiter({ perSecond: 2, burst: 3 });
    const now = 1_000_000;
    expect([limiter.take('a', now), limiter.take('a', now), limiter.take('a', now)]).to.deep.equal([0, 0, 0]);
    expect(limiter.take('a', now)).to.equal(1);
    expect(limiter.blocked('a', now)).to.equal(1);
    expect(limiter.take('b', now)).to.equal(0);
    expect(limiter.blocked('a', now + 500)).to.equal(0);
    expect(limiter.take('a', now + 500)).to.equal(0);
    expect(limiter.take('a', now + 500)).to.equal(1);
  });

  it('when --listen and sizes are given, they parse or are refused', () => {
    expect(parseListen('127.0.0.1:8080')).to.deep.equal({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('[::1]:0')).to.deep.equal({ host: '::1', port: 0 });
    expect(parseListen(':9000')).to.deep.equal({ host: '0.0.0.0', port: 9000 });
    expect(() => parseListen('localhost')).to.throw(RangeError);
    expect(() => parseListen('host:99999')).to.throw(RangeError);
    expect(parseSize('512MiB')).to.equal(512 * 2 ** 20);
    expect(parseSize('1g')).to.equal(2 ** 30);
    expect(parseSize('1000')).to.equal(1000);
    expect(() => parseSize('-1')).to.throw();
  });
});
