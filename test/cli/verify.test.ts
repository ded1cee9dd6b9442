// verifyToken against a fake mount (a VaultConnection serving a JWKS and a
// revocation list), with a frozen clock.

import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { VaultConnection, VaultResponse } from '../../src/client/index.ts';
import { InvalidInputError, verifyToken } from '../../src/client/index.ts';

const NOW_S = Math.floor(Date.UTC(2026, 10, 23, 12, 0, 0) / 1000);
const NOW = new Date(NOW_S * 1000);
const ISSUER = 'http://127.0.0.1:8200/v1/tvm';

type Key = CryptoKey;
let signing: Key;
let other: Key;
const revoked: Array<{ jti: string; exp: number }> = [];
let jwk: Record<string, unknown>;

function envelope(data: Record<string, unknown>): VaultResponse {
  return { request_id: 'r', lease_id: '', renewable: false, lease_duration: 0, data, warnings: null, wrap_info: null, auth: null };
}

const conn: VaultConnection = {
  addr: 'http://fake',
  mount: 'tvm',
  hasToken: true,
  async read(path) {
    if (path === 'tvm/jwks') return envelope({ keys: [jwk] });
    if (path === 'tvm/revocations') return envelope({ version: revoked.length, revoked });
    return null;
  },
  async readRaw(path) {
    if (path === 'tvm/.well-known/openid-configuration') return { issuer: ISSUER };
    return null;
  },
  async write() {
    return null;
  },
  async list() {
    return [];
  },
  async delete() {},
};

function claims(over: JWTPayload = {}): JWTPayload {
  return {
    iss: ISSUER,
    sub: 'root',
    // What tvm issues for a role without audiences: the issuer itself.
    aud: ISSUER,
    iat: NOW_S - 10,
    nbf: NOW_S - 10,
    exp: NOW_S + 900,
    jti: 'jti-1',
    client_id: 'demo',
    scope: 'read:db://a/*',
    ...over,
  };
}

async function sign(payload: JWTPayload, options: { key?: Key; typ?: string; kid?: string } = {}): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'k1', typ: options.typ ?? 'at+jwt' })
    .sign(options.key ?? signing);
}

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signing = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  other = (await generateKeyPair('ES256')).privateKey;
});

describe('verifyToken', () => {
  it('accepts a valid token and returns header and claims', async () => {
    const result = await verifyToken(conn, await sign(claims()), { now: NOW });
    expect(result).toMatchObject({ valid: true, header: { alg: 'ES256', kid: 'k1', typ: 'at+jwt' }, claims: { jti: 'jti-1' } });
    expect(result.reason).toBeUndefined();
  });

  it('rejects a tampered payload', async () => {
    const [h, , s] = (await sign(claims())).split('.');
    const forged = Buffer.from(JSON.stringify(claims({ scope: 'write:db://**' }))).toString('base64url');
    const result = await verifyToken(conn, `${h}.${forged}.${s}`, { now: NOW });
    expect(result).toMatchObject({ valid: false, reason: 'signature verification failed' });
    expect(result.claims?.scope).toBe('write:db://**');
  });

  it('rejects a token signed by a key the mount does not publish', async () => {
    expect(await verifyToken(conn, await sign(claims(), { key: other }), { now: NOW })).toMatchObject({
      valid: false,
      reason: 'signature verification failed',
    });
    expect(await verifyToken(conn, await sign(claims(), { kid: 'gone' }), { now: NOW })).toMatchObject({
      valid: false,
      reason: 'no published key matches kid "gone" (alg ES256)',
    });
  });

  it('checks exp, nbf and iat with a small tolerance', async () => {
    const expired = await sign(claims({ exp: NOW_S - 60 }));
    expect((await verifyToken(conn, expired, { now: NOW })).reason).toBe(`expired at ${new Date((NOW_S - 60) * 1000).toISOString()}`);
    expect((await verifyToken(conn, await sign(claims({ exp: NOW_S - 5 })), { now: NOW })).valid).toBe(true);
    expect((await verifyToken(conn, await sign(claims({ nbf: NOW_S + 600 })), { now: NOW })).reason).toMatch(/^not valid before /);
    expect((await verifyToken(conn, await sign(claims({ iat: NOW_S + 600, nbf: NOW_S })), { now: NOW })).reason).toMatch(
      /^issued in the future/,
    );
  });

  it('requires typ at+jwt, the issuer and the RFC 9068 claims', async () => {
    expect((await verifyToken(conn, await sign(claims(), { typ: 'JWT' }), { now: NOW })).reason).toBe(
      'header typ is "JWT", expected "at+jwt"',
    );
    expect((await verifyToken(conn, await sign(claims({ iss: 'https://evil' })), { now: NOW })).reason).toBe(
      'issuer "https://evil" is not this mount\'s',
    );
    const { client_id: _omit, ...noClient } = claims();
    expect((await verifyToken(conn, await sign(noClient), { now: NOW })).reason).toBe('missing claim client_id');
  });

  it('rejects a revoked jti', async () => {
    revoked.push({ jti: 'jti-revoked', exp: NOW_S + 900 });
    expect(await verifyToken(conn, await sign(claims({ jti: 'jti-revoked' })), { now: NOW })).toMatchObject({
      valid: false,
      reason: 'revoked',
    });
  });

  it('rejects garbage without asking the server', async () => {
    expect(await verifyToken(conn, 'not-a-jwt', { now: NOW })).toEqual({
      valid: false,
      reason: 'malformed token: not a JWS compact JWT',
      header: null,
      claims: null,
    });
  });
});

