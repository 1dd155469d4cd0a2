// The key-encryption key in a PKCS#11 token (SoftHSM2, a token of this run in a temporary directory)
// and in a protected file: creating the token key, its id, sealing database keys under it on SQLite and
// PostgreSQL, rotating onto the token and back with a kill -9 in the middle, the signing service while
// the token goes away and returns, and no PIN or key bytes in any output of any of it.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kekId, parsePkcs11Uri, tokenKekSpec } from '../src/keys/kek';
import { native } from '../src/native';
import { TokenManager } from '../src/db/tokens';
import { describeEngines } from './db/engines';
import { writePackage } from './fixtures/random-package';
import { type SoftHsm, softHsm } from './fixtures/softhsm';
import { ROOT, tempDir } from './helpers';
import { cli as transcribedCli, http, type ServiceProcess, signRequest, startService, Transcript } from './service/harness';

const KILL_PRELOAD = join(ROOT, 'dist/test/fixtures/kill-during-rewrap.js');
/** The CLI from its modules, which the preload patches (the bundle would not see the patch). */
const CLI_MODULES = join(ROOT, 'dist/test/fixtures/cli-from-modules.js');
const dir = tempDir();
const transcript = new Transcript();
const variableKek = randomBytes(32);
let hsm: SoftHsm;
let kekUri: string;
let pinFile: string;

/** The CLI with the token visible and its PIN in CLOACINA_PKCS11_PIN unless `env` says otherwise; output kept. */
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => transcribedCli(transcript, args, { ...hsm.env, CLOACINA_PKCS11_PIN: hsm.pin, ...env });

