// When to renew, and how long to wait after a failure. Pure functions over an
// injected clock reading and random source, so tests pin them exactly.
//
// A lease is renewed early enough to keep `reserveMs` of its life in reserve
// (what a Vault outage may take), within bounds: never later than two thirds
// of its remaining life (long ttls keep the classic rule, and a third of a long
// ttl is more than the reserve anyway) and never sooner than a third of it (a
// short ttl renews at most three times per ttl). A failed renewal is retried
// with capped exponential backoff that also spreads over the life left, so
// several attempts, the last ones at most a quarter second apart, land before
// the expiry. outageSurvivedMs() states what that schedule guarantees.

import type { Random } from './types.ts';

export interface RenewalTiming {
  /** Renew once at most this fraction of the remaining life has passed (two thirds). */
  renewFraction: number;
  /** ...and at least this fraction (a third): a short ttl renews at most three times per ttl. */
  earliestFraction: number;
  /** The life kept in reserve when renewing, within the two fractions: the Vault outage a lease rides out. */
  reserveMs: number;
  /** ± this fraction of the delay is random jitter, so leases issued together spread out. */
  jitterFraction: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** The retries aim at least this long before expiry (they go on, a quarter second apart, until it). */
  expiryMarginMs: number;
}

export const DEFAULT_TIMING: RenewalTiming = {
  renewFraction: 2 / 3,
  earliestFraction: 1 / 3,
  reserveMs: 60_000,
  jitterFraction: 0.1,
  backoffMinMs: 10_000,
  backoffMaxMs: 300_000,
  expiryMarginMs: 1_000,
};

/** Retries near the expiry come at most this far apart (before the loop's pass). */
export const FINAL_RETRY_MS = 250;

/** Vault's token exp is in whole seconds: a lease's life can be this much shorter than its ttl. */
const VAULT_ROUNDING_MS = 1_000;

/** How long after a renewal (or issue) with `remainingMs` of life to renew again, before jitter (whole ms). */
export function renewalDelayMs(remainingMs: number, t: RenewalTiming): number {
  const delay = Math.min(Math.max(remainingMs - t.reserveMs, remainingMs * t.earliestFraction), remainingMs * t.renewFraction);
  return Math.max(0, Math.round(delay));
}

/** The ttl whose first renewal falls `delayMs` after issue (before jitter): renewalDelayMs inverted. */
export function ttlRenewedAfter(delayMs: number, t: RenewalTiming): number {
  return Math.max(delayMs / t.renewFraction, Math.min(delayMs + t.reserveMs, delayMs / t.earliestFraction));
}

/** The next renewal time: `renewalDelayMs` of the remaining life, with jitter. */
export function nextRenewalAt(now: number, expiresAt: number, t: RenewalTiming, random: Random): number {
  const jitter = 1 + (random() * 2 - 1) * t.jitterFraction;
  return now + Math.floor(renewalDelayMs(Math.max(0, expiresAt - now), t) * jitter);
}

/**
 * Capped exponential backoff with full jitter in the upper half: attempt 1
 * waits about backoffMin, doubling up to backoffMax, but never more than a
 * quarter of the time left before expiry (minus the margin; at least
 * FINAL_RETRY_MS), so retries start sooner on a short lease and keep coming
 * until it expires: retrying after expiry is pointless.
 */
export function backoffAt(now: number, attempt: number, expiresAt: number | null, t: RenewalTiming, random: Random): number {
  let cap = Math.min(t.backoffMaxMs, t.backoffMinMs * 2 ** Math.max(0, attempt - 1));
  if (expiresAt !== null) cap = Math.min(cap, Math.max(FINAL_RETRY_MS, (expiresAt - t.expiryMarginMs - now) / 4));
  return now + Math.floor(cap / 2 + (random() * cap) / 2);
}

/**
 * The longest Vault outage (connections refused) a lease of this ttl rides
 * out whatever its phase. The worst case: Vault's rounding took a second off
 * the lease's life, the renewal falls due at the late end of its jitter, and
 * the outage begins just then. Retries go on until the expiry, the last ones
 * FINAL_RETRY_MS apart and picked up at the loop's next pass (`passMs`, the
 * loop's tick), so the outage must end that long before the expiry. A Vault
 * that does not answer at all also costs each attempt the request timeout.
 */
export function outageSurvivedMs(ttlMs: number, t: RenewalTiming, passMs: number): number {
  const life = ttlMs - VAULT_ROUNDING_MS;
  const latestRenewal = renewalDelayMs(life, t) * (1 + t.jitterFraction);
  return Math.max(0, Math.floor(life - latestRenewal - FINAL_RETRY_MS - passMs));
}

/** Whether a token still has at least a third of its life (the cache rule). */
export function freshEnough(now: number, tokenIssuedAt: number, expiresAt: number): boolean {
  const life = expiresAt - tokenIssuedAt;
  return life > 0 && expiresAt - now >= life / 3;
}
