// A loopback fake of the two Google endpoints the GCP provider calls, at the
// HTTP level, so the real google-auth-library talks to it unchanged (gaxios
// uses fetch, and every endpoint the provider uses can be pointed at
// http://127.0.0.1: no nock needed).
//
//   POST /v1/token                                             STS (RFC 8693, form-encoded)
//   POST /v1/projects/-/serviceAccounts/<sa>:generateAccessToken   IAM Credentials (JSON)
//
// Use:
//   const fake = await startGcpFake({ verify: { issuer } });
//   createGcpProvider({ stsEndpoint: fake.url, iamCredentialsEndpoint: fake.url, ... })
//   fake.requests      every request, body decoded (`form`, `json`, `options` parsed from form.options)
//   fake.state.tokens  every access token minted (kind, subject, service account, boundary, expiry)
//   fake.failNext('sts' | 'generateAccessToken', 503 | 'drop', body?, times?)
//   fake.reset()       forget requests, tokens and pending failures
//   await fake.close()
// Usable from a child process too (import it, start it, print `fake.url`).
//
// What it checks, as GCP does:
// - STS: grant_type token-exchange, requested_token_type access_token, a
//   subject_token_type of jwt/id_token (audience the provider's
//   //iam.googleapis.com/... name) or access_token (a token it minted; a
//   downscoping needs options.accessBoundary); options.accessBoundary of at
//   most 10 rules and 2,048 characters, each rule with a resource and permissions.
// - With `verify`: the subject JWT as workload identity federation verifies an
//   OIDC token: header kid and alg RS256/ES256; iss (equal to the provider's
//   issuer_uri when given) serving /.well-known/openid-configuration whose
//   `issuer` is iss and whose jwks_uri holds the key; the signature; aud among
//   the provider's allowed audiences (default: its name with or without https:);
//   iat in the past; exp in the future and under 48 h after iat; sub present,
//   at most 127 bytes (google.subject's limit).
// - generateAccessToken: a bearer it minted (federated, unexpired) or one of
//   `brokerTokens`; scope non-empty; lifetime "<n>s" at most `maxLifetimeS` (3600).
// A federated token lives until the subject token's exp, at most one hour; a
// downscoped token expires with its source.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { listenLoopback, readBody } from './loopback.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];
const PROVIDER = /^\/\/iam\.googleapis\.com\/projects\/\d+\/locations\/global\/workloadIdentityPools\/[a-z0-9-]+\/providers\/[a-z0-9-]+$/;
const GENERATE = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/;

export type GcpFakeEndpoint = 'sts' | 'generateAccessToken';

export interface GcpFakeRequest {
  method: string;
  path: string;
  endpoint: GcpFakeEndpoint | 'unknown';
  headers: Record<string, string | string[] | undefined>;
  /** STS: the form fields. */
  form?: Record<string, string>;
  /** STS: `options` parsed. */
  options?: unknown;
  /** generateAccessToken: the JSON body. */
  json?: unknown;
  /** generateAccessToken: the service account from the path. */
  serviceAccount?: string;
  /** What the fake answered. */
  status?: number;
}

export interface GcpFakeToken {
  access_token: string;
  kind: 'federated' | 'service_account' | 'downscoped';
  expiresAt: number;
  /** federated: the subject JWT's sub; others: inherited. */
  subject?: string;
  serviceAccount?: string;
  /** The access boundary it carries, if any. */
  accessBoundary?: unknown;
  /** The token it was made from (downscoped, service_account from a federated token). */
  source?: string;
}

export interface GcpFakeOptions {
  /** Verify subject JWTs against the issuer's discovery document and JWKS. */
  verify?: { issuer?: string; allowedAudiences?: string[] };
  clock?: () => number;
  /** generateAccessToken's ceiling in seconds (default 3600). */
  maxLifetimeS?: number;
  /** Bearer tokens generateAccessToken accepts besides federated tokens it minted (the broker's own). */
  brokerTokens?: string[];
}

interface Failure {
  status: number | 'drop';
  body?: unknown;
  remaining: number;
}

export interface GcpFake {
  url: string;
  requests: GcpFakeRequest[];
  state: { tokens: GcpFakeToken[] };
  /** The next `times` calls to `endpoint` answer `status` (with `body`), or drop the connection. */
  failNext(endpoint: GcpFakeEndpoint, status: number | 'drop', body?: unknown, times?: number): void;
  /** Forgets requests, tokens and pending failures. */
  reset(): void;
  close(): Promise<void>;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super('refused');
  }
}

function oauthError(status: number, error: string, description: string): Refusal {
  return new Refusal(status, { error, error_description: description });
}

function googleError(status: number, code: string, message: string): Refusal {
  return new Refusal(status, { error: { code: status, message, status: code } });
}

