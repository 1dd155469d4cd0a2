// PostgreSQL LISTEN on the change channel with a dedicated connection. When that connection is lost it
// reconnects in the background with backoff; meanwhile the periodic version check of ChangeFeed bounds
// staleness, and every loss or reconnect counts as a change (notifications may have been missed).
// Setting the connection up (connect, TLS, start-up, LISTEN) is bounded as a whole by the database's
// bound: past it, or when stopped meanwhile, its socket is destroyed, so nothing keeps the process alive.
import { CHANGE_CHANNEL } from './transaction';

/** The part of pg's Client used here (pg ships no types and @types/pg is not a dependency). */
interface Client {
  on(event: 'notification' | 'error' | 'end', listener: () => void): void;
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
  connection?: { stream?: { destroy(): void } };
}

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 30_000;
/** Shown in pg_stat_activity, so operators (and tests) can tell the listener's connection apart. */
export const LISTENER_APPLICATION_NAME = 'cloacina-sign-listener';

export class PgListener {
  private client: Client | undefined;
  /** The connection being set up, torn down by `stop()` rather than waited for. */
  private settingUp: Client | undefined;
  private starting: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = FIRST_RETRY_MS;
  private stopped = false;

  constructor(
    private readonly connectionString: string,
    private readonly onChange: () => void,
    private readonly timeoutMs: number,
  ) {}

  /** Connects and listens; never throws (the poll remains the safety net; a failure is retried). */
  async start(): Promise<void> {
    this.starting ??= this.connect();
    await this.starting;
  }

  /** Whether notifications are being received right now. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  private async connect(): Promise<void> {
    const { Client: PgClient } = require('pg') as { Client: new (config: object) => Client };
    const client = new PgClient({
      connectionString: this.connectionString,
      keepAlive: true,
      application_name: LISTENER_APPLICATION_NAME,
    });
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      this.lost(client);
    };
    client.on('notification', () => this.onChange());
    client.on('error', onLost);
    client.on('end', onLost);
    this.settingUp = client;
    const setUpTimer = setTimeout(() => destroy(client), this.timeoutMs);
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch {
      destroy(client);
      onLost();
      return;
    } finally {
      clearTimeout(setUpTimer);
      this.settingUp = undefined;
    }
    if (this.stopped || lost) {
      await this.end(client);
      return;
    }
    this.client = client;
    this.retryMs = FIRST_RETRY_MS;
    // Anything committed while we were (re)connecting was not notified to us: treat it as changed.
    this.onChange();
  }

  private lost(client: Client): void {
    if (this.client === client) this.client = undefined;
    this.onChange();
    if (this.stopped || this.retryTimer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped) this.starting = this.connect();
    }, delay);
    // A lost listener must not keep the process alive.
    this.retryTimer.unref();
  }

  /** Drops the current connection (a stalled one never reports itself lost); the usual backoff reconnects. */
  reconnect(): void {
    if (this.client) destroy(this.client);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.settingUp) destroy(this.settingUp);
    await this.starting;
    const client = this.client;
    this.client = undefined;
    if (client) await this.end(client);
  }

  /** Ends a connection politely, or tears it down when the server does not answer in time. */
  private async end(client: Client): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        destroy(client);
        resolve();
      }, this.timeoutMs);
    });
    await Promise.race([client.end().catch(() => undefined), timedOut]);
    clearTimeout(timer);
  }
}

/** Tears a connection down at once: its socket (TLS included) is destroyed, pending work fails. */
function destroy(client: Client): void {
  client.connection?.stream?.destroy();
}
