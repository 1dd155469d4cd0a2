// The package as a dependency: the main package and this machine's platform package packed as npm
// would publish them (scripts/pack-platforms.sh), installed into a scratch project with no Rust
// toolchain on PATH, type-checked there with skipLibCheck: false (CommonJS and ESM consumers) and run,
// the CLI through npx included. CLOACINA_CONSUMER_NODE names another Node binary to run the consumer
// with (CI runs this file on Node 20, 22 and 24). Everything npm installs comes from the npm cache when
// it is there (--prefer-offline).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { expect } from 'chai';
import { buildPackage } from './fixtures';
import { ROOT } from './helpers';
import { type ScopedRegistry, startScopedRegistry } from './fixtures/scoped-registry';

const FIXTURES = join(ROOT, 'test/fixtures/consumer');
const CONSUMER_SOURCE = join(FIXTURES, 'consumer.mts');
const PRETEND_PLATFORM = join(FIXTURES, 'pretend-platform.cjs');

/** The Node the consumer runs on: `node`, `npm` and `npx` in its processes resolve to it first. */
const CONSUMER_NODE = process.env.CLOACINA_CONSUMER_NODE || process.execPath;

/** PATH without any directory holding cargo, rustc or rustup: a consumer machine has no Rust toolchain. */
function pathWithoutRust(): string {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((dir) => {
    return dir !== '' && !['cargo', 'rustc', 'rustup'].some((tool) => existsSync(join(dir, tool)));
  });
  return [dirname(CONSUMER_NODE), ...dirs].join(delimiter);
}

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
  return { ...env, NO_COLOR: '1', PATH: pathWithoutRust(), ...extra };
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

