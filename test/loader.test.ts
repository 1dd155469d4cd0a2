import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type AuditEvent,
  type AuditSink,
  auditToDatabase,
  CloacinaSignError,
  createPackageLoader,
  type Database,
  databaseTrust,
  DbKeyManager,
  generateKeypair,
  type Keypair,
  openDatabase,
  type PackageLoader,
  type PackageLoaderOptions,
  publicKeyToPem,
  publicKeyTrust,
  SignatureSource,
  signPackage,
  writeKeypairFiles,
} from '../src';
import { DbPackageSigner } from '../src/signing/db-signer';
import { DetachedSignature } from '../src/formats/v1';
import { VerificationFailure } from '../src/errors';
import { hashFile } from '../src/hashing';
import { listAuditEvents } from '../src/audit/database-sink';
import { buildAddon, buildPackage, buildWasm } from './fixtures';
import { rejectsWith, ROOT, tempDir, throwsWith } from './helpers';

/** A sink that keeps every event; `onWrite` runs at the moment of the write (before it resolves). */
function recordingSink(onWrite: (event: AuditEvent) => void = () => undefined): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return {
    events,
    write: async (event) => {
      onWrite(event);
      events.push(event);
    },
  };
}

/** A sink whose every write is refused, like a full disk. */
function failingSink(message = 'the audit disk is full'): AuditSink {
  return { write: () => Promise.reject(new Error(message)) };
}

/** A Node addon whose constructor leaves `markerPath` (test/fixtures/marker_addon.c). */
function buildMarkerAddon(output: string, markerPath: string): string {
  const include = [join(dirname(process.execPath), '../include/node'), '/usr/include/node'].find((candidate) => existsSync(join(candidate, 'node_api.h')));
  if (!include) throw new Error('node_api.h not found');
  const result = spawnSync(
    'cc',
    ['-shared', '-fPIC', '-O1', `-I${include}`, `-DMARKER_PATH="${markerPath}"`, '-o', output, join(ROOT, 'test/fixtures/marker_addon.c')],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`cc failed: ${result.stderr}`);
  return output;
}

/** Unblocks (and so ends) any reader stuck opening the FIFO, then removes it. */
function releaseFifo(path: string): void {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // ENXIO: nobody has it open for reading, which is what we want.
  }
  rmSync(path, { force: true });
}

