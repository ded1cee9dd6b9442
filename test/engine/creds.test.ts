import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { failure, harness, ISSUER, type Harness } from './helpers.ts';
import { keyPair } from '../keys.ts';

async function withDemo(extra: Record<string, unknown> = {}): Promise<Harness> {
  const h = await harness();
  await h.call('create', 'roles/demo', {
    read: ['db://orders/*'],
    write: ['db://orders/outbox'],
    ttl: '5m',
    max_ttl: '30m',
    ...extra,
  });
  return h;
}

async function verify(h: Harness, token: string) {
  const jwks = (await h.call('read', 'jwks'))!.data as { keys: never[] };
  return jwtVerify(token, createLocalJWKSet({ keys: jwks.keys }), {
    issuer: ISSUER,
    typ: 'at+jwt',
    currentDate: new Date(h.clock.now),
  });
}

describe('creds', () => {
  it('issues an RFC 9068 readwrite token under a renewable lease', async () => {
    const h = await withDemo({ extra_claims: { team: 'orders' } });
    const resp = await h.call('read', 'creds/demo');
    const data = resp!.data!;
    expect(data).toMatchObject({
      token_type: 'readwrite',
      scope: 'read:db://orders/* write:db://orders/outbox',
      read: ['db://orders/*'],
      write: ['db://orders/outbox'],
      audiences: [ISSUER],
      issued_at: '2026-11-23T12:00:00Z',
      expires_at: '2026-11-23T12:05:00Z',
      role: 'demo',
    });
    expect(resp!.secret).toMatchObject({ type: 'tvm_token', ttlMs: 300_000, maxTtlMs: 1_800_000, renewable: true });
    const token = data.token as string;
    expect(token.length).toBeLessThan(1024);
    const { payload, protectedHeader } = await verify(h, token);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload).toMatchObject({
      iss: ISSUER,
      sub: 'entity-1',
      aud: ISSUER,
      client_id: 'demo',
      scope: 'read:db://orders/* write:db://orders/outbox',
      jti: data.jti,
      team: 'orders',
    });
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(payload.nbf).toBe(payload.iat);
    expect(resp!.secret!.internalData).toMatchObject({ jti: data.jti, role: 'demo' });
  });

  it('uses the display name as sub when there is no entity', async () => {
    const h = await withDemo();
    const data = (await h.call('read', 'creds/demo', {}, { caller: { displayName: 'approle-ci' } }))!.data!;
    expect((await verify(h, data.token as string)).payload.sub).toBe('approle-ci');
  });

  it('narrows ttl, scopes and audience on update', async () => {
    const h = await withDemo({ audiences: ['orders-api', 'billing'] });
    const data = (await h.call('update', 'creds/demo', { ttl: '90s', read: ['db://orders/42'], write: [], audience: ['billing'] }))!.data!;
    expect(data).toMatchObject({ token_type: 'read', read: ['db://orders/42'], write: [], audiences: ['billing'], scope: 'read:db://orders/42' });
    const { payload } = await verify(h, data.token as string);
    expect(payload.aud).toBe('billing');
    expect(payload.exp! - payload.iat!).toBe(90);
  });

  it.each([
    [{ ttl: '31m' }, 400, 'ERR_INVALID_FIELD', "invalid ttl: 1860s is longer than the role's max_ttl 1800s"],
    [{ ttl: 'later' }, 400, 'ERR_INVALID_FIELD', 'invalid ttl: "later" is not a duration'],
    [{ read: ['db://orders/**'] }, 400, 'ERR_SCOPE_NOT_COVERED', 'invalid read[0]: "db://orders/**" is not covered by the role\'s read patterns'],
    [{ write: ['db://orders/42'] }, 400, 'ERR_SCOPE_NOT_COVERED', 'invalid write[0]: "db://orders/42" is not covered'],
    [{ read: ['db://orders/a b'] }, 400, 'ERR_INVALID_FIELD', 'invalid read[0]'],
    [{ read: [], write: [] }, 400, 'ERR_INVALID_FIELD', 'invalid read: the request leaves neither a read nor a write scope'],
    [{ audience: ['evil'] }, 400, 'ERR_SCOPE_NOT_COVERED', 'invalid audience[0]: "evil" is not one of the role\'s audiences'],
    [{ scope: 'admin' }, 400, 'ERR_UNKNOWN_FIELD', 'unknown field "scope"'],
  ])('refuses %j', async (body, status, code, message) => {
    const h = await withDemo();
    const err = await failure(() => h.call('update', 'creds/demo', body));
    expect(err).toMatchObject({ status, code });
    expect(err.message).toContain(message);
  });

  it('refuses unknown roles with a 400 naming the role', async () => {
    const h = await harness();
    const err = await failure(() => h.call('read', 'creds/ghost'));
    expect(err).toEqual({ status: 400, code: 'ERR_ROLE_NOT_FOUND', message: 'unknown role "ghost"' });
  });

  it('enforces bound CIDRs and puts them in the token', async () => {
    const h = await withDemo({ bound_cidrs: ['10.1.0.0/16', 'fd00::/8'] });
    const data = (await h.call('read', 'creds/demo'))!.data!;
    expect((await verify(h, data.token as string)).payload.bound_cidrs).toEqual(['10.1.0.0/16', 'fd00::/8']);
    await h.call('read', 'creds/demo', {}, { caller: { displayName: 'x', remoteAddr: 'fd00::1' } });
    await h.call('read', 'creds/demo', {}, { caller: { displayName: 'x', remoteAddr: '::ffff:10.1.9.9' } });
    const outside = await failure(() => h.call('read', 'creds/demo', {}, { caller: { displayName: 'x', remoteAddr: '192.168.1.1' } }));
    expect(outside).toMatchObject({ status: 403, code: 'ERR_CIDR_DENIED' });
    const unknown = await failure(() => h.call('read', 'creds/demo', {}, { caller: { displayName: 'x' } }));
    expect(unknown.status).toBe(403);
  });

  it('answers 429 over max_active_leases, even under concurrency, and frees slots on revoke', async () => {
    const h = await withDemo({ max_active_leases: 3 });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => h.issue('demo')));
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(3);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toMatchObject({ status: 429, code: 'ERR_TOO_MANY_LEASES' });
    const first = (ok[0] as PromiseFulfilledResult<Awaited<ReturnType<Harness['issue']>>>).value;
    await h.call('revoke', '', {}, { secret: first.secret });
    await h.issue('demo');
    // Expired leases no longer count.
    h.clock.advance(5 * 60_000 + 1);
    await h.issue('demo');
  });

  it('renews with a freshly signed token: same jti, later exp, never past max_ttl', async () => {
    const h = await withDemo();
    const { data, secret } = await h.issue('demo');
    h.clock.advance(4 * 60_000);
    const renewed = await h.renew(secret, 600_000);
    expect(renewed.data.jti).toBe(data.jti);
    expect(renewed.data.token).not.toBe(data.token);
    expect(renewed.secret.ttlMs).toBe(600_000);
    const p = (await verify(h, renewed.data.token as string)).payload;
    expect(p.exp).toBe(Date.UTC(2026, 10, 23, 12, 14) / 1000);
    expect(p.jti).toBe(data.jti);
    // Near the cap, the renewal is cut to the lease's max expiry.
    h.clock.advance(24 * 60_000);
    const capped = await h.renew(renewed.secret, 600_000);
    expect(capped.secret.ttlMs).toBe(2 * 60_000);
    h.clock.advance(2 * 60_000);
    const over = await failure(() => h.call('renew', '', {}, { secret }));
    expect(over.code).toBe('ERR_LEASE_EXPIRED');
  });

  it('renew without increment uses the role ttl; a revoked lease cannot be renewed', async () => {
    const h = await withDemo();
    const { secret } = await h.issue('demo');
    const renewed = await h.call('renew', '', {}, { secret });
    expect(renewed!.secret!.ttlMs).toBe(300_000);
    await h.call('revoke', '', {}, { secret });
    expect((await failure(() => h.call('renew', '', {}, { secret }))).code).toBe('ERR_LEASE_REVOKED');
  });

  it('revoke lists the jti until its newest token expires, is idempotent, and introspection goes inactive', async () => {
    const h = await withDemo();
    const { data, secret } = await h.issue('demo');
    const other = await h.issue('demo');
    h.clock.advance(60_000);
    const renewed = await h.renew(secret, 20 * 60_000);
    expect((await h.call('update', 'introspect', { token: data.token }))!.data!.active).toBe(true);
    // Revoke with the lease's original internal data: the engine still lists the jti until the renewed token's exp.
    expect(await h.call('revoke', '', {}, { secret })).toBeNull();
    expect(await h.call('revoke', '', {}, { secret })).toBeNull();
    const list = (await h.call('read', 'revocations'))!.data as { version: number; revoked: Array<{ jti: string; exp: number }> };
    expect(list.version).toBe(1);
    expect(list.revoked).toEqual([{ jti: data.jti, exp: (Date.UTC(2026, 10, 23, 12, 1) + 20 * 60_000) / 1000 }]);
    for (const t of [data.token, renewed.data.token]) {
      expect((await h.call('update', 'introspect', { token: t }))!.data).toEqual({ active: false });
    }
    expect((await h.call('update', 'introspect', { token: other.data.token }))!.data!.active).toBe(true);

    await h.call('revoke', '', {}, { secret: other.secret });
    const since = (await h.call('read', 'revocations', { since: 1 }))!.data as { revoked: Array<{ jti: string }> };
    expect(since.revoked.map((r) => r.jti)).toEqual([other.data.jti]);

    // Entries leave once their tokens would have expired anyway, and a verifier's
    // largest clock skew (5 minutes) has passed too: until then a skewed verifier
    // would still take the token, so its revocation must still be there.
    h.clock.advance(21 * 60_000);
    await h.call('rollback', '');
    expect(((await h.call('read', 'revocations'))!.data as { revoked: unknown[] }).revoked.length).toBeGreaterThan(0);
    h.clock.advance(5 * 60_000);
    await h.call('rollback', '');
    expect((await h.call('read', 'revocations'))!.data).toEqual({ version: 2, revoked: [] });
    expect(h.storage.map.has(`revocations/entries/${data.jti}`)).toBe(false);
  });

  it('a mount tuned below the role caps the token with its lease, at issue and at renewal', async () => {
    const h = await withDemo();
    const limits = { defaultTtlMs: 60_000, maxTtlMs: 120_000 };
    const resp = await h.call('read', 'creds/demo', {}, { mountLimits: async () => limits });
    expect(resp!.secret).toMatchObject({ ttlMs: 120_000, maxTtlMs: 120_000 });
    const p = (await verify(h, resp!.data!.token as string)).payload;
    expect(p.exp! - p.iat!).toBe(120);
    expect(resp!.data!.max_expires_at).toBe('2026-11-23T12:02:00Z');
    const tooLong = await failure(() => h.call('update', 'creds/demo', { ttl: '3m' }, { mountLimits: async () => limits }));
    expect(tooLong).toMatchObject({ status: 400, code: 'ERR_INVALID_FIELD' });
    expect(tooLong.message).toBe("invalid ttl: 180s is longer than the mount's max_lease_ttl 120s");
    // Tuned down further after the issue: the renewal is capped by the new max from the issue time.
    const secret = { type: resp!.secret!.type, internalData: resp!.secret!.internalData, ttlMs: 120_000, maxTtlMs: 120_000, renewable: true, issueTimeMs: h.clock.now };
    h.clock.advance(30_000);
    const renewed = await h.call('renew', '', {}, { secret: { ...secret, incrementMs: 600_000 }, mountLimits: async () => ({ defaultTtlMs: 60_000, maxTtlMs: 60_000 }) });
    expect(renewed!.secret!.ttlMs).toBe(30_000);
  });

  it('a lease revoked after its token expired adds nothing to the list', async () => {
    const h = await withDemo();
    const { secret } = await h.issue('demo');
    h.clock.advance(5 * 60_000);
    await h.call('revoke', '', {}, { secret });
    expect((await h.call('read', 'revocations'))!.data).toEqual({ version: 0, revoked: [] });
  });
});

