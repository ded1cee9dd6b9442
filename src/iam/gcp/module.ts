// GCP's part of a role (pure: no SDK, no I/O; the engine and the plugin bundle import it).
// The target is parsed in target.ts, the gs:// scopes become a Credential
// Access Boundary in scopes.ts; this file checks a role against both.
//
// Lifetimes: generateAccessToken takes any lifetime up to 3,600 s (43,200 s
// where the org policy constraints/iam.allowServiceAccountCredentialLifetimeExtension
// lists the account) and documents no minimum; the 600 s floor some tools
// show is gcloud create-cred-config's, not the API's. A federated token lives
// no longer than the tvm token it was exchanged for (at most one hour), and a
// downscoped token expires with its source. So no max_ttl is too short for
// GCP and none is refused for its length: the provider caps each token at the
// lease and renews it.

import { IamFieldError } from '../errors.ts';
import type { CloudModule, RoleFacts } from '../types.ts';
import { accessBoundaryFor, GCS_SCHEME } from './scopes.ts';
import { parseGcpTarget, type GcpTarget } from './target.ts';

export type { GcpTarget } from './target.ts';
export { defaultAudience, parseGcpTarget, MAX_AUDIENCE_LENGTH } from './target.ts';
export {
  accessBoundaryFor,
  hasGcsScope,
  parseGcsPattern,
  scopeCondition,
  GCS_SCHEME,
  MAX_ACCESS_BOUNDARY_CHARS,
  MAX_ACCESS_BOUNDARY_RULES,
  READ_PERMISSIONS,
  WRITE_PERMISSIONS,
  type AccessBoundaryRule,
  type CredentialAccessBoundary,
  type GcsResource,
} from './scopes.ts';

/** generateAccessToken's default maximum lifetime (without the org policy extension). */
export const MAX_SERVICE_ACCOUNT_TOKEN_LIFETIME_S = 3600;
/** The most an org policy lets generateAccessToken grant. */
export const MAX_EXTENDED_TOKEN_LIFETIME_S = 43_200;

function checkGcpRole(target: GcpTarget, role: RoleFacts, field: string): void {
  const cab = accessBoundaryFor(role);
  if (cab.accessBoundary.accessBoundaryRules.length === 0) {
    throw new IamFieldError(field, `the role has no ${GCS_SCHEME}:// scope, so a GCP credential would carry no permission`);
  }
  if (target.workload_identity_provider && target.audience !== undefined && !role.audiences.includes(target.audience)) {
    const have = role.audiences.length > 0 ? `the role's audiences are ${role.audiences.join(', ')}` : 'the role has no audiences (its tokens carry the issuer)';
    throw new IamFieldError(
      `${field}.audience`,
      `GCP STS needs tokens with audience ${target.audience}, and ${have}; add it to the role's audiences`,
    );
  }
}

export const gcpModule: CloudModule<GcpTarget> = {
  cloud: 'gcp',
  schemes: [GCS_SCHEME],
  parseTarget: parseGcpTarget,
  checkRole: checkGcpRole,
};
