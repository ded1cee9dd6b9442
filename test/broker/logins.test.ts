// The broker's Vault logins across its own restarts (frozen clock, a Vault
// double whose AppRole tokens take their leases with them when they die, as
// Vault and OpenBao do; SQLite and PostgreSQL). The registry records each login
// (times only) and, on each lease, the login that obtained it. A restarted
// broker renews the leases its previous process obtained with its new token
// while that is safe, and re-fetches each under the new login before the old
// login's token ends, so GET /v1/tokens/<jti> keeps serving a live token.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Broker,
  PRESUMED_DEAD_FRACTION,
  createMetrics,
  loginDeadline,
  openStore,
  renewalDelayMs,
  DEFAULT_TIMING,
  type LeaseRow,
  type LoginRow,
  type Store,
  type VaultGateway,
} from '../../src/broker/index.ts';
import { createVaultDouble, runPasses, type VaultDouble } from './fixtures/vault-double.ts';
import { captureLog, tempDir } from './helpers.ts';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.ts';

const pgWhy = pgUnavailable();
if (pgWhy) console.warn(pgWhy);

const dir = tempDir();
const T0 = 1_700_000_000_000;
const S = 1_000;
const MIN = 60 * S;
/** The broker's AppRole token: ttl 60s, renewed at two thirds (40s). */
const LOGIN_TTL_MS = 60 * S;
const ROLES = { long: { ttlMs: 30 * MIN, maxTtlMs: 24 * 60 * MIN }, brief: { ttlMs: 10 * S, maxTtlMs: 24 * 60 * MIN } };

afterAll(() => dir.remove());

describe('which login a lease can count on (loginDeadline)', () => {
  const now = T0;
  const row = (o: Partial<LoginRow>): LoginRow => ({
    id: 'l1', replica: 'a', method: 'approle', loggedInAt: T0 - 40 * S, expiresAt: T0 + 20 * S, renewable: true, final: false, updatedAt: T0 - 40 * S, ...o,
  });
  const known = (l: LoginRow) => new Map([[l.id, l]]);
  const current = { id: 'l2', expiresAt: T0 + 60 * S, final: false };

  it('the current login counts only once final; a static token (null) likewise', () => {
    expect(loginDeadline('l2', current, new Map(), now)).toBeNull();
    expect(loginDeadline('l2', { ...current, final: true }, new Map(), now)).toBe(T0 + 60 * S);
    expect(loginDeadline(null, { id: null, expiresAt: T0 + 5 * S, final: true }, new Map(), now)).toBe(T0 + 5 * S);
    expect(loginDeadline(null, { id: null, expiresAt: null, final: false }, new Map(), now)).toBeNull();
  });

  it('an earlier login counts once final; another replica\'s only when overdue for renewal; unknown ones do not', () => {
    expect(loginDeadline('l1', current, known(row({ final: true })), now)).toBe(T0 + 20 * S);
    // Renewed 40s ago with 60s of life: due for renewal at 40s, presumed dead from 50s.
    expect(loginDeadline('l1', current, known(row({})), now)).toBeNull();
    const overdueAt = T0 - 40 * S + 60 * S * PRESUMED_DEAD_FRACTION;
    expect(loginDeadline('l1', current, known(row({})), overdueAt)).toBe(T0 + 20 * S);
    expect(loginDeadline('l1', current, known(row({ expiresAt: null, final: true })), now)).toBeNull();
    expect(loginDeadline('nope', current, known(row({ final: true })), now)).toBeNull();
    // A lease from before logins were recorded, under an AppRole broker: unknown.
    expect(loginDeadline(null, current, known(row({ final: true })), now)).toBeNull();
  });
});

