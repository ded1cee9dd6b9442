// The Kubernetes provider with the real @kubernetes/client-node against the loopback fake.
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CloudError, IamFieldError } from '../../../src/iam/errors.ts';
import { kubernetesModule, parseKubernetesTarget, type KubernetesTarget } from '../../../src/iam/kubernetes/module.ts';
import {
  createKubernetesProvider,
  expirationSecondsFor,
  grantObjectName,
  type KubernetesPlan,
} from '../../../src/iam/kubernetes/provider.ts';
import type { CloudGrant, CloudProvider, GrantRequest } from '../../../src/iam/types.ts';
import { startKubernetesFake, type KubernetesFake } from '../fakes/kubernetes.ts';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const GRANT_ID = '3F2B8C1A-9D4E-4F6A-8B7C-0123456789AB';
const KEY = GRANT_ID.toLowerCase();
const NAME = `tvm-${KEY}`;
const BROKER = 'broker-bearer-secret';
const SCOPES = {
  read: ['k8s://apps/pods', 'k8s://apps/configmaps/app-config', 's3://logs/app/**'],
  write: ['k8s://apps/configmaps/app-config', 'k8s://jobs/jobs.batch'],
};
const LABELS = { 'app.kubernetes.io/managed-by': 'tvm', 'tvm.dev/grant': KEY };
const CA = `-----BEGIN CERTIFICATE-----\n${Buffer.from('not a real certificate, but base64').toString('base64')}\n-----END CERTIFICATE-----\n`;

let fake: KubernetesFake;
let fakeNow = NOW;
let provider: CloudProvider<KubernetesTarget>;

function target(extra: Record<string, unknown> = {}): KubernetesTarget {
  return parseKubernetesTarget({ api_server: fake.url, namespace: 'apps', ...extra }, 'iam.kubernetes');
}

function request(t: KubernetesTarget, over: Partial<GrantRequest<KubernetesTarget>> = {}): GrantRequest<KubernetesTarget> {
  return {
    grantId: GRANT_ID,
    jti: 'd8a7c6b5-0000-4000-8000-000000000001',
    token: 'tvm.jwt.never-sent-to-kubernetes',
    subject: 'approle:ci',
    role: 'deployer',
    scopes: SCOPES,
    target: t,
    now: NOW,
    leaseExpiresAt: NOW + 1200_000,
    leaseMaxExpiresAt: NOW + 3600_000,
    ...over,
  };
}

function bodies(method: string, resource: string) {
  return fake.requests.filter((r) => r.method === method && r.resource === resource);
}

beforeAll(async () => {
  fake = await startKubernetesFake({ brokerToken: BROKER, now: () => fakeNow });
  provider = createKubernetesProvider({ clusters: [{ server: fake.url, token: BROKER }] });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.reset();
  fakeNow = NOW;
});

describe('plan', () => {
  it('names every object from the grant id and carries the rules per namespace', () => {
    const p = provider.plan(request(target())) as KubernetesPlan;
    expect(p).toEqual({
      cloud: 'kubernetes',
      grantId: GRANT_ID,
      apiServer: fake.url,
      caCert: null,
      namespace: 'apps',
      serviceAccount: NAME,
      serviceAccountCreated: true,
      boundSecret: null,
      roles: [
        {
          namespace: 'apps',
          name: NAME,
          rules: [
            { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'], resourceNames: ['app-config'] },
            { apiGroups: [''], resources: ['configmaps'], verbs: ['update', 'patch', 'delete'], resourceNames: ['app-config'] },
            { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
          ],
        },
        { namespace: 'jobs', name: NAME, rules: [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'update', 'patch', 'delete'] }] },
      ],
      labels: LABELS,
      annotations: { 'tvm.dev/role': 'deployer', 'tvm.dev/subject': 'approle:ci' },
      audiences: [],
    });
    expect(NAME.length).toBeLessThanOrEqual(63);
    // Deterministic and JSON: the registry stores it.
    expect(JSON.parse(JSON.stringify(p))).toEqual(provider.plan(request(target())));
  });

  it('binds a shared service account through a per-grant Secret', () => {
    const p = provider.plan(request(target({ service_account: 'deployer' }))) as KubernetesPlan;
    expect(p.serviceAccount).toBe('deployer');
    expect(p.serviceAccountCreated).toBe(false);
    expect(p.boundSecret).toBe(NAME);
  });

  it('derives a DNS-safe name from a grant id that is not a UUID', () => {
    const name = grantObjectName('Grant_42/with odd chars');
    expect(name).toMatch(/^tvm-[0-9a-f]{32}$/);
    expect(grantObjectName('Grant_42/with odd chars')).toBe(name);
  });

  it('refuses a grant without k8s:// scope, and a scope a Role cannot express', () => {
    expect(() => provider.plan(request(target(), { scopes: { read: ['s3://logs/**'], write: [] } }))).toThrow(IamFieldError);
    try {
      provider.plan(request(target(), { scopes: { read: [], write: ['k8s://apps/*'] } }));
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'ERR_IAM_INVALID', field: 'write[0]' });
    }
  });
});

