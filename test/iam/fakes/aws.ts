// A loopback fake of AWS STS and IAM for the real SDK: the Query protocol
// (form-encoded POST, XML answers) on one HTTP server, with state.
//
//   const fake = await startAwsFake({ oidc: { issuer, clientIds: ['sts.amazonaws.com'] } });
//   fake.addRole('arn:aws:iam::123456789012:role/app');
//   createAwsProvider({ stsEndpoint: fake.url, iamEndpoint: fake.url, credentials: FAKE_BROKER_KEYS, maxAttempts: 1 });
//
// Actions: AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity (STS); PutRolePolicy,
// DeleteRolePolicy, GetRolePolicy, ListRolePolicies (IAM).
//   fake.requests   every call, in order: { service, action, params (the decoded form), accessKeyId (the one a
//                   SigV4 Authorization header names, verified or not; null when unsigned), at }
//   fake.state      roles by name ({ arn, roleId, maxSessionDurationS, trustedSubjects, policies: name → JSON })
//                   and the sessions issued ({ roleArn, sessionName, assumedRoleId, subject, audience, alg, ... })
//   fake.failNext(action | '*', status, code, message?)   the next matching call answers that AWS error
//   GET  <url>/_fake/state     roles, sessions and requests as JSON (for a broker in a child process)
//   POST <url>/_fake/fail      {"action","status","code","message"}: failNext over HTTP
//
// Signatures (sigv4.ts): every signed request is verified as AWS verifies Signature Version 4, with the
// secret of the access key it names: the static keys given (default FAKE_BROKER_KEYS) or a session this fake
// issued (its X-Amz-Security-Token required, refused once expired by the fake's clock). The credential scope
// must name the action's service (sts, iam) and a region the endpoint serves: IAM us-east-1 only (its global
// endpoint); STS any region in AWS_REGIONS (the provider sends every region's STS calls to the one endpoint
// override), or only `stsRegions` when given. X-Amz-Date must be within 5 minutes of `requestClock` (default the
// wall clock the SDK signs with, not `now`, which tests freeze). Refusals as AWS words them: 403
// SignatureDoesNotMatch, 403 InvalidClientTokenId, 400 ExpiredToken, 400 IncompleteSignature.
//
// What it checks as AWS does: RoleSessionName (2 to 64 of [\w+=,.@-]), DurationSeconds (900 to the role's
// MaxSessionDuration), Policy (at most 2,048 characters, JSON), SourceIdentity and session tag characters, a
// valid signature on everything but AssumeRoleWithWebIdentity, inline role policies (names, JSON,
// 10,240 non-whitespace characters in all per role: LimitExceeded), NoSuchEntity on unknown roles/policies.
// With `oidc` configured it verifies the web identity token as AWS does: an OIDC provider registered for the
// token's `iss`, discovery (`<iss>/.well-known/openid-configuration` → jwks_uri) unless `jwksUrl` is given,
// the signature (RS256/384/512 or ES256/384/512 only), `aud` among the provider's client ids, `exp`/`nbf`,
// a `sub`, and the role's trusted subjects. Unlike AWS it accepts an http:// issuer (the dev server's).
// PackedPolicySize is a model (deflated policy + tags over `packedCapacityBytes`), not AWS's algorithm.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { deflateRawSync } from 'node:zlib';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { listenLoopback, readBodyBytes } from './loopback.ts';
import { claimedAccessKeyId, SigV4Refusal, verifySigV4, type SigV4Key } from './sigv4.ts';

export interface AwsFakeOidcProvider {
  /** The token issuer, exactly as its `iss`. */
  issuer: string;
  /** The client ids (audiences) registered on the provider. */
  clientIds: string[];
  /** Skip discovery and take keys here. */
  jwksUrl?: string;
}