async function execOk(command: string, args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await exec(command, args, cwd, extraEnv);
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
  let registry: ScopedRegistry | undefined;
  let tarEntries: string[];
  let platformEntries: string[];
  let consumer: string;
  let version: string;
  let installLog: string;
  let bare: string;

  const entriesOf = (tarball: string) =>
    spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((line) => line !== '')
      .map((line) => line.replace(/^package\//, ''));

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'cloacina-sign-consumer-'));
    const packDir = join(scratch, 'pack');
    // The host's platform package takes the quick-start build when build:platforms has not run.
    await execOk('bash', [join(ROOT, 'scripts/pack-platforms.sh'), packDir], ROOT, { CLOACINA_PACK_HOST_BUILD: '1' });
    version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    const main = join(packDir, `cloacina-sign-${version}.tgz`);
    tarEntries = entriesOf(main);
    platformEntries = entriesOf(join(packDir, `cloacina-sign-binding-linux-x64-gnu-${version}.tgz`));
    registry = await startScopedRegistry(packDir);

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
    // @types/node of the supported major (20). Only the main package is named: npm picks the platform
    // package from its optionalDependencies (served on loopback for the scope). No install scripts run,
    // so sqlite3 stays unbuilt: a key-pinned runner needs no database driver.
    const install = await exec(
      'npm',
      [
        'install',
        main,
        `--@cloacina-sign:registry=${registry.url}`,
        '--ignore-scripts',
        `typescript@${installedVersion('typescript')}`,
        `@types/node@${installedVersion('@types/node')}`,
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
      ],
      consumer,
    );
    installLog = `${install.stdout}\n${install.stderr}`;
    if (install.status !== 0) throw new Error(`npm install exited ${install.status}\n${installLog}`);

    // A second consumer installed without optional dependencies: no platform package, no fallback.
    bare = join(scratch, 'bare');
    mkdirSync(bare);
    writeFileSync(join(bare, 'package.json'), JSON.stringify({ name: 'bare', version: '1.0.0', private: true }, null, 2));
    await execOk(
      'npm',
      ['install', main, `--@cloacina-sign:registry=${registry.url}`, '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
      bare,
    );
  });

  after(async () => {
    await registry?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('when installed, npm and node ran with no Rust toolchain on PATH', async () => {
    const probe = await exec('sh', ['-c', 'command -v cargo || command -v rustc || command -v rustup || echo none'], consumer);
    expect(probe.stdout.trim()).to.equal('none');
    const node = await exec('node', ['-p', 'process.execPath'], consumer);
    expect(node.stdout.trim()).to.equal(CONSUMER_NODE);
  });

  it('when installed on linux-x64 with glibc, npm picked @cloacina-sign/binding-linux-x64-gnu and no other native package', async () => {
    // The WebAssembly fallback has no os/cpu and installs everywhere (when it was packed); the loader prefers the native package.
    const installed = readdirSync(join(consumer, 'node_modules/@cloacina-sign'));
    expect(installed.filter((name) => name !== 'binding-wasm32-wasi')).to.deep.equal(['binding-linux-x64-gnu']);
    const loaded = await exec('node', ['-p', "require('cloacina-sign/package.json') && require.resolve('@cloacina-sign/binding-linux-x64-gnu')"], consumer);
    expect(loaded.status, loaded.stderr).to.equal(0);
    expect(existsSync(join(consumer, 'node_modules/@cloacina-sign/binding-linux-x64-gnu/cloacina-sign.linux-x64-gnu.node'))).to.equal(true);
  });

  it('packs the public files and no tests, benchmarks, source maps or binaries in the main package', () => {
    for (const required of ['package.json', 'index.d.ts', 'binding.js', 'binding.d.ts', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js']) {
      expect(tarEntries, required).to.include(required);
    }
    expect(
      tarEntries.some((entry) => entry.startsWith('dist/migrations/') && entry.endsWith('.js')),
      'dist/migrations',
    ).to.equal(true);
    const unwanted = tarEntries.filter(
      (entry) =>
        /^(dist\/)?(test|bench)\//.test(entry) || /\.test\./.test(entry) || /^(src|crates|binding|target|npm)\//.test(entry) || /\.(map|node)$/.test(entry),
    );
    expect(unwanted).to.deep.equal([]);
  });

  it('packs the platform package with its binary, stripped, and nothing else', () => {
    expect([...platformEntries].sort()).to.deep.equal(['README.md', 'cloacina-sign.linux-x64-gnu.node', 'package.json']);
    const binary = join(consumer, 'node_modules/@cloacina-sign/binding-linux-x64-gnu/cloacina-sign.linux-x64-gnu.node');
    const sections = spawnSync('readelf', ['-S', '-W', binary], { encoding: 'utf8' }).stdout;
    expect(sections).to.include('.dynsym');
    expect(sections).not.to.include('.symtab');
    expect(statSync(binary).size).to.be.above(100_000);
  });

  it('declares no os or cpu, the platform packages and drivers as optional, and no install-time scripts', () => {
    const manifest = JSON.parse(readFileSync(join(consumer, 'node_modules/cloacina-sign/package.json'), 'utf8'));
    expect(manifest.os).to.equal(undefined);
    expect(manifest.cpu).to.equal(undefined);
    expect(manifest.scripts ?? {}).to.deep.equal({});
    expect(Object.keys(manifest.optionalDependencies).sort()).to.deep.equal([
      '@cloacina-sign/binding-linux-arm64-gnu',
      '@cloacina-sign/binding-linux-arm64-musl',
      '@cloacina-sign/binding-linux-x64-gnu',
      '@cloacina-sign/binding-linux-x64-musl',
      '@cloacina-sign/binding-wasm32-wasi',
      'pg',
      'sqlite3',
    ]);
    for (const name of Object.keys(manifest.optionalDependencies).filter((dep) => dep.startsWith('@cloacina-sign/'))) {
      expect(manifest.optionalDependencies[name], name).to.equal(version);
    }
    expect(Object.keys(manifest.dependencies)).not.to.include.members(['sqlite3', 'pg']);
    expect(manifest.exports['.'].types).to.equal('./index.d.ts');
    expect(Object.keys(manifest.exports)).to.deep.equal(['.', './package.json']);
    expect(Object.keys(manifest.dependencies)).not.to.include('pino');
    const platform = JSON.parse(readFileSync(join(consumer, 'node_modules/@cloacina-sign/binding-linux-x64-gnu/package.json'), 'utf8'));
    expect({ os: platform.os, cpu: platform.cpu, libc: platform.libc, version: platform.version }).to.deep.equal({
      os: ['linux'],
      cpu: ['x64'],
      libc: ['glibc'],
      version,
    });
  });

  it('when installed, npm warned about engines only on a Node older than the engines field allows (22)', async () => {
    const major = Number((await exec('node', ['-p', 'process.versions.node'], consumer)).stdout.split('.')[0]);
    const warnings = installLog.split('\n').filter((line) => line.includes('EBADENGINE'));
    if (major >= 22) expect(warnings).to.deep.equal([]);
    else expect(warnings.join('\n')).to.include(`package: 'cloacina-sign@${version}'`);
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

  it('runs the CLI through npx: a key pair into files, sign, verify, and a guarded run of a compiled package', async () => {
    const work = mkdtempSync(join(scratch, 'cli-'));
    const pkg = buildPackage(join(work, 'libworkflow.so'), { identity: 'npx' });
    const npx = (...args: string[]) => exec('npx', ['--no-install', 'cloacina-sign', ...args], consumer, { CLOACINA_AUDIT_LOG: 'off' });
    const steps = [
      await npx('keys', 'generate', '--name', 'ci', '--output', join(work, 'ci.pem')),
      await npx('package', 'sign', pkg, '--key', join(work, 'ci.pem')),
      await npx('package', 'verify', pkg, '--trust-key', join(work, 'ci.pub.pem')),
    ];
    for (const step of steps) expect(step.status, `${step.stdout}\n${step.stderr}`).to.equal(0);
    const run = await npx('package', 'run', pkg, '--trust-key', join(work, 'ci.pub.pem'), '--task', 'whoami', '--require-signatures');
    expect(run.status, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.equal({ identity: 'npx' });
  });

  it('when the SQLite driver did not build at install, opening a database names the package to install (exit 2)', async () => {
    expect(existsSync(join(consumer, 'node_modules/sqlite3/package.json'))).to.equal(true);
    const work = mkdtempSync(join(scratch, 'db-'));
    const result = await exec('npx', ['--no-install', 'cloacina-sign', 'db', 'migrate', '--database', `sqlite:${join(work, 'x.db')}`], consumer, {
      CLOACINA_AUDIT_LOG: 'off',
    });
    expect(result.status, result.stdout).to.equal(2);
    expect(result.stderr).to.include('DATABASE_DRIVER_MISSING');
    expect(result.stderr).to.include('needs the npm package sqlite3, which is installed but does not load on this machine');
    expect(result.stderr).to.include('npm install sqlite3');
    expect(readdirSync(work)).to.deep.equal([]);
  });

  it('exports these values and no others: what runners, CI jobs and operators call', async () => {
    const result = await exec(process.execPath, ['-p', "Object.keys(require('cloacina-sign')).sort().join('\\n')"], consumer);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout.trim().split('\n')).to.deep.equal(
      [
        'CloacinaSignError',
        // Keys and key files.
        'generateKeypair',
        'importPublicKey',
        'privateKeyToPem',
        'publicKeyToPem',
        'readPrivateKeyFile',
        'writeKeypairFiles',
        // Signing.
        'signPackage',
        'keySigner',
        'databaseSigner',
        'serviceSigner',
        'ProgressCounter',
        'writeSignatureDocument',
        'SigningServiceClient',
        // Verification and loading.
        'createPackageLoader',
        'databaseTrust',
        'publicKeyTrust',
        'SignatureSource',
        'verifyPackageOffline',
        // Audit destinations.
        'auditToDatabase',
        'auditToFile',
        'auditToStream',
        // The database and its key-encryption key.
        'openDatabase',
        'DbKeyManager',
        'resolveKek',
      ].sort(),
    );
  });

  it('exposes the package root and package.json, and nothing deeper', async () => {
    const script = [
      "console.log(require('cloacina-sign/package.json').version);",
      "try { require('cloacina-sign/dist/src/native.js'); console.log('reachable'); } catch (error) { console.log(error.code); }",
    ].join('\n');
    const result = await exec(process.execPath, ['-e', script], consumer);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout.trim().split('\n')).to.deep.equal([version, 'ERR_PACKAGE_PATH_NOT_EXPORTED']);
  });

  describe('installed without its optional dependencies, or on a platform with no package', () => {
    const WASI = '@cloacina-sign/binding-wasm32-wasi';
    const expected = (label: string) =>
      `cloacina-sign has no native addon for ${label}, and its WebAssembly fallback ${WASI} did not load (optional dependencies skipped at install?); install ${WASI} beside cloacina-sign. Platform packages: @cloacina-sign/binding-linux-x64-gnu, @cloacina-sign/binding-linux-x64-musl, @cloacina-sign/binding-linux-arm64-gnu, @cloacina-sign/binding-linux-arm64-musl, ${WASI}`;

    /** Node started in the consumer with no platform package (nor the fallback) as if on another platform. */
    function onPlatform(platform: string, arch: string, args: string[]): Promise<Exec> {
      return exec('node', ['-r', PRETEND_PLATFORM, ...args], bare, { PRETEND_PLATFORM: platform, PRETEND_ARCH: arch });
    }

    it('require() fails with a message naming the platform', async () => {
      const result = await onPlatform('darwin', 'arm64', ['-e', "require('cloacina-sign')"]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include(`CloacinaSignError: ${expected('darwin-arm64')}`);
      expect(result.stderr).to.include("code: 'UNSUPPORTED_PLATFORM'");
      expect(result.stderr).not.to.include('npm run build');
    });

    it('import fails with the same message', async () => {
      const result = await onPlatform('win32', 'x64', ['--input-type=module', '-e', "import 'cloacina-sign';"]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include(`CloacinaSignError: ${expected('win32-x64')}`);
    });

    it('when the platform package of a supported platform is missing, the error names that package', async () => {
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
      expect(JSON.parse(result.stdout)).to.deep.equal({
        name: 'CloacinaSignError',
        code: 'UNSUPPORTED_PLATFORM',
        message: `cloacina-sign's native addon for linux-arm64 (glibc) did not load: its package @cloacina-sign/binding-linux-arm64-gnu is missing or broken, and the WebAssembly fallback ${WASI} did not load either (optional dependencies skipped at install?); install @cloacina-sign/binding-linux-arm64-gnu beside cloacina-sign`,
      });
    });
  });
});
