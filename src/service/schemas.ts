// JSON schemas of every route: fastify validates requests and serializes responses with them, and
// /v1/openapi.json is generated from them (see openapi.ts).
import { MAX_BATCH_SIGNATURES } from '../signing/api-client';

const HEX64 = '^[0-9a-f]{64}$';
const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export const errorBody = {
  type: 'object',
  description: 'An error: `code` is stable (API_UNAUTHORIZED, API_FORBIDDEN, API_RATE_LIMITED, TAMPERED_PACKAGE, UNTRUSTED_SIGNER, ...)',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

const errors = { '4xx': errorBody, '5xx': errorBody };

export const signatureDocument = {
  type: 'object',
  description: 'The version-1 detached signature document, byte for byte what offline signing writes (compact JSON and a newline)',
  required: ['version', 'algorithm', 'package_hash', 'key_fingerprint', 'signature', 'signed_at'],
  additionalProperties: false,
  properties: {
    version: { type: 'integer', enum: [1] },
    algorithm: { type: 'string', enum: ['ed25519'] },
    package_hash: { type: 'string', pattern: HEX64 },
    key_fingerprint: { type: 'string', pattern: HEX64 },
    signature: { type: 'string', description: 'standard base64 of the 64-byte Ed25519 signature over the raw 32-byte digest' },
    signed_at: { type: 'string', format: 'date-time' },
  },
} as const;

export const signSchema = {
  summary: 'Sign a package digest with a database key (the key never leaves the service; the package never travels)',
  operationId: 'sign',
  body: {
    type: 'object',
    required: ['keyId', 'packageHash'],
    additionalProperties: false,
    properties: {
      keyId: { type: 'string', pattern: UUID, description: 'a signing key named in the token scopes (sign:<key-id>)' },
      packageHash: {
        type: 'string',
        pattern: HEX64,
        description: "lowercase hex digest of the package: SHA-256, or with `statement` the statement's digest algorithm",
      },
      store: { type: 'boolean', description: 'also store the signature in the database (version 1 only; default false)' },
      statement: {
        type: 'object',
        description: 'sign a version-2 statement instead: the service sets issued_at to its own clock',
        required: ['name', 'version', 'size'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 255 },
          version: { type: 'string', minLength: 1, maxLength: 255, description: 'SemVer 2.0.0' },
          organization: {
            type: 'string',
            minLength: 1,
            maxLength: 255,
            description: "the token's organization, by its name exactly as stored (any other is 403); absent: the statement names no organization",
          },
          size: { type: 'integer', minimum: 0, maximum: 9007199254740991, description: 'the package size in bytes' },
          digestAlgorithm: { type: 'string', enum: ['blake3', 'sha256'], description: 'default blake3' },
          expiresAt: { type: 'string', maxLength: 64, description: 'RFC 3339 UTC' },
        },
      },
    },
  },
  response: { 200: { description: 'the signature document', content: { 'application/json': { schema: signatureDocument } } }, ...errors },
} as const;

export const signBatchSchema = {
  summary:
    'Sign up to 256 package digests (version 1) with a database key in one request: all are checked first, then all are signed or none; each signature costs one request of the rate limit and has its own audit row',
  operationId: 'signBatch',
  body: {
    type: 'object',
    required: ['keyId', 'packageHashes'],
    additionalProperties: false,
    properties: {
      keyId: { type: 'string', pattern: UUID, description: 'a signing key named in the token scopes (sign:<key-id>)' },
      packageHashes: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_BATCH_SIGNATURES,
        items: { type: 'string', pattern: HEX64 },
        description: 'lowercase hex SHA-256 digests of the packages; the signatures come back in this order',
      },
    },
  },
  response: {
    200: {
      type: 'object',
      description: "one signature per digest, in the request's order",
      required: ['signatures'],
      additionalProperties: false,
      properties: {
        signatures: {
          type: 'array',
          items: {
            type: 'object',
            required: ['packageHash', 'document'],
            additionalProperties: false,
            properties: {
              packageHash: { type: 'string', pattern: HEX64 },
              document: {
                type: 'string',
                description:
                  'the version-1 signature document, byte for byte what offline signing writes without its final newline (a `.sig` file is this and a newline)',
              },
            },
          },
        },
      },
    },
    ...errors,
  },
} as const;

