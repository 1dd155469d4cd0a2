// `cloacina-sign serve`: the signing service. The only process that reads the KEK
// (CLOACINA_KEY_ENCRYPTION_KEY, removed from its environment once read). SIGTERM or SIGINT: stop accepting,
// let in-flight requests finish (and a checkpoint being signed, with --checkpoint-every), wait for every
// pending audit write, close the database, exit 0.
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { CloacinaSignError } from '../../errors';
import { type DatabaseOptions, withDbOptions, withKekOptions, auditLines } from '../context';
import { printData, runAction, say } from '../output';

interface ServeOptions extends DatabaseOptions {
  listen: string;
  maxUploadBytes: number;
  rateLimit: number;
  rateBurst?: number;
  tlsCert?: string;
  tlsKey?: string;
  idleTimeout: number;
  requestTimeout: number;
  shutdownTimeout: number;
  accessLog?: boolean;
  trustProxy?: string;
  checkpointKeyId?: string;
  checkpointEvery?: number;
}

const SIZE = /^(\d+)\s*(|k|ki|kib|m|mi|mib|g|gi|gib)$/i;
const UNITS: Record<string, number> = { '': 1, k: 1024, ki: 1024, kib: 1024, m: 2 ** 20, mi: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gi: 2 ** 30, gib: 2 ** 30 };

/** Bytes: `536870912`, `512MiB`, `1GiB` (binary units). */
export function parseSize(text: string): number {
  const match = SIZE.exec(text.trim());
  const bytes = match ? Number(match[1]) * UNITS[match[2].toLowerCase()] : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new InvalidArgumentError('must be a size in bytes, e.g. 536870912 or 512MiB');
  return bytes;
}

const DURATION = /^([1-9][0-9]{0,5})(s|m|h)$/;
const DURATION_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };
/** The longest checkpoint interval accepted. */
const MAX_DURATION_MS = 24 * 3_600_000;

