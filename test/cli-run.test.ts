import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { buildPackage } from './fixtures';
import { runCli, tempDir } from './helpers';

describe('the cloacina-sign CLI, package run and inspect', () => {
  const dir = tempDir();
  const env = {
    CLOACINA_DATABASE_URL: `sqlite:${dir.join('cli-run.db')}`,
    CLOACINA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    CLOACINA_AUDIT_LOG: 'off',
  };
  const cli = (args: string[]) => runCli(args, env);
  const json = (args: string[]) => {
    const result = cli([...args, '--json']);
    expect(result.status, result.stderr).to.equal(0);
    return result.json();
  };
  let pkg: string;
  after(() => dir.cleanup());

  before(() => {
    json(['db', 'migrate']);
    json(['orgs', 'create', 'runners']);
    const key = json(['keys', 'generate', '--name', 'ci', '--org', 'runners']);
    // As Cloacina's operators do it: a signing key is trusted only once its public key is (keys export, keys trust).
    json(['keys', 'export', key.id, '--format', 'pem', '--output', dir.join('ci.pub.pem')]);
    json(['keys', 'trust', '--import', dir.join('ci.pub.pem'), '--name', 'ci', '--org', 'runners']);
    pkg = buildPackage(dir.join('librun.so'), { identity: 'cli' });
    json(['package', 'sign', pkg, '--key-id', key.id]);
  });

  describe('when the package verifies', () => {
    it('it runs one task and prints its output', () => {
      const human = cli(['package', 'run', pkg, '--org', 'runners', '--task', 'echo', '--context', '{"n":1}', '--require-signatures']);
      expect(human.status, human.stderr).to.equal(0);
      expect(JSON.parse(human.stdout)).to.deep.equal({ input: { n: 1 } });
      const result = json(['package', 'run', pkg, '--org', 'runners', '--task', 'whoami']);
      expect(result.output).to.deep.equal({ identity: 'cli' });
      expect(result.keyFingerprint).to.match(/^[0-9a-f]{64}$/);
      expect(result.packageHash).to.match(/^[0-9a-f]{64}$/);
    });

    it('it prints the metadata with inspect', () => {
      const result = json(['package', 'inspect', pkg, '--org', 'runners']);
      expect(result.metadata.packageName).to.equal('fixture');
      expect(result.metadata.tasks.map((task: { localId: string }) => task.localId)).to.deep.equal(['whoami', 'echo']);
      expect(cli(['package', 'inspect', pkg, '--org', 'runners']).stdout).to.match(/echo \(after whoami\)/);
    });
  });

  describe('when the package fails verification, the task fails, or the input is wrong', () => {
    it('it exits 1 for a tampered package and never runs its constructor', () => {
      const marker = dir.join('marker');
      const tampered = buildPackage(dir.join('libmarker.so'), { markerPath: marker });
      copyFileSync(`${pkg}.sig`, `${tampered}.sig`);
      const result = cli(['package', 'run', tampered, '--org', 'runners', '--task', 'whoami', '--require-signatures', '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().error.code).to.equal('TAMPERED_PACKAGE');
      expect(existsSync(marker)).to.equal(false);
      const appended = dir.join('libappended.so');
      copyFileSync(pkg, appended);
      appendFileSync(appended, 'x');
      copyFileSync(`${pkg}.sig`, `${appended}.sig`);
      expect(cli(['package', 'inspect', appended, '--org', 'runners']).status).to.equal(1);
    });

    it('it exits 1 for an unsigned package with --require-signatures and runs it without', () => {
      const unsigned = buildPackage(dir.join('libunsigned.so'), { identity: 'unsigned' });
      expect(cli(['package', 'run', unsigned, '--org', 'runners', '--task', 'whoami', '--require-signatures']).status).to.equal(1);
      expect(json(['package', 'run', unsigned, '--org', 'runners', '--task', 'whoami']).output).to.deep.equal({ identity: 'unsigned' });
      expect(cli(['package', 'inspect', unsigned, '--org', 'runners']).status).to.equal(1);
    });

    it('it exits 3 when the task fails, with the package error in the message', () => {
      const result = cli(['package', 'run', pkg, '--org', 'runners', '--task', 'fail', '--json']);
      expect(result.status).to.equal(3);
      expect(result.json().error.code).to.equal('TASK_FAILED');
      expect(result.json().error.message).to.include('the task failed on purpose');
    });

    it('it exits 2 for a context that is not a JSON object, an unknown org or a missing package', () => {
      expect(cli(['package', 'run', pkg, '--org', 'runners', '--task', 'echo', '--context', '[1]']).status).to.equal(2);
      expect(cli(['package', 'run', pkg, '--org', 'nobody', '--task', 'echo']).status).to.equal(2);
      expect(cli(['package', 'run', dir.join('none.so'), '--org', 'runners', '--task', 'echo']).status).to.equal(2);
      expect(readFileSync(pkg).length).to.be.greaterThan(0);
    });
  });
});
