// Where the database lives: CLOACINA_DATABASE_URL / --database, parsed into an engine and a target.
import { resolve } from 'node:path';
import { CloacinaSignError } from '../errors';

export type Engine = 'sqlite' | 'postgres';

export interface DatabaseTarget {
  engine: Engine;
  /** SQLite: the absolute file path (or ':memory:'). PostgreSQL: the connection string. */
  connection: string;
  /** The URL with any password masked, safe for messages and logs. */
  display: string;
}

export const DEFAULT_SQLITE_PATH = './cloacina.db';

const MASK = '***';

/** Query parameters whose value is a secret (password=, sslpassword=, ...), wherever they appear. */
const SECRET_PARAMETER = /pass|pwd|secret|token/i;
const SECRET_ASSIGNMENT = /((?:^|[?&;\s])[^=&?#;\s]*(?:pass|pwd|secret|token)[^=&?#;\s]*=)[^&#;\s]*/gi;
/** A scheme, with or without `//` (`postgres://...`, `postgres:user:pw@host`). */
const SCHEME = /^([a-z][a-z0-9+.-]*:(?:\/\/)?)/i;

/**
 * Masks every password of a URL so it can appear in errors: the password of the user part, and the
 * value of any query parameter named like a secret (`password=`, `sslpassword=`, ...). Whatever the
 * form: `postgres://` or `postgresql://` in any case, passwords holding `@`, `:`, `/`, `#`, `?` or
 * percent-escapes, and text that does not parse as a URL at all.
 *
 * The WHATWG parse is used only when it is unambiguous (no `@` after the user part, which a password
 * holding `/`, `?` or `#` would leave behind); otherwise, or when it fails, a conservative scan masks
 * everything from the first `:` after the scheme to the last `@`. Masking too much is the safe failure.
 */
export function redactUrl(url: string): string {
  return redactStrictly(url) ?? redactLoosely(url);
}

function redactStrictly(text: string): string | undefined {
  if (!SCHEME.test(text) || /\s/.test(text)) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  // An `@` past the user part means the parser's split may differ from the driver's: be conservative.
  if (`${url.host}${url.pathname}${url.search}${url.hash}`.includes('@')) return undefined;
  if (url.password !== '') url.password = MASK;
  if ([...url.searchParams.keys()].some((name) => SECRET_PARAMETER.test(name))) {
    const params = new URLSearchParams();
    for (const [name, value] of url.searchParams) params.append(name, SECRET_PARAMETER.test(name) ? MASK : value);
    url.search = params.toString();
  }
  return url.toString();
}

function redactLoosely(text: string): string {
  let out = text;
  const scheme = SCHEME.exec(text);
  if (scheme) {
    const rest = text.slice(scheme[1].length);
    const at = rest.lastIndexOf('@');
    const colon = rest.indexOf(':');
    if (at >= 0 && colon >= 0 && colon < at) out = `${scheme[1]}${rest.slice(0, colon)}:${MASK}@${rest.slice(at + 1)}`;
  }
  return out.replace(SECRET_ASSIGNMENT, `$1${MASK}`);
}

/**
 * The secrets a database URL carries (its password and secret query values, raw and decoded), so a
 * message can be cleaned of them wherever they appear.
 */
export function urlSecrets(url: string): string[] {
  const secrets = new Set<string>();
  const add = (value: string | null | undefined) => {
    if (!value) return;
    secrets.add(value);
    try {
      secrets.add(decodeURIComponent(value));
    } catch {
      // a malformed escape: the raw form is masked
    }
  };
  try {
    const parsed = new URL(url);
    add(parsed.password);
    for (const [name, value] of parsed.searchParams) if (SECRET_PARAMETER.test(name)) add(value);
  } catch {
    // not a URL: the conservative scan below covers it
  }
  const scheme = SCHEME.exec(url);
  if (scheme) {
    const rest = url.slice(scheme[1].length);
    const at = rest.lastIndexOf('@');
    const colon = rest.indexOf(':');
    if (at >= 0 && colon >= 0 && colon < at) {
      const candidate = rest.slice(colon + 1, at);
      add(candidate);
      // A password holding `/`, `?` or `#` may have been split by the driver's parser: mask each piece too.
      for (const piece of candidate.split(/[/?#]/)) add(piece);
    }
  }
  for (const match of url.matchAll(SECRET_ASSIGNMENT)) add(match[0].slice(match[1].length));
  // Very short values would mask ordinary letters of every message; they carry no useful secret either.
  return [...secrets].filter((secret) => secret.length >= 3).sort((a, b) => b.length - a.length);
}

/** `text` with every URL in it redacted, and every one of `secrets` masked wherever it appears. */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, (url) => redactUrl(url));
  for (const secret of secrets) out = out.split(secret).join(MASK);
  return out;
}

/** Unset -> SQLite `./cloacina.db`; `sqlite:<path>`, `sqlite://<path>`; `postgres://` or `postgresql://` (any case). */
export function parseDatabaseUrl(url: string | undefined = process.env.CLOACINA_DATABASE_URL): DatabaseTarget {
  const text = url === undefined || url.trim() === '' ? `sqlite:${DEFAULT_SQLITE_PATH}` : url.trim();
  if (/^postgres(ql)?:\/\//i.test(text)) return { engine: 'postgres', connection: text, display: redactUrl(text) };
  const sqlite = /^sqlite:(?:\/\/)?(.*)$/i.exec(text);
  if (sqlite) {
    const path = sqlite[1];
    if (path === '') throw new CloacinaSignError('INVALID_INPUT', 'the sqlite: database URL needs a file path');
    const connection = path === ':memory:' ? path : resolve(path);
    return { engine: 'sqlite', connection, display: `sqlite:${connection}` };
  }
  throw new CloacinaSignError('INVALID_INPUT', `unsupported database URL "${redactUrl(text)}": use sqlite:<path> or postgres://user@host:port/database`);
}
