import { describe, expect, it } from 'vitest';
import {
  accessBoundaryFor,
  defaultAudience,
  gcpModule,
  MAX_ACCESS_BOUNDARY_CHARS,
  type GcpTarget,
} from '../../../src/iam/gcp/module.ts';
import type { RoleFacts } from '../../../src/iam/types.ts';
import { refusal } from '../helpers.ts';

const PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/tvm-pool/providers/tvm-oidc';
const AUDIENCE = 'https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/tvm-pool/providers/tvm-oidc';
const SA = 'reader-01@my-project-1.iam.gserviceaccount.com';


const parse = (raw: unknown) => gcpModule.parseTarget(raw, 'iam.gcp');

describe('gcpModule.parseTarget', () => {
  it('takes a provider and fills the default audience GCP documents (canonical name, https: prefixed)', () => {
    expect(parse({ workload_identity_provider: PROVIDER })).toEqual({ workload_identity_provider: PROVIDER, audience: AUDIENCE });
    expect(defaultAudience(PROVIDER)).toBe(AUDIENCE);
  });

  it('normalises the bare projects/... form', () => {
    expect(parse({ workload_identity_provider: PROVIDER.slice('//iam.googleapis.com/'.length) })).toEqual({
      workload_identity_provider: PROVIDER,
      audience: AUDIENCE,
    });
  });

  it('takes a service account alone (no audience: the tvm token is not presented)', () => {
    expect(parse({ service_account: SA })).toEqual({ service_account: SA });
  });

  it('takes both, and an explicit audience', () => {
    expect(parse({ workload_identity_provider: PROVIDER, service_account: SA, audience: 'tvm-gcp' })).toEqual({
      workload_identity_provider: PROVIDER,
      service_account: SA,
      audience: 'tvm-gcp',
    });
  });

  it.each<[string, unknown, string, string]>([
    ['not an object', 'x', 'iam.gcp', 'expected an object'],
    ['an array', [], 'iam.gcp', 'expected an object'],
    ['neither target', {}, 'iam.gcp', 'needs workload_identity_provider, service_account, or both'],
    ['an unknown field', { service_account: SA, region: 'eu' }, 'iam.gcp.region', 'unknown field'],
    ['a provider that is not a string', { workload_identity_provider: 42 }, 'iam.gcp.workload_identity_provider', 'expected a string'],
    ['a project id instead of its number', { workload_identity_provider: PROVIDER.replace('123456789012', 'my-project') }, 'iam.gcp.workload_identity_provider', 'is not a workload identity pool provider'],
    ['a regional location', { workload_identity_provider: PROVIDER.replace('/global/', '/europe-west1/') }, 'iam.gcp.workload_identity_provider', 'is not a workload identity pool provider'],
    ['a pool name (no provider)', { workload_identity_provider: PROVIDER.replace('/providers/tvm-oidc', '') }, 'iam.gcp.workload_identity_provider', 'is not a workload identity pool provider'],
    ['the reserved gcp- prefix', { workload_identity_provider: PROVIDER.replace('tvm-pool', 'gcp-pool') }, 'iam.gcp.workload_identity_provider', 'reserved prefix gcp-'],
    ['an https:// provider URL', { workload_identity_provider: AUDIENCE }, 'iam.gcp.workload_identity_provider', 'is not a workload identity pool provider'],
    ['a user email', { service_account: 'me@example.com' }, 'iam.gcp.service_account', 'is not a service account email'],
    ['a too-short account id', { service_account: 'abc@my-project-1.iam.gserviceaccount.com' }, 'iam.gcp.service_account', 'is not a service account email'],
    ['an audience without a provider', { service_account: SA, audience: 'x' }, 'iam.gcp.audience', 'only applies with workload_identity_provider'],
    ['an empty audience', { workload_identity_provider: PROVIDER, audience: '' }, 'iam.gcp.audience', 'expected a non-empty string'],
    ['an audience over 256 characters', { workload_identity_provider: PROVIDER, audience: 'a'.repeat(257) }, 'iam.gcp.audience', 'at most 256 characters (got 257)'],
  ])('refuses %s', (_what, raw, field, message) => {
    const r = refusal(() => parse(raw));
    expect(r.field).toBe(field);
    expect(r.message).toContain(message);
    expect(r.message.startsWith(`invalid ${field}: `)).toBe(true);
  });
});

