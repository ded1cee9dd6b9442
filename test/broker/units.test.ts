// Pure parts with a frozen clock and fixed randomness: renewal timing, backoff,
// the cache rule, and the config file.

import { describe, expect, it } from 'vitest';
import { BrokerError, DEFAULT_TIMING, backoffAt, freshEnough, loadConfig, nextRenewalAt, parseConfig } from '../../src/broker/index.ts';

const NOW = 1_700_000_000_000;

describe('timing', () => {
  it('renews at two thirds of the remaining ttl, with bounded jitter', () => {
    expect(nextRenewalAt(NOW, NOW + 90_000, DEFAULT_TIMING, () => 0.5)).toBe(NOW + 60_000);
    expect(nextRenewalAt(NOW, NOW + 90_000, DEFAULT_TIMING, () => 0)).toBe(NOW + 54_000);
    expect(nextRenewalAt(NOW, NOW + 90_000, DEFAULT_TIMING, () => 0.999999)).toBeLessThanOrEqual(NOW + 66_000);
  });

  it('backs off from 10s, doubling to 5m, never past the expiry', () => {
    const far = NOW + 3_600_000;
    const mid = () => 1; // upper end of the jitter
    expect(backoffAt(NOW, 1, far, DEFAULT_TIMING, mid) - NOW).toBe(10_000);
    expect(backoffAt(NOW, 2, far, DEFAULT_TIMING, mid) - NOW).toBe(20_000);
    expect(backoffAt(NOW, 10, far, DEFAULT_TIMING, mid) - NOW).toBe(300_000);
    expect(backoffAt(NOW, 1, far, DEFAULT_TIMING, () => 0) - NOW).toBe(5_000);
    // 30s left: the retry lands before expiry (minus the margin), not 5 minutes out.
    expect(backoffAt(NOW, 10, NOW + 30_000, DEFAULT_TIMING, mid)).toBe(NOW + 29_000);
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
