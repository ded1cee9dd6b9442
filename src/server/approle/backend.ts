// Assembles the AppRole auth method (Vault's builtin/credential/approle) from
// its path families: roles and their role IDs, secret IDs, and login.

import type { FrameworkBackend } from '../../sdk/framework.ts';
import type { Clock } from '../../sdk/logical.ts';
import type { LockoutGate } from '../auth/lockout.ts';
import { authMethodBackend } from '../auth/method.ts';
import { createAppRoleContext } from './context.ts';
import { loginRoutes } from './path_login.ts';
import { roleRoutes } from './path_role.ts';
import { secretIdRoutes } from './path_secret_id.ts';

export interface AppRoleBackendOptions {
  clock?: Clock;
  /** The mount's user lockout (the auth table's failure counts); absent: none. */
  lockout?: LockoutGate;
}

const HELP = `
The AppRole auth method lets machines and services log in with a role ID and
a secret ID. Register roles at role/<role_name> (their token settings and
constraints), read a role's role ID at role/<role_name>/role-id, issue secret
IDs at role/<role_name>/secret-id, and log in at login.`;

export function createAppRoleBackend(options: AppRoleBackendOptions = {}): FrameworkBackend {
  const ctx = createAppRoleContext({ clock: options.clock ?? Date.now, ...(options.lockout ? { lockout: options.lockout } : {}) });
  // No cleanup: the state is in storage, and the lockout's counts are the auth table's.
  return authMethodBackend({
    name: 'approle',
    description: 'The AppRole auth method: machines and services log in with a role ID and a secret ID.',
    help: HELP,
    routes: [...roleRoutes(ctx), ...secretIdRoutes(ctx), ...loginRoutes(ctx)],
  });
}
