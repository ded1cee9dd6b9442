// A broker killed with SIGKILL mid-issue and mid-renew, then restarted: every
// lease Vault holds for the broker's roles is owned by the registry or revoked.
// And Vault stopped for a while: the broker backs off and recovers.

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/index.ts';
import { connect, listLeases } from '../../src/client/index.ts';
import { startServer } from '../../src/server/index.ts';
import { sealStanza } from '../server/seal-helpers.ts';
import { api, exited, leaseAlive, sleep, spawnCrashBroker, startDevVault, tempDir, testConfig, waitFor, writeCrashConfig, writeRoles, type DevVault } from './helpers.ts';

const dir = tempDir();
const children: ChildProcess[] = [];
let vault: DevVault;

beforeAll(async () => {
  vault = await startDevVault();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await vault?.close();
  dir.remove();
});

const writeConfig = (name: string) => writeCrashConfig(dir.path, vault, name, ['short', 'capped', 'long']);
const spawnBroker = (config: string, crashAt = '') => spawnCrashBroker([config, crashAt], children);

/** Every lease Vault holds for these roles is owned by a live registry row. */
async function assertNothingOrphaned(ownedIds: Set<string>): Promise<void> {
  for (const role of ['short', 'capped', 'long', 'takeover']) {
    for (const id of await listLeases(vault.conn, `tvm/creds/${role}/`)) expect(ownedIds.has(id), `Vault lease ${id} has no owner`).toBe(true);
  }
}

