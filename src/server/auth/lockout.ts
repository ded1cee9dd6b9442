// User lockout (Vault 1.13+, for AppRole here): after lockout_threshold
// failed logins for one alias (AppRole: the role ID) within
// lockout_counter_reset of each other, further logins with it are refused
// with "permission denied" for lockout_duration, even with the right secret
// ID. Tuned per auth mount with sys/auth/<path>/tune user_lockout_config;
// listed and lifted with sys/locked-users. The failure counts live in memory
// (a restart forgets them); the tuned config is stored in the auth table.
//
// Unlike Vault, which counts only a wrong secret ID, an unknown role ID
// counts and locks the same way, so a lockout says nothing about whether the
// role ID exists.

import { createHash } from 'node:crypto';
import { showValue } from '../../sdk/errors.ts';
import type { Clock } from '../../sdk/logical.ts';
import { MountError, ttlSeconds } from '../mounts.ts';

// ---------------------------------------------------------------------------
// Constants

/** Vault's defaults (configutil.UserLockout*Default). */
export const LOCKOUT_THRESHOLD_DEFAULT = 5;
export const LOCKOUT_DURATION_DEFAULT_S = 15 * 60;
export const LOCKOUT_COUNTER_RESET_DEFAULT_S = 15 * 60;
/** Auth method types with user lockout (Vault: userpass, ldap and approle; this server has AppRole). */
export const LOCKOUT_METHOD_TYPES: readonly string[] = ['approle'];
/** Aliases whose failures are remembered at once; past it the stalest are forgotten first. */
export const MAX_TRACKED_ALIASES = 10_000;
/** sys/locked-users shows an alias up to this length (longer role IDs are cut; unlock takes them whole). */
const SHOWN_ALIAS_LENGTH = 256;

/**
 * The keys of user_lockout_config in a tune request and the stored field
 * each sets. Vault's API decodes lockout_counter_reset_duration and
 * lockout_disable; its docs (and the Terraform provider's schema) say
 * lockout_counter_reset, and its config file says disable_lockout: all are
 * accepted.
 */
const INPUT_KEYS: Record<string, keyof UserLockoutConfig> = {
  lockout_threshold: 'lockout_threshold',
  lockout_duration: 'lockout_duration',
  lockout_counter_reset_duration: 'lockout_counter_reset',
  lockout_counter_reset: 'lockout_counter_reset',
  lockout_disable: 'disable_lockout',
  disable_lockout: 'disable_lockout',
};

// ---------------------------------------------------------------------------
// Stored types

/** A mount's user_lockout_config as stored in the auth table (seconds; 0 = the default). */
export interface UserLockoutConfig {
  lockout_threshold: number;
  lockout_duration: number;
  lockout_counter_reset: number;
  disable_lockout: boolean;
}

/** The lockout in force on a mount: defaults filled in, milliseconds. */
export interface LockoutPolicy {
  disabled: boolean;
  threshold: number;
  durationMs: number;
  counterResetMs: number;
}

/** What a login handler asks, for one mount. */
export interface LockoutGate {
  /** Lockout applies on this mount (not disabled). */
  enabled(): boolean;
  /** The alias is locked out now. */
  locked(alias: string): boolean;
  /** A login with the alias failed on its credentials. */
  failed(alias: string): void;
  /** A login with the alias succeeded: its count starts again. */
  succeeded(alias: string): void;
}

interface FailedLogins {
  /** The alias as sys/locked-users shows it. */
  shown: string;
  count: number;
  lastFailureMs: number;
  /** After this the entry can neither lock nor add to a count under the policy it was recorded with. */
  staleAtMs: number;
}

// ---------------------------------------------------------------------------
// Config

export function lockoutPolicy(config: UserLockoutConfig | undefined): LockoutPolicy {
  return {
    disabled: config?.disable_lockout === true,
    threshold: config?.lockout_threshold || LOCKOUT_THRESHOLD_DEFAULT,
    durationMs: (config?.lockout_duration || LOCKOUT_DURATION_DEFAULT_S) * 1000,
    counterResetMs: (config?.lockout_counter_reset || LOCKOUT_COUNTER_RESET_DEFAULT_S) * 1000,
  };
}

/**
 * Applies a tune request's user_lockout_config to a mount's stored config.
 * Absent or `{}`: unchanged. Empty strings leave a field as it is; "0" (and
 * "system" for durations) puts it back to the default, as in Vault. Refuses
 * (400) non-AppRole mounts, unknown keys, two spellings of one field that
 * disagree, and values that are not counts, durations or booleans.
 */
