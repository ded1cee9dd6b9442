// k8s:// scopes -> RBAC Role rules, one Role per namespace (pure).
//
// Pattern: k8s://<namespace>/<resource>[.<group>][/<name>[/<subresource>]]
//   <namespace>    a DNS-1123 label, literal (no wildcard).
//   <resource>     the plural resource name as RBAC spells it (pods, configmaps,
//                  deployments.apps, ingresses.networking.k8s.io): the part before the
//                  first "." is the resource, the rest its API group. No "." means the
//                  core group ("") as in kubectl create role --resource=pods; tvm does
//                  no discovery, so a well-known resource of another group written
//                  without it (deployments, jobs, ...) is refused with the right name.
//   <name>         one object's name (RBAC resourceNames), or "*" for every name
//                  (the same rules as no name).
//   <subresource>  only log (read), status and scale (read and write), after a name or "*".
//
//   scope                              Role rule in <ns> (apiGroups [group], resources [...])
//   read  k8s://ns/pods                pods               get, list, watch
//   read  k8s://ns/pods/*              pods               get, list, watch
//   read  k8s://ns/pods/web-0          pods  names [web-0] get, list, watch (list and watch
//                                                         only with fieldSelector=metadata.name=web-0,
//                                                         which the API server turns into the name)
//   write k8s://ns/configmaps          configmaps         create, update, patch, delete
//   write k8s://ns/configmaps/app      configmaps names [app] update, patch, delete
//                                                         (no create: RBAC cannot restrict create by
//                                                         name, the name is in the body; a named write
//                                                         modifies or deletes an existing object.
//                                                         Fewer verbs, never more.)
//   read  k8s://ns/pods/*/log          pods/log           get
//   read  k8s://ns/pods/web-0/log      pods/log names [web-0] get
//   read  k8s://ns/deployments.apps/*/status   deployments/status (apps)   get
//   write k8s://ns/deployments.apps/web/scale  deployments/scale (apps) names [web]  update, patch
//
// Rules with the same group, resource and verbs are merged (their names joined;
// a rule for every name absorbs the named ones): a union of the scopes, so still exact.
// Neither write nor read gives deletecollection, and no rule uses "*".
//
// Refused (never widened): a pattern without a namespace and resource
// (k8s://ns, cluster-scoped resources: a Role is namespaced, ClusterRoles are
// out of scope), wildcards in the namespace, k8s://ns/* (RBAC's "*" resource also
// matches every subresource, pods/exec, serviceaccounts/token and the like, which
// the pattern does not name), "**" anywhere, partial wildcards (pod*, web-*: RBAC
// matches whole names only), other subresources (exec, attach, portforward, proxy,
// eviction, token, ...: actions, not read or write of a resource), write of log,
// and names RBAC or the API server would read differently (".", "..", "%", "/").

import { IamFieldError } from '../errors.ts';
import { forEachScope } from '../scopes.ts';
import type { Scopes } from '../types.ts';
import { labelProblem, subdomainProblem, MAX_SUBDOMAIN_LENGTH } from './target.ts';

export const K8S_SCHEME = 'k8s';

export const READ_VERBS: readonly string[] = ['get', 'list', 'watch'];
export const WRITE_VERBS: readonly string[] = ['create', 'update', 'patch', 'delete'];
/** A named write: create cannot be restricted by resourceNames. */
export const NAMED_WRITE_VERBS: readonly string[] = ['update', 'patch', 'delete'];

/** The subresources a scope may name, with the verbs read and write give (null: refused). */
export const SUBRESOURCE_VERBS: Readonly<Record<string, { read: readonly string[]; write: readonly string[] | null }>> = {
  log: { read: ['get'], write: null },
  status: { read: ['get'], write: ['update', 'patch'] },
  scale: { read: ['get'], write: ['update', 'patch'] },
};

/** Well-known resources outside the core group: written without their group they would name nothing. */
export const WELL_KNOWN_GROUPS: Readonly<Record<string, string>> = {
  deployments: 'apps',
  replicasets: 'apps',
  statefulsets: 'apps',
  daemonsets: 'apps',
  controllerrevisions: 'apps',
  jobs: 'batch',
  cronjobs: 'batch',
  ingresses: 'networking.k8s.io',
  networkpolicies: 'networking.k8s.io',
  roles: 'rbac.authorization.k8s.io',
  rolebindings: 'rbac.authorization.k8s.io',
  horizontalpodautoscalers: 'autoscaling',
  poddisruptionbudgets: 'policy',
  leases: 'coordination.k8s.io',
  endpointslices: 'discovery.k8s.io',
};

