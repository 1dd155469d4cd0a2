import { expect } from 'chai';
import { appendFileSync, readFileSync } from 'node:fs';
import { auditEvent } from '../src/audit/audit-trail';
import { ECS_CATEGORIZATION, ecsFields } from '../src/audit/ecs';
import type { AuditEventInput, AuditEventType } from '../src/audit/events';
import { auditLine, auditToFile } from '../src/audit/sink';
import { writePackage } from './fixtures/random-package';
import { runCli, tempDir } from './helpers';

/** ECS 8.x allowed event.category values and the event.type values expected with each (the "expected pairs"). */
const ECS_ALLOWED: Record<string, readonly string[]> = {
  api: ['access', 'admin', 'allowed', 'change', 'creation', 'deletion', 'denied', 'end', 'info', 'start', 'user'],
  configuration: ['access', 'change', 'creation', 'deletion', 'info'],
  database: ['access', 'change', 'info', 'error'],
  file: ['change', 'creation', 'deletion', 'info'],
  iam: ['admin', 'change', 'creation', 'deletion', 'group', 'info', 'user'],
  library: ['start'],
  package: ['access', 'change', 'deletion', 'info', 'installation', 'start'],
};

/** The mapping docs/audit.md documents, written out independently of src/audit/ecs.ts. */
const EXPECTED: Record<AuditEventType, [category: string, type: string, outcome: 'success' | 'failure']> = {
  'verification.success': ['file', 'info', 'success'],
  'verification.failure': ['file', 'info', 'failure'],
  'package.load.success': ['library', 'start', 'success'],
  'package.load.failure': ['library', 'start', 'failure'],
  'package.signed': ['file', 'creation', 'success'],
  'package.sign.failure': ['file', 'creation', 'failure'],
  'package.uploaded': ['package', 'change', 'success'],
  'package.upload.failure': ['package', 'change', 'failure'],
  'package.version.reset': ['configuration', 'change', 'success'],
  'package.revoked': ['configuration', 'creation', 'success'],
  'package.unrevoked': ['configuration', 'deletion', 'success'],
  'key.signing.created': ['configuration', 'creation', 'success'],
  'key.signing.revoked': ['configuration', 'deletion', 'success'],
  'key.signing.rewrapped': ['configuration', 'change', 'success'],
  'key.exported': ['configuration', 'access', 'success'],
  'key.trusted.added': ['configuration', 'creation', 'success'],
  'key.trusted.revoked': ['configuration', 'deletion', 'success'],
  'key.trust_acl.granted': ['configuration', 'creation', 'success'],
  'key.trust_acl.revoked': ['configuration', 'deletion', 'success'],
  'token.created': ['iam', 'creation', 'success'],
  'token.revoked': ['iam', 'deletion', 'success'],
  'api.request.refused': ['api', 'denied', 'failure'],
  'audit.checkpoint.issued': ['database', 'info', 'success'],
};

const FINGERPRINT = 'ab'.repeat(32);
const HASH = 'cd'.repeat(32);
const ORG = '0b6c1f6e-5d7e-4c59-9a43-0d5d3c1a2b3c';
const TOKEN = '7f0e2d3c-1b2a-4c5d-8e9f-a0b1c2d3e4f5';
const ecs = (input: AuditEventInput) => ecsFields(auditEvent(input)) as any;