/** An interval: a whole number of seconds, minutes or hours, `60s`, `5m`, `1h` (1 s to 24 h), in ms. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text);
  const ms = match ? Number(match[1]) * DURATION_MS[match[2]] : Number.NaN;
  if (!(ms >= 1000 && ms <= MAX_DURATION_MS))
    throw new InvalidArgumentError('must be a whole number of seconds, minutes or hours from 1s to 24h, e.g. 60s or 5m');
  return ms;
}

function positive(text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError('must be a positive number');
  return value;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CloacinaSignError('UNREADABLE_FILE', `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

async function serve(options: ServeOptions): Promise<void> {
  const [{ resolveKek, KEK_ENV, PKCS11_PIN_ENV }, { openDatabase }, { pendingMigrations }, { parseListen, startSigningService }] = await Promise.all([
    import('../../keys/kek'),
    import('../../db/database'),
    import('../../db/migrate'),
    import('../../service/server'),
  ]);
  let listen: { host: string; port: number };
  try {
    listen = parseListen(options.listen);
  } catch (error) {
    throw new CloacinaSignError('USAGE', (error as Error).message);
  }
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new CloacinaSignError('USAGE', '--tls-cert and --tls-key go together');
  if ((options.checkpointKeyId === undefined) !== (options.checkpointEvery === undefined)) {
    throw new CloacinaSignError('USAGE', '--checkpoint-key-id and --checkpoint-every go together');
  }
  const tls =
    options.tlsCert && options.tlsKey ? { cert: readPem(options.tlsCert, 'the TLS certificate'), key: readPem(options.tlsKey, 'the TLS key') } : undefined;
  // The KEK (or the token's PIN) is read once, then removed from the environment: no child process or
  // later reader sees it. A token KEK must answer now: its id is computed in the token.
  const kek = await resolveKek({ kekFile: options.kekFile, allowInsecureKeyFile: options.allowInsecureKeyFile });
  delete process.env[KEK_ENV];
  delete process.env[PKCS11_PIN_ENV];
  const db = await openDatabase(options.database, { listen: true, commandLine: true });
  try {
    const pending = await pendingMigrations(db).catch(() => [] as string[]);
    if (pending.length > 0)
      say(`warning: ${db.target.display} has ${pending.length} pending migration(s): /readyz answers 503 until \`cloacina-sign db migrate\``);
    // Audit rows always go to the database; JSON lines only when CLOACINA_AUDIT_LOG names a destination.
    const lines = process.env.CLOACINA_AUDIT_LOG?.trim() ? auditLines() : undefined;
    const service = await startSigningService({
      ...listen,
      db,
      kek,
      tls,
      maxUploadBytes: options.maxUploadBytes,
      rateLimit: { perSecond: options.rateLimit, burst: options.rateBurst ?? Math.max(1, options.rateLimit * 2) },
      idleTimeoutMs: options.idleTimeout,
      requestTimeoutMs: options.requestTimeout,
      accessLog: Boolean(options.accessLog),
      trustProxy: options.trustProxy,
      auditLines: lines ? [lines] : [],
      checkpoints:
        options.checkpointKeyId !== undefined && options.checkpointEvery !== undefined
          ? { keyId: options.checkpointKeyId, everyMs: options.checkpointEvery }
          : undefined,
    });
    say(`cloacina-sign serve: listening on ${service.url} (database ${db.target.display})`);
    printData(options, { listening: service.url }, service.url);
    const signal = await nextSignal();
    say(`cloacina-sign serve: ${signal}: no new connections; finishing in-flight requests`);
    // A second signal while draining: stop now.
    const again = nextSignal().then(() => 'forced' as const);
    const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), options.shutdownTimeout).unref());
    const outcome = await Promise.race([service.close().then(() => 'closed' as const), deadline, again]);
    if (outcome !== 'closed') {
      service.app.server.closeAllConnections();
      await service.context.audit.drained();
      say(`cloacina-sign serve: ${outcome === 'forced' ? 'second signal' : `requests still running after ${options.shutdownTimeout} ms`}: connections closed`);
      process.exitCode = 1;
    } else {
      say('cloacina-sign serve: stopped');
    }
  } finally {
    await db.close();
  }
  // Nothing should be left running; should anything be, it does not hold the exit up.
  setTimeout(() => process.exit(), 2000).unref();
}

export function serveCommand(): Command {
  return withDbOptions(
    withKekOptions(new Command('serve'))
      .description('run the signing service: signs digests with database keys (the KEK stays in this process) and registers verified uploads')
      .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8080')
      .option('--max-upload-bytes <size>', 'largest package an upload may send (e.g. 512MiB)', parseSize, 512 * 2 ** 20)
      .option('--rate-limit <per-second>', 'requests per second per API token', positive, 50)
      .option('--rate-burst <n>', 'requests a token may make at once after a quiet period (default: twice --rate-limit)', positive)
      .option('--tls-cert <cert.pem>', 'serve HTTPS with this certificate (chain) ...')
      .option('--tls-key <key.pem>', '... and this private key')
      .option('--idle-timeout <ms>', 'close a connection silent this long (an upload stalled mid-body included)', positive, 30_000)
      .option('--request-timeout <ms>', 'longest time a whole request (an upload body included) may take to arrive', positive, 600_000)
      .option('--shutdown-timeout <ms>', 'on SIGTERM, longest wait for in-flight requests before closing their connections', positive, 30_000)
      .option('--access-log', 'one JSON line per request on stderr (method, route, status, duration, token id)')
      .option('--trust-proxy <addresses>', 'addresses of a TLS proxy in front (comma-separated; X-Forwarded-For then names the client)')
      .option('--checkpoint-key-id <id>', 'sign a checkpoint of the audit chain with this audit-checkpoint key ...')
      .option('--checkpoint-every <interval>', '... at every interval in which the chain grew (e.g. 60s, 5m)', parseDuration),
  ).action((options: ServeOptions) => runAction(options, () => serve(options)));
}
