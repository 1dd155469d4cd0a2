// The signing service: fastify, JSON under /v1, one audit row per request that signs, uploads or is refused.
// fastify: route-level JSON schemas (validation, serialization and the OpenAPI description from one source),
// a content-type parser that can hand the raw request stream through, encapsulated hooks, and a close() that
// drains in-flight requests.
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { auditToDatabase, type DatabaseAuditSink } from '../audit/database-sink';
import type { AuditSink } from '../audit/sink';
import type { Database } from '../db/database';
import { TokenManager } from '../db/tokens';
import { DbKeyManager } from '../keys/db-key-manager';
import { type Kek, kekId } from '../keys/kek';
import { type AuditKind, failureEvent, type RequestAudit, requestAudit, ServiceAudit } from './audit';
import { type CheckpointSchedule, Checkpointer } from './checkpointer';
import { type LogFields, type ServiceContext, signingKeyLookup, trustLookup } from './context';
import { ApiError, type HttpError, toHttpError } from './http-errors';
import { ServiceMetrics } from '../metrics/service-metrics';
import { openApiRoute } from './openapi';
import { type RateLimit, RateLimiter } from './rate-limit';
import { healthRoutes } from './routes/health';
import { checkpointRoute } from './routes/checkpoint';
import { keysRoute } from './routes/keys';
import { signRoute } from './routes/sign';
import { signBatchRoute } from './routes/sign-batch';
import { tokensRoute } from './routes/tokens';
import { uploadRoute } from './routes/upload';
import { useStrictJson } from './strict-json';
import type { Principal } from './tokens';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated API token (routes with `config.auth`). */
    principal: Principal | null;
    /** What the request's audit row will say (routes with `config.audit`). */
    audit: RequestAudit | null;
  }
  interface FastifyContextConfig {
    audit?: AuditKind;
    auth?: boolean;
    openapi?: { requestBody?: Record<string, unknown> };
  }
}

export const DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024;
export const JSON_BODY_LIMIT = 64 * 1024;
export const DEFAULT_RATE_LIMIT: RateLimit = { perSecond: 50, burst: 100 };
export const DEFAULT_AUTH_FAILURE_LIMIT: RateLimit = { perSecond: 5, burst: 20 };
/** A connection silent this long is closed, an upload in the middle of its body included. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** The longest a whole request (an upload's body included) may take to arrive. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10 * 60_000;
const HEADERS_TIMEOUT_MS = 20_000;

export interface ServiceOptions {
  db: Database;
  /** The key-encryption key: this process is the only one holding it. */
  kek: Kek;
  maxUploadBytes?: number;
  /** Per API token (default 50/s, bursts of 100). */
  rateLimit?: RateLimit;
  /** Failed authentications per presented token (by its hash), or per client address without a usable token (default 5/s, bursts of 20). */
  authFailureLimit?: RateLimit;
  tls?: { cert: Buffer | string; key: Buffer | string };
  idleTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** fastify's trustProxy: the addresses of TLS proxies in front (then the client address is X-Forwarded-For's). */
  trustProxy?: boolean | string | string[];
  /** One JSON line per request on the log (method, route pattern, status, duration, token id). */
  accessLog?: boolean;
  /** Where log lines go (default: stderr). */
  log?: (line: string) => void;
  /** Audit JSON lines besides the database rows. */
  auditLines?: readonly AuditSink[];
  /** prom-client's process metrics (CPU, memory, event loop), prefixed cloacina_sign_ (default true). */
  defaultMetrics?: boolean;
  /** Sign a checkpoint of the audit chain at every interval in which it grew (the key is checked before the service is made). */
  checkpoints?: CheckpointSchedule;
}

export interface SigningService {
  app: FastifyInstance;
  context: ServiceContext;
  /** Stops accepting, lets in-flight requests finish, then waits for every pending audit write. */
  close(): Promise<void>;
}

function logger(write: (line: string) => void) {
  return (level: 'info' | 'warn' | 'error', message: string, fields: LogFields = {}) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
  };
}

