// Test support stays out of what is published: the functions of the binding's `test-hooks` feature
// exist only in the addon the test run builds into target/test-addon.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ROOT } from './helpers';
import { TEST_ADDON } from './test-addon';

const TEST_HOOKS = ['errorSamples', 'throwErrorSample', 'verifyMessage'];

/** The addons `npm run build:native` wrote for this machine (cloacina-sign.<platform>.node). */
function productionAddons(): string[] {
  return readdirSync(ROOT)
    .filter((name) => /^cloacina-sign\..+\.node$/.test(name))
    .map((name) => join(ROOT, name));
}

describe('the production addon', () => {
  it('when built for this machine, there is one to load', () => {
    expect(productionAddons()).to.have.length.greaterThan(0);
  });

  it('when loaded, it has no errorSamples, throwErrorSample or verifyMessage', () => {
    for (const path of productionAddons()) {
      const addon = require(path);
      expect(addon, path).to.have.property('generateKeypair');
      for (const name of TEST_HOOKS) expect(addon, `${path} ${name}`).not.to.have.property(name);
    }
  });

  it('when loaded through the generated loader, it has none of them either', () => {
    const binding = require(join(ROOT, 'binding.js'));
    for (const name of TEST_HOOKS) expect(binding[name], name).to.equal(undefined);
  });

  it('when the test addon is loaded instead, it has all of them', () => {
    const addon = require(TEST_ADDON);
    for (const name of TEST_HOOKS) expect(addon[name], name).to.be.a('function');
  });
});
