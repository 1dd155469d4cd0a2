// Prometheus metrics of the signing service, in a Registry of its own (never prom-client's global one).
// Label values are bounded: route patterns (never a path as sent), methods, status codes, outcomes and
// error codes. Never a hash, a path, a key id, an organization or a token id.
// Verifying an upload is the decision a runner's loader makes: it is counted in the loader's own metrics
// (cloacina_sign_verifications_total, ..._verification_duration_seconds, ..._verified_bytes_total), registered
// here by the same code, with operation="upload".
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { VerificationMetrics } from '../loading/metrics';

export type SignOutcome = 'signed' | 'refused' | 'failed';
export type UploadOutcome = 'uploaded' | 'refused' | 'rejected' | 'failed';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const UPLOAD_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly requestDuration: Histogram<'route' | 'method'>;
  readonly signatures: Counter<'outcome'>;
  readonly signDuration: Histogram;
  readonly uploads: Counter<'outcome'>;
  readonly uploadDuration: Histogram;
  readonly uploadBytes: Counter;
  readonly uploadsInProgress: Gauge;
  readonly verificationFailures: Counter<'reason'>;
  readonly refusals: Counter<'reason'>;
  readonly auditFailures: Counter;
  /** Upload verifications, in the metrics a package loader counts its verifications in (operation="upload"). */
  readonly verifications: VerificationMetrics;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'cloacina_sign_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method and status code',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'cloacina_sign_http_request_duration_seconds',
      help: 'Time from a request arriving to its response being sent, by route pattern and method',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.signatures = new Counter({
      name: 'cloacina_sign_signatures_total',
      help: 'Signing requests by outcome: signed, refused (authentication, scope, rate limit), failed',
      labelNames: ['outcome'],
      registers,
    });
    this.signDuration = new Histogram({
      name: 'cloacina_sign_sign_duration_seconds',
      help: 'Time to sign a digest, audit row included (signed requests only)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.uploads = new Counter({
      name: 'cloacina_sign_uploads_total',
      help: 'Package uploads by outcome: uploaded, refused (authentication, scope, rate limit, size), rejected (verification failed), failed',
      labelNames: ['outcome'],
      registers,
    });
    this.uploadDuration = new Histogram({
      name: 'cloacina_sign_upload_duration_seconds',
      help: 'Time to receive, hash, verify and store an upload (uploaded packages only)',
      buckets: UPLOAD_BUCKETS,
      registers,
    });
    this.uploadBytes = new Counter({ name: 'cloacina_sign_upload_received_bytes_total', help: 'Package bytes received by uploads', registers });
    this.uploadsInProgress = new Gauge({ name: 'cloacina_sign_uploads_in_progress', help: 'Uploads whose body is being received', registers });
    this.verificationFailures = new Counter({
      name: 'cloacina_sign_verification_failures_total',
      help: 'Uploads whose signature did not verify, by reason (TAMPERED_PACKAGE, UNTRUSTED_SIGNER, ...)',
      labelNames: ['reason'],
      registers,
    });
    this.refusals = new Counter({
      name: 'cloacina_sign_requests_refused_total',
      help: 'Requests refused before any work, by reason (API_UNAUTHORIZED, API_FORBIDDEN, API_RATE_LIMITED, PACKAGE_TOO_LARGE)',
      labelNames: ['reason'],
      registers,
    });
    this.auditFailures = new Counter({
      name: 'cloacina_sign_audit_failures_total',
      help: 'Requests that failed because their audit row could not be written',
      registers,
    });
    this.verifications = new VerificationMetrics(this.registry, ['upload']);
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'cloacina_sign_' });
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
