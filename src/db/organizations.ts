// Organization names, and finding an organization by id or by name: the one resolution behind every
// `--org` and `{ org }`.
//
// Names are stored trimmed and NFC-normalized; control characters, bidirectional controls and anything
// that parses as a UUID are refused. Resolution is never ambiguous: an argument that parses as a UUID (in
// any usual spelling) is an id and is matched against ids only; anything else is a name (trimmed, NFC)
// matched against names only.
// A row named like a UUID, or not in NFC, stored before these rules, is still listed and still found by
// its id; by name it is not found (the NOT_FOUND message points at its id when the argument was its name).
import { CloacinaSignError } from '../errors';
import { organizationFromRow, type Organization } from '../keys/records';
import type { Database } from './database';

export const MAX_NAME_LENGTH = 255;

/** C0, DEL, C1, and the line/paragraph separators that break a line like a newline. */
const isControl = (cp: number) => cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029;
/** Bidirectional formatting: embeddings and overrides, isolates, LRM/RLM, the Arabic letter mark. */
const isBidi = (cp: number) => (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp === 0x200e || cp === 0x200f || cp === 0x061c;
/** Every usual spelling of a UUID: hyphenated or 32 hex digits, optionally braced or as urn:uuid:. */
const UUID_LIKE = /^(?:urn:uuid:)?\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;

/** The first character of `text` for which `test` holds. */
function firstWhere(text: string, test: (cp: number) => boolean): string | undefined {
  for (const char of text) if (test(char.codePointAt(0)!)) return char;
  return undefined;
}

/** The canonical id (lower-case, hyphenated) of an argument that parses as a UUID, else undefined. */
export function uuidOf(text: string): string | undefined {
  if (!UUID_LIKE.test(text)) return undefined;
  const hex = text
    .replace(/^urn:uuid:/i, '')
    .replace(/[{}-]/g, '')
    .toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A name quoted for a message: control and bidirectional characters escaped, so a message shows what the text is. */
function quoted(text: string): string {
  let out = '';
  for (const char of JSON.stringify(text)) {
    const cp = char.codePointAt(0)!;
    out += isControl(cp) || isBidi(cp) ? `\\u${cp.toString(16).padStart(4, '0')}` : char;
  }
  return out;
}

function codePoint(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The form a name is stored and looked up in: trimmed, Unicode NFC. */
export function normalizeName(name: string): string {
  return name.normalize('NFC').trim();
}

/** A valid organization name in its stored form, else INVALID_INPUT saying why. */
export function checkOrganizationName(name: string): string {
  if (typeof name !== 'string') throw new CloacinaSignError('INVALID_INPUT', 'an organization name must be a string');
  const normalized = normalizeName(name);
  if (normalized === '' || normalized.length > MAX_NAME_LENGTH) {
    throw new CloacinaSignError('INVALID_INPUT', `an organization name must be 1 to ${MAX_NAME_LENGTH} characters`);
  }
  const control = firstWhere(normalized, isControl);
  if (control) throw new CloacinaSignError('INVALID_INPUT', `an organization name may not contain control characters (found ${codePoint(control)})`);
  const bidi = firstWhere(normalized, isBidi);
  if (bidi) {
    throw new CloacinaSignError(
      'INVALID_INPUT',
      `an organization name may not contain bidirectional control characters (found ${codePoint(bidi)}): they make a name display unlike what it is`,
    );
  }
  if (uuidOf(normalized)) {
    throw new CloacinaSignError(
      'INVALID_INPUT',
      `an organization name may not parse as a UUID (${quoted(normalized)}): --org and { org } take a UUID as an id`,
    );
  }
  return normalized;
}

/** The organization with this id (a UUID-looking argument), else the one with this name; NOT_FOUND otherwise. */
export async function findOrganization(db: Database, idOrName: string): Promise<Organization> {
  const argument = normalizeName(String(idOrName));
  const id = uuidOf(argument);
  if (id) {
    const row = await db.run((knex) => knex('organizations').where({ id }).first());
    if (row) return organizationFromRow(row);
    // Only to explain: a name like this predates the naming rules and is reached by its id.
    const legacy = await db.run((knex) => knex('organizations').where({ name: argument }).first('id'));
    const hint = legacy ? ` (an organization is named ${quoted(argument)}, a name from before names could look like ids: use its id ${legacy.id})` : '';
    throw new CloacinaSignError('NOT_FOUND', `organization with id ${id} not found${hint}`);
  }
  const row = await db.run((knex) => knex('organizations').where({ name: argument }).first());
  if (!row) throw new CloacinaSignError('NOT_FOUND', `organization ${quoted(argument)} not found`);
  return organizationFromRow(row);
}
