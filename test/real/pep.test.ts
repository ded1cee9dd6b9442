// The policy enforcement point (src/pep) against tokens the tvm plugin issues
// inside a real OpenBao (2.7.2, from PyPI; one dev server for the file): the
// PEP fetches the issuer's JWKS and the signed status lists through OpenBao's
// own HTTP layer, so the server is the judge of what it passes through for the
// plugin's raw responses (status code, content type, headers, streams).
//
// What OpenBao 2.7.2 was seen to deliver (recorded here; asserted below):
// - `GET <mount>/status/<n>`: 200, `content-type: application/statuslist+jwt`,
//   the JWT as the body, `content-length`, and `cache-control: no-store`
//   (OpenBao adds it to every response). No ETag: a raw plugin response can
//   set only its status, content type and body, so `If-None-Match` gets the
//   full 200 again and the PEP's ETag revalidation never applies behind a
//   Vault-family server; every poll fetches the (small) list again.
// - `GET <mount>/status/events`: 200, `content-type: text/event-stream`, the
//   hello event alone (`retry: 1000`, `event: hello`, `data: {"version":N}`)
//   with a content-length, and the response ends at once: the plugin transport
//   has no streaming, so no `revoked` event ever reaches a subscriber through
//   OpenBao. A `push: true` verifier reconnects every `retry` (1 s); each new
//   hello carries the revocation version, and a changed version makes it fetch
//   its lists again, so push still shortens the delay even with polling off.
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDpopProver, generateDpopKey } from '../../src/pep/dpop.ts';
import { createVerifier, type Verifier, type VerifierOptions } from '../../src/pep/verifier.ts';
import type { AuthorizeContext, Decision, TokenClaims } from '../../src/pep/types.ts';
import type { FetchLike } from '../../src/pep/fetch.ts';
import { openbaoUnavailable, registerPlugin, startBaoDev, type Bao } from './openbao.ts';

const unavailable = openbaoUnavailable();
if (unavailable) console.warn(`skipping the PEP against the tvm plugin inside OpenBao: ${unavailable}`);

const AUDIENCE = 'orders-api';
const ORDERS = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m', max_ttl: '1h', audiences: [AUDIENCE] };
const BOUND = { ...ORDERS, binding: 'dpop' };
/** A made-up resource server the DPoP proofs are for (htu). */
const RS_URL = 'http://rs.example/orders/42';
const READ_42: AuthorizeContext = { op: 'read', resource: 'db://orders/42' };

/** Polls until `check` holds (deadline in ms); returns the last value. */
async function until<T>(what: string, deadlineMs: number, check: () => Promise<T | undefined | null | false>, everyMs = 50): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function claimsOf(token: string): TokenClaims {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as TokenClaims;
}

function codeOf(d: Decision): string {
  return d.allow ? 'allow' : d.code;
}

