// The dev server's expiration manager (Vault's ExpirationManager in
// miniature): every lease handed out is persisted under `sys/expire/id/`,
// indexed by id, token and path, and revoked through its engine when its time
// comes. Revocation failures are retried with capped, jittered exponential
// backoff; after `maxRevokeAttempts` the lease is marked irrevocable and kept,
// listed and logged, never dropped. Work on one lease is serialised, so a lease
// is never revoked twice at once, and never revoked while a renewal is under way.

import { createHash, randomFillSync } from 'node:crypto';
import { leaseTtl } from './lease_ttl.ts';
import { KeyedMutex } from '../sdk/storage.ts';
import type { Clock, StoredSecret } from '../sdk/logical.ts';
import { KeyTree, messageOf } from './storage/view.ts';
import { Alarm, TimerIndex } from './timer-index.ts';
import type { LeaseBackendCalls, LeaseEntry, PhysicalStorage, StorageOp } from './types.ts';

/**
 * Where leases are persisted in the physical storage: `sys/expire/id/<sha-256
 * of the lease id>`. A lease id names a secret, so, like a token, it is not
 * kept in a storage key (keys are not sealed); the entry itself holds it.
 */
export const LEASE_STORAGE_PREFIX = 'sys/expire/id/';

/** The storage key of a lease. */
export function leaseStorageKey(leaseId: string): string {
  return LEASE_STORAGE_PREFIX + createHash('sha256').update(leaseId).digest('hex');
}

const LEASE_SUFFIX_LENGTH = 24;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Longest revocation error kept on a lease. */
const MAX_ERROR_LENGTH = 500;

export type LeaseErrorCode =
  | 'ERR_LEASE_NOT_FOUND' // no such lease, or it expired or is being revoked
  | 'ERR_LEASE_NOT_RENEWABLE'
  | 'ERR_LEASE_IRREVOCABLE' // its revocation failed too often; only an explicit revoke may retry it
  | 'ERR_INVALID_LEASE' // register was given a secret it cannot track
  | 'ERR_REVOKE_FAILED' // some leases of a bulk revoke failed (they are retried)
  | 'ERR_EXPIRATION_STOPPED'; // the manager was stopped (shutdown)

const STATUS: Record<LeaseErrorCode, number> = {
  ERR_LEASE_NOT_FOUND: 400,
  ERR_LEASE_NOT_RENEWABLE: 400,
  ERR_LEASE_IRREVOCABLE: 400,
  ERR_INVALID_LEASE: 500,
  // Vault answers a failed revoke with 400 (sys handlers' handleError).
  ERR_REVOKE_FAILED: 400,
  ERR_EXPIRATION_STOPPED: 503,
};

export class LeaseError extends Error {
  readonly code: LeaseErrorCode;
  /** The HTTP status Vault uses for this kind of error. */
  readonly status: number;

  constructor(code: LeaseErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LeaseError';
    this.code = code;
    this.status = STATUS[code];
  }
}

export function isLeaseError(err: unknown): err is LeaseError {
  return err instanceof LeaseError;
}

export type LeaseLogger = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface ExpirationManagerOptions {
  storage: PhysicalStorage;
  calls: LeaseBackendCalls;
  clock?: Clock;
  /** Jitter source in [0, 1). */
  random?: () => number;
  /** Failed revocations before a lease is marked irrevocable (default 6). */
  maxRevokeAttempts?: number;
  /** First retry delay (default 1 s); doubles per failure up to backoffMaxMs (default 5 min). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Revocations run at once, by expiry or bulk revoke (default 32). */
  revokeConcurrency?: number;
  logger?: LeaseLogger;
  /**
   * Called just before a lease change and its engine writes are committed
   * (fault injection for crash tests: a process that dies here has written
   * neither).
   */
  hook?: (point: LeaseHookPoint) => void;
}

/** Where `hook` is called: before the batch of an issue, a renewal or a revocation. */
export type LeaseHookPoint = 'register:before-commit' | 'renew:before-commit' | 'revoke:before-commit';

export interface RegisterInput {
  /** With trailing slash: `tvm/`. */
  mountPoint: string;
  /** Relative to the mount, no leading slash: `creds/demo`. */
  path: string;
  secret: StoredSecret;
  /** A non-secret id of the token that obtained the lease (it is persisted as is). */
  clientTokenId: string;
  /** The engine's writes for this secret: durable in one batch with the lease, or not at all. */
  writes?: StorageOp[];
}

