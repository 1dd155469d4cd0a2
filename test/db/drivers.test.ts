// The database drivers are optional dependencies: a missing or broken one is a typed error naming the
// package to install, raised when a database of that kind is opened (and only then).
import { mkdirSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import { requireDriver } from '../../src/db/drivers';
import { CloacinaSignError } from '../../src/errors';
import { tempDir } from '../helpers';

describe('database drivers', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.cleanup());

  function refusal(run: () => void): CloacinaSignError {
    try {
      run();
    } catch (error) {
      return error as CloacinaSignError;
    }
    throw new Error('expected a refusal');
  }

  it('when sqlite3 is not installed, opening SQLite fails with DATABASE_DRIVER_MISSING naming sqlite3', () => {
    const error = refusal(() => requireDriver('sqlite', dir.join('knex.js')));
    expect(error).to.be.instanceOf(CloacinaSignError);
    expect(error.code).to.equal('DATABASE_DRIVER_MISSING');
    expect(error.message).to.include('a SQLite database needs the npm package sqlite3, which is not installed');
    expect(error.message).to.include('npm install sqlite3');
  });

  it('when pg is not installed, opening PostgreSQL fails with DATABASE_DRIVER_MISSING naming pg', () => {
    const error = refusal(() => requireDriver('postgres', dir.join('knex.js')));
    expect(error.code).to.equal('DATABASE_DRIVER_MISSING');
    expect(error.message).to.include('a PostgreSQL database needs the npm package pg, which is not installed');
  });

  it('when sqlite3 is installed but its native build does not load, the error says so and keeps the cause', () => {
    mkdirSync(dir.join('node_modules/sqlite3'), { recursive: true });
    writeFileSync(dir.join('node_modules/sqlite3/package.json'), JSON.stringify({ name: 'sqlite3', main: 'index.js' }));
    writeFileSync(dir.join('node_modules/sqlite3/index.js'), "throw new Error('Could not locate the bindings file');");
    const error = refusal(() => requireDriver('sqlite', dir.join('knex.js')));
    expect(error.code).to.equal('DATABASE_DRIVER_MISSING');
    expect(error.message).to.include('sqlite3, which is installed but does not load on this machine');
    expect((error.cause as Error).message).to.equal('Could not locate the bindings file');
  });

  it('when the drivers are installed, both load from where knex loads them', () => {
    expect(() => requireDriver('sqlite')).not.to.throw();
    expect(() => requireDriver('postgres')).not.to.throw();
  });
});
