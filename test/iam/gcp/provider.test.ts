// The GCP provider with the real google-auth-library against the loopback fake.
import { SignJWT } from 'jose';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CloudError, IamFieldError } from '../../../src/iam/errors.ts';
import { accessBoundaryFor, gcpModule, type GcpTarget } from '../../../src/iam/gcp/module.ts';
import { createGcpProvider, type GcpPlan } from '../../../src/iam/gcp/provider.ts';
import type { CloudProvider, GrantRequest } from '../../../src/iam/types.ts';
import { startGcpFake, type GcpFake } from '../fakes/gcp.ts';
import { keyPair } from '../../keys.ts';

const PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/tvm-pool/providers/tvm-oidc';
const AUDIENCE = `https:${PROVIDER}`;
const SA = 'reader-01@my-project-1.iam.gserviceaccount.com';
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const SCOPES = { read: ['gs://logs/app/**', 'db://orders/*'], write: ['gs://out/batch/**'] };
const CAB = accessBoundaryFor(SCOPES);
const iso = (ms: number) => new Date(ms).toISOString();
/** The form of the RFC 8693 exchange of a tvm token (without `options`). */
const federatedForm = (subject: string) => ({
  grant_type: GRANT,
  audience: PROVIDER,
  scope: CLOUD_PLATFORM,
  requested_token_type: AT,
  subject_token: subject,
  subject_token_type: JWT,
});
/** The form of the downscoping exchange of a Google access token. */
const downscopeForm = (subject: string) => ({
  grant_type: GRANT,
  requested_token_type: AT,
  subject_token: subject,
  subject_token_type: AT,
  options: JSON.stringify(CAB),
});

let fake: GcpFake;
let fakeNow = NOW;
let provider: CloudProvider<GcpTarget>;
let sign: (expS: number, sub?: string) => Promise<string>;
const broker = new OAuth2Client();

beforeAll(async () => {
  fake = await startGcpFake({ clock: () => fakeNow, brokerTokens: ['ya29.broker-own'] });
  broker.setCredentials({ access_token: 'ya29.broker-own', expiry_date: Date.now() + 3_600_000 });
  provider = createGcpProvider({ stsEndpoint: fake.url, iamCredentialsEndpoint: fake.url, sourceCredentials: broker });
  const { privateKey } = keyPair('ES256');
  sign = (expS, sub = 'approle:ci') =>
    new SignJWT({ scope: 'read:gs://logs/app/**' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setIssuer('https://vault.example/v1/tvm')
      .setSubject(sub)
      .setAudience(AUDIENCE)
      .setIssuedAt(NOW / 1000)
      .setExpirationTime(expS)
      .setJti('7b0c7d0e-0000-4000-8000-000000000001')
      .sign(privateKey);
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
  fakeNow = NOW;
});

async function request(target: Record<string, unknown>, over: Partial<GrantRequest<GcpTarget>> = {}): Promise<GrantRequest<GcpTarget>> {
  return {
    grantId: '0b5f2c1e-9d7a-4c1b-8f00-000000000042',
    jti: '7b0c7d0e-0000-4000-8000-000000000001',
    token: await sign(NOW / 1000 + 300),
    subject: 'approle:ci',
    role: 'logs',
    scopes: SCOPES,
    target: gcpModule.parseTarget(target, 'iam.gcp'),
    now: NOW,
    leaseExpiresAt: NOW + 300_000,
    leaseMaxExpiresAt: NOW + 3_600_000,
    ...over,
  };
}

async function caught(p: Promise<unknown>): Promise<CloudError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CloudError);
    return err as CloudError;
  }
  throw new Error('expected a CloudError');
}

