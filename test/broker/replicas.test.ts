// Two broker replicas on one PostgreSQL: claims with FOR UPDATE SKIP LOCKED
// and an expiring claim. No lease is renewed twice in one cycle, and when one
// replica dies the other takes over its leases.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/broker/store/postgres.ts';
import { startBroker, type LeaseRow, type RunningBroker } from '../../src/broker/index.ts';
import { api, captureLog, leaseAlive, sleep, startDevVault, testConfig, type DevVault } from './helpers.ts';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.ts';

const why = pgUnavailable();
if (why) console.warn(why);

describe.skipIf(why !== null)('two replicas on PostgreSQL', () => {
  let pg: PgCluster;
  let vault: DevVault;
  const renewals: Array<{ lease: string; at: number; replica: string }> = [];
  const replicas: RunningBroker[] = [];

  const start = (name: string) =>
    startBroker(testConfig(vault, { postgres: { url: pg.url } }, { replica: name, loop: { tick: '50ms', trigger_interval: '100ms', claim_ttl: '2s', batch: 5 }, anomaly: { min_count: 1000 } }), {
      log: captureLog().log,
      hooks: {
        at(point, row: LeaseRow) {
          if (point === 'renewed') renewals.push({ lease: row.id, at: Date.now(), replica: name });
        },
      },
    });

  beforeAll(async () => {
    pg = await startPgCluster();
    vault = await startDevVault();
  }, 60_000);

  afterAll(async () => {
    for (const r of replicas) await r.stop({ force: true });
    await vault?.close();
    pg?.stop();
  });

  it('migrates once when replicas start together', async () => {
    const a = new PostgresStore(pg.url);
    const b = new PostgresStore(pg.url);
    const [va, vb] = await Promise.all([a.migrate(), b.migrate()]);
    expect([va, vb]).toEqual([3, 3]);
    await Promise.all([a.close(), b.close()]);
  });

  it('shares renewals without renewing a lease twice in one cycle, and takes over a dead replica\'s leases', async () => {
    const a = await start('replica-a');
    const b = await start('replica-b');
    replicas.push(a, b);
    const w = await api(a.url as string, 'POST', '/v1/workloads', { name: 'w', heartbeat_interval: '60s' });
    const tokens = [];
    for (let i = 0; i < 20; i++) {
      const r = await api<Record<string, string>>(i % 2 ? (b.url as string) : (a.url as string), 'POST', '/v1/tokens', { workload: w.body.id, role: 'short', read: [`db://orders/${i}`] });
      expect(r.status).toBe(200);
      tokens.push(r.body);
    }
    await sleep(5_000);
    const byLease = new Map<string, number[]>();
    for (const r of renewals) byLease.set(r.lease, [...(byLease.get(r.lease) ?? []), r.at]);
    expect(byLease.size).toBe(20);
    // ttl 3s: renewals come about a third of the life apart (0.6 to 1.1s); two in one cycle would be milliseconds apart.
    for (const times of byLease.values()) {
      for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThan(500);
    }
    const byReplica = new Set(renewals.map((r) => r.replica));
    expect(byReplica).toEqual(new Set(['replica-a', 'replica-b']));

    // Replica A dies (no graceful stage: claims it held stay until they expire).
    await a.stop({ force: true });
    const killedAt = Date.now();
    await sleep(5_000);
    for (const t of tokens) expect(await leaseAlive(vault.conn, t.lease_id)).toBe(true);
    const after = renewals.filter((r) => r.at > killedAt + 100);
    expect(new Set(after.map((r) => r.lease)).size).toBe(20);
    expect(after.every((r) => r.replica === 'replica-b')).toBe(true);
    const now = await api<Record<string, string>>(b.url as string, 'GET', `/v1/tokens/${tokens[0].jti}`);
    expect(now.status).toBe(200);
    expect(Date.parse(now.body.expires_at)).toBeGreaterThan(Date.now());
  }, 30_000);
});
