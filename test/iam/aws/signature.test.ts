// The AWS fake verifies Signature Version 4 as STS and IAM do: requests signed
// by the real SDK pass with the secret the fake issued or was configured with,
// and every way a signature can be wrong is refused with AWS's status and code.
// The SDK signs (its own implementation); the fake verifies (test/iam/fakes/sigv4.ts,
// written from AWS's documentation), and both agree with AWS's documented example.

import { IAMClient, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand, STSClient, type Credentials } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, BuildMiddleware, FinalizeRequestMiddleware } from '@smithy/types';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_BROKER_KEYS, startAwsFake, type AwsFake, type AwsFakeOptions } from '../fakes/aws.ts';
import { signingKey, SigV4Refusal, verifySigV4, type SigV4Request } from '../fakes/sigv4.ts';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/app';
const WEB_IDENTITY = 'e30.e30.';
let fake: AwsFake;
let clock: number;

async function start(options: AwsFakeOptions = {}): Promise<void> {
  clock = Date.now();
  fake = await startAwsFake({ now: () => clock, ...options });
  fake.addRole(ROLE_ARN);
}

beforeEach(() => start());
afterEach(() => fake.close());

type Creds = AwsCredentialIdentity | (() => Promise<AwsCredentialIdentity>);
const iam = (credentials: Creds = FAKE_BROKER_KEYS, extra: { region?: string; systemClockOffset?: number } = {}) =>
  new IAMClient({ region: 'us-east-1', endpoint: fake.url, credentials, maxAttempts: 1, ...extra });
const sts = (credentials: Creds = FAKE_BROKER_KEYS, region = 'eu-west-1') => new STSClient({ region, endpoint: fake.url, credentials, maxAttempts: 1 });
const listPolicies = (client: IAMClient) => client.send(new ListRolePoliciesCommand({ RoleName: 'app' }));

/** Temporary credentials issued by the fake (AssumeRoleWithWebIdentity is unsigned). */
async function session(): Promise<{ AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: Date }> {
  const out = await sts().send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'tvm-sig', WebIdentityToken: WEB_IDENTITY, DurationSeconds: 900 }));
  const c = out.Credentials as Credentials;
  return { AccessKeyId: c.AccessKeyId!, SecretAccessKey: c.SecretAccessKey!, SessionToken: c.SessionToken!, Expiration: c.Expiration! };
}

