// What `package sign` writes and prints, whoever signs (a key file, a database key, the signing service).
import type { OutputOptions as FileOutputOptions } from '../../files';
import { DetachedSignature, type SignatureInfo } from '../../formats/v1';
import type { StatementOptions } from '../../signing/statement';
import type { PackageStatement } from '../../formats/v2';
import { type OutputOptions, printData, say } from '../output';

/**
 * Where `package sign` may write: not over an existing file without --force, and never (not even with
 * it) over the package being signed, a private key file, or `protect`.
 */
export function signatureOutput(packagePath: string, options: { force?: boolean }, protect: { path: string; what: string }[] = []): FileOutputOptions {
  return { overwrite: Boolean(options.force), protectPrivateKeys: true, protect: [{ path: packagePath, what: 'the package being signed' }, ...protect] };
}

/**
 * The signature file `package sign` writes: --output, else `<package>.sig`. A version-1 signature kept in
 * the database (--store) is written only with --output; a statement always travels as its file.
 */
export function signaturePathFor(packagePath: string, options: { output?: string; store?: boolean }, statement?: StatementOptions): string | undefined {
  return options.output ?? (options.store && !statement ? undefined : DetachedSignature.defaultPath(packagePath));
}

/**
 * What `package sign --key-id` (version 1) prints, the same whether this process or the signing service
 * (--api-url) signed: the human line on stderr, the signature file (else the stored signature's id, else the
 * digest) on stdout, or one JSON object.
 */
export function reportSignedWithKeyId(
  packagePath: string,
  signaturePath: string | undefined,
  signed: SignatureInfo & { keyId: string; signatureId?: string },
  options: OutputOptions,
): void {
  say(
    `Signed ${packagePath} with key ${signed.keyId} (${signed.keyFingerprint})${signed.signatureId ? ', stored' : ''}${signaturePath ? `, wrote ${signaturePath}` : ''}`,
  );
  printData(
    options,
    {
      ...(signed.signatureId ? { id: signed.signatureId } : {}),
      signaturePath: signaturePath ?? null,
      packageHash: signed.packageHash,
      keyFingerprint: signed.keyFingerprint,
      fingerprint: signed.keyFingerprint,
      keyId: signed.keyId,
      signedAt: signed.signedAt,
      stored: Boolean(signed.signatureId),
    },
    signaturePath ?? signed.signatureId ?? signed.packageHash,
  );
}

/** The `package sign --json` object of a version-2 signature. */
export function statementSigned(
  signaturePath: string,
  signed: { statement: PackageStatement; keyFingerprint: string },
  keyId?: string,
): Record<string, unknown> {
  return {
    signaturePath,
    format: 'v2',
    packageHash: signed.statement.digest,
    digestAlgorithm: signed.statement.digestAlgorithm,
    keyFingerprint: signed.keyFingerprint,
    ...(keyId ? { keyId } : {}),
    statement: signed.statement,
  };
}
