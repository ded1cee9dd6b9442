// Renewal against max_ttl: a lease is renewed for the ttl it was issued with
// (a ttl above the role's included), replaced only when its hard end
// (max_expires_at) is within one ttl, and GET /v1/tokens/<jti> of any token of a
// replaced chain serves the chain's current token, however long the chain.
// The dev server where real time allows; a frozen clock and a Vault double for
// long chains, on SQLite and PostgreSQL.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, createMetrics, openStore, startBroker, type LeaseRow, type RunningBroker, type Store } from '../../src/broker/index.ts';
import { createVaultDouble } from './fixtures/vault-double.ts';
import { api, captureLog, leaseAlive, startDevVault, tempDir, testConfig, waitFor, type DevVault } from './helpers.ts';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.ts';

const pgWhy = pgUnavailable();
if (pgWhy) console.warn(pgWhy);

const dir = tempDir();
const T0 = 1_700_000_000_000;

interface TokenBody {
  token: string;
  jti: string;
  lease_id: string;
  expires_at: string;
}

afterAll(() => dir.remove());

describe('renewal on the dev server', () => {
  let vault: DevVault;
  let broker: RunningBroker;
  let base: string;

  beforeAll(async () => {
    vault = await startDevVault();
    await vault.conn.write('tvm/roles/over', { read: ['db://orders/*'], ttl: '1s', max_ttl: '1h' });
    await vault.conn.write('tvm/roles/hop', { read: ['db://orders/*'], ttl: '1s', max_ttl: '7s' });
    broker = await startBroker(testConfig(vault, { sqlite: { path: `${dir.path}/dev.db` } }, { roles: ['over', 'hop'] }), { log: captureLog().log });
    base = broker.url as string;
  });

  afterAll(async () => {
    await broker?.stop();
    await vault?.close();
  });

  const issue = async (role: string, ttl: string) => {
    const w = await api(base, 'POST', '/v1/workloads', { name: 'svc', heartbeat_interval: '60s' });
    const t = await api<TokenBody>(base, 'POST', '/v1/tokens', { workload: w.body.id, role, ttl });
    expect(t.status, t.text).toBe(200);
    return { workload: w.body.id as string, ...t.body };
  };

  it('renews a ttl above the role\'s ttl for that ttl, and does not replace the lease', async () => {
    const t = await issue('over', '4s'); // the role's ttl is 1s; 4s is within its max_ttl
    const row = (await waitFor(async () => {
      const r = await broker.store.getLeaseByJti(t.jti);
      return r && r.renewals >= 2 ? r : null;
    }, 8_000, 'two renewals')) as LeaseRow;
    expect(row.state).toBe('active');
    expect(row.replacedBy).toBeNull();
    // Each renewal granted the 4s asked for (whole seconds: at least 3s from the renewal).
    expect(row.expiresAt - row.tokenIssuedAt).toBeGreaterThanOrEqual(3_000);
    expect(await broker.store.leasesOfWorkload(t.workload, ['active', 'revoking', 'revoked'])).toHaveLength(1);
    const now = await api<TokenBody>(base, 'GET', `/v1/tokens/${t.jti}`);
    expect(now.status).toBe(200);
    expect(now.body.lease_id).toBe(t.lease_id);
  }, 15_000);

  it('replaces a lease only when its hard end is within one ttl, and the first jti serves the successor', async () => {
    const t = await issue('hop', '2s'); // max_ttl 7s: renewed until about 5s after issue, then replaced
    const first = (await broker.store.getLeaseByJti(t.jti)) as LeaseRow;
    const replaced = (await waitFor(async () => {
      const r = await broker.store.getLeaseByJti(t.jti);
      return r?.replacedBy ? r : null;
    }, 10_000, 'the lease replaced near its max_ttl')) as LeaseRow;
    const events = await broker.store.recentEvents(1_000);
    const at = events.find((e) => e.kind === 'replaced' && e.leaseRowId === first.id)?.at ?? 0;
    // Not before the hard end (issue + 7s, in whole seconds) came within the 2s ttl.
    expect(at - first.createdAt).toBeGreaterThanOrEqual(7_000 - 2_000 - 1_000);
    expect(replaced.renewals).toBeGreaterThanOrEqual(2);
    const now = await api<TokenBody>(base, 'GET', `/v1/tokens/${t.jti}`);
    expect(now.status).toBe(200);
    expect(now.body.jti).not.toBe(t.jti);
    expect(Date.parse(now.body.expires_at)).toBeGreaterThan(Date.now());
    expect(await leaseAlive(vault.conn, now.body.lease_id)).toBe(true);
  }, 15_000);
});

describe.each([
  ['SQLite', null],
  ['PostgreSQL', pgWhy],
] as const)('a long replacement chain (%s, frozen clock)', (kind, skipWhy) => {
  let pg: PgCluster | null = null;
  let store: Store;

  beforeAll(async () => {
    if (skipWhy) return;
    if (kind === 'PostgreSQL') pg = await startPgCluster();
    store = await openStore(pg ? { kind: 'postgres', url: pg.url } : { kind: 'sqlite', path: `${dir.path}/chain.db` });
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    pg?.stop();
  });

  it.skipIf(skipWhy !== null)('GET of every jti of a 15-hop chain serves the current token, never an expired one or a 410', async () => {
    const clock = { now: T0 };
    const vault = createVaultDouble(() => clock.now, { roles: { hop: { ttlMs: 3_000, maxTtlMs: 6_000 } } });
    const broker = new Broker(
      { store, vault: vault.gateway, log: captureLog().log, metrics: createMetrics(), clock: () => clock.now, random: () => 0.5 },
      { replica: 'r', claimTtlMs: 5_000, replaceGraceMs: 1_000 },
    );
    const w = await broker.registerWorkload({ name: 'svc', heartbeatIntervalMs: 3_600_000 });
    const first = await broker.requestToken({ workload: w.id, role: 'hop' });
    const jtis = [first.jti];
    // The loop's passes, every 250ms of the test's clock, until the chain is 15 hops long.
    while (jtis.length <= 15) {
      clock.now += 250;
      await broker.processDue();
      const end = (await store.leasesOfWorkload(w.id, ['active'])).sort((a, b) => b.createdAt - a.createdAt)[0];
      if (end && end.jti !== jtis[jtis.length - 1]) jtis.push(end.jti as string);
      expect(clock.now - T0).toBeLessThan(120_000);
    }
    clock.now += 2_000;
    await broker.processDue(); // the replaced leases' grace is over: revoked
    const current = (await store.leasesOfWorkload(w.id, ['active']))[0];
    expect(current.jti).toBe(jtis[jtis.length - 1]);
    expect((await store.getLeaseByJti(jtis[0]))?.state).toBe('revoked');
    for (const jti of jtis) {
      const t = await broker.getToken(jti);
      expect(t.jti).toBe(current.jti);
      expect(Date.parse(t.expires_at)).toBeGreaterThan(clock.now);
    }
  }, 30_000);
});
