// Prometheus metrics of verification and loading: createPackageLoader({ metrics: registry }), shared with the
// signing service's /metrics, listed by `cloacina-sign metrics`.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Counter, Registry } from 'prom-client';
import {
  createPackageLoader,
  DbKeyManager,
  generateKeypair,
  type Keypair,
  openDatabase,
  type PackageLoaderOptions,
  publicKeyTrust,
  readPrivateKeyFile,
  signPackage,
  writeKeypairFiles,
} from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { hashFile } from '../src/hashing';
import { ERROR_CODES } from '../src/error-codes';
import { LOADER_METRIC_DEFINITIONS, VERIFICATION_METRICS } from '../src/loading/metrics';
import { TokenManager } from '../src/db/tokens';
import { writeSignatureDocument } from '../src/formats/v2';
import { signStatement } from '../src/signing/sign';
import { buildAddon, buildPackage, buildWasm } from './fixtures';
import { rejectsWith, ROOT, runCli, tempDir, throwsWith } from './helpers';
import { http, metric, type ServiceProcess, startService, Transcript } from './service/harness';

const VERIFICATIONS = 'cloacina_sign_verifications_total';
const LOADS = 'cloacina_sign_loads_total';
const UNSIGNED = 'cloacina_sign_unsigned_loads_total';
const BYTES = 'cloacina_sign_verified_bytes_total';
const VERIFY_SECONDS = 'cloacina_sign_verification_duration_seconds';
const LOAD_SECONDS = 'cloacina_sign_load_duration_seconds';

/** The value of a histogram's `_count` or `_sum` series. */
function histogramValue(text: string, name: string, part: 'count' | 'sum', labels: Record<string, string>): number {
  return metric(text, `${name}_${part}`, labels);
}

/** Every label value of every sample line: only the bounded vocabularies. */
function expectBoundedLabels(text: string): void {
  const allowed: Record<string, Set<string>> = {
    operation: new Set(['verify', 'load', 'addon', 'wasm', 'upload']),
    outcome: new Set(['success', 'failure']),
    reason: new Set([...ERROR_CODES, 'none']),
    document_version: new Set(['1', '2', 'none']),
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const labels = /\{([^}]*)\}/.exec(line)?.[1] ?? '';
    for (const pair of labels.split(',').filter(Boolean)) {
      const [, key, value] = /^([a-z_]+)="(.*)"$/.exec(pair) ?? [];
      if (key === 'le') {
        expect(value === '+Inf' || Number.isFinite(Number(value)), line).to.equal(true);
        continue;
      }
      expect(allowed[key], `unexpected label in ${line}`).to.not.equal(undefined);
      expect(allowed[key].has(value), `unexpected ${key} value in ${line}`).to.equal(true);
    }
  }
}

