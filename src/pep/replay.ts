// A bounded memory of the DPoP proofs a resource server has accepted, so the
// same proof (same jti) is refused when it comes again (RFC 9449 §11.1).
//
// An entry lives until max(iat, now) + windowMs: a proof whose iat is inside
// the verifier's acceptance window [now - windowMs, now + skew] is remembered
// at least until that window has moved past its iat, so it cannot come back.
// The verifier must therefore use an iat window no longer than windowMs
// (verifyDpopProof refuses every proof otherwise). Expiries are kept in
// insertion order by never letting one be earlier than the one before (an
// entry may live a little longer, never shorter), so dropping the expired
// entries is a walk from the front of a queue: amortised O(1) per check.
// (A Map walked from the front is not: V8 leaves deleted slots in place and
// every walk would step over them again.)
//
// Memory is bounded: keys are hashed to 16 bytes (a 4 KB jti costs what a
// 16-byte one does) and at most maxEntries are held (about 100 bytes each).
//
// When the cache holds maxEntries unexpired entries, a new key is REFUSED
// ('full') rather than evicting the oldest: evicting an entry still inside
// the window would let that proof be replayed, and failing closed is the
// safe side. Size maxEntries above the peak proof rate times the window
// (e.g. 1,000 proofs/s over 60 s = 60,000); a full cache shows up as
// refusals whose reason says so, and clears itself as entries expire.

import { createHash } from 'node:crypto';

/** What check found: a new key (now recorded), a replay, or no room. */
export type ReplayResult = 'new' | 'replay' | 'full';

export interface ReplayCacheOptions {
  /** How long a proof stays acceptable after its iat, in ms (the verifier's iat window). */
  windowMs: number;
  /** The most entries held; past this, new keys are refused until some expire. */
  maxEntries: number;
  /** Epoch ms; Date.now by default. */
  clock?: () => number;
  /**
   * The most live entries one group (a client's key) may hold: past it, that
   * group's new keys are refused ('full') and every other group's still fit,
   * so one client flooding proofs cannot lock the others out. Default: no limit.
   */
  perGroupMax?: number;
}

/** 16 bytes of SHA-256 as a 16-character latin1 string: a compact, fixed-size key. */
function compactKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest().toString('latin1', 0, 16);
}

export class ReplayCache {
  readonly windowMs: number;
  readonly maxEntries: number;
  private readonly clock: () => number;
  /** The hashed keys held: every one unexpired once prune has run. */
  private readonly live = new Set<string>();
  /** The same keys in insertion order, with their expiries (epoch ms, never decreasing), from index head. */
  private queueKeys: string[] = [];
  private queueExpiries: number[] = [];
  private head = 0;
  private lastExpiry = -Infinity;
  private readonly perGroupMax: number;
  /** Each entry's group ('' for none), parallel to queueKeys. */
  private queueGroups: string[] = [];
  private readonly groupCounts = new Map<string, number>();

  constructor(options: ReplayCacheOptions) {
    const { windowMs, maxEntries } = options;
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError('ReplayCache: windowMs must be a positive number');
    if (!Number.isInteger(maxEntries) || maxEntries <= 0) throw new RangeError('ReplayCache: maxEntries must be a positive integer');
    this.windowMs = windowMs;
    this.maxEntries = maxEntries;
    this.clock = options.clock ?? Date.now;
    this.perGroupMax = options.perGroupMax ?? Number.POSITIVE_INFINITY;
  }

  /** True when the key is new (and now recorded); false for a replay or a full cache. */
  check(key: string, iatMs: number): boolean {
    return this.checkResult(key, iatMs) === 'new';
  }

  /** Like check, but says why a key was refused; `group` (a client's key) counts against perGroupMax. */
  checkResult(key: string, iatMs: number, group = ''): ReplayResult {
    const now = this.clock();
    this.prune(now);
    const k = compactKey(key);
    if (this.live.has(k)) return 'replay';
    if (this.live.size >= this.maxEntries) return 'full';
    const inGroup = this.groupCounts.get(group) ?? 0;
    if (group !== '' && inGroup >= this.perGroupMax) return 'full';
    // A future iat (the verifier allows a little skew) is remembered from the
    // iat; clamp it to one window ahead so a wild value cannot pin the queue.
    const from = Number.isFinite(iatMs) ? Math.min(Math.max(iatMs, now), now + this.windowMs) : now;
    const expiry = Math.max(from + this.windowMs, this.lastExpiry);
    this.lastExpiry = expiry;
    this.live.add(k);
    this.queueKeys.push(k);
    this.queueExpiries.push(expiry);
    this.queueGroups.push(group);
    if (group !== '') this.groupCounts.set(group, inGroup + 1);
    return 'new';
  }

  /** Entries held (after dropping the expired ones). */
  get size(): number {
    this.prune(this.clock());
    return this.live.size;
  }

  /** True when a new key would be refused for lack of room. */
  get full(): boolean {
    return this.size >= this.maxEntries;
  }

  /** Drops expired entries from the front of the queue; compacts it once half is consumed. */
  private prune(now: number): void {
    const keys = this.queueKeys;
    const expiries = this.queueExpiries;
    const groups = this.queueGroups;
    let head = this.head;
    while (head < keys.length && expiries[head] <= now) {
      this.live.delete(keys[head]);
      const g = groups[head];
      if (g !== '') {
        const n = (this.groupCounts.get(g) ?? 1) - 1;
        if (n <= 0) this.groupCounts.delete(g);
        else this.groupCounts.set(g, n);
      }
      head++;
    }
    if (head === keys.length) {
      this.queueKeys = [];
      this.queueExpiries = [];
      this.queueGroups = [];
      head = 0;
    } else if (head >= 1024 && head * 2 >= keys.length) {
      this.queueKeys = keys.slice(head);
      this.queueExpiries = expiries.slice(head);
      this.queueGroups = groups.slice(head);
      head = 0;
    }
    this.head = head;
  }
}
