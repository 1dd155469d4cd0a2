// Names a user supplies on paths that reach no database: a key file's name and a signed statement's
// fields follow the same rule as every stored name (no control character, U+2028/U+2029 included).
import { expect } from 'chai';
import { existsSync, writeFileSync } from 'node:fs';
import { generateKeypair, publicKeyToPem, signPackage } from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { signStatement } from '../src/signing/sign';
import { buildPackage } from './fixtures';
import { rejectsWith, runCli, tempDir } from './helpers';

describe('names outside the database', function () {
  this.timeout(60_000);
  const dir = tempDir();
  after(() => dir.cleanup());

  it('when keys generate --output is given a name with an ESC sequence it refuses it (INVALID_INPUT, exit 2) and prints no ESC', () => {
    const result = runCli(['keys', 'generate', '--output', dir.join('esc.pem'), '--name', 'k\u001b[2J']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.contain('INVALID_INPUT');
    expect(result.stdout + result.stderr).not.to.contain('\u001b');
    expect(existsSync(dir.join('esc.pem'))).to.equal(false);
  });

  it('when a version-2 statement names a package with a line separator (U+2028) signing refuses it as malformed', async () => {
    const packagePath = buildPackage(dir.join('p.so'));
    const keypair = generateKeypair();
    await rejectsWith(signStatement(packagePath, keypair.privateKey, { name: 'p\u2028q', version: '1.0.0' }), 'INVALID_INPUT');
  });

  it('when a version-2 statement names an organization with a paragraph separator (U+2029) signing refuses it as malformed', async () => {
    const packagePath = buildPackage(dir.join('o.so'));
    const keypair = generateKeypair();
    await rejectsWith(signStatement(packagePath, keypair.privateKey, { name: 'p', version: '1.0.0', organization: 'acme\u2029' }), 'INVALID_INPUT');
  });

  describe('a package file whose name holds an ESC sequence', () => {
    let hostile: string;
    let trustKey: string;
    before(async () => {
      const keypair = generateKeypair();
      trustKey = dir.join('trusted.pub.pem');
      writeFileSync(trustKey, publicKeyToPem(keypair.publicKey));
      hostile = dir.join('evil\u001b[2J\u001b[31m.so');
      buildPackage(hostile);
      const info = await signPackage(hostile, keypair.privateKey);
      await DetachedSignature.fromSignatureInfo(info).writeToFile(`${hostile}.sig`);
    });

    it('when package verify accepts it the lines it prints show the ESC escaped', () => {
      const result = runCli(['package', 'verify', hostile, '--trust-key', trustKey], { CLOACINA_AUDIT_LOG: '' });
      expect(result.status).to.equal(0);
      expect(result.stdout).to.contain('\\x1b[2J');
      expect(result.stdout + result.stderr).not.to.contain('\u001b');
    });

    it('when package verify refuses it the REJECTED line shows the ESC escaped', () => {
      const result = runCli(['package', 'verify', hostile, '--trust-key', trustKey, '--max-size', '1'], { CLOACINA_AUDIT_LOG: '' });
      expect(result.status).to.equal(1);
      expect(result.stdout).to.contain('REJECTED PACKAGE_TOO_LARGE');
      expect(result.stdout + result.stderr).not.to.contain('\u001b');
    });

    it('when package inspect loads it the line it prints shows the ESC escaped', () => {
      const result = runCli(['package', 'inspect', hostile, '--trust-key', trustKey], { CLOACINA_AUDIT_LOG: '' });
      expect(result.status).to.equal(0);
      expect(result.stderr).to.contain('\\x1b[2J');
      expect(result.stdout + result.stderr).not.to.contain('\u001b');
    });
  });
});
