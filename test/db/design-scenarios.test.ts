// Cloacina's package-signing integration scenarios (its "Package signing integration tests and
// documentation"), and the key rotation of its operator guide ("Package Signing and Verification"),
// run on SQLite and PostgreSQL, once through the API and once through the CLI. Each scenario is written once, against a `Driver` (what an operator does: create orgs and
// keys, trust, revoke, grant, sign, verify), and the two drivers do it in their own way:
// - the API: DbKeyManager, DbPackageSigner, and a package loader over databaseTrust, with the signature
//   document given in memory (SignatureSource.Memory) or read from the stored signatures (Database);
// - the CLI: `orgs`, `keys`, `package sign --store --output`, `package verify --org [--signature] --json`
//   (a detached signature file, or Auto: the stored signatures).
// The contract: an organization trusts exactly the active trusted_keys of its own and of every
// organization it reaches through active grants; a signing key is trusted by nobody until its public
// key is trusted. For one signature the checks run hash (TAMPERED_PACKAGE), then signer trusted
// (UNTRUSTED_SIGNER), then Ed25519 (INVALID_SIGNATURE).
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { auditToDatabase, CloacinaSignError, createPackageLoader, databaseTrust, generateKeypair, publicKeyToPem, SignatureSource } from '../../src';
import { DbPackageSigner } from '../../src/signing/db-signer';
import { DetachedSignature } from '../../src/formats/v1';
import { runCli, tempDir } from '../helpers';
import { writePackage } from '../fixtures/random-package';
import { describeEngines, type EngineUnderTest } from './engines';

interface Org {
  id: string;
  name: string;
}

interface Key {
  id: string;
  fingerprint: string;
}

interface TrustedKey extends Key {
  name: string | null;
  createdAt: string;
}

/** One verification's outcome, the same for both drivers. */
interface Outcome {
  verified: boolean;
  packageHash?: string | null;
  fingerprint?: string | null;
  code?: string;
  message?: string;
}

/** What an operator does, through the API or through the CLI. */
interface Driver {
  via: 'API' | 'CLI';
  createOrg(prefix: string): Promise<Org>;
  createSigningKey(org: Org, name: string): Promise<Key>;
  /** Exports the public key of a signing key and trusts it for `org` (the trusted key is a new row with its own id). */
  trustSigningKey(org: Org, key: Key, name: string): Promise<TrustedKey>;
  /** Trusts a public key from a PEM file (a key from outside the database). */
  trustPublicKeyFile(org: Org, pemPath: string, name: string): Promise<TrustedKey>;
  revokeTrustedKey(id: string): Promise<void>;
  revokeSigningKey(id: string): Promise<void>;
  grantTrust(parent: Org, child: Org): Promise<void>;
  revokeTrust(parent: Org, child: Org): Promise<void>;
  /** Signs with a database key, stores the signature, and writes the signature document to `<pkg>.signature` (not beside as .sig). */
  sign(pkg: string, key: Key): Promise<string>;
  /** Tries to sign and returns the error code of the refusal. */
  refuseToSign(pkg: string, key: Key): Promise<string>;
  /** Verifies `pkg` as `org`: with that signature document, or (none given) with the stored signatures. */
  verify(pkg: string, org: Org, signature?: string): Promise<Outcome>;
}

const sha256File = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

function expectVerified(outcome: Outcome, pkg: string, key: Key): void {
  expect(outcome, JSON.stringify(outcome)).to.include({ verified: true, fingerprint: key.fingerprint, packageHash: sha256File(pkg) });
}

function expectRejected(outcome: Outcome, code: string): void {
  expect(outcome.verified, JSON.stringify(outcome)).to.equal(false);
  expect(outcome.code, outcome.message).to.equal(code);
}

/** The scenarios' tampering: `bytes[100] ^= 0xFF` after signing. */
function tamper(pkg: string): void {
  const bytes = readFileSync(pkg);
  bytes[100] ^= 0xff;
  writeFileSync(pkg, bytes);
}

