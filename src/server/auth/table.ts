// The auth methods' mount table (Vault's `sys/auth`): which auth method
// answers under which `auth/<path>/`, each with its storage view
// `auth/<uuid>/`, the table persisted at `core/auth`, so enabled methods,
// their config, roles and secret IDs survive restarts. The sequence itself is
// mount_table.ts, shared with the secrets engines' table; what is the auth
// table's own is here: its types, the user lockout tune, and how a method is
// built. The built-in token method (`auth/token/`) is not in the table.

import type { Clock } from '../../sdk/logical.ts';
import { createAppRoleBackend } from '../approle/index.ts';
import { createJwtBackend } from '../jwt/index.ts';
import type { Logger } from '../logger.ts';
import { MountError, MountTable, mountInfo, type MountEntry, type Mounted, type TuneInput } from '../mount_table.ts';
import type { PhysicalStorage } from '../types.ts';
import { applyUserLockoutInput, lockoutPolicy, LoginLockout, userLockoutData, type UserLockoutConfig } from './lockout.ts';

/** Auth method types this server can enable (besides the built-in token method). */
export const AUTH_METHOD_TYPES = ['approle', 'jwt'] as const;
export type AuthMethodType = (typeof AUTH_METHOD_TYPES)[number];

/** An auth mount as stored (field names as `sys/auth` shows them); its path is relative to `auth/`. */
export interface AuthMountEntry extends MountEntry {
  type: AuthMethodType;
  /** Set by sys/auth/<path>/tune user_lockout_config (AppRole only); absent: Vault's defaults. */
  user_lockout_config?: UserLockoutConfig;
}

/** What sys/auth/<path>/tune may change. */
/** What sys/auth/<path>/tune may change besides a mount's description and ttls. */
export interface AuthTuneInput extends TuneInput {
  /** Vault's user_lockout_config object (lockout_threshold, lockout_duration, lockout_counter_reset_duration, lockout_disable). */
  user_lockout_config?: unknown;
}

export type AuthMount = Mounted<AuthMountEntry>;

export interface AuthTableOptions {
  storage: PhysicalStorage;
  clock: Clock;
  logger?: Logger;
}

/** The auth methods' mount table; the built-in token method (`auth/token/`) is not in it. */
export class AuthTable extends MountTable<AuthMountEntry> {
  /** Failed logins per mount and alias (memory only), for user lockout; sys/locked-users reads it. */
  readonly lockout: LoginLockout;

  constructor(options: AuthTableOptions) {
    const lockout = new LoginLockout({ clock: options.clock });
    super({
      storage: options.storage,
      ...(options.logger ? { logger: options.logger } : {}),
      kind: {
        tableKey: 'core/auth',
        noun: 'auth method',
        builtinPaths: ['token/'],
        check(_path, type) {
          if (type === 'token') throw new MountError('token credential backend cannot be instantiated');
          if (!(AUTH_METHOD_TYPES as readonly string[]).includes(type)) {
            throw new MountError(
              `unsupported auth method type ${JSON.stringify(type)}: this server supports ${AUTH_METHOD_TYPES.map((t) => JSON.stringify(t)).join(' and ')} (and the built-in "token")`,
            );
          }
        },
        accessorPrefix: (type) => `auth_${type}_`,
        prefix: (entry) => `auth/${entry.uuid}/`,
        createBackend: (entry, current) =>
          entry.type === 'approle'
            ? createAppRoleBackend({
                clock: options.clock,
                // The policy is read at each login, from the entry as last tuned.
                lockout: lockout.gate(entry.accessor, () => lockoutPolicy(current()?.user_lockout_config)),
              })
            : createJwtBackend({ clock: options.clock }),
        missing: (path) => `No auth engine at ${path}`,
        tune(entry, input: AuthTuneInput) {
          const config = applyUserLockoutInput(entry.type, input.user_lockout_config, entry.user_lockout_config);
          if (config) entry.user_lockout_config = config;
        },
        removed: (mount) => lockout.dropMount(mount.entry.accessor),
      },
    });
    this.lockout = lockout;
  }
}

/** An auth mount as `sys/auth` and `sys/auth/<path>` show it. */
export function authMountInfo(entry: AuthMountEntry): Record<string, unknown> {
  const info = mountInfo(entry);
  return {
    ...info,
    config: {
      ...entry.config,
      token_type: 'default-service',
      ...(entry.user_lockout_config ? { user_lockout_config: userLockoutData(entry.user_lockout_config) } : {}),
    },
    deprecation_status: 'supported',
  };
}
