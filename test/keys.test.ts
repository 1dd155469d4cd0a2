import { expect } from 'chai';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { generateKeypair, importPublicKey, privateKeyToPem, publicKeyToPem, signPackage, verifyPackageOffline } from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { hashFile } from '../src/hashing';
import { importPrivateKey, publicKeyFingerprint, publicKeyOf } from '../src/keys/keypair';
import { run, tempDir, throwsWith } from './helpers';
import { createHash } from 'node:crypto';

describe('keys', () => {
  describe('when a key pair is generated', () => {
    it('it has a 32-byte seed, a 32-byte public key and the SHA-256 fingerprint of the raw public key', () => {
      const keypair = generateKeypair();
      expect(keypair.privateKey).to.have.length(32);
      expect(keypair.publicKey).to.have.length(32);
      expect(keypair.fingerprint).to.equal(createHash('sha256').update(keypair.publicKey).digest('hex'));
      expect(publicKeyOf(keypair.privateKey).equals(keypair.publicKey)).to.equal(true);
      expect(generateKeypair().publicKey.equals(keypair.publicKey)).to.equal(false);
    });

    it('its PEM forms round-trip and are SPKI and PKCS#8 v1', () => {
      const keypair = generateKeypair();
      const publicPem = publicKeyToPem(keypair.publicKey);
      const privatePem = privateKeyToPem(keypair.privateKey);
      expect(publicPem).to.match(/^-----BEGIN PUBLIC KEY-----\n/);
      expect(privatePem).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(importPublicKey(publicPem).equals(keypair.publicKey)).to.equal(true);
      expect(importPrivateKey(privatePem).equals(keypair.privateKey)).to.equal(true);
      const der = createPrivateKey(privatePem).export({ format: 'der', type: 'pkcs8' });
      expect(der.subarray(0, 16).toString('hex')).to.equal('302e020100300506032b657004220420');
    });
  });

  describe('when a key is malformed or weak', () => {
    it('it refuses a small-order public key', () => {
      throwsWith(() => importPublicKey(Buffer.from('0100000000000000000000000000000000000000000000000000000000000000', 'hex')), 'INVALID_KEY');
    });

    it('it refuses wrong lengths, garbage PEM and a private key given as a public key', () => {
      throwsWith(() => importPublicKey(Buffer.alloc(31)), 'INVALID_KEY');
      throwsWith(() => importPublicKey('-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n'), 'INVALID_KEY');
      throwsWith(() => importPublicKey(privateKeyToPem(generateKeypair().privateKey)), 'INVALID_KEY');
      throwsWith(() => importPrivateKey(publicKeyToPem(generateKeypair().publicKey)), 'INVALID_KEY');
    });

    it('it never puts private key material in the error message', () => {
      const keypair = generateKeypair();
      const pem = privateKeyToPem(keypair.privateKey);
      try {
        importPublicKey(pem);
        expect.fail('accepted a private key as a public key');
      } catch (error) {
        const message = (error as Error).message;
        expect(message).not.to.include(keypair.privateKey.toString('hex'));
        expect(message).not.to.include(pem.split('\n')[1]);
      }
    });
  });

  describe('when key input is truncated PEM, raw bytes or neither (the raw/PEM rule)', () => {
    // A PEM, however truncated, is only ever read as PEM; a raw key is exactly 32 bytes that do not look like PEM or DER.
    const keypair = generateKeypair();
    const publicPem = publicKeyToPem(keypair.publicKey);
    const privatePem = privateKeyToPem(keypair.privateKey);

    it('it refuses a PEM cut to exactly 32 bytes as an incomplete PEM, not a raw key', () => {
      const cutPublic = Buffer.from(publicPem).subarray(0, 32);
      const cutPrivate = Buffer.from(privatePem).subarray(0, 32);
      expect(cutPublic.toString()).to.equal('-----BEGIN PUBLIC KEY-----\nMCowB');
      expect(throwsWith(() => importPublicKey(cutPublic), 'INVALID_KEY').message).to.include('incomplete or invalid PEM');
      expect(throwsWith(() => importPrivateKey(cutPrivate), 'INVALID_KEY').message).to.include('incomplete or invalid PEM');
      expect(throwsWith(() => importPublicKey(cutPublic.toString()), 'INVALID_KEY').message).to.include('incomplete or invalid PEM');
    });

    it('it refuses every truncation of a PEM', () => {
      for (const pem of [publicPem, privatePem]) {
        const importer = pem === publicPem ? importPublicKey : importPrivateKey;
        for (let n = 1; n < pem.trimEnd().length; n++) {
          throwsWith(() => importer(pem.slice(0, n)), 'INVALID_KEY');
        }
      }
    });

    it('it refuses a PEM without its END line, saying so', () => {
      const error = throwsWith(() => importPublicKey(publicPem.replace('-----END PUBLIC KEY-----\n', '')), 'INVALID_KEY');
      expect(error.message).to.include('no -----END PUBLIC KEY----- line');
    });

    it('it says when a private key is given as a public key and vice versa, in PEM and DER', () => {
      expect(throwsWith(() => importPublicKey(privatePem), 'INVALID_KEY').message).to.include('this is a private key, not a public key');
      expect(throwsWith(() => importPrivateKey(publicPem), 'INVALID_KEY').message).to.include('this is a public key, not a private key');
      const privateDer = createPrivateKey(privatePem).export({ format: 'der', type: 'pkcs8' });
      const publicDer = createPublicKey(publicPem).export({ format: 'der', type: 'spki' });
      expect(throwsWith(() => importPublicKey(privateDer), 'INVALID_KEY').message).to.include('private key (PKCS#8), expected a public key');
      expect(throwsWith(() => importPrivateKey(publicDer), 'INVALID_KEY').message).to.include('public key (SubjectPublicKeyInfo), expected a private key');
    });

    it('it reads 32 bytes of printable ASCII that do not start with ----- as a raw key', () => {
      const raw = Buffer.from('not a PEM, just 32 ASCII bytes!!');
      expect(raw).to.have.length(32);
      expect(importPrivateKey(raw).equals(raw)).to.equal(true);
    });

    it('it refuses 31 and 33 bytes, with a hint for a trailing newline', () => {
      throwsWith(() => importPublicKey(keypair.publicKey.subarray(0, 31)), 'INVALID_KEY');
      throwsWith(() => importPrivateKey(keypair.privateKey.subarray(0, 31)), 'INVALID_KEY');
      throwsWith(() => importPublicKey(Buffer.concat([keypair.publicKey, Buffer.from([0])])), 'INVALID_KEY');
      const error = throwsWith(() => importPrivateKey(Buffer.concat([keypair.privateKey, Buffer.from('\n')])), 'INVALID_KEY');
      expect(error.message).to.include('trailing newline');
      expect(error.message).not.to.include(keypair.privateKey.toString('hex'));
    });
  });

  describe('when keys and signatures come from node:crypto', () => {
    it('it verifies a package signed by node:crypto (as Cloacina signs: the raw digest)', async () => {
      const dir = tempDir();
      try {
        const { privateKey, publicKey } = generateKeyPairSync('ed25519');
        writeFileSync(dir.join('pkg.so'), 'workflow package bytes');
        const digest = Buffer.from(await hashFile(dir.join('pkg.so')), 'hex');
        const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
        const signature = DetachedSignature.fromSignatureInfo({
          packageHash: digest.toString('hex'),
          keyFingerprint: publicKeyFingerprint(publicPem),
          signature: nodeSign(null, digest, privateKey).toString('base64'),
          signedAt: '2026-01-02T03:04:05.678Z',
        });
        await signature.writeToFile(dir.join('pkg.so.sig'));
        const result = await verifyPackageOffline(dir.join('pkg.so'), dir.join('pkg.so.sig'), publicPem);
        expect(result.packageHash).to.equal(digest.toString('hex'));
        expect(importPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())).to.have.length(32);
      } finally {
        dir.cleanup();
      }
    });

    it('it produces keys and signatures node:crypto accepts', async () => {
      const dir = tempDir();
      try {
        const keypair = generateKeypair();
        writeFileSync(dir.join('pkg.so'), 'another package');
        const info = await signPackage(dir.join('pkg.so'), keypair.privateKey);
        const nodePublic = createPublicKey(publicKeyToPem(keypair.publicKey));
        const nodePrivate = createPrivateKey(privateKeyToPem(keypair.privateKey));
        const digest = Buffer.from(info.packageHash, 'hex');
        expect(nodeVerify(null, digest, nodePublic, Buffer.from(info.signature, 'base64'))).to.equal(true);
        expect(nodeSign(null, digest, nodePrivate).toString('base64')).to.equal(info.signature);
      } finally {
        dir.cleanup();
      }
    });
  });

  describe('when keys and signatures come from the openssl command', () => {
    it('it verifies a package signed with openssl pkeyutl', async () => {
      const dir = tempDir();
      try {
        run('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', dir.join('k.pem')]);
        run('openssl', ['pkey', '-in', dir.join('k.pem'), '-pubout', '-out', dir.join('p.pem')]);
        writeFileSync(dir.join('pkg.so'), 'openssl signed package');
        const digest = Buffer.from(await hashFile(dir.join('pkg.so')), 'hex');
        writeFileSync(dir.join('digest.bin'), digest);
        run('openssl', ['pkeyutl', '-sign', '-inkey', dir.join('k.pem'), '-rawin', '-in', dir.join('digest.bin'), '-out', dir.join('sig.bin')]);
        const publicPem = readFileSync(dir.join('p.pem'), 'utf8');
        await DetachedSignature.fromSignatureInfo({
          packageHash: digest.toString('hex'),
          keyFingerprint: publicKeyFingerprint(publicPem),
          signature: readFileSync(dir.join('sig.bin')).toString('base64'),
          signedAt: '2026-01-02T03:04:05Z',
        }).writeToFile(dir.join('pkg.so.sig'));
        await verifyPackageOffline(dir.join('pkg.so'), dir.join('pkg.so.sig'), publicPem);
        expect(publicKeyOf(readFileSync(dir.join('k.pem'), 'utf8')).equals(importPublicKey(publicPem))).to.equal(true);
      } finally {
        dir.cleanup();
      }
    });

    it('it writes keys openssl reads and signatures openssl verifies', async () => {
      const dir = tempDir();
      try {
        const keypair = generateKeypair();
        writeFileSync(dir.join('k.pem'), privateKeyToPem(keypair.privateKey));
        writeFileSync(dir.join('p.pem'), publicKeyToPem(keypair.publicKey));
        const derivedPub = run('openssl', ['pkey', '-in', dir.join('k.pem'), '-pubout']);
        expect(derivedPub).to.equal(publicKeyToPem(keypair.publicKey));
        writeFileSync(dir.join('pkg.so'), 'package for openssl');
        const info = await signPackage(dir.join('pkg.so'), readFileSync(dir.join('k.pem'), 'utf8'));
        writeFileSync(dir.join('digest.bin'), Buffer.from(info.packageHash, 'hex'));
        writeFileSync(dir.join('sig.bin'), Buffer.from(info.signature, 'base64'));
        const out = run('openssl', [
          'pkeyutl',
          '-verify',
          '-pubin',
          '-inkey',
          dir.join('p.pem'),
          '-rawin',
          '-in',
          dir.join('digest.bin'),
          '-sigfile',
          dir.join('sig.bin'),
        ]);
        expect(out).to.match(/Signature Verified Successfully/);
      } finally {
        dir.cleanup();
      }
    });
  });
});
