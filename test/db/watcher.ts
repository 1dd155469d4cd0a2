// A second process verifying a package in a loop (test/fixtures/watch-verify.ts), for the hot-reload tests.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const WATCHER = join(__dirname, '../fixtures/watch-verify.js');

/** Starts the watcher and resolves with a function waiting for its next event line. */
export function startWatcher(args: string[]) {
  const child = spawn(process.execPath, [WATCHER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<any> => {
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the watcher did not report within 10 s')), 10_000).unref());
    const line = (await Promise.race([lines.next(), timeout])) as IteratorResult<string>;
    if (line.done) throw new Error('the watcher exited without reporting');
    return JSON.parse(line.value);
  };
  return { child, next };
}
