import { expect } from 'chai';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { generateKeypair, keySigner, signPackage, verifyPackageOffline } from '../src';
import { TamperedPackage, UntrustedSigner, VerificationFailure, SignatureNotFound, InvalidSignature } from '../src/errors';
import { DetachedSignature } from '../src/formats/v1';
import { flipBit, rejectsWith, tempDir } from './helpers';

describe('offline signing and verification', () => {
  const dir = tempDir();
  const keypair = generateKeypair();
  const packagePath = dir.join('libworkflow.so');
  const signaturePath = dir.join('libworkflow.so.sig');
  const content = randomBytes(64);

  before(async () => {
    writeFileSync(packagePath, content);
    const info = await signPackage(packagePath, keySigner(keypair.privateKey, { publicKey: keypair.publicKey }));
    await DetachedSignature.fromSignatureInfo(info).writeToFile(signaturePath);
  });
  after(() => dir.cleanup());

  describe('when the package and signature are intact', () => {
    it('it verifies and reports the hash, the signer and the signing time', async () => {
      const result = await verifyPackageOffline(packagePath, signaturePath, keypair.publicKey);
      expect(result.signerFingerprint).to.equal(keypair.fingerprint);
      expect(result.packageHash).to.have.length(64);
      expect(Date.parse(result.signedAt as string)).to.be.closeTo(Date.now(), 60_000);
    });

    it('it writes the signature beside the package as <package>.sig', () => {
      expect(DetachedSignature.defaultPath('/x/libworkflow.so')).to.equal('/x/libworkflow.so.sig');
      expect(DetachedSignature.defaultPath('pkg')).to.equal('pkg.sig');
      const document = JSON.parse(readFileSync(signaturePath, 'utf8'));
      expect(Object.keys(document)).to.deep.equal(['version', 'algorithm', 'package_hash', 'key_fingerprint', 'signature', 'signed_at']);
      expect(document.version).to.equal(1);
      expect(document.algorithm).to.equal('ed25519');
    });
  });

  describe('when any single bit of the package flips', () => {
    it('it rejects every one of them as tampered', async () => {
      const tampered = dir.join('tampered.so');
      for (let bit = 0; bit < content.length * 8; bit++) {
        writeFileSync(tampered, flipBit(content, bit));
        const error = await rejectsWith(verifyPackageOffline(tampered, signaturePath, keypair.publicKey), 'TAMPERED_PACKAGE');
        expect(error).to.be.instanceOf(TamperedPackage);
      }
    });
  });

  describe('when any single bit of the signature, the signed hash or the key fingerprint flips', () => {
    it('it rejects every one of them', async () => {
      const original = DetachedSignature.parse(readFileSync(signaturePath));
      const fields = {
        signature: Buffer.from(original.signature, 'base64'),
        packageHash: Buffer.from(original.packageHash, 'hex'),
        keyFingerprint: Buffer.from(original.keyFingerprint, 'hex'),
      };
      const encode = { signature: 'base64', packageHash: 'hex', keyFingerprint: 'hex' } as const;
      const flippedPath = dir.join('flipped.sig');
      let checked = 0;
      for (const field of Object.keys(fields) as (keyof typeof fields)[]) {
        for (let bit = 0; bit < fields[field].length * 8; bit++) {
          const changed = { ...original, [field]: flipBit(fields[field], bit).toString(encode[field]) };
          await DetachedSignature.fromSignatureInfo(changed).writeToFile(flippedPath);
          const error = await rejectsWith(
            verifyPackageOffline(packagePath, flippedPath, keypair.publicKey),
            'INVALID_SIGNATURE',
            'TAMPERED_PACKAGE',
            'UNTRUSTED_SIGNER',
          );
          expect(error).to.be.instanceOf(VerificationFailure);
          checked++;
        }
      }
      expect(checked).to.equal((64 + 32 + 32) * 8);
    });
  });

  describe('when any single bit of the public key flips', () => {
    it('it rejects every one of them as an untrusted signer or an invalid key', async () => {
      for (let bit = 0; bit < 256; bit++) {
        await rejectsWith(verifyPackageOffline(packagePath, signaturePath, flipBit(keypair.publicKey, bit)), 'UNTRUSTED_SIGNER', 'INVALID_KEY');
      }
    });
  });

  describe('when the signature was made by another key', () => {
    it('it names the signer fingerprint in an UntrustedSigner error', async () => {
      const other = generateKeypair();
      const error = await rejectsWith(verifyPackageOffline(packagePath, signaturePath, other.publicKey), 'UNTRUSTED_SIGNER');
      expect(error).to.be.instanceOf(UntrustedSigner);
      expect(error.message).to.include(keypair.fingerprint);
    });

    it('it refuses a signature whose fingerprint claims our key but whose bytes come from another key', async () => {
      const other = generateKeypair();
      const forged = await signPackage(packagePath, other.privateKey);
      const original = DetachedSignature.parse(readFileSync(signaturePath));
      await DetachedSignature.fromSignatureInfo({ ...original, signature: forged.signature }).writeToFile(dir.join('forged.sig'));
      const error = await rejectsWith(verifyPackageOffline(packagePath, dir.join('forged.sig'), keypair.publicKey), 'INVALID_SIGNATURE');
      expect(error).to.be.instanceOf(InvalidSignature);
    });
  });

  describe('when files are missing or unreadable', () => {
    it('it reports a missing signature as SignatureNotFound', async () => {
      const error = await rejectsWith(verifyPackageOffline(packagePath, dir.join('none.sig'), keypair.publicKey), 'SIGNATURE_NOT_FOUND');
      expect(error).to.be.instanceOf(SignatureNotFound);
    });

    it('it reports a missing package as UNREADABLE_FILE', async () => {
      await rejectsWith(verifyPackageOffline(dir.join('missing.so'), signaturePath, keypair.publicKey), 'UNREADABLE_FILE');
      await rejectsWith(signPackage(dir.join('missing.so'), keypair.privateKey), 'UNREADABLE_FILE');
      await rejectsWith(verifyPackageOffline(dir.path, signaturePath, keypair.publicKey), 'UNREADABLE_FILE');
    });

    it('it reports an unreadable signature file as UNREADABLE_FILE, not as missing', async () => {
      if (process.getuid?.() === 0) {
        // root reads any file regardless of mode; a directory is unreadable as a file for everyone
        await rejectsWith(verifyPackageOffline(packagePath, dir.path, keypair.publicKey), 'UNREADABLE_FILE');
        return;
      }
      const locked = dir.join('locked.sig');
      writeFileSync(locked, readFileSync(signaturePath));
      chmodSync(locked, 0);
      await rejectsWith(verifyPackageOffline(packagePath, locked, keypair.publicKey), 'UNREADABLE_FILE');
    });
  });

  describe('when the public key passed to signPackage belongs to another key', () => {
    it('it refuses to sign', async () => {
      await rejectsWith(signPackage(packagePath, keySigner(keypair.privateKey, { publicKey: generateKeypair().publicKey })), 'INVALID_KEY');
    });
  });
});
