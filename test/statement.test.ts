// Version-2 signatures (signed statements), BLAKE3 digests and the load policy, through the API:
// round trips with key files and database keys (both engines), the document and its signed message
// checked independently of our code (node:crypto), every bit flip and every field edit of a `.sig`
// refused, the policy codes, several candidates, rollback marks with real loads, and version 1
// unchanged (Cloacina's byte format).
import { expect } from 'chai';
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import {
  auditToDatabase,
  auditToStream,
  createPackageLoader,
  type Database,
  databaseTrust,
  generateKeypair,
  type Keypair,
  type PackageLoader,
  type PackagePolicy,
  publicKeyTrust,
  SignatureSource,
  signPackage,
  verifyPackageOffline,
  writeKeypairFiles,
} from '../src';
import { DbPackageSigner } from '../src/signing/db-signer';
import { DetachedSignature } from '../src/formats/v1';
import { PolicyViolation, VerificationFailure } from '../src/errors';
import { listAuditEvents } from '../src/audit/database-sink';
import { native } from '../src/native';
import { signedStatementOf, writeSignatureDocument } from '../src/formats/v2';
import { signStatement } from '../src/signing/sign';
import type { StatementOptions } from '../src/signing/statement';
import { expiryTime } from '../src/time';
import { rollbackFloors } from '../src/db/version-marks';
import { resetVersion } from '../src/trust/version-reset';
import { describeEngines } from './db/engines';
import { buildPackage } from './fixtures';
import { flipBit, readVector, rejectsWith, tempDir, throwsWith } from './helpers';

const sha256Hex = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** The raw 32-byte Ed25519 public key as a node:crypto key (SPKI DER prefix of RFC 8410, written here, not by our code). */
function nodePublicKey(raw: Buffer) {
  return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
}

/**
 * The signed message of a version-2 statement, rebuilt from the document's JSON exactly as docs/formats.md
 * and crates/core/src/statement.rs specify it, as a reader in another language would.
 */
function documentedMessage(statement: Record<string, unknown>): Buffer {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const str = (s: unknown) => {
    const bytes = Buffer.from(s as string, 'utf8');
    return Buffer.concat([u32(bytes.length), bytes]);
  };
  const opt = (s: unknown) => (s === undefined ? Buffer.from([0xff, 0xff, 0xff, 0xff]) : str(s));
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(statement.size as number));
  return Buffer.concat([
    Buffer.from('cloacina-sign/package-statement/v2', 'ascii'),
    Buffer.from([0]),
    str(statement.name),
    str(statement.version),
    opt(statement.organization),
    size,
    str(statement.digest_algorithm),
    Buffer.from(statement.digest as string, 'hex'),
    str(statement.issued_at),
    opt(statement.expires_at),
  ]);
}

const STATEMENT_KEYS = ['name', 'version', 'organization', 'size', 'digest_algorithm', 'digest', 'issued_at', 'expires_at'];
const REJECTIONS = ['MALFORMED_SIGNATURE', 'TAMPERED_PACKAGE', 'UNTRUSTED_SIGNER', 'INVALID_SIGNATURE'];

