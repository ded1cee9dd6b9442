// One scenario, two transports: the engine called directly (as the dev server
// does) and the bundled plugin reached through the Go host (as Vault does).
// Each step is reduced to what a Vault client would see (status, error text,
// lease ttl, the data fields that matter) and the two transcripts must match.

import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTvmBackend, isEngineError } from '../../src/engine/index.ts';
import type { Backend, LogicalResponse, Operation, StoredSecret } from '../../src/engine/index.ts';
import { MapStorage } from '../engine/helpers.ts';
import { buildGoHost, buildPlugin, goHostUnavailable, HostSession, type HostReply } from './support.ts';

const API_ADDR = 'http://127.0.0.1:8200';
const ISSUER = `${API_ADDR}/v1/tvm`;

/** What a Vault client sees of one answer. */
interface Answer {
  status: number;
  error?: string;
  data?: Record<string, unknown>;
  lease?: { id: string; ttlS: number; renewable: boolean };
}

interface Transport {
  name: string;
  request(operation: Operation, path: string, data?: Record<string, unknown>): Promise<Answer>;
  renew(leaseId: string, incrementS: number): Promise<Answer>;
  revoke(leaseId: string): Promise<Answer>;
  storageKeys(): Promise<string[]>;
}

const READ_LIKE = new Set(['read', 'list']);

/** The engine in-process, with a minimal expiration manager like the host's. */
function engineTransport(): Transport {
  const storage = new MapStorage();
  const backend: Backend = createTvmBackend({ apiAddr: API_ADDR });
  const leases = new Map<string, { path: string; secret: StoredSecret }>();
  let ready: Promise<void> | null = null;
  let n = 0;
  const caller = { displayName: 'token-host', entityId: 'entity-host-1', remoteAddr: '127.0.0.1' };
  const answer = (op: Operation, resp: LogicalResponse | null, leaseId = ''): Answer => {
    if (!resp) return { status: READ_LIKE.has(op) ? 404 : 204 };
    const out: Answer = { status: 200, data: resp.data ?? {} };
    if (resp.secret) out.lease = { id: leaseId, ttlS: resp.secret.ttlMs / 1000, renewable: resp.secret.renewable };
    return out;
  };
  const call = async (op: Operation, path: string, data: Record<string, unknown>, secret?: StoredSecret) => {
    ready ??= backend.initialize(storage);
    await ready;
    try {
      return { resp: await backend.handleRequest({ operation: op, path, data, storage, caller, mountPoint: 'tvm/', ...(secret ? { secret } : {}) }) };
    } catch (err) {
      if (!isEngineError(err)) throw err;
      return { failure: { status: err.status, error: err.message } as Answer };
    }
  };
  return {
    name: 'engine',
    async request(op, path, data = {}) {
      const r = await call(op, path, data);
      if (r.failure) return r.failure;
      let leaseId = '';
      if (r.resp?.secret) {
        leaseId = `tvm/${path}/${++n}`;
        const s = r.resp.secret;
        leases.set(leaseId, {
          path,
          secret: { type: s.type, internalData: s.internalData, ttlMs: s.ttlMs, maxTtlMs: s.maxTtlMs, renewable: s.renewable, issueTimeMs: Date.now() },
        });
      }
      return answer(op, r.resp, leaseId);
    },
    async renew(leaseId, incrementS) {
      const le = leases.get(leaseId)!;
      const r = await call('renew', le.path, {}, { ...le.secret, incrementMs: incrementS * 1000 });
      if (r.failure) return r.failure;
      if (r.resp?.secret) le.secret = { ...le.secret, internalData: r.resp.secret.internalData, ttlMs: r.resp.secret.ttlMs };
      return answer('renew', r.resp, leaseId);
    },
    async revoke(leaseId) {
      const le = leases.get(leaseId)!;
      const r = await call('revoke', le.path, {}, le.secret);
      return r.failure ?? answer('revoke', r.resp, leaseId);
    },
    async storageKeys() {
      return [...storage.map.keys()].sort();
    },
  };
}

