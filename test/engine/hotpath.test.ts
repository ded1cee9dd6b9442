// What the creds hot path remembers between requests (issue 15) must never
// outlive what it was made from: a role changed or deleted by a write is what
// the next creds read sees, a rotated key signs (with its own header) the next
// token, the route of one path is never another's, and every token has its
// own jti and its own claims.
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { failure, harness, ISSUER, type Harness } from './helpers.ts';

async function verify(h: Harness, token: string) {
  const jwks = (await h.call('read', 'jwks'))!.data as { keys: never[] };
  return jwtVerify(token, createLocalJWKSet({ keys: jwks.keys }), { issuer: ISSUER, typ: 'at+jwt', currentDate: new Date(h.clock.now) });
}

describe('creds hot path caches', () => {
  it('a role changed by a write is what the next creds read issues from, and a deleted one issues nothing', async () => {
    const h = await harness();
    await h.call('create', 'roles/r', { read: ['db://orders/*'], ttl: '5m' });
    const before = await h.issue('r');
    expect(before.data.scope).toBe('read:db://orders/*');
    await h.call('update', 'roles/r', { read: ['db://invoices/*'], write: ['db://invoices/outbox'], ttl: '2m' });
    const after = await h.issue('r');
    expect(after.data.scope).toBe('read:db://invoices/* write:db://invoices/outbox');
    const claims = decodeJwt(after.data.token as string);
    expect(claims.scope).toBe('read:db://invoices/* write:db://invoices/outbox');
    expect((claims.exp as number) - (claims.iat as number)).toBe(120);
    await h.call('delete', 'roles/r');
    expect(await failure(() => h.issue('r'))).toMatchObject({ code: 'ERR_ROLE_NOT_FOUND' });
  });

  it('the route of one path is never another\'s: two roles through the same route keep their own names', async () => {
    const h = await harness();
    await h.call('create', 'roles/a', { read: ['db://a/*'] });
    await h.call('create', 'roles/b', { read: ['db://b/*'] });
    for (let i = 0; i < 3; i++) {
      expect((await h.issue('a')).data).toMatchObject({ role: 'a', scope: 'read:db://a/*' });
      expect((await h.issue('b')).data).toMatchObject({ role: 'b', scope: 'read:db://b/*' });
    }
  });

  it('after a rotation the new key signs, with its own kid in the header, and both tokens verify', async () => {
    const h = await harness();
    await h.call('create', 'roles/r', { read: ['db://orders/*'] });
    const first = (await h.issue('r')).data.token as string;
    await h.call('update', 'keys/rotate');
    const second = (await h.issue('r')).data.token as string;
    expect(decodeProtectedHeader(second).kid).not.toBe(decodeProtectedHeader(first).kid);
    expect(decodeProtectedHeader(second)).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    await verify(h, first);
    await verify(h, second);
  });

  it('every token has its own jti, status index and lease, even within one second', async () => {
    const h = await harness();
    await h.call('create', 'roles/r', { read: ['db://orders/*'] });
    const issued = await Promise.all(Array.from({ length: 20 }, () => h.issue('r')));
    const jtis = issued.map((i) => i.data.jti);
    expect(new Set(jtis).size).toBe(20);
    const claims = issued.map((i) => decodeJwt(i.data.token as string));
    expect(claims.map((c) => c.jti)).toEqual(jtis);
    expect(new Set(claims.map((c) => JSON.stringify(c.status))).size).toBe(20);
    expect(new Set(issued.map((i) => i.secret.internalData.jti)).size).toBe(20);
  });
});
