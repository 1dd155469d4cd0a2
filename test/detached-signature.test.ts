import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { DetachedSignature } from '../src/formats/v1';
import { MalformedSignature } from '../src/errors';
import { MAX_SIGNATURE_FILE_BYTES } from '../src/native';
import { tempDir } from './helpers';

const valid = {
  version: 1,
  algorithm: 'ed25519',
  package_hash: 'a'.repeat(64),
  key_fingerprint: 'b'.repeat(64),
  signature: Buffer.alloc(64, 7).toString('base64'),
  signed_at: '2026-11-21T10:00:00Z',
};
const validText = JSON.stringify(valid);

function expectMalformed(document: string | Buffer, mentions: RegExp): void {
  try {
    DetachedSignature.parse(document);
  } catch (error) {
    expect(error).to.be.instanceOf(MalformedSignature);
    expect((error as Error).message).to.match(mentions);
    return;
  }
  expect.fail(`accepted a malformed signature: ${document.toString().slice(0, 200)}`);
}

const withField = (name: string, value: unknown) => JSON.stringify({ ...valid, [name]: value });
const without = (name: string) => JSON.stringify({ ...valid, [name]: undefined });

describe('detached signature documents', () => {
  describe('when the document is valid', () => {
    it('it parses and writes back the same canonical document', () => {
      const signature = DetachedSignature.parse(validText);
      expect(signature.packageHash).to.equal(valid.package_hash);
      expect(signature.keyFingerprint).to.equal(valid.key_fingerprint);
      expect(signature.signedAt).to.equal(valid.signed_at);
      expect(signature.toString()).to.equal(validText);
    });

    it('it accepts any field order and surrounding JSON whitespace', () => {
      const reordered = JSON.stringify(Object.fromEntries(Object.entries(valid).reverse()), null, 2);
      expect(DetachedSignature.parse(`\n ${reordered}\n\n`).toString()).to.equal(validText);
    });
  });

  describe('when the document is malformed', () => {
    const cases: [string, string | Buffer, RegExp][] = [
      ['unknown version', withField('version', 2), /version/],
      ['version as a string', withField('version', '1'), /version/],
      ['unknown algorithm', withField('algorithm', 'rsa'), /algorithm/],
      ['uppercase hex hash', withField('package_hash', 'A'.repeat(64)), /package_hash/],
      ['short hash', withField('package_hash', 'a'.repeat(62)), /package_hash/],
      ['non-hex fingerprint', withField('key_fingerprint', 'z'.repeat(64)), /key_fingerprint/],
      ['bad base64', withField('signature', '!!!!'), /signature/],
      ['url-safe base64', withField('signature', Buffer.alloc(64, 0xfb).toString('base64url')), /signature/],
      ['63-byte signature', withField('signature', Buffer.alloc(63).toString('base64')), /signature/],
      ['65-byte signature', withField('signature', Buffer.alloc(65).toString('base64')), /signature/],
      ['not a date', withField('signed_at', 'yesterday'), /signed_at/],
      ['not UTC', withField('signed_at', '2026-11-21T10:00:00+02:00'), /signed_at/],
      ['impossible date', withField('signed_at', '2026-13-21T10:00:00Z'), /signed_at/],
      ['missing field', without('signature'), /signature/],
      ['missing version', without('version'), /version/],
      ['unknown field', withField('comment', 'hi'), /comment/],
      ['duplicated field', validText.replace('"version":1,', '"version":1,"version":1,'), /duplicate/],
      ['duplicated hash', validText.replace('}', `,"package_hash":"${'c'.repeat(64)}"}`), /duplicate/],
      ['trailing bytes', `${validText}x`, /trailing/],
      ['a second document', `${validText}${validText}`, /trailing/],
      ['not JSON', 'hello', /JSON/],
      ['an array', '[]', /object/],
      ['null', 'null', /object/],
      ['empty', '', /JSON|empty/],
      ['not UTF-8', Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), /UTF-8/],
      ['null hash', withField('package_hash', null), /package_hash/],
    ];

    for (const [name, document, mentions] of cases) {
      it(`it rejects ${name} as MalformedSignature saying what is wrong`, () => expectMalformed(document, mentions));
    }

    it('it rejects a file over 64 KiB without parsing it', async () => {
      const dir = tempDir();
      try {
        writeFileSync(dir.join('big.sig'), validText + ' '.repeat(MAX_SIGNATURE_FILE_BYTES));
        let caught: unknown;
        await DetachedSignature.readFromFile(dir.join('big.sig')).catch((error) => (caught = error));
        expect(caught).to.be.instanceOf(MalformedSignature);
        expect((caught as Error).message).to.match(/65536/);
      } finally {
        dir.cleanup();
      }
    });

    it('it never crashes and never passes on any truncation or byte change of a valid document', () => {
      const bytes = Buffer.from(validText);
      for (let length = 0; length < bytes.length; length++) expectMalformed(bytes.subarray(0, length), /./);
      for (let index = 0; index < bytes.length; index++) {
        for (const value of [0x00, 0x22, 0x7b, 0x7d, 0x2c, 0xff, 0x20]) {
          const changed = Buffer.from(bytes);
          changed[index] = value;
          try {
            const parsed = DetachedSignature.parse(changed);
            expect(DetachedSignature.parse(parsed.toString()).toString()).to.equal(parsed.toString());
          } catch (error) {
            expect(error).to.be.instanceOf(MalformedSignature);
          }
        }
      }
    });
  });
});
