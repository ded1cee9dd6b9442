// A loopback fake of the few Kubernetes API paths the Kubernetes provider
// calls, at the HTTP level, so the real @kubernetes/client-node talks to it
// unchanged (plain http on 127.0.0.1: the client allows http when the cluster
// is marked skipTLSVerify, which the provider does for loopback http servers).
//
//   POST/GET/DELETE /api/v1/namespaces/<ns>/serviceaccounts[/<name>]
//   POST/GET/DELETE /api/v1/namespaces/<ns>/secrets[/<name>]
//   POST/GET/DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/<ns>/roles[/<name>]
//   POST/GET/DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/<ns>/rolebindings[/<name>]
//   POST            /api/v1/namespaces/<ns>/serviceaccounts/<name>/token   (TokenRequest)
//
// Use:
//   const fake = await startKubernetesFake({ brokerToken: 'broker-secret' });
//   createKubernetesProvider({ clusters: [{ server: fake.url, token: 'broker-secret' }] })
//   fake.requests          every request: method, path, resource, namespace, name, body (JSON), status
//   fake.state.objects     the stored objects by `<resource>/<namespace>/<name>` (with uid, labels)
//   fake.state.tokens      every minted token: service account (+uid), bound object (+uid), audiences, expiry
//   fake.isTokenValid(t)   what a TokenReview would say now: known, unexpired, its service
//                          account and bound object still exist with the uids it was minted for
//   fake.seed(resource, namespace, object)   put an object (an existing service account)
//   fake.failNext({ method?, resource? }, 503 | 'drop', times?, message?)
//   fake.reset()           forget requests, objects, tokens and pending failures
//   await fake.close()
// Usable from a child process too (import it, start it, print `fake.url`).
//
// As the API server: the bearer must be `brokerToken` (401 otherwise) when set;
// create answers 201, 409 AlreadyExists when the name is taken, 404 when the
// namespace is not in `namespaces` (when given), and validates the object first
// (kubernetes-validation.ts: 400 for a field of the wrong JSON type or another
// namespace in metadata, 422 Invalid with details.causes for names, Role rules,
// RoleBinding roleRef and subjects; `seed` throws on what create would refuse);
// get/delete answer 404 NotFound for a missing object. TokenRequest: 404 when the
// service account is missing; 422 for expirationSeconds under 600 or over 2^32;
// boundObjectRef kind Secret (apiVersion v1) only, 400 when it cannot be found, 409
// when its uid differs; empty audiences default to `apiAudiences`; the expiry is
// min(expirationSeconds, maxTokenExpirationS) after the fake's clock.

import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { validateCreate } from './kubernetes-validation.ts';
import { listenLoopback } from './loopback.ts';

export type KubernetesFakeResource = 'serviceaccounts' | 'secrets' | 'roles' | 'rolebindings' | 'token';

export interface KubernetesFakeRequest {
  method: string;
  path: string;
  resource: KubernetesFakeResource | 'unknown';
  namespace?: string;
  name?: string;
  body?: unknown;
  authorization?: string;
  /** What the fake answered (undefined when the connection was dropped). */
  status?: number;
}

export interface KubernetesFakeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; creationTimestamp: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface KubernetesFakeToken {
  token: string;
  namespace: string;
  serviceAccount: string;
  serviceAccountUid: string;
  boundObject: { kind: string; name: string; uid: string } | null;
  audiences: string[];
  expirationSeconds: number;
  expiresAt: number;
}

export interface KubernetesFakeOptions {
  /** The bearer the broker must present; any (or none) when unset. */
  brokerToken?: string;
  /** Namespaces that exist; every namespace when unset. */
  namespaces?: string[];
  /** The API server's own audiences (TokenRequest's default). */
  apiAudiences?: string[];
  /** --service-account-max-token-expiration, in seconds. */
  maxTokenExpirationS?: number;
  /** The fake's clock (epoch ms). */
  now?: () => number;
}

interface Failure {
  method?: string;
  resource?: KubernetesFakeResource;
  status: number | 'drop';
  times: number;
  message?: string;
}

export interface KubernetesFake {
  url: string;
  requests: KubernetesFakeRequest[];
  state: { objects: Map<string, KubernetesFakeObject>; tokens: Map<string, KubernetesFakeToken> };
  isTokenValid(token: string): boolean;
  seed(resource: 'serviceaccounts' | 'secrets' | 'roles' | 'rolebindings', namespace: string, object: { metadata: { name: string; labels?: Record<string, string> }; [key: string]: unknown }): KubernetesFakeObject;
  get(resource: 'serviceaccounts' | 'secrets' | 'roles' | 'rolebindings', namespace: string, name: string): KubernetesFakeObject | undefined;
  failNext(match: { method?: string; resource?: KubernetesFakeResource }, status: number | 'drop', times?: number, message?: string): void;
  reset(): void;
  close(): Promise<void>;
}

