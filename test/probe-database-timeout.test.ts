// The database bound at the edges of what a timer can hold: a bound too small to be a whole millisecond
// or too large for a timer is refused as input, never an internal error or a bound that fires at once.
import { expect } from 'chai';
import { CloacinaSignError, openDatabase } from '../src';
import { runCli, tempDir } from './helpers';

async function refusal(open: () => Promise<{ close(): Promise<void> }>): Promise<unknown> {
  return open().then(
    async (db) => {
      await db.close();
      return undefined;
    },
    (error: unknown) => error,
  );
}

describe('the database bound at the edges of a timer', () => {
  const dir = tempDir();
  const saved = process.env.CLOACINA_DATABASE_TIMEOUT;
  afterEach(() => {
    if (saved === undefined) delete process.env.CLOACINA_DATABASE_TIMEOUT;
    else process.env.CLOACINA_DATABASE_TIMEOUT = saved;
  });
  after(() => dir.cleanup());

  for (const value of ['0.0001', '99999999999', '2147484']) {
    it(`when CLOACINA_DATABASE_TIMEOUT is ${value}, openDatabase refuses it with INVALID_INPUT naming the variable`, async () => {
      process.env.CLOACINA_DATABASE_TIMEOUT = value;
      const error = await refusal(() => openDatabase(`sqlite:${dir.join('env.db')}`, { migrate: true }));
      expect(error).to.be.instanceOf(CloacinaSignError);
      expect((error as CloacinaSignError).code).to.equal('INVALID_INPUT');
      expect((error as Error).message).to.contain('CLOACINA_DATABASE_TIMEOUT');
    });
  }

  for (const timeoutMs of [0.5, 2 ** 31]) {
    it(`when timeoutMs is ${timeoutMs}, openDatabase refuses it with INVALID_INPUT`, async () => {
      const error = await refusal(() => openDatabase(`sqlite:${dir.join('lib.db')}`, { migrate: true, timeoutMs }));
      expect(error).to.be.instanceOf(CloacinaSignError);
      expect((error as CloacinaSignError).code).to.equal('INVALID_INPUT');
    });
  }

  it('when the CLI is given CLOACINA_DATABASE_TIMEOUT=99999999999, it exits 2 with INVALID_INPUT and no timer warning', () => {
    const result = runCli(['orgs', 'list', '--database', `sqlite:${dir.join('cli.db')}`], {
      CLOACINA_DATABASE_TIMEOUT: '99999999999',
      CLOACINA_DATABASE_URL: '',
    });
    expect(result.status).to.equal(2);
    expect(result.stderr).to.contain('INVALID_INPUT');
    expect(result.stderr).not.to.contain('TimeoutOverflowWarning');
  });
});
