// The Elastic Common Schema (ECS) part of an audit JSON line: nested objects (`{"event":{"action":...}}`, what
// Elastic ingests) beside the flat snake_case fields the line has always had. Fields without a value are
// left out, as ECS wants. The mapping of every event type is the table below (README: "Audit lines").
import { VERIFICATION_FAILURE_CODES } from '../error-codes';
import type { AuditEvent, AuditEventType } from './events';

export const ECS_VERSION = '8.17.0';

type Outcome = 'success' | 'failure' | 'unknown';

interface Categorization {
  category: readonly string[];
  type: readonly string[];
  outcome: Outcome;
}

const c = (category: string, type: string, outcome: Outcome): Categorization => ({ category: [category], type: [type], outcome });

/**
 * event.category / event.type (ECS allowed values, expected pairs) and event.outcome of each event type.
 * Keys, grants and tokens are configuration or IAM: added is creation, revoked is deletion (the row stays,
 * but the key or token is out of use for good), like ECS for a removed credential.
 */
export const ECS_CATEGORIZATION: Readonly<Record<AuditEventType, Categorization>> = {
  'verification.success': c('file', 'info', 'success'),
  'verification.failure': c('file', 'info', 'failure'),
  'package.load.success': c('library', 'start', 'success'),
  'package.load.failure': c('library', 'start', 'failure'),
  'package.signed': c('file', 'creation', 'success'),
  'package.sign.failure': c('file', 'creation', 'failure'),
  'package.uploaded': c('package', 'change', 'success'),
  'package.upload.failure': c('package', 'change', 'failure'),
  'package.version.reset': c('configuration', 'change', 'success'),
  'package.revoked': c('configuration', 'creation', 'success'),
  'package.unrevoked': c('configuration', 'deletion', 'success'),
  'key.signing.created': c('configuration', 'creation', 'success'),
  'key.signing.revoked': c('configuration', 'deletion', 'success'),
  'key.signing.rewrapped': c('configuration', 'change', 'success'),
  'key.trusted.added': c('configuration', 'creation', 'success'),
  'key.trusted.revoked': c('configuration', 'deletion', 'success'),
  'key.trust_acl.granted': c('configuration', 'creation', 'success'),
  'key.trust_acl.revoked': c('configuration', 'deletion', 'success'),
  'key.exported': c('configuration', 'access', 'success'),
  'token.created': c('iam', 'creation', 'success'),
  'token.revoked': c('iam', 'deletion', 'success'),
  'api.request.refused': c('api', 'denied', 'failure'),
  'audit.checkpoint.issued': c('database', 'info', 'success'),
};

const UNKNOWN: Categorization = { category: [], type: ['info'], outcome: 'unknown' };
/** Refusals of the package for what it is (its size, its format, revoked): they say nothing false about its signature. */
const REJECTED_PACKAGE_CODES: ReadonlySet<string> = new Set(['PACKAGE_TOO_LARGE', 'NOT_A_WASM_MODULE', 'PACKAGE_REVOKED']);
/** Refusals that say the signature exists and did not verify (or was refused by the policy). */
const VERIFICATION_CODES: ReadonlySet<string> = new Set(VERIFICATION_FAILURE_CODES.filter((code) => !REJECTED_PACKAGE_CODES.has(code)));

/** The error code a failure's reason starts with (`CODE: message`, see failureReason). */
function reasonCode(reason: string | null): string | undefined {
  return reason ? /^([A-Z][A-Z0-9_]*): /.exec(reason)?.[1] : undefined;
}

/** The events whose file.code_signature describes a signature check (verification, load). */
const CHECKS = new Set<AuditEventType>(['verification.success', 'verification.failure', 'package.load.success', 'package.load.failure']);

/**
 * file.code_signature: whether a signature exists and verified, who signed (signing_id and subject_name = the
 * signer's key fingerprint), and status: VERIFIED, UNSIGNED_ALLOWED, or the failure's error code.
 */
function codeSignature(event: AuditEvent, categorization: Categorization, digestAlgorithm: string): Record<string, unknown> | undefined {
  const signature: Record<string, unknown> = {};
  const code = reasonCode(event.reason);
  if (CHECKS.has(event.event_type)) {
    if (event.signature_verified === true) {
      Object.assign(signature, { exists: true, valid: true, trusted: true, status: 'VERIFIED' });
    } else if (categorization.outcome === 'success') {
      // A load of an unsigned package that the policy allowed (signatures not required).
      Object.assign(signature, { exists: false, status: 'UNSIGNED_ALLOWED' });
    } else if (code === 'SIGNATURE_NOT_FOUND') {
      Object.assign(signature, { exists: false, status: code });
    } else if (code === 'UNTRUSTED_SIGNER') {
      Object.assign(signature, { exists: true, valid: false, trusted: false, status: code });
    } else if (code && VERIFICATION_CODES.has(code)) {
      Object.assign(signature, { exists: true, valid: false, status: code });
    } else if (code) {
      // Refused before the signature was checked (unreadable file, database unavailable, ...): validity unknown.
      signature.status = code;
    }
  } else if (event.event_type === 'package.signed' || event.event_type === 'package.uploaded') {
    signature.exists = true;
    if (event.signature_verified === true) Object.assign(signature, { valid: true, trusted: true });
  } else if ((event.event_type === 'package.sign.failure' || event.event_type === 'package.upload.failure') && code) {
    signature.status = code;
  }
  if (Object.keys(signature).length === 0 && !event.signer_fingerprint) return undefined;
  // ECS has no field for a key fingerprint: signing_id (the signer's identifier) and subject_name (who signed)
  // both carry it, so rules written for either find it.
  if (event.signer_fingerprint) Object.assign(signature, { signing_id: event.signer_fingerprint, subject_name: event.signer_fingerprint });
  if (event.package_hash) signature.digest_algorithm = digestAlgorithm;
  return signature;
}

function file(event: AuditEvent, categorization: Categorization): Record<string, unknown> | undefined {
  const digestAlgorithm = event.digest_algorithm ?? 'sha256';
  const out: Record<string, unknown> = {};
  if (event.package_path) out.path = event.package_path;
  // file.hash.sha256 is ECS; file.hash.blake3 (version-2 statements with BLAKE3 digests) is not, a custom field.
  if (event.package_hash) out.hash = { [digestAlgorithm]: event.package_hash };
  // Key operations name a key, not a file: their fingerprint stays in the flat signer_fingerprint only.
  const isKeyEvent = event.event_type.startsWith('key.') || event.event_type.startsWith('token.');
  const signature = isKeyEvent ? undefined : codeSignature(event, categorization, digestAlgorithm);
  if (signature) out.code_signature = signature;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The ECS fields of an event (nested objects; absent values left out). */
export function ecsFields(event: AuditEvent): Record<string, unknown> {
  const categorization = ECS_CATEGORIZATION[event.event_type] ?? UNKNOWN;
  const fields: Record<string, unknown> = {
    '@timestamp': event.timestamp,
    ecs: { version: ECS_VERSION },
    event: {
      id: event.id,
      kind: 'event',
      action: event.event_type,
      category: [...categorization.category],
      type: [...categorization.type],
      outcome: categorization.outcome,
      ...(event.reason ? { reason: event.reason } : {}),
      dataset: 'cloacina_sign.audit',
    },
  };
  const fileFields = file(event, categorization);
  if (fileFields) fields.file = fileFields;
  if (event.org_id) fields.organization = { id: event.org_id };
  if (event.actor) fields.user = { id: event.actor };
  return fields;
}
