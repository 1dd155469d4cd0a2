// A private key held by the caller: a key file's, or one in memory (raw, DER or PEM).
import { CloacinaSignError } from '../../errors';
import { importPublicKey, type KeyInput, publicKeyFingerprint } from '../../keys/keypair';
import { native } from '../../native';
import { signNatively } from '../native-signing';
import type { Signer } from '../signer';

export interface KeySignerOptions {
  /** The public key the private key must belong to: a mismatched key pair fails instead of publishing a useless signature. */
  publicKey?: KeyInput;
}

export function keySigner(privateKey: KeyInput, options: KeySignerOptions = {}): Signer {
  const key = typeof privateKey === 'string' ? Buffer.from(privateKey, 'utf8') : Buffer.from(privateKey);
  return {
    async sign(request) {
      const document = await signNatively(request, key);
      if (options.publicKey !== undefined) {
        const signedBy = native.parseSignatureDocument(Buffer.from(document)).keyFingerprint;
        if (publicKeyFingerprint(importPublicKey(options.publicKey)) !== signedBy) {
          throw new CloacinaSignError('INVALID_KEY', 'the public key does not belong to the private key');
        }
      }
      return { document };
    },
  };
}