const VIEWER = ['inRole:roles/storage.objectViewer'];
const WRITER = ['inRole:roles/storage.objectCreator', 'inRole:roles/storage.legacyBucketWriter'];
const rulesOf = (read: string[], write: string[] = []) => accessBoundaryFor({ read, write }).accessBoundary.accessBoundaryRules;

describe('gs:// scope -> Credential Access Boundary rule (the table)', () => {
  it('read gs://bucket/prefix/** -> objectViewer, object-name prefix OR list prefix', () => {
    expect(rulesOf(['gs://logs/app/**'])).toEqual([
      {
        availableResource: '//storage.googleapis.com/projects/_/buckets/logs',
        availablePermissions: VIEWER,
        availabilityCondition: {
          expression:
            "resource.name.startsWith('projects/_/buckets/logs/objects/app/') || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('app/')",
        },
      },
    ]);
  });

  it('read gs://bucket/key -> objectViewer on that one name, no listing', () => {
    expect(rulesOf(['gs://logs/app/2026/11/23.log'])).toEqual([
      {
        availableResource: '//storage.googleapis.com/projects/_/buckets/logs',
        availablePermissions: VIEWER,
        availabilityCondition: { expression: "resource.name == 'projects/_/buckets/logs/objects/app/2026/11/23.log'" },
      },
    ]);
  });

  it('read gs://bucket/** -> objectViewer on the bucket, no condition', () => {
    expect(rulesOf(['gs://logs/**'])).toEqual([{ availableResource: '//storage.googleapis.com/projects/_/buckets/logs', availablePermissions: VIEWER }]);
  });

  it('read gs://bucket/name-prefix** (no slash) -> the same prefix test, exact for names like app-1, apple', () => {
    expect(rulesOf(['gs://logs/app**'])[0].availabilityCondition).toEqual({
      expression:
        "resource.name.startsWith('projects/_/buckets/logs/objects/app') || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('app')",
    });
  });

  it('write gs://bucket/prefix/** -> objectCreator + legacyBucketWriter, object-name prefix only', () => {
    expect(rulesOf([], ['gs://out/batch/**'])).toEqual([
      {
        availableResource: '//storage.googleapis.com/projects/_/buckets/out',
        availablePermissions: WRITER,
        availabilityCondition: { expression: "resource.name.startsWith('projects/_/buckets/out/objects/batch/')" },
      },
    ]);
  });

  it('write gs://bucket/key -> the two roles on that one name', () => {
    expect(rulesOf([], ['gs://out/outbox.json'])).toEqual([
      {
        availableResource: '//storage.googleapis.com/projects/_/buckets/out',
        availablePermissions: WRITER,
        availabilityCondition: { expression: "resource.name == 'projects/_/buckets/out/objects/outbox.json'" },
      },
    ]);
  });

  it('write gs://bucket/** -> still an object-name condition (cuts the bucket-level list/get of legacyBucketWriter)', () => {
    expect(rulesOf([], ['gs://out/**'])).toEqual([
      {
        availableResource: '//storage.googleapis.com/projects/_/buckets/out',
        availablePermissions: WRITER,
        availabilityCondition: { expression: "resource.name.startsWith('projects/_/buckets/out/objects/')" },
      },
    ]);
  });

  it('joins the scopes of one bucket and access into one rule with ||, keeps read before write, ignores other schemes', () => {
    const cab = accessBoundaryFor({
      read: ['s3://logs/app/**', 'gs://aaa/x/**', 'db://orders/*', 'gs://aaa/y.json', 'gs://aaa/x/**', 'gs://bbb/**'],
      write: ['gs://aaa/x/**', 'k8s://ns/configmaps'],
    });
    expect(cab).toEqual({
      accessBoundary: {
        accessBoundaryRules: [
          {
            availableResource: '//storage.googleapis.com/projects/_/buckets/aaa',
            availablePermissions: VIEWER,
            availabilityCondition: {
              expression:
                "resource.name.startsWith('projects/_/buckets/aaa/objects/x/') || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('x/') || resource.name == 'projects/_/buckets/aaa/objects/y.json'",
            },
          },
          { availableResource: '//storage.googleapis.com/projects/_/buckets/bbb', availablePermissions: VIEWER },
          {
            availableResource: '//storage.googleapis.com/projects/_/buckets/aaa',
            availablePermissions: WRITER,
            availabilityCondition: { expression: "resource.name.startsWith('projects/_/buckets/aaa/objects/x/')" },
          },
        ],
      },
    });
    expect(accessBoundaryFor({ read: ['s3://logs/**'], write: [] })).toEqual({ accessBoundary: { accessBoundaryRules: [] } });
  });

  it('a whole-bucket scope subsumes the others of its bucket and access, in either order', () => {
    for (const read of [['gs://aaa/x/**', 'gs://aaa/**'], ['gs://aaa/**', 'gs://aaa/x/**']]) {
      expect(rulesOf(read)).toEqual([{ availableResource: '//storage.googleapis.com/projects/_/buckets/aaa', availablePermissions: VIEWER }]);
    }
    for (const write of [['gs://aaa/k', 'gs://aaa/**'], ['gs://aaa/**', 'gs://aaa/k']]) {
      expect(rulesOf([], write)[0].availabilityCondition).toEqual({ expression: "resource.name.startsWith('projects/_/buckets/aaa/objects/')" });
    }
  });

  it.each<[string, string]>([
    ['gs://logs', 'names the bucket itself, not objects: use gs://logs/** for every object in it'],
    ['gs://logs/', 'names no object: use gs://logs/** for every object in the bucket'],
    ['gs://logs-*/app/**', 'Cloud Storage has no wildcard bucket names'],
    ['gs://**/app/x', 'Cloud Storage has no wildcard bucket names'],
    ['gs://Logs/app/**', 'is not a Cloud Storage bucket name'],
    ['gs://l/app/**', 'is not a Cloud Storage bucket name'],
    [`gs://${'a'.repeat(64)}/x`, 'is longer than Cloud Storage allows'],
    ['gs://logs/app/*', '"*" matches within one path segment'],
    ['gs://logs/*/2026/**', '"*" matches within one path segment'],
    ['gs://logs/app/*.log', '"*" matches within one path segment'],
    ['gs://logs/**/x.log', '"**" is only expressible at the end'],
    ['gs://logs/a/**/b/**', '"**" is only expressible at the end'],
    ["gs://logs/it's/**", 'quotes and backslashes would need escaping'],
    ["gs://logs/x') || true || ('", 'quotes and backslashes would need escaping'],
    ['gs://logs/a"b', 'quotes and backslashes would need escaping'],
    ['gs://logs/a\\b', 'quotes and backslashes would need escaping'],
    [`gs://logs/${'é'.repeat(513)}`, 'at most 1024 bytes'],
  ])('refuses %s, naming the scope and the pattern', (pattern, why) => {
    const r = refusal(() => accessBoundaryFor({ read: ['gs://okay/**', pattern], write: [] }));
    expect(r.field).toBe('read[1]');
    expect(r.message.startsWith(`invalid read[1]: ${pattern}: `)).toBe(true);
    expect(r.message).toContain(why);
    const w = refusal(() => accessBoundaryFor({ read: [], write: [pattern] }));
    expect(w.field).toBe('write[0]');
    expect(w.message).toContain(pattern);
  });

  it('refuses an 11th rule (STS: at most 10), naming the scope that would be it', () => {
    const read = Array.from({ length: 10 }, (_, i) => `gs://bk${i}/**`);
    expect(rulesOf(read)).toHaveLength(10);
    const r = refusal(() => accessBoundaryFor({ read, write: ['gs://bk0/out/**'] }));
    expect(r.field).toBe('write[0]');
    expect(r.message).toBe('invalid write[0]: gs://bk0/out/**: a GCP access boundary holds at most 10 rules (one per bucket and access); this is rule 11');
  });

  it('refuses a boundary over 2,048 characters, naming the scope that crosses it', () => {
    const long = (i: number) => `gs://bucket-${i}/${'d'.repeat(150)}/**`;
    const read = [long(1), long(2), long(3), long(4)];
    expect(JSON.stringify(accessBoundaryFor({ read: read.slice(0, 3), write: [] })).length).toBeLessThanOrEqual(MAX_ACCESS_BOUNDARY_CHARS);
    const r = refusal(() => accessBoundaryFor({ read, write: [] }));
    expect(r.field).toBe('read[3]');
    expect(r.message).toBe(`invalid read[3]: ${long(4)}: the GCP access boundary would be 2556 characters; STS accepts at most 2048`);
  });
});