// One suite around all of it, so the token is made only when these tests run (not for a --grep of others).
describe('key-encryption key sources', () => {
  before(function () {
    this.timeout(60_000);
    hsm = softHsm(dir.join('hsm'));
    // This process's own token calls (the attribute check) see the same token.
    process.env.SOFTHSM2_CONF = hsm.conf;
    kekUri = hsm.uri('kek');
    pinFile = dir.join('pin');
    writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
    for (const engine of ['sqlite', 'postgres']) {
      const made = cli(['kek', 'create', '--pkcs11', hsm.uri(`kek-${engine}`)]);
      if (made.status !== 0) throw new Error(made.stderr);
    }
  });

  after(() => {
    transcript.expectFreeOf([hsm.pin, variableKek]);
    dir.cleanup();
  });

  describe('the KEK in a PKCS#11 token', () => {
    let createdId: string;

    it('when `kek create --pkcs11` runs, it makes the key object and prints its KEK id', () => {
      const made = cli(['kek', 'create', '--pkcs11', kekUri, '--json']);
      expect(made.status, made.stderr).to.equal(0);
      expect(made.json()).to.include({ created: true, token: hsm.label, object: 'kek' });
      createdId = made.json().kekId;
      expect(createdId).to.match(/^[0-9a-f]{16}$/);
    });

    it('when `kek create` runs again on the same object, it keeps it and prints the same id', () => {
      const again = cli(['kek', 'create', '--pkcs11', kekUri, '--json']);
      expect(again.status, again.stderr).to.equal(0);
      expect(again.json()).to.include({ created: false, kekId: createdId });
    });

    it('when `kek id` runs with CLOACINA_KEK_PKCS11 and a pin-source file, it prints the id computed in the token', () => {
      const id = cli(['kek', 'id', '--json'], { CLOACINA_KEK_PKCS11: hsm.uri('kek', `&pin-source=file:${pinFile}`), CLOACINA_PKCS11_PIN: '' });
      expect(id.status, id.stderr).to.equal(0);
      expect(id.json()).to.deep.equal({ kekId: createdId, source: 'pkcs11' });
    });

    it('when the token is asked for the KEK object value (C_GetAttributeValue of CKA_VALUE), it refuses', async () => {
      expect(await native.pkcs11KekValueReadable(tokenKekSpec(kekUri, { env: { CLOACINA_PKCS11_PIN: hsm.pin } }))).to.equal(false);
    });

    it('when the PIN is wrong, `kek id` fails KEK_UNAVAILABLE saying the PIN was refused, without the PIN', () => {
      const wrongPin = `wrong-${randomBytes(6).toString('hex')}`;
      const refused = cli(['kek', 'id', '--json'], { CLOACINA_KEK_PKCS11: kekUri, CLOACINA_PKCS11_PIN: wrongPin });
      expect(refused.status).to.equal(2);
      expect(refused.json().error.code).to.equal('KEK_UNAVAILABLE');
      expect(refused.json().error.message).to.include('PIN');
      expect(refused.stdout + refused.stderr).not.to.include(wrongPin);
    });

    it('when the URI carries pin-value, it is refused without echoing the PIN', () => {
      const refused = cli(['kek', 'id', '--json'], { CLOACINA_KEK_PKCS11: hsm.uri('kek', `&pin-value=${hsm.pin}`) });
      expect(refused.status).to.equal(2);
      expect(refused.json().error.code).to.equal('INVALID_INPUT');
      expect(refused.json().error.message).to.include('pin-value');
    });

    it('when the pin-source file is readable by others, it is refused INSECURE_KEY_FILE', () => {
      const open = dir.join('pin-open');
      writeFileSync(open, hsm.pin, { mode: 0o644 });
      chmodSync(open, 0o644);
      const refused = cli(['kek', 'id', '--json'], { CLOACINA_KEK_PKCS11: hsm.uri('kek', `&pin-source=file:${open}`), CLOACINA_PKCS11_PIN: '' });
      expect(refused.status).to.equal(2);
      expect(refused.json().error.code).to.equal('INSECURE_KEY_FILE');
    });

    it('when a pkcs11: URI has percent-encoded labels and attributes in any order, they are decoded', () => {
      expect(parsePkcs11Uri('pkcs11:object=my%20kek;token=ops%3Bprod?pin-source=file:/run/p&module-path=/usr/lib/m.so')).to.deep.equal({
        tokenLabel: 'ops;prod',
        objectLabel: 'my kek',
        modulePath: '/usr/lib/m.so',
        pinSource: 'file:/run/p',
      });
    });

    it('when a pkcs11: URI lacks the token, the object or the module path, it is INVALID_INPUT saying what it needs', () => {
      for (const uri of ['pkcs11:object=kek?module-path=/m.so', 'pkcs11:token=t?module-path=/m.so', 'pkcs11:token=t;object=kek', 'token=t;object=kek']) {
        expect(() => parsePkcs11Uri(uri), uri)
          .to.throw()
          .with.property('code', 'INVALID_INPUT');
      }
    });

    it('when more than one KEK source is set, it is a usage error (exit 2) naming them', () => {
      const both = cli(['kek', 'id', '--json'], { CLOACINA_KEK_PKCS11: kekUri, CLOACINA_KEY_ENCRYPTION_KEY: variableKek.toString('hex') });
      expect(both.status).to.equal(2);
      expect(both.json().error.code).to.equal('USAGE');
      expect(both.json().error.message).to.include('CLOACINA_KEY_ENCRYPTION_KEY').and.include('CLOACINA_KEK_PKCS11');
    });
  });

  describe('the KEK in a protected file', () => {
    it('when CLOACINA_KEY_ENCRYPTION_KEY_FILE names a 0600 file, `kek id` prints the id the variable gives', () => {
      const file = dir.join('kek-file');
      writeFileSync(file, variableKek.toString('base64'), { mode: 0o600 });
      const id = cli(['kek', 'id', '--json'], { CLOACINA_KEY_ENCRYPTION_KEY_FILE: file });
      expect(id.status, id.stderr).to.equal(0);
      expect(id.json()).to.deep.equal({ kekId: kekId(variableKek), source: 'file' });
    });

    it('when the KEK file is readable by others, it is refused unless --allow-insecure-key-file', () => {
      const file = dir.join('kek-open');
      writeFileSync(file, variableKek.toString('hex'));
      chmodSync(file, 0o644);
      const refused = cli(['kek', 'id', '--kek-file', file, '--json']);
      expect(refused.status).to.equal(2);
      expect(refused.json().error.code).to.equal('INSECURE_KEY_FILE');
      const allowed = cli(['kek', 'id', '--kek-file', file, '--allow-insecure-key-file', '--json']);
      expect(allowed.status, allowed.stderr).to.equal(0);
      expect(allowed.json().kekId).to.equal(kekId(variableKek));
    });

    it('when both the file and the variable are set, it is a usage error naming both', () => {
      const both = cli(['kek', 'id', '--json'], {
        CLOACINA_KEY_ENCRYPTION_KEY_FILE: dir.join('kek-file'),
        CLOACINA_KEY_ENCRYPTION_KEY: variableKek.toString('hex'),
      });
      expect(both.status).to.equal(2);
      expect(both.json().error.message).to.include('CLOACINA_KEY_ENCRYPTION_KEY,').and.include('CLOACINA_KEY_ENCRYPTION_KEY_FILE');
    });
  });

  describeEngines('database keys sealed under a token KEK', (t) => {
    /** Each engine's keys under a token object of its own (made in the first hook of this file). */
    const onToken = {
      get CLOACINA_KEK_PKCS11() {
        return hsm.uri(`kek-${t.engine}`);
      },
    };
    const onVariable = { CLOACINA_KEY_ENCRYPTION_KEY: variableKek.toString('hex') };
    const db = (args: string[], env: NodeJS.ProcessEnv) => cli([...args, '--database', t.url, '--json'], { CLOACINA_DATABASE_URL: '', ...env });
    const ok = (args: string[], env: NodeJS.ProcessEnv) => {
      const result = db(args, env);
      expect(result.status, result.stderr).to.equal(0);
      return result.json();
    };
    let org: { id: string; name: string };
    const keyIds: string[] = [];

    /** Signs a fresh package with `keyId` under `env`'s KEK, trusts the key, verifies: the key works. */
    const signsAndVerifies = (keyId: string, env: NodeJS.ProcessEnv) => {
      const pkg = writePackage(dir.join(`${t.engine}-${randomBytes(4).toString('hex')}.so`));
      ok(['package', 'sign', pkg, '--key-id', keyId, '--store'], env);
      expect(ok(['package', 'verify', pkg, '--org', org.id], {}).verified).to.equal(true);
    };

    it('when keys are generated under the token KEK, they sign and the signatures verify', () => {
      org = ok(['orgs', 'create', t.unique('hsm')], {});
      for (const name of ['a', 'b', 'c', 'd']) {
        const key = ok(['keys', 'generate', '--name', name, '--org', org.id], onToken);
        keyIds.push(key.id);
        const pem = dir.join(`${key.id}.pub.pem`);
        writeFileSync(pem, cli(['keys', 'export', key.id, '--format', 'pem', '--database', t.url], { CLOACINA_DATABASE_URL: '' }).stdout);
        ok(['keys', 'trust', '--import', pem, '--name', name, '--org', org.id], {});
      }
      // Rewrap goes in id order: keyIds[0] is re-sealed first, keyIds[3] last.
      keyIds.sort();
      signsAndVerifies(keyIds[0], onToken);
      const underVariable = db(['package', 'sign', writePackage(dir.join(`${t.engine}-x.so`)), '--key-id', keyIds[0]], onVariable);
      expect(underVariable.status).to.equal(2);
      expect(underVariable.json().error.code).to.equal('KEY_UNSEAL_FAILED');
    });

    it('when a rewrap token -> variable is killed -9 in the middle, no key is lost and a second run completes it', () => {
      const killed = spawnSync(
        process.execPath,
        ['-r', KILL_PRELOAD, CLI_MODULES, 'keys', 'rewrap', '--new-kek-env', 'NEW_KEK', '--database', t.url, '--json'],
        {
          env: {
            ...process.env,
            ...hsm.env,
            CLOACINA_PKCS11_PIN: hsm.pin,
            ...onToken,
            NEW_KEK: onVariable.CLOACINA_KEY_ENCRYPTION_KEY,
            CLOACINA_TEST_KILL_AT_REWRAP: '3',
            CLOACINA_DATABASE_URL: '',
            CLOACINA_AUDIT_LOG: 'off',
          },
          encoding: 'utf8',
        },
      );
      transcript.add('killed rewrap', killed.stdout + killed.stderr);
      expect(killed.signal).to.equal('SIGKILL');
      // Two keys re-sealed and committed, the third's transaction died with the process: each key opens under its own KEK.
      signsAndVerifies(keyIds[0], onVariable);
      signsAndVerifies(keyIds[3], onToken);
      const rest = ok(['keys', 'rewrap', '--new-kek-env', 'NEW_KEK'], { ...onToken, NEW_KEK: onVariable.CLOACINA_KEY_ENCRYPTION_KEY });
      expect(rest.rewrapped).to.equal(2);
      expect(rest.alreadyRewrapped).to.equal(2);
      expect([...rest.rewrappedKeyIds, ...rest.alreadyRewrappedKeyIds].sort()).to.deep.equal([...keyIds].sort());
      for (const keyId of keyIds) signsAndVerifies(keyId, onVariable);
    });

    it('when a rewrap variable -> token is killed -9 in the middle, no key is lost and a second run completes it', () => {
      const killed = spawnSync(
        process.execPath,
        ['-r', KILL_PRELOAD, CLI_MODULES, 'keys', 'rewrap', '--new-kek-pkcs11', onToken.CLOACINA_KEK_PKCS11, '--database', t.url, '--json'],
        {
          env: {
            ...process.env,
            ...hsm.env,
            CLOACINA_PKCS11_PIN: hsm.pin,
            ...onVariable,
            CLOACINA_TEST_KILL_AT_REWRAP: '2',
            CLOACINA_DATABASE_URL: '',
            CLOACINA_AUDIT_LOG: 'off',
          },
          encoding: 'utf8',
        },
      );
      transcript.add('killed rewrap', killed.stdout + killed.stderr);
      expect(killed.signal).to.equal('SIGKILL');
      signsAndVerifies(keyIds[0], onToken);
      signsAndVerifies(keyIds[3], onVariable);
      const rest = ok(['keys', 'rewrap', '--new-kek-pkcs11', onToken.CLOACINA_KEK_PKCS11], onVariable);
      expect(rest.rewrapped).to.equal(3);
      expect(rest.rewrappedKeyIds).to.deep.equal([...keyIds].sort().filter((id) => !rest.alreadyRewrappedKeyIds.includes(id)));
      expect(rest.alreadyRewrapped).to.equal(1);
      for (const keyId of keyIds) signsAndVerifies(keyId, onToken);
    });

    describe('the signing service with the token KEK', () => {
      let service: ServiceProcess;
      let token: string;
      const body = () => ({ keyId: keyIds[0], packageHash: randomBytes(32).toString('hex') });
      const ready = async () => (await http(transcript, `${service.url}/readyz`)).status;

      before(async function () {
        this.timeout(60_000);
        const made = await new TokenManager(t.keys).create({ orgId: org.id, scopes: [`sign:${keyIds[0]}`] });
        token = made.token;
        service = await startService({ database: t.url, kek: '', env: { ...hsm.env, ...onToken, CLOACINA_PKCS11_PIN: hsm.pin }, transcript });
      });

      after(async () => {
        await service?.stop('SIGKILL');
        // The audit rows of every run against this database are outputs too.
        transcript.add('audit rows', JSON.stringify(await t.db.knex('audit_events').select()));
        transcript.expectFreeOf([token]);
      });

      it('when the PIN is wrong at start, serve exits 2 with KEK_UNAVAILABLE before listening, without the PIN', async () => {
        const wrongPin = `wrong-${randomBytes(6).toString('hex')}`;
        const refused = cli(['serve', '--listen', '127.0.0.1:0', '--database', t.url, '--json'], {
          ...onToken,
          CLOACINA_PKCS11_PIN: wrongPin,
          CLOACINA_DATABASE_URL: '',
        });
        expect(refused.status).to.equal(2);
        expect(refused.json().error.code).to.equal('KEK_UNAVAILABLE');
        expect(refused.stdout + refused.stderr).not.to.include(wrongPin);
      });

      it('when the token is present, /readyz is ready and a sign request signs', async () => {
        expect(await ready()).to.equal(200);
        expect((await signRequest(transcript, service.url, token, body())).status).to.equal(200);
      });

      it('when the token goes away, /readyz is not ready and a sign request fails 503 KEK_UNAVAILABLE; when it returns, both recover without a restart', async function () {
        this.timeout(60_000);
        hsm.remove();
        try {
          expect(await ready()).to.equal(503);
          const started = Date.now();
          const refused = await signRequest(transcript, service.url, token, body());
          expect(refused.status).to.equal(503);
          expect(refused.json().error.code).to.equal('KEK_UNAVAILABLE');
          expect(Date.now() - started).to.be.below(15_000);
        } finally {
          hsm.restore();
        }
        expect(await ready()).to.equal(200);
        expect((await signRequest(transcript, service.url, token, body())).status).to.equal(200);
      });
    });
  });
});