describe('verifyToken: the audience (RFC 8725 §3.9, RFC 9068 §4)', () => {
  /** The same fake mount, publishing no discovery document (so no issuer). */
  const noDiscovery: VaultConnection = { ...conn, readRaw: async () => null };

  it('by default wants the issuer in aud, and says which audience the token has instead', async () => {
    expect((await verifyToken(conn, await sign(claims()), { now: NOW })).valid).toBe(true);
    const token = await sign(claims({ aud: ['orders-api'] }));
    const result = await verifyToken(conn, token, { now: NOW });
    expect(result).toMatchObject({
      valid: false,
      claim: 'aud',
      reason: `audience ["orders-api"] does not include the issuer "${ISSUER}"`,
      claims: { aud: ['orders-api'] },
    });
    expect(result.reason).not.toContain(token);
  });

  it('accepts a token with several audiences when one of them is the expected one', async () => {
    const several = await sign(claims({ aud: ['orders-api', ISSUER, 'billing-api'] }));
    expect((await verifyToken(conn, several, { now: NOW })).valid).toBe(true);
    expect((await verifyToken(conn, several, { now: NOW, audiences: ['billing-api'] })).valid).toBe(true);
    expect((await verifyToken(conn, several, { now: NOW, audiences: ['ledger-api'] })).reason).toBe(
      `audience ["orders-api","${ISSUER}","billing-api"] does not include "ledger-api"`,
    );
  });

  it('takes the audiences the caller answers to: any one of them will do', async () => {
    const orders = await sign(claims({ aud: 'orders-api' }));
    expect((await verifyToken(conn, orders, { now: NOW, audiences: ['orders-api'] })).valid).toBe(true);
    expect((await verifyToken(conn, orders, { now: NOW, audiences: ['billing-api', 'orders-api'] })).valid).toBe(true);
    // Naming audiences replaces the default: the issuer alone no longer passes.
    expect(await verifyToken(conn, await sign(claims()), { now: NOW, audiences: ['orders-api'] })).toMatchObject({
      valid: false,
      claim: 'aud',
      reason: `audience "${ISSUER}" does not include "orders-api"`,
    });
    expect((await verifyToken(conn, orders, { now: NOW, audiences: ['billing-api', 'ledger-api'] })).reason).toBe(
      'audience "orders-api" does not include any of ["billing-api","ledger-api"]',
    );
  });

  it('takes the expected issuer, which is then also the default audience', async () => {
    const other = 'https://tokens.example.com/v1/tvm';
    expect((await verifyToken(conn, await sign(claims()), { now: NOW, issuer: ISSUER })).valid).toBe(true);
    expect(await verifyToken(conn, await sign(claims()), { now: NOW, issuer: other })).toMatchObject({
      valid: false,
      claim: 'iss',
      reason: `issuer "${ISSUER}" is not the expected "${other}"`,
    });
    // A token of that issuer whose aud is the issuer: valid; one whose aud is elsewhere: not.
    expect((await verifyToken(conn, await sign(claims({ iss: other, aud: other })), { now: NOW, issuer: other })).valid).toBe(true);
    expect((await verifyToken(conn, await sign(claims({ iss: other })), { now: NOW, issuer: other })).reason).toBe(
      `audience "${ISSUER}" does not include the issuer "${other}"`,
    );
  });

  it('without a published issuer, wants the audience named', async () => {
    expect(await verifyToken(noDiscovery, await sign(claims()), { now: NOW })).toMatchObject({
      valid: false,
      claim: 'aud',
      reason: 'the mount publishes no issuer, so the audience cannot be checked',
    });
    expect((await verifyToken(noDiscovery, await sign(claims()), { now: NOW, audiences: [ISSUER] })).valid).toBe(true);
    expect((await verifyToken(noDiscovery, await sign(claims()), { now: NOW, issuer: ISSUER })).valid).toBe(true);
  });

  it('requires aud, and bounds the claim values it quotes', async () => {
    const { aud: _omit, ...noAud } = claims();
    expect(await verifyToken(conn, await sign(noAud), { now: NOW })).toMatchObject({ valid: false, reason: 'missing claim aud' });
    const huge = await sign(claims({ aud: ['x'.repeat(10_000)] }));
    const result = await verifyToken(conn, huge, { now: NOW });
    expect(result.reason).toMatch(/^audience \["x{60,}\.\.\. does not include the issuer /);
    expect(result.reason!.length).toBeLessThan(200);
  });

  it('refuses empty expectations before asking the server', async () => {
    const token = await sign(claims());
    for (const options of [{ audiences: [] }, { audiences: ['api', ' '] }, { issuer: '' }]) {
      const err = await verifyToken(conn, token, { now: NOW, ...options }).catch((e: unknown) => e);
      expect(err, JSON.stringify(options)).toBeInstanceOf(InvalidInputError);
      expect((err as Error).message).not.toContain(token);
    }
  });
});
