// A progress bar on stderr for large files, only when a person is watching a terminal.
import { promises as fs } from 'node:fs';
import { ProgressCounter } from '../progress';

const MIN_BYTES_FOR_BAR = 64 * 1024 * 1024;
const WIDTH = 30;

async function sizeOf(path: string): Promise<number> {
  return fs.stat(path).then(
    (stat) => stat.size,
    () => 0,
  );
}

function render(done: number, total: number): string {
  const fraction = Math.min(1, total === 0 ? 1 : done / total);
  const filled = Math.round(fraction * WIDTH);
  const mib = (n: number) => (n / 1048576).toFixed(0);
  return `\r[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(total)} MiB`;
}

/** Runs `work` with a counter; draws a bar while it runs if the file is large and stderr is a TTY. */
export async function withProgress<T>(path: string, work: (progress?: ProgressCounter) => Promise<T>): Promise<T> {
  const total = process.stderr.isTTY ? await sizeOf(path) : 0;
  if (total < MIN_BYTES_FOR_BAR) return work();
  const progress = new ProgressCounter();
  const timer = setInterval(() => process.stderr.write(render(progress.bytes, total)), 100);
  try {
    return await work(progress);
  } finally {
    clearInterval(timer);
    process.stderr.write(`${render(progress.bytes, total)}\n`);
  }
}
