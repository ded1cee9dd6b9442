import { createTvmBackend } from '../../src/engine/index.ts';
import type { Backend, LogicalRequest, Operation, Storage, StorageEntry, StoredSecret } from '../../src/engine/index.ts';

/** A plain in-memory Storage with Vault's list semantics, for engine tests. */
export class MapStorage implements Storage {
  readonly map = new Map<string, Uint8Array>();
  async get(key: string): Promise<StorageEntry | null> {
    const value = this.map.get(key);
    return value ? { key, value } : null;
  }
  async put(entry: StorageEntry): Promise<void> {
    this.map.set(entry.key, entry.value);
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
  async list(prefix: string): Promise<string[]> {
    const out = new Set<string>();
    for (const key of this.map.keys()) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      out.add(slash === -1 ? rest : rest.slice(0, slash + 1));
    }
    return [...out].sort();
  }
}

/** A frozen clock that tests move by hand. */
export class FakeClock {
  now: number;
  constructor(start = Date.UTC(2026, 10, 23, 12, 0, 0)) {
    this.now = start;
  }
  advance(ms: number): void {
    this.now += ms;
  }
  readonly fn = (): number => this.now;
}

export interface Harness {
  backend: Backend;
  storage: MapStorage;
  clock: FakeClock;
  call(operation: Operation, path: string, data?: Record<string, unknown>, extra?: Partial<LogicalRequest>): ReturnType<Backend['handleRequest']>;
  /** Issues creds and returns data plus the secret as the expiration manager would store it. */
  issue(role: string, data?: Record<string, unknown>, extra?: Partial<LogicalRequest>): Promise<{ data: Record<string, unknown>; secret: StoredSecret }>;
  /**
   * Renews as the expiration manager would, then fetches the renewed token as
   * the lease's holder (the harness's caller): the renewal's answer plus `token`.
   */
  renew(secret: StoredSecret, incrementMs?: number): Promise<{ data: Record<string, unknown>; secret: StoredSecret }>;
}

export const API_ADDR = 'http://127.0.0.1:8200';
export const ISSUER = `${API_ADDR}/v1/tvm`;

export async function harness(): Promise<Harness> {
  const clock = new FakeClock();
  const storage = new MapStorage();
  const backend = createTvmBackend({ apiAddr: API_ADDR, clock: clock.fn });
  await backend.initialize(storage);
  const call: Harness['call'] = (operation, path, data = {}, extra = {}) =>
    backend.handleRequest({
      operation,
      path,
      data,
      storage,
      mountPoint: 'tvm/',
      caller: { displayName: 'token-test', entityId: 'entity-1', remoteAddr: '10.1.2.3' },
      ...extra,
    });
  const issue: Harness['issue'] = async (role, data, extra) => {
    const resp = await call(data ? 'update' : 'read', `creds/${role}`, data ?? {}, extra);
    if (!resp?.secret || !resp.data) throw new Error('no secret issued');
    const secret: StoredSecret = {
      type: resp.secret.type,
      internalData: resp.secret.internalData,
      ttlMs: resp.secret.ttlMs,
      maxTtlMs: resp.secret.maxTtlMs,
      renewable: resp.secret.renewable,
      issueTimeMs: clock.now,
    };
    return { data: resp.data, secret };
  };
  const renew: Harness['renew'] = async (secret, incrementMs) => {
    const resp = await call('renew', '', {}, { secret: incrementMs === undefined ? secret : { ...secret, incrementMs } });
    if (!resp?.secret || !resp.data) throw new Error('renew answered no secret');
    if ('token' in resp.data) throw new Error('a renewal must not answer the token');
    const role = secret.internalData.role as string;
    const fetched = await call('read', `creds/${role}`, { jti: resp.data.jti });
    if (!fetched?.data) throw new Error('the holder could not fetch the renewed token');
    const next: StoredSecret = { ...secret, ...resp.secret, issueTimeMs: secret.issueTimeMs };
    return { data: { ...resp.data, token: fetched.data.token }, secret: next };
  };
  return { backend, storage, clock, call, issue, renew };
}

/** Runs fn and returns the thrown error's {code, message, status}. */
export async function failure(fn: () => Promise<unknown>): Promise<{ code: string; message: string; status: number }> {
  try {
    await fn();
  } catch (err) {
    const e = err as { code: string; message: string; status: number };
    return { code: e.code, message: e.message, status: e.status };
  }
  throw new Error('expected a failure');
}
