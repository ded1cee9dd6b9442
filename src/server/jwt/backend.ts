// Assembles the JWT auth method (Vault's vault-plugin-auth-jwt, JWT flow
// only) from its path families: config, roles, and login.

import type { FrameworkBackend } from '../../sdk/framework.ts';
import type { Clock } from '../../sdk/logical.ts';
import { authMethodBackend } from '../auth/method.ts';
import { createJwtContext } from './context.ts';
import { configRoutes } from './path_config.ts';
import { loginRoutes } from './path_login.ts';
import { roleRoutes } from './path_role.ts';

export interface JwtBackendOptions {
  clock?: Clock;
}

const HELP = `
The JWT auth method lets workloads log in with a signed JWT, such as a
Kubernetes service-account token or a CI system's OIDC token. Configure where
the verifying keys come from at config, bind roles at role/<name>, and log in
at login with the JWT and a role.`;

export function createJwtBackend(options: JwtBackendOptions = {}): FrameworkBackend {
  const ctx = createJwtContext({ clock: options.clock ?? Date.now });
  return authMethodBackend({
    name: 'jwt',
    description: 'The JWT auth method: workloads log in with a signed JWT (the JWT flow of OIDC providers, Kubernetes, CI systems).',
    help: HELP,
    routes: [...configRoutes(ctx), ...roleRoutes(ctx), ...loginRoutes(ctx)],
    // The key source (a remote key set's cache) goes; the config stays in storage.
    cleanup: async () => ctx.keys.clear(),
  });
}
