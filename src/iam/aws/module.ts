// AWS's part of a role: the `iam.aws` target and the scope translation. Pure
// (no SDK, no I/O): the engine and the plugin bundle import it.

import { IamFieldError } from '../errors.ts';
import type { CloudModule, RoleFacts, Scopes } from '../types.ts';
import { AWS_SCHEMES, buildSessionPolicy, type SessionPolicy } from './scopes.ts';
import { parseAwsTarget, parseRoleArn, type AwsTarget } from './target.ts';

export type { AwsMethod, AwsTarget, RoleArnParts } from './target.ts';
export { DEFAULT_AUDIENCE, parseAwsTarget, parseRoleArn } from './target.ts';
export type { AwsScope, PolicyDocument, PolicyStatement, SessionPolicy } from './scopes.ts';
export {
  AWS_SCHEMES,
  DYNAMODB_READ_ACTIONS,
  DYNAMODB_WRITE_ACTIONS,
  MAX_SESSION_POLICY_CHARS,
  S3_LIST_ACTION,
  S3_READ_ACTIONS,
  S3_WRITE_ACTIONS,
  parseAwsPattern,
} from './scopes.ts';

/** AWS's minimum role session: AssumeRole* refuse a DurationSeconds below 900. */
export const MIN_SESSION_S = 900;
/** AWS's maximum role session (a role's MaxSessionDuration may be lower, 3600 by default). */
export const MAX_SESSION_S = 43_200;

/**
 * The session policy a grant with these scopes gets on this target (null when
 * no scope is of an AWS scheme). Throws IamFieldError as `checkRole` does.
 */
export function sessionPolicyFor(target: AwsTarget, scopes: Scopes, field = 'iam.aws'): SessionPolicy | null {
  const arn = parseRoleArn(target.role_arn);
  if (arn === null) throw new IamFieldError(`${field}.role_arn`, `${JSON.stringify(target.role_arn)} is not a role ARN`);
  return buildSessionPolicy(scopes, { partition: arn.partition, account: arn.account, region: target.region }, field);
}

function checkRole(target: AwsTarget, role: RoleFacts, field: string): void {
  if (target.method === 'web_identity' && !role.audiences.includes(target.audience)) {
    throw new IamFieldError(
      `${field}.audience`,
      `${JSON.stringify(target.audience)} must be one of the role's audiences (${role.audiences.length === 0 ? 'none set' : role.audiences.map((a) => JSON.stringify(a)).join(', ')}): AssumeRoleWithWebIdentity checks the token's aud against the OIDC provider's client ids`,
    );
  }
  if (role.maxTtlS < MIN_SESSION_S) {
    throw new IamFieldError(
      'max_ttl',
      `${role.maxTtlS}s is below AWS's minimum session of ${MIN_SESSION_S}s: a credential would outlive the lease's max_ttl; raise max_ttl to at least 15m`,
    );
  }
  if (sessionPolicyFor(target, role, field) === null) {
    throw new IamFieldError(field, 'the role has no read or write pattern of scheme s3:// or dynamodb://, so an AWS credential would grant nothing');
  }
}

export const awsModule: CloudModule<AwsTarget> = {
  cloud: 'aws',
  schemes: AWS_SCHEMES,
  parseTarget: parseAwsTarget,
  checkRole,
};
