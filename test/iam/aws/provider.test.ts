// The AWS provider with the real SDK against the loopback STS/IAM fake.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CloudError, IamFieldError } from '../../../src/iam/errors.ts';
import type { CloudGrant, GrantRequest } from '../../../src/iam/types.ts';
import type { AwsTarget } from '../../../src/iam/aws/module.ts';
import {
  createAwsProvider,
  DEFAULT_DENY_SKEW_MS,
  durationSecondsFor,
  ROLE_WIDE_DENY_NAME,
  roleWideDenyDocument,
  sessionDenyDocument,
  sessionNameFor,
  sourceIdentityFor,
  tagValueFor,
  type AwsPlan,
  type AwsProviderOptions,
} from '../../../src/iam/aws/provider.ts';
import { FAKE_BROKER_KEYS, startAwsFake, type AwsFake } from '../fakes/aws.ts';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/app';
const GRANT_ID = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
const SESSION = `tvm-${GRANT_ID}`;
const DENY_NAME = `tvm-deny-${SESSION}`;
const T0 = Date.parse('2026-11-23T12:00:00Z');
// A JWT-shaped web identity (the fake decodes it when no OIDC provider is configured).
const TOKEN = 'eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhcHByb2xlOm9yZGVycyIsImF1ZCI6InN0cy5hbWF6b25hd3MuY29tIn0.c2ln';
const EXPECTED_POLICY =
  '{"Version":"2012-10-17","Statement":[' +
  '{"Sid":"S3Read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::logs/app/*"},' +
  '{"Sid":"S3List1","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::logs","Condition":{"StringLike":{"s3:prefix":["app/*"]}}},' +
  '{"Sid":"DynamoDBWrite","Effect":"Allow","Action":["dynamodb:PutItem","dynamodb:UpdateItem","dynamodb:DeleteItem","dynamodb:BatchWriteItem"],"Resource":"arn:aws:dynamodb:eu-west-1:123456789012:table/orders"}]}';

let fake: AwsFake;
let clock: number;

beforeEach(async () => {
  clock = T0;
  fake = await startAwsFake({ now: () => clock });
  fake.addRole(ROLE_ARN);
});

afterEach(async () => {
  await fake.close();
});

function provider(extra: AwsProviderOptions = {}) {
  return createAwsProvider({ region: 'us-east-1', stsEndpoint: fake.url, iamEndpoint: fake.url, credentials: FAKE_BROKER_KEYS, maxAttempts: 1, ...extra });
}

function request(extra: Partial<GrantRequest<AwsTarget>> = {}, target: Record<string, unknown> = {}): GrantRequest<AwsTarget> {
  return {
    grantId: GRANT_ID,
    jti: '0b5c1c1e-8d1a-4c55-9f0e-2f0b8e9d1a11',
    token: TOKEN,
    subject: 'approle:orders',
    role: 'orders',
    scopes: { read: ['s3://logs/app/**', 'db://orders/*'], write: ['dynamodb://orders'] },
    target: { role_arn: ROLE_ARN, region: 'eu-west-1', ...target } as unknown as AwsTarget,
    now: clock,
    leaseExpiresAt: clock + 30 * 60_000,
    leaseMaxExpiresAt: clock + 2 * 3600_000,
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<CloudError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CloudError);
  return err as CloudError;
}

/** IAM's StringLike, for checking a deny condition against a real session id. */
function stringLike(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(value);
}

