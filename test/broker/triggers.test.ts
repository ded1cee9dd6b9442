// Two revocation paths against the dev server: the maximum-age trigger, and a
// lease whose revocation keeps failing (the broker's token loses the right to
// revoke by a policy change) marked irrevocable after max_attempts: still
// listed, counted in status and the irrevocable metric, never dropped.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { run } from '../cli/helpers.ts';
import { api, captureLog, leaseAlive, loopLag, sleep, startDevVault, tempDir, waitFor, type DevVault } from './helpers.ts';

const policy = (revoke: boolean) => `
path "tvm/creds/*" { capabilities = ["read", "update"] }
path "sys/leases/renew" { capabilities = ["update"] }
${revoke ? 'path "sys/leases/revoke" { capabilities = ["update"] }' : ''}
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/leases/lookup/tvm/creds/*" { capabilities = ["list", "sudo"] }
`;

let vault: DevVault;
const dir = tempDir();

beforeAll(async () => {
  vault = await startDevVault();
});

afterAll(async () => {
  await vault?.close();
  dir.remove();
});

function config(name: string, token: string, extra: Record<string, unknown> = {}) {
  return parseConfig(
    {
      vault: { address: vault.address, auth: { token: { token } }, timeout: '2s' },
      store: { sqlite: { path: `${dir.path}/${name}.db` } },
      listener: { address: '127.0.0.1:0' },
      roles: ['long'],
      renewal: { backoff_min: '200ms', backoff_max: '400ms', expiry_margin: '100ms', ...((extra.renewal as object) ?? {}) },
      loop: { tick: '50ms', trigger_interval: '100ms', claim_ttl: '5s' },
      revocation: { max_attempts: 3 },
      ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'renewal')),
    },
    process.cwd(),
    {},
  );
}

async function workloadWithToken(base: string, role = 'long'): Promise<{ workload: string; jti: string; leaseId: string }> {
  const w = await api(base, 'POST', '/v1/workloads', { name: 'svc', heartbeat_interval: '60s' });
  const t = await api<Record<string, string>>(base, 'POST', '/v1/tokens', { workload: w.body.id, role });
  expect(t.status, t.text).toBe(200);
  return { workload: w.body.id as string, jti: t.body.jti, leaseId: t.body.lease_id };
}

describe('maximum age', () => {
  let broker: RunningBroker;
  afterAll(() => broker?.stop());

  it('revokes a lease once it is older than renewal.max_age, whatever its ttl, and records the reason', async () => {
    broker = await startBroker(config('maxage', vault.rootToken, { renewal: { max_age: '1500ms' } }), { log: captureLog().log });
    const base = broker.url as string;
    const lag = loopLag();
    const before = Date.now();
    const t = await workloadWithToken(base); // ttl 30m: nothing else would end it
    const issuedAt = (await broker.store.getLeaseByJti(t.jti))?.createdAt ?? 0;
    expect(issuedAt).toBeGreaterThanOrEqual(before);
    await waitFor(async () => (await broker.store.getLeaseByJti(t.jti))?.state === 'revoked', 15_000, 'the lease revoked for its age');
    lag.stop();
    expect(await leaseAlive(vault.conn, t.leaseId)).toBe(false);
    const row = (await broker.store.getLeaseByJti(t.jti))!;
    expect(row).toMatchObject({ state: 'revoked', reason: 'max_age' });
    // When the trigger marked it (the row's due time, on the broker's clock): not before max_age, and after it
    // within a trigger interval (100ms), a tick and how late this process ran; revoked in Vault after that.
    expect(row.dueAt - issuedAt).toBeGreaterThanOrEqual(1_500);
    expect(row.dueAt - issuedAt).toBeLessThan(1_500 + 100 + 50 + 250 + 2 * lag.maxMs());
    expect(row.endedAt).toBeGreaterThanOrEqual(row.dueAt);
    const gone = await api<{ errors: string[] }>(base, 'GET', `/v1/tokens/${t.jti}`);
    expect(gone.status).toBe(410);
    expect(gone.body.errors[0]).toMatch(/lease revoked \(max_age\)/);
    const m = await api(base, 'GET', '/metrics');
    expect(m.text).toMatch(/tvm_broker_revocations_total\{reason="max_age"\} 1\b/);
    // The workload itself lives on: its next request gets a fresh lease.
    const again = await api<Record<string, string>>(base, 'POST', '/v1/tokens', { workload: t.workload, role: 'long' });
    expect(again.status).toBe(200);
    expect(again.body.jti).not.toBe(t.jti);
  });
});

