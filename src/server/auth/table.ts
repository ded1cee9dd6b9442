// The auth table (Vault's `sys/auth`): which auth method answers under which
// `auth/<path>/`. One method instance per mount, each with its own storage
// view `auth/<uuid>/`; the table itself is persisted at `core/auth`, so
// enabled methods, their config, roles and secret IDs survive restarts.
// The built-in token method (`auth/token/`) is not in the table.

import { deleteTree } from './storage.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import { KeyedMutex } from '../../sdk/storage.ts';
import type { Backend, Clock, Storage } from '../../sdk/logical.ts';
import { createAppRoleBackend } from '../approle/index.ts';
import { createJwtBackend } from '../jwt/index.ts';
import { MountError, normalizeMountPath, ttlSeconds, type MountConfig } from '../mounts.ts';
import type { Logger } from '../logger.ts';
import type { PhysicalStorage } from '../types.ts';
import { applyUserLockoutInput, lockoutPolicy, LoginLockout, userLockoutData, type UserLockoutConfig } from './lockout.ts';

const TABLE_KEY = 'core/auth';

/** Auth method types this server can enable (besides the built-in token method). */
export const AUTH_METHOD_TYPES = ['approle', 'jwt'] as const;
export type AuthMethodType = (typeof AUTH_METHOD_TYPES)[number];

/** An auth mount as stored (field names as `sys/auth` shows them). */
export interface AuthMountEntry {
  /** Relative to `auth/`, with trailing slash: `approle/`. */
  path: string;
  type: AuthMethodType;
  description: string;
  accessor: string;
  uuid: string;
  config: MountConfig;
  local: boolean;
  seal_wrap: boolean;
  external_entropy_access: boolean;
  options: Record<string, string> | null;
  /** Set by sys/auth/<path>/tune user_lockout_config (AppRole only); absent: Vault's defaults. */
  user_lockout_config?: UserLockoutConfig;
}

/** What sys/auth/<path>/tune may change. */
export interface AuthTuneInput {
  description?: unknown;
  default_lease_ttl?: unknown;
  max_lease_ttl?: unknown;
  /** Vault's user_lockout_config object (lockout_threshold, lockout_duration, lockout_counter_reset_duration, lockout_disable). */
  user_lockout_config?: unknown;
}

export interface AuthMount {
  entry: AuthMountEntry;
  /** The method on the backend framework: its requests carry the mount's accessor and type. */
  backend: Backend;
  storage: Storage;
}

export interface EnableAuthInput {
  path: string;
  type: string;
  description?: string;
  config?: Record<string, unknown>;
  options?: Record<string, string> | null;
  local?: boolean;
  seal_wrap?: boolean;
  external_entropy_access?: boolean;
}

export interface AuthTableOptions {
  storage: PhysicalStorage;
  clock: Clock;
  logger?: Logger;
}

export class AuthTable {
  private readonly storage: PhysicalStorage;
  private readonly clock: Clock;
  private readonly logger?: Logger;
  /** Longest path first. */
  private mounts: AuthMount[] = [];
  /** Being disabled: no longer routed. */
  private readonly tainted = new Set<AuthMount>();
  /** Changes to the table run one at a time. */
  private readonly lock = new KeyedMutex();
  /** Failed logins per mount and alias (memory only), for user lockout; sys/locked-users reads it. */
  readonly lockout: LoginLockout;

  constructor(options: AuthTableOptions) {
    this.storage = options.storage;
    this.clock = options.clock;
    if (options.logger) this.logger = options.logger;
    this.lockout = new LoginLockout({ clock: this.clock });
  }

  async load(): Promise<void> {
    const raw = await this.storage.get(TABLE_KEY);
    if (!raw) return;
    const table = JSON.parse(new TextDecoder().decode(raw)) as { mounts: AuthMountEntry[] };
    this.mounts = sortMounts(table.mounts.map((entry) => this.start(entry)));
  }

  list(): AuthMount[] {
    return [...this.mounts].sort((a, b) => (a.entry.path < b.entry.path ? -1 : 1));
  }

  /** The mount at exactly this path (`approle/`). */
  get(path: string): AuthMount | undefined {
    return this.mounts.find((m) => m.entry.path === path && !this.tainted.has(m));
  }

  /** The mount serving a path relative to `auth/`, and the path relative to the mount. */
  match(path: string): { mount: AuthMount; relPath: string } | null {
    for (const mount of this.mounts) {
      if (this.tainted.has(mount)) continue;
      const p = mount.entry.path;
      if (path.startsWith(p)) return { mount, relPath: path.slice(p.length) };
      if (path === p.slice(0, -1)) return { mount, relPath: '' };
    }
    return null;
  }

  /** Enables an auth method; resolves once the table is durable. */
  enable(input: EnableAuthInput): Promise<AuthMount> {
    return this.lock.run('table', () => this.enableNow(input));
  }

