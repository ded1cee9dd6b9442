// What the Kubernetes API server checks on create, for the four kinds the fake
// stores, and the Status objects it answers (k8s.io/apimachinery field errors):
//
//   decoding   a field of the wrong JSON type: 400 BadRequest "<Kind> in version "v1" cannot be handled
//              as a <Kind>: json: cannot unmarshal <type> into Go struct field ..." (null is an absent field)
//   namespace  metadata.namespace other than the URL's: 400 BadRequest
//   validation 422 Invalid, message `<Kind>[.<group>] "<name>" is invalid: <field>: <detail>` (several in [...]),
//              details { name, group, kind, causes: [{ reason, message, field }] }:
//     metadata.name  required; ServiceAccount and Secret: a DNS-1123 subdomain; Role and RoleBinding: a path
//                    segment (not "." or "..", no "/" or "%")
//     Role           rules[i]: verbs at least one; apiGroups and resources at least one each; no
//                    nonResourceURLs (namespaced); resourceNames strings
//     RoleBinding    roleRef.apiGroup rbac.authorization.k8s.io, roleRef.kind Role or ClusterRole,
//                    roleRef.name required (a path segment); subjects[i]: name required, kind
//                    ServiceAccount (name a DNS-1123 subdomain, apiGroup "") | User | Group (apiGroup
//                    rbac.authorization.k8s.io, the default when empty)
//
// Two rules are the fake's own, stricter than the API server (which stores any verb, and takes a
// ServiceAccount subject without a namespace in a RoleBinding as the binding's namespace): a verb must
// be one Kubernetes defines or "*" (a misspelt verb grants nothing), and a ServiceAccount subject must
// name its namespace (tvm binds service accounts of another namespace; an omitted one would bind the
// wrong account). Both answer 422 like the rules above.

export type Resource = 'serviceaccounts' | 'secrets' | 'roles' | 'rolebindings';

export interface Cause {
  reason: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported';
  message: string;
  field: string;
}

export interface StatusAnswer {
  code: 400 | 422;
  body: Record<string, unknown>;
}

const RBAC_GROUP = 'rbac.authorization.k8s.io';
const KIND: Record<Resource, { kind: string; group: string }> = {
  serviceaccounts: { kind: 'ServiceAccount', group: '' },
  secrets: { kind: 'Secret', group: '' },
  roles: { kind: 'Role', group: RBAC_GROUP },
  rolebindings: { kind: 'RoleBinding', group: RBAC_GROUP },
};

/** Verbs Kubernetes defines (API verbs and the RBAC/authorization special verbs). */
export const KNOWN_VERBS = ['*', 'get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'proxy', 'bind', 'escalate', 'impersonate', 'use', 'approve', 'sign', 'attest'];

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_MESSAGE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/** Go's %q of a value, as field errors print it. */
function quote(value: unknown): string {
  if (Array.isArray(value)) return `[]string{${value.map((v) => JSON.stringify(v)).join(', ')}}`;
  return JSON.stringify(value);
}

const required = (field: string, detail = ''): Cause => ({ reason: 'FieldValueRequired', message: detail ? `Required value: ${detail}` : 'Required value', field });
const invalid = (field: string, value: unknown, detail: string): Cause => ({ reason: 'FieldValueInvalid', message: `Invalid value: ${quote(value)}: ${detail}`, field });
const notSupported = (field: string, value: unknown, supported: string[]): Cause => ({
  reason: 'FieldValueNotSupported',
  message: `Unsupported value: ${quote(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
  field,
});

function subdomainErrors(name: string): string[] {
  const out: string[] = [];
  if (name.length > 253) out.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(name)) out.push(DNS1123_MESSAGE);
  return out;
}

function pathSegmentErrors(name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`];
  const out: string[] = [];
  for (const c of ['/', '%']) if (name.includes(c)) out.push(`may not contain '${c}'`);
  return out;
}

// ---- decoding: the JSON types of the Go structs ----

type Shape = 'string' | 'strings' | 'stringMap' | 'object' | { list: Record<string, Shape> } | { object: Record<string, Shape> };

const METADATA: Shape = { object: { name: 'string', namespace: 'string', generateName: 'string', labels: 'stringMap', annotations: 'stringMap' } };
const SHAPES: Record<Resource, Record<string, Shape>> = {
  serviceaccounts: { apiVersion: 'string', kind: 'string', metadata: METADATA },
  secrets: { apiVersion: 'string', kind: 'string', metadata: METADATA, type: 'string', data: 'stringMap', stringData: 'stringMap' },
  roles: {
    apiVersion: 'string',
    kind: 'string',
    metadata: METADATA,
    rules: { list: { apiGroups: 'strings', resources: 'strings', verbs: 'strings', resourceNames: 'strings', nonResourceURLs: 'strings' } },
  },
  rolebindings: {
    apiVersion: 'string',
    kind: 'string',
    metadata: METADATA,
    roleRef: { object: { apiGroup: 'string', kind: 'string', name: 'string' } },
    subjects: { list: { kind: 'string', apiGroup: 'string', name: 'string', namespace: 'string' } },
  },
};

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v === 'boolean' ? 'bool' : (typeof v as string);
}

