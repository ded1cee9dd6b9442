// The pure Kubernetes module: target parsing, the scope table, every refusal.
import { describe, expect, it } from 'vitest';
import {
  kubernetesModule,
  MIN_TOKEN_EXPIRATION_S,
  parseK8sPattern,
  parseKubernetesTarget,
  roleRulesFor,
  type KubernetesTarget,
} from '../../../src/iam/kubernetes/module.ts';
import { refusal } from '../helpers.ts';

const F = 'iam.kubernetes';
const CERT_BODY = Buffer.from('x'.repeat(100)).toString('base64');
const PEM = `-----BEGIN CERTIFICATE-----\n${CERT_BODY}\n-----END CERTIFICATE-----`;


describe('parseTarget', () => {
  it('normalises a minimal target', () => {
    expect(kubernetesModule.parseTarget({ api_server: 'https://K8S.example.com:443/', namespace: 'apps' }, F)).toEqual({
      api_server: 'https://k8s.example.com',
      namespace: 'apps',
      service_account: null,
      ca_cert: null,
      audiences: [],
    });
  });

  it('keeps a path, a port, a service account, a CA and audiences', () => {
    const t = parseKubernetesTarget(
      { api_server: 'https://rancher.example/k8s/clusters/c-1', namespace: 'a-1', service_account: 'ci.deployer', ca_cert: `  ${PEM}\n${PEM}  `, audiences: ['x', 'y', 'x'] },
      F,
    );
    expect(t.api_server).toBe('https://rancher.example/k8s/clusters/c-1');
    expect(t.service_account).toBe('ci.deployer');
    // Re-wrapped at 64 characters, blocks joined, one final newline.
    const block = `-----BEGIN CERTIFICATE-----\n${CERT_BODY.slice(0, 64)}\n${CERT_BODY.slice(64, 128)}\n${CERT_BODY.slice(128)}\n-----END CERTIFICATE-----`;
    expect(CERT_BODY.length).toBeGreaterThan(128);
    expect(t.ca_cert).toBe(`${block}\n${block}\n`);
    expect(t.audiences).toEqual(['x', 'y']);
  });

  it.each(['http://127.0.0.1:8080', 'http://localhost:6443', 'http://[::1]:6443', 'http://127.1.2.3'])('allows http on loopback: %s', (url) => {
    expect(parseKubernetesTarget({ api_server: url, namespace: 'a' }, F).api_server).toBe(url);
  });

  it.each([
    [null, F, 'expected an object'],
    [[], F, 'expected an object'],
    [{ namespace: 'a' }, `${F}.api_server`, 'required'],
    [{ api_server: 'http://k8s.example.com', namespace: 'a' }, `${F}.api_server`, 'plain http is only allowed on a loopback host'],
    [{ api_server: 'http://10.0.0.1', namespace: 'a' }, `${F}.api_server`, 'loopback'],
    [{ api_server: 'ftp://k8s.example.com', namespace: 'a' }, `${F}.api_server`, 'not an https URL'],
    [{ api_server: 'https://user:pw@k8s.example.com', namespace: 'a' }, `${F}.api_server`, 'without credentials'],
    [{ api_server: 'https://k8s.example.com/?x=1', namespace: 'a' }, `${F}.api_server`, 'query'],
    [{ api_server: 'not a url', namespace: 'a' }, `${F}.api_server`, 'not an https URL'],
    [{ api_server: 'https://k', namespace: '' }, `${F}.namespace`, 'required'],
    [{ api_server: 'https://k', namespace: 'Apps' }, `${F}.namespace`, 'DNS-1123 label'],
    [{ api_server: 'https://k', namespace: 'a.b' }, `${F}.namespace`, 'DNS-1123 label'],
    [{ api_server: 'https://k', namespace: 'a'.repeat(64) }, `${F}.namespace`, 'longer than 63'],
    [{ api_server: 'https://k', namespace: 'a', service_account: 'Bad_Name' }, `${F}.service_account`, 'DNS-1123 subdomain'],
    [{ api_server: 'https://k', namespace: 'a', service_account: 'a'.repeat(254) }, `${F}.service_account`, 'longer than 253'],
    [{ api_server: 'https://k', namespace: 'a', service_account: 5 }, `${F}.service_account`, 'non-empty string'],
    [{ api_server: 'https://k', namespace: 'a', ca_cert: 'hello' }, `${F}.ca_cert`, 'PEM blocks'],
    [{ api_server: 'https://k', namespace: 'a', ca_cert: `${PEM}\ntrailing` }, `${F}.ca_cert`, 'nothing else'],
    [{ api_server: 'https://k', namespace: 'a', ca_cert: '-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----' }, `${F}.ca_cert`, 'base64'],
    [{ api_server: 'https://k', namespace: 'a', audiences: 'x' }, `${F}.audiences`, 'list of strings'],
    [{ api_server: 'https://k', namespace: 'a', audiences: ['ok', ''] }, `${F}.audiences[1]`, 'non-empty'],
    [{ api_server: 'https://k', namespace: 'a', audiences: Array.from({ length: 11 }, (_, i) => `a${i}`) }, `${F}.audiences`, 'at most 10'],
    [{ api_server: 'https://k', namespace: 'a', token: 'x' }, `${F}.token`, 'unknown field'],
  ])('refuses %j (%s)', (raw, field, message) => {
    const err = refusal(() => parseKubernetesTarget(raw, F));
    expect(err.field).toBe(field);
    expect(err.message).toContain(message);
  });
});

