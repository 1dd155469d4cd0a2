// The CLI's client of the signing service (`package sign --api-url`, `package upload --api-url`): Node's
// fetch, a bounded wait, and errors that say what went wrong without ever showing the token.
//  - sign: the package is hashed here; only its digest travels. The answer is checked (a canonical
//    document over exactly that digest; for version 2, saying exactly what was asked) before anyone
//    writes it.
//  - upload: the package is streamed from disk (never read whole), its signature in a header; the wait is
//    bounded by silence (no byte sent or received for `timeoutMs`), not by the total time.
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { CloacinaSignError, type ErrorCode, errorForCode, type VerificationFailureCode } from '../errors';
import { VERIFICATION_FAILURE_CODES } from '../error-codes';
import { DetachedSignature } from '../formats/v1';
import { type SignedStatementDocument, signedStatementOf } from '../formats/v2';

export const API_TOKEN_ENV = 'CLOACINA_API_TOKEN';
export const DEFAULT_API_TIMEOUT_MS = 30_000;
/** The answer header of a signing with `store`: the stored signature's id. */
export const SIGNATURE_ID_HEADER = 'cloacina-signature-id';
/** The most digests one `POST /v1/sign/batch` signs (the service's schema and the CLI's batching share it). */
export const MAX_BATCH_SIGNATURES = 256;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The most a JSON answer of the service may be. */
const MAX_ANSWER_BYTES = 64 * 1024;
const UPLOAD_CHUNK = 1024 * 1024;

const VERIFICATION_CODES: ReadonlySet<string> = new Set<VerificationFailureCode>(VERIFICATION_FAILURE_CODES);
/** Codes of the service's answers passed on as they are (anything else is API_ERROR). */
const PASSED_ON: ReadonlySet<string> = new Set<ErrorCode>([
  'INVALID_INPUT',
  'KEY_REVOKED',
  'KEY_UNSEAL_FAILED',
  'PACKAGE_TOO_LARGE',
  'AUDIT_FAILED',
  'DATABASE_UNAVAILABLE',
  'DATABASE_ERROR',
  'DATABASE_DRIVER_MISSING',
  'UPLOAD_ABORTED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
]);
/** Certificate and handshake failures: API_TLS_ERROR rather than unreachable. */
const TLS_CODE = /^(CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|ERR_TLS_|ERR_SSL_|EPROTO$|HOSTNAME_MISMATCH)/;

export interface SigningServiceClientOptions {
  /** The service's base URL: https://signing.example.com (or http:// to a loopback address). */
  url: string;
  /** An API token (cst_...). Sent in the Authorization header only; never in a message. */
  token: string;
  /** Longest silence before giving up (default 30 s). */
  timeoutMs?: number;
  /** Allow plain http:// to a non-loopback host (the token would travel in clear text). */
  allowInsecureHttp?: boolean;
}

export interface ApiSignResult {
  /** Exactly the bytes the service answered: what `package sign` writes, a canonical document and a newline. */
  document: string;
  signature: DetachedSignature;
  /** With `store`: the id of the stored signature (the service's `cloacina-signature-id` header). */
  signatureId?: string;
}

/** What a version-2 statement signed by the service says besides the digest (the service sets issued_at). */
export interface ApiStatementRequest {
  name: string;
  version: string;
  organization?: string;
  /** The package's size in bytes. */
  size: number;
  digestAlgorithm: 'blake3' | 'sha256';
  /** RFC 3339 UTC. */
  expiresAt?: string;
}

export interface ApiUploadResult {
  packageId: string;
  signatureId: string;
  orgId: string;
  packageHash: string;
  keyFingerprint: string;
  signedAt: string;
  name: string | null;
  bytes: number;
}

/** The token from CLOACINA_API_TOKEN; USAGE when it is unset. */
export function apiTokenFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const token = env[API_TOKEN_ENV]?.trim();
  if (!token) throw new CloacinaSignError('USAGE', `no API token: set ${API_TOKEN_ENV} (see \`cloacina-sign tokens create\`)`);
  return token;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The base URL, checked: http(s), no credentials, no query; http only to loopback unless allowed. */
