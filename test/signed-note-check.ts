// The signed-note check of c2sp.org/signed-note, written from the text of the spec with node:crypto alone:
// an independent check of the checkpoints cloacina-sign signs (in Rust) and verifies (in TypeScript).
import { createHash, createPublicKey, verify } from 'node:crypto';
import { expect } from 'chai';

/** Checks that `note` carries one valid Ed25519 signature of `name` with `rawPublicKey`; returns its text and lines. */
export function verifyNoteIndependently(note: string, name: string, rawPublicKey: Buffer): { text: string; lines: string[] } {
  const split = note.lastIndexOf('\n\n');
  const text = note.slice(0, split + 1);
  const signatures = note
    .slice(split + 2)
    .split('\n')
    .filter((line) => line !== '');
  const keyId = createHash('sha256')
    .update(Buffer.concat([Buffer.from(name), Buffer.from([0x0a, 0x01]), rawPublicKey]))
    .digest()
    .subarray(0, 4);
  const spki = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), rawPublicKey]), format: 'der', type: 'spki' });
  const mine = signatures.filter((line) => line.startsWith(`\u2014 ${name} `));
  expect(mine).to.have.length(1);
  const bytes = Buffer.from(mine[0].split(' ')[2], 'base64');
  expect(bytes.subarray(0, 4).equals(keyId), 'key ID').to.equal(true);
  expect(verify(null, Buffer.from(text), spki, bytes.subarray(4)), 'Ed25519 signature').to.equal(true);
  return { text, lines: text.slice(0, -1).split('\n') };
}
