// The role's `iam.gcp` object: parse and validate (pure).
//
//   workload_identity_provider  //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>
//                               (the bare `projects/...` form is accepted and normalised)
//   service_account             <name>@<project>.iam.gserviceaccount.com
//   audience                    the `aud` GCP expects on the tvm token; only with a provider.
//                               Default: the provider's canonical name with the https: prefix,
//                               which a provider with no allowed_audiences accepts
//                               (https://iam.googleapis.com/projects/<number>/locations/global/...).
// At least one of the first two. With a provider only, the federated token
// itself is the credential (direct resource access); with a service account,
// generateAccessToken mints it (from the federated token, or from the broker's
// own credentials when no provider is set) so its lifetime can be capped.

import { IamFieldError } from '../errors.ts';
import { targetObject } from '../target.ts';

export interface GcpTarget {
  /** `//iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`. */
  workload_identity_provider?: string;
  /** `<name>@<project>.iam.gserviceaccount.com`. */
  service_account?: string;
  /** The tvm token's audience for the STS exchange; set (defaulted) exactly when a provider is. */
  audience?: string;
}

const FIELDS = ['workload_identity_provider', 'service_account', 'audience'] as const;

const IAM_HOST_PREFIX = '//iam.googleapis.com/';
// Pool and provider ids: 4-32 lowercase letters, digits and dashes; the gcp- prefix is reserved.
const PROVIDER_NAME = /^projects\/(\d{1,30})\/locations\/global\/workloadIdentityPools\/([a-z0-9-]{4,32})\/providers\/([a-z0-9-]{4,32})$/;
// Service account id and project id: 6-30 characters, a lowercase letter first, no trailing dash;
// a domain-scoped project (example.com:proj) appears as proj.example.com.
const SERVICE_ACCOUNT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9](\.[a-z0-9-]+)*\.iam\.gserviceaccount\.com$/;
/** GCP keeps at most 256 characters per allowed audience. */
export const MAX_AUDIENCE_LENGTH = 256;

/** The audience a provider with no allowed_audiences accepts: its canonical name, https: prefixed. */
export function defaultAudience(provider: string): string {
  return `https:${provider}`;
}

function parseProvider(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || raw === '') throw new IamFieldError(field, 'expected a string');
  const name = raw.startsWith(IAM_HOST_PREFIX) ? raw.slice(IAM_HOST_PREFIX.length) : raw;
  const m = PROVIDER_NAME.exec(name);
  if (!m) {
    throw new IamFieldError(
      field,
      `${JSON.stringify(raw)} is not a workload identity pool provider; expected //iam.googleapis.com/projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`,
    );
  }
  for (const [what, id] of [['pool', m[2]], ['provider', m[3]]] as const) {
    if (id.startsWith('gcp-')) throw new IamFieldError(field, `the ${what} id ${JSON.stringify(id)} uses the reserved prefix gcp-`);
    if (id.startsWith('-') || id.endsWith('-')) throw new IamFieldError(field, `the ${what} id ${JSON.stringify(id)} may not start or end with "-"`);
  }
  return `${IAM_HOST_PREFIX}${name}`;
}

function parseServiceAccount(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || raw === '') throw new IamFieldError(field, 'expected a string');
  if (!SERVICE_ACCOUNT.test(raw)) {
    throw new IamFieldError(field, `${JSON.stringify(raw)} is not a service account email; expected <name>@<project>.iam.gserviceaccount.com`);
  }
  return raw;
}

/** Validates `iam.gcp` as written; throws IamFieldError naming `<field>.<key>`. */
export function parseGcpTarget(raw: unknown, field: string): GcpTarget {
  const input = targetObject(raw, field, { expected: 'workload_identity_provider and/or service_account', fields: FIELDS });
  const target: GcpTarget = {};
  if (input.workload_identity_provider !== undefined) {
    target.workload_identity_provider = parseProvider(input.workload_identity_provider, `${field}.workload_identity_provider`);
  }
  if (input.service_account !== undefined) {
    target.service_account = parseServiceAccount(input.service_account, `${field}.service_account`);
  }
  if (!target.workload_identity_provider && !target.service_account) {
    throw new IamFieldError(field, 'needs workload_identity_provider, service_account, or both');
  }
  if (input.audience !== undefined) {
    if (!target.workload_identity_provider) {
      throw new IamFieldError(
        `${field}.audience`,
        'only applies with workload_identity_provider (without one the tvm token is not presented to GCP)',
      );
    }
    if (typeof input.audience !== 'string' || input.audience === '') throw new IamFieldError(`${field}.audience`, 'expected a non-empty string');
    if (input.audience.length > MAX_AUDIENCE_LENGTH) {
      throw new IamFieldError(`${field}.audience`, `GCP accepts audiences of at most ${MAX_AUDIENCE_LENGTH} characters (got ${input.audience.length})`);
    }
    target.audience = input.audience;
  } else if (target.workload_identity_provider) {
    target.audience = defaultAudience(target.workload_identity_provider);
  }
  return target;
}
