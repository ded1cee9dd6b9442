// The broker against the dev server, in-process: tokens, cache, renewal,
// re-fetch near max_ttl, liveness, anomalies, bad input, logs and metrics.

import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { listLeases } from '../../src/client/index.ts';
import { createCloudDouble } from './fixtures/cloud-double.ts';
import { api, captureLog, leaseAlive, loopLag, sleep, startDevVault, tempDir, testConfig, waitFor, writeCloudRoles, type DevVault } from './helpers.ts';

let vault: DevVault;
let broker: RunningBroker;
let base: string;
const dir = tempDir();
const logged = captureLog();
const handedOut: string[] = [];
const cloud = createCloudDouble({ control: { life: 1_500 } });

beforeAll(async () => {
  vault = await startDevVault();
  await writeCloudRoles(vault.conn);
  broker = await startBroker(testConfig(vault, { sqlite: { path: `${dir.path}/broker.db` } }), { log: logged.log, providers: { aws: cloud.provider } });
  base = broker.url as string;
});

afterAll(async () => {
  await broker?.stop();
  await vault?.close();
  dir.remove();
});

async function register(body: Record<string, unknown> = { name: 'svc', heartbeat_interval: '10s' }): Promise<string> {
  const r = await api(base, 'POST', '/v1/workloads', body);
  expect(r.status).toBe(201);
  return r.body.id as string;
}

async function token(workload: string, role = 'short', extra: Record<string, unknown> = {}) {
  const r = await api<Record<string, string | number | boolean>>(base, 'POST', '/v1/tokens', { workload, role, ...extra });
  if (r.status === 200) handedOut.push(r.body.token as string);
  return r;
}

describe('tokens', () => {
  it('serves the same token from the cache for the same workload, role and scopes', async () => {
    const w = await register();
    const a = await token(w, 'long');
    expect(a.status).toBe(200);
    expect(a.body.cached).toBe(false);
    const b = await token(w, 'long');
    expect(b.body.jti).toBe(a.body.jti);
    expect(b.body.cached).toBe(true);
    const narrowed = await token(w, 'long', { read: ['db://orders/1'] });
    expect(narrowed.body.jti).not.toBe(a.body.jti);
    // A burst of identical requests mints once.
    const w2 = await register();
    const burst = await Promise.all(Array.from({ length: 20 }, () => token(w2, 'long')));
    expect(new Set(burst.map((r) => r.body.jti)).size).toBe(1);
  });

  it('keeps a lease alive past its first ttl and hands out the renewed token', async () => {
    const w = await register();
    const first = await token(w, 'short');
    const jti = first.body.jti as string;
    // Past the expiry the first token's lease had (the role's ttl is 3s), measured from the answer.
    await sleep(Date.parse(first.body.expires_at as string) - Date.now() + 1_000);
    expect(await leaseAlive(vault.conn, first.body.lease_id as string)).toBe(true);
    const now = await api<Record<string, string>>(base, 'GET', `/v1/tokens/${jti}`);
    expect(now.status).toBe(200);
    handedOut.push(now.body.token);
    expect(now.body.jti).toBe(jti);
    expect(now.body.token).not.toBe(first.body.token);
    expect(Date.parse(now.body.expires_at)).toBeGreaterThan(Date.parse(first.body.expires_at as string));
    const row = await broker.store.getLeaseByJti(jti);
    expect(row?.renewals).toBeGreaterThanOrEqual(1);
  });

  it('re-fetches a new lease near max_ttl and revokes the old one after a grace', async () => {
    const w = await register();
    const first = await token(w, 'capped'); // ttl 2s, max_ttl 5s
    const jti = first.body.jti as string;
    const old = await waitFor<import("../../src/broker/index.ts").LeaseRow | null>(async () => {
      const r = await broker.store.getLeaseByJti(jti);
      return r && r.replacedBy ? r : null;
    }, 8_000, 'a successor lease');
    const current = await api<Record<string, string>>(base, 'GET', `/v1/tokens/${jti}`);
    expect(current.status).toBe(200);
    handedOut.push(current.body.token);
    expect(current.body.jti).not.toBe(jti);
    expect(await leaseAlive(vault.conn, current.body.lease_id)).toBe(true);
    await waitFor(async () => (await broker.store.getLease(old!.id))?.state === 'revoked', 3_000, 'the old lease revoked');
    expect(await leaseAlive(vault.conn, first.body.lease_id as string)).toBe(false);
  });

  it('revokes on DELETE /v1/tokens/<jti> and DELETE /v1/workloads/<id>', async () => {
    const w = await register();
    const a = await token(w, 'long');
    const b = await token(w, 'short');
    const del = await api(base, 'DELETE', `/v1/tokens/${a.body.jti}`);
    expect(del.status).toBe(200);
    await waitFor(async () => !(await leaseAlive(vault.conn, a.body.lease_id as string)), 10_000, 'token revoked');
    expect((await api(base, 'GET', `/v1/tokens/${a.body.jti}`)).status).toBe(410);
    const end = await api(base, 'DELETE', `/v1/workloads/${w}`);
    expect(end.body.revoking).toBe(1);
    await waitFor(async () => !(await leaseAlive(vault.conn, b.body.lease_id as string)), 10_000, 'workload leases revoked');
    const after = await token(w, 'short');
    expect(after.status).toBe(409);
  });
});

