// Key files on disk: private keys are written 0600, never left behind alone by an interrupted write,
// never silently overwritten, and never read from a file that group or others can access.
import { promises as fs, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { CloacinaSignError } from '../errors';
import { checkOutputFile, type FileOwnership, readSmallFile, removeStaleTemporaries, syncDirectory, writeFileAtomic } from '../files';
import { importPrivateKey, importPublicKey, type Keypair, privateKeyToPem, publicKeyToPem } from './keypair';

const MAX_KEY_FILE_BYTES = 64 * 1024;

/** `<dir>/key.pem` -> `<dir>/key.pub.pem`; any other name gets `.pub.pem` appended. */
export function publicKeyPathFor(privateKeyPath: string): string {
  return privateKeyPath.endsWith('.pem') ? `${privateKeyPath.slice(0, -4)}.pub.pem` : `${privateKeyPath}.pub.pem`;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  return fs.lstat(path).catch(() => undefined);
}

/**
 * Writes `<path>` (PKCS#8 PEM, 0600) and its public key `publicKeyPathFor(path)` (SPKI PEM, 0644), each
 * atomically (see writeFileAtomic). The public key is written first and the private key last, so an
 * interruption (even SIGKILL) can leave a public key without its private key, never a private key without
 * (or with another) public key: with `force` an existing private key is removed before anything is written.
 * Without `force` an existing file at either path is an OUTPUT_EXISTS error, and so is one that appears
 * during the write; even with `force` the public key never replaces a file holding a private key.
 */
export async function writeKeypairFiles(
  keypair: Keypair,
  privateKeyPath: string,
  options: { force?: boolean } = {},
): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  const publicKeyPath = publicKeyPathFor(privateKeyPath);
  const overwrite = Boolean(options.force);
  const publicOutput = { overwrite, protectPrivateKeys: true, mode: 0o644 };
  const privateOutput = { overwrite, protectPrivateKeys: false, mode: 0o600 };
  // What a killed earlier run left goes first, whatever this run then decides.
  await removeStaleTemporaries(publicKeyPath);
  await removeStaleTemporaries(privateKeyPath);
  const existingPrivate = await lstatOrUndefined(privateKeyPath);
  if (!overwrite && !existingPrivate && (await lstatOrUndefined(publicKeyPath))) {
    throw new CloacinaSignError(
      'OUTPUT_EXISTS',
      `${publicKeyPath} already exists without its private key ${privateKeyPath} (an interrupted keys generate leaves that): delete it, or use --force to overwrite it`,
    );
  }
  await checkOutputFile(privateKeyPath, privateOutput);
  await checkOutputFile(publicKeyPath, publicOutput);
  if (overwrite && existingPrivate) {
    await fs.unlink(privateKeyPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw new CloacinaSignError('WRITE_FAILED', `cannot replace ${privateKeyPath}: ${error.code ?? error}`, { cause: error });
    });
    await syncDirectory(dirname(privateKeyPath));
  }
  await writeFileAtomic(publicKeyPath, publicKeyToPem(keypair.publicKey), publicOutput);
  const written = await fs.stat(publicKeyPath);
  try {
    await writeFileAtomic(privateKeyPath, privateKeyToPem(keypair.privateKey), privateOutput);
  } catch (error) {
    // No private key: the public key just written would only mislead (and block a retry). Ours only.
    const now = await fs.stat(publicKeyPath).catch(() => undefined);
    if (now && now.dev === written.dev && now.ino === written.ino) await fs.unlink(publicKeyPath).catch(() => undefined);
    throw error;
  }
  return { privateKeyPath, publicKeyPath };
}

export interface PrivateKeyFileOptions {
  /** Read a key file that group or others can access (the CLI's --allow-insecure-key-file). */
  allowInsecureKeyFile?: boolean;
}

/** As ssh: a private key file must be accessible by its owner only. Checked on the descriptor that is read. */
export function refuseOpenPermissions(path: string, stat: FileOwnership): void {
  const mode = stat.mode & 0o7777;
  if ((mode & 0o077) === 0) return;
  throw new CloacinaSignError(
    'INSECURE_KEY_FILE',
    `permissions ${mode.toString(8).padStart(4, '0')} for '${path}' are too open: a private key file must not be accessible by group or others (chmod 600 '${path}', or pass --allow-insecure-key-file)`,
  );
}

/** The raw 32-byte seed from a key file (PKCS#8 PEM or DER, or raw), refused when group or others can access the file. */
export async function readPrivateKeyFile(path: string, options: PrivateKeyFileOptions = {}): Promise<Buffer> {
  const check = options.allowInsecureKeyFile ? undefined : (stat: FileOwnership) => refuseOpenPermissions(path, stat);
  return importPrivateKey(await readSmallFile(path, MAX_KEY_FILE_BYTES, 'key file', check));
}

export async function readPublicKeyFile(path: string): Promise<Buffer> {
  return importPublicKey(await readSmallFile(path, MAX_KEY_FILE_BYTES, 'key file'));
}
