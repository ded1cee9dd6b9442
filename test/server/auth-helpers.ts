// Shared helpers for the auth method tests: an in-process dev server with a
// movable clock and a logger that records everything, and a fetch helper
// that returns Vault's envelope (or its errors) with the status.
import vault from 'node-vault';
import type { LogicalRequest } from '../../src/sdk/logical.ts';
import type { AuthMount } from '../../src/server/auth/index.ts';
import { startServer, type Logger } from '../../src/server/index.ts';

export type Client = ReturnType<typeof vault>;

export interface Harness {
  address: string;
  rootToken: string;
  /** Every log line the server wrote (message and fields, as JSON). */
  logs: string[];
  /** Moves the server's clock forward. */
  advance(ms: number): void;
  now(): number;
  call(method: string, path: string, body?: unknown, token?: string | null): Promise<Answer>;
  client(token: string): Client;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  body: Record<string, unknown> & {
    data?: Record<string, unknown> | null;
    auth?: Record<string, unknown> | null;
    errors?: string[];
    warnings?: string[] | null;
  };
  text: string;
}

export function recordingLogger(lines: string[]): Logger {
  const write = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    lines.push(JSON.stringify({ level, msg, ...fields }));
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

export async function startHarness(options: { configPath?: string } = {}): Promise<Harness> {
  let offset = 0;
  const clock = (): number => Date.now() + offset;
  const logs: string[] = [];
  const server = await startServer({
    dev: options.configPath === undefined,
    ...(options.configPath ? { configPath: options.configPath } : { listenAddress: '127.0.0.1:0' }),
    quiet: true,
    clock,
    logger: recordingLogger(logs),
    output: () => undefined,
  });
  const call = async (method: string, path: string, body?: unknown, token: string | null = server.rootToken): Promise<Answer> => {
    const headers: Record<string, string> = {};
    if (token) headers['X-Vault-Token'] = token;
    const res = await fetch(`${server.address}/v1/${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Answer['body']) : {}, text };
  };
  return {
    address: server.address,
    rootToken: server.rootToken,
    logs,
    advance: (ms) => {
      offset += ms;
    },
    now: clock,
    call,
    client: (token) => vault({ apiVersion: 'v1', endpoint: server.address, token }),
    close: () => server.close(),
  };
}

/** A request to an auth mount's backend, as the server makes it (for tests that call the backend itself). */
export function backendRequest(
  mount: AuthMount,
  operation: LogicalRequest['operation'],
  path: string,
  data: Record<string, unknown> = {},
): LogicalRequest {
  return {
    operation,
    path,
    data,
    caller: { displayName: '' },
    storage: mount.storage,
    mountPoint: `auth/${mount.entry.path}`,
    mountAccessor: mount.entry.accessor,
    mountType: mount.entry.type,
  };
}

/** Decodes a JWT's payload without verifying it (the tvm token's claims). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}