/** The workload's registry row once the broker ended it. */
const endedWorkload = (id: string) =>
  waitFor(async () => {
    const r = await broker.store.getWorkload(id);
    return r?.state === 'ended' ? r : null;
  }, 10_000, 'the workload ended').then((r) => r!);

describe('liveness', () => {
  it('revokes a workload that stops heartbeating within one interval', async () => {
    const interval = 1_000;
    const lag = loopLag();
    const w = await register({ name: 'beats', heartbeat_interval: `${interval}ms` });
    const t = await token(w, 'long');
    // Heartbeats a quarter of an interval apart: only a stall of over a second would miss one.
    for (let i = 0; i < 4; i++) {
      await sleep(interval / 4);
      expect((await api(base, 'POST', `/v1/workloads/${w}/heartbeat`)).status).toBe(200);
    }
    expect(await leaseAlive(vault.conn, t.body.lease_id as string)).toBe(true);
    const lastBeat = (await broker.store.getWorkload(w))!.lastHeartbeatAt;
    const ended = await endedWorkload(w);
    lag.stop();
    expect(ended.reason).toBe('heartbeat_missed');
    // Dead after interval × 1.5 without a heartbeat, not before; ended within a trigger interval (100ms), a tick
    // and how late this process ran (the registry's times, not the test's polling); then its lease is revoked.
    expect(ended.endedAt! - lastBeat).toBeGreaterThanOrEqual(interval * 1.5);
    expect(ended.endedAt! - lastBeat).toBeLessThan(interval * 1.5 + 100 + 50 + 250 + 2 * lag.maxMs());
    await waitFor(async () => !(await leaseAlive(vault.conn, t.body.lease_id as string)), 10_000, 'lease revoked');
    expect((await api(base, 'GET', `/v1/workloads/${w}`)).body.reason).toBe('heartbeat_missed');
  });

  it('revokes a workload whose process exits within one interval', async () => {
    const lag = loopLag();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 1500)'], { stdio: 'ignore' });
    const w = await register({ name: 'proc', pid: child.pid });
    const t = await token(w, 'long');
    await new Promise((r) => child.once('exit', r));
    const exited = Date.now();
    const ended = await endedWorkload(w);
    lag.stop();
    expect(ended.reason).toBe('process_exited');
    // Noticed within a trigger interval (100ms), a tick and how late this process ran, by the registry's time.
    expect(ended.endedAt! - exited).toBeLessThan(100 + 50 + 250 + 2 * lag.maxMs());
    await waitFor(async () => !(await leaseAlive(vault.conn, t.body.lease_id as string)), 10_000, 'lease revoked');
    expect((await api(base, 'GET', `/v1/workloads/${w}`)).body.reason).toBe('process_exited');
  });
});

