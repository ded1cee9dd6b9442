// The token store (Vault's auth/token backend, service tokens only). Tokens are
// kept by the SHA-256 of their id: neither storage keys nor values hold a raw
// token id. Every token is held in memory (a map by hash) with write-through to
// physical storage, so the per-request lookup is one hash and one map read.
// Revoking a token revokes its child tokens (recursively) and the leases each
// one obtained; expired tokens are swept and revoked the same way.

import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../sdk/logical.ts';
import type { KeyValueStorage } from '../types.ts';
import { loadRecords } from '../storage/records.ts';
import { StatusError } from '../status_error.ts';
import { SYSTEM_MAX_TTL_MS, humanDuration } from '../lease_ttl.ts';
import type { Logger } from '../logger.ts';

export const TOKEN_PREFIX = 'hvs.';
const ENTRY_PREFIX = 'sys/token/id/';
const SWEEP_INTERVAL_MS = 500;

export interface WrappingInfo {
  creationPath: string;
  /** The accessor of a token inside the wrapped response, when there is one. */
  wrappedAccessor?: string;
}

/** One token as stored. The raw id is never part of it. */
export interface TokenEntry {
  /** SHA-256 (hex) of the token id; the storage key and the lease owner id. */
  hash: string;
  accessor: string;
  /** The parent's hash; '' for orphans. */
  parent: string;
  /** Sorted, normalised policy names. */
  policies: string[];
  path: string;
  meta: Record<string, string> | null;
  displayName: string;
  /** Remaining uses; 0 = unlimited. */
  numUses: number;
  creationTimeMs: number;
  /** The ttl granted at creation (ms); 0 = never expires. */
  creationTtlMs: number;
  explicitMaxTtlMs: number;
  /** When the token expires (ms since the epoch); 0 = never. */
  expireTimeMs: number;
  lastRenewalMs?: number;
  renewable: boolean;
  /** Vault's identity entity id ('' for tokens without one). */
  entityId: string;
  /**
   * The workload identity the token acts for, qualified by auth mount
   * (`approle:orders-service`, `jwt:system:serviceaccount:ns:sa`): set by
   * logins, inherited by child tokens. Engines see it as the caller.
   */
  subject?: string;
  /** The token may be used only from these CIDR blocks (token_bound_cidrs of the login role). */
  boundCidrs?: string[];
  /** The auth role's max ttl (ms): caps renewals like explicitMaxTtlMs, without being shown as it. */
  maxTtlMs?: number;
  orphan: boolean;
  type: 'service';
  /** Set on response-wrapping tokens. */
  wrapping?: WrappingInfo;
}

export interface CreateTokenInput {
  /** A caller-chosen id (root only); random `hvs.` id otherwise. */
  id?: string;
  policies: string[];
  /** The parent's hash, or '' for an orphan. */
  parent: string;
  ttlMs: number;
  explicitMaxTtlMs: number;
  displayName: string;
  meta: Record<string, string> | null;
  renewable: boolean;
  numUses: number;
  path: string;
  wrapping?: WrappingInfo;
  entityId?: string;
  subject?: string;
  boundCidrs?: string[];
  maxTtlMs?: number;
}

/** A token store error, with the status Vault answers it with. */
export class TokenError extends StatusError {}

export interface TokenStoreOptions {
  storage: KeyValueStorage;
  clock: Clock;
  /** Revokes the leases a token obtained (the expiration manager's revokeByToken). */
  revokeLeases: (tokenHash: string) => Promise<void>;
  /** Called for each revoked token after its leases (drops wrapped responses). */
  onRevoke?: (entry: TokenEntry) => Promise<void>;
  logger?: Logger;
}

const encoder = new TextEncoder();

