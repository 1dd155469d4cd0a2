#!/usr/bin/env node
// Entry point of the `cloacina-sign` bin.
import { main } from './program';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error [INTERNAL]: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