/** The first JSON type mismatch: [json type, Go field path, Go type], or null. */
function typeMismatch(value: unknown, shape: Shape, path: string): [string, string, string] | null {
  if (value === null || value === undefined) return null;
  const isObject = typeof value === 'object' && !Array.isArray(value);
  if (shape === 'string') return typeof value === 'string' ? null : [jsonType(value), path, 'string'];
  if (shape === 'strings') {
    if (!Array.isArray(value)) return [jsonType(value), path, '[]string'];
    const bad = value.find((v) => typeof v !== 'string');
    return bad === undefined ? null : [jsonType(bad), path, 'string'];
  }
  if (shape === 'stringMap') {
    if (!isObject) return [jsonType(value), path, 'map[string]string'];
    const bad = Object.values(value as object).find((v) => typeof v !== 'string');
    return bad === undefined ? null : [jsonType(bad), path, 'string'];
  }
  if (shape === 'object') return isObject ? null : [jsonType(value), path, 'object'];
  if ('list' in shape) {
    if (!Array.isArray(value)) return [jsonType(value), path, '[]object'];
    for (const item of value) {
      const m = typeMismatch(item, { object: shape.list }, path);
      if (m) return m;
    }
    return null;
  }
  if (!isObject) return [jsonType(value), path, 'object'];
  for (const [k, s] of Object.entries(shape.object)) {
    const m = typeMismatch((value as Record<string, unknown>)[k], s, `${path}.${k}`);
    if (m) return m;
  }
  return null;
}

// ---- validation ----

const strings = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

function roleErrors(body: Record<string, unknown>): Cause[] {
  const errs: Cause[] = [];
  (Array.isArray(body.rules) ? (body.rules as Array<Record<string, unknown> | null>) : []).forEach((raw, i) => {
    const rule = raw ?? {};
    const at = `rules[${i}]`;
    const verbs = strings(rule.verbs);
    if (verbs.length === 0) errs.push(required(`${at}.verbs`, 'verbs must contain at least one value'));
    verbs.forEach((v, j) => {
      if (!KNOWN_VERBS.includes(v)) errs.push(notSupported(`${at}.verbs[${j}]`, v, KNOWN_VERBS));
    });
    if (strings(rule.nonResourceURLs).length > 0) {
      errs.push(invalid(`${at}.nonResourceURLs`, rule.nonResourceURLs, 'namespaced rules cannot apply to non-resource URLs'));
      return;
    }
    if (strings(rule.apiGroups).length === 0) errs.push(required(`${at}.apiGroups`, 'resource rules must supply at least one api group'));
    if (strings(rule.resources).length === 0) errs.push(required(`${at}.resources`, 'resource rules must supply at least one resource'));
  });
  return errs;
}

