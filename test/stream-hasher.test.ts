// The native stream hasher behind uploads: the JS thread copies reads in, a Rust thread hashes them.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { CloacinaSignError } from '../src/errors';
import { NativeStreamHasher, nativeMethods } from '../src/native';

describe('the upload stream hasher', () => {
  it('when bytes arrive in chunks of every size, the digest is the SHA-256 of their concatenation', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 12_345);
    for (const size of [13, 4096, 65_536, 1024 * 1024 - 1, 1024 * 1024, 2 * 1024 * 1024 + 1]) {
      const hasher = new NativeStreamHasher();
      for (let offset = 0; offset < data.length; offset += size) hasher.update(data.subarray(offset, offset + size));
      expect(await nativeMethods.streamHasherFinish(hasher), `chunks of ${size}`).to.equal(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('when nothing is fed, the digest is that of no bytes', async () => {
    expect(await nativeMethods.streamHasherFinish(new NativeStreamHasher())).to.equal(createHash('sha256').digest('hex'));
  });

  it('when fed faster than it hashes, update asks to wait, and room() resolves once it has caught up', async () => {
    const chunk = randomBytes(1024 * 1024);
    const hasher = new NativeStreamHasher();
    let waits = 0;
    for (let i = 0; i < 96; i += 1) {
      if (!hasher.update(chunk)) {
        waits += 1;
        await hasher.room();
      }
    }
    expect(waits).to.be.greaterThan(0);
    const reference = createHash('sha256');
    for (let i = 0; i < 96; i += 1) reference.update(chunk);
    expect(await nativeMethods.streamHasherFinish(hasher)).to.equal(reference.digest('hex'));
  });

  it('when finished or abandoned, any further use is a typed INVALID_INPUT error', async () => {
    const finished = new NativeStreamHasher();
    await nativeMethods.streamHasherFinish(finished);
    const abandoned = new NativeStreamHasher();
    abandoned.update(Buffer.from('partial'));
    abandoned.abandon();
    for (const hasher of [finished, abandoned]) {
      try {
        await nativeMethods.streamHasherFinish(hasher);
        expect.fail('finish after the end');
      } catch (error) {
        expect(error).to.be.instanceOf(CloacinaSignError);
        expect((error as CloacinaSignError).code).to.equal('INVALID_INPUT');
      }
    }
  });
});
