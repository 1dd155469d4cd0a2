// Starting the signing service on an address, and stopping it gracefully.
import type { AddressInfo } from 'node:net';
import { CloacinaSignError } from '../errors';
import { createSigningService, type ServiceOptions, type SigningService } from './app';

export interface ListenOptions {
  host: string;
  /** 0: any free port (see `url`). */
  port: number;
}

export interface RunningService extends SigningService {
  /** Where it listens: http(s)://host:port (IPv6 hosts in brackets). */
  url: string;
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces); INVALID_INPUT-style RangeError otherwise. */
export function parseListen(text: string): ListenOptions {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) throw new RangeError(`--listen must be host:port (for example 127.0.0.1:8080 or [::1]:8080), not ${JSON.stringify(text)}`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

export async function startSigningService(options: ServiceOptions & ListenOptions): Promise<RunningService> {
  const service = await createSigningService(options);
  try {
    await service.app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await service.close().catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new CloacinaSignError('INVALID_INPUT', `cannot listen on ${options.host}:${options.port}: ${code}`, { cause: error });
  }
  const address = service.app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { ...service, url: `${options.tls ? 'https' : 'http'}://${host}:${address.port}` };
}
