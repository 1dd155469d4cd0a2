// The database drivers are optional dependencies: a runner that pins keys needs neither, and one that
// uses PostgreSQL needs no SQLite build. A driver is loaded when a database of its kind is opened,
// from where knex loads it, and its absence is a typed error naming the package to install.
import { createRequire } from 'node:module';
import { CloacinaSignError } from '../errors';
import type { Engine } from './url';

/** The npm package knex drives each engine with. */
export const DRIVER_PACKAGES: Readonly<Record<Engine, string>> = { sqlite: 'sqlite3', postgres: 'pg' };

const ENGINE_NAMES: Readonly<Record<Engine, string>> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

/**
 * Loads the driver for `engine` as knex will (resolved from knex's own location), or throws
 * DATABASE_DRIVER_MISSING: not installed, or installed without a working native build (sqlite3).
 */
export function requireDriver(engine: Engine, resolveFrom: string = require.resolve('knex')): void {
  const name = DRIVER_PACKAGES[engine];
  const load = createRequire(resolveFrom);
  try {
    load(name);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${name}'`);
    const problem = missing ? 'is not installed' : 'is installed but does not load on this machine';
    throw new CloacinaSignError(
      'DATABASE_DRIVER_MISSING',
      `a ${ENGINE_NAMES[engine]} database needs the npm package ${name}, which ${problem}: run \`npm install ${name}\` in the project that uses cloacina-sign`,
      { cause: error },
    );
  }
}