export const uploadResult = {
  type: 'object',
  required: ['packageId', 'signatureId', 'orgId', 'packageHash', 'keyFingerprint', 'signedAt', 'name', 'bytes'],
  additionalProperties: false,
  properties: {
    packageId: { type: 'string' },
    signatureId: { type: 'string' },
    orgId: { type: 'string' },
    packageHash: { type: 'string', pattern: HEX64 },
    keyFingerprint: { type: 'string', pattern: HEX64 },
    signedAt: { type: 'string' },
    name: { type: ['string', 'null'] },
    bytes: { type: 'integer' },
  },
} as const;

export const uploadSchema = {
  summary: "Upload a package with its signature: hashed as it streams in, verified against the organization's trust, then stored",
  operationId: 'uploadPackage',
  params: {
    type: 'object',
    required: ['org'],
    properties: { org: { type: 'string', minLength: 1, maxLength: 255, description: "the token's organization, by id or name" } },
  },
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      name: {
        type: 'string',
        minLength: 1,
        maxLength: 1024,
        description: "the package's name (default: none): stored trimmed and NFC, 1 to 255 characters, no control or bidirectional characters",
      },
      name_conflict: {
        type: 'string',
        enum: ['refuse', 'rename', 'keep'],
        description: 'when the package is stored under another name: refuse (default, 409 ALREADY_EXISTS), rename it, or keep the stored name',
      },
    },
  },
  headers: {
    type: 'object',
    properties: {
      'cloacina-signature': { type: 'string', maxLength: 16384, description: 'standard base64 of the version-1 signature document (the .sig file)' },
    },
  },
  response: { 201: { description: 'verified and stored', ...uploadResult }, ...errors },
} as const;

export const publicKeySchema = {
  summary: "A signing or trusted key's public half, of the token's organization: PEM (default) or the raw 32 bytes",
  operationId: 'publicKey',
  params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: UUID } } },
  querystring: { type: 'object', additionalProperties: false, properties: { format: { type: 'string', enum: ['pem', 'raw'] } } },
  response: {
    200: {
      description: 'the public key',
      content: {
        'application/x-pem-file': { schema: { type: 'string' } },
        'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
      },
    },
    ...errors,
  },
} as const;

export const revokeSelfSchema = {
  summary:
    "Revoke the bearer's own token (a CI job ends its token when it is done): audited as token.revoked with the token's id as the actor; every service process sharing the database refuses it (401) within 1 s",
  operationId: 'revokeOwnToken',
  response: {
    204: { description: 'revoked: from now on the token is refused (401) by every service process sharing the database, within 1 s', type: 'null' },
    ...errors,
  },
} as const;

export const checkpointSchema = {
  summary:
    'The latest signed checkpoint of the audit chain (the one covering the most rows; of those, the newest), as a C2SP signed note; no token needed (rate limited per client address)',
  operationId: 'auditCheckpoint',
  response: {
    200: {
      description: 'the checkpoint note (`audit verify --checkpoint` checks it)',
      content: { 'text/plain; charset=utf-8': { schema: { type: 'string' } } },
    },
    ...errors,
  },
} as const;

export const healthSchema = {
  summary: 'Liveness: the process answers',
  operationId: 'healthz',
  response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } },
} as const;

const readiness = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', enum: ['ready', 'unready'] }, reason: { type: 'string' } },
} as const;

export const readySchema = {
  summary: 'Readiness: the database answers and its schema is migrated (503 otherwise)',
  operationId: 'readyz',
  response: { 200: readiness, 503: readiness },
} as const;

export const metricsSchema = {
  summary: 'Prometheus metrics (text exposition format)',
  operationId: 'metrics',
  response: { 200: { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
} as const;

export const openApiSchema = {
  summary: 'This description (OpenAPI 3.1)',
  operationId: 'openapi',
  response: { 200: { type: 'object', additionalProperties: true } },
} as const;
