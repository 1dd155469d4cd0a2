// The signing service under test: `cloacina-sign serve` as a real child process on a loopback port, the
// CLI as child processes, HTTP through fetch; every line any of them printed and every body any of them
// answered is kept, so a suite can check that no secret ever appears in any of it.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import { CLI, type CliResult, runCli } from '../helpers';

/** Everything printed or answered during a suite, for the secrets check. */
export class Transcript {
  readonly entries: string[] = [];

  add(what: string, text: string | Buffer): void {
    this.entries.push(`${what}: ${Buffer.isBuffer(text) ? text.toString('latin1') : text}`);
  }

  /** No entry contains any of `secrets` (each also checked in its hex, base64 and base64url forms when it is a Buffer). */
  expectFreeOf(secrets: (string | Buffer)[]): void {
    const needles = new Set<string>();
    for (const secret of secrets) {
      if (Buffer.isBuffer(secret)) {
        needles.add(secret.toString('hex'));
        needles.add(secret.toString('base64'));
        needles.add(secret.toString('base64url'));
      } else if (secret.length >= 8) {
        needles.add(secret);
      }
    }
    expect(this.entries.length).to.be.greaterThan(0);
    for (const entry of this.entries) {
      for (const needle of needles) {
        if (entry.includes(needle)) expect.fail(`a secret (${needle.slice(0, 6)}...) appears in ${entry.slice(0, 200)}`);
      }
    }
  }
}

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** Lines of stderr so far. */
  stderr: string[];
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `cloacina-sign serve --listen 127.0.0.1:0 --json` and resolves once it listens. */
export async function startService(options: {
  database: string;
  kek: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  transcript?: Transcript;
}): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', '--json', '--database', options.database, ...(options.args ?? [])], {
    env: { ...process.env, NO_COLOR: '1', CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: '', CLOACINA_KEY_ENCRYPTION_KEY: options.kek, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    options.transcript?.add('service stderr', line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const stdout = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the service did not start within 15 s: ${stderr.join('\n')}`)), 15_000);
    stdout.once('line', (line) => {
      clearTimeout(timer);
      options.transcript?.add('service stdout', line);
      try {
        resolve(JSON.parse(line).listening);
      } catch {
        reject(new Error(`unexpected first line from serve: ${line}`));
      }
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before listening: ${stderr.join('\n')}`));
    });
  });
  stdout.on('line', (line) => options.transcript?.add('service stdout', line));
  return {
    child,
    url,
    stderr,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
  json: () => any;
}

/** One request through fetch; the answer is kept in the transcript. */
export async function http(transcript: Transcript, url: string, init: RequestInit & { token?: string } = {}): Promise<HttpAnswer> {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('authorization', `Bearer ${init.token}`);
  const response = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(30_000) });
  const body = Buffer.from(await response.arrayBuffer());
  transcript.add(`answer ${response.status} ${url}`, body);
  return { status: response.status, headers: response.headers, body, text: body.toString('utf8'), json: () => JSON.parse(body.toString('utf8')) };
}

/** POST /v1/sign. */
export function signRequest(transcript: Transcript, base: string, token: string | undefined, body: unknown): Promise<HttpAnswer> {
  return http(transcript, `${base}/v1/sign`, { method: 'POST', token, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** The CLI, its output kept in the transcript. */
export function cli(transcript: Transcript, args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const result = runCli(args, { CLOACINA_DATABASE_URL: '', CLOACINA_KEY_ENCRYPTION_KEY: '', CLOACINA_AUDIT_LOG: 'off', ...env });
  transcript.add(`cli ${args.slice(0, 2).join(' ')} stdout`, result.stdout);
  transcript.add(`cli ${args.slice(0, 2).join(' ')} stderr`, result.stderr);
  return result;
}

/** A random package file. */
export function randomPackage(path: string, size = 64 * 1024): string {
  writeFileSync(path, randomBytes(size));
  return path;
}

/** Asynchronous CLI run (for CLI processes that must run while the test does something else). */
export function cliAsync(
  transcript: Transcript,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; done: Promise<{ status: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, NO_COLOR: '1', CLOACINA_DATABASE_URL: '', CLOACINA_KEY_ENCRYPTION_KEY: '', CLOACINA_AUDIT_LOG: 'off', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (status) => {
      transcript.add(`cli ${args.slice(0, 2).join(' ')} stdout`, stdout);
      transcript.add(`cli ${args.slice(0, 2).join(' ')} stderr`, stderr);
      resolve({ status, stdout, stderr });
    }),
  );
  return { child, done };
}

/** The value of a metric line (`name{labels} value`) in a Prometheus text exposition, 0 when absent. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = (match[2] ?? '').split(',').filter(Boolean);
    if (wanted.every((label) => present.includes(label)) && (wanted.length > 0 || present.length === 0)) return Number(match[3]);
  }
  return 0;
}