/** Flips one bit of the 64 Ed25519 signature bytes of a signature document, leaving it well-formed. */
function corruptSignature(sigPath: string): void {
  const document = JSON.parse(readFileSync(sigPath, 'utf8'));
  const bytes = Buffer.from(document.signature, 'base64');
  expect(bytes).to.have.length(64);
  bytes[0] ^= 0x01;
  document.signature = bytes.toString('base64');
  writeFileSync(sigPath, `${JSON.stringify(document)}\n`);
}

function apiDriver(t: EngineUnderTest, kek: Buffer): Driver {
  const signer = () => new DbPackageSigner(t.keys);
  return {
    via: 'API',
    createOrg: (prefix) => t.keys.createOrganization(t.unique(prefix)),
    async createSigningKey(org, name) {
      const key = await t.keys.createSigningKey(org.id, name, kek);
      expect(key.orgId).to.equal(org.id);
      return key;
    },
    async trustSigningKey(org, key, name) {
      const exported = await t.keys.exportPublicKey(key.id);
      const trusted = await t.keys.trustPublicKey(org.id, exported.raw, name);
      expect(trusted.fingerprint).to.equal(key.fingerprint);
      expect(trusted.id).not.to.equal(key.id);
      return trusted;
    },
    trustPublicKeyFile: (org, pemPath, name) => t.keys.trustPublicKeyPem(org.id, readFileSync(pemPath, 'utf8'), name),
    async revokeTrustedKey(id) {
      expect((await t.keys.revokeTrustedKey(id)).revokedAt).to.be.a('string');
    },
    async revokeSigningKey(id) {
      expect((await t.keys.revokeSigningKey(id)).revokedAt).to.be.a('string');
    },
    async grantTrust(parent, child) {
      await t.keys.grantTrust(parent.id, child.id);
    },
    async revokeTrust(parent, child) {
      await t.keys.revokeTrust(parent.id, child.id);
    },
    async sign(pkg, key) {
      const signed = await signer().signPackageWithDbKey(pkg, key.id, kek, true);
      expect(signed.keyFingerprint).to.equal(key.fingerprint);
      expect(signed.signatureId).to.be.a('string');
      const path = `${pkg}.signature`;
      await DetachedSignature.fromSignatureInfo(signed).writeToFile(path);
      return path;
    },
    async refuseToSign(pkg, key) {
      try {
        await signer().signPackageWithDbKey(pkg, key.id, kek, true);
      } catch (error) {
        expect(error).to.be.instanceOf(CloacinaSignError);
        return (error as CloacinaSignError).code;
      }
      throw new Error(`signing ${pkg} with ${key.id} succeeded; expected a refusal`);
    },
    async verify(pkg, org, signature) {
      const loader = createPackageLoader({ trust: databaseTrust(t.db, { org: org.id }), audit: auditToDatabase(t.db) });
      const source = signature ? SignatureSource.Memory(readFileSync(signature)) : SignatureSource.Database;
      try {
        const result = await loader.verify(pkg, { signature: source });
        expect(result.organization).to.equal(org.id);
        expect(result.path).to.equal(pkg);
        return { verified: true, packageHash: result.packageHash, fingerprint: result.signerFingerprint };
      } catch (error) {
        if (!(error instanceof CloacinaSignError)) throw error;
        return { verified: false, code: error.code, message: error.message };
      }
    },
  };
}

