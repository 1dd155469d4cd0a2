// Organization names: NFC-normalized, free of control and bidirectional characters, never a UUID; and
// `--org` / `{ org }` resolution that is never ambiguous (a UUID is an id, anything else a name).
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { newId, nowIso } from '../../src/db/ids';
import { rejectsWith, runCli } from '../helpers';
import { describeEngines } from './engines';

const CONTROL = ['\u0000', '\u0007', '\t', '\n', '\r', '\u001b', '\u007f', '\u0080', '\u0085', '\u009b', '\u2028'];
const BIDI = ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c'];
const hex = (char: string) => `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

describeEngines('organization names', (t) => {
  /** A fresh name in decomposed form (e + U+0301), and the composed form it must be stored as. */
  const accented = () => {
    const base = t.unique('cafe');
    return { nfd: `${base}-Cafe\u0301`, nfc: `${base}-Caf\u00e9` };
  };
  const cli = (args: string[]) => runCli([...args, '--database', t.url, '--json'], { CLOACINA_DATABASE_URL: '', CLOACINA_AUDIT_LOG: 'off' });

  it('when a name is given in a decomposed Unicode form, it is stored in NFC', async () => {
    const { nfd, nfc } = accented();
    const org = await t.keys.createOrganization(nfd);
    expect(org.name).to.equal(nfc);
    expect((await t.keys.listOrganizations()).find((o) => o.id === org.id)?.name).to.equal(nfc);
  });

  it('when a name is looked up in another normalization form, it finds the organization', async () => {
    const { nfd, nfc } = accented();
    const org = await t.keys.createOrganization(nfc);
    expect((await t.keys.getOrganization(nfd)).id).to.equal(org.id);
  });

  it('when a name differs from an existing one only in normalization, it refuses with ALREADY_EXISTS', async () => {
    const { nfd, nfc } = accented();
    await t.keys.createOrganization(nfc);
    expect((await rejectsWith(t.keys.createOrganization(nfd))).code).to.equal('ALREADY_EXISTS');
  });

  for (const char of CONTROL) {
    it(`when a name contains the control character ${hex(char)}, it refuses with INVALID_INPUT naming it`, async () => {
      const error = await rejectsWith(t.keys.createOrganization(`bad${char}name`), 'INVALID_INPUT');
      expect(error.message).to.include('control characters').and.include(hex(char));
    });
  }

  for (const char of BIDI) {
    it(`when a name contains the bidirectional control ${hex(char)}, it refuses with INVALID_INPUT naming it`, async () => {
      const error = await rejectsWith(t.keys.createOrganization(`bad${char}name`), 'INVALID_INPUT');
      expect(error.message).to.include('bidirectional').and.include(hex(char));
    });
  }

  const uuid = '6f9619ff-8b86-d011-b42d-00c04fc964ff';
  for (const spelling of [uuid, uuid.toUpperCase(), ` ${uuid} `, `{${uuid}}`, `urn:uuid:${uuid}`, uuid.replace(/-/g, '')]) {
    it(`when a name parses as a UUID (${JSON.stringify(spelling)}), it refuses with INVALID_INPUT saying so`, async () => {
      const error = await rejectsWith(t.keys.createOrganization(spelling), 'INVALID_INPUT');
      expect(error.message).to.include('UUID');
    });
  }

  it('when an id is given, it resolves to that organization even if an older row is named with that id', async () => {
    const target = await t.keys.createOrganization(t.unique('target'));
    // A row from before the naming rules, named with another organization's id.
    await t.db.knex('organizations').insert({ id: newId(), name: target.id, created_at: nowIso() });
    expect((await t.keys.getOrganization(target.id)).name).to.equal(target.name);
    expect((await t.keys.getOrganization(target.id.toUpperCase())).name).to.equal(target.name);
  });

  it('when an older row is named like a UUID, it is found by its id, and by that name only a NOT_FOUND pointing at its id', async () => {
    const name = randomUuidLike();
    const id = newId();
    await t.db.knex('organizations').insert({ id, name, created_at: nowIso() });
    expect((await t.keys.getOrganization(id)).name).to.equal(name);
    const error = await rejectsWith(t.keys.getOrganization(name), 'NOT_FOUND');
    expect(error.message).to.include(`use its id ${id}`);
  });

  it('when an id is given in braces or as a urn, it resolves as that id', async () => {
    const org = await t.keys.createOrganization(t.unique('braced'));
    expect((await t.keys.getOrganization(`{${org.id}}`)).id).to.equal(org.id);
    expect((await t.keys.getOrganization(`urn:uuid:${org.id}`)).id).to.equal(org.id);
  });

  it('when a name is not found, the message shows control and bidirectional characters escaped', async () => {
    const error = await rejectsWith(t.keys.getOrganization('ghost\u001b[31m\u202e'), 'NOT_FOUND');
    expect(error.message).to.include('ghost\\u001b[31m\\u202e').and.not.include('\u001b').and.not.include('\u202e');
  });

  it('when the CLI creates an organization whose name holds a control character, it exits 2 with INVALID_INPUT', () => {
    const result = cli(['orgs', 'create', `evil\u001b]0;title\u0007`]);
    expect(result.status).to.equal(2);
    expect(result.json().error.code).to.equal('INVALID_INPUT');
    expect(result.json().error.message).to.include('control characters');
  });

  it('when the CLI creates an organization named like a UUID, it exits 2 with INVALID_INPUT', () => {
    const result = cli(['orgs', 'create', randomUuidLike()]);
    expect(result.status).to.equal(2);
    expect(result.json().error.code).to.equal('INVALID_INPUT');
  });

  it('when the CLI creates an organization with a bidi override, it exits 2 with INVALID_INPUT', () => {
    const result = cli(['orgs', 'create', `invoice\u202etxt.exe`]);
    expect(result.status).to.equal(2);
    expect(result.json().error.message).to.include('bidirectional');
  });

  it('when the CLI is given --org in another normalization form, it finds the organization', () => {
    const { nfd, nfc } = accented();
    const created = cli(['orgs', 'create', nfc]);
    expect(created.status, created.stderr).to.equal(0);
    const listed = cli(['keys', 'list', '--org', nfd]);
    expect(listed.status, listed.stderr).to.equal(0);
    expect(listed.json()).to.deep.equal([]);
  });

  it('when the CLI is given an id that an older row has as its name, it resolves the id', async () => {
    const target = cli(['orgs', 'create', t.unique('cli-target')]).json();
    const other = cli(['orgs', 'create', t.unique('cli-other')]).json();
    await t.db.knex('organizations').insert({ id: newId(), name: target.id, created_at: nowIso() });
    const grant = cli(['orgs', 'grant-trust', '--from', target.id, '--to', other.name]);
    expect(grant.status, grant.stderr).to.equal(0);
    expect(grant.json().parentOrgId).to.equal(target.id);
  });
});

function randomUuidLike(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
