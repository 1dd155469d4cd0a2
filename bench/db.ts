// Loader benchmark: verifications per second of a 64 KiB package through createPackageLoader, with trust
// from the database (warm cache, SQLite and PostgreSQL) and with pinned key files; each against the
// same run's crypto-only ceiling. And how long a revocation takes to reach a second process.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { auditToDatabase } from '../src/audit/database-sink';
import { type Database, openDatabase } from '../src/db/database';
import { AuditTrail } from '../src/audit/audit-trail';
import { DbKeyManager } from '../src/keys/db-key-manager';
import { generateKeypair } from '../src/keys/keypair';
import { DbPackageSigner } from '../src/signing/db-signer';
import { DetachedSignature } from '../src/formats/v1';
import { signPackage } from '../src/signing/sign';
import { createPackageLoader } from '../src/loading/package-loader';
import { databaseTrust } from '../src/trust/database-trust';
import { revokePackage } from '../src/trust/package-revocations';
import { publicKeyTrust } from '../src/trust/public-key-trust';
import { candidatesFor } from '../src/verification/candidates';
import { SignatureSource } from '../src/verification/signature-source';
import { native } from '../src/native';
import { median } from './measure';
import type { BenchSection } from './section';
import { createScratchDatabase, POSTGRES_URL, type ScratchDatabase } from '../test/db/scratch-postgres';

const WATCHER = join(__dirname, '../test/fixtures/watch-verify.js');
const DURATION_MS = 1000;
/** Each contender is measured in this many rounds, taken in turn, so a change in the machine's load reaches all of them alike. */
const ROUNDS = 5;
const IN_FLIGHT = 64;
const PROPAGATION_RUNS = 5;

interface Setup {
  db: Database;
  keys: DbKeyManager;
  orgId: string;
  pkg: string;
  trustedId: string;
  /** The signer's public key file, for key-file trust. */
  publicKeyFile: string;
}

async function setUp(url: string, dir: string): Promise<Setup> {
  const db = await openDatabase(url, { migrate: true });
  const keys = new DbKeyManager(db);
  const orgId = (await keys.createOrganization(`bench-${randomBytes(4).toString('hex')}`)).id;
  const vendor = generateKeypair();
  const trustedId = (await keys.trustPublicKey(orgId, vendor.publicKey, 'vendor')).id;
  const pkg = join(dir, `bench-${randomBytes(4).toString('hex')}.so`);
  writeFileSync(pkg, randomBytes(64 * 1024));
  const signature = await signPackage(pkg, vendor.privateKey);
  await new DbPackageSigner(keys).storeSignature(signature);
  // The same signature beside the package, for key-file trust (and a second file holding the public key).
  await DetachedSignature.fromSignatureInfo(signature).writeToFile(DetachedSignature.defaultPath(pkg));
  const publicKeyFile = `${pkg}.pub`;
  writeFileSync(publicKeyFile, vendor.publicKey);
  return { db, keys, orgId, pkg, trustedId, publicKeyFile };
}

interface Rate {
  perSecond: number;
  /** CPU of this process per operation (its libuv threads included). */
  cpuPerOp: number;
}

/** Operations per second of `once` with IN_FLIGHT running concurrently for DURATION_MS (after a warm-up). */
async function rate(once: () => Promise<unknown>): Promise<Rate> {
  for (let i = 0; i < 200; i += 1) await once();
  let count = 0;
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const end = Date.now() + DURATION_MS;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < end) {
        await once();
        count += 1;
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  return { perSecond: count / (Number(process.hrtime.bigint() - started) / 1e9), cpuPerOp: (used.user + used.system) / 1e6 / count };
}

/** CPU seconds so far of every PostgreSQL server process (backends, WAL writer, checkpointer), from /proc. */
function postgresServerCpu(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process ended meanwhile.
    }
  }
  return ticks / 100;
}

/**
 * What one audit row costs by itself: the loader's writer (auditToDatabase) taking verification.success
 * events from IN_FLIGHT writers at once for DURATION_MS, no verification beside it, so its batches are as
 * large as that concurrency allows. CPU per row: this process (SQLite runs here) plus, for PostgreSQL, its server.
 */
async function rowAloneCpu(setup: Setup): Promise<number> {
  const trail = new AuditTrail(auditToDatabase(setup.db));
  const event = {
    eventType: 'verification.success' as const,
    orgId: setup.orgId,
    packagePath: setup.pkg,
    packageHash: 'ab'.repeat(32),
    signerFingerprint: 'cd'.repeat(32),
    signatureVerified: true,
    actor: null,
    digestAlgorithm: 'sha256' as const,
  };
  for (let i = 0; i < 500; i += 1) await trail.record(event);
  const postgres = setup.db.engine === 'postgres';
  let rows = 0;
  const cpu = process.cpuUsage();
  const server = postgres ? postgresServerCpu() : 0;
  const end = Date.now() + DURATION_MS;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < end) {
        await trail.record(event);
        rows += 1;
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  return ((used.user + used.system) / 1e6 + (postgres ? postgresServerCpu() - server : 0)) / rows;
}