describe('plan', () => {
  it('names nothing cloud-side and carries the boundary; deterministic from the request', async () => {
    const req = await request({ workload_identity_provider: PROVIDER });
    const plan = provider.plan(req);
    expect(plan).toEqual({ cloud: 'gcp', grantId: req.grantId, flow: 'federated', objects: [], accessBoundary: CAB });
    expect(provider.plan(req)).toEqual(plan);
    expect(provider.plan(await request({ workload_identity_provider: PROVIDER, service_account: SA })).flow).toBe('federated_service_account');
    expect(provider.plan(await request({ service_account: SA })).flow).toBe('service_account');
    expect(provider.cloud).toBe('gcp');
    expect(provider.module).toBe(gcpModule);
  });

  it('refuses scopes the boundary cannot express, and a grant with no gs:// scope', async () => {
    const bad = await request({ service_account: SA }, { scopes: { read: ['gs://logs/*/x'], write: [] } });
    expect(() => provider.plan(bad)).toThrow(IamFieldError);
    expect(() => provider.plan(bad)).toThrow('invalid read[0]: gs://logs/*/x: "*" matches within one path segment');
    const none = await request({ service_account: SA }, { scopes: { read: ['db://orders/*'], write: [] } });
    expect(() => provider.plan(none)).toThrow('no gs:// scope');
  });
});

