// The GCP CloudProvider, with google-auth-library.
//
// Three flows, chosen by the target:
//   workload_identity_provider only   one STS exchange (RFC 8693) of the tvm token
//                                     (subject_token_type jwt, audience the provider,
//                                     scope cloud-platform) with the access boundary
//                                     in `options`: the federated token is the credential.
//                                     It expires with the tvm token (at most 1 h).
//   + service_account                 IdentityPoolClient: the same exchange, then
//                                     generateAccessToken with lifetime = the lease's
//                                     rest (capped); then a second STS exchange
//                                     downscopes that token with the boundary.
//   service_account only              Impersonated (from `sourceCredentials`, the
//                                     broker's own, default ADC): generateAccessToken,
//                                     then the downscoping exchange.
// The boundary always rides in the STS `options` parameter, as DownscopedClient
// sends it. DownscopedClient itself is not used because it hard-codes
// https://sts.<universe>/v1/token; StsCredentials (the library's RFC 8693 client,
// which DownscopedClient and the external-account clients use) takes the endpoint.
//
// Nothing is created cloud-side: plan() names no object, teardown() cannot revoke
// a Google access token (bearer, opaque) and relies on its expiry, rollback has
// nothing to undo.
//
// Credential: access_token, token_type (Bearer), expires_at; env
// CLOUDSDK_AUTH_ACCESS_TOKEN (gcloud) and GOOGLE_OAUTH_ACCESS_TOKEN (Terraform's
// google provider).

import { GoogleAuth, IdentityPoolClient, Impersonated, type AuthClient } from 'google-auth-library';
// Not re-exported by the package index; the library's own RFC 8693 client.
import { StsCredentials, type StsCredentialsOptions } from 'google-auth-library/build/src/auth/stscredentials.js';
import { CloudError, IamFieldError, type CloudErrorCode } from '../errors.ts';
import { mintedGrants } from '../mint.ts';
import type { CloudCredential, CloudGrant, CloudPlan, CloudProvider, GrantRequest, TeardownResult } from '../types.ts';
import { gcpModule, MAX_SERVICE_ACCOUNT_TOKEN_LIFETIME_S, type GcpTarget } from './module.ts';
import { accessBoundaryFor, type CredentialAccessBoundary } from './scopes.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** Kept between the credential's computed expiry and the lease's hard end: the request's flight time. */
export const HARD_END_MARGIN_MS = 1000;

export interface GcpProviderOptions {
  /** STS base URL (default https://sts.<universeDomain>); the token endpoint is `<stsEndpoint>/v1/token`. */
  stsEndpoint?: string;
  /** IAM Credentials base URL (default https://iamcredentials.<universeDomain>). */
  iamCredentialsEndpoint?: string;
  /** The broker's own credentials for a service_account target without a pool (default: Application Default Credentials). */
  sourceCredentials?: AuthClient;
  /** Default googleapis.com. */
  universeDomain?: string;
  /** generateAccessToken's ceiling: 3600 (default), up to 43200 where the org policy allows the account longer tokens. */
  maxTokenLifetimeS?: number;
}

export type GcpFlow = 'federated' | 'federated_service_account' | 'service_account';

export interface GcpPlan extends CloudPlan {
  cloud: 'gcp';
  grantId: string;
  flow: GcpFlow;
  /** Nothing is created in GCP: no object to roll back. */
  objects: [];
  accessBoundary: CredentialAccessBoundary;
}

function flowOf(target: GcpTarget): GcpFlow {
  if (target.workload_identity_provider) return target.service_account ? 'federated_service_account' : 'federated';
  return 'service_account';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

interface HttpFailure {
  status?: number;
  body?: unknown;
  code?: string;
}

function failureOf(err: unknown): HttpFailure {
  const e = err as { response?: { status?: number; data?: unknown }; status?: number; code?: unknown };
  return {
    status: e?.response?.status ?? (typeof e?.status === 'number' ? e.status : undefined),
    body: e?.response?.data,
    code: typeof e?.code === 'string' ? e.code : undefined,
  };
}

/** The cloud's own words (OAuth error / Google API error), with every secret cut out. */
function describeBody(body: unknown, secrets: string[]): string {
  let text = '';
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.error === 'string') {
      text = b.error + (typeof b.error_description === 'string' ? `: ${b.error_description}` : '');
    } else if (b.error && typeof b.error === 'object') {
      const ge = b.error as Record<string, unknown>;
      text = [ge.status, ge.message].filter((x) => typeof x === 'string').join(': ');
    }
  } else if (typeof body === 'string') {
    text = body;
  }
  for (const s of secrets) if (s) text = text.split(s).join('[redacted]');
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/** Maps a library/HTTP failure of `step` to CloudError, never carrying a token (not even in `cause`). */
export function toCloudError(step: string, err: unknown, secrets: string[]): CloudError {
  if (err instanceof CloudError) return err;
  const f = failureOf(err);
  let code: CloudErrorCode;
  if (f.status === undefined) code = 'ERR_CLOUD_UNAVAILABLE';
  else if (f.status === 429 || f.status >= 500) code = 'ERR_CLOUD_UNAVAILABLE';
  else code = 'ERR_CLOUD_DENIED';
  const what = describeBody(f.body, secrets);
  const how = f.status !== undefined ? `HTTP ${f.status}` : `no answer${f.code ? ` (${f.code})` : ''}`;
  return new CloudError('gcp', code, `${step} failed: ${how}${what ? `: ${what}` : ''}`);
}

