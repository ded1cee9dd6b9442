// The Kubernetes CloudProvider, with @kubernetes/client-node.
//
// plan (pure, from grantId): every object is named tvm-<grant uuid> (a DNS-1123
// label under 63 characters) and labelled app.kubernetes.io/managed-by=tvm,
// tvm.dev/grant=<grant uuid> (annotations carry the tvm role and subject):
//   - the token's anchor, in the target's namespace: a ServiceAccount per grant
//     (no service_account in the target: the default, and exact, since its only
//     permissions are this grant's), or, with a shared service_account, a Secret
//     (type Opaque, no data) the tokens are bound to (boundObjectRef);
//   - per namespace the scopes name: a Role with the rules of scopes.ts and a
//     RoleBinding of it to the service account.
// A shared service account holds the union of all its bindings: its own, and those
// of every other grant on it at the same time, so a second concurrent grant with
// other scopes widens the first. The per-grant account is the default and is
// recommended; the shared one is for clusters where tvm may not create accounts.
//
// issue: creates the anchor, the Roles and RoleBindings (a 409 on create is
// adopted when the existing object carries this grant's label and the same rules
// or binding: an idempotent re-run after a crash; otherwise ERR_CLOUD_DENIED),
// then a TokenRequest (POST .../serviceaccounts/<sa>/token) with
//   expirationSeconds = clamp(leaseExpiresAt - now, 600, leaseMaxExpiresAt - now) in whole seconds,
//   audiences         = the target's, or [] (the API server's own audiences),
//   boundObjectRef    = the per-grant Secret (shared account only).
// A lease ending in under 600 s gets no token (TokenRequest's minimum): issue refuses
// with ERR_CLOUD_LIMIT before any change, renew keeps the current token. A token the
// API server made live more than a minute longer than asked (and past the lease's
// hard end) is refused with ERR_CLOUD_LIMIT.
// On failure issue leaves what it created to teardown(plan, null, 'rollback').
//
// renew: a new TokenRequest on the same objects; the previous token lapses at its own
// expiry (never after the lease's hard end) or at teardown.
//
// teardown (revoke and rollback, idempotent; 404 is success): deletes the anchor first
// (a deleted ServiceAccount or bound Secret invalidates every token minted for or bound
// to it: the API server checks that they still exist with the same uid), then every
// RoleBinding and Role. Every step is tried; failures are reported together (retryable
// when any was). Nothing is deferred: cleanupAt is null.
//
// Credential: token, server, namespace, service_account, ca (target's ca_cert),
// expires_at (the TokenRequest status' expirationTimestamp), kubeconfig (a ready
// kubeconfig, JSON, which kubectl reads: `kubectl --kubeconfig <file>`), and env
// KUBE_TOKEN, KUBE_SERVER, KUBE_NAMESPACE (+ KUBE_CA_CERT, PEM, when a CA is known):
//   kubectl --server "$KUBE_SERVER" --token "$KUBE_TOKEN" -n "$KUBE_NAMESPACE" ...
//
// The broker's own credentials: one entry of `clusters` (server, bearer token, CA),
// or a kubeconfig (`kubeconfigPath` or `kubeConfig`: every context's cluster and user,
// the current context first). A target's api_server must equal a configured cluster's
// server (compared normalised); otherwise ERR_CLOUD_DENIED. The broker needs, in the
// target's namespace: create/get/delete on serviceaccounts (or secrets), create on
// serviceaccounts/token; in every scope's namespace: create/get/delete on roles and
// rolebindings, and (RBAC's escalation check) every permission it grants, or the
// escalate and bind verbs.

import { createHash } from 'node:crypto';
import { ApiException, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type Cluster, type User } from '@kubernetes/client-node';
import { CloudError, IamFieldError, type CloudErrorCode } from '../errors.ts';
import type { CloudCredential, CloudGrant, CloudPlan, CloudProvider, GrantRequest, TeardownResult } from '../types.ts';
import { kubernetesModule, MAX_TOKEN_EXPIRATION_S, MIN_TOKEN_EXPIRATION_S } from './module.ts';
import { roleRulesFor, type PolicyRule } from './scopes.ts';
import { normaliseServer, type KubernetesTarget } from './target.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const GRANT_LABEL = 'tvm.dev/grant';
export const ROLE_ANNOTATION = 'tvm.dev/role';
export const SUBJECT_ANNOTATION = 'tvm.dev/subject';
/** How much longer than asked a token may live (clock skew between broker and API server) before it is refused. */
export const EXTENSION_TOLERANCE_MS = 60_000;