export interface AwsFakeOptions {
  /** Registered OIDC providers; without any, a web identity token is decoded but not verified. */
  oidc?: AwsFakeOidcProvider | AwsFakeOidcProvider[];
  /** The fake's clock (epoch ms): credential expiry and token time checks. */
  now?: () => number;
  /** The clock X-Amz-Date must be within 5 minutes of (default Date.now: the SDK signs with the wall clock). */
  requestClock?: () => number;
  /** Long-term keys the fake knows (default [FAKE_BROKER_KEYS]). */
  staticKeys?: AwsFakeStaticKey[];
  /** Regions whose STS endpoint this fake stands for (default every region in AWS_REGIONS). */
  stsRegions?: string[];
  /** Aggregate inline policy size per role (non-whitespace characters; AWS: 10,240). */
  inlinePolicyLimit?: number;
  /** PackedPolicySize = 100 × deflated(policy + tags) / this (default 1,400). */
  packedCapacityBytes?: number;
}

export interface AwsFakeStaticKey {
  accessKeyId: string;
  secretAccessKey: string;
  /** What GetCallerIdentity answers for it (default an IAM user tvm-broker in 123456789012). */
  arn?: string;
}

export interface AwsFakeRequest {
  service: 'sts' | 'iam';
  action: string;
  params: Record<string, string>;
  accessKeyId: string | null;
  at: number;
}

export interface AwsFakeRole {
  arn: string;
  name: string;
  roleId: string;
  maxSessionDurationS: number;
  /** When set, AssumeRoleWithWebIdentity accepts only these `sub`s (IDPRejectedClaim otherwise). */
  trustedSubjects: string[] | null;
  policies: Map<string, string>;
}

export interface AwsFakeSession {
  action: 'AssumeRoleWithWebIdentity' | 'AssumeRole';
  roleArn: string;
  sessionName: string;
  assumedRoleId: string;
  accessKeyId: string;
  expiration: string;
  durationS: number;
  policy: string | null;
  /** Web identity: the verified token's claims and header alg (null when not verified). */
  subject: string | null;
  audience: string | null;
  issuer: string | null;
  alg: string | null;
  verified: boolean;
  sourceIdentity: string | null;
  tags: Record<string, string>;
}

export interface AwsFakeState {
  roles: Map<string, AwsFakeRole>;
  sessions: AwsFakeSession[];
}

export interface AwsFake {
  url: string;
  requests: AwsFakeRequest[];
  state: AwsFakeState;
  addRole(arn: string, options?: { maxSessionDurationS?: number; trustedSubjects?: string[] }): AwsFakeRole;
  failNext(action: string, status: number, code: string, message?: string): void;
  /** The requests of one action. */
  calls(action: string): AwsFakeRequest[];
  close(): Promise<void>;
}

/** Static keys for the broker's own credentials in tests (the fake's default static key). */
export const FAKE_BROKER_KEYS = { accessKeyId: 'AKIAFAKEBROKER000001', secretAccessKey: 'fake-broker-secret-key-not-a-real-one-00' };

/** Commercial AWS regions (the aws partition) whose STS endpoints the fake stands for by default. */
export const AWS_REGIONS = [
  'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'af-south-1', 'ap-east-1', 'ap-east-2', 'ap-south-1', 'ap-south-2',
  'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3', 'ap-southeast-1', 'ap-southeast-2', 'ap-southeast-3', 'ap-southeast-4',
  'ap-southeast-5', 'ap-southeast-7', 'ca-central-1', 'ca-west-1', 'eu-central-1', 'eu-central-2', 'eu-west-1', 'eu-west-2',
  'eu-west-3', 'eu-north-1', 'eu-south-1', 'eu-south-2', 'il-central-1', 'me-south-1', 'me-central-1', 'mx-central-1', 'sa-east-1',
];
const STS_ACTIONS = new Set(['AssumeRoleWithWebIdentity', 'AssumeRole', 'GetCallerIdentity']);
const IAM_ACTIONS = new Set(['PutRolePolicy', 'DeleteRolePolicy', 'GetRolePolicy', 'ListRolePolicies']);
const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const IAM_NS = 'https://iam.amazonaws.com/doc/2010-05-08/';
const AWS_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'];
const NAME = /^[\w+=,.@-]+$/;
const TAG = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

class AwsFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Xml = string | number | boolean | null | undefined | Xml[] | { [key: string]: Xml };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function xml(value: Xml): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map((v) => `<member>${xml(v)}</member>`).join('');
  if (typeof value === 'object') {
    return Object.entries(value)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `<${k}>${xml(v)}</${k}>`)
      .join('');
  }
  return esc(String(value));
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function roleIdFor(arn: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = createHash('sha256').update(arn).digest();
  return `AROA${[...bytes.subarray(0, 17)].map((b) => alphabet[b % 32]).join('')}`;
}

