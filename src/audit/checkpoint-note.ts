// A checkpoint of the audit hash chain, as a signed note (c2sp.org/signed-note, c2sp.org/tlog-checkpoint):
//
//   cloacina-sign/audit/<log id>          origin: names this database's audit log
//   <rows>                                the chain's length at the checkpoint (its head seq), decimal
//   <base64 of the 32-byte head hash>     the row_hash of that row (32 zero bytes for an empty chain)
//   timestamp <YYYY-MM-DDTHH:MM:SSZ>      when it was issued (an extension line)
//
//   — <key name> base64(key ID (4 bytes) || Ed25519 signature of the text above, newline included)
//
// The key name is the origin; key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]. The
// text is signed inside Rust (crates/core/src/signed_note.rs), which signs nothing but such texts; here it is
// written, read strictly and verified.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { errorForCode } from '../errors';
import { type ChainHead, isHash } from './chain';

export const ORIGIN_PREFIX = 'cloacina-sign/audit/';
const TIMESTAMP_PREFIX = 'timestamp ';
const SIGNATURE_PREFIX = '\u2014 ';
/** Largest note read: a checkpoint is a few lines and a few signatures. */
export const MAX_NOTE_BYTES = 64 * 1024;
/** The signed-note limit every verifier accepts at least. */
const MAX_SIGNATURES = 16;
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface CheckpointBody {
  origin: string;
  /** How many rows the chain had: the seq of its head. */
  size: number;
  /** The head's row_hash, lowercase hex. */
  headHash: string;
  /** When it was issued (UTC, whole seconds). */
  timestamp: string;
}

export interface NoteSignature {
  keyName: string;
  keyId: Buffer;
  signature: Buffer;
}

export interface ParsedCheckpoint extends CheckpointBody {
  /** The signed text, final newline included. */
  text: string;
  signatures: NoteSignature[];
}

/** The note text of a checkpoint (what is signed). */
export function checkpointText(body: CheckpointBody): string {
  return `${body.origin}\n${body.size}\n${Buffer.from(body.headHash, 'hex').toString('base64')}\n${TIMESTAMP_PREFIX}${body.timestamp}\n`;
}

/** The 4-byte signed-note key ID of an Ed25519 key (signature type 0x01) under `name`. */
export function noteKeyId(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from(name, 'utf8'), Buffer.from([0x0a, 0x01]), publicKey]))
    .digest()
    .subarray(0, 4);
}

function hasForbiddenCharacter(note: string): boolean {
  for (let i = 0; i < note.length; i += 1) {
    const code = note.charCodeAt(i);
    if ((code < 0x20 && code !== 0x0a) || code === 0xfffd) return true;
  }
  return false;
}

const malformed = (message: string) => errorForCode('MALFORMED_SIGNATURE', `not a checkpoint note: ${message}`);

/** Reads a checkpoint note strictly: MALFORMED_SIGNATURE for anything else. The signatures are not checked here. */
export function parseCheckpoint(note: string): ParsedCheckpoint {
  if (Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES) throw malformed(`longer than ${MAX_NOTE_BYTES} bytes`);
  // Control characters other than newline are not allowed anywhere in a note (U+FFFD: the bytes were not UTF-8).
  if (hasForbiddenCharacter(note)) throw malformed('it holds control characters or bytes that are not UTF-8');
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw malformed('no blank line before the signatures, or no final newline');
  const text = note.slice(0, split + 1);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 4) throw malformed('its text must be 4 lines: origin, size, head hash, timestamp');
  const [origin, sizeLine, hashLine, timestampLine] = lines;
  if (!origin.startsWith(ORIGIN_PREFIX) || /[\s+]/u.test(origin) || origin.length === ORIGIN_PREFIX.length) {
    throw malformed(`the origin ${JSON.stringify(origin)} is not ${ORIGIN_PREFIX}<log id>`);
  }
  if (!/^(0|[1-9][0-9]{0,14})$/.test(sizeLine)) throw malformed(`the size ${JSON.stringify(sizeLine)} is not a decimal number without leading zeros`);
  const hash = Buffer.from(hashLine, 'base64');
  if (hash.length !== 32 || hash.toString('base64') !== hashLine) throw malformed('the head hash is not the base64 of 32 bytes');
  if (!timestampLine.startsWith(TIMESTAMP_PREFIX) || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(timestampLine.slice(TIMESTAMP_PREFIX.length))) {
    throw malformed('the last line must be "timestamp YYYY-MM-DDTHH:MM:SSZ"');
  }
  const signatureLines = note.slice(split + 2, -1).split('\n');
  if (signatureLines.length > MAX_SIGNATURES) throw malformed(`more than ${MAX_SIGNATURES} signatures`);
  const signatures = signatureLines.map((line): NoteSignature => {
    const match = /^\u2014 ([^\s+]+) ([A-Za-z0-9+/]+={0,2})$/u.exec(line);
    const bytes = match ? Buffer.from(match[2], 'base64') : undefined;
    if (!match || !bytes || bytes.length < 5 || bytes.toString('base64') !== match[2]) throw malformed(`${JSON.stringify(line)} is not a signature line`);
    return { keyName: match[1], keyId: bytes.subarray(0, 4), signature: bytes.subarray(4) };
  });
  const headHash = hash.toString('hex');
  if (!isHash(headHash)) throw malformed('the head hash is not 32 bytes');
  return { origin, size: Number(sizeLine), headHash, timestamp: timestampLine.slice(TIMESTAMP_PREFIX.length), text, signatures };
}

/** A signed note: its text, a blank line, a signature line. */
export function signedNote(text: string, signatureLine: string): string {
  if (!signatureLine.startsWith(SIGNATURE_PREFIX) || !signatureLine.endsWith('\n')) throw new Error('not a signature line');
  return `${text}\n${signatureLine}`;
}

/**
 * Checks the checkpoint's signatures against trusted Ed25519 keys (raw 32 bytes), as signed-note verifiers
 * must: signatures of unknown keys are ignored, one of a trusted key that does not verify rejects the note
 * (INVALID_SIGNATURE), and at least one must verify (UNTRUSTED_SIGNER otherwise). Returns the keys that signed.
 */
export function verifyCheckpointSignatures(checkpoint: ParsedCheckpoint, trustedKeys: readonly Buffer[]): Buffer[] {
  const signers: Buffer[] = [];
  for (const key of trustedKeys) {
    const publicKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, key]), format: 'der', type: 'spki' });
    for (const signature of checkpoint.signatures) {
      if (!noteKeyId(signature.keyName, key).equals(signature.keyId)) continue;
      if (signature.signature.length !== 64 || !verify(null, Buffer.from(checkpoint.text, 'utf8'), publicKey, signature.signature)) {
        throw errorForCode('INVALID_SIGNATURE', `the signature of ${signature.keyName} on the checkpoint at size ${checkpoint.size} does not verify`);
      }
      signers.push(key);
    }
  }
  if (signers.length === 0) {
    throw errorForCode('UNTRUSTED_SIGNER', `the checkpoint at size ${checkpoint.size} (${checkpoint.origin}) is signed by no trusted key`);
  }
  return signers;
}

/** The chain head a checkpoint records. */
export function headOf(checkpoint: CheckpointBody): ChainHead {
  return { seq: checkpoint.size, hash: checkpoint.headHash };
}