describe('introspection', () => {
  it('answers RFC 7662 for a live token', async () => {
    const h = await withDemo();
    const { data } = await h.issue('demo');
    expect((await h.call('update', 'introspect', { token: data.token }))!.data).toEqual({
      active: true,
      scope: 'read:db://orders/* write:db://orders/outbox',
      client_id: 'demo',
      sub: 'entity-1',
      aud: ISSUER,
      iss: ISSUER,
      exp: Date.UTC(2026, 10, 23, 12, 5) / 1000,
      iat: Date.UTC(2026, 10, 23, 12, 0) / 1000,
      nbf: Date.UTC(2026, 10, 23, 12, 0) / 1000,
      jti: data.jti,
      token_type: 'readwrite',
    });
  });

  it('is inactive for expired, foreign, malformed and tampered tokens', async () => {
    const h = await withDemo();
    const { data } = await h.issue('demo');
    const token = data.token as string;
    const foreignKey = keyPair('ES256');
    const kid = decodeProtectedHeader(token).kid!;
    const foreign = await new SignJWT({ client_id: 'demo', scope: 'read:db://orders/*' })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
      .setIssuer(ISSUER).setSubject('x').setJti('j').setIssuedAt(h.clock.now / 1000).setExpirationTime(h.clock.now / 1000 + 60)
      .sign(foreignKey.privateKey);
    const [head, body, sig] = token.split('.');
    const tampered = [head, Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), scope: 'write:db://**' })).toString('base64url'), sig].join('.');
    for (const t of [foreign, 'not-a-jwt', '', tampered, `${head}.${body}`]) {
      const resp = t === '' ? await failure(() => h.call('update', 'introspect', { token: t })) : (await h.call('update', 'introspect', { token: t }))!.data;
      if (t === '') expect(resp).toMatchObject({ status: 400 });
      else expect(resp).toEqual({ active: false });
    }
    h.clock.advance(5 * 60_000 + 1000);
    expect((await h.call('update', 'introspect', { token }))!.data).toEqual({ active: false });
  });

  it('needs the token field', async () => {
    const h = await harness();
    expect(await failure(() => h.call('update', 'introspect', {}))).toEqual({
      status: 400,
      code: 'ERR_MISSING_FIELD',
      message: 'missing required field token',
    });
  });
});
