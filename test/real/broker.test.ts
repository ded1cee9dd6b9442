// The broker against a real OpenBao 2.7 (dev mode) running the tvm plugin:
// it logs in with AppRole, issues plugin-backed leases, renews them (the fresh
// token fetched as the lease's holder and served from GET /v1/tokens/<jti>),
// replaces them near max_ttl, revokes them (OpenBao drops the lease, the jti
// enters the plugin's revocation list), and reconciles at start-up with
// OpenBao's LIST of sys/leases/lookup (sudo). In-process brokers, and child
// processes where a restart is the point: a restarted broker renews the leases
// its killed process obtained with its own token, and re-fetches them before
// the killed process's token dies (OpenBao then revokes what that token
// obtained). Each broker lists its own roles: two registries on one role would
// revoke each other's leases as orphans.

import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { connect } from '../../src/client/index.ts';
import { api, captureLog, exited, sleep, spawnCrashBroker, tempDir, testConfig, waitFor, writeCrashConfig, writeRoles, type CrashBroker } from '../broker/helpers.ts';
import { appRole, brokerPolicy, claimsOf, leaseIdsOf, leaseState, policyText, readmeBrokerPolicy, revokedJtis, type AppRoleLogin } from './broker-openbao.ts';
import { openbaoUnavailable, registerPlugin, startBaoDev, type Bao } from './openbao.ts';

const unavailable = openbaoUnavailable();
if (unavailable) console.warn(`skipping the broker against OpenBao: ${unavailable}`);

type Token = { token: string; jti: string; lease_id: string; expires_at: string; ttl: number; cached: boolean };

