// Key files on disk: private keys are written 0600 and never silently overwritten.
import { promises as fs } from 'node:fs';
import { CloacinaSignError } from '../errors';
import { readSmallFile, writeFileAtomic } from '../files';
import { importPrivateKey, importPublicKey, type Keypair, privateKeyToPem, publicKeyToPem } from './keypair';

const MAX_KEY_FILE_BYTES = 64 * 1024;

/** `<dir>/key.pem` -> `<dir>/key.pub.pem`; any other name gets `.pub.pem` appended. */
export function publicKeyPathFor(privateKeyPath: string): string {
  return privateKeyPath.endsWith('.pem') ? `${privateKeyPath.slice(0, -4)}.pub.pem` : `${privateKeyPath}.pub.pem`;
}

export async function writeKeypairFiles(
  keypair: Keypair,
  privateKeyPath: string,
  options: { force?: boolean } = {},
): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  const publicKeyPath = publicKeyPathFor(privateKeyPath);
  if (!options.force) {
    for (const path of [privateKeyPath, publicKeyPath]) {
      if (await exists(path)) throw new CloacinaSignError('OUTPUT_EXISTS', `${path} already exists (use --force to overwrite)`);
    }
  }
  await writeFileAtomic(privateKeyPath, privateKeyToPem(keypair.privateKey), 0o600);
  await writeFileAtomic(publicKeyPath, publicKeyToPem(keypair.publicKey), 0o644);
  return { privateKeyPath, publicKeyPath };
}

export async function readPrivateKeyFile(path: string): Promise<Buffer> {
  return importPrivateKey(readSmallFile(path, MAX_KEY_FILE_BYTES, 'key file'));
}

export async function readPublicKeyFile(path: string): Promise<Buffer> {
  return importPublicKey(readSmallFile(path, MAX_KEY_FILE_BYTES, 'key file'));
}

async function exists(path: string): Promise<boolean> {
  return fs.lstat(path).then(
    () => true,
    () => false,
  );
}