describe('expirationSecondsFor', () => {
  const at = (expS: number, maxS: number) => expirationSecondsFor({ now: NOW, leaseExpiresAt: NOW + expS * 1000, leaseMaxExpiresAt: NOW + maxS * 1000 });
  it('is the lease rest, at least 600 s, never past the hard end', () => {
    expect(at(1200, 3600)).toBe(1200);
    expect(at(60, 3600)).toBe(600);
    expect(at(5000, 3600)).toBe(3600);
    expect(at(1200.4, 3600)).toBe(1201);
    expect(at(700, 700.9)).toBe(700);
    expect(at(600, 600)).toBe(600);
    expect(at(300, 599.9)).toBeNull();
  });
});

describe('issue with a per-grant service account', () => {
  it('creates the account, Roles and RoleBindings, then requests a token for the lease', async () => {
    const t = target({ ca_cert: CA });
    const req = request(t);
    const p = provider.plan(req) as KubernetesPlan;
    const grant = await provider.issue(req, p);

    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /api/v1/namespaces/apps/serviceaccounts',
      'POST /apis/rbac.authorization.k8s.io/v1/namespaces/apps/roles',
      'POST /apis/rbac.authorization.k8s.io/v1/namespaces/apps/rolebindings',
      'POST /apis/rbac.authorization.k8s.io/v1/namespaces/jobs/roles',
      'POST /apis/rbac.authorization.k8s.io/v1/namespaces/jobs/rolebindings',
      `POST /api/v1/namespaces/apps/serviceaccounts/${NAME}/token`,
    ]);
    expect(fake.requests.every((r) => r.authorization === `Bearer ${BROKER}`)).toBe(true);

    const sa = bodies('POST', 'serviceaccounts')[0].body;
    expect(sa).toEqual({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: NAME, namespace: 'apps', labels: LABELS, annotations: { 'tvm.dev/role': 'deployer', 'tvm.dev/subject': 'approle:ci' } },
      automountServiceAccountToken: false,
    });
    const roles = bodies('POST', 'roles').map((r) => r.body as { metadata: { namespace: string }; rules: unknown });
    expect(roles[0].rules).toEqual(p.roles[0].rules);
    expect(roles[1].rules).toEqual([{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'update', 'patch', 'delete'] }]);
    for (const rb of bodies('POST', 'rolebindings')) {
      expect(rb.body).toMatchObject({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: NAME, labels: LABELS },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: NAME },
        subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: 'apps' }],
      });
    }
    expect(bodies('POST', 'token')[0].body).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [], expirationSeconds: 1200 },
    });

    const minted = [...fake.state.tokens.values()][0];
    expect(minted).toMatchObject({ namespace: 'apps', serviceAccount: NAME, boundObject: null, expirationSeconds: 1200 });
    expect(grant.expiresAt).toBe(NOW + 1200_000);
    expect(grant.credential).toMatchObject({
      cloud: 'kubernetes',
      token: minted.token,
      server: fake.url,
      namespace: 'apps',
      service_account: NAME,
      ca: t.ca_cert,
      expires_at: new Date(NOW + 1200_000).toISOString(),
      env: { KUBE_TOKEN: minted.token, KUBE_SERVER: fake.url, KUBE_NAMESPACE: 'apps', KUBE_CA_CERT: t.ca_cert },
    });
    const kubeconfig = JSON.parse(grant.credential.kubeconfig as string);
    expect(kubeconfig.users[0].user.token).toBe(minted.token);
    expect(kubeconfig.contexts[0].context).toEqual({ cluster: 'tvm', user: 'tvm', namespace: 'apps' });
    expect(Buffer.from(kubeconfig.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toBe(t.ca_cert);
    // A kubeconfig the client library itself loads.
    const kc = new KubeConfig();
    kc.loadFromString(grant.credential.kubeconfig as string);
    expect(kc.getCurrentCluster()?.server).toBe(fake.url);
    expect(fake.isTokenValid(minted.token)).toBe(true);
    // No secret in the grant's state (the registry stores it).
    expect(JSON.stringify(grant.state)).not.toContain(minted.token);
  });

  it('caps the token at the hard end and sends the target audiences', async () => {
    const req = request(target({ audiences: ['https://k8s.example', 'vault'] }), { leaseExpiresAt: NOW + 7200_000, leaseMaxExpiresAt: NOW + 900_500 });
    const grant = await provider.issue(req, provider.plan(req));
    expect(bodies('POST', 'token')[0].body).toMatchObject({ spec: { audiences: ['https://k8s.example', 'vault'], expirationSeconds: 900 } });
    expect(grant.expiresAt).toBeLessThanOrEqual(req.leaseMaxExpiresAt);
    expect([...fake.state.tokens.values()][0].audiences).toEqual(['https://k8s.example', 'vault']);
  });

  it('asks for 600 s when the lease is shorter, and refuses a lease ending in under 600 s before any change', async () => {
    const short = request(target(), { leaseExpiresAt: NOW + 120_000 });
    await provider.issue(short, provider.plan(short));
    expect(bodies('POST', 'token')[0].body).toMatchObject({ spec: { expirationSeconds: 600 } });
    fake.reset();
    const late = request(target(), { leaseExpiresAt: NOW + 120_000, leaseMaxExpiresAt: NOW + 599_000 });
    await expect(provider.issue(late, provider.plan(late))).rejects.toMatchObject({ code: 'ERR_CLOUD_LIMIT', cloud: 'kubernetes' });
    expect(fake.requests).toHaveLength(0);
  });

  it('uses the API server\'s shorter expiry (its max token expiration)', async () => {
    const capped = await startKubernetesFake({ maxTokenExpirationS: 600, now: () => NOW });
    try {
      const prov = createKubernetesProvider({ clusters: [{ server: capped.url }] });
      const req = request(parseKubernetesTarget({ api_server: capped.url, namespace: 'apps' }, 'iam.kubernetes'));
      const grant = await prov.issue(req, prov.plan(req));
      expect(grant.expiresAt).toBe(NOW + 600_000);
      expect(grant.credential.expires_at).toBe(new Date(NOW + 600_000).toISOString());
    } finally {
      await capped.close();
    }
  });
});

