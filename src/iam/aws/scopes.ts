// Scope translation for AWS: a grant's s3:// and dynamodb:// patterns become one
// session policy (the `Policy` parameter of AssumeRole*), which AWS intersects
// with the role's own policies. Pure.
//
// | tvm pattern                 | read                                                        | write                                               |
// |-----------------------------|-------------------------------------------------------------|-----------------------------------------------------|
// | s3://bucket/prefix/**       | s3:GetObject on arn:aws:s3:::bucket/prefix/*;               | s3:PutObject, s3:DeleteObject,                      |
// |                             | s3:ListBucket on arn:aws:s3:::bucket if s3:prefix           | s3:AbortMultipartUpload on                          |
// |                             | StringLike "prefix/*"                                       | arn:aws:s3:::bucket/prefix/*                        |
// | s3://bucket/**              | s3:GetObject on bucket/*; s3:ListBucket on bucket, no       | the same actions on bucket/*                        |
// |                             | condition (every key)                                       |                                                     |
// | s3://bucket/key             | s3:GetObject on bucket/key (no listing: a list by prefix    | the same actions on bucket/key                      |
// |                             | "key" would show "key2")                                    |                                                     |
// | dynamodb://table            | GetItem, BatchGetItem, Query, Scan, ConditionCheckItem on   | PutItem, UpdateItem, DeleteItem, BatchWriteItem     |
// |                             | table/<t> and table/<t>/index/* (region from iam.aws.region,| on table/<t>                                        |
// |                             | account from the role ARN)                                  |                                                     |
//
// `**` may also end a partial segment: s3://bucket/app/2026-** is the key prefix
// "app/2026-" in both languages. Refused (never widened), because IAM cannot say
// it exactly:
// - a single-segment `*` in a key (IAM's `*` also matches "/"), `**` anywhere
//   but at the end, any wildcard in a bucket or table name;
// - `?` (IAM's one-character wildcard) and `${` (an IAM policy variable);
// - characters outside printable ASCII (session policies take Latin-1 text, and
//   tvm does not guess how IAM compares other characters with UTF-8 keys);
// - a bucket with no key (s3://bucket, s3://bucket/), an invalid bucket or
//   table name, dynamodb:// with anything but a table name;
// - a policy whose minified JSON exceeds 2,048 characters (AssumeRole*'s limit).
//
// s3:AbortMultipartUpload is part of write: CreateMultipartUpload, UploadPart and
// CompleteMultipartUpload are authorised by s3:PutObject, and without abort a
// failed multipart upload (the SDKs' managed upload aborts on failure) leaves
// billed parts that the writer could not remove. It reaches only uploads to keys
// the writer may already overwrite or delete.

import { IamFieldError } from '../errors.ts';
import type { Scopes } from '../types.ts';

export const AWS_SCHEMES = ['s3', 'dynamodb'] as const;

export const S3_READ_ACTIONS = ['s3:GetObject'] as const;
export const S3_LIST_ACTION = 's3:ListBucket';
export const S3_WRITE_ACTIONS = ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'] as const;
export const DYNAMODB_READ_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:Scan',
  'dynamodb:ConditionCheckItem',
] as const;
export const DYNAMODB_WRITE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'] as const;

/** AssumeRole*'s `Policy` parameter: at most 2,048 characters of plaintext. */
export const MAX_SESSION_POLICY_CHARS = 2048;

export type AwsScope =
  | { kind: 's3'; bucket: string; /** the key, or the key prefix when `prefix` */ key: string; prefix: boolean }
  | { kind: 'dynamodb'; table: string };

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string | string[];
  Resource: string | string[];
  Condition?: { StringLike: { 's3:prefix': string[] } };
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export interface SessionPolicy {
  document: PolicyDocument;
  /** The minified JSON sent as `Policy`. */
  json: string;
  /** Its length in characters (ASCII only, so also its bytes). */
  chars: number;
}

