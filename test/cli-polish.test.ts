// What the command line says: audit JSON lines only when asked for, a --signature that is not there,
// the limits of --clock-skew and --api-timeout, an expiry in the past, the allowed versions, a cosign
// signature with a carriage return, the bench's sections, and no npm warning on every call.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { generateKeypair } from '../src/keys/keypair';
import { createPackageLoader } from '../src/loading/package-loader';
import { signStatement } from '../src/signing/sign';
import { publicKeyTrust } from '../src/trust/public-key-trust';
import { SignatureSource } from '../src/verification/signature-source';
import { ecKey, signDer } from './fixtures/cosign-key';
import { writePackage } from './fixtures/random-package';
import { CLI, ROOT, rejectsWith, runCli, tempDir } from './helpers';

const env = { CLOACINA_AUDIT_LOG: '', CLOACINA_DATABASE_URL: '', CLOACINA_REQUIRE_SIGNATURES: '', CLOACINA_API_TOKEN: 'cst_test_token_never_used' };
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { ...env, ...extra });

/** The lines of a stream that are JSON objects (audit lines). */
const jsonLines = (text: string) => text.split('\n').filter((line) => line.startsWith('{'));

describe('the command line, read by a person', () => {
  const dir = tempDir();
  const key = dir.join('release.pem');
  const pub = dir.join('release.pub.pem');
  let pkg: string;

  before(() => {
    const generated = cli(['keys', 'generate', '--name', 'release', '--output', key]);
    expect(generated.status, generated.stderr).to.equal(0);
    pkg = writePackage(dir.join('libpolish.so'));
    const signed = cli(['package', 'sign', pkg, '--key', key]);
    expect(signed.status, signed.stderr).to.equal(0);
  });
  after(() => dir.cleanup());

  describe('audit lines', () => {
    it('when CLOACINA_AUDIT_LOG is unset, verify writes its result line on stderr and no JSON', () => {
      const verified = cli(['package', 'verify', pkg, '--trust-key', pub]);
      expect(verified.status, verified.stderr).to.equal(0);
      expect(verified.stderr).to.match(/^verified .*libpolish\.so: signed by [0-9a-f]{64}/);
      expect(jsonLines(verified.stderr)).to.deep.equal([]);
    });

    it('when CLOACINA_AUDIT_LOG is off, verify writes no JSON either', () => {
      const verified = cli(['package', 'verify', pkg, '--trust-key', pub], { CLOACINA_AUDIT_LOG: 'off' });
      expect(verified.status, verified.stderr).to.equal(0);
      expect(jsonLines(verified.stderr)).to.deep.equal([]);
    });

    it('when CLOACINA_AUDIT_LOG=stderr, verify writes one ECS JSON line on stderr besides the result line', () => {
      const verified = cli(['package', 'verify', pkg, '--trust-key', pub], { CLOACINA_AUDIT_LOG: 'stderr' });
      expect(verified.status, verified.stderr).to.equal(0);
      const lines = jsonLines(verified.stderr).map((line) => JSON.parse(line));
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({ event_type: 'verification.success' });
      expect(lines[0].event.action).to.equal('verification.success');
      expect(verified.stderr).to.match(/^verified /m);
    });

    it('when CLOACINA_AUDIT_LOG names a file, the JSON line goes there and stderr has none', () => {
      const log = dir.join('audit.jsonl');
      const verified = cli(['package', 'verify', pkg, '--trust-key', pub], { CLOACINA_AUDIT_LOG: log });
      expect(verified.status, verified.stderr).to.equal(0);
      expect(jsonLines(verified.stderr)).to.deep.equal([]);
      expect(JSON.parse(readFileSync(log, 'utf8').trim()).event_type).to.equal('verification.success');
    });

    it('when --help is asked for, it says where audit events go by default and how to get JSON lines', () => {
      for (const args of [['--help'], ['package', 'verify', '--help'], ['package', 'sign', '--help']]) {
        const help = cli(args);
        expect(help.status).to.equal(0);
        expect(help.stdout, args.join(' ')).to.include('CLOACINA_AUDIT_LOG=stderr').and.to.include('always rows in audit_events');
      }
    });
  });

  describe('--signature', () => {
    it('when the --signature file does not exist, verify exits 2 with UNREADABLE_FILE naming it', () => {
      const missing = dir.join('typo.sig');
      const verified = cli(['package', 'verify', pkg, '--trust-key', pub, '--signature', missing, '--json']);
      expect(verified.status).to.equal(2);
      const error = verified.json().results[0].error;
      expect(error.code).to.equal('UNREADABLE_FILE');
      expect(error.message).to.include(missing);
    });

    it('when the --signature path is a directory, verify exits 2 with UNREADABLE_FILE', () => {
      const verified = cli(['package', 'verify', pkg, '--trust-key', pub, '--signature', dir.path, '--json']);
      expect(verified.status).to.equal(2);
      expect(verified.json().results[0].error.code).to.equal('UNREADABLE_FILE');
    });

    it('when run is given a --signature that does not exist, it exits 2 with UNREADABLE_FILE', () => {
      const ran = cli(['package', 'run', pkg, '--trust-key', pub, '--signature', dir.join('typo.sig'), '--task', 'x', '--json']);
      expect(ran.status).to.equal(2);
      expect(ran.json().error.code).to.equal('UNREADABLE_FILE');
    });

    it('when no --signature is given and <package>.sig is missing, it is still SIGNATURE_NOT_FOUND, exit 1', () => {
      const lone = writePackage(dir.join('liblone.so'));
      const verified = cli(['package', 'verify', lone, '--trust-key', pub, '--json']);
      expect(verified.status).to.equal(1);
      expect(verified.json().results[0].error.code).to.equal('SIGNATURE_NOT_FOUND');
    });

    it('when the library is given SignatureSource.DetachedFile of a missing file, it rejects with UNREADABLE_FILE', async () => {
      const loader = createPackageLoader({ trust: publicKeyTrust([pub]), audit: [] });
      const error = await rejectsWith(loader.verify(pkg, { signature: SignatureSource.DetachedFile(dir.join('none.sig')) }), 'UNREADABLE_FILE');
      expect(error.message).to.include('none.sig');
    });
  });

  describe('policy messages', () => {
    it('when --clock-skew is out of range, it says the range, not "a whole number of seconds"', () => {
      const refused = cli(['package', 'verify', pkg, '--trust-key', pub, '--clock-skew', '999999999']);
      expect(refused.status).to.equal(2);
      expect(refused.stderr).to.include('between 0 and 31536000 seconds').and.not.to.include('whole number');
      const fraction = cli(['package', 'verify', pkg, '--trust-key', pub, '--clock-skew', '1.5']);
      expect(fraction.status).to.equal(2);
      expect(fraction.stderr).to.include('whole number of seconds');
    });

    it('when --expires is in the past, package sign exits 2 saying so, not "malformed signature", and writes nothing', () => {
      const out = dir.join('past.sig');
      const args = ['package', 'sign', pkg, '--key', key, '--format', 'v2', '--name', 'p', '--version', '1.0.0', '--output', out];
      const refused = cli([...args, '--expires', '2020-01-01T00:00:00Z']);
      expect(refused.status).to.equal(2);
      expect(refused.stderr)
        .to.include('expiry is in the past')
        .and.not.to.match(/malformed/i);
      expect(existsSync(out)).to.equal(false);
      const zero = cli([...args, '--expires', '0s']);
      expect(zero.status).to.equal(2);
      expect(zero.stderr).to.include('expiry is in the past');
    });

    it('when the library signs a statement expiring before now, it rejects with INVALID_INPUT saying the expiry is in the past', async () => {
      const keypair = generateKeypair();
      const error = await rejectsWith(
        signStatement(pkg, keypair.privateKey, { name: 'p', version: '1.0.0', expires: new Date(Date.now() - 60_000) }),
        'INVALID_INPUT',
      );
      expect(error.message).to.include('expiry is in the past');
    });

    it('when a version is not allowed, VERSION_NOT_ALLOWED lists the allowed versions', () => {
      const signature = dir.join('v2.sig');
      const signed = cli(['package', 'sign', pkg, '--key', key, '--format', 'v2', '--name', 'p', '--version', '2.0.0', '--output', signature]);
      expect(signed.status, signed.stderr).to.equal(0);
      const verify = (allowed: string) =>
        cli(['package', 'verify', pkg, '--trust-key', pub, '--signature', signature, '--allowed-versions', allowed, '--json']);
      const exact = verify('1.0.0,1.1.0');
      expect(exact.status).to.equal(1);
      expect(exact.json().results[0].error.code).to.equal('VERSION_NOT_ALLOWED');
      expect(exact.json().results[0].error.message).to.include('allowed: 1.0.0, 1.1.0');
      const range = verify('>=1.2.0, <2.0.0');
      expect(range.json().results[0].error.message).to.include('allowed: >=1.2.0, <2.0.0');
    });
  });

  describe('cosign signatures', () => {
    it('when a cosign signature ends in \\r\\n, it is MALFORMED_SIGNATURE (exit 1); with one \\n it verifies', () => {
      const cosignKey = ecKey(dir.join('cosign'));
      const artifact = writePackage(dir.join('artifact.bin'));
      const base64 = signDer(artifact, cosignKey).toString('base64');
      const verify = (text: string) => {
        writeFileSync(`${artifact}.sig`, text);
        return cli(['package', 'verify', artifact, '--trust-key', cosignKey.publicKey, '--json']);
      };
      const lf = verify(`${base64}\n`);
      expect(lf.status, lf.stderr).to.equal(0);
      const crlf = verify(`${base64}\r\n`);
      expect(crlf.status).to.equal(1);
      expect(crlf.json().results[0].error.code).to.equal('MALFORMED_SIGNATURE');
      expect(crlf.json().results[0].error.message).to.include('carriage return');
    });
  });

  describe('--api-timeout', () => {
    let silent: Server;
    let apiUrl: string;
    const sockets: Socket[] = [];

    before(async () => {
      // Accepts connections and reads requests, never answers: a hung signing service.
      silent = createServer((socket) => {
        sockets.push(socket);
        socket.on('data', () => undefined);
        socket.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const address = silent.address() as { port: number };
      apiUrl = `http://127.0.0.1:${address.port}`;
    });
    after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    /** The CLI run asynchronously: the silent service lives in this process. */
    const runAsync = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string; seconds: number }>((resolve) => {
        const started = Date.now();
        const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', ...env } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk) => {
          stdout += chunk;
        });
        child.stderr.on('data', (chunk) => {
          stderr += chunk;
        });
        child.on('close', (status) => resolve({ status, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
      });

    it('when the service never answers, package sign --api-timeout 1 gives up with API_UNREACHABLE (exit 2), long before 30 s', async () => {
      const result = await runAsync([
        'package',
        'sign',
        pkg,
        '--key-id',
        'k',
        '--api-url',
        apiUrl,
        '--api-timeout',
        '1',
        '--output',
        dir.join('t.sig'),
        '--json',
      ]);
      expect(result.status, result.stderr).to.equal(2);
      expect(JSON.parse(result.stdout).error.code).to.equal('API_UNREACHABLE');
      expect(result.seconds).to.be.lessThan(20);
      // Not a terminal: no progress notice, only the error.
      expect(result.stderr).not.to.include('waiting for');
    });

    it('when the service never answers, package upload --api-timeout 1 gives up with API_UNREACHABLE (exit 2)', async () => {
      const result = await runAsync(['package', 'upload', pkg, '--org', 'acme', '--api-url', apiUrl, '--api-timeout', '1', '--json']);
      expect(result.status, result.stderr).to.equal(2);
      expect(JSON.parse(result.stdout).error.code).to.equal('API_UNREACHABLE');
      expect(result.seconds).to.be.lessThan(20);
    });

    it('when stderr is a terminal and the service is silent for more than 2 s, it says what it is waiting for', async function () {
      if (!existsSync('/usr/bin/script')) this.skip();
      const command = [
        process.execPath,
        CLI,
        'package',
        'sign',
        pkg,
        '--key-id',
        'k',
        '--api-url',
        apiUrl,
        '--api-timeout',
        '4',
        '--output',
        dir.join('tty.sig'),
      ]
        .map((word) => `'${word}'`)
        .join(' ');
      // script(1) runs the CLI on a pseudo-terminal.
      const result = await new Promise<{ output: string }>((resolve) => {
        const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, NO_COLOR: '1', ...env } });
        let output = '';
        child.stdout.on('data', (chunk) => {
          output += chunk;
        });
        child.on('close', () => resolve({ output }));
      });
      expect(result.output).to.include(`waiting for the signing service to sign at ${apiUrl}`).and.to.include('giving up after 4 s');
      expect(result.output).to.include('API_UNREACHABLE');
    });

    it('when --api-timeout is not a positive number of seconds or comes without --api-url, it exits 2 before anything is sent', () => {
      for (const value of ['0', '-1', 'soon', '99999']) {
        const refused = cli(['package', 'sign', pkg, '--key-id', 'k', '--api-url', apiUrl, '--api-timeout', value]);
        expect(refused.status, value).to.equal(2);
        expect(refused.stderr).to.include('must be a number of seconds greater than 0 and at most 3600');
      }
      const alone = cli(['package', 'sign', pkg, '--key', key, '--api-timeout', '5', '--json']);
      expect(alone.status).to.equal(2);
      expect(alone.json().error).to.include({ code: 'USAGE' });
      expect(alone.json().error.message).to.include('--api-url');
    });
  });

  describe('database messages', () => {
    it('when the database file does not exist, the error names `cloacina-sign db migrate`, never a library option', () => {
      const missing = cli(['orgs', 'create', 'acme', '--database', `sqlite:${dir.join('missing.db')}`, '--json']);
      expect(missing.status).to.equal(2);
      expect(missing.json().error.code).to.equal('DATABASE_ERROR');
      expect(missing.json().error.message).to.include('cloacina-sign db migrate').and.not.to.include('{ migrate');
      expect(existsSync(dir.join('missing.db'))).to.equal(false);
    });
  });

  describe('the repository', () => {
    it('when npm runs bench with an unknown section, it exits 2 naming the sections and writes no results', () => {
      const results = join(ROOT, 'bench/RESULTS.md');
      const before = existsSync(results) ? statSync(results).mtimeMs : 0;
      const result = spawnSync(process.execPath, [join(ROOT, 'dist/bench/run.js'), 'no-such-section'], { encoding: 'utf8' });
      expect(result.status).to.equal(2);
      expect(result.stderr).to.include('unknown bench section "no-such-section"').and.to.include('large-package, database, guarded-load, service');
      expect(existsSync(results) ? statSync(results).mtimeMs : 0).to.equal(before);
    });

    it('when npx cloacina-sign runs inside the repository, npm prints no "Unknown project config" warning', () => {
      const result = spawnSync('npx', ['--no-install', 'cloacina-sign', '--version'], { cwd: ROOT, encoding: 'utf8' });
      expect(result.status, result.stderr).to.equal(0);
      expect(result.stderr).not.to.include('Unknown project config');
      expect(existsSync(join(ROOT, '.npmrc')) && /build-from-source/.test(readFileSync(join(ROOT, '.npmrc'), 'utf8'))).to.equal(false);
    });

    it("when sqlite3's installer (prebuild-install) runs under the repository, it is told to build from source", () => {
      // Its configuration is found by walking up from the installing package's directory (node_modules/sqlite3
      // on a fresh clone); here a stand-in package directory below the repository, without npm's variable.
      const installing = mkdtempSync(join(ROOT, 'dist', 'sqlite3-'));
      try {
        writeFileSync(join(installing, 'package.json'), JSON.stringify({ name: 'sqlite3', version: '0.0.0' }));
        const probe = 'console.log(JSON.stringify(require("prebuild-install/rc")(require("./package.json")).buildFromSource))';
        const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: join(ROOT, 'node_modules') };
        delete env.npm_config_build_from_source;
        const result = spawnSync(process.execPath, ['-e', probe], { cwd: installing, encoding: 'utf8', env });
        expect(result.status, result.stderr).to.equal(0);
        expect(JSON.parse(result.stdout)).to.equal(true);
      } finally {
        rmSync(installing, { recursive: true, force: true });
      }
    });
  });
});