describe('anomalies', () => {
  it('revokes a workload whose issuance rate spikes', async () => {
    const w = await register({ name: 'spiky', heartbeat_interval: '30s' });
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await token(w, 'long', { read: [`db://orders/${i}`] }));
    expect(answers.some((a) => a.status === 409)).toBe(true);
    const leases = answers.filter((a) => a.status === 200).map((a) => a.body.lease_id as string);
    await waitFor(async () => {
      for (const l of leases) if (await leaseAlive(vault.conn, l)) return false;
      return true;
    }, 3_000, 'all the workload\'s leases revoked');
    expect((await api(base, 'GET', `/v1/workloads/${w}`)).body.reason).toBe('anomaly_rate');
    expect(logged.lines.some((l) => l.includes('"alert":true') && l.includes(w) && l.includes('issuance spike'))).toBe(true);
  });

  it('revokes a workload reported for out-of-scope use', async () => {
    const w = await register({ name: 'reported', heartbeat_interval: '30s' });
    const a = await token(w, 'long');
    const b = await token(w, 'short');
    const r = await api(base, 'POST', '/v1/reports', { jti: a.body.jti, reason: 'wrote db://orders/123' });
    expect(r.status).toBe(200);
    expect(r.body.revoked).toBe(2);
    await waitFor(async () => !(await leaseAlive(vault.conn, a.body.lease_id as string)) && !(await leaseAlive(vault.conn, b.body.lease_id as string)), 2_000, 'leases revoked');
    expect(logged.lines.some((l) => l.includes('"alert":true') && l.includes('out-of-scope'))).toBe(true);
  });
});

