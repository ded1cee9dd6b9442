// Vault outages: how long an outage each ttl rides out (the README's table,
// derived from the renewal schedule and checked here against the broker's own
// loop on a frozen clock, at the worst phase), and what happens past it: a
// lease that expired while Vault was unreachable is re-issued for its live
// workload, and GET /v1/tokens/<old jti> serves the new token (a 502 while Vault
// is still down, never a 410 or an expired token). Then the same against the
// dev server, taken down and up through a proxy, and across a SIGKILL.

import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Broker,
  BrokerError,
  DEFAULT_LOOP,
  DEFAULT_TIMING,
  createMetrics,
  openStore,
  outageSurvivedMs,
  renewalDelayMs,
  startBroker,
  type LeaseRow,
  type RunningBroker,
  type Store,
} from '../../src/broker/index.ts';
import { createVaultDouble, runPasses } from './fixtures/vault-double.ts';
import {
  api,
  captureLog,
  exited,
  leaseAlive,
  loopLag,
  sleep,
  spawnCrashBroker,
  startDevVault,
  startVaultProxy,
  tempDir,
  testConfig,
  waitFor,
  writeCrashConfig,
  type DevVault,
  type VaultProxy,
} from './helpers.ts';

const dir = tempDir();
const T0 = 1_700_000_000_000;
const S = 1_000;
const MIN = 60_000;

afterAll(() => dir.remove());

/**
 * The README's table (default timing, the loop's default 250 ms tick): ttl,
 * when the first renewal falls due (before jitter), and the longest outage a
 * lease rides out whatever its phase, in tenths of a second.
 */
const TABLE: Array<[ttl: string, ttlMs: number, renewAfterMs: number, survivedS: number]> = [
  ['10s', 10 * S, 3_333, 5.2],
  ['30s', 30 * S, 10_000, 17.8],
  ['1m', MIN, 20_000, 36.8],
  ['2m', 2 * MIN, 60_000, 53.5],
  ['5m', 5 * MIN, 200_000, 79.2],
  ['15m', 15 * MIN, 600_000, 239.2],
  ['1h', 60 * MIN, 2_400_000, 959.2],
];

describe('the outage-survival table', () => {
  it('is what the schedule gives: renew at most every third of the ttl, keep a minute in reserve when it can, else the classic two thirds', () => {
    for (const [, ttlMs, renewAfterMs, survivedS] of TABLE) {
      expect(renewalDelayMs(ttlMs, DEFAULT_TIMING)).toBe(renewAfterMs);
      expect(Math.floor(outageSurvivedMs(ttlMs, DEFAULT_TIMING, DEFAULT_LOOP.tickMs) / 100) / 10).toBe(survivedS);
    }
  });

  /** One lease of `ttlMs` through an outage of `outageMs` that begins just as its first renewal falls due, at the latest jitter. */
  async function throughOutage(name: string, ttlMs: number, outageMs: number): Promise<{ row: LeaseRow; renewedAfter: boolean }> {
    const store = await openStore({ kind: 'sqlite', path: `${dir.path}/${name}.db` });
    // Issued 999 ms into a second: Vault's whole-second exp takes the most off the lease's life.
    const clock = { now: T0 + 999 };
    const vault = createVaultDouble(() => clock.now, { roles: { r: { ttlMs, maxTtlMs: 24 * 60 * MIN } } });
    const broker = new Broker(
      { store, vault: vault.gateway, log: captureLog().log, metrics: createMetrics(), clock: () => clock.now, random: () => 0.999_999 },
      { replica: 'r' },
    );
    try {
      const w = await broker.registerWorkload({ name: 'w', heartbeatIntervalMs: 24 * 60 * MIN });
      const t = await broker.requestToken({ workload: w.id, role: 'r' });
      const start = ((await store.getLeaseByJti(t.jti)) as LeaseRow).dueAt - 1;
      const end = start + outageMs;
      await runPasses(broker, store, clock, end + ttlMs, { tickMs: DEFAULT_LOOP.tickMs, beforePass: (now) => (vault.down = now >= start && now < end) });
      return { row: (await store.getLeaseByJti(t.jti)) as LeaseRow, renewedAfter: vault.renewals.some((r) => r.at >= end) };
    } finally {
      await store.close();
    }
  }

  for (const [ttl, ttlMs] of TABLE) {
    it(`ttl ${ttl}: the broker's loop rides out the table's outage at the worst phase, and not a second more`, async () => {
      const survived = outageSurvivedMs(ttlMs, DEFAULT_TIMING, DEFAULT_LOOP.tickMs);
      const ok = await throughOutage(`table-${ttl}`, ttlMs, survived);
      expect(ok.row.state).toBe('active');
      expect(ok.renewedAfter).toBe(true);
      const lost = await throughOutage(`table-${ttl}-lost`, ttlMs, survived + S);
      expect(lost.row.state).toBe('expired');
    });
  }
});

