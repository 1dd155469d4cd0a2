// One platform package per target in package.json napi.targets: the names the unsupported-platform
// error gives, the npm/<platform>/ directories that become the packages, and what they declare agree.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { PLATFORM_PACKAGES } from '../src/native';
import { ROOT } from './helpers';

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

describe('the platform packages', () => {
  it('when napi.targets lists a target, the loader error names its package, in the same order', () => {
    expect(PLATFORM_PACKAGES.map((pkg) => pkg.target)).to.deep.equal(manifest.napi.targets);
    for (const pkg of PLATFORM_PACKAGES) expect(pkg.name.startsWith(`${manifest.napi.packageName}-`), pkg.name).to.equal(true);
  });

  for (const pkg of PLATFORM_PACKAGES.filter((each) => each.platform === 'linux')) {
    it(`when npm installs ${pkg.name}, its package.json says linux, ${pkg.arch}, ${pkg.libc} and ships one binary`, () => {
      const dir = join(ROOT, 'npm', pkg.name.slice(`${manifest.napi.packageName}-`.length));
      const platform = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      expect({ name: platform.name, os: platform.os, cpu: platform.cpu, libc: platform.libc, files: platform.files }).to.deep.equal({
        name: pkg.name,
        os: ['linux'],
        cpu: [pkg.arch],
        libc: [pkg.libc],
        files: [platform.main],
      });
      expect(platform.main).to.equal(`cloacina-sign.${pkg.name.slice(`${manifest.napi.packageName}-`.length)}.node`);
    });
  }

  it('when no native package matches, npm still installs the WebAssembly one (it declares no os or cpu)', () => {
    const wasi = JSON.parse(readFileSync(join(ROOT, 'npm/wasm32-wasi/package.json'), 'utf8'));
    expect(wasi.name).to.equal(PLATFORM_PACKAGES[PLATFORM_PACKAGES.length - 1].name);
    expect(wasi.os).to.equal(undefined);
    expect(wasi.cpu).to.equal(undefined);
  });

  it('when a platform package declares engines, they admit every Node the main package is tested on (npm skips an optional package otherwise)', () => {
    for (const dir of ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'linux-arm64-musl']) {
      expect(existsSync(join(ROOT, 'npm', dir, 'package.json')), dir).to.equal(true);
      const platform = JSON.parse(readFileSync(join(ROOT, 'npm', dir, 'package.json'), 'utf8'));
      expect(platform.engines.node, dir).to.equal('>=20');
    }
  });
});
