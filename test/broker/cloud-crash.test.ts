// A broker SIGKILLed in the middle of a cloud grant, then restarted: the
// grant's plan (written before the cloud was asked) is enough to roll back
// what the cloud created, and the Vault lease issued for it is revoked.
// The double keeps its "cloud" in a JSON file the child broker and the test share.

import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listLeases } from '../../src/client/index.ts';
import { createCloudDouble } from './fixtures/cloud-double.ts';
import { api, exited, leaseAlive, spawnCrashBroker, startDevVault, tempDir, writeCloudRoles, writeCrashConfig, type DevVault } from './helpers.ts';

const dir = tempDir();
const children: ChildProcess[] = [];
let vault: DevVault;

beforeAll(async () => {
  vault = await startDevVault();
  await writeCloudRoles(vault.conn);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await vault?.close();
  dir.remove();
});

const writeConfig = (name: string) => writeCrashConfig(dir.path, vault, name, ['logs-long']);
const spawnBroker = (config: string, crashAt: string, cloudState: string) => spawnCrashBroker([config, crashAt, cloudState], children);

describe.each(['cloud:after-cloud', 'cloud:before-cloud'])('SIGKILL at %s, then restart', (point) => {
  it('rolls the grant back from its plan (teardown, reason rollback, no grant) and revokes the Vault lease', async () => {
    const name = point.replace(/\W/g, '-');
    const config = writeConfig(name);
    const stateFile = `${dir.path}/${name}-cloud.json`;
    const cloud = createCloudDouble({ stateFile });
    const before = new Set(await listLeases(vault.conn, 'tvm/creds/logs-long/'));

    const first = await spawnBroker(config, point, stateFile);
    const w = await api(first.url, 'POST', '/v1/workloads', { name: 'w', heartbeat_interval: '60s' });
    await api(first.url, 'POST', '/v1/tokens', { workload: w.body.id, role: 'logs-long', cloud: 'aws' }).catch(() => null);
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    const crashed = cloud.state();
    const grantId = crashed.calls.find((c) => c.op === 'plan')!.grantId;
    if (point === 'cloud:after-cloud') {
      // The cloud created its object and handed out a credential; the registry never heard of it.
      expect(crashed.calls.map((c) => c.op)).toEqual(['plan', 'issue']);
      expect(crashed.objects[`tvm-${grantId}`]).toBe(grantId);
    } else {
      expect(crashed.calls.map((c) => c.op)).toEqual(['plan']);
    }
    const leaked = (await listLeases(vault.conn, 'tvm/creds/logs-long/')).filter((id) => !before.has(id));
    expect(leaked).toHaveLength(1);

    const second = await spawnBroker(config, '', stateFile);
    expect(second.reconciled).toMatchObject({ grantsRolledBack: 1, intentsClosed: 1 });
    expect(second.reconciled.orphansRevoked).toBeGreaterThanOrEqual(1);
    const after = cloud.state();
    const teardown = after.calls.filter((c) => c.grantId === grantId && c.op === 'teardown');
    expect(teardown).toEqual([expect.objectContaining({ reason: 'rollback', withGrant: false })]);
    expect(after.objects).toEqual({});
    expect(await leaseAlive(vault.conn, leaked[0])).toBe(false);
    const events = await api<{ events: Array<{ kind: string; reason: string | null }> }>(second.url, 'GET', '/v1/events?limit=100');
    expect(events.body.events.map((e) => e.kind)).toEqual(expect.arrayContaining(['cloud_rolled_back', 'intent_abandoned', 'orphan_revoked']));

    // The workload carries on with the restarted broker: a fresh lease and grant.
    const t = await api<{ cloud_credential?: { env: Record<string, string> } }>(second.url, 'POST', '/v1/tokens', { workload: w.body.id, role: 'logs-long', cloud: 'aws' });
    expect(t.status, t.text).toBe(200);
    expect(t.body.cloud_credential?.env.AWS_ACCESS_KEY_ID).toMatch(/^ASIADOUBLE/);
    // SIGTERM with revoke_on_shutdown: the lease and its grant are torn down before exit.
    second.child.kill('SIGTERM');
    await exited(second.child);
    const end = cloud.state();
    expect(end.objects).toEqual({});
    expect(end.calls.filter((c) => c.op === 'teardown' && c.reason === 'revoke')).toHaveLength(1);
  });
});
