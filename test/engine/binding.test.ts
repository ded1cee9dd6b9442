// What a token carries for the PEP, from the engine's side: its status list
// entry (allocated once, kept across renewals, set by revocation), the DPoP
// binding a creds request names, and the role's context as it is at each
// renewal, not only at issue.
import { inflateSync } from 'node:zlib';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDpopProver, generateDpopKey } from '../../src/pep/index.ts';
import { failure, harness } from './helpers.ts';

const ROLE = { read: ['db://orders/*'], ttl: '5m', max_ttl: '1h' };

describe('status list entries', () => {
  it('gives each token its own index, keeps it across renewals, and sets it on revoke', async () => {
    const h = await harness();
    await h.call('create', 'roles/orders', ROLE);
    const a = await h.issue('orders');
    const b = await h.issue('orders');
    const ref = (t: unknown) => (decodeJwt(t as string) as { status: { status_list: { idx: number; uri: string } } }).status.status_list;
    expect(ref(a.data.token).idx).not.toBe(ref(b.data.token).idx);
    expect(ref(a.data.token).uri).toBe('http://127.0.0.1:8200/v1/tvm/status/0');
    const renewed = await h.renew(a.secret);
    expect(ref(renewed.data.token)).toEqual(ref(a.data.token));
    const bit = async (idx: number) => {
      const served = await h.call('read', 'status/0');
      expect(served?.data?.http_content_type).toBe('application/statuslist+jwt');
      const list = decodeJwt(served!.data!.http_raw_body as string) as { sub: string; ttl: number; status_list: { bits: number; lst: string } };
      expect(list).toMatchObject({ sub: 'http://127.0.0.1:8200/v1/tvm/status/0', ttl: 60, status_list: { bits: 1 } });
      const bytes = inflateSync(Buffer.from(list.status_list.lst, 'base64url'));
      return (bytes[idx >> 3] >> (idx & 7)) & 1;
    };
    expect(await bit(ref(a.data.token).idx)).toBe(0);
    await h.call('revoke', '', {}, { secret: a.secret });
    expect(await bit(ref(a.data.token).idx)).toBe(1);
    expect(await bit(ref(b.data.token).idx)).toBe(0);
  });

  it('claims a fresh run of lists at each start, so no index is handed out twice across restarts', async () => {
    const h = await harness();
    await h.call('create', 'roles/orders', ROLE);
    const first = await h.issue('orders');
    const { createTvmBackend } = await import('../../src/engine/index.ts');
    const restarted = createTvmBackend({ apiAddr: 'http://127.0.0.1:8200', clock: h.clock.fn });
    await restarted.initialize(h.storage);
    const again = await restarted.handleRequest({ operation: 'read', path: 'creds/orders', data: {}, storage: h.storage, mountPoint: 'tvm/', caller: { displayName: 't' } });
    const uri = (t: unknown) => (decodeJwt(t as string) as { status: { status_list: { uri: string } } }).status.status_list.uri;
    expect(uri(first.data.token)).toMatch(/\/status\/0$/);
    expect(uri(again!.data!.token)).toMatch(/\/status\/16$/);
    expect((await h.call('read', 'status/99'))).toBeNull();
  });
});

describe('binding and context at renewal', () => {
  it('binds to the key named at issue and keeps it; a role that comes to require binding renews no unbound lease', async () => {
    const h = await harness();
    const prover = createDpopProver(generateDpopKey());
    await h.call('create', 'roles/orders', ROLE);
    const bound = await h.issue('orders', { dpop_jwk: prover.publicJwk });
    expect(bound.data.cnf_jkt).toBe(prover.jkt);
    expect(decodeJwt((await h.renew(bound.secret)).data.token as string).cnf).toEqual({ jkt: prover.jkt });
    const plain = await h.issue('orders');
    await h.call('update', 'roles/orders', { binding: 'dpop' });
    expect(await failure(() => h.renew(plain.secret))).toMatchObject({ code: 'ERR_PERMISSION_DENIED', status: 403 });
    expect((await failure(() => h.renew(plain.secret))).message).toContain('dpop_jwk');
    expect(decodeJwt((await h.renew(bound.secret)).data.token as string).cnf).toEqual({ jkt: prover.jkt });
  });

  it("carries the role's current bound_cidrs and allowed_hours into a renewed token", async () => {
    const h = await harness();
    await h.call('create', 'roles/orders', ROLE);
    const issued = await h.issue('orders');
    expect(decodeJwt(issued.data.token as string).bound_cidrs).toBeUndefined();
    await h.call('update', 'roles/orders', { bound_cidrs: ['10.0.0.0/8'], allowed_hours: ['00:00-24:00'], time_zone: 'Europe/Berlin' });
    const claims = decodeJwt((await h.renew(issued.secret)).data.token as string);
    expect(claims).toMatchObject({ bound_cidrs: ['10.0.0.0/8'], allowed_hours: ['00:00-24:00'], time_zone: 'Europe/Berlin' });
  });

  it('refuses a private, symmetric or malformed key without echoing it, and a jti fetch with a key', async () => {
    const h = await harness();
    await h.call('create', 'roles/orders', ROLE);
    const prover = createDpopProver(generateDpopKey());
    const secret = 'cHJpdmF0ZS1zY2FsYXI';
    for (const jwk of [{ ...prover.publicJwk, d: secret }, { kty: 'oct', k: secret }, { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }, ['x'], 'not json']) {
      const f = await failure(() => h.call('update', 'creds/orders', { dpop_jwk: jwk }));
      expect(f).toMatchObject({ code: 'ERR_INVALID_FIELD', status: 400 });
      expect(f.message).toContain('dpop_jwk');
      expect(f.message).not.toContain(secret);
    }
    const issued = await h.issue('orders');
    const f = await failure(() => h.call('update', 'creds/orders', { jti: issued.data.jti, dpop_jwk: prover.publicJwk }));
    expect(f.message).toContain('dpop_jwk');
  });
});

describe('revoke by jti', () => {
  it('sets the status bit at once, refuses the next renewal, and names bad input', async () => {
    const h = await harness();
    await h.call('create', 'roles/orders', ROLE);
    const issued = await h.issue('orders');
    const idx = (decodeJwt(issued.data.token as string) as { status: { status_list: { idx: number } } }).status.status_list.idx;
    const answer = await h.call('update', 'revoke/orders', { jti: issued.data.jti });
    expect(answer?.data).toMatchObject({ jti: issued.data.jti, revoked: true });
    const list = decodeJwt((await h.call('read', 'status/0'))!.data!.http_raw_body as string) as { status_list: { lst: string } };
    const bytes = inflateSync(Buffer.from(list.status_list.lst, 'base64url'));
    expect((bytes[idx >> 3] >> (idx & 7)) & 1).toBe(1);
    expect(await failure(() => h.renew(issued.secret))).toMatchObject({ code: 'ERR_LEASE_REVOKED' });
    expect(await h.call('update', 'revoke/orders', { jti: '00000000-0000-4000-8000-000000000000' })).toBeNull();
    expect(await failure(() => h.call('update', 'revoke/orders', { jti: 'not-a-jti' }))).toMatchObject({ status: 400, message: expect.stringContaining('jti') });
    expect(await failure(() => h.call('update', 'revoke/no%20such', { jti: issued.data.jti }))).toMatchObject({ status: 400 });
    expect(await failure(() => h.call('update', 'revoke/orders', {}))).toMatchObject({ status: 400, message: expect.stringContaining('jti') });
  });
});
