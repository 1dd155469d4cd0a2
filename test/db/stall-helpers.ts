// What the bounded-wait tests share: timing an operation without ever hanging mocha, describing an error's
// cause chain, retrying until a recovered database answers, and the fixture every suite verifies against.
import {
  auditToDatabase,
  CloacinaSignError,
  createPackageLoader,
  type Database,
  DbKeyManager,
  databaseTrust,
  generateKeypair,
  type PackageLoader,
  readPrivateKeyFile,
  SignatureSource,
  signPackage,
  writeKeypairFiles,
} from '../../src';
import { DbPackageSigner } from '../../src/signing/db-signer';
import { DetachedSignature } from '../../src/formats/v1';
import { listAuditEvents } from '../../src/audit/database-sink';
import { buildPackage } from '../fixtures';
import type { tempDir } from '../helpers';
import { writePackage } from '../fixtures/random-package';

/** Past this an operation counts as hung (reported as such, so a regression fails instead of hanging mocha). */
export const WATCHDOG_MS = 12_000;
/** How long a recovered database may take to be usable again through the same handle. */
export const RECOVERY_MS = 10_000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Outcome<T> {
  /** False when the watchdog fired first: the operation was still pending. */
  settled: boolean;
  ms: number;
  value?: T;
  error?: unknown;
}

/** Runs `work`, timing it; never waits longer than `watchdogMs` (then `settled` is false). */
export async function timed<T>(work: () => Promise<T>, watchdogMs = WATCHDOG_MS): Promise<Outcome<T>> {
  const start = performance.now();
  const elapsed = () => Math.round(performance.now() - start);
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ settled: false, ms: elapsed() }), watchdogMs);
  });
  const run = Promise.resolve()
    .then(work)
    .then(
      (value): Outcome<T> => ({ settled: true, ms: elapsed(), value }),
      (error: unknown): Outcome<T> => ({ settled: true, ms: elapsed(), error }),
    );
  try {
    return await Promise.race([run, watchdog]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error and its causes, outermost first. */
export function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && chain.length < 10; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

export function describeChain(error: unknown): string {
  return causeChain(error)
    .map((e) => (e instanceof CloacinaSignError ? `${e.code}: ${e.message}` : e instanceof Error ? `${e.name}: ${e.message}` : String(e)))
    .join('  <-  ');
}

/** Retries `work` until it resolves or `withinMs` has passed; each attempt is itself watched. */
export async function eventually<T>(work: () => Promise<T>, what: string, withinMs = RECOVERY_MS): Promise<{ value: T; attempts: number; ms: number }> {
  const start = performance.now();
  let attempts = 0;
  let last: Outcome<T> | undefined;
  while (performance.now() - start < withinMs) {
    attempts += 1;
    last = await timed(work);
    if (last.settled && last.error === undefined) return { value: last.value as T, attempts, ms: Math.round(performance.now() - start) };
    if (!last.settled) break;
    await sleep(100);
  }
  const why = !last ? 'never tried' : last.settled ? describeChain(last.error) : `the last attempt was still pending after ${last.ms} ms`;
  throw new Error(`${what}: not working again after ${Math.round(performance.now() - start)} ms and ${attempts} attempt(s); last: ${why}`);
}

export function note(text: string): void {
  console.log(`      (${text})`);
}

/** Closes a handle, waiting at most `ms` (cleanup only: the close test asserts its own bound). */
export async function closeQuietly(db: Database | undefined, ms = 10_000): Promise<void> {
  if (db) await timed(() => db.close(), ms);
}

/** What every suite sets up: an organization trusting a key (from a key file), a random package with a stored
 * signature, and a real workflow package with a `.sig` whose constructor leaves a marker file. */
export interface Fixture {
  orgId: string;
  fingerprint: string;
  /** Random bytes with a stored signature (verify). */
  pkg: string;
  /** A workflow package, its `.sig` beside it (load). */
  lib: string;
  /** Left by the library's constructor: exists only if package code ran. */
  marker: string;
  loader: PackageLoader;
}

export async function setUp(db: Database, dir: ReturnType<typeof tempDir>, name: string): Promise<Fixture> {
  const keys = new DbKeyManager(db);
  const org = await keys.createOrganization(name);
  const vendor = generateKeypair();
  const { privateKeyPath } = await writeKeypairFiles(vendor, dir.join(`${name}.pem`));
  const privateKey = await readPrivateKeyFile(privateKeyPath);
  const trusted = await keys.trustPublicKey(org.id, vendor.publicKey, 'vendor');

  const pkg = writePackage(dir.join(`${name}-random.so`));
  await new DbPackageSigner(keys).storeSignature(await signPackage(pkg, privateKey));

  const marker = dir.join(`${name}-constructor-ran`);
  const lib = buildPackage(dir.join(`lib${name}.so`), { markerPath: marker, identity: name });
  await DetachedSignature.fromSignatureInfo(await signPackage(lib, privateKey)).writeToFile(`${lib}.sig`);

  const loader = createPackageLoader({ trust: databaseTrust(db, { org: org.id }), audit: auditToDatabase(db), requireSignatures: true });
  return { orgId: org.id, fingerprint: trusted.fingerprint, pkg, lib, marker, loader };
}

export const verifyStored = (f: Fixture) => f.loader.verify(f.pkg, { signature: SignatureSource.Database });

export async function successEvents(db: Database, f: Fixture): Promise<number> {
  const events = await listAuditEvents(db, { orgId: f.orgId, eventType: 'verification.success', limit: 1000 });
  return events.filter((e) => e.package_path === f.pkg).length;
}

// A raw sqlite3 connection, to hold a lock the way another process would.
export interface RawSqlite {
  exec(sql: string, done: (error: Error | null) => void): void;
  close(done: (error: Error | null) => void): void;
}
const sqlite3 = require('sqlite3') as { Database: new (file: string, done: (error: Error | null) => void) => RawSqlite };

export function openRawSqlite(file: string): Promise<RawSqlite> {
  return new Promise((resolve, reject) => {
    const raw: RawSqlite = new sqlite3.Database(file, (error) => (error ? reject(error) : resolve(raw)));
  });
}

export const execRaw = (raw: RawSqlite, sql: string) => new Promise<void>((resolve, reject) => raw.exec(sql, (error) => (error ? reject(error) : resolve())));