export function applyUserLockoutInput(
  mountType: string,
  input: unknown,
  current: UserLockoutConfig | undefined,
): UserLockoutConfig | undefined {
  if (input === undefined || input === null) return current;
  if (typeof input !== 'object' || Array.isArray(input)) throw new MountError('invalid user_lockout_config: expected an object');
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length === 0) return current;
  if (!LOCKOUT_METHOD_TYPES.includes(mountType)) {
    throw new MountError(`tuning of user lockout configuration for auth type ${JSON.stringify(mountType)} not allowed`);
  }
  const next: UserLockoutConfig = current
    ? { ...current }
    : { lockout_threshold: 0, lockout_duration: 0, lockout_counter_reset: 0, disable_lockout: false };
  const given = new Map<keyof UserLockoutConfig, { key: string; value: number | boolean }>();
  for (const [key, raw] of entries) {
    const field = INPUT_KEYS[key];
    if (!field) {
      throw new MountError(
        `invalid user_lockout_config: unknown field ${showValue(key)}; known: ${Object.keys(INPUT_KEYS).join(', ')}`,
      );
    }
    if (raw === undefined || raw === null || raw === '') continue;
    const value = field === 'disable_lockout' ? lockoutBool(key, raw) : field === 'lockout_threshold' ? lockoutCount(key, raw) : lockoutSeconds(key, raw);
    const earlier = given.get(field);
    if (earlier && earlier.value !== value) {
      throw new MountError(`invalid user_lockout_config: ${earlier.key} and ${key} set the same thing to different values`);
    }
    given.set(field, { key, value });
  }
  for (const [field, { value }] of given) (next as unknown as Record<string, number | boolean>)[field] = value;
  return next;
}

function lockoutCount(key: string, raw: unknown): number {
  const n = typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new MountError(`invalid user_lockout_config.${key}: ${showValue(raw)} is not a whole number, 0 or more`);
  }
  return n;
}

function lockoutSeconds(key: string, raw: unknown): number {
  return ttlSeconds(`user_lockout_config.${key}`, raw);
}

function lockoutBool(key: string, raw: unknown): boolean {
  if (raw === true || raw === 'true' || raw === '1' || raw === 1) return true;
  if (raw === false || raw === 'false' || raw === '0' || raw === 0) return false;
  throw new MountError(`invalid user_lockout_config.${key}: ${showValue(raw)} is not true or false`);
}

/**
 * The stored config as Vault shows it: the user_lockout_* fields of
 * `GET sys/auth/<path>/tune` and of `config.user_lockout_config` in
 * `sys/auth`. Empty until the mount's lockout was tuned; 0 means the default.
 */
export function userLockoutData(config: UserLockoutConfig | undefined): Record<string, number | boolean> {
  if (!config) return {};
  return {
    user_lockout_counter_reset_duration: config.lockout_counter_reset,
    user_lockout_threshold: config.lockout_threshold,
    user_lockout_duration: config.lockout_duration,
    user_lockout_disable: config.disable_lockout,
  };
}

// ---------------------------------------------------------------------------
// Failure counts

/** Failed logins per (mount accessor, alias), in memory, bounded. */
export class LoginLockout {
  private readonly clock: Clock;
  private readonly maxEntries: number;
  /** Oldest failure first (an entry moves to the end when it fails again). */
  private readonly entries = new Map<string, FailedLogins>();

  constructor(options: { clock: Clock; maxEntries?: number }) {
    this.clock = options.clock;
    this.maxEntries = options.maxEntries ?? MAX_TRACKED_ALIASES;
  }

  /** The gate a mount's login handler uses; `policy` is read at each call, so a tune applies at once. */
  gate(accessor: string, policy: () => LockoutPolicy): LockoutGate {
    return {
      enabled: () => !policy().disabled,
      locked: (alias) => {
        const p = policy();
        return !p.disabled && this.isLocked(accessor, alias, p);
      },
      failed: (alias) => {
        const p = policy();
        if (!p.disabled) this.recordFailure(accessor, alias, p);
      },
      succeeded: (alias) => this.entries.delete(entryKey(accessor, alias)),
    };
  }

  isLocked(accessor: string, alias: string, policy: LockoutPolicy): boolean {
    const entry = this.entries.get(entryKey(accessor, alias));
    return entry !== undefined && lockedNow(entry, policy, this.clock());
  }

  /** Vault's failedUserLoginProcess: the count starts again after counter_reset without failures. */
  recordFailure(accessor: string, alias: string, policy: LockoutPolicy): void {
    const now = this.clock();
    const key = entryKey(accessor, alias);
    const previous = this.entries.get(key);
    const count = previous && now <= previous.lastFailureMs + policy.counterResetMs ? previous.count + 1 : 1;
    this.entries.delete(key);
    if (!previous) this.makeRoom(now);
    this.entries.set(key, {
      shown: previous?.shown ?? shownAlias(alias),
      count,
      lastFailureMs: now,
      staleAtMs: now + Math.max(policy.durationMs, policy.counterResetMs),
    });
  }

