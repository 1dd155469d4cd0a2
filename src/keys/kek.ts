// The key-encryption key (KEK): 32 bytes given as base64 or hex (a variable or a protected file), or a
// sensitive, non-extractable AES-256 key object in a PKCS#11 token, where sealing and opening run.
// Messages never contain its value or the token's PIN.
import { nodeCrypto } from '../node-crypto';
import { CloacinaSignError } from '../errors';
import { type FileOwnership, readSmallFileSync } from '../files';
import { native } from '../native';
import { refuseOpenPermissions } from './key-files';

export const KEK_ENV = 'CLOACINA_KEY_ENCRYPTION_KEY';
export const KEK_FILE_ENV = 'CLOACINA_KEY_ENCRYPTION_KEY_FILE';
export const KEK_PKCS11_ENV = 'CLOACINA_KEK_PKCS11';
export const PKCS11_PIN_ENV = 'CLOACINA_PKCS11_PIN';
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

/** Where a token KEK lives and its user PIN (the native layer's Pkcs11Kek, stated here so the public
 * types do not reach into the binding's). */
export interface Pkcs11Kek {
  modulePath: string;
  tokenLabel: string;
  objectLabel: string;
  pin: string;
}

/** A KEK in a PKCS#11 token: where it lives, its PIN (never printed) and its id, computed in the token. */
export interface TokenKek extends Pkcs11Kek {
  kind: 'pkcs11';
  /** The configured URI (it carries no PIN: pin-value is refused). */
  uri: string;
  id: string;
}

/** The KEK as the native sealing functions take it: its bytes, or the token that holds it. */
export type Kek = Buffer | TokenKek;

export function isTokenKek(kek: Kek): kek is TokenKek {
  return !Buffer.isBuffer(kek);
}

/** A public identifier of a KEK stored beside each sealed key: 16 hex characters of a labelled SHA-256
 * of the bytes, or for a token key the AES-CMAC of a fixed string computed in the token. */
export function kekId(kek: Kek): string {
  if (isTokenKek(kek)) return kek.id;
  if (kek.length !== 32) throw new CloacinaSignError('INVALID_INPUT', `a key-encryption key must be 32 bytes, got ${kek.length}`);
  return nodeCrypto().createHash('sha256').update(KEK_ID_LABEL).update(kek).digest('hex').slice(0, 16);
}

const MAX_SECRET_FILE_BYTES = 4096;

/** A KEK or PIN file: a regular file of this user that group and others cannot access (the private key
 * file rule; `allowInsecure` is --allow-insecure-key-file). */
function readSecretFile(path: string, what: string, allowInsecure: boolean): string {
  const check = (stat: FileOwnership) => {
    if (allowInsecure) return;
    if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
      throw new CloacinaSignError(
        'INSECURE_KEY_FILE',
        `'${path}' is owned by another user: a ${what} must belong to the user reading it (or pass --allow-insecure-key-file)`,
      );
    }
    refuseOpenPermissions(path, stat);
  };
  return readSmallFileSync(path, MAX_SECRET_FILE_BYTES, what, check).toString('utf8');
}

/** Reads a KEK from a protected file, in the formats of the variable. */
export function kekFromFile(path: string, options: { allowInsecureKeyFile?: boolean } = {}): Buffer {
  return parseKek(readSecretFile(path, 'KEK file', options.allowInsecureKeyFile === true), `the KEK file '${path}'`);
}

/** RFC 7512 percent-decoding of one attribute value. */
function pct(value: string, uri: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new CloacinaSignError('INVALID_INPUT', `${KEK_PKCS11_ENV}: malformed percent-encoding in ${uri}`);
  }
}

/** The parts of an RFC 7512 `pkcs11:` URI this project reads: token, object, module-path, pin-source. */
export function parsePkcs11Uri(uri: string): { tokenLabel: string; objectLabel: string; modulePath: string; pinSource?: string } {
  const text = uri.trim();
  if (!text.startsWith('pkcs11:')) throw new CloacinaSignError('INVALID_INPUT', `a PKCS#11 KEK is named by a pkcs11: URI, got '${text.slice(0, 40)}'`);
  const [path, query = ''] = text.slice('pkcs11:'.length).split('?', 2);
  const attributes = new Map<string, string>();
  for (const part of [...path.split(';'), ...query.split('&')]) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    // The PIN never travels in a URI: URIs end up in logs and process listings.
    if (name === 'pin-value')
      throw new CloacinaSignError(
        'INVALID_INPUT',
        'a pkcs11: URI must not carry pin-value (URIs end up in logs): use pin-source=file:<path> or CLOACINA_PKCS11_PIN',
      );
    if (eq < 0) continue;
    attributes.set(name, pct(part.slice(eq + 1), 'the URI'));
  }
  const tokenLabel = attributes.get('token');
  const objectLabel = attributes.get('object');
  const modulePath = attributes.get('module-path');
  if (!tokenLabel || !objectLabel || !modulePath) {
    throw new CloacinaSignError('INVALID_INPUT', 'a pkcs11: KEK URI needs token=<label>;object=<label> and ?module-path=<PKCS#11 module>');
  }
  const pinSource = attributes.get('pin-source');
  return { tokenLabel, objectLabel, modulePath, ...(pinSource ? { pinSource } : {}) };
}

