// The AWS CloudProvider: STS for the credential, IAM for revocation.
//
// issue   web_identity: AssumeRoleWithWebIdentity with the tvm token as the web
//         identity (unsigned: the token is the proof); assume_role: AssumeRole
//         signed with the broker's own credentials, SourceIdentity and session
//         tags `tvm:sub`, `tvm:jti` carrying the workload. Both pass the
//         session policy (plan.policy) and RoleSessionName `tvm-<grantId>`, and
//         DurationSeconds = clamp(leaseExpiresAt - now, 900, min(43200,
//         leaseMaxExpiresAt - now)) in whole seconds; a lease with under 900 s
//         to its hard end gets no credential (ERR_CLOUD_LIMIT).
// renew   a new AssumeRole* (with the renewed token) only when the lease now ends
//         after the current credential; otherwise, or when under 900 s remain to
//         the lease's hard end, the current credential is returned. The session
//         name is unchanged, so a revoke denies old and new credentials alike.
// revoke  (deny_on_revoke) PutRolePolicy on the role: inline policy
//         `tvm-deny-<session>` denying everything to aws:userid
//         "<AROA role id>:<session>"; cleanupAt = the credential's expiry plus
//         a skew margin, when `cleanup` deletes it (NoSuchEntity is success).
//         Rollback (no grant: the assumed role id was never recorded) denies
//         aws:userid "*:<session>" (the session name is unique to the grant)
//         until the lease's hard end. When the role's inline policies are full
//         (LimitExceeded, 10,240 characters in all), the fallback is one
//         role-wide policy `tvm-deny-issued-before` denying every session of the
//         role whose aws:TokenIssueTime is before now: wider (healthy sessions
//         issued before then fail too, until it is removed), never narrower.
//         Its Sid carries the time it may be removed; each cleanup removes it
//         once that time has passed.
//
// What revoke cannot do: IAM changes take effect after a propagation delay
// (typically seconds), and with deny_on_revoke false the credential stays valid
// until it expires.

import { createHash } from 'node:crypto';
import {
  AssumeRoleCommand,
  AssumeRoleWithWebIdentityCommand,
  STSClient,
  type AssumeRoleResponse,
  type STSClientConfig,
} from '@aws-sdk/client-sts';
import { DeleteRolePolicyCommand, GetRolePolicyCommand, IAMClient, ListRolePoliciesCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { CloudError, IamFieldError } from '../errors.ts';
import type { CloudCredential, CloudGrant, CloudPlan, CloudProvider, GrantRequest, TeardownResult } from '../types.ts';
import { awsModule, MAX_SESSION_S, MIN_SESSION_S, parseRoleArn, sessionPolicyFor, type AwsMethod, type AwsTarget } from './module.ts';

export interface AwsProviderOptions {
  /** Region of the STS and IAM clients when the target names none (default us-east-1). */
  region?: string;
  /** Endpoint overrides (tests point them at a loopback fake). */
  stsEndpoint?: string;
  iamEndpoint?: string;
  /**
   * The broker's own AWS credentials, for IAM (deny policies) and AssumeRole:
   * static keys or a provider. Default: the SDK's default chain.
   */
  credentials?: STSClientConfig['credentials'];
  /** The SDK's attempts per call (default: the SDK's, 3). */
  maxAttempts?: number;
  /** Added to a credential's expiry before its deny policy may go (default 120 s: clock skew). */
  denySkewMs?: number;
}

/** The write-ahead entry: everything teardown needs, no secret. */
export interface AwsPlan extends CloudPlan {
  cloud: 'aws';
  method: AwsMethod;
  role_arn: string;
  /** The role's name, as IAM's RoleName takes it. */
  role_name: string;
  region: string | null;
  /** RoleSessionName: `tvm-<grantId>`. */
  session_name: string;
  /** The inline deny policy revoke puts on the role. */
  deny_policy_name: string;
  deny_on_revoke: boolean;
  /** The session policy JSON sent as `Policy`. */
  policy: string;
  policy_chars: number;
  /** The lease's hard end: no credential of this grant outlives it (epoch ms). */
  not_after: number;
}

/** The role-wide fallback deny's name (one per role, shared by every revoke that needs it). */
export const ROLE_WIDE_DENY_NAME = 'tvm-deny-issued-before';
export const DEFAULT_DENY_SKEW_MS = 120_000;

const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;

/** RoleSessionName for a grant: `tvm-<grantId>`, or a hash of the id when that does not fit AWS's 64 of [\w+=,.@-]. */
export function sessionNameFor(grantId: string): string {
  const direct = `tvm-${grantId}`;
  if (SESSION_NAME.test(direct)) return direct;
  return `tvm-${createHash('sha256').update(grantId).digest('hex').slice(0, 40)}`;
}

/** SourceIdentity: 2 to 64 of [\w+=,.@-]; other characters become "_" (the exact subject is in the tvm:sub tag). */
export function sourceIdentityFor(subject: string): string | undefined {
  const clean = subject.replace(/[^\w+=,.@-]/g, '_').slice(0, 64);
  return clean.length >= 2 ? clean : undefined;
}

/** A session tag value: up to 256 of [\p{L}\p{Z}\p{N}_.:/=+\-@]; other characters become "_". */
export function tagValueFor(value: string): string {
  return [...value.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_')].slice(0, 256).join('');
}

/** DurationSeconds for a request: as close to the lease's expiry as AWS's 900 s minimum allows, never past its hard end. */
export function durationSecondsFor(req: Pick<GrantRequest<unknown>, 'now' | 'leaseExpiresAt' | 'leaseMaxExpiresAt'>): number {
  const maxS = Math.floor((req.leaseMaxExpiresAt - req.now) / 1000);
  if (maxS < MIN_SESSION_S) {
    throw new CloudError(
      'aws',
      'ERR_CLOUD_LIMIT',
      `the lease ends in ${Math.max(maxS, 0)}s, under AWS's minimum session of ${MIN_SESSION_S}s: a credential would outlive it`,
    );
  }
  const wantS = Math.ceil((req.leaseExpiresAt - req.now) / 1000);
  return Math.min(Math.max(wantS, MIN_SESSION_S), Math.min(MAX_SESSION_S, maxS));
}

/** The inline policy that denies one session everything. `userId` is "<role id>:<session>" or "*:<session>". */
export function sessionDenyDocument(userId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Sid: 'TvmRevokedSession', Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringLike: { 'aws:userid': userId } } }],
  });
}

