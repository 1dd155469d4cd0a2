// `audit verify --witness`: a checkpoint must carry cosignatures (c2sp.org/tlog-cosignature) by at least
// `threshold` of the given witness keys. A witness cosigns only checkpoints consistent with what it saw
// before, so a threshold of them rules out a log that showed this checkpoint to us and another to others.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { CloacinaSignError, errorForCode } from '../errors';
import { type ParsedCheckpoint, parseCheckpoint } from './checkpoint-note';

const COSIGNATURE_TYPE = 0x04;
/** The spec's bound on a cosignature's timestamp (2^63 - 1). */
const MAX_TIMESTAMP = 2n ** 63n - 1n;
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The 4-byte key ID of an Ed25519 cosigning key (signature type 0x04) under `name`. */
export function cosignatureKeyId(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from(name, 'utf8'), Buffer.from([0x0a, COSIGNATURE_TYPE]), publicKey]))
    .digest()
    .subarray(0, 4);
}

/** Throws unless the note is cosigned by `threshold` of the witness keys (raw Ed25519); returns how many cosigned. */
export function verifyWitnessCosignatures(note: string, witnessKeys: readonly Buffer[], threshold: number): number {
  for (const key of witnessKeys) {
    if (key.length !== 32) throw new CloacinaSignError('INVALID_KEY', 'a witness key must be an Ed25519 public key');
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > witnessKeys.length) {
    throw new CloacinaSignError('USAGE', `--witness-threshold must be from 1 to the number of --witness keys (${witnessKeys.length})`);
  }
  const checkpoint = parseCheckpoint(note);
  const cosigned = witnessKeys.filter((key) => hasValidCosignature(checkpoint, key)).length;
  if (cosigned < threshold) {
    throw errorForCode(
      'UNTRUSTED_SIGNER',
      `the checkpoint at size ${checkpoint.size} is cosigned by ${cosigned} of ${witnessKeys.length} witness(es); ${threshold} required`,
    );
  }
  return cosigned;
}

/** Whether `key` cosigned; a cosignature of that key that does not verify rejects the note (INVALID_SIGNATURE). */
function hasValidCosignature(checkpoint: ParsedCheckpoint, key: Buffer): boolean {
  const publicKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, key]), format: 'der', type: 'spki' });
  let found = false;
  for (const signature of checkpoint.signatures) {
    if (!cosignatureKeyId(signature.keyName, key).equals(signature.keyId)) continue;
    const valid =
      signature.signature.length === 72 &&
      signature.signature.readBigUInt64BE(0) <= MAX_TIMESTAMP &&
      verify(
        null,
        Buffer.from(`cosignature/v1\ntime ${signature.signature.readBigUInt64BE(0)}\n${checkpoint.text}`, 'utf8'),
        publicKey,
        signature.signature.subarray(8),
      );
    if (!valid) throw errorForCode('INVALID_SIGNATURE', `the cosignature of ${signature.keyName} on the checkpoint at size ${checkpoint.size} does not verify`);
    found = true;
  }
  return found;
}