describe('version-2 signatures through the API (key files, pinned keys)', () => {
  const dir = tempDir();
  let signer: Keypair;
  let signerPubPath: string;
  let built = 0;
  after(() => dir.cleanup());

  before(async () => {
    signer = generateKeypair();
    signerPubPath = (await writeKeypairFiles(signer, dir.join('signer.pem'))).publicKeyPath;
  });

  /** A package of random bytes (its own name each time). */
  const randomPackage = (size = 4096): string => {
    const path = dir.join(`pkg-${built++}.bin`);
    writeFileSync(path, randomBytes(size));
    return path;
  };
  const pinned = (policy?: PackagePolicy): PackageLoader => createPackageLoader({ trust: publicKeyTrust([signerPubPath]), audit: [], policy });
  const statementOptions = (extra: Partial<StatementOptions> = {}): StatementOptions => ({ name: 'data-pipeline', version: '1.2.0', ...extra });
  /** Signs a version-2 statement with the key file's seed and writes it beside the package. */
  async function signBeside(path: string, extra: Partial<StatementOptions> = {}, key: Keypair = signer) {
    const signed = await signStatement(path, key.privateKey, statementOptions(extra));
    await writeSignatureDocument(DetachedSignature.defaultPath(path), signed.document, { overwrite: true });
    return signed;
  }
  async function signV1Beside(path: string) {
    const info = await signPackage(path, signer.privateKey);
    await DetachedSignature.fromSignatureInfo(info).writeToFile(DetachedSignature.defaultPath(path));
    return info;
  }

  describe('when hashing with BLAKE3 through the binding', () => {
    it('when given official BLAKE3 vector inputs, hashFileDigests returns their default hash and the SHA-256 node computes, on 1, 2 or every core', async () => {
      const vectors = readVector('blake3/test_vectors.json') as { cases: { input_len: number; hash: string }[] };
      const lengths = [0, 1, 64, 1023, 1024, 1025, 8193, 31744, 102400];
      const cases = vectors.cases.filter((c) => lengths.includes(c.input_len));
      expect(cases.map((c) => c.input_len)).to.deep.equal(lengths);
      for (const c of cases) {
        const input = Buffer.alloc(c.input_len);
        for (let i = 0; i < c.input_len; i++) input[i] = i % 251;
        const path = dir.join(`vector-${c.input_len}.bin`);
        writeFileSync(path, input);
        for (const threads of [1, 2, undefined]) {
          const digests = await native.hashFileDigests(path, { sha256: true, blake3: true }, undefined, threads);
          expect(digests, `input_len ${c.input_len}, threads ${threads}`).to.deep.equal({
            size: c.input_len,
            sha256: sha256Hex(input),
            blake3: c.hash.slice(0, 64),
          });
        }
        const only = await native.hashFileDigests(path, { sha256: false, blake3: true }, undefined, 2);
        expect(only.sha256).to.equal(undefined);
        expect(only.blake3).to.equal(c.hash.slice(0, 64));
      }
    });
  });

  describe('when a package is signed with a key file and verified against the pinned key', () => {
    it('when signed as version 1, it verifies as version 1 with a SHA-256 and no statement', async () => {
      const pkg = randomPackage();
      const info = await signV1Beside(pkg);
      const result = await pinned().verify(pkg);
      expect(result).to.deep.include({
        documentVersion: 1,
        digestAlgorithm: 'sha256',
        statement: null,
        packageHash: sha256Hex(readFileSync(pkg)),
        signerFingerprint: signer.fingerprint,
        signedAt: info.signedAt,
      });
    });

    for (const digest of ['blake3', 'sha256'] as const) {
      it(`when signed as version 2 with ${digest}, it verifies as version 2 and returns the signed statement`, async () => {
        const pkg = randomPackage(10_000);
        const issuedAt = new Date('2026-01-02T03:04:05.678Z');
        const signed = await signBeside(pkg, { digest, organization: 'acme', issuedAt, expires: '36500d' });
        const digests = await native.hashFileDigests(pkg, { sha256: true, blake3: true });
        expect(signed.keyFingerprint).to.equal(signer.fingerprint);
        expect(signed.statement).to.deep.equal({
          name: 'data-pipeline',
          version: '1.2.0',
          organization: 'acme',
          size: 10_000,
          digestAlgorithm: digest,
          digest: digests[digest],
          issuedAt: '2026-01-02T03:04:05.678Z',
          expiresAt: new Date(issuedAt.getTime() + 36500 * 86_400_000).toISOString(),
        });
        const result = await pinned().verify(pkg);
        expect(result).to.deep.equal({
          path: pkg,
          packageHash: digests[digest],
          digestAlgorithm: digest,
          signerFingerprint: signer.fingerprint,
          signedAt: '2026-01-02T03:04:05.678Z',
          organization: null,
          documentVersion: 2,
          signatureFormat: 'v2',
          statement: signed.statement,
        });
      });
    }

    it('when the SHA-256 statement is checked by node, its digest and size are the file’s', async () => {
      const pkg = randomPackage(777);
      const signed = await signBeside(pkg, { digest: 'sha256' });
      expect(signed.statement.digest).to.equal(sha256Hex(readFileSync(pkg)));
      expect(signed.statement.size).to.equal(statSync(pkg).size);
    });

    it('when no digest is asked for, the statement names BLAKE3 (the version-2 default)', async () => {
      const pkg = randomPackage();
      const signed = await signBeside(pkg);
      expect(signed.statement.digestAlgorithm).to.equal('blake3');
      expect(signed.statement.digest).to.equal((await native.hashFileDigests(pkg, { sha256: false, blake3: true })).blake3);
      expect(signed.statement.organization).to.equal(null);
      expect(signed.statement.expiresAt).to.equal(null);
    });

    it('when the package is empty, both digests sign and verify (size 0)', async () => {
      for (const digest of ['blake3', 'sha256'] as const) {
        const pkg = randomPackage(0);
        const signed = await signBeside(pkg, { digest });
        expect(signed.statement.size).to.equal(0);
        // BLAKE3 of no bytes (the first official vector) and SHA-256 of no bytes.
        expect(signed.statement.digest).to.equal(
          digest === 'blake3'
            ? 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
            : 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        );
        expect((await pinned().verify(pkg)).documentVersion).to.equal(2);
      }
    });

    it('when verified offline (verifyPackageOffline), a version-2 signature is accepted and reports its digest', async () => {
      const pkg = randomPackage();
      const signed = await signBeside(pkg);
      const offline = await verifyPackageOffline(pkg, DetachedSignature.defaultPath(pkg), signer.publicKey);
      expect(offline).to.deep.equal({ packageHash: signed.statement.digest, signerFingerprint: signer.fingerprint, signedAt: signed.statement.issuedAt });
    });
  });

  describe('when a version-2 verification or load is audited as JSON lines', () => {
    /** A loader on the pinned key whose audit goes to an in-memory JSON-lines stream. */
    function auditedLoader(): { loader: PackageLoader; lines: () => Record<string, unknown>[] } {
      const stream = new PassThrough();
      let text = '';
      stream.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      const loader = createPackageLoader({ trust: publicKeyTrust([signerPubPath]), audit: auditToStream(stream) });
      return {
        loader,
        lines: () =>
          text
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line)),
      };
    }
    const fileOf = (line: Record<string, unknown>) => line.file as { hash: Record<string, string> };

    it('when a BLAKE3 statement verifies, the line names the digest file.hash.blake3, never file.hash.sha256', async () => {
      const pkg = randomPackage();
      const signed = await signBeside(pkg, { digest: 'blake3' });
      const { loader, lines } = auditedLoader();
      await loader.verify(pkg);
      const [line] = lines();
      expect(fileOf(line).hash).to.deep.equal({ blake3: signed.statement.digest });
    });

    it('when a BLAKE3 statement loads, the package.load.success line names file.hash.blake3', async () => {
      const pkg = buildPackage(dir.join(`libaudited-${built++}.so`), { identity: `audited-${built}` });
      const signed = await signBeside(pkg, { digest: 'blake3' });
      const { loader, lines } = auditedLoader();
      (await loader.load(pkg)).close();
      const success = lines().find((line) => line.event_type === 'package.load.success');
      expect(success && fileOf(success).hash).to.deep.equal({ blake3: signed.statement.digest });
    });

    it('when a SHA-256 statement verifies, the line names file.hash.sha256', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, { digest: 'sha256' });
      const { loader, lines } = auditedLoader();
      await loader.verify(pkg);
      expect(fileOf(lines()[0]).hash).to.deep.equal({ sha256: sha256Hex(readFileSync(pkg)) });
    });
  });

  describe('when the version-2 document is read back', () => {
    it('when the .sig is parsed, it is the canonical document plus a newline and says the same statement', async () => {
      const pkg = randomPackage();
      const signed = await signBeside(pkg, { organization: 'acme', expires: '90d' });
      const file = readFileSync(DetachedSignature.defaultPath(pkg), 'utf8');
      expect(file).to.equal(`${signed.document}\n`);
      const info = await native.readSignatureFile(DetachedSignature.defaultPath(pkg));
      expect(info.version).to.equal(2);
      expect(info.canonical).to.equal(signed.document);
      expect(info.keyFingerprint).to.equal(signer.fingerprint);
      expect(signedStatementOf(file)).to.deep.equal(signed);
      // Pretty-printed (same fields, other bytes) it still reads as the same statement and verifies.
      const pretty = JSON.stringify(JSON.parse(file), null, 2);
      expect(signedStatementOf(pretty)).to.deep.equal(signed);
      writeFileSync(DetachedSignature.defaultPath(pkg), pretty);
      expect((await pinned().verify(pkg)).statement).to.deep.equal(signed.statement);
    });

    it('when the document is written, its fields are in the canonical order and optional fields are omitted, never null', async () => {
      const pkg = randomPackage();
      const full = JSON.parse((await signBeside(pkg, { organization: 'acme', expires: '1d' })).document);
      expect(Object.keys(full)).to.deep.equal(['version', 'algorithm', 'statement', 'key_fingerprint', 'signature']);
      expect(Object.keys(full.statement)).to.deep.equal(STATEMENT_KEYS);
      expect(full).to.include({ version: 2, algorithm: 'ed25519' });
      const bare = JSON.parse((await signBeside(pkg)).document);
      expect(Object.keys(bare.statement)).to.deep.equal(STATEMENT_KEYS.filter((key) => key !== 'organization' && key !== 'expires_at'));
    });

    it('when a version-1 document is given to signedStatementOf, it is refused as not version 2', async () => {
      const pkg = randomPackage();
      const info = await signPackage(pkg, signer.privateKey);
      throwsWith(() => signedStatementOf(DetachedSignature.fromSignatureInfo(info).toString()), 'INVALID_INPUT');
    });
  });

  describe('when a version-2 signature is checked independently of our code (node:crypto)', () => {
    const cases: { title: string; options: Partial<StatementOptions> }[] = [
      { title: 'every field present (BLAKE3)', options: { organization: 'acme', expires: '90d' } },
      { title: 'no organization and no expiry (both 0xFFFFFFFF)', options: {} },
      { title: 'SHA-256, an organization but no expiry', options: { digest: 'sha256', organization: 'acme' } },
      { title: 'no organization, an expiry', options: { expires: '12h' } },
      {
        title: 'a non-ASCII name with a quote and a backslash (byte lengths, JSON unescaped)',
        options: { name: 'データ "pipe" \\ ñ', version: '2.0.0-rc.1+build.5', organization: 'Ωmega' },
      },
    ];
    for (const { title, options } of cases) {
      it(`when the statement has ${title}, the documented message verifies with node's Ed25519 and the named key`, async () => {
        const pkg = randomPackage(3333);
        await signBeside(pkg, options);
        const document = JSON.parse(readFileSync(DetachedSignature.defaultPath(pkg), 'utf8'));
        const statement = document.statement as Record<string, unknown>;
        expect(document.key_fingerprint).to.equal(sha256Hex(signer.publicKey));
        const signature = Buffer.from(document.signature, 'base64');
        expect(signature).to.have.length(64);
        const message = documentedMessage(statement);
        expect(cryptoVerify(null, message, nodePublicKey(signer.publicKey), signature)).to.equal(true);
        // Optional fields absent are 0xFFFFFFFF where they would be.
        if (statement.organization === undefined) expect(message.includes(Buffer.from([0xff, 0xff, 0xff, 0xff]))).to.equal(true);
        // The signature covers the statement, never the bare digest (a version-1 message) nor the message without its context.
        expect(cryptoVerify(null, Buffer.from(statement.digest as string, 'hex'), nodePublicKey(signer.publicKey), signature)).to.equal(false);
        const contextLength = 'cloacina-sign/package-statement/v2'.length + 1;
        expect(cryptoVerify(null, message.subarray(contextLength), nodePublicKey(signer.publicKey), signature)).to.equal(false);
        // Size and (for SHA-256) digest are the file's.
        expect(statement.size).to.equal(3333);
        if (statement.digest_algorithm === 'sha256') expect(statement.digest).to.equal(sha256Hex(readFileSync(pkg)));
        if (options.name) expect(statement.name).to.equal(options.name);
      });
    }
  });

  describe('when the .sig is altered after signing', () => {
    it('when any single bit of the .sig file is flipped, verification refuses it (a verification failure, never a success)', async function () {
      this.timeout(600_000);
      const pkg = randomPackage(2048);
      await signBeside(pkg, { organization: 'acme', expires: '90d' });
      const original = readFileSync(DetachedSignature.defaultPath(pkg));
      const flipped = dir.join('flipped.sig');
      const loader = pinned();
      writeFileSync(flipped, original);
      expect((await loader.verify(pkg, { signature: SignatureSource.DetachedFile(flipped) })).documentVersion).to.equal(2);
      const codes = new Map<string, number>();
      const accepted: number[] = [];
      for (let bit = 0; bit < original.length * 8; bit++) {
        writeFileSync(flipped, flipBit(original, bit));
        try {
          await loader.verify(pkg, { signature: SignatureSource.DetachedFile(flipped) });
          accepted.push(bit);
        } catch (error) {
          expect(error, `bit ${bit}: ${(error as Error).message}`).to.be.instanceOf(VerificationFailure);
          const code = (error as VerificationFailure).code;
          expect(REJECTIONS, `bit ${bit}: ${(error as Error).message}`).to.include(code);
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
      expect(accepted, `flips accepted at bits ${accepted.join(', ')}`).to.deep.equal([]);
      // Every stage of the decision was reached by some flip.
      expect([...codes.keys()].sort()).to.deep.equal([...REJECTIONS].sort());
    });

    /** Applies one edit to the parsed document (kept valid JSON, not re-signed) and returns the failure code. */
    async function editedCode(pkg: string, edit: (document: any) => void): Promise<string> {
      const document = JSON.parse(readFileSync(DetachedSignature.defaultPath(pkg), 'utf8'));
      edit(document);
      const path = dir.join('edited.sig');
      writeFileSync(path, `${JSON.stringify(document)}\n`);
      const error = await rejectsWith(pinned().verify(pkg, { signature: SignatureSource.DetachedFile(path) }));
      expect(error).to.be.instanceOf(VerificationFailure);
      return error.code;
    }

    it('when a statement field value is edited in the JSON without re-signing, verification fails with the first check that catches it', async () => {
      const pkg = randomPackage(5000);
      const other = randomPackage(6000);
      const signed = await signBeside(pkg, { organization: 'acme', expires: '90d', issuedAt: new Date('2026-06-01T00:00:00Z') });
      const otherDigests = await native.hashFileDigests(other, { sha256: true, blake3: true });
      const pkgDigests = await native.hashFileDigests(pkg, { sha256: true, blake3: true });
      const edits: [string, (d: any) => void, string][] = [
        ['name', (d) => (d.statement.name = 'data-pipeline2'), 'INVALID_SIGNATURE'],
        ['version', (d) => (d.statement.version = '1.2.1'), 'INVALID_SIGNATURE'],
        ['version (build metadata only)', (d) => (d.statement.version = '1.2.0+x'), 'INVALID_SIGNATURE'],
        ['organization', (d) => (d.statement.organization = 'acme2'), 'INVALID_SIGNATURE'],
        ['organization removed', (d) => delete d.statement.organization, 'INVALID_SIGNATURE'],
        ['size', (d) => (d.statement.size = 5001), 'TAMPERED_PACKAGE'],
        ['digest', (d) => (d.statement.digest = otherDigests.blake3), 'TAMPERED_PACKAGE'],
        ['digest and size of another package', (d) => Object.assign(d.statement, { digest: otherDigests.blake3, size: 6000 }), 'TAMPERED_PACKAGE'],
        [
          'digest algorithm and digest (the real SHA-256)',
          (d) => Object.assign(d.statement, { digest_algorithm: 'sha256', digest: pkgDigests.sha256 }),
          'INVALID_SIGNATURE',
        ],
        ['issued_at', (d) => (d.statement.issued_at = '2026-06-01T00:00:01Z'), 'INVALID_SIGNATURE'],
        ['issued_at (same instant, other spelling)', (d) => (d.statement.issued_at = '2026-06-01T00:00:00Z'), 'INVALID_SIGNATURE'],
        ['expires_at', (d) => (d.statement.expires_at = '2099-01-01T00:00:00Z'), 'INVALID_SIGNATURE'],
        ['expires_at removed', (d) => delete d.statement.expires_at, 'INVALID_SIGNATURE'],
        ['key_fingerprint', (d) => (d.key_fingerprint = sha256Hex(Buffer.from('someone else'))), 'UNTRUSTED_SIGNER'],
      ];
      // The signer wrote the time with milliseconds: the same instant written without them is another signed string.
      expect(signed.statement.issuedAt).to.equal('2026-06-01T00:00:00.000Z');
      for (const [what, edit, code] of edits) expect(await editedCode(pkg, edit), what).to.equal(code);
    });

    it('when an organization or an expiry is added to a statement that had none, verification fails (absent is signed too)', async () => {
      const pkg = randomPackage();
      await signBeside(pkg);
      expect(await editedCode(pkg, (d) => (d.statement = { ...d.statement, organization: 'acme' }))).to.equal('INVALID_SIGNATURE');
      expect(await editedCode(pkg, (d) => (d.statement.expires_at = '2099-01-01T00:00:00Z'))).to.equal('INVALID_SIGNATURE');
    });

    it('when the package is changed after signing, a version-2 signature refuses it (BLAKE3 and SHA-256)', async () => {
      for (const digest of ['blake3', 'sha256'] as const) {
        const pkg = randomPackage(4096);
        await signBeside(pkg, { digest });
        writeFileSync(pkg, flipBit(readFileSync(pkg), 4000 * 8));
        await rejectsWith(pinned().verify(pkg), 'TAMPERED_PACKAGE');
        // Appending a byte changes the size as well.
        writeFileSync(pkg, Buffer.concat([flipBit(readFileSync(pkg), 4000 * 8), Buffer.from([0])]));
        await rejectsWith(pinned().verify(pkg), 'TAMPERED_PACKAGE');
      }
    });

    it('when a stranger signs, the statement is refused as UNTRUSTED_SIGNER', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, {}, generateKeypair());
      await rejectsWith(pinned().verify(pkg), 'UNTRUSTED_SIGNER');
    });
  });

  describe('when a policy checks the signed fields', () => {
    it('when the statement names another package than expectName, it is refused with PACKAGE_NAME_MISMATCH (a PolicyViolation)', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, { name: 'data-pipeline' });
      const error = await rejectsWith(pinned({ expectName: 'billing' }).verify(pkg), 'PACKAGE_NAME_MISMATCH');
      expect(error).to.be.instanceOf(PolicyViolation);
      expect(error).to.be.instanceOf(VerificationFailure);
      expect(error.message).to.include('data-pipeline').and.include('billing');
      // Names are compared exactly (no case folding).
      await rejectsWith(pinned({ expectName: 'Data-Pipeline' }).verify(pkg), 'PACKAGE_NAME_MISMATCH');
      expect((await pinned({ expectName: 'data-pipeline' }).verify(pkg)).statement?.name).to.equal('data-pipeline');
    });

    it('when the statement names another organization than expectOrganization, or none, it is refused with ORGANIZATION_MISMATCH (a PolicyViolation)', async () => {
      const forAcme = randomPackage();
      await signBeside(forAcme, { organization: 'acme' });
      const error = await rejectsWith(pinned({ expectOrganization: 'beta' }).verify(forAcme), 'ORGANIZATION_MISMATCH');
      expect(error).to.be.instanceOf(PolicyViolation);
      expect(error.message).to.include('acme').and.include('beta');
      const unnamed = randomPackage();
      await signBeside(unnamed);
      expect((await rejectsWith(pinned({ expectOrganization: 'acme' }).verify(unnamed), 'ORGANIZATION_MISMATCH')).message).to.include('names no organization');
      expect((await pinned({ expectOrganization: 'acme' }).verify(forAcme)).statement?.organization).to.equal('acme');
    });

    it('when expectOrganization meets a version-1 signature (which names no organization), it is refused with V2_REQUIRED', async () => {
      const pkg = randomPackage();
      await signV1Beside(pkg);
      await rejectsWith(pinned({ expectOrganization: 'acme' }).verify(pkg), 'V2_REQUIRED');
    });

    it('when the statement’s version is outside allowedVersions (a list or a range), it is refused with VERSION_NOT_ALLOWED', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, { version: '1.2.0' });
      const refused: PackagePolicy['allowedVersions'][] = ['1.1.0', '1.1.0,1.3.0', ['1.1.0', '1.2.1'], '>=1.3.0', '>=1.0.0, <1.2.0', '~1.1', '^2'];
      for (const allowedVersions of refused) {
        const error = await rejectsWith(pinned({ allowedVersions }).verify(pkg), 'VERSION_NOT_ALLOWED');
        expect(error, JSON.stringify(allowedVersions)).to.be.instanceOf(PolicyViolation);
      }
      const allowed: PackagePolicy['allowedVersions'][] = ['1.2.0', '1.0.0, 1.2.0', ['1.1.0', '1.2.0'], '>=1.2.0, <2.0.0', '^1.1', '~1.2', '1.*'];
      for (const allowedVersions of allowed) {
        expect((await pinned({ allowedVersions }).verify(pkg)).statement?.version, JSON.stringify(allowedVersions)).to.equal('1.2.0');
      }
    });

    it('when name and version are both checked, each refusal has its own code', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, { name: 'a', version: '3.0.0' });
      await rejectsWith(pinned({ expectName: 'b', allowedVersions: '3.0.0' }).verify(pkg), 'PACKAGE_NAME_MISMATCH');
      await rejectsWith(pinned({ expectName: 'a', allowedVersions: '2.0.0' }).verify(pkg), 'VERSION_NOT_ALLOWED');
      expect((await pinned({ expectName: 'a', allowedVersions: '3.0.0' }).verify(pkg)).documentVersion).to.equal(2);
    });

    it('when allowedVersions is neither versions nor a range, verification fails with INVALID_INPUT, never accepts', async () => {
      const pkg = randomPackage();
      await signBeside(pkg);
      for (const allowedVersions of ['', 'latest', [] as string[]]) {
        await rejectsWith(pinned({ allowedVersions }).verify(pkg), 'INVALID_INPUT');
      }
    });

    it('when requireV2 is set, a version-1 signature is refused with V2_REQUIRED and a version-2 one verifies', async () => {
      const v1 = randomPackage();
      await signV1Beside(v1);
      const error = await rejectsWith(pinned({ requireV2: true }).verify(v1), 'V2_REQUIRED');
      expect(error).to.be.instanceOf(PolicyViolation);
      const v2 = randomPackage();
      await signBeside(v2);
      expect((await pinned({ requireV2: true }).verify(v2)).documentVersion).to.equal(2);
    });

    it('when the policy checks the name or the versions, a version-1 signature (which signs neither) is refused with V2_REQUIRED', async () => {
      const v1 = randomPackage();
      await signV1Beside(v1);
      await rejectsWith(pinned({ expectName: 'data-pipeline' }).verify(v1), 'V2_REQUIRED');
      await rejectsWith(pinned({ allowedVersions: '>=0.0.0' }).verify(v1), 'V2_REQUIRED');
      // Only a clock skew is no reason to refuse version 1.
      expect((await pinned({ clockSkewSeconds: 5 }).verify(v1)).documentVersion).to.equal(1);
    });

    it('when a version-1 signature is verified with no policy, it still verifies (readers take both versions)', async () => {
      const v1 = randomPackage();
      await signV1Beside(v1);
      expect((await pinned().verify(v1)).documentVersion).to.equal(1);
      expect((await verifyPackageOffline(v1, DetachedSignature.defaultPath(v1), signer.publicKey)).packageHash).to.equal(sha256Hex(readFileSync(v1)));
    });
  });

  describe('when a statement has expired', () => {
    const hour = 3_600_000;

    it('when expires_at has long passed, it is refused with SIGNATURE_EXPIRED even with no policy at all', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, { issuedAt: new Date('2000-01-01T00:00:00Z'), expires: '1d' });
      const error = await rejectsWith(pinned().verify(pkg), 'SIGNATURE_EXPIRED');
      expect(error).to.be.instanceOf(PolicyViolation);
      expect(error.message).to.include('2000-01-02T00:00:00');
      await rejectsWith(verifyPackageOffline(pkg, DetachedSignature.defaultPath(pkg), signer.publicKey), 'SIGNATURE_EXPIRED');
    });

    it('when it expired 30 s ago, the default 60 s clock skew accepts it and a skew of 0 refuses it', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, { issuedAt: new Date(Date.now() - hour), expires: new Date(Date.now() - 30_000) });
      expect((await pinned().verify(pkg)).documentVersion).to.equal(2);
      expect((await pinned({ clockSkewSeconds: 60 }).verify(pkg)).documentVersion).to.equal(2);
      await rejectsWith(pinned({ clockSkewSeconds: 0 }).verify(pkg), 'SIGNATURE_EXPIRED');
      await rejectsWith(pinned({ clockSkewSeconds: 10 }).verify(pkg), 'SIGNATURE_EXPIRED');
    });

    it('when it expired 5 minutes ago, the default skew refuses it and a skew of 10 minutes accepts it', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, { issuedAt: new Date(Date.now() - hour), expires: new Date(Date.now() - 300_000) });
      await rejectsWith(pinned().verify(pkg), 'SIGNATURE_EXPIRED');
      expect((await pinned({ clockSkewSeconds: 600 }).verify(pkg)).documentVersion).to.equal(2);
    });

    it('when signed with a 1 s expiry, it verifies at once and is refused (skew 0) once that second has passed', async () => {
      const pkg = randomPackage();
      const signed = await signBeside(pkg, { expires: '1s' });
      expect(Date.parse(signed.statement.expiresAt as string) - Date.parse(signed.statement.issuedAt)).to.equal(1000);
      expect((await pinned({ clockSkewSeconds: 0 }).verify(pkg)).documentVersion).to.equal(2);
      await new Promise((resolve) => setTimeout(resolve, 2100));
      await rejectsWith(pinned({ clockSkewSeconds: 0 }).verify(pkg), 'SIGNATURE_EXPIRED');
      expect((await pinned().verify(pkg)).documentVersion).to.equal(2);
    });

    it('when verified offline (verifyPackageOffline), the same default 60 s clock skew applies as for a loader', async () => {
      const pkg = randomPackage();
      await signBeside(pkg, { issuedAt: new Date(Date.now() - hour), expires: new Date(Date.now() - 30_000) });
      expect((await pinned().verify(pkg)).documentVersion).to.equal(2);
      const offline = await verifyPackageOffline(pkg, DetachedSignature.defaultPath(pkg), signer.publicKey);
      expect(offline.signerFingerprint).to.equal(signer.fingerprint);
    });

    it('when an expired statement is loaded, it is refused before any package code runs', async () => {
      const marker = dir.join('expired.marker');
      const pkg = buildPackage(dir.join('libexpired.so'), { identity: 'expired', markerPath: marker });
      await signBeside(pkg, { issuedAt: new Date('2001-01-01T00:00:00Z'), expires: '1d' });
      await rejectsWith(pinned().load(pkg), 'SIGNATURE_EXPIRED');
      expect(existsSync(marker)).to.equal(false);
    });
  });

  describe('when an expiry is given as text (expiryTime)', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    it('when it is a duration, it is that long after the issue time', () => {
      expect(expiryTime('90d', now)).to.equal('2026-04-01T00:00:00.000Z');
      expect(expiryTime('12h', now)).to.equal('2026-01-01T12:00:00.000Z');
      expect(expiryTime('30m', now)).to.equal('2026-01-01T00:30:00.000Z');
      expect(expiryTime('45s', now)).to.equal('2026-01-01T00:00:45.000Z');
    });

    it('when it is an RFC 3339 time with an offset, it is that instant in UTC', () => {
      expect(expiryTime('2027-01-01T00:00:00Z', now)).to.equal('2027-01-01T00:00:00.000Z');
      expect(expiryTime('2027-01-01T02:00:00+02:00', now)).to.equal('2027-01-01T00:00:00.000Z');
    });

    it('when it is neither, it is INVALID_INPUT', () => {
      for (const text of ['soon', '90', '90y', '-1d', '2027-01-01', '']) throwsWith(() => expiryTime(text, now), 'INVALID_INPUT');
    });

    it('when it is a time without an offset (not RFC 3339), it is INVALID_INPUT rather than a guess in the local time zone', () => {
      throwsWith(() => expiryTime('2027-01-01T00:00:00', now), 'INVALID_INPUT');
    });

    it('when it names a day that does not exist, it is INVALID_INPUT rather than another day', () => {
      throwsWith(() => expiryTime('2027-02-30T00:00:00Z', now), 'INVALID_INPUT');
    });
  });

  describe('when rollback protection is asked for without a database', () => {
    it('when the trust is pinned public keys, createPackageLoader refuses it with INVALID_INPUT', () => {
      const error = throwsWith(
        () => createPackageLoader({ trust: publicKeyTrust([signerPubPath]), audit: [], policy: { rollbackProtection: true } }),
        'INVALID_INPUT',
      );
      expect(error.message).to.include('database');
      // Without it the same loader is fine.
      expect(createPackageLoader({ trust: publicKeyTrust([signerPubPath]), audit: [], policy: { rollbackProtection: false } }).requireSignatures).to.equal(
        false,
      );
    });
  });

  describe("when version 1 is written (Cloacina's format)", () => {
    it('when signPackage + DetachedSignature.writeToFile write it, the file is byte for byte the Cloacina document and Ed25519 over the raw SHA-256', async () => {
      const pkg = randomPackage(9999);
      const info = await signPackage(pkg, signer.privateKey);
      const path = dir.join('cloacina.sig');
      await DetachedSignature.fromSignatureInfo(info).writeToFile(path);
      const digest = createHash('sha256').update(readFileSync(pkg)).digest();
      expect(info.packageHash).to.equal(digest.toString('hex'));
      expect(info.keyFingerprint).to.equal(sha256Hex(signer.publicKey));
      const expected = `{"version":1,"algorithm":"ed25519","package_hash":"${digest.toString('hex')}","key_fingerprint":"${info.keyFingerprint}","signature":"${info.signature}","signed_at":"${info.signedAt}"}\n`;
      expect(readFileSync(path, 'utf8')).to.equal(expected);
      expect(Object.keys(JSON.parse(readFileSync(path, 'utf8')))).to.deep.equal([
        'version',
        'algorithm',
        'package_hash',
        'key_fingerprint',
        'signature',
        'signed_at',
      ]);
      const signature = Buffer.from(info.signature, 'base64');
      expect(signature).to.have.length(64);
      expect(cryptoVerify(null, digest, nodePublicKey(signer.publicKey), signature)).to.equal(true);
      // The raw 32 bytes, not the hex text, and not a version-2 message.
      expect(cryptoVerify(null, Buffer.from(digest.toString('hex')), nodePublicKey(signer.publicKey), signature)).to.equal(false);
      expect(info.signedAt).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      // And it verifies through the loader as version 1.
      expect((await pinned().verify(pkg, { signature: SignatureSource.DetachedFile(path) })).documentVersion).to.equal(1);
    });
  });
});

