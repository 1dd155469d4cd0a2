// `cloacina-sign kek ...`: the key-encryption key itself: make it in a PKCS#11 token, print its public id.
// Neither prints the KEK, the PIN or anything derived from them other than the id.
import { Command } from 'commander';
import { isTokenKek, kekId, resolveKek, tokenKekSpec } from '../../keys/kek';
import { native } from '../../native';
import type { DatabaseOptions } from '../context';
import { withKekOptions } from '../context';
import { type OutputOptions, printData, runAction, say } from '../output';

interface KekOptions extends OutputOptions, Pick<DatabaseOptions, 'kekFile' | 'allowInsecureKeyFile'> {}

async function create(options: KekOptions & { pkcs11: string }): Promise<void> {
  const spec = tokenKekSpec(options.pkcs11, { allowInsecureKeyFile: options.allowInsecureKeyFile });
  const made = await native.pkcs11CreateKek(spec);
  say(
    made.created
      ? `Created the KEK "${spec.objectLabel}" in token "${spec.tokenLabel}" (AES-256, sensitive, not extractable): KEK id ${made.kekId}`
      : `The token "${spec.tokenLabel}" already holds a sensitive, non-extractable AES-256 key "${spec.objectLabel}": KEK id ${made.kekId}`,
  );
  printData(options, { created: made.created, kekId: made.kekId, token: spec.tokenLabel, object: spec.objectLabel }, made.kekId);
}

async function id(options: KekOptions): Promise<void> {
  const kek = await resolveKek(options);
  const source = isTokenKek(kek) ? 'pkcs11' : options.kekFile !== undefined || process.env.CLOACINA_KEY_ENCRYPTION_KEY_FILE ? 'file' : 'env';
  printData(options, { kekId: kekId(kek), source }, kekId(kek));
}

export function kekCommand(): Command {
  const kek = new Command('kek').description('the key-encryption key: create it in a PKCS#11 token, print the id of the configured one');
  kek
    .command('create')
    .description('make the KEK in a PKCS#11 token: an AES-256 secret key, sensitive and not extractable (an existing extractable object is refused)')
    .requiredOption('--pkcs11 <uri>', 'pkcs11:token=<label>;object=<label>?module-path=<module>[&pin-source=file:<path>] (or the PIN in CLOACINA_PKCS11_PIN)')
    .option('--allow-insecure-key-file', 'read a PIN file that group or others can access (refused by default)')
    .option('--json', 'print JSON on stdout')
    .action((options: KekOptions & { pkcs11: string }) => runAction(options, () => create(options)));
  withKekOptions(
    kek
      .command('id')
      .description('print the id of the configured KEK (CLOACINA_KEY_ENCRYPTION_KEY, CLOACINA_KEY_ENCRYPTION_KEY_FILE/--kek-file or CLOACINA_KEK_PKCS11)')
      .option('--json', 'print JSON on stdout'),
  ).action((options: KekOptions) => runAction(options, () => id(options)));
  return kek;
}
