// The loopback Kubernetes fake answers as the API server does for the paths the provider uses.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KNOWN_VERBS } from '../fakes/kubernetes-validation.ts';
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

const ROLES = '/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles';
const BINDINGS = '/apis/rbac.authorization.k8s.io/v1/namespaces/ns/rolebindings';
const RULE = { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] };
const REF = { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'r' };
const SA = { kind: 'ServiceAccount', name: 'app', namespace: 'apps' };
const SUPPORTED_VERBS = KNOWN_VERBS.map((v) => JSON.stringify(v)).join(', ');

/** A create the API server refuses as invalid: 422, reason Invalid, and the causes it lists (nothing stored). */
async function invalid(path: string, body: Record<string, unknown>): Promise<{ message: string; causes: Array<{ reason: string; field: string; message: string }> }> {
  const before = fake.state.objects.size;
  const res = await call('POST', path, body);
  expect(res.status, JSON.stringify(res.json)).toBe(422);
  expect(res.json).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Invalid', code: 422 });
  expect(fake.state.objects.size).toBe(before);
  const details = res.json.details as { causes: Array<{ reason: string; field: string; message: string }> };
  return { message: res.json.message as string, causes: details.causes };
}

describe('kubernetes fake: Role rules are validated as the API server does', () => {
  const role = (...rules: unknown[]) => ({ metadata: { name: 'r' }, rules });

  it('stores valid rules: the core group "", several groups, resourceNames, "*", and no rules at all', async () => {
    expect((await call('POST', ROLES, role(RULE, { apiGroups: ['apps', 'batch'], resources: ['deployments'], verbs: ['*'], resourceNames: ['web'] }))).status).toBe(201);
    expect((await call('POST', ROLES, { metadata: { name: 'empty' }, rules: [] })).status).toBe(201);
  });

  it('verbs, apiGroups and resources must each hold at least one value: 422 with one cause per field', async () => {
    const r = await invalid(ROLES, role({ resources: ['pods'], apiGroups: [''] }));
    expect(r.message).toBe('Role.rbac.authorization.k8s.io "r" is invalid: rules[0].verbs: Required value: verbs must contain at least one value');
    expect(r.causes).toEqual([{ reason: 'FieldValueRequired', message: 'Required value: verbs must contain at least one value', field: 'rules[0].verbs' }]);
    const all = await invalid(ROLES, role(RULE, { apiGroups: [], resources: [], verbs: [] }));
    expect(all.causes).toEqual([
      { reason: 'FieldValueRequired', message: 'Required value: verbs must contain at least one value', field: 'rules[1].verbs' },
      { reason: 'FieldValueRequired', message: 'Required value: resource rules must supply at least one api group', field: 'rules[1].apiGroups' },
      { reason: 'FieldValueRequired', message: 'Required value: resource rules must supply at least one resource', field: 'rules[1].resources' },
    ]);
    expect(all.message).toMatch(/^Role\.rbac\.authorization\.k8s\.io "r" is invalid: \[rules\[1\]\.verbs: Required value: .*, rules\[1\]\.resources: Required value: resource rules must supply at least one resource\]$/);
    expect((await invalid(ROLES, role({ ...RULE, apiGroups: null }))).causes.map((c) => c.field)).toEqual(['rules[0].apiGroups']);
  });

  it('a verb Kubernetes does not define (the fake\'s own rule): 422 Unsupported value', async () => {
    const r = await invalid(ROLES, role({ ...RULE, verbs: ['get', 'gets'] }));
    expect(r.causes).toEqual([{ reason: 'FieldValueNotSupported', message: `Unsupported value: "gets": supported values: ${SUPPORTED_VERBS}`, field: 'rules[0].verbs[1]' }]);
  });

  it('non-resource URLs in a namespaced Role: 422', async () => {
    const r = await invalid(ROLES, role({ nonResourceURLs: ['/healthz'], verbs: ['get'] }));
    expect(r.causes).toEqual([{ reason: 'FieldValueInvalid', message: 'Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs', field: 'rules[0].nonResourceURLs' }]);
  });

  it('a field of the wrong JSON type (verbs a string, a resourceName a number): 400 BadRequest from the decoder', async () => {
    const asString = await call('POST', ROLES, role({ ...RULE, verbs: 'get' }));
    expect(asString.status).toBe(400);
    expect(asString.json).toMatchObject({
      reason: 'BadRequest',
      message: 'Role in version "rbac.authorization.k8s.io/v1" cannot be handled as a Role: json: cannot unmarshal string into Go struct field Role.rules.verbs of type []string',
    });
    const numberName = await call('POST', ROLES, role({ ...RULE, resourceNames: ['web', 7] }));
    expect(numberName.status).toBe(400);
    expect(numberName.json.message).toContain('cannot unmarshal number into Go struct field Role.rules.resourceNames of type string');
    expect(fake.state.objects.size).toBe(0);
  });
});