describeEngines('version-2 signatures with database keys, several candidates and rollback marks', (t) => {
  const dir = tempDir();
  const kek = randomBytes(32);
  let orgId: string;
  let key: { id: string; fingerprint: string };
  let built = 0;
  after(() => dir.cleanup());

  before(async () => {
    orgId = (await t.keys.createOrganization(t.unique('runners'))).id;
    key = await t.keys.createSigningKey(orgId, 'release', kek);
    await t.keys.trustPublicKey(orgId, (await t.keys.exportPublicKey(key.id)).raw, 'release');
  });

  const signer = () => new DbPackageSigner(t.keys);
  const loaderFor = (policy?: PackagePolicy, db: Database = t.db, org = orgId): PackageLoader =>
    createPackageLoader({ trust: databaseTrust(db, { org }), audit: auditToDatabase(db), requireSignatures: true, policy });
  const randomPackage = (size = 4096): string => {
    const path = dir.join(`pkg-${built++}.bin`);
    writeFileSync(path, randomBytes(size));
    return path;
  };
  /** A real workflow package whose constructor leaves `marker` when it runs. */
  const workflowPackage = (label: string, marker?: string): string =>
    buildPackage(dir.join(`lib${label}-${built++}.so`), { identity: `${label}-${built}`, markerPath: marker });
  async function signV2Beside(path: string, options: StatementOptions) {
    const signed = await signer().signStatementWithDbKey(path, key.id, kek, options);
    await writeSignatureDocument(DetachedSignature.defaultPath(path), signed.document);
    return signed;
  }
  const mark = async (name: string, org = orgId) => (await rollbackFloors(t.db, org, [name])).get(name);

  describe('when signing with a database key', () => {
    for (const digest of ['blake3', 'sha256'] as const) {
      it(`when a ${digest} statement is signed with a stored key, it verifies against the organization and the signing is audited`, async () => {
        const pkg = randomPackage(12_345);
        const signed = await signV2Beside(pkg, { name: 'etl', version: '0.9.1', organization: 'acme', digest, expires: '30d' });
        const digests = await native.hashFileDigests(pkg, { sha256: true, blake3: true });
        expect(signed).to.include({ keyId: key.id, orgId, keyFingerprint: key.fingerprint });
        expect(signed.statement).to.include({
          name: 'etl',
          version: '0.9.1',
          organization: 'acme',
          size: 12_345,
          digestAlgorithm: digest,
          digest: digests[digest],
        });
        const result = await loaderFor().verify(pkg);
        expect(result).to.deep.include({
          documentVersion: 2,
          digestAlgorithm: digest,
          packageHash: digests[digest],
          signerFingerprint: key.fingerprint,
          organization: orgId,
        });
        expect(result.statement).to.deep.equal(signed.statement);
        const events = await listAuditEvents(t.db, { orgId, eventType: 'package.signed', limit: 10 });
        const event = events.find((e) => e.package_path === pkg);
        expect(event, 'a package.signed row for the package').to.not.equal(undefined);
        expect(event).to.include({ key_id: key.id, signer_fingerprint: key.fingerprint, package_hash: digests[digest] });
        // Independent check of the stored key's signature.
        const document = JSON.parse(signed.document);
        const publicKey = (await t.keys.exportPublicKey(key.id)).raw;
        expect(cryptoVerify(null, documentedMessage(document.statement), nodePublicKey(publicKey), Buffer.from(document.signature, 'base64'))).to.equal(true);
      });
    }

    it('when a version-1 signature is made with the stored key (beside and stored), both verify as version 1', async () => {
      const pkg = randomPackage();
      const signed = await signer().signPackageWithDbKey(pkg, key.id, kek, true);
      await DetachedSignature.fromSignatureInfo(signed).writeToFile(DetachedSignature.defaultPath(pkg));
      for (const signature of [SignatureSource.Auto, SignatureSource.Database, SignatureSource.DetachedFile(DetachedSignature.defaultPath(pkg))]) {
        const result = await loaderFor().verify(pkg, { signature });
        expect(result, signature.kind).to.deep.include({
          documentVersion: 1,
          digestAlgorithm: 'sha256',
          statement: null,
          packageHash: sha256Hex(readFileSync(pkg)),
        });
      }
    });

    it('when a package is larger than one read chunk, its statement verifies and it loads from sealed memory (BLAKE3 and SHA-256)', async function () {
      this.timeout(300_000);
      for (const digest of ['blake3', 'sha256'] as const) {
        const marker = dir.join(`large-${digest}.marker`);
        const pkg = buildPackage(dir.join(`liblarge-${digest}.so`), { identity: `large-${digest}`, markerPath: marker, padding: 9 * 1024 * 1024 + 17 });
        expect(statSync(pkg).size).to.be.greaterThan(9 * 1024 * 1024);
        const signed = await signV2Beside(pkg, { name: 'large', version: '1.0.0', digest });
        const digests = await native.hashFileDigests(pkg, { sha256: true, blake3: true });
        expect(signed.statement.digest).to.equal(digests[digest]);
        expect(signed.statement.size).to.equal(statSync(pkg).size);
        if (digest === 'sha256') expect(signed.statement.digest).to.equal(sha256Hex(readFileSync(pkg)));
        expect((await loaderFor().verify(pkg)).statement).to.deep.equal(signed.statement);
        const loaded = await loaderFor({ requireV2: true, expectName: 'large' }).load(pkg);
        expect(loaded.packageHash).to.equal(digests[digest]);
        expect(await loaded.executeTask('whoami', {})).to.deep.equal({ identity: `large-${digest}` });
        loaded.close();
        expect(existsSync(marker)).to.equal(true);
      }
    });

    it('when the key-encryption key is wrong or the key is revoked, no statement is signed', async () => {
      const pkg = randomPackage();
      await rejectsWith(signer().signStatementWithDbKey(pkg, key.id, randomBytes(32), { name: 'x', version: '1.0.0' }), 'KEY_UNSEAL_FAILED');
      const doomed = await t.keys.createSigningKey(orgId, t.unique('doomed'), kek);
      await t.keys.revokeSigningKey(doomed.id);
      await rejectsWith(signer().signStatementWithDbKey(pkg, doomed.id, kek, { name: 'x', version: '1.0.0' }), 'KEY_REVOKED');
      const failures = await listAuditEvents(t.db, { orgId, eventType: 'package.sign.failure', limit: 20 });
      expect(failures.some((e) => e.key_id === doomed.id && e.package_path === pkg)).to.equal(true);
    });

    it('when the statement is invalid (not SemVer), nothing is signed and the refusal is INVALID_INPUT', async () => {
      const pkg = randomPackage();
      await rejectsWith(signer().signStatementWithDbKey(pkg, key.id, kek, { name: 'x', version: 'v1' }), 'INVALID_INPUT');
    });
  });

  describe('when a package has several candidate signatures (a v2 .sig beside, a stored v1)', () => {
    async function twoSignatures(options: Partial<StatementOptions> = {}) {
      const pkg = randomPackage();
      await signer().signPackageWithDbKey(pkg, key.id, kek, true);
      await signV2Beside(pkg, { name: 'svc', version: '2.0.0', ...options });
      return pkg;
    }

    it('when the v2 .sig satisfies the policy (the stored v1 cannot), it verifies as version 2', async () => {
      const pkg = await twoSignatures();
      const result = await loaderFor({ expectName: 'svc', allowedVersions: '2.0.0' }).verify(pkg);
      expect(result.documentVersion).to.equal(2);
      expect(result.statement?.name).to.equal('svc');
    });

    it('when the v2 .sig has expired but the stored v1 verifies and no policy needs v2, it verifies as version 1', async () => {
      const pkg = await twoSignatures({ issuedAt: new Date('2001-01-01T00:00:00Z'), expires: '1d' });
      const result = await loaderFor().verify(pkg);
      expect(result.documentVersion).to.equal(1);
    });

    it('when none satisfies the policy, the policy refusal of the first candidate is reported', async () => {
      const pkg = await twoSignatures();
      await rejectsWith(loaderFor({ expectName: 'other' }).verify(pkg), 'PACKAGE_NAME_MISMATCH');
      await rejectsWith(loaderFor({ allowedVersions: '1.0.0' }).verify(pkg), 'VERSION_NOT_ALLOWED');
      const expired = await twoSignatures({ issuedAt: new Date('2001-01-01T00:00:00Z'), expires: '1d' });
      await rejectsWith(loaderFor({ requireV2: true }).verify(expired), 'SIGNATURE_EXPIRED');
    });

    it('when the .sig is for other bytes and the stored v1 is refused by requireV2, the policy refusal outranks the tampering', async () => {
      const pkg = randomPackage();
      await signer().signPackageWithDbKey(pkg, key.id, kek, true);
      const stale = randomPackage();
      const signed = await signer().signStatementWithDbKey(stale, key.id, kek, { name: 'svc', version: '2.0.0' });
      await writeSignatureDocument(DetachedSignature.defaultPath(pkg), signed.document);
      await rejectsWith(loaderFor({ requireV2: true }).verify(pkg), 'V2_REQUIRED');
      // Without the policy the stored v1 wins over the stale .sig.
      expect((await loaderFor().verify(pkg)).documentVersion).to.equal(1);
    });

    it('when a refusal is audited, the verification.failure row carries the policy code', async () => {
      const pkg = await twoSignatures();
      await rejectsWith(loaderFor({ expectName: 'other' }).verify(pkg), 'PACKAGE_NAME_MISMATCH');
      const rows = await listAuditEvents(t.db, { orgId, eventType: 'verification.failure', limit: 20 });
      const row = rows.find((e) => e.package_path === pkg);
      expect(row?.reason).to.match(/^PACKAGE_NAME_MISMATCH: /);
      expect(row?.signature_verified).to.equal(false);
    });
  });

  describe('when rollback protection records what was loaded', () => {
    it('when 1.2.0 loads, the mark is 1.2.0; then 1.1.0 is refused with ROLLBACK_REFUSED and its constructor never runs', async () => {
      const name = t.unique('pipeline');
      const newer = workflowPackage('newer', dir.join(`${name}-newer.marker`));
      const olderMarker = dir.join(`${name}-older.marker`);
      const older = workflowPackage('older', olderMarker);
      await signV2Beside(newer, { name, version: '1.2.0' });
      await signV2Beside(older, { name, version: '1.1.0' });
      const loader = loaderFor({ rollbackProtection: true });
      expect(await mark(name)).to.equal(undefined);
      (await loader.load(newer)).close();
      expect(existsSync(dir.join(`${name}-newer.marker`))).to.equal(true);
      expect(await mark(name)).to.equal('1.2.0');
      const error = await rejectsWith(loader.load(older), 'ROLLBACK_REFUSED');
      expect(error).to.be.instanceOf(PolicyViolation);
      expect(error.message).to.include('1.1.0').and.include('1.2.0');
      expect(existsSync(olderMarker)).to.equal(false);
      expect(await mark(name)).to.equal('1.2.0');
      const failures = await listAuditEvents(t.db, { orgId, eventType: 'package.load.failure', limit: 20 });
      expect(failures.find((e) => e.package_path === older)?.reason).to.match(/^ROLLBACK_REFUSED: /);
    });

    it('when the same version loads again, or a higher one, it loads; the mark only rises', async () => {
      const name = t.unique('same');
      const a = workflowPackage('same-a');
      const b = workflowPackage('same-b');
      const c = workflowPackage('same-c');
      await signV2Beside(a, { name, version: '2.0.0' });
      await signV2Beside(b, { name, version: '2.0.0' });
      await signV2Beside(c, { name, version: '2.0.1-rc.1' });
      const loader = loaderFor({ rollbackProtection: true });
      (await loader.load(a)).close();
      (await loader.load(b)).close();
      expect(await mark(name)).to.equal('2.0.0');
      // A pre-release of 2.0.1 is higher than 2.0.0 in SemVer order.
      (await loader.load(c)).close();
      expect(await mark(name)).to.equal('2.0.1-rc.1');
      await rejectsWith(loader.load(a), 'ROLLBACK_REFUSED');
    });

    it('when verifying (not loading), the mark is checked but never raised', async () => {
      const name = t.unique('verify-only');
      const low = randomPackage();
      const high = randomPackage();
      await signV2Beside(low, { name, version: '1.0.0' });
      await signV2Beside(high, { name, version: '9.0.0' });
      const loader = loaderFor({ rollbackProtection: true });
      expect((await loader.verify(high)).statement?.version).to.equal('9.0.0');
      expect(await mark(name)).to.equal(undefined);
      const pkg = workflowPackage('verify-only');
      await signV2Beside(pkg, { name, version: '5.0.0' });
      (await loader.load(pkg)).close();
      await rejectsWith(loader.verify(low), 'ROLLBACK_REFUSED');
      expect((await loader.verify(high)).documentVersion).to.equal(2);
      expect(await mark(name)).to.equal('5.0.0');
    });

    it('when two versions differ only in build metadata (the same SemVer precedence), neither is lower: both load', async () => {
      const name = t.unique('build-meta');
      const first = workflowPackage('meta-zzz');
      const second = workflowPackage('meta-aaa');
      const plain = workflowPackage('meta-plain');
      await signV2Beside(first, { name, version: '1.2.0+build.zzz' });
      await signV2Beside(second, { name, version: '1.2.0+build.aaa' });
      await signV2Beside(plain, { name, version: '1.2.0' });
      const loader = loaderFor({ rollbackProtection: true });
      (await loader.load(first)).close();
      // SemVer 2.0.0, section 10: build metadata MUST be ignored when determining precedence.
      (await loader.load(second)).close();
      (await loader.load(plain)).close();
    });

    it('when the mark is lowered with resetVersion, it is audited as package.version.reset and the older version loads', async () => {
      const name = t.unique('reset');
      const newer = workflowPackage('reset-new');
      const olderMarker = dir.join(`${name}.marker`);
      const older = workflowPackage('reset-old', olderMarker);
      await signV2Beside(newer, { name, version: '1.2.0' });
      await signV2Beside(older, { name, version: '1.1.0' });
      const loader = loaderFor({ rollbackProtection: true });
      (await loader.load(newer)).close();
      await rejectsWith(loader.load(older), 'ROLLBACK_REFUSED');
      expect(await resetVersion(t.keys, orgId, name, '1.1.0')).to.deep.equal({ previous: '1.2.0', now: '1.1.0' });
      expect(await mark(name)).to.equal('1.1.0');
      const resets = await listAuditEvents(t.db, { orgId, eventType: 'package.version.reset', limit: 20 });
      const row = resets.find((e) => e.reason?.includes(JSON.stringify(name)));
      expect(row?.reason).to.include('1.2.0').and.include('1.1.0');
      expect(row?.org_id).to.equal(orgId);
      const pkg = await loader.load(older);
      pkg.close();
      expect(existsSync(olderMarker)).to.equal(true);
      expect(await mark(name)).to.equal('1.1.0');
      // Loading the newer one again raises it back.
      (await loader.load(newer)).close();
      expect(await mark(name)).to.equal('1.2.0');
    });

    it('when resetVersion removes the mark (to null), any version loads; without a mark it is NOT_FOUND; a non-SemVer target is INVALID_INPUT', async () => {
      const name = t.unique('remove');
      const high = workflowPackage('remove-high');
      const low = workflowPackage('remove-low');
      await signV2Beside(high, { name, version: '3.0.0' });
      await signV2Beside(low, { name, version: '0.1.0' });
      const loader = loaderFor({ rollbackProtection: true });
      (await loader.load(high)).close();
      await rejectsWith(resetVersion(t.keys, orgId, name, 'three'), 'INVALID_INPUT');
      expect(await mark(name)).to.equal('3.0.0');
      expect(await resetVersion(t.keys, orgId, name, null)).to.deep.equal({ previous: '3.0.0', now: null });
      expect(await mark(name)).to.equal(undefined);
      await rejectsWith(resetVersion(t.keys, orgId, name, null), 'NOT_FOUND');
      await rejectsWith(resetVersion(t.keys, orgId, t.unique('never-loaded'), '1.0.0'), 'NOT_FOUND');
      (await loader.load(low)).close();
      expect(await mark(name)).to.equal('0.1.0');
    });

    it('when rollback protection is off, nothing is recorded and an older version loads past another loader’s mark', async () => {
      const name = t.unique('off');
      const newer = workflowPackage('off-new');
      const older = workflowPackage('off-old');
      await signV2Beside(newer, { name, version: '1.2.0' });
      await signV2Beside(older, { name, version: '1.1.0' });
      (await loaderFor().load(newer)).close();
      expect(await mark(name)).to.equal(undefined);
      (await loaderFor({ rollbackProtection: true }).load(newer)).close();
      (await loaderFor().load(older)).close();
      expect(await mark(name)).to.equal('1.2.0');
    });

    it('when another organization or another package name loads, the marks are separate', async () => {
      const name = t.unique('scoped');
      const other = await t.keys.createOrganization(t.unique('elsewhere'));
      await t.keys.trustPublicKey(other.id, (await t.keys.exportPublicKey(key.id)).raw, 'release');
      const newer = workflowPackage('scoped-new');
      const older = workflowPackage('scoped-old');
      const sibling = workflowPackage('scoped-sibling');
      await signV2Beside(newer, { name, version: '1.2.0' });
      await signV2Beside(older, { name, version: '1.1.0' });
      await signV2Beside(sibling, { name: `${name}-sibling`, version: '0.0.1' });
      (await loaderFor({ rollbackProtection: true }).load(newer)).close();
      (await loaderFor({ rollbackProtection: true }, t.db, other.id).load(older)).close();
      (await loaderFor({ rollbackProtection: true }).load(sibling)).close();
      expect(await mark(name)).to.equal('1.2.0');
      expect(await mark(name, other.id)).to.equal('1.1.0');
      expect(await mark(`${name}-sibling`)).to.equal('0.0.1');
    });

    it('when loads of different versions are started together, every one completes and the highest is the mark', async () => {
      const name = t.unique('together');
      const versions = ['1.0.0', '1.1.0', '1.2.0', '1.3.0'];
      const packages = versions.map((version) => workflowPackage(`together-${version}`));
      for (const [i, version] of versions.entries()) await signV2Beside(packages[i], { name, version });
      const loaders = await Promise.all(versions.map(async () => loaderFor({ rollbackProtection: true }, await t.open())));
      const loaded = await Promise.all(packages.map((pkg, i) => loaders[i].load(pkg)));
      for (const pkg of loaded) pkg.close();
      expect(await mark(name)).to.equal('1.3.0');
    });

    it('when marks are recorded concurrently from several database handles (several runners), the highest version always wins', async function () {
      this.timeout(300_000);
      // Three handles: SQLite handles in one process share libuv's four worker threads, which their busy waits would otherwise exhaust.
      const handles = [t.db, await t.open(), await t.open()];
      const versions = ['1.0.0', '1.7.0', '1.3.0', '1.5.0', '1.1.0', '1.6.0', '1.2.0', '1.4.0'];
      const wrong: string[] = [];
      for (let round = 0; round < 20; round++) {
        const name = t.unique(`race-${round}`);
        const order = versions.map((_, i) => versions[(i + round) % versions.length]);
        await Promise.all(order.map((version, i) => databaseTrust(handles[i % handles.length], { org: orgId }).versionMarks!.record(name, version)));
        const got = await mark(name);
        if (got !== '1.7.0') wrong.push(`${name}: ${got}`);
      }
      expect(wrong, `marks lower than the highest version recorded: ${wrong.join('; ')}`).to.deep.equal([]);
    });

    it('when an older version also has a stored version-1 signature, deleting its v2 .sig does not get it past the mark', async () => {
      const name = t.unique('bypass');
      const newer = workflowPackage('bypass-new');
      const olderMarker = dir.join(`${name}.marker`);
      const older = workflowPackage('bypass-old', olderMarker);
      await signV2Beside(newer, { name, version: '1.2.0' });
      await signV2Beside(older, { name, version: '1.1.0' });
      // The organization's CI also stored the default (version-1) signature of the older build.
      await signer().signPackageWithDbKey(older, key.id, kek, true);
      const loader = loaderFor({ rollbackProtection: true });
      (await loader.load(newer)).close();
      // With its .sig beside, the older build is refused (the v2 candidate by the mark; the v1 candidate needs v2).
      await rejectsWith(loader.load(older), 'ROLLBACK_REFUSED');
      rmSync(DetachedSignature.defaultPath(older));
      // The same bytes, with the .sig removed: the stored version-1 signature alone must not roll the runner back.
      await rejectsWith(loader.load(older), 'ROLLBACK_REFUSED', 'V2_REQUIRED');
      expect(existsSync(olderMarker)).to.equal(false);
    });
  });
});
