// The addon the test run builds with the binding's `test-hooks` feature (`npm run build:test-addon`,
// part of `pretest`) into target/test-addon: test support that the published addon leaves out.
import { join } from 'node:path';
import { typed } from '../src/native';
import { ROOT } from './helpers';

export const TEST_ADDON = join(ROOT, 'target/test-addon/cloacina-sign.node');

/** One Rust error variant as it crosses into JS: `[code] message`, split. */
export interface ErrorSample {
  variant: string;
  code: string;
  message: string;
}

/** What the `test-hooks` feature adds (binding/error_samples.rs, `verify_message` in binding/keys.rs). */
interface TestHooks {
  errorSamples(): ErrorSample[];
  throwErrorSample(index: number): void;
  verifyMessage(publicKey: Buffer, message: Buffer, signature: Buffer): void;
}

function loadTestAddon(): TestHooks {
  try {
    return require(TEST_ADDON);
  } catch (error) {
    throw new Error(`the test addon ${TEST_ADDON} did not load: build it with npm run build:test-addon`, { cause: error });
  }
}

const addon = loadTestAddon();

/** The test hooks, with errors typed as the package types the published addon's. */
export const testHooks = {
  /** One error of every Rust variant. */
  errorSamples: (): ErrorSample[] => addon.errorSamples(),
  /** Throws sample `index` exactly as a failing binding call throws. */
  throwErrorSample: typed(addon.throwErrorSample),
  /** Strict Ed25519 verification of an arbitrary message (the conformance vectors). */
  verifyMessage: typed(addon.verifyMessage),
};