describe.each([
  ['SQLite', null],
  ['PostgreSQL', pgWhy],
] as const)('a restarted broker and its previous login (%s, frozen clock)', (kind, skipWhy) => {
  let pgCluster: PgCluster | null = null;
  const stores: Store[] = [];
  let n = 0;

  beforeAll(async () => {
    if (!skipWhy && kind === 'PostgreSQL') pgCluster = await startPgCluster();
  }, 60_000);

  afterAll(async () => {
    for (const s of stores) await s.close();
    pgCluster?.stop();
  });

  /** A fresh registry: a new SQLite file, or a new PostgreSQL database. */
  async function freshStore(): Promise<Store> {
    const name = `logins_${++n}`;
    let store: Store;
    if (pgCluster) {
      const admin = new pg.Client({ connectionString: pgCluster.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      store = await openStore({ kind: 'postgres', url: pgCluster.url.replace('/postgres?', `/${name}?`) });
    } else {
      store = await openStore({ kind: 'sqlite', path: `${dir.path}/${name}.db` });
    }
    stores.push(store);
    return store;
  }

  interface Proc {
    gateway: VaultGateway;
    broker: Broker;
    lines: string[];
  }

  /** A broker process as startBroker runs it: login (recorded), released claims, the earlier logins taken over. */
  async function start(store: Store, vault: VaultDouble, clock: { now: number }): Promise<Proc> {
    const gateway = vault.process({ registry: store, replica: 'r' });
    await gateway.login();
    const { log, lines } = captureLog();
    const broker = new Broker(
      { store, vault: gateway, log, metrics: createMetrics(), clock: () => clock.now, random: () => 0.5 },
      { replica: 'r', claimTtlMs: 5 * S, replaceGraceMs: 1 * S },
    );
    await store.releaseClaims(kind === 'SQLite' ? null : 'r');
    await broker.inheritLogins(kind === 'SQLite');
    return { gateway, broker, lines };
  }

  /**
   * The loop's passes for this process: its own token kept renewed, the logins followed, due leases worked.
   * A pass at least every 5s (the loop's own token step), however far apart the leases fall due.
   */
  const run = async (p: Proc, store: Store, clock: { now: number }, until: number, afterPass?: (now: number) => Promise<void>) => {
    while (clock.now < until) {
      await runPasses(p.broker, store, clock, Math.min(until, clock.now + 5 * S), {
        beforePass: async (now) => {
          await p.gateway.maintainSelf(now);
          await p.broker.followLogins();
        },
        afterPass,
      });
    }
  };

  const byJti = async (store: Store, jti: string) => (await store.getLeaseByJti(jti)) as LeaseRow;

  /** A fresh registry and Vault (AppRole tokens of 60s, or a static token), a first broker process, a workload's tokens of these roles. */
  async function firstProcess(roles: Array<keyof typeof ROLES>, withLogin = true) {
    const clock = { now: T0 };
    const store = await freshStore();
    const vault = createVaultDouble(() => clock.now, { roles: ROLES, ...(withLogin ? { login: { ttlMs: LOGIN_TTL_MS } } : {}) });
    const a = await start(store, vault, clock);
    const w = await a.broker.registerWorkload({ name: 'svc', heartbeatIntervalMs: 60 * MIN });
    const tokens = [];
    for (const role of roles) tokens.push(await a.broker.requestToken({ workload: w.id, role }));
    return { clock, store, vault, a, l1: a.gateway.current().id ?? '', tokens };
  }

  it.skipIf(skipWhy !== null)('renews the previous login\'s leases with the new token while safe, and re-fetches each before that login\'s token ends', async () => {
    const { clock, store, vault, a, l1, tokens: [long, brief] } = await firstProcess(['long', 'brief']);
    expect((await byJti(store, long.jti)).loginId).toBe(l1);
    // The first process runs 50s: its token renewed once (at 40s), so it dies at 100s unless renewed again.
    await run(a, store, clock, T0 + 50 * S);
    const end1 = T0 + 40 * S + LOGIN_TTL_MS;
    expect(vault.tokens.get(l1)).toBe(end1);
    expect((await byJti(store, long.jti)).dueAt).toBeGreaterThan(T0 + 10 * MIN); // renewal at two thirds of 30m

    // SIGKILLed at 50s (nothing more runs); restarted at 55s with a new login.
    clock.now = T0 + 55 * S;
    const restartedAt = clock.now;
    const b = await start(store, vault, clock);
    const l2 = b.gateway.current().id as string;
    expect(l2).not.toBe(l1);
    const logins = new Map((await store.logins()).map((l) => [l.id, l]));
    expect(logins.get(l1)).toMatchObject({ final: true, expiresAt: end1, method: 'approle', replica: 'r' });
    expect(logins.get(l2)).toMatchObject({ final: false, expiresAt: restartedAt + LOGIN_TTL_MS });
    // The registry holds times and flags only: no token, accessor or secret id.
    expect(Object.keys(logins.get(l1) as LoginRow).sort()).toEqual(['expiresAt', 'final', 'id', 'loggedInAt', 'method', 'renewable', 'replica', 'updatedAt']);
    // The long lease would be renewed at ~20m, long after 100s: brought forward within the time its renewal may take.
    expect((await byJti(store, long.jti)).dueAt).toBe(restartedAt + Math.floor(0.5 * renewalDelayMs(end1 - restartedAt, DEFAULT_TIMING)));

    const served: Array<{ at: number; jti: string; leaseId: string }> = [];
    await run(b, store, clock, T0 + 200 * S, async (now) => {
      // The workload asks for its tokens all along: never a 410, never a lease Vault no longer holds.
      for (const jti of [long.jti, brief.jti]) {
        const t = await b.broker.getToken(jti);
        expect(vault.live()).toContain(t.lease_id);
        expect(Date.parse(t.expires_at)).toBeGreaterThan(now);
        served.push({ at: now, jti, leaseId: t.lease_id });
      }
    });
    expect(clock.now).toBeGreaterThan(end1);
    expect(served.some((s) => s.at > end1)).toBe(true);

    for (const old of [long, brief]) {
      const row = await byJti(store, old.jti);
      expect(row.state).toBe('revoked');
      expect(row.replacedBy).not.toBeNull();
      const successor = (await store.getLease(row.replacedBy as string)) as LeaseRow;
      expect(successor.loginId).toBe(l2);
      // Fetched before the old login's token ended, and after the restart.
      expect(successor.createdAt).toBeGreaterThanOrEqual(restartedAt);
      expect(successor.createdAt).toBeLessThan(end1);
      expect(vault.live()).not.toContain(old.lease_id);
    }
    // The brief lease was first renewed with the new token (while its login's end was more than a ttl away).
    const briefRenewals = vault.renewals.filter((r) => r.leaseId === brief.lease_id && r.at >= restartedAt);
    expect(briefRenewals.length).toBeGreaterThanOrEqual(1);
    const events = await store.recentEvents(1_000);
    expect(events.filter((e) => e.kind === 'reissued' && e.reason === 'login_end')).toHaveLength(2);
    expect(events.filter((e) => e.kind === 'gone' || e.kind === 'expired')).toEqual([]);
    expect(b.lines.filter((l) => l.includes('the broker login that obtained it ends: re-fetched under the current login'))).toHaveLength(2);
    expect(b.lines.some((l) => l.includes("its leases' renewals brought forward"))).toBe(true);
  }, 30_000);

  it.skipIf(skipWhy !== null)('down past the previous token\'s end: the leases Vault dropped with it are re-issued, not a 410', async () => {
    const { clock, store, vault, l1, tokens: [long] } = await firstProcess(['long']);
    // Killed at once; restarted at 90s, after its token died at 60s (the lease, 30m, has not expired).
    clock.now = T0 + 90 * S;
    expect(vault.live()).not.toContain(long.lease_id);
    const b = await start(store, vault, clock);
    await run(b, store, clock, T0 + 100 * S);
    const t = await b.broker.getToken(long.jti);
    expect(t.lease_id).not.toBe(long.lease_id);
    expect(vault.live()).toContain(t.lease_id);
    const old = await byJti(store, long.jti);
    expect(old).toMatchObject({ state: 'expired', loginId: l1 });
    expect(old.lastError).toMatch(/login that obtained it ended/);
    expect((await store.getLease(old.replacedBy as string))?.loginId).toBe(b.gateway.current().id);
    expect((await store.recentEvents(100)).some((e) => e.kind === 'gone')).toBe(false);
  }, 30_000);

  it.skipIf(skipWhy !== null)('a re-login in the same process (max ttl): a lease renewed later than the retired token lives is re-fetched before it ends', async () => {
    const { clock, store, vault, a, l1, tokens: [long] } = await firstProcess(['long']);
    clock.now = T0 + 30 * S;
    await a.gateway.login(); // the gateway logs in again when its token reaches max ttl: the old one is retired, final
    const end1 = T0 + LOGIN_TTL_MS;
    expect((await store.logins()).find((l) => l.id === l1)).toMatchObject({ final: true, expiresAt: end1 });
    await run(a, store, clock, T0 + 120 * S);
    const t = await a.broker.getToken(long.jti);
    expect(vault.live()).toContain(t.lease_id);
    const successor = (await store.getLease((await byJti(store, long.jti)).replacedBy as string)) as LeaseRow;
    expect(successor.loginId).toBe(a.gateway.current().id);
    expect(successor.createdAt).toBeLessThan(end1);
  }, 30_000);

  it.skipIf(skipWhy !== null)('a static token (auth "token") keeps today\'s behaviour: no login recorded, leases renewed in place across a restart', async () => {
    const { clock, store, vault, a, tokens: [brief, long] } = await firstProcess(['brief', 'long'], false);
    expect(a.gateway.current()).toEqual({ id: null, expiresAt: null, final: false });
    const longDue = (await byJti(store, long.jti)).dueAt;
    clock.now = T0 + 5 * S;
    const b = await start(store, vault, clock);
    await run(b, store, clock, T0 + 5 * MIN);
    expect(await store.logins()).toEqual([]);
    expect((await byJti(store, brief.jti))).toMatchObject({ state: 'active', loginId: null, replacedBy: null });
    expect((await byJti(store, brief.jti)).renewals).toBeGreaterThan(10);
    expect((await byJti(store, long.jti)).dueAt).toBe(longDue); // not brought forward
    expect((await store.recentEvents(1_000)).filter((e) => e.kind === 'reissued')).toEqual([]);
  }, 30_000);
});
