import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { buildPackage } from './fixtures';
import { CLI, type CliResult, runCli, tempDir } from './helpers';

describe('the cloacina-sign CLI, runner side with pinned keys (--trust-key)', () => {
  const dir = tempDir();
  // No database anywhere: a URL in a directory that does not exist proves none is opened (or created).
  const missingDatabaseDir = dir.join('no-such-dir');
  const env = {
    CLOACINA_AUDIT_LOG: 'off',
    CLOACINA_DATABASE_URL: `sqlite:${missingDatabaseDir}/cloacina.db`,
    CLOACINA_REQUIRE_SIGNATURES: '',
  };
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): CliResult => runCli(args, { ...env, ...extra });
  const ok = (result: CliResult): CliResult => {
    expect(result.status, `${result.stderr}\n${result.stdout}`).to.equal(0);
    return result;
  };

  let pubA: string;
  let pubB: string;
  let fingerprintA: string;
  let fingerprintB: string;
  /** Signed by key a. */
  let pkgA: string;
  /** Signed by key b. */
  let pkgB: string;
  /** Signed by key a, then tampered with. */
  let tampered: string;
  let hashA: string;
  let hashB: string;

  const sign = (pkg: string, key: string) => ok(cli(['package', 'sign', pkg, '--key', key, '--json'])).json();

  before(() => {
    fingerprintA = ok(cli(['keys', 'generate', '--name', 'a', '--output', dir.join('a.pem'), '--json'])).json().fingerprint;
    fingerprintB = ok(cli(['keys', 'generate', '--name', 'b', '--output', dir.join('b.pem'), '--json'])).json().fingerprint;
    pubA = dir.join('a.pub.pem');
    pubB = dir.join('b.pub.pem');
    pkgA = buildPackage(dir.join('liba.so'), { identity: 'a' });
    pkgB = buildPackage(dir.join('libb.so'), { identity: 'b' });
    tampered = buildPackage(dir.join('libtampered.so'), { identity: 'tampered' });
    hashA = sign(pkgA, dir.join('a.pem')).packageHash;
    hashB = sign(pkgB, dir.join('b.pem')).packageHash;
    sign(tampered, dir.join('a.pem'));
    writeFileSync(tampered, Buffer.concat([readFileSync(tampered), Buffer.from([0])]));
  });
  after(() => dir.cleanup());

  describe('package verify', () => {
    it('when every package verifies with --json, it prints one JSON object with one result per package, in order, and exits 0', () => {
      const result = ok(cli(['package', 'verify', pkgA, pkgB, '--trust-key', pubA, '--trust-key', pubB, '--json']));
      expect(result.stdout.trim().split('\n')).to.have.length(1);
      const json = result.json();
      expect(json.verified).to.equal(true);
      expect(json.results.map((entry: { package: string }) => entry.package)).to.deep.equal([pkgA, pkgB]);
      expect(json.results[0]).to.include({ package: pkgA, verified: true, packageHash: hashA, keyFingerprint: fingerprintA });
      expect(json.results[1]).to.include({ package: pkgB, verified: true, packageHash: hashB, keyFingerprint: fingerprintB });
      for (const entry of json.results) {
        expect(Date.parse(entry.signedAt)).not.to.be.NaN;
        expect(entry).not.to.have.property('error');
      }
    });

    it('when one of three packages is rejected, it reports each in order, the rejected one with its error, and exits 1', () => {
      const result = cli(['package', 'verify', pkgA, tampered, pkgB, '--trust-key', pubA, '--trust-key', pubB, '--json']);
      expect(result.status, result.stderr).to.equal(1);
      expect(result.stdout.trim().split('\n')).to.have.length(1);
      const json = result.json();
      expect(json.verified).to.equal(false);
      expect(json.results.map((entry: { package: string }) => entry.package)).to.deep.equal([pkgA, tampered, pkgB]);
      expect(json.results.map((entry: { verified: boolean }) => entry.verified)).to.deep.equal([true, false, true]);
      expect(json.results[1].error.code).to.equal('TAMPERED_PACKAGE');
      expect(json.results[1].error.message).to.be.a('string').and.not.empty;
      expect(json.results[1]).to.include({ packageHash: null, keyFingerprint: null, signedAt: null });
    });

    it('when --trust-key is repeated, packages signed by either key verify, and with only one of them the other is UNTRUSTED_SIGNER', () => {
      ok(cli(['package', 'verify', pkgA, pkgB, '--trust-key', pubA, '--trust-key', pubB]));
      const onlyA = cli(['package', 'verify', pkgA, pkgB, '--trust-key', pubA, '--json']);
      expect(onlyA.status).to.equal(1);
      expect(onlyA.json().results[0].verified).to.equal(true);
      expect(onlyA.json().results[1].error.code).to.equal('UNTRUSTED_SIGNER');
    });

    it('when --public-key is used instead of --trust-key, it means the same', () => {
      const json = ok(cli(['package', 'verify', pkgA, pkgB, '--public-key', pubA, '--public-key', pubB, '--json'])).json();
      expect(json.verified).to.equal(true);
      expect(json.results.map((entry: { keyFingerprint: string }) => entry.keyFingerprint)).to.deep.equal([fingerprintA, fingerprintB]);
    });

    it('when printing without --json, it writes one line per package: verified <hash>  <path> or REJECTED <CODE>  <path>', () => {
      const result = cli(['package', 'verify', pkgA, tampered, '--trust-key', pubA]);
      expect(result.status).to.equal(1);
      expect(result.stdout).to.equal(`verified ${hashA}  ${pkgA}\nREJECTED TAMPERED_PACKAGE  ${tampered}\n`);
    });

    it('when many packages are verified at once and a large one comes first, every outcome is still printed in the order given', () => {
      // The large package's hash takes longest, so the small ones behind it finish first.
      const large = dir.join('large.so');
      writeFileSync(large, Buffer.alloc(48 * 1024 * 1024, 7));
      const largeHash = sign(large, dir.join('a.pem')).packageHash;
      const order = [large, pkgB, tampered, pkgA, pkgB, pkgA, tampered, pkgA, pkgB, pkgA, pkgB];
      const result = cli(['package', 'verify', ...order, '--trust-key', pubA, '--trust-key', pubB]);
      expect(result.status).to.equal(1);
      const expected = order.map((pkg) =>
        pkg === tampered ? `REJECTED TAMPERED_PACKAGE  ${pkg}` : `verified ${pkg === large ? largeHash : pkg === pkgA ? hashA : hashB}  ${pkg}`,
      );
      expect(result.stdout).to.equal(`${expected.join('\n')}\n`);
      const said = result.stderr.split('\n').filter((line) => line.startsWith('verified ') || line.startsWith('error '));
      expect(said.map((line) => (line.startsWith('error ') ? 'error' : line.split(':')[0]))).to.deep.equal(
        order.map((pkg) => (pkg === tampered ? 'error' : `verified ${pkg}`)),
      );
      rmSync(large);
      rmSync(`${large}.sig`);
    });

    it('when --signature is given with several packages, it is a usage error (exit 2)', () => {
      const result = cli(['package', 'verify', pkgA, pkgB, '--trust-key', pubA, '--signature', `${pkgA}.sig`, '--json']);
      expect(result.status).to.equal(2);
      expect(result.json().error.code).to.equal('USAGE');
    });

    it('when neither --org nor --trust-key is given, it is a usage error (exit 2)', () => {
      const result = cli(['package', 'verify', pkgA, '--json']);
      expect(result.status).to.equal(2);
      expect(result.json().error.code).to.equal('USAGE');
    });

    it('when both --org and --trust-key are given, it is a usage error (exit 2)', () => {
      const result = cli(['package', 'verify', pkgA, '--org', 'runners', '--trust-key', pubA, '--json']);
      expect(result.status).to.equal(2);
      expect(result.json().error.code).to.equal('USAGE');
    });
  });

  describe('package run and inspect with no database', () => {
    it('when the package verifies, run prints { packageHash, keyFingerprint, task, output } and opens no database', () => {
      const json = ok(cli(['package', 'run', pkgA, '--trust-key', pubA, '--task', 'whoami', '--json'])).json();
      expect(json).to.deep.equal({ packageHash: hashA, keyFingerprint: fingerprintA, task: 'whoami', output: { identity: 'a' } });
      expect(existsSync(missingDatabaseDir)).to.equal(false);
    });

    it('when the package verifies, inspect prints its metadata and opens no database', () => {
      const json = ok(cli(['package', 'inspect', pkgB, '--trust-key', pubB, '--json'])).json();
      expect(json.packageHash).to.equal(hashB);
      expect(json.keyFingerprint).to.equal(fingerprintB);
      expect(json.metadata.packageName).to.equal('fixture');
      expect(json.metadata.tasks.map((task: { localId: string }) => task.localId)).to.deep.equal(['whoami', 'echo']);
      expect(existsSync(missingDatabaseDir)).to.equal(false);
    });

    it('when the signer is not a trusted key, run exits 1 with UNTRUSTED_SIGNER', () => {
      const result = cli(['package', 'run', pkgB, '--trust-key', pubA, '--task', 'whoami', '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().error.code).to.equal('UNTRUSTED_SIGNER');
    });
  });

  describe('CLOACINA_REQUIRE_SIGNATURES', () => {
    let unsigned: string;
    before(() => {
      unsigned = buildPackage(dir.join('libunsigned.so'), { identity: 'unsigned' });
    });

    it('when it is 1, run refuses an unsigned package with SIGNATURE_NOT_FOUND (exit 1), as --require-signatures does', () => {
      const fromEnv = cli(['package', 'run', unsigned, '--trust-key', pubA, '--task', 'whoami', '--json'], { CLOACINA_REQUIRE_SIGNATURES: '1' });
      expect(fromEnv.status).to.equal(1);
      expect(fromEnv.json().error.code).to.equal('SIGNATURE_NOT_FOUND');
      const fromFlag = cli(['package', 'run', unsigned, '--trust-key', pubA, '--task', 'whoami', '--require-signatures', '--json']);
      expect(fromFlag.status).to.equal(1);
      expect(fromFlag.json().error.code).to.equal('SIGNATURE_NOT_FOUND');
    });

    it('when it is not set, run runs the unsigned package', () => {
      const json = ok(cli(['package', 'run', unsigned, '--trust-key', pubA, '--task', 'whoami', '--json'])).json();
      expect(json.output).to.deep.equal({ identity: 'unsigned' });
      expect(json.keyFingerprint).to.equal(null);
    });

    it('when it has an invalid value, run exits 2', () => {
      const result = cli(['package', 'run', unsigned, '--trust-key', pubA, '--task', 'whoami', '--json'], { CLOACINA_REQUIRE_SIGNATURES: 'maybe' });
      expect(result.status).to.equal(2);
      expect(result.json().error.code).to.equal('USAGE');
    });
  });

  describe('audit lines (CLOACINA_AUDIT_LOG)', () => {
    it('when it names a file, a run appends package.load.success as one JSON line', () => {
      const log = dir.join('audit.log');
      ok(cli(['package', 'run', pkgA, '--trust-key', pubA, '--task', 'whoami'], { CLOACINA_AUDIT_LOG: log }));
      const lines = readFileSync(log, 'utf8')
        .split('\n')
        .filter((line) => line !== '');
      expect(lines).to.have.length(1);
      expect(JSON.parse(lines[0])).to.include({
        event_type: 'package.load.success',
        package_path: pkgA,
        package_hash: hashA,
        signer_fingerprint: fingerprintA,
        signature_verified: true,
      });
    });

    it('when the failure of a tampered package cannot be audited, run still exits 1 with TAMPERED_PACKAGE and says it was not audited', () => {
      const result = cli(['package', 'run', tampered, '--trust-key', pubA, '--task', 'whoami', '--json'], {
        CLOACINA_AUDIT_LOG: dir.join('missing-audit-dir', 'audit.log'),
      });
      expect(result.status, result.stderr).to.equal(1);
      expect(result.json().error.code).to.equal('TAMPERED_PACKAGE');
      expect(result.stderr).to.match(/not audited/);
    });

    it('when the failure of a tampered package cannot be audited, verify still exits 1 with TAMPERED_PACKAGE and says it was not audited', () => {
      const result = cli(['package', 'verify', tampered, '--trust-key', pubA, '--json'], {
        CLOACINA_AUDIT_LOG: dir.join('missing-audit-dir', 'audit.log'),
      });
      expect(result.status, result.stderr).to.equal(1);
      expect(result.json().results[0].error.code).to.equal('TAMPERED_PACKAGE');
      expect(result.stderr).to.match(/not audited/);
    });

    it('when the load of a verified package cannot be audited, run exits 2 with AUDIT_FAILED and never runs package code', () => {
      const marker = dir.join('cli-unaudited.marker');
      const pkg = buildPackage(dir.join('libunaudited.so'), { identity: 'unaudited', markerPath: marker });
      sign(pkg, dir.join('a.pem'));
      const result = cli(['package', 'run', pkg, '--trust-key', pubA, '--task', 'whoami', '--json'], {
        CLOACINA_AUDIT_LOG: dir.join('missing-audit-dir', 'audit.log'),
      });
      expect(result.status).to.equal(2);
      expect(result.json().error.code).to.equal('AUDIT_FAILED');
      expect(existsSync(marker)).to.equal(false);
    });
  });

  describe('when <package>.sig is a FIFO', () => {
    let fifoPkg: string;
    let fifo: string;
    before(() => {
      fifoPkg = buildPackage(dir.join('libfifo.so'), { identity: 'fifo' });
      fifo = `${fifoPkg}.sig`;
      const made = spawnSync('mkfifo', [fifo], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`mkfifo failed: ${made.stderr}`);
    });
    after(() => {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // no reader: nothing to release
      }
      rmSync(fifo, { force: true });
    });

    /** The CLI with a hard bound: a hang fails the test (status null) instead of wedging the run. */
    const bounded = (args: string[]) =>
      spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, NO_COLOR: '1', ...env } });

    it('when verifying, it exits 2 within a few seconds with UNREADABLE_FILE naming a FIFO', function () {
      this.timeout(20_000);
      const result = bounded(['package', 'verify', fifoPkg, '--trust-key', pubA]);
      expect(result.signal, 'the CLI hung and was killed').to.equal(null);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.include('UNREADABLE_FILE');
      expect(result.stderr).to.include('FIFO');
    });

    it('when running, it exits 2 within a few seconds with UNREADABLE_FILE', function () {
      this.timeout(20_000);
      const result = bounded(['package', 'run', fifoPkg, '--trust-key', pubA, '--task', 'whoami', '--json']);
      expect(result.signal, 'the CLI hung and was killed').to.equal(null);
      expect(result.status).to.equal(2);
      expect(JSON.parse(result.stdout).error.code).to.equal('UNREADABLE_FILE');
    });
  });
});
