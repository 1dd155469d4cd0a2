import { expect } from 'chai';
import { importPublicKey } from '../src';
import { publicKeyOf } from '../src/keys/keypair';
import { readVector } from './helpers';
import { testHooks } from './test-addon';

describe('conformance vectors', () => {
  describe('when checking every Wycheproof Ed25519 case through our strict verify', () => {
    const vectors = readVector('wycheproof/ed25519_test.json');
    const cases = vectors.testGroups.flatMap((group: any) => group.tests.map((test: any) => ({ publicKey: group.publicKey.pk as string, ...test })));

    it('it reads a non-empty set of cases from the file', () => {
      expect(cases.length).to.be.greaterThan(0);
    });

    it('it gives the expected verdict for every case', () => {
      const mismatches: string[] = [];
      for (const test of cases) {
        let verdict = 'valid';
        try {
          testHooks.verifyMessage(Buffer.from(test.publicKey, 'hex'), Buffer.from(test.msg, 'hex'), Buffer.from(test.sig, 'hex'));
        } catch (error: any) {
          expect(error.code).to.be.oneOf(['INVALID_SIGNATURE', 'INVALID_KEY']);
          verdict = 'invalid';
        }
        if (verdict !== test.result) mismatches.push(`tcId ${test.tcId}: expected ${test.result}, got ${verdict}`);
      }
      expect(mismatches).to.deep.equal([]);
    });
  });

  describe('when checking the RFC 8032 section 7.1 vectors', () => {
    const rfc8032 = [
      {
        secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
        public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
        message: '',
        signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
      },
      {
        secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
        public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
        message: '72',
        signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
      },
      {
        secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
        public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
        message: 'af82',
        signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
      },
    ];

    for (const [index, vector] of rfc8032.entries()) {
      it(`it derives the public key and accepts the signature of TEST ${index + 1}`, () => {
        expect(publicKeyOf(Buffer.from(vector.secret, 'hex')).toString('hex')).to.equal(vector.public);
        expect(importPublicKey(Buffer.from(vector.public, 'hex')).toString('hex')).to.equal(vector.public);
        testHooks.verifyMessage(Buffer.from(vector.public, 'hex'), Buffer.from(vector.message, 'hex'), Buffer.from(vector.signature, 'hex'));
      });
    }
  });
});
