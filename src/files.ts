// Small-file reads with a size cap, and writes that never leave a half-written file behind.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, promises as fs, readSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CloacinaSignError } from './errors';

export class FileTooLarge extends CloacinaSignError {
  constructor(what: string, path: string, size: number, limit: number) {
    super('INVALID_INPUT', `${what} ${path} is ${size} bytes; the limit is ${limit}`);
  }
}

function unreadable(path: string, error: unknown): CloacinaSignError {
  const reason = (error as NodeJS.ErrnoException).code ?? String(error);
  return new CloacinaSignError('UNREADABLE_FILE', `cannot read ${path}: ${reason}`, { cause: error });
}

// Opening must never block: a FIFO or a terminal is refused by the fstat of the opened descriptor.
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function notRegular(path: string, stat: Stats): CloacinaSignError {
  return new CloacinaSignError('UNREADABLE_FILE', `cannot read ${path}: ${kindOf(stat)} is not a regular file`);
}

/**
 * Reads a whole regular file of at most `limit` bytes (key files: small, read once at start-up). Opened
 * once without blocking; the checks are on that descriptor, so a FIFO, a device or a directory is
 * refused at once. The errno stays reachable as the error's `cause`.
 */
export function readSmallFile(path: string, limit: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (error) {
    throw unreadable(path, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw notRegular(path, stat);
    if (stat.size > limit) throw new FileTooLarge(what, path, stat.size, limit);
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (;;) {
      const bytesRead = readSync(fd, buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > limit) throw new FileTooLarge(what, path, length, limit);
    }
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof CloacinaSignError) throw error;
    throw unreadable(path, error);
  } finally {
    closeSync(fd);
  }
}

/** Writes to a temporary file beside the target, fsyncs, then renames over it. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(temporary, 'wx', mode);
    await handle.writeFile(data);
    await handle.chmod(mode);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temporary, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new CloacinaSignError('WRITE_FAILED', `cannot write ${path}: ${reason}`, { cause: error });
  }
}
