// The expiration manager over real in-memory storage, with fake timers (the
// clock is Date.now, faked with them) and a fake engine behind LeaseBackendCalls.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EngineError } from '../../src/sdk/errors.ts';
import type { StoredSecret } from '../../src/sdk/logical.ts';
import {
  ExpirationManager,
  LEASE_STORAGE_PREFIX,
  leaseStorageKey,
  LeaseError,
  type ExpirationManagerOptions,
} from '../../src/server/expiration.ts';
import { openMemoryStorage } from '../../src/server/storage/index.ts';
import type { LeaseBackendCalls, LeaseEntry, PhysicalStorage, StorageOp } from '../../src/server/types.ts';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const MIN = 60_000;

/** A gate a fake call waits on until the test opens it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

class FakeEngine implements LeaseBackendCalls {
  /** Every revoke call: which lease, when. */
  readonly revokeCalls: Array<{ leaseId: string; atMs: number }> = [];
  readonly revoked: string[] = [];
  readonly renewCalls: Array<{ leaseId: string; incrementMs: number }> = [];
  /** How many of the next revoke calls fail (Infinity: all). */
  failRevokes = 0;
  revokeGate: Promise<void> | null = null;
  renewGate: Promise<void> | null = null;
  renewTtlMs = 10 * MIN;
  renewError: unknown = null;
  active = 0;
  maxActive = 0;

  /** Batches whose engine writes were dropped. */
  readonly discarded: StorageOp[][] = [];

  async revoke(lease: LeaseEntry): Promise<StorageOp[]> {
    this.revokeCalls.push({ leaseId: lease.leaseId, atMs: Date.now() });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.revokeGate) await this.revokeGate;
      if (this.failRevokes > 0) {
        this.failRevokes--;
        throw new Error('backend unreachable');
      }
      this.revoked.push(lease.leaseId);
      // The engine's own record of the revocation, written with the lease's removal.
      return [{ key: `engine/revoked/${String(lease.secret.internalData.jti)}`, value: new Uint8Array([1]) }];
    } finally {
      this.active--;
    }
  }

  discard(_lease: LeaseEntry, writes: StorageOp[]): void {
    this.discarded.push(writes);
  }

  async renew(lease: LeaseEntry, incrementMs: number) {
    this.renewCalls.push({ leaseId: lease.leaseId, incrementMs });
    if (this.renewGate) await this.renewGate;
    if (this.renewError) throw this.renewError;
    const n = Number(lease.secret.internalData.renewals ?? 0) + 1;
    return {
      secret: { ...lease.secret, ttlMs: this.renewTtlMs, internalData: { ...lease.secret.internalData, renewals: n } },
      data: { jti: lease.secret.internalData.jti },
    };
  }
}

function secret(over: Partial<StoredSecret> = {}): StoredSecret {
  return {
    type: 'tvm_token',
    internalData: { jti: 'j-1' },
    ttlMs: MIN,
    maxTtlMs: 60 * MIN,
    renewable: true,
    issueTimeMs: Date.now(),
    ...over,
  };
}

let storage: PhysicalStorage;
let engine: FakeEngine;
let logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }>;
const managers: ExpirationManager[] = [];

function manager(over: Partial<ExpirationManagerOptions> = {}): ExpirationManager {
  const m = new ExpirationManager({
    storage,
    calls: engine,
    random: () => 0.5,
    logger: (level, msg, fields) => logs.push({ level, msg, fields }),
    ...over,
  });
  managers.push(m);
  return m;
}

function issue(m: ExpirationManager, over: Partial<StoredSecret> = {}, token = 'tok-a', role = 'demo') {
  return m.register({ mountPoint: 'tvm/', path: `creds/${role}`, secret: secret(over), clientTokenId: token });
}

async function persisted(leaseId: string): Promise<LeaseEntry | null> {
  const raw = await storage.get(leaseStorageKey(leaseId));
  return raw === null ? null : (JSON.parse(new TextDecoder().decode(raw)) as LeaseEntry);
}

/** Moves fake time forward, running due timers, then waits for the work they started. */
async function advance(m: ExpirationManager, ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await m.settled();
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(T0);
  storage = openMemoryStorage();
  engine = new FakeEngine();
  logs = [];
});

