// The APX artifact-signing runbook (Cloacina's "Artifact Signing - APX Platform"), its
// "Rejection Scenarios" as written, checked against the runner's loader configured as the runbook's
// verifier is: strict mode (requireSignatures), an allowed-versions list, a 10 MB size limit, WASM
// artifacts, a cosign P-256 public key. Also its metrics: unsigned artifacts blocked and unknown versions.
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { createPackageLoader, generateKeypair, type PackageLoader, publicKeyTrust, writeKeypairFiles, writeSignatureDocument } from '../src';
import { signStatement } from '../src/signing/sign';
import { buildWasm } from './fixtures';
import { type EcKey, ecKey, signDer, writeCosignSignature } from './fixtures/cosign-key';
import { rejectsWith, tempDir } from './helpers';

const TEN_MB = 10 * 1024 * 1024;

describe("the APX runbook's rejection scenarios", () => {
  const dir = tempDir();
  let cosign: EcKey;
  let statementKeyPub: string;
  let statementKey: Uint8Array;
  let built = 0;
  after(() => dir.cleanup());

  before(async () => {
    cosign = ecKey(dir.join('cosign'));
    const keypair = generateKeypair();
    statementKey = keypair.privateKey;
    statementKeyPub = (await writeKeypairFiles(keypair, dir.join('release.pem'))).publicKeyPath;
  });

  /** The runbook's VerificationConfig: AllowedVersions ["1.0.0", "1.1.0"], StrictMode true; size limit 10 MB. */
  function verifier(metrics?: Registry, keys: string[] = [cosign.publicKey]): PackageLoader {
    return createPackageLoader({
      trust: publicKeyTrust(keys),
      requireSignatures: true,
      maxPackageBytes: TEN_MB,
      audit: [],
      metrics,
    });
  }
  const artifact = () => buildWasm(dir.join(`policy-${built++}.wasm`));
  const cosignSign = (file: string) => writeCosignSignature(file, signDer(file, cosign));
  const counter = async (registry: Registry, name: string, labels: Record<string, string>) => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
    const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    return value?.value ?? 0;
  };

  it('when the artifact is signed with the cosign key and nothing is wrong, it loads (the baseline the scenarios depart from)', async () => {
    const wasm = artifact();
    cosignSign(wasm);
    expect(await verifier().compileWasm(wasm)).to.be.instanceOf(WebAssembly.Module);
  });

  it('when the signature file is missing (strict mode), it is rejected with SIGNATURE_NOT_FOUND and counted as an unsigned artifact blocked', async () => {
    const registry = new Registry();
    await rejectsWith(verifier(registry).compileWasm(artifact()), 'SIGNATURE_NOT_FOUND');
    expect(await counter(registry, 'cloacina_sign_verifications_total', { outcome: 'failure', reason: 'SIGNATURE_NOT_FOUND' })).to.equal(1);
  });

  it('when signature verification fails (tampering detected), it is rejected (INVALID_SIGNATURE: a cosign signature carries no digest)', async () => {
    const wasm = artifact();
    cosignSign(wasm);
    buildWasm(wasm, 43);
    await rejectsWith(verifier().compileWasm(wasm), 'INVALID_SIGNATURE');
  });

  it('when the policy version is not in the allowed list, it is rejected with VERSION_NOT_ALLOWED and counted as an unknown version', async () => {
    const wasm = artifact();
    const signed = await signStatement(wasm, statementKey, { name: 'pb-pay-v1', version: '2.0.0' });
    await writeSignatureDocument(`${wasm}.sig`, signed.document);
    const registry = new Registry();
    const loader = createPackageLoader({
      trust: publicKeyTrust([statementKeyPub]),
      requireSignatures: true,
      maxPackageBytes: TEN_MB,
      audit: [],
      metrics: registry,
      policy: { allowedVersions: ['1.0.0', '1.1.0'] },
    });
    await rejectsWith(loader.compileWasm(wasm), 'VERSION_NOT_ALLOWED');
    expect(await counter(registry, 'cloacina_sign_verifications_total', { outcome: 'failure', reason: 'VERSION_NOT_ALLOWED' })).to.equal(1);
  });

  it('when an allowed-versions list meets a cosign signature (which signs no version), it is rejected with V2_REQUIRED, never let through', async () => {
    const wasm = artifact();
    cosignSign(wasm);
    const loader = createPackageLoader({
      trust: publicKeyTrust([cosign.publicKey]),
      requireSignatures: true,
      audit: [],
      policy: { allowedVersions: ['1.0.0', '1.1.0'] },
    });
    await rejectsWith(loader.compileWasm(wasm), 'V2_REQUIRED');
  });

  it('when the artifact is too large (> 10 MB), it is rejected with PACKAGE_TOO_LARGE', async () => {
    const big = dir.join('big.wasm');
    writeFileSync(big, Buffer.concat([Buffer.from('\0asm\x01\0\0\0', 'latin1'), Buffer.alloc(TEN_MB)]));
    cosignSign(big);
    await rejectsWith(verifier().compileWasm(big), 'PACKAGE_TOO_LARGE');
  });

  it('when the WASM magic bytes are invalid, it is rejected with NOT_A_WASM_MODULE', async () => {
    const fake = dir.join('fake.wasm');
    writeFileSync(fake, 'not wasm at all');
    cosignSign(fake);
    await rejectsWith(verifier().compileWasm(fake), 'NOT_A_WASM_MODULE');
  });

  it('when the public key is not available, nothing is verified: the verifier fails with UNREADABLE_FILE', async () => {
    const wasm = artifact();
    cosignSign(wasm);
    await rejectsWith((async () => verifier(undefined, [dir.join('missing-cosign.pub')]).compileWasm(wasm))(), 'UNREADABLE_FILE');
  });
});
