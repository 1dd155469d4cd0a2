// Organization names, and finding an organization by id or by name: the one resolution behind every
// `--org` and `{ org }`.
//
// Names are stored trimmed and NFC-normalized; control characters, bidirectional controls and anything
// that parses as a UUID are refused. Resolution is never ambiguous: an argument that parses as a UUID (in
// any usual spelling) is an id and is matched against ids only; anything else is a name (trimmed, NFC)
// matched against names only.
// A row named like a UUID, or not in NFC, stored before these rules, is still listed and still found by
// its id; by name it is not found (the NOT_FOUND message points at its id when the argument was its name).
import type { Knex } from 'knex';
import { CloacinaSignError } from '../errors';
import { checkName, MAX_NAME_LENGTH, normalizeName, quoted } from '../names';
import type { Database } from './database';
import { newId, nowIso } from './ids';
import { type Row, text } from './rows';

// The name rule is shared by every name (names.ts); these stay importable from here.
export { MAX_NAME_LENGTH, normalizeName };

export interface Organization {
  id: string;
  name: string;
  createdAt: string;
}

export function organizationFromRow(row: Row): Organization {
  return { id: text(row.id), name: text(row.name), createdAt: text(row.created_at) };
}

/** Every usual spelling of a UUID: hyphenated or 32 hex digits, optionally braced or as urn:uuid:. */
const UUID_LIKE = /^(?:urn:uuid:)?\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;

/** The canonical id (lower-case, hyphenated) of an argument that parses as a UUID, else undefined. */
export function uuidOf(text: string): string | undefined {
  if (!UUID_LIKE.test(text)) return undefined;
  const hex = text
    .replace(/^urn:uuid:/i, '')
    .replace(/[{}-]/g, '')
    .toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A valid organization name in its stored form, else INVALID_INPUT saying why. */
export function checkOrganizationName(name: string): string {
  const normalized = checkName(name, 'an organization name');
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

/** Stores a new organization named `name` (as checkOrganizationName returns it); a duplicate name is a unique violation. */
export async function insertOrganization(trx: Knex.Transaction, name: string): Promise<Organization> {
  const row = { id: newId(), name, created_at: nowIso() };
  await trx('organizations').insert(row);
  return organizationFromRow(row);
}

/** Every organization, by name then id. */
export async function listOrganizations(db: Database): Promise<Organization[]> {
  const rows = await db.run((knex) => knex('organizations').select('*').orderBy(['name', 'id']));
  return rows.map(organizationFromRow);
}

/** NOT_FOUND unless the organization exists, read inside the transaction that depends on it. */
export async function requireOrganization(trx: Knex.Transaction, orgId: string): Promise<void> {
  const org = await trx('organizations').where({ id: orgId }).first('id');
  if (!org) throw new CloacinaSignError('NOT_FOUND', `organization ${orgId} not found`);
}
