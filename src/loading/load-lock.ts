// Guarded loads run one at a time in the process; the Rust side holds its own lock around dlopen too.

let tail: Promise<unknown> = Promise.resolve();

/** Runs `work` after every earlier guarded load has settled. */
export function serializeLoads<T>(work: () => Promise<T>): Promise<T> {
  const run = tail.then(work, work);
  tail = run.catch(() => undefined);
  return run;
}