export async function createSigningService(options: ServiceOptions): Promise<SigningService> {
  const write = options.log ?? ((line: string) => process.stderr.write(line));
  const metrics = new ServiceMetrics({ defaultMetrics: options.defaultMetrics });
  const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  if (!(Number.isSafeInteger(maxUploadBytes) && maxUploadBytes > 0)) throw new RangeError('maxUploadBytes must be a positive integer');
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const ctx: ServiceContext = {
    db: options.db,
    kek: options.kek,
    kekId: kekId(options.kek),
    metrics,
    audit: new ServiceAudit(auditToDatabase(options.db) as DatabaseAuditSink, options.auditLines ?? []),
    limiter: new RateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT),
    authLimiter: new RateLimiter(options.authFailureLimit ?? DEFAULT_AUTH_FAILURE_LIMIT),
    maxUploadBytes,
    log: logger(write),
    signingKey: signingKeyLookup(options.db),
    trust: trustLookup(options.db),
    tokens: new TokenManager(new DbKeyManager(options.db, { audit: options.auditLines ?? [] })),
  };
  const checkpointer = options.checkpoints ? new Checkpointer(options.db, options.kek, options.checkpoints, ctx.log, options.auditLines ?? []) : undefined;
  await checkpointer?.checkKey();

  const app = fastify({
    // No request logging by fastify: our access log has a fixed set of fields, none of them secret.
    logger: false,
    bodyLimit: JSON_BODY_LIMIT,
    connectionTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: 5000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    trustProxy: options.trustProxy ?? false,
    routerOptions: { maxParamLength: 300 },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
  }) as unknown as FastifyInstance;
  // A JSON body naming a member twice is refused rather than read as its last value.
  useStrictJson(app);
  // Slow headers are cut short too (a client trickling its headers holds no connection for long).
  app.server.headersTimeout = Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs || HEADERS_TIMEOUT_MS);

  // Once closing, every answer closes its connection, so a keep-alive client of an in-flight request does not hold the shutdown up.
  let closing = false;
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.decorateRequest('principal', null);
  app.decorateRequest('audit', null);
  app.addHook('onRequest', (request, _reply, done) => {
    const kind = request.routeOptions.config?.audit;
    if (kind) request.audit = requestAudit(kind);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.requestDuration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    if (options.accessLog) {
      ctx.log('info', 'request', {
        id: request.id,
        method: request.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        token: request.audit?.actor ?? request.principal?.tokenId ?? null,
      });
    }
    done();
  });
  app.setErrorHandler((error, request, reply) => handleError(ctx, error, request, reply));
  app.setNotFoundHandler({}, (_request, reply) => {
    reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });

  openApiRoute(app, require('../../../package.json').version);
  healthRoutes(app, ctx);
  signRoute(app, ctx);
  signBatchRoute(app, ctx);
  uploadRoute(app, ctx);
  keysRoute(app, ctx);
  tokensRoute(app, ctx);
  checkpointRoute(app, ctx);
  await app.ready();
  checkpointer?.start();

  return {
    app,
    context: ctx,
    async close() {
      closing = true;
      await Promise.all([app.close(), checkpointer?.close()]);
      await ctx.audit.drained();
    },
  };
}

/** Failures of the database itself: the client is told so even when the failure's own row cannot be written. */
const DATABASE_FAILURES = new Set(['DATABASE_UNAVAILABLE', 'DATABASE_ERROR']);

/** Every failure: the status and body, the request's audit row (503 AUDIT_FAILED when it cannot be written), the metrics. */
async function handleError(ctx: ServiceContext, error: unknown, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const http = toHttpError(error);
  let { status, code, message } = http;
  let headers = http.headers;
  if (http.internal) {
    ctx.log('error', 'request failed', {
      id: request.id,
      route: request.routeOptions.url ?? 'unmatched',
      // Not ours, so not known to be clean: API tokens masked, and cut short.
      error: error instanceof Error ? `${error.name}: ${error.message}`.replace(/cst_[A-Za-z0-9_-]+/g, 'cst_***').slice(0, 300) : 'unknown',
    });
  }
  const audit = request.audit;
  if (audit && !audit.recorded) {
    audit.recorded = true;
    const detail = error instanceof ApiError && error.options.auditDetail ? ` (${error.options.auditDetail})` : '';
    const event = ctx.audit.event(audit, http.refusal ? 'api.request.refused' : failureEvent(audit.kind), {
      reason: `${code}: ${message}${detail}`,
      signatureVerified: http.verificationFailure ? false : null,
    });
    try {
      await ctx.audit.record(event);
    } catch (auditError) {
      ctx.metrics.auditFailures.inc();
      ctx.log('error', 'audit row not written; the request fails', { id: request.id, code: (auditError as { code?: string }).code ?? 'INTERNAL' });
      // A request that failed because the database is unavailable keeps its 503 and its code (its row
      // failed for the same reason, and it did nothing); any other failure becomes AUDIT_FAILED.
      if (!(status === 503 && DATABASE_FAILURES.has(code))) {
        status = 503;
        code = 'AUDIT_FAILED';
        message = 'the request could not be audited, so it fails: try again later';
        headers = {};
      }
    }
  }
  if (audit) countFailure(ctx, audit.kind, code === 'AUDIT_FAILED' ? { ...http, refusal: false, verificationFailure: false } : http);
  // An upload refused before its body was read whole: the rest is not hashed; see linger.
  if (audit?.kind === 'upload' && !request.raw.readableEnded && !request.raw.destroyed) linger(request.raw);
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  return reply.code(status).type('application/json').send({ error: { code, message } });
}

/** How long, and how many more bytes, a refused upload's body is read and discarded before its connection is closed. */
const LINGER_MS = 2000;
const LINGER_BYTES = 8 * 1024 * 1024;

/**
 * Lingering close, as nginx does it: the client of a refused upload is still sending its body. Closing the
 * connection at once would make its next write draw a reset, and on a reset the client's kernel drops the
 * answer it has not read yet (it would see "connection reset" instead of 413). So the rest of the body is
 * read and thrown away, for at most LINGER_MS and LINGER_BYTES (memory stays flat: nothing is kept); a
 * body that ends within them leaves the connection usable, a longer one has its connection closed.
 */
function linger(stream: FastifyRequest['raw']): void {
  let discarded = 0;
  const close = () => stream.socket?.destroy();
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  const done = () => clearTimeout(timer);
  stream.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) close();
  });
  stream.once('end', done);
  stream.once('close', done);
  stream.resume();
}

function countFailure(ctx: ServiceContext, kind: AuditKind, http: HttpError): void {
  if (kind === 'sign') ctx.metrics.signatures.inc({ outcome: http.refusal ? 'refused' : 'failed' });
  if (kind === 'upload') ctx.metrics.uploads.inc({ outcome: http.refusal ? 'refused' : http.verificationFailure ? 'rejected' : 'failed' });
  if (http.refusal) ctx.metrics.refusals.inc({ reason: http.code });
  if (http.verificationFailure) ctx.metrics.verificationFailures.inc({ reason: http.code });
}
