// A broker SIGKILLed in the middle of a cloud grant, then restarted: the
// grant's plan (written before the cloud was asked) is enough to roll back
// what the cloud created, and the Vault lease issued for it is revoked.
// The double keeps its "cloud" in a JSON file the child broker and the test share.

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listLeases } from '../../src/client/index.ts';
import { createCloudDouble } from './fixtures/cloud-double.ts';
import { api, leaseAlive, startDevVault, tempDir, writeCloudRoles, type DevVault } from './helpers.ts';

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

function writeConfig(name: string): string {
  const path = `${dir.path}/${name}.json`;
  writeFileSync(
    path,
    JSON.stringify({
      vault: { address: vault.address, auth: { token: { token: vault.rootToken } }, timeout: '2s' },
      store: { sqlite: { path: `${dir.path}/${name}.db` } },
      listener: { address: '127.0.0.1:0' },
      roles: ['logs-long'],
      renewal: { backoff_min: '200ms', backoff_max: '1s' },
      loop: { tick: '50ms', trigger_interval: '100ms', claim_ttl: '5s' },
      log: { level: 'warn' },
    }),
  );
  return path;
}

interface Reconciled {
  orphansRevoked: number;
  intentsClosed: number;
  grantsRolledBack: number;
}

async function spawnBroker(config: string, crashAt: string, cloudState: string): Promise<{ child: ChildProcess; url: string; reconciled: Reconciled }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/broker/fixtures/crash-broker.ts', config, crashAt, cloudState], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => {
      if (l.startsWith('{"url"')) resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`broker exited (${code}): ${stderr}`)));
  });
  return { child, ...(JSON.parse(line) as { url: string; reconciled: Reconciled }) };
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

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