/** loader.verify per second with database trust, with or without audit rows. */
function throughput(setup: Setup, auditRows: boolean): () => Promise<unknown> {
  const loader = createPackageLoader({ trust: databaseTrust(setup.db, { org: setup.orgId }), audit: auditRows ? auditToDatabase(setup.db) : [] });
  return () => loader.verify(setup.pkg, { signature: SignatureSource.Database });
}

/** loader.verify per second with pinned key-file trust: the `.sig` beside the package is read each time; no database. */
function keyFileThroughput(setup: Setup): () => Promise<unknown> {
  const loader = createPackageLoader({ trust: publicKeyTrust([setup.publicKeyFile]), audit: [] });
  return () => loader.verify(setup.pkg);
}

/** The same-run reference: hashing the package and checking its signature, no trust lookup at all. */
async function cryptoOnly(setup: Setup): Promise<() => Promise<unknown>> {
  const hash = await native.hashFile(setup.pkg);
  const candidates = await candidatesFor([], hash, databaseTrust(setup.db, { org: setup.orgId }));
  return async () => native.verifyDigests({ size: 0, sha256: await native.hashFile(setup.pkg) }, candidates);
}

/** The median rate (and CPU per operation) of each contender over ROUNDS rounds, the contenders taken in turn within each round. */
async function interleaved(contenders: readonly (() => Promise<unknown>)[]): Promise<Rate[]> {
  const rates: Rate[][] = contenders.map(() => []);
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [index, once] of contenders.entries()) rates[index].push(await rate(once));
  }
  return rates.map((measured) => ({ perSecond: median(measured.map((r) => r.perSecond)), cpuPerOp: median(measured.map((r) => r.cpuPerOp)) }));
}

/** Milliseconds from the start of a revocation (`revoke`) to a second process refusing the package, sorted. */
async function propagation(url: string, dir: string, revoke: (setup: Setup) => Promise<unknown>): Promise<number[]> {
  const delays: number[] = [];
  for (let run = 0; run < PROPAGATION_RUNS; run += 1) {
    const setup = await setUp(url, dir);
    const child = spawn(process.execPath, [WATCHER, url, setup.pkg, setup.orgId], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    try {
      const ready = JSON.parse(((await lines.next()).value as string) ?? '{}');
      if (ready.event !== 'ready') throw new Error(`watcher failed: ${JSON.stringify(ready)}`);
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 300));
      const revokedAt = Date.now();
      await revoke(setup);
      const seen = JSON.parse((await lines.next()).value as string);
      delays.push(seen.at - revokedAt);
    } finally {
      child.kill();
      await setup.db.close();
    }
  }
  return delays.sort((a, b) => a - b);
}

async function postgresDatabase(): Promise<ScratchDatabase | string> {
  return createScratchDatabase('cloacina_bench').catch((error: Error) => `PostgreSQL unreachable at ${POSTGRES_URL}: ${error.message}`);
}

