import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
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
  publicKeyTrust,
  signPackage,
  writeKeypairFiles,
} from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { TamperedPackage, UntrustedSigner } from '../src/errors';
import { tempDir } from './helpers';

/** A sink that keeps every event. */
function recordingSink(): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, write: async (event) => void events.push(event) };
}

describe('verifying many packages in one call (loader.verifyMany)', () => {
  const dir = tempDir();
  let signer: Keypair;
  let stranger: Keypair;
  let signerPub: string;
  let db: Database;
  let orgId: string;
  /** Packages signed by `signer`, a `.sig` beside each. */
  const good: string[] = [];
  let tampered: string;
  let unsigned: string;
  let byStranger: string;

  async function signedPackage(name: string, key: Keypair): Promise<string> {
    const path = dir.join(name);
    writeFileSync(path, `package ${name}\n`.repeat(64));
    await DetachedSignature.fromSignatureInfo(await signPackage(path, key.privateKey)).writeToFile(DetachedSignature.defaultPath(path));
    return path;
  }

  before(async () => {
    signer = generateKeypair();
    stranger = generateKeypair();
    signerPub = (await writeKeypairFiles(signer, dir.join('ci.pem'))).publicKeyPath;
    for (let index = 0; index < 40; index += 1) good.push(await signedPackage(`good-${index}.so`, signer));
    tampered = await signedPackage('tampered.so', signer);
    writeFileSync(tampered, 'changed after signing\n', { flag: 'a' });
    unsigned = dir.join('unsigned.so');
    writeFileSync(unsigned, 'never signed\n');
    byStranger = await signedPackage('stranger.so', stranger);
    db = await openDatabase(`sqlite:${dir.join('trust.db')}`, { migrate: true });
    const keys = new DbKeyManager(db);
    orgId = (await keys.createOrganization('runners')).id;
    await keys.trustPublicKey(orgId, signer.publicKey, 'ci');
  });
  after(async () => {
    await db.close();
    dir.cleanup();
  });

  const mixed = () => [good[0], tampered, good[1], unsigned, byStranger, ...good.slice(2)];

  it('when every package verifies with pinned keys, each outcome is its result, in the order given', async () => {
    const loader = createPackageLoader({ trust: publicKeyTrust([signerPub]), audit: [] });
    const outcomes = await loader.verifyMany(good);
    expect(outcomes.map((outcome) => outcome.path)).to.deep.equal(good);
    for (const [index, outcome] of outcomes.entries()) {
      expect(outcome.error).to.equal(undefined);
      expect(outcome.verified).to.deep.equal(await loader.verify(good[index]));
    }
  });

  it('when some packages fail, each failure is an outcome with the typed error verify throws, and the others still verify', async () => {
    const loader = createPackageLoader({ trust: publicKeyTrust([signerPub]), audit: [] });
    const outcomes = await loader.verifyMany(mixed());
    expect(outcomes.map((outcome) => outcome.path)).to.deep.equal(mixed());
    expect(outcomes[1].error).to.be.instanceOf(TamperedPackage);
    expect((outcomes[3].error as CloacinaSignError).code).to.equal('SIGNATURE_NOT_FOUND');
    expect(outcomes[4].error).to.be.instanceOf(UntrustedSigner);
    for (const index of [1, 3, 4]) {
      const alone = await loader.verify(mixed()[index]).catch((error: CloacinaSignError) => error);
      expect((outcomes[index].error as CloacinaSignError).code).to.equal((alone as CloacinaSignError).code);
      expect(outcomes[index].error!.message).to.equal((alone as Error).message);
    }
    const verified = outcomes.filter((outcome) => outcome.verified).map((outcome) => outcome.path);
    expect(verified).to.deep.equal([good[0], ...good.slice(1)]);
  });

  it('when it decides, every package is audited as its own verification.success or verification.failure, in the order given', async () => {
    const sink = recordingSink();
    const loader = createPackageLoader({ trust: publicKeyTrust([signerPub]), audit: sink });
    const outcomes = await loader.verifyMany(mixed());
    expect(sink.events.map((event) => event.package_path)).to.deep.equal(mixed());
    expect(sink.events.map((event) => event.event_type)).to.deep.equal(
      outcomes.map((outcome) => (outcome.verified ? 'verification.success' : 'verification.failure')),
    );
    expect(sink.events[1].reason).to.match(/^TAMPERED_PACKAGE: /);
    expect(sink.events[0]).to.include({ package_hash: outcomes[0].verified!.packageHash, signature_verified: true });
  });

  it('when a verification cannot be audited, that package fails with AUDIT_FAILED and does not count as verified', async () => {
    const loader = createPackageLoader({ trust: publicKeyTrust([signerPub]), audit: { write: () => Promise.reject(new Error('the audit disk is full')) } });
    const outcomes = await loader.verifyMany(good.slice(0, 3));
    for (const outcome of outcomes) {
      expect(outcome.verified).to.equal(undefined);
      expect((outcome.error as CloacinaSignError).code).to.equal('AUDIT_FAILED');
    }
  });

  it('when a format is required, each package is checked on its verified bytes as verify checks it (a text file is not a shared library)', async () => {
    const loader = createPackageLoader({ trust: publicKeyTrust([signerPub]), audit: [] });
    const outcomes = await loader.verifyMany(good.slice(0, 2), { format: 'elf' });
    for (const outcome of outcomes) expect((outcome.error as CloacinaSignError).code).to.equal('NOT_A_SHARED_LIBRARY');
  });

  it('when trust is an organization in a database, the outcomes are those of verify, audited in the database', async () => {
    const loader = createPackageLoader({ trust: databaseTrust(db, { org: orgId }), audit: auditToDatabase(db) });
    const outcomes = await loader.verifyMany(mixed());
    for (const [index, path] of mixed().entries()) {
      const alone = await loader.verify(path).then(
        (result) => ({ result }),
        (error: CloacinaSignError) => ({ code: error.code }),
      );
      if ('result' in alone) expect(outcomes[index].verified).to.deep.equal(alone.result);
      else expect((outcomes[index].error as CloacinaSignError).code).to.equal(alone.code);
    }
  });

  it('when no package is given, it resolves to no outcome', async () => {
    const loader = createPackageLoader({ trust: publicKeyTrust([signerPub]), audit: [] });
    expect(await loader.verifyMany([])).to.deep.equal([]);
  });

  it('when the trust cannot be read, every package fails with the error verify gives, audited, and none verifies', async () => {
    const down = () => Promise.reject(new CloacinaSignError('DATABASE_UNAVAILABLE', 'the trust store is down'));
    const sink = recordingSink();
    const loader = createPackageLoader({ trust: { organization: () => Promise.resolve(null), trustedKeys: down }, audit: sink });
    const outcomes = await loader.verifyMany(good.slice(0, 3));
    for (const outcome of outcomes) {
      expect(outcome.verified).to.equal(undefined);
      expect((outcome.error as CloacinaSignError).code).to.equal('DATABASE_UNAVAILABLE');
    }
    expect(sink.events.map((event) => event.event_type)).to.deep.equal(Array(3).fill('verification.failure'));
  });
});
