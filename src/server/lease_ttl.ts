// A lease's ttl as Vault's core decides it (its framework's CalculateTTL),
// when a secret is issued and when it is renewed: the ttl asked for (the
// renewal's increment, else the engine's ttl, else the mount's default),
// capped so the lease never outlives its start plus the smaller of the
// engine's max ttl and the mount's max lease ttl, counted in whole seconds.

import { EngineError } from '../sdk/errors.ts';
import type { MountLimits } from '../sdk/logical.ts';

/** Vault's default system max TTL (32 days), the cap of every token's life. */
export const SYSTEM_MAX_TTL_MS = 768 * 3_600_000;

/**
 * A duration as Vault's ttl warnings print it (its framework's humanDuration):
 * Go's form without zero parts, `10h`, `1h30m`, `59m58s`, `0s`.
 */
export function humanDuration(ms: number): string {
  let rest = Math.max(0, Math.floor(ms / 1000));
  if (rest === 0) return '0s';
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h > 0 ? `${h}h` : ''}${m > 0 || (h > 0 && s > 0) ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
}

/** A mount's lease limits (its tuned default and max lease ttl; 0: the system's). */
export interface MountLeaseLimits {
  defaultLeaseTtlMs: number;
  maxLeaseTtlMs: number;
}

export interface LeaseTtlInput {
  /** The renewal's increment (0: none, or an issue). */
  incrementMs: number;
  /** What the engine answered. */
  ttlMs: number;
  maxTtlMs: number;
  /** When the lease was issued (its start); the issue itself passes now. */
  startMs: number;
  nowMs: number;
  /** Absent: the system's limits. */
  mount?: MountLeaseLimits;
}

/** The mount limits of a mount config (seconds, 0 for the system's), as milliseconds. */
export function mountLeaseLimits(config: { default_lease_ttl: number; max_lease_ttl: number }): MountLeaseLimits {
  return { defaultLeaseTtlMs: config.default_lease_ttl * 1000, maxLeaseTtlMs: config.max_lease_ttl * 1000 };
}

/** The mount's effective lease ttls as the engine asks for them (Vault's SystemView: the mount's, else the system's). */
export function effectiveMountLimits(config: { default_lease_ttl: number; max_lease_ttl: number }): MountLimits {
  return {
    defaultTtlMs: config.default_lease_ttl * 1000 || SYSTEM_MAX_TTL_MS,
    maxTtlMs: config.max_lease_ttl * 1000 || SYSTEM_MAX_TTL_MS,
  };
}

/** The lease's ttl and Vault's warning when it was capped. Throws when the max ttl has passed. */
export function leaseTtl(input: LeaseTtlInput): { ttlMs: number; warnings: string[] } {
  const second = (ms: number): number => Math.floor(ms / 1000) * 1000;
  const now = second(input.nowMs);
  const start = second(input.startMs);
  let maxTtlMs = input.mount?.maxLeaseTtlMs || SYSTEM_MAX_TTL_MS;
  if (input.maxTtlMs > 0 && input.maxTtlMs < maxTtlMs) maxTtlMs = input.maxTtlMs;
  let ttlMs = input.incrementMs > 0 ? input.incrementMs : input.ttlMs > 0 ? input.ttlMs : input.mount?.defaultLeaseTtlMs || SYSTEM_MAX_TTL_MS;
  const maxValidMs = start + maxTtlMs - now;
  if (maxValidMs <= 0) throw new EngineError('ERR_INVALID_REQUEST', 'past the max TTL, cannot renew');
  const warnings: string[] = [];
  if (ttlMs > maxValidMs) {
    warnings.push(`TTL of "${humanDuration(ttlMs)}" exceeded the effective max_ttl of "${humanDuration(maxValidMs)}"; TTL value is capped accordingly`);
    ttlMs = maxValidMs;
  }
  return { ttlMs, warnings };
}
