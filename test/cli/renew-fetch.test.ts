// renewLease renews, then fetches the renewed token as the lease's holder; a
// standby that serves reads may still hold the token from before the renewal,
// so the fetch is repeated (briefly) until it is the renewal's.
import { describe, expect, it } from 'vitest';
import { renewLease } from '../../src/client/index.ts';
import type { VaultConnection, VaultResponse } from '../../src/client/index.ts';

const RENEWAL = { jti: 'j-1', role: 'orders', issued_at: '2026-12-05T10:00:05Z', expires_at: '2026-12-05T10:10:05Z', token_fetch: { path: 'tvm/creds/orders', jti: 'j-1' } };
const OLD = { ...RENEWAL, token: 'old', issued_at: '2026-12-05T10:00:00Z', expires_at: '2026-12-05T10:05:00Z' };
const NEW = { ...RENEWAL, token: 'new' };

function connection(fetches: Array<Record<string, unknown>>): { conn: VaultConnection; calls: string[] } {
  const calls: string[] = [];
  const envelope = (data: Record<string, unknown>, lease = ''): VaultResponse =>
    ({ request_id: 'r', lease_id: lease, renewable: lease !== '', lease_duration: lease ? 600 : 0, data, warnings: null, auth: null }) as unknown as VaultResponse;
  const conn = {
    addr: 'http://127.0.0.1:1',
    mount: 'tvm',
    async write(path: string, body?: Record<string, unknown>) {
      calls.push(`${path} ${JSON.stringify(body)}`);
      if (path === 'sys/leases/renew') return envelope(RENEWAL, 'tvm/creds/orders/L');
      return envelope(fetches.length > 1 ? fetches.shift()! : fetches[0]);
    },
  } as unknown as VaultConnection;
  return { conn, calls };
}

describe('renewLease', () => {
  it('fetches the renewed token with the jti, again while the answer predates the renewal', async () => {
    const { conn, calls } = connection([OLD, OLD, NEW]);
    const creds = await renewLease(conn, 'tvm/creds/orders/L');
    expect(creds).toMatchObject({ token: 'new', lease_id: 'tvm/creds/orders/L', lease_duration: 600, jti: 'j-1' });
    expect(calls).toEqual(['sys/leases/renew {"lease_id":"tvm/creds/orders/L"}', ...Array(3).fill('tvm/creds/orders {"jti":"j-1"}')]);
  });

  it('gives up with a clear error when the renewed token never shows', async () => {
    const { conn } = connection([OLD]);
    await expect(renewLease(conn, 'tvm/creds/orders/L')).rejects.toThrow(/still answers the token from before the renewal/);
  });
});
