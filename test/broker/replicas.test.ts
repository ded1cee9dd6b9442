// Two broker replicas on one PostgreSQL: claims with FOR UPDATE SKIP LOCKED
// and an expiring claim. No lease is renewed twice in one cycle, and when one
// replica dies the other takes over its leases.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/broker/store/postgres.ts';
import { startBroker, type LeaseRow, type RunningBroker } from '../../src/broker/index.ts';
import { api, captureLog, leaseAlive, startDevVault, testConfig, waitFor, type DevVault } from './helpers.ts';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.ts';

const why = pgUnavailable();
if (why) console.warn(why);

describe.skipIf(why !== null)('two replicas on PostgreSQL', () => {
  let pg: PgCluster;
  let vault: DevVault;
  const renewals: Array<{ lease: string; at: number; replica: string }> = [];
  const replicas: RunningBroker[] = [];

  // A replica that dies keeps its claims until claim_ttl passes; a lease it had claimed must outlive that wait
  // with room for the taker's renewal, on a loaded machine too: a ttl of three claim_ttls (the shared `short`
  // role's 3s left about nothing).
  const CLAIM_TTL_MS = 2_000;
  const TTL_MS = 3 * CLAIM_TTL_MS;
  const start = (name: string) =>
    startBroker(
      testConfig(
        vault,
        { postgres: { url: pg.url } },
        { replica: name, roles: ['replicated'], loop: { tick: '50ms', trigger_interval: '100ms', claim_ttl: `${CLAIM_TTL_MS}ms`, batch: 5 }, anomaly: { min_count: 1000 } },
      ),
      {
        log: captureLog().log,
        hooks: {
          at(point, row: LeaseRow) {
            if (point === 'renewed') renewals.push({ lease: row.id, at: Date.now(), replica: name });
          },
        },
      },
    );

  beforeAll(async () => {
    pg = await startPgCluster();
    vault = await startDevVault();
    await vault.conn.write('tvm/roles/replicated', { read: ['db://orders/*'], ttl: `${TTL_MS / 1000}s`, max_ttl: '10m' });
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
    // 5: the claimed-rows indexes (migration 5) came after the logins.
    expect([va, vb]).toEqual([5, 5]);
    await Promise.all([a.close(), b.close()]);
  });

  it('shares renewals without renewing a lease twice in one cycle, and takes over a dead replica\'s leases', async () => {
    const a = await start('replica-a');
    const b = await start('replica-b');
    replicas.push(a, b);
    const w = await api(a.url as string, 'POST', '/v1/workloads', { name: 'w', heartbeat_interval: '60s' });
    const tokens = [];
    for (let i = 0; i < 20; i++) {
      const r = await api<Record<string, string>>(i % 2 ? (b.url as string) : (a.url as string), 'POST', '/v1/tokens', { workload: w.body.id, role: 'replicated', read: [`db://orders/${i}`] });
      expect(r.status).toBe(200);
      tokens.push(r.body);
    }
    const byLease = new Map<string, number[]>();
    // Until every lease has been renewed twice (the loops' pace decides when, not a fixed sleep).
    await waitFor(() => {
      byLease.clear();
      for (const r of renewals) byLease.set(r.lease, [...(byLease.get(r.lease) ?? []), r.at]);
      return byLease.size === 20 && [...byLease.values()].every((t) => t.length >= 2);
    }, 30_000, 'two renewals of every lease');
    // Renewals come about a third of the life apart (1.8s and more: each is scheduled from the one before);
    // two in one cycle would be milliseconds apart.
    for (const times of byLease.values()) {
      for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThan(TTL_MS / 3 / 2);
    }
    const byReplica = new Set(renewals.map((r) => r.replica));
    expect(byReplica).toEqual(new Set(['replica-a', 'replica-b']));

    // Replica A dies (no graceful stage: claims it held stay until they expire).
    await a.stop({ force: true });
    const killedAt = Date.now();
    const after = () => renewals.filter((r) => r.at > killedAt + 100);
    await waitFor(() => new Set(after().map((r) => r.lease)).size === 20, 30_000, 'every lease renewed after replica A died');
    for (const t of tokens) expect(await leaseAlive(vault.conn, t.lease_id)).toBe(true);
    expect(after().every((r) => r.replica === 'replica-b')).toBe(true);
    const now = await api<Record<string, string>>(b.url as string, 'GET', `/v1/tokens/${tokens[0].jti}`);
    expect(now.status).toBe(200);
    expect(Date.parse(now.body.expires_at)).toBeGreaterThan(Date.now());
  }, 90_000);
});
