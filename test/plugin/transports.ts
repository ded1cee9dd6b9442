// The transports the scenario (scenario.ts) runs on:
// - engine:     the engine called in-process, behind a stand-in of Vault's
//               HTTP layer and expiration manager;
// - dev server: src/server over Vault's HTTP API, driven by node-vault (the
//               same transport drives a real Vault in vault.test.ts);
// - plugin:     the bundled plugin through the Go host, whose replies are
//               mapped as Vault's HTTP layer maps a backend's answer.
// The engine and plugin transports model Vault where the dev server and Vault
// do the work themselves (statuses, lease bookkeeping); that model lives here,
// once, in vaultAnswer() and LeaseBook.

import vault from 'node-vault';
import { expect } from 'vitest';
import { createTvmBackend, isEngineError } from '../../src/engine/index.ts';
import type { Backend, Caller, LogicalResponse, StoredSecret } from '../../src/engine/index.ts';
import type { RunningServer } from '../../src/server/index.ts';
import { MapStorage } from '../engine/helpers.ts';
import type { Answer, ClientOperation, Transport } from './scenario.ts';
import type { HostReply, HostSession } from './support.ts';

export const MOUNT = 'tvm/';

/** What Vault's HTTP layer makes of a backend's successful answer (http/logical.go). */
function vaultAnswer(
  op: ClientOperation | 'renew' | 'revoke',
  resp: { data?: Record<string, unknown> | null; warnings?: string[] | null } | null,
  lease?: Answer['lease'],
): Answer {
  // No response: 404 for a read or list, else 204 No Content.
  if (!resp) return { status: op === 'read' || op === 'list' ? 404 : 204 };
  // A list without keys (and without warnings) is not found.
  const keys = resp.data?.keys;
  if (op === 'list' && !resp.warnings?.length && (!Array.isArray(keys) || keys.length === 0)) return { status: 404 };
  return { status: 200, data: resp.data ?? {}, ...(lease ? { lease } : {}) };
}

/** Vault's sys/leases answers for a lease it does not hold (any more). */
const LEASE_NOT_FOUND: Answer = { status: 400, error: 'lease not found' };
const REVOKED_NOTHING: Answer = { status: 204 };

/**
 * The part of Vault's expiration manager a client can observe: leases by id,
 * forgotten once revoked. Renewing a forgotten lease is "lease not found" and
 * revoking it again succeeds without reaching the backend.
 */
class LeaseBook<T> {
  private readonly leases = new Map<string, T>();
  add(id: string, lease: T): void {
    this.leases.set(id, lease);
  }
  get(id: string): T | undefined {
    return this.leases.get(id);
  }
  forget(id: string): void {
    this.leases.delete(id);
  }
}

// --- the engine, in-process ------------------------------------------------

export function engineTransport(apiAddr: string): Transport {
  const storage = new MapStorage();
  const backend: Backend = createTvmBackend({ apiAddr });
  const leases = new LeaseBook<{ path: string; secret: StoredSecret }>();
  let ready: Promise<void> | null = null;
  let n = 0;
  // The same caller the Go host puts in its requests.
  const caller: Caller = { displayName: 'token-host', entityId: 'entity-host-1', remoteAddr: '127.0.0.1' };
  const other: Caller = { ...caller, entityId: 'entity-other' };
  const call = async (op: ClientOperation | 'renew' | 'revoke', path: string, data: Record<string, unknown>, secret?: StoredSecret, as = caller) => {
    ready ??= backend.initialize(storage);
    await ready;
    try {
      const resp = await backend.handleRequest({ operation: op, path, data, storage, caller: as, mountPoint: MOUNT, ...(secret ? { secret } : {}) });
      return { resp };
    } catch (err) {
      if (!isEngineError(err)) throw err;
      return { failure: { status: err.status, error: err.message } as Answer };
    }
  };
  const leaseOf = (id: string, s: NonNullable<LogicalResponse['secret']>): Answer['lease'] => ({ id, ttlS: s.ttlMs / 1000, renewable: s.renewable });
  return {
    name: 'engine',
    issuer: `${apiAddr}/v1/${MOUNT.slice(0, -1)}`,
    mount: MOUNT,
    subject: caller.entityId!,
    async request(op, path, data = {}) {
      const r = await call(op, path, data);
      if (r.failure) return r.failure;
      const s = r.resp?.secret;
      if (!s) return vaultAnswer(op, r.resp);
      const id = `${MOUNT}${path}/${++n}`;
      leases.add(id, {
        path,
        secret: { type: s.type, internalData: s.internalData, ttlMs: s.ttlMs, maxTtlMs: s.maxTtlMs, renewable: s.renewable, issueTimeMs: Date.now() },
      });
      return vaultAnswer(op, r.resp, leaseOf(id, s));
    },
    async requestAsOther(op, path, data = {}) {
      const r = await call(op, path, data, undefined, other);
      return r.failure ?? vaultAnswer(op, r.resp);
    },
    async renew(id, incrementS) {
      const le = leases.get(id);
      if (!le) return LEASE_NOT_FOUND;
      const r = await call('renew', le.path, {}, { ...le.secret, incrementMs: incrementS * 1000 });
      if (r.failure) return r.failure;
      const s = r.resp?.secret;
      if (!s) throw new Error('engine: renew returned no secret');
      le.secret = { ...le.secret, internalData: s.internalData, ttlMs: s.ttlMs };
      return vaultAnswer('renew', r.resp, leaseOf(id, s));
    },
    async revoke(id) {
      const le = leases.get(id);
      if (!le) return REVOKED_NOTHING;
      const r = await call('revoke', le.path, {}, le.secret);
      if (r.failure) return r.failure;
      leases.forget(id);
      // sys/leases/revoke answers 204 whatever the backend returned.
      return REVOKED_NOTHING;
    },
    async storageKeys() {
      return [...storage.map.keys()].sort();
    },
  };
}

