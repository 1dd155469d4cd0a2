// The package as a dependency: packed as npm would publish it, installed into a scratch project,
// type-checked there with skipLibCheck: false (CommonJS and ESM consumers) and run.
// Everything npm installs comes from the npm cache when it is there (--prefer-offline).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ROOT } from './helpers';

const FIXTURES = join(ROOT, 'test/fixtures/consumer');
const CONSUMER_SOURCE = join(FIXTURES, 'consumer.mts');
const PRETEND_PLATFORM = join(FIXTURES, 'pretend-platform.cjs');

interface Exec {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment for child npm and node processes: without the npm_* variables of an enclosing
 * `npm test` (npm_config_local_prefix and friends would point npm back at this checkout).
 */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name)) env[name] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

function exec(command: string, args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: childEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function execOk(command: string, args: string[], cwd: string): Promise<string> {
  const result = await exec(command, args, cwd);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

function installedVersion(name: string): string {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/** Lowercase hex SHA-256 of the raw public key: the fingerprint, computed without the package. */
function fingerprintOf(publicKeyHex: string): string {
  return createHash('sha256').update(Buffer.from(publicKeyHex, 'hex')).digest('hex');
}

describe('the package as a dependency', function () {
  // npm pack + npm install from the cache + three tsc runs; about 15 s on a warm cache.
  this.timeout(150_000);

  let scratch: string;
  let tarball: string;
  let tarEntries: string[];
  let consumer: string;
  let version: string;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'cloacina-sign-consumer-'));
    const packDir = join(scratch, 'pack');
    mkdirSync(packDir);
    // --ignore-scripts: `prepare` would rebuild the addon; the test packs what the build produced.
    const packed = JSON.parse(await execOk('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], ROOT));
    tarball = join(packDir, packed[0].filename);
    version = packed[0].version;
    tarEntries = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((line) => line !== '')
      .map((line) => line.replace(/^package\//, ''));

    consumer = join(scratch, 'consumer');
    mkdirSync(join(consumer, 'cjs'), { recursive: true });
    mkdirSync(join(consumer, 'esm'), { recursive: true });
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2));
    cpSync(join(FIXTURES, 'cjs/tsconfig.json'), join(consumer, 'cjs/tsconfig.json'));
    cpSync(join(FIXTURES, 'esm/tsconfig.json'), join(consumer, 'esm/tsconfig.json'));
    copyFileSync(CONSUMER_SOURCE, join(consumer, 'cjs/consumer.ts'));
    copyFileSync(CONSUMER_SOURCE, join(consumer, 'esm/consumer.mts'));
    copyFileSync(CONSUMER_SOURCE, join(consumer, 'esm/consumer-require.cts'));

    // The versions this checkout builds with: typescript as package.json pins it (the locked one),
    // @types/node of the supported major (20). sqlite3 stays unbuilt (--ignore-scripts): the key-file path needs no driver.
    await execOk(
      'npm',
      [
        'install',
        tarball,
        `typescript@${installedVersion('typescript')}`,
        `@types/node@${installedVersion('@types/node')}`,
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
      ],
      consumer,
    );
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('packs the public files and no tests or benchmarks', () => {
    for (const required of [
      'package.json',
      'index.d.ts',
      'binding.js',
      'binding.d.ts',
      'cloacina-sign.linux-x64-gnu.node',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli/main.js',
    ]) {
      expect(tarEntries, required).to.include(required);
    }
    expect(
      tarEntries.some((entry) => entry.startsWith('dist/migrations/') && entry.endsWith('.js')),
      'dist/migrations',
    ).to.equal(true);
    const unwanted = tarEntries.filter(
      (entry) => /^(dist\/)?(test|bench)\//.test(entry) || /\.test\./.test(entry) || /^(src|crates|binding|target)\//.test(entry),
    );
    expect(unwanted).to.deep.equal([]);
  });

  it('declares exports, os and cpu in the published package.json', () => {
    const manifest = JSON.parse(readFileSync(join(consumer, 'node_modules/cloacina-sign/package.json'), 'utf8'));
    expect(manifest.os).to.deep.equal(['linux']);
    expect(manifest.cpu).to.deep.equal(['x64']);
    expect(manifest.exports['.'].types).to.equal('./index.d.ts');
    expect(Object.keys(manifest.exports)).to.deep.equal(['.', './package.json']);
    expect(Object.keys(manifest.dependencies)).not.to.include('pino');
  });

  it('type-checks CommonJS and ESM consumers with skipLibCheck: false and strict: true', async () => {
    const tsc = join(consumer, 'node_modules/typescript/bin/tsc');
    const [cjs, esm] = await Promise.all([
      exec(process.execPath, [tsc, '-p', 'cjs/tsconfig.json'], consumer),
      exec(process.execPath, [tsc, '-p', 'esm/tsconfig.json'], consumer),
    ]);
    expect(cjs.status, `CommonJS consumer (module commonjs):\n${cjs.stdout}${cjs.stderr}`).to.equal(0);
    expect(esm.status, `ESM consumer (module nodenext):\n${esm.stdout}${esm.stderr}`).to.equal(0);
  });

  for (const [name, compiled] of [
    ['CommonJS (module commonjs)', 'cjs/out/consumer.js'],
    ['ESM (module nodenext, import)', 'esm/out/consumer.mjs'],
    ['CommonJS (module nodenext, require)', 'esm/out/consumer-require.cjs'],
  ] as const) {
    it(`runs the ${name} consumer: sign, write the .sig, verify with a pinned key`, async () => {
      const work = mkdtempSync(join(scratch, 'work-'));
      const run = await exec(process.execPath, [join(consumer, compiled), work], consumer);
      expect(run.status, `${run.stdout}\n${run.stderr}`).to.equal(0);
      const output = JSON.parse(run.stdout.trim().split('\n').pop()!);
      expect(output.publicKey).to.match(/^[0-9a-f]{64}$/);
      expect(output.signerFingerprint).to.equal(fingerprintOf(output.publicKey));
      expect(output.signatureFingerprint).to.equal(output.signerFingerprint);
      expect(output.refusal).to.equal('TAMPERED_PACKAGE');
      expect(output.events).to.deep.equal(['verification.failure']);
      expect(output.loadIsAFunction).to.equal(true);
    });
  }

  it('exposes the package root and package.json, and nothing deeper', async () => {
    const script = [
      "console.log(require('cloacina-sign/package.json').version);",
      "try { require('cloacina-sign/dist/src/native.js'); console.log('reachable'); } catch (error) { console.log(error.code); }",
    ].join('\n');
    const result = await exec(process.execPath, ['-e', script], consumer);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout.trim().split('\n')).to.deep.equal([version, 'ERR_PACKAGE_PATH_NOT_EXPORTED']);
  });
});

describe('the package on an unsupported platform', function () {
  this.timeout(30_000);

  const expected = (platform: string, arch: string) => `cloacina-sign runs on linux-x64 (glibc) only; this is ${platform}-${arch}`;

  /** Node started in this checkout (so `cloacina-sign` resolves to it by name) as if on another platform. */
  function onPlatform(platform: string, arch: string, args: string[]): Promise<Exec> {
    return exec(process.execPath, ['-r', PRETEND_PLATFORM, ...args], ROOT, { PRETEND_PLATFORM: platform, PRETEND_ARCH: arch });
  }

  it('require() fails with a message naming the platform', async () => {
    const result = await onPlatform('darwin', 'arm64', ['-e', "require('cloacina-sign')"]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include(`CloacinaSignError: ${expected('darwin', 'arm64')}`);
    expect(result.stderr).to.include("code: 'UNSUPPORTED_PLATFORM'");
  });

  it('import fails with the same message', async () => {
    const result = await onPlatform('win32', 'x64', ['--input-type=module', '-e', "import 'cloacina-sign';"]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include(`CloacinaSignError: ${expected('win32', 'x64')}`);
  });

  it('the error is a CloacinaSignError with code UNSUPPORTED_PLATFORM (on linux-arm64 too)', async () => {
    const script = [
      'try {',
      "  require('cloacina-sign');",
      "  console.log('loaded');",
      '} catch (error) {',
      '  console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message }));',
      '}',
    ].join('\n');
    const result = await onPlatform('linux', 'arm64', ['-e', script]);
    expect(result.status, result.stderr).to.equal(0);
    expect(JSON.parse(result.stdout)).to.deep.equal({ name: 'CloacinaSignError', code: 'UNSUPPORTED_PLATFORM', message: expected('linux', 'arm64') });
  });
});
