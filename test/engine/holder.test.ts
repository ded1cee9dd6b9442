// A lease id is never a credential: a renewal signs a fresh token but does not
// answer it (Vault does not tell an engine who renews), and only the identity
// that obtained the lease can fetch it, from creds/<role> with its jti.
import { describe, expect, it } from 'vitest';
import { failure, harness, type Harness } from './helpers.ts';

async function withDemo(): Promise<Harness> {
  const h = await harness();
  await h.call('create', 'roles/demo', { read: ['db://orders/*'], ttl: '5m', max_ttl: '30m' });
  return h;
}

const other = { displayName: 'token', entityId: 'entity-2' };

describe('renewed tokens and their holder', () => {
  it('a renewal answers the lease without the token, and where its holder fetches it', async () => {
    const h = await withDemo();
    const { data, secret } = await h.issue('demo');
    h.clock.advance(60_000);
    const resp = await h.call('renew', '', {}, { secret });
    expect(resp!.data).not.toHaveProperty('token');
    expect(JSON.stringify(resp)).not.toMatch(/eyJ/);
    expect(resp!.data).toMatchObject({ jti: data.jti, role: 'demo', token_fetch: { path: 'tvm/creds/demo', jti: data.jti } });
    const fetched = await h.call('read', 'creds/demo', { jti: data.jti });
    expect(fetched!.secret).toBeUndefined();
    expect(fetched!.data).toMatchObject({ jti: data.jti, expires_at: '2026-11-23T12:06:00Z', role: 'demo' });
    expect(fetched!.data!.token).not.toBe(data.token);
  });

  it('another identity cannot fetch it, nor a caller without identity', async () => {
    const h = await withDemo();
    const { data, secret } = await h.issue('demo');
    await h.call('renew', '', {}, { secret });
    for (const caller of [other, { displayName: 'token' }, { displayName: 'token', tokenAccessor: 'acc-1' }]) {
      const err = await failure(() => h.call('read', 'creds/demo', { jti: data.jti }, { caller }));
      expect(err).toMatchObject({ status: 403, code: 'ERR_PERMISSION_DENIED' });
      expect(err.message).not.toMatch(/eyJ/);
    }
  });

  it('without an entity, the token (by accessor) that obtained the lease is its holder', async () => {
    const h = await withDemo();
    const mine = { displayName: 'root', tokenAccessor: 'acc-mine' };
    const { data, secret } = await h.issue('demo', undefined, { caller: mine });
    await h.call('renew', '', {}, { secret });
    expect((await h.call('read', 'creds/demo', { jti: data.jti }, { caller: mine }))!.data!.jti).toBe(data.jti);
    const err = await failure(() => h.call('read', 'creds/demo', { jti: data.jti }, { caller: { displayName: 'root', tokenAccessor: 'acc-other' } }));
    expect(err.status).toBe(403);
  });

  it('before any renewal there is nothing to fetch; after revocation the lease is gone', async () => {
    const h = await withDemo();
    const { data, secret } = await h.issue('demo');
    expect(await failure(() => h.call('read', 'creds/demo', { jti: data.jti }))).toMatchObject({ status: 400, code: 'ERR_INVALID_FIELD' });
    await h.call('renew', '', {}, { secret });
    await h.call('revoke', '', {}, { secret });
    expect(await h.call('read', 'creds/demo', { jti: data.jti })).toBeNull();
    expect([...h.storage.map.keys()].filter((k) => k.startsWith('renewed/'))).toEqual([]);
  });

  it('refuses a malformed jti, a jti of another role, and jti combined with issue fields', async () => {
    const h = await withDemo();
    await h.call('create', 'roles/other', { read: ['db://x'] });
    const { data } = await h.issue('demo');
    expect(await failure(() => h.call('read', 'creds/demo', { jti: 'not-a-jti' }))).toMatchObject({ status: 400, code: 'ERR_INVALID_FIELD' });
    expect(await h.call('read', 'creds/other', { jti: data.jti })).toBeNull();
    const combined = await failure(() => h.call('update', 'creds/demo', { jti: data.jti, ttl: '1m' }));
    expect(combined).toMatchObject({ status: 400, code: 'ERR_INVALID_FIELD' });
    expect(combined.message).toContain('ttl');
  });
});

describe('crash consistency of the engine records', () => {
  it('the revocation list never hands out a version twice when the meta write was lost', async () => {
    const h = await withDemo();
    const a = await h.issue('demo');
    const b = await h.issue('demo');
    await h.call('revoke', '', {}, { secret: a.secret });
    // A crash between the entry's write and the meta's: the meta still says 0.
    h.storage.map.set('revocations/meta', new TextEncoder().encode(JSON.stringify({ version: 0 })));
    h.backend.invalidateKey('revocations/meta');
    await h.call('revoke', '', {}, { secret: b.secret });
    const list = (await h.call('read', 'revocations'))!.data as { version: number; revoked: Array<{ jti: string }> };
    expect(list.version).toBe(2);
    const since1 = (await h.call('read', 'revocations', { since: 1 }))!.data as { revoked: Array<{ jti: string }> };
    expect(since1.revoked.map((r) => r.jti)).toEqual([b.data.jti]);
  });

  it('pruning keeps the version even when every entry goes', async () => {
    const h = await withDemo();
    const a = await h.issue('demo');
    await h.call('revoke', '', {}, { secret: a.secret });
    h.storage.map.set('revocations/meta', new TextEncoder().encode(JSON.stringify({ version: 0 })));
    h.backend.invalidateKey('revocations/meta');
    h.clock.advance(10 * 60_000);
    await h.call('rollback', '');
    h.backend.invalidateKey('revocations/meta');
    expect(((await h.call('read', 'revocations'))!.data as { version: number }).version).toBe(1);
  });

  it('tidying removes active-lease records left without a lease, so the quota recovers', async () => {
    const h = await harness();
    await h.call('create', 'roles/capped', { read: ['db://x'], ttl: '1m', max_ttl: '10m', max_active_leases: 2 });
    // Two issues whose leases were never registered (the server died in between).
    await h.issue('capped');
    await h.issue('capped');
    expect(await failure(() => h.issue('capped'))).toMatchObject({ status: 429 });
    h.clock.advance(60_000 + 61_000);
    await h.call('rollback', '');
    expect([...h.storage.map.keys()].filter((k) => k.startsWith('leases/'))).toEqual([]);
    await h.issue('capped');
  });
});
