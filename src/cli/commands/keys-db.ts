// The database variants of `cloacina-sign keys ...`: keys live sealed in the database, per organization.
import type { KeyPurpose } from '../../db/keys';
import { CloacinaSignError } from '../../errors';
import { readPublicKeyFile } from '../../keys/key-files';
import { publicKeyAlgorithm } from '../../keys/keypair';
import { type Kek, kekFromEnv, kekFromFile, kekFromPkcs11 } from '../../keys/kek';
import { checkOutputFile, writeFileAtomic } from '../../files';
import { type DatabaseOptions, withDatabase } from '../context';
import { printData, say, terminalSafe } from '../output';
import { formatTable } from '../table';
import type { DbKeyManager } from '../../keys/db-key-manager';

export async function generateInDatabase(options: DatabaseOptions & { name: string; org: string; purpose: KeyPurpose }): Promise<void> {
  await withDatabase(
    options,
    async ({ keys, org, kek }) => {
      const owner = await org(options.org);
      const key = await keys.createSigningKey(owner.id, options.name, kek!, options.purpose);
      say(
        `Generated ${key.purpose} signing key "${key.name}" for "${terminalSafe(owner.name)}": id ${key.id}, fingerprint ${key.fingerprint}, sealed under KEK id ${key.kekId}`,
      );
      printData(
        options,
        { id: key.id, orgId: key.orgId, name: key.name, fingerprint: key.fingerprint, purpose: key.purpose, createdAt: key.createdAt, kekId: key.kekId },
        key.id,
      );
    },
    { needsKek: true },
  );
}

export async function exportKey(keyId: string, options: DatabaseOptions & { format: string; output?: string; force?: boolean }): Promise<void> {
  if (options.format !== 'pem' && options.format !== 'raw') throw new CloacinaSignError('USAGE', '--format must be pem or raw');
  // Raw to stdout is the stored bytes themselves (32 for Ed25519, the SPKI DER for P-256; `> key.pub` round-trips
  // through keys trust --import); never onto a terminal.
  const rawToStdout = options.format === 'raw' && !options.output && !options.json;
  if (rawToStdout && process.stdout.isTTY) {
    throw new CloacinaSignError(
      'USAGE',
      'refusing to write a raw (binary) key to a terminal: redirect stdout (> key.pub), or use --output <file>, --json (hex) or --format pem',
    );
  }
  const output = { overwrite: Boolean(options.force), protectPrivateKeys: true };
  // Before the database is opened: an output that would be refused fails first.
  if (options.output) await checkOutputFile(options.output, output);
  await withDatabase(options, async ({ keys }) => {
    const exported = await keys.exportPublicKey(keyId);
    const text = options.format === 'pem' ? exported.pem.trimEnd() : exported.raw.toString('hex');
    if (options.output) {
      await writeFileAtomic(options.output, options.format === 'pem' ? exported.pem : exported.raw, { ...output, mode: 0o644 });
      say(`Wrote the public key of ${keyId} to ${options.output}`);
    }
    if (rawToStdout) {
      process.stdout.write(exported.raw);
      return;
    }
    printData(
      options,
      {
        id: keyId,
        orgId: exported.orgId,
        fingerprint: exported.fingerprint,
        format: options.format,
        publicKey: text,
        ...(options.output ? { output: options.output } : {}),
      },
      options.output ? exported.fingerprint : text,
    );
  });
}

export async function trustKey(options: DatabaseOptions & { import: string; name?: string; org: string }): Promise<void> {
  const publicKey = await readPublicKeyFile(options.import);
  await withDatabase(options, async ({ keys, org }) => {
    const owner = await org(options.org);
    const trusted = await keys.trustPublicKey(owner.id, publicKey, options.name);
    const algorithm = publicKeyAlgorithm(trusted.publicKey);
    say(`"${terminalSafe(owner.name)}" now trusts ${algorithm === 'ecdsa-p256' ? 'ECDSA P-256 (cosign) key' : 'key'} ${trusted.fingerprint}`);
    printData(
      options,
      { id: trusted.id, orgId: owner.id, name: trusted.name, fingerprint: trusted.fingerprint, algorithm, createdAt: trusted.createdAt },
      trusted.id,
    );
  });
}

export async function revokeKey(keyId: string, options: DatabaseOptions): Promise<void> {
  await withDatabase(options, async ({ keys }) => {
    const { kind, key } = await keys.revokeKey(keyId);
    say(`Revoked ${kind} key ${keyId} (${key.fingerprint})`);
    printData(options, { id: key.id, kind, orgId: key.orgId, fingerprint: key.fingerprint, revokedAt: key.revokedAt }, key.id);
  });
}

