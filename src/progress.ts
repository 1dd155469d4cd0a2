// Bytes of a file processed so far, readable while hashing, signing or verifying runs (progress bars).
import { NativeProgressCounter } from './native';

const counters = new WeakMap<ProgressCounter, NativeProgressCounter>();

export class ProgressCounter {
  constructor() {
    counters.set(this, new NativeProgressCounter());
  }

  /** Bytes processed so far. */
  get bytes(): number {
    return counters.get(this)!.bytes;
  }
}

/**
 * The native counter behind a ProgressCounter, for the binding calls.
 * @internal (kept out of the published declarations: they must not reach the native binding's types)
 */
export function nativeCounter(progress: ProgressCounter | undefined): NativeProgressCounter | undefined {
  return progress ? counters.get(progress) : undefined;
}
