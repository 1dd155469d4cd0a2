// `cloacina-sign audit list|verify|checkpoint|witness`
import { Command, InvalidArgumentError } from 'commander';
import type { ChainHead } from '../../audit/chain';
import type { ChainReport } from '../../audit/chain-verify';
import type { CheckedCheckpoint } from '../../audit/checkpoint-verify';
import { MAX_NOTE_BYTES } from '../../audit/checkpoint-note';
import { CloacinaSignError } from '../../errors';
import { checkOutputFile, readSmallFile, writeFileAtomic } from '../../files';
import { type DatabaseOptions, withDatabase, withDbOptions, withKekOptions } from '../context';
import { EXIT_VERIFICATION_FAILED, green, printData, red, runAction, say, terminalSafe } from '../output';
import { formatTable } from '../table';

interface AuditVerifyOptions extends DatabaseOptions {
  expectHead?: ChainHead;
  checkpoint?: string[];
  trustKey?: string[];
  witness?: string[];
  witnessThreshold?: number;
}

interface WitnessOptions extends DatabaseOptions {
  checkpoint: string;
  key: string;
  name: string;
  state: string;
  originKey?: string[];
  trustKey?: string[];
  output?: string;
  force?: boolean;
  allowInsecureKeyFile?: boolean;
}