function roleBindingErrors(body: Record<string, unknown>): Cause[] {
  const errs: Cause[] = [];
  const ref = (body.roleRef ?? {}) as Record<string, unknown>;
  if (text(ref.apiGroup) !== RBAC_GROUP) errs.push(notSupported('roleRef.apiGroup', text(ref.apiGroup), [RBAC_GROUP]));
  if (!['Role', 'ClusterRole'].includes(text(ref.kind))) errs.push(notSupported('roleRef.kind', text(ref.kind), ['Role', 'ClusterRole']));
  const refName = text(ref.name);
  if (refName === '') errs.push(required('roleRef.name'));
  else for (const msg of pathSegmentErrors(refName)) errs.push(invalid('roleRef.name', refName, msg));
  (Array.isArray(body.subjects) ? (body.subjects as Array<Record<string, unknown> | null>) : []).forEach((raw, i) => {
    const s = raw ?? {};
    const at = `subjects[${i}]`;
    const name = text(s.name);
    const kind = text(s.kind);
    // Defaulting (SetDefaults_Subject) runs before validation.
    const apiGroup = text(s.apiGroup) !== '' ? text(s.apiGroup) : kind === 'User' || kind === 'Group' ? RBAC_GROUP : '';
    if (name === '') errs.push(required(`${at}.name`));
    if (kind === 'ServiceAccount') {
      if (name !== '') for (const msg of subdomainErrors(name)) errs.push(invalid(`${at}.name`, name, msg));
      if (apiGroup !== '') errs.push(notSupported(`${at}.apiGroup`, apiGroup, ['']));
      if (text(s.namespace) === '') errs.push(required(`${at}.namespace`));
    } else if (kind === 'User' || kind === 'Group') {
      if (apiGroup !== RBAC_GROUP) errs.push(notSupported(`${at}.apiGroup`, apiGroup, [RBAC_GROUP]));
    } else {
      errs.push(notSupported(`${at}.kind`, kind, ['ServiceAccount', 'User', 'Group']));
    }
  });
  return errs;
}

function badRequest(message: string): StatusAnswer {
  return { code: 400, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 } };
}

/** The API server's answer to creating `body` as `resource` in `namespace`, or null when it would store it. */
export function validateCreate(resource: Resource, namespace: string, body: unknown): StatusAnswer | null {
  const { kind, group } = KIND[resource];
  const version = group === '' ? 'v1' : `${group}/v1`;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return badRequest(`${kind} in version "${version}" cannot be handled as a ${kind}: json: cannot unmarshal ${jsonType(body)} into Go value of type ${group === '' ? 'core' : 'rbac'}.${kind}`);
  }
  const mismatch = typeMismatch(body, { object: SHAPES[resource] }, kind);
  if (mismatch) {
    const [type, path, goType] = mismatch;
    return badRequest(`${kind} in version "${version}" cannot be handled as a ${kind}: json: cannot unmarshal ${type} into Go struct field ${path} of type ${goType}`);
  }
  const o = body as Record<string, unknown>;
  const meta = (o.metadata ?? {}) as Record<string, unknown>;
  if (text(meta.namespace) !== '' && meta.namespace !== namespace) {
    return badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  const name = text(meta.name);
  const errs: Cause[] = [];
  if (name === '') errs.push(required('metadata.name', 'name or generateName is required'));
  else {
    const nameErrors = resource === 'serviceaccounts' || resource === 'secrets' ? subdomainErrors(name) : pathSegmentErrors(name);
    for (const msg of nameErrors) errs.push(invalid('metadata.name', name, msg));
  }
  if (resource === 'roles') errs.push(...roleErrors(o));
  if (resource === 'rolebindings') errs.push(...roleBindingErrors(o));
  if (errs.length === 0) return null;
  const each = errs.map((e) => `${e.field}: ${e.message}`);
  const qualified = group === '' ? kind : `${kind}.${group}`;
  return {
    code: 422,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `${qualified} ${JSON.stringify(name)} is invalid: ${each.length === 1 ? each[0] : `[${each.join(', ')}]`}`,
      reason: 'Invalid',
      details: { name, ...(group === '' ? {} : { group }), kind, causes: errs },
      code: 422,
    },
  };
}
