// The role's `iam.aws` object: parsed, validated and normalised. Pure.
//
//   role_arn        required: arn:<partition>:iam::<12 digits>:role/[<path>/]<name>
//   method          "web_identity" (default: AssumeRoleWithWebIdentity with the tvm token)
//                   or "assume_role" (AssumeRole with the broker's own AWS credentials)
//   audience        the `aud` AWS's OIDC provider expects (default "sts.amazonaws.com");
//                   must be one of the role's audiences when method is web_identity
//   region          optional: the region of the resources (required with a dynamodb:// scope),
//                   the STS regional endpoint, and AWS_REGION in the credential's env
//   deny_on_revoke  default true: revoke puts an inline deny policy on the role for the session

import { IamFieldError } from '../errors.ts';
import { targetObject } from '../target.ts';

export type AwsMethod = 'web_identity' | 'assume_role';

export interface AwsTarget {
  role_arn: string;
  method: AwsMethod;
  audience: string;
  region: string | null;
  deny_on_revoke: boolean;
}

/** The parts of a role ARN the policies and the IAM calls need. */
export interface RoleArnParts {
  partition: string;
  account: string;
  /** The role path, "/" when none. */
  path: string;
  /** The role name alone (what IAM's RoleName parameter takes). */
  name: string;
}

export const DEFAULT_AUDIENCE = 'sts.amazonaws.com';

const KNOWN_FIELDS = ['role_arn', 'method', 'audience', 'region', 'deny_on_revoke'] as const;
const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(.+)$/;
// Role names: 1 to 64 of [\w+=,.@-]; paths: "/" or "/…/" of printable ASCII, at most 512.
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
const ROLE_PATH = /^\/(?:[\x21-\x7e]*\/)?$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** Splits a role ARN; null when it is not one. */
export function parseRoleArn(arn: string): RoleArnParts | null {
  const m = ROLE_ARN.exec(arn);
  if (!m) return null;
  const rest = m[3];
  const slash = rest.lastIndexOf('/');
  const name = rest.slice(slash + 1);
  const path = slash < 0 ? '/' : `/${rest.slice(0, slash + 1)}`;
  if (!ROLE_NAME.test(name) || !ROLE_PATH.test(path) || path.length > 512) return null;
  return { partition: m[1], account: m[2], path, name };
}

function str(raw: Record<string, unknown>, key: string, field: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new IamFieldError(`${field}.${key}`, `expected a string, got ${typeof v}`);
  return v;
}

export function parseAwsTarget(raw: unknown, field: string): AwsTarget {
  const expected = 'role_arn (and optionally method, audience, region, deny_on_revoke)';
  const obj = targetObject(raw, field, { expected, fields: KNOWN_FIELDS, anyOf: true });
  const roleArn = str(obj, 'role_arn', field);
  if (roleArn === undefined || roleArn === '') {
    throw new IamFieldError(`${field}.role_arn`, 'required: the ARN of the role to assume, arn:aws:iam::<account>:role/<name>');
  }
  if (parseRoleArn(roleArn) === null) {
    throw new IamFieldError(
      `${field}.role_arn`,
      `${JSON.stringify(roleArn)} is not a role ARN: expected arn:aws[-partition]:iam::<12 digits>:role/[<path>/]<name>, the name 1 to 64 of [A-Za-z0-9_+=,.@-]`,
    );
  }
  const method = str(obj, 'method', field) ?? 'web_identity';
  if (method !== 'web_identity' && method !== 'assume_role') {
    throw new IamFieldError(`${field}.method`, `${JSON.stringify(method)}: expected "web_identity" or "assume_role"`);
  }
  const audience = str(obj, 'audience', field) ?? DEFAULT_AUDIENCE;
  if (audience === '' || audience.length > 255) {
    throw new IamFieldError(`${field}.audience`, 'expected 1 to 255 characters (the client id registered on the IAM OIDC provider)');
  }
  const region = str(obj, 'region', field) ?? null;
  if (region !== null && !REGION.test(region)) {
    throw new IamFieldError(`${field}.region`, `${JSON.stringify(region)} is not an AWS region name (for example eu-west-1)`);
  }
  const deny = obj.deny_on_revoke;
  if (deny !== undefined && deny !== null && typeof deny !== 'boolean') {
    throw new IamFieldError(`${field}.deny_on_revoke`, `expected a boolean, got ${typeof deny}`);
  }
  return { role_arn: roleArn, method, audience, region, deny_on_revoke: typeof deny === 'boolean' ? deny : true };
}
