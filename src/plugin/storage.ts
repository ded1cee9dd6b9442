// The engine's Storage in plugin mode: Vault's pb.Storage service, reached
// over the brokered connection Setup dialed. Errors Vault reports in the
// reply's `err` field, and transport failures, become thrown Errors (the
// engine wraps them as internal errors). Keys and values are never logged.

import * as grpc from '@grpc/grpc-js';
import type { Storage, StorageEntry } from '../engine/index.ts';
import * as codec from './codec.ts';
import type { Http2UnaryClient } from './h2_unary.ts';

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

/**
 * pb.Storage over the broker, on the lean unary client (h2_unary.ts) with the
 * hand-written codecs (codec.ts): one call per get, put, delete or list.
 */
export class BrokeredStorage implements Storage {
  private readonly client: Http2UnaryClient;
  private readonly timeoutMs: number;

  constructor(client: Http2UnaryClient, timeoutMs = STORAGE_CALL_TIMEOUT_MS) {
    this.client = client;
    this.timeoutMs = timeoutMs;
  }

  private async call<Res>(method: string, request: Uint8Array, decode: (message: Buffer) => Res): Promise<Res> {
    try {
      return await this.client.call(`/pb.Storage/${method}`, request, decode, this.timeoutMs);
    } catch (err) {
      throw new Error(`${method}: ${(err as Error).message}`);
    }
  }

  async get(key: string): Promise<StorageEntry | null> {
    const reply = await this.call('Get', codec.encodeStorageGetArgs({ key }), codec.decodeStorageGetReply);
    replyError('get', reply.err);
    if (!reply.entry) return null;
    return { key: reply.entry.key || key, value: new Uint8Array(reply.entry.value) };
  }

  async put(entry: StorageEntry): Promise<void> {
    const reply = await this.call('Put', codec.encodeStoragePutArgs({ entry: { key: entry.key, value: entry.value, seal_wrap: false } }), codec.decodeStoragePutReply);
    replyError('put', reply.err);
  }

  async delete(key: string): Promise<void> {
    const reply = await this.call('Delete', codec.encodeStorageDeleteArgs({ key }), codec.decodeStorageDeleteReply);
    replyError('delete', reply.err);
  }

  async list(prefix: string): Promise<string[]> {
    const reply = await this.call('List', codec.encodeStorageListArgs({ prefix }), codec.decodeStorageListReply);
    replyError('list', reply.err);
    return reply.keys;
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