/** Well-known cluster-scoped resources: a Role's rule for them grants nothing. */
export const CLUSTER_SCOPED: readonly string[] = [
  'nodes',
  'namespaces',
  'persistentvolumes',
  'componentstatuses',
  'clusterroles.rbac.authorization.k8s.io',
  'clusterrolebindings.rbac.authorization.k8s.io',
  'storageclasses.storage.k8s.io',
  'csidrivers.storage.k8s.io',
  'csinodes.storage.k8s.io',
  'volumeattachments.storage.k8s.io',
  'customresourcedefinitions.apiextensions.k8s.io',
  'apiservices.apiregistration.k8s.io',
  'priorityclasses.scheduling.k8s.io',
  'runtimeclasses.node.k8s.io',
  'ingressclasses.networking.k8s.io',
  'mutatingwebhookconfigurations.admissionregistration.k8s.io',
  'validatingwebhookconfigurations.admissionregistration.k8s.io',
  'certificatesigningrequests.certificates.k8s.io',
];

/** A Role rule (rbac.authorization.k8s.io/v1 PolicyRule), fields in the API's order. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** One namespace's part: the rules of its Role. */
export interface NamespaceRules {
  namespace: string;
  rules: PolicyRule[];
}

/** What one k8s:// pattern names. */
export interface K8sScope {
  namespace: string;
  /** The API group, "" for core. */
  group: string;
  resource: string;
  /** Null: every object. */
  name: string | null;
  subresource: string | null;
}

const RESOURCE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_NAME_LENGTH = MAX_SUBDOMAIN_LENGTH;

function wildcardProblem(segment: string, what: string): string | null {
  if (segment.includes('**')) return `"**" in the ${what}: RBAC has no rule spanning path segments`;
  if (segment.includes('*')) return `a partial wildcard in the ${what} ("${segment}"): RBAC matches whole names only`;
  return null;
}

/** Parses a k8s:// pattern, or returns why a Role cannot express it exactly. */
export function parseK8sPattern(pattern: string): K8sScope | string {
  const path = pattern.slice(`${K8S_SCHEME}://`.length);
  const segs = path.split('/');
  const [namespace, resourceSeg, nameSeg, subSeg] = segs;
  if (namespace === '') {
    return 'names no namespace: cluster-scoped resources are refused (a Role is namespaced; expected k8s://<namespace>/<resource>[/<name>])';
  }
  if (namespace.includes('*')) return 'wildcards in the namespace are refused: a Role is granted in one named namespace';
  const nsBad = labelProblem(namespace);
  if (nsBad) return `the namespace ${JSON.stringify(namespace)} ${nsBad}`;
  if (resourceSeg === undefined || resourceSeg === '') {
    return `names the namespace, not a resource: Role rules name resources; write k8s://${namespace}/<resource> (for example pods, configmaps, deployments.apps)`;
  }
  if (resourceSeg === '*') {
    return 'RBAC\'s "*" resource also matches every subresource (pods/exec, serviceaccounts/token, ...) and every API group, which this pattern does not name; list the resources';
  }
  const resWild = wildcardProblem(resourceSeg, 'resource');
  if (resWild) return resWild;
  const dot = resourceSeg.indexOf('.');
  const resource = dot < 0 ? resourceSeg : resourceSeg.slice(0, dot);
  const group = dot < 0 ? '' : resourceSeg.slice(dot + 1);
  if (!RESOURCE.test(resource) || resource.length > 63) {
    return `${JSON.stringify(resource)} is not a resource name (the lowercase plural RBAC uses, for example pods or deployments.apps)`;
  }
  if (group !== '') {
    const bad = subdomainProblem(group);
    if (bad) return `the API group ${JSON.stringify(group)} ${bad}`;
  }
  if (CLUSTER_SCOPED.includes(resourceSeg)) {
    return `${resourceSeg} is cluster-scoped: a Role cannot grant it (ClusterRoles are out of scope)`;
  }
  if (group === '' && WELL_KNOWN_GROUPS[resource]) {
    return `${resource} is not in the core API group: write ${resource}.${WELL_KNOWN_GROUPS[resource]} (without a group the rule would name nothing)`;
  }
  if (segs.length > 4) return 'too many segments: expected k8s://<namespace>/<resource>[/<name>[/<subresource>]]';
  let name: string | null = null;
  if (nameSeg !== undefined) {
    if (nameSeg === '') return 'an empty name: write the object\'s name, or drop the trailing "/" for every object';
    if (nameSeg !== '*') {
      const nameWild = wildcardProblem(nameSeg, 'name');
      if (nameWild) return nameWild;
      if (nameSeg === '.' || nameSeg === '..' || nameSeg.includes('%')) {
        return `${JSON.stringify(nameSeg)} is not an object name the API server accepts in a path`;
      }
      if (nameSeg.length > MAX_NAME_LENGTH) return `an object name is at most ${MAX_NAME_LENGTH} characters`;
      name = nameSeg;
    }
  }
  let subresource: string | null = null;
  if (subSeg !== undefined) {
    if (subSeg.includes('*')) return 'wildcard subresources are refused (exec, attach, portforward and token are among them)';
    if (!SUBRESOURCE_VERBS[subSeg]) {
      return `the subresource ${JSON.stringify(subSeg)} is refused: only ${Object.keys(SUBRESOURCE_VERBS).join(', ')} map to read or write (exec, attach, portforward, proxy, eviction and token are actions)`;
    }
    subresource = subSeg;
  }
  return { namespace, group, resource, name, subresource };
}

