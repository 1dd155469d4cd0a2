// `cloacina-sign keys ...`
import { Command } from 'commander';
import { CloacinaSignError } from '../../errors';
import { writeKeypairFiles } from '../../keys/key-files';
import { generateKeypair } from '../../keys/keypair';
import { OutputOptions, printData, runAction, say } from '../output';

interface GenerateOptions extends OutputOptions {
  name: string;
  output?: string;
  force?: boolean;
}

async function generateToFiles(options: GenerateOptions): Promise<void> {
  if (!options.output) throw new CloacinaSignError('USAGE', 'keys generate needs --output <dir/key.pem>');
  const keypair = generateKeypair();
  const paths = await writeKeypairFiles(keypair, options.output, { force: options.force });
  say(`Generated key "${options.name}": private key ${paths.privateKeyPath} (mode 0600), public key ${paths.publicKeyPath}`);
  printData(options, { fingerprint: keypair.fingerprint, ...paths }, keypair.fingerprint);
}

export function keysCommand(): Command {
  const keys = new Command('keys').description('generate and manage Ed25519 signing keys');
  keys
    .command('generate')
    .description('generate an Ed25519 key pair: a PKCS#8 private key (0600) and an SPKI public key beside it')
    .requiredOption('--name <name>', 'a name for the key')
    .option('--output <path>', 'where to write the private key (the public key goes to <path without .pem>.pub.pem)')
    .option('--force', 'overwrite existing key files')
    .option('--json', 'print one JSON object on stdout')
    .action((options: GenerateOptions) => runAction(options, () => generateToFiles(options)));
  return keys;
}