export interface RenewResult {
  lease: LeaseEntry;
  data?: Record<string, unknown>;
  warnings?: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes warnings and errors to stderr, one line each. */
const stderrLogger: LeaseLogger = (level, msg, fields) => {
  if (level === 'info') return;
  const extra = fields === undefined ? '' : ` ${JSON.stringify(fields)}`;
  process.stderr.write(`${new Date().toISOString()} [${level.toUpperCase()}] expiration: ${msg}${extra}\n`);
};

export class ExpirationManager {
  private readonly storage: PhysicalStorage;
  private readonly calls: LeaseBackendCalls;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly maxRevokeAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly revokeConcurrency: number;
  private readonly log: LeaseLogger;
  private readonly hook: (point: LeaseHookPoint) => void;

  private readonly leases = new Map<string, LeaseEntry>();
  private readonly byToken = new Map<string, Set<string>>();
  private readonly paths = new KeyTree();
  private readonly irrevocableIds = new Set<string>();
  /** When each lease next needs attention: its expiry, or its next revocation retry. */
  private readonly timers = new TimerIndex();
  private readonly alarm = new Alarm(() => this.onAlarm());
  private readonly locks = new KeyedMutex();

  /** Leases whose time has come, waiting for a revocation slot (FIFO from `dueHead`). */
  private dueQueue: string[] = [];
  private dueHead = 0;
  private readonly queued = new Set<string>();
  private activeExpirations = 0;

  private readonly inflight = new Set<Promise<unknown>>();
  private stopped = false;
  private stopping: Promise<void> | null = null;

  constructor(options: ExpirationManagerOptions) {
    this.storage = options.storage;
    this.calls = options.calls;
    this.clock = options.clock ?? (() => Date.now());
    this.random = options.random ?? Math.random;
    this.maxRevokeAttempts = Math.max(1, options.maxRevokeAttempts ?? 6);
    this.backoffBaseMs = Math.max(0, options.backoffBaseMs ?? 1000);
    this.backoffMaxMs = Math.max(this.backoffBaseMs, options.backoffMaxMs ?? 5 * 60_000);
    this.revokeConcurrency = Math.max(1, options.revokeConcurrency ?? 32);
    this.log = options.logger ?? stderrLogger;
    this.hook = options.hook ?? (() => undefined);
  }

  /** How many leases are held (irrevocable ones included). */
  get size(): number {
    return this.leases.size;
  }

  /**
   * Loads the persisted leases and schedules them. Leases that expired while
   * the server was down are revoked before this resolves, so the server never
   * answers while they still look live (listed, their tokens active); a
   * revocation that fails is retried with backoff as usual.
   */
  async restore(): Promise<void> {
    this.assertRunning();
    return this.track(this.restoreNow());
  }

  private async restoreNow(): Promise<void> {
    const now = this.clock();
    let restored = 0;
    let skipped = 0;
    const due: string[] = [];
    for await (const key of this.walk(LEASE_STORAGE_PREFIX)) {
      const raw = await this.storage.get(key);
      if (raw === null) continue;
      const lease = parseLease(raw);
      const expected = lease === null ? null : leaseStorageKey(lease.leaseId);
      if (lease === null || (key !== expected && key !== LEASE_STORAGE_PREFIX + lease.leaseId)) {
        skipped++;
        this.log('error', 'skipping an unreadable lease entry', { key: key.slice(0, LEASE_STORAGE_PREFIX.length + 12) });
        continue;
      }
      if (this.leases.has(lease.leaseId)) continue;
      if (key !== expected) {
        // Written by an older version under the lease id itself: moved to its hashed key.
        await this.storage.batch([
          { key: expected!, value: encoder.encode(JSON.stringify(lease)) },
          { key, value: null },
        ]);
      }
      this.index(lease);
      restored++;
      if (lease.irrevocable) continue;
      const atMs = (lease.revokeAttempts ?? 0) > 0 ? now : lease.expireTimeMs;
      if (atMs <= now) due.push(lease.leaseId);
      else this.timers.schedule(lease.leaseId, atMs);
    }
    // Each failure is recorded on its lease and retried by the timer.
    const { revoked, failed } = await this.revokeAll(due);
    this.arm();
    // A store with no lease at all (every start of the in-memory dev server) has nothing to report.
    if (restored === 0 && skipped === 0 && this.irrevocableIds.size === 0) return;
    this.log(failed > 0 ? 'warn' : 'info', 'leases restored', {
      restored,
      revokedOnStart: revoked,
      revokeFailedOnStart: failed,
      irrevocable: this.irrevocableIds.size,
      skipped,
    });
  }