describe('metrics (createPackageLoader({ metrics }), cloacina-sign metrics, the service /metrics)', () => {
  const dir = tempDir();
  let signer: Keypair;
  let privateKeyPath: string;
  let publicKeyPath: string;
  let built = 0;
  /** Every package path and hash made here: none may appear in any exposition. */
  const secrets: string[] = [];

  const freshPackage = (name: string) => {
    const path = buildPackage(dir.join(`lib${name}-${built}.so`), { identity: `${name}-${built++}` });
    secrets.push(path);
    return path;
  };
  const signBeside = async (path: string) => {
    const info = await signPackage(path, await readPrivateKeyFile(privateKeyPath));
    secrets.push(info.packageHash);
    await DetachedSignature.fromSignatureInfo(info).writeToFile(DetachedSignature.defaultPath(path));
  };
  const signV2Beside = async (path: string, version: string) => {
    const signed = await signStatement(path, await readPrivateKeyFile(privateKeyPath), { name: 'metrics-fixture', version });
    secrets.push(signed.statement.digest);
    await writeSignatureDocument(DetachedSignature.defaultPath(path), signed.document);
  };
  const loaderOn = (registry: Registry, options: Partial<PackageLoaderOptions> = {}) =>
    createPackageLoader({ trust: publicKeyTrust([publicKeyPath]), audit: [], requireSignatures: true, metrics: registry, ...options });

  before(async () => {
    signer = generateKeypair();
    privateKeyPath = dir.join('release.pem');
    ({ publicKeyPath } = await writeKeypairFiles(signer, privateKeyPath));
    secrets.push(signer.fingerprint, dir.path);
  });

  after(() => dir.cleanup());

  describe('a loader with a registry', () => {
    it('when a signed package verifies and loads, the success counters, the histograms and the bytes move', async () => {
      const registry = new Registry();
      const loader = loaderOn(registry);
      const path = freshPackage('ok');
      await signBeside(path);
      secrets.push(await hashFile(path));
      const size = statSync(path).size;

      await loader.verify(path);
      const pkg = await loader.load(path);
      pkg.close();

      const text = await registry.metrics();
      expect(metric(text, VERIFICATIONS, { operation: 'verify', outcome: 'success', reason: 'none', document_version: '1' })).to.equal(1);
      expect(metric(text, VERIFICATIONS, { operation: 'load', outcome: 'success', reason: 'none', document_version: '1' })).to.equal(1);
      expect(metric(text, LOADS, { operation: 'load', outcome: 'success', reason: 'none' })).to.equal(1);
      expect(metric(text, UNSIGNED, { operation: 'load' })).to.equal(0);
      expect(metric(text, BYTES, { operation: 'verify' })).to.equal(size);
      expect(metric(text, BYTES, { operation: 'load' })).to.equal(size);
      for (const operation of ['verify', 'load']) {
        expect(histogramValue(text, VERIFY_SECONDS, 'count', { operation, outcome: 'success' }), operation).to.equal(1);
        expect(histogramValue(text, VERIFY_SECONDS, 'sum', { operation, outcome: 'success' }), operation).to.be.greaterThan(0);
      }
      expect(histogramValue(text, LOAD_SECONDS, 'count', { operation: 'load', outcome: 'success' })).to.equal(1);
      expect(histogramValue(text, LOAD_SECONDS, 'sum', { operation: 'load', outcome: 'success' })).to.be.greaterThan(0);
      // The whole load takes at least as long as its verification.
      expect(histogramValue(text, LOAD_SECONDS, 'sum', { operation: 'load', outcome: 'success' })).to.be.at.least(
        histogramValue(text, VERIFY_SECONDS, 'sum', { operation: 'load', outcome: 'success' }),
      );
      expect(text).to.match(new RegExp(`${VERIFY_SECONDS}_bucket\\{le="0\\.0005",operation="verify",outcome="success"\\} \\d`));
    });

    it('when a signed package was tampered with, verify and load count TAMPERED_PACKAGE failures, and no bytes', async () => {
      const registry = new Registry();
      const loader = loaderOn(registry);
      const path = freshPackage('tampered');
      await signBeside(path);
      appendFileSync(path, Buffer.from([0]));
      secrets.push(await hashFile(path));

      await rejectsWith(loader.verify(path), 'TAMPERED_PACKAGE');
      await rejectsWith(loader.load(path), 'TAMPERED_PACKAGE');

      const text = await registry.metrics();
      for (const operation of ['verify', 'load']) {
        expect(metric(text, VERIFICATIONS, { operation, outcome: 'failure', reason: 'TAMPERED_PACKAGE', document_version: 'none' }), operation).to.equal(1);
        expect(metric(text, VERIFICATIONS, { operation, outcome: 'success', document_version: '1' }), operation).to.equal(0);
        expect(metric(text, BYTES, { operation }), operation).to.equal(0);
        expect(histogramValue(text, VERIFY_SECONDS, 'count', { operation, outcome: 'failure' }), operation).to.equal(1);
      }
      expect(metric(text, LOADS, { operation: 'load', outcome: 'failure', reason: 'TAMPERED_PACKAGE' })).to.equal(1);
      expect(metric(text, LOADS, { operation: 'load', outcome: 'success' })).to.equal(0);
      expect(histogramValue(text, LOAD_SECONDS, 'count', { operation: 'load', outcome: 'failure' })).to.equal(1);
    });

    it('when signatures are required and a package is unsigned, the blocked load counts SIGNATURE_NOT_FOUND', async () => {
      const registry = new Registry();
      const path = freshPackage('unsigned');
      secrets.push(await hashFile(path));

      await rejectsWith(loaderOn(registry).load(path), 'SIGNATURE_NOT_FOUND');
      await rejectsWith(loaderOn(registry).verify(path), 'SIGNATURE_NOT_FOUND');

      const text = await registry.metrics();
      expect(metric(text, LOADS, { operation: 'load', outcome: 'failure', reason: 'SIGNATURE_NOT_FOUND' })).to.equal(1);
      expect(metric(text, VERIFICATIONS, { operation: 'load', outcome: 'failure', reason: 'SIGNATURE_NOT_FOUND' })).to.equal(1);
      expect(metric(text, VERIFICATIONS, { operation: 'verify', outcome: 'failure', reason: 'SIGNATURE_NOT_FOUND' })).to.equal(1);
      expect(metric(text, UNSIGNED, { operation: 'load' })).to.equal(0);
    });

    it('when signatures are not required, an unsigned load succeeds and counts as unsigned, not as a verification', async () => {
      const registry = new Registry();
      const path = freshPackage('allowed');
      const pkg = await loaderOn(registry, { requireSignatures: false }).load(path);
      pkg.close();

      const text = await registry.metrics();
      expect(metric(text, LOADS, { operation: 'load', outcome: 'success', reason: 'none' })).to.equal(1);
      expect(metric(text, UNSIGNED, { operation: 'load' })).to.equal(1);
      expect(metric(text, VERIFICATIONS, { operation: 'load', outcome: 'success' })).to.equal(0);
      expect(metric(text, VERIFICATIONS, { operation: 'load', outcome: 'failure' })).to.equal(0);
      expect(histogramValue(text, VERIFY_SECONDS, 'count', { operation: 'load', outcome: 'success' })).to.equal(0);
      expect(metric(text, BYTES, { operation: 'load' })).to.equal(0);
    });

    it('when the policy refuses a version-2 signature (VERSION_NOT_ALLOWED), the refusal is counted with its code; an allowed one as document_version 2', async () => {
      const registry = new Registry();
      const path = freshPackage('v2');
      await signV2Beside(path, '2.0.0');
      const refusing = loaderOn(registry, { policy: { allowedVersions: '>=1.0.0, <2.0.0' } });

      await rejectsWith(refusing.verify(path), 'VERSION_NOT_ALLOWED');
      await rejectsWith(refusing.load(path), 'VERSION_NOT_ALLOWED');
      const allowing = loaderOn(registry, { policy: { allowedVersions: '^2' } });
      await allowing.verify(path);
      (await allowing.load(path)).close();

      const text = await registry.metrics();
      for (const operation of ['verify', 'load']) {
        expect(metric(text, VERIFICATIONS, { operation, outcome: 'failure', reason: 'VERSION_NOT_ALLOWED', document_version: 'none' }), operation).to.equal(1);
        expect(metric(text, VERIFICATIONS, { operation, outcome: 'success', reason: 'none', document_version: '2' }), operation).to.equal(1);
        expect(metric(text, BYTES, { operation }), operation).to.equal(statSync(path).size);
      }
      expect(metric(text, LOADS, { operation: 'load', outcome: 'failure', reason: 'VERSION_NOT_ALLOWED' })).to.equal(1);
      expect(metric(text, LOADS, { operation: 'load', outcome: 'success', reason: 'none' })).to.equal(1);
    });

    it('when an addon and a WASM module load, they count under operation addon and wasm', async () => {
      const registry = new Registry();
      const loader = loaderOn(registry);
      const addon = buildAddon(dir.join('metrics-addon.node'));
      const wasm = buildWasm(dir.join('metrics.wasm'), 7);
      secrets.push(addon, wasm);
      await signBeside(addon);
      await signBeside(wasm);

      expect((await loader.requireAddon(addon)) as object).to.be.an('object');
      await loader.compileWasm(wasm);
      await rejectsWith(loader.compileWasm(freshPackage('notwasm')), 'SIGNATURE_NOT_FOUND', 'NOT_A_WASM_MODULE');

      const text = await registry.metrics();
      expect(metric(text, LOADS, { operation: 'addon', outcome: 'success', reason: 'none' })).to.equal(1);
      expect(metric(text, LOADS, { operation: 'wasm', outcome: 'success', reason: 'none' })).to.equal(1);
      expect(metric(text, VERIFICATIONS, { operation: 'wasm', outcome: 'success', document_version: '1' })).to.equal(1);
      expect(metric(text, BYTES, { operation: 'wasm' })).to.equal(statSync(wasm).size);
      const wasmFailures = text.split('\n').filter((line) => line.startsWith(`${LOADS}{operation="wasm",outcome="failure"`));
      expect(wasmFailures).to.have.length(1);
    });

    it('when everything above was counted, no label value is a path, a hash, a key fingerprint or a directory: only the bounded vocabularies', async () => {
      const registry = new Registry();
      const loader = loaderOn(registry, { requireSignatures: false });
      const signed = freshPackage('scan');
      await signBeside(signed);
      secrets.push(await hashFile(signed));
      const tampered = freshPackage('scan-tampered');
      await signBeside(tampered);
      appendFileSync(tampered, 'x');
      secrets.push(await hashFile(tampered));
      (await loader.load(signed)).close();
      await loader.verify(signed);
      await rejectsWith(loader.load(tampered), 'TAMPERED_PACKAGE');
      await rejectsWith(loader.verify(dir.join('missing.so')), 'UNREADABLE_FILE');
      await rejectsWith(loader.load(dir.join('missing.so')), 'UNREADABLE_FILE');

      const text = await registry.metrics();
      expect(metric(text, LOADS, { operation: 'load', outcome: 'failure', reason: 'UNREADABLE_FILE' })).to.equal(1);
      expect(secrets.length).to.be.greaterThan(10);
      for (const secret of [...secrets, dir.join('missing.so'), 'missing.so', '/tmp/']) expect(text, secret).not.to.include(secret);
      expectBoundedLabels(text);
    });
  });

  describe('a registry shared by several loaders', () => {
    it('when two loaders share a registry, each metric is registered once and both count into it', async () => {
      const registry = new Registry();
      const first = loaderOn(registry);
      const path = freshPackage('shared');
      await signBeside(path);
      await first.verify(path);
      // The second loader finds the metrics by name: nothing is re-registered or reset.
      const second = loaderOn(registry, { requireSignatures: false });
      await second.verify(path);
      (await second.load(path)).close();

      const names = registry.getMetricsAsArray().map((m) => m.name);
      expect(names).to.have.members(LOADER_METRIC_DEFINITIONS.map((d) => d.name));
      expect(new Set(names).size).to.equal(names.length);
      const text = await registry.metrics();
      expect(metric(text, VERIFICATIONS, { operation: 'verify', outcome: 'success', document_version: '1' })).to.equal(2);
      expect(histogramValue(text, VERIFY_SECONDS, 'count', { operation: 'verify', outcome: 'success' })).to.equal(2);
      expect(metric(text, LOADS, { operation: 'load', outcome: 'success' })).to.equal(1);
    });

    it('when the registry already has metrics of ours registered by another copy (by name), they are reused', async () => {
      const registry = new Registry();
      const definition = VERIFICATION_METRICS.verifications;
      const theirs = new Counter({ name: definition.name, help: definition.help, labelNames: [...definition.labelNames], registers: [registry] });
      theirs.inc({ operation: 'verify', outcome: 'success', reason: 'none', document_version: '1' }, 5);
      const path = freshPackage('byname');
      await signBeside(path);
      await loaderOn(registry).verify(path);
      expect(metric(await registry.metrics(), VERIFICATIONS, { operation: 'verify', outcome: 'success', document_version: '1' })).to.equal(6);
    });

    it('when the registry has a metric of that name of another kind or labels, the loader is refused with INVALID_INPUT', () => {
      const registry = new Registry();
      new Counter({ name: 'cloacina_sign_loads_total', help: 'something else', labelNames: ['path'], registers: [registry] });
      const error = throwsWith(() => loaderOn(registry), 'INVALID_INPUT');
      expect(error.message).to.include('cloacina_sign_loads_total');
      throwsWith(() => loaderOn({} as Registry), 'INVALID_INPUT');
    });

    it('when a loader is created, its series are present at zero before anything is counted', async () => {
      const registry = new Registry();
      loaderOn(registry);
      const text = await registry.metrics();
      for (const operation of ['verify', 'load', 'addon', 'wasm']) {
        expect(text).to.include(`${VERIFICATIONS}{operation="${operation}",outcome="success",reason="none",document_version="1"} 0`);
        expect(text).to.include(`${BYTES}{operation="${operation}"} 0`);
        expect(text).to.include(`${VERIFY_SECONDS}_count{operation="${operation}",outcome="failure"} 0`);
      }
      for (const operation of ['load', 'addon', 'wasm']) {
        expect(text).to.include(`${LOADS}{operation="${operation}",outcome="success",reason="none"} 0`);
        expect(text).to.include(`${UNSIGNED}{operation="${operation}"} 0`);
        expect(text).to.include(`${LOAD_SECONDS}_count{operation="${operation}",outcome="success"} 0`);
      }
    });
  });

  describe('a loader without metrics', () => {
    it('when prom-client cannot be loaded at all, a key-file loader still loads and runs a signed package (test/fixtures/no-database-runner)', async () => {
      const path = freshPackage('noprom');
      await signBeside(path);
      const runner = join(ROOT, 'dist/test/fixtures/no-database-runner.js');
      const result = spawnSync(process.execPath, [runner, path, publicKeyPath, 'file', dir.join('noprom-audit.log')], { encoding: 'utf8', timeout: 60_000 });
      expect(result.status, result.stderr + result.stdout).to.equal(0);
      const last = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
      expect(last.error, result.stdout).to.equal(undefined);
      expect(last.result.blockedAttempts).to.deep.equal([]);
      expect(last.result.signerFingerprint).to.equal(signer.fingerprint);
      expect(last.result.output.identity).to.match(/^noprom-\d+$/);
    });
  });

  describe('cloacina-sign metrics', () => {
    it('when run, it prints every loader metric with its HELP and TYPE lines, at zero, and exits 0', () => {
      const result = runCli(['metrics']);
      expect(result.status, result.stderr).to.equal(0);
      expect(result.stderr).to.equal('');
      for (const definition of LOADER_METRIC_DEFINITIONS) {
        expect(result.stdout).to.include(`# HELP ${definition.name} ${definition.help}\n`);
        expect(result.stdout).to.include(`# TYPE ${definition.name} ${definition.type}\n`);
      }
      const samples = result.stdout.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
      expect(samples.length).to.be.greaterThan(0);
      for (const line of samples) expect(line, line).to.match(/ 0$/);
      expect(result.stdout).to.include(`${VERIFICATIONS}{operation="verify",outcome="success",reason="none",document_version="2"} 0`);
      expectBoundedLabels(result.stdout);
    });

    it('when run with --json, it prints one object listing every name, type, help and label', () => {
      const result = runCli(['metrics', '--json']);
      expect(result.status, result.stderr).to.equal(0);
      const metrics = result.json().metrics;
      expect(metrics).to.deep.equal(LOADER_METRIC_DEFINITIONS.map((d) => ({ name: d.name, type: d.type, help: d.help, labels: [...d.labelNames] })));
    });

    it("when run with --service, it prints the signing service's metrics, the shared verification metrics among them", () => {
      const result = runCli(['metrics', '--service']);
      expect(result.status, result.stderr).to.equal(0);
      for (const name of ['cloacina_sign_http_requests_total', 'cloacina_sign_uploads_total', ...Object.values(VERIFICATION_METRICS).map((d) => d.name)]) {
        expect(result.stdout).to.include(`# TYPE ${name} `);
      }
      expect(result.stdout).to.include(`${VERIFICATIONS}{operation="upload",outcome="success",reason="none",document_version="1"} 0`);
      expect(result.stdout).not.to.include(LOADS);
      expect(result.stdout).not.to.include('process_cpu');
    });
  });

  describe("the signing service's /metrics", () => {
    const transcript = new Transcript();
    const kek = randomBytes(32);
    let service: ServiceProcess;
    let token: string;
    let orgId: string;
    let database: string;

    before(async () => {
      database = `sqlite:${dir.join('service.db')}`;
      const db = await openDatabase(database, { migrate: true });
      try {
        const keys = new DbKeyManager(db);
        orgId = (await keys.createOrganization('metrics')).id;
        await keys.trustPublicKey(orgId, signer.publicKey, 'release');
        token = (await new TokenManager(keys).create({ orgId, scopes: ['upload'] })).token;
      } finally {
        await db.close();
      }
      service = await startService({ database, kek: kek.toString('base64'), transcript });
    });

    after(async () => {
      await service?.stop();
    });

    const upload = async (path: string, signature: string) =>
      http(transcript, `${service.url}/v1/orgs/${orgId}/packages`, {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/octet-stream', 'cloacina-signature': Buffer.from(signature).toString('base64') },
        body: readFileSync(path),
      });

    it('when uploads verify or fail, the service counts them in the loader metric names, with operation="upload"', async () => {
      const scrape = async () => (await http(transcript, `${service.url}/metrics`)).text;
      const before = await scrape();
      for (const definition of Object.values(VERIFICATION_METRICS)) {
        expect(before).to.include(`# HELP ${definition.name} ${definition.help}\n`);
        expect(before).to.include(`# TYPE ${definition.name} ${definition.type}\n`);
      }
      expect(before).to.include(`${VERIFICATIONS}{operation="upload",outcome="success",reason="none",document_version="1"} 0`);

      const good = freshPackage('upload');
      await signBeside(good);
      const goodSignature = readFileSync(DetachedSignature.defaultPath(good), 'utf8');
      const accepted = await upload(good, goodSignature);
      expect(accepted.status, accepted.text).to.equal(201);
      const tampered = freshPackage('upload-tampered');
      const refused = await upload(tampered, goodSignature);
      expect(refused.status, refused.text).to.equal(403);
      const unsigned = await http(transcript, `${service.url}/v1/orgs/${orgId}/packages`, {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/octet-stream' },
        body: 'x',
      });
      expect(unsigned.status, unsigned.text).to.equal(403);

      const after = await scrape();
      const moved = (name: string, labels: Record<string, string>) => metric(after, name, labels) - metric(before, name, labels);
      expect(moved(VERIFICATIONS, { operation: 'upload', outcome: 'success', reason: 'none', document_version: '1' })).to.equal(1);
      expect(moved(VERIFICATIONS, { operation: 'upload', outcome: 'failure', reason: 'TAMPERED_PACKAGE', document_version: 'none' })).to.equal(1);
      expect(moved(VERIFICATIONS, { operation: 'upload', outcome: 'failure', reason: 'SIGNATURE_NOT_FOUND', document_version: 'none' })).to.equal(1);
      expect(moved(BYTES, { operation: 'upload' })).to.equal(statSync(good).size);
      expect(moved(`${VERIFY_SECONDS}_count`, { operation: 'upload', outcome: 'success' })).to.equal(1);
      expect(moved(`${VERIFY_SECONDS}_count`, { operation: 'upload', outcome: 'failure' })).to.equal(2);
      // The service's own upload counters still say the same.
      expect(moved('cloacina_sign_verification_failures_total', { reason: 'TAMPERED_PACKAGE' })).to.equal(1);
      expect(moved('cloacina_sign_uploads_total', { outcome: 'uploaded' })).to.equal(1);
      for (const secret of [...secrets, orgId, accepted.json().packageHash]) expect(after, secret).not.to.include(secret);
      expect(after).not.to.include(LOADS);
    });
  });
});