export function serviceUrl(text: string, allowInsecureHttp = false): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CloacinaSignError('USAGE', `--api-url must be a URL such as https://signing.example.com, not ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CloacinaSignError('USAGE', '--api-url must be an http:// or https:// URL');
  if (url.username || url.password) throw new CloacinaSignError('USAGE', '--api-url may not carry credentials: the token comes from CLOACINA_API_TOKEN');
  if (url.search || url.hash) throw new CloacinaSignError('USAGE', '--api-url may not carry a query or a fragment');
  if (url.protocol === 'http:' && !isLoopback(url.hostname) && !allowInsecureHttp) {
    throw new CloacinaSignError(
      'USAGE',
      `refusing to send the API token in clear text to ${url.host}: use https:// (or --allow-insecure-http, for a network you trust end to end)`,
    );
  }
  if (!url.pathname.endsWith('/')) url.pathname = `${url.pathname}/`;
  return url;
}

/** A failed fetch (no answer at all): unreachable, TLS, or silent for too long. */
function transportError(error: unknown, where: string, timeoutMs: number, timedOut: boolean): CloacinaSignError {
  if (timedOut || (error as Error)?.name === 'TimeoutError' || (error as Error)?.name === 'AbortError') {
    return new CloacinaSignError('API_UNREACHABLE', `the signing service at ${where} did not answer within ${timeoutMs} ms`, { cause: error });
  }
  let cause = (error as { cause?: unknown })?.cause ?? error;
  // undici wraps socket errors once more.
  if ((cause as { cause?: unknown })?.cause && !(cause as { code?: string }).code) cause = (cause as { cause: unknown }).cause;
  const code = String((cause as { code?: string })?.code ?? '');
  const reason = (cause as Error)?.message || String(cause);
  if (TLS_CODE.test(code) || /certificate|SSL|TLS/i.test(reason)) {
    return new CloacinaSignError('API_TLS_ERROR', `TLS with the signing service at ${where} failed: ${reason}${code ? ` (${code})` : ''}`, { cause: error });
  }
  return new CloacinaSignError(
    'API_UNREACHABLE',
    `the signing service at ${where} is unreachable: ${reason}${code && !reason.includes(code) ? ` (${code})` : ''}`,
    {
      cause: error,
    },
  );
}

