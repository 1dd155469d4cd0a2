// The one rule for every name a user or a client supplies (organizations, signing and trusted keys, API
// tokens, uploaded packages, signed statements), and the one escaping of user-supplied text printed to a
// terminal. A name is stored trimmed and in Unicode NFC, 1 to 255 characters, with no control character
// and no bidirectional formatting character: a name that could forge a log line, rewrite a terminal
// (ESC sequences) or display unlike what it is (a right-to-left override) is refused where it comes in;
// text that reaches a terminal anyway (rows written before this rule, messages quoting a client) is
// printed with those characters as visible escapes.
import { CloacinaSignError } from './errors';

export const MAX_NAME_LENGTH = 255;

/** C0, DEL, C1, and the line/paragraph separators that break a line like a newline. */
export const isControl = (cp: number): boolean => cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029;
/** Bidirectional formatting: embeddings and overrides, isolates, LRM/RLM, the Arabic letter mark. */
export const isBidi = (cp: number): boolean =>
  (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp === 0x200e || cp === 0x200f || cp === 0x061c;

/** A control or bidirectional character: what a name may not hold and a terminal is not shown raw. */
export const isUnsafe = (cp: number): boolean => isControl(cp) || isBidi(cp);

/** The first character of `text` for which `test` holds. */
function firstWhere(text: string, test: (cp: number) => boolean): string | undefined {
  for (const char of text) if (test(char.codePointAt(0)!)) return char;
  return undefined;
}

function codePoint(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The form a name is stored and looked up in: trimmed, Unicode NFC. */
export function normalizeName(name: string): string {
  return name.normalize('NFC').trim();
}

/**
 * A valid name in its stored form (trimmed, NFC), else INVALID_INPUT saying why. `what` starts the message:
 * "a key name", "an organization name".
 */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string') throw new CloacinaSignError('INVALID_INPUT', `${what} must be a string`);
  const normalized = normalizeName(name);
  if (normalized === '' || normalized.length > MAX_NAME_LENGTH)
    throw new CloacinaSignError('INVALID_INPUT', `${what} must be 1 to ${MAX_NAME_LENGTH} characters`);
  const control = firstWhere(normalized, isControl);
  if (control) throw new CloacinaSignError('INVALID_INPUT', `${what} may not contain control characters (found ${codePoint(control)})`);
  const bidi = firstWhere(normalized, isBidi);
  if (bidi) {
    throw new CloacinaSignError(
      'INVALID_INPUT',
      `${what} may not contain bidirectional control characters (found ${codePoint(bidi)}): they make a name display unlike what it is`,
    );
  }
  return normalized;
}

/** A name quoted for a message: a JSON string with control and bidirectional characters escaped, so a message shows what the text is. */
export function quoted(text: string): string {
  return escapeUnsafe(JSON.stringify(text), (cp) => `\\u${cp.toString(16).padStart(4, '0')}`);
}

/**
 * Text as a terminal should show it: control and bidirectional characters as visible escapes (`\n`,
 * `\t`, `\x1b`, `\u202e`), so text from a database row or a client can neither add a line nor move
 * the cursor, clear the screen or reverse what follows. JSON output does not go through this: it stays JSON.
 */
export function terminalSafe(text: string): string {
  return escapeUnsafe(text, (cp) => {
    if (cp === 0x0a) return '\\n';
    if (cp === 0x09) return '\\t';
    if (cp === 0x0d) return '\\r';
    return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
}

/** `text` with each unsafe character replaced by `escape` of it (every one is in the BMP: one UTF-16 unit each). */
function escapeUnsafe(text: string, replace: (cp: number) => string): string {
  let out = '';
  let copied = 0;
  for (let i = 0; i < text.length; i += 1) {
    const cp = text.charCodeAt(i);
    if (!isUnsafe(cp)) continue;
    out += text.slice(copied, i) + replace(cp);
    copied = i + 1;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
