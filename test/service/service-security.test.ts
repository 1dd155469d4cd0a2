// The signing service against hostile clients, on SQLite and on PostgreSQL: statements bound to the
// token's organization, names that would forge log lines or rewrite a terminal, failed authentications
// that must not lock a valid token out, and request bodies that say one thing twice.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { auditEvent } from '../../src/audit/audit-trail';
import { auditToDatabase } from '../../src/audit/database-sink';
import { formatTable } from '../../src/cli/table';
import { generateKeypair } from '../../src/keys/keypair';
import { RateLimiter } from '../../src/service/rate-limit';
import { duplicateMemberName } from '../../src/service/strict-json';
import { TokenManager } from '../../src/db/tokens';
import { DetachedSignature } from '../../src/formats/v1';
import { signPackage } from '../../src/signing/sign';
import { rejectsWith, tempDir } from '../helpers';
import { describeEngines } from '../db/engines';
import { cli, http, randomPackage, type ServiceProcess, signRequest, startService, Transcript } from './harness';

/** Control and bidirectional characters that forge a line, clear a screen or make a name display unlike what it is. */
const HOSTILE_NAMES = {
  escape: 'pkg\u001b[2J\u001b[Hcleared',
  newline: 'pkg\n2026-01-01T00:00:00Z package.uploaded forged',
  'bidi override': 'pkg\u202egnp.exe',
  nul: 'pkg\u0000tail',
  'line separator': 'pkg\u2028next',
};

/** The control and bidirectional characters of `text` (a table's own line breaks included). */
const unsafeCharacters = (text: string) =>
  [...text].filter((char) => {
    const cp = char.codePointAt(0)!;
    return cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
  });

describe('terminal output of user-supplied text', () => {
  it('when a table cell holds control or bidirectional characters, it prints them as visible escapes', () => {
    const table = formatTable(['NAME', 'REASON'], [['a\u001b[2Jb', 'x\ny\u202ez\u0000\u009b']]);
    expect(unsafeCharacters(table)).to.deep.equal(['\n']);
    expect(table.split('\n')).to.have.length(2);
    expect(table).to.include('a\\x1b[2Jb');
    expect(table).to.include('x\\ny\\u202ez\\x00\\x9b');
  });
});

describe('duplicate member names in JSON', () => {
  it('when an object at any depth names a member twice (in any spelling JSON.parse decodes alike), it is found', () => {
    expect(duplicateMemberName('{"a":1,"a":2}')).to.equal('a');
    expect(duplicateMemberName('{"x":[{"b":1},{"c":{"d":1, "d" :2}}]}')).to.equal('d');
    expect(duplicateMemberName('{"keyId":1,"key\\u0049d":2}')).to.equal('keyId');
    expect(duplicateMemberName('{"a\\"b":1,"a\\u0022b":2}')).to.equal('a"b');
  });

  it('when equal names are in different objects, or braces and colons are inside strings, nothing is found', () => {
    expect(duplicateMemberName('{"a":{"a":1},"b":[{"a":1},{"a":2}]}')).to.equal(undefined);
    expect(duplicateMemberName('{"a":"{\\"a\\":1}","b":"a:","c":["a","a"]}')).to.equal(undefined);
    expect(duplicateMemberName('[{"a":1},{"a":1}]')).to.equal(undefined);
    expect(duplicateMemberName('"a"')).to.equal(undefined);
  });
});

describe('the failed-authentication limiter', () => {
  it('when a flood of distinct keys each fails once, the buckets that refilled are dropped and the map stays small', () => {
    const limiter = new RateLimiter({ perSecond: 5, burst: 20 });
    let now = 1_000_000;
    for (let i = 0; i < 100_000; i += 1) {
      limiter.take(`token-hash:${i}`, now);
      if (i % 1000 === 0) now += 250;
    }
    expect(limiter.size).to.be.lessThan(25_000);
    // A key over its limit is still refused: the sweep drops only buckets that are full again.
    for (let i = 0; i < 21; i += 1) limiter.take('token-hash:retried', now);
    for (let i = 0; i < 20_000; i += 1) limiter.take(`token-hash:more-${i}`, now);
    expect(limiter.blocked('token-hash:retried', now)).to.be.greaterThan(0);
  });
});

