// Streaming SHA-256 of a package, computed off the JS thread.
import { native } from './native';
import { nativeCounter, type ProgressCounter } from './progress';

/** Lowercase hex SHA-256 of the whole file. */
export function hashFile(path: string, options: { progress?: ProgressCounter } = {}): Promise<string> {
  return native.hashFile(path, nativeCounter(options.progress));
}
