// Ed25519 keys as raw bytes, DER or PEM; every import validates (weak keys are refused).
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

/** The raw 32-byte public key, from raw bytes, SPKI DER or SPKI PEM. */
export function importPublicKey(key: KeyInput): Buffer {
  return native.publicKeyFromAny(bytes(key));
}

/** The raw 32-byte seed, from raw bytes, PKCS#8 DER or PKCS#8 PEM (v1 or v2). */
export function importPrivateKey(key: KeyInput): Buffer {
  return native.privateKeyFromAny(bytes(key));
}

export function publicKeyOf(privateKey: KeyInput): Buffer {
  return native.publicKeyOf(bytes(privateKey));
}

/** SPKI PEM (`BEGIN PUBLIC KEY`), readable by OpenSSL 3 and node:crypto. */
export function publicKeyToPem(publicKey: KeyInput): string {
  return native.publicKeyToPem(bytes(publicKey));
}

/** PKCS#8 v1 PEM (`BEGIN PRIVATE KEY`), readable by OpenSSL 3 and node:crypto. */
export function privateKeyToPem(privateKey: KeyInput): string {
  return native.privateKeyToPem(bytes(privateKey));
}

export function publicKeyFingerprint(publicKey: KeyInput): string {
  return native.fingerprint(bytes(publicKey));
}