  /**
   * Starts tracking a secret the engine just issued: persists its lease
   * (durably) and schedules its expiry. If the lease cannot be persisted, the
   * secret is revoked at once (a secret nobody tracks must not outlive the
   * request) and the error is thrown.
   */
  async register(input: RegisterInput): Promise<LeaseEntry> {
    this.assertRunning();
    return this.track(this.registerNow(input));
  }

  private async registerNow(input: RegisterInput): Promise<LeaseEntry> {
    const { mountPoint, path, secret, clientTokenId, writes = [] } = input;
    if (!mountPoint.endsWith('/') || path === '' || path.startsWith('/')) {
      throw new LeaseError('ERR_INVALID_LEASE', `cannot register a lease for mount ${mountPoint} path ${path}`);
    }
    if (!Number.isFinite(secret.ttlMs) || !Number.isFinite(secret.maxTtlMs)) {
      throw new LeaseError('ERR_INVALID_LEASE', `the secret of ${mountPoint}${path} has no valid ttl`);
    }
    const leaseId = `${mountPoint}${path}/${randomLeaseSuffix()}`;
    const issueTimeMs = this.clock();
    const lease: LeaseEntry = {
      leaseId,
      mountPoint,
      path,
      secret: { ...secret, leaseId },
      clientTokenId,
      issueTimeMs,
      expireTimeMs: issueTimeMs + Math.max(0, secret.ttlMs),
    };
    try {
      this.hook('register:before-commit');
      await this.persist(lease, writes);
    } catch (err) {
      this.log('error', 'persisting a new lease failed; revoking its secret', { error: messageOf(err) });
      this.calls.discard(lease, writes);
      try {
        await this.storage.batch(await this.calls.revoke(lease));
      } catch (revokeErr) {
        this.log('error', 'revoking an untracked secret failed', { error: messageOf(revokeErr) });
      }
      throw err;
    }
    this.index(lease);
    this.timers.schedule(leaseId, lease.expireTimeMs);
    this.arm();
    return { ...lease };
  }

  /**
   * The lease, or null if there is none (revoked, never issued, or expired and
   * waiting for its revocation: it is treated as revoked already). Irrevocable
   * leases stay visible.
   */
  lookup(leaseId: string): LeaseEntry | null {
    const lease = this.leases.get(leaseId);
    if (lease === undefined) return null;
    if (!lease.irrevocable && lease.expireTimeMs <= this.clock()) return null;
    return { ...lease };
  }

  /**
   * Renews a lease through its engine. The engine's new ttl, counted from now,
   * sets the new expiry, capped at issue time + max ttl. Errors of the engine
   * are thrown unchanged.
   */
  async renew(leaseId: string, incrementMs: number): Promise<RenewResult> {
    this.assertRunning();
    return this.track(
      this.locks.run(leaseId, async () => {
        const lease = this.leases.get(leaseId);
        if (lease === undefined) throw new LeaseError('ERR_LEASE_NOT_FOUND', 'lease not found');
        if (lease.irrevocable) {
          throw new LeaseError('ERR_LEASE_IRREVOCABLE', 'lease is expired and its revocation failed');
        }
        if ((lease.revokeAttempts ?? 0) > 0) throw new LeaseError('ERR_LEASE_NOT_FOUND', 'lease is being revoked');
        if (lease.expireTimeMs <= this.clock()) throw new LeaseError('ERR_LEASE_NOT_FOUND', 'lease expired');
        if (!lease.secret.renewable) throw new LeaseError('ERR_LEASE_NOT_RENEWABLE', 'lease is not renewable');

        const out = await this.calls.renew(lease, incrementMs);
        const now = this.clock();
        const secret: StoredSecret = { ...out.secret, leaseId };
        // Vault's expiration manager (CalculateTTL): the ttl asked for (the increment, else the
        // engine's) within what is left of the smaller of the engine's and the mount's max ttl.
        const capped = leaseTtl({
          incrementMs,
          ttlMs: secret.ttlMs,
          maxTtlMs: secret.maxTtlMs,
          startMs: lease.issueTimeMs,
          nowMs: now,
          ...(out.mount ? { mount: out.mount } : {}),
        });
        const warnings = [...(out.warnings ?? []), ...capped.warnings];
        secret.ttlMs = capped.ttlMs;
        const expireTimeMs = now + capped.ttlMs;
        const next: LeaseEntry = { ...lease, secret, expireTimeMs, lastRenewalMs: now };
        const writes = out.writes ?? [];
        try {
          this.hook('renew:before-commit');
          await this.persist(next, writes);
        } catch (err) {
          this.calls.discard(lease, writes);
          throw err;
        }
        this.leases.set(leaseId, next);
        this.timers.schedule(leaseId, expireTimeMs);
        this.arm();
        const result: RenewResult = { lease: { ...next } };
        if (out.data !== undefined) result.data = out.data;
        if (warnings.length > 0) result.warnings = warnings;
        return result;
      }),
    );
  }

