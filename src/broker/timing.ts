// When to renew, and how long to wait after a failure. Pure functions over an
// injected clock reading and random source, so tests pin them exactly.

import type { Random } from './types.ts';

export interface RenewalTiming {
  /** Fraction of the remaining ttl after which to renew (about two thirds). */
  renewFraction: number;
  /** ± this fraction of the delay is random jitter, so leases issued together spread out. */
  jitterFraction: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** The last retry is scheduled at least this long before expiry. */
  expiryMarginMs: number;
}

export const DEFAULT_TIMING: RenewalTiming = {
  renewFraction: 2 / 3,
  jitterFraction: 0.1,
  backoffMinMs: 10_000,
  backoffMaxMs: 300_000,
  expiryMarginMs: 1_000,
};

/** The next renewal time: about two thirds of the remaining life, with jitter. */
export function nextRenewalAt(now: number, expiresAt: number, t: RenewalTiming, random: Random): number {
  const remaining = Math.max(0, expiresAt - now);
  const jitter = 1 + (random() * 2 - 1) * t.jitterFraction;
  return now + Math.floor(remaining * t.renewFraction * jitter);
}

/**
 * Capped exponential backoff with full jitter in the upper half:
 * attempt 1 waits about backoffMin, doubling up to backoffMax, and never past
 * the lease's expiry (minus a margin): retrying after expiry is pointless.
 */
export function backoffAt(now: number, attempt: number, expiresAt: number | null, t: RenewalTiming, random: Random): number {
  const exp = Math.min(t.backoffMaxMs, t.backoffMinMs * 2 ** Math.max(0, attempt - 1));
  const delay = Math.floor(exp / 2 + (random() * exp) / 2);
  let at = now + delay;
  if (expiresAt !== null) {
    const latest = expiresAt - t.expiryMarginMs;
    if (at > latest) at = Math.max(now + Math.min(delay, 250), Math.min(at, latest));
  }
  return at;
}

/** Whether a token still has at least a third of its life (the cache rule). */
export function freshEnough(now: number, tokenIssuedAt: number, expiresAt: number): boolean {
  const life = expiresAt - tokenIssuedAt;
  return life > 0 && expiresAt - now >= life / 3;
}
