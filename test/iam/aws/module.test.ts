import { describe, expect, it } from 'vitest';
import {
  awsModule,
  MAX_SESSION_POLICY_CHARS,
  parseRoleArn,
  sessionPolicyFor,
  type AwsTarget,
  type PolicyStatement,
} from '../../../src/iam/aws/module.ts';
import type { RoleFacts } from '../../../src/iam/types.ts';
import { refusal } from '../helpers.ts';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/app';
const target = (extra: Partial<AwsTarget> = {}): AwsTarget => awsModule.parseTarget({ role_arn: ROLE_ARN, region: 'eu-west-1', ...extra }, 'iam.aws');
const role = (read: string[], write: string[] = [], extra: Partial<RoleFacts> = {}): RoleFacts => ({
  read,
  write,
  audiences: ['sts.amazonaws.com'],
  maxTtlS: 3600,
  ...extra,
});

function statements(read: string[], write: string[] = [], t: AwsTarget = target()): PolicyStatement[] {
  const policy = sessionPolicyFor(t, { read, write });
  if (policy === null) throw new Error('no policy');
  expect(policy.json).toBe(JSON.stringify(policy.document));
  expect(policy.chars).toBe(policy.json.length);
  expect(policy.document.Version).toBe('2012-10-17');
  return policy.document.Statement;
}


describe('awsModule.parseTarget', () => {
  it('fills the defaults', () => {
    expect(awsModule.parseTarget({ role_arn: ROLE_ARN }, 'iam.aws')).toEqual({
      role_arn: ROLE_ARN,
      method: 'web_identity',
      audience: 'sts.amazonaws.com',
      region: null,
      deny_on_revoke: true,
    });
    expect(awsModule.cloud).toBe('aws');
    expect(awsModule.schemes).toEqual(['s3', 'dynamodb']);
  });

  it('keeps what is given', () => {
    expect(
      awsModule.parseTarget(
        { role_arn: 'arn:aws-cn:iam::123456789012:role/svc/team/app', method: 'assume_role', audience: 'tvm', region: 'cn-north-1', deny_on_revoke: false },
        'iam.aws',
      ),
    ).toEqual({ role_arn: 'arn:aws-cn:iam::123456789012:role/svc/team/app', method: 'assume_role', audience: 'tvm', region: 'cn-north-1', deny_on_revoke: false });
  });

  it('splits role ARNs, paths included', () => {
    expect(parseRoleArn('arn:aws:iam::123456789012:role/app')).toEqual({ partition: 'aws', account: '123456789012', path: '/', name: 'app' });
    expect(parseRoleArn('arn:aws-us-gov:iam::123456789012:role/svc/team/app+x=y,z.@-_')).toEqual({
      partition: 'aws-us-gov',
      account: '123456789012',
      path: '/svc/team/',
      name: 'app+x=y,z.@-_',
    });
  });

  it.each([
    [null, 'iam.aws', 'expected an object'],
    [[], 'iam.aws', 'expected an object'],
    [{}, 'iam.aws.role_arn', 'required'],
    [{ role_arn: 7 }, 'iam.aws.role_arn', 'expected a string'],
    [{ role_arn: 'arn:aws:iam::12345678901:role/app' }, 'iam.aws.role_arn', 'is not a role ARN'],
    [{ role_arn: 'arn:aws:iam::123456789012:user/app' }, 'iam.aws.role_arn', 'is not a role ARN'],
    [{ role_arn: 'arn:aws:iam::123456789012:role/' }, 'iam.aws.role_arn', 'is not a role ARN'],
    [{ role_arn: 'arn:aws:iam::123456789012:role/a*b' }, 'iam.aws.role_arn', 'is not a role ARN'],
    [{ role_arn: `arn:aws:iam::123456789012:role/${'a'.repeat(65)}` }, 'iam.aws.role_arn', 'is not a role ARN'],
    [{ role_arn: 'arn:gcp:iam::123456789012:role/app' }, 'iam.aws.role_arn', 'is not a role ARN'],
    [{ role_arn: ROLE_ARN, method: 'federation' }, 'iam.aws.method', 'expected "web_identity" or "assume_role"'],
    [{ role_arn: ROLE_ARN, audience: '' }, 'iam.aws.audience', '1 to 255'],
    [{ role_arn: ROLE_ARN, region: 'Europe' }, 'iam.aws.region', 'is not an AWS region name'],
    [{ role_arn: ROLE_ARN, deny_on_revoke: 'yes' }, 'iam.aws.deny_on_revoke', 'expected a boolean'],
    [{ role_arn: ROLE_ARN, session_policy: {} }, 'iam.aws.session_policy', 'unknown field'],
  ])('refuses %j', (raw, field, message) => {
    const r = refusal(() => awsModule.parseTarget(raw, 'iam.aws'));
    expect(r.field).toBe(field);
    expect(r.message).toContain(message);
  });
});