describe('kubernetes fake: RoleBinding roleRef and subjects are validated as the API server does', () => {
  const binding = (roleRef: unknown, ...subjects: unknown[]) => ({ metadata: { name: 'b' }, roleRef, subjects });

  it('stores a valid binding: a Role or ClusterRole, ServiceAccount, User and Group subjects (their apiGroup defaulted)', async () => {
    const ok = await call('POST', BINDINGS, binding(REF, SA, { kind: 'User', name: 'alice' }, { kind: 'Group', name: 'ops', apiGroup: 'rbac.authorization.k8s.io' }));
    expect(ok.status, JSON.stringify(ok.json)).toBe(201);
    expect((await call('POST', BINDINGS, { ...binding({ ...REF, kind: 'ClusterRole', name: 'view' }, SA), metadata: { name: 'c' } })).status).toBe(201);
  });

  it('roleRef: apiGroup rbac.authorization.k8s.io, kind Role or ClusterRole, a name: 422 naming each field', async () => {
    const r = await invalid(BINDINGS, binding({ apiGroup: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' }, SA));
    expect(r.causes).toEqual([
      { reason: 'FieldValueNotSupported', message: 'Unsupported value: "rbac.authorization.k8s.io/v1": supported values: "rbac.authorization.k8s.io"', field: 'roleRef.apiGroup' },
      { reason: 'FieldValueNotSupported', message: 'Unsupported value: "RoleBinding": supported values: "Role", "ClusterRole"', field: 'roleRef.kind' },
      { reason: 'FieldValueRequired', message: 'Required value', field: 'roleRef.name' },
    ]);
    expect((await invalid(BINDINGS, { metadata: { name: 'b' }, subjects: [SA] })).causes.map((c) => c.field)).toEqual(['roleRef.apiGroup', 'roleRef.kind', 'roleRef.name']);
    expect((await invalid(BINDINGS, binding({ ...REF, name: 'a/b' }, SA))).causes).toEqual([{ reason: 'FieldValueInvalid', message: 'Invalid value: "a/b": may not contain \'/\'', field: 'roleRef.name' }]);
  });

  it('subjects: a kind among ServiceAccount, User, Group; a name; a ServiceAccount name that is a DNS-1123 subdomain, with apiGroup ""', async () => {
    expect((await invalid(BINDINGS, binding(REF, { kind: 'Pod', name: 'x' }))).causes).toEqual([
      { reason: 'FieldValueNotSupported', message: 'Unsupported value: "Pod": supported values: "ServiceAccount", "User", "Group"', field: 'subjects[0].kind' },
    ]);
    expect((await invalid(BINDINGS, binding(REF, SA, { kind: 'ServiceAccount', namespace: 'apps' }))).causes).toEqual([{ reason: 'FieldValueRequired', message: 'Required value', field: 'subjects[1].name' }]);
    const upper = await invalid(BINDINGS, binding(REF, { ...SA, name: 'App_1' }));
    expect(upper.causes).toHaveLength(1);
    expect(upper.causes[0]).toMatchObject({ reason: 'FieldValueInvalid', field: 'subjects[0].name' });
    expect(upper.causes[0].message).toMatch(/^Invalid value: "App_1": a lowercase RFC 1123 subdomain must consist of/);
    expect((await invalid(BINDINGS, binding(REF, { ...SA, apiGroup: 'v1' }))).causes).toEqual([
      { reason: 'FieldValueNotSupported', message: 'Unsupported value: "v1": supported values: ""', field: 'subjects[0].apiGroup' },
    ]);
    expect((await invalid(BINDINGS, binding(REF, { kind: 'Group', name: 'ops', apiGroup: 'v1' }))).causes.map((c) => c.field)).toEqual(['subjects[0].apiGroup']);
  });

  it('a ServiceAccount subject without its namespace (the fake\'s own rule): 422 Required', async () => {
    expect((await invalid(BINDINGS, binding(REF, { kind: 'ServiceAccount', name: 'app' }))).causes).toEqual([{ reason: 'FieldValueRequired', message: 'Required value', field: 'subjects[0].namespace' }]);
  });
});

describe('kubernetes fake: names and namespaces of ServiceAccounts and Secrets', () => {
  it('a name that is not a DNS-1123 subdomain, or longer than 253: 422 on metadata.name', async () => {
    for (const resource of ['serviceaccounts', 'secrets']) {
      const r = await invalid(`/api/v1/namespaces/ns/${resource}`, { metadata: { name: 'Tvm_Grant' } });
      const kind = resource === 'secrets' ? 'Secret' : 'ServiceAccount';
      expect(r.message).toMatch(new RegExp(`^${kind} "Tvm_Grant" is invalid: metadata\\.name: Invalid value: "Tvm_Grant": a lowercase RFC 1123 subdomain`));
      expect(r.causes.map((c) => [c.reason, c.field])).toEqual([['FieldValueInvalid', 'metadata.name']]);
      const long = await invalid(`/api/v1/namespaces/ns/${resource}`, { metadata: { name: 'a'.repeat(254) } });
      expect(long.causes[0].message).toContain('must be no more than 253 characters');
      expect((await invalid(`/api/v1/namespaces/ns/${resource}`, { metadata: {} })).causes).toEqual([
        { reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' },
      ]);
    }
    expect((await call('POST', '/api/v1/namespaces/ns/serviceaccounts', { metadata: { name: 'tvm-1.grant-a' } })).status).toBe(201);
  });

  it('metadata.namespace other than the URL\'s: 400 BadRequest', async () => {
    const res = await call('POST', '/api/v1/namespaces/ns/secrets', { metadata: { name: 's', namespace: 'kube-system' }, type: 'Opaque' });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ reason: 'BadRequest', message: 'the namespace of the provided object does not match the namespace sent on the request' });
    expect(fake.state.objects.size).toBe(0);
  });

  it('seed refuses what create would refuse', () => {
    expect(() => fake.seed('roles', 'ns', { metadata: { name: 'r' }, rules: [{ verbs: ['get'] }] })).toThrow(/would refuse it: Role\.rbac\.authorization\.k8s\.io "r" is invalid/);
    expect(fake.state.objects.size).toBe(0);
  });
});