/** The bundled plugin through the Go host; answers mapped as Vault's HTTP layer would. */
function hostTransport(host: HostSession): Transport {
  const answer = (op: string, r: HostReply): Answer => {
    if (r.grpc_error) throw new Error(`host: ${r.grpc_error}`);
    if (r.err) {
      const byType: Record<number, number> = { 2: 500, 5: 405, 6: 404, 7: 400, 8: 403 };
      return { status: r.err.type === 3 ? r.err.code : byType[r.err.type] ?? 500, error: r.err.msg };
    }
    if (!r.response) return { status: READ_LIKE.has(op) ? 404 : 204 };
    const data = r.response.data ?? {};
    if (typeof data.error === 'string') return { status: 400, error: data.error };
    const out: Answer = { status: 200, data };
    const s = r.response.secret;
    if (s) {
      // Exact nanoseconds: a whole number of seconds, read without floats.
      const ns = BigInt(s.ttl_ns);
      expect(ns % 1_000_000_000n).toBe(0n);
      out.lease = { id: r.lease_id ?? '', ttlS: Number(ns / 1_000_000_000n), renewable: s.renewable };
    }
    return out;
  };
  return {
    name: 'plugin',
    request: async (operation, path, data) => answer(operation, await host.send({ cmd: 'request', operation, path, ...(data ? { data } : {}) })),
    renew: async (lease_id, increment_s) => answer('renew', await host.send({ cmd: 'renew', lease_id, increment_s })),
    revoke: async (lease_id) => answer('revoke', await host.send({ cmd: 'revoke', lease_id })),
    storageKeys: async () => Object.keys(((await host.send({ cmd: 'storage' })).entries as Record<string, string>) ?? {}).sort(),
  };
}

/** Runs the scenario; returns the transcript of what a client saw. */
async function scenario(t: Transport): Promise<unknown[]> {
  const log: unknown[] = [];
  const step = (name: string, a: Answer, pick: (d: Record<string, unknown>) => unknown = () => undefined) =>
    log.push({ name, status: a.status, error: a.error, ttlS: a.lease?.ttlS, renewable: a.lease?.renewable, data: a.data ? pick(a.data) : undefined });

  step(
    'write role',
    await t.request('update', 'roles/orders', {
      read: ['db://orders/*'],
      write: ['db://orders/outbox'],
      ttl: '5m',
      max_ttl: '1h',
      audiences: ['orders-api'],
    }),
  );
  step('read role', await t.request('read', 'roles/orders'), (d) => ({ read: d.read, write: d.write, audiences: d.audiences }));
  step('list roles', await t.request('list', 'roles/'), (d) => d.keys);
  step('bad ttl', await t.request('update', 'roles/bad', { read: ['db://x/*'], ttl: 'forever' }));
  step('unknown field', await t.request('update', 'roles/bad', { read: ['db://x/*'], colour: 'blue' }));
  step('creds for a missing role', await t.request('read', 'creds/nope'));
  step('unsupported path', await t.request('read', 'no/such/path'));

  const creds = await t.request('read', 'creds/orders');
  step('creds', creds, (d) => ({ token_type: d.token_type, scope: d.scope, role: d.role }));
  const jwks = await t.request('read', 'jwks');
  const keySet = createLocalJWKSet(jwks.data as unknown as JSONWebKeySet);
  const first = await jwtVerify(creds.data!.token as string, keySet, { issuer: ISSUER, audience: 'orders-api', typ: 'at+jwt' });
  log.push({ name: 'token claims', sub: first.payload.sub, client_id: first.payload.client_id, scope: first.payload.scope, life: first.payload.exp! - first.payload.iat! });

  const narrow = await t.request('update', 'creds/orders', { ttl: '1m', read: ['db://orders/items'] });
  step('down-scoped creds', narrow, (d) => ({ scope: d.scope }));
  step('wider than the role', await t.request('update', 'creds/orders', { write: ['db://billing/*'] }));

  await new Promise((r) => setTimeout(r, 1100));
  const renewed = await t.renew(creds.lease!.id, 600);
  step('renew +600s', renewed, (d) => ({ jti_kept: d.jti === creds.data!.jti }));
  const second = await jwtVerify(renewed.data!.token as string, keySet, { issuer: ISSUER, typ: 'at+jwt' });
  log.push({ name: 'renewed token', later: second.payload.exp! > first.payload.exp!, same_jti: second.payload.jti === first.payload.jti });

  step('revoke', await t.revoke(creds.lease!.id));
  step('revoke again', await t.revoke(creds.lease!.id));
  step('renew after revoke', await t.renew(creds.lease!.id, 60));
  for (const [i, token] of [creds.data!.token, renewed.data!.token].entries()) {
    step(`introspect ${i}`, await t.request('update', 'introspect', { token }), (d) => d);
  }
  step('revocations', await t.request('read', 'revocations'), (d) => ({
    listed: (d.revoked as Array<{ jti: string }>).some((e) => e.jti === creds.data!.jti),
  }));
  step('introspect the narrow token', await t.request('update', 'introspect', { token: narrow.data!.token }), (d) => ({ active: d.active }));
  step('delete role', await t.request('delete', 'roles/orders'));
  step('read deleted role', await t.request('read', 'roles/orders'));
  log.push({ name: 'storage keys', keys: await t.storageKeys() });
  // Token ids are random: name them by their part in the scenario.
  let text = JSON.stringify(log);
  for (const [label, jti] of [['<creds jti>', creds.data!.jti], ['<narrow jti>', narrow.data!.jti]] as const) {
    text = text.split(String(jti)).join(label);
  }
  return JSON.parse(text) as unknown[];
}

