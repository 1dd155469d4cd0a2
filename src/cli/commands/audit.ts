// `cloacina-sign audit list|verify`
import { Command, InvalidArgumentError } from 'commander';
import type { ChainHead } from '../../audit/chain';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { EXIT_VERIFICATION_FAILED, green, printData, red, runAction, say, terminalSafe } from '../output';
import { formatTable } from '../table';

interface AuditVerifyOptions extends DatabaseOptions {
  expectHead?: ChainHead;
}

interface ListOptions extends DatabaseOptions {
  org?: string;
  limit: number;
}

/** `<seq>:<hash>`, as `audit verify` printed them (headSeq, headHash). */
function recordedHead(value: string): ChainHead {
  const match = /^([0-9]{1,15}):([0-9a-f]{64})$/.exec(value);
  if (!match) throw new InvalidArgumentError('must be <seq>:<hash>, the headSeq and headHash of an earlier `audit verify --json`');
  return { seq: Number(match[1]), hash: match[2] };
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
          // Rows hold what clients sent (names, reasons quoting them): the table escapes every cell, --json stays JSON.
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

  withDbOptions(
    audit
      .command('verify')
      .description('walk the audit hash chain: exit 0 when it is intact up to its head, 1 naming the first row changed, removed or inserted out of order')
      .option('--expect-head <seq:hash>', 'a head recorded earlier (kept outside the database) that the chain must still have', recordedHead),
  ).action((options: AuditVerifyOptions) =>
    runAction(options, () =>
      withDatabase(
        options,
        async (ctx) => {
          const { verifyAuditChain } = await import('../../audit/chain-verify');
          const report = await verifyAuditChain(ctx.db, { expectHead: options.expectHead });
          if (report.problem === null) {
            const backfilled = report.backfilledRows ? `, the first ${report.backfilledRows} chained when the chain started (${report.startedAt})` : '';
            say(`${green('intact')}: ${report.rows} row(s) verified up to the head (seq ${report.headSeq}, ${report.headHash})${backfilled}`);
            printData(options, report, `intact ${report.rows} ${report.headHash}`);
            return;
          }
          const { kind, seq, id, message } = report.problem;
          say(`${red('BROKEN')} (${kind}${seq === null ? '' : `, seq ${seq}`}${id === null ? '' : `, row ${id}`}): ${terminalSafe(message)}`);
          printData(options, report, `BROKEN ${kind} seq ${seq ?? '-'} row ${id ?? '-'}`);
          process.exitCode = EXIT_VERIFICATION_FAILED;
        },
        // Reads only: it works on a SQLite file this user cannot write.
        { readOnly: true },
      ),
    ),
  );
  return audit;
}
