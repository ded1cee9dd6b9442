// Azure's part of a role (pure: no SDK, no I/O; the engine and the plugin bundle import it).
// The target is parsed in target.ts, the azblob:// scopes become user
// delegation SAS scopes in scopes.ts; this file checks a role against both.
//
// Lifetimes: a user delegation key is valid for at most 7 days from the
// request, and a SAS signed with it dies with it. The provider asks for a key
// (and signs the SAS) until the credential's expiry, so a role whose max_ttl
// exceeds 7 days is refused: its lease could outlive any credential Azure can
// sign. There is no minimum duration.
//
// The signing algorithm: Entra accepts federated client assertions signed with
// RSA only (RS256/384/512, PS256/384/512; ES256 is refused with AADSTS5002738),
// so a mount serving Azure roles needs `signing_algorithm=RS256`. The mount's
// algorithm is not among the RoleFacts, so checkRole cannot refuse a role on
// an ES256 mount: the first exchange fails (ERR_CLOUD_DENIED) instead.

import { IamFieldError } from '../errors.ts';
import type { CloudModule, RoleFacts } from '../types.ts';
import { AZBLOB_SCHEME, sasScopesFor } from './scopes.ts';
import { parseAzureTarget, type AzureTarget } from './target.ts';

export type { AzureTarget } from './target.ts';
export { DEFAULT_AUDIENCE, MAX_AUDIENCE_LENGTH, STORAGE_ACCOUNT, parseAzureTarget } from './target.ts';
export {
  AZBLOB_SCHEME,
  MAX_BLOB_NAME_CHARS,
  MAX_BLOB_SEGMENTS,
  READ_BLOB_PERMISSIONS,
  READ_PERMISSIONS,
  WRITE_PERMISSIONS,
  hasAzblobScope,
  isAzblobPattern,
  parseAzblobPattern,
  sasScopesFor,
  type AzblobResource,
  type SasResource,
  type SasScope,
} from './scopes.ts';

/** A user delegation key (and so its SAS) lives at most 7 days. */
export const MAX_USER_DELEGATION_KEY_S = 7 * 24 * 3600;

function checkAzureRole(target: AzureTarget, role: RoleFacts, field: string): void {
  if (sasScopesFor(target, role).length === 0) {
    throw new IamFieldError(field, `the role has no ${AZBLOB_SCHEME}:// scope, so an Azure SAS would carry no permission`);
  }
  if (!role.audiences.includes(target.audience)) {
    const have = role.audiences.length > 0 ? `the role's audiences are ${role.audiences.join(', ')}` : 'the role has no audiences (its tokens carry the issuer)';
    throw new IamFieldError(
      `${field}.audience`,
      `Entra checks the client assertion's aud against the federated identity credential (${target.audience}), and ${have}; add ${target.audience} to the role's audiences`,
    );
  }
  if (role.maxTtlS > MAX_USER_DELEGATION_KEY_S) {
    throw new IamFieldError(
      'max_ttl',
      `${role.maxTtlS}s is longer than a user delegation key may live (7 days, ${MAX_USER_DELEGATION_KEY_S}s): no SAS could reach the lease's end; lower max_ttl to 168h or less`,
    );
  }
}

export const azureModule: CloudModule<AzureTarget> = {
  cloud: 'azure',
  schemes: [AZBLOB_SCHEME],
  parseTarget: parseAzureTarget,
  checkRole: checkAzureRole,
};