afterEach(async () => {
  for (const m of managers.splice(0)) await m.stop();
  await storage.close();
  vi.useRealTimers();
});

describe('register and lookup', () => {
  it('issues a lease id under the path, persists the lease durably and schedules it', async () => {
    const m = manager();
    const lease = await issue(m);
    expect(lease.leaseId).toMatch(/^tvm\/creds\/demo\/[0-9A-Za-z]{24}$/);
    expect(lease).toMatchObject({
      mountPoint: 'tvm/',
      path: 'creds/demo',
      clientTokenId: 'tok-a',
      issueTimeMs: T0,
      expireTimeMs: T0 + MIN,
    });
    expect(lease.secret.leaseId).toBe(lease.leaseId);
    expect(await persisted(lease.leaseId)).toEqual(lease);
    expect(m.lookup(lease.leaseId)).toEqual(lease);
    expect(m.lookup('tvm/creds/demo/nope')).toBeNull();
    expect(m.size).toBe(1);
  });

  it('drives any number of leases with a single timer', async () => {
    const m = manager();
    const ids = new Set<string>();
    for (let i = 0; i < 500; i++) ids.add((await issue(m, { ttlMs: MIN + ((i * 7919) % 5000) })).leaseId);
    expect(ids.size).toBe(500);
    expect(vi.getTimerCount()).toBe(1);
    await advance(m, MIN + 5000);
    expect(engine.revoked).toHaveLength(500);
    expect(m.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('revokes the secret and fails if the lease cannot be persisted', async () => {
    const failing: PhysicalStorage = {
      ...storage,
      get: (k) => storage.get(k),
      list: (p) => storage.list(p),
      delete: (k) => storage.delete(k),
      view: (p) => storage.view(p),
      close: () => storage.close(),
      persistent: false,
      put: async () => {
        throw new Error('disk full');
      },
      batch: async () => {
        throw new Error('disk full');
      },
    };
    const m = manager({ storage: failing });
    await expect(issue(m)).rejects.toThrow('disk full');
    expect(engine.revoked).toHaveLength(1);
    expect(engine.revoked[0]).toMatch(/^tvm\/creds\/demo\//);
    expect(m.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('lists the direct children of a lease prefix, sorted', async () => {
    const m = manager();
    const a = await issue(m, {}, 'tok', 'demo');
    const b = await issue(m, {}, 'tok', 'demo');
    await issue(m, {}, 'tok', 'alpha');
    expect(m.list('')).toEqual(['tvm/']);
    expect(m.list('tvm/')).toEqual(['creds/']);
    expect(m.list('tvm/creds/')).toEqual(['alpha/', 'demo/']);
    const suffix = (id: string) => id.split('/').pop()!;
    expect(m.list('tvm/creds/demo/')).toEqual([suffix(a.leaseId), suffix(b.leaseId)].sort());
    await m.revoke(a.leaseId);
    expect(m.list('tvm/creds/demo/')).toEqual([suffix(b.leaseId)]);
    await m.revoke(b.leaseId);
    expect(m.list('tvm/creds/')).toEqual(['alpha/']);
  });
});

describe('expiry', () => {
  it('revokes a lease when its ttl runs out, not before, and forgets it everywhere', async () => {
    const m = manager();
    const lease = await issue(m);
    await advance(m, MIN - 1);
    expect(engine.revokeCalls).toEqual([]);
    await advance(m, 1);
    expect(engine.revokeCalls).toEqual([{ leaseId: lease.leaseId, atMs: T0 + MIN }]);
    expect(m.lookup(lease.leaseId)).toBeNull();
    expect(await persisted(lease.leaseId)).toBeNull();
    expect(m.list('tvm/creds/')).toEqual([]);
    expect(await m.revokeByToken('tok-a')).toBe(0);
  });

  it('retries a failing revocation with capped exponential backoff, then keeps the lease as irrevocable', async () => {
    const m = manager({ backoffBaseMs: 1000, backoffMaxMs: 4000, maxRevokeAttempts: 6 });
    const lease = await issue(m);
    engine.failRevokes = Infinity;
    await advance(m, MIN);
    expect(await persisted(lease.leaseId)).toMatchObject({ revokeAttempts: 1, revokeError: 'backend unreachable' });
    // Equal jitter with random() = 0.5: 3/4 of 1 s, 2 s, 4 s, then the 4 s cap.
    await advance(m, 749);
    expect(engine.revokeCalls).toHaveLength(1);
    await advance(m, 1);
    expect(engine.revokeCalls).toHaveLength(2);
    await advance(m, 60 * MIN);
    const times = engine.revokeCalls.map((c) => c.atMs - T0 - MIN);
    expect(times).toEqual([0, 750, 2250, 5250, 8250, 11250]);

    const kept = m.lookup(lease.leaseId)!;
    expect(kept).toMatchObject({ irrevocable: true, revokeAttempts: 6, revokeError: 'backend unreachable' });
    expect(await persisted(lease.leaseId)).toMatchObject({ irrevocable: true, revokeAttempts: 6 });
    expect(m.list('tvm/creds/demo/')).toEqual([lease.leaseId.split('/').pop()]);
    expect(m.irrevocable().map((l) => l.leaseId)).toEqual([lease.leaseId]);
    expect(logs.filter((l) => l.level === 'error')).toEqual([
      expect.objectContaining({ fields: expect.objectContaining({ leaseId: lease.leaseId, attempts: 6 }) }),
    ]);
    expect(logs.filter((l) => l.level === 'warn')).toHaveLength(5);
    expect(vi.getTimerCount()).toBe(0);
    await expect(m.renew(lease.leaseId, 0)).rejects.toMatchObject({ code: 'ERR_LEASE_IRREVOCABLE', status: 400 });

    // An explicit revoke may still try; once the backend works, the lease is gone.
    engine.failRevokes = 0;
    await m.revoke(lease.leaseId);
    expect(m.lookup(lease.leaseId)).toBeNull();
    expect(m.irrevocable()).toEqual([]);
    expect(await persisted(lease.leaseId)).toBeNull();
  });

  it('uses the jitter source within [half, full] of the backoff', async () => {
    let r = 0;
    const m = manager({ backoffBaseMs: 1000, random: () => r });
    await issue(m);
    engine.failRevokes = 2;
    await advance(m, MIN); // fails; retry in half of 1 s (r = 0)
    r = 0.999;
    await advance(m, 499);
    expect(engine.revokeCalls).toHaveLength(1);
    await advance(m, 1); // fails; retry in (nearly) the full 2 s
    expect(engine.revokeCalls).toHaveLength(2);
    await advance(m, 1998);
    expect(engine.revokeCalls).toHaveLength(2);
    await advance(m, 1);
    expect(engine.revokeCalls).toHaveLength(3);
    expect(m.size).toBe(0);
  });
});

describe('renew', () => {
  it('extends the lease from now by the increment asked for and persists the new secret', async () => {
    const m = manager();
    const lease = await issue(m);
    await advance(m, 30_000);
    const out = await m.renew(lease.leaseId, 5 * MIN);
    expect(engine.renewCalls).toEqual([{ leaseId: lease.leaseId, incrementMs: 5 * MIN }]);
    expect(out.data).toEqual({ jti: 'j-1' });
    expect(out.warnings).toBeUndefined();
    // The increment decides, not the engine's ttl (10 minutes here): Vault's and OpenBao's expiration
    // manager runs CalculateTTL(increment, engine ttl, ...) on every renewal.
    expect(out.lease).toMatchObject({ expireTimeMs: T0 + 30_000 + 5 * MIN, lastRenewalMs: T0 + 30_000 });
    expect(out.lease.secret).toMatchObject({ ttlMs: 5 * MIN, internalData: { jti: 'j-1', renewals: 1 } });
    expect(await persisted(lease.leaseId)).toEqual(out.lease);
    await advance(m, MIN);
    expect(engine.revokeCalls).toEqual([]);
    await advance(m, 5 * MIN - MIN - 1);
    expect(engine.revokeCalls).toEqual([]);
    await advance(m, 1);
    expect(engine.revoked).toEqual([lease.leaseId]);
  });

  it('never extends past issue time + max ttl', async () => {
    const m = manager();
    const lease = await issue(m, { maxTtlMs: 90_000 });
    await advance(m, 50_000);
    const out = await m.renew(lease.leaseId, 0);
    expect(out.lease.expireTimeMs).toBe(T0 + 90_000);
    expect(out.lease.secret.ttlMs).toBe(40_000);
    expect(out.warnings).toEqual([expect.stringContaining('capped')]);
    await advance(m, 39_999);
    expect(engine.revokeCalls).toEqual([]);
    await advance(m, 1);
    expect(engine.revoked).toEqual([lease.leaseId]);
  });

  it('refuses unknown, expired and non-renewable leases, and passes engine errors through unchanged', async () => {
    const m = manager();
    await expect(m.renew('tvm/creds/demo/none', 0)).rejects.toMatchObject({
      code: 'ERR_LEASE_NOT_FOUND',
      status: 400,
      message: 'lease not found',
    });
    const fixed = await issue(m, { renewable: false });
    await expect(m.renew(fixed.leaseId, 0)).rejects.toMatchObject({ code: 'ERR_LEASE_NOT_RENEWABLE', status: 400 });

    const lease = await issue(m);
    const refused = new EngineError('ERR_LEASE_EXPIRED', 'the lease reached its max ttl');
    engine.renewError = refused;
    await expect(m.renew(lease.leaseId, 0)).rejects.toBe(refused);
    expect(m.lookup(lease.leaseId)).toEqual(lease);
    engine.renewError = null;

    vi.setSystemTime(T0 + 2 * MIN); // the clock passes the expiry before the timer has run
    await expect(m.renew(lease.leaseId, 0)).rejects.toMatchObject({
      code: 'ERR_LEASE_NOT_FOUND',
      message: 'lease expired',
    });
    expect(engine.renewCalls).toHaveLength(1);
  });
});

describe('revoke', () => {
  it('is idempotent', async () => {
    const m = manager();
    const lease = await issue(m);
    await m.revoke(lease.leaseId);
    await m.revoke(lease.leaseId);
    await m.revoke('tvm/creds/demo/never-issued');
    expect(engine.revokeCalls).toHaveLength(1);
    expect(await persisted(lease.leaseId)).toBeNull();
    expect(m.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports a failure to the caller, keeps the lease and retries it', async () => {
    const m = manager({ backoffBaseMs: 1000 });
    const lease = await issue(m);
    engine.failRevokes = 1;
    await expect(m.revoke(lease.leaseId)).rejects.toThrow('backend unreachable');
    expect(m.lookup(lease.leaseId)).toMatchObject({ revokeAttempts: 1, revokeError: 'backend unreachable' });
    await expect(m.renew(lease.leaseId, 0)).rejects.toMatchObject({ code: 'ERR_LEASE_NOT_FOUND' });
    await advance(m, 750);
    expect(engine.revoked).toEqual([lease.leaseId]);
    expect(m.lookup(lease.leaseId)).toBeNull();
  });

  it('revokes by token, by prefix (as Vault reads it) and by mount, counting what it revoked', async () => {
    const m = manager();
    const a1 = await issue(m, {}, 'tok-a', 'demo');
    await issue(m, {}, 'tok-a', 'other');
    const b1 = await issue(m, {}, 'tok-b', 'demo');
    const b2 = await issue(m, {}, 'tok-b', 'demo');
    const c1 = await m.register({ mountPoint: 'tvm2/', path: 'creds/demo', secret: secret(), clientTokenId: 'tok-c' });

    expect(await m.revokeByToken('tok-a')).toBe(2);
    expect(await m.revokeByToken('tok-a')).toBe(0);
    expect(m.lookup(a1.leaseId)).toBeNull();
    expect(m.size).toBe(3);
    const demo2 = await issue(m, {}, 'tok-b', 'demo2');
    expect(await m.revokePrefix(demo2.leaseId)).toBe(1); // a whole lease id
    await issue(m, {}, 'tok-b', 'demo2');
    expect(await m.revokePrefix('tvm/creds/dem')).toBe(0); // a folder, not a string prefix
    expect(await m.revokePrefix('tvm/creds/demo')).toBe(2);
    expect(m.list('tvm/creds/')).toEqual(['demo2/']);
    expect(await m.revokePrefix('tvm/creds/')).toBe(1);
    expect(m.lookup(b1.leaseId)).toBeNull();
    expect(m.lookup(b2.leaseId)).toBeNull();
    expect(await m.revokeByMount('tvm/')).toBe(0);
    expect(await m.revokeByMount('tvm2/')).toBe(1);
    expect(m.lookup(c1.leaseId)).toBeNull();
    expect(engine.revoked).toHaveLength(7);
  });

  it('revokes what it can of a bulk revoke and reports the rest, which is retried', async () => {
    const m = manager();
    for (let i = 0; i < 3; i++) await issue(m);
    engine.failRevokes = 1;
    await expect(m.revokeByToken('tok-a')).rejects.toMatchObject({
      code: 'ERR_REVOKE_FAILED',
      message: expect.stringContaining('1 of 3 leases'),
    });
    expect(m.size).toBe(1);
    await advance(m, 1000);
    expect(m.size).toBe(0);
  });
});

describe('concurrency', () => {
  it('never revokes a lease twice when an explicit revoke races its expiry', async () => {
    const m = manager();
    const lease = await issue(m);
    const g = gate();
    engine.revokeGate = g.wait;
    await vi.advanceTimersByTimeAsync(MIN); // the expiry's revoke call is now under way
    expect(engine.revokeCalls).toHaveLength(1);
    const explicit = m.revoke(lease.leaseId);
    const again = m.revoke(lease.leaseId);
    g.open();
    await Promise.all([explicit, again]);
    await m.settled();
    expect(engine.revokeCalls).toHaveLength(1);
    expect(m.size).toBe(0);
  });

  it('does not revoke a lease whose renewal was under way when it expired', async () => {
    const m = manager();
    const lease = await issue(m);
    await advance(m, MIN - 1000);
    const g = gate();
    engine.renewGate = g.wait;
    const renewing = m.renew(lease.leaseId, 0);
    await vi.advanceTimersByTimeAsync(2000); // the expiry fires and waits for the renewal
    expect(engine.revokeCalls).toEqual([]);
    g.open();
    const out = await renewing;
    await m.settled();
    // The new ttl counts from when the engine answered.
    expect(out.lease.expireTimeMs).toBe(T0 + MIN + 1000 + 10 * MIN);
    expect(engine.revokeCalls).toEqual([]);
    expect(m.lookup(lease.leaseId)).not.toBeNull();
    await advance(m, 10 * MIN);
    expect(engine.revokeCalls).toHaveLength(1);
  });

  it('runs at most revokeConcurrency expiry revocations at once', async () => {
    const m = manager({ revokeConcurrency: 4 });
    for (let i = 0; i < 40; i++) await issue(m);
    const g = gate();
    engine.revokeGate = g.wait;
    await vi.advanceTimersByTimeAsync(MIN);
    expect(engine.active).toBe(4);
    g.open();
    await m.settled();
    expect(engine.maxActive).toBe(4);
    expect(engine.revoked).toHaveLength(40);
  });
});

describe('restore and stop', () => {
  it('restores persisted leases and revokes those that expired while the server was down before it resolves', async () => {
    const first = manager();
    const brief = await issue(first, { ttlMs: 10_000 });
    const long = await issue(first, { ttlMs: 60 * MIN });
    const stuck = await issue(first, { ttlMs: 10_000 }, 'tok-b');
    engine.failRevokes = 1;
    await expect(first.revoke(stuck.leaseId)).rejects.toThrow();
    await first.stop();
    // An irrevocable lease as an older version stored it: under its lease id.
    const legacyKey = `${LEASE_STORAGE_PREFIX}tvm/creds/demo/gaveup`;
    await storage.put(
      legacyKey,
      new TextEncoder().encode(JSON.stringify({ ...brief, leaseId: 'tvm/creds/demo/gaveup', irrevocable: true, revokeAttempts: 6 })),
    );
    await storage.put(`${LEASE_STORAGE_PREFIX}tvm/creds/demo/garbage`, new TextEncoder().encode('{not json'));

    vi.setSystemTime(T0 + 5 * MIN); // "down" for five minutes
    engine = new FakeEngine();
    const second = manager({ calls: engine });
    await second.restore();
    // Revoked before restore resolved: the server never answers while they look live.
    expect(engine.revoked.sort()).toEqual([brief.leaseId, stuck.leaseId].sort());
    expect(second.size).toBe(2);
    expect(second.lookup(brief.leaseId)).toBeNull();
    expect(second.lookup(long.leaseId)).toEqual(long);
    // The engine's records of the revocations were written with the leases' removal.
    expect(await storage.get(`engine/revoked/${String(brief.secret.internalData.jti)}`)).not.toBeNull();
    expect(await storage.get(leaseStorageKey(brief.leaseId))).toBeNull();
    expect(logs.some((l) => l.level === 'error' && l.msg === 'skipping an unreadable lease entry')).toBe(true);
    expect(JSON.stringify(logs)).not.toContain('garbage');
    // The legacy entry moved to its hashed key.
    expect(await storage.get(legacyKey)).toBeNull();
    expect(await storage.get(leaseStorageKey('tvm/creds/demo/gaveup'))).not.toBeNull();
    expect(second.lookup('tvm/creds/demo/gaveup')).toMatchObject({ irrevocable: true });
    expect(second.irrevocable().map((l) => l.leaseId)).toEqual(['tvm/creds/demo/gaveup']);
    expect(second.list('tvm/creds/demo/').sort()).toEqual(['gaveup', long.leaseId.split('/').pop()].sort());
    await advance(second, 60 * MIN);
    expect(engine.revoked).toHaveLength(3);
    expect(engine.revoked).toContain(long.leaseId);
  });

  it('keeps no lease id in a storage key', async () => {
    const m = manager();
    const lease = await issue(m);
    const keys = await storage.list(LEASE_STORAGE_PREFIX);
    expect(keys).toEqual([leaseStorageKey(lease.leaseId).slice(LEASE_STORAGE_PREFIX.length)]);
    expect(keys[0]).not.toContain(lease.leaseId.split('/').pop());
  });

  it('a lease past its expiry reads as gone while its revocation waits', async () => {
    const m = manager();
    const g = gate();
    const lease = await issue(m, { ttlMs: 10_000 });
    engine.revokeGate = g.wait;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(engine.revokeCalls).toHaveLength(1);
    expect(m.lookup(lease.leaseId)).toBeNull();
    const renewing = m.renew(lease.leaseId, 0);
    g.open();
    await expect(renewing).rejects.toMatchObject({ code: 'ERR_LEASE_NOT_FOUND' });
    await m.settled();
  });

  it('an engine write and the lease it belongs to land together, or neither does', async () => {
    const m = manager();
    const writes = [{ key: 'engine/leases/j-1', value: new Uint8Array([7]) }];
    const lease = await m.register({ mountPoint: 'tvm/', path: 'creds/demo', secret: secret(), clientTokenId: 'tok', writes });
    expect(await storage.get('engine/leases/j-1')).toEqual(new Uint8Array([7]));
    expect(await storage.get(leaseStorageKey(lease.leaseId))).not.toBeNull();

    const failing: PhysicalStorage = { ...storage, get: (k) => storage.get(k), list: (p) => storage.list(p), view: (p) => storage.view(p), close: () => storage.close(), put: (k, v) => storage.put(k, v), delete: (k) => storage.delete(k), persistent: false, batch: async () => { throw new Error('disk full'); } };
    const broken = manager({ storage: failing });
    const more = [{ key: 'engine/leases/j-2', value: new Uint8Array([8]) }];
    await expect(broken.register({ mountPoint: 'tvm/', path: 'creds/demo', secret: secret(), clientTokenId: 'tok', writes: more })).rejects.toThrow('disk full');
    expect(await storage.get('engine/leases/j-2')).toBeNull();
    expect(engine.discarded).toContainEqual(more);
  });

  it('stops after revocations under way, twice without harm, and refuses work afterwards', async () => {
    const m = manager();
    await issue(m);
    const g = gate();
    engine.revokeGate = g.wait;
    await vi.advanceTimersByTimeAsync(MIN);
    let stopped = false;
    const stopping = m.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(10);
    expect(stopped).toBe(false);
    g.open();
    await stopping;
    await m.stop();
    expect(engine.revoked).toHaveLength(1);
    await expect(issue(m)).rejects.toMatchObject({ code: 'ERR_EXPIRATION_STOPPED' });
    await expect(m.revoke('x')).rejects.toBeInstanceOf(LeaseError);
    expect(vi.getTimerCount()).toBe(0);
  });
});
