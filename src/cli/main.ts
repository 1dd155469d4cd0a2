#!/usr/bin/env node
// Entry point of the `cloacina-sign` bin: runs the CLI bundle (scripts/bundle-cli.js, built with the
// TypeScript) with compiled code reused from the previous runs.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type * as Program from './program';

const BUNDLE = join(__dirname, 'bundle.js');

/** The bundle, unless a later `tsc` left it behind the modules it was built from (then they run as they are). */
function bundleIsCurrent(): boolean {
  try {
    return statSync(BUNDLE).mtimeMs >= statSync(join(__dirname, 'program.js')).mtimeMs;
  } catch {
    return false;
  }
}

function loadProgram(): typeof Program {
  if (!bundleIsCurrent()) return require('./program') as typeof Program;
  // Node 22.1 and later keep the code they compile in a cache of their own and reuse it on the next run;
  // an older Node has no such function, and src/cli/code-cache.ts does the same for the bundle.
  const enableCompileCache = (require('node:module') as { enableCompileCache?: () => unknown }).enableCompileCache;
  if (enableCompileCache) {
    enableCompileCache();
    return require(BUNDLE) as typeof Program;
  }
  const { requireWithCodeCache } = require('./code-cache') as typeof import('./code-cache');
  return requireWithCodeCache<typeof Program>(BUNDLE, process.argv);
}

loadProgram()
  .main(process.argv)
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`error [INTERNAL]: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 2;
    },
  );