describe('a lease that expired during an outage (frozen clock)', () => {
  const stores: Store[] = [];
  afterAll(async () => {
    for (const s of stores) await s.close();
  });

  /** A broker on its own registry, a workload and its lease (ttl 10s). */
  const setUp = async () => {
    const store = await openStore({ kind: 'sqlite', path: `${dir.path}/expired-${stores.length}.db` });
    stores.push(store);
    const clock = { now: T0 };
    const vault = createVaultDouble(() => clock.now, { roles: { r: { ttlMs: 10 * S, maxTtlMs: 60 * MIN } } });
    const broker = new Broker({ store, vault: vault.gateway, log: captureLog().log, metrics: createMetrics(), clock: () => clock.now, random: () => 0.5 }, { replica: 'r' });
    const w = await broker.registerWorkload({ name: 'w', heartbeatIntervalMs: 60 * MIN });
    const t = await broker.requestToken({ workload: w.id, role: 'r' });
    return { store, clock, vault, broker, w, t };
  };

  it('is re-issued when its old jti is asked for once Vault is back: a 502 while it is down, never a 410', async () => {
    const { store, clock, vault, broker, t } = await setUp();
    vault.down = true;
    await runPasses(broker, store, clock, T0 + 15 * S);
    expect((await store.getLeaseByJti(t.jti))?.state).toBe('expired');
    await expect(broker.getToken(t.jti)).rejects.toMatchObject({ code: 'ERR_VAULT' });
    vault.down = false;
    const now = await broker.getToken(t.jti);
    expect(now.jti).not.toBe(t.jti);
    expect(Date.parse(now.expires_at)).toBeGreaterThan(clock.now);
    expect(vault.live()).toContain(now.lease_id);
    expect((await store.getLeaseByJti(t.jti))?.replacedBy).toBe((await store.getLeaseByJti(now.jti))?.id);
    // Asked again: the same successor, no second lease.
    expect((await broker.getToken(t.jti)).jti).toBe(now.jti);
    // Renewed from then on like any lease.
    await runPasses(broker, store, clock, clock.now + 30 * S);
    expect((await broker.getToken(t.jti)).jti).toBe(now.jti);
  });

  it('is re-issued at once when Vault answers that the lease is gone (the broker was down past its expiry)', async () => {
    const { store, clock, vault, broker, w, t } = await setUp();
    clock.now += 20 * S; // no pass ran: the broker was down
    await runPasses(broker, store, clock, clock.now + 250);
    const old = (await store.getLeaseByJti(t.jti)) as LeaseRow;
    expect(old.state).toBe('expired');
    const successor = (await store.leasesOfWorkload(w.id, ['active']))[0];
    expect(old.replacedBy).toBe(successor.id);
    expect(vault.live()).toEqual([successor.leaseId]);
    expect((await broker.getToken(t.jti)).jti).toBe(successor.jti);
  });

  it('is not re-issued for a workload that has ended: 410', async () => {
    const { store, clock, vault, broker, w, t } = await setUp();
    vault.down = true;
    await runPasses(broker, store, clock, T0 + 15 * S);
    vault.down = false;
    await broker.endWorkload(w.id, 'explicit');
    const err = await broker.getToken(t.jti).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerError);
    expect(err).toMatchObject({ code: 'ERR_GONE', message: expect.stringMatching(/lease expired/) });
    expect(vault.live()).toEqual([]);
  });
});

