// `cloacina-sign packages revoke|unrevoke|revocations|revocation-list`: one package (an exact digest)
// revoked for an organization, whoever signed it, instead of the key.
import { type Command, InvalidArgumentError } from 'commander';
import { CloacinaSignError } from '../../errors';
import type { KnownDigests } from '../../trust/revoked-packages';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { printData, runAction, say } from '../output';
import { formatTable } from '../table';

interface DigestOptions extends DatabaseOptions {
  org: string;
  hash?: string;
  algorithm?: 'sha256' | 'blake3';
}

function algorithmOption(value: string): 'sha256' | 'blake3' {
  if (value !== 'sha256' && value !== 'blake3') throw new InvalidArgumentError('must be sha256 or blake3');
  return value;
}

function days(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > 366) throw new InvalidArgumentError('must be a whole number of days, 1 to 366');
  return number;
}

function withDigestOptions(command: Command): Command {
  return withDbOptions(
    command
      .argument('[package-file]', 'the package (both its SHA-256 and its BLAKE3 are recorded)')
      .requiredOption('--org <org>', 'organization (id or name)')
      .option('--hash <hex>', 'the digest instead of the file (64 hex characters)')
      .option('--algorithm <algorithm>', 'the algorithm of --hash: sha256 (default) or blake3', algorithmOption),
  );
}

/** The digests the command names: the file's (both) or --hash's. */
async function digestsOf(file: string | undefined, options: DigestOptions): Promise<KnownDigests> {
  if ((file === undefined) === (options.hash === undefined)) throw new CloacinaSignError('USAGE', 'name the package: its file or --hash <hex>, one of them');
  if (options.algorithm && options.hash === undefined) throw new CloacinaSignError('USAGE', '--algorithm names the algorithm of --hash');
  if (options.hash !== undefined) {
    const { checkDigest } = await import('../../trust/package-revocations');
    const algorithm = options.algorithm ?? 'sha256';
    return { [algorithm]: checkDigest(options.hash, algorithm) };
  }
  const { native } = await import('../../native');
  const digests = await native.hashFileDigests(file!, { sha256: true, blake3: true });
  return { sha256: digests.sha256, blake3: digests.blake3 };
}

function revocationJson(entry: { sha256: string | null; blake3: string | null; reason: string; orgId?: string; revokedAt?: string }) {
  return { sha256: entry.sha256, blake3: entry.blake3, reason: entry.reason, orgId: entry.orgId ?? null, revokedAt: entry.revokedAt ?? null };
}

export function addRevocationCommands(packages: Command): void {
  withDigestOptions(
    packages
      .command('revoke')
      .description('revoke one package (an exact digest) for an organization, whoever signed it; audited')
      .requiredOption('--reason <text>', 'why (kept, audited, listed)'),
  ).action((file: string | undefined, options: DigestOptions & { reason: string }) =>
    runAction(options, async () => {
      const digests = await digestsOf(file, options);
      await withDatabase(options, async ({ keys, org }) => {
        const owner = await org(options.org);
        const { revokePackage } = await import('../../trust/package-revocations');
        const revoked = await revokePackage(keys, owner.id, digests, options.reason);
        say(`Revoked ${file ?? revoked.sha256 ?? revoked.blake3} for "${owner.name}": every verification and load with its trust refuses it`);
        printData(options, revocationJson(revoked), revoked.sha256 ?? revoked.blake3 ?? '');
      });
    }),
  );
  withDigestOptions(packages.command('unrevoke').description("lift an organization's revocation of a package; audited")).action(
    (file: string | undefined, options: DigestOptions) =>
      runAction(options, async () => {
        const digests = await digestsOf(file, options);
        await withDatabase(options, async ({ keys, org }) => {
          const owner = await org(options.org);
          const { unrevokePackage } = await import('../../trust/package-revocations');
          const lifted = await unrevokePackage(keys, owner.id, digests);
          say(`Lifted ${lifted.length} revocation(s) of "${owner.name}"`);
          printData(options, lifted.map(revocationJson), lifted.map((entry) => entry.sha256 ?? entry.blake3).join('\n'));
        });
      }),
  );
  withDbOptions(
    packages
      .command('revocations')
      .description('list the packages revoked for an organization (its own and those of organizations whose trust it inherits)')
      .requiredOption('--org <org>', 'organization (id or name)'),
  ).action((options: DatabaseOptions & { org: string }) =>
    runAction(options, () =>
      withDatabase(
        options,
        async ({ db, org }) => {
          const owner = await org(options.org);
          const { loadRevocations } = await import('../../trust/package-revocations');
          const entries = await db.run((knex) => loadRevocations(knex, owner.id));
          printData(
            options,
            entries.map(revocationJson),
            formatTable(
              ['SHA-256', 'BLAKE3', 'REASON', 'REVOKED', 'BY'],
              entries.map((e) => [e.sha256 ?? '-', e.blake3 ?? '-', e.reason, e.revokedAt ?? '', e.orgId === owner.id ? 'this organization' : (e.orgId ?? '')]),
            ),
          );
        },
        { readOnly: true },
      ),
    ),
  );
  withDbOptions(
    packages
      .command('revocation-list')
      .description('write the signed, expiring revocation list of an organization, for runners with pinned keys')
      .requiredOption('--org <org>', 'organization (id or name)')
      .requiredOption('--key-id <id>', 'the signing key of the organization that signs the list (runners pin its public key)')
      .requiredOption('--output <file>', 'where to write the list')
      .option('--valid-days <days>', 'how long runners accept the list (default 7)', days)
      .option('--force', 'overwrite the output file')
      .option('--kek-file <path>', 'read the KEK from this file (as CLOACINA_KEY_ENCRYPTION_KEY_FILE: 0600, owned by the user)')
      .option('--allow-insecure-key-file', 'read a KEK or PIN file that group or others can access (refused by default)'),
  ).action((options: DatabaseOptions & { org: string; keyId: string; output: string; validDays?: number; force?: boolean }) =>
    runAction(options, async () => {
      const { checkOutputFile, writeFileAtomic } = await import('../../files');
      await checkOutputFile(options.output, { overwrite: options.force });
      await withDatabase(
        options,
        async ({ keys, kek, org }) => {
          const owner = await org(options.org);
          const { issueRevocationList } = await import('../../trust/package-revocations');
          const issued = await issueRevocationList(keys, owner.id, options.keyId, kek!, (options.validDays ?? 7) * 86_400);
          await writeFileAtomic(options.output, issued.document, { overwrite: options.force, mode: 0o644 });
          say(`Wrote ${options.output}: sequence ${issued.sequence}, ${issued.revoked} revoked package(s), valid until ${issued.expiresAt}`);
          printData(
            options,
            {
              path: options.output,
              organization: owner.name,
              sequence: issued.sequence,
              expiresAt: issued.expiresAt,
              revoked: issued.revoked,
              keyFingerprint: issued.keyFingerprint,
            },
            options.output,
          );
        },
        { needsKek: true },
      );
    }),
  );
}