const ROLE_WIDE_SID = /^TvmIssuedBeforeKeepUntil(\d+)$/;

/** The role-wide fallback: every session issued before `beforeMs` is denied; it may be removed after `keepUntilMs`. */
export function roleWideDenyDocument(beforeMs: number, keepUntilMs: number): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: `TvmIssuedBeforeKeepUntil${Math.ceil(keepUntilMs / 1000)}`,
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: { DateLessThan: { 'aws:TokenIssueTime': isoSeconds(beforeMs) } },
      },
    ],
  });
}

function parseRoleWide(document: string): { beforeMs: number; keepUntilMs: number } | null {
  try {
    const doc = JSON.parse(document) as { Statement?: Array<{ Sid?: string; Condition?: { DateLessThan?: Record<string, string> } }> };
    const st = doc.Statement?.[0];
    const m = ROLE_WIDE_SID.exec(st?.Sid ?? '');
    const before = Date.parse(st?.Condition?.DateLessThan?.['aws:TokenIssueTime'] ?? '');
    if (!m || Number.isNaN(before)) return null;
    return { beforeMs: before, keepUntilMs: Number(m[1]) * 1000 };
  } catch {
    return null;
  }
}

/** ISO 8601 rounded up to the second (IAM's date format). */
function isoSeconds(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

// ---- errors

const LIMIT_CODES = new Set(['LimitExceeded', 'PackedPolicyTooLarge']);
const UNAVAILABLE_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequests',
  'RequestThrottled',
  'ServiceUnavailable',
  'ServiceFailure',
  'InternalFailure',
  'InternalError',
  'IDPCommunicationError',
  'RequestTimeout',
  'TimeoutError',
]);

interface SdkError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The AWS error code of an SDK error ("PackedPolicyTooLargeException" → "PackedPolicyTooLarge"). */
export function awsErrorCode(err: unknown): string {
  const name = (err as SdkError | null)?.name ?? 'Error';
  return name.endsWith('Exception') && name !== 'ThrottlingException' ? name.slice(0, -'Exception'.length) : name;
}