describe('bad input on the local API', () => {
  const cases: Array<[string, string, string, unknown, number, RegExp]> = [
    ['unknown workload', 'POST', '/v1/tokens', { workload: 'nope', role: 'short' }, 404, /workload nope is not registered/],
    ['missing role', 'POST', '/v1/tokens', { workload: 'x' }, 400, /role: is required/],
    ['unknown field', 'POST', '/v1/tokens', { workload: 'x', role: 'short', scopes: [] }, 400, /scopes: unknown field/],
    ['bad ttl', 'POST', '/v1/tokens', { workload: 'x', role: 'short', ttl: 'soon' }, 400, /ttl: "soon" is not a duration/],
    ['read not a list', 'POST', '/v1/tokens', { workload: 'x', role: 'short', read: [1] }, 400, /read: must be a list of strings/],
    ['no liveness', 'POST', '/v1/workloads', { name: 'a' }, 400, /heartbeat_interval: give exactly one liveness signal/],
    ['bad pid', 'POST', '/v1/workloads', { name: 'a', pid: 'x' }, 400, /pid: must be a process id/],
    ['bad name', 'POST', '/v1/workloads', { name: 'a b', heartbeat_interval: '1s' }, 400, /name: must be/],
    ['array body', 'POST', '/v1/workloads', [1], 400, /body: must be a JSON object/],
    ['heartbeat unknown', 'POST', '/v1/workloads/nope/heartbeat', {}, 404, /not registered/],
    ['report unknown jti', 'POST', '/v1/reports', { jti: 'nope', reason: 'x' }, 404, /no token with jti nope/],
    ['no route', 'GET', '/v1/nothing', undefined, 404, /no route GET "\/v1\/nothing"/],
    ['bad state filter', 'GET', '/v1/leases?state=zzz', undefined, 400, /state: "zzz" is not one of/],
  ];
  for (const [name, method, path, body, status, message] of cases) {
    it(name, async () => {
      const r = await api<{ errors: string[] }>(base, method, path, body);
      expect(r.status).toBe(status);
      expect(r.body.errors.join(' ')).toMatch(message);
    });
  }

  it('unknown role: 400 with Vault\'s message', async () => {
    const w = await register();
    const r = await api<{ errors: string[] }>(base, 'POST', '/v1/tokens', { workload: w, role: 'no-such-role' });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatch(/Vault refused the request: .*no-such-role/);
  });

  it('malformed JSON and an oversize body', async () => {
    const bad = await api<{ errors: string[] }>(base, 'POST', '/v1/tokens', undefined, '{"workload": ');
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toBe('body: is not valid JSON: unexpected end of JSON input');
    const deep = await api<{ errors: string[] }>(base, 'POST', '/v1/tokens', undefined, `{"workload": ${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
    expect(deep).toMatchObject({ status: 400, body: { errors: ['body: is not valid JSON: JSON input exceeds the allowed nesting depth of 300'] } });
    const big = await api<{ errors: string[] }>(base, 'POST', '/v1/workloads', undefined, JSON.stringify({ name: 'x'.repeat(100_000) }));
    expect(big.status).toBe(413);
    expect(big.body.errors[0]).toMatch(/body: larger than 65536 bytes/);
    // Still serving.
    expect((await api(base, 'GET', '/v1/status')).status).toBe(200);
  });
});

describe('observability', () => {
  it('exposes metrics, and no token or cloud credential appears in a log line, an event or the metrics', async () => {
    // A cloud credential issued, refreshed and torn down, with every step logged at debug.
    const w = await register();
    const c = await token(w, 'logs-long', { cloud: 'aws' });
    expect(c.status).toBe(200);
    await waitFor(async () => (await broker.store.grantOfLease((await broker.store.getLeaseByJti(c.body.jti as string))!.id))!.refreshes >= 1, 3_000, 'a refresh');
    await api(base, 'DELETE', `/v1/tokens/${c.body.jti}`);
    await waitFor(() => cloud.state().calls.some((x) => x.op === 'teardown'), 3_000, 'the teardown');
    expect(logged.lines.some((l) => l.includes('cloud credential refreshed'))).toBe(true);
    const m = await api(base, 'GET', '/metrics');
    expect(m.status).toBe(200);
    for (const name of ['tvm_broker_active_leases', 'tvm_broker_renewals_total', 'tvm_broker_revocations_total', 'tvm_broker_failures_total', 'tvm_broker_irrevocable_leases', 'tvm_broker_renewal_lag_seconds']) {
      expect(m.text).toContain(name);
    }
    expect(m.text).toMatch(/tvm_broker_revocations_total\{reason="heartbeat_missed"\} [1-9]/);
    expect(m.text).toMatch(/tvm_broker_renewals_total\{result="ok"\} [1-9]/);
    expect(handedOut.length).toBeGreaterThan(10);
    expect(logged.lines.length).toBeGreaterThan(20);
    const events = await api(base, 'GET', '/v1/events?limit=1000');
    const all = [logged.lines.join('\n'), events.text].join('\n');
    expect(cloud.secrets().length).toBeGreaterThanOrEqual(4);
    for (const secret of cloud.secrets()) {
      expect(all.includes(secret)).toBe(false);
      expect(m.text.includes(secret)).toBe(false);
    }
    for (const t of handedOut) {
      expect(t.length).toBeGreaterThan(100);
      expect(all.includes(t)).toBe(false);
      // Not even the signature part.
      expect(all.includes(t.split('.')[2])).toBe(false);
      expect(m.text.includes(t.split('.')[2])).toBe(false);
    }
  });

  it('every Vault lease of the broker\'s roles is owned by the registry', async () => {
    const owned = await broker.store.ownedVaultLeaseIds();
    for (const role of ['short', 'capped', 'long']) {
      for (const id of await listLeases(vault.conn, `tvm/creds/${role}/`)) expect(owned.has(id)).toBe(true);
    }
  });
});