describe('SIGKILL and restart', () => {
  it('mid-issue: the lease Vault issued is revoked at restart and the intent closed', async () => {
    const config = writeConfig('issue');
    const before = new Set(await listLeases(vault.conn, 'tvm/creds/long/'));
    const first = await spawnBroker(config, 'issue:after-vault');
    const w = await api(first.url, 'POST', '/v1/workloads', { name: 'w', heartbeat_interval: '30s' });
    await api(first.url, 'POST', '/v1/tokens', { workload: w.body.id, role: 'long' }).catch(() => null);
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    const leaked = (await listLeases(vault.conn, 'tvm/creds/long/')).filter((id) => !before.has(id));
    expect(leaked).toHaveLength(1); // Vault issued it; the broker died before recording it

    const second = await spawnBroker(config);
    expect(second.reconciled.orphansRevoked).toBeGreaterThanOrEqual(1);
    expect(second.reconciled.intentsClosed).toBe(1);
    expect(await leaseAlive(vault.conn, leaked[0])).toBe(false);
    // The workload carries on with the restarted broker.
    const t = await api(second.url, 'POST', '/v1/tokens', { workload: w.body.id, role: 'long' });
    expect(t.status).toBe(200);
    const live = await api<{ leases: Array<{ lease_id: string }> }>(second.url, 'GET', '/v1/leases?state=active,revoking,irrevocable');
    await assertNothingOrphaned(new Set(live.body.leases.map((l) => l.lease_id)));
    second.child.kill('SIGKILL');
    await exited(second.child);
  });

  it('mid-renew: the lease stays owned, is renewed after restart, and its token is served', async () => {
    // The restarted broker must take the lease over before the expiry it has on record (the killed renewal's
    // answer was never written): two thirds of the ttl minus its start-up. So the ttl is sized from this machine's
    // start-up of the same process, measured now, instead of a fixed 3s a loaded machine can eat.
    await vault.conn.write('tvm/roles/takeover', { read: ['db://orders/*'], ttl: '3s', max_ttl: '5m' });
    const config = writeCrashConfig(dir.path, vault, 'renew', ['short', 'capped', 'long', 'takeover']);
    const spawnedAt = Date.now();
    const first = await spawnBroker(config, 'renew:after-vault');
    const startupMs = Date.now() - spawnedAt;
    const ttlS = Math.max(3, Math.ceil((3 * startupMs + 1_000) / 1_000));
    await vault.conn.write('tvm/roles/takeover', { read: ['db://orders/*'], ttl: `${ttlS}s`, max_ttl: '5m' });
    const w = await api(first.url, 'POST', '/v1/workloads', { name: 'w', heartbeat_interval: '5m' });
    const t = await api<Record<string, string>>(first.url, 'POST', '/v1/tokens', { workload: w.body.id, role: 'takeover' });
    expect(t.status).toBe(200);
    await exited(first.child); // renewal is due about a third of the ttl after issue; the hook kills it right after Vault answered
    expect(first.child.signalCode).toBe('SIGKILL');

    const second = await spawnBroker(config);
    expect(second.reconciled.orphansRevoked).toBe(0);
    // Past the expiry the lease had before the killed renewal (from the answer, not a guess).
    await sleep(Math.max(0, Date.parse(t.body.expires_at) - Date.now()) + 500);
    expect(await leaseAlive(vault.conn, t.body.lease_id)).toBe(true);
    const now = await api<Record<string, string>>(second.url, 'GET', `/v1/tokens/${t.body.jti}`);
    expect(now.status).toBe(200);
    expect(now.body.lease_id).toBe(t.body.lease_id);
    expect(Date.parse(now.body.expires_at)).toBeGreaterThan(Date.now());
    const live = await api<{ leases: Array<{ lease_id: string }> }>(second.url, 'GET', '/v1/leases?state=active,revoking,irrevocable');
    await assertNothingOrphaned(new Set(live.body.leases.map((l) => l.lease_id)));
    // SIGTERM: revoke_on_shutdown (default true) revokes the workload's leases.
    second.child.kill('SIGTERM');
    await exited(second.child);
    expect(await leaseAlive(vault.conn, t.body.lease_id)).toBe(false);
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('Vault unavailable for a while', () => {
  it('backs off, recovers, and drops nothing that had not expired', async () => {
    const port = await freePort();
    const cfg = `${dir.path}/vault.hcl`;
    writeFileSync(cfg, `storage "sqlite" {\n  path = "${dir.path}/vault.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\n${sealStanza(dir.path)}`);
    let server = await startServer({ dev: false, configPath: cfg, quiet: true });
    const rootToken = server.rootToken as string;
    const conn = connect({ addr: server.address, token: rootToken, env: {} });
    await writeRoles(conn);
    await conn.write('tvm/roles/mid', { read: ['db://orders/*'], ttl: '10s', max_ttl: '1h' });
    const config = testConfig({ address: server.address, rootToken }, { sqlite: { path: `${dir.path}/down.db` } }, { roles: ['mid'], log: { level: 'silent' } });
    const broker = await startBroker(config);
    try {
      const w = await api(broker.url as string, 'POST', '/v1/workloads', { name: 'w', heartbeat_interval: '60s' });
      const t = await api<Record<string, string>>(broker.url as string, 'POST', '/v1/tokens', { workload: w.body.id, role: 'mid' });
      // Down from just after the first renewal until a renewal has failed: the broker's schedule (a third of
      // the ttl apart) decides when that is, not fixed sleeps a loaded machine overshoots.
      await waitFor(async () => ((await broker.store.getLeaseByJti(t.body.jti))?.renewals ?? 0) >= 1, 15_000, 'the first renewal');
      await server.close();
      const row = await waitFor(async () => {
        const r = await broker.store.getLeaseByJti(t.body.jti);
        return r && r.attempts >= 1 ? r : null;
      }, 15_000, 'a renewal failing while Vault is down');
      expect(row?.state).toBe('active');
      expect(row?.lastError).toMatch(/cannot reach Vault/);
      server = await startServer({ dev: false, configPath: cfg, quiet: true });
      await waitFor(async () => (await broker.store.getLeaseByJti(t.body.jti))?.attempts === 0, 15_000, 'a successful renewal');
      expect(await leaseAlive(conn, t.body.lease_id)).toBe(true);
      expect((await broker.store.getLeaseByJti(t.body.jti))?.leaseId).toBe(t.body.lease_id);
      const m = await api(broker.url as string, 'GET', '/metrics');
      expect(m.text).toMatch(/tvm_broker_failures_total\{op="renew"\} [1-9]/);
    } finally {
      await broker.stop();
      await server.close();
    }
  });
});