function cliDriver(t: EngineUnderTest, dir: ReturnType<typeof tempDir>, kek: string): Driver {
  const cli = (args: string[]) =>
    runCli([...args, '--database', t.url], { CLOACINA_KEY_ENCRYPTION_KEY: kek, CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: '' });
  const ok = (args: string[]) => {
    const result = cli([...args, '--json']);
    expect(result.status, `${args.join(' ')}: ${result.stderr}`).to.equal(0);
    return result.json();
  };
  return {
    via: 'CLI',
    async createOrg(prefix) {
      const org = ok(['orgs', 'create', t.unique(prefix)]);
      return { id: org.id, name: org.name };
    },
    async createSigningKey(org, name) {
      const key = ok(['keys', 'generate', '--name', name, '--org', org.name]);
      expect(key.orgId).to.equal(org.id);
      return { id: key.id, fingerprint: key.fingerprint };
    },
    async trustSigningKey(org, key, name) {
      const pem = dir.join(`${key.id}.pub.pem`);
      expect(ok(['keys', 'export', key.id, '--format', 'pem', '--output', pem]).fingerprint).to.equal(key.fingerprint);
      const trusted = await this.trustPublicKeyFile(org, pem, name);
      expect(trusted.fingerprint).to.equal(key.fingerprint);
      expect(trusted.id).not.to.equal(key.id);
      return trusted;
    },
    async trustPublicKeyFile(org, pemPath, name) {
      const trusted = ok(['keys', 'trust', '--import', pemPath, '--name', name, '--org', org.id]);
      expect(trusted.orgId).to.equal(org.id);
      return { id: trusted.id, name: trusted.name, fingerprint: trusted.fingerprint, createdAt: trusted.createdAt };
    },
    async revokeTrustedKey(id) {
      expect(ok(['keys', 'revoke', id])).to.include({ id, kind: 'trusted' });
    },
    async revokeSigningKey(id) {
      expect(ok(['keys', 'revoke', id])).to.include({ id, kind: 'signing' });
    },
    async grantTrust(parent, child) {
      ok(['orgs', 'grant-trust', '--from', parent.name, '--to', child.name]);
    },
    async revokeTrust(parent, child) {
      ok(['orgs', 'revoke-trust', '--from', parent.name, '--to', child.name]);
    },
    async sign(pkg, key) {
      const path = `${pkg}.signature`;
      const signed = ok(['package', 'sign', pkg, '--key-id', key.id, '--store', '--output', path]);
      expect(signed).to.include({ keyFingerprint: key.fingerprint, signaturePath: path });
      expect(signed.id).to.be.a('string');
      return path;
    },
    async refuseToSign(pkg, key) {
      const result = cli(['package', 'sign', pkg, '--key-id', key.id, '--store', '--output', `${pkg}.refused.sig`, '--json']);
      expect(result.status, result.stderr).to.equal(2);
      return result.json().error.code;
    },
    async verify(pkg, org, signature) {
      const result = cli(['package', 'verify', pkg, '--org', org.id, ...(signature ? ['--signature', signature] : []), '--json']);
      const report = result.json();
      expect(report.results, result.stdout).to.have.length(1);
      const [one] = report.results;
      expect(one.package).to.equal(pkg);
      expect(report.verified).to.equal(one.verified);
      expect(result.status, result.stderr).to.equal(one.verified ? 0 : 1);
      return one.verified
        ? { verified: true, packageHash: one.packageHash, fingerprint: one.keyFingerprint }
        : { verified: false, code: one.error.code, message: one.error.message };
    },
  };
}