const ALL = ['get', 'list', 'watch'];
const WRITE = ['create', 'update', 'patch', 'delete'];
const NAMED_WRITE = ['update', 'patch', 'delete'];

describe('the scope table', () => {
  it.each([
    ['read', 'k8s://ns/pods', { apiGroups: [''], resources: ['pods'], verbs: ALL }],
    ['read', 'k8s://ns/pods/*', { apiGroups: [''], resources: ['pods'], verbs: ALL }],
    ['read', 'k8s://ns/pods/web-0', { apiGroups: [''], resources: ['pods'], verbs: ALL, resourceNames: ['web-0'] }],
    ['write', 'k8s://ns/configmaps', { apiGroups: [''], resources: ['configmaps'], verbs: WRITE }],
    ['write', 'k8s://ns/configmaps/*', { apiGroups: [''], resources: ['configmaps'], verbs: WRITE }],
    ['write', 'k8s://ns/configmaps/app', { apiGroups: [''], resources: ['configmaps'], verbs: NAMED_WRITE, resourceNames: ['app'] }],
    ['read', 'k8s://ns/deployments.apps', { apiGroups: ['apps'], resources: ['deployments'], verbs: ALL }],
    ['write', 'k8s://ns/ingresses.networking.k8s.io/web', { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: NAMED_WRITE, resourceNames: ['web'] }],
    ['read', 'k8s://ns/widgets.example.com', { apiGroups: ['example.com'], resources: ['widgets'], verbs: ALL }],
    ['read', 'k8s://ns/pods/*/log', { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] }],
    ['read', 'k8s://ns/pods/web-0/log', { apiGroups: [''], resources: ['pods/log'], verbs: ['get'], resourceNames: ['web-0'] }],
    ['read', 'k8s://ns/deployments.apps/*/status', { apiGroups: ['apps'], resources: ['deployments/status'], verbs: ['get'] }],
    ['write', 'k8s://ns/deployments.apps/web/scale', { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['update', 'patch'], resourceNames: ['web'] }],
    ['write', 'k8s://ns/widgets.example.com/*/status', { apiGroups: ['example.com'], resources: ['widgets/status'], verbs: ['update', 'patch'] }],
    ['read', 'k8s://ns/secrets/db-password', { apiGroups: [''], resources: ['secrets'], verbs: ALL, resourceNames: ['db-password'] }],
    ['read', 'k8s://ns/roles.rbac.authorization.k8s.io/system:x', { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ALL, resourceNames: ['system:x'] }],
  ] as const)('%s %s', (access, pattern, rule) => {
    const scopes = { read: [] as string[], write: [] as string[] };
    scopes[access].push(pattern);
    expect(roleRulesFor(scopes)).toEqual([{ namespace: 'ns', rules: [rule] }]);
  });

  it('merges names of the same resource and verbs; a whole-resource scope absorbs named ones', () => {
    expect(
      roleRulesFor({
        read: ['k8s://ns/configmaps/b', 'k8s://ns/configmaps/a', 'k8s://ns/configmaps/b', 'k8s://ns/pods/x', 'k8s://ns/pods', 'k8s://ns/pods/y'],
        write: ['k8s://ns/configmaps/a'],
      }),
    ).toEqual([
      {
        namespace: 'ns',
        rules: [
          { apiGroups: [''], resources: ['configmaps'], verbs: ALL, resourceNames: ['a', 'b'] },
          { apiGroups: [''], resources: ['configmaps'], verbs: NAMED_WRITE, resourceNames: ['a'] },
          { apiGroups: [''], resources: ['pods'], verbs: ALL },
        ],
      },
    ]);
  });

  it('keeps a named write apart from a whole-resource write (different verbs: no widening)', () => {
    expect(roleRulesFor({ read: [], write: ['k8s://ns/configmaps/a', 'k8s://ns/secrets'] })[0].rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: NAMED_WRITE, resourceNames: ['a'] },
      { apiGroups: [''], resources: ['secrets'], verbs: WRITE },
    ]);
  });

  it('gives one entry per namespace, sorted, and ignores other schemes', () => {
    const out = roleRulesFor({ read: ['k8s://b/pods', 's3://x/**', 'k8s://a/pods'], write: ['db://orders/*', 'k8s://b/configmaps'] });
    expect(out.map((n) => n.namespace)).toEqual(['a', 'b']);
    expect(out[1].rules.map((r) => r.resources[0])).toEqual(['configmaps', 'pods']);
    expect(roleRulesFor({ read: ['s3://x/**'], write: [] })).toEqual([]);
  });

  it('never grants deletecollection or a "*" verb, resource or group', () => {
    const rules = roleRulesFor({ read: ['k8s://ns/pods', 'k8s://ns/pods/*/log'], write: ['k8s://ns/pods', 'k8s://ns/pods/a/status'] })[0].rules;
    for (const r of rules) {
      expect(r.verbs).not.toContain('deletecollection');
      expect([...r.verbs, ...r.resources, ...r.apiGroups]).not.toContain('*');
    }
  });

  it('parses the parts of a pattern', () => {
    expect(parseK8sPattern('k8s://ns/ingresses.networking.k8s.io/web/status')).toEqual({
      namespace: 'ns',
      group: 'networking.k8s.io',
      resource: 'ingresses',
      name: 'web',
      subresource: 'status',
    });
  });
});