/** Maps an SDK error to CloudError: quotas → LIMIT, throttling/5xx/network → UNAVAILABLE, other 4xx → DENIED. */
export function toCloudError(err: unknown, what: string): CloudError {
  if (err instanceof CloudError) return err;
  const e = (err ?? {}) as SdkError;
  const code = awsErrorCode(err);
  const status = e.$metadata?.httpStatusCode;
  const detail = (e.message ?? '').slice(0, 300);
  const message = `${what}: ${code}${status === undefined ? '' : ` (HTTP ${status})`}${detail ? `: ${detail}` : ''}`;
  if (LIMIT_CODES.has(code)) return new CloudError('aws', 'ERR_CLOUD_LIMIT', message, { cause: err });
  if (code === 'ValidationError' && /MaxSessionDuration/i.test(detail)) {
    return new CloudError('aws', 'ERR_CLOUD_LIMIT', `${message} (raise the IAM role's MaxSessionDuration or lower the tvm role's ttl)`, { cause: err });
  }
  if (code === 'CredentialsProviderError') {
    return new CloudError('aws', 'ERR_CLOUD_DENIED', `${what}: the broker has no AWS credentials (${detail})`, { cause: err });
  }
  if (UNAVAILABLE_CODES.has(code) || status === undefined || status === 429 || status >= 500) {
    return new CloudError('aws', 'ERR_CLOUD_UNAVAILABLE', message, { cause: err });
  }
  return new CloudError('aws', 'ERR_CLOUD_DENIED', message, { cause: err });
}

// ---- the provider

function asPlan(plan: CloudPlan): AwsPlan {
  const p = plan as Partial<AwsPlan>;
  if (
    p.cloud !== 'aws' ||
    typeof p.role_arn !== 'string' ||
    typeof p.role_name !== 'string' ||
    typeof p.session_name !== 'string' ||
    typeof p.deny_policy_name !== 'string' ||
    typeof p.policy !== 'string' ||
    typeof p.not_after !== 'number'
  ) {
    throw new Error('not an AWS plan: expected cloud "aws" with role_arn, role_name, session_name, deny_policy_name, policy, not_after');
  }
  return p as AwsPlan;
}

