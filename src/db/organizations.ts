// Finding an organization by id or by name: the one resolution behind every `--org` and `{ org }`.
import { CloacinaSignError } from '../errors';
import { organizationFromRow, type Organization } from '../keys/records';
import type { Database } from './database';
import { isUuid } from './ids';

/** The organization with this id, else the one with this name; NOT_FOUND otherwise. */
export async function findOrganization(db: Database, idOrName: string): Promise<Organization> {
  const row = await db.run((knex) => {
    const query = knex('organizations');
    return (isUuid(idOrName) ? query.where({ id: idOrName.toLowerCase() }).orWhere({ name: idOrName }) : query.where({ name: idOrName })).first();
  });
  if (!row) throw new CloacinaSignError('NOT_FOUND', `organization "${idOrName}" not found`);
  return organizationFromRow(row);
}
