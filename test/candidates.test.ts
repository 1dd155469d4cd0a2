// The candidates of a package: each signature document paired with the trusted key it can be verified
// with (the one its fingerprint names; for a cosign signature, every trusted ECDSA P-256 key, in order).
import { expect } from 'chai';
import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { generateKeypair, publicKeyTrust, signPackage } from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { type DocumentInfo, native } from '../src/native';
import { candidatesFor } from '../src/verification/candidates';
import { type EcKey, ecKey, signDer } from './fixtures/cosign-key';
import { rejectsWith, tempDir } from './helpers';

/** The stored form of a P-256 key: its SPKI DER. */
function spki(key: EcKey): Buffer {
  return createPublicKey(readFileSync(key.publicKey)).export({ type: 'spki', format: 'der' });
}

describe('pairing signatures with trusted keys', function () {
  this.timeout(60_000);
  const dir = tempDir();
  after(() => dir.cleanup());
  const signer = generateKeypair();
  const stranger = generateKeypair();
  let first: EcKey;
  let second: EcKey;
  let v1: DocumentInfo;
  let cosign: DocumentInfo;

  before(async () => {
    first = ecKey(dir.join('first'));
    second = ecKey(dir.join('second'));
    const pkg = dir.join('p.so');
    writeFileSync(pkg, randomBytes(4096));
    v1 = native.parseSignatureDocument(Buffer.from(DetachedSignature.fromSignatureInfo(await signPackage(pkg, signer.privateKey)).toString()));
    cosign = native.parseSignatureDocument(Buffer.from(signDer(pkg, first).toString('base64')));
  });

  it('when a document names a trusted key, its one candidate carries that key', async () => {
    const candidates = await candidatesFor([v1], null, publicKeyTrust([stranger.publicKey, signer.publicKey]));
    expect(candidates.map((c) => c.publicKey?.toString('hex'))).to.deep.equal([signer.publicKey.toString('hex')]);
  });

  it('when a document names a key that is not trusted, its one candidate carries none', async () => {
    const candidates = await candidatesFor([v1], null, publicKeyTrust([stranger.publicKey]));
    expect(candidates).to.have.length(1);
    expect(candidates[0].publicKey).to.equal(undefined);
  });

  it('when P-256 keys are trusted, a cosign signature makes one candidate per P-256 key, in the trust order', async () => {
    const candidates = await candidatesFor([cosign], null, publicKeyTrust([second.publicKey, signer.publicKey, first.publicKey]));
    expect(candidates.map((c) => c.publicKey?.toString('hex'))).to.deep.equal([spki(second).toString('hex'), spki(first).toString('hex')]);
    expect(candidates.every((c) => c.document.toString() === cosign.canonical)).to.equal(true);
  });

  it('when no P-256 key is trusted, a cosign signature makes one candidate without a key', async () => {
    const candidates = await candidatesFor([cosign], null, publicKeyTrust([signer.publicKey]));
    expect(candidates).to.have.length(1);
    expect(candidates[0].publicKey).to.equal(undefined);
  });

  it('when documents of several kinds are given, their candidates keep the documents order', async () => {
    const candidates = await candidatesFor([cosign, v1], null, publicKeyTrust([first.publicKey, signer.publicKey]));
    expect(candidates.map((c) => c.document.toString())).to.deep.equal([cosign.canonical, v1.canonical]);
  });

  it('when a document does not parse, pairing refuses it with MALFORMED_SIGNATURE', async () => {
    const trust = publicKeyTrust([signer.publicKey]);
    const stored = { ...trust, storedSignatures: async () => [Buffer.from('{"version":1}')] };
    await rejectsWith(candidatesFor([], 'a'.repeat(64), stored), 'MALFORMED_SIGNATURE');
  });
  it('when a trust source of its own changes its key map in place, the next pairing sees the change', async () => {
    // Pairings are reused only for what database trust's caches loaded; any other source is paired anew every time.
    const stored = [Buffer.from(v1.canonical)];
    const trusted = new Map([['signer', { publicKey: signer.publicKey }]]);
    const source = { organization: async () => null, trustedKeys: async () => trusted, storedSignatures: async () => stored };
    const before = await candidatesFor([], 'ab'.repeat(32), source);
    expect(before[0].publicKey?.toString('hex')).to.equal(signer.publicKey.toString('hex'));
    trusted.delete('signer');
    const after = await candidatesFor([], 'ab'.repeat(32), source);
    expect(after).to.have.length(1);
    expect(after[0].publicKey).to.equal(undefined);
  });
});
