// The loopback Kubernetes fake answers as the API server does for the paths the provider uses.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startKubernetesFake, type KubernetesFake } from '../fakes/kubernetes.ts';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
let fake: KubernetesFake;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: { authorization: 'Bearer b', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
const tokenPath = (sa: string) => `/api/v1/namespaces/ns/serviceaccounts/${sa}/token`;

beforeAll(async () => {
  fake = await startKubernetesFake({ brokerToken: 'b', namespaces: ['ns'], now: () => NOW });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

describe('kubernetes fake', () => {
  it('creates with a uid, answers 409 on a taken name, 404 for a missing object or namespace, 401 without the bearer', async () => {
    const created = await call('POST', '/api/v1/namespaces/ns/serviceaccounts', { metadata: { name: 'sa' } });
    expect(created.status).toBe(201);
    expect((created.json.metadata as { uid: string }).uid).toMatch(/^[0-9a-f-]{36}$/);
    expect((await call('POST', '/api/v1/namespaces/ns/serviceaccounts', { metadata: { name: 'sa' } })).json).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', code: 409 });
    expect((await call('GET', '/api/v1/namespaces/ns/secrets/nope')).status).toBe(404);
    expect((await call('POST', '/api/v1/namespaces/other/secrets', { metadata: { name: 's' } })).status).toBe(404);
    expect((await call('DELETE', '/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/r')).status).toBe(404);
    const anon = await fetch(`${fake.url}/api/v1/namespaces/ns/secrets/x`);
    expect(anon.status).toBe(401);
  });

  it('validates TokenRequests as the API server does', async () => {
    await call('POST', '/api/v1/namespaces/ns/serviceaccounts', { metadata: { name: 'sa' } });
    const secret = await call('POST', '/api/v1/namespaces/ns/secrets', { metadata: { name: 's' }, type: 'Opaque' });
    const uid = (secret.json.metadata as { uid: string }).uid;
    expect((await call('POST', tokenPath('missing'), { spec: { audiences: [], expirationSeconds: 600 } })).status).toBe(404);
    const short = await call('POST', tokenPath('sa'), { spec: { audiences: [], expirationSeconds: 599 } });
    expect(short.status).toBe(422);
    expect(short.json.message).toContain('may not specify a duration less than 10 minutes');
    expect((await call('POST', tokenPath('sa'), { spec: { audiences: [], expirationSeconds: 2 ** 32 + 1 } })).status).toBe(422);
    expect((await call('POST', tokenPath('sa'), { spec: { boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: 'nope' }, expirationSeconds: 600 } })).status).toBe(400);
    expect((await call('POST', tokenPath('sa'), { spec: { boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: 's', uid: 'stale' }, expirationSeconds: 600 } })).status).toBe(409);

    const ok = await call('POST', tokenPath('sa'), { spec: { audiences: [], boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: 's', uid }, expirationSeconds: 700 } });
    expect(ok.status).toBe(201);
    const status = ok.json.status as { token: string; expirationTimestamp: string };
    expect(status.expirationTimestamp).toBe('2026-11-23T12:11:40Z');
    expect(fake.state.tokens.get(status.token)?.audiences).toEqual(['https://kubernetes.default.svc.cluster.local']);
    expect(fake.isTokenValid(status.token)).toBe(true);

    // Recreating the Secret under the same name does not revive the token (uid check).
    await call('DELETE', '/api/v1/namespaces/ns/secrets/s');
    await call('POST', '/api/v1/namespaces/ns/secrets', { metadata: { name: 's' }, type: 'Opaque' });
    expect(fake.isTokenValid(status.token)).toBe(false);
    expect(fake.isTokenValid('never-minted')).toBe(false);
  });

  it('records every request with its body and injected failures', async () => {
    fake.failNext({ method: 'POST', resource: 'roles' }, 503, 2);
    const body = { metadata: { name: 'r' }, rules: [] };
    expect((await call('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles', body)).status).toBe(503);
    expect((await call('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles', body)).status).toBe(503);
    expect((await call('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles', body)).status).toBe(201);
    expect(fake.requests.map((r) => [r.resource, r.status])).toEqual([
      ['roles', 503],
      ['roles', 503],
      ['roles', 201],
    ]);
    expect(fake.requests[2]).toMatchObject({ namespace: 'ns', body });
  });
});
