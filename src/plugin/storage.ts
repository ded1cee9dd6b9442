// The engine's Storage in plugin mode: Vault's pb.Storage service, reached
// over the brokered connection Setup dialed. Errors Vault reports in the
// reply's `err` field, and transport failures, become thrown Errors (the
// engine wraps them as internal errors). Keys and values are never logged.

import * as grpc from '@grpc/grpc-js';
import type { Storage, StorageEntry } from '../engine/index.ts';
import type { WireStorageEntry } from './wire.ts';

type Unary = (req: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

export const STORAGE_CALL_TIMEOUT_MS = 30_000;

/** Calls a unary method of a client made by grpc.makeClientConstructor (protos.ts) as a promise. */
export function unary<Res>(client: grpc.Client, method: string, req: unknown, timeoutMs = STORAGE_CALL_TIMEOUT_MS): Promise<Res> {
  const fn = (client as unknown as Record<string, Unary>)[method];
  if (typeof fn !== 'function') return Promise.reject(new Error(`no method ${method}`));
  return new Promise((resolve, reject) => {
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(new Error(`${method}: ${err.details || err.message}`));
      else resolve(res as Res);
    });
  });
}

function replyError(method: string, err: string | undefined): void {
  if (err) throw new Error(`storage ${method} failed: ${err}`);
}

export class BrokeredStorage implements Storage {
  private readonly client: grpc.Client;

  constructor(client: grpc.Client) {
    this.client = client;
  }

  async get(key: string): Promise<StorageEntry | null> {
    const reply = await unary<{ entry: WireStorageEntry | null; err: string }>(this.client, 'Get', { key });
    replyError('get', reply.err);
    if (!reply.entry) return null;
    return { key: reply.entry.key || key, value: new Uint8Array(reply.entry.value ?? Buffer.alloc(0)) };
  }

  async put(entry: StorageEntry): Promise<void> {
    const reply = await unary<{ err: string }>(this.client, 'Put', {
      entry: { key: entry.key, value: Buffer.from(entry.value), seal_wrap: false },
    });
    replyError('put', reply.err);
  }

  async delete(key: string): Promise<void> {
    const reply = await unary<{ err: string }>(this.client, 'Delete', { key });
    replyError('delete', reply.err);
  }

  async list(prefix: string): Promise<string[]> {
    const reply = await unary<{ keys: string[]; err: string }>(this.client, 'List', { prefix });
    replyError('list', reply.err);
    return reply.keys ?? [];
  }
}

/** What tvm asks of Vault's pb.SystemView. */
export class BrokeredSystemView {
  private readonly client: grpc.Client;

  constructor(client: grpc.Client) {
    this.client = client;
  }

  /** The mount's default lease ttl in nanoseconds (exact, as a bigint). */
  async defaultLeaseTtlNs(): Promise<bigint> {
    const reply = await unary<{ TTL: string }>(this.client, 'DefaultLeaseTTL', {});
    return BigInt(reply.TTL || '0');
  }

  async maxLeaseTtlNs(): Promise<bigint> {
    const reply = await unary<{ TTL: string }>(this.client, 'MaxLeaseTTL', {});
    return BigInt(reply.TTL || '0');
  }

  /** Vault's version string, or '' when the host does not say. */
  async vaultVersion(): Promise<string> {
    const reply = await unary<{ plugin_environment: { vault_version: string } | null; err: string }>(this.client, 'PluginEnv', {});
    return reply.plugin_environment?.vault_version ?? '';
  }
}
