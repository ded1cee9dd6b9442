import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { HTTP_RAW_BODY } from '../../src/engine/index.ts';
import { failure, harness, ISSUER } from './helpers.ts';

describe('signing keys', () => {
  it('rotation keeps the old key published until its tokens have expired', async () => {
    const h = await harness();
    await h.call('create', 'roles/demo', { read: ['db://x/*'], ttl: '10m', max_ttl: '1h' });
    const before = await h.issue('demo');
    const oldKid = decodeProtectedHeader(before.data.token as string).kid;
    const rotated = (await h.call('update', 'keys/rotate'))!.data!;
    expect(rotated.kid).not.toBe(oldKid);
    const after = await h.issue('demo');
    expect(decodeProtectedHeader(after.data.token as string).kid).toBe(rotated.kid);

    const kids = async () => ((await h.call('read', 'jwks'))!.data!.keys as Array<{ kid: string }>).map((k) => k.kid);
    expect(await kids()).toEqual([oldKid, rotated.kid]);
    // A renewal after rotation re-signs with the new key.
    const renewed = await h.renew(before.secret);
    expect(decodeProtectedHeader(renewed.data.token as string).kid).toBe(rotated.kid);
    expect((await h.call('update', 'introspect', { token: before.data.token }))!.data!.active).toBe(true);

    h.clock.advance(60 * 60_000 - 1000);
    await h.call('rollback', '');
    expect(await kids()).toEqual([oldKid, rotated.kid]);
    h.clock.advance(1000);
    await h.call('rollback', '');
    expect(await kids()).toEqual([rotated.kid]);
  });

  it('raising max_ttl extends how long a retired key stays published', async () => {
    const h = await harness();
    await h.call('update', 'config', { max_ttl: '3h' });
    const jwks0 = (await h.call('read', 'jwks'))!.data!.keys as Array<{ kid: string }>;
    await h.call('update', 'keys/rotate');
    h.clock.advance(2 * 60 * 60_000);
    const kids = ((await h.call('read', 'jwks'))!.data!.keys as Array<{ kid: string }>).map((k) => k.kid);
    expect(kids).toContain(jwks0[0].kid);
  });

  it.each(['EdDSA', 'RS256', 'ES256'])('changing the algorithm to %s rotates to a key of that kind', async (alg) => {
    const h = await harness();
    await h.call('update', 'config', { signing_algorithm: alg });
    await h.call('create', 'roles/demo', { write: ['db://x/y'] });
    const { data } = await h.issue('demo');
    expect(decodeProtectedHeader(data.token as string).alg).toBe(alg);
    const jwks = (await h.call('read', 'jwks'))!.data as { keys: never[] };
    const { payload } = await jwtVerify(data.token as string, createLocalJWKSet(jwks), { currentDate: new Date(h.clock.now) });
    expect(payload.scope).toBe('write:db://x/y');
    if (alg !== 'ES256') expect(jwks.keys).toHaveLength(2);
  });

  it('publishes a raw JWKS and an OIDC discovery document', async () => {
    const h = await harness();
    const jwks = (await h.call('read', '.well-known/jwks.json'))!.data!;
    expect(jwks.http_content_type).toBe('application/json');
    expect(jwks.http_status_code).toBe(200);
    const keys = JSON.parse(jwks[HTTP_RAW_BODY] as string).keys;
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(keys[0].d).toBeUndefined();
    const disco = JSON.parse((await h.call('read', '.well-known/openid-configuration'))!.data![HTTP_RAW_BODY] as string);
    expect(disco).toMatchObject({
      issuer: ISSUER,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      id_token_signing_alg_values_supported: ['ES256'],
    });
  });

  it('names the unauthenticated paths', async () => {
    const h = await harness();
    expect(h.backend.specialPaths().unauthenticated).toEqual(['jwks', '.well-known/*', 'revocations', 'status/*']);
  });
});

describe('framework', () => {
  it('answers unknown paths and operations with 404 and 405', async () => {
    const h = await harness();
    expect(await failure(() => h.call('read', 'nope'))).toMatchObject({ status: 404, code: 'ERR_UNSUPPORTED_PATH' });
    expect(await failure(() => h.call('delete', 'jwks'))).toMatchObject({ status: 405, code: 'ERR_UNSUPPORTED_OPERATION' });
  });

  it('answers help with the route text and fields', async () => {
    const h = await harness();
    const help = (await h.call('help', 'roles/x'))!.data!.help as string;
    expect(help).toContain('max_active_leases (int)');
    expect((await h.call('help', ''))!.data!.help).toContain('tvm secrets engine');
  });

  it('refuses a non-object body and renew without a secret', async () => {
    const h = await harness();
    expect(await failure(() => h.call('update', 'config', [] as never))).toMatchObject({ status: 400 });
    expect(await failure(() => h.call('renew', ''))).toMatchObject({ status: 400, code: 'ERR_INVALID_REQUEST' });
    expect(
      await failure(() => h.call('revoke', '', {}, { secret: { type: 'tvm_token', internalData: {}, ttlMs: 0, maxTtlMs: 0, renewable: true, issueTimeMs: 0 } })),
    ).toMatchObject({ status: 400 });
  });
});
