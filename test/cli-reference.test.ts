// docs/cli.md is generated from the commands' own --help (scripts/cli-reference.js): it must say what the program says.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from 'chai';
import { ROOT } from './helpers';

describe('the command-line reference (docs/cli.md)', () => {
  it('when the reference is generated again it is exactly the committed docs/cli.md', () => {
    const generated = spawnSync(process.execPath, [join(ROOT, 'scripts/cli-reference.js'), '--stdout'], { encoding: 'utf8' });
    assert.strictEqual(generated.status, 0, generated.stderr);
    const committed = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');
    assert.ok(generated.stdout === committed, 'docs/cli.md is stale: run npm run docs:cli');
  });
});