  /**
   * Revokes a lease now. Resolves if there is no such lease (idempotent). If
   * the engine fails, the error is thrown and the lease is kept, with a retry
   * scheduled (or marked irrevocable once it has failed too often).
   */
  async revoke(leaseId: string): Promise<void> {
    this.assertRunning();
    await this.revokeOne(leaseId);
  }

  /**
   * Revokes every lease under `prefix`; returns how many this call revoked.
   * As in Vault, a prefix without a trailing slash is a lease id if one has
   * that id, and is otherwise taken as a folder: `tvm/creds/demo` revokes
   * `tvm/creds/demo/...`, never `tvm/creds/demo2/...`.
   */
  async revokePrefix(prefix: string): Promise<number> {
    this.assertRunning();
    if (!prefix.endsWith('/')) {
      if (this.leases.has(prefix)) return this.track(this.revokeMany([prefix], 'under the prefix'));
      prefix += '/';
    }
    const ids: string[] = [];
    for (const id of this.leases.keys()) if (id.startsWith(prefix)) ids.push(id);
    return this.track(this.revokeMany(ids, 'under the prefix'));
  }

  /** Revokes every lease the token obtained; returns how many this call revoked. */
  async revokeByToken(tokenId: string): Promise<number> {
    this.assertRunning();
    return this.track(this.revokeMany([...(this.byToken.get(tokenId) ?? [])], 'of the token'));
  }

  /** Revokes every lease of a mount (`tvm/`); returns how many this call revoked. */
  async revokeByMount(mountPoint: string): Promise<number> {
    this.assertRunning();
    const ids: string[] = [];
    for (const lease of this.leases.values()) if (lease.mountPoint === mountPoint) ids.push(lease.leaseId);
    return this.track(this.revokeMany(ids, 'of the mount'));
  }

  /**
   * LIST `sys/leases/lookup/<prefix>`: the direct children of the prefix,
   * sorted: `tvm/creds/` gives `['demo/']`, `tvm/creds/demo/` the lease ids' last parts.
   */
  list(prefix: string): string[] {
    return this.paths.list(prefix);
  }

  /** The leases whose revocation was given up (kept until an explicit revoke succeeds). */
  irrevocable(): LeaseEntry[] {
    const out: LeaseEntry[] = [];
    for (const id of this.irrevocableIds) {
      const lease = this.leases.get(id);
      if (lease !== undefined) out.push({ ...lease });
    }
    return out.sort((a, b) => (a.leaseId < b.leaseId ? -1 : a.leaseId > b.leaseId ? 1 : 0));
  }

  /** Resolves once no revocation or renewal is under way (tests and shutdown use it). */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /**
   * Stops the timer and waits for revocations and renewals under way. Leases
   * still due stay persisted and are revoked by the next restore. Safe to call
   * twice; calls other than lookup and list fail afterwards.
   */
  stop(): Promise<void> {
    if (this.stopping === null) {
      this.stopped = true;
      this.alarm.clear();
      this.stopping = this.settled();
    }
    return this.stopping;
  }

  // --- revocation ---------------------------------------------------------

  /** Revokes one lease under its lock; true if this call revoked it, false if it was gone. */
  private revokeOne(leaseId: string): Promise<boolean> {
    return this.track(
      this.locks.run(leaseId, async () => {
        const lease = this.leases.get(leaseId);
        if (lease === undefined) return false;
        await this.revokeLocked(lease);
        return true;
      }),
    );
  }

