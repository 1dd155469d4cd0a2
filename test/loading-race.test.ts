import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  auditToDatabase,
  CloacinaSignError,
  createPackageLoader,
  type Database,
  databaseTrust,
  DbKeyManager,
  generateKeypair,
  openDatabase,
  SignatureSource,
  signPackage,
} from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { buildPackage } from './fixtures';
import { tempDir } from './helpers';

const ATTEMPTS = 1000;

describe('verify-and-load under a concurrent file rewriter', () => {
  const dir = tempDir();
  let db: Database;

  after(async () => {
    await db?.close();
    dir.cleanup();
  });

  describe('when another process keeps rewriting, truncating and replacing the package file', () => {
    it(`it either runs the signed code or fails with an error, never the other code, across ${ATTEMPTS} attempts`, async () => {
      db = await openDatabase(`sqlite:${dir.join('race.db')}`, { migrate: true });
      const keys = new DbKeyManager(db);
      const orgId = (await keys.createOrganization('racers')).id;
      const signer = generateKeypair();
      await keys.trustPublicKey(orgId, signer.publicKey);
      const loader = createPackageLoader({ trust: databaseTrust(db, { org: orgId }), audit: auditToDatabase(db), requireSignatures: true });

      const signedCopy = buildPackage(dir.join('signed-copy.so'), { identity: 'signed' });
      const others = [1, 3000, 20000].map((padding) => buildPackage(dir.join(`other-${padding}.so`), { identity: 'unsigned-other', padding }));
      const info = await signPackage(signedCopy, signer.privateKey);
      const signaturePath = dir.join('signed.sig');
      await DetachedSignature.fromSignatureInfo(info).writeToFile(signaturePath);
      const target = dir.join('libcontested.so');
      copyFileSync(signedCopy, target);

      const churner = spawn(process.execPath, [join(__dirname, 'fixtures/churn.js'), target, signedCopy, ...others], { stdio: 'ignore' });
      const outcomes = { signed: 0, other: 0, refused: 0 };
      const refusals = new Map<string, number>();
      try {
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
          try {
            const pkg = await loader.load(target, { signature: SignatureSource.DetachedFile(signaturePath) });
            const output = (await pkg.executeTask('whoami')) as { identity: string };
            pkg.close();
            if (output.identity === 'signed') outcomes.signed++;
            else outcomes.other++;
          } catch (error) {
            expect(error).to.be.instanceOf(CloacinaSignError);
            const code = (error as CloacinaSignError).code;
            refusals.set(code, (refusals.get(code) ?? 0) + 1);
            outcomes.refused++;
          }
        }
      } finally {
        churner.kill('SIGKILL');
      }
      expect(outcomes.other, `the other code ran: ${JSON.stringify(outcomes)}`).to.equal(0);
      expect(outcomes.signed + outcomes.refused).to.equal(ATTEMPTS);
      expect(outcomes.signed, 'no load of the signed package succeeded').to.be.greaterThan(0);
      expect(outcomes.refused, 'the rewriter never got in the way').to.be.greaterThan(0);
      expect([...refusals.keys()]).to.include('TAMPERED_PACKAGE');
    });
  });
});