describe('issue with a shared service account', () => {
  it('creates an Opaque Secret and binds the token to it', async () => {
    fake.seed('serviceaccounts', 'apps', { metadata: { name: 'deployer' } });
    const req = request(target({ service_account: 'deployer' }));
    const p = provider.plan(req) as KubernetesPlan;
    const grant = await provider.issue(req, p);
    expect(bodies('POST', 'serviceaccounts')).toHaveLength(0);
    expect(bodies('POST', 'secrets')[0].body).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: NAME, namespace: 'apps', labels: LABELS, annotations: { 'tvm.dev/role': 'deployer', 'tvm.dev/subject': 'approle:ci' } },
      type: 'Opaque',
    });
    const secretUid = fake.get('secrets', 'apps', NAME)?.metadata.uid;
    expect(bodies('POST', 'rolebindings')[0].body).toMatchObject({ subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'apps' }] });
    expect(bodies('POST', 'token')[0].path).toBe('/api/v1/namespaces/apps/serviceaccounts/deployer/token');
    expect(bodies('POST', 'token')[0].body).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [], expirationSeconds: 1200, boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: NAME, uid: secretUid } },
    });
    const token = grant.credential.token as string;
    expect(fake.isTokenValid(token)).toBe(true);

    // Renew: a new token bound to the same Secret.
    fakeNow = NOW + 600_000;
    const renewed = await provider.renew(request(req.target, { now: fakeNow, leaseExpiresAt: fakeNow + 1200_000 }), p, grant);
    expect(bodies('POST', 'token')[1].body).toMatchObject({ spec: { boundObjectRef: { name: NAME, uid: secretUid } } });
    expect(renewed.credential.token).not.toBe(token);

    const res = await provider.teardown(p, renewed, 'revoke', fakeNow);
    expect(res.cleanupAt).toBeNull();
    expect(bodies('DELETE', 'secrets').map((r) => r.path)).toEqual([`/api/v1/namespaces/apps/secrets/${NAME}`]);
    expect(bodies('DELETE', 'serviceaccounts')).toHaveLength(0);
    // Both tokens die with their bound Secret; the shared account stays.
    expect(fake.isTokenValid(token)).toBe(false);
    expect(fake.isTokenValid(renewed.credential.token as string)).toBe(false);
    expect(fake.get('serviceaccounts', 'apps', 'deployer')).toBeDefined();
    expect(fake.get('roles', 'apps', NAME)).toBeUndefined();
    expect(fake.get('rolebindings', 'jobs', NAME)).toBeUndefined();
  });
});