  private async enableNow(input: EnableAuthInput): Promise<AuthMount> {
    const path = normalizeMountPath(input.path);
    if (input.type === 'token') throw new MountError('token credential backend cannot be instantiated');
    if (!(AUTH_METHOD_TYPES as readonly string[]).includes(input.type)) {
      throw new MountError(
        `unsupported auth method type ${JSON.stringify(input.type)}: this server supports ${AUTH_METHOD_TYPES.map((t) => JSON.stringify(t)).join(' and ')} (and the built-in "token")`,
      );
    }
    for (const existing of ['token/', ...this.mounts.map((m) => m.entry.path)]) {
      if (path.startsWith(existing) || existing.startsWith(path)) throw new MountError(`path is already in use at ${existing}`);
    }
    const config = input.config ?? {};
    const entry: AuthMountEntry = {
      path,
      type: input.type as AuthMethodType,
      description: input.description ?? '',
      accessor: `auth_${input.type}_${randomBytes(4).toString('hex')}`,
      uuid: randomUUID(),
      config: {
        default_lease_ttl: ttlSeconds('config.default_lease_ttl', config.default_lease_ttl),
        max_lease_ttl: ttlSeconds('config.max_lease_ttl', config.max_lease_ttl),
        force_no_cache: config.force_no_cache === true,
      },
      local: input.local === true,
      seal_wrap: input.seal_wrap === true,
      external_entropy_access: input.external_entropy_access === true,
      // As given: Vault keeps {} (options absent from an API call) apart from null.
      options: input.options ? { ...input.options } : null,
    };
    const mount = this.start(entry);
    const next = sortMounts([...this.mounts, mount]);
    await this.persist(next);
    this.mounts = next;
    return mount;
  }

  /** sys/auth/<path>/tune: description, lease ttls and user lockout; everything is checked before anything changes. */
  tune(path: string, input: AuthTuneInput): Promise<void> {
    return this.lock.run('table', () => this.tuneNow(path, input));
  }

  private async tuneNow(path: string, input: AuthTuneInput): Promise<void> {
    const mount = this.get(path);
    if (!mount) throw new MountError(`No auth engine at ${path}`);
    const entry: AuthMountEntry = { ...mount.entry, config: { ...mount.entry.config } };
    if (input.description !== undefined && input.description !== null) {
      if (typeof input.description !== 'string') throw new MountError('invalid description: expected a string');
      entry.description = input.description;
    }
    if (input.default_lease_ttl !== undefined) entry.config.default_lease_ttl = ttlSeconds('default_lease_ttl', input.default_lease_ttl);
    if (input.max_lease_ttl !== undefined) entry.config.max_lease_ttl = ttlSeconds('max_lease_ttl', input.max_lease_ttl);
    const lockout = applyUserLockoutInput(entry.type, input.user_lockout_config, entry.user_lockout_config);
    if (lockout) entry.user_lockout_config = lockout;
    const next = this.mounts.map((m) => (m === mount ? { ...m, entry } : m));
    await this.persist(next);
    this.mounts = next;
  }

  /**
   * Disables an auth method: routing stops at once, `revoke` runs (it revokes
   * the tokens the method issued), then the method is cleaned up and its
   * storage deleted. Disabling a path with no method succeeds, as in Vault.
   */
  disable(rawPath: string, revoke: (mount: AuthMount) => Promise<void>): Promise<boolean> {
    return this.lock.run('table', () => this.disableNow(rawPath, revoke));
  }

  private async disableNow(rawPath: string, revoke: (mount: AuthMount) => Promise<void>): Promise<boolean> {
    const path = normalizeMountPath(rawPath);
    const mount = this.get(path);
    if (!mount) return false;
    this.tainted.add(mount);
    try {
      await revoke(mount);
      const next = this.mounts.filter((m) => m !== mount);
      await this.persist(next);
      this.mounts = next;
    } finally {
      this.tainted.delete(mount);
    }
    this.lockout.dropMount(mount.entry.accessor);
    try {
      await mount.backend.cleanup();
    } catch (err) {
      this.logger?.warn('auth method cleanup failed on disable', { path: `auth/${path}`, error: (err as Error).message });
    }
    await deleteTree(this.storage, `auth/${mount.entry.uuid}/`);
    return true;
  }

  async cleanup(): Promise<void> {
    for (const m of this.mounts) await m.backend.cleanup().catch(() => undefined);
  }

  private start(entry: AuthMountEntry): AuthMount {
    const backend =
      entry.type === 'approle'
        ? createAppRoleBackend({
            clock: this.clock,
            // The policy is read at each login, from the entry as last tuned.
            lockout: this.lockout.gate(entry.accessor, () => lockoutPolicy(this.entryOf(entry.uuid)?.user_lockout_config)),
          })
        : createJwtBackend({ clock: this.clock });
    return { entry, backend, storage: this.storage.view(`auth/${entry.uuid}/`) };
  }

  /** The current entry of a mount (tune replaces entries). */
  private entryOf(uuid: string): AuthMountEntry | undefined {
    return this.mounts.find((m) => m.entry.uuid === uuid)?.entry;
  }

  private async persist(mounts: AuthMount[]): Promise<void> {
    await this.storage.put(TABLE_KEY, new TextEncoder().encode(JSON.stringify({ mounts: mounts.map((m) => m.entry) })));
  }

}

function sortMounts(mounts: AuthMount[]): AuthMount[] {
  return [...mounts].sort((a, b) => b.entry.path.length - a.entry.path.length);
}

/** An auth mount as `sys/auth` and `sys/auth/<path>` show it. */
export function authMountInfo(entry: AuthMountEntry): Record<string, unknown> {
  return {
    accessor: entry.accessor,
    config: {
      ...entry.config,
      token_type: 'default-service',
      ...(entry.user_lockout_config ? { user_lockout_config: userLockoutData(entry.user_lockout_config) } : {}),
    },
    deprecation_status: 'supported',
    description: entry.description,
    external_entropy_access: entry.external_entropy_access,
    local: entry.local,
    options: entry.options,
    plugin_version: '',
    running_plugin_version: '',
    running_sha256: '',
    seal_wrap: entry.seal_wrap,
    type: entry.type,
    uuid: entry.uuid,
  };
}