// --- the bundled plugin through the Go host ----------------------------------

/**
 * Statuses as Vault's HTTP layer derives them. The error text is the plugin's
 * own: Vault replaces the text of UnsupportedPath/UnsupportedOperation with its
 * sentinels and wraps routing errors in a list (vault.test.ts holds a real
 * Vault to that); keeping the plugin's text here checks what the plugin sends.
 */
export function hostTransport(host: HostSession, apiAddr: string): Transport {
  // The Go host keeps a revoked lease (so its checklist can revoke twice); Vault does not.
  const revoked = new Set<string>();
  const answer = (op: ClientOperation | 'renew' | 'revoke', r: HostReply): Answer => {
    if (r.grpc_error) throw new Error(`host: ${r.grpc_error}`);
    if (r.err) {
      // pb.ProtoError types: 2 internal, 3 coded, 5 unsupported operation, 6 unsupported path, 7 invalid request, 8 permission denied.
      const byType: Record<number, number> = { 2: 500, 5: 405, 6: 404, 7: 400, 8: 403 };
      return { status: r.err.type === 3 ? r.err.code : byType[r.err.type] ?? 500, error: r.err.msg };
    }
    const resp = r.response;
    // logical.ErrorResponse: data.error, answered as a 400.
    if (resp && typeof resp.data?.error === 'string') return { status: 400, error: resp.data.error };
    const s = resp?.secret;
    let lease: Answer['lease'];
    if (s) {
      // Exact nanoseconds: a whole number of seconds, read without floats.
      const ns = BigInt(s.ttl_ns);
      expect(ns % 1_000_000_000n).toBe(0n);
      lease = { id: r.lease_id ?? '', ttlS: Number(ns / 1_000_000_000n), renewable: s.renewable };
    }
    return vaultAnswer(op, resp ? { data: resp.data ?? null, warnings: resp.warnings } : null, lease);
  };
  return {
    name: 'plugin',
    issuer: `${apiAddr}/v1/${MOUNT.slice(0, -1)}`,
    mount: MOUNT,
    subject: 'entity-host-1', // the Go host's requests carry EntityId entity-host-1
    request: async (operation, path, data) => answer(operation, await host.send({ cmd: 'request', operation, path, ...(data ? { data } : {}) })),
    requestAsOther: async (operation, path, data) =>
      answer(operation, await host.send({ cmd: 'request', operation, path, entity_id: 'entity-other', ...(data ? { data } : {}) })),
    async renew(lease_id, increment_s) {
      if (revoked.has(lease_id)) return LEASE_NOT_FOUND;
      const r = answer('renew', await host.send({ cmd: 'renew', lease_id, increment_s }));
      // Vault relays the renewed secret under the same lease id.
      return r.lease ? { ...r, lease: { ...r.lease, id: lease_id } } : r;
    },
    async revoke(lease_id) {
      if (revoked.has(lease_id)) return REVOKED_NOTHING;
      const r = answer('revoke', await host.send({ cmd: 'revoke', lease_id }));
      if (r.status >= 400) return r;
      revoked.add(lease_id);
      return REVOKED_NOTHING;
    },
    storageKeys: async () => Object.keys(((await host.send({ cmd: 'storage' })).entries as Record<string, string>) ?? {}).sort(),
  };
}