function randomId(prefix: string, length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return prefix + [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}

function nonWhitespace(s: string): number {
  return s.replace(/\s/g, '').length;
}


export async function startAwsFake(options: AwsFakeOptions = {}): Promise<AwsFake> {
  const now = options.now ?? Date.now;
  const requestClock = options.requestClock ?? Date.now;
  const staticKeys = new Map<string, AwsFakeStaticKey>((options.staticKeys ?? [FAKE_BROKER_KEYS]).map((k) => [k.accessKeyId, k]));
  const stsRegions = new Set(options.stsRegions ?? AWS_REGIONS);
  const iamRegions = new Set(['us-east-1']);
  /** Temporary credentials issued, by access key id (secrets: never in `state` or a snapshot). */
  const sessionKeys = new Map<string, SigV4Key & { arn: string; userId: string }>();
  const inlineLimit = options.inlinePolicyLimit ?? 10_240;
  const packedCapacity = options.packedCapacityBytes ?? 1_400;
  const providers = options.oidc === undefined ? [] : Array.isArray(options.oidc) ? options.oidc : [options.oidc];
  const keySets = new Map<string, JWTVerifyGetKey>();
  const requests: AwsFakeRequest[] = [];
  const state: AwsFakeState = { roles: new Map(), sessions: [] };
  const failures: Array<{ action: string; status: number; code: string; message: string }> = [];

  const roleByArn = (arn: string): AwsFakeRole | undefined => [...state.roles.values()].find((r) => r.arn === arn);

  function addRole(arn: string, opts: { maxSessionDurationS?: number; trustedSubjects?: string[] } = {}): AwsFakeRole {
    const name = arn.slice(arn.lastIndexOf('/') + 1);
    const role: AwsFakeRole = {
      arn,
      name,
      roleId: roleIdFor(arn),
      maxSessionDurationS: opts.maxSessionDurationS ?? 43_200,
      trustedSubjects: opts.trustedSubjects ?? null,
      policies: new Map(),
    };
    state.roles.set(name, role);
    return role;
  }

  function failNext(action: string, status: number, code: string, message = `injected ${code}`): void {
    failures.push({ action, status, code, message });
  }

  function required(params: Record<string, string>, key: string): string {
    const v = params[key];
    if (v === undefined || v === '') throw new AwsFault(400, 'MissingParameter', `The request must contain the parameter ${key}`);
    return v;
  }

  async function keysFor(provider: AwsFakeOidcProvider): Promise<JWTVerifyGetKey> {
    let keys = keySets.get(provider.issuer);
    if (keys) return keys;
    let jwksUrl = provider.jwksUrl;
    if (jwksUrl === undefined) {
      const res = await fetch(`${provider.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`).catch(() => null);
      if (!res || !res.ok) throw new AwsFault(400, 'IDPCommunicationError', 'Couldn\'t retrieve the OpenID configuration from your identity provider');
      const doc = (await res.json()) as { issuer?: string; jwks_uri?: string };
      if (doc.issuer !== provider.issuer || typeof doc.jwks_uri !== 'string') {
        throw new AwsFault(400, 'InvalidIdentityToken', 'The OpenID configuration of your identity provider does not match its issuer');
      }
      jwksUrl = doc.jwks_uri;
    }
    keys = createRemoteJWKSet(new URL(jwksUrl));
    keySets.set(provider.issuer, keys);
    return keys;
  }

  /** AWS's checks of a web identity token; returns its claims. */
  async function verifyWebIdentity(token: string, role: AwsFakeRole): Promise<{ sub: string; aud: string; iss: string; alg: string; verified: boolean }> {
    let header: { alg?: string };
    let claims: { iss?: string; sub?: string; aud?: string | string[] };
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      throw new AwsFault(400, 'InvalidIdentityToken', 'Couldn\'t parse the web identity token');
    }
    if (providers.length === 0) {
      const aud = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
      return { sub: claims.sub ?? '', aud: aud ?? '', iss: claims.iss ?? '', alg: header.alg ?? '', verified: false };
    }
    const provider = providers.find((p) => p.issuer === claims.iss);
    if (!provider) throw new AwsFault(400, 'InvalidIdentityToken', `No OpenIDConnect provider found in your account for ${claims.iss ?? '(no iss)'}`);
    if (!AWS_ALGS.includes(header.alg ?? '')) throw new AwsFault(400, 'InvalidIdentityToken', `Unsupported token signing algorithm ${header.alg ?? '(none)'}`);
    const keys = await keysFor(provider);
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keys, { issuer: provider.issuer, algorithms: AWS_ALGS, currentDate: new Date(now()) }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AwsFault(400, 'ExpiredTokenException', 'Token is expired');
      throw new AwsFault(400, 'InvalidIdentityToken', `The web identity token is invalid (${(err as Error).name})`);
    }
    const auds = Array.isArray(payload.aud) ? payload.aud : payload.aud === undefined ? [] : [payload.aud];
    const aud = auds.find((a) => provider.clientIds.includes(a));
    if (aud === undefined) throw new AwsFault(400, 'InvalidIdentityToken', 'Incorrect token audience');
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new AwsFault(400, 'InvalidIdentityToken', 'The token has no sub claim');
    if (role.trustedSubjects !== null && !role.trustedSubjects.includes(payload.sub)) {
      throw new AwsFault(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    }
    return { sub: payload.sub, aud, iss: provider.issuer, alg: header.alg as string, verified: true };
  }

  function tagsOf(params: Record<string, string>): Record<string, string> {
    const tags: Record<string, string> = {};
    for (let i = 1; params[`Tags.member.${i}.Key`] !== undefined; i++) {
      const key = params[`Tags.member.${i}.Key`];
      const value = params[`Tags.member.${i}.Value`] ?? '';
      if (key.length < 1 || key.length > 128 || !TAG.test(key) || key.toLowerCase().startsWith('aws:')) {
        throw new AwsFault(400, 'ValidationError', `Invalid session tag key ${JSON.stringify(key)}`);
      }
      if ([...value].length > 256 || !TAG.test(value)) throw new AwsFault(400, 'ValidationError', `Invalid session tag value for ${key}`);
      tags[key] = value;
    }
    if (Object.keys(tags).length > 50) throw new AwsFault(400, 'ValidationError', 'At most 50 session tags');
    return tags;
  }

  async function assume(action: 'AssumeRoleWithWebIdentity' | 'AssumeRole', params: Record<string, string>, signed: boolean): Promise<{ [key: string]: Xml }> {
    if (action === 'AssumeRole' && !signed) throw new AwsFault(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
    const roleArn = required(params, 'RoleArn');
    const sessionName = required(params, 'RoleSessionName');
    if (sessionName.length < 2 || sessionName.length > 64 || !NAME.test(sessionName)) {
      throw new AwsFault(400, 'ValidationError', "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint");
    }
    const durationS = params.DurationSeconds === undefined ? 3600 : Number(params.DurationSeconds);
    const policy = params.Policy ?? null;
    if (policy !== null) {
      if (policy.length > 2048) {
        throw new AwsFault(400, 'ValidationError', "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048");
      }
      try {
        JSON.parse(policy);
      } catch {
        throw new AwsFault(400, 'MalformedPolicyDocument', 'The policy is not valid JSON');
      }
    }
    const role = roleByArn(roleArn);
    if (!role) throw new AwsFault(403, 'AccessDenied', `Not authorized to perform sts:${action}`);
    if (!Number.isInteger(durationS) || durationS < 900) {
      throw new AwsFault(400, 'ValidationError', "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900");
    }
    if (durationS > role.maxSessionDurationS) {
      throw new AwsFault(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    }
    let identity = { sub: null as string | null, aud: null as string | null, iss: null as string | null, alg: null as string | null, verified: false };
    if (action === 'AssumeRoleWithWebIdentity') identity = await verifyWebIdentity(required(params, 'WebIdentityToken'), role);
    const sourceIdentity = params.SourceIdentity ?? null;
    if (sourceIdentity !== null && (sourceIdentity.length < 2 || sourceIdentity.length > 64 || !NAME.test(sourceIdentity) || sourceIdentity.startsWith('aws:'))) {
      throw new AwsFault(400, 'ValidationError', "Value at 'sourceIdentity' failed to satisfy constraint");
    }
    const tags = tagsOf(params);
    const packed = Math.ceil((100 * deflateRawSync(Buffer.from((policy ?? '') + JSON.stringify(tags))).length) / packedCapacity);
    if (packed > 100) throw new AwsFault(400, 'PackedPolicyTooLarge', `Packed size of the session policy and tags is ${packed}% of the allowed space`);

    const assumedRoleId = `${role.roleId}:${sessionName}`;
    const account = role.arn.split(':')[4];
    const partition = role.arn.split(':')[1];
    const assumedArn = `arn:${partition}:sts::${account}:assumed-role/${role.name}/${sessionName}`;
    const accessKeyId = randomId('ASIA', 16);
    const expiresAtMs = Math.floor(now() / 1000) * 1000 + durationS * 1000;
    const expiration = isoSeconds(expiresAtMs);
    const secretAccessKey = randomBytes(30).toString('base64');
    const sessionToken = `FwoGZXIvYXdzE${randomBytes(48).toString('base64')}`;
    sessionKeys.set(accessKeyId, { secretAccessKey, sessionToken, expiresAt: expiresAtMs, arn: assumedArn, userId: assumedRoleId });
    state.sessions.push({
      action,
      roleArn,
      sessionName,
      assumedRoleId,
      accessKeyId,
      expiration,
      durationS,
      policy,
      subject: identity.sub,
      audience: identity.aud,
      issuer: identity.iss,
      alg: identity.alg,
      verified: identity.verified,
      sourceIdentity,
      tags,
    });
    const result: { [key: string]: Xml } = {
      Credentials: {
        AccessKeyId: accessKeyId,
        SecretAccessKey: secretAccessKey,
        SessionToken: sessionToken,
        Expiration: expiration,
      },
      AssumedRoleUser: { AssumedRoleId: assumedRoleId, Arn: assumedArn },
      PackedPolicySize: packed,
    };
    if (action === 'AssumeRoleWithWebIdentity') {
      result.SubjectFromWebIdentityToken = identity.sub;
      result.Audience = identity.aud;
      result.Provider = identity.iss;
    }
    if (sourceIdentity !== null) result.SourceIdentity = sourceIdentity;
    return result;
  }

  /** GetCallerIdentity: who the verified signature belongs to. */
  function callerIdentity(accessKeyId: string | null): Xml {
    if (accessKeyId === null) throw new AwsFault(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
    const session = sessionKeys.get(accessKeyId);
    if (session) return { UserId: session.userId, Account: session.arn.split(':')[4], Arn: session.arn };
    const arn = staticKeys.get(accessKeyId)?.arn ?? 'arn:aws:iam::123456789012:user/tvm-broker';
    return { UserId: `AIDA${accessKeyId.slice(4)}`, Account: arn.split(':')[4], Arn: arn };
  }

  function iamAction(action: string, params: Record<string, string>, signed: boolean): Xml {
    if (!signed) throw new AwsFault(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
    const roleName = required(params, 'RoleName');
    const role = state.roles.get(roleName);
    if (!role) throw new AwsFault(404, 'NoSuchEntity', `The role with name ${roleName} cannot be found.`);
    if (action === 'ListRolePolicies') return { PolicyNames: [...role.policies.keys()].sort(), IsTruncated: false };
    const policyName = required(params, 'PolicyName');
    if (policyName.length > 128 || !NAME.test(policyName)) throw new AwsFault(400, 'ValidationError', "Value at 'policyName' failed to satisfy constraint");
    if (action === 'PutRolePolicy') {
      const document = required(params, 'PolicyDocument');
      try {
        JSON.parse(document);
      } catch {
        throw new AwsFault(400, 'MalformedPolicyDocument', 'Syntax errors in policy.');
      }
      let total = nonWhitespace(document);
      for (const [name, doc] of role.policies) if (name !== policyName) total += nonWhitespace(doc);
      if (total > inlineLimit) throw new AwsFault(409, 'LimitExceeded', `Maximum policy size of ${inlineLimit} bytes exceeded for role ${roleName}`);
      role.policies.set(policyName, document);
      return null;
    }
    const doc = role.policies.get(policyName);
    if (doc === undefined) throw new AwsFault(404, 'NoSuchEntity', `The role policy with name ${policyName} cannot be found.`);
    if (action === 'DeleteRolePolicy') {
      role.policies.delete(policyName);
      return null;
    }
    // GetRolePolicy: IAM answers the document URL-encoded.
    return { RoleName: roleName, PolicyName: policyName, PolicyDocument: encodeURIComponent(doc) };
  }

  function send(res: ServerResponse, status: number, body: string, type = 'text/xml'): void {
    res.writeHead(status, { 'content-type': type, 'x-amzn-requestid': randomId('', 8) });
    res.end(body);
  }

  function snapshot(): unknown {
    return {
      roles: [...state.roles.values()].map((r) => ({ ...r, policies: Object.fromEntries(r.policies) })),
      sessions: state.sessions,
      requests,
    };
  }

  /** The verified access key id of a signed request (null when unsigned); throws AWS's refusal otherwise. */
  function authenticate(req: IncomingMessage, raw: Buffer, service: 'sts' | 'iam'): string | null {
    if (req.headers.authorization === undefined) return null;
    try {
      return verifySigV4(
        { method: req.method ?? '', url: req.url ?? '/', rawHeaders: req.rawHeaders, body: raw },
        {
          service,
          regions: service === 'sts' ? stsRegions : iamRegions,
          key: (id) => staticKeys.get(id) ?? sessionKeys.get(id),
          requestNow: requestClock(),
          credentialNow: now(),
        },
      );
    } catch (err) {
      if (err instanceof SigV4Refusal) throw new AwsFault(err.status, err.code, err.message);
      throw err;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBodyBytes(req);
    const body = raw.toString('utf8');
    if (req.url === '/_fake/state') return send(res, 200, JSON.stringify(snapshot()), 'application/json');
    if (req.url === '/_fake/fail') {
      const f = JSON.parse(body) as { action: string; status: number; code: string; message?: string };
      failNext(f.action, f.status, f.code, f.message);
      return send(res, 204, '', 'application/json');
    }
    const params = Object.fromEntries(new URLSearchParams(body));
    const action = params.Action ?? '';
    const service = STS_ACTIONS.has(action) ? 'sts' : 'iam';
    const ns = service === 'sts' ? STS_NS : IAM_NS;
    requests.push({ service, action, params, accessKeyId: claimedAccessKeyId(req.headers.authorization), at: now() });
    const requestId = randomUUID();
    try {
      const injected = failures.findIndex((f) => f.action === action || f.action === '*');
      if (injected >= 0) {
        const [f] = failures.splice(injected, 1);
        throw new AwsFault(f.status, f.code, f.message);
      }
      const signer = authenticate(req, raw, service);
      let result: Xml;
      if (action === 'GetCallerIdentity') result = callerIdentity(signer);
      else if (STS_ACTIONS.has(action)) result = await assume(action as 'AssumeRole', params, signer !== null);
      else if (IAM_ACTIONS.has(action)) result = iamAction(action, params, signer !== null);
      else throw new AwsFault(400, 'InvalidAction', `Could not find operation ${action}`);
      const inner = result === null ? '' : `<${action}Result>${xml(result)}</${action}Result>`;
      send(res, 200, `<${action}Response xmlns="${ns}">${inner}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`);
    } catch (err) {
      const fault = err instanceof AwsFault ? err : new AwsFault(500, 'InternalFailure', (err as Error).message);
      const type = fault.status >= 500 ? 'Receiver' : 'Sender';
      send(
        res,
        fault.status,
        `<ErrorResponse xmlns="${ns}"><Error><Type>${type}</Type><Code>${esc(fault.code)}</Code><Message>${esc(fault.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, String(err)));
  });
  const listening = await listenLoopback(server);
  const { port } = listening;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    state,
    addRole,
    failNext,
    calls: (action) => requests.filter((r) => r.action === action),
    close: listening.close,
  };
}