interface CheckpointOptions extends DatabaseOptions {
  keyId: string;
  output?: string;
  force?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
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

function threshold(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > 16) throw new InvalidArgumentError('must be an integer from 1 to 16');
  return number;
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
      .option('--expect-head <seq:hash>', 'a head recorded earlier (kept outside the database) that the chain must still have', recordedHead)
      .option(
        '--checkpoint <note>',
        'a checkpoint file (from `audit checkpoint`, kept outside the database): the chain must still start with the rows it covered; repeatable',
        collect,
      )
      .option('--trust-key <pub>', 'an Ed25519 public key (PEM, DER or raw) a --checkpoint must be signed with; repeatable', collect)
      .option('--witness <pub>', 'an Ed25519 public key of a witness (`audit witness`) that must have cosigned each --checkpoint; repeatable', collect)
      .option('--witness-threshold <n>', 'how many of the --witness keys must have cosigned (default: all)', threshold),
  ).action((options: AuditVerifyOptions) =>
    runAction(options, async () => {
      if (options.trustKey && !options.checkpoint) throw new CloacinaSignError('USAGE', '--trust-key checks a --checkpoint: give one');
      if ((options.witness || options.witnessThreshold) && !options.checkpoint)
        throw new CloacinaSignError('USAGE', '--witness checks a --checkpoint: give one');
      if (options.witnessThreshold && !options.witness) throw new CloacinaSignError('USAGE', '--witness-threshold needs --witness keys');
      if (options.expectHead && options.checkpoint) throw new CloacinaSignError('USAGE', '--expect-head and --checkpoint each name a head: give one of them');
      const notes = await Promise.all(
        (options.checkpoint ?? []).map(async (path) => (await readSmallFile(path, MAX_NOTE_BYTES, 'checkpoint file')).toString('utf8')),
      );
      const { readPublicKeyFile } = await import('../../keys/key-files');
      const trustedKeys = await Promise.all((options.trustKey ?? []).map(readPublicKeyFile));
      if (options.witness) {
        const witnessKeys = await Promise.all(options.witness.map(readPublicKeyFile));
        const { verifyWitnessCosignatures } = await import('../../audit/witness-verify');
        for (const note of notes) verifyWitnessCosignatures(note, witnessKeys, options.witnessThreshold ?? witnessKeys.length);
      }
      await withDatabase(
        options,
        async (ctx) => {
          const { verifyAuditChain } = await import('../../audit/chain-verify');
          const { verifyAgainstCheckpoints } = await import('../../audit/checkpoint-verify');
          const report: ChainReport & { checkpoints?: CheckedCheckpoint[] } =
            notes.length > 0 ? await verifyAgainstCheckpoints(ctx.db, notes, trustedKeys) : await verifyAuditChain(ctx.db, { expectHead: options.expectHead });
          if (report.problem === null) {
            const backfilled = report.backfilledRows ? `, the first ${report.backfilledRows} chained when the chain started (${report.startedAt})` : '';
            const sizes = (report.checkpoints ?? []).map((checkpoint) => checkpoint.size);
            const covered = sizes.length > 0 ? `; it still starts with the rows of the checkpoint(s) at ${sizes.join(', ')} row(s)` : '';
            say(`${green('intact')}: ${report.rows} row(s) verified up to the head (seq ${report.headSeq}, ${report.headHash})${backfilled}${covered}`);
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
      );
    }),
  );

  withDbOptions(
    withKekOptions(audit.command('checkpoint'))
      .description('sign the head of the intact audit chain as a checkpoint (a C2SP signed note), kept in the database and printed or written to --output')
      .requiredOption('--key-id <id>', 'the signing key: one generated with --purpose audit-checkpoint')
      .option('--output <file>', 'write the checkpoint note to this file; an existing file is kept unless --force')
      .option('--force', 'with --output: replace an existing file'),
  ).action((options: CheckpointOptions) =>
    runAction(options, async () => {
      const output = { overwrite: Boolean(options.force), protectPrivateKeys: true };
      if (options.output) await checkOutputFile(options.output, output);
      await withDatabase(
        options,
        async (ctx) => {
          const { issueCheckpoint } = await import('../../audit/checkpoint-issue');
          const checkpoint = await issueCheckpoint(ctx.db, ctx.kek!, options.keyId, { auditLines: ctx.lines ? [ctx.lines] : [] });
          if (options.output) await writeFileAtomic(options.output, checkpoint.note, { ...output, mode: 0o644 });
          say(
            `Checkpoint of ${checkpoint.origin}: ${checkpoint.size} row(s), head ${checkpoint.headHash}${options.output ? `, written to ${options.output}` : ''}`,
          );
          printData(options, checkpoint, options.output ? checkpoint.id : checkpoint.note.trimEnd());
        },
        { needsKek: true },
      );
    }),
  );

  withDbOptions(
    audit
      .command('witness')
      .description(
        'cosign a checkpoint (C2SP tlog-cosignature) only if it is consistent with the last one cosigned (kept in --state): exit 1 naming both heads on a fork or a rollback',
      )
      .requiredOption('--checkpoint <note>', 'the checkpoint file to cosign')
      .requiredOption('--key <witness-key.pem>', "the witness's Ed25519 private key file")
      .option('--name <name>', "the witness's key name in the cosignature line", 'cloacina-sign/witness')
      .requiredOption('--state <file>', 'the last checkpoint cosigned (JSON, written with mode 0600; created on first use)')
      .option('--origin-key <pub>', 'an Ed25519 public key the checkpoint must be signed with; repeatable', collect)
      .option('--trust-key <pub>', 'the same as --origin-key, as `audit verify` names it; repeatable', collect)
      .option('--output <file>', 'write the cosigned note to this file; an existing file is kept unless --force')
      .option('--force', 'with --output: replace an existing file')
      .option('--allow-insecure-key-file', 'read the witness key even if group or others can access it'),
  ).action((options: WitnessOptions) =>
    runAction(options, async () => {
      const output = { overwrite: Boolean(options.force), protectPrivateKeys: true };
      if (options.output) await checkOutputFile(options.output, output);
      const note = (await readSmallFile(options.checkpoint, MAX_NOTE_BYTES, 'checkpoint file')).toString('utf8');
      const { readPrivateKeyFile, readPublicKeyFile } = await import('../../keys/key-files');
      const originKeys = await Promise.all([...(options.originKey ?? []), ...(options.trustKey ?? [])].map(readPublicKeyFile));
      const witnessKey = await readPrivateKeyFile(options.key, { allowInsecureKeyFile: options.allowInsecureKeyFile });
      await withDatabase(
        options,
        async (ctx) => {
          const { witnessCheckpoint } = await import('../../audit/witness-cosign');
          const outcome = await witnessCheckpoint(ctx.db, { note, witnessKey, witnessName: options.name, statePath: options.state, originKeys });
          if (!outcome.cosigned) {
            say(`${red('REFUSED')} (${outcome.kind}): ${terminalSafe(outcome.message)}`);
            printData(options, outcome, `REFUSED ${outcome.kind}`);
            process.exitCode = EXIT_VERIFICATION_FAILED;
            return;
          }
          if (options.output) await writeFileAtomic(options.output, outcome.note, { ...output, mode: 0o644 });
          say(`Cosigned ${outcome.origin}: ${outcome.size} row(s), head ${outcome.head}${options.output ? `, written to ${options.output}` : ''}`);
          printData(options, outcome, options.output ? `cosigned ${outcome.size} ${outcome.head}` : outcome.note.trimEnd());
        },
        { readOnly: true },
      );
    }),
  );
  return audit;
}
