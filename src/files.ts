// Small-file reads with a size cap (through the native bounded read), and writes that never leave a
// half-written file behind and never clobber what they must not: an existing file (unless asked to),
// the package being signed, a private key.
import { constants, promises as fs, type Stats, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CloacinaSignError } from './errors';
import { nodeCrypto } from './node-crypto';
import { native, type SmallFileRead } from './native';

export class FileTooLarge extends CloacinaSignError {
  constructor(what: string, path: string, size: number, limit: number) {
    super('INVALID_INPUT', `${what} ${path} is ${size} bytes; the limit is ${limit}`);
  }
}

/** There is no file at the path (a first run without a state file, say). */
export class FileNotFound extends CloacinaSignError {
  constructor(path: string) {
    super('UNREADABLE_FILE', `cannot read ${path}: no such file`);
  }
}

function reasonOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

// Opening must never block: a FIFO or a terminal is refused by the fstat of the opened descriptor.
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** The owner and permission bits of a file that was read (`st_uid`, `st_mode`). */
export interface FileOwnership {
  mode: number;
  uid: number;
}

/** What a small-file read must satisfy before its bytes are used (e.g. a private key file's mode). */
export type OwnershipCheck = (ownership: FileOwnership) => void;

/**
 * The owner and mode of the file read. The native read reports those of the descriptor it read; the
 * WebAssembly build cannot (WASI does not report them), so there they come from a stat of the path.
 */
function ownershipOf(read: SmallFileRead, path: string): FileOwnership {
  if (read.mode !== undefined && read.uid !== undefined) return { mode: read.mode, uid: read.uid };
  try {
    return statSync(path);
  } catch (error) {
    throw new CloacinaSignError('UNREADABLE_FILE', `cannot read ${path}: ${reasonOf(error)}`, { cause: error });
  }
}

/** The bytes of a read, once `check` accepted the file and it is within the limit. */
function contentOf(read: SmallFileRead, path: string, limit: number, what: string, check?: OwnershipCheck): Buffer {
  if (read.missing) throw new FileNotFound(path);
  check?.(ownershipOf(read, path));
  if (read.tooLarge !== undefined || read.bytes === undefined) throw new FileTooLarge(what, path, read.tooLarge ?? limit + 1, limit);
  return read.bytes;
}

/**
 * Reads a whole regular file of at most `limit` bytes (key files, KEK and PIN files, revocation lists),
 * off the JS thread. Opened once without blocking (crates/core/src/files.rs `read_small`), so a FIFO, a
 * device or a directory is refused at once; `check` sees the owner and mode of that same descriptor.
 */
export async function readSmallFile(path: string, limit: number, what: string, check?: OwnershipCheck): Promise<Buffer> {
  return contentOf(await native.readSmallFile(path, limit), path, limit, what, check);
}

/**
 * As readSmallFile, on the calling thread, for the callers that are synchronous today: a trust source
 * built from key files, KEK and PIN files (4 KiB at most), a pinned revocation list (4 MiB at most).
 */
export function readSmallFileSync(path: string, limit: number, what: string, check?: OwnershipCheck): Buffer {
  return contentOf(native.readSmallFileSync(path, limit), path, limit, what, check);
}

/** A file an output must never replace, even with `overwrite`: compared by device and inode. */
export interface ProtectedFile {
  path: string;
  /** What it is, for the message: "the package being signed". */
  what: string;
}

export interface OutputOptions {
  /** Replace an existing file (the CLI's --force). Without it an existing file is never touched, not even one created during the write. */
  overwrite?: boolean;
  /** Files never written over, even with `overwrite` (the package being signed, the --key file). */
  protect?: ProtectedFile[];
  /** Refuse, even with `overwrite`, to write over a file holding a PEM private key (default true). */
  protectPrivateKeys?: boolean;
}

export interface WriteOptions extends OutputOptions {
  /** The new file's mode (applied despite the umask). */
  mode: number;
}

const PRIVATE_KEY_LABEL = Buffer.from('PRIVATE KEY-----');
const SCAN_CHUNK = 64 * 1024;

function refused(path: string, why: string): CloacinaSignError {
  return new CloacinaSignError('OUTPUT_EXISTS', `refusing to write over ${path}: ${why}`);
}

function writeFailed(path: string, error: unknown): CloacinaSignError {
  if (error instanceof CloacinaSignError) return error;
  return new CloacinaSignError('WRITE_FAILED', `cannot write ${path}: ${reasonOf(error)}`, { cause: error });
}

async function statOrUndefined(path: string, follow: boolean): Promise<Stats | undefined> {
  try {
    return follow ? await fs.stat(path) : await fs.lstat(path);
  } catch {
    return undefined;
  }
}

