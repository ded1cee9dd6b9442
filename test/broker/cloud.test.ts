// Cloud grants through the broker against the dev server, with a CloudProvider
// double that records its calls and keeps "cloud" state: the plan is written
// before the cloud is asked, the cache, refresh at about two thirds of the
// credential's life and after the lease's renewal, revoke → teardown → cleanup
// → done, a failing teardown retried then irrevocable, refusals with the field
// named and nothing left behind. On SQLite, and on PostgreSQL where it can run.

import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { listLeases } from '../../src/client/index.ts';
import { CloudError } from '../../src/iam/errors.ts';
import { createCloudDouble, type CloudDouble } from './fixtures/cloud-double.ts';
import { AWS_ROLE_ARN, api, captureLog, leaseAlive, loopLag, sleep, startDevVault, tempDir, testConfig, waitFor, writeCloudRoles, type DevVault } from './helpers.ts';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.ts';

const pgWhy = pgUnavailable();
if (pgWhy) console.warn(pgWhy);

interface TokenBody {
  token: string;
  jti: string;
  lease_id: string;
  cached: boolean;
  expires_at: string;
  cloud_credential?: { cloud: string; expires_at: string; env: Record<string, string>; access_key_id: string };
}

interface LeaseBody {
  id: string;
  jti: string;
  state: string;
  cloud: string | null;
  cloud_state: string | null;
  cloud_attempts: number | null;
  cloud_last_error: string | null;
}

const CLOUD_ROLES = ['logs', 'logs-long', 'plain'];

