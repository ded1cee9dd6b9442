// gs:// scopes -> a Credential Access Boundary (pure).
//
// One rule per bucket and access, on `//storage.googleapis.com/projects/_/buckets/<bucket>`;
// each scope adds its condition, joined with `||` (a union: still exact):
//
//   scope                         permissions                                   condition the scope adds
//   read  gs://b/p/**             inRole:roles/storage.objectViewer             resource.name.startsWith('projects/_/buckets/b/objects/p/')
//                                                                               || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('p/')
//   read  gs://b/key              inRole:roles/storage.objectViewer             resource.name == 'projects/_/buckets/b/objects/key'
//   read  gs://b/**               inRole:roles/storage.objectViewer             (none: the rule has no condition, every object of the bucket)
//   write gs://b/p/**             inRole:roles/storage.objectCreator,           resource.name.startsWith('projects/_/buckets/b/objects/p/')
//                                 inRole:roles/storage.legacyBucketWriter
//   write gs://b/key              (same two)                                    resource.name == 'projects/_/buckets/b/objects/key'
//   write gs://b/**               (same two)                                    resource.name.startsWith('projects/_/buckets/b/objects/') (alone)
//
// Read: objects.get on the names, objects.list only for a list request whose
// prefix starts with the pattern's (GCS evaluates objects.list on the bucket,
// so the object-name test alone would refuse every listing); an exact object
// gets no listing (a list prefix `key` would also list `key2`).
// Write means create, overwrite and delete under the pattern, as in AWS
// (PutObject + DeleteObject). objectCreator alone only creates: GCS needs
// storage.objects.delete to overwrite. No predefined role holds create+delete
// and nothing else: objectUser and legacyObjectOwner add objects.get (a read);
// legacyBucketWriter holds objects.create, objects.delete, objects.list and
// buckets.get, and the last two are evaluated on the bucket's own name
// (`projects/_/buckets/b`), which never satisfies an `.../objects/...`
// condition. So every write rule carries an object-name condition, also for
// the whole bucket, and the union grants create/overwrite/delete of matching
// objects only. objectCreator is kept for its multipart-upload permissions.
//
// Refused (never widened): a bucket without an object part, wildcards in the
// bucket, `*` (one segment: CAB conditions test a prefix or an exact name,
// not a segment), `**` anywhere but at the end, quotes and backslashes (they
// would need escaping inside the CEL string: refused rather than risk
// injection), names over GCS's 1,024 bytes, more than 10 rules (buckets x
// access), or a boundary over 2,048 characters of JSON (STS's limits on
// `options.accessBoundary`; it binds first: about six prefix reads in distinct buckets).

import { IamFieldError } from '../errors.ts';
import { forEachScope } from '../scopes.ts';
import type { Scopes } from '../types.ts';

export const GCS_SCHEME = 'gs';
/** STS: "The access boundary can include up to 10 rules." */
export const MAX_ACCESS_BOUNDARY_RULES = 10;
/** STS: "The size of the parameter value should not exceed 2048 characters." (the JSON sent as `options`) */
export const MAX_ACCESS_BOUNDARY_CHARS = 2048;
/** GCS object names are at most 1,024 bytes of UTF-8. */
export const MAX_OBJECT_NAME_BYTES = 1024;

export const READ_PERMISSIONS: readonly string[] = ['inRole:roles/storage.objectViewer'];
export const WRITE_PERMISSIONS: readonly string[] = ['inRole:roles/storage.objectCreator', 'inRole:roles/storage.legacyBucketWriter'];

export interface AccessBoundaryRule {
  availableResource: string;
  availablePermissions: string[];
  availabilityCondition?: { expression: string };
}

/** The `options` value of the STS exchange (and DownscopedClient's credentialAccessBoundary). */
export interface CredentialAccessBoundary {
  accessBoundary: { accessBoundaryRules: AccessBoundaryRule[] };
}

/** What a gs:// pattern names: a whole bucket, the objects under a name prefix, or one object. */
export type GcsResource =
  | { kind: 'bucket'; bucket: string }
  | { kind: 'prefix'; bucket: string; prefix: string }
  | { kind: 'object'; bucket: string; name: string };