describe.skipIf(unavailable)('the PEP against tokens the tvm plugin issues inside OpenBao', () => {
  let bao: Bao;
  let issuer: string;
  /** A non-root token that may issue (and fetch renewed) creds, as a workload holds. */
  let workload: string;
  const verifiers: Verifier[] = [];

  const verifier = (options: Partial<VerifierOptions> = {}): Verifier => {
    const v = createVerifier({ issuer, audience: AUDIENCE, statusPollMs: 200, ...options });
    verifiers.push(v);
    return v;
  };

  /** Creds through the HTTP API with the workload's token. */
  const creds = async (role: string, body: Record<string, unknown> = {}) => {
    const r = await bao.api('POST', `tvm/creds/${role}`, body, workload);
    expect(r.status, r.text).toBe(200);
    return { token: r.body.data!.token as string, jti: r.body.data!.jti as string, leaseId: r.body.lease_id as string };
  };

  const revoke = async (leaseId: string): Promise<number> => {
    expect((await bao.api('PUT', 'sys/leases/revoke', { lease_id: leaseId })).status).toBe(204);
    return Date.now();
  };

  /** How long after `since` the verifier first refuses the token as revoked (fails past the deadline). */
  const revokedWithin = async (v: Verifier, token: string, since: number, deadlineMs: number, context: () => AuthorizeContext = () => READ_42) => {
    const d = await until('the verifier to see the revocation', deadlineMs, async () => {
      const d = await v.authorize(token, context());
      return !d.allow && d.code === 'ERR_TOKEN_REVOKED' ? d : undefined;
    });
    expect(d).toMatchObject({ allow: false, code: 'ERR_TOKEN_REVOKED', status: 401 });
    const elapsed = Date.now() - since;
    expect(elapsed).toBeLessThan(deadlineMs);
    return elapsed;
  };

  beforeAll(async () => {
    bao = await startBaoDev();
    // registerPlugin passes --api-addr=<OpenBao's listen address>: the default issuer is reachable.
    await registerPlugin(bao);
    issuer = `${bao.address}/v1/tvm`;
    expect((await bao.api('POST', 'tvm/roles/orders', ORDERS)).status).toBe(204);
    expect((await bao.api('POST', 'tvm/roles/bound', BOUND)).status).toBe(204);
    expect((await bao.api('PUT', 'sys/policies/acl/vend', { policy: 'path "tvm/creds/*" { capabilities = ["read", "update"] }' })).status).toBe(204);
    const created = await bao.api('POST', 'auth/token/create', { policies: ['default', 'vend'] });
    workload = created.body.auth!.client_token as string;
  }, 120_000);

  afterAll(async () => {
    for (const v of verifiers) v.close();
    await bao?.stop();
  });

  it("issues under the mount's default issuer, OpenBao's own address, with a status list reference under it", async () => {
    const config = await bao.api('GET', 'tvm/config');
    expect(config.body.data).toMatchObject({ issuer });
    const discovery = (await bao.api('GET', 'tvm/.well-known/openid-configuration', undefined, null)).body;
    expect(discovery).toMatchObject({ issuer, jwks_uri: `${issuer}/.well-known/jwks.json` });
    const { token } = await creds('orders');
    const claims = claimsOf(token);
    expect(claims).toMatchObject({ iss: issuer, aud: AUDIENCE, client_id: 'orders' });
    expect(claims.status!.status_list.uri).toMatch(new RegExp(`^${issuer.replace(/[.]/g, '\\.')}/status/\\d+$`));
    expect(Number.isSafeInteger(claims.status!.status_list.idx)).toBe(true);
  });

  it('allows a read the token grants and refuses a write on a read-only resource with ERR_SCOPE', async () => {
    const v = verifier();
    const { token, jti } = await creds('orders');
    const read = await v.authorize(token, READ_42);
    expect(read).toMatchObject({ allow: true, claims: { jti, client_id: 'orders', iss: issuer } });
    const write = await v.authorize(token, { op: 'write', resource: 'db://orders/42' });
    expect(write).toMatchObject({ allow: false, code: 'ERR_SCOPE', status: 403 });
    expect(codeOf(await v.authorize(token, { op: 'write', resource: 'db://orders/outbox' }))).toBe('allow');
    expect(codeOf(await v.authorize(token, { op: 'read', resource: 'db://customers/1' }))).toBe('ERR_SCOPE');
    // The JWKS (once) and the list (at first use, then every poll) were fetched through OpenBao.
    expect(v.stats().jwksFetches).toBe(1);
    expect(v.stats().statusFetches).toBeGreaterThanOrEqual(1);
  });

  it('serves the signed status list through OpenBao raw: 200, application/statuslist+jwt, a JWT body, no ETag', async () => {
    const { token } = await creds('orders');
    const uri = claimsOf(token).status!.status_list.uri;
    const res = await fetch(uri, { headers: { accept: 'application/statuslist+jwt' } });
    const body = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/statuslist+jwt');
    // As OpenBao 2.7.2 delivers it: a content-length, cache-control no-store (OpenBao's, on every
    // response), and no ETag (a raw plugin response has no way to set one).
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(body)));
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('etag')).toBeNull();
    expect(body).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(decodeProtectedHeader(body)).toMatchObject({ typ: 'statuslist+jwt' });
    const { payload } = await jwtVerify(body, createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`)), { issuer, subject: uri, typ: 'statuslist+jwt' });
    expect(payload).toMatchObject({ status_list: { bits: 1, lst: expect.any(String) } });
    expect(payload.exp! - payload.iat!).toBe(payload.ttl);
    // Revalidation is not honoured: If-None-Match gets the whole list again.
    const again = await fetch(uri, { headers: { 'if-none-match': '"anything"' } });
    expect(again.status).toBe(200);
    expect(await again.text()).toMatch(/^eyJ/);
  });

  it('refuses a token with ERR_TOKEN_REVOKED within 2 s of sys/leases/revoke (polling the list through OpenBao)', async () => {
    const v = verifier();
    const { token, leaseId } = await creds('orders');
    expect(codeOf(await v.authorize(token, READ_42))).toBe('allow');
    // Another token, in the same list, stays valid.
    const other = await creds('orders');
    expect(codeOf(await v.authorize(other.token, READ_42))).toBe('allow');
    const since = await revoke(leaseId);
    const elapsed = await revokedWithin(v, token, since, 2000);
    expect(codeOf(await v.authorize(other.token, READ_42))).toBe('allow');
    console.log(`PEP inside OpenBao: revocation seen by polling after ${elapsed} ms`);
    await revoke(other.leaseId);
  });

  it('answers the push stream with the hello event alone and ends it (the plugin transport cannot keep it open)', async () => {
    const { version } = (await bao.api('GET', 'tvm/revocations', undefined, null)).body.data as { version: number };
    const started = Date.now();
    const res = await fetch(`${issuer}/status/events`, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    // The whole body arrives and the response ends: text() resolves at once, not at a keepalive or a timeout.
    const body = await res.text();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(body).toBe(`retry: 1000\nevent: hello\ndata: ${JSON.stringify({ version })}\n\n`);
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(body)));
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('still sees a revocation within 3 s with push: true (polling, and the reconnects\' hello)', async () => {
    const v = verifier({ push: true });
    const { token, leaseId } = await creds('orders');
    expect(codeOf(await v.authorize(token, READ_42))).toBe('allow');
    const since = await revoke(leaseId);
    const elapsed = await revokedWithin(v, token, since, 3000);
    console.log(`PEP inside OpenBao: revocation seen with push: true (and polling) after ${elapsed} ms`);
  });

  it('with polling off, push: true sees a revocation within 6 s through reconnects alone (each hello carries the version)', async () => {
    const seen = { events: 0, lists: 0 };
    const counting: FetchLike = (url, init) => {
      if (url.endsWith('/status/events')) seen.events++;
      else if (/\/status\/\d+$/.test(url)) seen.lists++;
      return fetch(url, init);
    };
    const v = verifier({ push: true, statusPollMs: 600_000, fetch: counting });
    const { token, leaseId } = await creds('orders');
    expect(codeOf(await v.authorize(token, READ_42))).toBe('allow');
    // A second connection means the first hello was read (its version is the one held) and the stream ended.
    await until('the push stream to reconnect', 5000, async () => seen.events >= 2);
    const listsBefore = seen.lists;
    const since = await revoke(leaseId);
    // The stream ends at once here, so the PEP reconnects after 1, 2, 4, then every 5 s (its backoff): within one wait.
    const elapsed = await revokedWithin(v, token, since, 6000);
    expect(seen.lists).toBeGreaterThan(listsBefore);
    console.log(`PEP inside OpenBao: revocation seen by push reconnects alone after ${elapsed} ms (${seen.events} connections to status/events)`);
  });

  it('binds a dpop role\'s tokens to the key named at issue: allows with a proof, ERR_BINDING without; renewal keeps cnf.jkt', async () => {
    const v = verifier();
    const prover = createDpopProver(generateDpopKey());
    const stranger = createDpopProver(generateDpopKey());
    const context = (token: string, p = prover): AuthorizeContext => ({
      ...READ_42,
      method: 'GET',
      url: RS_URL,
      scheme: 'DPoP',
      dpop: p.proof({ method: 'GET', url: RS_URL, accessToken: token }),
    });

    const unbound = await bao.api('POST', 'tvm/creds/bound', {}, workload);
    expect(unbound.status).toBe(400);
    expect(unbound.body.errors!.join(' ')).toContain('dpop_jwk');

    const { token, jti, leaseId } = await creds('bound', { dpop_jwk: prover.publicJwk });
    expect(claimsOf(token).cnf).toEqual({ jkt: prover.jkt });

    expect(await v.authorize(token, context(token))).toMatchObject({ allow: true, claims: { jti, cnf: { jkt: prover.jkt } } });
    const noProof = await v.authorize(token, { ...READ_42, method: 'GET', url: RS_URL, scheme: 'DPoP' });
    expect(noProof).toMatchObject({ allow: false, code: 'ERR_BINDING', status: 401 });
    expect(noProof.allow ? '' : noProof.wwwAuthenticate).toContain('error="invalid_dpop_proof"');
    expect(codeOf(await v.authorize(token, { ...READ_42, method: 'GET', url: RS_URL, scheme: 'Bearer' }))).toBe('ERR_BINDING');
    expect(codeOf(await v.authorize(token, READ_42))).toBe('ERR_BINDING');
    expect(codeOf(await v.authorize(token, context(token, stranger)))).toBe('ERR_BINDING');
    const once = context(token);
    expect(codeOf(await v.authorize(token, once))).toBe('allow');
    expect(codeOf(await v.authorize(token, once))).toBe('ERR_BINDING');

    // Renewal through the server's own lease API (by the workload), then the holder fetches the token it signed.
    const renewed = await bao.api('PUT', 'sys/leases/renew', { lease_id: leaseId, increment: '10m' }, workload);
    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.body.data).toMatchObject({ token_fetch: { path: 'tvm/creds/bound', jti } });
    expect(renewed.body.data).not.toHaveProperty('token');
    const fetched = await bao.api('PUT', 'tvm/creds/bound', { jti }, workload);
    expect(fetched.status, fetched.text).toBe(200);
    const second = fetched.body.data!.token as string;
    expect(second).not.toBe(token);
    expect(claimsOf(second)).toMatchObject({ jti, cnf: { jkt: prover.jkt }, status: claimsOf(token).status });
    expect(claimsOf(second).exp).toBeGreaterThan(claimsOf(token).exp);
    expect(codeOf(await v.authorize(second, context(second)))).toBe('allow');
    expect(codeOf(await v.authorize(second, { ...READ_42, method: 'GET', url: RS_URL, scheme: 'DPoP' }))).toBe('ERR_BINDING');
    // A proof made for the first token (ath) does not carry the renewed one.
    expect(codeOf(await v.authorize(second, context(token)))).toBe('ERR_BINDING');

    // Both tokens share the lease's status entry: revoking the lease refuses both.
    const since = await revoke(leaseId);
    await revokedWithin(v, second, since, 2000, () => context(second));
    expect(codeOf(await v.authorize(token, context(token)))).toBe('ERR_TOKEN_REVOKED');
  });
});
