// Nothing parses a package's bytes before its signature decision: seal and hash, trust, signature and
// policy, then (only for cleared bytes) the format checks, the audit, the load. And the APX runbook's
// size and WebAssembly checks from the command line.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type AuditEvent, type AuditSink, createPackageLoader, generateKeypair, type PackageLoader, publicKeyToPem, publicKeyTrust, signPackage } from '../src';
import { DetachedSignature } from '../src/formats/v1';
import { parseSize } from '../src/cli/package-checks';
import { buildPackage, buildWasm } from './fixtures';
import { rejectsWith, ROOT, runCli, tempDir } from './helpers';

/** A byte inside the ELF program headers (they start at offset 64 in the fixtures). */
const PROGRAM_HEADER_BYTE = 72;

function recordingSink(): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, write: async (event) => void events.push(event) };
}

/** A Node addon whose constructor leaves `markerPath` (test/fixtures/marker_addon.c). */
function buildMarkerAddon(output: string, markerPath: string): string {
  const include = [join(dirname(process.execPath), '../include/node'), '/usr/include/node'].find((candidate) => existsSync(join(candidate, 'node_api.h')));
  if (!include) throw new Error('node_api.h not found');
  const result = spawnSync(
    'cc',
    ['-shared', '-fPIC', '-O1', `-I${include}`, `-DMARKER_PATH="${markerPath}"`, '-o', output, join(ROOT, 'test/fixtures/marker_addon.c')],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`cc failed: ${result.stderr}`);
  return output;
}

function flipByte(path: string, offset: number): void {
  const bytes = readFileSync(path);
  bytes[offset] ^= 0xff;
  writeFileSync(path, bytes);
}

