// Many packages verified in one go, each exactly as `verifyWithTrust` verifies one and audited the same
// way. With pinned keys and the `.sig` beside each package (the runner's and the CLI's common case) the
// decisions are made in one native call on every core, instead of one trip to the worker pool per package.
import { native, type PolicyOptions, translate } from '../native';
import { DetachedSignature } from '../formats/v1';
import { revokedPackagesOf } from '../trust/revoked-packages';
import { nativePolicy } from './policy';
import { SignatureSource } from './signature-source';
import { resultOf, type VerificationResult } from './result';
import { audited, type VerificationContext, type VerifyOptions, verifyWithTrust } from './verifier';

/** One package's outcome: verified, or the error its verification failed with (already audited). */
export type VerificationOutcome = { path: string; verified: VerificationResult; error?: undefined } | { path: string; verified?: undefined; error: Error };

/** How many packages are verified at once when they go one by one (stored signatures, a format to check, revocations). */
export const VERIFICATIONS_IN_FLIGHT = 8;
/** The most packages one native call decides (the binding's own limit is higher). */
const PACKAGES_PER_CALL = 1024;

/** Verifies every package; the outcomes come back in the order given. A failure is an outcome, not a rejection. */
export async function verifyManyWithTrust(ctx: VerificationContext, paths: readonly string[], options: VerifyOptions = {}): Promise<VerificationOutcome[]> {
  const source = options.signature ?? SignatureSource.Auto;
  const oneByOne = () => verifyEach(paths, (path) => verifyWithTrust(ctx, path, options));
  if (source.kind !== 'auto' || options.format !== undefined || options.maxPackageBytes !== undefined || options.progress !== undefined) return oneByOne();
  if (ctx.trust.storedSignatures) return oneByOne();
  const outcomes: VerificationOutcome[] = [];
  for (let start = 0; start < paths.length; start += PACKAGES_PER_CALL) {
    const batch = paths.slice(start, start + PACKAGES_PER_CALL);
    const each = () => verifyEach(batch, (path) => verifyWithTrust(ctx, path, options));
    // What the trust says now (a revocation list is re-read for each call, as before each single decision).
    const now = await trustNow(ctx);
    // A revocation in force, or trust that cannot be read: each package goes its own way (audited as verify audits it).
    const decided =
      now &&
      (await native
        .verifyFilesWithKeys(
          batch,
          batch.map((path) => DetachedSignature.defaultPath(path)),
          now.keys,
          now.policy,
        )
        .catch(() => undefined));
    if (!now || !decided) {
      outcomes.push(...(await each()));
      continue;
    }
    const { organization } = now;
    const outcomeOf = (path: string, index: number): VerificationResult => {
      const { verified, error } = decided[index];
      if (!verified) throw translate(error ?? '[INTERNAL] no outcome');
      return resultOf(path, verified, organization);
    };
    if (ctx.trail.sinks.length === 0) {
      // Nothing to audit to (`audit: []`): the outcomes as they are, without a promise per package.
      outcomes.push(...batch.map((path, index) => settleNow(path, () => outcomeOf(path, index))));
      continue;
    }
    // Each audited as its own verification, in the order given.
    const audits = batch.map((path, index) =>
      settle(
        path,
        audited(ctx, path, async (attempt) => {
          attempt.organization = organization;
          return outcomeOf(path, index);
        }),
      ),
    );
    outcomes.push(...(await Promise.all(audits)));
  }
  return outcomes;
}

/** The trusted keys and policy of one native call; undefined when a package revocation is in force or trust cannot be read. */
async function trustNow(ctx: VerificationContext): Promise<{ organization: string | null; keys: Buffer[]; policy: PolicyOptions } | undefined> {
  try {
    if ((await revokedPackagesOf(ctx.trust)).size > 0) return undefined;
    const organization = await ctx.trust.organization();
    const keys = [...(await ctx.trust.trustedKeys()).values()].map((key) => key.publicKey);
    return { organization, keys, policy: await nativePolicy(ctx.policy ?? {}, ctx.trust, []) };
  } catch {
    return undefined;
  }
}

/** Verifies the packages one by one, VERIFICATIONS_IN_FLIGHT at a time; the outcomes in the order given. */
export async function verifyEach(paths: readonly string[], verifyOne: (path: string) => Promise<VerificationResult>): Promise<VerificationOutcome[]> {
  const outcomes: VerificationOutcome[] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const index = next++;
      outcomes[index] = await settle(paths[index], verifyOne(paths[index]));
    }
  };
  await Promise.all(Array.from({ length: Math.min(VERIFICATIONS_IN_FLIGHT, paths.length) }, worker));
  return outcomes;
}

function settle(path: string, verification: Promise<VerificationResult>): Promise<VerificationOutcome> {
  return verification.then(
    (verified) => ({ path, verified }),
    (error: unknown) => ({ path, error: asError(error) }),
  );
}

function settleNow(path: string, verify: () => VerificationResult): VerificationOutcome {
  try {
    return { path, verified: verify() };
  } catch (error) {
    return { path, error: asError(error) };
  }
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));
