// The broker against a real OpenBao 2.7 (dev mode) running the tvm plugin:
// it logs in with AppRole, issues plugin-backed leases, renews them (the fresh
// token fetched as the lease's holder and served from GET /v1/tokens/<jti>),
// replaces them near max_ttl, revokes them (OpenBao drops the lease, the jti
// enters the plugin's revocation list), and reconciles at start-up with
// OpenBao's LIST of sys/leases/lookup (sudo). In-process brokers, and child
// processes where a restart is the point. Each broker lists its own roles:
// two registries on one role would revoke each other's leases as orphans.

import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { connect } from '../../src/client/index.ts';
import { api, captureLog, exited, spawnCrashBroker, tempDir, testConfig, waitFor, writeCrashConfig, writeRoles, type CrashBroker } from '../broker/helpers.ts';
import { appRole, brokerPolicy, claimsOf, leaseIdsOf, leaseState, readmeBrokerPolicy, revokedJtis, type AppRoleLogin } from './broker-openbao.ts';
import { openbaoUnavailable, registerPlugin, startBaoDev, type Bao } from './openbao.ts';

const unavailable = openbaoUnavailable();
if (unavailable) console.warn(`skipping the broker against OpenBao: ${unavailable}`);

type Token = { token: string; jti: string; lease_id: string; expires_at: string; ttl: number; cached: boolean };

