// How the CLI reaches the signing service (--api-url): the client, its timeout, and what a person waiting is told.
// The token comes from CLOACINA_API_TOKEN, never from the command line.
import { InvalidArgumentError } from 'commander';
import type { SigningServiceClient } from '../../signing/api-client';
import { say } from '../output';

export interface ServiceOptions {
  apiUrl: string;
  /** --api-timeout: the longest silence of the service, in seconds (default 30). */
  apiTimeout?: number;
  allowInsecureHttp?: boolean;
}

const DEFAULT_API_TIMEOUT_SECONDS = 30;
const MAX_API_TIMEOUT_SECONDS = 3600;
/** How long a person at a terminal waits in silence before being told what for. */
const WAITING_NOTICE_MS = 2000;

/** --api-timeout <seconds>: a positive number of seconds, at most an hour. */
export function apiTimeoutSeconds(value: string): number {
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_API_TIMEOUT_SECONDS) {
    throw new InvalidArgumentError(`must be a number of seconds greater than 0 and at most ${MAX_API_TIMEOUT_SECONDS}`);
  }
  return seconds;
}

export const API_TIMEOUT_HELP = `with --api-url: give up when the signing service is silent this long (default ${DEFAULT_API_TIMEOUT_SECONDS} s)`;

export async function client(options: ServiceOptions): Promise<SigningServiceClient> {
  const { apiTokenFromEnv, SigningServiceClient } = await import('../../signing/api-client');
  return new SigningServiceClient({
    url: options.apiUrl,
    token: apiTokenFromEnv(),
    allowInsecureHttp: options.allowInsecureHttp,
    timeoutMs: (options.apiTimeout ?? DEFAULT_API_TIMEOUT_SECONDS) * 1000,
  });
}

/**
 * Runs `work` (a request to the service); when it takes longer than 2 s and a person watches stderr,
 * says what is awaited and for how long at most, so a slow or unreachable service is no silent hang.
 */
export async function waitingFor<T>(what: string, service: SigningServiceClient, work: () => Promise<T>): Promise<T> {
  if (!process.stderr.isTTY) return work();
  const seconds = service.timeoutMs / 1000;
  const timer = setTimeout(
    () => say(`waiting for ${what} at ${service.where} (giving up after ${seconds} s without an answer: --api-timeout)`),
    WAITING_NOTICE_MS,
  );
  try {
    return await work();
  } finally {
    clearTimeout(timer);
  }
}