export interface KubernetesClusterCredentials {
  /** The API server URL, as targets' api_server name it. */
  server: string;
  /** The broker's bearer token for this cluster. Secret. */
  token?: string;
  /** Client certificate and key (PEM) instead of, or beside, a token. Secret (the key). */
  clientCertificate?: string;
  clientKey?: string;
  /** The API server's CA (PEM); default: the target's ca_cert, else the system roots. */
  caCert?: string;
  /** Tests only: do not verify the server's certificate. */
  skipTlsVerify?: boolean;
}

export interface KubernetesProviderOptions {
  /** Explicit clusters with the broker's credentials. */
  clusters?: KubernetesClusterCredentials[];
  /** A kubeconfig file: every context's cluster and user (the current context wins a tie). */
  kubeconfigPath?: string;
  /** A loaded KubeConfig, likewise. */
  kubeConfig?: KubeConfig;
  /** Tests only: skip TLS verification for every cluster. */
  skipTlsVerify?: boolean;
}

export interface KubernetesRolePlan {
  namespace: string;
  /** The Role's and the RoleBinding's name. */
  name: string;
  rules: PolicyRule[];
}

export interface KubernetesPlan extends CloudPlan {
  cloud: 'kubernetes';
  grantId: string;
  apiServer: string;
  /** The target's CA (PEM), so teardown reaches the server with the same trust. Public. */
  caCert: string | null;
  /** The service account's namespace. */
  namespace: string;
  serviceAccount: string;
  /** True: the account is this grant's (created, deleted on teardown). */
  serviceAccountCreated: boolean;
  /** Shared account: the per-grant Secret the tokens are bound to. */
  boundSecret: string | null;
  roles: KubernetesRolePlan[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  audiences: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The grant's id as used in names and the label: the UUID lowercased, else a hash of it. */
export function grantKey(grantId: string): string {
  const lower = grantId.toLowerCase();
  return UUID.test(lower) ? lower : createHash('sha256').update(grantId).digest('hex').slice(0, 32);
}

/** The name of every object of a grant: tvm-<grant key> (at most 40 characters). */
export function grantObjectName(grantId: string): string {
  return `tvm-${grantKey(grantId)}`;
}

/** TokenRequest's expirationSeconds for a request, or null when the lease ends in under 600 s. */
export function expirationSecondsFor(req: Pick<GrantRequest<unknown>, 'now' | 'leaseExpiresAt' | 'leaseMaxExpiresAt'>): number | null {
  const maxS = Math.min(Math.floor((req.leaseMaxExpiresAt - req.now) / 1000), MAX_TOKEN_EXPIRATION_S);
  if (maxS < MIN_TOKEN_EXPIRATION_S) return null;
  const wantS = Math.ceil((req.leaseExpiresAt - req.now) / 1000);
  return Math.min(Math.max(wantS, MIN_TOKEN_EXPIRATION_S), maxS);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('[redacted]');
  return out.length > 300 ? `${out.slice(0, 300)}...` : out;
}

/** The API server's words (a Status' reason and message), if the body is one. */
function statusText(body: unknown): string {
  let b = body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return '';
    }
  }
  if (!b || typeof b !== 'object') return '';
  const s = b as Record<string, unknown>;
  return [s.reason, s.message].filter((x) => typeof x === 'string' && x !== '').join(': ');
}

/** The HTTP status of a client failure, undefined when no answer came. */
export function httpStatusOf(err: unknown): number | undefined {
  return err instanceof ApiException && typeof err.code === 'number' ? err.code : undefined;
}