describe.skipIf(unavailable !== '')('the broker against OpenBao with the tvm plugin', () => {
  let bao: Bao;
  let broker: RunningBroker;
  let base: string;
  let brokerLogin: AppRoleLogin;
  let orphan: { leaseId: string; jti: string };
  const dir = tempDir('tvm-real-broker-');
  const logged = captureLog();
  const children: ChildProcess[] = [];
  const handedOut: string[] = [];

  /** The broker's config: test timings, SQLite in `dir`, AppRole login, these roles only. */
  const config = (name: string, login: AppRoleLogin, roles: string[]) =>
    testConfig({ address: bao.address, rootToken: '' }, { sqlite: { path: `${dir.path}/${name}.db` } }, {
      vault: { address: bao.address, auth: { approle: { role_id: login.roleId, secret_id: login.secretId } }, timeout: '5s' },
      roles,
    });

  async function verify(token: string): Promise<{ jti: string; exp: number }> {
    const jwks = (await (await fetch(`${bao.address}/v1/tvm/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: `${bao.address}/v1/tvm` });
    return { jti: String(payload.jti), exp: Number(payload.exp) };
  }

  async function workload(url: string, name = 'svc'): Promise<string> {
    const r = await api(url, 'POST', '/v1/workloads', { name, heartbeat_interval: '60s' });
    expect(r.status).toBe(201);
    return r.body.id as string;
  }

  async function token(url: string, body: Record<string, unknown>) {
    const r = await api<Token & { errors?: string[] }>(url, 'POST', '/v1/tokens', body);
    if (r.status === 200) handedOut.push(r.body.token);
    return r;
  }

  beforeAll(async () => {
    bao = await startBaoDev();
    await registerPlugin(bao);
    const root = connect({ addr: bao.address, token: bao.rootToken, env: {} });
    await writeRoles(root); // short (3s, max 60s), capped (2s, max 5s), long (30m, max 1h)
    await root.write('tvm/roles/readme', { read: ['db://orders/*'], ttl: '30m', max_ttl: '1h' });
    await root.write('tvm/roles/child', { read: ['db://orders/*'], ttl: '3s', max_ttl: '60s' });
    brokerLogin = await appRole(bao, 'tvm-broker', brokerPolicy());
    // A lease of one of the broker's roles that no registry owns (obtained by root), before the broker starts.
    const o = await bao.api('GET', 'tvm/creds/long');
    orphan = { leaseId: o.body.lease_id as string, jti: o.body.data?.jti as string };
    broker = await startBroker(config('main', brokerLogin, ['short', 'capped', 'long']), { log: logged.log });
    base = broker.url as string;
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await broker?.stop();
    await bao?.stop();
    if (bao) rmSync(dirname(bao.pluginDir), { recursive: true, force: true }); // the dev server's folder (config, log, plugins)
    dir.remove();
  });

  it('logs in with AppRole and reconciles at start-up: LIST sys/leases/lookup/tvm/creds/<role>/ (sudo), the orphan lease revoked', async () => {
    expect(logged.lines.some((l) => l.includes('"method":"approle"') && l.includes('logged in to Vault'))).toBe(true);
    expect(broker.reconciled).toMatchObject({ orphansRevoked: 1, intentsClosed: 0 });
    expect(await leaseState(bao, orphan.leaseId)).toBe('gone');
    expect((await revokedJtis(bao)).has(orphan.jti)).toBe(true);
  });

  it('issues a plugin-backed lease: live in OpenBao, a token signed by the plugin with OpenBao as issuer', async () => {
    const w = await workload(base);
    const t = await token(base, { workload: w, role: 'long' });
    expect(t.status).toBe(200);
    expect(t.body.lease_id).toMatch(/^tvm\/creds\/long\//);
    expect(await leaseState(bao, t.body.lease_id)).toBe('live');
    expect(await verify(t.body.token)).toMatchObject({ jti: t.body.jti });
    expect(await leaseIdsOf(bao, 'long')).toContain(t.body.lease_id);
    // Served from the registry while a third of its life remains.
    const again = await token(base, { workload: w, role: 'long' });
    expect(again.body).toMatchObject({ jti: t.body.jti, cached: true });
  });

  it('renews the lease in OpenBao and GET /v1/tokens/<jti> serves the fresh token (fetched from creds/<role> with jti)', async () => {
    const w = await workload(base);
    const first = await token(base, { workload: w, role: 'short' }); // ttl 3s
    expect(first.status).toBe(200);
    const firstExp = claimsOf(first.body.token).exp;
    // Past the first token's exp: only a renewal can have kept the lease.
    await waitFor(async () => Date.now() > firstExp * 1000 + 500 && ((await broker.store.getLeaseByJti(first.body.jti))?.renewals ?? 0) >= 2, 15_000, 'two renewals, past the first exp');
    expect(await leaseState(bao, first.body.lease_id)).toBe('live');
    const now = await api<Token>(base, 'GET', `/v1/tokens/${first.body.jti}`);
    expect(now.status).toBe(200);
    handedOut.push(now.body.token);
    expect(now.body.lease_id).toBe(first.body.lease_id);
    expect(now.body.token).not.toBe(first.body.token);
    const fresh = await verify(now.body.token);
    expect(fresh.jti).toBe(first.body.jti);
    expect(fresh.exp).toBeGreaterThan(firstExp);
    expect(fresh.exp * 1000).toBeGreaterThan(Date.now());
    expect(fresh.exp).toBe(Date.parse(now.body.expires_at) / 1000);
  });

  it('fetches a successor near max_ttl; the old jti serves it; the old lease is revoked in OpenBao after the grace', async () => {
    const w = await workload(base);
    const first = await token(base, { workload: w, role: 'capped' }); // ttl 2s, max_ttl 5s
    const old = await waitFor(async () => {
      const r = await broker.store.getLeaseByJti(first.body.jti);
      return r?.replacedBy ? r : null;
    }, 10_000, 'a successor lease');
    const current = await api<Token>(base, 'GET', `/v1/tokens/${first.body.jti}`);
    expect(current.status).toBe(200);
    handedOut.push(current.body.token);
    expect(current.body.jti).not.toBe(first.body.jti);
    expect(await leaseState(bao, current.body.lease_id)).toBe('live');
    await waitFor(async () => (await broker.store.getLease(old!.id))?.state === 'revoked', 5_000, 'the old lease revoked');
    expect(await leaseState(bao, first.body.lease_id)).toBe('gone');
    expect((await revokedJtis(bao)).has(first.body.jti)).toBe(true);
  });

  it('revokes: DELETE /v1/tokens/<jti> and DELETE /v1/workloads/<id> drop the leases in OpenBao and list their jtis', async () => {
    const w = await workload(base);
    const a = await token(base, { workload: w, role: 'long', read: ['db://orders/1'] });
    const b = await token(base, { workload: w, role: 'short' });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((await api(base, 'DELETE', `/v1/tokens/${a.body.jti}`)).status).toBe(200);
    await waitFor(async () => (await leaseState(bao, a.body.lease_id)) === 'gone', 5_000, 'lease a gone in OpenBao');
    expect((await revokedJtis(bao)).has(a.body.jti)).toBe(true);
    expect((await api(base, 'GET', `/v1/tokens/${a.body.jti}`)).status).toBe(410);
    expect((await api(base, 'DELETE', `/v1/workloads/${w}`)).body.revoking).toBe(1);
    await waitFor(async () => (await leaseState(bao, b.body.lease_id)) === 'gone', 5_000, 'lease b gone in OpenBao');
    expect((await revokedJtis(bao)).has(b.body.jti)).toBe(true);
  });

  it("under exactly the README's policy a token request that narrows nothing is refused (a GET needs read on creds/*)", async () => {
    const readme = await appRole(bao, 'tvm-broker-readme', readmeBrokerPolicy());
    const other = await startBroker(config('readme', readme, ['readme']), { log: captureLog().log });
    try {
      expect(other.reconciled.orphansRevoked).toBe(0); // LIST with sudo: allowed by the README's policy
      const w = await workload(other.url as string);
      const plain = await token(other.url as string, { workload: w, role: 'readme' });
      expect(plain.status).toBe(502);
      expect(plain.body.errors?.join(' ')).toMatch(/permission denied/);
      const narrowed = await token(other.url as string, { workload: w, role: 'readme', read: ['db://orders/7'] });
      expect(narrowed.status).toBe(200);
      expect(await leaseState(bao, narrowed.body.lease_id)).toBe('live');
    } finally {
      await other.stop();
    }
  });

  describe('restarted (child processes, AppRole tokens of ttl 12s)', () => {
    let configPath: string;
    let workloadId: string;
    let held: Token;
    let second: CrashBroker<{ orphansRevoked: number; intentsClosed: number }>;
    let third: CrashBroker<{ orphansRevoked: number; intentsClosed: number }>;

    beforeAll(async () => {
      const login = await appRole(bao, 'tvm-broker-brief', brokerPolicy(), { ttl: '12s', maxTtl: '1h' });
      writeFileSync(`${dir.path}/secret-id`, login.secretId, { mode: 0o600 });
      configPath = writeCrashConfig(dir.path, { address: bao.address, rootToken: '' }, 'child', ['child']);
      const json = JSON.parse(readFileSync(configPath, 'utf8')) as { vault: Record<string, unknown> };
      json.vault = { address: bao.address, auth: { approle: { role_id: login.roleId, secret_id_file: `${dir.path}/secret-id` } }, timeout: '5s' };
      writeFileSync(configPath, JSON.stringify(json));
    });

    it('SIGKILLed after OpenBao issued: the restarted broker finds the lease by LIST (sudo) and revokes it', async () => {
      const before = new Set(await leaseIdsOf(bao, 'child'));
      const first = await spawnCrashBroker([configPath, 'issue:after-vault'], children);
      workloadId = (await api(first.url, 'POST', '/v1/workloads', { name: 'w', heartbeat_interval: '60s' })).body.id as string;
      await api(first.url, 'POST', '/v1/tokens', { workload: workloadId, role: 'child' }).catch(() => null);
      await exited(first.child);
      expect(first.child.signalCode).toBe('SIGKILL');
      const leaked = (await leaseIdsOf(bao, 'child')).filter((id) => !before.has(id));
      expect(leaked).toHaveLength(1);

      second = await spawnCrashBroker([configPath], children);
      expect(second.reconciled).toMatchObject({ orphansRevoked: 1, intentsClosed: 1 });
      expect(await leaseState(bao, leaked[0])).toBe('gone');
      const t = await token(second.url, { workload: workloadId, role: 'child' });
      expect(t.status).toBe(200);
      held = t.body;
    });

    it('SIGKILLed and restarted: the new process (a new AppRole login, same entity) renews the lease and fetches its token', async () => {
      second.child.kill('SIGKILL');
      await exited(second.child);
      third = await spawnCrashBroker([configPath], children);
      expect(third.reconciled.orphansRevoked).toBe(0);
      const heldExp = claimsOf(held.token).exp;
      const now = await waitFor(async () => {
        const r = await api<Token>(third.url, 'GET', `/v1/tokens/${held.jti}`);
        return r.status === 200 && claimsOf(r.body.token).exp > heldExp ? r.body : null;
      }, 10_000, 'a token renewed by the restarted broker');
      handedOut.push(now!.token);
      expect(now!.lease_id).toBe(held.lease_id);
      expect((await verify(now!.token)).jti).toBe(held.jti);
      expect(await leaseState(bao, held.lease_id)).toBe('live');
    });

    it("OpenBao revokes a lease when the token that obtained it dies (the killed process's token, unrenewed)", async () => {
      // The killed broker's token lives at most its ttl (12s) after its last renewal; OpenBao then revokes its leases.
      await waitFor(async () => (await leaseState(bao, held.lease_id)) === 'gone', 30_000, "the lease gone with the killed broker's token");
      expect((await revokedJtis(bao)).has(held.jti)).toBe(true);
    }, 45_000);

    // Broker bug: the generation map of src/broker/vault.ts (which token issued
    // which lease, and when that token dies) lives in memory only. After a
    // restart the leases the previous process obtained are renewed with the new
    // token until the old one dies; OpenBao then revokes them. Until the next
    // renewal the broker still serves the revoked token (200, its jti listed as
    // revoked); the renewal answers 400 "invalid lease", the row becomes 'gone'
    // and the live workload gets a 410 instead of a successor fetched in time.
    it.fails("after a restart, a live workload's chain outlives the previous process's token (re-fetched under the new login)", async () => {
      await waitFor(async () => {
        const r = await api<{ leases: Array<{ lease_id: string; state: string }> }>(third.url, 'GET', '/v1/leases?state=active,revoking,gone,expired');
        return r.body.leases.find((l) => l.lease_id === held.lease_id)?.state !== 'active';
      }, 10_000, 'the broker acting on the dead lease');
      const r = await api<Token>(third.url, 'GET', `/v1/tokens/${held.jti}`);
      expect(r.status).toBe(200);
      expect(await leaseState(bao, r.body.lease_id)).toBe('live');
      expect((await revokedJtis(bao)).has(claimsOf(r.body.token).jti)).toBe(false);
    });

    it('SIGTERM: revoke_on_shutdown revokes what the workload holds in OpenBao', async () => {
      const t = await token(third.url, { workload: workloadId, role: 'child', read: ['db://orders/9'] });
      expect(t.status).toBe(200);
      third.child.kill('SIGTERM');
      await exited(third.child);
      expect(third.child.exitCode).toBe(0);
      expect(await leaseState(bao, t.body.lease_id)).toBe('gone');
      expect((await revokedJtis(bao)).has(t.body.jti)).toBe(true);
    });
  });

  it('no token handed out appears in a log line of the in-process brokers', () => {
    expect(handedOut.length).toBeGreaterThan(5);
    const all = logged.lines.join('\n');
    for (const t of handedOut) expect(all.includes(t.split('.')[2])).toBe(false);
  });
});