/** Where a token KEK lives and its PIN (from pin-source=file: or CLOACINA_PKCS11_PIN); no token call yet. */
export function tokenKekSpec(uri: string, options: { allowInsecureKeyFile?: boolean; env?: NodeJS.ProcessEnv } = {}): Pkcs11Kek & { uri: string } {
  const env = options.env ?? process.env;
  const { pinSource, ...where } = parsePkcs11Uri(uri);
  let pin: string | undefined;
  if (pinSource !== undefined) {
    if (!pinSource.startsWith('file:')) throw new CloacinaSignError('INVALID_INPUT', 'pin-source must be file:<path>');
    pin = readSecretFile(pinSource.slice('file:'.length), 'PIN file', options.allowInsecureKeyFile === true).replace(/\r?\n$/, '');
  } else {
    pin = env[PKCS11_PIN_ENV];
  }
  if (pin === undefined || pin === '') {
    throw new CloacinaSignError('MISSING_KEK', `no PIN for the PKCS#11 token: add pin-source=file:<path> to the URI or set ${PKCS11_PIN_ENV}`);
  }
  return { ...where, pin, uri: uri.trim() };
}

/** A token KEK, its id computed in the token (so a wrong PIN or a missing object fails here). */
export async function kekFromPkcs11(uri: string, options: { allowInsecureKeyFile?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<TokenKek> {
  const spec = tokenKekSpec(uri, options);
  return { kind: 'pkcs11', ...spec, id: await native.pkcs11KekId(spec) };
}

export interface KekSourceOptions {
  /** --kek-file */
  kekFile?: string;
  allowInsecureKeyFile?: boolean;
}

/** The configured KEK: CLOACINA_KEY_ENCRYPTION_KEY, CLOACINA_KEY_ENCRYPTION_KEY_FILE (or --kek-file) or
 * CLOACINA_KEK_PKCS11; more than one set is a usage error naming them, none is MISSING_KEK. */
export async function resolveKek(options: KekSourceOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Kek> {
  const set = (name: string) => (env[name] ?? '').trim() !== '';
  const file = options.kekFile ?? (set(KEK_FILE_ENV) ? env[KEK_FILE_ENV] : undefined);
  const sources = [
    ...(set(KEK_ENV) ? [KEK_ENV] : []),
    ...(options.kekFile !== undefined ? ['--kek-file'] : set(KEK_FILE_ENV) ? [KEK_FILE_ENV] : []),
    ...(set(KEK_PKCS11_ENV) ? [KEK_PKCS11_ENV] : []),
  ];
  if (sources.length > 1) throw new CloacinaSignError('USAGE', `more than one key-encryption key source is set (${sources.join(', ')}): set exactly one`);
  if (file !== undefined) return kekFromFile(file, options);
  if (set(KEK_PKCS11_ENV)) return kekFromPkcs11(env[KEK_PKCS11_ENV] as string, { ...options, env });
  if (!set(KEK_ENV)) {
    throw new CloacinaSignError(
      'MISSING_KEK',
      `no key-encryption key: set ${KEK_ENV} to 32 bytes (base64 or hex), ${KEK_FILE_ENV} to a protected file, or ${KEK_PKCS11_ENV} to a pkcs11: URI`,
    );
  }
  return kekFromEnv(KEK_ENV, env);
}

/** How long one token operation of the signing service may take before it fails closed. */
export const TOKEN_KEK_TIMEOUT_MS = 10_000;

/** `work` (a native operation under `kek`), failing with KEK_UNAVAILABLE when a token does not answer
 * within the bound: a request never hangs on a token. The worker thread finishes on its own. */
export async function withinTokenBound<T>(kek: Kek, work: Promise<T>, ms = TOKEN_KEK_TIMEOUT_MS): Promise<T> {
  if (!isTokenKek(kek)) return work;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new CloacinaSignError('KEK_UNAVAILABLE', `the PKCS#11 token did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the KEK can seal and open now: always for bytes; for a token, its id is computed in it again
 * (module, token, PIN and object all needed) and must still be the configured key's. */
export async function probeKek(kek: Kek, ms = TOKEN_KEK_TIMEOUT_MS): Promise<void> {
  if (!isTokenKek(kek)) return;
  const id = await withinTokenBound(kek, native.pkcs11KekId(kek), ms);
  if (id !== kek.id) throw new CloacinaSignError('KEK_UNAVAILABLE', `the token's key object is another key now (KEK id ${id}, configured ${kek.id})`);
}