describe('scope translation', () => {
  it('s3 prefix read: GetObject on the prefix, ListBucket with an s3:prefix condition', () => {
    expect(statements(['s3://logs/app/**'])).toEqual([
      { Sid: 'S3Read', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::logs/app/*' },
      { Sid: 'S3List1', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::logs', Condition: { StringLike: { 's3:prefix': ['app/*'] } } },
    ]);
  });

  it('s3 bucket root read: ListBucket without a condition', () => {
    expect(statements(['s3://logs/**'])).toEqual([
      { Sid: 'S3Read', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::logs/*' },
      { Sid: 'S3List1', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::logs' },
    ]);
  });

  it('s3 partial-segment prefix read', () => {
    expect(statements(['s3://logs/app/2026-**'])).toEqual([
      { Sid: 'S3Read', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::logs/app/2026-*' },
      { Sid: 'S3List1', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::logs', Condition: { StringLike: { 's3:prefix': ['app/2026-*'] } } },
    ]);
  });

  it('s3 exact key read: that object, no listing', () => {
    expect(statements(['s3://logs/app/today.log'])).toEqual([
      { Sid: 'S3Read', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::logs/app/today.log' },
    ]);
  });

  it('s3 write: PutObject, DeleteObject, AbortMultipartUpload, no listing', () => {
    expect(statements([], ['s3://out/batch/**', 's3://out/ready.flag'])).toEqual([
      {
        Sid: 'S3Write',
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        Resource: ['arn:aws:s3:::out/batch/*', 'arn:aws:s3:::out/ready.flag'],
      },
    ]);
  });

  it('dynamodb read: item reads on the table and its indexes', () => {
    expect(statements(['dynamodb://orders'])).toEqual([
      {
        Sid: 'DynamoDBRead',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:ConditionCheckItem'],
        Resource: ['arn:aws:dynamodb:eu-west-1:123456789012:table/orders', 'arn:aws:dynamodb:eu-west-1:123456789012:table/orders/index/*'],
      },
    ]);
  });

  it('dynamodb write: item writes on the table', () => {
    expect(statements([], ['dynamodb://orders.outbox_v2'])).toEqual([
      {
        Sid: 'DynamoDBWrite',
        Effect: 'Allow',
        Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
        Resource: 'arn:aws:dynamodb:eu-west-1:123456789012:table/orders.outbox_v2',
      },
    ]);
  });

  it('merges, sorts, drops covered resources and ignores other schemes', () => {
    const read = ['s3://logs/app/**', 'db://orders/*', 's3://audit/2026/**', 's3://logs/app/x/**', 's3://logs/app/today.log', 's3://logs/web/**', 's3://logs/app/**'];
    const write = ['dynamodb://orders', 'k8s://ns/pods', 's3://audit/out/**'];
    expect(statements(read, write)).toEqual([
      { Sid: 'S3Read', Effect: 'Allow', Action: 's3:GetObject', Resource: ['arn:aws:s3:::audit/2026/*', 'arn:aws:s3:::logs/app/*', 'arn:aws:s3:::logs/web/*'] },
      { Sid: 'S3List1', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::audit', Condition: { StringLike: { 's3:prefix': ['2026/*'] } } },
      { Sid: 'S3List2', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::logs', Condition: { StringLike: { 's3:prefix': ['app/*', 'web/*'] } } },
      { Sid: 'S3Write', Effect: 'Allow', Action: ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'], Resource: 'arn:aws:s3:::audit/out/*' },
      {
        Sid: 'DynamoDBWrite',
        Effect: 'Allow',
        Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
        Resource: 'arn:aws:dynamodb:eu-west-1:123456789012:table/orders',
      },
    ]);
    // Deterministic: the order of the patterns does not change the JSON.
    const a = sessionPolicyFor(target(), { read, write });
    const b = sessionPolicyFor(target(), { read: [...read].reverse(), write: [...write].reverse() });
    expect(a?.json).toBe(b?.json);
  });

  it('a bucket root read makes the prefixes of that bucket redundant', () => {
    expect(statements(['s3://logs/app/**', 's3://logs/**', 's3://logs/k'])).toEqual([
      { Sid: 'S3Read', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::logs/*' },
      { Sid: 'S3List1', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::logs' },
    ]);
  });

  it('a prefix of one bucket does not cover another bucket with a longer name', () => {
    const st = statements(['s3://logs/**', 's3://logs2/x']);
    expect(st[0].Resource).toEqual(['arn:aws:s3:::logs/*', 'arn:aws:s3:::logs2/x']);
  });

  it('uses the partition and account of the role ARN', () => {
    const t = target({ role_arn: 'arn:aws-cn:iam::210987654321:role/app', region: 'cn-north-1' });
    expect(statements(['s3://logs/x', 'dynamodb://orders'], [], t).map((s) => s.Resource)).toEqual([
      'arn:aws-cn:s3:::logs/x',
      ['arn:aws-cn:dynamodb:cn-north-1:210987654321:table/orders', 'arn:aws-cn:dynamodb:cn-north-1:210987654321:table/orders/index/*'],
    ]);
  });

  it('is null when no pattern is of an AWS scheme', () => {
    expect(sessionPolicyFor(target(), { read: ['db://orders/*'], write: ['gs://b/**'] })).toBeNull();
  });
});

describe('refusals: what IAM cannot express exactly', () => {
  it.each([
    ['s3://logs/app/*.log', 'single-segment "*" cannot be expressed'],
    ['s3://logs/*', 'single-segment "*" cannot be expressed'],
    ['s3://logs/app/*/today.log', 'single-segment "*" cannot be expressed'],
    ['s3://logs/app/*/**', 'single-segment "*" cannot be expressed'],
    ['s3://logs/**/today.log', '"**" is mapped only at the end'],
    ['s3://logs/app/**.log', '"**" is mapped only at the end'],
    ['s3://logs-*/app/**', 'wildcard in a bucket name'],
    ['s3://**', 'wildcard in a bucket name'],
    ['s3://logs/a?b', 'one-character wildcard'],
    ['s3://logs/${aws:username}/**', 'policy variable'],
    ['s3://logs/caf\u00e9.log', 'only printable ASCII keys'],
    ['s3://logs', 'names a bucket, not objects'],
    ['s3://logs/', 'names a bucket, not objects'],
    ['s3://Logs/x', 'is not an S3 bucket name'],
    ['s3://lo/x', 'is not an S3 bucket name'],
    ['s3://my..bucket/x', 'is not an S3 bucket name'],
    ['s3://192.168.1.1/x', 'is not an S3 bucket name'],
    ['dynamodb://orders*', 'wildcards in table names'],
    ['dynamodb://*', 'wildcards in table names'],
    ['dynamodb://eu-west-1/123456789012/orders', 'expected dynamodb://<table>'],
    ['dynamodb://orders/index/by-date', 'expected dynamodb://<table>'],
    ['dynamodb://ab', 'is not a DynamoDB table name'],
    ['dynamodb://orders$', 'is not a DynamoDB table name'],
  ])('%s', (pattern, why) => {
    const asRead = refusal(() => awsModule.checkRole(target(), role(['s3://fine/**', pattern]), 'iam.aws'));
    expect(asRead.field).toBe('read[1]');
    expect(asRead.message).toBe(`invalid read[1]: ${JSON.stringify(pattern)}: ${asRead.message.split(': ').slice(2).join(': ')}`);
    expect(asRead.message).toContain(why);
    const asWrite = refusal(() => awsModule.checkRole(target(), role([], ['db://x/y', 's3://fine/k', pattern]), 'iam.aws'));
    expect(asWrite.field).toBe('write[2]');
    expect(asWrite.message).toContain(JSON.stringify(pattern));
  });

  it('names the pattern and says why, in full', () => {
    expect(refusal(() => awsModule.checkRole(target(), role(['s3://logs/*']), 'iam.aws'))).toEqual({
      field: 'read[0]',
      message:
        'invalid read[0]: "s3://logs/*": a single-segment "*" cannot be expressed: IAM\'s "*" also matches "/"; use "**" at the end (a prefix) or name the keys',
    });
  });

  it('a dynamodb scope needs a region', () => {
    expect(refusal(() => awsModule.checkRole(target({ region: null }), role(['dynamodb://orders']), 'iam.aws'))).toEqual({
      field: 'iam.aws.region',
      message: 'invalid iam.aws.region: required with a dynamodb:// scope: a table ARN names its region',
    });
    expect(() => awsModule.checkRole(target({ region: null }), role(['s3://logs/**']), 'iam.aws')).not.toThrow();
  });
});

describe('checkRole', () => {
  it('accepts a role that fits', () => {
    expect(() => awsModule.checkRole(target(), role(['s3://logs/app/**'], ['dynamodb://orders']), 'iam.aws')).not.toThrow();
  });

  it('web_identity: the audience must be one of the role audiences', () => {
    expect(refusal(() => awsModule.checkRole(target(), role(['s3://logs/**'], [], { audiences: ['vault'] }), 'iam.aws'))).toEqual({
      field: 'iam.aws.audience',
      message:
        'invalid iam.aws.audience: "sts.amazonaws.com" must be one of the role\'s audiences ("vault"): AssumeRoleWithWebIdentity checks the token\'s aud against the OIDC provider\'s client ids',
    });
    expect(refusal(() => awsModule.checkRole(target(), role(['s3://logs/**'], [], { audiences: [] }), 'iam.aws')).message).toContain('(none set)');
    expect(() => awsModule.checkRole(target({ audience: 'vault' }), role(['s3://logs/**'], [], { audiences: ['vault'] }), 'iam.aws')).not.toThrow();
  });

  it('assume_role does not present the token, so the audience is not checked', () => {
    expect(() => awsModule.checkRole(target({ method: 'assume_role' }), role(['s3://logs/**'], [], { audiences: [] }), 'iam.aws')).not.toThrow();
  });

  it("refuses a max_ttl under AWS's 900 s minimum session", () => {
    expect(refusal(() => awsModule.checkRole(target(), role(['s3://logs/**'], [], { maxTtlS: 899 }), 'iam.aws'))).toEqual({
      field: 'max_ttl',
      message: "invalid max_ttl: 899s is below AWS's minimum session of 900s: a credential would outlive the lease's max_ttl; raise max_ttl to at least 15m",
    });
    expect(() => awsModule.checkRole(target(), role(['s3://logs/**'], [], { maxTtlS: 900 }), 'iam.aws')).not.toThrow();
  });

  it('refuses a role with no s3:// or dynamodb:// pattern', () => {
    expect(refusal(() => awsModule.checkRole(target(), role(['db://orders/*'], ['gs://b/**']), 'iam.aws'))).toEqual({
      field: 'iam.aws',
      message: 'invalid iam.aws: the role has no read or write pattern of scheme s3:// or dynamodb://, so an AWS credential would grant nothing',
    });
  });
});

describe('session policy size', () => {
  // Exact keys of a fixed shape: each added key character adds one policy character.
  function keysOfTotal(policyChars: number): string[] {
    const keys = Array.from({ length: 12 }, (_, i) => `k${String(i).padStart(2, '0')}/${'x'.repeat(100)}`);
    const base = sessionPolicyFor(target(), { read: keys.map((k) => `s3://logs/${k}`), write: [] });
    const missing = policyChars - (base?.chars ?? 0);
    keys[keys.length - 1] += 'y'.repeat(missing);
    return keys.map((k) => `s3://logs/${k}`);
  }

  it(`accepts a policy of exactly ${MAX_SESSION_POLICY_CHARS} characters`, () => {
    const read = keysOfTotal(MAX_SESSION_POLICY_CHARS);
    expect(sessionPolicyFor(target(), { read, write: [] })?.chars).toBe(2048);
    expect(() => awsModule.checkRole(target(), role(read), 'iam.aws')).not.toThrow();
  });

  it('refuses one character more, with the size', () => {
    const read = keysOfTotal(MAX_SESSION_POLICY_CHARS + 1);
    expect(refusal(() => awsModule.checkRole(target(), role(read), 'iam.aws'))).toEqual({
      field: 'iam.aws',
      message:
        'invalid iam.aws: the session policy for these s3:// and dynamodb:// scopes is 2049 characters minified; AWS takes at most 2048 (AssumeRole* Policy): use fewer patterns or shared prefixes',
    });
  });
});
