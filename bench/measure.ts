// Timing helpers for the benchmark: wall time of commands and in-process work, medians, ratios.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface CommandRun {
  seconds: number;
  peakRssKiB?: number;
  status: number | null;
}

/** Runs a command; GNU time (when present) reports its peak RSS. */
export function runCommand(command: string, args: string[], env?: NodeJS.ProcessEnv): CommandRun {
  const options = { encoding: 'utf8' as const, env: env ? { ...process.env, ...env } : process.env };
  if (existsSync('/usr/bin/time')) {
    const result = spawnSync('/usr/bin/time', ['-f', '__TIME__ %e %M', command, ...args], options);
    const match = /__TIME__ ([\d.]+) (\d+)/.exec(result.stderr);
    if (match) return { seconds: Number(match[1]), peakRssKiB: Number(match[2]), status: result.status };
  }
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, options);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, status: result.status };
}

/** Wall time of a command measured from here (finer than GNU time's 10 ms). */
export function timeCommand(command: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: 'ignore', env });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export async function timeAsync(work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median of the run-by-run ratios a[i] / b[i]: contenders timed back to back, so drift in machine load cancels out. */
export function pairedRatio(a: number[], b: number[]): number {
  return median(a.map((value, i) => value / b[i]));
}

export const fmt = (seconds: number): string => `${(seconds * 1000).toFixed(0)} ms`;
export const ratio = (value: number, reference: number): string => `${(value / reference).toFixed(2)}x`;
