// A TCP proxy in front of PostgreSQL that can go silent: at a moment the test chooses (`stall()`), or at a
// given position of the conversation (after the client's first N messages). A hung middlebox or a server
// that stops answering looks exactly like this to the client: the connection stays open, nothing comes back.
import { type AddressInfo, connect, createServer, type Server, Socket } from 'node:net';

/** The first message's code when the client asks for TLS (SSLRequest) or GSSAPI encryption (GSSENCRequest). */
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * Splits what a PostgreSQL client sends into messages: the untyped first message (StartupMessage,
 * SSLRequest, CancelRequest: a length, then the body), then typed ones (one byte, a length, the body).
 * After an SSLRequest the server's one-byte answer decides: 'S' and the rest is TLS, whose records are
 * counted as the messages (their content is encrypted); 'N' and an untyped StartupMessage follows.
 */
class ClientMessages {
  private mode: 'untyped' | 'typed' | 'awaiting-answer' | 'tls' = 'untyped';
  private buffered = Buffer.alloc(0);

  /** What a message is: its type letter ('Q' query, 'P' parse, 'X' terminate...), `startup`, `ssl-request` or `tls`. */
  static kind(message: Buffer, mode: 'untyped' | 'typed' | 'tls'): string {
    if (mode === 'tls') return 'tls';
    if (mode === 'typed') return String.fromCharCode(message[0]);
    const code = message.readInt32BE(4);
    return code === SSL_REQUEST ? 'ssl-request' : code === GSSENC_REQUEST ? 'gssenc-request' : 'startup';
  }

  /** The complete messages `chunk` finishes, each with its kind. */
  push(chunk: Buffer): { message: Buffer; kind: string }[] {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    return this.take();
  }

  /** The server's first bytes after an SSLRequest: the answer decides how the client continues. */
  serverAnswered(chunk: Buffer): { message: Buffer; kind: string }[] {
    if (this.mode !== 'awaiting-answer' || chunk.length === 0) return [];
    this.mode = chunk[0] === 0x53 || chunk[0] === 0x47 ? 'tls' : 'untyped';
    return this.take();
  }

  private take(): { message: Buffer; kind: string }[] {
    const messages: { message: Buffer; kind: string }[] = [];
    for (;;) {
      const size = this.nextSize();
      if (size === undefined || this.buffered.length < size) return messages;
      const message = this.buffered.subarray(0, size);
      this.buffered = this.buffered.subarray(size);
      const kind = ClientMessages.kind(message, this.mode as 'untyped' | 'typed' | 'tls');
      if (this.mode === 'untyped') this.mode = kind === 'startup' ? 'typed' : 'awaiting-answer';
      messages.push({ message, kind });
    }
  }

  private nextSize(): number | undefined {
    const b = this.buffered;
    switch (this.mode) {
      case 'untyped':
        return b.length >= 8 ? b.readInt32BE(0) : undefined;
      case 'typed':
        return b.length >= 5 ? 1 + b.readInt32BE(1) : undefined;
      case 'tls':
        return b.length >= 5 ? 5 + b.readUInt16BE(3) : undefined;
      default:
        return undefined;
    }
  }
}

export interface StallingProxyOptions {
  /**
   * Forward only the first `n` messages the clients send (counted over every connection, in the order
   * they arrive), then stall for good. 0 stalls from the start: the first connection is accepted, and
   * nothing of it reaches the server. Unset: forward until `stall()`.
   */
  stallAfterClientMessages?: number;
}

/**
 * Forwards normally; once stalled it keeps every client connection open (and accepts new ones) but
 * forwards nothing in either direction, not even a close. `resume()` forwards again for new connections
 * only; the stalled ones stay silent for good. The server's side of a silenced connection is closed, as a
 * server does once its peer is gone: its session ends and releases its locks, so a stalled client never
 * holds up another one (the tests run many at once on one database).
 */
export class StallingProxy {
  port = 0;
  /** Connections accepted, and those of them accepted while stalled. */
  accepted = 0;
  acceptedWhileStalled = 0;
  /** The kinds of the client messages forwarded to the server so far, in order (see ClientMessages.kind). */
  readonly forwarded: string[] = [];
  /** When it went silent (performance.now()): from then on every wait of the client is a wait on nothing. */
  stalledAt: number | undefined;
  private stalled = false;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<{ silent: boolean; upstream: Socket }>();
  private messageBudget: number;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    options: StallingProxyOptions = {},
  ) {
    this.messageBudget = options.stallAfterClientMessages ?? Infinity;
    this.stalled = this.messageBudget <= 0;
    this.server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  /** A proxy in front of the PostgreSQL of `url`. */
  static async for(url: string, options: StallingProxyOptions = {}): Promise<StallingProxy> {
    const direct = new URL(url);
    return new StallingProxy(direct.hostname, Number(direct.port || 5432), options).listen();
  }

  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string {
    const viaProxy = new URL(url);
    viaProxy.host = `127.0.0.1:${this.port}`;
    return viaProxy.toString();
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get isStalled(): boolean {
    return this.stalled;
  }

  stall(): void {
    this.stalled = true;
    this.stalledAt ??= performance.now();
    for (const pair of this.pairs) {
      pair.silent = true;
      pair.upstream.destroy();
    }
  }

  /** Forwards again, without limit, for new connections. */
  resume(): void {
    this.stalled = false;
    this.stalledAt = undefined;
    this.messageBudget = Infinity;
  }

  async close(): Promise<void> {
    this.stall();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private accept(client: Socket): void {
    this.track(client);
    this.accepted += 1;
    if (this.stalled) {
      // Stalled from the start: the client waits from its first connection on.
      this.stalledAt ??= performance.now();
      // Accepted, read and dropped: the client's bytes go nowhere and nothing ever comes back.
      this.acceptedWhileStalled += 1;
      client.on('data', () => undefined);
      return;
    }
    const upstream = connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    this.track(upstream);
    const pair = { silent: false, upstream };
    this.pairs.add(pair);
    const messages = new ClientMessages();
    const forwardMessages = (complete: { message: Buffer; kind: string }[]) => {
      for (const { message, kind } of complete) {
        if (this.forwarded.length >= this.messageBudget) this.stall();
        if (pair.silent) return;
        this.forwarded.push(kind);
        upstream.write(message);
      }
    };
    client.on('data', (chunk: Buffer) => {
      if (!pair.silent) forwardMessages(messages.push(chunk));
    });
    upstream.on('data', (chunk: Buffer) => {
      if (pair.silent) return;
      client.write(chunk);
      forwardMessages(messages.serverAnswered(chunk));
    });
    const forwardClose = (from: Socket, to: Socket) => {
      from.on('end', () => {
        if (!pair.silent) to.end();
      });
      from.on('close', () => {
        if (!pair.silent) to.destroy();
        if (client.destroyed && upstream.destroyed) this.pairs.delete(pair);
      });
    };
    forwardClose(client, upstream);
    forwardClose(upstream, client);
  }
}

/** Client sockets of this process still open towards `port` (open handles keep the process alive). */
export function openSocketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof Socket && h.remotePort === port && !h.destroyed).length;
}
