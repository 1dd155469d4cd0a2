// Shared test plumbing: temporary directories, the CLI as a child process, outside vectors.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { CloacinaSignError } from '../src/errors';

export const ROOT = resolve(__dirname, '../..');
export const CLI = join(ROOT, 'dist/src/cli/main.js');

/** Third-party conformance data (Wycheproof, BLAKE3), read from the repository's copy in test/vectors/ (licences there). */
export function readVector(relative: string): any {
  return JSON.parse(readFileSync(resolve(ROOT, 'test/vectors', relative), 'utf8'));
}

export function tempDir(): { path: string; join: (...parts: string[]) => string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'cloacina-sign-test-'));
  return { path, join: (...parts) => join(path, ...parts), cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  json: () => any;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    json: () => JSON.parse(result.stdout),
  };
}

export function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

export function flipBit(bytes: Buffer, bit: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[bit >> 3] ^= 1 << (bit & 7);
  return copy;
}

/** Awaits a rejection with a CloacinaSignError (of one of `codes`, when given) and returns it. */
export async function rejectsWith(promise: Promise<unknown>, ...codes: string[]): Promise<CloacinaSignError> {
  try {
    await promise;
  } catch (error) {
    return checkCode(error, codes);
  }
  throw new Error(`resolved; expected a rejection${codes.length ? ` with ${codes.join(' or ')}` : ''}`);
}

/** Calls `fn` and expects it to throw a CloacinaSignError with `code`. */
export function throwsWith(fn: () => unknown, code: string): CloacinaSignError {
  try {
    fn();
  } catch (error) {
    return checkCode(error, [code]);
  }
  throw new Error(`returned; expected ${code}`);
}

function checkCode(error: unknown, codes: string[]): CloacinaSignError {
  expect(error).to.be.instanceOf(CloacinaSignError);
  if (codes.length) expect((error as CloacinaSignError).code, (error as Error).message).to.be.oneOf(codes);
  return error as CloacinaSignError;
}

/** Resolves once `condition()` holds; rejects after `timeoutMs`, saying what was awaited. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