/** Maps a client failure of `step` to CloudError; never carries a token (nor the client's error as cause: its message holds headers). */
export function toCloudError(step: string, err: unknown, secrets: string[]): CloudError {
  if (err instanceof CloudError) return err;
  const status = httpStatusOf(err);
  let code: CloudErrorCode;
  let how: string;
  if (status === undefined) {
    code = 'ERR_CLOUD_UNAVAILABLE';
    const c = (err as { code?: unknown })?.code;
    how = `no answer${typeof c === 'string' ? ` (${c})` : ''}`;
  } else {
    code = status === 429 || status >= 500 ? 'ERR_CLOUD_UNAVAILABLE' : 'ERR_CLOUD_DENIED';
    how = `HTTP ${status}`;
  }
  const what = status === undefined ? '' : redact(statusText((err as ApiException<unknown>).body), secrets);
  return new CloudError('kubernetes', code, `${step} failed: ${how}${what ? `: ${what}` : ''}`);
}

interface Clients {
  core: CoreV1Api;
  rbac: RbacAuthorizationV1Api;
}

interface ClusterEntry {
  cluster: Cluster;
  user: User;
  secrets: string[];
}

function base64(pem: string): string {
  return Buffer.from(pem, 'utf8').toString('base64');
}

function ruleKey(r: { apiGroups?: string[]; resources?: string[]; verbs?: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }): string {
  return JSON.stringify([r.apiGroups ?? [], r.resources ?? [], r.verbs ?? [], r.resourceNames ?? [], r.nonResourceURLs ?? []]);
}

function sameRules(a: PolicyRule[], b: Array<Parameters<typeof ruleKey>[0]> | undefined): boolean {
  const x = a.map(ruleKey);
  const y = (b ?? []).map(ruleKey);
  return x.length === y.length && x.every((k, i) => k === y[i]);
}

