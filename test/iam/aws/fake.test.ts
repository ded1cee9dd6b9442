// The STS/IAM fake itself: what the provider tests rely on beyond the provider's own calls.

import { GetRolePolicyCommand, IAMClient, ListRolePoliciesCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_BROKER_KEYS, startAwsFake, type AwsFake } from '../fakes/aws.ts';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/app';
let fake: AwsFake;
let iam: IAMClient;
let sts: STSClient;

beforeEach(async () => {
  fake = await startAwsFake();
  fake.addRole(ROLE_ARN);
  iam = new IAMClient({ region: 'us-east-1', endpoint: fake.url, credentials: FAKE_BROKER_KEYS, maxAttempts: 1 });
  sts = new STSClient({ region: 'us-east-1', endpoint: fake.url, maxAttempts: 1 });
});

afterEach(async () => {
  await fake.close();
});

const assume = (extra: Record<string, unknown>) =>
  sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'tvm-x', WebIdentityToken: 'e30.e30.', DurationSeconds: 900, ...extra }));

describe('AWS fake', () => {
  it('keeps inline policies: list, get (URL-encoded as IAM answers)', async () => {
    const doc = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:userid":"*:a b&c"}}}]}';
    await iam.send(new PutRolePolicyCommand({ RoleName: 'app', PolicyName: 'b', PolicyDocument: doc }));
    await iam.send(new PutRolePolicyCommand({ RoleName: 'app', PolicyName: 'a', PolicyDocument: doc }));
    expect((await iam.send(new ListRolePoliciesCommand({ RoleName: 'app' }))).PolicyNames).toEqual(['a', 'b']);
    const got = await iam.send(new GetRolePolicyCommand({ RoleName: 'app', PolicyName: 'a' }));
    expect(got.PolicyDocument).toBe(encodeURIComponent(doc));
    expect(decodeURIComponent(got.PolicyDocument ?? '')).toBe(doc);
  });

  it('answers AWS validation errors the SDK maps to its exceptions', async () => {
    await expect(assume({ RoleSessionName: 'x' })).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(assume({ DurationSeconds: 899 })).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(assume({ Policy: `{"x":"${'a'.repeat(2050)}"}` })).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(assume({ Policy: 'not json' })).rejects.toMatchObject({ name: 'MalformedPolicyDocumentException' });
    await expect(iam.send(new GetRolePolicyCommand({ RoleName: 'app', PolicyName: 'none' }))).rejects.toMatchObject({
      name: 'NoSuchEntityException',
      $metadata: { httpStatusCode: 404 },
    });
    await expect(new IAMClient({ region: 'us-east-1', endpoint: fake.url, credentials: FAKE_BROKER_KEYS, maxAttempts: 1 }).send(
      new PutRolePolicyCommand({ RoleName: 'app', PolicyName: 'big', PolicyDocument: JSON.stringify({ x: 'y'.repeat(10_240) }) }),
    )).rejects.toMatchObject({ name: 'LimitExceededException', $metadata: { httpStatusCode: 409 } });
  });

  it('serves its state and takes failures over HTTP (for a broker in a child process)', async () => {
    const armed = await fetch(`${fake.url}/_fake/fail`, { method: 'POST', body: JSON.stringify({ action: 'AssumeRoleWithWebIdentity', status: 503, code: 'ServiceUnavailable' }) });
    expect(armed.status).toBe(204);
    await expect(assume({})).rejects.toMatchObject({ name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
    await assume({});
    const state = (await (await fetch(`${fake.url}/_fake/state`)).json()) as { roles: Array<{ name: string }>; sessions: unknown[]; requests: unknown[] };
    expect(state.roles.map((r) => r.name)).toEqual(['app']);
    expect(state.sessions).toHaveLength(1);
    expect(state.requests).toHaveLength(2);
  });
});