describe('the ECS fields of audit lines', () => {
  describe('per event type', () => {
    for (const [eventType, [category, type, outcome]] of Object.entries(EXPECTED) as [AuditEventType, (typeof EXPECTED)[AuditEventType]][]) {
      it(`when the event is ${eventType}, event.action names it, category ${category}, type ${type}, outcome ${outcome}`, () => {
        const fields = ecs({ eventType });
        expect(fields.event).to.include({ action: eventType, outcome, kind: 'event' });
        expect(fields.event.category).to.deep.equal([category]);
        expect(fields.event.type).to.deep.equal([type]);
        expect(ECS_ALLOWED[category], `${category} is an ECS category`).to.include(type);
      });
    }

    it('when a new event type is added, the table above covers it', () => {
      expect(Object.keys(ECS_CATEGORIZATION).sort()).to.deep.equal(Object.keys(EXPECTED).sort());
    });
  });

  it('when a verification succeeds, file.* carries the path, the SHA-256 and a valid code signature by the signer', () => {
    const fields = ecs({
      eventType: 'verification.success',
      orgId: ORG,
      packagePath: '/pkg/a.so',
      packageHash: HASH,
      signerFingerprint: FINGERPRINT,
      signatureVerified: true,
    });
    expect(fields.file).to.deep.equal({
      path: '/pkg/a.so',
      hash: { sha256: HASH },
      code_signature: {
        exists: true,
        valid: true,
        trusted: true,
        status: 'VERIFIED',
        signing_id: FINGERPRINT,
        subject_name: FINGERPRINT,
        digest_algorithm: 'sha256',
      },
    });
    expect(fields.organization).to.deep.equal({ id: ORG });
  });

  it('when the digest is BLAKE3 (a version-2 statement), the hash is file.hash.blake3 and there is no sha256', () => {
    const fields = ecs({
      eventType: 'verification.success',
      packageHash: HASH,
      signerFingerprint: FINGERPRINT,
      signatureVerified: true,
      digestAlgorithm: 'blake3',
    });
    expect(fields.file.hash).to.deep.equal({ blake3: HASH });
    expect(fields.file.code_signature.digest_algorithm).to.equal('blake3');
  });

  it('when a verification fails on a tampered package, the signature exists, is not valid, and the status and reason say why', () => {
    const fields = ecs({ eventType: 'verification.failure', packagePath: '/pkg/a.so', signatureVerified: false, reason: 'TAMPERED_PACKAGE: digest mismatch' });
    expect(fields.event).to.include({ outcome: 'failure', reason: 'TAMPERED_PACKAGE: digest mismatch' });
    expect(fields.file.code_signature).to.deep.equal({ exists: true, valid: false, status: 'TAMPERED_PACKAGE' });
  });

  it('when a load fails for want of a signature, file.code_signature.exists is false', () => {
    const fields = ecs({ eventType: 'package.load.failure', packagePath: '/pkg/a.so', signatureVerified: false, reason: 'SIGNATURE_NOT_FOUND: none' });
    expect(fields.file.code_signature).to.deep.equal({ exists: false, status: 'SIGNATURE_NOT_FOUND' });
  });

  it('when the signer is not trusted, the signature is marked untrusted and not valid', () => {
    const fields = ecs({ eventType: 'verification.failure', signatureVerified: false, reason: 'UNTRUSTED_SIGNER: unknown key' });
    expect(fields.file.code_signature).to.deep.equal({ exists: true, valid: false, trusted: false, status: 'UNTRUSTED_SIGNER' });
  });

  it('when a check failed before the signature was read, validity is left unknown', () => {
    const fields = ecs({ eventType: 'package.load.failure', packagePath: '/pkg/a.so', signatureVerified: false, reason: 'DATABASE_UNAVAILABLE: no answer' });
    expect(fields.file.code_signature).to.deep.equal({ status: 'DATABASE_UNAVAILABLE' });
  });

  it('when an unsigned package is loaded because signatures are not required, the signature does not exist and the status says it was allowed', () => {
    const fields = ecs({ eventType: 'package.load.success', packagePath: '/pkg/a.so', signatureVerified: false, reason: 'unsigned package allowed' });
    expect(fields.file.code_signature).to.deep.equal({ exists: false, status: 'UNSIGNED_ALLOWED' });
    expect(fields.event.outcome).to.equal('success');
  });

  it('when the signing service acted, user.id is the API token id', () => {
    const fields = ecs({ eventType: 'package.signed', orgId: ORG, packageHash: HASH, signerFingerprint: FINGERPRINT, actor: TOKEN });
    expect(fields.user).to.deep.equal({ id: TOKEN });
  });

  it('when a key operation names a fingerprint, it stays out of file.* (a key is not a file)', () => {
    const fields = ecs({ eventType: 'key.signing.created', orgId: ORG, keyId: TOKEN, signerFingerprint: FINGERPRINT });
    expect(fields).not.to.have.property('file');
    expect(fields.organization).to.deep.equal({ id: ORG });
  });

  it('when fields have no value, they are left out (no nulls in the ECS part)', () => {
    const fields = ecs({ eventType: 'api.request.refused' });
    expect(fields).to.have.keys(['@timestamp', 'ecs', 'event']);
    expect(fields.event).not.to.have.property('reason');
  });

  it('when written as a line, the flat snake_case fields are kept beside the ECS ones', () => {
    const event = auditEvent({ eventType: 'verification.success', packagePath: '/pkg/a.so', packageHash: HASH, signatureVerified: true, actor: TOKEN });
    const line = JSON.parse(auditLine(event));
    expect(line).to.include({
      id: event.id,
      event_type: 'verification.success',
      timestamp: event.timestamp,
      org_id: null,
      key_id: null,
      package_path: '/pkg/a.so',
      package_hash: HASH,
      signer_fingerprint: null,
      signature_verified: true,
      reason: null,
      actor: TOKEN,
      '@timestamp': event.timestamp,
    });
    expect(line.event.id).to.equal(event.id);
    expect(line).not.to.have.property('digest_algorithm');
  });

  it('when written to a file, each event is one JSON line with its ECS fields', async () => {
    const dir = tempDir();
    try {
      const sink = auditToFile(dir.join('audit.jsonl'));
      await sink.write(auditEvent({ eventType: 'token.created', orgId: ORG, actor: TOKEN }));
      await sink.write(auditEvent({ eventType: 'token.revoked', orgId: ORG }));
      const lines = readFileSync(dir.join('audit.jsonl'), 'utf8')
        .trimEnd()
        .split('\n')
        .map((text) => JSON.parse(text));
      expect(lines.map((line) => [line.event.action, line.event.type[0]])).to.deep.equal([
        ['token.created', 'creation'],
        ['token.revoked', 'deletion'],
      ]);
    } finally {
      dir.cleanup();
    }
  });

  describe('from the CLI (a real process)', () => {
    const dir = tempDir();
    const auditLog = dir.join('audit.jsonl');
    after(() => dir.cleanup());
    const cli = (args: string[]) => runCli(args, { CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: auditLog });
    const lastLine = () => JSON.parse(readFileSync(auditLog, 'utf8').trimEnd().split('\n').pop() as string);
    let pkg: string;
    let pub: string;
    let fingerprint: string;

    before(() => {
      const generated = cli(['keys', 'generate', '--name', 'ecs', '--output', dir.join('ecs.pem'), '--json']).json();
      pub = generated.publicKeyPath;
      fingerprint = generated.fingerprint;
      pkg = writePackage(dir.join('ecs.so'));
      expect(cli(['package', 'sign', pkg, '--key', generated.privateKeyPath]).status).to.equal(0);
    });

    it('when `package verify` succeeds, its audit line carries event.outcome success and the verified file', () => {
      expect(cli(['package', 'verify', pkg, '--trust-key', pub]).status).to.equal(0);
      const line = lastLine();
      expect(line.event).to.include({ action: 'verification.success', outcome: 'success' });
      expect(line.file.path).to.equal(pkg);
      expect(line.file.hash.sha256).to.match(/^[0-9a-f]{64}$/);
      expect(line.file.code_signature).to.include({ valid: true, signing_id: fingerprint });
    });

    it('when `package verify` finds a tampered package, its audit line carries event.outcome failure and the status', () => {
      appendFileSync(pkg, 'x');
      expect(cli(['package', 'verify', pkg, '--trust-key', pub]).status).to.equal(1);
      const line = lastLine();
      expect(line.event).to.include({ action: 'verification.failure', outcome: 'failure' });
      expect(line.file.code_signature).to.include({ valid: false, status: 'TAMPERED_PACKAGE' });
    });
  });
});
