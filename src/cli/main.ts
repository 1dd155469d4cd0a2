#!/usr/bin/env node
// Entry point of the `cloacina-sign` bin.
import type * as Program from './program';

// Node 22.1 and later keep the code they compile in a cache directory of their choosing and reuse it on
// the next run, skipping most of the parsing a start-up pays; an older Node has no such function.
(require('node:module') as { enableCompileCache?: () => unknown }).enableCompileCache?.();
// Required after the cache is on, so the program's modules are compiled through it.
const { main } = require('./program') as typeof Program;

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error [INTERNAL]: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
