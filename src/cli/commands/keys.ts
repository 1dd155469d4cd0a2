// `cloacina-sign keys ...`: offline key files (--output) or sealed keys in the database (--org).
import { Command, InvalidArgumentError } from 'commander';
import { isKeyPurpose, KEY_PURPOSES, type KeyPurpose } from '../../db/keys';
import { CloacinaSignError } from '../../errors';
import { writeKeypairFiles } from '../../keys/key-files';
import { generateKeypair } from '../../keys/keypair';
import { checkName } from '../../names';
import { type DatabaseOptions, withDbOptions, withKekOptions } from '../context';
import { type OutputOptions, printData, runAction, say } from '../output';

// The database commands' code is loaded on use (see ../context).
const keysDb = () => import('./keys-db');

interface GenerateOptions extends OutputOptions, DatabaseOptions {
  name: string;
  output?: string;
  org?: string;
  force?: boolean;
  purpose?: KeyPurpose;
}

function keyPurpose(value: string): KeyPurpose {
  if (!isKeyPurpose(value)) throw new InvalidArgumentError(`must be one of ${KEY_PURPOSES.join(', ')}`);
  return value;
}

async function generateToFiles(options: GenerateOptions): Promise<void> {
  if (!options.output) throw new CloacinaSignError('USAGE', 'keys generate needs --output <dir/key.pem> or --org <org>');
  // The name is only printed here, never stored, but it follows the rule of every name (it reaches a terminal).
  const name = checkName(options.name, 'a key name');
  const keypair = generateKeypair();
  const paths = await writeKeypairFiles(keypair, options.output, { force: options.force });
  say(`Generated key "${name}": private key ${paths.privateKeyPath} (mode 0600), public key ${paths.publicKeyPath}`);
  printData(options, { fingerprint: keypair.fingerprint, ...paths }, keypair.fingerprint);
}

async function generate(options: GenerateOptions): Promise<void> {
  if (options.org && options.output) throw new CloacinaSignError('USAGE', 'keys generate takes --output (a key file) or --org (a database key), not both');
  if (options.org) return (await keysDb()).generateInDatabase({ ...options, org: options.org, purpose: options.purpose ?? 'package' });
  if (options.purpose) throw new CloacinaSignError('USAGE', 'keys generate --purpose is for a database key (--org); a key file signs packages');
  return generateToFiles(options);
}

export function keysCommand(): Command {
  const keys = new Command('keys').description('generate and manage Ed25519 signing keys, and trusted keys (Ed25519, or ECDSA P-256 from cosign)');
  withDbOptions(
    withKekOptions(keys.command('generate'))
      .description('generate an Ed25519 key pair: into files (--output) or sealed under the KEK in the database (--org)')
      .requiredOption('--name <name>', 'a name for the key')
      .option(
        '--output <path>',
        'where to write the private key, mode 0600 (the public key goes first to <path without .pem>.pub.pem, so an interrupted run never leaves a private key alone)',
      )
      .option(
        '--org <org>',
        'store the key in the database for this organization (id or name); needs the KEK (CLOACINA_KEY_ENCRYPTION_KEY, --kek-file or CLOACINA_KEK_PKCS11)',
      )
      .option(
        '--purpose <purpose>',
        'with --org: what the key signs, package (packages and revocation lists; the default) or audit-checkpoint (checkpoints of the audit chain only)',
        keyPurpose,
      )
      .option('--force', 'replace existing key files (the old private key is deleted first; the public key never replaces a file holding a private key)'),
  ).action((options: GenerateOptions) => runAction(options, () => generate(options)));
  withDbOptions(
    keys
      .command('export <key-id>')
      .description('print the public half of a signing or trusted key')
      .option(
        '--format <format>',
        'pem, or raw: the stored bytes, 32 for Ed25519 and the SPKI DER for ECDSA P-256 (to stdout unless it is a terminal, or to --output; hex with --json)',
        'pem',
      )
      .option('--output <file>', 'write it to this file (stdout then gets its fingerprint); an existing file is kept unless --force')
      .option('--force', 'with --output: replace an existing file (never one holding a private key)'),
  ).action((keyId: string, options: DatabaseOptions & { format: string; output?: string; force?: boolean }) =>
    runAction(options, async () => (await keysDb()).exportKey(keyId, options)),
  );
  withDbOptions(
    keys
      .command('trust')
      .description("trust a public key for an organization's verifications")
      .requiredOption(
        '--import <pub.pem>',
        'the public key: Ed25519 (SPKI PEM, DER or raw 32 bytes) or ECDSA P-256 (cosign.pub: SPKI PEM or DER; verifies cosign signatures)',
      )
      .option('--name <name>', 'a name for the trusted key')
      .requiredOption('--org <org>', 'the trusting organization (id or name)'),
  ).action((options: DatabaseOptions & { import: string; name?: string; org: string }) => runAction(options, async () => (await keysDb()).trustKey(options)));
  withDbOptions(
    keys
      .command('revoke <key-id>')
      .description('revoke a signing key (it can no longer sign) or a trusted key (its signatures no longer verify, within 1 second)'),
  ).action((keyId: string, options: DatabaseOptions) => runAction(options, async () => (await keysDb()).revokeKey(keyId, options)));
  withDbOptions(
    keys
      .command('list')
      .description("list an organization's signing and trusted keys")
      .requiredOption('--org <org>', 'organization (id or name)')
      .option('--effective', 'instead: every key the organization trusts now, direct and inherited through grants, with the organization each comes through'),
  ).action((options: DatabaseOptions & { org: string; effective?: boolean }) => runAction(options, async () => (await keysDb()).listKeys(options)));
  withDbOptions(
    withKekOptions(keys.command('rewrap'))
      .description('re-seal every private key under a new KEK (one transaction per key), then switch the configured KEK source to it')
      .option('--new-kek-env <VAR>', 'the environment variable holding the new KEK (base64 or hex)')
      .option('--new-kek-file <path>', 'a file holding the new KEK (0600, owned by the user)')
      .option('--new-kek-pkcs11 <uri>', 'the new KEK in a PKCS#11 token (pkcs11: URI; PIN from pin-source=file: or CLOACINA_PKCS11_PIN)'),
  ).action((options: DatabaseOptions & { newKekEnv?: string; newKekFile?: string; newKekPkcs11?: string }) =>
    runAction(options, async () => (await keysDb()).rewrapKeys(options)),
  );
  return keys;
}