interface Minted {
  accessToken: string;
  expiresAt: number;
}

export function createGcpProvider(options: GcpProviderOptions = {}): CloudProvider<GcpTarget> {
  const universe = options.universeDomain ?? 'googleapis.com';
  const stsBase = (options.stsEndpoint ?? `https://sts.${universe}`).replace(/\/+$/, '');
  const iamBase = (options.iamCredentialsEndpoint ?? `https://iamcredentials.${universe}`).replace(/\/+$/, '');
  const tokenUrl = `${stsBase}/v1/token`;
  const maxLifetimeS = options.maxTokenLifetimeS ?? MAX_SERVICE_ACCOUNT_TOKEN_LIFETIME_S;
  const sts = new StsCredentials({ tokenExchangeEndpoint: tokenUrl });
  let adc: Promise<AuthClient> | null = null;

  const sourceClient = (): Promise<AuthClient> => {
    if (options.sourceCredentials) return Promise.resolve(options.sourceCredentials);
    adc ??= new GoogleAuth({ scopes: [CLOUD_PLATFORM_SCOPE] }).getClient() as Promise<AuthClient>;
    return adc;
  };

  const plan = (req: GrantRequest<GcpTarget>): GcpPlan => {
    const accessBoundary = accessBoundaryFor(req.scopes);
    if (accessBoundary.accessBoundary.accessBoundaryRules.length === 0) {
      throw new IamFieldError('read', 'the grant has no gs:// scope, so a GCP credential would carry no permission');
    }
    return { cloud: 'gcp', grantId: req.grantId, flow: flowOf(req.target), objects: [], accessBoundary };
  };

  /** generateAccessToken's lifetime: reach the lease's expiry, never the hard end (less the margin), never past the ceiling. */
  const lifetimeFor = (req: GrantRequest<GcpTarget>): number | null => {
    const hardS = Math.floor((req.leaseMaxExpiresAt - req.now - HARD_END_MARGIN_MS) / 1000);
    const wantS = Math.max(1, Math.ceil((req.leaseExpiresAt - req.now) / 1000));
    const s = Math.min(wantS, hardS, maxLifetimeS);
    return s >= 1 ? s : null;
  };

  const exchange = async (step: string, body: StsCredentialsOptions, cab: CredentialAccessBoundary | undefined, secrets: string[]) => {
    try {
      return await sts.exchangeToken(body, undefined, cab);
    } catch (err) {
      throw toCloudError(step, err, secrets);
    }
  };

  const serviceAccountToken = async (req: GrantRequest<GcpTarget>, lifetimeS: number): Promise<Minted> => {
    const target = req.target;
    const sa = target.service_account as string;
    if (target.workload_identity_provider) {
      const client = new IdentityPoolClient({
        audience: target.workload_identity_provider,
        subject_token_type: TOKEN_TYPE_JWT,
        token_url: tokenUrl,
        service_account_impersonation_url: `${iamBase}/v1/projects/-/serviceAccounts/${sa}:generateAccessToken`,
        service_account_impersonation: { token_lifetime_seconds: lifetimeS },
        subject_token_supplier: { getSubjectToken: async () => req.token },
        scopes: [CLOUD_PLATFORM_SCOPE],
        ...(options.universeDomain ? { universe_domain: options.universeDomain } : {}),
      });
      try {
        const got = await client.getAccessToken();
        if (!got.token) throw new CloudError('gcp', 'ERR_CLOUD_DENIED', 'generateAccessToken returned no access token');
        return { accessToken: got.token, expiresAt: client.credentials.expiry_date ?? req.now + lifetimeS * 1000 };
      } catch (err) {
        throw toCloudError('token exchange and generateAccessToken', err, [req.token]);
      }
    }
    const source = await sourceClient();
    const client = new Impersonated({
      sourceClient: source,
      targetPrincipal: sa,
      targetScopes: [CLOUD_PLATFORM_SCOPE],
      delegates: [],
      lifetime: lifetimeS,
      endpoint: iamBase,
    });
    try {
      const got = await client.getAccessToken();
      if (!got.token) throw new CloudError('gcp', 'ERR_CLOUD_DENIED', 'generateAccessToken returned no access token');
      return { accessToken: got.token, expiresAt: client.credentials.expiry_date ?? req.now + lifetimeS * 1000 };
    } catch (err) {
      throw toCloudError('generateAccessToken', err, []);
    }
  };

  /** The tvm token's exp (unverified: only to bound a federated token STS gave no expires_in for). */
  const tokenExpiry = (token: string): number | null => {
    try {
      const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
      return typeof payload.exp === 'number' ? payload.exp * 1000 : null;
    } catch {
      return null;
    }
  };

  const mint = async (req: GrantRequest<GcpTarget>, p: GcpPlan): Promise<CloudGrant | null> => {
    const cab = p.accessBoundary;
    const target = req.target;
    let accessToken: string;
    let expiresAt: number;
    let lifetimeS: number | null = null;
    if (target.workload_identity_provider && !target.service_account) {
      if (req.leaseMaxExpiresAt - req.now <= HARD_END_MARGIN_MS) return null;
      const res = await exchange(
        'token exchange',
        {
          grantType: TOKEN_EXCHANGE_GRANT,
          audience: target.workload_identity_provider,
          scope: [CLOUD_PLATFORM_SCOPE],
          requestedTokenType: TOKEN_TYPE_ACCESS_TOKEN,
          subjectToken: req.token,
          subjectTokenType: TOKEN_TYPE_JWT,
        },
        cab,
        [req.token],
      );
      accessToken = res.access_token;
      const exp = typeof res.expires_in === 'number' ? req.now + res.expires_in * 1000 : tokenExpiry(req.token);
      if (exp === null) throw new CloudError('gcp', 'ERR_CLOUD_DENIED', 'token exchange returned no expires_in, and the tvm token has no exp');
      expiresAt = exp;
    } else {
      lifetimeS = lifetimeFor(req);
      if (lifetimeS === null) return null;
      const source = await serviceAccountToken(req, lifetimeS);
      const res = await exchange(
        'downscoping token exchange',
        {
          grantType: TOKEN_EXCHANGE_GRANT,
          requestedTokenType: TOKEN_TYPE_ACCESS_TOKEN,
          subjectToken: source.accessToken,
          subjectTokenType: TOKEN_TYPE_ACCESS_TOKEN,
        },
        cab,
        [req.token, source.accessToken],
      );
      accessToken = res.access_token;
      // What was asked for, on the broker's clock; never later than the source token or STS's answer.
      // Google's expireTime may sit on a skewed clock; the earliest of the three is always safe.
      expiresAt = Math.min(
        req.now + lifetimeS * 1000,
        source.expiresAt,
        typeof res.expires_in === 'number' ? req.now + res.expires_in * 1000 : Infinity,
      );
    }
    if (!accessToken) throw new CloudError('gcp', 'ERR_CLOUD_DENIED', 'the token exchange returned no access token');
    if (expiresAt > req.leaseMaxExpiresAt) {
      // A Google access token cannot be revoked: one that outlives the lease is not handed out.
      throw new CloudError(
        'gcp',
        'ERR_CLOUD_LIMIT',
        `GCP issued a token expiring at ${iso(expiresAt)}, after the lease's hard end ${iso(req.leaseMaxExpiresAt)}; it was not handed out`,
      );
    }
    const credential: CloudCredential = {
      cloud: 'gcp',
      access_token: accessToken,
      token_type: 'Bearer',
      expires_at: iso(expiresAt),
      env: { CLOUDSDK_AUTH_ACCESS_TOKEN: accessToken, GOOGLE_OAUTH_ACCESS_TOKEN: accessToken },
    };
    if (target.service_account) credential.service_account = target.service_account;
    const state: Record<string, unknown> = { flow: p.flow, expires_at: iso(expiresAt) };
    if (lifetimeS !== null) state.lifetime_s = lifetimeS;
    return { credential, expiresAt, state };
  };

  return {
    cloud: 'gcp',
    module: gcpModule,
    plan,
    ...mintedGrants('gcp', 'a GCP token', mint),
    async teardown(_p, grant, reason): Promise<TeardownResult> {
      const detail = grant
        ? `GCP access tokens cannot be revoked; relies on expiry at ${iso(grant.expiresAt)}`
        : `nothing to undo in GCP (no objects are created; a token minted before the ${reason} relies on its expiry)`;
      return { detail, cleanupAt: null };
    },
  };
}