describeEngines('the signing service against hostile clients', (t) => {
  const dir = tempDir();
  const transcript = new Transcript();
  const kek = randomBytes(32);
  const secrets: (string | Buffer)[] = [kek];
  let service: ServiceProcess;
  let org: { id: string; name: string };
  let other: { id: string; name: string };
  let key: { id: string; fingerprint: string; publicKey: Buffer };
  let token: string;
  let tokenId: string;
  let vendor: ReturnType<typeof generateKeypair>;

  const auditRows = (where: Record<string, unknown>) => t.db.run((knex) => knex('audit_events').where(where).orderBy(['timestamp', 'id']));
  const hash = () => randomBytes(32).toString('hex');
  const rawSign = (body: string, bearer: string | null = token) =>
    http(transcript, `${service.url}/v1/sign`, { method: 'POST', token: bearer ?? undefined, headers: { 'content-type': 'application/json' }, body });
  const packageCount = async () => Number((await t.db.run((knex) => knex('packages').count({ n: '*' }).first()))?.n);
  const upload = async (name: string) => {
    const pkg = randomPackage(dir.join(`${randomBytes(4).toString('hex')}.so`), 4096);
    const document = DetachedSignature.fromSignatureInfo(await signPackage(pkg, vendor.privateKey));
    return http(transcript, `${service.url}/v1/orgs/${org.id}/packages?${new URLSearchParams({ name })}`, {
      method: 'POST',
      token,
      headers: { 'content-type': 'application/octet-stream', 'cloacina-signature': Buffer.from(document.toString()).toString('base64') },
      body: readFileSync(pkg),
    });
  };

  before(async () => {
    org = await t.keys.createOrganization(t.unique('acme'));
    other = await t.keys.createOrganization(t.unique('other'));
    const created = await t.keys.createSigningKey(org.id, 'release', kek);
    key = { id: created.id, fingerprint: created.fingerprint, publicKey: created.publicKey };
    // `other` trusts `acme`'s keys through a grant: exactly the runner a forged organization would fool.
    await t.keys.trustPublicKey(org.id, key.publicKey, 'release');
    await t.keys.grantTrust(other.id, org.id);
    vendor = generateKeypair();
    await t.keys.trustPublicKey(org.id, vendor.publicKey, 'vendor');
    const issued = await new TokenManager(t.keys).create({ orgId: org.id, scopes: [`sign:${key.id}`, 'upload'] });
    token = issued.token;
    tokenId = issued.info.id;
    secrets.push(token);
    service = await startService({ database: t.url, kek: kek.toString('base64'), args: ['--rate-limit', '1000'], transcript });
  });

  after(async () => {
    await service?.stop();
    dir.cleanup();
  });

  describe('statements bound to the organization', () => {
    it('when a token asks to sign a statement naming another organization, it answers 403 API_FORBIDDEN, audited, and signs nothing', async () => {
      const packageHash = hash();
      const answer = await signRequest(transcript, service.url, token, {
        keyId: key.id,
        packageHash,
        statement: { name: 'payroll', version: '1.0.0', organization: other.name, size: 1 },
      });
      expect(answer.status, answer.text).to.equal(403);
      expect(answer.json().error.code).to.equal('API_FORBIDDEN');
      expect(answer.text).not.to.include('"signature"');
      const rows = await auditRows({ actor: tokenId, package_hash: packageHash });
      expect(rows.map((row: { event_type: string }) => row.event_type)).to.deep.equal(['api.request.refused']);
      expect(rows[0]).to.include({ key_id: key.id, org_id: org.id });
      expect(rows[0].reason).to.include(JSON.stringify(other.name));
    });

    it('when the CLI signs through the service for another organization, it exits 2 API_FORBIDDEN and writes no .sig a runner of that organization could accept', async () => {
      const pkg = randomPackage(dir.join('forged-org.so'));
      const args = ['package', 'sign', pkg, '--key-id', key.id, '--api-url', service.url, '--format', 'v2', '--name', 'payroll', '--version', '1.0.0'];
      const env = { CLOACINA_API_TOKEN: token, CLOACINA_DATABASE_URL: `sqlite:${dir.join('no-such.db')}` };
      const forged = cli(transcript, [...args, '--organization', other.name, '--json'], env);
      expect(forged.status, forged.stderr).to.equal(2);
      expect(forged.json().error.code).to.equal('API_FORBIDDEN');
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
      // Its own organization's statement is signed, and a runner of the other organization (trusting the key through the grant) refuses it.
      const own = cli(transcript, [...args, '--organization', org.name], env);
      expect(own.status, own.stderr).to.equal(0);
      const runner = cli(transcript, ['package', 'verify', pkg, '--org', other.id, '--expect-organization', other.name, '--database', t.url, '--json']);
      expect(runner.status, runner.stdout).to.equal(1);
      expect(runner.json().results[0].error.code).to.equal('ORGANIZATION_MISMATCH');
    });

    it("when a statement names the token's own organization, or none, it is signed as asked", async () => {
      for (const organization of [org.name, undefined]) {
        const answer = await signRequest(transcript, service.url, token, {
          keyId: key.id,
          packageHash: hash(),
          statement: { name: 'payroll', version: '1.0.0', organization, size: 1 },
        });
        expect(answer.status, answer.text).to.equal(200);
        expect(answer.json().statement.organization).to.equal(organization);
      }
    });

    it('when a statement names the organization in another spelling (case, spaces), it is refused: runners compare names exactly', async () => {
      for (const organization of [org.name.toUpperCase(), ` ${org.name}`, org.id]) {
        const answer = await signRequest(transcript, service.url, token, {
          keyId: key.id,
          packageHash: hash(),
          statement: { name: 'payroll', version: '1.0.0', organization, size: 1 },
        });
        expect(answer.status, `${organization}: ${answer.text}`).to.equal(403);
      }
    });
  });

  describe('names', () => {
    for (const [what, name] of Object.entries(HOSTILE_NAMES)) {
      it(`when an upload's name holds a ${what}, it answers 400 INVALID_INPUT, audited without the raw name, and stores nothing`, async () => {
        const before = await packageCount();
        const answer = await upload(name);
        expect(answer.status, answer.text).to.equal(400);
        expect(answer.json().error.code).to.equal('INVALID_INPUT');
        expect(await packageCount()).to.equal(before);
        const rows = await auditRows({ actor: tokenId, event_type: 'package.upload.failure' });
        const last = rows[rows.length - 1];
        expect(last.reason).to.match(/^INVALID_INPUT: a package name may not contain/);
        expect(JSON.stringify(last)).not.to.include(JSON.stringify(name).slice(1, -1));
      });
    }

    it("when an upload's name is printable, with spaces around it, it is stored trimmed", async () => {
      const answer = await upload('  data pipeline  ');
      expect(answer.status, answer.text).to.equal(201);
      expect(answer.json().name).to.equal('data pipeline');
    });

    it('when a statement name holds a control or bidirectional character, it answers 400 INVALID_INPUT', async () => {
      for (const name of Object.values(HOSTILE_NAMES)) {
        const answer = await signRequest(transcript, service.url, token, {
          keyId: key.id,
          packageHash: hash(),
          statement: { name, version: '1.0.0', size: 1 },
        });
        expect(answer.status, `${JSON.stringify(name)}: ${answer.text}`).to.equal(400);
        expect(answer.json().error.code).to.equal('INVALID_INPUT');
      }
    });

    it('when a key or token name holds a control or bidirectional character, it is refused with INVALID_INPUT', async () => {
      for (const name of Object.values(HOSTILE_NAMES)) {
        await rejectsWith(t.keys.createSigningKey(org.id, name, kek), 'INVALID_INPUT');
        await rejectsWith(t.keys.trustPublicKey(org.id, generateKeypair().publicKey, name), 'INVALID_INPUT');
        await rejectsWith(new TokenManager(t.keys).create({ orgId: org.id, scopes: ['upload'], name }), 'INVALID_INPUT');
      }
    });

    it('when audit list prints rows holding control or bidirectional characters, it shows them escaped, and --json keeps them as JSON', async () => {
      const path = 'pkg\u001b[2J\u001b[Hcleared\n2026-01-01T00:00:00Z  package.uploaded  forged\u202e';
      const event = auditEvent({ eventType: 'package.upload.failure', orgId: other.id, packagePath: path, reason: 'INVALID_INPUT: \u001b]0;title\u0007' });
      await auditToDatabase(t.db).write(event);
      const listed = cli(transcript, ['audit', 'list', '--org', other.id, '--database', t.url]);
      expect(listed.status, listed.stderr).to.equal(0);
      expect(new Set(unsafeCharacters(listed.stdout))).to.deep.equal(new Set(['\n']));
      expect(listed.stdout).not.to.include('forged\n');
      expect(listed.stdout).to.include('pkg\\x1b[2J\\x1b[Hcleared\\n2026-01-01T00:00:00Z  package.uploaded  forged\\u202e');
      expect(listed.stdout).to.include('INVALID_INPUT: \\x1b]0;title\\x07');
      const json = cli(transcript, ['audit', 'list', '--org', other.id, '--database', t.url, '--json']);
      expect(json.status, json.stderr).to.equal(0);
      expect(json.json().find((row: { id: string }) => row.id === event.id).package_path).to.equal(path);
    });
  });

  describe('failed authentications', () => {
    const body = () => JSON.stringify({ keyId: key.id, packageHash: hash() });
    const badToken = () => `cst_${randomBytes(32).toString('base64url')}`;

    it('when one address sends many unknown tokens, a valid token from the same address still signs every time', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 40; i += 1) {
        expect((await rawSign(body(), badToken())).status).to.be.oneOf([401, 429]);
        if (i % 4 === 0) statuses.push((await rawSign(body())).status);
      }
      expect(statuses).to.deep.equal(statuses.map(() => 200));
    });

    it('when the same wrong token is tried again and again, it is answered 429 with Retry-After once over the limit, audited', async () => {
      const wrong = badToken();
      const answers = [];
      for (let i = 0; i < 30; i += 1) answers.push(await rawSign(body(), wrong));
      expect(answers[0].status).to.equal(401);
      const limited = answers.find((answer) => answer.status === 429);
      expect(limited, 'no 429 among 30 tries of one wrong token').not.to.equal(undefined);
      expect(Number(limited!.headers.get('retry-after'))).to.be.greaterThanOrEqual(1);
      expect(limited!.json().error.code).to.equal('API_RATE_LIMITED');
      expect((await rawSign(body())).status).to.equal(200);
    });

    it('when one address sends many requests without a token, they are answered 429 once over the limit, and a valid token still signs', async () => {
      const statuses = [];
      for (let i = 0; i < 30; i += 1) statuses.push((await rawSign(body(), null)).status);
      expect(statuses[0]).to.equal(401);
      expect(statuses).to.include(429);
      expect((await rawSign(body())).status).to.equal(200);
    });
  });

  describe('strict request bodies', () => {
    it('when a JSON body names a key twice, it answers 400 INVALID_INPUT, audited, and signs with neither', async () => {
      const packageHash = hash();
      const other = '00000000-0000-4000-8000-000000000000';
      for (const text of [
        `{"keyId":"${other}","keyId":"${key.id}","packageHash":"${packageHash}"}`,
        `{"keyId":"${key.id}","packageHash":"${packageHash}","key\\u0049d":"${key.id}"}`,
        `{"keyId":"${key.id}","packageHash":"${packageHash}","statement":{"name":"a","version":"1.0.0","size":1,"name":"b"}}`,
      ]) {
        const answer = await rawSign(text);
        expect(answer.status, `${text}: ${answer.text}`).to.equal(400);
        expect(answer.json().error.code).to.equal('INVALID_INPUT');
      }
      const rows = await auditRows({ actor: tokenId, event_type: 'package.sign.failure' });
      expect(rows.filter((row: { reason: string }) => row.reason.includes('twice'))).to.have.length.greaterThanOrEqual(3);
      expect(await auditRows({ package_hash: packageHash, event_type: 'package.signed' })).to.have.length(0);
    });

    it('when the same key appears in sibling objects or an array of objects, it is not a duplicate', async () => {
      const answer = await rawSign(
        `{"keyId":"${key.id}","packageHash":"${hash()}","statement":{"name":"a\\"name\\"","version":"1.0.0","size":1,"organization":${JSON.stringify(org.name)}}}`,
      );
      expect(answer.status, answer.text).to.equal(200);
    });

    it('when a JSON body is not valid JSON, or over 64 KiB, it answers 400 or 413 as before', async () => {
      expect((await rawSign('{"keyId":')).status).to.equal(400);
      expect((await rawSign(`{"keyId":"${key.id}","pad":"${'x'.repeat(70 * 1024)}"}`)).status).to.equal(413);
      expect((await rawSign('{"__proto__":{"x":1}}')).status).to.equal(400);
    });
  });

  describe('secrets', () => {
    it('when everything above ran, no log line, answer or CLI output holds a token or the KEK', () => {
      transcript.expectFreeOf(secrets);
    });
  });
});
