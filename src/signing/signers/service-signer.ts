// The signing service (`cloacina-sign serve`): the package is hashed here and only its digest travels; the
// key stays in the service. The service sets the signing time; its answer is checked before it is used.
import { SigningServiceClient, type SigningServiceClientOptions } from '../api-client';
import { digestsOf } from '../native-signing';
import type { Signer } from '../signer';

export interface ServiceSignerOptions {
  /** The service, as a client or as where to reach it. */
  service: SigningServiceClient | SigningServiceClientOptions;
  /** The database key (in the service) the token may sign with. */
  keyId: string;
  /** Version 1: the service also stores the signature (its id comes back as `signatureId`). */
  store?: boolean;
  /** @internal Wraps each request to the service (the CLI says, after a while, what it waits for). */
  waiting?: <T>(work: () => Promise<T>) => Promise<T>;
}

export interface ServiceSigner extends Signer {
  /**
   * Version-1 documents of many SHA-256 digests (lowercase hex), at most MAX_BATCH_SIGNATURES, in one
   * request: the service dates them and answers in the order asked. Each answer is checked before it is returned.
   */
  signDigests(sha256: readonly string[]): Promise<string[]>;
}

export function serviceSigner(options: ServiceSignerOptions): ServiceSigner {
  const client = options.service instanceof SigningServiceClient ? options.service : new SigningServiceClient(options.service);
  const waiting = options.waiting ?? ((work) => work());
  return {
    async sign({ package: pkg, document }) {
      const digests = await digestsOf(pkg, document);
      if (document.version === 1) {
        const packageHash = digests.sha256 as string;
        const answer = await waiting(() => client.sign(options.keyId, packageHash, { store: options.store }));
        return { document: answer.signature.toString(), signatureId: answer.signatureId };
      }
      const { statement } = document;
      const signed = await waiting(() =>
        client.signStatement(options.keyId, digests[statement.digestAlgorithm] as string, {
          name: statement.name,
          version: statement.version,
          ...(statement.organization !== undefined ? { organization: statement.organization } : {}),
          size: digests.size ?? 0,
          digestAlgorithm: statement.digestAlgorithm,
          ...(statement.expiresAt !== undefined ? { expiresAt: statement.expiresAt } : {}),
        }),
      );
      return { document: signed.document };
    },
    async signDigests(sha256) {
      const answers = await waiting(() => client.signBatch(options.keyId, sha256));
      return answers.map((answer) => answer.signature.toString());
    },
  };
}