function sameFile(a: Stats | undefined, b: Stats | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/**
 * Whether the file at `path` contains a PEM private key label (`-----BEGIN ... PRIVATE KEY-----`),
 * anywhere. Opened without blocking; what is not a regular file holds no key. When it cannot be read
 * it might hold one: that is an error, never a guess.
 */
async function holdsPrivateKey(path: string): Promise<boolean> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, READ_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENXIO') return false;
    throw new CloacinaSignError('WRITE_FAILED', `cannot check whether ${path} holds a private key: ${reasonOf(error)}`, { cause: error });
  }
  try {
    if (!(await handle.stat()).isFile()) return false;
    const overlap = PRIVATE_KEY_LABEL.length - 1;
    const buffer = Buffer.alloc(SCAN_CHUNK + overlap);
    let carried = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, carried, SCAN_CHUNK, null);
      if (bytesRead === 0) return false;
      const end = carried + bytesRead;
      if (buffer.subarray(0, end).includes(PRIVATE_KEY_LABEL)) return true;
      carried = Math.min(overlap, end);
      buffer.copy(buffer, 0, end - carried, end);
    }
  } catch (error) {
    throw new CloacinaSignError('WRITE_FAILED', `cannot check whether ${path} holds a private key: ${reasonOf(error)}`, { cause: error });
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Refuses an output path the write must not go to: a protected file (same device and inode, through a
 * symbolic or hard link too), a file holding a private key, anything but a regular file (a symbolic link,
 * a directory, /dev/null: `overwrite` replaces regular files only), or (without `overwrite`) any existing
 * file. Called before the work that produces the content (so nothing is signed or stored in vain) and
 * again by writeFileAtomic.
 */
export async function checkOutputFile(path: string, options: OutputOptions = {}): Promise<void> {
  const link = await statOrUndefined(path, false);
  if (link === undefined) return;
  const target = await statOrUndefined(path, true);
  for (const file of options.protect ?? []) {
    const stat = await statOrUndefined(file.path, true);
    if (sameFile(stat, link) || sameFile(stat, target)) throw refused(path, `it is ${file.what} (not even with --force)`);
  }
  if ((options.protectPrivateKeys ?? true) && (await holdsPrivateKey(path))) throw refused(path, 'it holds a private key (not even with --force)');
  if (!link.isFile()) throw refused(path, `it is ${kindOf(link)}, not a regular file`);
  if (!options.overwrite) throw new CloacinaSignError('OUTPUT_EXISTS', `${path} already exists (use --force to overwrite)`);
}

const TEMPORARY_MARK = '.cloacina-tmp-';

/** `.<name>.cloacina-tmp-`: the temporary files of writes to `path`, in its directory. */
function temporaryPrefix(path: string): string {
  return `.${basename(path)}${TEMPORARY_MARK}`;
}

/**
 * Deletes what an interrupted (killed) earlier write to `path` left: `.<name>.cloacina-tmp-<hex>` in the
 * same directory. Nothing else makes such names, so they can only be ours.
 */
export async function removeStaleTemporaries(path: string): Promise<void> {
  const directory = dirname(path);
  const prefix = temporaryPrefix(path);
  let names: string[];
  try {
    names = await fs.readdir(directory);
  } catch {
    return; // No directory, no leftovers: the write itself will say what is wrong.
  }
  for (const name of names) {
    if (name.startsWith(prefix) && /^[0-9a-f]{16}$/.test(name.slice(prefix.length))) {
      await fs.rm(join(directory, name), { force: true }).catch(() => undefined);
    }
  }
}

/** Makes the directory entries just created or removed in `directory` durable. */
export async function syncDirectory(directory: string): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(directory, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (error) {
    // A directory we may write but not read (mode -wx) cannot be opened to fsync: the entry is made all the same.
    if ((error as NodeJS.ErrnoException).code === 'EACCES') return;
    throw error;
  }
  try {
    await handle.sync().catch((error: NodeJS.ErrnoException) => {
      // Some file systems cannot fsync a directory; the rename or link itself is then all there is.
      if (error.code !== 'EINVAL' && error.code !== 'ENOTSUP') throw error;
    });
  } finally {
    await handle.close();
  }
}

/**
 * The one way files are written. Readers see no file or the whole new one (old or new, with
 * `overwrite`), never a partial one:
 * 1. leftovers of a killed earlier write to `path` are deleted, and `path` is checked (checkOutputFile);
 * 2. the content goes to `.<name>.cloacina-tmp-<hex>` beside it (created exclusively, `mode`), fsynced;
 * 3. without `overwrite` it is hard-linked to `path`, which fails if a file appeared there meanwhile
 *    (that file is left alone: OUTPUT_EXISTS), then the temporary name is removed; with `overwrite` it is
 *    renamed over `path`;
 * 4. the directory is fsynced.
 * On failure the temporary file is removed; a kill can leave it, until step 1 of the next write.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteOptions): Promise<void> {
  const temporary = join(dirname(path), `${temporaryPrefix(path)}${nodeCrypto().randomBytes(8).toString('hex')}`);
  let handle: fs.FileHandle | undefined;
  let created = false;
  try {
    await removeStaleTemporaries(path);
    await checkOutputFile(path, options);
    handle = await fs.open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, options.mode);
    created = true;
    await handle.writeFile(data);
    await handle.chmod(options.mode);
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (options.overwrite) {
      await checkOutputFile(path, options);
      await fs.rename(temporary, path);
      created = false;
    } else {
      try {
        await fs.link(temporary, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CloacinaSignError('OUTPUT_EXISTS', `${path} already exists: it appeared during the write and was left alone (use --force to overwrite)`, {
            cause: error,
          });
        }
        throw error;
      }
      await fs.unlink(temporary);
      created = false;
    }
    await syncDirectory(dirname(path));
  } catch (error) {
    await handle?.close().catch(() => undefined);
    if (created) await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw writeFailed(path, error);
  }
}
