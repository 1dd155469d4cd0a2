// The WebAssembly fallback (wasm32-wasip1-threads), forced with napi-rs's switch NAPI_RS_FORCE_WASI=true
// in real child processes: the CLI and the library sign and verify through it (versions 1 and 2, cosign,
// pinned keys, database trust, the signing service's client), its signatures and the native addon's
// verify each other both ways, and guarded loading is refused with GUARDED_LOAD_UNSUPPORTED.
// The module is built by `npm run build:wasi` beside binding.js, where the generated loader finds it.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildPackage } from './fixtures';
import { ecKey, signDer, writeCosignSignature } from './fixtures/cosign-key';
import { CLI, ROOT, tempDir } from './helpers';
import { type ServiceProcess, startService } from './service/harness';

const WASI_ARTIFACTS = ['cloacina-sign.wasm32-wasi.wasm', 'cloacina-sign.wasi.cjs', 'wasi-worker.mjs'];
const HOST = `${process.platform}-${process.arch}`;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json: () => any;
}

function finished(result: SpawnSyncReturns<string>): Run {
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr, json: () => JSON.parse(result.stdout) };
}

describe('the WebAssembly fallback (NAPI_RS_FORCE_WASI=true)', function () {
  // Every child starts the WebAssembly module and its worker threads: about a second each.
  this.timeout(120_000);

  const dir = tempDir();
  const env = {
    NO_COLOR: '1',
    CLOACINA_AUDIT_LOG: 'off',
    CLOACINA_DATABASE_URL: `sqlite:${dir.join('no-such-dir')}/cloacina.db`,
    CLOACINA_REQUIRE_SIGNATURES: '',
  };
  /** The CLI in `dir` (so relative paths are relative to it), through the WebAssembly build, bounded so a hang fails. */
  const wasi = (args: string[], extra: NodeJS.ProcessEnv = {}): Run =>
    finished(
      spawnSync(process.execPath, [CLI, ...args], {
        cwd: dir.path,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, ...env, ...extra, NAPI_RS_FORCE_WASI: 'true' },
      }),
    );
  /** The same CLI through the native addon. */
  const native = (args: string[], extra: NodeJS.ProcessEnv = {}): Run => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, ...extra };
    delete childEnv.NAPI_RS_FORCE_WASI;
    return finished(spawnSync(process.execPath, [CLI, ...args], { cwd: dir.path, encoding: 'utf8', timeout: 60_000, env: childEnv }));
  };
  const ok = (result: Run): Run => {
    expect(result.status, `${result.stderr}\n${result.stdout}`).to.equal(0);
    return result;
  };
  const sha256 = (file: string) =>
    createHash('sha256')
      .update(readFileSync(dir.join(file)))
      .digest('hex');
  const v2 = ['--format', 'v2', '--name', 'data-pipeline', '--version', '1.2.0'];

  let wasiKey: string;
  let nativeKey: string;

  before(() => {
    const missing = WASI_ARTIFACTS.filter((file) => !existsSync(join(ROOT, file)));
    if (missing.length) throw new Error(`the WebAssembly build is missing (${missing.join(', ')}): run \`npm run build:wasi\``);
    wasiKey = ok(wasi(['keys', 'generate', '--name', 'wasi', '--output', 'wasi.pem', '--json'])).json().fingerprint;
    nativeKey = ok(native(['keys', 'generate', '--name', 'native', '--output', 'native.pem', '--json'])).json().fingerprint;
  });
  after(() => dir.cleanup());

  describe('the library', () => {
    it('when required with the switch set, it loads the WebAssembly build and hashes, signs and verifies relative paths through it', () => {
      buildPackage(dir.join('liblib.so'), { identity: 'library' });
      const script = `
        const lib = require(${JSON.stringify(ROOT)});
        const target = require(${JSON.stringify(join(ROOT, 'binding.js'))}).__napiBindingTarget;
        const { hashFile } = require(${JSON.stringify(join(ROOT, 'dist/src/hashing.js'))});
        (async () => {
          const keypair = lib.generateKeypair();
          const hash = await hashFile('liblib.so');
          const signed = await lib.signPackage('liblib.so', keypair.privateKey);
          await lib.writeSignatureDocument('liblib.so.sig', signed.document);
          const verified = await lib.verifyPackageOffline('liblib.so', 'liblib.so.sig', keypair.publicKey);
          console.log(JSON.stringify({ target, hash, fingerprint: keypair.fingerprint, verified }));
        })().catch((error) => { console.error(error); process.exit(3); });
      `;
      const result = finished(
        spawnSync(process.execPath, ['-e', script], {
          cwd: dir.path,
          encoding: 'utf8',
          timeout: 60_000,
          env: { ...process.env, ...env, NAPI_RS_FORCE_WASI: 'true' },
        }),
      );
      ok(result);
      const out = result.json();
      expect(out.target).to.equal('wasm32-wasi');
      expect(out.hash).to.equal(sha256('liblib.so'));
      expect(out.verified).to.include({ packageHash: out.hash, signerFingerprint: out.fingerprint });
    });
  });

  describe('signing and verifying through the CLI', () => {
    it('when it signs version 1 and version 2, both verify under the WebAssembly build', () => {
      buildPackage(dir.join('libboth.so'), { identity: 'both' });
      const v1 = ok(wasi(['package', 'sign', 'libboth.so', '--key', 'wasi.pem', '--output', 'libboth.v1.sig', '--json'])).json();
      expect(v1).to.include({ packageHash: sha256('libboth.so'), keyFingerprint: wasiKey });
      ok(wasi(['package', 'sign', 'libboth.so', '--key', 'wasi.pem', ...v2, '--output', 'libboth.v2.sig', '--json']));
      for (const signature of ['libboth.v1.sig', 'libboth.v2.sig']) {
        const result = ok(wasi(['package', 'verify', 'libboth.so', '--trust-key', 'wasi.pub.pem', '--signature', signature, '--json'])).json().results[0];
        expect(result, signature).to.include({ verified: true, keyFingerprint: wasiKey });
      }
    });

    it('when the WebAssembly build signs, the native addon verifies versions 1 and 2', () => {
      buildPackage(dir.join('libw.so'), { identity: 'wasi-signed' });
      ok(wasi(['package', 'sign', 'libw.so', '--key', 'wasi.pem', '--output', 'libw.v1.sig']));
      ok(wasi(['package', 'sign', 'libw.so', '--key', 'wasi.pem', ...v2, '--output', 'libw.v2.sig']));
      for (const signature of ['libw.v1.sig', 'libw.v2.sig']) {
        const result = ok(native(['package', 'verify', 'libw.so', '--trust-key', 'wasi.pub.pem', '--signature', signature, '--json'])).json().results[0];
        expect(result, signature).to.include({ verified: true, keyFingerprint: wasiKey });
      }
    });

    it('when the native addon signs, the WebAssembly build verifies versions 1 and 2', () => {
      buildPackage(dir.join('libn.so'), { identity: 'native-signed' });
      ok(native(['package', 'sign', 'libn.so', '--key', 'native.pem', '--output', 'libn.v1.sig']));
      ok(native(['package', 'sign', 'libn.so', '--key', 'native.pem', ...v2, '--output', 'libn.v2.sig']));
      for (const signature of ['libn.v1.sig', 'libn.v2.sig']) {
        const result = ok(wasi(['package', 'verify', 'libn.so', '--trust-key', 'native.pub.pem', '--signature', signature, '--json'])).json().results[0];
        expect(result, signature).to.include({ verified: true, keyFingerprint: nativeKey });
      }
    });

    it('when a signed package is changed afterwards, the WebAssembly build rejects it with TAMPERED_PACKAGE (exit 1)', () => {
      buildPackage(dir.join('libt.so'), { identity: 'tampered' });
      ok(wasi(['package', 'sign', 'libt.so', '--key', 'wasi.pem']));
      writeFileSync(dir.join('libt.so'), Buffer.concat([readFileSync(dir.join('libt.so')), Buffer.from([0])]));
      const result = wasi(['package', 'verify', 'libt.so', '--trust-key', 'wasi.pub.pem', '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().results[0].error.code).to.equal('TAMPERED_PACKAGE');
    });

    it('when several packages given by relative paths are verified in one call, the WebAssembly build reports each in order', () => {
      for (const name of ['libm1.so', 'libm2.so']) {
        buildPackage(dir.join(name), { identity: name });
        ok(wasi(['package', 'sign', name, '--key', 'wasi.pem']));
      }
      writeFileSync(dir.join('libm2.so'), Buffer.concat([readFileSync(dir.join('libm2.so')), Buffer.from([0])]));
      const result = wasi(['package', 'verify', 'libm1.so', 'libm2.so', 'libm1.so', '--trust-key', 'wasi.pub.pem', '--json']);
      expect(result.status).to.equal(1);
      const results = result.json().results;
      expect(results.map((entry: { package: string }) => entry.package)).to.deep.equal(['libm1.so', 'libm2.so', 'libm1.so']);
      expect(results.map((entry: { verified: boolean }) => entry.verified)).to.deep.equal([true, false, true]);
      expect(results[0]).to.include({ packageHash: sha256('libm1.so'), keyFingerprint: wasiKey });
      expect(results[1].error.code).to.equal('TAMPERED_PACKAGE');
    });

    it('when the signature is a cosign blob signature, the WebAssembly build verifies it, and rejects one with a flipped bit', () => {
      const key = ecKey(dir.join('cosign'));
      const pkg = buildPackage(dir.join('libcosign.so'), { identity: 'cosign' });
      const der = signDer(pkg, key);
      writeCosignSignature(pkg, der, dir.join('libcosign.so.cosign.sig'));
      const good = ok(wasi(['package', 'verify', 'libcosign.so', '--public-key', key.publicKey, '--signature', 'libcosign.so.cosign.sig', '--json'])).json();
      expect(good.results[0]).to.include({ verified: true, signatureFormat: 'cosign', keyFingerprint: key.fingerprint });
      const flipped = Buffer.from(der);
      flipped[flipped.length - 1] ^= 1;
      writeCosignSignature(pkg, flipped, dir.join('libcosign.so.bad.sig'));
      const bad = wasi(['package', 'verify', 'libcosign.so', '--public-key', key.publicKey, '--signature', 'libcosign.so.bad.sig', '--json']);
      expect(bad.status).to.equal(1);
      expect(bad.json().results[0].error.code).to.equal('INVALID_SIGNATURE');
    });

    it('when the signature is a FIFO, the WebAssembly build exits 2 with UNREADABLE_FILE instead of waiting for a writer', () => {
      buildPackage(dir.join('libfifo.so'), { identity: 'fifo' });
      const fifo = dir.join('libfifo.so.sig');
      const made = spawnSync('mkfifo', [fifo], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`mkfifo failed: ${made.stderr}`);
      try {
        const result = wasi(['package', 'verify', 'libfifo.so', '--trust-key', 'wasi.pub.pem']);
        expect(result.signal, 'the CLI hung and was killed').to.equal(null);
        expect(result.status).to.equal(2);
        expect(result.stderr).to.include('UNREADABLE_FILE');
      } finally {
        try {
          closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // no reader: nothing to release
        }
        rmSync(fifo, { force: true });
      }
    });
  });

  describe('guarded loading', () => {
    it('when a verified package is run, it exits 2 with GUARDED_LOAD_UNSUPPORTED naming this platform, audits the refusal and runs no package code', () => {
      const marker = dir.join('run.marker');
      buildPackage(dir.join('librun.so'), { identity: 'run', markerPath: marker });
      ok(wasi(['package', 'sign', 'librun.so', '--key', 'wasi.pem']));
      const result = wasi(['package', 'run', 'librun.so', '--trust-key', 'wasi.pub.pem', '--task', 'whoami', '--json'], {
        CLOACINA_AUDIT_LOG: dir.join('run-audit.jsonl'),
      });
      expect(result.status, result.stderr).to.equal(2);
      const error = result.json().error;
      expect(error.code).to.equal('GUARDED_LOAD_UNSUPPORTED');
      expect(error.message).to.include('WebAssembly build').and.include(`(${HOST})`);
      expect(result.stderr).not.to.match(/Cannot find|ExperimentalWarning/);
      const events = readFileSync(dir.join('run-audit.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(events.map((event) => event.event_type)).to.deep.equal(['package.load.failure']);
      expect(events[0].reason).to.include('GUARDED_LOAD_UNSUPPORTED');
      expect(existsSync(marker), 'package code ran').to.equal(false);
    });
  });

  describe('database trust and the signing service', () => {
    const kek = randomBytes(32).toString('hex');
    const dbEnv = { CLOACINA_DATABASE_URL: `sqlite:${dir.join('trust.db')}`, CLOACINA_KEY_ENCRYPTION_KEY: kek };
    const db = (args: string[]) => ok(wasi([...args, '--json'], dbEnv)).json();
    let key: { id: string; fingerprint: string };
    let service: ServiceProcess | undefined;

    before(() => {
      db(['db', 'migrate']);
      db(['orgs', 'create', 'ci']);
      key = db(['keys', 'generate', '--name', 'release', '--org', 'ci']);
      db(['keys', 'export', key.id, '--format', 'pem', '--output', 'release.pub.pem']);
      db(['keys', 'trust', '--import', 'release.pub.pem', '--name', 'release', '--org', 'ci']);
    });
    after(async () => {
      await service?.stop();
    });

    it('when a key sealed in the database signs, the organization trusts the package, and the audit chain holds', () => {
      buildPackage(dir.join('libdb.so'), { identity: 'database' });
      const signed = db(['package', 'sign', 'libdb.so', '--key-id', key.id]);
      expect(signed).to.include({ packageHash: sha256('libdb.so'), keyFingerprint: key.fingerprint });
      const verified = db(['package', 'verify', 'libdb.so', '--org', 'ci']);
      expect(verified.results[0]).to.include({ verified: true, keyFingerprint: key.fingerprint });
      const events = db(['audit', 'list']);
      expect(JSON.stringify(events)).to.include('verification.success');
      ok(wasi(['audit', 'verify'], dbEnv));
    });

    it('when signing through the signing service, the client hashes under the WebAssembly build and the signature verifies natively', async () => {
      const token = db(['tokens', 'create', '--org', 'ci', '--scope', `sign:${key.id}`]).token;
      service = await startService({ database: `sqlite:${dir.join('trust.db')}`, kek });
      buildPackage(dir.join('libapi.so'), { identity: 'api' });
      const signed = ok(wasi(['package', 'sign', 'libapi.so', '--key-id', key.id, '--api-url', service.url, '--json'], { CLOACINA_API_TOKEN: token })).json();
      expect(signed).to.include({ packageHash: sha256('libapi.so'), keyFingerprint: key.fingerprint });
      const verified = ok(native(['package', 'verify', 'libapi.so', '--trust-key', 'release.pub.pem', '--json'])).json();
      expect(verified.results[0]).to.include({ verified: true, keyFingerprint: key.fingerprint });
    });
  });
});
