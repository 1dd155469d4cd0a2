// `cloacina-sign package sign|verify|upload` (run and inspect: ./package-run). Each action loads its own
// module when it runs: `package verify` (every CI job) loads no signing, upload or database code.
import { Command } from 'commander';
import { withDbOptions } from '../context';
import { runAction } from '../output';
import { addPackageCheckOptions } from '../package-checks';
import { addPolicyOptions, collect } from '../trust';
import { addRunCommands } from './package-run';
import type { SignCommandOptions } from './package-sign';
import type { UploadOptions } from './package-upload';
import type { PackageVerifyOptions } from './package-verify';
import { API_TIMEOUT_HELP, apiTimeoutSeconds } from './service-client';

export function packageCommand(): Command {
  const pkg = new Command('package').description('sign, verify, inspect and run workflow packages');
  withDbOptions(
    pkg
      .command('sign <packages...>')
      .description(
        "sign a package with a key file (--key) or a database key (--key-id; with --api-url through the signing service): writes a detached signature, version 1 (Cloacina's format, the default) or 2 (a signed statement: --format v2 --name --version); several packages at once through the signing service (--key-id --api-url, version 1, each into <package>.sig)",
      )
      .option(
        '--format <v1|v2>',
        'v1: the signature covers the SHA-256 digest only (default); v2: a signed statement of name, version, size, digest and expiry',
      )
      .option('--name <name>', 'v2: the package name the statement signs')
      .option('--version <version>', 'v2: the package version (SemVer 2.0.0) the statement signs')
      .option('--organization <org>', 'v2: the organization the package is for (signed when given)')
      .option('--expires <time>', 'v2: when the signature stops being valid: an RFC 3339 time or a duration (90d, 12h, 30m, 45s)')
      .option('--digest <blake3|sha256>', 'v2: the digest the statement names (default blake3: hashes one file on every core)')
      .option('--key <key.pem>', 'PKCS#8 PEM private key, accessible by its owner only (chmod 600)')
      .option('--key-id <id>', 'a signing key in the database; needs CLOACINA_KEY_ENCRYPTION_KEY (or, with --api-url, the service holds it)')
      .option('--kek-file <path>', 'with --key-id: read the KEK from this file (as CLOACINA_KEY_ENCRYPTION_KEY_FILE: 0600, owned by the user)')
      .option('--api-url <url>', 'with --key-id: sign through the signing service (token from CLOACINA_API_TOKEN; no KEK, no database here)')
      .option('--store', 'store the signature in the database (then a file is written only with --output); with --key: needs --database')
      .option('--api-timeout <seconds>', API_TIMEOUT_HELP, apiTimeoutSeconds)
      .option('--allow-insecure-http', 'allow an http:// --api-url that is not a loopback address (the token travels in clear text)')
      .option('--output <file.sig>', 'where to write the signature (default <package>.sig); an existing file is kept unless --force')
      .option('--force', 'replace an existing regular file (never the package itself, the --key file or any file holding a private key)')
      .option('--allow-insecure-key-file', 'read a --key file that group or others can access (refused by default, as ssh does)'),
  ).action((packagePaths: string[], options: SignCommandOptions) =>
    runAction(options, async () => (await import('./package-sign')).signEach(packagePaths, options)),
  );
  addPolicyOptions(
    withDbOptions(
      addPackageCheckOptions(pkg.command('verify <packages...>'), 'any')
        .description(
          'verify packages against pinned public keys (--trust-key) or what an organization trusts (--org); exit 0 all verified, 1 one was rejected, 2 usage or I/O error',
        )
        .option(
          '--trust-key <pub.pem>',
          'a public key you trust: Ed25519 (SPKI PEM, DER or raw 32 bytes) or ECDSA P-256 (cosign.pub, SPKI PEM or DER); repeatable; no database',
          collect,
        )
        .option('--public-key <pub.pem>', 'the same as --trust-key', collect)
        .option('--org <org>', "verify against this organization's trust in the database (id or name)")
        .option(
          '--signature <file.sig>',
          "the detached signature of a single package: Cloacina's JSON document or a cosign sign-blob signature (default <package>.sig, and with --org the stored signatures)",
        ),
    ),
  ).action((packagePaths: string[], options: PackageVerifyOptions) =>
    runAction(
      options,
      async () => (await import('./package-verify')).verify(packagePaths, options),
      (error) => ({ verified: false, results: [], error }),
    ),
  );
  addRunCommands(pkg);
  addUploadCommand(pkg);
  return pkg;
}

function addUploadCommand(pkg: Command): void {
  withDbOptions(
    pkg
      .command('upload <package>')
      .description(
        "register a package with its signature: verified against the organization's trust, then stored (the package record and the signature); nothing is stored when it does not verify (exit 1)",
      )
      .requiredOption('--org <org>', 'the organization (id or name); through the service, the API token must belong to it')
      .option('--signature <file.sig>', 'the detached signature (default <package>.sig)')
      .option('--api-url <url>', 'upload through the signing service (token from CLOACINA_API_TOKEN); without it, straight into --database')
      .option('--name <name>', "the package's name (default: its file name); a package stored under another name is refused unless --rename")
      .option('--rename', 'when this package is stored under another name already, rename it to --name (or its file name)')
      .option('--api-timeout <seconds>', API_TIMEOUT_HELP, apiTimeoutSeconds)
      .option('--allow-insecure-http', 'allow an http:// --api-url that is not a loopback address (the token travels in clear text)'),
  ).action((packagePath: string, options: UploadOptions) => runAction(options, async () => (await import('./package-upload')).upload(packagePath, options)));
}
