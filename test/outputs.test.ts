// Careless outputs: what package sign, keys generate and keys export write, and what they never write over.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, promises as fs, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/files';
import { readPrivateKeyFile } from '../src/keys/key-files';
import { importPublicKey, publicKeyFingerprint, publicKeyOf } from '../src/keys/keypair';
import { writePackage } from './fixtures/random-package';
import { CLI, type CliResult, rejectsWith, ROOT, runCli, tempDir } from './helpers';

const KILL_PRELOAD = join(ROOT, 'dist/test/fixtures/kill-during-write.js');
const TEMPORARY = /\.cloacina-tmp-/;

const env = { CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: '', CLOACINA_REQUIRE_SIGNATURES: '' };
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): CliResult => runCli(args, { ...env, ...extra });
const ok = (result: CliResult): CliResult => {
  expect(result.status, `${result.stderr}\n${result.stdout}`).to.equal(0);
  return result;
};
const refused = (result: CliResult, message: RegExp): void => {
  expect(result.status, result.stderr).to.equal(2);
  expect(result.stderr).to.match(message);
};

/** The CLI with the kill-during-write preload: killed by SIGKILL at `killAt` (see test/fixtures/kill-during-write.ts). */
function killedCli(args: string[], killAt: string): { status: number | null; signal: NodeJS.Signals | null } {
  const result = spawnSync(process.execPath, ['-r', KILL_PRELOAD, CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env, NO_COLOR: '1', CLOACINA_TEST_KILL_AT: killAt },
    timeout: 30000,
  });
  return { status: result.status, signal: result.signal };
}

function fingerprintOfPrivateKeyFile(path: string): string {
  const der = createPrivateKey(readFileSync(path)).export({ type: 'pkcs8', format: 'der' });
  return publicKeyFingerprint(publicKeyOf(der));
}

function fingerprintOfPublicKeyFile(path: string): string {
  return publicKeyFingerprint(importPublicKey(readFileSync(path)));
}