describe('renew and revoke', () => {
  it('renews with a new TokenRequest on the same objects, then revoke deletes them all and the tokens die', async () => {
    const req = request(target());
    const p = provider.plan(req) as KubernetesPlan;
    const grant = await provider.issue(req, p);
    const first = grant.credential.token as string;

    fakeNow = NOW + 900_000;
    const renewed = await provider.renew(request(req.target, { now: fakeNow, leaseExpiresAt: fakeNow + 1500_000 }), p, grant);
    expect(fake.requests.slice(6).map((r) => `${r.method} ${r.resource}`)).toEqual(['POST token']);
    expect(bodies('POST', 'token')[1].body).toEqual({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds: 1500 } });
    expect(renewed.expiresAt).toBe(fakeNow + 1500_000);
    expect(renewed.state).toEqual(expect.objectContaining({ anchor: grant.state.anchor }));

    // Near the hard end: no token can be shorter than 600 s, the current one is kept.
    const late = request(req.target, { now: NOW + 3100_000, leaseExpiresAt: NOW + 3600_000 });
    expect(await provider.renew(late, p, renewed)).toBe(renewed);

    fake.requests.length = 0;
    const res = await provider.teardown(p, renewed, 'revoke', fakeNow);
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `DELETE /api/v1/namespaces/apps/serviceaccounts/${NAME}`,
      `DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/apps/rolebindings/${NAME}`,
      `DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/jobs/rolebindings/${NAME}`,
      `DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/apps/roles/${NAME}`,
      `DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/jobs/roles/${NAME}`,
    ]);
    expect(res).toEqual({ detail: expect.stringContaining(`ServiceAccount apps/${NAME}`), cleanupAt: null });
    expect(fake.state.objects.size).toBe(0);
    expect(fake.isTokenValid(first)).toBe(false);
    expect(fake.isTokenValid(renewed.credential.token as string)).toBe(false);

    // Idempotent: everything is already gone.
    const again = await provider.teardown(p, renewed, 'revoke', fakeNow);
    expect(again.detail).toContain('already gone');
    expect(fake.requests.slice(5).every((r) => r.status === 404)).toBe(true);
  });

  it('a token outlives nothing: it expires on the fake clock too', async () => {
    const req = request(target());
    const grant = await provider.issue(req, provider.plan(req));
    fakeNow = grant.expiresAt;
    expect(fake.isTokenValid(grant.credential.token as string)).toBe(false);
  });
});