const KINDS: Record<Exclude<KubernetesFakeResource, 'token'>, { kind: string; apiVersion: string }> = {
  serviceaccounts: { kind: 'ServiceAccount', apiVersion: 'v1' },
  secrets: { kind: 'Secret', apiVersion: 'v1' },
  roles: { kind: 'Role', apiVersion: 'rbac.authorization.k8s.io/v1' },
  rolebindings: { kind: 'RoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1' },
};

const CORE = /^\/api\/v1\/namespaces\/([^/]+)\/(serviceaccounts|secrets)(?:\/([^/]+))?(?:\/(token))?$/;
const RBAC = /^\/apis\/rbac\.authorization\.k8s\.io\/v1\/namespaces\/([^/]+)\/(roles|rolebindings)(?:\/([^/]+))?$/;

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'AlreadyExists',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

function statusBody(code: number, message: string, reason = REASONS[code] ?? 'Unknown'): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export async function startKubernetesFake(options: KubernetesFakeOptions = {}): Promise<KubernetesFake> {
  const now = options.now ?? Date.now;
  const apiAudiences = options.apiAudiences ?? ['https://kubernetes.default.svc.cluster.local'];
  const requests: KubernetesFakeRequest[] = [];
  const objects = new Map<string, KubernetesFakeObject>();
  const tokens = new Map<string, KubernetesFakeToken>();
  let failures: Failure[] = [];
  let version = 1;

  const key = (resource: string, ns: string, name: string) => `${resource}/${ns}/${name}`;

  const store = (resource: Exclude<KubernetesFakeResource, 'token'>, ns: string, body: Record<string, unknown>): KubernetesFakeObject => {
    const meta = (body.metadata ?? {}) as Record<string, unknown>;
    const obj: KubernetesFakeObject = {
      ...body,
      ...KINDS[resource],
      metadata: {
        ...(meta as object),
        name: String(meta.name),
        namespace: ns,
        uid: randomUUID(),
        resourceVersion: String(version++),
        creationTimestamp: new Date(now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      },
    };
    objects.set(key(resource, ns, obj.metadata.name), obj);
    return obj;
  };

  const takeFailure = (method: string, resource: KubernetesFakeResource | 'unknown'): Failure | null => {
    const i = failures.findIndex((f) => (!f.method || f.method === method) && (!f.resource || f.resource === resource));
    if (i < 0) return null;
    const f = failures[i];
    f.times--;
    if (f.times <= 0) failures.splice(i, 1);
    return f;
  };

  const isTokenValid = (token: string): boolean => {
    const t = tokens.get(token);
    if (!t || now() >= t.expiresAt) return false;
    const sa = objects.get(key('serviceaccounts', t.namespace, t.serviceAccount));
    if (!sa || sa.metadata.uid !== t.serviceAccountUid) return false;
    if (t.boundObject) {
      const bound = objects.get(key('secrets', t.namespace, t.boundObject.name));
      if (!bound || bound.metadata.uid !== t.boundObject.uid) return false;
    }
    return true;
  };

  const tokenRequest = (ns: string, name: string, body: Record<string, unknown>): [number, unknown] => {
    const sa = objects.get(key('serviceaccounts', ns, name));
    if (!sa) return [404, statusBody(404, `serviceaccounts "${name}" not found`)];
    const spec = (body.spec ?? {}) as Record<string, unknown>;
    const exp = spec.expirationSeconds === undefined ? 3600 : Number(spec.expirationSeconds);
    if (!Number.isInteger(exp) || exp < 600) {
      return [422, statusBody(422, 'TokenRequest.authentication.k8s.io is invalid: spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes')];
    }
    if (exp > 2 ** 32) return [422, statusBody(422, 'spec.expirationSeconds: Invalid value: may not specify a duration larger than 2^32 seconds')];
    let boundObject: KubernetesFakeToken['boundObject'] = null;
    const ref = spec.boundObjectRef as Record<string, unknown> | undefined;
    if (ref) {
      if (ref.kind !== 'Secret' || ref.apiVersion !== 'v1') {
        return [400, statusBody(400, `cannot bind token to object of type ${String(ref.kind)} (the fake supports Secret v1)`)];
      }
      const secret = objects.get(key('secrets', ns, String(ref.name)));
      if (!secret) return [400, statusBody(400, `cannot find Secret "${String(ref.name)}": secrets "${String(ref.name)}" not found`)];
      if (ref.uid !== undefined && ref.uid !== '' && ref.uid !== secret.metadata.uid) {
        return [409, statusBody(409, 'the UID in the bound object reference does not match the UID in record', 'Conflict')];
      }
      boundObject = { kind: 'Secret', name: secret.metadata.name, uid: secret.metadata.uid };
    }
    const requested = Array.isArray(spec.audiences) ? (spec.audiences as string[]) : [];
    const audiences = requested.length > 0 ? requested : apiAudiences;
    const effective = options.maxTokenExpirationS !== undefined ? Math.min(exp, options.maxTokenExpirationS) : exp;
    const issuedS = Math.floor(now() / 1000);
    const expiresAt = (issuedS + effective) * 1000;
    const token = `fake-k8s-${randomBytes(24).toString('base64url')}`;
    tokens.set(token, { token, namespace: ns, serviceAccount: name, serviceAccountUid: sa.metadata.uid, boundObject, audiences, expirationSeconds: effective, expiresAt });
    return [
      201,
      {
        kind: 'TokenRequest',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { name, namespace: ns, creationTimestamp: null },
        spec: { audiences, expirationSeconds: effective, boundObjectRef: ref ?? null },
        status: { token, expirationTimestamp: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') },
      },
    ];
  };

  const handle = (method: string, path: string, body: unknown, rec: KubernetesFakeRequest): [number, unknown] => {
    const core = CORE.exec(path);
    const rbac = core ? null : RBAC.exec(path);
    const m = core ?? rbac;
    if (!m) return [404, statusBody(404, 'the server could not find the requested resource')];
    const ns = decodeURIComponent(m[1]);
    const resource = m[2] as Exclude<KubernetesFakeResource, 'token'>;
    const name = m[3] === undefined ? undefined : decodeURIComponent(m[3]);
    rec.namespace = ns;
    rec.name = name;
    if (options.namespaces && !options.namespaces.includes(ns)) return [404, statusBody(404, `namespaces "${ns}" not found`)];
    if (core && m[4] === 'token') {
      if (method !== 'POST' || name === undefined) return [405, statusBody(405, 'method not allowed', 'MethodNotAllowed')];
      return tokenRequest(ns, name, (body ?? {}) as Record<string, unknown>);
    }
    if (method === 'POST' && name === undefined) {
      const refused = validateCreate(resource, ns, body ?? {});
      if (refused) return [refused.code, refused.body];
      const b = body as Record<string, unknown>;
      const meta = b.metadata as { name: string };
      if (objects.has(key(resource, ns, meta.name))) {
        return [409, statusBody(409, `${resource} "${meta.name}" already exists`)];
      }
      return [201, store(resource, ns, b)];
    }
    if (name === undefined) return [405, statusBody(405, 'method not allowed', 'MethodNotAllowed')];
    const existing = objects.get(key(resource, ns, name));
    if (method === 'GET') return existing ? [200, existing] : [404, statusBody(404, `${resource} "${name}" not found`)];
    if (method === 'DELETE') {
      if (!existing) return [404, statusBody(404, `${resource} "${name}" not found`)];
      objects.delete(key(resource, ns, name));
      if (resource === 'serviceaccounts') return [200, existing];
      return [200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: resource, uid: existing.metadata.uid } }];
    }
    return [405, statusBody(405, 'method not allowed', 'MethodNotAllowed')];
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const tokenPath = /\/token$/.test(url.pathname);
      const resMatch = /\/(serviceaccounts|secrets|roles|rolebindings)(?:\/|$)/.exec(url.pathname);
      const resource: KubernetesFakeRequest['resource'] = tokenPath ? 'token' : ((resMatch?.[1] as KubernetesFakeResource | undefined) ?? 'unknown');
      const auth = req.headers.authorization;
      const rec: KubernetesFakeRequest = { method, path: url.pathname, resource, body, authorization: auth };
      requests.push(rec);
      const send = (code: number, payload: unknown) => {
        rec.status = code;
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const failure = takeFailure(method, resource);
      if (failure) {
        if (failure.status === 'drop') {
          req.socket.destroy();
          return;
        }
        send(failure.status, statusBody(failure.status, failure.message ?? `injected failure ${failure.status}`));
        return;
      }
      if (options.brokerToken !== undefined && auth !== `Bearer ${options.brokerToken}`) {
        send(401, statusBody(401, 'Unauthorized'));
        return;
      }
      const [code, payload] = handle(method, url.pathname, body, rec);
      send(code, payload);
    });
  });
  const listening = await listenLoopback(server);
  const { port } = listening;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    state: { objects, tokens },
    isTokenValid,
    seed(resource, namespace, object) {
      const refused = validateCreate(resource, namespace, object);
      if (refused) throw new Error(`seed ${resource}/${namespace}: the API server would refuse it: ${String(refused.body.message)}`);
      return store(resource, namespace, object as Record<string, unknown>);
    },
    get(resource, namespace, name) {
      return objects.get(key(resource, namespace, name));
    },
    failNext(match, status, times = 1, message) {
      failures.push({ ...match, status, times, message });
    },
    reset() {
      requests.length = 0;
      objects.clear();
      tokens.clear();
      failures = [];
    },
    close: listening.close,
  };
}