// Bucket names: 3-63 characters (up to 222 with dots, 63 per dot-separated part),
// lowercase letters, digits, "-", "_", "."; a letter or digit first and last.
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
// Characters a CEL single-quoted string would need escaped.
const CEL_UNSAFE = /['"\\]/;

function bucketProblem(bucket: string): string | null {
  if (bucket.includes('*')) return 'Cloud Storage has no wildcard bucket names; name one bucket';
  if (!BUCKET.test(bucket)) return `${JSON.stringify(bucket)} is not a Cloud Storage bucket name (lowercase letters, digits, "-", "_", ".")`;
  const parts = bucket.split('.');
  if (parts.some((p) => p.length > 63) || (parts.length === 1 && bucket.length > 63)) {
    return `${JSON.stringify(bucket)} is longer than Cloud Storage allows`;
  }
  return null;
}

/** Parses a gs:// pattern, or returns why CAB cannot express it exactly. */
export function parseGcsPattern(pattern: string): GcsResource | string {
  const rest = pattern.slice(`${GCS_SCHEME}://`.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const bad = bucketProblem(bucket);
  if (bad) return bad;
  if (slash < 0) return `names the bucket itself, not objects: use gs://${bucket}/** for every object in it`;
  const path = rest.slice(slash + 1);
  if (CEL_UNSAFE.test(path)) {
    return 'quotes and backslashes would need escaping in the access boundary condition (CEL); they are refused';
  }
  if (new TextEncoder().encode(path).length > MAX_OBJECT_NAME_BYTES) {
    return `Cloud Storage object names are at most ${MAX_OBJECT_NAME_BYTES} bytes`;
  }
  const head = path.endsWith('**') ? path.slice(0, -2) : path;
  if (head.includes('**')) return '"**" is only expressible at the end: an access boundary condition tests a name prefix';
  if (head.includes('*')) {
    return '"*" matches within one path segment, which an access boundary condition cannot test (it tests a name prefix or an exact name); use a prefix ending in "**" or exact names';
  }
  if (path.endsWith('**')) return head === '' ? { kind: 'bucket', bucket } : { kind: 'prefix', bucket, prefix: head };
  if (path === '') return `names no object: use gs://${bucket}/** for every object in the bucket`;
  return { kind: 'object', bucket, name: path };
}

function objectName(bucket: string, name: string): string {
  return `projects/_/buckets/${bucket}/objects/${name}`;
}

/**
 * The condition one parsed scope adds to its bucket's rule, or null for
 * "every object" (read of the whole bucket). Callers have refused CEL-unsafe characters.
 */
export function scopeCondition(access: 'read' | 'write', r: GcsResource): string | null {
  if (r.kind === 'object') return `resource.name == '${objectName(r.bucket, r.name)}'`;
  const prefix = r.kind === 'prefix' ? r.prefix : '';
  const names = `resource.name.startsWith('${objectName(r.bucket, prefix)}')`;
  if (access === 'write') return names;
  if (r.kind === 'bucket') return null;
  return `${names} || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('${prefix}')`;
}

interface RuleGroup {
  access: 'read' | 'write';
  bucket: string;
  /** Null once a read scope grants the whole bucket: no condition. */
  conditions: string[] | null;
  /** A scope covers every object: later conditions of the group are subsumed. */
  whole: boolean;
}

function ruleOf(g: RuleGroup): AccessBoundaryRule {
  const rule: AccessBoundaryRule = {
    availableResource: `//storage.googleapis.com/projects/_/buckets/${g.bucket}`,
    availablePermissions: [...(g.access === 'read' ? READ_PERMISSIONS : WRITE_PERMISSIONS)],
  };
  if (g.conditions !== null) rule.availabilityCondition = { expression: g.conditions.join(' || ') };
  return rule;
}

export function isGcsPattern(pattern: string): boolean {
  return pattern.startsWith(`${GCS_SCHEME}://`);
}

/** Whether any read or write pattern is a gs:// one. */
export function hasGcsScope(scopes: Scopes): boolean {
  return scopes.read.some(isGcsPattern) || scopes.write.some(isGcsPattern);
}

/**
 * The Credential Access Boundary for the gs:// patterns of `scopes` (others
 * are ignored): one rule per bucket and access, its scopes' conditions joined
 * with `||` (a union, so still exact, and shorter than a rule each: STS caps
 * the boundary at 2,048 characters). Throws IamFieldError naming
 * `read[i]`/`write[i]` and the pattern when one cannot be expressed exactly or
 * pushes the boundary past STS's limits. No rule means "no gs:// scope".
 */
export function accessBoundaryFor(scopes: Scopes): CredentialAccessBoundary {
  const groups = new Map<string, RuleGroup>();
  let cab: CredentialAccessBoundary = { accessBoundary: { accessBoundaryRules: [] } };
  forEachScope(scopes, isGcsPattern, parseGcsPattern, (access, parsed, field, pattern) => {
    const key = `${access} ${parsed.bucket}`;
    const group = groups.get(key) ?? { access, bucket: parsed.bucket, conditions: [], whole: false };
    groups.set(key, group);
    const condition = scopeCondition(access, parsed);
    if (parsed.kind === 'bucket') {
      group.whole = true;
      group.conditions = condition === null ? null : [condition];
    } else if (!group.whole && condition !== null && group.conditions !== null && !group.conditions.includes(condition)) {
      group.conditions.push(condition);
    }
    cab = { accessBoundary: { accessBoundaryRules: [...groups.values()].map(ruleOf) } };
    const count = cab.accessBoundary.accessBoundaryRules.length;
    if (count > MAX_ACCESS_BOUNDARY_RULES) {
      throw new IamFieldError(
        field,
        `${pattern}: a GCP access boundary holds at most ${MAX_ACCESS_BOUNDARY_RULES} rules (one per bucket and access); this is rule ${count}`,
      );
    }
    const size = JSON.stringify(cab).length;
    if (size > MAX_ACCESS_BOUNDARY_CHARS) {
      throw new IamFieldError(
        field,
        `${pattern}: the GCP access boundary would be ${size} characters; STS accepts at most ${MAX_ACCESS_BOUNDARY_CHARS}`,
      );
    }
  });
  return cab;
}
