// Rollback protection with database trust refuses a version lower than the highest one an organization has
// loaded (ROLLBACK_REFUSED) until an operator lowers that mark with `packages reset-version`: an explicit,
// audited decision to allow an older version again.
import { lowerVersionMark } from '../db/version-marks';
import type { DbKeyManager } from '../keys/db-key-manager';
import { native } from '../native';

/**
 * Lowers (or removes, with `to` null) the mark of a package. Audited as `package.version.reset` in the same
 * transaction. NOT_FOUND without a mark.
 */
export async function resetVersion(keys: DbKeyManager, orgId: string, name: string, to: string | null): Promise<{ previous: string; now: string | null }> {
  if (to !== null) native.compareVersions(to, to); // INVALID_INPUT unless SemVer
  return keys.write('', async (trx) => {
    const previous = await lowerVersionMark(trx, orgId, name, to);
    const reason = `rollback mark of ${JSON.stringify(name)} lowered from ${previous} to ${to ?? '(none)'}`;
    return [
      { eventType: 'package.version.reset', orgId, reason },
      { previous, now: to },
    ];
  });
}