describe('outputs: what the CLI writes and what it never writes over', () => {
  const dir = tempDir();
  const key = dir.join('k.pem');
  const pub = dir.join('k.pub.pem');
  const other = dir.join('other.pem');
  before(() => {
    ok(cli(['keys', 'generate', '--name', 'k', '--output', key]));
    ok(cli(['keys', 'generate', '--name', 'other', '--output', other]));
  });
  after(() => dir.cleanup());

  describe('package sign', () => {
    it('when the default <package>.sig exists, it exits 2 with OUTPUT_EXISTS and leaves it as it was', () => {
      const pkg = writePackage(dir.join('libexisting.so'));
      writeFileSync(`${pkg}.sig`, 'old');
      refused(cli(['package', 'sign', pkg, '--key', key]), /OUTPUT_EXISTS.*already exists \(use --force to overwrite\)/);
      expect(readFileSync(`${pkg}.sig`, 'utf8')).to.equal('old');
    });

    it('when --output exists, it exits 2 with OUTPUT_EXISTS and leaves it as it was', () => {
      const pkg = writePackage(dir.join('liboutput.so'));
      writeFileSync(dir.join('taken.sig'), 'old');
      refused(cli(['package', 'sign', pkg, '--key', key, '--output', dir.join('taken.sig')]), /OUTPUT_EXISTS/);
      expect(readFileSync(dir.join('taken.sig'), 'utf8')).to.equal('old');
    });

    it('when the signature exists and --force is given, it replaces it with one that verifies', () => {
      const pkg = writePackage(dir.join('libforce.so'));
      writeFileSync(`${pkg}.sig`, 'old');
      ok(cli(['package', 'sign', pkg, '--key', key, '--force']));
      ok(cli(['package', 'verify', pkg, '--trust-key', pub]));
    });

    it('when --output is the package itself, it refuses even with --force and the package is unchanged', () => {
      const pkg = writePackage(dir.join('libself.so'));
      const before = readFileSync(pkg);
      refused(cli(['package', 'sign', pkg, '--key', key, '--output', pkg, '--force']), /refusing to write over .*libself\.so: it is the package being signed/);
      expect(readFileSync(pkg).equals(before)).to.equal(true);
    });

    it('when --output is a hard link to the package, it refuses even with --force', () => {
      const pkg = writePackage(dir.join('libhard.so'));
      linkSync(pkg, dir.join('hard.sig'));
      refused(cli(['package', 'sign', pkg, '--key', key, '--output', dir.join('hard.sig'), '--force']), /it is the package being signed/);
    });

    it('when --output is a symbolic link to the package, it refuses even with --force', () => {
      const pkg = writePackage(dir.join('libsymlink.so'));
      symlinkSync(pkg, dir.join('symlink.sig'));
      refused(cli(['package', 'sign', pkg, '--key', key, '--output', dir.join('symlink.sig'), '--force']), /it is the package being signed/);
      expect(statSync(dir.join('symlink.sig')).ino).to.equal(statSync(pkg).ino);
    });

    it('when --output is the --key file, even a DER one, it refuses even with --force and the key is unchanged', () => {
      const der = dir.join('k.der');
      writeFileSync(der, createPrivateKey(readFileSync(key)).export({ type: 'pkcs8', format: 'der' }), { mode: 0o600 });
      const before = readFileSync(der);
      const pkg = writePackage(dir.join('libder.so'));
      refused(cli(['package', 'sign', pkg, '--key', der, '--output', der, '--force']), /it is the private key \(--key\)/);
      expect(readFileSync(der).equals(before)).to.equal(true);
    });

    it('when --output holds another PEM private key, it refuses even with --force and the key is unchanged', () => {
      const before = readFileSync(other, 'utf8');
      const pkg = writePackage(dir.join('libotherkey.so'));
      refused(cli(['package', 'sign', pkg, '--key', key, '--output', other, '--force']), /refusing to write over .*other\.pem: it holds a private key/);
      expect(readFileSync(other, 'utf8')).to.equal(before);
    });

    it('when --output is /dev/null, it refuses even with --force and /dev/null stays a device', () => {
      const pkg = writePackage(dir.join('libnull.so'));
      refused(cli(['package', 'sign', pkg, '--key', key, '--output', '/dev/null', '--force']), /\/dev\/null: it is a character device, not a regular file/);
      expect(statSync('/dev/null').isCharacterDevice()).to.equal(true);
    });

    it('when --output is a symbolic link to another file, it refuses even with --force and leaves the link', () => {
      const pkg = writePackage(dir.join('liblinked.so'));
      writeFileSync(dir.join('pointed.sig'), 'old');
      symlinkSync(dir.join('pointed.sig'), dir.join('linked.sig'));
      refused(cli(['package', 'sign', pkg, '--key', key, '--output', dir.join('linked.sig'), '--force']), /it is a symbolic link, not a regular file/);
      expect(readFileSync(dir.join('linked.sig'), 'utf8')).to.equal('old');
    });

    it('when it succeeds, it leaves no temporary file beside the signature', () => {
      const sub = dir.join('clean');
      mkdirSync(sub);
      const pkg = writePackage(join(sub, 'libclean.so'));
      ok(cli(['package', 'sign', pkg, '--key', key]));
      expect(readdirSync(sub).sort()).to.deep.equal(['libclean.so', 'libclean.so.sig']);
    });
  });

  describe('package sign --key permissions', () => {
    const insecure = (mode: number): string => {
      const path = dir.join(`k-${mode.toString(8)}.pem`);
      writeFileSync(path, readFileSync(key));
      chmodSync(path, mode);
      return path;
    };

    it('when the key file is 0644, it exits 2 saying the permissions are too open, and writes no signature', () => {
      const path = insecure(0o644);
      const pkg = writePackage(dir.join('lib644.so'));
      refused(cli(['package', 'sign', pkg, '--key', path]), new RegExp(`permissions 0644 for '${path}' are too open`));
      expect(existsSync(`${pkg}.sig`)).to.equal(false);
    });

    it('when the key file is readable by its group only (0640), it exits 2', () => {
      const pkg = writePackage(dir.join('lib640.so'));
      refused(cli(['package', 'sign', pkg, '--key', insecure(0o640)]), /permissions 0640 for .* are too open/);
    });

    it('when the key file is 0644 and --allow-insecure-key-file is given, it signs', () => {
      const pkg = writePackage(dir.join('liballow.so'));
      ok(cli(['package', 'sign', pkg, '--key', insecure(0o644), '--allow-insecure-key-file']));
      ok(cli(['package', 'verify', pkg, '--trust-key', pub]));
    });

    it('when the key file is 0400, it signs', () => {
      const pkg = writePackage(dir.join('lib400.so'));
      ok(cli(['package', 'sign', pkg, '--key', insecure(0o400)]));
    });

    it('when the API reads a 0644 key file, it refuses it too unless allowInsecureKeyFile is set', async () => {
      const path = insecure(0o604);
      const error = await rejectsWith(readPrivateKeyFile(path), 'INSECURE_KEY_FILE');
      expect(error.message).to.include('permissions 0604');
      expect(await readPrivateKeyFile(path, { allowInsecureKeyFile: true })).to.have.length(32);
    });
  });

  describe('writeFileAtomic', () => {
    it('when a file appears at the target during the write, it is left alone (OUTPUT_EXISTS) and no temporary file remains', async () => {
      const sub = dir.join('race');
      await fs.mkdir(sub);
      const target = join(sub, 'out.sig');
      const link = fs.link;
      fs.link = async (existing, path) => {
        writeFileSync(target, 'theirs');
        return link(existing, path);
      };
      try {
        await rejectsWith(writeFileAtomic(target, 'ours', { mode: 0o644 }), 'OUTPUT_EXISTS');
      } finally {
        fs.link = link;
      }
      expect(readFileSync(target, 'utf8')).to.equal('theirs');
      expect(readdirSync(sub)).to.deep.equal(['out.sig']);
    });

    it('when overwrite is set, it replaces the file and leaves no temporary file', async () => {
      const sub = dir.join('replace');
      await fs.mkdir(sub);
      writeFileSync(join(sub, 'out.sig'), 'old');
      await writeFileAtomic(join(sub, 'out.sig'), 'new', { mode: 0o644, overwrite: true });
      expect(readFileSync(join(sub, 'out.sig'), 'utf8')).to.equal('new');
      expect(readdirSync(sub)).to.deep.equal(['out.sig']);
    });

    it('when a killed earlier write left its temporary file, the next write to that target removes it', async () => {
      const sub = dir.join('stale');
      await fs.mkdir(sub);
      writeFileSync(join(sub, '.out.sig.cloacina-tmp-0123456789abcdef'), 'left by a killed write');
      writeFileSync(join(sub, '.unrelated.cloacina-tmp-0123456789abcdef'), 'another target');
      await writeFileAtomic(join(sub, 'out.sig'), 'new', { mode: 0o644 });
      expect(readdirSync(sub).sort()).to.deep.equal(['.unrelated.cloacina-tmp-0123456789abcdef', 'out.sig']);
    });
  });

  describe('keys generate', () => {
    it('when only the public key exists, it exits 2 saying so, and with --force it writes a matching pair', () => {
      const sub = dir.join('lonely');
      mkdirSync(sub);
      writeFileSync(join(sub, 'k.pub.pem'), readFileSync(pub));
      const args = ['keys', 'generate', '--name', 'k', '--output', join(sub, 'k.pem')];
      refused(cli(args), /k\.pub\.pem already exists without its private key .*k\.pem/);
      const json = ok(cli([...args, '--force', '--json'])).json();
      expect(fingerprintOfPrivateKeyFile(join(sub, 'k.pem'))).to.equal(json.fingerprint);
    });

    it('when the public key path holds a private key, it refuses even with --force and deletes nothing', () => {
      const sub = dir.join('swapped');
      mkdirSync(sub);
      writeFileSync(join(sub, 'k.pem'), readFileSync(key), { mode: 0o600 });
      writeFileSync(join(sub, 'k.pub.pem'), readFileSync(other), { mode: 0o600 });
      refused(cli(['keys', 'generate', '--name', 'k', '--output', join(sub, 'k.pem'), '--force']), /k\.pub\.pem: it holds a private key/);
      expect(readFileSync(join(sub, 'k.pem'), 'utf8')).to.equal(readFileSync(key, 'utf8'));
      expect(readFileSync(join(sub, 'k.pub.pem'), 'utf8')).to.equal(readFileSync(other, 'utf8'));
    });
  });

  describe('keys generate, killed mid-write (SIGKILL)', () => {
    const fresh = (name: string): { sub: string; args: string[] } => {
      const sub = dir.join(name);
      mkdirSync(sub);
      return { sub, args: ['keys', 'generate', '--name', 'k', '--output', join(sub, 'k.pem')] };
    };

    it('when killed while publishing the public key, it leaves no key, and a retry writes the pair and removes the leftovers', () => {
      const { sub, args } = fresh('kill-public');
      expect(killedCli(args, 'link:.k.pub.pem.cloacina-tmp-').signal).to.equal('SIGKILL');
      expect(readdirSync(sub).filter((name) => !TEMPORARY.test(name))).to.deep.equal([]);
      ok(cli(args));
      expect(readdirSync(sub).sort()).to.deep.equal(['k.pem', 'k.pub.pem']);
    });

    it('when killed while publishing the private key, it leaves the public key without a private key beside it', () => {
      const { sub, args } = fresh('kill-private');
      expect(killedCli(args, 'link:.k.pem.cloacina-tmp-').signal).to.equal('SIGKILL');
      expect(readdirSync(sub).filter((name) => !TEMPORARY.test(name))).to.deep.equal(['k.pub.pem']);
    });

    it('when killed while publishing the private key, the one file left holding it is a 0600 temporary file beside the target', () => {
      const { sub, args } = fresh('kill-private-leftover');
      killedCli(args, 'link:.k.pem.cloacina-tmp-');
      const leftovers = readdirSync(sub).filter((name) => TEMPORARY.test(name));
      expect(leftovers).to.have.length(1);
      expect(leftovers[0]).to.match(/^\.k\.pem\.cloacina-tmp-[0-9a-f]{16}$/);
      expect(statSync(join(sub, leftovers[0])).mode & 0o777).to.equal(0o600);
    });

    it('when killed while publishing the private key, a retry says the public key is alone, removes the leftovers, and --force then writes a pair', () => {
      const { sub, args } = fresh('kill-private-retry');
      killedCli(args, 'link:.k.pem.cloacina-tmp-');
      refused(cli(args), /k\.pub\.pem already exists without its private key/);
      expect(readdirSync(sub)).to.deep.equal(['k.pub.pem']);
      const json = ok(cli([...args, '--force', '--json'])).json();
      expect(fingerprintOfPrivateKeyFile(join(sub, 'k.pem'))).to.equal(json.fingerprint);
      expect(fingerprintOfPublicKeyFile(join(sub, 'k.pub.pem'))).to.equal(json.fingerprint);
    });

    it('when killed after the private key is published, the pair is complete and a retry exits 2 and removes the leftover temporary file', () => {
      const { sub, args } = fresh('kill-after');
      expect(killedCli(args, 'unlink:.k.pem.cloacina-tmp-').signal).to.equal('SIGKILL');
      expect(fingerprintOfPrivateKeyFile(join(sub, 'k.pem'))).to.equal(fingerprintOfPublicKeyFile(join(sub, 'k.pub.pem')));
      refused(cli(args), /k\.pem already exists/);
      expect(readdirSync(sub).sort()).to.deep.equal(['k.pem', 'k.pub.pem']);
    });

    it('when --force is killed before the new private key is in place, the old private key is gone, never paired with the new public key', () => {
      const { sub, args } = fresh('kill-force');
      ok(cli(args));
      const old = fingerprintOfPrivateKeyFile(join(sub, 'k.pem'));
      // With --force both files are published by rename.
      expect(killedCli([...args, '--force'], 'rename:.k.pem.cloacina-tmp-').signal).to.equal('SIGKILL');
      expect(existsSync(join(sub, 'k.pem'))).to.equal(false);
      expect(fingerprintOfPublicKeyFile(join(sub, 'k.pub.pem'))).not.to.equal(old);
    });
  });

  describe('keys export', () => {
    const dbDir = tempDir();
    const database = `sqlite:${dbDir.join('export.db')}`;
    const dbEnv = { CLOACINA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex') };
    const db = (args: string[]): CliResult => cli([...args, '--database', database], dbEnv);
    let keyId: string;
    let fingerprint: string;
    before(() => {
      ok(db(['db', 'migrate']));
      ok(db(['orgs', 'create', 'exporters']));
      ok(db(['orgs', 'create', 'verifiers']));
      ({ id: keyId, fingerprint } = ok(db(['keys', 'generate', '--name', 'e', '--org', 'exporters', '--json'])).json());
      ok(db(['keys', 'export', keyId, '--output', dbDir.join('e.pub.pem')]));
      ok(db(['keys', 'trust', '--import', dbDir.join('e.pub.pem'), '--org', 'verifiers']));
    });
    after(() => dbDir.cleanup());

    it('when --format raw goes to a pipe, stdout is exactly the 32 raw bytes of the key', () => {
      const result = spawnSync(process.execPath, [CLI, 'keys', 'export', keyId, '--format', 'raw', '--database', database], {
        env: { ...process.env, ...env, ...dbEnv },
      });
      expect(result.status, String(result.stderr)).to.equal(0);
      expect(result.stdout).to.have.length(32);
      expect(publicKeyFingerprint(result.stdout)).to.equal(fingerprint);
    });

    it('when --format raw is redirected to a file, keys trust --import of that file trusts the same key', () => {
      const file = dbDir.join('raw.pub');
      const command = [process.execPath, CLI, 'keys', 'export', keyId, '--format', 'raw', '--database', database].map((arg) => `'${arg}'`).join(' ');
      const shell = spawnSync('sh', ['-c', `${command} > '${file}'`], { encoding: 'utf8', env: { ...process.env, ...env, ...dbEnv } });
      expect(shell.status, shell.stderr).to.equal(0);
      const trusted = ok(db(['keys', 'trust', '--import', file, '--org', 'exporters', '--json'])).json();
      expect(trusted.fingerprint).to.equal(fingerprint);
    });

    it('when --format raw would go to a terminal, it exits 2 and writes no binary', () => {
      const command = [process.execPath, CLI, 'keys', 'export', keyId, '--format', 'raw', '--database', database].map((arg) => `'${arg}'`).join(' ');
      const tty = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'latin1', env: { ...process.env, ...env, ...dbEnv, NO_COLOR: '1' } });
      expect(tty.status, tty.stdout).to.equal(2);
      expect(tty.stdout).to.include('refusing to write a raw (binary) key to a terminal');
    });

    it('when --format raw is given with --json, the JSON carries the key as hex', () => {
      const json = ok(db(['keys', 'export', keyId, '--format', 'raw', '--json'])).json();
      expect(json.publicKey).to.match(/^[0-9a-f]{64}$/);
      expect(publicKeyFingerprint(Buffer.from(json.publicKey, 'hex'))).to.equal(fingerprint);
    });

    it('when --format pem goes to stdout, it prints the SPKI PEM as before', () => {
      expect(ok(db(['keys', 'export', keyId, '--format', 'pem'])).stdout).to.match(/^-----BEGIN PUBLIC KEY-----\n[\s\S]*-----END PUBLIC KEY-----\n$/);
    });

    it('when --output exists, it exits 2 and leaves it as it was', () => {
      writeFileSync(dbDir.join('taken.pub.pem'), 'old');
      refused(db(['keys', 'export', keyId, '--output', dbDir.join('taken.pub.pem')]), /OUTPUT_EXISTS/);
      expect(readFileSync(dbDir.join('taken.pub.pem'), 'utf8')).to.equal('old');
    });

    it('when --output exists and --force is given, it replaces it with the public key', () => {
      writeFileSync(dbDir.join('forced.pub.pem'), 'old');
      ok(db(['keys', 'export', keyId, '--output', dbDir.join('forced.pub.pem'), '--force']));
      expect(fingerprintOfPublicKeyFile(dbDir.join('forced.pub.pem'))).to.equal(fingerprint);
    });

    it('when --output holds a private key, it refuses even with --force', () => {
      refused(db(['keys', 'export', keyId, '--output', other, '--force']), /it holds a private key/);
      expect(readFileSync(other, 'utf8')).to.match(/PRIVATE KEY/);
    });

    it('when package sign --key-id --store is refused its --output, it stores no signature either', () => {
      const pkg = writePackage(dbDir.join('libstore.so'));
      writeFileSync(dbDir.join('store.sig'), 'old');
      refused(db(['package', 'sign', pkg, '--key-id', keyId, '--store', '--output', dbDir.join('store.sig')]), /OUTPUT_EXISTS/);
      const verified = db(['package', 'verify', pkg, '--org', 'verifiers', '--json']);
      expect(verified.status, verified.stderr).to.equal(1);
      expect(verified.json().results[0].error.code).to.equal('SIGNATURE_NOT_FOUND');
    });

    it('when package sign --key-id is given --force, it replaces an existing <package>.sig with one that verifies', () => {
      const pkg = writePackage(dbDir.join('libdbforce.so'));
      writeFileSync(`${pkg}.sig`, 'old');
      ok(db(['package', 'sign', pkg, '--key-id', keyId, '--force']));
      ok(db(['package', 'verify', pkg, '--org', 'verifiers']));
    });
  });
});
