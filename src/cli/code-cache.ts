// Runs the CLI bundle (dist/src/cli/bundle.js) with V8's code cache, on a Node that has no compile cache
// of its own (module.enableCompileCache arrived in Node 22.1; main.ts uses it there instead).
//
// Compiling the bundle is most of what a command spends before it starts working. V8 can serialize the
// code it compiled and, given those bytes next time with the same source, skip the compilation. The
// bytes are kept per user and per command (`package verify` compiles other functions than `keys list`),
// under the user's cache directory:
//   $XDG_CACHE_HOME/cloacina-sign/code-cache or ~/.cache/cloacina-sign/code-cache
// A cache file is code this process will run, so it is trusted only as far as the directory is: the
// directory must be a real directory (not a symbolic link) owned by this user and closed to everyone
// else (mode 0700), or nothing is read or written there. A file's name carries the Node version, the
// command and the identity of the bundle's file as read (its inode, size and change time: any write to the
// file or a new file changes them, while V8 itself only checks the source's length), and a file is written
// whole to a temporary name and renamed, so a reader never sees half of one. Anything that
// fails (no home directory, a read-only file system, a rejected cache) only means compiling as usual.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off, as it does Node's own.
import { type BigIntStats, closeSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

/** The user's own, private cache directory, or undefined when there is none to trust. */
function cacheDirectory(): string | undefined {
  if (process.env.NODE_DISABLE_COMPILE_CACHE || typeof process.getuid !== 'function') return undefined;
  const uid = process.getuid();
  let base: string;
  try {
    base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  } catch {
    return undefined;
  }
  const directory = join(base, 'cloacina-sign', 'code-cache');
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    const stat = lstatSync(directory);
    return stat.isDirectory() && stat.uid === uid && (stat.mode & 0o077) === 0 ? directory : undefined;
  } catch {
    return undefined;
  }
}

/** A file name for this Node, this command and this version of the bundle: lowercase words only from the command line. */
function cacheName(bundle: BigIntStats, argv: readonly string[]): string {
  const words = argv.slice(2, 4).filter((word) => /^[a-z][a-z-]{0,31}$/.test(word));
  const version = `${bundle.dev}.${bundle.ino}.${bundle.size}.${bundle.ctimeNs}.${bundle.mtimeNs}`;
  return `${process.version}-${process.arch}-${words.join('-') || 'none'}-${version}.v8`;
}

/** The bundle's source and the identity of the file it was read from (stat and read on one descriptor). */
function readBundle(bundle: string): { source: string; stat: BigIntStats } {
  const fd = openSync(bundle, 'r');
  try {
    const stat = fstatSync(fd, { bigint: true });
    return { source: readFileSync(fd, 'utf8'), stat };
  } finally {
    closeSync(fd);
  }
}

function readCache(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

function writeCache(file: string, data: Buffer): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    const fd = openSync(temporary, 'wx', 0o600);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, file);
  } catch {
    try {
      unlinkSync(temporary);
    } catch {
      // never created
    }
  }
}

/** Loads `bundle` as a CommonJS module, compiled from the cache when one matches; returns its exports. */
export function requireWithCodeCache<T>(bundle: string, argv: readonly string[]): T {
  const { source, stat } = readBundle(bundle);
  const directory = cacheDirectory();
  const file = directory ? join(directory, cacheName(stat, argv)) : undefined;
  const cachedData = file ? readCache(file) : undefined;
  const script = new Script(Module.wrap(source), { filename: bundle, cachedData });
  const module = { exports: {} as T };
  const compiled = script.runInThisContext() as (...args: unknown[]) => void;
  compiled.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  if (file && (!cachedData || script.cachedDataRejected)) {
    // After the command ran, so the cache holds the functions it compiled, not only the top level.
    process.once('exit', () => writeCache(file, script.createCachedData()));
  }
  return module.exports;
}
