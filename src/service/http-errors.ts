// Errors as HTTP responses: `{ "error": { "code", "message" } }` with a status. Messages of errors we did
// not make ourselves are never passed through (a JSON parser's message quotes the body it choked on).
import { CloacinaSignError, type ErrorCode, VerificationFailure } from '../errors';

/** An error with its HTTP status; `refusal`: the request was refused before any work (401, 403, 429). */
export class ApiError extends CloacinaSignError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    readonly options: {
      headers?: Record<string, string>;
      refusal?: boolean;
      /** What the audit row says besides the message (never sent to the client): why a token was refused. */
      auditDetail?: string;
    } = {},
  ) {
    super(code, message);
  }
}

export function unauthorized(message: string, auditDetail?: string): ApiError {
  return new ApiError(401, 'API_UNAUTHORIZED', message, { headers: { 'www-authenticate': 'Bearer' }, refusal: true, auditDetail });
}

export function forbidden(message: string): ApiError {
  return new ApiError(403, 'API_FORBIDDEN', message, { refusal: true });
}

export function rateLimited(retryAfterSeconds: number): ApiError {
  return new ApiError(429, 'API_RATE_LIMITED', `too many requests: retry in ${retryAfterSeconds} s`, {
    headers: { 'retry-after': String(retryAfterSeconds) },
    refusal: true,
  });
}

export function tooLarge(limit: number): ApiError {
  return new ApiError(413, 'PACKAGE_TOO_LARGE', `the package is larger than this service accepts (${limit} bytes): nothing was stored`);
}

export interface HttpError {
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
  refusal: boolean;
  verificationFailure: boolean;
  /** Our own error: its message is ours and may be shown. */
  internal: boolean;
}

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  INVALID_INPUT: 400,
  USAGE: 400,
  NOT_FOUND: 404,
  KEY_REVOKED: 409,
  ALREADY_EXISTS: 409,
  PACKAGE_TOO_LARGE: 413,
  UPLOAD_ABORTED: 400,
  DATABASE_UNAVAILABLE: 503,
  DATABASE_ERROR: 503,
  DATABASE_DRIVER_MISSING: 503,
  AUDIT_FAILED: 503,
  KEK_UNAVAILABLE: 503,
  KEY_UNSEAL_FAILED: 500,
};

/** Fastify's own errors: a status and a message of ours for each. */
function fastifyError(error: { code?: string; statusCode?: number; validation?: unknown; message?: string }): HttpError | undefined {
  const base = { headers: {}, refusal: false, verificationFailure: false, internal: false };
  if (error.validation) return { ...base, status: 400, code: 'INVALID_INPUT', message: `invalid request: ${error.message}` };
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { ...base, status: 413, code: 'INVALID_INPUT', message: 'the request body is too large' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { ...base, status: 415, code: 'INVALID_INPUT', message: 'unsupported content type for this route' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { ...base, status: 400, code: 'INVALID_INPUT', message: 'the JSON body is empty' };
  }
  const status = error.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { ...base, status, code: 'INVALID_INPUT', message: status === 400 ? 'the request body is not valid JSON' : 'the request was refused' };
  }
  return undefined;
}

export function toHttpError(error: unknown): HttpError {
  if (error instanceof ApiError) {
    return {
      status: error.status,
      code: error.code,
      message: error.message,
      headers: error.options.headers ?? {},
      refusal: error.options.refusal === true,
      verificationFailure: false,
      internal: false,
    };
  }
  if (error instanceof VerificationFailure) {
    return { status: 403, code: error.code, message: error.message, headers: {}, refusal: false, verificationFailure: true, internal: false };
  }
  if (error instanceof CloacinaSignError) {
    const status = STATUS_BY_CODE[error.code] ?? 500;
    return { status, code: error.code, message: error.message, headers: {}, refusal: false, verificationFailure: false, internal: false };
  }
  const known = fastifyError(error as { code?: string; statusCode?: number });
  if (known) return known;
  return { status: 500, code: 'INTERNAL', message: 'internal error', headers: {}, refusal: false, verificationFailure: false, internal: true };
}
