// node:crypto, loaded when first used. Loading it (with the stream modules it pulls in) is several ms of a
// process's start: a CLI command that never hashes or draws random bytes in JavaScript does without it.
import type * as NodeCrypto from 'node:crypto';

let loaded: typeof NodeCrypto | undefined;

export function nodeCrypto(): typeof NodeCrypto {
  loaded ??= require('node:crypto') as typeof NodeCrypto;
  return loaded;
}