describe('Vault down and up again (dev server behind a proxy)', () => {
  let vault: DevVault;
  let proxy: VaultProxy;
  let broker: RunningBroker;
  let base: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    vault = await startDevVault();
    await vault.conn.write('tvm/roles/ten', { read: ['db://orders/*'], ttl: '10s', max_ttl: '1h' });
    await vault.conn.write('tvm/roles/two', { read: ['db://orders/*'], ttl: '2s', max_ttl: '1h' });
    proxy = await startVaultProxy(vault.address);
    broker = await startBroker(testConfig({ address: proxy.address, rootToken: vault.rootToken }, { sqlite: { path: `${dir.path}/proxied.db` } }, { roles: ['ten', 'two'] }), {
      log: captureLog().log,
    });
    base = broker.url as string;
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await broker?.stop();
    await proxy?.close();
    await vault?.close();
  });

  const workloadWithToken = async (url: string, role: string) => {
    const w = await api(url, 'POST', '/v1/workloads', { name: 'svc', heartbeat_interval: '60s' });
    const t = await api<Record<string, string>>(url, 'POST', '/v1/tokens', { workload: w.body.id, role });
    expect(t.status, t.text).toBe(200);
    return { workload: w.body.id as string, jti: t.body.jti, leaseId: t.body.lease_id, expiresAt: Date.parse(t.body.expires_at) };
  };

  it('20 leases of ttl 10s ride out an outage within the table (the issue: 18 of 20 died in 9s)', async () => {
    const held: Array<Awaited<ReturnType<typeof workloadWithToken>>> = [];
    const lag = loopLag();
    // Issued over 7 s, and the outage begins with the last: their last renewal (or issue) before it
    // falls at every phase of their schedule, up to 7 s before it.
    for (let i = 0; i < 20; i++) {
      held.push(await workloadWithToken(base, 'ten'));
      await sleep(350);
    }
    // 4.5 s, or less when this process runs late: the table assumes a 50 ms pass; here a pass may take as long
    // as the worst event-loop delay seen while issuing, and the outage must stay within what the table promises.
    const survivable = outageSurvivedMs(10_000, broker.broker.settings.timing, 50 + lag.maxMs());
    const planned = Math.min(4_500, survivable - 300);
    expect(planned, 'the machine runs so late that no meaningful outage is within the table').toBeGreaterThanOrEqual(3_000);
    const before = new Map(await Promise.all(held.map(async (h) => [h.jti, (await broker.store.getLeaseByJti(h.jti))!.renewals] as const)));
    const downAt = Date.now();
    await proxy.down();
    await sleep(Math.max(0, downAt + planned - Date.now()));
    await proxy.up();
    const outage = Date.now() - downAt;
    expect(outage).toBeLessThanOrEqual(outageSurvivedMs(10_000, broker.broker.settings.timing, 50));
    // Until each lease was renewed after the outage (or was lost: then the check below names it).
    await waitFor(async () => {
      const rows = await Promise.all(held.map((h) => broker.store.getLeaseByJti(h.jti)));
      return rows.every((r) => r?.state !== 'active' || r.renewals > (before.get(r.jti as string) ?? 0));
    }, 20_000, 'a renewal of every lease after the outage');
    lag.stop();
    const states = await Promise.all(held.map(async (h) => (await broker.store.getLeaseByJti(h.jti))?.state));
    expect(states.filter((s) => s !== 'active'), 'leases lost in the outage').toEqual([]);
    for (const h of held) {
      expect((await broker.store.getLeaseByJti(h.jti))?.replacedBy).toBeNull();
      expect(await leaseAlive(vault.conn, h.leaseId)).toBe(true);
      const now = await api<Record<string, string>>(base, 'GET', `/v1/tokens/${h.jti}`);
      expect(now.status).toBe(200);
      expect(now.body.jti).toBe(h.jti);
      expect(Date.parse(now.body.expires_at)).toBeGreaterThan(Date.now());
    }
    const m = await api(base, 'GET', '/metrics');
    expect(m.text).toMatch(/tvm_broker_renewals_total\{result="error"\} [1-9]/);
  }, 60_000);

  it('a lease that expired in a longer outage: 502 while Vault is down, then GET of its old jti serves a new lease', async () => {
    const h = await workloadWithToken(base, 'two');
    await proxy.down();
    try {
      await waitFor(async () => (await broker.store.getLeaseByJti(h.jti))?.state === 'expired', 15_000, 'the lease expired');
      const during = await api<{ errors: string[]; code: string }>(base, 'GET', `/v1/tokens/${h.jti}`);
      expect(during.status).toBe(502);
      expect(during.body.code).toBe('ERR_VAULT');
    } finally {
      await proxy.up();
    }
    const after = await api<Record<string, string>>(base, 'GET', `/v1/tokens/${h.jti}`);
    expect(after.status, after.text).toBe(200);
    expect(after.body.jti).not.toBe(h.jti);
    expect(Date.parse(after.body.expires_at)).toBeGreaterThan(Date.now());
    expect(await leaseAlive(vault.conn, after.body.lease_id)).toBe(true);
    expect((await api(base, 'GET', `/v1/workloads/${h.workload}`)).body.state).toBe('active');
    // Kept renewed: still served, still alive, a few ttls later.
    await sleep(3_000);
    const later = await api<Record<string, string>>(base, 'GET', `/v1/tokens/${h.jti}`);
    expect(later.body.lease_id).toBe(after.body.lease_id);
    expect(await leaseAlive(vault.conn, after.body.lease_id)).toBe(true);
  }, 40_000);

  it('a broker SIGKILLed past its leases\' expiry re-issues them at restart for the live workload', async () => {
    const config = writeCrashConfig(dir.path, vault, 'expired-while-down', ['two']);
    const first = await spawnCrashBroker([config], children);
    const h = await workloadWithToken(first.url, 'two');
    first.child.kill('SIGKILL');
    await exited(first.child);
    // Past the lease's expiry (ttl 2s, from the answer): Vault drops it.
    await sleep(Math.max(0, h.expiresAt - Date.now()) + 1_000);
    expect(await leaseAlive(vault.conn, h.leaseId)).toBe(false);
    const second = await spawnCrashBroker([config], children);
    // Without anyone asking: the old lease is expired, its successor active and renewed.
    const listed = await waitFor(async () => {
      const r = await api<{ leases: Array<{ id: string; jti: string; state: string; replaced_by: string | null; workload: string; lease_id: string }> }>(
        second.url,
        'GET',
        '/v1/leases?state=active,expired',
      );
      const old = r.body.leases.find((l) => l.jti === h.jti);
      return old?.replaced_by ? { old, successor: r.body.leases.find((l) => l.id === old.replaced_by) } : null;
    }, 15_000, 'the expired lease re-issued');
    if (!listed) throw new Error('unreachable');
    expect(listed.old.state).toBe('expired');
    expect(listed.successor).toMatchObject({ state: 'active', workload: h.workload });
    const now = await api<Record<string, string>>(second.url, 'GET', `/v1/tokens/${h.jti}`);
    expect(now.status, now.text).toBe(200);
    expect(now.body.jti).toBe(listed.successor?.jti);
    expect(await leaseAlive(vault.conn, now.body.lease_id)).toBe(true);
    second.child.kill('SIGKILL');
    await exited(second.child);
  }, 60_000);
});