  /** Forgets an alias's failures (sys/locked-users/<accessor>/unlock/<alias>). */
  unlock(accessor: string, alias: string): void {
    this.entries.delete(entryKey(accessor, alias));
  }

  /** Forgets everything about a mount (it was disabled). */
  dropMount(accessor: string): void {
    const prefix = `${accessor}\u0000`;
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  /** The aliases of a mount locked out now, sorted. */
  lockedAliases(accessor: string, policy: LockoutPolicy): string[] {
    const prefix = `${accessor}\u0000`;
    const now = this.clock();
    const out: string[] = [];
    for (const [key, entry] of this.entries) {
      if (key.startsWith(prefix) && lockedNow(entry, policy, now)) out.push(entry.shown);
    }
    return out.sort();
  }

  /** How many aliases have failures remembered (for tests of the bound). */
  get size(): number {
    return this.entries.size;
  }

  /** Before adding an entry at the bound: drop stale entries, then the oldest ones. */
  private makeRoom(now: number): void {
    if (this.entries.size < this.maxEntries) return;
    for (const [key, entry] of this.entries) if (entry.staleAtMs <= now) this.entries.delete(key);
    for (const key of this.entries.keys()) {
      if (this.entries.size < this.maxEntries) break;
      this.entries.delete(key);
    }
  }
}

/** Vault's isUserLocked: at or over the threshold, and the last failure within the lockout duration. */
function lockedNow(entry: FailedLogins, policy: LockoutPolicy, now: number): boolean {
  return entry.count >= policy.threshold && now - entry.lastFailureMs < policy.durationMs;
}

/** Aliases are kept by hash: a megabyte-long role ID costs 64 characters, never itself. */
function entryKey(accessor: string, alias: string): string {
  return `${accessor}\u0000${createHash('sha256').update(alias).digest('hex')}`;
}

function shownAlias(alias: string): string {
  return alias.length > SHOWN_ALIAS_LENGTH ? `${alias.slice(0, SHOWN_ALIAS_LENGTH)}...` : alias;
}

// ---------------------------------------------------------------------------
// sys/locked-users

/** What sys/locked-users reads: the auth mounts and their failure counts (the auth table). */
export interface LockoutSource {
  list(): Array<{ entry: { accessor: string; user_lockout_config?: UserLockoutConfig } }>;
  readonly lockout: LoginLockout;
}

/**
 * `GET sys/locked-users` (optionally `?mount_accessor=`): the data Vault
 * answers with, for the one (root) namespace this server has. With an
 * accessor, that mount alone (counts 0 when nothing is locked, as in Vault);
 * without, every mount with a locked alias, most locked first.
 */
export function lockedUsers(auth: LockoutSource, mountAccessor?: string): Record<string, unknown> {
  const accessor = mountAccessor?.trim() ?? '';
  const mounts = auth.list().filter((m) => (accessor === '' ? true : m.entry.accessor === accessor));
  const byMount = mounts
    .map((m) => {
      const aliases = auth.lockout.lockedAliases(m.entry.accessor, lockoutPolicy(m.entry.user_lockout_config));
      return { mount_accessor: m.entry.accessor, counts: aliases.length, alias_identifiers: aliases };
    })
    .filter((m) => m.counts > 0);
  if (accessor !== '' && byMount.length === 0) byMount.push({ mount_accessor: accessor, counts: 0, alias_identifiers: [] });
  byMount.sort((a, b) => b.counts - a.counts || (a.mount_accessor < b.mount_accessor ? -1 : 1));
  const total = byMount.reduce((n, m) => n + m.counts, 0);
  return {
    by_namespace: [{ namespace_id: 'root', namespace_path: '', counts: total, mount_accessors: byMount }],
    total,
  };
}

/**
 * `POST sys/locked-users/<mount_accessor>/unlock/<alias_identifier>`: forgets
 * the alias's failures. Idempotent, as in Vault: unlocking an alias that is
 * not locked, or of an unknown mount, succeeds. Missing parts are a 400.
 */
export function unlockUser(auth: LockoutSource, mountAccessor: string, aliasIdentifier: string): void {
  if (mountAccessor.trim() === '') throw new MountError('missing mount_accessor');
  if (aliasIdentifier.trim() === '') throw new MountError('missing alias_identifier');
  // The login handler keys on the trimmed role ID; unlock the same way.
  auth.lockout.unlock(mountAccessor.trim(), aliasIdentifier.trim());
}