export function hashToken(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `length` characters of base62, unbiased (rejection sampling). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function newTokenId(): string {
  return TOKEN_PREFIX + randomBase62(24);
}

export class TokenStore {
  private readonly storage: KeyValueStorage;
  private readonly clock: Clock;
  private readonly revokeLeases: (tokenHash: string) => Promise<void>;
  private readonly onRevoke?: (entry: TokenEntry) => Promise<void>;
  private readonly logger?: Logger;
  private readonly byHash = new Map<string, TokenEntry>();
  private readonly byAccessor = new Map<string, string>();
  private readonly children = new Map<string, Set<string>>();
  /** Tokens being revoked (or out of uses): no longer valid, not yet gone. */
  private readonly dying = new Set<string>();
  private readonly revoking = new Map<string, Promise<void>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(options: TokenStoreOptions) {
    this.storage = options.storage;
    this.clock = options.clock;
    this.revokeLeases = options.revokeLeases;
    if (options.onRevoke) this.onRevoke = options.onRevoke;
    if (options.logger) this.logger = options.logger;
  }

  async load(): Promise<void> {
    this.byHash.clear();
    this.byAccessor.clear();
    this.children.clear();
    for (const entry of await loadRecords<TokenEntry>(this.storage, ENTRY_PREFIX)) this.index(entry);
  }

  /** Starts the periodic sweep of expired tokens. */
  start(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await this.sweeping;
  }

  /** Accessors of every live token (auth/token/accessors). */
  accessors(): string[] {
    const out: string[] = [];
    for (const [accessor, hash] of this.byAccessor) if (this.lookupHash(hash)) out.push(accessor);
    return out.sort();
  }

  get size(): number {
    return this.byHash.size;
  }

  /** The live token for an id, or null (unknown, expired, revoked or used up). */
  lookup(id: string): TokenEntry | null {
    if (id.length === 0 || id.length > 1024) return null;
    return this.lookupHash(hashToken(id));
  }

  lookupHash(hash: string): TokenEntry | null {
    const entry = this.byHash.get(hash);
    if (!entry || this.dying.has(hash)) return null;
    if (entry.expireTimeMs !== 0 && entry.expireTimeMs <= this.clock()) {
      void this.revoke(hash).catch(() => undefined);
      return null;
    }
    return entry;
  }

  lookupAccessor(accessor: string): TokenEntry | null {
    const hash = this.byAccessor.get(accessor);
    return hash === undefined ? null : this.lookupHash(hash);
  }

  /**
   * Counts one use of a token with limited uses. Returns true when this was the
   * last use: the caller revokes the token once the request is answered.
   */
  async use(entry: TokenEntry): Promise<boolean> {
    if (entry.numUses === 0) return false;
    entry.numUses -= 1;
    const last = entry.numUses === 0;
    if (last) this.dying.add(entry.hash);
    await this.persist(entry);
    return last;
  }

  /** Creates and stores a token; resolves once it is durable. */
  async create(input: CreateTokenInput): Promise<{ id: string; entry: TokenEntry }> {
    const id = input.id ?? newTokenId();
    const hash = hashToken(id);
    if (this.byHash.has(hash)) throw new TokenError('cannot create a token with a duplicate ID');
    const now = this.clock();
    const entry: TokenEntry = {
      hash,
      accessor: randomBase62(24),
      parent: input.parent,
      policies: input.policies,
      path: input.path,
      meta: input.meta,
      displayName: input.displayName,
      numUses: input.numUses,
      creationTimeMs: now,
      creationTtlMs: input.ttlMs,
      explicitMaxTtlMs: input.explicitMaxTtlMs,
      expireTimeMs: input.ttlMs > 0 ? now + input.ttlMs : 0,
      renewable: input.renewable,
      entityId: input.entityId ?? '',
      orphan: input.parent === '',
      type: 'service',
    };
    if (input.wrapping) entry.wrapping = input.wrapping;
    if (input.subject) entry.subject = input.subject;
    if (input.boundCidrs && input.boundCidrs.length > 0) entry.boundCidrs = [...input.boundCidrs];
    if (input.maxTtlMs && input.maxTtlMs > 0) entry.maxTtlMs = input.maxTtlMs;
    if (input.parent !== '' && !this.byHash.has(input.parent)) throw new TokenError('parent token is not valid');
    await this.persist(entry);
    this.index(entry);
    return { id, entry };
  }

  /**
   * Renews a token: its ttl becomes the increment (or its original ttl) from
   * now, never past its explicit max ttl or the system max ttl from creation.
   */
  async renew(entry: TokenEntry, incrementMs: number): Promise<{ entry: TokenEntry; warnings: string[] }> {
    const warnings: string[] = [];
    if (entry.expireTimeMs === 0) return { entry, warnings };
    if (!entry.renewable) throw new TokenError('lease is not renewable');
    const now = this.clock();
    let maxTtlMs = entry.explicitMaxTtlMs > 0 ? Math.min(entry.explicitMaxTtlMs, SYSTEM_MAX_TTL_MS) : SYSTEM_MAX_TTL_MS;
    if (entry.maxTtlMs !== undefined && entry.maxTtlMs > 0) maxTtlMs = Math.min(maxTtlMs, entry.maxTtlMs);
    // Vault's CalculateTTL: whole seconds, the cap counted from the creation's second.
    const second = (ms: number): number => Math.floor(ms / 1000) * 1000;
    const maxValidMs = second(entry.creationTimeMs) + maxTtlMs - second(now);
    let wanted = incrementMs > 0 ? incrementMs : entry.creationTtlMs;
    if (wanted > maxValidMs) {
      warnings.push(`TTL of "${humanDuration(wanted)}" exceeded the effective max_ttl of "${humanDuration(maxValidMs)}"; TTL value is capped accordingly`);
      wanted = maxValidMs;
    }
    const expire = now + wanted;
    if (wanted <= 0) throw new TokenError('past the max TTL, cannot renew');
    entry.expireTimeMs = expire;
    entry.lastRenewalMs = now;
    await this.persist(entry);
    return { entry, warnings };
  }

  /** Revokes a token, its descendants and all their leases. Idempotent. */
  async revoke(hash: string): Promise<void> {
    const root = this.byHash.get(hash);
    if (!root) return;
    // Children first (depth-first, post-order), as Vault's revokeTree does.
    const order: TokenEntry[] = [];
    const visit = (h: string): void => {
      const e = this.byHash.get(h);
      if (!e) return;
      for (const child of this.children.get(h) ?? []) visit(child);
      order.push(e);
    };
    visit(hash);
    for (const e of order) this.dying.add(e.hash);
    for (const e of order) await this.revokeOne(e);
  }

  /** Revokes one token (not its children); concurrent calls for the same token share one revocation. */
  private revokeOne(entry: TokenEntry): Promise<void> {
    let running = this.revoking.get(entry.hash);
    if (!running) {
      running = this.revokeOneNow(entry).finally(() => this.revoking.delete(entry.hash));
      this.revoking.set(entry.hash, running);
    }
    return running;
  }

  private async revokeOneNow(entry: TokenEntry): Promise<void> {
    if (!this.byHash.has(entry.hash)) return;
    try {
      await this.revokeLeases(entry.hash);
    } catch (err) {
      // The expiration manager keeps retrying leases it could not revoke.
      this.logger?.warn('revoking the leases of a token failed', { accessor: entry.accessor, error: errorMessage(err) });
    }
    try {
      await this.onRevoke?.(entry);
    } catch (err) {
      this.logger?.warn('cleanup after token revocation failed', { accessor: entry.accessor, error: errorMessage(err) });
    }
    await this.storage.delete(ENTRY_PREFIX + entry.hash);
    this.unindex(entry);
  }

  /**
   * Revokes every token created through a path under the prefix (and so its
   * children and leases): Vault's revoke-prefix on `auth/<mount>/` when an
   * auth method is disabled. Returns how many tokens were revoked directly.
   */
  async revokeByPathPrefix(prefix: string): Promise<number> {
    const hashes: string[] = [];
    for (const e of this.byHash.values()) if (e.path.startsWith(prefix)) hashes.push(e.hash);
    for (const h of hashes) await this.revoke(h);
    return hashes.length;
  }

  /** Revokes every expired token (and so its children and leases). */
  sweep(): Promise<void> {
    if (this.sweeping) return this.sweeping;
    this.sweeping = (async () => {
      const now = this.clock();
      const expired: string[] = [];
      for (const e of this.byHash.values()) if (e.expireTimeMs !== 0 && e.expireTimeMs <= now) expired.push(e.hash);
      for (const h of expired) {
        try {
          await this.revoke(h);
        } catch (err) {
          this.logger?.error('revoking an expired token failed', { error: errorMessage(err) });
        }
      }
    })().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async persist(entry: TokenEntry): Promise<void> {
    await this.storage.put(ENTRY_PREFIX + entry.hash, encoder.encode(JSON.stringify(entry)));
  }

  private index(entry: TokenEntry): void {
    this.byHash.set(entry.hash, entry);
    this.byAccessor.set(entry.accessor, entry.hash);
    if (entry.parent !== '') {
      let set = this.children.get(entry.parent);
      if (!set) this.children.set(entry.parent, (set = new Set()));
      set.add(entry.hash);
    }
  }

  private unindex(entry: TokenEntry): void {
    this.byHash.delete(entry.hash);
    this.byAccessor.delete(entry.accessor);
    this.children.delete(entry.hash);
    this.dying.delete(entry.hash);
    if (entry.parent !== '') {
      const set = this.children.get(entry.parent);
      set?.delete(entry.hash);
      if (set && set.size === 0) this.children.delete(entry.parent);
    }
  }
}

// ---------------------------------------------------------------------------
// Response shapes (Vault's token lookup data and auth block)

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

/** Remaining ttl in whole seconds; 0 for tokens that never expire. */
export function remainingTtlSeconds(entry: TokenEntry, nowMs: number): number {
  return entry.expireTimeMs === 0 ? 0 : Math.max(0, Math.floor((entry.expireTimeMs - nowMs) / 1000));
}

/** The data of `auth/token/lookup*` (id is '' when looked up by accessor). */
export function tokenLookupData(entry: TokenEntry, id: string, nowMs: number): Record<string, unknown> {
  return {
    accessor: entry.accessor,
    ...(entry.boundCidrs ? { bound_cidrs: [...entry.boundCidrs] } : {}),
    creation_time: Math.floor(entry.creationTimeMs / 1000),
    creation_ttl: seconds(entry.creationTtlMs),
    display_name: entry.displayName,
    entity_id: entry.entityId,
    expire_time: entry.expireTimeMs === 0 ? null : rfc3339(entry.expireTimeMs),
    explicit_max_ttl: seconds(entry.explicitMaxTtlMs),
    id,
    issue_time: rfc3339(entry.creationTimeMs),
    ...(entry.lastRenewalMs !== undefined
      ? { last_renewal: rfc3339(entry.lastRenewalMs), last_renewal_time: Math.floor(entry.lastRenewalMs / 1000) }
      : {}),
    meta: entry.meta,
    num_uses: entry.numUses,
    orphan: entry.orphan,
    path: entry.path,
    policies: entry.policies,
    renewable: entry.renewable && entry.expireTimeMs !== 0,
    ttl: remainingTtlSeconds(entry, nowMs),
    type: entry.type,
  };
}

/** Vault's `auth` block for a token create or renew. */
export function authBlock(entry: TokenEntry, id: string, nowMs: number): Record<string, unknown> {
  return {
    client_token: id,
    accessor: entry.accessor,
    policies: entry.policies,
    token_policies: entry.policies,
    // identity_policies is omitted when empty (Vault's HTTPAuth: omitempty); this server has no identity policies.
    metadata: entry.meta,
    lease_duration: remainingTtlSeconds(entry, nowMs),
    renewable: entry.renewable && entry.expireTimeMs !== 0,
    entity_id: entry.entityId,
    token_type: entry.type,
    orphan: entry.orphan,
    mfa_requirement: null,
    num_uses: entry.numUses,
  };
}

/**
 * Vault's policy sanitising: trim, lower-case, drop empties, `root` alone
 * absorbs all others, `default` added unless asked not to; sorted and unique.
 */
export function sanitizePolicies(policies: readonly string[], addDefault: boolean): string[] {
  const out = new Set<string>();
  for (const p of policies) {
    const name = p.trim().toLowerCase();
    if (name === '') continue;
    if (name === 'root') return ['root'];
    out.add(name);
  }
  if (addDefault) out.add('default');
  return [...out].sort();
}

/** Vault's display name rule for created tokens: `token-<name>`, non-alphanumerics as `-`. */
export function tokenDisplayName(name: string): string {
  if (name === '') return 'token';
  return `token-${name}`.replace(/[^a-zA-Z0-9-]/g, '-').replace(/-+$/, '');
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