describe('the runner loader (createPackageLoader)', () => {
  const dir = tempDir();
  let db: Database;
  let keys: DbKeyManager;
  let orgId: string;
  let signer: Keypair;
  let stranger: Keypair;
  let signerPub: string;
  let strangerPub: string;
  let built = 0;
  const extraDatabases: Database[] = [];

  const identities = new Map<string, string>();
  /** A fresh fixture package (a distinct build each time, so hashes never collide across tests). */
  const freshPackage = (name: string, markerPath?: string) => {
    const identity = `${name}-${built++}`;
    const path = buildPackage(dir.join(`lib${name}.so`), { identity, markerPath });
    identities.set(path, identity);
    return path;
  };

  async function signBeside(path: string, key: Keypair = signer): Promise<void> {
    const info = await signPackage(path, key.privateKey);
    await DetachedSignature.fromSignatureInfo(info).writeToFile(DetachedSignature.defaultPath(path));
  }

  const dbLoader = (options: Partial<PackageLoaderOptions> = {}): PackageLoader =>
    createPackageLoader({ trust: databaseTrust(db, { org: orgId }), audit: auditToDatabase(db), requireSignatures: true, ...options });
  const pinnedLoader = (options: Partial<PackageLoaderOptions> = {}): PackageLoader =>
    createPackageLoader({ trust: publicKeyTrust([signerPub]), audit: [], requireSignatures: true, ...options });

  /** A separate SQLite database trusting `signer`, for tests that break its audit table. */
  async function separateDatabase(name: string): Promise<{ db: Database; orgId: string }> {
    const other = await openDatabase(`sqlite:${dir.join(`${name}.db`)}`, { migrate: true });
    extraDatabases.push(other);
    const otherKeys = new DbKeyManager(other);
    const org = await otherKeys.createOrganization('runners');
    await otherKeys.trustPublicKey(org.id, signer.publicKey, 'ci');
    return { db: other, orgId: org.id };
  }

  before(async () => {
    db = await openDatabase(`sqlite:${dir.join('loader.db')}`, { migrate: true });
    keys = new DbKeyManager(db);
    orgId = (await keys.createOrganization('runners')).id;
    signer = generateKeypair();
    stranger = generateKeypair();
    await keys.trustPublicKey(orgId, signer.publicKey, 'ci');
    signerPub = (await writeKeypairFiles(signer, dir.join('ci.pem'))).publicKeyPath;
    strangerPub = (await writeKeypairFiles(stranger, dir.join('stranger.pem'))).publicKeyPath;
  });
  after(async () => {
    for (const other of extraDatabases) await other.close();
    await db.close();
    dir.cleanup();
  });

  describe('when the load decision is audited before any package code runs', () => {
    it('when a signed package loads, it writes package.load.success to every sink before the constructor runs', async () => {
      const marker = dir.join('order.marker');
      const path = freshPackage('order', marker);
      await signBeside(path);
      const markerAtWrite: boolean[] = [];
      const first = recordingSink((event) => event.event_type === 'package.load.success' && markerAtWrite.push(existsSync(marker)));
      const second = recordingSink((event) => event.event_type === 'package.load.success' && markerAtWrite.push(existsSync(marker)));
      const pkg = await pinnedLoader({ audit: [first, second] }).load(path);
      pkg.close();
      expect(markerAtWrite).to.deep.equal([false, false]);
      expect(existsSync(marker)).to.equal(true);
      expect(first.events.map((event) => event.event_type)).to.deep.equal(['package.load.success']);
      expect(second.events.map((event) => event.event_type)).to.deep.equal(['package.load.success']);
    });

    it('when the only sink rejects the success event, it loads nothing and rejects with AUDIT_FAILED saying what verification concluded', async () => {
      const marker = dir.join('failing-sink.marker');
      const path = freshPackage('failingsink', marker);
      await signBeside(path);
      const error = await rejectsWith(pinnedLoader({ audit: failingSink() }).load(path), 'AUDIT_FAILED');
      expect(error.message).to.include('signature verified');
      expect(error.message).to.include(signer.fingerprint);
      expect(error.message).to.include('the audit disk is full');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when one of two sinks rejects the success event, it loads nothing (every sink must have it)', async () => {
      const marker = dir.join('one-of-two.marker');
      const path = freshPackage('oneoftwo', marker);
      await signBeside(path);
      await rejectsWith(pinnedLoader({ audit: [recordingSink(), failingSink()] }).load(path), 'AUDIT_FAILED');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when an allowed unsigned load cannot be audited, it loads nothing and the message says the package was unsigned', async () => {
      const marker = dir.join('unsigned-unaudited.marker');
      const path = freshPackage('unsignedunaudited', marker);
      const error = await rejectsWith(pinnedLoader({ audit: failingSink(), requireSignatures: false }).load(path), 'AUDIT_FAILED');
      expect(error.message).to.match(/unsigned/);
      expect(existsSync(marker)).to.equal(false);
    });

    it('when the audit_events table of the SQLite database was renamed, it loads nothing and rejects with AUDIT_FAILED', async () => {
      const other = await separateDatabase('renamed');
      await other.db.knex.schema.renameTable('audit_events', 'audit_events_old');
      const marker = dir.join('renamed.marker');
      const path = freshPackage('renamed', marker);
      await signBeside(path);
      const loader = createPackageLoader({ trust: databaseTrust(other.db, { org: other.orgId }), audit: auditToDatabase(other.db), requireSignatures: true });
      const error = await rejectsWith(loader.load(path), 'AUDIT_FAILED');
      expect(error.message).to.include('signature verified');
      expect(error.message).to.include(signer.fingerprint);
      expect(existsSync(marker)).to.equal(false);
    });

    it('when the audit_events table of the SQLite database was dropped, it loads nothing and rejects with AUDIT_FAILED', async () => {
      const other = await separateDatabase('dropped');
      await other.db.knex.schema.dropTable('audit_events');
      const marker = dir.join('dropped.marker');
      const path = freshPackage('dropped', marker);
      await signBeside(path);
      const loader = createPackageLoader({ trust: databaseTrust(other.db, { org: other.orgId }), audit: auditToDatabase(other.db), requireSignatures: true });
      const error = await rejectsWith(loader.load(path), 'AUDIT_FAILED');
      expect(error.message).to.include(signer.fingerprint);
      expect(existsSync(marker)).to.equal(false);
    });

    it('when requireAddon cannot audit the success event, it rejects with AUDIT_FAILED and the addon constructor never runs', async () => {
      const marker = dir.join('addon.marker');
      const addon = buildMarkerAddon(dir.join('marker-addon.node'), marker);
      await signBeside(addon);
      const error = await rejectsWith(pinnedLoader({ audit: failingSink() }).requireAddon(addon), 'AUDIT_FAILED');
      expect(error.message).to.include(signer.fingerprint);
      expect(existsSync(marker)).to.equal(false);
    });

    it('when requireAddon of the plain fixture addon cannot audit the success event, it rejects with AUDIT_FAILED', async () => {
      const addon = buildAddon(dir.join('greeter-unaudited.node'));
      await signBeside(addon);
      const error = await rejectsWith(pinnedLoader({ audit: failingSink() }).requireAddon(addon), 'AUDIT_FAILED');
      expect(error.message).to.include('signature verified');
    });

    it('when compileWasm cannot audit the success event, it rejects with AUDIT_FAILED', async () => {
      const wasm = buildWasm(dir.join('unaudited.wasm'));
      await signBeside(wasm);
      const error = await rejectsWith(pinnedLoader({ audit: failingSink() }).compileWasm(wasm), 'AUDIT_FAILED');
      expect(error.message).to.include('signature verified');
      expect(error.message).to.include(signer.fingerprint);
    });
  });

  describe('when the failure record itself cannot be written', () => {
    it('when a tampered package is refused and its failure cannot be audited, the load still rejects with TAMPERED_PACKAGE whose cause is the audit error', async () => {
      const marker = dir.join('tampered-unaudited.marker');
      const path = freshPackage('tamperedunaudited', marker);
      await signBeside(path);
      writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([0])]));
      const error = await rejectsWith(pinnedLoader({ audit: failingSink('audit store offline') }).load(path), 'TAMPERED_PACKAGE');
      expect(error).to.be.instanceOf(VerificationFailure);
      const cause = error.cause as CloacinaSignError;
      expect(cause).to.be.instanceOf(CloacinaSignError);
      expect(cause.code).to.equal('AUDIT_FAILED');
      expect(cause.message).to.include('audit store offline');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when loader.verify refuses a tampered package and cannot audit it, it rejects with TAMPERED_PACKAGE whose cause is the audit error', async () => {
      const path = freshPackage('verifytamperedunaudited');
      await signBeside(path);
      writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([0])]));
      const error = await rejectsWith(pinnedLoader({ audit: failingSink('audit store offline') }).verify(path), 'TAMPERED_PACKAGE');
      expect(error).to.be.instanceOf(VerificationFailure);
      expect((error.cause as CloacinaSignError)?.code).to.equal('AUDIT_FAILED');
      expect((error.cause as Error).message).to.include('audit store offline');
    });
  });

  describe('what the audit events say', () => {
    it('when a signed package loads, its package.load.success row carries the signer, the hash and signature_verified true', async () => {
      const path = freshPackage('successrow');
      await signBeside(path);
      const pkg = await dbLoader().load(path);
      pkg.close();
      const [event] = await listAuditEvents(db, { orgId, eventType: 'package.load.success', limit: 1 });
      expect(event).to.include({
        event_type: 'package.load.success',
        org_id: orgId,
        package_path: path,
        package_hash: pkg.packageHash,
        signer_fingerprint: signer.fingerprint,
        signature_verified: true,
      });
      expect(pkg.packageHash).to.equal(await hashFile(path));
      expect(event.id).to.be.a('string');
      expect(Date.parse(event.timestamp)).to.be.a('number').and.not.NaN;
    });

    it('when an unsigned package loads with signatures not required, it is audited as package.load.success with signature_verified false and no signer', async () => {
      const path = freshPackage('unsignedrow');
      const sink = recordingSink();
      const pkg = await pinnedLoader({ audit: sink, requireSignatures: false }).load(path);
      pkg.close();
      expect(sink.events).to.have.length(1);
      expect(sink.events[0]).to.include({
        event_type: 'package.load.success',
        package_path: path,
        package_hash: await hashFile(path),
        signer_fingerprint: null,
        signature_verified: false,
      });
    });

    it('when loader.verify accepts a package, it writes verification.success with the signer and the hash', async () => {
      const path = freshPackage('verifyrow');
      await signBeside(path);
      const result = await dbLoader().verify(path);
      expect(result.signerFingerprint).to.equal(signer.fingerprint);
      const [event] = await listAuditEvents(db, { orgId, eventType: 'verification.success', limit: 1 });
      expect(event).to.include({
        event_type: 'verification.success',
        package_path: path,
        package_hash: result.packageHash,
        signer_fingerprint: signer.fingerprint,
        signature_verified: true,
      });
    });

    it('when loader.verify is asked about an unsigned package, it needs a signature even with signatures not required', async () => {
      const path = freshPackage('verifyunsigned');
      await rejectsWith(pinnedLoader({ requireSignatures: false }).verify(path), 'SIGNATURE_NOT_FOUND');
    });
  });

  describe('when SignatureSource.Auto finds a .sig beside the package and signatures stored in the database', () => {
    /** Stores a signature of `path` made by `key`, or the given fields. */
    async function store(info: Parameters<DbPackageSigner['storeSignature']>[0]): Promise<void> {
      await new DbPackageSigner(keys).storeSignature(info);
    }

    /** Leaves a .sig of an older build of the same path, then rebuilds it: the .sig is stale. */
    async function staleSigThenRebuild(name: string, markerPath?: string): Promise<string> {
      const path = freshPackage(name);
      await signBeside(path);
      return buildPackage(path, { identity: `${name}-rebuilt-${built++}`, markerPath });
    }

    /** A signature naming `signer` over this package's hash whose Ed25519 bytes are not valid for it. */
    async function forgedBySigner(path: string) {
      const genuine = await signPackage(path, signer.privateKey);
      const other = await signPackage(path, stranger.privateKey);
      return { ...genuine, signature: other.signature };
    }

    it('when the .sig is stale (an older build), it still verifies with the valid stored signature', async () => {
      const path = await staleSigThenRebuild('stale');
      await store(await signPackage(path, signer.privateKey));
      const result = await dbLoader().verify(path, { signature: SignatureSource.Auto });
      expect(result.signerFingerprint).to.equal(signer.fingerprint);
      expect(result.packageHash).to.equal(await hashFile(path));
    });

    it('when the .sig is stale (an older build), it still loads with the valid stored signature', async () => {
      const path = await staleSigThenRebuild('staleload');
      await store(await signPackage(path, signer.privateKey));
      const pkg = await dbLoader().load(path);
      try {
        expect(pkg.signerFingerprint).to.equal(signer.fingerprint);
      } finally {
        pkg.close();
      }
    });

    it('when the .sig is by an untrusted key, it still verifies with the valid stored signature', async () => {
      const path = freshPackage('untrustedsig');
      await signBeside(path, stranger);
      await store(await signPackage(path, signer.privateKey));
      const result = await dbLoader().verify(path);
      expect(result.signerFingerprint).to.equal(signer.fingerprint);
    });

    it('when none verifies, a stale .sig (TAMPERED) and a stored untrusted signature report UNTRUSTED_SIGNER', async () => {
      const path = await staleSigThenRebuild('staleuntrusted');
      await store(await signPackage(path, stranger.privateKey));
      const error = await rejectsWith(dbLoader().verify(path), 'UNTRUSTED_SIGNER');
      expect(error.message).to.include(stranger.fingerprint);
    });

    it('when none verifies, an untrusted .sig and a stored invalid signature by a trusted key report INVALID_SIGNATURE', async () => {
      const path = freshPackage('untrustedinvalid');
      await signBeside(path, stranger);
      await store(await forgedBySigner(path));
      await rejectsWith(dbLoader().verify(path), 'INVALID_SIGNATURE');
    });

    it('when none verifies, an invalid .sig by a trusted key and a stored untrusted signature report INVALID_SIGNATURE', async () => {
      const path = freshPackage('invaliduntrusted');
      await DetachedSignature.fromSignatureInfo(await forgedBySigner(path)).writeToFile(`${path}.sig`);
      await store(await signPackage(path, stranger.privateKey));
      await rejectsWith(dbLoader().verify(path), 'INVALID_SIGNATURE');
    });

    it('when none verifies and the load is refused, the load reports the furthest candidate too (UNTRUSTED_SIGNER over TAMPERED_PACKAGE)', async () => {
      const marker = dir.join('furthest-load.marker');
      const path = await staleSigThenRebuild('furthestload', marker);
      await store(await signPackage(path, stranger.privateKey));
      await rejectsWith(dbLoader().load(path), 'UNTRUSTED_SIGNER');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when the only candidate is a stale .sig, it reports TAMPERED_PACKAGE', async () => {
      const path = await staleSigThenRebuild('staleonly');
      await rejectsWith(dbLoader().verify(path), 'TAMPERED_PACKAGE');
    });

    it('when the .sig cannot be parsed, it is an error (MALFORMED_SIGNATURE) even though a valid signature is stored', async () => {
      const path = freshPackage('malformedsig');
      writeFileSync(`${path}.sig`, '{"version":1,"algorithm":"ed25519"');
      await store(await signPackage(path, signer.privateKey));
      await rejectsWith(dbLoader().verify(path), 'MALFORMED_SIGNATURE');
    });

    it('when the .sig cannot be parsed, load refuses it too (MALFORMED_SIGNATURE) and runs nothing', async () => {
      const marker = dir.join('malformed-load.marker');
      const path = freshPackage('malformedload', marker);
      writeFileSync(`${path}.sig`, 'not a signature');
      await store(await signPackage(path, signer.privateKey));
      await rejectsWith(dbLoader({ requireSignatures: false }).load(path), 'MALFORMED_SIGNATURE');
      expect(existsSync(marker)).to.equal(false);
    });
  });

  describe('when <package>.sig is a FIFO', () => {
    const fifos: string[] = [];
    afterEach(() => {
      for (const fifo of fifos.splice(0)) releaseFifo(fifo);
    });

    function plantFifo(path: string): string {
      const fifo = `${path}.sig`;
      const made = spawnSync('mkfifo', [fifo], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`mkfifo failed: ${made.stderr}`);
      fifos.push(fifo);
      return fifo;
    }

    it('when verifying, it fails quickly with UNREADABLE_FILE naming the FIFO instead of hanging', async function () {
      this.timeout(5000);
      const path = freshPackage('fifoverify');
      const fifo = plantFifo(path);
      const error = await rejectsWith(pinnedLoader().verify(path), 'UNREADABLE_FILE');
      expect(error.message).to.include('FIFO');
      expect(error.message).to.include(fifo);
    });

    it('when loading, it fails quickly with UNREADABLE_FILE naming the FIFO and runs nothing', async function () {
      this.timeout(5000);
      const marker = dir.join('fifo-load.marker');
      const path = freshPackage('fifoload', marker);
      plantFifo(path);
      const error = await rejectsWith(pinnedLoader({ requireSignatures: false }).load(path), 'UNREADABLE_FILE');
      expect(error.message).to.include('FIFO');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when verifying with database trust, it fails quickly with UNREADABLE_FILE too', async function () {
      this.timeout(5000);
      const path = freshPackage('fifodb');
      plantFifo(path);
      const error = await rejectsWith(dbLoader().verify(path), 'UNREADABLE_FILE');
      expect(error.message).to.include('FIFO');
    });
  });

  describe('when the database drivers cannot be loaded at all (test/fixtures/no-database-runner)', () => {
    const runner = join(ROOT, 'dist/test/fixtures/no-database-runner.js');
    let lines: any[];
    let status: number | null;
    let stderr: string;
    let path: string;

    before(async () => {
      path = freshPackage('nodb');
      await signBeside(path);
      const result = spawnSync(process.execPath, [runner, path, signerPub, 'stream'], { encoding: 'utf8', timeout: 60_000 });
      status = result.status;
      stderr = result.stderr;
      lines = result.stdout
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line));
    });

    it('when it loads a signed package with key-file trust, it runs the task and reports the signer and the hash', async () => {
      expect(status, `${stderr}\n${JSON.stringify(lines)}`).to.equal(0);
      const result = lines.at(-1).result;
      expect(result.output).to.deep.equal({ identity: identities.get(path) });
      expect(result.signerFingerprint).to.equal(signer.fingerprint);
      expect(result.packageHash).to.equal(await hashFile(path));
    });

    it('when it loads, it writes the package.load.success audit line to the stream', () => {
      const audit = lines.filter((line) => line.event_type !== undefined);
      expect(audit.map((line) => line.event_type)).to.deep.equal(['package.load.success']);
      expect(audit[0]).to.include({ signer_fingerprint: signer.fingerprint, signature_verified: true, package_path: path, org_id: null });
    });

    it('when it is done, no knex, pg or sqlite3 module was loaded or even asked for', () => {
      const last = lines.at(-1);
      expect(last.error, JSON.stringify(last)).to.equal(undefined);
      expect(last.result.loadedDrivers).to.deep.equal([]);
      expect(last.result.blockedAttempts).to.deep.equal([]);
    });

    it('when the audit goes to a file instead, it writes the package.load.success line there', () => {
      const auditPath = dir.join('nodb-audit.log');
      const result = spawnSync(process.execPath, [runner, path, signerPub, 'file', auditPath], { encoding: 'utf8', timeout: 60_000 });
      expect(result.status, result.stderr + result.stdout).to.equal(0);
      const fileLines = readFileSync(auditPath, 'utf8').trim().split('\n');
      expect(fileLines).to.have.length(1);
      expect(JSON.parse(fileLines[0])).to.include({ event_type: 'package.load.success', signer_fingerprint: signer.fingerprint });
      expect(JSON.parse(result.stdout.trim()).result.loadedDrivers).to.deep.equal([]);
    });
  });

  describe('publicKeyTrust', () => {
    it('when a key file is missing, it throws UNREADABLE_FILE at creation, naming the file', () => {
      const missing = dir.join('missing.pub.pem');
      const error = throwsWith(() => publicKeyTrust([signerPub, missing]), 'UNREADABLE_FILE');
      expect(error.message).to.include(missing);
    });

    it('when a file is not a key, it throws INVALID_KEY at creation, naming the file', () => {
      const bogus = dir.join('bogus.pub.pem');
      writeFileSync(bogus, 'this is not a public key\n');
      const error = throwsWith(() => publicKeyTrust([bogus]), 'INVALID_KEY');
      expect(error.message).to.include(bogus);
    });

    it('when the list is empty, it throws INVALID_INPUT at creation', () => {
      throwsWith(() => publicKeyTrust([]), 'INVALID_INPUT');
    });

    it('when a key is given as a raw 32-byte Buffer, it verifies a signature made by its private key', async () => {
      const path = freshPackage('rawbuffer');
      await signBeside(path);
      expect(signer.publicKey).to.have.length(32);
      const loader = createPackageLoader({ trust: publicKeyTrust([Buffer.from(signer.publicKey)]), audit: [] });
      const result = await loader.verify(path);
      expect(result.signerFingerprint).to.equal(signer.fingerprint);
    });

    it('when a key file holds DER or raw 32 bytes, it is trusted like the PEM file', async () => {
      const path = freshPackage('derraw');
      await signBeside(path);
      const der = dir.join('ci.pub.der');
      writeFileSync(der, createPublicKey(publicKeyToPem(signer.publicKey)).export({ type: 'spki', format: 'der' }));
      const raw = dir.join('ci.pub.raw');
      writeFileSync(raw, signer.publicKey);
      for (const keyFile of [der, raw]) {
        const result = await createPackageLoader({ trust: publicKeyTrust([keyFile]), audit: [] }).verify(path);
        expect(result.signerFingerprint, keyFile).to.equal(signer.fingerprint);
      }
    });

    it('when a key file is trusted, it loads a package signed by its private key', async () => {
      const path = freshPackage('pinnedload');
      await signBeside(path);
      const pkg = await pinnedLoader().load(path);
      try {
        expect(pkg.signerFingerprint).to.equal(signer.fingerprint);
        expect(await pkg.executeTask('whoami')).to.deep.equal({ identity: identities.get(path) });
      } finally {
        pkg.close();
      }
    });

    it('when the package is signed by another key, it refuses it with UNTRUSTED_SIGNER naming that key', async () => {
      const path = freshPackage('otherkey');
      await signBeside(path, stranger);
      const error = await rejectsWith(pinnedLoader().verify(path), 'UNTRUSTED_SIGNER');
      expect(error.message).to.include(stranger.fingerprint);
      const both = createPackageLoader({ trust: publicKeyTrust([signerPub, strangerPub]), audit: [] });
      expect((await both.verify(path)).signerFingerprint).to.equal(stranger.fingerprint);
    });
  });

  describe('requireSignatures', () => {
    it('when true and the package is unsigned, it refuses with SIGNATURE_NOT_FOUND and runs nothing', async () => {
      const marker = dir.join('strict-unsigned.marker');
      const path = freshPackage('strictunsigned', marker);
      await rejectsWith(pinnedLoader({ requireSignatures: true }).load(path), 'SIGNATURE_NOT_FOUND');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when false (the default) and the package is unsigned, it loads with signerFingerprint null', async () => {
      const path = freshPackage('lenientunsigned');
      const loader = createPackageLoader({ trust: publicKeyTrust([signerPub]), audit: [] });
      expect(loader.requireSignatures).to.equal(false);
      const pkg = await loader.load(path);
      try {
        expect(pkg.signerFingerprint).to.equal(null);
        expect(await pkg.executeTask('whoami')).to.deep.equal({ identity: identities.get(path) });
      } finally {
        pkg.close();
      }
    });

    it('when false and the package carries a signature by an untrusted key, it refuses it and runs nothing', async () => {
      const marker = dir.join('lenient-untrusted.marker');
      const path = freshPackage('lenientuntrusted', marker);
      await signBeside(path, stranger);
      await rejectsWith(pinnedLoader({ requireSignatures: false }).load(path), 'UNTRUSTED_SIGNER');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when false and the signed package was tampered with, it refuses it and runs nothing', async () => {
      const marker = dir.join('lenient-tampered.marker');
      const path = freshPackage('lenienttampered', marker);
      await signBeside(path);
      writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([0])]));
      await rejectsWith(pinnedLoader({ requireSignatures: false }).load(path), 'TAMPERED_PACKAGE');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when true and the package carries a bad signature, it refuses it and runs nothing', async () => {
      const marker = dir.join('strict-tampered.marker');
      const path = freshPackage('stricttampered', marker);
      await signBeside(path);
      writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([0])]));
      await rejectsWith(pinnedLoader({ requireSignatures: true }).load(path), 'TAMPERED_PACKAGE');
      expect(existsSync(marker)).to.equal(false);
    });
  });
});
