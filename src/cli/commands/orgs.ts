// `cloacina-sign orgs ...`: organizations and trust grants.
import { Command } from 'commander';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { printData, runAction, say, terminalSafe } from '../output';
import { formatTable } from '../table';

/** Listing writes nothing: it works on a SQLite file this user cannot write. */
const READ_ONLY = { readOnly: true };

interface GrantOptions extends DatabaseOptions {
  from: string;
  to: string;
}

export function orgsCommand(): Command {
  const orgs = new Command('orgs').description('organizations and the trust grants between them');
  withDbOptions(
    orgs.command('create <name>').description('create an organization (names are unique, NFC-normalized; no control or bidi characters; never a UUID)'),
  ).action((name: string, options: DatabaseOptions) =>
    runAction(options, () =>
      withDatabase(options, async ({ keys }) => {
        const org = await keys.createOrganization(name);
        say(`Created organization "${org.name}"`);
        printData(options, org, org.id);
      }),
    ),
  );
  withDbOptions(orgs.command('list').description('list organizations')).action((options: DatabaseOptions) =>
    runAction(options, () =>
      withDatabase(
        options,
        async ({ keys }) => {
          const list = await keys.listOrganizations();
          printData(
            options,
            list,
            formatTable(
              ['ID', 'NAME', 'CREATED'],
              list.map((org) => [org.id, org.name, org.createdAt]),
            ),
          );
        },
        READ_ONLY,
      ),
    ),
  );
  withDbOptions(
    orgs.command('grants').description('list trust grants, active and revoked').option('--org <org>', 'only grants from or to this organization (id or name)'),
  ).action((options: DatabaseOptions & { org?: string }) =>
    runAction(options, () =>
      withDatabase(
        options,
        async ({ keys, org }) => {
          const orgId = options.org ? (await org(options.org)).id : undefined;
          const names = new Map((await keys.listOrganizations()).map((o) => [o.id, o.name]));
          const grants = (await keys.listGrants(orgId)).map((g) => ({
            ...g,
            parentName: names.get(g.parentOrgId) ?? g.parentOrgId,
            childName: names.get(g.childOrgId) ?? g.childOrgId,
            status: g.revokedAt ? 'revoked' : 'active',
          }));
          const rows = grants.map((g) => [g.id, g.parentName, g.childName, g.createdAt, g.status]);
          printData(options, grants, formatTable(['ID', 'FROM (TRUSTS)', 'TO (TRUSTED)', 'GRANTED', 'STATUS'], rows));
        },
        READ_ONLY,
      ),
    ),
  );
  withDbOptions(
    orgs
      .command('grant-trust')
      .description('from now on <parent> trusts every key <child> trusts (transitively)')
      .requiredOption('--from <parent>', 'the trusting organization (id or name)')
      .requiredOption('--to <child>', 'the organization whose keys become trusted (id or name)'),
  ).action((options: GrantOptions) =>
    runAction(options, () =>
      withDatabase(options, async ({ keys, org }) => {
        const [parent, child] = [await org(options.from), await org(options.to)];
        const grant = await keys.grantTrust(parent.id, child.id);
        say(`"${terminalSafe(parent.name)}" now trusts the keys of "${terminalSafe(child.name)}"`);
        printData(options, grant, grant.id);
      }),
    ),
  );
  withDbOptions(
    orgs
      .command('revoke-trust')
      .description('revoke a trust grant; takes effect for running verifiers within 1 second')
      .requiredOption('--from <parent>', 'the trusting organization (id or name)')
      .requiredOption('--to <child>', 'the trusted organization (id or name)'),
  ).action((options: GrantOptions) =>
    runAction(options, () =>
      withDatabase(options, async ({ keys, org }) => {
        const [parent, child] = [await org(options.from), await org(options.to)];
        const grant = await keys.revokeTrust(parent.id, child.id);
        say(`"${terminalSafe(parent.name)}" no longer trusts the keys of "${terminalSafe(child.name)}"`);
        printData(options, grant, grant.id);
      }),
    ),
  );
  return orgs;
}