describe.each([
  ['SQLite', null],
  ['PostgreSQL', pgWhy],
] as const)('cloud grants (%s)', (kind, skipWhy) => {
  let vault: DevVault;
  let broker: RunningBroker;
  let base: string;
  let pg: PgCluster | null = null;
  const dir = tempDir();
  const logged = captureLog();
  const cloud: CloudDouble = createCloudDouble({ control: { life: 60_000 } });
  const handedOut: string[] = [];

  beforeAll(async () => {
    if (skipWhy) return;
    vault = await startDevVault();
    await writeCloudRoles(vault.conn);
    let store: Record<string, unknown> = { sqlite: { path: `${dir.path}/broker.db` } };
    if (kind === 'PostgreSQL') {
      pg = await startPgCluster();
      store = { postgres: { url: pg.url } };
    }
    broker = await startBroker(testConfig(vault, store, { roles: CLOUD_ROLES }), { log: logged.log, providers: { aws: cloud.provider } });
    base = broker.url as string;
  }, 60_000);

  afterAll(async () => {
    await broker?.stop();
    await vault?.close();
    pg?.stop();
    dir.remove();
  });

  const register = async (name = 'svc'): Promise<string> => {
    const r = await api(base, 'POST', '/v1/workloads', { name, heartbeat_interval: '60s' });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };

  const token = async (workload: string, role = 'logs-long', extra: Record<string, unknown> = {}) => {
    const r = await api<TokenBody>(base, 'POST', '/v1/tokens', { workload, role, cloud: 'aws', ...extra });
    if (r.status === 200) handedOut.push(r.body.token);
    return r;
  };

  const grantOf = async (jti: string) => {
    const lease = await broker.store.getLeaseByJti(jti);
    return lease ? broker.store.grantOfLease(lease.id) : null;
  };

  const callsOf = (grantId: string) => cloud.state().calls.filter((c) => c.grantId === grantId);

  it.skipIf(skipWhy !== null)('issues: the plan is in the registry (intent) before provider.issue; the answer carries the credential', async () => {
    const seen: Array<{ state: string | undefined; plan: unknown }> = [];
    cloud.control.onIssue = async (req, plan) => {
      const g = await broker.store.getGrant(req.grantId);
      seen.push({ state: g?.state, plan: g?.plan });
      expect(plan).toEqual(g?.plan);
    };
    try {
      const w = await register();
      const before = Date.now();
      const t = await token(w);
      expect(t.status, t.text).toBe(200);
      expect(t.body.cached).toBe(false);
      expect(seen).toEqual([{ state: 'intent', plan: expect.objectContaining({ cloud: 'aws' }) }]);
      const cred = t.body.cloud_credential!;
      expect(cred).toMatchObject({ cloud: 'aws', env: { AWS_ACCESS_KEY_ID: expect.stringMatching(/^ASIADOUBLE/) } });
      // The token Vault issued carries the cloud's audience; the grant request is built from it.
      const claims = decodeJwt(t.body.token);
      expect(claims.aud === 'sts.amazonaws.com' || (Array.isArray(claims.aud) && claims.aud.includes('sts.amazonaws.com'))).toBe(true);
      const g = (await grantOf(t.body.jti))!;
      expect(g).toMatchObject({ state: 'active', cloud: 'aws', attempts: 0 });
      const calls = callsOf(g.id);
      expect(calls.map((c) => c.op)).toEqual(['plan', 'issue']);
      expect(calls[0]).toMatchObject({ subject: claims.sub, jti: t.body.jti, scopes: { read: ['s3://logs/app/**'], write: [] }, target: expect.objectContaining({ role_arn: AWS_ROLE_ARN }) });
      // The lease's current expiry (ttl 20m) and its hard end (max_ttl 1h).
      expect(calls[1].leaseExpiresAt).toBeGreaterThan(before + 19 * 60_000);
      expect(calls[1].leaseMaxExpiresAt).toBeGreaterThan(before + 59 * 60_000);
      expect(calls[1].leaseMaxExpiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000 + 1_000);
      // GET answers the current credential; the listing shows the grant's state and no secret.
      const now = await api<TokenBody>(base, 'GET', `/v1/tokens/${t.body.jti}`);
      expect(now.body.cloud_credential).toEqual(cred);
      const leases = await api<{ leases: LeaseBody[] }>(base, 'GET', '/v1/leases');
      expect(leases.body.leases.find((l) => l.jti === t.body.jti)).toMatchObject({ cloud: 'aws', cloud_state: 'active' });
      expect(leases.text.includes(cred.env.AWS_SECRET_ACCESS_KEY)).toBe(false);
    } finally {
      cloud.control.onIssue = undefined;
    }
  });

  it.skipIf(skipWhy !== null)('serves a cached lease with its live grant; one lease per workload, role, scopes and cloud', async () => {
    const w = await register();
    const a = await token(w);
    const issuedBefore = cloud.state().issued;
    const b = await token(w);
    expect(b.body).toMatchObject({ cached: true, jti: a.body.jti, cloud_credential: a.body.cloud_credential });
    expect(cloud.state().issued).toBe(issuedBefore);
    // Without the cloud, or narrowed: another lease (and no credential without the cloud).
    const plain = await api<TokenBody>(base, 'POST', '/v1/tokens', { workload: w, role: 'logs-long' });
    expect(plain.status).toBe(200);
    expect(plain.body.jti).not.toBe(a.body.jti);
    expect(plain.body.cloud_credential).toBeUndefined();
    const narrowed = await token(w, 'logs-long', { read: ['s3://logs/app/2024/**'] });
    expect(narrowed.body.jti).not.toBe(a.body.jti);
    expect(callsOf((await grantOf(narrowed.body.jti))!.id)[0].scopes).toEqual({ read: ['s3://logs/app/2024/**'], write: [] });
    // A burst of identical requests mints one lease and one grant.
    const w2 = await register();
    const burst = await Promise.all(Array.from({ length: 10 }, () => token(w2)));
    expect(new Set(burst.map((r) => r.body.jti)).size).toBe(1);
    expect(new Set(burst.map((r) => r.body.cloud_credential?.access_key_id)).size).toBe(1);
  });

  it.skipIf(skipWhy !== null)('refreshes the credential at about two thirds of its life, and GET answers the fresh one', async () => {
    cloud.control.life = 3_000;
    const lag = loopLag();
    try {
      const w = await register();
      const t = await token(w);
      const readAt = Date.now();
      const g = (await grantOf(t.body.jti))!;
      expect(g.refreshes, 'the grant was read before its first refresh').toBe(0);
      const issuedAt = callsOf(g.id).find((c) => c.op === 'issue')!.at;
      // The schedule, from the registry (no wall-clock window): due at two thirds (±10% jitter) of the life the
      // credential had when the grant was completed, some time between the issue call and this read.
      const twoThirds = (from: number, jitter: number) => from + (2 / 3) * jitter * (g.expiresAt - from);
      expect(g.expiresAt - issuedAt).toBeLessThanOrEqual(3_000);
      expect(g.dueAt).toBeGreaterThanOrEqual(Math.floor(twoThirds(issuedAt, 0.9)));
      expect(g.dueAt).toBeLessThanOrEqual(Math.ceil(twoThirds(readAt, 1.1)));
      await waitFor(() => callsOf(g.id).some((c) => c.op === 'renew'), 15_000, 'a refresh');
      const renewAt = callsOf(g.id).find((c) => c.op === 'renew')!.at;
      // Carried out when due: never before, and after it within a few loop ticks plus how late this process ran.
      expect(renewAt).toBeGreaterThanOrEqual(g.dueAt);
      expect(renewAt - g.dueAt).toBeLessThan(500 + 2 * lag.maxMs());
      const now = await waitFor(async () => {
        const r = await api<TokenBody>(base, 'GET', `/v1/tokens/${t.body.jti}`);
        return r.body.cloud_credential?.access_key_id !== t.body.cloud_credential!.access_key_id ? r : null;
      }, 10_000, 'the fresh credential');
      expect(Date.parse(now!.body.cloud_credential!.expires_at)).toBeGreaterThan(Date.parse(t.body.cloud_credential!.expires_at));
      expect((await grantOf(t.body.jti))!.refreshes).toBeGreaterThanOrEqual(1);
      await api(base, 'DELETE', `/v1/tokens/${t.body.jti}`);
    } finally {
      lag.stop();
      cloud.control.life = 60_000;
    }
  });

  it.skipIf(skipWhy !== null)('refreshes with the lease\'s new token when the lease was renewed past the credential\'s expiry; failures back off', async () => {
    cloud.control.life = 'lease';
    try {
      const w = await register();
      const t = await token(w, 'logs'); // ttl 3s: renewed about every 2s
      const cred = t.body.cloud_credential!;
      expect(Math.abs(Date.parse(cred.expires_at) - Date.parse(t.body.expires_at))).toBeLessThan(1_500);
      const g = (await grantOf(t.body.jti))!;
      cloud.control.renewFailGrant = g.id;
      cloud.control.renewFailures = 1;
      const first = callsOf(g.id).find((c) => c.op === 'issue')!;
      const now = await waitFor(async () => {
        const r = await api<TokenBody>(base, 'GET', `/v1/tokens/${t.body.jti}`);
        return Date.parse(r.body.cloud_credential!.expires_at) > Date.parse(cred.expires_at) + 1_000 ? r : null;
      }, 6_000, 'a credential that follows the renewed lease');
      const renews = callsOf(g.id).filter((c) => c.op === 'renew');
      // The first refresh failed and was retried with backoff; the one that counted carried the renewed lease's token.
      expect(renews.length).toBeGreaterThanOrEqual(2);
      const good = renews.find((c) => c.leaseExpiresAt! > first.leaseExpiresAt! + 1_000 && c.tokenTail !== t.body.token.slice(-8));
      expect(good).toBeDefined();
      expect(now!.body.jti).toBe(t.body.jti);
      const m = await api(base, 'GET', '/metrics');
      expect(m.text).toMatch(/tvm_broker_cloud_failures_total\{cloud="aws",op="refresh"\} [1-9]/);
      expect(m.text).toMatch(/tvm_broker_cloud_grant_ops_total\{cloud="aws",op="refreshed"\} [1-9]/);
    } finally {
      cloud.control.life = 60_000;
      cloud.control.renewFailures = 0;
      cloud.control.renewFailGrant = null;
    }
  });

  it.skipIf(skipWhy !== null)('revoke: teardown with the grant, then the cleanup it asked for, then done; the Vault lease goes too', async () => {
    cloud.control.cleanupAfterMs = 400;
    try {
      const w = await register();
      const t = await token(w);
      const g = (await grantOf(t.body.jti))!;
      expect(cloud.state().objects[`tvm-${g.id}`]).toBe(g.id);
      const del = await api<LeaseBody>(base, 'DELETE', `/v1/tokens/${t.body.jti}`);
      expect(del.status).toBe(200);
      expect(del.body).toMatchObject({ state: 'revoking', cloud: 'aws' });
      await waitFor(async () => (await broker.store.getGrant(g.id))?.state === 'cleanup', 3_000, 'the teardown');
      expect(cloud.state().objects[`tvm-${g.id}`]).toBeUndefined();
      expect(cloud.state().denies[`deny-${g.id}`]).toBe(g.id);
      const done = await waitFor(async () => {
        const row = await broker.store.getGrant(g.id);
        return row?.state === 'done' ? row : null;
      }, 3_000, 'the cleanup');
      const calls = callsOf(g.id);
      expect(calls.map((c) => c.op)).toEqual(['plan', 'issue', 'teardown', 'cleanup']);
      expect(calls[2]).toMatchObject({ reason: 'revoke', withGrant: true });
      expect(calls[3].at - calls[2].at).toBeGreaterThanOrEqual(350);
      expect(cloud.state().denies[`deny-${g.id}`]).toBeUndefined();
      // Done: the credential is no longer kept; the token is gone; so is the Vault lease.
      expect(done!.grant).toBeNull();
      expect(done!.detail).toMatch(/deleted tvm-/);
      expect((await api(base, 'GET', `/v1/tokens/${t.body.jti}`)).status).toBe(410);
      await waitFor(async () => !(await leaseAlive(vault.conn, t.body.lease_id)), 3_000, 'the Vault lease revoked');
      const events = await api<{ events: Array<{ kind: string; leaseRowId: string; detail: string | null }> }>(base, 'GET', '/v1/events?limit=200');
      const kinds = events.body.events.filter((e) => e.leaseRowId === g.leaseRowId).map((e) => e.kind);
      expect(kinds).toEqual(expect.arrayContaining(['cloud_issued', 'revoke_requested', 'cloud_revoked', 'cloud_cleaned_up', 'revoked']));
    } finally {
      cloud.control.cleanupAfterMs = null;
    }
  });

  it.skipIf(skipWhy !== null)('a workload that ends takes its grants down with its leases', async () => {
    const w = await register();
    const t = await token(w);
    const g = (await grantOf(t.body.jti))!;
    expect((await api(base, 'DELETE', `/v1/workloads/${w}`)).status).toBe(200);
    await waitFor(async () => (await broker.store.getGrant(g.id))?.state === 'done', 3_000, 'the teardown');
    expect(callsOf(g.id).find((c) => c.op === 'teardown')).toMatchObject({ reason: 'revoke', withGrant: true });
    expect((await broker.store.getGrant(g.id))?.reason).toBe('workload_ended');
  });

  it.skipIf(skipWhy !== null)('a teardown that keeps failing is retried with backoff, then irrevocable: shown, counted, never dropped', async () => {
    cloud.control.teardownFailures = 1_000;
    try {
      const w = await register();
      const t = await token(w);
      const g = (await grantOf(t.body.jti))!;
      await api(base, 'DELETE', `/v1/tokens/${t.body.jti}`);
      const row = await waitFor(async () => {
        const r = await broker.store.getGrant(g.id);
        return r?.state === 'irrevocable' ? r : null;
      }, 6_000, 'irrevocable');
      const teardowns = callsOf(g.id).filter((c) => c.op === 'teardown');
      expect(teardowns).toHaveLength(3); // revocation.max_attempts
      // Backoff: 200ms doubling (half to full), never all at once.
      expect(teardowns[1].at - teardowns[0].at).toBeGreaterThanOrEqual(90);
      expect(teardowns[2].at - teardowns[1].at).toBeGreaterThanOrEqual(180);
      expect(row!.lastError).toBe('aws: teardown: the double is down');
      expect(row!.grant).not.toBeNull(); // kept: what an operator needs to finish it by hand
      const leases = await api<{ leases: LeaseBody[] }>(base, 'GET', '/v1/leases?state=revoked,irrevocable');
      expect(leases.body.leases.find((l) => l.jti === t.body.jti)).toMatchObject({ cloud: 'aws', cloud_state: 'irrevocable', cloud_last_error: 'aws: teardown: the double is down' });
      // The gauges refresh every second of the loop: wait for it rather than for a fixed second.
      await waitFor(async () => /tvm_broker_cloud_grants_irrevocable\{cloud="aws"\} [1-9]/.test((await api(base, 'GET', '/metrics')).text), 10_000, 'the irrevocable gauge');
      const status = await api<{ cloud_grants: Record<string, Record<string, number>> }>(base, 'GET', '/v1/status');
      expect(status.body.cloud_grants.aws.irrevocable).toBeGreaterThanOrEqual(1);
      await sleep(500);
      expect((await broker.store.getGrant(g.id))?.state).toBe('irrevocable');
    } finally {
      cloud.control.teardownFailures = 0;
    }
  });

  it.skipIf(skipWhy !== null)('a scope the cloud cannot express: 400 naming the field, and no lease or grant left behind', async () => {
    cloud.control.refuse = 'secret';
    try {
      const w = await register();
      const before = new Set(await listLeases(vault.conn, 'tvm/creds/logs-long/'));
      const r = await api<{ errors: string[]; code: string; field: string }>(base, 'POST', '/v1/tokens', { workload: w, role: 'logs-long', cloud: 'aws', read: ['s3://logs/app/secret/**'] });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 'ERR_BAD_INPUT', field: 'read[0]' });
      expect(r.body.errors[0]).toBe('invalid read[0]: s3://logs/app/secret/**: the double cannot express it exactly');
      const after = (await listLeases(vault.conn, 'tvm/creds/logs-long/')).filter((id) => !before.has(id));
      for (const id of after) expect(await leaseAlive(vault.conn, id)).toBe(false);
      const failed = (await broker.store.listLeases(['failed'], 10_000)).filter((l) => l.workloadId === w);
      expect(failed).toHaveLength(1);
      expect(await broker.store.grantOfLease(failed[0].id)).toBeNull(); // plan refused: nothing was written ahead
      expect(await broker.store.leasesOfWorkload(w, ['active', 'revoking'])).toEqual([]);
    } finally {
      cloud.control.refuse = null;
    }
  });

  it.skipIf(skipWhy !== null)('the cloud refusing (403) or failing (503): what issue created is rolled back from the plan and the Vault lease revoked', async () => {
    const w = await register();
    for (const [error, status, code] of [
      [new CloudError('aws', 'ERR_CLOUD_DENIED', 'AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity'), 403, 'ERR_CLOUD_DENIED'],
      [new CloudError('aws', 'ERR_CLOUD_UNAVAILABLE', 'ServiceUnavailable'), 503, 'ERR_CLOUD_UNAVAILABLE'],
    ] as const) {
      cloud.control.issueError = error;
      try {
        const before = new Set(await listLeases(vault.conn, 'tvm/creds/logs-long/'));
        const r = await api<{ errors: string[]; code: string }>(base, 'POST', '/v1/tokens', { workload: w, role: 'logs-long', cloud: 'aws' });
        expect(r.status).toBe(status);
        expect(r.body).toMatchObject({ code, errors: [error.message] });
        const grantId = cloud.state().calls.filter((c) => c.op === 'issue').at(-1)!.grantId;
        expect(callsOf(grantId).map((c) => [c.op, c.reason ?? null, c.withGrant ?? null])).toEqual([
          ['plan', null, null],
          ['issue', null, null],
          ['teardown', 'rollback', false],
        ]);
        expect(cloud.state().objects[`tvm-${grantId}`]).toBeUndefined();
        expect(await broker.store.getGrant(grantId)).toMatchObject({ state: 'failed', grant: null });
        for (const id of (await listLeases(vault.conn, 'tvm/creds/logs-long/')).filter((x) => !before.has(x))) expect(await leaseAlive(vault.conn, id)).toBe(false);
      } finally {
        cloud.control.issueError = null;
      }
    }
  });

  it.skipIf(skipWhy !== null)('a cloud the broker has no block for, an unknown cloud, or a role mapping no such cloud: 400 naming cloud', async () => {
    const w = await register();
    const gcp = await api<{ errors: string[]; field: string }>(base, 'POST', '/v1/tokens', { workload: w, role: 'logs-long', cloud: 'gcp' });
    expect(gcp.status).toBe(400);
    expect(gcp.body).toMatchObject({ field: 'cloud', errors: ['cloud: this broker has no cloud "gcp" block (configured: aws)'] });
    const ibm = await api<{ errors: string[]; field: string }>(base, 'POST', '/v1/tokens', { workload: w, role: 'logs-long', cloud: 'ibm' });
    expect(ibm.status).toBe(400);
    expect(ibm.body).toMatchObject({ field: 'cloud', errors: ['cloud: "ibm" is not one of aws, gcp, azure, kubernetes'] });
    const plain = await api<{ errors: string[]; field: string }>(base, 'POST', '/v1/tokens', { workload: w, role: 'plain', cloud: 'aws' });
    expect(plain.status).toBe(400);
    expect(plain.body.field).toBe('cloud');
    expect(plain.body.errors[0]).toMatch(/^Vault refused the request: .*invalid cloud: role "plain" maps no aws target/);
    expect(await broker.store.leasesOfWorkload(w, ['active', 'intent'])).toEqual([]);
  });

  it.skipIf(skipWhy !== null)('no credential or token in a log line, an event or the metrics', async () => {
    const secrets = cloud.secrets();
    expect(secrets.length).toBeGreaterThan(10);
    const m = await api(base, 'GET', '/metrics');
    for (const name of ['tvm_broker_cloud_grants_active', 'tvm_broker_cloud_grants_irrevocable', 'tvm_broker_cloud_grant_ops_total', 'tvm_broker_cloud_failures_total']) expect(m.text).toContain(name);
    expect(m.text).toMatch(/tvm_broker_cloud_grant_ops_total\{cloud="aws",op="torn_down"\} [1-9]/);
    const events = await api(base, 'GET', '/v1/events?limit=1000');
    const all = [logged.lines.join('\n'), m.text, events.text].join('\n');
    expect(logged.lines.length).toBeGreaterThan(20);
    for (const s of secrets) expect(all.includes(s)).toBe(false);
    for (const t of handedOut) expect(all.includes(t.split('.')[2])).toBe(false);
  });
});