/** The broker's policy exactly as README "Broker" words it (mount tvm). */
const README_POLICY = policyText([
  ['tvm/creds/*', ['read', 'update']],
  ['sys/leases/renew', ['update']],
  ['sys/leases/revoke', ['update']],
  ['sys/leases/lookup', ['update']],
  ['sys/leases/lookup/tvm/creds/*', ['list', 'sudo']],
]);

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
    await root.write('tvm/roles/readme', { read: ['db://orders/*'], ttl: '3s', max_ttl: '1h' });
    await root.write('tvm/roles/update-only', { read: ['db://orders/*'], ttl: '30m', max_ttl: '1h' });
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

  it("under exactly the README's policy: requests that narrow nothing (GET) and that narrow (PUT), reconcile, and the renewed token's fetch (PUT with the jti)", async () => {
    const readme = await appRole(bao, 'tvm-broker-readme', README_POLICY);
    const other = await startBroker(config('readme', readme, ['readme']), { log: captureLog().log });
    try {
      expect(other.reconciled.orphansRevoked).toBe(0); // LIST with sudo
      const w = await workload(other.url as string);
      const plain = await token(other.url as string, { workload: w, role: 'readme' }); // ttl 3s
      expect(plain.status, plain.text).toBe(200);
      const narrowed = await token(other.url as string, { workload: w, role: 'readme', read: ['db://orders/7'] });
      expect(narrowed.status, narrowed.text).toBe(200);
      expect(await leaseState(bao, narrowed.body.lease_id)).toBe('live');
      await waitFor(async () => ((await other.store.getLeaseByJti(plain.body.jti))?.renewals ?? 0) >= 1, 10_000, 'a renewal under the README policy');
      // A renewal within the second signs the same whole-second exp: wait for one that extends it.
      let now = await api<Token>(other.url as string, 'GET', `/v1/tokens/${plain.body.jti}`);
      await waitFor(async () => {
        now = await api<Token>(other.url as string, 'GET', `/v1/tokens/${plain.body.jti}`);
        return now.status === 200 && claimsOf(now.body.token).exp > claimsOf(plain.body.token).exp;
      }, 10_000, 'a renewal that extends the token');
      expect(now.status).toBe(200);
      handedOut.push(now.body.token);
      expect(now.body.lease_id).toBe(plain.body.lease_id);
      expect(claimsOf(now.body.token).exp).toBeGreaterThan(claimsOf(plain.body.token).exp);
    } finally {
      await other.stop();
    }
  });

  it('without read on creds/* (update only, as the README once said) a token request that narrows nothing is refused: it is a GET', async () => {
    const updateOnly = await appRole(bao, 'tvm-broker-update-only', readmeBrokerPolicy());
    const other = await startBroker(config('update-only', updateOnly, ['update-only']), { log: captureLog().log });
    try {
      const w = await workload(other.url as string);
      const plain = await token(other.url as string, { workload: w, role: 'update-only' });
      expect(plain.status).toBe(502);
      expect(plain.body.errors?.join(' ')).toMatch(/permission denied/);
      const narrowed = await token(other.url as string, { workload: w, role: 'update-only', read: ['db://orders/7'] });
      expect(narrowed.status).toBe(200);
    } finally {
      await other.stop();
    }
  });

  // The timeline of a restart (AppRole tokens of ttl 12s; role child: ttl 3s, max_ttl 60s):
  //   T2      the second process logs in (login L2, recorded with expiry T2+12s, a lower bound) and
  //           obtains `held` (ttl 3s) and `lasting` (ttl 50s, next renewal ~17s after issue)
  //   K       it is SIGKILLed: no one renews L2's token now; it dies at E2 >= T2+12s
  //   K+~2s   the third process logs in (L3), marks L2 final in the registry and follows its end E2:
  //           `lasting`'s renewal would come after E2, so it is brought forward to within a third of
  //           what is left; `held` is renewed with L3's token (same entity), each answer capped to E2
  //   <E2     the renewal that finds E2 within one ttl fetches a successor under L3, linked through
  //           replaced_by (at once for `lasting`, at E2-3s..E2-2s for `held`); the old jti serves it
  //   E2      OpenBao revokes what L2's token obtained: `lasting` (whose own expiry is ~50s after issue)
  //           and `held` (or `held` expires, unrenewed since its successor); the broker's revocation
  //           after the 30s grace then answers 204
  // A poller asks GET /v1/tokens/<held jti> all along: every answer is 200, and once OpenBao has
  // dropped `held`, every answer is the successor.
  describe('restarted (child processes, AppRole tokens of ttl 12s)', () => {
    let configPath: string;
    let workloadId: string;
    let held: Token;
    let lasting: Token;
    let second: CrashBroker<{ orphansRevoked: number; intentsClosed: number }>;
    let third: CrashBroker<{ orphansRevoked: number; intentsClosed: number }>;
    let secretId: string;
    /** What the workload was served, asking every 200ms from the third process's start; `at`: when the GET was sent. */
    const polled: Array<{ at: number; status: number; leaseId?: string; jti?: string }> = [];
    let polling = false;
    let poller: Promise<void> = Promise.resolve();
    /** When the test first saw OpenBao answer 'invalid lease' for `held`. */
    let heldGoneAt = 0;

    beforeAll(async () => {
      const login = await appRole(bao, 'tvm-broker-brief', brokerPolicy(), { ttl: '12s', maxTtl: '1h' });
      secretId = login.secretId;
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
      const l = await token(second.url, { workload: workloadId, role: 'child', ttl: '50s' });
      expect(l.status).toBe(200);
      lasting = l.body;
    });

    it('SIGKILLed and restarted: the new process (a new AppRole login, same entity) renews the lease and fetches its token', async () => {
      second.child.kill('SIGKILL');
      await exited(second.child);
      third = await spawnCrashBroker([configPath], children);
      expect(third.reconciled.orphansRevoked).toBe(0);
      polling = true;
      poller = (async () => {
        while (polling) {
          const at = Date.now();
          const r = await api<Token>(third.url, 'GET', `/v1/tokens/${held.jti}`).catch(() => null);
          polled.push({ at, status: r?.status ?? 0, leaseId: r?.body?.lease_id, jti: r?.body?.jti });
          if (r?.status === 200) handedOut.push(r.body.token);
          await sleep(200);
        }
      })();
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
      // `lasting` (ttl 50s) was replaced at once and is not renewed since: only its token's death can end it this soon.
      await waitFor(async () => (await leaseState(bao, lasting.lease_id)) === 'gone', 30_000, "`lasting` gone with the killed broker's token", 50);
      expect(Date.now()).toBeLessThan(Date.parse(lasting.expires_at));
      expect((await revokedJtis(bao)).has(lasting.jti)).toBe(true); // its token unexpired: listed
      const r = await api<{ leases: Array<{ lease_id: string; state: string; reason: string | null }> }>(third.url, 'GET', '/v1/leases?state=revoking');
      expect(r.body.leases.find((l) => l.lease_id === lasting.lease_id)).toMatchObject({ reason: 'replaced' }); // still in its grace: not the broker's doing
      await waitFor(async () => (await leaseState(bao, held.lease_id)) === 'gone', 30_000, '`held` gone', 50);
      heldGoneAt = Date.now();
    }, 45_000);

    it("after a restart, a live workload's chain outlives the previous process's token (re-fetched under the new login before it died)", async () => {
      await sleep(1_000); // a few more polls after OpenBao dropped `held`
      polling = false;
      await poller;
      // Every answer from the restart on was a token: never a 410, never a 502.
      expect(polled.length).toBeGreaterThan(20);
      expect(polled.filter((p) => p.status !== 200)).toEqual([]);
      // Once OpenBao had dropped `held`, the workload was served its successor.
      const after = polled.filter((p) => p.at > heldGoneAt);
      expect(after.length).toBeGreaterThan(2);
      expect(after.filter((p) => p.leaseId === held.lease_id)).toEqual([]);
      const r = await api<Token>(third.url, 'GET', `/v1/tokens/${held.jti}`);
      expect(r.status).toBe(200);
      handedOut.push(r.body.token);
      expect(r.body.lease_id).not.toBe(held.lease_id);
      expect(await leaseState(bao, r.body.lease_id)).toBe('live');
      expect((await revokedJtis(bao)).has(claimsOf(r.body.token).jti)).toBe(false);
      const l = await api<Token>(third.url, 'GET', `/v1/tokens/${lasting.jti}`);
      expect(l.status).toBe(200);
      handedOut.push(l.body.token);
      expect(l.body.lease_id).not.toBe(lasting.lease_id);
      expect(await leaseState(bao, l.body.lease_id)).toBe('live');

      // The registry (read beside the running broker): `held` names the killed process's login, final now;
      // its successor was fetched under the new login before OpenBao dropped `held`.
      const db = new Database(`${dir.path}/child.db`, { readonly: true });
      try {
        const old = db.prepare('SELECT * FROM leases WHERE jti = ?').get(held.jti) as Record<string, string | number>;
        expect(old).toMatchObject({ reason: 'replaced' });
        expect(['revoking', 'revoked']).toContain(old.state);
        const successor = db.prepare('SELECT * FROM leases WHERE id = ?').get(old.replaced_by) as Record<string, string | number>;
        expect(successor.lease_id).toBe(r.body.lease_id);
        expect(successor.login_id).not.toBe(old.login_id);
        expect(Number(successor.created_at)).toBeLessThan(heldGoneAt);
        const logins = db.prepare('SELECT * FROM vault_logins').all() as Array<Record<string, string | number | null>>;
        const killed = logins.find((l) => l.id === old.login_id);
        expect(killed).toMatchObject({ method: 'approle', expiry_final: 1, renewable: 1 });
        expect(logins.find((l) => l.id === successor.login_id)).toMatchObject({ expiry_final: 0 });
        // Times and flags only: the AppRole secret id and the tokens are nowhere in the registry's login table.
        expect(Object.keys(killed!).sort()).toEqual(['expires_at', 'expiry_final', 'id', 'logged_in_at', 'method', 'renewable', 'replica', 'updated_at']);
        expect(JSON.stringify(logins)).not.toContain(secretId);
      } finally {
        db.close();
      }
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