describe('verify first: the order of a load and the runbook checks', () => {
  const dir = tempDir();
  const signer = generateKeypair();
  const publicKeyPem = dir.join('signer.pub.pem');
  const auditLog = dir.join('audit.log');
  const env = { CLOACINA_AUDIT_LOG: 'off' };
  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => runCli(args, { ...env, ...extraEnv });
  let sink: ReturnType<typeof recordingSink>;
  let loader: PackageLoader;

  const sign = async (path: string) => {
    const info = await signPackage(path, signer.privateKey);
    await DetachedSignature.fromSignatureInfo(info).writeToFile(`${path}.sig`);
    return info;
  };
  /** A package whose constructor leaves a marker, signed, then one byte of its program headers changed. */
  const tamperedPackage = async (name: string) => {
    const marker = dir.join(`${name}.marker`);
    const path = buildPackage(dir.join(`lib${name}.so`), { markerPath: marker });
    await sign(path);
    flipByte(path, PROGRAM_HEADER_BYTE);
    return { path, marker };
  };
  /** The signature of a real package beside bytes no ELF parser would accept. */
  const signedThenReplacedByGarbage = async (name: string) => {
    const path = buildPackage(dir.join(`lib${name}.so`));
    await sign(path);
    writeFileSync(path, 'MZ\x90\0 not an ELF file, and not what was signed');
    return path;
  };

  before(() => writeFileSync(publicKeyPem, publicKeyToPem(signer.publicKey)));
  beforeEach(() => {
    sink = recordingSink();
    loader = createPackageLoader({ trust: publicKeyTrust([signer.publicKey]), audit: sink, requireSignatures: true });
  });
  after(() => dir.cleanup());

  describe('when a signed package has one byte of its program headers changed', () => {
    it('when it is run from the CLI, it exits 1 with TAMPERED_PACKAGE and no code of it ran', async () => {
      const { path, marker } = await tamperedPackage('cli-run');
      const result = cli(['package', 'run', path, '--trust-key', publicKeyPem, '--task', 'whoami', '--json']);
      expect(result.status, result.stderr).to.equal(1);
      expect(result.json().error.code).to.equal('TAMPERED_PACKAGE');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when it is inspected from the CLI, it exits 1 with TAMPERED_PACKAGE and no code of it ran', async () => {
      const { path, marker } = await tamperedPackage('cli-inspect');
      const result = cli(['package', 'inspect', path, '--trust-key', publicKeyPem, '--json']);
      expect(result.status, result.stderr).to.equal(1);
      expect(result.json().error.code).to.equal('TAMPERED_PACKAGE');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when it is verified from the CLI, it exits 1 with TAMPERED_PACKAGE', async () => {
      const { path } = await tamperedPackage('cli-verify');
      const result = cli(['package', 'verify', path, '--trust-key', publicKeyPem, '--json']);
      expect(result.status, result.stderr).to.equal(1);
      expect(result.json().results[0].error.code).to.equal('TAMPERED_PACKAGE');
    });

    it('when the CLI refuses its run, the audit line carries the signature verdict', async () => {
      const { path } = await tamperedPackage('cli-audit');
      const result = cli(['package', 'run', path, '--trust-key', publicKeyPem, '--task', 'whoami'], { CLOACINA_AUDIT_LOG: auditLog });
      expect(result.status, result.stderr).to.equal(1);
      const event = JSON.parse(readFileSync(auditLog, 'utf8').trim().split('\n').pop() as string);
      expect(event.event_type).to.equal('package.load.failure');
      expect(event.signature_verified).to.equal(false);
      expect(event.reason).to.match(/^TAMPERED_PACKAGE: /);
    });

    it('when the library loads it, it rejects it with TAMPERED_PACKAGE and no code of it ran', async () => {
      const { path, marker } = await tamperedPackage('lib-load');
      await rejectsWith(loader.load(path), 'TAMPERED_PACKAGE');
      expect(existsSync(marker)).to.equal(false);
      expect(sink.events.map((event) => [event.event_type, event.signature_verified])).to.deep.equal([['package.load.failure', false]]);
      expect(sink.events[0].reason).to.match(/^TAMPERED_PACKAGE: /);
    });

    it('when the library requires it as an addon, it rejects it with TAMPERED_PACKAGE and the addon constructor never ran', async () => {
      const marker = dir.join('addon.marker');
      const addon = buildMarkerAddon(dir.join('marker.node'), marker);
      await sign(addon);
      flipByte(addon, PROGRAM_HEADER_BYTE);
      await rejectsWith(loader.requireAddon(addon), 'TAMPERED_PACKAGE');
      expect(existsSync(marker)).to.equal(false);
    });

    it('when the library compiles a tampered WebAssembly module, it rejects it with TAMPERED_PACKAGE', async () => {
      const wasm = buildWasm(dir.join('tampered.wasm'));
      await sign(wasm);
      flipByte(wasm, 2);
      await rejectsWith(loader.compileWasm(wasm), 'TAMPERED_PACKAGE');
    });
  });

  describe('when the bytes are not what was signed and not a library or module either', () => {
    it('when they are run or inspected from the CLI, the signature decides (TAMPERED_PACKAGE), never the ELF checks', async () => {
      const path = await signedThenReplacedByGarbage('garbage-cli');
      for (const args of [
        ['package', 'run', path, '--trust-key', publicKeyPem, '--task', 'whoami', '--json'],
        ['package', 'inspect', path, '--trust-key', publicKeyPem, '--json'],
      ]) {
        const result = cli(args);
        expect(result.status, args[1]).to.equal(1);
        expect(result.json().error.code, args[1]).to.equal('TAMPERED_PACKAGE');
      }
    });

    it('when the library loads them as a package, an addon or a module, each is TAMPERED_PACKAGE', async () => {
      const path = await signedThenReplacedByGarbage('garbage-lib');
      await rejectsWith(loader.load(path), 'TAMPERED_PACKAGE');
      await rejectsWith(loader.requireAddon(path), 'TAMPERED_PACKAGE');
      await rejectsWith(loader.compileWasm(path), 'TAMPERED_PACKAGE');
    });
  });

  describe('when an unsigned file is given and signatures are required', () => {
    it('when it is run from the CLI, it is SIGNATURE_NOT_FOUND, exit 1', () => {
      const random = dir.join('random.so');
      writeFileSync(random, Buffer.alloc(4096, 0x5a));
      const result = cli(['package', 'run', random, '--trust-key', publicKeyPem, '--task', 'whoami', '--require-signatures', '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().error.code).to.equal('SIGNATURE_NOT_FOUND');
    });

    it('when the library loads it as a package, an addon or a module, each is SIGNATURE_NOT_FOUND', async () => {
      const random = dir.join('random-lib.so');
      writeFileSync(random, Buffer.alloc(4096, 0x5a));
      await rejectsWith(loader.load(random), 'SIGNATURE_NOT_FOUND');
      await rejectsWith(loader.requireAddon(random), 'SIGNATURE_NOT_FOUND');
      await rejectsWith(loader.compileWasm(random), 'SIGNATURE_NOT_FOUND');
    });
  });

  describe('when a correctly signed file is not what it is used as', () => {
    it('when the CLI runs a signed file that is not a shared library, it is NOT_A_SHARED_LIBRARY', async () => {
      const text = dir.join('signed-text.so');
      writeFileSync(text, '#!/bin/sh\necho not a library\n');
      await sign(text);
      const result = cli(['package', 'run', text, '--trust-key', publicKeyPem, '--task', 'whoami', '--json']);
      expect(result.json().error.code).to.equal('NOT_A_SHARED_LIBRARY');
    });

    it('when the library refuses it, the audit event says the signature verified and who signed', async () => {
      const text = dir.join('signed-text-lib.so');
      writeFileSync(text, '#!/bin/sh\necho not a library\n');
      const info = await sign(text);
      await rejectsWith(loader.load(text), 'NOT_A_SHARED_LIBRARY');
      expect(sink.events).to.have.length(1);
      const [event] = sink.events;
      expect(event.event_type).to.equal('package.load.failure');
      expect(event.signature_verified).to.equal(true);
      expect(event.signer_fingerprint).to.equal(info.keyFingerprint);
      expect(event.package_hash).to.equal(info.packageHash);
      expect(event.reason).to.match(/^NOT_A_SHARED_LIBRARY: /);
    });

    it('when the library verifies it as WebAssembly, the magic is checked on the verified bytes (NOT_A_WASM_MODULE)', async () => {
      const fake = dir.join('signed-fake-lib.bin');
      writeFileSync(fake, 'MZ\x90\0');
      const info = await sign(fake);
      await rejectsWith(loader.verify(fake, { format: 'wasm' }), 'NOT_A_WASM_MODULE');
      const [event] = sink.events;
      expect(event.event_type).to.equal('verification.failure');
      expect(event.signature_verified).to.equal(true);
      expect(event.signer_fingerprint).to.equal(info.keyFingerprint);
      expect((await loader.verify(fake)).packageHash).to.equal(info.packageHash);
    });
  });

  describe('when the CLI checks WebAssembly magic', () => {
    it('when a signed .wasm file carries MZ magic, verify exits 1 with NOT_A_WASM_MODULE', async () => {
      const fake = dir.join('fake.wasm');
      writeFileSync(fake, 'MZ\x90\0 a PE file');
      await sign(fake);
      const result = cli(['package', 'verify', fake, '--trust-key', publicKeyPem, '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().results[0].error.code).to.equal('NOT_A_WASM_MODULE');
    });

    it('when --package-format any is given for that .wasm file, verify exits 0', async () => {
      const fake = dir.join('fake-any.wasm');
      writeFileSync(fake, 'MZ\x90\0 a PE file');
      await sign(fake);
      expect(cli(['package', 'verify', fake, '--trust-key', publicKeyPem, '--package-format', 'any']).status).to.equal(0);
    });

    it('when --package-format wasm is given for a file of another name, its magic is required', async () => {
      const fake = dir.join('module.bin');
      writeFileSync(fake, 'MZ\x90\0 a PE file');
      await sign(fake);
      expect(cli(['package', 'verify', fake, '--trust-key', publicKeyPem]).status).to.equal(0);
      const result = cli(['package', 'verify', fake, '--trust-key', publicKeyPem, '--package-format', 'wasm', '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().results[0].error.code).to.equal('NOT_A_WASM_MODULE');
    });

    it('when a signed WebAssembly module is verified, it exits 0; changed, the signature decides first (TAMPERED_PACKAGE)', async () => {
      const wasm = buildWasm(dir.join('answer.wasm'));
      await sign(wasm);
      expect(cli(['package', 'verify', wasm, '--trust-key', publicKeyPem]).status).to.equal(0);
      writeFileSync(wasm, 'MZ\x90\0 no longer a module');
      const result = cli(['package', 'verify', wasm, '--trust-key', publicKeyPem, '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().results[0].error.code).to.equal('TAMPERED_PACKAGE');
    });

    it('when a .wasm file is run, its magic is checked after its signature (NOT_A_WASM_MODULE, exit 1)', async () => {
      const elf = dir.join('library.wasm');
      copyFileSync(buildPackage(dir.join('libwasm-named.so')), elf);
      await sign(elf);
      const result = cli(['package', 'run', elf, '--trust-key', publicKeyPem, '--task', 'whoami', '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().error.code).to.equal('NOT_A_WASM_MODULE');
    });
  });

  describe('when the CLI is given a size limit', () => {
    const size = 10_400_000; // over 10 MB, under 10 MiB
    let big: string;
    before(async () => {
      big = dir.join('big.bin');
      writeFileSync(big, Buffer.alloc(size, 1));
      await sign(big);
    });

    it('when the package is over --max-size 10MB, verify exits 1 with PACKAGE_TOO_LARGE', () => {
      const result = cli(['package', 'verify', big, '--trust-key', publicKeyPem, '--max-size', '10MB', '--json']);
      expect(result.status).to.equal(1);
      expect(result.json().results[0].error.code).to.equal('PACKAGE_TOO_LARGE');
    });

    it('when the package is under --max-size 10MiB, verify exits 0', () => {
      expect(cli(['package', 'verify', big, '--trust-key', publicKeyPem, '--max-size', '10MiB']).status).to.equal(0);
      expect(cli(['package', 'verify', big, '--trust-key', publicKeyPem, '--max-size', String(size)]).status).to.equal(0);
    });

    it('when a package to run or inspect is over --max-size, it exits 1 with PACKAGE_TOO_LARGE', async () => {
      const path = buildPackage(dir.join('libsized.so'));
      await sign(path);
      for (const command of [
        ['run', path, '--task', 'whoami'],
        ['inspect', path],
      ]) {
        const result = cli(['package', ...command, '--trust-key', publicKeyPem, '--max-size', '1024', '--json']);
        expect(result.status, command[0]).to.equal(1);
        expect(result.json().error.code, command[0]).to.equal('PACKAGE_TOO_LARGE');
      }
    });

    it('when the CLI refuses a package for its size or format, the audit line says nothing false about its signature', async () => {
      const log = dir.join('rejected-audit.log');
      cli(['package', 'verify', big, '--trust-key', publicKeyPem, '--max-size', '10MB'], { CLOACINA_AUDIT_LOG: log });
      const fake = dir.join('audited-fake.wasm');
      writeFileSync(fake, 'MZ\x90\0 a PE file');
      await sign(fake);
      cli(['package', 'verify', fake, '--trust-key', publicKeyPem], { CLOACINA_AUDIT_LOG: log });
      const [tooLarge, notWasm] = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(tooLarge.signature_verified).to.equal(false);
      expect(tooLarge.file.code_signature).to.deep.equal({ status: 'PACKAGE_TOO_LARGE' });
      expect(notWasm.signature_verified).to.equal(true);
      expect(notWasm.file.code_signature).to.include({ valid: true, status: 'VERIFIED' });
      expect(notWasm.reason).to.match(/^NOT_A_WASM_MODULE: /);
    });

    it('when --max-size is not a size, it is a usage error (exit 2)', () => {
      expect(cli(['package', 'verify', big, '--trust-key', publicKeyPem, '--max-size', '10XB']).status).to.equal(2);
    });

    it('when sizes are parsed, decimal and binary units differ', () => {
      expect(parseSize('10MB')).to.equal(10_000_000);
      expect(parseSize('10MiB')).to.equal(10_485_760);
      expect(parseSize('10 kib')).to.equal(10_240);
      expect(parseSize('2048')).to.equal(2048);
    });
  });

  describe('when run and inspect are given --public-key', () => {
    it('it is the same as --trust-key', async () => {
      const path = buildPackage(dir.join('libpublic-key.so'), { identity: 'public-key' });
      await sign(path);
      const run = cli(['package', 'run', path, '--public-key', publicKeyPem, '--task', 'whoami', '--json']);
      expect(run.status, run.stderr).to.equal(0);
      expect(run.json().output).to.deep.equal({ identity: 'public-key' });
      const inspect = cli(['package', 'inspect', path, '--public-key', publicKeyPem, '--json']);
      expect(inspect.status, inspect.stderr).to.equal(0);
    });
  });
});