export function createKubernetesProvider(options: KubernetesProviderOptions = {}): CloudProvider<KubernetesTarget> {
  const entries = new Map<string, ClusterEntry>();
  const addEntry = (cluster: Cluster, user: User, secrets: string[]) => {
    const server = normaliseServer(cluster.server);
    if (server !== null && !entries.has(server)) entries.set(server, { cluster, user, secrets });
  };
  (options.clusters ?? []).forEach((c, i) => {
    addEntry(
      {
        name: `tvm-cluster-${i}`,
        server: c.server,
        caData: c.caCert ? base64(c.caCert) : undefined,
        skipTLSVerify: c.skipTlsVerify ?? false,
      },
      {
        name: `tvm-user-${i}`,
        token: c.token,
        certData: c.clientCertificate ? base64(c.clientCertificate) : undefined,
        keyData: c.clientKey ? base64(c.clientKey) : undefined,
      },
      [c.token ?? ''],
    );
  });
  let kc = options.kubeConfig;
  if (!kc && options.kubeconfigPath) {
    kc = new KubeConfig();
    kc.loadFromFile(options.kubeconfigPath);
  }
  if (kc) {
    const contexts = kc.getContexts();
    const current = kc.getCurrentContext();
    for (const ctx of [...contexts.filter((c) => c.name === current), ...contexts.filter((c) => c.name !== current)]) {
      const cluster = kc.getCluster(ctx.cluster);
      const user = kc.getUser(ctx.user);
      if (cluster && user) addEntry(cluster, user, [user.token ?? '']);
    }
  }
  const clientCache = new Map<string, Clients>();

  const clientsFor = (p: KubernetesPlan): { clients: Clients; secrets: string[] } => {
    const entry = entries.get(p.apiServer);
    if (!entry) {
      throw new CloudError('kubernetes', 'ERR_CLOUD_DENIED', `the broker has no credentials for the API server ${p.apiServer} (configure it in clusters or the kubeconfig)`);
    }
    const useTargetCa = !entry.cluster.caData && !entry.cluster.caFile && p.caCert !== null;
    const cacheKey = `${p.apiServer}\n${useTargetCa ? p.caCert : ''}`;
    let clients = clientCache.get(cacheKey);
    if (!clients) {
      const config = new KubeConfig();
      const plainHttp = entry.cluster.server.startsWith('http:');
      config.loadFromClusterAndUser(
        {
          ...entry.cluster,
          // Normalised: a kubeconfig's trailing "/" would make every path start with "//".
          server: p.apiServer,
          caData: useTargetCa ? base64(p.caCert as string) : entry.cluster.caData,
          // The client refuses http unless skipTLSVerify is set; there is no TLS to verify on loopback http.
          skipTLSVerify: plainHttp || options.skipTlsVerify === true || entry.cluster.skipTLSVerify,
        },
        entry.user,
      );
      clients = { core: config.makeApiClient(CoreV1Api), rbac: config.makeApiClient(RbacAuthorizationV1Api) };
      clientCache.set(cacheKey, clients);
    }
    return { clients, secrets: entry.secrets };
  };

  const plan = (req: GrantRequest<KubernetesTarget>): KubernetesPlan => {
    const perNamespace = roleRulesFor(req.scopes);
    if (perNamespace.length === 0) {
      throw new IamFieldError('read', 'the grant has no k8s:// scope, so a Kubernetes token would carry no permission');
    }
    const name = grantObjectName(req.grantId);
    const target = req.target;
    return {
      cloud: 'kubernetes',
      grantId: req.grantId,
      apiServer: target.api_server,
      caCert: target.ca_cert,
      namespace: target.namespace,
      serviceAccount: target.service_account ?? name,
      serviceAccountCreated: target.service_account === null,
      boundSecret: target.service_account === null ? null : name,
      roles: perNamespace.map((n) => ({ namespace: n.namespace, name, rules: n.rules })),
      labels: { [MANAGED_BY_LABEL]: 'tvm', [GRANT_LABEL]: grantKey(req.grantId) },
      annotations: { [ROLE_ANNOTATION]: req.role, [SUBJECT_ANNOTATION]: req.subject },
      audiences: [...target.audiences],
    };
  };

  /** Creates an object; a 409 is adopted when the existing one is this grant's (`problem` null), else refused. */
  async function createOrAdopt<T extends { metadata?: { uid?: string; labels?: Record<string, string> } }>(
    what: string,
    p: KubernetesPlan,
    secrets: string[],
    create: () => Promise<T>,
    read: () => Promise<T>,
    problem: (existing: T) => string | null,
  ): Promise<T> {
    try {
      return await create();
    } catch (err) {
      if (httpStatusOf(err) !== 409) throw toCloudError(`create ${what}`, err, secrets);
    }
    let existing: T;
    try {
      existing = await read();
    } catch (err) {
      throw toCloudError(`read ${what} (it already existed)`, err, secrets);
    }
    if (existing.metadata?.labels?.[GRANT_LABEL] !== p.labels[GRANT_LABEL]) {
      throw new CloudError('kubernetes', 'ERR_CLOUD_DENIED', `${what} already exists and is not this grant's (its ${GRANT_LABEL} label differs)`);
    }
    const bad = problem(existing);
    if (bad) throw new CloudError('kubernetes', 'ERR_CLOUD_DENIED', `${what} already exists with this grant's label but ${bad}`);
    return existing;
  }

  const meta = (p: KubernetesPlan, name: string, namespace: string) => ({ name, namespace, labels: { ...p.labels }, annotations: { ...p.annotations } });

  interface Anchor {
    kind: 'ServiceAccount' | 'Secret';
    name: string;
    uid: string;
  }

  const mint = async (req: GrantRequest<KubernetesTarget>, p: KubernetesPlan, anchor: Anchor, expS: number): Promise<CloudGrant> => {
    const { clients, secrets } = clientsFor(p);
    const spec: { audiences: string[]; expirationSeconds: number; boundObjectRef?: { apiVersion: string; kind: string; name: string; uid: string } } = {
      audiences: [...p.audiences],
      expirationSeconds: expS,
    };
    if (anchor.kind === 'Secret') spec.boundObjectRef = { apiVersion: 'v1', kind: 'Secret', name: anchor.name, uid: anchor.uid };
    let res;
    try {
      res = await clients.core.createNamespacedServiceAccountToken({
        name: p.serviceAccount,
        namespace: p.namespace,
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec },
      });
    } catch (err) {
      throw toCloudError(`TokenRequest for service account ${p.namespace}/${p.serviceAccount}`, err, secrets);
    }
    const token = res.status?.token;
    if (!token) throw new CloudError('kubernetes', 'ERR_CLOUD_DENIED', 'TokenRequest returned no token');
    const stated = res.status?.expirationTimestamp ? new Date(res.status.expirationTimestamp).getTime() : NaN;
    const expiresAt = Number.isFinite(stated) ? stated : req.now + expS * 1000;
    if (expiresAt > req.now + expS * 1000 + EXTENSION_TOLERANCE_MS && expiresAt > req.leaseMaxExpiresAt) {
      throw new CloudError(
        'kubernetes',
        'ERR_CLOUD_LIMIT',
        `the API server issued a token expiring at ${iso(expiresAt)} (asked for ${expS}s), after the lease's hard end ${iso(req.leaseMaxExpiresAt)}; it was not handed out and dies with the grant's objects`,
      );
    }
    const ca = req.target.ca_cert ?? p.caCert;
    const kubeconfig = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'tvm', cluster: { server: p.apiServer, ...(ca ? { 'certificate-authority-data': base64(ca) } : {}) } }],
      users: [{ name: 'tvm', user: { token } }],
      contexts: [{ name: 'tvm', context: { cluster: 'tvm', user: 'tvm', namespace: p.namespace } }],
      'current-context': 'tvm',
    };
    const env: Record<string, string> = { KUBE_TOKEN: token, KUBE_SERVER: p.apiServer, KUBE_NAMESPACE: p.namespace };
    if (ca) env.KUBE_CA_CERT = ca;
    const credential: CloudCredential = {
      cloud: 'kubernetes',
      token,
      server: p.apiServer,
      namespace: p.namespace,
      service_account: p.serviceAccount,
      expires_at: iso(expiresAt),
      kubeconfig: JSON.stringify(kubeconfig),
      env,
    };
    if (ca) credential.ca = ca;
    return {
      credential,
      expiresAt,
      state: { anchor: { ...anchor }, expiration_seconds: expS, expires_at: iso(expiresAt) },
    };
  };

  const issue = async (req: GrantRequest<KubernetesTarget>, plan0: CloudPlan): Promise<CloudGrant> => {
    const p = plan0 as KubernetesPlan;
    const expS = expirationSecondsFor(req);
    if (expS === null) {
      throw new CloudError(
        'kubernetes',
        'ERR_CLOUD_LIMIT',
        `the lease ends at ${iso(req.leaseMaxExpiresAt)}, in under Kubernetes' minimum token lifetime of ${MIN_TOKEN_EXPIRATION_S}s: a token would outlive it`,
      );
    }
    const { clients, secrets } = clientsFor(p);
    let anchor: Anchor;
    if (p.serviceAccountCreated) {
      const sa = await createOrAdopt(
        `ServiceAccount ${p.namespace}/${p.serviceAccount}`,
        p,
        secrets,
        () =>
          clients.core.createNamespacedServiceAccount({
            namespace: p.namespace,
            body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(p, p.serviceAccount, p.namespace), automountServiceAccountToken: false },
          }),
        () => clients.core.readNamespacedServiceAccount({ name: p.serviceAccount, namespace: p.namespace }),
        () => null,
      );
      anchor = { kind: 'ServiceAccount', name: p.serviceAccount, uid: sa.metadata?.uid ?? '' };
    } else {
      const name = p.boundSecret as string;
      const secret = await createOrAdopt(
        `Secret ${p.namespace}/${name}`,
        p,
        secrets,
        // Opaque and empty: a kubernetes.io/service-account-token Secret would be filled with a long-lived token.
        () => clients.core.createNamespacedSecret({ namespace: p.namespace, body: { apiVersion: 'v1', kind: 'Secret', metadata: meta(p, name, p.namespace), type: 'Opaque' } }),
        () => clients.core.readNamespacedSecret({ name, namespace: p.namespace }),
        (s) => ((s.type ?? 'Opaque') === 'Opaque' ? null : `its type is ${s.type}`),
      );
      anchor = { kind: 'Secret', name, uid: secret.metadata?.uid ?? '' };
    }
    const subjects = [{ kind: 'ServiceAccount', name: p.serviceAccount, namespace: p.namespace }];
    for (const r of p.roles) {
      await createOrAdopt(
        `Role ${r.namespace}/${r.name}`,
        p,
        secrets,
        () => clients.rbac.createNamespacedRole({ namespace: r.namespace, body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(p, r.name, r.namespace), rules: r.rules } }),
        () => clients.rbac.readNamespacedRole({ name: r.name, namespace: r.namespace }),
        (existing) => (sameRules(r.rules, existing.rules) ? null : 'different rules'),
      );
      const roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: r.name };
      await createOrAdopt(
        `RoleBinding ${r.namespace}/${r.name}`,
        p,
        secrets,
        () =>
          clients.rbac.createNamespacedRoleBinding({
            namespace: r.namespace,
            body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(p, r.name, r.namespace), roleRef, subjects },
          }),
        () => clients.rbac.readNamespacedRoleBinding({ name: r.name, namespace: r.namespace }),
        (existing) =>
          JSON.stringify([existing.roleRef?.kind, existing.roleRef?.name, (existing.subjects ?? []).map((s) => [s.kind, s.name, s.namespace])]) ===
          JSON.stringify([roleRef.kind, roleRef.name, subjects.map((s) => [s.kind, s.name, s.namespace])])
            ? null
            : 'a different role or subjects',
      );
    }
    return mint(req, p, anchor, expS);
  };

  const renew = async (req: GrantRequest<KubernetesTarget>, plan0: CloudPlan, current: CloudGrant): Promise<CloudGrant> => {
    const p = plan0 as KubernetesPlan;
    const expS = expirationSecondsFor(req);
    if (expS === null) return current;
    const saved = current.state.anchor as Anchor | undefined;
    const anchor: Anchor = saved ?? (p.serviceAccountCreated ? { kind: 'ServiceAccount', name: p.serviceAccount, uid: '' } : { kind: 'Secret', name: p.boundSecret as string, uid: '' });
    return mint(req, p, anchor, expS);
  };

  const teardown = async (plan0: CloudPlan, _grant: CloudGrant | null, reason: 'revoke' | 'rollback'): Promise<TeardownResult> => {
    const p = plan0 as KubernetesPlan;
    const { clients, secrets } = clientsFor(p);
    const steps: Array<[string, () => Promise<unknown>]> = [];
    if (p.serviceAccountCreated) {
      steps.push([`ServiceAccount ${p.namespace}/${p.serviceAccount}`, () => clients.core.deleteNamespacedServiceAccount({ name: p.serviceAccount, namespace: p.namespace })]);
    } else if (p.boundSecret) {
      const name = p.boundSecret;
      steps.push([`Secret ${p.namespace}/${name}`, () => clients.core.deleteNamespacedSecret({ name, namespace: p.namespace })]);
    }
    for (const r of p.roles) {
      steps.push([`RoleBinding ${r.namespace}/${r.name}`, () => clients.rbac.deleteNamespacedRoleBinding({ name: r.name, namespace: r.namespace })]);
    }
    for (const r of p.roles) {
      steps.push([`Role ${r.namespace}/${r.name}`, () => clients.rbac.deleteNamespacedRole({ name: r.name, namespace: r.namespace })]);
    }
    const deleted: string[] = [];
    const gone: string[] = [];
    const failed: CloudError[] = [];
    for (const [what, run] of steps) {
      try {
        await run();
        deleted.push(what);
      } catch (err) {
        if (httpStatusOf(err) === 404) gone.push(what);
        else failed.push(toCloudError(`delete ${what}`, err, secrets));
      }
    }
    if (failed.length > 0) {
      const code: CloudErrorCode = failed.some((e) => e.retryable) ? 'ERR_CLOUD_UNAVAILABLE' : 'ERR_CLOUD_DENIED';
      throw new CloudError('kubernetes', code, `${reason} incomplete: ${failed.map((e) => e.message.replace(/^kubernetes: /, '')).join('; ')}`);
    }
    const anchor = steps[0][0];
    const note = p.serviceAccountCreated ? 'its tokens are now invalid' : 'the tokens bound to it are now invalid';
    const parts = [];
    if (deleted.length > 0) parts.push(`deleted ${deleted.map((d) => (d === anchor ? `${d} (${note})` : d)).join(', ')}`);
    if (gone.length > 0) parts.push(`already gone: ${gone.join(', ')}`);
    return { detail: `${reason}: ${parts.join('; ')}`, cleanupAt: null };
  };

  return { cloud: 'kubernetes', module: kubernetesModule, plan, issue, renew, teardown };
}