/** The verbs an access gives on a parsed scope, or why it is refused. */
export function verbsFor(access: 'read' | 'write', s: K8sScope): readonly string[] | string {
  if (s.subresource !== null) {
    const v = SUBRESOURCE_VERBS[s.subresource][access];
    return v ?? `the ${s.subresource} subresource is read-only: it cannot be written`;
  }
  if (access === 'read') return READ_VERBS;
  return s.name === null ? WRITE_VERBS : NAMED_WRITE_VERBS;
}

export function isK8sPattern(pattern: string): boolean {
  return pattern.startsWith(`${K8S_SCHEME}://`);
}

export function hasK8sScope(scopes: Scopes): boolean {
  return scopes.read.some(isK8sPattern) || scopes.write.some(isK8sPattern);
}

interface RuleGroup {
  group: string;
  resource: string;
  verbs: readonly string[];
  /** Null: every object. */
  names: string[] | null;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The Role rules for the k8s:// patterns of `scopes` (others are ignored), one
 * entry per namespace, sorted by namespace; rules sorted by group, resource and
 * verbs. Throws IamFieldError naming `read[i]`/`write[i]` and the pattern when
 * one cannot be expressed exactly. No entry means "no k8s:// scope".
 */
export function roleRulesFor(scopes: Scopes): NamespaceRules[] {
  const byNs = new Map<string, Map<string, RuleGroup>>();
  forEachScope(scopes, isK8sPattern, parseK8sPattern, (access, parsed, field, pattern) => {
    const verbs = verbsFor(access, parsed);
    if (typeof verbs === 'string') throw new IamFieldError(field, `${pattern}: ${verbs}`);
    const resource = parsed.subresource === null ? parsed.resource : `${parsed.resource}/${parsed.subresource}`;
    const groups = byNs.get(parsed.namespace) ?? new Map<string, RuleGroup>();
    byNs.set(parsed.namespace, groups);
    const key = `${parsed.group} ${resource} ${verbs.join(',')}`;
    const g = groups.get(key) ?? { group: parsed.group, resource, verbs, names: [] };
    groups.set(key, g);
    if (parsed.name === null) g.names = null;
    else if (g.names !== null && !g.names.includes(parsed.name)) g.names.push(parsed.name);
  });
  return [...byNs.entries()]
    .sort(([a], [b]) => compare(a, b))
    .map(([namespace, groups]) => ({
      namespace,
      rules: [...groups.values()]
        .sort((a, b) => compare(a.group, b.group) || compare(a.resource, b.resource) || compare(a.verbs.join(','), b.verbs.join(',')))
        .map((g) => {
          const rule: PolicyRule = { apiGroups: [g.group], resources: [g.resource], verbs: [...g.verbs] };
          if (g.names !== null) rule.resourceNames = [...g.names].sort(compare);
          return rule;
        }),
    }));
}
