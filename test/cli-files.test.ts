// Hostile inputs: every CLI path that reads a package, a signature or a key refuses a FIFO, a device, a
// socket or a directory at once (exit 2, naming what it is) and never hangs or reads endlessly.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { writePackage } from './fixtures/random-package';
import { CLI, run, tempDir } from './helpers';

/** Long enough for a slow machine, short enough that a hang fails the test instead of wedging the run. */
const HANG_TIMEOUT_MS = 10000;

interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

describe('the cloacina-sign CLI, given files that are not regular files', () => {
  const dir = tempDir();
  const database = `sqlite:${dir.join('files.db')}`;
  const env = { ...process.env, NO_COLOR: '1', CLOACINA_AUDIT_LOG: 'off', CLOACINA_DATABASE_URL: '', CLOACINA_REQUIRE_SIGNATURES: '' };
  const key = dir.join('k.pem');
  const pub = dir.join('k.pub.pem');
  const pkg = dir.join('libpkg.so');
  const fifo = dir.join('fifo');
  const socket = dir.join('socket');
  const directory = dir.join('directory');
  let server: Server;

  const cli = (args: string[]): Outcome => {
    const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: HANG_TIMEOUT_MS, killSignal: 'SIGKILL' });
    return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
  };
  const ok = (args: string[]): Outcome => {
    const result = cli(args);
    expect(result.status, result.stderr).to.equal(0);
    return result;
  };
  /** Exit 2 (not a hang: that would be status null, killed), and the error names the path and what it is. */
  const refusesAtOnce = (result: Outcome, path: string, kind: string): void => {
    expect(result.signal, `killed after ${HANG_TIMEOUT_MS} ms: it hung`).to.equal(null);
    expect(result.status, result.stderr).to.equal(2);
    expect(result.stderr).to.include(path).and.to.include(`${kind} is not a regular file`);
  };
  /**
   * A unix socket cannot even be opened (ENXIO). Key files (src/files.ts) then say "a socket"; packages are
   * opened in Rust (crates/core/src/files.rs open_regular, crates/loader sealed.rs), which still reports the
   * errno. Either way: refused at once, exit 2, naming the path.
   */
  const refusesPackageSocketAtOnce = (result: Outcome, path: string): void => {
    expect(result.signal, `killed after ${HANG_TIMEOUT_MS} ms: it hung`).to.equal(null);
    expect(result.status, result.stderr).to.equal(2);
    expect(result.stderr).to.include('UNREADABLE_FILE').and.to.include(path);
    expect(result.stderr).to.match(/a socket is not a regular file|No such device or address/);
  };

  before(async () => {
    ok(['keys', 'generate', '--name', 'k', '--output', key]);
    writePackage(pkg);
    ok(['package', 'sign', pkg, '--key', key]);
    run('mkfifo', [fifo]);
    mkdirSync(directory);
    server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, resolve);
    });
    ok(['db', 'migrate', '--database', database]);
    ok(['orgs', 'create', 'x', '--database', database]);
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    dir.cleanup();
  });

  describe('package sign', () => {
    it('when the package is a FIFO, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'sign', fifo, '--key', key]), fifo, 'a FIFO');
    });

    it('when the package is /dev/zero, it exits 2 at once saying it is a character device', () => {
      refusesAtOnce(cli(['package', 'sign', '/dev/zero', '--key', key]), '/dev/zero', 'a character device');
    });

    it('when the package is a directory, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'sign', directory, '--key', key]), directory, 'a directory');
    });

    it('when the package is a unix socket, it exits 2 at once naming it', () => {
      refusesPackageSocketAtOnce(cli(['package', 'sign', socket, '--key', key]), socket);
    });

    it('when the key is a FIFO, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'sign', pkg, '--key', fifo, '--output', dir.join('fifo-key.sig')]), fifo, 'a FIFO');
    });

    it('when the key is /dev/zero, it exits 2 at once saying it is a character device', () => {
      refusesAtOnce(cli(['package', 'sign', pkg, '--key', '/dev/zero', '--output', dir.join('zero-key.sig')]), '/dev/zero', 'a character device');
    });

    it('when the key is a unix socket, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'sign', pkg, '--key', socket, '--output', dir.join('socket-key.sig')]), socket, 'a socket');
    });
  });

  describe('package sign --output', () => {
    it('when --output names a FIFO, it exits 2 at once without opening it, even with --force', () => {
      const result = cli(['package', 'sign', pkg, '--key', key, '--output', fifo, '--force']);
      expect(result.signal, `killed after ${HANG_TIMEOUT_MS} ms: it hung`).to.equal(null);
      expect(result.status, result.stderr).to.equal(2);
      expect(result.stderr).to.include(`refusing to write over ${fifo}: it is a FIFO, not a regular file`);
    });
  });

  describe('package verify with pinned keys', () => {
    it('when the package is a FIFO, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'verify', fifo, '--trust-key', pub]), fifo, 'a FIFO');
    });

    it('when the package is /dev/zero, it exits 2 at once saying it is a character device', () => {
      refusesAtOnce(cli(['package', 'verify', '/dev/zero', '--trust-key', pub, '--signature', `${pkg}.sig`]), '/dev/zero', 'a character device');
    });

    it('when the package is a unix socket, it exits 2 at once naming it', () => {
      refusesPackageSocketAtOnce(cli(['package', 'verify', socket, '--trust-key', pub, '--signature', `${pkg}.sig`]), socket);
    });

    it('when the trusted key is a FIFO, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'verify', pkg, '--trust-key', fifo]), fifo, 'a FIFO');
    });

    it('when the trusted key is a unix socket, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'verify', pkg, '--trust-key', socket]), socket, 'a socket');
    });

    it('when --signature names a FIFO, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'verify', pkg, '--trust-key', pub, '--signature', fifo]), fifo, 'a FIFO');
    });

    it('when --signature names /dev/zero, it exits 2 at once saying it is a character device', () => {
      refusesAtOnce(cli(['package', 'verify', pkg, '--trust-key', pub, '--signature', '/dev/zero']), '/dev/zero', 'a character device');
    });

    it('when --signature names a unix socket, it exits 2 at once naming it', () => {
      refusesPackageSocketAtOnce(cli(['package', 'verify', pkg, '--trust-key', pub, '--signature', socket]), socket);
    });

    it('when the default <package>.sig is a FIFO, it exits 2 at once saying so', () => {
      const lone = writePackage(dir.join('liblone.so'));
      run('mkfifo', [`${lone}.sig`]);
      refusesAtOnce(cli(['package', 'verify', lone, '--trust-key', pub]), `${lone}.sig`, 'a FIFO');
    });
  });

  describe('with a database', () => {
    it('when keys trust --import names a FIFO, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['keys', 'trust', '--import', fifo, '--org', 'x', '--database', database]), fifo, 'a FIFO');
    });

    it('when package verify --org is given a FIFO, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'verify', fifo, '--org', 'x', '--database', database]), fifo, 'a FIFO');
    });
  });

  describe('package run', () => {
    it('when the package is a FIFO, it exits 2 at once saying so', () => {
      refusesAtOnce(cli(['package', 'run', fifo, '--trust-key', pub, '--task', 't']), fifo, 'a FIFO');
    });

    it('when the package is /dev/zero, it exits 2 at once saying it is a character device', () => {
      refusesAtOnce(cli(['package', 'run', '/dev/zero', '--trust-key', pub, '--task', 't']), '/dev/zero', 'a character device');
    });
  });
});