export async function startGcpFake(options: GcpFakeOptions = {}): Promise<GcpFake> {
  const clock = options.clock ?? Date.now;
  const maxLifetimeS = options.maxLifetimeS ?? 3600;
  const requests: GcpFakeRequest[] = [];
  const tokens: GcpFakeToken[] = [];
  const failures: Record<GcpFakeEndpoint, Failure[]> = { sts: [], generateAccessToken: [] };
  let counter = 0;

  const mint = (t: Omit<GcpFakeToken, 'access_token'>, prefix: string): GcpFakeToken => {
    counter += 1;
    const token = { access_token: `ya29.${prefix}-${counter}`, ...t };
    tokens.push(token);
    return token;
  };
  const live = (access: string): GcpFakeToken | undefined => tokens.find((t) => t.access_token === access && t.expiresAt > clock());

  const verifySubject = async (jwt: string, provider: string): Promise<JWTPayload> => {
    const verify = options.verify;
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(jwt);
      unverified = decodeJwt(jwt);
    } catch {
      throw oauthError(400, 'invalid_grant', 'The subject token is not a JWT.');
    }
    if (!verify) return unverified;
    if (!header.kid) throw oauthError(400, 'invalid_grant', 'The JWT has no kid header.');
    if (header.alg !== 'RS256' && header.alg !== 'ES256') throw oauthError(400, 'invalid_grant', `Unsupported JWT alg ${header.alg}; RS256 or ES256.`);
    const iss = unverified.iss;
    if (typeof iss !== 'string') throw oauthError(400, 'invalid_grant', 'The JWT has no iss.');
    if (verify.issuer !== undefined && iss !== verify.issuer) throw oauthError(400, 'invalid_grant', `The issuer ${iss} does not match the provider's issuer_uri.`);
    let discovery: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const res = await fetch(`${iss}/.well-known/openid-configuration`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      discovery = (await res.json()) as typeof discovery;
    } catch (err) {
      throw oauthError(400, 'invalid_grant', `Could not fetch the issuer's discovery document: ${(err as Error).message}`);
    }
    if (discovery.issuer !== iss) throw oauthError(400, 'invalid_grant', 'The discovery document names another issuer.');
    if (typeof discovery.jwks_uri !== 'string') throw oauthError(400, 'invalid_grant', 'The discovery document has no jwks_uri.');
    const audiences = verify.allowedAudiences?.length ? verify.allowedAudiences : [provider, `https:${provider}`];
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(discovery.jwks_uri)), {
        algorithms: ['RS256', 'ES256'],
        issuer: iss,
        audience: audiences,
        currentDate: new Date(clock()),
        requiredClaims: ['iat', 'exp', 'sub'],
      }));
    } catch (err) {
      throw oauthError(400, 'invalid_grant', `The JWT failed verification: ${(err as Error).message}`);
    }
    const nowS = clock() / 1000;
    if ((payload.iat as number) > nowS + 1) throw oauthError(400, 'invalid_grant', 'The JWT iat is in the future.');
    if ((payload.exp as number) - (payload.iat as number) >= 48 * 3600) throw oauthError(400, 'invalid_grant', 'The JWT lives 48 hours or more.');
    if (Buffer.byteLength(String(payload.sub), 'utf8') > 127) throw oauthError(400, 'invalid_grant', 'google.subject exceeds 127 bytes.');
    return payload;
  };

  const parseBoundary = (raw: string | undefined): { accessBoundary?: { accessBoundaryRules?: unknown[] } } | undefined => {
    if (raw === undefined) return undefined;
    let options: { accessBoundary?: { accessBoundaryRules?: unknown[] } };
    try {
      options = JSON.parse(raw) as typeof options;
    } catch {
      throw oauthError(400, 'invalid_request', 'options is not JSON.');
    }
    const ab = options.accessBoundary;
    if (ab !== undefined) {
      if (raw.length > 2048) throw oauthError(400, 'invalid_request', 'The access boundary exceeds 2048 characters.');
      const rules = ab.accessBoundaryRules;
      if (!Array.isArray(rules) || rules.length === 0) throw oauthError(400, 'invalid_request', 'The access boundary has no rules.');
      if (rules.length > 10) throw oauthError(400, 'invalid_request', 'The access boundary has more than 10 rules.');
      for (const r of rules as Array<Record<string, unknown>>) {
        if (typeof r.availableResource !== 'string' || !Array.isArray(r.availablePermissions) || r.availablePermissions.length === 0) {
          throw oauthError(400, 'invalid_request', 'An access boundary rule needs availableResource and availablePermissions.');
        }
      }
    }
    return options;
  };

  const sts = async (rec: GcpFakeRequest, req: IncomingMessage, raw: string): Promise<unknown> => {
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      throw oauthError(400, 'invalid_request', 'Expected a form-encoded body.');
    }
    const form = Object.fromEntries(new URLSearchParams(raw));
    rec.form = form;
    const options = parseBoundary(form.options);
    rec.options = options;
    if (form.grant_type !== TOKEN_EXCHANGE) throw oauthError(400, 'unsupported_grant_type', 'Unsupported grant_type.');
    if (form.requested_token_type !== ACCESS_TOKEN) throw oauthError(400, 'invalid_request', 'Unsupported requested_token_type.');
    if (!form.subject_token) throw oauthError(400, 'invalid_request', 'subject_token is required.');
    const boundary = options?.accessBoundary;
    if (JWT_TYPES.includes(form.subject_token_type)) {
      if (!PROVIDER.test(form.audience ?? '')) throw oauthError(400, 'invalid_target', 'The audience is not a workload identity pool provider.');
      const claims = await verifySubject(form.subject_token, form.audience);
      const expS = typeof claims.exp === 'number' ? claims.exp : 0;
      const lifeMs = Math.min(3600 * 1000, expS * 1000 - clock());
      if (lifeMs <= 0) throw oauthError(400, 'invalid_grant', 'The subject token has expired.');
      const t = mint({ kind: 'federated', expiresAt: clock() + lifeMs, subject: String(claims.sub), accessBoundary: boundary }, 'fed');
      return { access_token: t.access_token, issued_token_type: ACCESS_TOKEN, token_type: 'Bearer', expires_in: Math.floor(lifeMs / 1000) };
    }
    if (form.subject_token_type === ACCESS_TOKEN) {
      const source = live(form.subject_token);
      if (!source) throw oauthError(400, 'invalid_grant', 'The subject token is not a valid Google access token.');
      if (!boundary) throw oauthError(400, 'invalid_request', 'Downscoping needs options.accessBoundary.');
      const t = mint(
        { kind: 'downscoped', expiresAt: source.expiresAt, subject: source.subject, serviceAccount: source.serviceAccount, accessBoundary: boundary, source: source.access_token },
        'down',
      );
      const body: Record<string, unknown> = { access_token: t.access_token, issued_token_type: ACCESS_TOKEN, token_type: 'Bearer' };
      // As GCP: expires_in only when the source is a service account's token.
      if (source.kind === 'service_account') body.expires_in = Math.floor((source.expiresAt - clock()) / 1000);
      return body;
    }
    throw oauthError(400, 'invalid_request', 'Unsupported subject_token_type.');
  };

  const generate = async (rec: GcpFakeRequest, req: IncomingMessage, raw: string): Promise<unknown> => {
    const auth = String(req.headers.authorization ?? '');
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const caller = live(bearer);
    const broker = (options.brokerTokens ?? []).includes(bearer);
    if (!broker && (!caller || caller.kind !== 'federated')) {
      throw googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.');
    }
    let body: { scope?: unknown; lifetime?: unknown; delegates?: unknown };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      throw googleError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload.');
    }
    rec.json = body;
    if (!Array.isArray(body.scope) || body.scope.length === 0) throw googleError(400, 'INVALID_ARGUMENT', 'Scope is required.');
    let lifetimeS = 3600;
    if (body.lifetime !== undefined) {
      const m = /^(\d+)(\.\d+)?s$/.exec(String(body.lifetime));
      if (!m) throw googleError(400, 'INVALID_ARGUMENT', 'Invalid lifetime.');
      lifetimeS = Number(m[1]);
    }
    if (lifetimeS > maxLifetimeS) {
      throw googleError(400, 'INVALID_ARGUMENT', `The lifetime must be at most ${maxLifetimeS}s.`);
    }
    const t = mint(
      { kind: 'service_account', expiresAt: clock() + lifetimeS * 1000, subject: caller?.subject, serviceAccount: rec.serviceAccount, source: caller?.access_token },
      'sa',
    );
    return { accessToken: t.access_token, expireTime: new Date(t.expiresAt).toISOString() };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const gen = GENERATE.exec(path);
    const endpoint: GcpFakeRequest['endpoint'] = path === '/v1/token' ? 'sts' : gen ? 'generateAccessToken' : 'unknown';
    const rec: GcpFakeRequest = { method: req.method ?? '', path, endpoint, headers: { ...req.headers } };
    if (gen) rec.serviceAccount = decodeURIComponent(gen[1]);
    requests.push(rec);
    const raw = await readBody(req);
    const send = (status: number, body: unknown) => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      if (endpoint === 'unknown' || req.method !== 'POST') throw new Refusal(404, { error: { code: 404, message: 'Not found', status: 'NOT_FOUND' } });
      const failure = failures[endpoint][0];
      if (failure) {
        failure.remaining -= 1;
        if (failure.remaining <= 0) failures[endpoint].shift();
        if (failure.status === 'drop') {
          req.socket.destroy();
          return;
        }
        // Still decode the body, so a test can assert what was asked.
        if (endpoint === 'sts') rec.form = Object.fromEntries(new URLSearchParams(raw));
        send(failure.status, failure.body ?? { error: 'temporarily_unavailable', error_description: 'fake failure' });
        return;
      }
      send(200, endpoint === 'sts' ? await sts(rec, req, raw) : await generate(rec, req, raw));
    } catch (err) {
      if (err instanceof Refusal) send(err.status, err.body);
      else send(500, { error: 'server_error', error_description: (err as Error).message });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const listening = await listenLoopback(server);
  const { port } = listening;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    state: { tokens },
    failNext(endpoint, status, body, times = 1) {
      failures[endpoint].push({ status, body, remaining: times });
    },
    reset() {
      requests.length = 0;
      tokens.length = 0;
      failures.sts.length = 0;
      failures.generateAccessToken.length = 0;
    },
    close: listening.close,
  };
}
