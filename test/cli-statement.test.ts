// Version-2 signatures through the CLI: `package sign --format v2`, what `package verify --json`
// reports, the policy flags of verify/run/inspect (exit 1 with each code), the usage errors (exit 2),
// `--version` never turning a command into a silent exit 0, and `packages versions|reset-version`
// with rollback marks on SQLite and PostgreSQL.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DetachedSignature } from '../src/formats/v1';
import { buildProgram } from '../src/cli/program';
import { native } from '../src/native';
import { writeSignatureDocument } from '../src/formats/v2';
import { signStatement } from '../src/signing/sign';
import { describeEngines } from './db/engines';
import { buildPackage } from './fixtures';
import { ROOT, runCli, tempDir } from './helpers';

const sha256Hex = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const DAY_MS = 86_400_000;

describe('the cloacina-sign CLI with version-2 signatures (key files)', () => {
  const dir = tempDir();
  const env = { CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: 'off' };
  const cli = (args: string[]) => runCli(args, env);
  const ok = (args: string[]) => {
    const result = cli([...args, '--json']);
    expect(result.status, result.stderr).to.equal(0);
    return result.json();
  };
  /** Runs a command expected to fail with `status`, and returns the error code of its JSON. */
  const fails = (args: string[], status: number): string => {
    const result = cli([...args, '--json']);
    expect(result.status, `${args.join(' ')}\n${result.stdout}${result.stderr}`).to.equal(status);
    return result.json().error?.code ?? result.json().results?.[0]?.error?.code;
  };
  let keyPath: string;
  let pubPath: string;
  let fingerprint: string;
  let built = 0;
  after(() => dir.cleanup());

  before(() => {
    const generated = ok(['keys', 'generate', '--name', 'ci', '--output', dir.join('ci.pem')]);
    keyPath = generated.privateKeyPath;
    pubPath = generated.publicKeyPath;
    fingerprint = generated.fingerprint;
  });

  const randomPackage = (size = 4096): string => {
    const path = dir.join(`pkg-${built++}.so`);
    writeFileSync(path, randomBytes(size));
    return path;
  };
  const signV2 = (pkg: string, extra: string[] = []) =>
    ok(['package', 'sign', pkg, '--key', keyPath, '--format', 'v2', '--name', 'data-pipeline', '--version', '1.2.0', ...extra]);
  const verify = (pkg: string, extra: string[] = []) => cli(['package', 'verify', pkg, '--trust-key', pubPath, ...extra, '--json']);

  describe('when signing with --format v2', () => {
    it('when given a name, a version and --expires 90d, it writes the .sig and prints format, statement and digestAlgorithm', () => {
      const pkg = randomPackage(5000);
      const before = Date.now();
      const signed = signV2(pkg, ['--expires', '90d']);
      const sigPath = `${pkg}.sig`;
      expect(signed).to.include({ signaturePath: sigPath, format: 'v2', digestAlgorithm: 'blake3', keyFingerprint: fingerprint });
      expect(signed.statement).to.include({ name: 'data-pipeline', version: '1.2.0', organization: null, size: 5000, digestAlgorithm: 'blake3' });
      expect(signed.packageHash).to.equal(signed.statement.digest);
      const issued = Date.parse(signed.statement.issuedAt);
      expect(issued).to.be.within(before - 1000, Date.now() + 1000);
      expect(Date.parse(signed.statement.expiresAt) - issued).to.equal(90 * DAY_MS);
      const file = readFileSync(sigPath, 'utf8');
      expect(file.startsWith('{"version":2,"algorithm":"ed25519","statement":{"name":"data-pipeline","version":"1.2.0","size":5000,')).to.equal(true);
      expect(file.endsWith('}\n')).to.equal(true);
      expect(JSON.parse(file).statement.digest).to.equal(signed.statement.digest);
    });

    it('when --digest sha256 and --organization are given, the statement names the SHA-256 node computes and the organization', () => {
      const pkg = randomPackage();
      const signed = signV2(pkg, ['--digest', 'sha256', '--organization', 'acme']);
      expect(signed.digestAlgorithm).to.equal('sha256');
      expect(signed.statement).to.include({ digestAlgorithm: 'sha256', digest: sha256Hex(pkg), organization: 'acme', expiresAt: null });
      expect(signed.packageHash).to.equal(sha256Hex(pkg));
    });

    it('when --output names another file, the signature is written there; an existing one needs --force', () => {
      const pkg = randomPackage();
      const out = dir.join('elsewhere.sig');
      expect(signV2(pkg, ['--output', out]).signaturePath).to.equal(out);
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
      expect(fails(['package', 'sign', pkg, '--key', keyPath, '--format', 'v2', '--name', 'n', '--version', '1.0.0', '--output', out], 2)).to.equal(
        'OUTPUT_EXISTS',
      );
      expect(signV2(pkg, ['--output', out, '--force']).signaturePath).to.equal(out);
    });

    it('when the statement is invalid (version not SemVer, expiry in the past, empty organization, unknown expiry), it exits 2 and writes nothing', () => {
      const pkg = randomPackage();
      const base = ['package', 'sign', pkg, '--key', keyPath, '--format', 'v2', '--name', 'n'];
      expect(fails([...base, '--version', 'v1.0'], 2)).to.equal('INVALID_INPUT');
      expect(fails([...base, '--version', '1.0.0', '--expires', '2001-01-01T00:00:00Z'], 2)).to.equal('INVALID_INPUT');
      expect(fails([...base, '--version', '1.0.0', '--expires', 'soon'], 2)).to.equal('INVALID_INPUT');
      expect(fails([...base, '--version', '1.0.0', '--organization', ''], 2)).to.equal('INVALID_INPUT');
      expect(fails([...base, '--version', '1.0.0', '--digest', 'md5'], 2)).to.equal('USAGE');
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
    });
  });

  describe('when verifying a version-2 signature', () => {
    it('when the key is trusted, --json shows documentVersion 2, the digest algorithm and the statement object', () => {
      const pkg = randomPackage();
      const signed = signV2(pkg, ['--organization', 'acme', '--expires', '30d']);
      const result = verify(pkg);
      expect(result.status, result.stderr).to.equal(0);
      expect(result.json()).to.deep.equal({
        verified: true,
        results: [
          {
            package: pkg,
            verified: true,
            packageHash: signed.statement.digest,
            keyFingerprint: fingerprint,
            signedAt: signed.statement.issuedAt,
            documentVersion: 2,
            signatureFormat: 'v2',
            digestAlgorithm: 'blake3',
            statement: signed.statement,
          },
        ],
      });
      const human = cli(['package', 'verify', pkg, '--trust-key', pubPath]);
      expect(human.status).to.equal(0);
      expect(human.stdout).to.equal(`verified ${signed.statement.digest}  ${pkg}\n`);
      expect(human.stderr).to.include(`data-pipeline 1.2.0 (valid until ${signed.statement.expiresAt})`);
    });

    it('when the signature is version 1, --json shows documentVersion 1 and a null statement', () => {
      const pkg = randomPackage();
      ok(['package', 'sign', pkg, '--key', keyPath]);
      const result = verify(pkg);
      expect(result.status, result.stderr).to.equal(0);
      expect(result.json().results[0]).to.include({ documentVersion: 1, digestAlgorithm: 'sha256', statement: null, packageHash: sha256Hex(pkg) });
    });

    it('when the package changed after signing, it exits 1 with TAMPERED_PACKAGE', () => {
      const pkg = randomPackage();
      signV2(pkg);
      writeFileSync(pkg, Buffer.concat([readFileSync(pkg), Buffer.from('x')]));
      expect(verify(pkg).status).to.equal(1);
      expect(verify(pkg).json().results[0].error.code).to.equal('TAMPERED_PACKAGE');
    });
  });

  describe('when policy flags are given to package verify', () => {
    let v2: string;
    let v1: string;
    before(() => {
      v2 = randomPackage();
      signV2(v2);
      v1 = randomPackage();
      ok(['package', 'sign', v1, '--key', keyPath]);
    });
    const code = (pkg: string, flags: string[]) => {
      const result = verify(pkg, flags);
      expect(result.status, `${flags.join(' ')}: ${result.stderr}`).to.equal(1);
      return result.json().results[0].error.code;
    };

    it('when --expect-name names another package, it exits 1 with PACKAGE_NAME_MISMATCH; the right name verifies', () => {
      expect(code(v2, ['--expect-name', 'billing'])).to.equal('PACKAGE_NAME_MISMATCH');
      expect(verify(v2, ['--expect-name', 'data-pipeline']).status).to.equal(0);
    });

    it('when --expect-organization names another organization than the signed one, or the statement names none, it exits 1 with ORGANIZATION_MISMATCH; the signed one verifies', () => {
      const forAcme = randomPackage();
      signV2(forAcme, ['--organization', 'acme']);
      expect(code(forAcme, ['--expect-organization', 'beta'])).to.equal('ORGANIZATION_MISMATCH');
      expect(code(forAcme, ['--expect-organization', 'ACME'])).to.equal('ORGANIZATION_MISMATCH');
      expect(code(v2, ['--expect-organization', 'acme'])).to.equal('ORGANIZATION_MISMATCH');
      expect(code(v1, ['--expect-organization', 'acme'])).to.equal('V2_REQUIRED');
      const accepted = verify(forAcme, ['--expect-organization', 'acme']);
      expect(accepted.status, accepted.stderr).to.equal(0);
      expect(accepted.json().results[0].statement.organization).to.equal('acme');
    });

    it('when --allowed-versions excludes the version (list or range), it exits 1 with VERSION_NOT_ALLOWED; an including one verifies', () => {
      expect(code(v2, ['--allowed-versions', '1.0.0,1.1.0'])).to.equal('VERSION_NOT_ALLOWED');
      expect(code(v2, ['--allowed-versions', '>=2.0.0'])).to.equal('VERSION_NOT_ALLOWED');
      expect(verify(v2, ['--allowed-versions', '>=1.2.0, <2.0.0']).status).to.equal(0);
      expect(verify(v2, ['--allowed-versions', '1.1.0,1.2.0']).status).to.equal(0);
    });

    it('when --require-v2 meets a version-1 signature, it exits 1 with V2_REQUIRED; a version-2 one verifies', () => {
      expect(code(v1, ['--require-v2'])).to.equal('V2_REQUIRED');
      expect(verify(v2, ['--require-v2']).status).to.equal(0);
    });

    it('when a name or version policy meets a version-1 signature, it exits 1 with V2_REQUIRED', () => {
      expect(code(v1, ['--expect-name', 'data-pipeline'])).to.equal('V2_REQUIRED');
      expect(code(v1, ['--allowed-versions', '>=0.0.0'])).to.equal('V2_REQUIRED');
    });

    it('when the statement expired 5 minutes ago, it exits 1 with SIGNATURE_EXPIRED; --clock-skew 600 accepts it', async () => {
      const pkg = randomPackage();
      const { readPrivateKeyFile } = await import('../src/keys/key-files');
      const signed = await signStatement(pkg, await readPrivateKeyFile(keyPath), {
        name: 'data-pipeline',
        version: '1.2.0',
        issuedAt: new Date(Date.now() - 3_600_000),
        expires: new Date(Date.now() - 300_000),
      });
      await writeSignatureDocument(`${pkg}.sig`, signed.document);
      expect(code(pkg, [])).to.equal('SIGNATURE_EXPIRED');
      expect(code(pkg, ['--clock-skew', '60'])).to.equal('SIGNATURE_EXPIRED');
      expect(verify(pkg, ['--clock-skew', '600']).status).to.equal(0);
    });

    it('when signed with --expires 1s, it is refused with --clock-skew 0 once that second has passed', async () => {
      const pkg = randomPackage();
      signV2(pkg, ['--expires', '1s']);
      await new Promise((resolve) => setTimeout(resolve, 2100));
      expect(code(pkg, ['--clock-skew', '0'])).to.equal('SIGNATURE_EXPIRED');
      expect(verify(pkg).status).to.equal(0);
    });

    it('when --clock-skew is not a whole number of seconds, or --rollback-protection has no --org, it exits 2', () => {
      for (const skew of ['abc', '1.5', '-1']) expect(verify(v2, ['--clock-skew', skew]).status, skew).to.equal(2);
      const result = verify(v2, ['--rollback-protection']);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.include('--org');
    });
  });

  describe('when policy flags are given to package run and inspect', () => {
    let pkg: string;
    let marker: string;
    before(() => {
      marker = dir.join('run.marker');
      pkg = buildPackage(dir.join('librun.so'), { identity: 'statement-run', markerPath: marker });
      signV2(pkg);
    });
    const run = (flags: string[]) => cli(['package', 'run', pkg, '--trust-key', pubPath, '--task', 'whoami', ...flags, '--json']);

    for (const [flags, expected] of [
      [['--expect-name', 'billing'], 'PACKAGE_NAME_MISMATCH'],
      [['--allowed-versions', '2.0.0'], 'VERSION_NOT_ALLOWED'],
      [['--expect-organization', 'acme'], 'ORGANIZATION_MISMATCH'],
    ] as const) {
      it(`when run with ${flags.join(' ')}, it exits 1 with ${expected} and the package's constructor never runs`, () => {
        const result = run([...flags]);
        expect(result.status, result.stderr).to.equal(1);
        expect(result.json().error.code).to.equal(expected);
        expect(existsSync(marker)).to.equal(false);
        const inspect = cli(['package', 'inspect', pkg, '--trust-key', pubPath, ...flags, '--json']);
        expect(inspect.status).to.equal(1);
        expect(inspect.json().error.code).to.equal(expected);
        expect(existsSync(marker)).to.equal(false);
      });
    }

    it('when run with --require-v2 on a version-1 package, it exits 1 with V2_REQUIRED', () => {
      const v1Marker = dir.join('run-v1.marker');
      const v1 = buildPackage(dir.join('librunv1.so'), { identity: 'v1', markerPath: v1Marker });
      ok(['package', 'sign', v1, '--key', keyPath]);
      const result = cli(['package', 'run', v1, '--trust-key', pubPath, '--task', 'whoami', '--require-v2', '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().error.code).to.equal('V2_REQUIRED');
      expect(existsSync(v1Marker)).to.equal(false);
    });

    it('when the policy is satisfied, it runs the task', () => {
      const result = run(['--expect-name', 'data-pipeline', '--allowed-versions', '^1.2', '--require-v2']);
      expect(result.status, result.stderr).to.equal(0);
      expect(result.json().output).to.deep.equal({ identity: 'statement-run' });
      expect(existsSync(marker)).to.equal(true);
    });
  });

  describe('when statement options are misused', () => {
    it('when --api-url is given with --format v2 but no token, or with --store, it exits 2 (USAGE) and writes nothing', () => {
      const pkg = randomPackage();
      const v2 = ['--format', 'v2', '--name', 'n', '--version', '1.0.0'];
      expect(fails(['package', 'sign', pkg, '--key-id', 'k', ...v2, '--api-url', 'http://127.0.0.1:9'], 2)).to.equal('USAGE');
      expect(fails(['package', 'sign', pkg, '--key-id', 'k', ...v2, '--api-url', 'http://127.0.0.1:9', '--store'], 2)).to.equal('USAGE');
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
    });

    it('when --name, --version, --organization, --expires or --digest is given without --format v2, it exits 2 and writes nothing', () => {
      const pkg = randomPackage();
      for (const flags of [
        ['--name', 'n'],
        ['--version', '1.0.0'],
        ['--organization', 'o'],
        ['--expires', '90d'],
        ['--digest', 'sha256'],
        ['--name', 'n', '--version', '1.0.0'],
      ]) {
        const result = cli(['package', 'sign', pkg, '--key', keyPath, ...flags, '--json']);
        expect(result.status, flags.join(' ')).to.equal(2);
        expect(result.json().error.code).to.equal('USAGE');
        expect(result.json().error.message).to.include('--format v2');
        expect(cli(['package', 'sign', pkg, '--key', keyPath, '--format', 'v1', ...flags]).status, `v1 ${flags.join(' ')}`).to.equal(2);
      }
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
    });

    it('when `package sign x.so --key k.pem --version 1.0.0` is run, it never exits 0 silently: exit 2, a usage error, no signature', () => {
      const pkg = randomPackage();
      const result = cli(['package', 'sign', pkg, '--key', keyPath, '--version', '1.0.0']);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.match(/USAGE/);
      expect(result.stdout).to.equal('');
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
    });

    it('when --format v2 lacks --name or --version, or --format is neither v1 nor v2, it exits 2', () => {
      const pkg = randomPackage();
      expect(fails(['package', 'sign', pkg, '--key', keyPath, '--format', 'v2', '--name', 'n'], 2)).to.equal('USAGE');
      expect(fails(['package', 'sign', pkg, '--key', keyPath, '--format', 'v2', '--version', '1.0.0'], 2)).to.equal('USAGE');
      expect(fails(['package', 'sign', pkg, '--key', keyPath, '--format', 'v3', '--name', 'n', '--version', '1.0.0'], 2)).to.equal('USAGE');
      expect(cli(['package', 'sign', pkg, '--key', keyPath, '--format', 'v2', '--name', 'n', '--version']).status).to.equal(2);
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
    });
  });

  describe('when --version is given', () => {
    it('when `cloacina-sign --version` is run, it prints the program version and exits 0', () => {
      const result = cli(['--version']);
      expect(result.status).to.equal(0);
      expect(result.stdout.trim()).to.equal(JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')).version);
    });

    it('when `package verify x.so --version` is run, it exits 2 with an unknown option', () => {
      const pkg = randomPackage();
      const result = cli(['package', 'verify', pkg, '--trust-key', pubPath, '--version']);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.include("unknown option '--version'");
      expect(result.stdout).to.equal('');
    });

    it('when any command or subcommand is followed by --version or -V, it never exits 0 and prints nothing on stdout', () => {
      const leaves: string[][] = [];
      const walk = (command: ReturnType<typeof buildProgram>, path: string[]) => {
        for (const sub of command.commands) {
          const here = [...path, sub.name()];
          leaves.push(here);
          walk(sub as ReturnType<typeof buildProgram>, here);
        }
      };
      walk(buildProgram(), []);
      expect(leaves.map((l) => l.join(' '))).to.include.members(['package sign', 'package verify', 'packages versions', 'packages reset-version']);
      const silent: string[] = [];
      for (const path of leaves) {
        for (const flag of ['--version', '-V']) {
          const result = cli([...path, flag]);
          if (result.status === 0 || result.stdout !== '') silent.push(`${path.join(' ')} ${flag} -> ${result.status} ${JSON.stringify(result.stdout)}`);
        }
      }
      expect(silent).to.deep.equal([]);
    });
  });
});

describeEngines('the cloacina-sign CLI with version-2 signatures and rollback marks', (t) => {
  const dir = tempDir();
  const kek = randomBytes(32).toString('base64');
  after(() => dir.cleanup());
  const cli = (args: string[]) =>
    runCli([...args, '--database', t.url], { CLOACINA_KEY_ENCRYPTION_KEY: kek, CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: '' });
  const ok = (args: string[]) => {
    const result = cli([...args, '--json']);
    expect(result.status, `${args.join(' ')}: ${result.stderr}`).to.equal(0);
    return result.json();
  };
  let org: { id: string; name: string };
  let key: { id: string; fingerprint: string };
  let built = 0;

  before(() => {
    org = ok(['orgs', 'create', t.unique('cli-v2')]);
    key = ok(['keys', 'generate', '--name', 'release', '--org', org.id]);
    ok(['keys', 'export', key.id, '--format', 'pem', '--output', dir.join('release.pub.pem')]);
    ok(['keys', 'trust', '--import', dir.join('release.pub.pem'), '--name', 'release', '--org', org.id]);
  });

  const workflow = (label: string, marker?: string) => buildPackage(dir.join(`lib${label}-${built++}.so`), { identity: label, markerPath: marker });
  const signV2 = (pkg: string, name: string, version: string, extra: string[] = []) =>
    ok(['package', 'sign', pkg, '--key-id', key.id, '--format', 'v2', '--name', name, '--version', version, ...extra]);
  const run = (pkg: string, extra: string[] = []) =>
    cli(['package', 'run', pkg, '--org', org.id, '--task', 'whoami', '--require-signatures', ...extra, '--json']);

  it('when signing with --key-id and --format v2, it prints the key id and the statement, and verify --org shows documentVersion 2', () => {
    const pkg = dir.join('db-signed.bin');
    writeFileSync(pkg, randomBytes(2048));
    const signed = signV2(pkg, 'db-pkg', '3.1.4', ['--organization', org.name, '--expires', '7d']);
    expect(signed).to.include({ format: 'v2', keyId: key.id, keyFingerprint: key.fingerprint, digestAlgorithm: 'blake3', signaturePath: `${pkg}.sig` });
    expect(signed.statement).to.include({ name: 'db-pkg', version: '3.1.4', organization: org.name, size: 2048 });
    const verified = ok(['package', 'verify', pkg, '--org', org.id]);
    expect(verified.results[0]).to.include({ verified: true, documentVersion: 2, digestAlgorithm: 'blake3', keyFingerprint: key.fingerprint });
    expect(verified.results[0].statement).to.deep.equal(signed.statement);
    const sha = ok(['package', 'sign', pkg, '--key-id', key.id, '--format', 'v2', '--name', 'db-pkg', '--version', '3.1.4', '--digest', 'sha256', '--force']);
    expect(sha.statement.digest).to.equal(sha256Hex(pkg));
    expect(ok(['package', 'verify', pkg, '--org', org.id]).results[0].digestAlgorithm).to.equal('sha256');
    const audit = ok(['audit', 'list', '--org', org.id, '--limit', '50']);
    expect(audit.filter((e: { event_type: string; package_path: string }) => e.event_type === 'package.signed' && e.package_path === pkg)).to.have.length(2);
  });

  it('when there are no marks, packages versions prints an empty list; reset-version of an unknown package exits 2 with NOT_FOUND', () => {
    const fresh = ok(['orgs', 'create', t.unique('nomarks')]);
    expect(ok(['packages', 'versions', '--org', fresh.id])).to.deep.equal([]);
    const reset = cli(['packages', 'reset-version', '--org', fresh.id, '--name', 'nothing', '--to', '1.0.0', '--json']);
    expect(reset.status).to.equal(2);
    expect(reset.json().error.code).to.equal('NOT_FOUND');
  });

  it('when run with --rollback-protection, 1.2.0 sets the mark, 1.1.0 exits 1 with ROLLBACK_REFUSED, reset-version lowers it (audited) and 1.1.0 runs', () => {
    const name = t.unique('cli-pipeline');
    const newer = workflow('cli-newer');
    const olderMarker = dir.join(`${name}.marker`);
    const older = workflow('cli-older', olderMarker);
    signV2(newer, name, '1.2.0');
    signV2(older, name, '1.1.0');
    const first = run(newer, ['--rollback-protection']);
    expect(first.status, first.stderr).to.equal(0);
    expect(first.json().output).to.deep.equal({ identity: 'cli-newer' });
    const marks = ok(['packages', 'versions', '--org', org.name]);
    const mark = marks.find((m: { name: string }) => m.name === name);
    expect(mark).to.include({ name, highestVersion: '1.2.0' });
    expect(Date.parse(mark.updatedAt)).to.not.be.NaN;
    const table = cli(['packages', 'versions', '--org', org.id]);
    expect(table.stdout).to.match(/PACKAGE\s+HIGHEST VERSION LOADED\s+UPDATED/);
    expect(table.stdout).to.include(name);

    const refused = run(older, ['--rollback-protection']);
    expect(refused.status).to.equal(1);
    expect(refused.json().error.code).to.equal('ROLLBACK_REFUSED');
    expect(existsSync(olderMarker)).to.equal(false);
    // verify checks the mark too, and without the flag the older one verifies.
    const verified = cli(['package', 'verify', older, '--org', org.id, '--rollback-protection', '--json']);
    expect(verified.status).to.equal(1);
    expect(verified.json().results[0].error.code).to.equal('ROLLBACK_REFUSED');
    expect(cli(['package', 'verify', older, '--org', org.id]).status).to.equal(0);

    const reset = ok(['packages', 'reset-version', '--org', org.name, '--name', name, '--to', '1.1.0']);
    expect(reset).to.deep.equal({ orgId: org.id, name, previous: '1.2.0', now: '1.1.0' });
    const events = ok(['audit', 'list', '--org', org.id, '--limit', '20']);
    const resetEvent = events.find((e: { event_type: string; reason: string }) => e.event_type === 'package.version.reset' && e.reason.includes(name));
    expect(resetEvent, 'a package.version.reset audit row').to.not.equal(undefined);
    expect(resetEvent.reason).to.include('1.2.0').and.include('1.1.0');
    expect(resetEvent.org_id).to.equal(org.id);

    const second = run(older, ['--rollback-protection']);
    expect(second.status, second.stderr).to.equal(0);
    expect(existsSync(olderMarker)).to.equal(true);
    expect(ok(['packages', 'versions', '--org', org.id]).find((m: { name: string }) => m.name === name).highestVersion).to.equal('1.1.0');
  });

  it('when reset-version has no --to, the mark is removed; a non-SemVer --to exits 2; a run without the flag records nothing', () => {
    const name = t.unique('cli-remove');
    const pkg = workflow('cli-remove');
    signV2(pkg, name, '4.0.0');
    expect(run(pkg).status).to.equal(0);
    expect(ok(['packages', 'versions', '--org', org.id]).some((m: { name: string }) => m.name === name)).to.equal(false);
    expect(run(pkg, ['--rollback-protection']).status).to.equal(0);
    const bad = cli(['packages', 'reset-version', '--org', org.id, '--name', name, '--to', 'four', '--json']);
    expect(bad.status).to.equal(2);
    expect(bad.json().error.code).to.equal('INVALID_INPUT');
    const removed = ok(['packages', 'reset-version', '--org', org.id, '--name', name]);
    expect(removed).to.deep.equal({ orgId: org.id, name, previous: '4.0.0', now: null });
    expect(ok(['packages', 'versions', '--org', org.id]).some((m: { name: string }) => m.name === name)).to.equal(false);
    expect(cli(['packages', 'reset-version', '--org', org.id, '--name', name]).status).to.equal(2);
  });

  it('when --rollback-protection is given to inspect, a lower version exits 1 with ROLLBACK_REFUSED', () => {
    const name = t.unique('cli-inspect');
    const high = workflow('cli-inspect-high');
    const low = workflow('cli-inspect-low');
    signV2(high, name, '2.0.0');
    signV2(low, name, '1.9.9');
    expect(run(high, ['--rollback-protection']).status).to.equal(0);
    const inspect = cli(['package', 'inspect', low, '--org', org.id, '--rollback-protection', '--json']);
    expect(inspect.status).to.equal(1);
    expect(inspect.json().error.code).to.equal('ROLLBACK_REFUSED');
  });

  it('when a version-2 .sig is removed and the package has a stored version-1 signature, --rollback-protection still refuses a lower version', () => {
    const name = t.unique('cli-bypass');
    const high = workflow('cli-bypass-high');
    const lowMarker = dir.join(`${name}.marker`);
    const low = workflow('cli-bypass-low', lowMarker);
    signV2(high, name, '2.0.0');
    signV2(low, name, '1.0.0');
    ok(['package', 'sign', low, '--key-id', key.id, '--store']);
    expect(run(high, ['--rollback-protection']).status).to.equal(0);
    expect(run(low, ['--rollback-protection']).json().error.code).to.equal('ROLLBACK_REFUSED');
    rmSync(DetachedSignature.defaultPath(low));
    const result = run(low, ['--rollback-protection']);
    expect(result.status, `exit ${result.status}: ${result.stdout}`).to.equal(1);
    expect(existsSync(lowMarker)).to.equal(false);
  });

  it('when the digest of a signed statement is checked by hashFileDigests, it matches what package sign printed', async () => {
    const pkg = dir.join('check.bin');
    writeFileSync(pkg, randomBytes(300_000));
    const signed = signV2(pkg, 'check', '1.0.0');
    expect(signed.statement.digest).to.equal((await native.hashFileDigests(pkg, { sha256: false, blake3: true })).blake3);
  });
});
