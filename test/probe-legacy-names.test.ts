// Organization names stored before the name rule (rows that hold ESC) reach the terminal through the
// CLI's result lines: each shows the control characters as visible escapes.
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { newId, nowIso } from '../src/db/ids';
import { generateKeypair, publicKeyToPem } from '../src';
import { describeEngines } from './db/engines';
import { runCli, tempDir } from './helpers';

const CLEAR_SCREEN = '\u001b[2J';

describeEngines('an organization name stored before the name rule', (t) => {
  const dir = tempDir();
  after(() => dir.cleanup());
  let legacyId: string;
  let otherName: string;
  const cli = (args: string[]) =>
    runCli([...args, '--database', t.url], {
      CLOACINA_DATABASE_URL: '',
      CLOACINA_AUDIT_LOG: 'off',
      CLOACINA_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    });
  const expectEscaped = (result: { status: number | null; stdout: string; stderr: string }) => {
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout + result.stderr).not.to.contain('\u001b');
    expect(result.stderr).to.contain('\\x1b[2J');
  };

  before(async () => {
    legacyId = newId();
    await t.db.knex('organizations').insert({ id: legacyId, name: t.unique(`legacy${CLEAR_SCREEN}`), created_at: nowIso() });
    otherName = (await t.keys.createOrganization(t.unique('other'))).name;
  });

  it('when orgs grant-trust names it, the line printed shows the ESC escaped', () => {
    expectEscaped(cli(['orgs', 'grant-trust', '--from', legacyId, '--to', otherName]));
  });

  it('when orgs revoke-trust names it, the line printed shows the ESC escaped', () => {
    expectEscaped(cli(['orgs', 'revoke-trust', '--from', legacyId, '--to', otherName]));
  });

  it('when keys trust adds a key for it, the line printed shows the ESC escaped', () => {
    const pem = dir.join('trusted.pub.pem');
    writeFileSync(pem, publicKeyToPem(generateKeypair().publicKey));
    expectEscaped(cli(['keys', 'trust', '--import', pem, '--org', legacyId]));
  });

  it('when keys generate stores a key for it, the line printed shows the ESC escaped', () => {
    expectEscaped(cli(['keys', 'generate', '--org', legacyId, '--name', 'k']));
  });

  it('when tokens create makes a token for it, the line printed shows the ESC escaped', () => {
    expectEscaped(cli(['tokens', 'create', '--org', legacyId, '--scope', 'upload']));
  });
});
