import { expect } from 'chai';
import { copyFileSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  auditToDatabase,
  createPackageLoader,
  databaseTrust,
  DbKeyManager,
  generateKeypair,
  openDatabase,
  type PackageLoader,
  type PackageLoaderOptions,
  SignatureSource,
  signPackage,
  type Database,
  type Keypair,
} from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { TaskFailed } from '../src/loading/loaded-package';
import { buildAddon, buildPackage, buildWasm } from './fixtures';
import { rejectsWith, tempDir } from './helpers';

describe('verify-and-load', () => {
  const dir = tempDir();
  let db: Database;
  let keys: DbKeyManager;
  let orgId: string;
  let signer: Keypair;
  /** Signatures required (the runner's usual policy). */
  let loader: PackageLoader;
  /** Signatures not required (Cloacina's default). */
  let lenient: PackageLoader;
  const loaderWith = (options: Partial<PackageLoaderOptions>) =>
    createPackageLoader({ trust: databaseTrust(db, { org: orgId }), audit: auditToDatabase(db), requireSignatures: true, ...options });

  async function sign(path: string): Promise<void> {
    const info = await signPackage(path, signer.privateKey);
    await DetachedSignature.fromSignatureInfo(info).writeToFile(DetachedSignature.defaultPath(path));
  }

  async function loadEvents(): Promise<{ event_type: string; reason: string; package_hash: string | null }[]> {
    return db.knex('audit_events').where('event_type', 'like', 'package.load.%').orderBy('timestamp').select('*');
  }

  before(async () => {
    db = await openDatabase(`sqlite:${dir.join('cloacina.db')}`, { migrate: true });
    keys = new DbKeyManager(db);
    orgId = (await keys.createOrganization('runners')).id;
    signer = generateKeypair();
    await keys.trustPublicKey(orgId, signer.publicKey, 'ci');
    loader = loaderWith({});
    lenient = loaderWith({ requireSignatures: false });
  });
  after(async () => {
    await db.close();
    dir.cleanup();
  });

  describe('when the package is signed by a trusted key', () => {
    it('it loads the package, reads its metadata and runs its tasks off the JS thread', async () => {
      const path = buildPackage(dir.join('libsigned.so'));
      await sign(path);
      const pkg = await loader.load(path);
      try {
        expect(pkg.signerFingerprint).to.equal(signer.fingerprint);
        expect(pkg.packageHash).to.match(/^[0-9a-f]{64}$/);
        expect(pkg.path).to.equal(path);
        const metadata = pkg.metadata();
        expect(metadata.packageName).to.equal('fixture');
        expect(metadata.tasks.map((task) => task.localId)).to.deep.equal(['whoami', 'echo']);
        expect(metadata.tasks[1].dependencies).to.deep.equal(['whoami']);
        expect(metadata.graph).to.deep.equal({ nodes: ['whoami', 'echo'] });
        expect(await pkg.executeTask('whoami')).to.deep.equal({ identity: 'signed' });
        expect(await pkg.executeTask('echo', { rows: [1, 2, 3] })).to.deep.equal({ input: { rows: [1, 2, 3] } });
        expect(pkg.hasSymbol('cloacina_execute_task')).to.equal(true);
        expect(pkg.hasSymbol('malloc')).to.equal(false);
      } finally {
        pkg.close();
      }
      await rejectsWith(pkg.executeTask('whoami'), 'PACKAGE_CLOSED');
      const events = await loadEvents();
      expect(events.at(-1)?.event_type).to.equal('package.load.success');
    });

    it('it reports a failing task with the package error JSON, and other codes and oversized results clearly', async () => {
      const path = buildPackage(dir.join('libtasks.so'));
      await sign(path);
      const pkg = await loader.load(path);
      try {
        const failed = await rejectsWith(pkg.executeTask('fail'), 'TASK_FAILED');
        expect(failed).to.be.instanceOf(TaskFailed);
        expect((failed as TaskFailed).details).to.deep.equal({ error: 'the task failed on purpose', status: 'error' });
        await rejectsWith(pkg.executeTask('bad'), 'TASK_ABI_ERROR');
        await rejectsWith(pkg.executeTask('big'), 'TASK_RESULT_TRUNCATED');
      } finally {
        pkg.close();
      }
    });
  });

  describe('when verification fails', () => {
    it('it never runs the constructor of a tampered package and audits the failure', async () => {
      const marker = dir.join('tampered.marker');
      const path = buildPackage(dir.join('libtampered.so'), { markerPath: marker });
      await sign(path);
      const bytes = readFileSync(path);
      bytes[bytes.length - 1] ^= 0xff;
      writeFileSync(path, bytes);
      await rejectsWith(loader.load(path), 'TAMPERED_PACKAGE');
      expect(existsSync(marker)).to.equal(false);
      const last = (await loadEvents()).at(-1);
      expect(last?.event_type).to.equal('package.load.failure');
      expect(last?.reason).to.include('TAMPERED_PACKAGE');
      expect(last?.package_hash).to.match(/^[0-9a-f]{64}$/);
    });

    it('it refuses an untrusted signer and a missing signature, running nothing', async () => {
      const marker = dir.join('untrusted.marker');
      const path = buildPackage(dir.join('libuntrusted.so'), { markerPath: marker });
      const stranger = generateKeypair();
      const info = await signPackage(path, stranger.privateKey);
      await DetachedSignature.fromSignatureInfo(info).writeToFile(`${path}.sig`);
      const error = await rejectsWith(loader.load(path), 'UNTRUSTED_SIGNER');
      expect(error.message).to.include(stranger.fingerprint);
      rmSync(`${path}.sig`);
      await rejectsWith(loader.load(path), 'SIGNATURE_NOT_FOUND');
      expect(existsSync(marker)).to.equal(false);
    });

    it('it runs the constructor only once the package verified', async () => {
      const marker = dir.join('good.marker');
      const path = buildPackage(dir.join('libgoodmarker.so'), { markerPath: marker });
      await sign(path);
      const pkg = await loader.load(path);
      expect(existsSync(marker)).to.equal(true);
      pkg.close();
    });
  });

  describe('when signatures are not required', () => {
    it('it loads an unsigned package, with no signer, and audits the load', async () => {
      const path = buildPackage(dir.join('libunsigned.so'), { identity: 'unsigned' });
      const pkg = await lenient.load(path);
      expect(pkg.signerFingerprint).to.equal(null);
      expect(await pkg.executeTask('whoami')).to.deep.equal({ identity: 'unsigned' });
      pkg.close();
      const last = (await loadEvents()).at(-1);
      expect(last?.event_type).to.equal('package.load.success');
      expect(last?.reason).to.match(/not required/);
    });

    it('it still refuses a package whose signature is present but fails', async () => {
      const path = buildPackage(dir.join('libbadsig.so'));
      await sign(path);
      writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([0])]));
      await rejectsWith(lenient.load(path), 'TAMPERED_PACKAGE');
    });

    it('it refuses the same unsigned package when signatures are required', async () => {
      const marker = dir.join('unsigned.marker');
      const path = buildPackage(dir.join('libunsigned2.so'), { markerPath: marker });
      await rejectsWith(loader.load(path), 'SIGNATURE_NOT_FOUND');
      expect(existsSync(marker)).to.equal(false);
    });
  });

  describe('when the file is not a loadable package', () => {
    it('it refuses an oversized file, wrong magic, a truncated ELF and missing symbols, clearly', async () => {
      const big = buildPackage(dir.join('libbig.so'));
      await sign(big);
      await rejectsWith(loaderWith({ maxPackageBytes: 1024 }).load(big), 'PACKAGE_TOO_LARGE');

      const text = dir.join('notelf.so');
      writeFileSync(text, '#!/bin/sh\necho not a library\n');
      await sign(text);
      await rejectsWith(loader.load(text), 'NOT_A_SHARED_LIBRARY');

      const truncated = dir.join('libtruncated.so');
      copyFileSync(buildPackage(dir.join('libfull.so')), truncated);
      truncateSync(truncated, 600);
      await sign(truncated);
      await rejectsWith(loader.load(truncated), 'NOT_A_SHARED_LIBRARY');

      const missing = buildPackage(dir.join('libmissing.so'), { omitExecute: true });
      await sign(missing);
      const error = await rejectsWith(loader.load(missing), 'MISSING_SYMBOL');
      expect(error.message).to.include('cloacina_execute_task');
    });
  });

  describe('when two packages are loaded one after the other through the same descriptor number', () => {
    it('it runs each package its own code, even when the first cannot be unloaded', async () => {
      const first = buildPackage(dir.join('libfirst.so'), { identity: 'first', nodelete: true });
      const second = buildPackage(dir.join('libsecond.so'), { identity: 'second', nodelete: true });
      await sign(first);
      await sign(second);
      const a = await loader.load(first);
      const descriptor = a.descriptor;
      expect(await a.executeTask('whoami')).to.deep.equal({ identity: 'first' });
      a.close();
      // close() releases the descriptor on a background thread: wait until it is free for reuse.
      for (let waited = 0; existsSync(`/proc/self/fd/${descriptor}`) && waited < 5000; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const b = await loader.load(second);
      expect(b.descriptor).to.equal(descriptor);
      expect(await b.executeTask('whoami')).to.deep.equal({ identity: 'second' });
      b.close();
    });
  });

  describe('when the package is a native Node addon or a WebAssembly module', () => {
    it('it requires a verified addon from the sealed bytes and refuses a tampered one', async () => {
      const addon = buildAddon(dir.join('greeter.node'));
      await sign(addon);
      const exports = (await loader.requireAddon(addon)) as { greet: () => string };
      expect(exports.greet()).to.equal('hello from a verified addon');
      writeFileSync(addon, Buffer.concat([readFileSync(addon), randomBytes(1)]));
      await rejectsWith(loader.requireAddon(addon), 'TAMPERED_PACKAGE');
    });

    it('it compiles a verified WebAssembly module and refuses a tampered one', async () => {
      const wasm = buildWasm(dir.join('answer.wasm'));
      await sign(wasm);
      const module = await loader.compileWasm(wasm);
      const instance = await WebAssembly.instantiate(module);
      expect((instance.exports.answer as () => number)()).to.equal(42);
      buildWasm(wasm, 43);
      await rejectsWith(loader.compileWasm(wasm), 'TAMPERED_PACKAGE');
      writeFileSync(dir.join('fake.wasm'), 'not wasm');
      await sign(dir.join('fake.wasm'));
      await rejectsWith(loader.compileWasm(dir.join('fake.wasm')), 'NOT_A_WASM_MODULE');
    });
  });

  describe('when the signature comes from memory or an explicit file', () => {
    it('it verifies against the given signature only', async () => {
      const path = buildPackage(dir.join('libmemory.so'));
      const info = await signPackage(path, signer.privateKey);
      const signature = DetachedSignature.fromSignatureInfo(info);
      const pkg = await loader.load(path, { signature: SignatureSource.Memory(signature) });
      pkg.close();
      await signature.writeToFile(dir.join('elsewhere.sig'));
      const again = await loader.load(path, { signature: SignatureSource.DetachedFile(dir.join('elsewhere.sig')) });
      again.close();
    });
  });
});