describe('issue: workload identity provider only (the federated token is the credential)', () => {
  it('sends one RFC 8693 exchange of the tvm token with the access boundary in options', async () => {
    const req = await request({ workload_identity_provider: PROVIDER });
    const grant = await provider.issue(req, provider.plan(req));
    expect(fake.requests.map((r) => r.endpoint)).toEqual(['sts']);
    const sts = fake.requests[0];
    expect(sts.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(sts.form).toEqual({ ...federatedForm(req.token), options: JSON.stringify(CAB) });
    expect(sts.options).toEqual(CAB);
    const minted = fake.state.tokens[0];
    expect(minted).toMatchObject({ kind: 'federated', subject: 'approle:ci', accessBoundary: CAB.accessBoundary });
    // The federated token lives as long as the tvm token (exp NOW+300 s).
    expect(grant.expiresAt).toBe(NOW + 300_000);
    expect(grant.credential).toEqual({
      cloud: 'gcp',
      access_token: minted.access_token,
      token_type: 'Bearer',
      expires_at: iso(NOW + 300_000),
      env: { CLOUDSDK_AUTH_ACCESS_TOKEN: minted.access_token, GOOGLE_OAUTH_ACCESS_TOKEN: minted.access_token },
    });
    expect(grant.state).toEqual({ flow: 'federated', expires_at: iso(NOW + 300_000) });
    expect(JSON.stringify(grant.state)).not.toContain('ya29');
  });

  it('never hands out a token that outlives the lease hard end (GCP tokens cannot be revoked)', async () => {
    const req = await request({ workload_identity_provider: PROVIDER }, { token: await sign(NOW / 1000 + 900), leaseMaxExpiresAt: NOW + 600_000 });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_LIMIT');
    expect(err.message).toBe(
      `gcp: GCP issued a token expiring at ${iso(NOW + 900_000)}, after the lease's hard end ${iso(NOW + 600_000)}; it was not handed out`,
    );
    expect(err.message).not.toContain('ya29');
  });
});

describe('issue: provider + service account (generateAccessToken caps the lifetime)', () => {
  it('exchanges, impersonates with lifetime = the lease rest, then downscopes', async () => {
    const req = await request({ workload_identity_provider: PROVIDER, service_account: SA });
    const grant = await provider.issue(req, provider.plan(req));
    expect(fake.requests.map((r) => r.endpoint)).toEqual(['sts', 'generateAccessToken', 'sts']);
    const [federate, generate, downscope] = fake.requests;
    const [fed, sa, down] = fake.state.tokens;
    expect(federate.form).toEqual(federatedForm(req.token));
    expect(generate.path).toBe(`/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`);
    expect(generate.headers.authorization).toBe(`Bearer ${fed.access_token}`);
    expect(generate.json).toEqual({ scope: [CLOUD_PLATFORM], lifetime: '300s' });
    expect(downscope.form).toEqual(downscopeForm(sa.access_token));
    expect(down).toMatchObject({ kind: 'downscoped', serviceAccount: SA, accessBoundary: CAB.accessBoundary, source: sa.access_token });
    expect(grant.credential).toEqual({
      cloud: 'gcp',
      access_token: down.access_token,
      token_type: 'Bearer',
      expires_at: iso(NOW + 300_000),
      service_account: SA,
      env: { CLOUDSDK_AUTH_ACCESS_TOKEN: down.access_token, GOOGLE_OAUTH_ACCESS_TOKEN: down.access_token },
    });
    expect(grant.state).toEqual({ flow: 'federated_service_account', expires_at: iso(NOW + 300_000), lifetime_s: 300 });
  });

  it.each<[string, Partial<GrantRequest<GcpTarget>>, number, string]>([
    ['rounds the lease rest up to whole seconds', { leaseExpiresAt: NOW + 299_001 }, 300, '300s'],
    ['stops 1 s short of the hard end', { leaseExpiresAt: NOW + 600_000, leaseMaxExpiresAt: NOW + 120_500 }, 119, '119s'],
    ['caps at generateAccessToken’s 3600 s', { leaseExpiresAt: NOW + 7_200_000, leaseMaxExpiresAt: NOW + 86_400_000 }, 3600, '3600s'],
  ])('lifetime %s', async (_what, over, seconds, lifetime) => {
    const req = await request({ service_account: SA }, over);
    const grant = await provider.issue(req, provider.plan(req));
    expect(fake.requests[0].json).toEqual({ scope: [CLOUD_PLATFORM], lifetime, delegates: [] });
    expect(grant.expiresAt).toBe(NOW + seconds * 1000);
    expect(grant.expiresAt).toBeLessThanOrEqual(req.leaseMaxExpiresAt);
  });

  it('honours maxTokenLifetimeS where the org policy allows longer tokens', async () => {
    const long = createGcpProvider({ stsEndpoint: fake.url, iamCredentialsEndpoint: fake.url, maxTokenLifetimeS: 43_200 });
    const req = await request(
      { workload_identity_provider: PROVIDER, service_account: SA },
      { token: await sign(NOW / 1000 + 3600), leaseExpiresAt: NOW + 5 * 3_600_000, leaseMaxExpiresAt: NOW + 24 * 3_600_000 },
    );
    // The fake's default ceiling is GCP's default (3600 s): the request is refused as GCP would...
    const err = await caught(long.issue(req, long.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toBe('gcp: token exchange and generateAccessToken failed: HTTP 400: INVALID_ARGUMENT: The lifetime must be at most 3600s.');
    // ...and granted where the extension is on.
    const extended = await startGcpFake({ clock: () => NOW, maxLifetimeS: 43_200 });
    try {
      const p = createGcpProvider({ stsEndpoint: extended.url, iamCredentialsEndpoint: extended.url, maxTokenLifetimeS: 43_200 });
      const grant = await p.issue(req, p.plan(req));
      expect(extended.requests[1].json).toEqual({ scope: [CLOUD_PLATFORM], lifetime: '18000s' });
      expect(grant.expiresAt).toBe(NOW + 18_000_000);
    } finally {
      await extended.close();
    }
  });
});

describe('issue: service account only (the broker’s own credentials)', () => {
  it('impersonates with sourceCredentials, then downscopes; the tvm token is not sent', async () => {
    const req = await request({ service_account: SA });
    const grant = await provider.issue(req, provider.plan(req));
    expect(fake.requests.map((r) => r.endpoint)).toEqual(['generateAccessToken', 'sts']);
    expect(fake.requests[0].headers.authorization).toBe('Bearer ya29.broker-own');
    expect(fake.requests[0].json).toEqual({ scope: [CLOUD_PLATFORM], lifetime: '300s', delegates: [] });
    const [sa, down] = fake.state.tokens;
    expect(fake.requests[1].form).toEqual(downscopeForm(sa.access_token));
    expect(JSON.stringify(fake.requests)).not.toContain(req.token);
    expect(grant.credential.access_token).toBe(down.access_token);
    expect(grant.expiresAt).toBe(NOW + 300_000);
  });

  it('refuses to issue when the hard end leaves under the margin, without calling GCP', async () => {
    const req = await request({ service_account: SA }, { leaseMaxExpiresAt: NOW + 1500 });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_LIMIT');
    expect(err.message).toBe(`gcp: the lease's hard end ${iso(NOW + 1500)} leaves no time for a GCP token`);
    const fed = await request({ workload_identity_provider: PROVIDER }, { leaseMaxExpiresAt: NOW + 1000 });
    expect((await caught(provider.issue(fed, provider.plan(fed)))).code).toBe('ERR_CLOUD_LIMIT');
    expect(fake.requests).toEqual([]);
  });
});

describe('renew', () => {
  it('gets a fresh token from the renewed tvm token, up to the new lease expiry', async () => {
    const req = await request({ workload_identity_provider: PROVIDER, service_account: SA });
    const plan = provider.plan(req);
    const first = await provider.issue(req, plan);
    const later = NOW + 240_000;
    fakeNow = later;
    const renewed = { ...req, token: await sign(later / 1000 + 300), now: later, leaseExpiresAt: later + 300_000 };
    fake.requests.length = 0;
    const second = await provider.renew(renewed, plan, first);
    expect(fake.requests.map((r) => r.endpoint)).toEqual(['sts', 'generateAccessToken', 'sts']);
    expect(fake.requests[0].form?.subject_token).toBe(renewed.token);
    expect(fake.requests[1].json).toEqual({ scope: [CLOUD_PLATFORM], lifetime: '300s' });
    expect(second.credential.access_token).not.toBe(first.credential.access_token);
    expect(second.expiresAt).toBe(later + 300_000);
  });

  it('keeps the current grant when the hard end leaves no time for a new one', async () => {
    const req = await request({ service_account: SA });
    const plan = provider.plan(req);
    const first = await provider.issue(req, plan);
    fake.requests.length = 0;
    const late = { ...req, now: req.leaseMaxExpiresAt - 500 };
    expect(await provider.renew(late, plan, first)).toBe(first);
    expect(fake.requests).toEqual([]);
  });
});

describe('teardown', () => {
  it('revoke relies on expiry (GCP access tokens cannot be revoked) and touches nothing', async () => {
    const req = await request({ workload_identity_provider: PROVIDER });
    const plan = provider.plan(req);
    const grant = await provider.issue(req, plan);
    fake.requests.length = 0;
    const result = await provider.teardown(plan, grant, 'revoke', NOW + 1000);
    expect(result).toEqual({ detail: `GCP access tokens cannot be revoked; relies on expiry at ${iso(NOW + 300_000)}`, cleanupAt: null });
    expect(await provider.teardown(plan, grant, 'revoke', NOW + 2000)).toEqual(result);
    expect(fake.requests).toEqual([]);
    expect(provider.cleanup).toBeUndefined();
  });

  it('rollback of a half-finished issue is a no-op that succeeds, from the plan alone, twice', async () => {
    const req = await request({ workload_identity_provider: PROVIDER, service_account: SA });
    const plan = JSON.parse(JSON.stringify(provider.plan(req))) as GcpPlan;
    // The federated token exists; generateAccessToken is refused: issue() never completes.
    fake.failNext('generateAccessToken', 403, { error: { code: 403, status: 'PERMISSION_DENIED', message: 'denied' } });
    await caught(provider.issue(req, plan));
    expect(fake.state.tokens.map((t) => t.kind)).toEqual(['federated']);
    fake.requests.length = 0;
    const expected = {
      detail: 'nothing to undo in GCP (no objects are created; a token minted before the rollback relies on its expiry)',
      cleanupAt: null,
    };
    expect(await provider.teardown(plan, null, 'rollback', NOW)).toEqual(expected);
    expect(await provider.teardown(plan, null, 'rollback', NOW)).toEqual(expected);
    expect(fake.requests).toEqual([]);
  });
});

describe('errors -> CloudError (never a token in the message or the cause)', () => {
  it('STS refusing the identity is ERR_CLOUD_DENIED, not retried', async () => {
    const req = await request({ workload_identity_provider: PROVIDER });
    fake.failNext('sts', 400, { error: 'invalid_grant', error_description: `The audience in ID Token [${req.token}] does not match` });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.retryable).toBe(false);
    expect(err.cloud).toBe('gcp');
    expect(err.message).toBe('gcp: token exchange failed: HTTP 400: invalid_grant: The audience in ID Token [[redacted]] does not match');
    expect(err.cause).toBeUndefined();
    expect(fake.requests).toHaveLength(1);
  });

  it('STS 5xx is ERR_CLOUD_UNAVAILABLE (retryable) after the library’s own retries', async () => {
    const req = await request({ workload_identity_provider: PROVIDER });
    fake.failNext('sts', 503, { error: 'temporarily_unavailable', error_description: 'try later' }, 10);
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('gcp: token exchange failed: HTTP 503: temporarily_unavailable: try later');
    expect(fake.requests.length).toBeGreaterThan(1);
  });

  it('generateAccessToken 403 is ERR_CLOUD_DENIED; 429 is ERR_CLOUD_UNAVAILABLE', async () => {
    const req = await request({ service_account: SA });
    fake.failNext('generateAccessToken', 403, { error: { code: 403, status: 'PERMISSION_DENIED', message: "Permission 'iam.serviceAccounts.getAccessToken' denied" } });
    const denied = await caught(provider.issue(req, provider.plan(req)));
    expect(denied.code).toBe('ERR_CLOUD_DENIED');
    expect(denied.message).toBe("gcp: generateAccessToken failed: HTTP 403: PERMISSION_DENIED: Permission 'iam.serviceAccounts.getAccessToken' denied");
    fake.failNext('generateAccessToken', 429, { error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'Quota exceeded' } }, 10);
    const throttled = await caught(provider.issue(req, provider.plan(req)));
    expect(throttled.code).toBe('ERR_CLOUD_UNAVAILABLE');
  });

  it('the downscoping exchange failing after the service account token was minted: DENIED, token redacted', async () => {
    const req = await request({ service_account: SA });
    fake.failNext('sts', 400, { error: 'invalid_request', error_description: 'bad boundary for ya29.sa-' });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toMatch(/^gcp: downscoping token exchange failed: HTTP 400: invalid_request: /);
    const sa = fake.state.tokens.find((t) => t.kind === 'service_account');
    expect(sa).toBeDefined();
    expect(err.message).not.toContain(sa?.access_token);
  });

  it('a dropped connection is ERR_CLOUD_UNAVAILABLE', async () => {
    const req = await request({ workload_identity_provider: PROVIDER });
    fake.failNext('sts', 'drop', undefined, 10);
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_UNAVAILABLE');
    expect(err.message).toMatch(/^gcp: token exchange failed: no answer/);
    expect(err.message).not.toContain(req.token);
  });

  it('nothing listening is ERR_CLOUD_UNAVAILABLE', async () => {
    const dead = await startGcpFake();
    const url = dead.url;
    await dead.close();
    const p = createGcpProvider({ stsEndpoint: url, iamCredentialsEndpoint: url });
    const req = await request({ workload_identity_provider: PROVIDER });
    expect((await caught(p.issue(req, p.plan(req)))).code).toBe('ERR_CLOUD_UNAVAILABLE');
  });
});
