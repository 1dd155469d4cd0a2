// The version-1 detached signature document, shared with Cloacina (crates/core/src/signature.rs). Parsing is strict and done in Rust.
import { type OutputOptions, writeFileAtomic } from '../files';
import { native, type SignatureFields } from '../native';

/** What a signing produced: everything a detached signature or a database row needs. */
export interface SignatureInfo {
  /** Lowercase hex SHA-256 of the package. */
  packageHash: string;
  /** Lowercase hex SHA-256 of the signer's raw public key. */
  keyFingerprint: string;
  /** Standard base64 of the 64-byte Ed25519 signature over the raw 32-byte digest. */
  signature: string;
  /** RFC 3339 UTC. */
  signedAt: string;
}

export class DetachedSignature implements SignatureInfo {
  readonly version = 1;
  readonly algorithm = 'ed25519';
  readonly packageHash: string;
  readonly keyFingerprint: string;
  readonly signature: string;
  readonly signedAt: string;

  private constructor(fields: SignatureFields) {
    this.packageHash = fields.packageHash;
    this.keyFingerprint = fields.keyFingerprint;
    this.signature = fields.signature;
    this.signedAt = fields.signedAt;
  }

  /** `libworkflow.so` -> `libworkflow.so.sig`. */
  static defaultPath(packagePath: string): string {
    return `${packagePath}.sig`;
  }

  /** Validates every field as the reader would, so we never write what we could not read back. */
  static fromSignatureInfo(info: SignatureInfo): DetachedSignature {
    return DetachedSignature.parse(native.formatSignature(info));
  }

  static parse(document: string | Uint8Array): DetachedSignature {
    const bytes = typeof document === 'string' ? Buffer.from(document, 'utf8') : Buffer.from(document);
    return new DetachedSignature(native.parseSignature(bytes));
  }

  /**
   * Reads a signature file off the JS thread (at most 64 KiB; a FIFO or a device is refused, never read):
   * SignatureNotFound when there is none, MalformedSignature (naming the file) when it is not valid.
   */
  static async readFromFile(path: string): Promise<DetachedSignature> {
    return DetachedSignature.parse((await native.readSignatureFile(path)).canonical);
  }

  /**
   * Atomic (see writeFileAtomic): readers see no signature, the old one or the new one, never a partial
   * file. An existing file is replaced unless `overwrite` is false (the CLI passes its --force); a file
   * holding a private key, or one of `protect` (the package being signed), is never written over.
   */
  async writeToFile(path: string, options: OutputOptions = {}): Promise<void> {
    await writeFileAtomic(path, `${this.toString()}\n`, { ...options, overwrite: options.overwrite ?? true, mode: 0o644 });
  }

  /** The canonical compact JSON document. */
  toString(): string {
    return native.formatSignature(this);
  }

  toJSON(): Record<string, unknown> {
    return JSON.parse(this.toString());
  }
}