export async function benchDatabase(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), 'cloacina-bench-db-'));
  const rows: string[][] = [];
  const notes: string[] = [
    `\`createPackageLoader(...).verify\` of a 64 KiB package, ${IN_FLIGHT} verifications in flight, ${ROUNDS} rounds of ${DURATION_MS / 1000} s, the four contenders (with audit rows, without, key-file trust, reference) taken in turn in each round; each column is the median of its rounds. Database trust: \`databaseTrust(db, { org })\`, signature from the database (SignatureSource.Database), trust and signatures from the warm cache; with \`audit: auditToDatabase(db)\` every verification writes its audit_events row before it returns (batched group commit); the 4th column is the same with \`audit: []\`, to show their cost. Key-file trust: \`publicKeyTrust([file])\`, the \`.sig\` beside the package read and parsed on every verification, \`audit: []\`, no database.`,
    "Reference (same run, same package): hashFile + verifyDigest with the candidates resolved once, no trust lookup and no database. It is the ceiling this machine's CPU sets (SHA-256 of 64 KiB and one Ed25519 verify_strict, both on libuv worker threads); the percentages say how close each path comes to it. Key-file trust makes the whole decision in one task on the worker pool (hash, read the `.sig`, pick the pinned key, verify). Database trust takes the trusted keys, the stored signatures and the revoked packages from caches kept while the database's change generation is current, and pairs the stored signatures with the trusted keys once while both caches hold (the pairing parses every document and key).",
    "How a row is written: the writer keeps the chain head it last wrote and sends the rows waiting meanwhile as one INSERT whose only parameter is the batch as JSON, read as JSONB (SQLite: jsonb_each, PostgreSQL: jsonb_array_elements), the statement itself checking that the head is still the one assumed (another process appended: the batch locks the head and follows it instead). The statement runs on a pool connection outside knex, prepared once per connection on SQLite. Audit rows' ids are UUIDv7 (time-ordered), so each row lands at the end of the id index. Before each batch the writer lets four event-loop turns pass (at once on an idle loop), so under load a batch gathers the rows of the verifications finished meanwhile. Each row also runs the chain's triggers (it must continue the head; the head moves to it). Rows are never skipped or written after the fact: a verification that cannot be audited fails. The floor notes below measure, in the same run, what a bare row costs on each engine.",
    `Revocation propagation: from the start of revokeTrustedKey in one process until a second process (verifying in a loop) first refuses the package; ${PROPAGATION_RUNS} runs, min / median / max. Bound promised: 1000 ms (cache re-checked every 250 ms; PostgreSQL also LISTEN/NOTIFY). The last column is the same for revoking the package itself (revokePackage, by its SHA-256), which travels the same change feed.`,
  ];
  try {
    const engines: [string, string | undefined, (() => Promise<void>) | undefined][] = [['SQLite', `sqlite:${join(dir, 'bench.db')}`, undefined]];
    const pg = await postgresDatabase();
    if (typeof pg === 'string') {
      notes.push(`PostgreSQL not measured: ${pg}`);
      engines.push(['PostgreSQL', undefined, undefined]);
    } else engines.push(['PostgreSQL', pg.url, pg.drop]);
    for (const [name, url, drop] of engines) {
      if (!url) {
        rows.push([name, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a']);
        continue;
      }
      try {
        const setup = await setUp(url, dir);
        const [audited, unaudited, keyFiles, crypto] = await interleaved([
          throughput(setup, true),
          throughput(setup, false),
          keyFileThroughput(setup),
          await cryptoOnly(setup),
        ]);
        const [perSecond, withoutRows, keyFile, reference] = [audited, unaudited, keyFiles, crypto].map((r) => r.perSecond);
        const rowCpu = median([await rowAloneCpu(setup), await rowAloneCpu(setup), await rowAloneCpu(setup)]);
        await setup.db.close();
        const delays = await propagation(url, dir, (setup) => setup.keys.revokeTrustedKey(setup.trustedId));
        const packageDelays = await propagation(url, dir, async (setup) =>
          revokePackage(setup.keys, setup.orgId, { sha256: await native.hashFile(setup.pkg) }, 'bench'),
        );
        const spread = (sorted: number[]) => `${sorted[0]} / ${sorted[Math.floor(sorted.length / 2)]} / ${sorted[sorted.length - 1]} ms`;
        const perSec = (n: number) => Math.round(n).toLocaleString('en-US');
        const share = (n: number) => `${perSec(n)} (${((100 * n) / reference).toFixed(0)}%)`;
        const auditedShare = perSecond / reference;
        // With every core busy (as the reference keeps them), a verification that also writes its row costs the
        // reference's CPU plus the row's: the share reached if rows cost in the loader what they cost alone.
        const rowBound = crypto.cpuPerOp / (crypto.cpuPerOp + rowCpu);
        notes.push(
          `Target ${name}: database trust with audit rows >= 80% of the reference: ${auditedShare >= 0.8 ? 'met' : 'MISSED'} (${(100 * auditedShare).toFixed(0)}%; without audit rows ${((100 * withoutRows) / reference).toFixed(0)}%).`,
          `${name}, where the CPU goes (same run, CPU per verification with both cores busy): the reference ${(crypto.cpuPerOp * 1e6).toFixed(0)} µs; database trust without rows ${(unaudited.cpuPerOp * 1e6).toFixed(0)} µs, with rows ${(audited.cpuPerOp * 1e6).toFixed(0)} µs${name === 'PostgreSQL' ? ' (this process; the server works besides)' : ''}. One row written alone by the same writer (${IN_FLIGHT} writers at once, no verification beside it${name === 'PostgreSQL' ? "; the server's CPU included" : ''}) costs ${(rowCpu * 1e6).toFixed(0)} µs: verifications whose rows cost that would reach ${(100 * rowBound).toFixed(0)}% of the reference. Beside verifications the rows cost more: the writer's batches hold only the rows of the verifications finished while the last batch committed, fewer than ${IN_FLIGHT} writers alone give it, and each batch pays a commit and the chain's per-row triggers (each row must continue the head, and moves it).`,
        );
        rows.push([
          name,
          share(perSecond),
          perSecond >= 10_000 ? 'yes' : 'no',
          share(withoutRows),
          share(keyFile),
          perSec(reference),
          spread(delays),
          spread(packageDelays),
        ]);
      } finally {
        await drop?.();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    title: 'The loader: verifications per second with database trust and with key-file trust',
    headers: [
      'Engine',
      'Database trust, audit rows (% of reference)',
      '>= 10,000/s',
      'Database trust, no audit rows',
      'Key-file trust, no database (same machine)',
      'Reference: hash + Ed25519 only',
      'Revocation reaches a 2nd process (min / median / max)',
      'Package revocation reaches a 2nd process',
    ],
    rows,
    notes,
  };
}
