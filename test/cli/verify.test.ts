// verifyToken against a fake mount (a VaultConnection naming the issuer, and a
// fetch serving its JWKS and a signed status list), with a frozen clock. The
// checks are the PEP's (src/pep): these tests pin what the client makes of them.

import { deflateSync } from 'node:zlib';
import type { KeyObject } from 'node:crypto';
import { exportJWK, SignJWT, type JWTPayload } from 'jose';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { VaultConnection } from '../../src/client/index.ts';
import { InvalidInputError, ServerUnreachableError, verifyToken } from '../../src/client/index.ts';
import type { FetchLike } from '../../src/pep/index.ts';
import { keyPair } from '../keys.ts';

const NOW_S = Math.floor(Date.UTC(2026, 10, 23, 12, 0, 0) / 1000);
const NOW = new Date(NOW_S * 1000);
const ISSUER = 'http://127.0.0.1:8200/v1/tvm';
const LIST = `${ISSUER}/status/0`;
/** Another issuer name for the same keys (a mount whose issuer is configured), reached at http://fake2. */
const OTHER = 'https://tokens.example.com/v1/tvm';
const REVOKED_IDX = 7;

type Key = KeyObject;
let signing: Key;
let other: Key;
let jwk: Record<string, unknown>;
let statusList: string;
let otherList: string;
/** The URLs the fake fetch was asked for, in order. */
let fetched: string[] = [];

const conn: VaultConnection = {
  addr: 'http://fake',
  mount: 'tvm',
  hasToken: true,
  async read() {
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

/** The mount's unauthenticated documents, at the connection's address (not the issuer's). */
const fakeFetch: FetchLike = async (url) => {
  fetched.push(url);
  if (url === 'http://fake/v1/tvm/.well-known/jwks.json') return Response.json({ keys: [jwk] });
  if (url === 'http://fake2/v1/tvm/.well-known/jwks.json') return Response.json({ keys: [jwk] });
  if (url === 'http://fake/v1/tvm/status/0') return new Response(statusList, { headers: { 'content-type': 'application/statuslist+jwt' } });
  if (url === 'http://fake2/v1/tvm/status/0') return new Response(otherList, { headers: { 'content-type': 'application/statuslist+jwt' } });
  return new Response('{"errors":[]}', { status: 404 });
};

/** verifyToken at NOW through the fake fetch. */
function verify(token: string, options: Parameters<typeof verifyToken>[2] = {}, c: VaultConnection = conn) {
  return verifyToken(c, token, { now: NOW, fetch: fakeFetch, ...options });
}

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
    status: { status_list: { idx: 1, uri: LIST } },
    ...over,
  };
}

async function sign(payload: JWTPayload, options: { key?: Key; typ?: string; kid?: string } = {}): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'k1', typ: options.typ ?? 'at+jwt' })
    .sign(options.key ?? signing);
}

beforeAll(async () => {
  const pair = keyPair('ES256');
  signing = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  other = keyPair('ES256').privateKey;
  // List 0 with one bit set, as the engine serves it (IETF Token Status List).
  const bits = new Uint8Array(16);
  bits[REVOKED_IDX >> 3] |= 1 << (REVOKED_IDX & 7);
  const list = (issuer: string) =>
    new SignJWT({ ttl: 300, status_list: { bits: 1, lst: deflateSync(bits).toString('base64url') } })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'statuslist+jwt' })
      .setIssuer(issuer)
      .setSubject(`${issuer}/status/0`)
      .setIssuedAt(NOW_S - 5)
      .setExpirationTime(NOW_S + 300)
      .sign(signing);
  statusList = await list(ISSUER);
  otherList = await list(OTHER);
});

beforeEach(() => {
  fetched = [];
});