describe('rollback of a half-finished issue', () => {
  it('deletes what was created before the crash, from the plan alone', async () => {
    const req = request(target());
    const p = JSON.parse(JSON.stringify(provider.plan(req))) as KubernetesPlan;
    // The connection drops on the first RoleBinding: the account and the apps Role exist.
    fake.failNext({ method: 'POST', resource: 'rolebindings' }, 'drop');
    const err = await provider.issue(req, p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudError);
    expect(err).toMatchObject({ code: 'ERR_CLOUD_UNAVAILABLE', retryable: true });
    expect(fake.get('serviceaccounts', 'apps', NAME)).toBeDefined();
    expect(fake.get('roles', 'apps', NAME)).toBeDefined();
    expect(fake.state.tokens.size).toBe(0);

    const res = await provider.teardown(p, null, 'rollback', NOW);
    expect(res.cleanupAt).toBeNull();
    expect(res.detail).toMatch(/^rollback: deleted ServiceAccount apps\/tvm-.*, Role apps\/tvm-/);
    expect(res.detail).toContain(`already gone: RoleBinding apps/${NAME}, RoleBinding jobs/${NAME}, Role jobs/${NAME}`);
    expect(fake.state.objects.size).toBe(0);
  });

  it('deletes everything when the crash came after the TokenRequest, and the token is dead', async () => {
    const req = request(target());
    const p = provider.plan(req);
    await provider.issue(req, p); // the registry write of the grant never happened
    const token = [...fake.state.tokens.keys()][0];
    await provider.teardown(p, null, 'rollback', NOW);
    expect(fake.state.objects.size).toBe(0);
    expect(fake.isTokenValid(token)).toBe(false);
  });

  it('rolls back a plan whose issue never ran (all 404)', async () => {
    const p = provider.plan(request(target({ service_account: 'deployer' })));
    const res = await provider.teardown(p, null, 'rollback', NOW);
    expect(res.detail).toMatch(/^rollback: already gone: Secret apps\/tvm-/);
    expect(fake.requests.map((r) => r.status)).toEqual([404, 404, 404, 404, 404]);
  });

  it('reports a failed delete after trying every step (retryable), and a re-run finishes', async () => {
    const req = request(target());
    const p = provider.plan(req);
    await provider.issue(req, p);
    fake.failNext({ method: 'DELETE', resource: 'rolebindings' }, 500);
    const err = await provider.teardown(p, null, 'revoke', NOW).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CLOUD_UNAVAILABLE', message: expect.stringContaining(`delete RoleBinding apps/${NAME} failed: HTTP 500`) });
    expect(fake.get('serviceaccounts', 'apps', NAME)).toBeUndefined();
    expect(fake.get('rolebindings', 'apps', NAME)).toBeDefined();
    expect(fake.get('roles', 'jobs', NAME)).toBeUndefined();
    await provider.teardown(p, null, 'revoke', NOW);
    expect(fake.state.objects.size).toBe(0);
  });
});

describe('409 on create', () => {
  it('adopts objects this grant created before a crash (idempotent re-run)', async () => {
    const req = request(target());
    const p = provider.plan(req);
    fake.failNext({ resource: 'token' }, 503);
    await expect(provider.issue(req, p)).rejects.toMatchObject({ code: 'ERR_CLOUD_UNAVAILABLE' });
    const saUid = fake.get('serviceaccounts', 'apps', NAME)?.metadata.uid;
    const grant = await provider.issue(req, p);
    expect(fake.requests.filter((r) => r.status === 409)).toHaveLength(5);
    expect(fake.requests.filter((r) => r.method === 'GET')).toHaveLength(5);
    expect(grant.state.anchor).toEqual({ kind: 'ServiceAccount', name: NAME, uid: saUid });
    expect(fake.isTokenValid(grant.credential.token as string)).toBe(true);
  });

  it("refuses an existing object that is not this grant's", async () => {
    fake.seed('serviceaccounts', 'apps', { metadata: { name: NAME, labels: { 'tvm.dev/grant': 'someone-else' } } });
    const req = request(target());
    await expect(provider.issue(req, provider.plan(req))).rejects.toMatchObject({
      code: 'ERR_CLOUD_DENIED',
      message: expect.stringContaining("is not this grant's"),
    });
  });

  it('refuses an existing Role of this grant with other rules (never widened)', async () => {
    fake.seed('roles', 'apps', { metadata: { name: NAME, labels: LABELS }, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] });
    const req = request(target());
    await expect(provider.issue(req, provider.plan(req))).rejects.toMatchObject({
      code: 'ERR_CLOUD_DENIED',
      message: expect.stringContaining('different rules'),
    });
  });
});

