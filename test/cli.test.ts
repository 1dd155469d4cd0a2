import { expect } from 'chai';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI, ROOT, runCli, tempDir } from './helpers';

describe('the cloacina-sign CLI, offline', () => {
  const dir = tempDir();
  const key = dir.join('keys', 'release.pem');
  const pkg = dir.join('libworkflow.so');
  after(() => dir.cleanup());

  describe('when generating a key', () => {
    it('it writes a 0600 PKCS#8 private key and an SPKI public key and prints the fingerprint as JSON', () => {
      require('node:fs').mkdirSync(dir.join('keys'));
      const result = runCli(['keys', 'generate', '--name', 'release', '--output', key, '--json']);
      expect(result.status, result.stderr).to.equal(0);
      const json = result.json();
      expect(json).to.have.keys(['fingerprint', 'privateKeyPath', 'publicKeyPath']);
      expect(json.fingerprint).to.match(/^[0-9a-f]{64}$/);
      expect(json.publicKeyPath).to.equal(dir.join('keys', 'release.pub.pem'));
      expect(statSync(key).mode & 0o777).to.equal(0o600);
      expect(readFileSync(key, 'utf8')).to.match(/^-----BEGIN PRIVATE KEY-----/);
      expect(readFileSync(json.publicKeyPath, 'utf8')).to.match(/^-----BEGIN PUBLIC KEY-----/);
    });

    it('it refuses to overwrite without --force (exit 2) and overwrites with it', () => {
      const before = readFileSync(key, 'utf8');
      const refused = runCli(['keys', 'generate', '--name', 'release', '--output', key]);
      expect(refused.status).to.equal(2);
      expect(refused.stderr).to.match(/already exists/);
      expect(readFileSync(key, 'utf8')).to.equal(before);
      const forced = runCli(['keys', 'generate', '--name', 'release', '--output', key, '--force']);
      expect(forced.status, forced.stderr).to.equal(0);
      expect(forced.stdout.trim()).to.match(/^[0-9a-f]{64}$/);
      expect(readFileSync(key, 'utf8')).not.to.equal(before);
    });
  });

  describe('when signing and verifying a package', () => {
    it('it signs to <package>.sig and verifies with exit 0', () => {
      writeFileSync(pkg, Buffer.alloc(4096, 1));
      const signed = runCli(['package', 'sign', pkg, '--key', key, '--json']);
      expect(signed.status, signed.stderr).to.equal(0);
      expect(signed.json()).to.have.keys(['signaturePath', 'packageHash', 'keyFingerprint']);
      expect(signed.json().signaturePath).to.equal(`${pkg}.sig`);
      expect(existsSync(`${pkg}.sig`)).to.equal(true);

      const verified = runCli(['package', 'verify', pkg, '--public-key', dir.join('keys', 'release.pub.pem'), '--json']);
      expect(verified.status, verified.stderr).to.equal(0);
      const json = verified.json();
      expect(json.verified).to.equal(true);
      expect(json.results).to.have.length(1);
      expect(json.results[0]).to.include({
        package: pkg,
        verified: true,
        packageHash: signed.json().packageHash,
        keyFingerprint: signed.json().keyFingerprint,
      });
      expect(json.results[0]).not.to.have.property('error');
      expect(verified.stdout.trim().split('\n')).to.have.length(1);
    });

    it('it writes the signature where --output says', () => {
      const result = runCli(['package', 'sign', pkg, '--key', key, '--output', dir.join('elsewhere.sig')]);
      expect(result.status, result.stderr).to.equal(0);
      expect(result.stdout.trim()).to.equal(dir.join('elsewhere.sig'));
      const verified = runCli(['package', 'verify', pkg, '--public-key', dir.join('keys', 'release.pub.pem'), '--signature', dir.join('elsewhere.sig')]);
      expect(verified.status, verified.stderr).to.equal(0);
    });

    it('it exits 1 for a tampered package and names the error code', () => {
      const tampered = dir.join('tampered.so');
      writeFileSync(tampered, Buffer.alloc(4096, 2));
      writeFileSync(`${tampered}.sig`, readFileSync(`${pkg}.sig`));
      const human = runCli(['package', 'verify', tampered, '--public-key', dir.join('keys', 'release.pub.pem')]);
      expect(human.status).to.equal(1);
      expect(human.stderr).to.include('TAMPERED_PACKAGE');
      expect(human.stdout).to.equal(`REJECTED TAMPERED_PACKAGE  ${tampered}\n`);
      const json = runCli(['package', 'verify', tampered, '--public-key', dir.join('keys', 'release.pub.pem'), '--json']).json();
      expect(json.verified).to.equal(false);
      expect(json.results[0].verified).to.equal(false);
      expect(json.results[0].error.code).to.equal('TAMPERED_PACKAGE');
      expect(json.results[0].error.message).to.be.a('string');
    });

    it('it exits 1 for a missing or malformed signature', () => {
      const lone = dir.join('lone.so');
      writeFileSync(lone, 'x');
      const missing = runCli(['package', 'verify', lone, '--public-key', dir.join('keys', 'release.pub.pem'), '--json']);
      expect(missing.status).to.equal(1);
      expect(missing.json().results[0].error.code).to.equal('SIGNATURE_NOT_FOUND');
      writeFileSync(`${lone}.sig`, '{"version":1}');
      const malformed = runCli(['package', 'verify', lone, '--public-key', dir.join('keys', 'release.pub.pem'), '--json']);
      expect(malformed.status).to.equal(1);
      expect(malformed.json().results[0].error.code).to.equal('MALFORMED_SIGNATURE');
    });

    it('it exits 1 for a signer that is not the given key', () => {
      runCli(['keys', 'generate', '--name', 'other', '--output', dir.join('other.pem')]);
      const result = runCli(['package', 'verify', pkg, '--public-key', dir.join('other.pub.pem'), '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().results[0].error.code).to.equal('UNTRUSTED_SIGNER');
    });
  });

  describe('when the invocation or the inputs are wrong', () => {
    it('it exits 2 for usage errors, unreadable files and bad keys', () => {
      expect(runCli(['package', 'verify']).status).to.equal(2);
      expect(runCli(['package', 'frobnicate']).status).to.equal(2);
      expect(runCli(['package', 'verify', pkg]).status).to.equal(2);
      expect(runCli(['package', 'verify', dir.join('nope.so'), '--public-key', dir.join('keys', 'release.pub.pem')]).status).to.equal(2);
      expect(runCli(['package', 'verify', pkg, '--public-key', dir.join('nope.pem')]).status).to.equal(2);
      writeFileSync(dir.join('bad.pem'), 'not a key');
      const badKey = runCli(['package', 'verify', pkg, '--public-key', dir.join('bad.pem'), '--json']);
      expect(badKey.status).to.equal(2);
      expect(badKey.json().error.code).to.equal('INVALID_KEY');
      expect(runCli(['package', 'sign', pkg, '--key', dir.join('bad.pem')]).status).to.equal(2);
    });

    it('it prints exactly one JSON object for a usage error with --json', () => {
      const result = runCli(['package', 'verify', '--json']);
      expect(result.status).to.equal(2);
      expect(result.json().error.code).to.equal('USAGE');
    });

    it('it answers --help everywhere with exit 0 on stdout', () => {
      for (const args of [[], ['keys'], ['keys', 'generate'], ['package'], ['package', 'sign'], ['package', 'verify']]) {
        const result = runCli([...args, '--help']);
        expect(result.status, args.join(' ')).to.equal(0);
        expect(result.stdout).to.match(/Usage: cloacina-sign/);
      }
    });

    it('it draws a progress bar on a terminal for a package of 64 MiB or more, and none when piped', () => {
      const big = dir.join('big.so');
      writeFileSync(big, Buffer.alloc(64 * 1024 * 1024, 3));
      expect(runCli(['package', 'sign', big, '--key', key]).status).to.equal(0);
      const piped = runCli(['package', 'verify', big, '--public-key', dir.join('keys', 'release.pub.pem')]);
      expect(piped.status, piped.stderr).to.equal(0);
      expect(piped.stderr).not.to.include('100%');
      // `script` runs the CLI on a pseudo-terminal, as a person at a shell would.
      const command = [process.execPath, CLI, 'package', 'verify', big, '--public-key', dir.join('keys', 'release.pub.pem')].map((arg) => `'${arg}'`).join(' ');
      const tty = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      expect(tty.status, tty.stdout).to.equal(0);
      expect(tty.stdout).to.match(/\[#+\] 100% 64\/64 MiB/);
    });

    it('it writes no color codes when NO_COLOR is set', () => {
      const result = runCli(['package', 'verify', pkg, '--public-key', dir.join('keys', 'release.pub.pem')], { NO_COLOR: '1' });
      expect(result.stderr).not.to.include('\u001b[');
    });
  });
});

describe('the command tree', () => {
  it('when built for one command, it holds that command only; for anything else, every command', () => {
    const { buildProgram } = require('../src/cli/program') as typeof import('../src/cli/program');
    const names = (only?: string) => buildProgram(only).commands.map((command) => command.name());
    expect(names('package')).to.deep.equal(['package']);
    expect(names()).to.deep.equal(['keys', 'kek', 'package', 'packages', 'orgs', 'audit', 'db', 'tokens', 'serve', 'metrics']);
    expect(names('--help')).to.deep.equal(names());
  });

  // The CLI runs as one bundle (scripts/bundle-cli.js) in which a module's code runs only when it is first
  // required, as with separate files: which modules `package verify` requires is read from the compiled
  // modules themselves (dist/src/cli/program.js), which the bundle is built from.
  const modulesLoadedBy = (entry: string, call: string): string[] => {
    const script = `process.argv = [process.execPath, 'cloacina-sign', 'package', 'verify', '--help'];
      process.on('exit', () => process.stdout.write('\\nLOADED ' + JSON.stringify(Object.keys(require.cache))));
      ${call.replace('ENTRY', JSON.stringify(entry))};`;
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    // The command ran: its help is printed before the list.
    expect(result.stdout, result.stderr).to.match(/Usage: cloacina-sign package verify[\s\S]*\nLOADED /);
    return JSON.parse(result.stdout.slice(result.stdout.indexOf('\nLOADED ') + '\nLOADED '.length)) as string[];
  };
  const programModules = () => modulesLoadedBy(join(ROOT, 'dist/src/cli/program.js'), 'require(ENTRY).main(process.argv)');

  it('when `package verify` runs, the modules of the other commands are not loaded', () => {
    const loaded = programModules();
    expect(loaded.some((file) => file.endsWith('/cli/commands/package.js'))).to.equal(true);
    for (const other of ['keys', 'orgs', 'audit', 'db', 'serve', 'tokens', 'metrics'])
      expect(
        loaded.some((file) => file.endsWith(`/cli/commands/${other}.js`)),
        other,
      ).to.equal(false);
  });

  it('when `package verify` runs from the bundle, knex, fastify and the database drivers are not loaded', () => {
    const loaded = modulesLoadedBy(CLI, 'require(ENTRY)');
    // The bundle ran, not the separate modules it was built from.
    expect(loaded.filter((file) => file.includes('/dist/src/cli/program.js'))).to.deep.equal([]);
    expect(loaded.filter((file) => /node_modules\/(knex|fastify|pg|sqlite3)\//.test(file))).to.deep.equal([]);
  });

  it("when `package verify` runs from the bundle, Node's child_process (which commander only needs for executable subcommands) is not loaded", () => {
    const script = `process.argv = [process.execPath, 'cloacina-sign', 'package', 'verify', '--help'];
      process.on('exit', () => process.stdout.write('\\nBUILTINS ' + JSON.stringify(process.moduleLoadList)));
      require(${JSON.stringify(CLI)});`;
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(result.stdout, result.stderr).to.match(/Usage: cloacina-sign package verify[\s\S]*\nBUILTINS /);
    const builtins = JSON.parse(result.stdout.slice(result.stdout.indexOf('\nBUILTINS ') + '\nBUILTINS '.length)) as string[];
    expect(builtins).to.include('NativeModule vm');
    expect(builtins.filter((name) => /child_process|dgram/.test(name))).to.deep.equal([]);
  });

  it('when `package verify` runs, the modules that sign, upload or store packages are not loaded', () => {
    const loaded = programModules();
    for (const module of ['cli/commands/package-sign.js', 'cli/commands/package-upload.js', 'cli/commands/package-db.js', 'signing/sign.js', 'db/packages.js'])
      expect(
        loaded.some((file) => file.endsWith(`/${module}`)),
        module,
      ).to.equal(false);
  });
});