const unavailable = await goHostUnavailable();
if (unavailable) console.warn(`skipping the scenario through the plugin: ${unavailable}`);

describe('the same scenario on both transports', () => {
  let direct: unknown[] = [];

  beforeAll(async () => {
    direct = await scenario(engineTransport());
  }, 30_000);

  it('runs against the engine directly', () => {
    expect(direct).toContainEqual(expect.objectContaining({ name: 'creds', status: 200, ttlS: 300, renewable: true }));
    expect(direct).toContainEqual(expect.objectContaining({ name: 'renew +600s', status: 200, ttlS: 600 }));
    expect(direct).toContainEqual(expect.objectContaining({ name: 'bad ttl', status: 400 }));
    expect(direct).toContainEqual(expect.objectContaining({ name: 'unsupported path', status: 404 }));
  });

  describe.skipIf(unavailable !== null)('through the Go host and the bundled plugin', () => {
    let host: HostSession;

    beforeAll(async () => {
      const [hostBin, plugin] = await Promise.all([buildGoHost(), buildPlugin()]);
      host = await HostSession.start(hostBin, plugin, { VAULT_API_ADDR: API_ADDR });
    }, 180_000);

    afterAll(async () => {
      await host?.close();
    });

    it('negotiates protocol 5 on a unix socket', () => {
      expect(host.ready.negotiated).toBe(5);
      expect(host.ready.socket).toMatch(/tvm-plugin-[0-9a-f]+\.sock$/);
    });

    it('gives a Vault client the same answers as the engine does', async () => {
      const viaPlugin = await scenario(hostTransport(host));
      expect(viaPlugin).toEqual(direct);
    }, 60_000);

    it('keeps the engine state in Vault storage reached through the broker', async () => {
      const keys = (await hostTransport(host).storageKeys()).join(' ');
      expect(keys).toMatch(/\S/);
      const stored = (await host.send({ cmd: 'storage' })).entries as Record<string, string>;
      // The revoked token's id is in Vault's storage, not in the plugin process.
      expect(Object.values(stored).some((v) => v.includes('"jti"') || v.includes('revoked'))).toBe(true);
    });
  });
});