describeEngines('the package-signing integration scenarios', (t) => {
  const dir = tempDir();
  after(() => dir.cleanup());
  // One KEK per database: the API and the CLI seal their keys under the same one.
  const kek = randomBytes(32);
  const drivers: Driver[] = [apiDriver(t, kek), cliDriver(t, dir, kek.toString('base64'))];
  const newPackage = (prefix: string) => writePackage(dir.join(`${t.unique(prefix)}.so`));

  for (const d of drivers) {
    describe(`through the ${d.via}`, () => {
      /** An organization with a signing key whose public key it trusts: every scenario's setup. */
      async function trustedSigner(prefix = 'org') {
        const org = await d.createOrg(prefix);
        const key = await d.createSigningKey(org, 'release');
        const trusted = await d.trustSigningKey(org, key, 'release');
        return { org, key, trusted };
      }

      describe('happy path and revoked key', () => {
        it('when an organization trusts the public key of its signing key, it verifies a package signed with that key, from the signature document and from the stored signature', async () => {
          const { org, key } = await trustedSigner();
          const pkg = newPackage('happy');
          const sig = await d.sign(pkg, key);
          expectVerified(await d.verify(pkg, org, sig), pkg, key);
          expectVerified(await d.verify(pkg, org), pkg, key);
        });

        it('when the trusted key is revoked, it rejects the signature with UNTRUSTED_SIGNER in that organization and in those inheriting it through one and two grants', async () => {
          const { org, key, trusted } = await trustedSigner('team');
          const [parent, grandparent] = [await d.createOrg('parent'), await d.createOrg('grandparent')];
          await d.grantTrust(parent, org);
          await d.grantTrust(grandparent, parent);
          const pkg = newPackage('revoked');
          const sig = await d.sign(pkg, key);
          for (const verifier of [org, parent, grandparent]) expectVerified(await d.verify(pkg, verifier, sig), pkg, key);
          await d.revokeTrustedKey(trusted.id);
          for (const verifier of [org, parent, grandparent]) expectRejected(await d.verify(pkg, verifier, sig), 'UNTRUSTED_SIGNER');
          // The stored signature too, at the end of the chain.
          expectRejected(await d.verify(pkg, grandparent), 'UNTRUSTED_SIGNER');
        });
      });

      describe('key rotation', () => {
        /** The old key signed package A, the new key (trusted too) signed package B. */
        async function rotation() {
          const { org, key: oldKey, trusted: oldTrusted } = await trustedSigner('rotation');
          const pkgA = newPackage('a');
          const oldSig = await d.sign(pkgA, oldKey);
          const newKey = await d.createSigningKey(org, 'release-v2');
          await d.trustSigningKey(org, newKey, 'release-v2');
          const pkgB = newPackage('b');
          const newSig = await d.sign(pkgB, newKey);
          return { org, oldKey, oldTrusted, newKey, pkgA, oldSig, pkgB, newSig };
        }

        it('when the old and the new keys are both trusted, it verifies the signatures of both', async () => {
          const r = await rotation();
          expectVerified(await d.verify(r.pkgA, r.org, r.oldSig), r.pkgA, r.oldKey);
          expectVerified(await d.verify(r.pkgB, r.org, r.newSig), r.pkgB, r.newKey);
          expectVerified(await d.verify(r.pkgA, r.org), r.pkgA, r.oldKey);
          expectVerified(await d.verify(r.pkgB, r.org), r.pkgB, r.newKey);
        });

        it('when the old signing key is revoked, the old signature still verifies (a signing key is not a trusted key) but the old key can no longer sign (KEY_REVOKED)', async () => {
          const r = await rotation();
          await d.revokeSigningKey(r.oldKey.id);
          expectVerified(await d.verify(r.pkgA, r.org, r.oldSig), r.pkgA, r.oldKey);
          expect(await d.refuseToSign(newPackage('after'), r.oldKey)).to.equal('KEY_REVOKED');
          expectVerified(await d.verify(r.pkgB, r.org, r.newSig), r.pkgB, r.newKey);
        });

        it('when the old trusted key is revoked too, the old signature is UNTRUSTED_SIGNER and the new one still verifies', async () => {
          const r = await rotation();
          await d.revokeSigningKey(r.oldKey.id);
          await d.revokeTrustedKey(r.oldTrusted.id);
          expectRejected(await d.verify(r.pkgA, r.org, r.oldSig), 'UNTRUSTED_SIGNER');
          expectRejected(await d.verify(r.pkgA, r.org), 'UNTRUSTED_SIGNER');
          expectVerified(await d.verify(r.pkgB, r.org, r.newSig), r.pkgB, r.newKey);
          expectVerified(await d.verify(r.pkgB, r.org), r.pkgB, r.newKey);
        });
      });

      describe('trust across organizations', () => {
        it('when a key is trusted only by organization A, verifying as organization B is UNTRUSTED_SIGNER', async () => {
          const { org: a, key } = await trustedSigner('a');
          const b = await d.createOrg('b');
          const pkg = newPackage('cross');
          const sig = await d.sign(pkg, key);
          expectVerified(await d.verify(pkg, a, sig), pkg, key);
          const refused = await d.verify(pkg, b, sig);
          expectRejected(refused, 'UNTRUSTED_SIGNER');
          expect(refused.message).to.include(key.fingerprint);
        });

        it('when B grants trust to A (grant-trust --from B --to A), it verifies as B', async () => {
          const { org: a, key } = await trustedSigner('a');
          const b = await d.createOrg('b');
          const pkg = newPackage('granted');
          const sig = await d.sign(pkg, key);
          await d.grantTrust(b, a);
          expectVerified(await d.verify(pkg, b, sig), pkg, key);
          expectVerified(await d.verify(pkg, b), pkg, key);
        });

        it("when B's grant to A is revoked (revoke-trust), it is UNTRUSTED_SIGNER as B again, and still verifies as A", async () => {
          const { org: a, key } = await trustedSigner('a');
          const b = await d.createOrg('b');
          const pkg = newPackage('ungranted');
          const sig = await d.sign(pkg, key);
          await d.grantTrust(b, a);
          expectVerified(await d.verify(pkg, b, sig), pkg, key);
          await d.revokeTrust(b, a);
          expectRejected(await d.verify(pkg, b, sig), 'UNTRUSTED_SIGNER');
          expectVerified(await d.verify(pkg, a, sig), pkg, key);
        });

        it('when a signing key was never trusted, its signatures verify nowhere, not even in its own organization', async () => {
          const owner = await d.createOrg('owner');
          const key = await d.createSigningKey(owner, 'never-trusted');
          // The owner trusts another key of its own: having trusted keys does not make its signing keys trusted.
          const other = await d.createSigningKey(owner, 'other');
          await d.trustSigningKey(owner, other, 'other');
          const parent = await d.createOrg('parent');
          await d.grantTrust(parent, owner);
          const stranger = await d.createOrg('stranger');
          const pkg = newPackage('never');
          const sig = await d.sign(pkg, key);
          for (const verifier of [owner, parent, stranger]) expectRejected(await d.verify(pkg, verifier, sig), 'UNTRUSTED_SIGNER');
          expectRejected(await d.verify(pkg, owner), 'UNTRUSTED_SIGNER');
          // The trust that does exist works: the other key's signature verifies in the owner and the parent.
          const otherPkg = newPackage('other');
          const otherSig = await d.sign(otherPkg, other);
          expectVerified(await d.verify(otherPkg, owner, otherSig), otherPkg, other);
          expectVerified(await d.verify(otherPkg, parent, otherSig), otherPkg, other);
        });
      });

      describe('tampering and the order of the checks', () => {
        it('when a byte of the package is flipped after signing, it is TAMPERED_PACKAGE', async () => {
          const { org, key } = await trustedSigner('tamper');
          const pkg = newPackage('tampered');
          const sig = await d.sign(pkg, key);
          expectVerified(await d.verify(pkg, org, sig), pkg, key);
          tamper(pkg);
          const refused = await d.verify(pkg, org, sig);
          expectRejected(refused, 'TAMPERED_PACKAGE');
          expect(refused.message).to.include(sha256File(pkg));
        });

        it('when a tampered package was signed by an untrusted key or carries corrupted signature bytes, it is still TAMPERED_PACKAGE (the hash is checked first)', async () => {
          const { org, key } = await trustedSigner('order');
          const untrusted = await d.createSigningKey(org, 'untrusted');
          const byUntrusted = newPackage('untrusted');
          const untrustedSig = await d.sign(byUntrusted, untrusted);
          expectRejected(await d.verify(byUntrusted, org, untrustedSig), 'UNTRUSTED_SIGNER');
          tamper(byUntrusted);
          expectRejected(await d.verify(byUntrusted, org, untrustedSig), 'TAMPERED_PACKAGE');
          corruptSignature(untrustedSig);
          expectRejected(await d.verify(byUntrusted, org, untrustedSig), 'TAMPERED_PACKAGE');

          const byTrusted = newPackage('corrupted');
          const trustedSig = await d.sign(byTrusted, key);
          corruptSignature(trustedSig);
          tamper(byTrusted);
          expectRejected(await d.verify(byTrusted, org, trustedSig), 'TAMPERED_PACKAGE');
        });

        it('when the signature bytes are corrupted but the signer is trusted and the hash is right, it is INVALID_SIGNATURE', async () => {
          const { org, key } = await trustedSigner('invalid');
          const pkg = newPackage('invalid');
          const sig = await d.sign(pkg, key);
          corruptSignature(sig);
          expectRejected(await d.verify(pkg, org, sig), 'INVALID_SIGNATURE');
        });

        it('when the signature bytes are corrupted and the signer is untrusted, it is UNTRUSTED_SIGNER (the signer is checked before Ed25519)', async () => {
          const { org } = await trustedSigner('signer-first');
          const untrusted = await d.createSigningKey(org, 'untrusted');
          const pkg = newPackage('signer-first');
          const sig = await d.sign(pkg, untrusted);
          corruptSignature(sig);
          expectRejected(await d.verify(pkg, org, sig), 'UNTRUSTED_SIGNER');
        });
      });
    });
  }

  /**
   * root -> sub -> team (grants), root -> stale (a revoked grant). Trusted keys (outside keys, from PEM
   * files): team trusts `teamKey`, and `revokedKey` which it revoked; root trusts `rootKey`; stale trusts `staleKey`.
   */
  async function trustTopology(d: Driver) {
    const [root, sub, team, stale] = [await d.createOrg('root'), await d.createOrg('sub'), await d.createOrg('team'), await d.createOrg('stale')];
    const pem = (name: string) => {
      const path = dir.join(`${t.unique(name)}.pub.pem`);
      writeFileSync(path, publicKeyToPem(generateKeypair().publicKey));
      return path;
    };
    const teamKey = await d.trustPublicKeyFile(team, pem('team'), 'team-release');
    const revokedKey = await d.trustPublicKeyFile(team, pem('revoked'), 'team-old');
    await d.revokeTrustedKey(revokedKey.id);
    const rootKey = await d.trustPublicKeyFile(root, pem('root'), 'root-release');
    const staleKey = await d.trustPublicKeyFile(stale, pem('stale'), 'stale-release');
    await d.grantTrust(root, sub);
    await d.grantTrust(sub, team);
    await d.grantTrust(root, stale);
    await d.revokeTrust(root, stale);
    return { root, sub, team, stale, teamKey, revokedKey, rootKey, staleKey };
  }

  describe('effective trust and grants through the API', () => {
    const d = drivers[0];
    let topo: Awaited<ReturnType<typeof trustTopology>>;
    before(async () => {
      topo = await trustTopology(d);
    });

    it('when an organization trusts keys directly and through a two-level chain, listTrustedKeys gives each with the organization trusting it directly and the grant path', async () => {
      const { root, sub, team, teamKey, rootKey } = topo;
      const summary = async (org: Org) =>
        (await t.keys.listTrustedKeys(org.id)).map((k) => ({
          id: k.id,
          fingerprint: k.fingerprint,
          orgId: k.orgId,
          inheritedFrom: k.inheritedFrom,
          path: k.path,
        }));
      expect(await summary(root)).to.have.deep.members([
        { id: rootKey.id, fingerprint: rootKey.fingerprint, orgId: root.id, inheritedFrom: null, path: [root.id] },
        { id: teamKey.id, fingerprint: teamKey.fingerprint, orgId: team.id, inheritedFrom: team.id, path: [root.id, sub.id, team.id] },
      ]);
      expect(await summary(sub)).to.deep.equal([
        { id: teamKey.id, fingerprint: teamKey.fingerprint, orgId: team.id, inheritedFrom: team.id, path: [sub.id, team.id] },
      ]);
      expect(await summary(team)).to.deep.equal([{ id: teamKey.id, fingerprint: teamKey.fingerprint, orgId: team.id, inheritedFrom: null, path: [team.id] }]);
    });

    it('when grants are listed for an organization, listGrants gives those from and to it, active and revoked', async () => {
      const { root, sub, team, stale } = topo;
      const summary = async (org?: Org) =>
        (await t.keys.listGrants(org?.id)).map((g) => ({ parentOrgId: g.parentOrgId, childOrgId: g.childOrgId, revoked: g.revokedAt !== null }));
      expect(await summary(sub)).to.have.deep.members([
        { parentOrgId: root.id, childOrgId: sub.id, revoked: false },
        { parentOrgId: sub.id, childOrgId: team.id, revoked: false },
      ]);
      expect(await summary(root)).to.have.deep.members([
        { parentOrgId: root.id, childOrgId: sub.id, revoked: false },
        { parentOrgId: root.id, childOrgId: stale.id, revoked: true },
      ]);
      expect(await summary()).to.deep.include.members([
        { parentOrgId: root.id, childOrgId: sub.id, revoked: false },
        { parentOrgId: sub.id, childOrgId: team.id, revoked: false },
        { parentOrgId: root.id, childOrgId: stale.id, revoked: true },
      ]);
    });
  });

  describe('effective trust and grants through the CLI', () => {
    const d = drivers[1];
    const cli = (args: string[]) =>
      runCli([...args, '--database', t.url], { CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: '', CLOACINA_KEY_ENCRYPTION_KEY: '' });
    const ok = (args: string[]) => {
      const result = cli(args);
      expect(result.status, `${args.join(' ')}: ${result.stderr}`).to.equal(0);
      return result;
    };
    let topo: Awaited<ReturnType<typeof trustTopology>>;
    before(async () => {
      topo = await trustTopology(d);
    });

    it('when listing with keys list --effective --json, it shows direct and inherited trusted keys with the organization each comes through and the path', () => {
      const { root, sub, team, teamKey, rootKey } = topo;
      const teamEntry = (path: Org[]) => ({
        id: teamKey.id,
        name: 'team-release',
        fingerprint: teamKey.fingerprint,
        algorithm: 'ed25519',
        orgId: team.id,
        orgName: team.name,
        inherited: path.length > 1,
        path: path.map((o) => ({ id: o.id, name: o.name })),
        createdAt: teamKey.createdAt,
      });
      const effective = (org: Org) => ok(['keys', 'list', '--org', org.name, '--effective', '--json']).json();
      const rootList = effective(root);
      expect(rootList).to.have.length(2);
      for (const entry of rootList)
        expect(entry).to.have.keys(['id', 'name', 'fingerprint', 'algorithm', 'orgId', 'orgName', 'inherited', 'path', 'createdAt']);
      expect(rootList).to.have.deep.members([
        {
          id: rootKey.id,
          name: 'root-release',
          fingerprint: rootKey.fingerprint,
          algorithm: 'ed25519',
          orgId: root.id,
          orgName: root.name,
          inherited: false,
          path: [{ id: root.id, name: root.name }],
          createdAt: rootKey.createdAt,
        },
        teamEntry([root, sub, team]),
      ]);
      expect(effective(sub)).to.deep.equal([teamEntry([sub, team])]);
      expect(effective(team)).to.deep.equal([teamEntry([team])]);
    });

    it('when listing with keys list --effective without --json, it prints a header row and, per key, the organization trusting it and the grant path', () => {
      const { root, sub, team, stale, teamKey, rootKey, revokedKey, staleKey } = topo;
      const lines = ok(['keys', 'list', '--org', root.id, '--effective']).stdout.trimEnd().split('\n');
      expect(lines).to.have.length(3);
      expect(lines[0]).to.match(/^ID\s+NAME\s+FINGERPRINT\s/);
      const rootLine = lines.find((line) => line.startsWith(rootKey.id))!;
      expect(rootLine, lines.join('\n')).to.include(rootKey.fingerprint).and.include('root-release').and.include(root.name);
      const teamLine = lines.find((line) => line.startsWith(teamKey.id))!;
      expect(teamLine, lines.join('\n')).to.include(teamKey.fingerprint).and.include(team.name).and.include(sub.name);
      const text = lines.join('\n');
      for (const absent of [revokedKey.id, staleKey.id, stale.name]) expect(text).not.to.include(absent);
    });

    it('when listing with orgs grants --json, it lists the grants from and to the organization, active and revoked, with both names', () => {
      const { root, sub, team, stale } = topo;
      const grants = (org?: Org) => ok(['orgs', 'grants', ...(org ? ['--org', org.name] : []), '--json']).json();
      const summary = (list: Record<string, unknown>[]) =>
        list.map(({ parentOrgId, childOrgId, parentName, childName, status }) => ({ parentOrgId, childOrgId, parentName, childName, status }));
      const grant = (parent: Org, child: Org, status: 'active' | 'revoked') => ({
        parentOrgId: parent.id,
        childOrgId: child.id,
        parentName: parent.name,
        childName: child.name,
        status,
      });

      const ofSub = grants(sub);
      expect(ofSub).to.have.length(2);
      for (const g of ofSub) {
        expect(g).to.have.keys(['id', 'parentOrgId', 'childOrgId', 'parentName', 'childName', 'createdAt', 'revokedAt', 'status']);
        expect(g.revokedAt).to.equal(null);
        expect(g.createdAt).to.be.a('string');
      }
      expect(summary(ofSub)).to.have.deep.members([grant(root, sub, 'active'), grant(sub, team, 'active')]);

      const ofRoot = grants(root);
      expect(summary(ofRoot)).to.have.deep.members([grant(root, sub, 'active'), grant(root, stale, 'revoked')]);
      const revoked = ofRoot.find((g: { childOrgId: string }) => g.childOrgId === stale.id);
      expect(revoked.revokedAt).to.be.a('string');

      expect(summary(grants())).to.deep.include.members([grant(root, sub, 'active'), grant(sub, team, 'active'), grant(root, stale, 'revoked')]);
    });

    it('when listing with orgs grants without --json, it prints a header row and the names of both organizations of each grant', () => {
      const { root, sub, team, stale } = topo;
      const lines = ok(['orgs', 'grants', '--org', root.id]).stdout.trimEnd().split('\n');
      expect(lines).to.have.length(3);
      expect(lines[0]).to.match(/^ID\s/);
      const active = lines.find((line) => line.includes(sub.name))!;
      expect(active, lines.join('\n')).to.include(root.name).and.include('active');
      const revoked = lines.find((line) => line.includes(stale.name))!;
      expect(revoked, lines.join('\n')).to.include(root.name).and.include('revoked');
      expect(lines.join('\n')).not.to.include(team.name);
    });

    it('when a grant in the chain is revoked, keys list --effective no longer shows the keys inherited through it', async () => {
      const fresh = await trustTopology(d);
      await d.revokeTrust(fresh.sub, fresh.team);
      const ids = (org: Org) =>
        ok(['keys', 'list', '--org', org.id, '--effective', '--json'])
          .json()
          .map((k: { id: string }) => k.id);
      expect(ids(fresh.root)).to.deep.equal([fresh.rootKey.id]);
      expect(ids(fresh.sub)).to.deep.equal([]);
      expect(ids(fresh.team)).to.deep.equal([fresh.teamKey.id]);
    });
  });
});
