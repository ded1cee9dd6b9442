// The plugin's Storage client (BrokeredStorage on h2_unary.ts) against a real
// gRPC server: grpc-js serving pb.Storage with protobufjs's reflection codecs
// over mutual TLS on a unix socket, as the host's broker does.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Http2UnaryClient, MAX_ANSWER_BYTES } from '../../src/plugin/h2_unary.ts';
import { protocolRoot, serviceDefinition } from '../../src/plugin/protos.ts';
import { BrokeredStorage } from '../../src/plugin/storage.ts';
import { generateCertificate, type PluginCertificate } from '../../src/plugin/tls.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-h2-unary-'));
let host: PluginCertificate;
let plugin: PluginCertificate;
const data = new Map<string, Buffer>();
/** What the next call answers instead of doing its work. */
let fault: 'none' | 'status' | 'hang' | 'reply-err' = 'none';

type Call = grpc.ServerUnaryCall<Record<string, unknown>, unknown>;
type Done = grpc.sendUnaryData<unknown>;
function handler(fn: (req: Record<string, unknown>) => unknown) {
  return (call: Call, done: Done) => {
    if (fault === 'status') return done({ code: grpc.status.UNAVAILABLE, details: 'storage is sealed: 100% (not ready)' });
    if (fault === 'hang') return;
    if (fault === 'reply-err') return done(null, { err: 'cannot write to readonly storage', keys: [] });
    done(null, fn(call.request));
  };
}

async function serve(socket: string): Promise<grpc.Server> {
  const server = new grpc.Server();
  server.addService(serviceDefinition(protocolRoot(), 'pb.Storage', true), {
    Get: handler(({ key }) => ({ entry: data.has(key as string) ? { key, value: data.get(key as string) } : null })),
    Put: handler(({ entry }) => {
      const e = entry as { key: string; value: Buffer };
      data.set(e.key, Buffer.from(e.value));
      return {};
    }),
    Delete: handler(({ key }) => (data.delete(key as string), {})),
    List: handler(({ prefix }) => ({ keys: [...data.keys()].filter((k) => k.startsWith(prefix as string)).sort() })),
  });
  const creds = grpc.ServerCredentials.createSsl(
    Buffer.from(plugin.certPem),
    [{ private_key: Buffer.from(host.keyPem), cert_chain: Buffer.from(host.certPem) }],
    true,
  );
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, creds, (err) => (err ? reject(err) : resolve())));
  return server;
}

const stop = (server: grpc.Server) => new Promise<void>((resolve) => server.tryShutdown(() => resolve()));

/** A client of the plugin's own certificate for the host serving on `socket`. */
const clientFor = (socket: string) =>
  new Http2UnaryClient({ service_id: 1, network: 'unix', address: socket }, { hostCertPem: host.certPem, certPem: plugin.certPem, keyPem: plugin.keyPem });

/** Runs `fn` against a host serving on a socket of its own, then closes both ends. */
async function withHost(name: string, fn: (client: Http2UnaryClient) => Promise<void>): Promise<void> {
  const socket = join(dir, `${name}.sock`);
  const server = await serve(socket);
  const client = clientFor(socket);
  try {
    await fn(client);
  } finally {
    client.close();
    await stop(server);
  }
}

beforeAll(async () => {
  [host, plugin] = await Promise.all([generateCertificate(), generateCertificate()]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('BrokeredStorage on the lean unary client', () => {
  it('puts, gets, lists and deletes, bytes exact; a missing key is null', () =>
    withHost('a', async (client) => {
      const storage = new BrokeredStorage(client);
      const value = new Uint8Array([0, 1, 2, 255, 0]);
      await storage.put({ key: 'leases/r/1', value });
      await storage.put({ key: 'leases/r/2', value: new Uint8Array(0) });
      await storage.put({ key: 'roles/r', value: new TextEncoder().encode('{"é":1}') });
      expect(await storage.get('leases/r/1')).toEqual({ key: 'leases/r/1', value });
      expect(await storage.get('leases/r/2')).toEqual({ key: 'leases/r/2', value: new Uint8Array(0) });
      expect(await storage.get('nope')).toBeNull();
      expect(await storage.list('leases/')).toEqual(['leases/r/1', 'leases/r/2']);
      await storage.delete('leases/r/1');
      expect(await storage.list('leases/')).toEqual(['leases/r/2']);
      const big = new Uint8Array(300_000).map((_, i) => i % 251);
      await storage.put({ key: 'big', value: big });
      expect((await storage.get('big'))?.value).toEqual(big);
    }));

  it("reports a gRPC status with the server's message, the reply's err as a storage failure, and a deadline", () =>
    withHost('b', async (client) => {
      try {
        fault = 'status';
        await expect(new BrokeredStorage(client).get('k')).rejects.toThrow('Get: storage is sealed: 100% (not ready)');
        fault = 'reply-err';
        await expect(new BrokeredStorage(client).put({ key: 'k', value: new Uint8Array(1) })).rejects.toThrow('storage put failed: cannot write to readonly storage');
        fault = 'hang';
        const t0 = Date.now();
        await expect(new BrokeredStorage(client, 300).list('')).rejects.toThrow('List: deadline exceeded');
        expect(Date.now() - t0).toBeLessThan(3000);
        fault = 'none';
        expect(await new BrokeredStorage(client).list('nothing/')).toEqual([]);
      } finally {
        fault = 'none';
      }
    }));

  it('refuses an answer larger than its cap instead of buffering it', () =>
    withHost('big', async (client) => {
      try {
        data.set('big', Buffer.alloc(MAX_ANSWER_BYTES + 1));
        await expect(new BrokeredStorage(client).get('big')).rejects.toThrow(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
        data.set('small', Buffer.from('ok'));
        expect(Buffer.from((await new BrokeredStorage(client).get('small'))!.value).toString()).toBe('ok');
      } finally {
        data.delete('big');
        data.delete('small');
      }
    }));

  it('connects again after the host closed the connection', async () => {
    const socket = join(dir, 'c.sock');
    let server = await serve(socket);
    const client = clientFor(socket);
    const storage = new BrokeredStorage(client);
    try {
      await storage.put({ key: 'x', value: new Uint8Array([7]) });
      server.forceShutdown();
      server = await serve(socket);
      // The first call may meet the closed connection: it is made again, once, on a new one.
      expect((await storage.get('x'))?.value).toEqual(new Uint8Array([7]));
      server.forceShutdown();
      server = await serve(socket);
      await storage.put({ key: 'y', value: new Uint8Array([8]) });
      expect((await storage.get('y'))?.value).toEqual(new Uint8Array([8]));
    } finally {
      client.close();
      await stop(server);
    }
  });

  it('refuses a server whose certificate is not the host certificate it was given', async () => {
    const socket = join(dir, 'd.sock');
    const server = await serve(socket);
    const stranger = await generateCertificate();
    const client = new Http2UnaryClient({ service_id: 1, network: 'unix', address: socket }, { hostCertPem: stranger.certPem, certPem: plugin.certPem, keyPem: plugin.keyPem });
    try {
      await expect(new BrokeredStorage(client, 2000).get('x')).rejects.toThrow(/^Get: /);
    } finally {
      client.close();
      await stop(server);
    }
  });
});