describe('plan', () => {
  it('is deterministic from the request and names everything teardown needs', () => {
    const p = provider();
    const plan = p.plan(request());
    expect(plan).toEqual({
      cloud: 'aws',
      method: 'web_identity',
      role_arn: ROLE_ARN,
      role_name: 'app',
      region: 'eu-west-1',
      session_name: SESSION,
      deny_policy_name: DENY_NAME,
      deny_on_revoke: true,
      policy: EXPECTED_POLICY,
      policy_chars: EXPECTED_POLICY.length,
      not_after: T0 + 2 * 3600_000,
    });
    expect(p.plan(request())).toEqual(plan);
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
    expect(fake.requests).toEqual([]);
  });

  it('takes the role name without its path', () => {
    expect(provider().plan(request({}, { role_arn: 'arn:aws:iam::123456789012:role/svc/app' })).role_name).toBe('app');
  });

  it('refuses narrowed scopes IAM cannot express', () => {
    const err = (() => {
      try {
        provider().plan(request({ scopes: { read: ['s3://logs/app/*'], write: [] } }));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(IamFieldError);
    expect((err as IamFieldError).field).toBe('read[0]');
    expect(() => provider().plan(request({ scopes: { read: ['db://orders/*'], write: [] } }))).toThrow(IamFieldError);
  });

  it('derives session names AWS accepts', () => {
    expect(sessionNameFor(GRANT_ID)).toBe(SESSION);
    const odd = sessionNameFor('grant with spaces/and:colons and far too many characters to fit in sixty-four');
    expect(odd).toMatch(/^tvm-[0-9a-f]{40}$/);
    expect(sessionNameFor('grant with spaces/and:colons and far too many characters to fit in sixty-four')).toBe(odd);
    expect(sourceIdentityFor('approle:orders/prod')).toBe('approle_orders_prod');
    expect(sourceIdentityFor('x')).toBeUndefined();
    expect(sourceIdentityFor('a'.repeat(80))).toHaveLength(64);
    expect(tagValueFor('jwt:https://k8s/ns#sa')).toBe('jwt:https://k8s/ns_sa');
  });
});

describe('DurationSeconds', () => {
  const at = (leaseS: number, maxS: number) => durationSecondsFor({ now: T0, leaseExpiresAt: T0 + leaseS * 1000, leaseMaxExpiresAt: T0 + maxS * 1000 });
  it.each([
    [300, 3600, 900],
    [1800, 7200, 1800],
    [7200, 10_800, 7200],
    [72_000, 86_400, 43_200],
    [950, 950, 950],
    [900.4, 900.9, 900],
    [1000.2, 3600, 1001],
    [1000.2, 1000.7, 1000],
  ])('lease %ss, hard end %ss → %ss', (leaseS, maxS, expected) => {
    expect(at(leaseS, maxS)).toBe(expected);
  });

  it('refuses a lease with under 900 s to its hard end, without calling AWS', async () => {
    expect(() => at(300, 899.9)).toThrow(CloudError);
    const p = provider();
    const req = request({ leaseExpiresAt: clock + 300_000, leaseMaxExpiresAt: clock + 899_000 });
    const err = await rejection(p.issue(req, p.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_LIMIT');
    expect(err.message).toBe("aws: the lease ends in 899s, under AWS's minimum session of 900s: a credential would outlive it");
    expect(fake.requests).toEqual([]);
  });
});

describe('issue', () => {
  it('web_identity: AssumeRoleWithWebIdentity with the token, the session policy and the lease duration', async () => {
    const p = provider();
    const req = request();
    const grant = await p.issue(req, p.plan(req));
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toEqual({
      service: 'sts',
      action: 'AssumeRoleWithWebIdentity',
      accessKeyId: null,
      at: T0,
      params: {
        Action: 'AssumeRoleWithWebIdentity',
        Version: '2011-06-15',
        RoleArn: ROLE_ARN,
        RoleSessionName: SESSION,
        WebIdentityToken: TOKEN,
        Policy: EXPECTED_POLICY,
        DurationSeconds: '1800',
      },
    });
    const session = fake.state.sessions[0];
    expect(grant.expiresAt).toBe(T0 + 1800_000);
    expect(grant.state).toEqual({
      assumed_role_id: session.assumedRoleId,
      arn: `arn:aws:sts::123456789012:assumed-role/app/${SESSION}`,
      duration_s: 1800,
      packed_policy_size: expect.any(Number),
    });
    expect(session.assumedRoleId).toMatch(new RegExp(`^AROA[A-Z2-7]{17}:${SESSION}$`));
    const c = grant.credential;
    expect(c).toEqual({
      cloud: 'aws',
      expires_at: '2026-11-23T12:30:00.000Z',
      access_key_id: session.accessKeyId,
      secret_access_key: expect.any(String),
      session_token: expect.any(String),
      assumed_role_id: session.assumedRoleId,
      arn: `arn:aws:sts::123456789012:assumed-role/app/${SESSION}`,
      region: 'eu-west-1',
      env: {
        AWS_ACCESS_KEY_ID: session.accessKeyId,
        AWS_SECRET_ACCESS_KEY: c.secret_access_key,
        AWS_SESSION_TOKEN: c.session_token,
        AWS_CREDENTIAL_EXPIRATION: '2026-11-23T12:30:00.000Z',
        AWS_REGION: 'eu-west-1',
        AWS_DEFAULT_REGION: 'eu-west-1',
      },
    });
    // Nothing secret in the non-secret parts.
    expect(JSON.stringify(grant.state)).not.toContain(c.secret_access_key as string);
  });

  it('without a region the env names none', async () => {
    const p = provider();
    const req = request({ scopes: { read: ['s3://logs/**'], write: [] } }, { region: undefined });
    const grant = await p.issue(req, p.plan(req));
    expect(Object.keys(grant.credential.env)).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION']);
  });

  it('assume_role: AssumeRole signed with the broker keys, SourceIdentity and tags for the workload', async () => {
    const p = provider();
    const req = request({}, { method: 'assume_role' });
    const grant = await p.issue(req, p.plan(req));
    expect(fake.requests[0]).toEqual({
      service: 'sts',
      action: 'AssumeRole',
      accessKeyId: FAKE_BROKER_KEYS.accessKeyId,
      at: T0,
      params: {
        Action: 'AssumeRole',
        Version: '2011-06-15',
        RoleArn: ROLE_ARN,
        RoleSessionName: SESSION,
        Policy: EXPECTED_POLICY,
        DurationSeconds: '1800',
        SourceIdentity: 'approle_orders',
        'Tags.member.1.Key': 'tvm:sub',
        'Tags.member.1.Value': 'approle:orders',
        'Tags.member.2.Key': 'tvm:jti',
        'Tags.member.2.Value': '0b5c1c1e-8d1a-4c55-9f0e-2f0b8e9d1a11',
      },
    });
    expect(grant.state.source_identity).toBe('approle_orders');
    expect(fake.state.sessions[0].tags).toEqual({ 'tvm:sub': 'approle:orders', 'tvm:jti': '0b5c1c1e-8d1a-4c55-9f0e-2f0b8e9d1a11' });
  });
});

describe('renew', () => {
  async function issued(): Promise<{ p: ReturnType<typeof provider>; plan: AwsPlan; grant: CloudGrant }> {
    const p = provider();
    const req = request({ leaseExpiresAt: clock + 5 * 60_000 });
    const plan = p.plan(req) as AwsPlan;
    return { p, plan, grant: await p.issue(req, plan) };
  }

  it('keeps the credential while the lease ends before it', async () => {
    const { p, plan, grant } = await issued();
    expect(grant.expiresAt).toBe(T0 + 900_000);
    clock = T0 + 4 * 60_000;
    const renewed = await p.renew(request({ now: clock, token: 'renewed.token.x', leaseExpiresAt: clock + 5 * 60_000 }), plan, grant);
    expect(renewed).toBe(grant);
    expect(fake.requests).toHaveLength(1);
  });

  it('assumes the role again, with the renewed token, once the lease ends after the credential', async () => {
    const { p, plan, grant } = await issued();
    clock = T0 + 12 * 60_000;
    const renewedToken = TOKEN.replace('c2ln', 'bmV3');
    const renewed = await p.renew(request({ now: clock, token: renewedToken, leaseExpiresAt: clock + 5 * 60_000 }), plan, grant);
    expect(renewed).not.toBe(grant);
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1].params).toMatchObject({ RoleSessionName: SESSION, WebIdentityToken: renewedToken, DurationSeconds: '900', Policy: EXPECTED_POLICY });
    expect(renewed.expiresAt).toBe(clock + 900_000);
    // The same session name: one deny covers the old and the new credential.
    expect(renewed.state.assumed_role_id).toBe(grant.state.assumed_role_id);
  });

  it('keeps the credential when under 900 s remain to the hard end', async () => {
    const { p, plan, grant } = await issued();
    clock = T0 + 2 * 3600_000 - 800_000;
    const renewed = await p.renew(request({ now: clock, leaseExpiresAt: clock + 300_000, leaseMaxExpiresAt: T0 + 2 * 3600_000 }), plan, grant);
    expect(renewed).toBe(grant);
    expect(fake.requests).toHaveLength(1);
  });
});

describe('revoke and cleanup', () => {
  async function issued(target: Record<string, unknown> = {}) {
    const p = provider();
    const req = request({}, target);
    const plan = p.plan(req);
    return { p, plan, grant: await p.issue(req, plan) };
  }

  it('puts a deny policy for the session, kept until the credential expired, then deletes it', async () => {
    const { p, plan, grant } = await issued();
    clock = T0 + 60_000;
    const result = await p.teardown(plan, grant, 'revoke', clock);
    const userId = grant.state.assumed_role_id as string;
    const document = `{"Version":"2012-10-17","Statement":[{"Sid":"TvmRevokedSession","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:userid":"${userId}"}}}]}`;
    expect(fake.calls('PutRolePolicy')).toEqual([
      {
        service: 'iam',
        action: 'PutRolePolicy',
        accessKeyId: FAKE_BROKER_KEYS.accessKeyId,
        at: clock,
        params: { Action: 'PutRolePolicy', Version: '2010-05-08', RoleName: 'app', PolicyName: DENY_NAME, PolicyDocument: document },
      },
    ]);
    expect(fake.state.roles.get('app')?.policies.get(DENY_NAME)).toBe(document);
    const cleanupAt = grant.expiresAt + DEFAULT_DENY_SKEW_MS;
    expect(result).toEqual({
      detail: `revoke: deny policy ${DENY_NAME} on role app for aws:userid ${userId} until ${new Date(cleanupAt).toISOString()}`,
      cleanupAt,
    });

    // Idempotent: a second revoke puts the same policy.
    await p.teardown(plan, grant, 'revoke', clock);
    expect(fake.calls('PutRolePolicy')).toHaveLength(2);
    expect(fake.state.roles.get('app')?.policies.size).toBe(1);

    clock = cleanupAt;
    await p.cleanup?.(plan, grant, clock);
    expect(fake.calls('DeleteRolePolicy')[0].params).toEqual({ Action: 'DeleteRolePolicy', Version: '2010-05-08', RoleName: 'app', PolicyName: DENY_NAME });
    expect(fake.state.roles.get('app')?.policies.size).toBe(0);
    // Idempotent: NoSuchEntity on the second delete is success.
    await expect(p.cleanup?.(plan, grant, clock)).resolves.toBeUndefined();
  });

  it('refuses to clean up before the credential expired', async () => {
    const { p, plan, grant } = await issued();
    await p.teardown(plan, grant, 'revoke', clock);
    await expect(p.cleanup?.(plan, grant, grant.expiresAt)).rejects.toThrow(/is due at/);
    expect(fake.state.roles.get('app')?.policies.has(DENY_NAME)).toBe(true);
    expect(fake.calls('DeleteRolePolicy')).toEqual([]);
  });

  it('deny_on_revoke false: relies on expiry, no IAM call', async () => {
    const { p, plan, grant } = await issued({ deny_on_revoke: false });
    const result = await p.teardown(plan, grant, 'revoke', clock);
    expect(result).toEqual({
      detail: `revoke: deny_on_revoke is off; session ${SESSION} of ${ROLE_ARN} relied on expiry at 2026-11-23T12:30:00.000Z`,
      cleanupAt: null,
    });
    expect(fake.requests.filter((r) => r.service === 'iam')).toEqual([]);
  });

  it('an expired credential needs no deny', async () => {
    const { p, plan, grant } = await issued();
    const result = await p.teardown(plan, grant, 'revoke', grant.expiresAt + DEFAULT_DENY_SKEW_MS);
    expect(result).toEqual({ detail: `revoke: session ${SESSION} of ${ROLE_ARN} expired at 2026-11-23T12:30:00.000Z; nothing to deny`, cleanupAt: null });
    expect(fake.calls('PutRolePolicy')).toEqual([]);
  });

  it('rollback of a half-finished issue (no grant recorded) denies the session name on any role id, until the lease hard end', async () => {
    const p = provider();
    const req = request();
    const plan = p.plan(req);
    // The crash: AWS issued the credential, the broker never recorded it.
    await p.issue(req, plan);
    clock = T0 + 5_000;
    const result = await p.teardown(plan, null, 'rollback', clock);
    const put = fake.calls('PutRolePolicy')[0].params;
    expect(put.PolicyName).toBe(DENY_NAME);
    const condition = (JSON.parse(put.PolicyDocument) as { Statement: Array<{ Condition: { StringLike: { 'aws:userid': string } } }> }).Statement[0].Condition;
    expect(condition).toEqual({ StringLike: { 'aws:userid': `*:${SESSION}` } });
    // The pattern matches the session AWS issued, and no other session name.
    expect(stringLike(`*:${SESSION}`, fake.state.sessions[0].assumedRoleId)).toBe(true);
    expect(stringLike(`*:${SESSION}`, `${fake.state.roles.get('app')?.roleId}:tvm-other`)).toBe(false);
    const cleanupAt = T0 + 2 * 3600_000 + DEFAULT_DENY_SKEW_MS;
    expect(result).toEqual({
      detail: `rollback: deny policy ${DENY_NAME} on role app for aws:userid *:${SESSION} until ${new Date(cleanupAt).toISOString()}`,
      cleanupAt,
    });
    await p.cleanup?.(plan, null, cleanupAt);
    expect(fake.state.roles.get('app')?.policies.size).toBe(0);
  });

  it('rollback when the issue never reached AWS is harmless and idempotent', async () => {
    const p = provider();
    const plan = p.plan(request());
    await p.teardown(plan, null, 'rollback', clock);
    await p.teardown(plan, null, 'rollback', clock);
    expect(fake.state.roles.get('app')?.policies.size).toBe(1);
  });
});

describe('LimitExceeded: the role-wide fallback', () => {
  function roleWide(): { sid: string; before: string } {
    const doc = fake.state.roles.get('app')?.policies.get(ROLE_WIDE_DENY_NAME);
    const st = (JSON.parse(doc ?? '{}') as { Statement: Array<{ Sid: string; Condition: { DateLessThan: Record<string, string> } }> }).Statement[0];
    return { sid: st.Sid, before: st.Condition.DateLessThan['aws:TokenIssueTime'] };
  }

  it('denies every session of the role issued before now, records it, and removes it at cleanup', async () => {
    const p = provider();
    const req = request();
    const plan = p.plan(req);
    const grant = await p.issue(req, plan);
    clock = T0 + 60_500;
    fake.failNext('PutRolePolicy', 409, 'LimitExceeded', 'Maximum policy size of 10240 bytes exceeded for role app');
    const result = await p.teardown(plan, grant, 'revoke', clock);
    const keepUntil = grant.expiresAt + DEFAULT_DENY_SKEW_MS;
    const expected =
      '{"Version":"2012-10-17","Statement":[{"Sid":"TvmIssuedBeforeKeepUntil' +
      `${keepUntil / 1000}","Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-23T12:01:01Z"}}}]}`;
    expect(fake.requests.map((r) => `${r.action} ${r.params.PolicyName ?? ''}`)).toEqual([
      'AssumeRoleWithWebIdentity ',
      `PutRolePolicy ${DENY_NAME}`,
      `GetRolePolicy ${ROLE_WIDE_DENY_NAME}`,
      `PutRolePolicy ${ROLE_WIDE_DENY_NAME}`,
    ]);
    expect(fake.calls('PutRolePolicy')[1].params.PolicyDocument).toBe(expected);
    expect(result).toEqual({
      detail:
        `revoke: inline policies of role app are full (LimitExceeded): role-wide deny ${ROLE_WIDE_DENY_NAME} on every session issued before ` +
        `2026-11-23T12:01:01Z (collateral: other sessions of the role issued before then are denied too) until ${new Date(keepUntil).toISOString()}`,
      cleanupAt: keepUntil,
    });
    await p.cleanup?.(plan, grant, keepUntil);
    expect(fake.state.roles.get('app')?.policies.size).toBe(0);
  });

  it('shares one role-wide policy: the later time wins, and only the last cleanup removes it', async () => {
    const p = provider();
    // Fill the role so that no per-session deny fits, but the role-wide one (replacing in place) does.
    const role = fake.state.roles.get('app');
    const wideChars = roleWideDenyDocument(T0, T0 + 86_400_000).length;
    const sessionChars = sessionDenyDocument(`${role?.roleId}:tvm-aaaaaaaa-0000-4000-8000-000000000001`).length;
    expect(sessionChars).toBeGreaterThan(wideChars);
    const admin = (n: number) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: 'x'.repeat(n) }] });
    role?.policies.set('admin', admin(10_240 - wideChars - admin(0).length));
    const reqA = request({ grantId: 'aaaaaaaa-0000-4000-8000-000000000001', leaseExpiresAt: clock + 900_000 });
    const planA = p.plan(reqA);
    const grantA = await p.issue(reqA, planA);
    const reqB = request({ grantId: 'bbbbbbbb-0000-4000-8000-000000000002', leaseExpiresAt: clock + 3600_000 });
    const planB = p.plan(reqB);
    const grantB = await p.issue(reqB, planB);

    clock = T0 + 10_000;
    const a = await p.teardown(planA, grantA, 'revoke', clock);
    expect(a.detail).toContain('role-wide deny');
    expect(roleWide()).toEqual({ sid: `TvmIssuedBeforeKeepUntil${(grantA.expiresAt + DEFAULT_DENY_SKEW_MS) / 1000}`, before: '2026-11-23T12:00:10Z' });
    clock = T0 + 20_000;
    const b = await p.teardown(planB, grantB, 'revoke', clock);
    expect(roleWide()).toEqual({ sid: `TvmIssuedBeforeKeepUntil${(grantB.expiresAt + DEFAULT_DENY_SKEW_MS) / 1000}`, before: '2026-11-23T12:00:20Z' });
    expect(b.cleanupAt).toBe(grantB.expiresAt + DEFAULT_DENY_SKEW_MS);

    // A's cleanup comes first: B's revoked session still needs the policy.
    await p.cleanup?.(planA, grantA, a.cleanupAt as number);
    expect(role?.policies.has(ROLE_WIDE_DENY_NAME)).toBe(true);
    await p.cleanup?.(planB, grantB, b.cleanupAt as number);
    expect(role?.policies.has(ROLE_WIDE_DENY_NAME)).toBe(false);
    expect([...(role?.policies.keys() ?? [])]).toEqual(['admin']);
  });

  it('a revoke storm: when the per-session denies fill the quota, one role-wide deny replaces them and keeps the revokes going', async () => {
    const p = provider();
    const role = fake.state.roles.get('app');
    const grants: Array<{ plan: ReturnType<typeof p.plan>; grant: Awaited<ReturnType<typeof p.issue>> }> = [];
    for (let i = 0; i < 60; i++) {
      const req = request({ grantId: `0000${String(i).padStart(4, '0')}-0000-4000-8000-000000000000` });
      const plan = p.plan(req);
      grants.push({ plan, grant: await p.issue(req, plan) });
    }
    clock = T0 + 30_000;
    const details: string[] = [];
    for (const g of grants) details.push((await p.teardown(g.plan, g.grant, 'revoke', clock)).detail);
    // Every revoke succeeded; the first ones got per-session denies, then the quota forced the role-wide one.
    const firstWide = details.findIndex((d) => d.includes('role-wide deny'));
    expect(firstWide).toBeGreaterThan(10);
    expect(details[firstWide]).toMatch(new RegExp(`it replaced ${firstWide} per-session denies to fit$`));
    // What the role holds now: the role-wide deny, plus per-session denies written after it.
    const names = [...(role?.policies.keys() ?? [])];
    expect(names).toContain(ROLE_WIDE_DENY_NAME);
    // The role-wide deny covers sessions issued before the storm, for as long as any AWS session can live.
    expect(roleWide().before).toBe('2026-11-23T12:00:30Z');
    expect(roleWide().sid).toBe(`TvmIssuedBeforeKeepUntil${Math.ceil((clock + 43_200_000 + DEFAULT_DENY_SKEW_MS) / 1000)}`);
    // Every revoked session is denied, by its own deny or by the role-wide one.
    for (const g of grants) {
      const own = role?.policies.has(`tvm-deny-${g.plan.session_name as string}`);
      expect(own || names.includes(ROLE_WIDE_DENY_NAME)).toBe(true);
    }
  });

  it('when even the role-wide policy does not fit: ERR_CLOUD_LIMIT', async () => {
    const p = provider();
    fake.state.roles.get('app')?.policies.set('admin', JSON.stringify({ Resource: 'x'.repeat(10_200) }));
    const req = request();
    const plan = p.plan(req);
    const grant = await p.issue(req, plan);
    const err = await rejection(p.teardown(plan, grant, 'revoke', clock));
    expect(err.code).toBe('ERR_CLOUD_LIMIT');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^aws: PutRolePolicy tvm-deny-issued-before on role app \(after LimitExceeded\): LimitExceeded \(HTTP 409\)/);
  });
});