function role(over: Partial<RoleFacts> = {}): RoleFacts {
  return { read: ['gs://logs/app/**'], write: [], audiences: [AUDIENCE], maxTtlS: 3600, ...over };
}

describe('gcpModule.checkRole', () => {
  const federated: GcpTarget = parse({ workload_identity_provider: PROVIDER });
  const sa: GcpTarget = parse({ service_account: SA });

  it('accepts a role with a gs:// scope and the provider audience', () => {
    expect(() => gcpModule.checkRole(federated, role(), 'iam.gcp')).not.toThrow();
    expect(() => gcpModule.checkRole(sa, role({ audiences: [] }), 'iam.gcp')).not.toThrow();
  });

  it('refuses a role with no gs:// scope', () => {
    const r = refusal(() => gcpModule.checkRole(federated, role({ read: ['s3://logs/**'], write: ['db://x'] }), 'iam.gcp'));
    expect(r).toEqual({ field: 'iam.gcp', message: 'invalid iam.gcp: the role has no gs:// scope, so a GCP credential would carry no permission' });
  });

  it('refuses a provider audience that is not among the role audiences', () => {
    const r = refusal(() => gcpModule.checkRole(federated, role({ audiences: ['https://orders.example'] }), 'iam.gcp'));
    expect(r.field).toBe('iam.gcp.audience');
    expect(r.message).toBe(
      `invalid iam.gcp.audience: GCP STS needs tokens with audience ${AUDIENCE}, and the role's audiences are https://orders.example; add it to the role's audiences`,
    );
    const none = refusal(() => gcpModule.checkRole(federated, role({ audiences: [] }), 'iam.gcp'));
    expect(none.message).toContain('the role has no audiences (its tokens carry the issuer)');
  });

  it('refuses an inexpressible scope before anything else, naming it', () => {
    const r = refusal(() => gcpModule.checkRole(federated, role({ read: ['gs://logs/app/*'], audiences: [] }), 'iam.gcp'));
    expect(r.field).toBe('read[0]');
  });

  it('refuses no max_ttl for its length: generateAccessToken has no minimum and the provider caps each token', () => {
    expect(() => gcpModule.checkRole(sa, role({ maxTtlS: 1 }), 'iam.gcp')).not.toThrow();
    expect(() => gcpModule.checkRole(federated, role({ maxTtlS: 86_400 }), 'iam.gcp')).not.toThrow();
  });

  it('declares its cloud and scheme', () => {
    expect(gcpModule.cloud).toBe('gcp');
    expect(gcpModule.schemes).toEqual(['gs']);
  });
});