describe('a lease whose revocation keeps failing', () => {
  let broker: RunningBroker;
  afterAll(async () => {
    await vault.conn.write('sys/policies/acl/tvm-broker', { policy: policy(true) });
    await broker?.stop();
  });

  it('is marked irrevocable after max_attempts, then listed, counted and never dropped', async () => {
    await vault.conn.write('sys/policies/acl/tvm-broker', { policy: policy(true) });
    const created = await vault.conn.write('auth/token/create', { policies: ['tvm-broker'], ttl: '1h' });
    const token = (created?.auth as { client_token: string }).client_token;
    const logged = captureLog();
    broker = await startBroker(config('irrevocable', token), { log: logged.log });
    const base = broker.url as string;
    const kept = await workloadWithToken(base);
    const doomed = await workloadWithToken(base);

    // The broker's token loses sys/leases/revoke: every revocation now gets a 403.
    await vault.conn.write('sys/policies/acl/tvm-broker', { policy: policy(false) });
    const del = await api(base, 'DELETE', `/v1/tokens/${doomed.jti}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ state: 'revoking', reason: 'explicit' });

    const row = await waitFor(async () => {
      const r = await broker.store.getLeaseByJti(doomed.jti);
      return r?.state === 'irrevocable' ? r : undefined;
    }, 5_000, 'the lease marked irrevocable').then((r) => r as NonNullable<typeof r>);
    expect(row.attempts).toBe(2); // two failures rescheduled; the third made it irrevocable
    expect(row.lastError).toMatch(/revoke: permission denied \(HTTP 403 on POST sys\/leases\/revoke\)/);
    expect(row.reason).toBe('explicit');
    // Vault still holds it: the broker says so instead of pretending.
    expect(await leaseAlive(vault.conn, doomed.leaseId)).toBe(true);
    const alerts = logged.lines.filter((l) => l.includes('"alert":true') && l.includes('lease is irrevocable'));
    expect(alerts).toHaveLength(1);
    expect(JSON.parse(alerts[0])).toMatchObject({ attempts: 3, lease: row.id });
    expect(logged.lines.filter((l) => l.includes('revocation failed; backing off'))).toHaveLength(2);

    // Shown, and still shown later: nothing drops it.
    for (let round = 0; round < 2; round++) {
      const listed = await api<{ leases: Array<Record<string, unknown>> }>(base, 'GET', '/v1/leases');
      const mine = listed.body.leases.find((l) => l.jti === doomed.jti);
      // attempts counts the rescheduled failures (the store's finish() does not count the last one).
      expect(mine).toMatchObject({ state: 'irrevocable', reason: 'explicit', attempts: 2, lease_id: doomed.leaseId });
      expect(mine?.last_error).toMatch(/permission denied/);
      expect(listed.body.leases.find((l) => l.jti === kept.jti)).toMatchObject({ state: 'active' });
      const status = await api<{ leases: Record<string, number> }>(base, 'GET', '/v1/status');
      expect(status.body.leases.irrevocable).toBe(1);
      await waitFor(async () => /tvm_broker_irrevocable_leases 1\b/.test((await api(base, 'GET', '/metrics')).text), 10_000, 'the irrevocable gauge');
      // The CLI shows it too, with the default filter and with --state irrevocable.
      for (const args of [[], ['--state', 'irrevocable']]) {
        const cli = await run(['broker', 'leases', '--broker', base, ...args]);
        expect(cli.code, cli.stderr).toBe(0);
        const line = cli.stdout.split('\n').find((l) => l.startsWith(row.id));
        expect(line).toMatch(/\birrevocable\b.*\bexplicit  -$/);
      }
      if (round === 0) await sleep(1_500); // several more passes and gauge refreshes
    }
    const only = await run(['broker', 'leases', '--broker', base, '--state', 'irrevocable', '--format', 'json']);
    expect((JSON.parse(only.stdout) as unknown[]).length).toBe(1);
    const failures = (await api(base, 'GET', '/metrics')).text;
    expect(failures).toMatch(/tvm_broker_failures_total\{op="revoke"\} 3\b/);
    expect(failures).not.toMatch(/tvm_broker_revocations_total\{reason="explicit"\}/);
  });
});