  private async revokeMany(ids: string[], what: string): Promise<number> {
    const { revoked, failed, firstError } = await this.revokeAll(ids);
    if (failed > 0) {
      throw new LeaseError(
        'ERR_REVOKE_FAILED',
        `${failed} of ${ids.length} leases ${what} could not be revoked (${messageOf(firstError)}); ` +
          'they are kept and retried',
        { cause: firstError },
      );
    }
    return revoked;
  }

  /** Revokes each lease (bounded concurrency); failures are recorded on their leases and counted. */
  private async revokeAll(ids: string[]): Promise<{ revoked: number; failed: number; firstError: unknown }> {
    let revoked = 0;
    let failed = 0;
    let firstError: unknown;
    await forEachLimit(ids, this.revokeConcurrency, async (id) => {
      try {
        if (await this.revokeOne(id)) revoked++;
      } catch (err) {
        if (failed++ === 0) firstError = err;
      }
    });
    return { revoked, failed, firstError };
  }

  /** Calls the engine, then forgets the lease; on failure records it, schedules a retry and throws. Lock held. */
  private async revokeLocked(lease: LeaseEntry): Promise<void> {
    try {
      const writes = await this.calls.revoke(lease);
      // The engine's records (the jti listed, the quota freed) and the lease's removal: one batch.
      try {
        this.hook('revoke:before-commit');
        await this.storage.batch([...writes, { key: leaseStorageKey(lease.leaseId), value: null }]);
      } catch (err) {
        this.calls.discard(lease, writes);
        throw err;
      }
    } catch (err) {
      await this.recordFailure(lease, err);
      throw err;
    }
    this.unindex(lease);
  }

  private async recordFailure(lease: LeaseEntry, err: unknown): Promise<void> {
    const attempts = (lease.revokeAttempts ?? 0) + 1;
    const next: LeaseEntry = {
      ...lease,
      revokeAttempts: attempts,
      revokeError: messageOf(err).slice(0, MAX_ERROR_LENGTH),
    };
    const fields = { leaseId: lease.leaseId, attempts, error: next.revokeError };
    if (lease.irrevocable || attempts >= this.maxRevokeAttempts) {
      next.irrevocable = true;
      this.irrevocableIds.add(lease.leaseId);
      this.timers.cancel(lease.leaseId);
      if (lease.irrevocable) this.log('warn', 'revoking an irrevocable lease failed again', fields);
      else this.log('error', 'lease revocation failed too often; the lease is irrevocable and kept', fields);
    } else {
      const delayMs = this.backoffMs(attempts);
      this.timers.schedule(lease.leaseId, this.clock() + delayMs);
      this.log('warn', 'lease revocation failed; retrying', { ...fields, retryInMs: delayMs });
    }
    this.leases.set(lease.leaseId, next);
    this.arm();
    try {
      await this.persist(next);
    } catch (persistErr) {
      // The retry state is still held in memory; a restart retries from the last persisted state.
      this.log('error', 'persisting a lease revocation failure failed', {
        leaseId: lease.leaseId,
        error: messageOf(persistErr),
      });
    }
  }

