// The trust behind `package verify|run|inspect`: an organization in the database (--org), or public
// keys pinned on the command line (--trust-key, also spelled --public-key), with no database at all.
import { type Command, InvalidArgumentError } from 'commander';
import type { AuditSink } from '../audit/sink';
import { CloacinaSignError } from '../errors';
import type { PackageLoader } from '../loading/package-loader';
import type { PackagePolicy } from '../verification/policy';
import { auditLines, type DatabaseOptions, withDatabase } from './context';

export interface TrustOptions extends DatabaseOptions {
  org?: string;
  trustKey?: string[];
  publicKey?: string[];
  expectName?: string;
  expectOrganization?: string;
  allowedVersions?: string;
  requireV2?: boolean;
  clockSkew?: number;
  rollbackProtection?: boolean;
  /** --max-size: the loader's size limit (bytes). */
  maxSize?: number;
  /** With pinned keys: the signed revocation list, and where the newest sequence seen is kept. */
  revocationList?: string;
  revocationState?: string;
}

const MAX_CLOCK_SKEW_SECONDS = 86_400 * 365;

function seconds(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isInteger(number) || number < 0) throw new InvalidArgumentError('must be a whole number of seconds');
  if (number > MAX_CLOCK_SKEW_SECONDS) throw new InvalidArgumentError(`must be between 0 and ${MAX_CLOCK_SKEW_SECONDS} seconds (365 days)`);
  return number;
}

/** The policy flags of `package verify|run|inspect`: checked on signed fields only (version-2 statements). */
export function addPolicyOptions(command: Command): Command {
  return command
    .option('--expect-name <name>', 'refuse a package whose signed statement names another package (PACKAGE_NAME_MISMATCH)')
    .option('--expect-organization <organization>', 'refuse a package whose signed statement names another organization, or none (ORGANIZATION_MISMATCH)')
    .option('--allowed-versions <versions>', 'exact versions (1.0.0,1.1.0) or a range (">=1.2.0, <2.0.0"); others are refused (VERSION_NOT_ALLOWED)')
    .option('--require-v2', 'refuse version-1 and cosign signatures, which sign no name, version or expiry (V2_REQUIRED)')
    .option('--clock-skew <seconds>', 'how far clocks may disagree when checking expiry (default 60)', seconds)
    .option('--rollback-protection', 'with --org: refuse a version lower than the highest this organization loaded (ROLLBACK_REFUSED)')
    .option('--revocation-list <file>', 'with --trust-key: the signed list of revoked packages (packages revocation-list), signed by a pinned key')
    .option('--revocation-state <file>', 'with --revocation-list: where the newest list sequence seen is kept (default: <list>.state)');
}

function policyFrom(options: TrustOptions): PackagePolicy {
  return {
    expectName: options.expectName,
    expectOrganization: options.expectOrganization,
    allowedVersions: options.allowedVersions,
    requireV2: options.requireV2,
    clockSkewSeconds: options.clockSkew,
    rollbackProtection: options.rollbackProtection,
  };
}

/** Commander's way to repeat an option: `--trust-key a.pem --trust-key b.pem`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** CLOACINA_REQUIRE_SIGNATURES=1 is --require-signatures (Cloacina's server has the same switch). */
export function requireSignaturesFrom(flag: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.CLOACINA_REQUIRE_SIGNATURES?.trim().toLowerCase();
  if (value === undefined || value === '' || value === '0' || value === 'false') return flag === true;
  if (value === '1' || value === 'true') return true;
  throw new CloacinaSignError('USAGE', 'CLOACINA_REQUIRE_SIGNATURES must be 1, true, 0 or false');
}

/** Runs `work` with a loader over the trust the options name; the database (if any) is closed after. */
export async function withLoader<T>(options: TrustOptions, requireSignatures: boolean, work: (loader: PackageLoader) => Promise<T>): Promise<T> {
  const keys = [...(options.trustKey ?? []), ...(options.publicKey ?? [])];
  if (options.org && keys.length > 0) throw new CloacinaSignError('USAGE', 'trust either --org (the database) or --trust-key files, not both');
  if (!options.org && keys.length === 0) throw new CloacinaSignError('USAGE', 'say whose trust decides: --org <org> (the database) or --trust-key <pub.pem>');
  const { createPackageLoader } = await import('../loading/package-loader');
  const lines = auditLines();
  const sinks: AuditSink[] = lines ? [lines] : [];
  const policy = policyFrom(options);
  if (!options.org) {
    if (policy.rollbackProtection) throw new CloacinaSignError('USAGE', '--rollback-protection needs --org: pinned keys keep no record of loaded versions');
    const { publicKeyTrust } = await import('../trust/public-key-trust');
    const trust = publicKeyTrust(keys, revocationOptions(options));
    return work(createPackageLoader({ trust, audit: sinks, requireSignatures, policy, maxPackageBytes: options.maxSize }));
  }
  if (options.revocationList || options.revocationState) {
    throw new CloacinaSignError('USAGE', '--revocation-list is for pinned keys: with --org the database revokes packages (packages revoke)');
  }
  const org = options.org;
  return withDatabase(options, async ({ db }) => {
    const [{ databaseTrust }, { auditToDatabase }] = await Promise.all([import('../trust/database-trust'), import('../audit/database-sink')]);
    return work(
      createPackageLoader({
        trust: databaseTrust(db, { org }),
        audit: [auditToDatabase(db), ...sinks],
        requireSignatures,
        policy,
        maxPackageBytes: options.maxSize,
      }),
    );
  });
}

/** The pinned revocation list and its state file (default: beside the list, `<list>.state`). */
function revocationOptions(options: TrustOptions): { revocationList?: string; revocationState?: string } {
  if (options.revocationState && !options.revocationList)
    throw new CloacinaSignError('USAGE', '--revocation-state keeps the sequence of a --revocation-list: give the list too');
  if (!options.revocationList) return {};
  return { revocationList: options.revocationList, revocationState: options.revocationState ?? `${options.revocationList}.state` };
}