describe('refusals name the field and the pattern', () => {
  it.each([
    ['read', 'k8s://ns', 'names the namespace, not a resource'],
    ['read', 'k8s://ns/', 'names the namespace, not a resource'],
    ['read', 'k8s:///nodes', 'cluster-scoped resources are refused'],
    ['read', 'k8s://nodes', 'names the namespace, not a resource'],
    ['read', 'k8s://ns/nodes', 'nodes is cluster-scoped'],
    ['read', 'k8s://ns/namespaces', 'cluster-scoped'],
    ['write', 'k8s://ns/clusterroles.rbac.authorization.k8s.io', 'cluster-scoped'],
    ['read', 'k8s://*/pods', 'wildcards in the namespace'],
    ['read', 'k8s://team-*/pods', 'wildcards in the namespace'],
    ['read', 'k8s://**', 'wildcards in the namespace'],
    ['read', 'k8s://Ns/pods', 'DNS-1123 label'],
    ['read', 'k8s://ns/*', 'also matches every subresource'],
    ['write', 'k8s://ns/*', 'pods/exec, serviceaccounts/token'],
    ['read', 'k8s://ns/**', '"**" in the resource'],
    ['read', 'k8s://ns/pod*', 'partial wildcard in the resource'],
    ['read', 'k8s://ns/*.apps', 'partial wildcard in the resource'],
    ['read', 'k8s://ns/pods/**', '"**" in the name'],
    ['read', 'k8s://ns/pods/web-*', 'partial wildcard in the name'],
    ['read', 'k8s://ns/pods/', 'an empty name'],
    ['read', 'k8s://ns/pods/..', 'not an object name'],
    ['read', 'k8s://ns/pods/a%2Fb', 'not an object name'],
    ['read', `k8s://ns/pods/${'a'.repeat(254)}`, 'at most 253'],
    ['read', 'k8s://ns/Pods', 'not a resource name'],
    ['read', 'k8s://ns/pods.Apps', 'API group'],
    ['read', 'k8s://ns/deployments', 'write deployments.apps'],
    ['write', 'k8s://ns/jobs', 'write jobs.batch'],
    ['read', 'k8s://ns/pods/web/exec', 'subresource "exec" is refused'],
    ['write', 'k8s://ns/pods/*/exec', 'subresource "exec" is refused'],
    ['write', 'k8s://ns/serviceaccounts/*/token', 'subresource "token" is refused'],
    ['read', 'k8s://ns/pods/web/*', 'wildcard subresources'],
    ['write', 'k8s://ns/pods/web/log', 'read-only'],
    ['read', 'k8s://ns/pods/web/log/x', 'too many segments'],
  ] as const)('%s %s', (access, pattern, message) => {
    const scopes = { read: ['k8s://ok/pods'], write: ['k8s://ok/pods'] };
    scopes[access].push(pattern);
    const err = refusal(() => roleRulesFor(scopes));
    expect(err.field).toBe(`${access}[1]`);
    expect(err.message).toContain(pattern);
    expect(err.message).toContain(message);
  });
});