describe('errors', () => {
  it.each([
    ['AssumeRoleWithWebIdentity', 403, 'AccessDenied', 'ERR_CLOUD_DENIED'],
    ['AssumeRoleWithWebIdentity', 400, 'InvalidIdentityToken', 'ERR_CLOUD_DENIED'],
    ['AssumeRoleWithWebIdentity', 400, 'ExpiredTokenException', 'ERR_CLOUD_DENIED'],
    ['AssumeRoleWithWebIdentity', 403, 'IDPRejectedClaim', 'ERR_CLOUD_DENIED'],
    ['AssumeRoleWithWebIdentity', 400, 'PackedPolicyTooLarge', 'ERR_CLOUD_LIMIT'],
    ['AssumeRoleWithWebIdentity', 400, 'IDPCommunicationError', 'ERR_CLOUD_UNAVAILABLE'],
    ['AssumeRoleWithWebIdentity', 400, 'Throttling', 'ERR_CLOUD_UNAVAILABLE'],
    ['AssumeRoleWithWebIdentity', 503, 'ServiceUnavailable', 'ERR_CLOUD_UNAVAILABLE'],
    ['AssumeRoleWithWebIdentity', 500, 'InternalFailure', 'ERR_CLOUD_UNAVAILABLE'],
    ['AssumeRoleWithWebIdentity', 400, 'RegionDisabledException', 'ERR_CLOUD_DENIED'],
  ])('%s %s %s → %s', async (action, status, code, expected) => {
    const p = provider();
    const req = request();
    fake.failNext(action, status, code, `injected ${code}`);
    const err = await rejection(p.issue(req, p.plan(req)));
    expect(err.code).toBe(expected);
    expect(err.retryable).toBe(expected === 'ERR_CLOUD_UNAVAILABLE');
    expect(err.message).toContain(`AssumeRoleWithWebIdentity ${ROLE_ARN}: `);
    expect(err.message).toContain(`(HTTP ${status}): injected ${code}`);
    expect(err.message).not.toContain(TOKEN);
  });

  it("a duration over the role's MaxSessionDuration is a limit, with the fix", async () => {
    fake.state.roles.get('app')!.maxSessionDurationS = 3600;
    const p = provider();
    const req = request({ leaseExpiresAt: clock + 7200_000, leaseMaxExpiresAt: clock + 7200_000 });
    const err = await rejection(p.issue(req, p.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_LIMIT');
    expect(err.message).toBe(
      `aws: AssumeRoleWithWebIdentity ${ROLE_ARN}: ValidationError (HTTP 400): The requested DurationSeconds exceeds the MaxSessionDuration set for this role. (raise the IAM role's MaxSessionDuration or lower the tvm role's ttl)`,
    );
  });

  it('an unknown role is denied', async () => {
    const p = provider();
    const req = request({}, { role_arn: 'arn:aws:iam::123456789012:role/missing' });
    const err = await rejection(p.issue(req, p.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
  });

  it('a network failure is unavailable (retryable)', async () => {
    const closed = await startAwsFake();
    const url = closed.url;
    await closed.close();
    const p = createAwsProvider({ stsEndpoint: url, iamEndpoint: url, credentials: FAKE_BROKER_KEYS, maxAttempts: 1 });
    const req = request();
    const err = await rejection(p.issue(req, p.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    const plan = p.plan(req);
    expect((await rejection(p.teardown(plan, null, 'rollback', clock))).code).toBe('ERR_CLOUD_UNAVAILABLE');
  });

  it('the SDK retries a throttled call within maxAttempts', async () => {
    const p = provider({ maxAttempts: 2 });
    const req = request();
    fake.failNext('AssumeRoleWithWebIdentity', 400, 'Throttling', 'Rate exceeded');
    const grant = await p.issue(req, p.plan(req));
    expect(grant.expiresAt).toBe(T0 + 1800_000);
    expect(fake.calls('AssumeRoleWithWebIdentity')).toHaveLength(2);
  });

  it('revoke: IAM failures are mapped; a missing role is denied', async () => {
    const p = provider();
    const req = request();
    const plan = p.plan(req);
    const grant = await p.issue(req, plan);
    fake.failNext('PutRolePolicy', 500, 'ServiceFailure');
    expect((await rejection(p.teardown(plan, grant, 'revoke', clock))).code).toBe('ERR_CLOUD_UNAVAILABLE');
    fake.state.roles.delete('app');
    const err = await rejection(p.teardown(plan, grant, 'revoke', clock));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toContain('NoSuchEntity (HTTP 404)');
  });

  it('no broker credentials: AssumeRole is denied with a clear message, web identity needs none', async () => {
    const p = createAwsProvider({ stsEndpoint: fake.url, credentials: async () => Promise.reject(Object.assign(new Error('no keys'), { name: 'CredentialsProviderError' })), maxAttempts: 1 });
    const req = request({}, { method: 'assume_role' });
    const err = await rejection(p.issue(req, p.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toContain('the broker has no AWS credentials');
    const web = request();
    await expect(p.issue(web, p.plan(web))).resolves.toMatchObject({ expiresAt: T0 + 1800_000 });
  });
});
