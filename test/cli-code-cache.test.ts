// The CLI's compiled-code cache (src/cli/code-cache.ts) on a Node without its own compile cache: a cache
// file is code the CLI will run, so it is used only from a private directory of this user, and a cache
// that does not match is never run.
import { expect } from 'chai';
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, runCli, tempDir } from './helpers';

const nodeHasCompileCache = typeof (require('node:module') as { enableCompileCache?: unknown }).enableCompileCache === 'function';

describe('the CLI code cache', () => {
  let dir: ReturnType<typeof tempDir>;
  let cacheHome: string;
  let codeCache: string;
  const version = (env: NodeJS.ProcessEnv = {}) => runCli(['--version'], { XDG_CACHE_HOME: cacheHome, NODE_COMPILE_CACHE: '', ...env });
  const files = () => readdirSync(codeCache);

  beforeEach(() => {
    dir = tempDir();
    cacheHome = dir.join('cache');
    codeCache = join(cacheHome, 'cloacina-sign', 'code-cache');
  });
  afterEach(() => dir.cleanup());

  if (nodeHasCompileCache) {
    it('when Node has its own compile cache, it uses that and writes nothing of its own', () => {
      const result = version({ NODE_COMPILE_CACHE: dir.join('node-cache') });
      expect(result.status, result.stderr).to.equal(0);
      expect(() => readdirSync(codeCache)).to.throw();
    });
    return;
  }

  it('when a command runs, it keeps its compiled code in a private file of a private directory', () => {
    const result = version();
    expect(result.status, result.stderr).to.equal(0);
    expect(files()).to.have.length(1);
    expect(statSync(codeCache).mode & 0o777).to.equal(0o700);
    expect(statSync(join(codeCache, files()[0])).mode & 0o777).to.equal(0o600);
  });

  it('when the cache exists, the next run uses it and answers the same', () => {
    const first = version();
    const cached = statSync(join(codeCache, files()[0])).mtimeMs;
    const second = version();
    expect(second.status).to.equal(0);
    expect(second.stdout).to.equal(first.stdout);
    expect(files()).to.have.length(1);
    expect(statSync(join(codeCache, files()[0])).mtimeMs).to.equal(cached);
  });

  it('when the bundle is rewritten with other code of the same length, the next run compiles the new code, not the cached one', () => {
    // V8 checks only a source's length: the cache file's name must tell the versions of the file apart.
    const bundle = dir.join('bundle.js');
    const run = () =>
      spawnSync(
        process.execPath,
        [
          '-e',
          `console.log(require(${JSON.stringify(join(ROOT, 'dist/src/cli/code-cache.js'))}).requireWithCodeCache(process.argv[1], ['node', 'cli', 'package', 'verify']).value)`,
          bundle,
        ],
        { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: cacheHome, NODE_DISABLE_COMPILE_CACHE: '' } },
      );
    writeFileSync(bundle, "module.exports = { value: 'first' };");
    expect(run().stdout.trim()).to.equal('first');
    expect(run().stdout.trim()).to.equal('first');
    expect(files()).to.have.length(1);
    writeFileSync(bundle, "module.exports = { value: 'other' };");
    expect(run().stdout.trim()).to.equal('other');
    expect(files()).to.have.length(2);
  });

  it('when a cache file holds something else, V8 refuses it, the command still works and the file is rewritten', () => {
    version();
    const file = join(codeCache, files()[0]);
    writeFileSync(file, Buffer.alloc(4096, 0x41));
    const result = version();
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout.trim()).to.match(/^\d+\.\d+\.\d+/);
    expect(statSync(file).size).to.not.equal(4096);
  });

  it('when the cache directory is open to other users, it reads and writes nothing there', () => {
    mkdirSync(codeCache, { recursive: true });
    chmodSync(codeCache, 0o777);
    const result = version();
    expect(result.status, result.stderr).to.equal(0);
    expect(files()).to.deep.equal([]);
  });

  it('when NODE_DISABLE_COMPILE_CACHE is set, it writes nothing', () => {
    const result = version({ NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(result.status, result.stderr).to.equal(0);
    expect(() => readdirSync(codeCache)).to.throw();
  });

  it('when two commands run, each has a cache of its own', () => {
    version();
    const help = runCli(['package', 'verify', '--help'], { XDG_CACHE_HOME: cacheHome });
    expect(help.status, help.stderr).to.equal(0);
    expect(files()).to.have.length(2);
    expect(files().some((name) => name.includes('-package-verify-'))).to.equal(true);
  });
});