export async function listKeys(options: DatabaseOptions & { org: string; effective?: boolean }): Promise<void> {
  await withDatabase(
    options,
    async ({ keys, org }) => {
      const owner = await org(options.org);
      if (options.effective) return listEffectiveKeys(owner.id, options, keys);
      const signing = (await keys.listSigningKeys(owner.id)).map((k) => ({ ...k, kind: 'signing' }));
      const trusted = (await keys.listTrustedKeyRows(owner.id)).map((k) => ({ ...k, kind: 'trusted', purpose: undefined }));
      const all = [...signing, ...trusted].map((k) => ({
        id: k.id,
        kind: k.kind,
        name: k.name,
        fingerprint: k.fingerprint,
        algorithm: publicKeyAlgorithm(k.publicKey),
        // What a signing key signs (package or audit-checkpoint); a trusted key has no such field.
        ...(k.purpose ? { purpose: k.purpose } : {}),
        createdAt: k.createdAt,
        status: k.revokedAt ? 'revoked' : 'active',
        revokedAt: k.revokedAt,
      }));
      const rows = all.map((k) => [k.id, k.name ?? '', k.fingerprint, k.createdAt, k.status, k.kind, k.algorithm, k.purpose ?? '']);
      printData(options, all, formatTable(['ID', 'NAME', 'FINGERPRINT', 'CREATED', 'STATUS', 'KIND', 'ALGORITHM', 'PURPOSE'], rows));
    },
    // Listing writes nothing: it works on a SQLite file this user cannot write.
    { readOnly: true },
  );
}

/** What an organization trusts now, and why: each key with the organization trusting it directly and the grant path. */
async function listEffectiveKeys(orgId: string, options: DatabaseOptions, keys: DbKeyManager): Promise<void> {
  const names = new Map((await keys.listOrganizations()).map((org) => [org.id, org.name]));
  const effective = (await keys.listTrustedKeys(orgId)).map((k) => ({
    id: k.id,
    name: k.name,
    fingerprint: k.fingerprint,
    algorithm: publicKeyAlgorithm(k.publicKey),
    orgId: k.orgId,
    orgName: names.get(k.orgId) ?? k.orgId,
    inherited: k.inheritedFrom !== null,
    path: k.path.map((id) => ({ id, name: names.get(id) ?? id })),
    createdAt: k.createdAt,
  }));
  const rows = effective.map((k) => [
    k.id,
    k.name ?? '',
    k.fingerprint,
    k.orgName,
    k.inherited ? k.path.map((o) => o.name).join(' -> ') : 'direct',
    k.algorithm,
  ]);
  printData(options, effective, formatTable(['ID', 'NAME', 'FINGERPRINT', 'TRUSTED BY', 'THROUGH', 'ALGORITHM'], rows));
}

/** The new KEK of `keys rewrap`: exactly one of --new-kek-env, --new-kek-file, --new-kek-pkcs11. */
async function newKekOf(options: DatabaseOptions & { newKekEnv?: string; newKekFile?: string; newKekPkcs11?: string }): Promise<Kek> {
  const given = [
    ...(options.newKekEnv !== undefined ? ['--new-kek-env'] : []),
    ...(options.newKekFile !== undefined ? ['--new-kek-file'] : []),
    ...(options.newKekPkcs11 !== undefined ? ['--new-kek-pkcs11'] : []),
  ];
  if (given.length !== 1) {
    throw new CloacinaSignError(
      'USAGE',
      `keys rewrap needs exactly one of --new-kek-env, --new-kek-file, --new-kek-pkcs11${given.length ? ` (got ${given.join(', ')})` : ''}`,
    );
  }
  if (options.newKekEnv !== undefined) return kekFromEnv(options.newKekEnv);
  if (options.newKekFile !== undefined) return kekFromFile(options.newKekFile, { allowInsecureKeyFile: options.allowInsecureKeyFile });
  return kekFromPkcs11(options.newKekPkcs11 as string, { allowInsecureKeyFile: options.allowInsecureKeyFile });
}

export async function rewrapKeys(options: DatabaseOptions & { newKekEnv?: string; newKekFile?: string; newKekPkcs11?: string }): Promise<void> {
  // Both KEKs are read before anything is opened; neither value is ever printed.
  const newKek = await newKekOf(options);
  await withDatabase(
    options,
    async ({ keys, kek }) => {
      const result = await keys.rewrap(kek!, newKek);
      // stdout: the ids this run re-sealed, one a line (none: an empty line); stderr says how many, and how many already were.
      say(
        `Re-sealed ${result.rewrapped} key(s) under KEK id ${result.newKekId}; ${result.alreadyRewrapped} already were under it; now switch the configured KEK source (CLOACINA_KEY_ENCRYPTION_KEY, CLOACINA_KEY_ENCRYPTION_KEY_FILE or CLOACINA_KEK_PKCS11) to the new KEK`,
      );
      printData(options, result, result.rewrappedKeyIds.join('\n'));
    },
    { needsKek: true },
  );
}
