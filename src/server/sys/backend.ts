// The system backend (Vault's logical_system.go), mounted at sys/: status,
// mounts, auth methods, policies, capabilities, leases, wrapping, user
// lockout and the internal UI/OpenAPI paths, each family in its path file.
// Its handlers reach the server's services through the request's
// ServerRequest (serverRequest(req)).

import { FrameworkBackend } from '../../sdk/framework.ts';
import { pathAudit } from './path_audit.ts';
import { pathAuth } from './path_auth.ts';
import { pathCapabilities } from './path_capabilities.ts';
import { pathHealth, STATUS_PATHS, VAULT_VERSION } from './path_health.ts';
import { pathInternal } from './path_internal.ts';
import { pathLeases } from './path_leases.ts';
import { pathLockedUsers } from './path_locked_users.ts';
import { pathMounts } from './path_mounts.ts';
import { pathPolicies } from './path_policies.ts';
import { pathWrapping } from './path_wrapping.ts';

export function systemBackend(): FrameworkBackend {
  return new FrameworkBackend({
    name: 'system',
    version: VAULT_VERSION,
    tag: 'system',
    description: 'The system backend: mounts, auth methods, policies, leases, wrapping and status.',
    help: 'The system backend: mounts, auth methods, policies, capabilities, leases, response wrapping, user lockout and status.',
    routes: [
      ...pathHealth(),
      ...pathMounts(),
      ...pathAuth(),
      ...pathPolicies(),
      ...pathCapabilities(),
      ...pathLeases(),
      ...pathWrapping(),
      ...pathLockedUsers(),
      ...pathAudit(),
      ...pathInternal(),
    ],
    secrets: [],
    specialPaths: {
      unauthenticated: [...STATUS_PATHS, 'internal/ui/mounts', 'wrapping/unwrap', 'wrapping/lookup'],
      // The backend decides what these show the token: no ACL check on the path itself.
      tokenOnly: ['internal/ui/mounts/*', 'internal/specs/openapi'],
      root: ['auth/*', 'leases/lookup/*', 'leases/revoke-prefix/*', 'revoke-prefix/*', 'audit', 'audit/*'],
    },
    // As the dev server always has: fields no route declares are ignored.
    unknownFields: 'ignore',
  });
}