/** Where the ARNs come from. */
export interface PolicyContext {
  partition: string;
  account: string;
  region: string | null;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;
const TABLE = /^[A-Za-z0-9_.-]{3,255}$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function refuse(field: string, pattern: string, why: string): never {
  throw new IamFieldError(field, `${JSON.stringify(pattern)}: ${why}`);
}

function bucketProblem(bucket: string): string | null {
  if (bucket.includes('*')) return 'a wildcard in a bucket name cannot be expressed exactly in an IAM ARN; name one bucket';
  if (!BUCKET.test(bucket) || bucket.includes('..') || IPV4.test(bucket)) {
    return `${JSON.stringify(bucket)} is not an S3 bucket name (3 to 63 of a-z, 0-9, ".", "-", starting and ending with a letter or digit)`;
  }
  return null;
}

function parseS3(pattern: string, path: string, field: string): AwsScope {
  const slash = path.indexOf('/');
  const bucket = slash < 0 ? path : path.slice(0, slash);
  const key = slash < 0 ? '' : path.slice(slash + 1);
  const bad = bucketProblem(bucket);
  if (bad) refuse(field, pattern, bad);
  if (key === '') refuse(field, pattern, `names a bucket, not objects: use s3://${bucket}/** for every object or s3://${bucket}/<key>`);
  if (!PRINTABLE_ASCII.test(key)) {
    refuse(field, pattern, 'only printable ASCII keys are mapped: session policies take Latin-1 text and tvm does not guess how IAM compares other characters');
  }
  if (key.includes('?')) refuse(field, pattern, 'IAM reads "?" in an ARN as a one-character wildcard, so the key cannot be named exactly');
  if (key.includes('${')) refuse(field, pattern, 'IAM reads "${" in an ARN as the start of a policy variable, so the key cannot be named exactly');
  const star = key.indexOf('*');
  if (star < 0) return { kind: 's3', bucket, key, prefix: false };
  if (star === key.length - 2 && key.endsWith('**')) return { kind: 's3', bucket, key: key.slice(0, -2), prefix: true };
  if (/(^|[^*])\*([^*]|$)/.test(key)) {
    refuse(field, pattern, 'a single-segment "*" cannot be expressed: IAM\'s "*" also matches "/"; use "**" at the end (a prefix) or name the keys');
  }
  refuse(field, pattern, '"**" is mapped only at the end of the pattern (a key prefix); IAM cannot express a wildcard followed by more of the key exactly');
}

function parseDynamoDb(pattern: string, path: string, field: string): AwsScope {
  if (path.includes('*')) refuse(field, pattern, 'wildcards in table names are not mapped; name one table: dynamodb://<table>');
  if (path.includes('/')) {
    refuse(field, pattern, 'expected dynamodb://<table>: the region comes from iam.aws.region and the account from iam.aws.role_arn');
  }
  if (!TABLE.test(path)) refuse(field, pattern, `${JSON.stringify(path)} is not a DynamoDB table name (3 to 255 of A-Z, a-z, 0-9, "_", "-", ".")`);
  return { kind: 'dynamodb', table: path };
}

/** One pattern's AWS meaning; null for a pattern of another scheme. Throws IamFieldError naming `field`. */
export function parseAwsPattern(pattern: string, field: string): AwsScope | null {
  if (pattern.startsWith('s3://')) return parseS3(pattern, pattern.slice('s3://'.length), field);
  if (pattern.startsWith('dynamodb://')) return parseDynamoDb(pattern, pattern.slice('dynamodb://'.length), field);
  return null;
}

export interface ParsedScopes {
  read: AwsScope[];
  write: AwsScope[];
}

/** Every s3:// and dynamodb:// pattern of the scopes, parsed (fields `read[i]`, `write[i]`). */
export function parseAwsScopes(scopes: Scopes): ParsedScopes {
  const pick = (patterns: string[], name: string): AwsScope[] =>
    patterns.flatMap((p, i) => {
      const s = parseAwsPattern(p, `${name}[${i}]`);
      return s ? [s] : [];
    });
  return { read: pick(scopes.read, 'read'), write: pick(scopes.write, 'write') };
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Sorted, deduplicated, and without entries a wildcard entry ("x*") already covers. */
function minimal(items: string[]): string[] {
  const unique = [...new Set(items)].sort(byCodeUnit);
  const wild = unique.filter((s) => s.endsWith('*')).map((s) => s.slice(0, -1));
  return unique.filter((s) => !wild.some((w) => s !== `${w}*` && s.startsWith(w)));
}

const one = (list: readonly string[]): string | string[] => (list.length === 1 ? list[0] : [...list]);

function s3Statements(sidPrefix: 'S3Read' | 'S3Write', scopes: AwsScope[], ctx: PolicyContext, actions: readonly string[]): PolicyStatement[] {
  const objects = minimal(
    scopes.flatMap((s) => (s.kind === 's3' ? [`arn:${ctx.partition}:s3:::${s.bucket}/${s.key}${s.prefix ? '*' : ''}`] : [])),
  );
  return objects.length === 0 ? [] : [{ Sid: sidPrefix, Effect: 'Allow', Action: one(actions), Resource: one(objects) }];
}

/** One statement per bucket: s3:prefix conditions of different buckets may not be mixed. */
function listStatements(scopes: AwsScope[], ctx: PolicyContext): PolicyStatement[] {
  const byBucket = new Map<string, string[]>();
  for (const s of scopes) {
    if (s.kind !== 's3' || !s.prefix) continue;
    const list = byBucket.get(s.bucket) ?? [];
    list.push(`${s.key}*`);
    byBucket.set(s.bucket, list);
  }
  return [...byBucket.keys()].sort(byCodeUnit).map((bucket, i) => {
    const prefixes = minimal(byBucket.get(bucket) ?? []);
    const statement: PolicyStatement = { Sid: `S3List${i + 1}`, Effect: 'Allow', Action: S3_LIST_ACTION, Resource: `arn:${ctx.partition}:s3:::${bucket}` };
    // The bucket root ("*") lists every key: no condition (an absent s3:prefix would fail StringLike).
    if (!prefixes.includes('*')) statement.Condition = { StringLike: { 's3:prefix': prefixes } };
    return statement;
  });
}

function dynamoStatement(sid: string, scopes: AwsScope[], ctx: PolicyContext, actions: readonly string[], withIndexes: boolean): PolicyStatement[] {
  const tables = [...new Set(scopes.flatMap((s) => (s.kind === 'dynamodb' ? [s.table] : [])))].sort(byCodeUnit);
  if (tables.length === 0) return [];
  const arn = (t: string) => `arn:${ctx.partition}:dynamodb:${ctx.region}:${ctx.account}:table/${t}`;
  const resources = tables.flatMap((t) => (withIndexes ? [arn(t), `${arn(t)}/index/*`] : [arn(t)]));
  return [{ Sid: sid, Effect: 'Allow', Action: one(actions), Resource: one(resources) }];
}

/**
 * The session policy for the scopes (null when none is of an AWS scheme).
 * Throws IamFieldError naming `read[i]`/`write[i]` for a pattern IAM cannot
 * express, `<field>.region` for a dynamodb:// scope without a region, and
 * `<field>` when the minified policy exceeds 2,048 characters.
 */
export function buildSessionPolicy(scopes: Scopes, ctx: PolicyContext, field: string): SessionPolicy | null {
  const parsed = parseAwsScopes(scopes);
  if (parsed.read.length === 0 && parsed.write.length === 0) return null;
  if (ctx.region === null && [...parsed.read, ...parsed.write].some((s) => s.kind === 'dynamodb')) {
    throw new IamFieldError(`${field}.region`, 'required with a dynamodb:// scope: a table ARN names its region');
  }
  const statements = [
    ...s3Statements('S3Read', parsed.read, ctx, S3_READ_ACTIONS),
    ...listStatements(parsed.read, ctx),
    ...s3Statements('S3Write', parsed.write, ctx, S3_WRITE_ACTIONS),
    ...dynamoStatement('DynamoDBRead', parsed.read, ctx, DYNAMODB_READ_ACTIONS, true),
    ...dynamoStatement('DynamoDBWrite', parsed.write, ctx, DYNAMODB_WRITE_ACTIONS, false),
  ];
  const document: PolicyDocument = { Version: '2012-10-17', Statement: statements };
  const json = JSON.stringify(document);
  if (json.length > MAX_SESSION_POLICY_CHARS) {
    throw new IamFieldError(
      field,
      `the session policy for these s3:// and dynamodb:// scopes is ${json.length} characters minified; AWS takes at most ${MAX_SESSION_POLICY_CHARS} (AssumeRole* Policy): use fewer patterns or shared prefixes`,
    );
  }
  return { document, json, chars: json.length };
}
