// PostgreSQL LISTEN on the change channel with a dedicated connection. If the connection fails, the
// periodic version check of ChangeFeed still bounds staleness; the listener reconnects on next use.
import { CHANGE_CHANNEL } from '../db/transaction';

/** The part of pg's Client used here (pg ships no types and @types/pg is not a dependency). */
interface Client {
  on(event: 'notification' | 'error', listener: () => void): void;
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}

export class PgListener {
  private client: Client | undefined;
  private starting: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly connectionString: string,
    private readonly onChange: () => void,
  ) {}

  /** Connects and listens; never throws (the poll remains the safety net). */
  async start(): Promise<void> {
    this.starting ??= this.connect().catch(() => {
      this.client = undefined;
    });
    await this.starting;
  }

  private async connect(): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Client: PgClient } = require('pg') as { Client: new (config: object) => Client };
    const client = new PgClient({ connectionString: this.connectionString, connectionTimeoutMillis: 5000 });
    client.on('notification', () => this.onChange());
    client.on('error', () => this.onChange());
    await client.connect();
    await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    if (this.stopped) {
      await client.end();
      return;
    }
    this.client = client;
    // Anything committed while we were connecting was not notified to us: treat it as changed.
    this.onChange();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.starting;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