// --- Vault's HTTP API: the dev server, or a real Vault with the plugin --------

type VaultClient = ReturnType<typeof vault>;
interface VaultBody {
  data?: Record<string, unknown> | null;
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
  warnings?: string[] | null;
  errors?: string[];
}

/** What node-vault resolves or rejects with, as an Answer. */
async function overHttp(call: () => Promise<unknown>): Promise<Answer> {
  let body: VaultBody;
  try {
    body = (await call()) as VaultBody;
  } catch (err) {
    const e = err as { response?: { statusCode: number; body?: VaultBody } };
    if (!e.response) throw err;
    const errors = e.response.body?.errors ?? [];
    // Vault may answer an error with an empty `errors` list (a bare 404): no text then.
    return { status: e.response.statusCode, ...(errors.length ? { error: errors.join('\n') } : {}) };
  }
  // node-vault resolves a 200 with the parsed envelope and a 204 with an empty
  // body, and does not expose the status: an answer without a body is the 204.
  if (body === undefined || body === null || (typeof body === 'string' && body === '')) return { status: 204 };
  const out: Answer = { status: 200, data: body.data ?? {} };
  if (body.lease_id) out.lease = { id: body.lease_id, ttlS: body.lease_duration!, renewable: body.renewable! };
  return out;
}

/** A Vault (the dev server or a real one) and a token to call it with. */
export interface VaultEndpoint {
  /** Where to send requests, e.g. http://127.0.0.1:8200. */
  address: string;
  token: string;
  /** The api_addr the engine builds its issuer from (not always `address`: a container maps ports). */
  apiAddr: string;
}

/**
 * Vault's HTTP API through node-vault, for the dev server or a real Vault
 * running the plugin. What differs from the other transports, and why:
 * - the caller is the token given (the root token): `sub` is its entity id,
 *   else its display name, as token/lookup-self shows them;
 * - lease ids are Vault's (random), so the scenario compares their prefix only;
 * - storage is not visible over the API (storageKeys is absent);
 * - the dev server mounts tvm/ with a `demo` role already there: the scenario
 *   leaves roles that existed before it out of its listings.
 */
export async function vaultHttpTransport(name: string, endpoint: VaultEndpoint): Promise<Transport> {
  // One client that stays on this token (node-vault's tokenCreate would switch it; not used here).
  const client: VaultClient = vault({ apiVersion: 'v1', endpoint: endpoint.address, token: endpoint.token });
  const self = (await client.tokenLookupSelf()) as { data: { entity_id?: string; display_name?: string } };
  // Another identity with the same rights: a child token of the same policies (another accessor, no entity).
  const child = (await client.write('auth/token/create', { ttl: '1h' })) as { auth: { client_token: string } };
  const otherClient: VaultClient = vault({ apiVersion: 'v1', endpoint: endpoint.address, token: child.auth.client_token });
  const send = (c: VaultClient, op: ClientOperation, path: string, data: Record<string, unknown>): Promise<Answer> => {
    const full = `${MOUNT}${path}`;
    switch (op) {
      case 'read':
        return overHttp(() => c.read(full));
      case 'list':
        return overHttp(() => c.list(full));
      case 'update':
        return overHttp(() => c.write(full, data));
      case 'delete':
        return overHttp(() => c.delete(full));
    }
  };
  return {
    name,
    issuer: `${endpoint.apiAddr.replace(/\/+$/, '')}/v1/${MOUNT.slice(0, -1)}`,
    mount: MOUNT,
    subject: self.data.entity_id || self.data.display_name || '',
    request: (op, path, data = {}) => send(client, op, path, data),
    requestAsOther: (op, path, data = {}) => send(otherClient, op, path, data),
    renew: (lease_id, increment) => overHttp(() => client.write('sys/leases/renew', { lease_id, increment })),
    revoke: (lease_id) => overHttp(() => client.write('sys/leases/revoke', { lease_id })),
  };
}

/** The dev server (started in-process) over its HTTP API, as its root token. */
export function devServerTransport(server: RunningServer): Promise<Transport> {
  return vaultHttpTransport('dev server', { address: server.address, token: server.rootToken, apiAddr: server.apiAddr });
}
