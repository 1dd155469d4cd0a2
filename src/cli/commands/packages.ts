// `cloacina-sign packages ...`: rollback marks, the highest version of each package an organization loaded.
import { Command } from 'commander';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { printData, runAction, say, terminalSafe } from '../output';
import { formatTable } from '../table';
import { addRevocationCommands } from './packages-revocations';

interface ResetOptions extends DatabaseOptions {
  org: string;
  name: string;
  to?: string;
}

export function packagesCommand(): Command {
  const packages = new Command('packages').description('rollback marks and revoked packages of an organization');
  withDbOptions(
    packages.command('versions').description('list the rollback marks of an organization').requiredOption('--org <org>', 'organization (id or name)'),
  ).action((options: DatabaseOptions & { org: string }) =>
    runAction(options, () =>
      withDatabase(
        options,
        async ({ db, org }) => {
          const owner = await org(options.org);
          const { listVersionMarks } = await import('../../db/version-marks');
          const marks = await listVersionMarks(db, owner.id);
          printData(
            options,
            marks,
            formatTable(
              ['PACKAGE', 'HIGHEST VERSION LOADED', 'UPDATED'],
              marks.map((m) => [m.name, m.highestVersion, m.updatedAt]),
            ),
          );
        },
        { readOnly: true },
      ),
    ),
  );
  withDbOptions(
    packages
      .command('reset-version')
      .description('lower (or with no --to, remove) the rollback mark of a package, so an older version may load again; audited')
      .requiredOption('--org <org>', 'organization (id or name)')
      .requiredOption('--name <name>', 'the package name, as signed in its statements')
      .option('--to <version>', 'the new mark (a SemVer version); without it the mark is removed'),
  ).action((options: ResetOptions) =>
    runAction(options, () =>
      withDatabase(options, async ({ keys, org }) => {
        const owner = await org(options.org);
        const { resetVersion } = await import('../../trust/version-reset');
        const reset = await resetVersion(keys, owner.id, options.name, options.to ?? null);
        const what = `the rollback mark of ${terminalSafe(JSON.stringify(options.name))} in "${terminalSafe(owner.name)}"`;
        say(
          reset.now === null
            ? `Removed ${what} (it was ${reset.previous}): any version may load again; audited as package.version.reset`
            : `Lowered ${what} from ${reset.previous} to ${reset.now}: versions from ${reset.now} up may load again; audited as package.version.reset`,
        );
        printData(
          options,
          { orgId: owner.id, name: options.name, previous: reset.previous, now: reset.now },
          `${options.name} ${reset.previous} -> ${reset.now ?? 'none'}`,
        );
      }),
    ),
  );
  addRevocationCommands(packages);
  return packages;
}
