#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/program.js and everything it requires from dist/src, with
// commander) into one file, dist/src/cli/bundle.js, which dist/src/cli/main.js runs. One file is one read
// and one compilation instead of ~50 module resolutions, and one entry for the compiled-code cache
// (src/cli/code-cache.ts). The package's other dependencies (knex, the database drivers, fastify, ...)
// stay outside it, loaded from node_modules when a command needs them, as the native addon's loader
// (binding.js) does.
//
// The bundle sits at the same depth below dist/ as every compiled module (dist/src/<dir>/), so a path a
// module builds from its own __dirname (the migrations: `../../migrations`) names the same place from
// the bundle. Usage: node scripts/bundle-cli.js (after tsc).

const { chmodSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');
const esbuild = require('esbuild');

const ROOT = resolve(__dirname, '..');
const OUTFILE = join(ROOT, 'dist/src/cli/bundle.js');
const pkg = require(join(ROOT, 'package.json'));
/** Bundled: the CLI's own modules and commander (small, and loaded by every command). */
const BUNDLED_PACKAGES = new Set(['commander']);
const external = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})].filter((name) => !BUNDLED_PACKAGES.has(name));

/** Files of this repository outside dist/src (the addon's loader, package.json) stay files, named from the bundle. */
const outsideFiles = {
  name: 'outside-files',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      const inside = (path) => path.startsWith(`${join(ROOT, 'dist/src')}/`);
      // A bundled package's own relative requires (commander's lib/) are bundled with it.
      if (!inside(args.importer) || inside(target) || target === join(ROOT, 'package.json')) return undefined;
      const path = relative(dirname(OUTFILE), target);
      return { path: path.startsWith('.') ? path : `./${path}`, external: true };
    });
  },
};

/**
 * commander requires node:child_process at load, for executable subcommands, which this CLI has none of:
 * loading it (with net, dgram and their bindings) is a few ms of every start. commander gets it when it
 * first uses it instead.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(build) {
    build.onResolve({ filter: /^node:child_process$/ }, (args) =>
      args.importer.includes(`${join('node_modules', 'commander')}`) ? { path: 'lazy-child-process', namespace: 'lazy' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: "let loaded; module.exports = { get spawn() { return (loaded ??= require('node:child_process')).spawn; } };",
      loader: 'js',
    }));
  },
};

esbuild
  .build({
    entryPoints: [join(ROOT, 'dist/src/cli/program.js')],
    outfile: OUTFILE,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: [...external, ...external.map((name) => `${name}/*`)],
    plugins: [outsideFiles, lazyChildProcess],
    legalComments: 'inline',
    logLevel: 'warning',
  })
  // The bin itself (tsc writes it 0644): executable, so `npx cloacina-sign` inside the repository and
  // ./dist/src/cli/main.js run it as npm's install makes it run for a dependent.
  .then(() => chmodSync(join(ROOT, 'dist/src/cli/main.js'), 0o755))
  .catch(() => process.exit(1));