describe('verifyToken', () => {
  it('accepts a valid token and returns header and claims', async () => {
    const result = await verify(await sign(claims()));
    expect(result).toMatchObject({ valid: true, header: { alg: 'ES256', kid: 'k1', typ: 'at+jwt' }, claims: { jti: 'jti-1' } });
    expect(result.reason).toBeUndefined();
    expect(result.code).toBeUndefined();
    // The JWKS and the token's status list, both from the mount through the connection's address.
    expect(fetched).toEqual(['http://fake/v1/tvm/.well-known/jwks.json', 'http://fake/v1/tvm/status/0']);
  });

  it('rejects a tampered payload', async () => {
    const [h, , s] = (await sign(claims())).split('.');
    const forged = Buffer.from(JSON.stringify(claims({ scope: 'write:db://**' }))).toString('base64url');
    const result = await verify(`${h}.${forged}.${s}`);
    expect(result).toMatchObject({ valid: false, code: 'ERR_TOKEN_SIGNATURE', reason: 'signature verification failed' });
    expect(result.claims?.scope).toBe('write:db://**');
  });

  it('rejects a token signed by a key the mount does not publish', async () => {
    expect(await verify(await sign(claims(), { key: other }))).toMatchObject({
      valid: false,
      code: 'ERR_TOKEN_SIGNATURE',
      reason: 'signature verification failed',
    });
    expect(await verify(await sign(claims(), { kid: 'gone' }))).toMatchObject({
      valid: false,
      code: 'ERR_KEY_UNKNOWN',
      reason: 'no published key has kid "gone"',
    });
  });

  it('checks exp, nbf and iat with a small tolerance, naming the claim', async () => {
    expect(await verify(await sign(claims({ exp: NOW_S - 60 })))).toMatchObject({
      valid: false,
      code: 'ERR_TOKEN_EXPIRED',
      claim: 'exp',
      reason: `expired at ${new Date((NOW_S - 60) * 1000).toISOString()}`,
    });
    expect((await verify(await sign(claims({ exp: NOW_S - 5 })))).valid).toBe(true);
    expect(await verify(await sign(claims({ nbf: NOW_S + 600 })))).toMatchObject({
      valid: false,
      code: 'ERR_TOKEN_NOT_YET_VALID',
      claim: 'nbf',
      reason: expect.stringMatching(/^not valid before /),
    });
    expect(await verify(await sign(claims({ iat: NOW_S + 600, nbf: NOW_S })))).toMatchObject({
      valid: false,
      code: 'ERR_TOKEN_NOT_YET_VALID',
      claim: 'iat',
      reason: expect.stringMatching(/^issued in the future/),
    });
    // clockToleranceS widens the window.
    expect((await verify(await sign(claims({ exp: NOW_S - 60 })), { clockToleranceS: 120 })).valid).toBe(true);
  });

  it('requires typ at+jwt, the issuer and the RFC 9068 claims', async () => {
    expect(await verify(await sign(claims(), { typ: 'JWT' }))).toMatchObject({
      code: 'ERR_TOKEN_TYPE',
      reason: 'header typ is "JWT", expected "at+jwt"',
    });
    expect(await verify(await sign(claims({ iss: 'https://evil' })))).toMatchObject({
      valid: false,
      code: 'ERR_TOKEN_ISSUER',
      claim: 'iss',
      reason: `issuer "https://evil" is not "${ISSUER}"`,
    });
    const { client_id: _omit, ...noClient } = claims();
    expect(await verify(await sign(noClient))).toMatchObject({
      valid: false,
      code: 'ERR_TOKEN_MALFORMED',
      reason: 'claim client_id is missing or not a string',
    });
  });

  it('rejects a token whose status list entry says revoked', async () => {
    const result = await verify(await sign(claims({ jti: 'jti-revoked', status: { status_list: { idx: REVOKED_IDX, uri: LIST } } })));
    expect(result).toMatchObject({ valid: false, code: 'ERR_TOKEN_REVOKED' });
    expect(result.reason).toContain('revoked');
  });

  it('rejects a token that names no status list, or one it cannot have', async () => {
    const { status: _omit, ...noStatus } = claims();
    expect(await verify(await sign(noStatus))).toMatchObject({ valid: false, code: 'ERR_TOKEN_STATUS' });
    const gone = await verify(await sign(claims({ status: { status_list: { idx: 1, uri: `${ISSUER}/status/9` } } })));
    expect(gone).toMatchObject({ valid: false, code: 'ERR_STATUS_UNAVAILABLE' });
    expect(fetched).toContain('http://fake/v1/tvm/status/9');
  });

  it('rejects garbage', async () => {
    expect(await verify('not-a-jwt')).toEqual({
      valid: false,
      code: 'ERR_TOKEN_MALFORMED',
      reason: 'not a JWS compact JWT',
      header: null,
      claims: null,
    });
  });

  it('fails (throws) when the mount cannot be reached, rather than calling the token invalid', async () => {
    const token = await sign(claims());
    const refused: FetchLike = async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    };
    const err = await verify(token, { fetch: refused }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerUnreachableError);
    expect((err as Error).message).toBe('cannot reach Vault at http://fake: connection refused');
  });
});

