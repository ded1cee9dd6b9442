// Assembles the tvm secrets engine from its path families.

import { createContext } from './context.ts';
import { FrameworkBackend } from '../sdk/framework.ts';
import { CONFIG_KEY } from './config.ts';
import { configRoutes } from './path_config.ts';
import { credsRoutes, credsSecret } from './path_creds.ts';
import { introspectRoutes } from './path_introspect.ts';
import { keyRoutes } from './path_keys.ts';
import { revocationRoutes } from './path_revocations.ts';
import { statusRoutes } from './path_status.ts';
import { revokeRoutes } from './path_revoke.ts';
import { ROLE_PREFIX } from './roles.ts';
import { roleRoutes } from './path_roles.ts';
import { KEYS_KEY } from './keys.ts';
import { LEASE_PREFIX } from './leases.ts';
import type { Backend, Clock } from '../sdk/logical.ts';

/** The engine's version (the package's), as its OpenAPI document shows it. */
export const ENGINE_VERSION = '0.1.0';

export interface TvmBackendOptions {
  /** The externally reachable API address, used for the default issuer. */
  apiAddr: string;
  clock?: Clock;
}

const HELP = `
The tvm secrets engine vends short-lived, narrowly scoped signed tokens
(RFC 9068 JWTs) under Vault leases. Configure it at config, declare roles at
roles/<name>, issue at creds/<role>. Resource servers verify tokens offline
with jwks (or .well-known/jwks.json) and the status list each token names
(status/<n>, pushed at status/events), or online at introspect.`;

export function createTvmBackend(options: TvmBackendOptions): Backend {
  const ctx = createContext({ clock: options.clock ?? Date.now, apiAddr: options.apiAddr });
  return new FrameworkBackend({
    name: 'tvm',
    version: ENGINE_VERSION,
    help: HELP.trim(),
    routes: [
      ...configRoutes(ctx),
      ...roleRoutes(ctx),
      ...credsRoutes(ctx),
      ...keyRoutes(ctx),
      ...revocationRoutes(ctx),
      ...statusRoutes(ctx),
      ...revokeRoutes(ctx),
      ...introspectRoutes(ctx),
    ],
    secrets: [credsSecret(ctx)],
    specialPaths: { unauthenticated: ['jwks', '.well-known/*', 'revocations', 'status/*'], root: [] },
    initialize: async (storage) => {
      const config = await ctx.config.load(storage);
      await ctx.keys.signingKey(storage, config);
      // A run of status lists for this start; a node that cannot write (a standby) claims at its first issue.
      await ctx.status.claim(storage).catch(() => undefined);
    },
    periodic: async (storage) => {
      await ctx.revocations.prune(storage);
      await ctx.keys.prune(storage);
      await ctx.leases.tidy(storage, ctx.clock());
    },
    invalidate: (key) => {
      if (key === CONFIG_KEY) ctx.config.invalidate();
      else if (key === KEYS_KEY) ctx.keys.invalidate();
      else if (key.startsWith('revocations/')) {
        ctx.revocations.invalidate();
        ctx.status.invalidate();
      }
      else if (key.startsWith(ROLE_PREFIX)) ctx.roles.invalidate(key.slice(ROLE_PREFIX.length));
      else if (key.startsWith(LEASE_PREFIX)) ctx.leases.invalidate(key);
    },
  });
}
