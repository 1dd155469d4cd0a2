// `cloacina-sign audit list`
import { Command, InvalidArgumentError } from 'commander';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { printData, runAction } from '../output';
import { formatTable } from '../table';

interface ListOptions extends DatabaseOptions {
  org?: string;
  limit: number;
}

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > 100_000) throw new InvalidArgumentError('must be an integer from 1 to 100000');
  return number;
}

export function auditCommand(): Command {
  const audit = new Command('audit').description('the audit trail of key operations, signing, verification and loading');
  withDbOptions(
    audit
      .command('list')
      .description('list audit events, newest first')
      .option('--org <org>', 'only events of this organization (id or name)')
      .option('--limit <n>', 'at most n events', positiveInteger, 50),
  ).action((options: ListOptions) =>
    runAction(options, () =>
      withDatabase(
        options,
        async (ctx) => {
          const orgId = options.org ? (await ctx.org(options.org)).id : undefined;
          const { listAuditEvents } = await import('../../audit/database-sink');
          const events = await listAuditEvents(ctx.db, { orgId, limit: options.limit });
          const rows = events.map((e) => [
            e.timestamp,
            e.event_type,
            e.org_id ?? '',
            e.package_path ?? '',
            e.signer_fingerprint?.slice(0, 16) ?? '',
            e.reason ?? '',
          ]);
          printData(options, events, formatTable(['TIMESTAMP', 'EVENT', 'ORG', 'PACKAGE', 'SIGNER', 'REASON'], rows));
        },
        // Reading the trail writes nothing: it works on a SQLite file this user cannot write.
        { readOnly: true },
      ),
    ),
  );
  return audit;
}