describe('checkRole', () => {
  const t: KubernetesTarget = parseKubernetesTarget({ api_server: 'https://k8s.example', namespace: 'apps' }, F);
  const role = (over: Partial<{ read: string[]; write: string[]; audiences: string[]; maxTtlS: number }> = {}) => ({
    read: ['k8s://apps/pods'],
    write: [],
    audiences: [],
    maxTtlS: 3600,
    ...over,
  });

  it('accepts a role with k8s:// scopes and max_ttl of at least 600 s, whatever its audiences', () => {
    expect(() => kubernetesModule.checkRole(t, role(), F)).not.toThrow();
    expect(() => kubernetesModule.checkRole(t, role({ maxTtlS: MIN_TOKEN_EXPIRATION_S }), F)).not.toThrow();
    expect(() => kubernetesModule.checkRole(t, role({ audiences: ['https://elsewhere'] }), F)).not.toThrow();
  });

  it('refuses a role without a k8s:// scope', () => {
    const err = refusal(() => kubernetesModule.checkRole(t, role({ read: ['s3://logs/**'] }), F));
    // refusal() checks the code ERR_IAM_INVALID.
    expect(err).toMatchObject({ field: F });
    expect(err.message).toContain('no k8s:// scope');
  });

  it('refuses max_ttl under TokenRequest\'s 600 s minimum', () => {
    const err = refusal(() => kubernetesModule.checkRole(t, role({ maxTtlS: 599 }), F));
    expect(err.field).toBe('max_ttl');
    expect(err.message).toContain('599s is below');
    expect(err.message).toContain('600s');
  });

  it('refuses a pattern the Role cannot express, naming it', () => {
    const err = refusal(() => kubernetesModule.checkRole(t, role({ write: ['db://x', 'k8s://apps/*'] }), F));
    expect(err.field).toBe('write[1]');
  });

  it('declares its scheme', () => {
    expect(kubernetesModule.cloud).toBe('kubernetes');
    expect(kubernetesModule.schemes).toEqual(['k8s']);
  });
});