describe('verifyToken: op and resource (what authorize checks)', () => {
  it('allows an op the scope grants, and refuses one it does not with ERR_SCOPE', async () => {
    const token = await sign(claims({ scope: 'read:db://a/* write:db://a/outbox' }));
    expect(await verify(token, { op: 'read', resource: 'db://a/1' })).toMatchObject({ valid: true, claims: { jti: 'jti-1' } });
    expect(await verify(token, { op: 'write', resource: 'db://a/outbox' })).toMatchObject({ valid: true });
    expect(await verify(token, { op: 'write', resource: 'db://a/1' })).toMatchObject({
      valid: false,
      code: 'ERR_SCOPE',
      reason: 'the token does not grant write on "db://a/1"',
    });
  });

  it('checks bound_cidrs against the remote address (none given: refused)', async () => {
    const token = await sign(claims({ bound_cidrs: ['10.0.0.0/8'] }));
    expect((await verify(token)).valid).toBe(true);
    expect(await verify(token, { op: 'read', resource: 'db://a/1' })).toMatchObject({ valid: false, code: 'ERR_CONTEXT' });
    expect(await verify(token, { op: 'read', resource: 'db://a/1', remoteAddr: '192.168.1.1' })).toMatchObject({ valid: false, code: 'ERR_CONTEXT' });
    expect((await verify(token, { op: 'read', resource: 'db://a/1', remoteAddr: '10.1.2.3' })).valid).toBe(true);
  });

  it('refuses a DPoP-bound token: there is no proof to check', async () => {
    const token = await sign(claims({ cnf: { jkt: 'x'.repeat(43) } }));
    expect((await verify(token)).valid).toBe(true);
    const result = await verify(token, { op: 'read', resource: 'db://a/1' });
    expect(result).toMatchObject({ valid: false, code: 'ERR_BINDING' });
    expect(result.reason).toMatch(/DPoP/);
  });

  it.each([
    [{ op: 'read' as const }, /op and resource go together/],
    [{ resource: 'db://a/1' }, /op and resource go together/],
    [{ op: 'delete' as never, resource: 'db://a/1' }, /op: must be read or write/],
    [{ remoteAddr: '10.1.2.3' }, /remoteAddr goes with op and resource/],
    [{ op: 'read' as const, resource: 'db://a/*  two words' }, /resource must be a concrete resource/],
  ])('%j is an input error', async (options, message) => {
    const err = await verify(await sign(claims()), options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toMatch(message);
  });
});

describe('verifyToken: the audience (RFC 8725 §3.9, RFC 9068 §4)', () => {
  /** The same fake mount, publishing no discovery document (so no issuer). */
  const noDiscovery: VaultConnection = { ...conn, readRaw: async () => null };

  it('by default wants the issuer in aud, and says which audience the token has instead', async () => {
    expect((await verify(await sign(claims()))).valid).toBe(true);
    const token = await sign(claims({ aud: ['orders-api'] }));
    const result = await verify(token);
    expect(result).toMatchObject({
      valid: false,
      code: 'ERR_TOKEN_AUDIENCE',
      claim: 'aud',
      reason: `audience ["orders-api"] does not include "${ISSUER}"`,
      claims: { aud: ['orders-api'] },
    });
    expect(result.reason).not.toContain(token);
  });

  it('accepts a token with several audiences when one of them is the expected one', async () => {
    const several = await sign(claims({ aud: ['orders-api', ISSUER, 'billing-api'] }));
    expect((await verify(several)).valid).toBe(true);
    expect((await verify(several, { audiences: ['billing-api'] })).valid).toBe(true);
    expect((await verify(several, { audiences: ['ledger-api'] })).reason).toBe(
      `audience ["orders-api","${ISSUER}","billing-api"] does not include "ledger-api"`,
    );
  });

  it('takes the audiences the caller answers to: any one of them will do', async () => {
    const orders = await sign(claims({ aud: 'orders-api' }));
    expect((await verify(orders, { audiences: ['orders-api'] })).valid).toBe(true);
    expect((await verify(orders, { audiences: ['billing-api', 'orders-api'] })).valid).toBe(true);
    // Naming audiences replaces the default: the issuer alone no longer passes.
    expect(await verify(await sign(claims()), { audiences: ['orders-api'] })).toMatchObject({
      valid: false,
      claim: 'aud',
      reason: `audience "${ISSUER}" does not include "orders-api"`,
    });
    expect((await verify(orders, { audiences: ['billing-api', 'ledger-api'] })).reason).toBe(
      'audience "orders-api" does not include any of ["billing-api","ledger-api"]',
    );
  });

  it('takes the expected issuer, which is then also the default audience', async () => {
    expect((await verify(await sign(claims()), { issuer: ISSUER })).valid).toBe(true);
    expect(await verify(await sign(claims()), { issuer: OTHER })).toMatchObject({
      valid: false,
      claim: 'iss',
      reason: `issuer "${ISSUER}" is not "${OTHER}"`,
    });
    // A token of that issuer whose aud is the issuer: valid; one whose aud is elsewhere: not. Its
    // status list (under the issuer's name) is fetched from the mount at the connection's address.
    const fake2: VaultConnection = { ...conn, addr: 'http://fake2' };
    const ofOther = { iss: OTHER, status: { status_list: { idx: 1, uri: `${OTHER}/status/0` } } };
    fetched = [];
    expect((await verify(await sign(claims({ ...ofOther, aud: OTHER })), { issuer: OTHER }, fake2)).valid).toBe(true);
    expect(fetched).toEqual(['http://fake2/v1/tvm/.well-known/jwks.json', 'http://fake2/v1/tvm/status/0']);
    expect((await verify(await sign(claims(ofOther)), { issuer: OTHER }, fake2)).reason).toBe(`audience "${ISSUER}" does not include "${OTHER}"`);
  });

  it('without a published issuer, wants the audience named', async () => {
    expect(await verify(await sign(claims()), {}, noDiscovery)).toMatchObject({
      valid: false,
      claim: 'aud',
      reason: 'the mount publishes no issuer, so the audience cannot be checked',
    });
    expect((await verify(await sign(claims()), { audiences: [ISSUER] }, noDiscovery)).valid).toBe(true);
    expect((await verify(await sign(claims()), { issuer: ISSUER }, noDiscovery)).valid).toBe(true);
  });

  it('requires aud, and bounds the claim values it quotes', async () => {
    const { aud: _omit, ...noAud } = claims();
    expect(await verify(await sign(noAud))).toMatchObject({ valid: false, code: 'ERR_TOKEN_AUDIENCE', claim: 'aud' });
    const huge = await sign(claims({ aud: ['x'.repeat(10_000)] }));
    const result = await verify(huge);
    expect(result.reason).toMatch(/^audience \["x{60,}\.\.\. does not include "/);
    expect(result.reason!.length).toBeLessThan(200);
  });

  it('refuses empty expectations before asking the server', async () => {
    const token = await sign(claims());
    for (const options of [{ audiences: [] }, { audiences: ['api', ' '] }, { issuer: '' }, { issuer: 'tokens.example.com' }]) {
      const err = await verify(token, options).catch((e: unknown) => e);
      expect(err, JSON.stringify(options)).toBeInstanceOf(InvalidInputError);
      expect((err as Error).message).not.toContain(token);
    }
    expect(fetched).toEqual([]);
  });
});
