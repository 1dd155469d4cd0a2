// One error contract from Rust to TypeScript: every Rust error variant, thrown by the binding exactly as
// a failing call throws it, arrives as the typed error of its code, with its message and its cause.
import { expect } from 'chai';
import { CloacinaSignError } from '../src';
import { PolicyViolation, VerificationFailure } from '../src/errors';
import { exitCodeFor } from '../src/cli/output';
import { ERROR_CODES, VERIFICATION_FAILURE_CODES } from '../src/error-codes';
import { testHooks } from './test-addon';

function caught(index: number): unknown {
  try {
    testHooks.throwErrorSample(index);
  } catch (error) {
    return error;
  }
  throw new Error(`sample ${index} did not throw`);
}

describe('the error contract between Rust and TypeScript', () => {
  const samples = testHooks.errorSamples();

  it('when the binding lists its samples, it covers every Rust error variant', () => {
    const variants = new Set(samples.map((sample) => sample.variant));
    for (const variant of [
      'CoreError::UnreadableFile',
      'CoreError::TamperedPackage',
      'CoreError::PolicyRefused',
      'LoadError::Rejected',
      'LoadError::UnsafeDependency',
      'TaskError::Failed',
    ]) {
      expect(variants, variant).to.include(variant);
    }
    expect(samples.length).to.be.greaterThan(25);
  });

  it('when a code crosses from Rust, it is one of the codes the generated list holds', () => {
    for (const sample of samples) expect(ERROR_CODES as readonly string[], sample.variant).to.include(sample.code);
  });

  it('when each sample is thrown, it arrives as the typed error of its code, with its message', () => {
    samples.forEach((sample, index) => {
      const error = caught(index);
      expect(error, sample.variant).to.be.instanceOf(CloacinaSignError);
      const typed = error as CloacinaSignError;
      expect(typed.code, sample.variant).to.equal(sample.code);
      expect(typed.message, sample.variant).to.equal(sample.message);
      const failure = (VERIFICATION_FAILURE_CODES as readonly string[]).includes(sample.code);
      expect(typed instanceof VerificationFailure, `${sample.variant} is a verification failure: ${failure}`).to.equal(failure);
      expect(exitCodeFor(typed), sample.variant).to.equal(failure ? 1 : sample.code.startsWith('TASK_') ? 3 : 2);
    });
  });

  it('when a policy refuses a package, the error is a PolicyViolation, a kind of VerificationFailure', () => {
    const index = samples.findIndex((sample) => sample.code === 'ROLLBACK_REFUSED');
    expect(caught(index)).to.be.instanceOf(PolicyViolation).and.to.be.instanceOf(VerificationFailure);
  });
});
