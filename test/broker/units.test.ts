// Pure parts with a frozen clock and fixed randomness: renewal timing, backoff,
// the cache rule, and the config file.

import { describe, expect, it } from 'vitest';
import { BrokerError, DEFAULT_TIMING, backoffAt, freshEnough, loadConfig, nextRenewalAt, parseConfig, renewalDelayMs, ttlRenewedAfter } from '../../src/broker/index.ts';

const NOW = 1_700_000_000_000;

describe('timing', () => {
  it('renews at two thirds of a long ttl, keeps a minute in reserve on a mid one, renews a short one at a third, with bounded jitter', () => {
    // 15 min: two thirds (the reserve, 5 min, is more than a minute anyway).
    expect(nextRenewalAt(NOW, NOW + 900_000, DEFAULT_TIMING, () => 0.5)).toBe(NOW + 600_000);
    expect(nextRenewalAt(NOW, NOW + 900_000, DEFAULT_TIMING, () => 0)).toBe(NOW + 540_000);
    expect(nextRenewalAt(NOW, NOW + 900_000, DEFAULT_TIMING, () => 0.999999)).toBeLessThanOrEqual(NOW + 660_000);
    // 90 s: a minute kept in reserve (renewed after 30 s, not 60 s).
    expect(nextRenewalAt(NOW, NOW + 90_000, DEFAULT_TIMING, () => 0.5)).toBe(NOW + 30_000);
    // 9 s: a third (a minute cannot be kept; renewing more often than every third of the ttl is not done).
    expect(nextRenewalAt(NOW, NOW + 9_000, DEFAULT_TIMING, () => 0.5)).toBe(NOW + 3_000);
    expect(nextRenewalAt(NOW, NOW + 9_000, DEFAULT_TIMING, () => 0.999999)).toBeLessThanOrEqual(NOW + 3_300);
  });

  it('inverts the schedule: the ttl whose first renewal falls after a given delay (the benchmark aims renewals with it)', () => {
    for (const delay of [1_000, 20_000, 30_000, 45_000, 120_000, 600_000]) {
      expect(Math.abs(renewalDelayMs(ttlRenewedAfter(delay, DEFAULT_TIMING), DEFAULT_TIMING) - delay)).toBeLessThanOrEqual(1);
    }
    expect(ttlRenewedAfter(600_000, DEFAULT_TIMING)).toBe(900_000);
    expect(ttlRenewedAfter(1_000, DEFAULT_TIMING)).toBe(3_000);
  });

  it('backs off from 10s, doubling to 5m, and within a quarter of the life left so retries keep coming until expiry', () => {
    const far = NOW + 3_600_000;
    const mid = () => 1; // upper end of the jitter
    expect(backoffAt(NOW, 1, far, DEFAULT_TIMING, mid) - NOW).toBe(10_000);
    expect(backoffAt(NOW, 2, far, DEFAULT_TIMING, mid) - NOW).toBe(20_000);
    expect(backoffAt(NOW, 10, far, DEFAULT_TIMING, mid) - NOW).toBe(300_000);
    expect(backoffAt(NOW, 1, far, DEFAULT_TIMING, () => 0) - NOW).toBe(5_000);
    // 30s left: a quarter of what is left before the margin, not 5 minutes out.
    expect(backoffAt(NOW, 10, NOW + 30_000, DEFAULT_TIMING, mid)).toBe(NOW + 7_250);
    // The last second: a quarter second apart, up to the expiry.
    expect(backoffAt(NOW, 10, NOW + 800, DEFAULT_TIMING, mid)).toBe(NOW + 250);
    expect(backoffAt(NOW, 10, NOW + 800, DEFAULT_TIMING, () => 0)).toBe(NOW + 125);
  });

  it('serves from the cache while a third of the life remains', () => {
    expect(freshEnough(NOW, NOW - 60_000, NOW + 30_000)).toBe(true);
    expect(freshEnough(NOW, NOW - 61_000, NOW + 29_000)).toBe(false);
  });
});

describe('config', () => {
  it('reads the example HCL file', async () => {
    const c = await loadConfig('vault-config/broker.hcl', { VAULT_TOKEN: 'x' });
    expect(c.vault).toMatchObject({ address: 'http://127.0.0.1:8200', mount: 'tvm', auth: { method: 'token', token: 'x' } });
    expect(c.store.kind).toBe('sqlite');
    expect(c.listener.address).toBe('127.0.0.1:8300');
    expect(c.broker.timing).toMatchObject({ backoffMinMs: 10_000, backoffMaxMs: 300_000 });
    expect(c.broker.revokeOnShutdown).toBe(true);
    expect(c.broker.roles).toEqual(['demo']);
  });

  it('names the problem in a bad config', () => {
    const bad = (raw: Record<string, unknown>) => {
      try {
        parseConfig(raw, '/', {});
      } catch (err) {
        expect(err).toBeInstanceOf(BrokerError);
        return { code: (err as BrokerError).code, message: (err as Error).message };
      }
      throw new Error('accepted');
    };
    expect(bad({})).toEqual({ code: 'ERR_CONFIG', message: 'a vault { address = ... } block is required' });
    expect(bad({ vault: { address: 'http://v', auth: { kerberos: {} } } }).message).toBe('vault.auth "kerberos" is not one of token, approle, jwt');
    expect(bad({ vault: { address: 'http://v' }, listener: { address: '0.0.0.0:8300' } }).message).toMatch(/must be a loopback address/);
    expect(bad({ vault: { address: 'http://v' }, renewal: { backoff_min: 'soon' } }).message).toMatch(/renewal.backoff_min: "soon" is not a duration/);
    expect(bad({ vault: { address: 'http://v' }, store: { mysql: {} } }).message).toBe('store "mysql" is not one of sqlite, postgres');
  });
});