export function createAwsProvider(options: AwsProviderOptions = {}): CloudProvider<AwsTarget> {
  const defaultRegion = options.region ?? 'us-east-1';
  const skewMs = options.denySkewMs ?? DEFAULT_DENY_SKEW_MS;
  const stsClients = new Map<string, STSClient>();
  let iamClient: IAMClient | null = null;

  const sts = (region: string | null): STSClient => {
    const r = region ?? defaultRegion;
    let client = stsClients.get(r);
    if (!client) {
      client = new STSClient({ region: r, endpoint: options.stsEndpoint, credentials: options.credentials, maxAttempts: options.maxAttempts });
      stsClients.set(r, client);
    }
    return client;
  };
  const iam = (): IAMClient => {
    iamClient ??= new IAMClient({ region: defaultRegion, endpoint: options.iamEndpoint, credentials: options.credentials, maxAttempts: options.maxAttempts });
    return iamClient;
  };

  async function call<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw toCloudError(err, what);
    }
  }

  async function assume(req: GrantRequest<AwsTarget>, p: AwsPlan): Promise<CloudGrant> {
    const common = { RoleArn: p.role_arn, RoleSessionName: p.session_name, Policy: p.policy, DurationSeconds: durationSecondsFor(req) };
    let out: AssumeRoleResponse & { SubjectFromWebIdentityToken?: string };
    if (p.method === 'web_identity') {
      out = await call(`AssumeRoleWithWebIdentity ${p.role_arn}`, () =>
        sts(p.region).send(new AssumeRoleWithWebIdentityCommand({ ...common, WebIdentityToken: req.token })),
      );
    } else {
      const sourceIdentity = sourceIdentityFor(req.subject);
      out = await call(`AssumeRole ${p.role_arn}`, () =>
        sts(p.region).send(
          new AssumeRoleCommand({
            ...common,
            ...(sourceIdentity === undefined ? {} : { SourceIdentity: sourceIdentity }),
            Tags: [
              { Key: 'tvm:sub', Value: tagValueFor(req.subject) },
              { Key: 'tvm:jti', Value: tagValueFor(req.jti) },
            ],
          }),
        ),
      );
    }
    const c = out.Credentials;
    const user = out.AssumedRoleUser;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date) || !user?.AssumedRoleId) {
      throw new CloudError('aws', 'ERR_CLOUD_UNAVAILABLE', `STS answered for ${p.role_arn} without credentials or an assumed role id`);
    }
    const expiresAt = c.Expiration.getTime();
    const env: Record<string, string> = {
      AWS_ACCESS_KEY_ID: c.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: c.SecretAccessKey,
      AWS_SESSION_TOKEN: c.SessionToken,
      AWS_CREDENTIAL_EXPIRATION: iso(expiresAt),
    };
    if (p.region !== null) {
      env.AWS_REGION = p.region;
      env.AWS_DEFAULT_REGION = p.region;
    }
    const credential: CloudCredential = {
      cloud: 'aws',
      expires_at: iso(expiresAt),
      env,
      access_key_id: c.AccessKeyId,
      secret_access_key: c.SecretAccessKey,
      session_token: c.SessionToken,
      assumed_role_id: user.AssumedRoleId,
      arn: user.Arn ?? null,
      region: p.region,
    };
    const state: Record<string, unknown> = { assumed_role_id: user.AssumedRoleId, arn: user.Arn ?? null, duration_s: common.DurationSeconds };
    if (out.PackedPolicySize !== undefined) state.packed_policy_size = out.PackedPolicySize;
    if (out.SessionTokenUtilization !== undefined) state.session_token_utilization = out.SessionTokenUtilization;
    if (out.SourceIdentity !== undefined) state.source_identity = out.SourceIdentity;
    return { credential, expiresAt, state };
  }

  async function getRolePolicy(roleName: string, policyName: string): Promise<string | null> {
    try {
      const out = await iam().send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }));
      // IAM returns policy documents URL-encoded (RFC 3986).
      return out.PolicyDocument === undefined ? null : decodeURIComponent(out.PolicyDocument);
    } catch (err) {
      if (awsErrorCode(err) === 'NoSuchEntity') return null;
      throw toCloudError(err, `GetRolePolicy ${policyName} on role ${roleName}`);
    }
  }

  async function deleteRolePolicy(roleName: string, policyName: string): Promise<boolean> {
    try {
      await iam().send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }));
      return true;
    } catch (err) {
      if (awsErrorCode(err) === 'NoSuchEntity') return false;
      throw toCloudError(err, `DeleteRolePolicy ${policyName} on role ${roleName}`);
    }
  }

  async function listRolePolicies(roleName: string): Promise<string[]> {
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const out = await call(`ListRolePolicies on role ${roleName}`, () => iam().send(new ListRolePoliciesCommand({ RoleName: roleName, Marker: marker })));
      names.push(...(out.PolicyNames ?? []));
      marker = out.IsTruncated ? out.Marker : undefined;
    } while (marker !== undefined);
    return names;
  }

  const putRolePolicy = (roleName: string, policyName: string, document: string) =>
    iam().send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: policyName, PolicyDocument: document }));

  /** The LimitExceeded fallback: deny every session of the role issued before now, kept until `keepUntil` at least. */
  async function denyIssuedBefore(p: AwsPlan, now: number, keepUntil: number): Promise<TeardownResult> {
    const existing = await getRolePolicy(p.role_name, ROLE_WIDE_DENY_NAME);
    const prev = existing === null ? null : parseRoleWide(existing);
    const before = Math.max(now, prev?.beforeMs ?? 0);
    let until = Math.max(keepUntil, prev?.keepUntilMs ?? 0);
    let consolidated = 0;
    try {
      await putRolePolicy(p.role_name, ROLE_WIDE_DENY_NAME, roleWideDenyDocument(before, until));
    } catch (err) {
      if (awsErrorCode(err) !== 'LimitExceeded') throw toCloudError(err, `PutRolePolicy ${ROLE_WIDE_DENY_NAME} on role ${p.role_name} (after LimitExceeded)`);
      // Even the role-wide deny does not fit: the per-session denies fill the quota. Every
      // session they deny was issued before now, so the role-wide deny covers them all;
      // it must then last as long as any session can (12 h), and they can go.
      until = Math.max(until, now + MAX_SESSION_S * 1000 + skewMs);
      const sessionDenies = (await listRolePolicies(p.role_name)).filter((n) => n.startsWith('tvm-deny-') && n !== ROLE_WIDE_DENY_NAME);
      if (sessionDenies.length === 0) {
        // The quota is full of policies tvm did not write: nothing of ours to make room with.
        throw toCloudError(err, `PutRolePolicy ${ROLE_WIDE_DENY_NAME} on role ${p.role_name} (after LimitExceeded)`);
      }
      // Room for the role-wide deny: one per-session deny goes first (for the moment
      // between the two calls that one revoked session is not denied), the rest after.
      await deleteRolePolicy(p.role_name, sessionDenies[0]);
      await call(`PutRolePolicy ${ROLE_WIDE_DENY_NAME} on role ${p.role_name} (after LimitExceeded)`, () =>
        putRolePolicy(p.role_name, ROLE_WIDE_DENY_NAME, roleWideDenyDocument(before, until)),
      );
      for (const name of sessionDenies.slice(1)) await deleteRolePolicy(p.role_name, name);
      consolidated = sessionDenies.length;
    }
    return {
      detail:
        `inline policies of role ${p.role_name} are full (LimitExceeded): role-wide deny ${ROLE_WIDE_DENY_NAME} on every session issued before ` +
        `${isoSeconds(before)} (collateral: other sessions of the role issued before then are denied too) until ${iso(until)}` +
        (consolidated > 0 ? `; it replaced ${consolidated} per-session denies to fit` : ''),
      // The Sid keeps whole seconds: the cleanup that finds that time passed must not run earlier.
      cleanupAt: Math.ceil(until / 1000) * 1000,
    };
  }

  return {
    cloud: 'aws',
    module: awsModule,

    plan(req) {
      const target = awsModule.parseTarget(req.target, 'iam.aws');
      const arn = parseRoleArn(target.role_arn);
      const policy = sessionPolicyFor(target, req.scopes);
      if (arn === null || policy === null) {
        throw new IamFieldError('iam.aws', 'the grant has no read or write pattern of scheme s3:// or dynamodb://');
      }
      const session = sessionNameFor(req.grantId);
      const plan: AwsPlan = {
        cloud: 'aws',
        method: target.method,
        role_arn: target.role_arn,
        role_name: arn.name,
        region: target.region,
        session_name: session,
        deny_policy_name: `tvm-deny-${session}`,
        deny_on_revoke: target.deny_on_revoke,
        policy: policy.json,
        policy_chars: policy.chars,
        not_after: req.leaseMaxExpiresAt,
      };
      return plan;
    },

    issue(req, plan) {
      return assume(req, asPlan(plan));
    },

    async renew(req, plan, current) {
      if (req.leaseExpiresAt <= current.expiresAt) return current;
      // Under 900 s to the hard end: AWS cannot issue a credential that short, keep the current one.
      if (req.leaseMaxExpiresAt - req.now < MIN_SESSION_S * 1000) return current;
      return assume(req, asPlan(plan));
    },

    async teardown(plan, grant, reason, now) {
      const p = asPlan(plan);
      const expiresAt = grant?.expiresAt ?? p.not_after;
      const subject = `session ${p.session_name} of ${p.role_arn}`;
      if (!p.deny_on_revoke) {
        return { detail: `${reason}: deny_on_revoke is off; ${subject} relied on expiry at ${iso(expiresAt)}`, cleanupAt: null };
      }
      const cleanupAt = expiresAt + skewMs;
      if (now >= cleanupAt) {
        return { detail: `${reason}: ${subject} expired at ${iso(expiresAt)}; nothing to deny`, cleanupAt: null };
      }
      const recorded = grant?.state.assumed_role_id;
      const userId = typeof recorded === 'string' && recorded !== '' ? recorded : `*:${p.session_name}`;
      try {
        await putRolePolicy(p.role_name, p.deny_policy_name, sessionDenyDocument(userId));
      } catch (err) {
        if (awsErrorCode(err) !== 'LimitExceeded') throw toCloudError(err, `PutRolePolicy ${p.deny_policy_name} on role ${p.role_name}`);
        const fallback = await denyIssuedBefore(p, now, cleanupAt);
        return { detail: `${reason}: ${fallback.detail}`, cleanupAt: fallback.cleanupAt };
      }
      return {
        detail: `${reason}: deny policy ${p.deny_policy_name} on role ${p.role_name} for aws:userid ${userId} until ${iso(cleanupAt)}`,
        cleanupAt,
      };
    },

    async cleanup(plan, grant, now) {
      const p = asPlan(plan);
      const notBefore = (grant?.expiresAt ?? p.not_after) + skewMs;
      if (p.deny_on_revoke && now < notBefore) {
        // Removing the deny early would let a revoked credential work again.
        throw new Error(`cleanup of ${p.deny_policy_name} is due at ${iso(notBefore)}, not before`);
      }
      await deleteRolePolicy(p.role_name, p.deny_policy_name);
      const wide = await getRolePolicy(p.role_name, ROLE_WIDE_DENY_NAME);
      const parsed = wide === null ? null : parseRoleWide(wide);
      if (parsed !== null && parsed.keepUntilMs <= now) await deleteRolePolicy(p.role_name, ROLE_WIDE_DENY_NAME);
    },
  };
}