describe('errors', () => {
  it('maps 403 to ERR_CLOUD_DENIED with the API server\'s words and no secret', async () => {
    fake.failNext({ resource: 'serviceaccounts' }, 403, 1, `serviceaccounts is forbidden: User "broker" cannot create (token ${BROKER})`);
    const req = request(target());
    const err = (await provider.issue(req, provider.plan(req)).catch((e: unknown) => e)) as CloudError;
    expect(err).toBeInstanceOf(CloudError);
    expect(err).toMatchObject({ code: 'ERR_CLOUD_DENIED', cloud: 'kubernetes', retryable: false });
    expect(err.message).toContain('HTTP 403: Forbidden: serviceaccounts is forbidden');
    expect(err.message).not.toContain(BROKER);
    expect(err.cause).toBeUndefined();
  });

  it('maps 5xx, 429 and dropped connections to ERR_CLOUD_UNAVAILABLE', async () => {
    for (const status of [500, 503, 429, 'drop'] as const) {
      fake.reset();
      fake.failNext({ resource: 'serviceaccounts' }, status);
      const req = request(target());
      await expect(provider.issue(req, provider.plan(req))).rejects.toMatchObject({ code: 'ERR_CLOUD_UNAVAILABLE', retryable: true });
    }
  });

  it('maps a refused TokenRequest (missing shared account) to ERR_CLOUD_DENIED', async () => {
    const req = request(target({ service_account: 'missing' }));
    await expect(provider.issue(req, provider.plan(req))).rejects.toMatchObject({
      code: 'ERR_CLOUD_DENIED',
      message: expect.stringContaining('TokenRequest for service account apps/missing failed: HTTP 404'),
    });
  });

  it('maps wrong broker credentials (401) to ERR_CLOUD_DENIED', async () => {
    const wrong = createKubernetesProvider({ clusters: [{ server: fake.url, token: 'wrong' }] });
    const req = request(target());
    await expect(wrong.issue(req, wrong.plan(req))).rejects.toMatchObject({ code: 'ERR_CLOUD_DENIED', message: expect.stringContaining('HTTP 401') });
  });

  it('refuses an API server the broker has no credentials for', async () => {
    const req = request(parseKubernetesTarget({ api_server: 'https://other.example:6443', namespace: 'apps' }, 'iam.kubernetes'));
    await expect(provider.issue(req, provider.plan(req))).rejects.toMatchObject({
      code: 'ERR_CLOUD_DENIED',
      message: expect.stringContaining('no credentials for the API server https://other.example:6443'),
    });
    await expect(provider.teardown(provider.plan(req), null, 'rollback', NOW)).rejects.toMatchObject({ code: 'ERR_CLOUD_DENIED' });
  });

  it('maps an unreachable API server to ERR_CLOUD_UNAVAILABLE', async () => {
    const down = await startKubernetesFake();
    const url = down.url;
    await down.close();
    const prov = createKubernetesProvider({ clusters: [{ server: url }] });
    const req = request(parseKubernetesTarget({ api_server: url, namespace: 'apps' }, 'iam.kubernetes'));
    await expect(prov.issue(req, prov.plan(req))).rejects.toMatchObject({ code: 'ERR_CLOUD_UNAVAILABLE' });
  });
});

describe('broker credentials from a kubeconfig', () => {
  it('uses the context whose cluster server matches the target', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'prod', server: 'https://prod.example:6443', skipTLSVerify: false },
        { name: 'local', server: `${fake.url}/`, skipTLSVerify: true },
      ],
      users: [
        { name: 'prod-user', token: 'prod-token' },
        { name: 'local-user', token: BROKER },
      ],
      contexts: [
        { name: 'prod', cluster: 'prod', user: 'prod-user' },
        { name: 'local', cluster: 'local', user: 'local-user' },
      ],
      currentContext: 'prod',
    });
    const prov = createKubernetesProvider({ kubeConfig: kc });
    const req = request(target());
    const grant: CloudGrant = await prov.issue(req, prov.plan(req));
    expect(fake.isTokenValid(grant.credential.token as string)).toBe(true);
    expect(fake.requests.every((r) => r.authorization === `Bearer ${BROKER}`)).toBe(true);
  });
});

it('the provider carries the module', () => {
  expect(provider.module).toBe(kubernetesModule);
  expect(provider.cloud).toBe('kubernetes');
});
