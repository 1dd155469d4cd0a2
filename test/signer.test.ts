import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import { generateKeypair, keySigner, type Signer, signPackage, verifyPackageOffline } from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { hashFile } from '../src/hashing';
import { signedStatementOf } from '../src/formats/v2';
import { signElsewhere } from '../src/signing/native-signing';
import { rejectsWith, tempDir } from './helpers';

describe('signers', () => {
  const dir = tempDir();
  const keypair = generateKeypair();
  const packagePath = dir.join('libsigner.so');
  before(() => writeFileSync(packagePath, randomBytes(4096)));
  after(() => dir.cleanup());

  it('when a package is given by its digest, it signs the same digest the file has', async () => {
    const sha256 = await hashFile(packagePath);
    const signed = await signPackage({ digests: { sha256 } }, keySigner(keypair.privateKey));
    expect(signed.packageHash).to.equal(sha256);
    writeFileSync(`${packagePath}.sig`, `${signed.document}\n`);
    const verified = await verifyPackageOffline(packagePath, `${packagePath}.sig`, keypair.publicKey);
    expect(verified.packageHash).to.equal(sha256);
  });

  it('when a signer of its own is given, signPackage uses it for version 2 as for version 1', async () => {
    const asked: number[] = [];
    const inner = keySigner(keypair.privateKey);
    const counting: Signer = {
      sign: (request) => {
        asked.push(request.document.version);
        return inner.sign(request);
      },
    };
    const v1 = await signPackage(packagePath, counting);
    const v2 = await signPackage(packagePath, counting, { format: 'v2', statement: { name: 'signer', version: '1.0.0' } });
    expect(asked).to.deep.equal([1, 2]);
    expect(DetachedSignature.parse(v1.document).keyFingerprint).to.equal(v2.keyFingerprint);
    expect(signedStatementOf(v2.document).statement.name).to.equal('signer');
  });

  it('when a version-2 statement is asked of a package given without its statement digest, it is INVALID_INPUT', async () => {
    const sha256 = await hashFile(packagePath);
    await rejectsWith(
      signPackage({ digests: { size: 4096, sha256 } }, keySigner(keypair.privateKey), { format: 'v2', statement: { name: 'signer', version: '1.0.0' } }),
      'INVALID_INPUT',
    );
  });

  describe('when the key is held elsewhere (a token signs the message prepared here)', () => {
    const held = generateKeyPairSync('ed25519');
    const rawPublicKey = held.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const heldSigner = (sign: (message: Buffer) => Promise<Uint8Array>): Signer => ({
      sign: async (request) => ({ document: await signElsewhere(request, rawPublicKey, sign) }),
    });
    const tokenSigns = async (message: Buffer) => cryptoSign(null, message, held.privateKey);

    it('it makes version-1 and version-2 documents that verify against its public key', async () => {
      for (const options of [{}, { format: 'v2', statement: { name: 'held', version: '2.0.0' } }] as const) {
        const signed = await signPackage(packagePath, heldSigner(tokenSigns), options);
        const signaturePath = dir.join(`held-${'format' in options ? 'v2' : 'v1'}.sig`);
        writeFileSync(signaturePath, `${signed.document}\n`);
        const verified = await verifyPackageOffline(packagePath, signaturePath, rawPublicKey);
        expect(verified.signerFingerprint).to.equal(createHash('sha256').update(rawPublicKey).digest('hex'));
      }
    });

    it('when the token answers a signature that does not verify, nothing is made and it is INVALID_SIGNATURE', async () => {
      await rejectsWith(
        signPackage(
          packagePath,
          heldSigner(async () => randomBytes(64)),
        ),
        'INVALID_SIGNATURE',
      );
    });
  });
});
