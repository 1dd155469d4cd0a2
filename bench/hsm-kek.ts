// Signing throughput with the KEK in a PKCS#11 token (SoftHSM2) against the KEK from the variable, in the
// same run: each signature opens its sealed private key once (in the token, or in process), as the
// signing service does per request. In process, no HTTP and no database, so the difference is the KEK's.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Kek, kekFromPkcs11, tokenKekSpec } from '../src/keys/kek';
import { native } from '../src/native';
import { softHsm } from '../test/fixtures/softhsm';
import type { BenchSection } from './section';

const SIGNATURES = 4000;
const IN_FLIGHT = 16;

async function signaturesPerSecond(kek: Kek): Promise<number> {
  const binding = { keyId: 'bench-key', orgId: 'bench-org' };
  const sealed = await native.generateSealedKeypairUnder(kek, binding);
  const hash = randomBytes(32).toString('hex');
  const sign = () =>
    native.signPackage(
      { size: 0, sha256: hash },
      { kek, sealedPrivateKey: sealed.sealedPrivateKey, binding, publicKey: sealed.publicKey },
      { version: 1, signedAt: new Date().toISOString() },
    );
  for (let i = 0; i < 200; i++) await sign();
  let left = SIGNATURES;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) await sign();
    }),
  );
  return SIGNATURES / (Number(process.hrtime.bigint() - started) / 1e9);
}

export async function benchHsmKek(): Promise<BenchSection> {
  const root = mkdtempSync(join(tmpdir(), 'cloacina-bench-hsm-'));
  try {
    const hsm = softHsm(root);
    process.env.SOFTHSM2_CONF = hsm.conf;
    const uri = hsm.uri('kek');
    const env = { CLOACINA_PKCS11_PIN: hsm.pin };
    await native.pkcs11CreateKek(tokenKekSpec(uri, { env }));
    const tokenKek = await kekFromPkcs11(uri, { env });
    const variable = await signaturesPerSecond(randomBytes(32));
    const token = await signaturesPerSecond(tokenKek);
    const rate = (value: number) => `${Math.round(value).toLocaleString('en-US')}/s`;
    return {
      title: 'Signing with the KEK in a PKCS#11 token (SoftHSM2) vs the variable',
      headers: ['KEK', 'signatures/s (one unseal each)', 'vs the variable'],
      rows: [
        ['CLOACINA_KEY_ENCRYPTION_KEY (AES-256-GCM in process)', rate(variable), '1.00x'],
        ['CLOACINA_KEK_PKCS11 (CKM_AES_GCM in SoftHSM2)', rate(token), `${(token / variable).toFixed(2)}x`],
      ],
      notes: [
        `${SIGNATURES} Ed25519 signatures of a given digest, ${IN_FLIGHT} in flight on the libuv pool, in process: no HTTP, no database.`,
        'Each token signature opens a session, logs in, finds the key object and decrypts in the token; no unsealed key is cached.',
      ],
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
