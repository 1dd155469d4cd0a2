// The key-encryption key (KEK): 32 bytes given as base64 or hex. Messages never contain its value.
import { createHash } from 'node:crypto';
import { CloacinaSignError } from '../errors';

export const KEK_ENV = 'CLOACINA_KEY_ENCRYPTION_KEY';
const KEK_ID_LABEL = 'cloacina-sign/kek-id/v1\0';

/** Parses a KEK given as 64 hex characters or base64 of exactly 32 bytes. */
export function parseKek(text: string, source = KEK_ENV): Buffer {
  const value = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
    const bytes = Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64');
    if (bytes.length === 32) return bytes;
  }
  throw new CloacinaSignError('INVALID_INPUT', `${source} must be 32 bytes as 64 hex characters or base64 (the value is not shown)`);
}

/** Reads a KEK from an environment variable; MISSING_KEK when unset or empty. */
export function kekFromEnv(variable = KEK_ENV, env: NodeJS.ProcessEnv = process.env): Buffer {
  const value = env[variable];
  if (value === undefined || value.trim() === '') {
    throw new CloacinaSignError('MISSING_KEK', `no key-encryption key: set ${variable} to 32 bytes (base64 or hex)`);
  }
  return parseKek(value, variable);
}

/** A public identifier of a KEK stored beside each sealed key: 16 hex characters of a labelled SHA-256. */
export function kekId(kek: Buffer): string {
  if (kek.length !== 32) throw new CloacinaSignError('INVALID_INPUT', `a key-encryption key must be 32 bytes, got ${kek.length}`);
  return createHash('sha256').update(KEK_ID_LABEL).update(kek).digest('hex').slice(0, 16);
}