/** What the SDK rejected with: AWS's code, HTTP status and message (no secret is ever part of them). */
async function refusal(p: Promise<unknown>): Promise<{ code: string; status: number | undefined; message: string }> {
  const err = await p.then(
    () => {
      throw new Error('expected AWS to refuse the request');
    },
    (e: unknown) => e as { name: string; message: string; $metadata?: { httpStatusCode?: number } },
  );
  return { code: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
}

const MISMATCH = {
  code: 'SignatureDoesNotMatch',
  status: 403,
  message:
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
};
const INVALID_TOKEN = { code: 'InvalidClientTokenId', status: 403, message: 'The security token included in the request is invalid.' };

/** Runs after the SDK signed: changes what goes on the wire. */
function afterSigning<T extends IAMClient | STSClient>(client: T, change: (req: { headers: Record<string, string>; body: unknown }) => void): T {
  const mw: FinalizeRequestMiddleware<object, object> = (next) => (args) => {
    change(args.request as { headers: Record<string, string>; body: unknown });
    return next(args);
  };
  (client.middlewareStack as IAMClient['middlewareStack']).addRelativeTo(mw as never, { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'tamper' });
  return client;
}

describe('AWS documentation example', () => {
  // "Create a signed AWS API request" (IAM User Guide): GET ListUsers, 2015-08-30T12:36:00Z, AKIDEXAMPLE.
  const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  const SIGNATURE = '5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7';
  const example = (signature = SIGNATURE): SigV4Request => ({
    method: 'GET',
    url: '/?Action=ListUsers&Version=2010-05-08',
    rawHeaders: [
      'Content-Type', 'application/x-www-form-urlencoded; charset=utf-8',
      'Host', 'iam.amazonaws.com',
      'X-Amz-Date', '20150830T123600Z',
      'Authorization', `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=${signature}`,
    ],
    body: Buffer.alloc(0),
  });
  const expectation = (secret: string) => ({
    service: 'iam',
    regions: new Set(['us-east-1']),
    key: (id: string) => (id === 'AKIDEXAMPLE' ? { secretAccessKey: secret } : undefined),
    requestNow: Date.UTC(2015, 7, 30, 12, 37),
    credentialNow: 0,
  });

  it('derives the documented signing key and accepts the documented signature', () => {
    expect(signingKey(SECRET, '20150830', 'us-east-1', 'iam').toString('hex')).toBe('c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9');
    expect(verifySigV4(example(), expectation(SECRET))).toBe('AKIDEXAMPLE');
  });

  it('refuses it with another secret, a changed query or a changed signature', () => {
    const refused = (req: SigV4Request, secret = SECRET) => {
      try {
        verifySigV4(req, expectation(secret));
      } catch (err) {
        expect(err).toBeInstanceOf(SigV4Refusal);
        return (err as SigV4Refusal).code;
      }
      return 'accepted';
    };
    expect(refused(example(), SECRET.replace('K7', 'K8'))).toBe('SignatureDoesNotMatch');
    expect(refused({ ...example(), url: '/?Action=ListUsers&Version=2010-05-09' })).toBe('SignatureDoesNotMatch');
    expect(refused(example(SIGNATURE.replace('5d67', '5d68')))).toBe('SignatureDoesNotMatch');
    expect(refused({ ...example(), method: 'POST' })).toBe('SignatureDoesNotMatch');
  });
});

describe('the AWS fake verifies SigV4 signatures made by the real SDK', () => {
  it('accepts the static key it was configured with, and the session credentials it issued', async () => {
    await expect(listPolicies(iam())).resolves.toMatchObject({ PolicyNames: [] });
    expect((await sts().send(new GetCallerIdentityCommand({}))).Arn).toBe('arn:aws:iam::123456789012:user/tvm-broker');
    const s = await session();
    const assumed = sts({ accessKeyId: s.AccessKeyId, secretAccessKey: s.SecretAccessKey, sessionToken: s.SessionToken });
    const who = await assumed.send(new GetCallerIdentityCommand({}));
    expect(who).toMatchObject({ Arn: 'arn:aws:sts::123456789012:assumed-role/app/tvm-sig', Account: '123456789012' });
    expect(who.UserId).toBe(fake.state.sessions[0].assumedRoleId);
    // Role chaining: AssumeRole signed with the session's own key.
    await expect(assumed.send(new AssumeRoleCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'chained', DurationSeconds: 900 }))).resolves.toMatchObject({
      AssumedRoleUser: { Arn: 'arn:aws:sts::123456789012:assumed-role/app/chained' },
    });
    expect(fake.calls('AssumeRole')[0].accessKeyId).toBe(s.AccessKeyId);
  });

  it('a signature made with a wrong secret: 403 SignatureDoesNotMatch', async () => {
    const wrong = async (): Promise<AwsCredentialIdentity> => ({ accessKeyId: FAKE_BROKER_KEYS.accessKeyId, secretAccessKey: `${FAKE_BROKER_KEYS.secretAccessKey.slice(0, -1)}X` });
    expect(await refusal(listPolicies(iam(wrong)))).toEqual(MISMATCH);
    expect(await refusal(sts(wrong).send(new AssumeRoleCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'x1', DurationSeconds: 900 })))).toEqual(MISMATCH);
    const s = await session();
    // A session's key id with the static secret.
    expect(await refusal(listPolicies(iam({ accessKeyId: s.AccessKeyId, secretAccessKey: FAKE_BROKER_KEYS.secretAccessKey, sessionToken: s.SessionToken })))).toEqual(MISMATCH);
    expect(fake.state.sessions).toHaveLength(1);
  });

  it('an access key id the fake never issued: 403 InvalidClientTokenId', async () => {
    expect(await refusal(listPolicies(iam({ accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: FAKE_BROKER_KEYS.secretAccessKey })))).toEqual(INVALID_TOKEN);
  });

  it('session credentials without their session token, with another one, or a static key with one: 403 InvalidClientTokenId', async () => {
    const s = await session();
    const other = await session();
    expect(await refusal(listPolicies(iam({ accessKeyId: s.AccessKeyId, secretAccessKey: s.SecretAccessKey })))).toEqual(INVALID_TOKEN);
    expect(await refusal(listPolicies(iam({ accessKeyId: s.AccessKeyId, secretAccessKey: s.SecretAccessKey, sessionToken: other.SessionToken })))).toEqual(INVALID_TOKEN);
    expect(await refusal(listPolicies(iam({ ...FAKE_BROKER_KEYS, sessionToken: s.SessionToken })))).toEqual(INVALID_TOKEN);
    await expect(listPolicies(iam({ accessKeyId: s.AccessKeyId, secretAccessKey: s.SecretAccessKey, sessionToken: s.SessionToken }))).resolves.toBeDefined();
  });

  it('expired session credentials: 400 ExpiredToken', async () => {
    const s = await session();
    const creds = { accessKeyId: s.AccessKeyId, secretAccessKey: s.SecretAccessKey, sessionToken: s.SessionToken };
    clock = s.Expiration.getTime() - 1000;
    await expect(listPolicies(iam(creds))).resolves.toBeDefined();
    clock = s.Expiration.getTime();
    expect(await refusal(listPolicies(iam(creds)))).toEqual({ code: 'ExpiredToken', status: 400, message: 'The security token included in the request is expired' });
  });

  it('a credential scoped to a region the endpoint does not serve: 403 SignatureDoesNotMatch', async () => {
    const wrongRegion = { code: 'SignatureDoesNotMatch', status: 403, message: 'Credential should be scoped to a valid region. ' };
    // IAM is global: its endpoint takes us-east-1 only.
    expect(await refusal(listPolicies(iam(FAKE_BROKER_KEYS, { region: 'eu-west-1' })))).toEqual(wrongRegion);
    expect(await refusal(sts(FAKE_BROKER_KEYS, 'xx-nowhere-1').send(new GetCallerIdentityCommand({})))).toEqual(wrongRegion);
    await fake.close();
    await start({ stsRegions: ['eu-west-1'] });
    await expect(sts(FAKE_BROKER_KEYS, 'eu-west-1').send(new GetCallerIdentityCommand({}))).resolves.toBeDefined();
    expect(await refusal(sts(FAKE_BROKER_KEYS, 'us-east-1').send(new GetCallerIdentityCommand({})))).toEqual(wrongRegion);
  });

  it('a credential scoped to another service: 403 SignatureDoesNotMatch', async () => {
    // The STS client signs for "sts"; the body is turned into an IAM action before it signs.
    const client = sts(FAKE_BROKER_KEYS, 'us-east-1');
    const toIam: BuildMiddleware<object, object> = (next) => (args) => {
      const request = args.request as { body: string; headers: Record<string, string> };
      request.body = 'Action=ListRolePolicies&Version=2010-05-08&RoleName=app';
      request.headers['content-length'] = String(request.body.length);
      return next(args);
    };
    client.middlewareStack.add(toIam as never, { step: 'build', name: 'toIam' });
    expect(await refusal(client.send(new GetCallerIdentityCommand({})))).toEqual({
      code: 'SignatureDoesNotMatch',
      status: 403,
      message: "Credential should be scoped to correct service: 'iam'. ",
    });
  });

  it('a body changed after signing: 403 SignatureDoesNotMatch, and nothing is done', async () => {
    const client = afterSigning(sts(), (req) => {
      req.body = String(req.body).replace('DurationSeconds=900', 'DurationSeconds=901');
    });
    expect(await refusal(client.send(new AssumeRoleCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'tampered', DurationSeconds: 900 })))).toEqual(MISMATCH);
    expect(fake.calls('AssumeRole')[0].params.DurationSeconds).toBe('901');
    expect(fake.state.sessions).toEqual([]);
  });

  it('a signed header changed after signing: 403 SignatureDoesNotMatch', async () => {
    const client = afterSigning(iam(), (req) => {
      req.headers['content-type'] = 'application/x-www-form-urlencoded; charset=latin1';
    });
    expect(await refusal(listPolicies(client))).toEqual(MISMATCH);
  });

  it('an x-amz-* header or the host left out of the signed headers: 403 SignatureDoesNotMatch', async () => {
    const added = afterSigning(iam(), (req) => {
      req.headers['x-amz-meta-extra'] = '1';
    });
    expect(await refusal(listPolicies(added))).toEqual({ code: 'SignatureDoesNotMatch', status: 403, message: "'x-amz-meta-extra' must be a 'SignedHeader' in the AWS Authorization." });
    const noHost = afterSigning(iam(), (req) => {
      req.headers.authorization = req.headers.authorization.replace(/SignedHeaders=([^,]*)/, (_m, list: string) => `SignedHeaders=${list.split(';').filter((h) => h !== 'host').join(';')}`);
    });
    expect(await refusal(listPolicies(noHost))).toEqual({ code: 'SignatureDoesNotMatch', status: 403, message: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization." });
    const noDate = afterSigning(iam(), (req) => {
      delete req.headers['x-amz-date'];
    });
    expect(await refusal(listPolicies(noDate))).toMatchObject({ code: 'IncompleteSignature', status: 400 });
  });

  it('an X-Amz-Date more than 5 minutes off the fake clock, either way: 403 SignatureDoesNotMatch', async () => {
    const late = await refusal(listPolicies(iam(FAKE_BROKER_KEYS, { systemClockOffset: -6 * 60_000 })));
    expect(late).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(late.message).toMatch(/^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/);
    const early = await refusal(listPolicies(iam(FAKE_BROKER_KEYS, { systemClockOffset: 6 * 60_000 })));
    expect(early).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(early.message).toMatch(/^Signature not yet current: /);
    await expect(listPolicies(iam(FAKE_BROKER_KEYS, { systemClockOffset: -4 * 60_000 }))).resolves.toBeDefined();
  });

  it('a credential scope dated another day than X-Amz-Date: 403 SignatureDoesNotMatch', async () => {
    const client = afterSigning(iam(), (req) => {
      req.headers.authorization = req.headers.authorization.replace(/Credential=([^/]+)\/(\d{8})\//, 'Credential=$1/20200101/');
    });
    const r = await refusal(listPolicies(client));
    expect(r).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(r.message).toMatch(/^Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20200101' != '\d{8}'/);
  });

  it('an unsigned call of an action that needs a signature: 403 MissingAuthenticationToken', async () => {
    const res = await fetch(fake.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=ListRolePolicies&Version=2010-05-08&RoleName=app' });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('<Code>MissingAuthenticationToken</Code>');
  });
});
