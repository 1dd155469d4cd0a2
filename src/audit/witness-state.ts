// The witness's memory: the last checkpoint it cosigned (origin, size, head), in a small JSON file written
// atomically with mode 0600. Consistency is judged against it, so a witness never cosigns two views of a log.
import { promises as fs } from 'node:fs';
import { CloacinaSignError } from '../errors';
import { writeFileAtomic } from '../files';
import { isHash } from './chain';

export interface WitnessState {
  origin: string;
  size: number;
  /** The head hash, lowercase hex. */
  head: string;
}

const MAX_STATE_BYTES = 4096;

/** The state in `path`; undefined when the file does not exist (a witness that cosigned nothing yet). */
export async function readWitnessState(path: string): Promise<WitnessState | undefined> {
  let text: string;
  try {
    const handle = await fs.open(path, 'r');
    try {
      const buffer = Buffer.alloc(MAX_STATE_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_STATE_BYTES) throw new CloacinaSignError('INVALID_INPUT', `the witness state ${path} is longer than ${MAX_STATE_BYTES} bytes`);
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch {
    state = undefined;
  }
  const { origin, size, head } = (state ?? {}) as Record<string, unknown>;
  if (typeof origin !== 'string' || !Number.isSafeInteger(size) || (size as number) < 0 || !isHash(head)) {
    throw new CloacinaSignError('INVALID_INPUT', `the witness state ${path} is not {"origin", "size", "head"}`);
  }
  return { origin, size: size as number, head };
}

export async function writeWitnessState(path: string, state: WitnessState): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(state)}\n`, { overwrite: true, protectPrivateKeys: true, mode: 0o600 });
}
