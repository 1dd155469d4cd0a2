// Cosign-compatible verification: ECDSA P-256 keys (cosign.pub) and `cosign sign-blob --key` signatures, made
// here with OpenSSL, which writes the same bytes: `openssl dgst -sha256 -sign` is the DER ECDSA signature over the
// SHA-256 of the file, and cosign's .sig is its standard base64. Through the CLI (real child processes), the
// library (publicKeyTrust, createPackageLoader, guarded load, policy, audit) and database trust (SQLite, PostgreSQL).
import { expect } from 'chai';
import { createHash, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { auditToStream, createPackageLoader, publicKeyTrust, SignatureSource, verifyPackageOffline } from '../src';
import { listAuditEvents } from '../src/audit/database-sink';
import { describeEngines } from './db/engines';
import { buildPackage } from './fixtures';
import { type EcKey, ecKey, signDer, writeCosignSignature } from './fixtures/cosign-key';
import { writePackage } from './fixtures/random-package';
import { type CliResult, flipBit, rejectsWith, run, runCli, tempDir, throwsWith } from './helpers';

/** The order n of P-256: with (r, s), (r, n - s) verifies too (the "high S" form cosign and Go accept). */
const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

function integer(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const digits = Buffer.from(hex, 'hex');
  const body = digits[0] & 0x80 ? Buffer.concat([Buffer.from([0]), digits]) : digits;
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

/** The same signature with s replaced by n - s (the other S form), in minimal DER. */
function otherSForm(der: Buffer): Buffer {
  const rLength = der[3];
  const r = der.subarray(4, 4 + rLength);
  const s = der.subarray(6 + rLength, 6 + rLength + der[5 + rLength]);
  const flipped = N - BigInt(`0x${s.toString('hex')}`);
  const body = Buffer.concat([Buffer.from([0x02, r.length]), r, integer(flipped)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** An SPKI PEM of a P-256 key whose point is not on the curve: the last bit of y flipped. */
function offCurve(key: EcKey, path: string): string {
  const der = createPublicKey(readFileSync(key.publicKey)).export({ type: 'spki', format: 'der' });
  const bad = flipBit(der, (der.length - 1) * 8);
  writeFileSync(path, `-----BEGIN PUBLIC KEY-----\n${bad.toString('base64')}\n-----END PUBLIC KEY-----\n`);
  return path;
}

describe('cosign signatures (ECDSA P-256)', () => {
  const dir = tempDir();
  const env = { CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: `sqlite:${dir.join('no-such-dir')}/cloacina.db`, CLOACINA_REQUIRE_SIGNATURES: '' };
  const cli = (args: string[]): CliResult => runCli(args, env);
  let key: EcKey;
  let other: EcKey;
  let pkg: string;
  let der: Buffer;
  let signature: string;

  before(() => {
    key = ecKey(dir.join('cosign'));
    other = ecKey(dir.join('other'));
    pkg = writePackage(dir.join('artifact.so'), 64 * 1024);
    der = signDer(pkg, key);
    signature = writeCosignSignature(pkg, der);
  });
  after(() => dir.cleanup());

  /** `package verify` of `file` against the cosign.pub, exit code and the one JSON result. */
  function verify(file: string, sig: string, ...extra: string[]): { status: number | null; result: any; stderr: string } {
    const out = cli(['package', 'verify', file, '--public-key', key.publicKey, '--signature', sig, '--json', ...extra]);
    return { status: out.status, result: out.json().results[0], stderr: out.stderr };
  }

  describe('when verifying offline through the CLI (package verify --public-key cosign.pub --signature)', () => {
    it('when the signature is the base64 of `openssl dgst -sha256 -sign` (cosign sign-blob), it verifies and exits 0', () => {
      const { status, result, stderr } = verify(pkg, signature);
      expect(status, stderr).to.equal(0);
      expect(result).to.include({ verified: true, signatureFormat: 'cosign', digestAlgorithm: 'sha256', signedAt: null, statement: null });
      expect(result.packageHash).to.equal(createHash('sha256').update(readFileSync(pkg)).digest('hex'));
    });

    it('when it verifies, it names the signer by the SHA-256 of the SPKI DER of cosign.pub', () => {
      expect(verify(pkg, signature).result.keyFingerprint).to.equal(key.fingerprint);
    });

    it('when the signature file ends with a newline, it verifies', () => {
      const withNewline = dir.join('newline.sig');
      writeFileSync(withNewline, `${der.toString('base64')}\n`);
      expect(verify(pkg, withNewline).status).to.equal(0);
    });

    it('when the signature carries the other S form (n - s), it verifies, as cosign does', () => {
      const flipped = otherSForm(der);
      expect(flipped.equals(der)).to.equal(false);
      expect(verify(pkg, writeCosignSignature(pkg, flipped, dir.join('other-s.sig'))).status).to.equal(0);
    });

    it('when one bit of the package is flipped, it exits 1 with INVALID_SIGNATURE (a cosign signature carries no digest)', () => {
      const tampered = dir.join('tampered.so');
      writeFileSync(tampered, flipBit(readFileSync(pkg), 8 * 1000 + 3));
      const { status, result } = verify(tampered, signature);
      expect(status).to.equal(1);
      expect(result.error.code).to.equal('INVALID_SIGNATURE');
    });

    it('when one bit of s in the signature is flipped, it exits 1 with INVALID_SIGNATURE', () => {
      const sig = writeCosignSignature(pkg, flipBit(der, der.length * 8 - 1), dir.join('flipped-s.sig'));
      const { status, result } = verify(pkg, sig);
      expect(status).to.equal(1);
      expect(result.error.code).to.equal('INVALID_SIGNATURE');
    });

    it('when one bit of the DER structure is flipped, it exits 1 with MALFORMED_SIGNATURE', () => {
      const sig = writeCosignSignature(pkg, flipBit(der, 7), dir.join('flipped-tag.sig'));
      const { status, result } = verify(pkg, sig);
      expect(status).to.equal(1);
      expect(result.error.code).to.equal('MALFORMED_SIGNATURE');
    });

    it('when the signature was made by another P-256 key, it exits 1 with INVALID_SIGNATURE', () => {
      const sig = writeCosignSignature(pkg, signDer(pkg, other), dir.join('by-other.sig'));
      const { status, result } = verify(pkg, sig);
      expect(status).to.equal(1);
      expect(result.error.code).to.equal('INVALID_SIGNATURE');
    });

    it('when only an Ed25519 key is trusted, it exits 1 with UNTRUSTED_SIGNER', () => {
      const ed = cli(['keys', 'generate', '--name', 'ed', '--output', dir.join('ed.pem'), '--json']);
      expect(ed.status, ed.stderr).to.equal(0);
      const out = cli(['package', 'verify', pkg, '--trust-key', dir.join('ed.pub.pem'), '--signature', signature, '--json']);
      expect(out.status).to.equal(1);
      expect(out.json().results[0].error.code).to.equal('UNTRUSTED_SIGNER');
    });

    it('when --require-v2 is given, it exits 1 with V2_REQUIRED', () => {
      const { status, result } = verify(pkg, signature, '--require-v2');
      expect(status).to.equal(1);
      expect(result.error.code).to.equal('V2_REQUIRED');
    });

    it('when the signature file is the raw DER (not base64), it exits 1 with MALFORMED_SIGNATURE', () => {
      const raw = dir.join('raw.sig');
      writeFileSync(raw, der);
      const { status, result } = verify(pkg, raw);
      expect(status).to.equal(1);
      expect(result.error.code).to.equal('MALFORMED_SIGNATURE');
    });

    it('when the public key has a point that is not on the curve, it exits 2 with INVALID_KEY saying so', () => {
      const bad = offCurve(key, dir.join('off-curve.pub'));
      const out = cli(['package', 'verify', pkg, '--public-key', bad, '--signature', signature]);
      expect(out.status).to.equal(2);
      expect(out.stderr).to.include('INVALID_KEY').and.to.include('not on the curve');
    });

    it('when asked to sign with a P-256 private key, it exits 2 with INVALID_KEY saying it signs with Ed25519 only', () => {
      run('chmod', ['600', key.privateKey]);
      const out = cli(['package', 'sign', pkg, '--key', key.privateKey, '--output', dir.join('never.sig')]);
      expect(out.status).to.equal(2);
      expect(out.stderr).to.include('INVALID_KEY').and.to.include('signs with Ed25519 only');
      expect(existsSync(dir.join('never.sig'))).to.equal(false);
    });
  });

  describe('when verifying through the library', () => {
    it('when every bit of the signature file is flipped in turn, it never verifies and always throws a typed code', async () => {
      const text = readFileSync(signature);
      const publicKey = readFileSync(key.publicKey);
      const flipped = dir.join('each-bit.sig');
      const codes = new Set<string>();
      for (let bit = 0; bit < text.length * 8; bit++) {
        writeFileSync(flipped, flipBit(text, bit));
        codes.add((await rejectsWith(verifyPackageOffline(pkg, flipped, publicKey), 'INVALID_SIGNATURE', 'MALFORMED_SIGNATURE')).code);
      }
      expect([...codes].sort()).to.deep.equal(['INVALID_SIGNATURE', 'MALFORMED_SIGNATURE']);
    });

    it('when publicKeyTrust is given a P-256 key that is not on the curve, it throws INVALID_KEY naming the key', () => {
      const bad = offCurve(key, dir.join('lib-off-curve.pub'));
      const error = throwsWith(() => publicKeyTrust([bad]), 'INVALID_KEY');
      expect(error.message).to.include(bad).and.to.include('not on the curve');
    });

    it('when a package is signed with cosign, the loader with publicKeyTrust(cosign.pub) loads it and runs its tasks', async () => {
      const lib = buildPackage(dir.join('libcosign.so'), { identity: 'cosign' });
      writeCosignSignature(lib, signDer(lib, key));
      const loader = createPackageLoader({ trust: publicKeyTrust([key.publicKey]), audit: [], requireSignatures: true });
      const loaded = await loader.load(lib);
      try {
        expect(loaded.signerFingerprint).to.equal(key.fingerprint);
        expect(await loaded.executeTask('whoami')).to.deep.equal({ identity: 'cosign' });
      } finally {
        loaded.close();
      }
    });

    it('when a cosign-signed package was modified, the loader refuses it with INVALID_SIGNATURE before any of its code runs', async () => {
      const marker = dir.join('cosign-tampered.marker');
      const lib = buildPackage(dir.join('libcosign-tampered.so'), { markerPath: marker });
      writeCosignSignature(lib, signDer(lib, key));
      const bytes = readFileSync(lib);
      writeFileSync(lib, flipBit(bytes, bytes.length * 8 - 1));
      const loader = createPackageLoader({ trust: publicKeyTrust([key.publicKey]), audit: [], requireSignatures: true });
      await rejectsWith(loader.load(lib), 'INVALID_SIGNATURE');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when the policy requires version 2, the loader refuses a cosign signature with V2_REQUIRED', async () => {
      const lib = buildPackage(dir.join('libcosign-v2.so'));
      writeCosignSignature(lib, signDer(lib, key));
      const loader = createPackageLoader({ trust: publicKeyTrust([key.publicKey]), audit: [], policy: { requireV2: true } });
      await rejectsWith(loader.load(lib), 'V2_REQUIRED');
    });

    it('when a cosign signature verifies, the audit event names the P-256 signer', async () => {
      const stream = new PassThrough();
      const lines: string[] = [];
      stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').trim().split('\n')));
      const loader = createPackageLoader({ trust: publicKeyTrust([key.publicKey]), audit: auditToStream(stream) });
      await loader.verify(pkg, { signature: SignatureSource.DetachedFile(signature) });
      const event = lines.map((line) => JSON.parse(line)).find((e) => e.event_type === 'verification.success');
      expect(event).to.include({ signer_fingerprint: key.fingerprint, signature_verified: true });
    });

    it('when the signature is given in memory as cosign base64 text, it verifies', async () => {
      const loader = createPackageLoader({ trust: publicKeyTrust([key.publicKey]), audit: [] });
      const result = await loader.verify(pkg, { signature: SignatureSource.Memory(der.toString('base64')) });
      expect(result).to.include({ signatureFormat: 'cosign', signerFingerprint: key.fingerprint, signedAt: null });
    });
  });
});

describeEngines('cosign keys in database trust', (t) => {
  const dir = tempDir();
  after(() => dir.cleanup());
  const cli = (args: string[]): CliResult =>
    runCli([...args, '--database', t.url], { CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: '', CLOACINA_REQUIRE_SIGNATURES: '' });
  const ok = (args: string[]) => {
    const out = cli([...args, '--json']);
    expect(out.status, out.stderr).to.equal(0);
    return out.json();
  };
  let key: EcKey;
  let pkg: string;
  let signature: string;

  before(() => {
    key = ecKey(dir.join('cosign'));
    pkg = writePackage(dir.join('artifact.so'), 32 * 1024);
    signature = writeCosignSignature(pkg, signDer(pkg, key));
  });

  /** A fresh organization that trusts cosign.pub (by `keys trust --import`); the import's JSON. */
  function orgTrustingCosign(): { org: { id: string; name: string }; trusted: any } {
    const org = ok(['orgs', 'create', t.unique('cosign')]);
    const trusted = ok(['keys', 'trust', '--import', key.publicKey, '--name', 'cosign', '--org', org.name]);
    return { org, trusted };
  }

  const verifyWithOrg = (orgId: string, file: string, sig: string, ...extra: string[]) => {
    const out = cli(['package', 'verify', file, '--org', orgId, '--signature', sig, '--json', ...extra]);
    return { status: out.status, result: out.json().results[0], stderr: out.stderr };
  };

  it('when cosign.pub is imported with keys trust, it is stored as an ECDSA P-256 key fingerprinted by its SPKI DER', () => {
    const { org, trusted } = orgTrustingCosign();
    expect(trusted).to.include({ fingerprint: key.fingerprint, algorithm: 'ecdsa-p256' });
    const listed = ok(['keys', 'list', '--org', org.name]).find((k: { id: string }) => k.id === trusted.id);
    expect(listed).to.include({ fingerprint: key.fingerprint, algorithm: 'ecdsa-p256', status: 'active' });
  });

  it('when the organization trusts cosign.pub, package verify --org verifies the cosign signature and exits 0', () => {
    const { org } = orgTrustingCosign();
    const { status, result, stderr } = verifyWithOrg(org.id, pkg, signature);
    expect(status, stderr).to.equal(0);
    expect(result).to.include({ verified: true, keyFingerprint: key.fingerprint, signatureFormat: 'cosign' });
  });

  it('when the cosign signature is the .sig beside the package, package verify --org finds and verifies it', () => {
    const { org } = orgTrustingCosign();
    const out = cli(['package', 'verify', pkg, '--org', org.id, '--json']);
    expect(out.status, out.stderr).to.equal(0);
    expect(out.json().results[0].keyFingerprint).to.equal(key.fingerprint);
  });

  it('when one bit of the package is flipped, package verify --org exits 1 with INVALID_SIGNATURE', () => {
    const { org } = orgTrustingCosign();
    const tampered = dir.join(`${t.unique('tampered')}.so`);
    writeFileSync(tampered, flipBit(readFileSync(pkg), 4242));
    const { status, result } = verifyWithOrg(org.id, tampered, signature);
    expect(status).to.equal(1);
    expect(result.error.code).to.equal('INVALID_SIGNATURE');
  });

  it('when one bit of the signature is flipped, package verify --org exits 1 with INVALID_SIGNATURE', () => {
    const { org } = orgTrustingCosign();
    const der = Buffer.from(readFileSync(signature, 'utf8'), 'base64');
    const flipped = writeCosignSignature(pkg, flipBit(der, der.length * 8 - 2), dir.join(`${t.unique('flipped')}.sig`));
    const { status, result } = verifyWithOrg(org.id, pkg, flipped);
    expect(status).to.equal(1);
    expect(result.error.code).to.equal('INVALID_SIGNATURE');
  });

  it('when the organization trusts no P-256 key, package verify --org exits 1 with UNTRUSTED_SIGNER', () => {
    const org = ok(['orgs', 'create', t.unique('no-cosign')]);
    const { status, result } = verifyWithOrg(org.id, pkg, signature);
    expect(status).to.equal(1);
    expect(result.error.code).to.equal('UNTRUSTED_SIGNER');
  });

  it('when the trusted P-256 key is revoked, package verify --org exits 1 with UNTRUSTED_SIGNER', () => {
    const { org, trusted } = orgTrustingCosign();
    ok(['keys', 'revoke', trusted.id]);
    const { status, result } = verifyWithOrg(org.id, pkg, signature);
    expect(status).to.equal(1);
    expect(result.error.code).to.equal('UNTRUSTED_SIGNER');
  });

  it('when rollback protection is on, package verify --org refuses a cosign signature with V2_REQUIRED', () => {
    const { org } = orgTrustingCosign();
    const { status, result } = verifyWithOrg(org.id, pkg, signature, '--rollback-protection');
    expect(status).to.equal(1);
    expect(result.error.code).to.equal('V2_REQUIRED');
  });

  it('when a cosign signature verifies, the database audit event names the P-256 signer', async () => {
    const { org } = orgTrustingCosign();
    expect(verifyWithOrg(org.id, pkg, signature).status).to.equal(0);
    const events = await listAuditEvents(t.db, { orgId: org.id, eventType: 'verification.success' });
    expect(events.map((e) => e.signer_fingerprint)).to.deep.equal([key.fingerprint]);
  });

  it('when the imported P-256 key has a point that is not on the curve, keys trust exits 2 saying so and stores nothing', () => {
    const org = ok(['orgs', 'create', t.unique('bad-point')]);
    const out = cli(['keys', 'trust', '--import', offCurve(key, dir.join('off-curve.pub')), '--org', org.name]);
    expect(out.status).to.equal(2);
    expect(out.stderr).to.include('INVALID_KEY').and.to.include('not on the curve');
    expect(ok(['keys', 'list', '--org', org.name])).to.deep.equal([]);
  });
});