async function readCapped(response: Response, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  if (!response.body) return Buffer.alloc(0);
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    length += chunk.length;
    if (length > limit) throw new CloacinaSignError('API_ERROR', `the signing service answered with more than ${limit} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** The typed error for an answer that is not a success. */
function answerError(status: number, body: Buffer, headers: Headers): CloacinaSignError {
  let code = '';
  let message = '';
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
    code = typeof parsed.error?.code === 'string' ? parsed.error.code : '';
    message = typeof parsed.error?.message === 'string' ? parsed.error.message : '';
  } catch {
    // not ours (a proxy's page): the status says enough
  }
  const said = message ? `: ${message}` : '';
  if (status === 401) return new CloacinaSignError('API_UNAUTHORIZED', `the signing service refused the API token (401)${said}`);
  if (status === 429) {
    const retry = headers.get('retry-after');
    return new CloacinaSignError('API_RATE_LIMITED', `the signing service is rate limiting this token (429)${retry ? `: retry in ${retry} s` : said}`);
  }
  if (status === 403 && VERIFICATION_CODES.has(code)) return errorForCode(code as ErrorCode, message || code);
  if (status === 403) return new CloacinaSignError('API_FORBIDDEN', `the signing service refused (403)${said}`);
  if (PASSED_ON.has(code)) return new CloacinaSignError(code as ErrorCode, `the signing service answered ${status}${said}`);
  return new CloacinaSignError('API_ERROR', `the signing service answered ${status}${code ? ` ${code}` : ''}${said}`);
}

export class SigningServiceClient {
  readonly baseUrl: URL;
  private readonly token: string;
  readonly timeoutMs: number;

  constructor(options: SigningServiceClientOptions) {
    this.baseUrl = serviceUrl(options.url, options.allowInsecureHttp);
    if (!options.token || /\s/.test(options.token)) throw new CloacinaSignError('USAGE', `the API token (${API_TOKEN_ENV}) is empty or holds whitespace`);
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Where the service is, for messages. */
  get where(): string {
    return this.baseUrl.origin + this.baseUrl.pathname.replace(/\/$/, '');
  }

  /** Signs a digest with a database key the token may use; the answer is checked before it is returned. */
  async sign(keyId: string, packageHash: string, options: { store?: boolean } = {}): Promise<ApiSignResult> {
    const { status, body, headers } = await this.request('v1/sign', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ keyId, packageHash, ...(options.store ? { store: true } : {}) }),
    });
    if (status !== 200) throw answerError(status, body, headers);
    const document = body.toString('utf8');
    let signature: DetachedSignature;
    try {
      signature = DetachedSignature.parse(document.endsWith('\n') ? document.slice(0, -1) : document);
    } catch (error) {
      throw new CloacinaSignError('API_ERROR', `the signing service answered something that is not a signature document: ${(error as Error).message}`);
    }
    if (`${signature.toString()}\n` !== document)
      throw new CloacinaSignError('API_ERROR', 'the signing service answered a signature document that is not canonical');
    if (signature.packageHash !== packageHash) {
      throw new CloacinaSignError('API_ERROR', `the signing service signed ${signature.packageHash}, not the digest sent (${packageHash})`);
    }
    const signatureId = options.store ? (headers.get(SIGNATURE_ID_HEADER) ?? undefined) : undefined;
    if (options.store && (signatureId === undefined || !UUID.test(signatureId))) {
      throw new CloacinaSignError('API_ERROR', 'the signing service did not say the id of the signature it stored');
    }
    return { document, signature, signatureId };
  }

  /**
   * Signs up to 256 SHA-256 digests with a database key the token may use, in one request: all are signed
   * or none is (a refusal of any digest refuses the batch). Every answer is checked before any is returned:
   * canonical version-1 documents of exactly the digests sent, in their order.
   */
  async signBatch(keyId: string, packageHashes: readonly string[]): Promise<ApiSignResult[]> {
    const { status, body, headers } = await this.request('v1/sign/batch', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ keyId, packageHashes }),
    });
    if (status !== 200) throw answerError(status, body, headers);
    let signatures: unknown;
    try {
      signatures = (JSON.parse(body.toString('utf8')) as { signatures?: unknown }).signatures;
    } catch {
      throw new CloacinaSignError('API_ERROR', 'the signing service answered something that is not JSON');
    }
    if (!Array.isArray(signatures) || signatures.length !== packageHashes.length) {
      throw new CloacinaSignError('API_ERROR', `the signing service did not answer one signature per digest (${packageHashes.length} sent)`);
    }
    return signatures.map((item: { document?: unknown }, index) => {
      const document = typeof item?.document === 'string' ? item.document : '';
      let signature: DetachedSignature;
      try {
        signature = DetachedSignature.parse(document);
      } catch (error) {
        throw new CloacinaSignError('API_ERROR', `the signing service answered something that is not a signature document: ${(error as Error).message}`);
      }
      if (signature.toString() !== document)
        throw new CloacinaSignError('API_ERROR', 'the signing service answered a signature document that is not canonical');
      if (signature.packageHash !== packageHashes[index]) {
        throw new CloacinaSignError('API_ERROR', `the signing service signed ${signature.packageHash}, not the digest sent (${packageHashes[index]})`);
      }
      return { document: `${document}\n`, signature };
    });
  }

  /**
   * Signs a version-2 statement about a package hashed here (`digest` in the statement's algorithm). The
   * answer is checked before it is returned: a canonical version-2 document saying exactly what was asked.
   */
  async signStatement(keyId: string, digest: string, statement: ApiStatementRequest): Promise<SignedStatementDocument> {
    const { status, body, headers } = await this.request('v1/sign', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ keyId, packageHash: digest, statement }),
    });
    if (status !== 200) throw answerError(status, body, headers);
    const document = body.toString('utf8');
    let signed: SignedStatementDocument;
    try {
      signed = signedStatementOf(document.endsWith('\n') ? document.slice(0, -1) : document);
    } catch (error) {
      throw new CloacinaSignError(
        'API_ERROR',
        `the signing service answered something that is not a version-2 signature document: ${(error as Error).message}`,
      );
    }
    if (`${signed.document}\n` !== document)
      throw new CloacinaSignError('API_ERROR', 'the signing service answered a signature document that is not canonical');
    const said = signed.statement;
    const asked: Array<[string, unknown, unknown]> = [
      ['digest', said.digest, digest],
      ['digest algorithm', said.digestAlgorithm, statement.digestAlgorithm],
      ['size', said.size, statement.size],
      ['name', said.name, statement.name],
      ['version', said.version, statement.version],
      ['organization', said.organization, statement.organization ?? null],
      ['expiry', said.expiresAt === null ? null : Date.parse(said.expiresAt), statement.expiresAt === undefined ? null : Date.parse(statement.expiresAt)],
    ];
    for (const [field, got, wanted] of asked) {
      if (got !== wanted) throw new CloacinaSignError('API_ERROR', `the signing service signed a statement whose ${field} is not the one sent`);
    }
    return signed;
  }

  /** Streams a package and its signature document to the organization; verification failures arrive typed (exit 1). */
  async upload(
    org: string,
    packagePath: string,
    signatureDocument: string,
    options: { name?: string; nameConflict?: 'refuse' | 'rename' | 'keep' } = {},
  ): Promise<ApiUploadResult> {
    const file = await open(packagePath, 'r').catch((error: NodeJS.ErrnoException) => {
      throw new CloacinaSignError('UNREADABLE_FILE', `cannot read ${packagePath}: ${error.code ?? error.message}`, { cause: error });
    });
    try {
      const stat = await file.stat();
      if (!stat.isFile()) throw new CloacinaSignError('UNREADABLE_FILE', `cannot read ${packagePath}: not a regular file`);
      const stream = file.createReadStream({ highWaterMark: UPLOAD_CHUNK, autoClose: false });
      const params = new URLSearchParams({
        ...(options.name ? { name: options.name } : {}),
        ...(options.name && options.nameConflict ? { name_conflict: options.nameConflict } : {}),
      });
      const query = params.size > 0 ? `?${params}` : '';
      const { status, body, headers } = await this.request(
        `v1/orgs/${encodeURIComponent(org)}/packages${query}`,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(stat.size),
            'cloacina-signature': Buffer.from(signatureDocument, 'utf8').toString('base64'),
          },
          body: Readable.toWeb(stream) as unknown as ReadableStream,
          duplex: 'half',
        } as RequestInit,
        stream,
      );
      if (status !== 201) throw answerError(status, body, headers);
      try {
        return JSON.parse(body.toString('utf8')) as ApiUploadResult;
      } catch {
        throw new CloacinaSignError('API_ERROR', 'the signing service answered the upload with something that is not JSON');
      }
    } finally {
      await file.close().catch(() => undefined);
    }
  }

  /** One request; rejects only when there is no answer at all (unreachable, TLS, silent for timeoutMs). */
  private async request(path: string, init: RequestInit, progress?: Readable): Promise<{ status: number; body: Buffer; headers: Headers }> {
    const url = new URL(path, this.baseUrl);
    const controller = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.timeoutMs);
    };
    arm();
    // Bytes leaving (an upload) count as activity: only silence times out.
    progress?.on('data', arm);
    try {
      const response = await fetch(url, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${this.token}`, accept: 'application/json' },
        signal: controller.signal,
        redirect: 'error',
      });
      arm();
      const body = await readCapped(response, MAX_ANSWER_BYTES);
      return { status: response.status, body, headers: response.headers };
    } catch (error) {
      if (error instanceof CloacinaSignError) throw error;
      throw transportError(error, this.where, this.timeoutMs, timedOut);
    } finally {
      clearTimeout(timer);
      progress?.off('data', arm);
      progress?.destroy();
    }
  }
}
