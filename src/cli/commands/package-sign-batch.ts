// `package sign a b c --key-id <id> --api-url <url>`: several packages signed through the signing service,
// 256 digests per request. Each package is hashed here (on the worker pool); a batch's .sig files are
// written only once the whole batch was signed, so a refused batch leaves no file of its own behind.
import { CloacinaSignError } from '../../errors';
import { checkOutputFile } from '../../files';
import { hashFile } from '../../hashing';
import { MAX_BATCH_SIGNATURES } from '../../signing/api-client';
import { printData, say } from '../output';
import { client, type ServiceOptions } from './service-client';
import { signatureOutput } from './sign-output';
import { DetachedSignature } from '../../formats/v1';
import { writeSignatureDocument } from '../../formats/v2';

export interface BatchSignOptions extends ServiceOptions {
  keyId: string;
  force?: boolean;
  json?: boolean;
}

export async function signSeveralThroughService(packagePaths: readonly string[], options: BatchSignOptions): Promise<void> {
  const service = await client(options);
  const { serviceSigner } = await import('../../signing/signers/service-signer');
  const signer = serviceSigner({ service, keyId: options.keyId });
  const outputs = packagePaths.map((packagePath) => ({
    packagePath,
    signaturePath: DetachedSignature.defaultPath(packagePath),
    output: signatureOutput(packagePath, options),
  }));
  // Before anything is hashed or signed: a refused output costs nothing.
  for (const { signaturePath, output } of outputs) await checkOutputFile(signaturePath, output);
  const signed: { package: string; signature: string; packageHash: string; keyFingerprint: string }[] = [];
  for (let start = 0; start < outputs.length; start += MAX_BATCH_SIGNATURES) {
    const batch = outputs.slice(start, start + MAX_BATCH_SIGNATURES);
    const digests = await Promise.all(batch.map(({ packagePath }) => hashFile(packagePath)));
    let documents: string[];
    try {
      documents = await signer.signDigests(digests);
    } catch (error) {
      const done = signed.length === 0 ? 'no package was signed' : `signed before the failure: ${signed.map((item) => item.package).join(', ')}`;
      throw new CloacinaSignError(error instanceof CloacinaSignError ? error.code : 'API_ERROR', `${(error as Error).message} (${done})`, { cause: error });
    }
    for (const [index, { packagePath, signaturePath, output }] of batch.entries()) {
      const document = documents[index];
      await writeSignatureDocument(signaturePath, document, output);
      const { packageHash, keyFingerprint } = DetachedSignature.parse(document);
      signed.push({ package: packagePath, signature: signaturePath, packageHash, keyFingerprint });
      say(`Signed ${packagePath} with key ${options.keyId} through ${service.where}: ${signaturePath}`);
    }
  }
  printData(options, { keyId: options.keyId, signed }, signed.map((item) => item.signature).join('\n'));
}