  /** Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped, with equal jitter. */
  private backoffMs(attempt: number): number {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (attempt - 1));
    return Math.floor(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  // --- the timer path -----------------------------------------------------

  private arm(): void {
    if (this.stopped) return;
    const next = this.timers.peek();
    if (next === undefined) this.alarm.clear();
    else this.alarm.set(next.atMs, this.clock());
  }

  private onAlarm(): void {
    if (this.stopped) return;
    for (const id of this.timers.popDue(this.clock())) {
      if (this.queued.has(id)) continue;
      this.queued.add(id);
      this.dueQueue.push(id);
    }
    this.pump();
    this.arm();
  }

  /** Starts due revocations while slots are free. */
  private pump(): void {
    while (!this.stopped && this.activeExpirations < this.revokeConcurrency && this.dueHead < this.dueQueue.length) {
      const id = this.dueQueue[this.dueHead++];
      this.queued.delete(id);
      this.activeExpirations++;
      void this.track(this.expire(id)).then(() => {
        this.activeExpirations--;
        this.pump();
      });
    }
    if (this.dueHead === this.dueQueue.length) {
      this.dueQueue = [];
      this.dueHead = 0;
    } else if (this.dueHead > 1024 && this.dueHead * 2 > this.dueQueue.length) {
      this.dueQueue = this.dueQueue.slice(this.dueHead);
      this.dueHead = 0;
    }
  }

  /** A lease's time came: revoke it unless it was renewed, revoked or rescheduled meanwhile. Never throws. */
  private async expire(leaseId: string): Promise<void> {
    try {
      await this.locks.run(leaseId, async () => {
        const lease = this.leases.get(leaseId);
        if (lease === undefined || lease.irrevocable) return;
        const now = this.clock();
        const scheduledAt = this.timers.timeOf(leaseId);
        // A renewal or a failed explicit revoke set a later time meanwhile.
        if (scheduledAt !== undefined && scheduledAt > now) return;
        if ((lease.revokeAttempts ?? 0) === 0 && lease.expireTimeMs > now) {
          this.timers.schedule(leaseId, lease.expireTimeMs);
          this.arm();
          return;
        }
        this.timers.cancel(leaseId);
        await this.revokeLocked(lease);
      });
    } catch {
      // recordFailure logged it and scheduled the retry.
    }
  }

  // --- indexes and storage ------------------------------------------------

  private index(lease: LeaseEntry): void {
    this.leases.set(lease.leaseId, lease);
    this.paths.add(lease.leaseId);
    let ids = this.byToken.get(lease.clientTokenId);
    if (ids === undefined) {
      ids = new Set();
      this.byToken.set(lease.clientTokenId, ids);
    }
    ids.add(lease.leaseId);
    if (lease.irrevocable) this.irrevocableIds.add(lease.leaseId);
  }

  private unindex(lease: LeaseEntry): void {
    this.leases.delete(lease.leaseId);
    this.paths.remove(lease.leaseId);
    const ids = this.byToken.get(lease.clientTokenId);
    if (ids !== undefined) {
      ids.delete(lease.leaseId);
      if (ids.size === 0) this.byToken.delete(lease.clientTokenId);
    }
    this.irrevocableIds.delete(lease.leaseId);
    this.timers.cancel(lease.leaseId);
    this.arm();
  }

  private persist(lease: LeaseEntry, writes: StorageOp[] = []): Promise<void> {
    return this.storage.batch([...writes, { key: leaseStorageKey(lease.leaseId), value: encoder.encode(JSON.stringify(lease)), owned: true }]);
  }

  private async *walk(prefix: string): AsyncGenerator<string> {
    for (const child of await this.storage.list(prefix)) {
      if (child === '') continue;
      if (child.endsWith('/')) yield* this.walk(prefix + child);
      else yield prefix + child;
    }
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    const done = (): void => {
      this.inflight.delete(work);
    };
    work.then(done, done);
    return work;
  }

  private assertRunning(): void {
    if (this.stopped) throw new LeaseError('ERR_EXPIRATION_STOPPED', 'the expiration manager is stopped');
  }
}

/**
 * CSPRNG bytes drawn 4 KiB at a time (as node's randomUUID batches its
 * entropy): one call into OpenSSL per ~150 lease ids instead of one each.
 * Every byte is used once.
 */
const randomPool = Buffer.alloc(4096);
let randomPoolAt = randomPool.length;

function randomByte(): number {
  if (randomPoolAt === randomPool.length) {
    randomFillSync(randomPool);
    randomPoolAt = 0;
  }
  return randomPool[randomPoolAt++];
}

/** 24 base62 characters from the CSPRNG (rejection sampling keeps them uniform). */
export function randomLeaseSuffix(length = LEASE_SUFFIX_LENGTH): string {
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    if (byte >= 248) continue; // 248 = 4 * 62
    out += BASE62[byte % 62];
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseLease(raw: Uint8Array): LeaseEntry | null {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(raw));
  } catch {
    return null;
  }
  if (!isRecord(value)) return null;
  const ok =
    typeof value.leaseId === 'string' &&
    typeof value.mountPoint === 'string' &&
    typeof value.path === 'string' &&
    typeof value.clientTokenId === 'string' &&
    typeof value.issueTimeMs === 'number' &&
    typeof value.expireTimeMs === 'number' &&
    isRecord(value.secret);
  return ok ? (value as unknown as LeaseEntry) : null;
}

/** Runs `fn` over the items with at most `limit` at once. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
