// Ed25519 keys as raw bytes, DER or PEM; every import validates (weak keys are refused). Public keys may
// also be ECDSA P-256 (cosign.pub: SPKI PEM or DER), for verification only: signing is Ed25519.
import { native } from '../native';

/** A key as raw 32 bytes, DER bytes, or PEM text (SPKI for public keys, PKCS#8 for private keys). */
export type KeyInput = Uint8Array | string;

export interface Keypair {
  /** The raw 32-byte Ed25519 seed. A secret: never log it. */
  privateKey: Buffer;
  /** The raw 32-byte public key. */
  publicKey: Buffer;
  /** Lowercase hex SHA-256 of the raw public key. */
  fingerprint: string;
}

function bytes(key: KeyInput): Buffer {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}

export function generateKeypair(): Keypair {
  return native.generateKeypair();
}

/** The algorithm of a public key: Ed25519 (signs and verifies) or ECDSA P-256 (cosign keys; verifies only). */
export type KeyAlgorithm = 'ed25519' | 'ecdsa-p256';

/**
 * A public key in its stored form, from raw bytes, SPKI DER or SPKI PEM: the raw 32 bytes of an Ed25519
 * key, or the 91-byte SPKI DER of an ECDSA P-256 key (`cosign.pub`; uncompressed point on the curve).
 */
export function importPublicKey(key: KeyInput): Buffer {
  return native.publicKeyFromAny(bytes(key));
}

// The SPKI DER prefix of a P-256 key with an uncompressed point (id-ecPublicKey, prime256v1); 65 point bytes follow.
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/**
 * The algorithm of a public key in its stored form (what importPublicKey returns and trusted_keys holds):
 * 32 bytes are Ed25519, a 91-byte P-256 SPKI DER is ECDSA P-256. Anything else is read and classified in Rust.
 */
export function publicKeyAlgorithm(publicKey: KeyInput): KeyAlgorithm {
  const key = bytes(publicKey);
  if (key.length === 32) return 'ed25519';
  if (key.length === P256_SPKI_PREFIX.length + 65 && key.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)) return 'ecdsa-p256';
  return native.publicKeyAlgorithm(key) as KeyAlgorithm;
}

/** The raw 32-byte seed, from raw bytes, PKCS#8 DER or PKCS#8 PEM (v1 or v2). */
export function importPrivateKey(key: KeyInput): Buffer {
  return native.privateKeyFromAny(bytes(key));
}

export function publicKeyOf(privateKey: KeyInput): Buffer {
  return native.publicKeyOf(bytes(privateKey));
}

/** SPKI PEM (`BEGIN PUBLIC KEY`) of an Ed25519 or P-256 public key, readable by OpenSSL 3 and node:crypto. */
export function publicKeyToPem(publicKey: KeyInput): string {
  return native.publicKeyToPem(bytes(publicKey));
}

/** PKCS#8 v1 PEM (`BEGIN PRIVATE KEY`), readable by OpenSSL 3 and node:crypto. */
export function privateKeyToPem(privateKey: KeyInput): string {
  return native.privateKeyToPem(bytes(privateKey));
}

/** Lowercase hex SHA-256 of the key's stored form: the raw 32-byte Ed25519 key, or the SPKI DER of a P-256 key. */
export function publicKeyFingerprint(publicKey: KeyInput): string {
  return native.fingerprint(bytes(publicKey));
}
