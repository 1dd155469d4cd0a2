// verify(path, { maxPackageBytes }) takes the size limit as createPackageLoader does: a non-negative
// integer, anything else INVALID_INPUT before the file is read.
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { createPackageLoader, generateKeypair, publicKeyToPem, publicKeyTrust, signPackage } from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { buildPackage } from './fixtures';
import { rejectsWith, tempDir } from './helpers';

describe('the size limit of one verification', function () {
  this.timeout(60_000);
  const dir = tempDir();
  after(() => dir.cleanup());
  let packagePath: string;
  let loader: ReturnType<typeof createPackageLoader>;

  before(async () => {
    const keypair = generateKeypair();
    const pem = dir.join('k.pub.pem');
    writeFileSync(pem, publicKeyToPem(keypair.publicKey));
    packagePath = buildPackage(dir.join('p.so'));
    await DetachedSignature.fromSignatureInfo(await signPackage(packagePath, keypair.privateKey)).writeToFile(`${packagePath}.sig`);
    loader = createPackageLoader({ trust: publicKeyTrust([pem]), requireSignatures: true, audit: [] });
  });

  for (const limit of [1.5, '100', 2 ** 64]) {
    it(`when maxPackageBytes is ${JSON.stringify(limit)}, verify refuses it with INVALID_INPUT`, async () => {
      const error = await rejectsWith(loader.verify(packagePath, { maxPackageBytes: limit as number }), 'INVALID_INPUT');
      expect(error.message).to.contain('maxPackageBytes');
    });
  }

  it('when maxPackageBytes is a whole number above the size, verify accepts the package', async () => {
    expect((await loader.verify(packagePath, { maxPackageBytes: 10_000_000 })).packageHash).to.match(/^[0-9a-f]{64}$/);
  });
});
