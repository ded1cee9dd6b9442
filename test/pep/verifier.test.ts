// The PEP against real tokens from the dev server: every deny code, forged
// tokens, key rotation, the status list (poll, push, fail closed), DPoP
// binding and the usage events.
import { createSign, randomUUID } from 'node:crypto';
import { exportJWK, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { createDpopProver, createVerifier, generateDpopKey, type Decision, type UsageEvent, type Verifier } from '../../src/pep/index.ts';
import type { FetchLike } from '../../src/pep/fetch.ts';
import { keyPair } from '../keys.ts';

type Server = Awaited<ReturnType<typeof startServer>>;
let server: Server;
let issuer: string;
const verifiers: Verifier[] = [];

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': server.rootToken, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function creds(role: string, data?: Record<string, unknown>): Promise<{ token: string; lease: string; jti: string }> {
  const r = await api(data ? 'PUT' : 'GET', `tvm/creds/${role}`, data);
  if (r.status !== 200) throw new Error(`creds ${role}: ${r.status} ${JSON.stringify(r.body)}`);
  return { token: r.body.data.token, lease: r.body.lease_id, jti: r.body.data.jti };
}

function verifier(options: Partial<Parameters<typeof createVerifier>[0]> = {}): Verifier {
  const v = createVerifier({ issuer, audience: 'orders-api', statusPollMs: 200, ...options });
  verifiers.push(v);
  return v;
}

function denied(d: Decision): { code: string; status: number } {
  if (d.allow) throw new Error('expected a deny');
  return { code: d.code, status: d.status };
}

const READ = { op: 'read' as const, resource: 'db://orders/42', remoteAddr: '127.0.0.1' };

/** Polls until fn holds (ms deadline). */
async function until(deadlineMs: number, fn: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await fn()) return performance.now() - start;
    if (performance.now() - start > deadlineMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Signs claims with a key and header of the test's choosing (for forgeries). */
function forge(header: Record<string, unknown>, claims: Record<string, unknown>, sign: (input: string) => string): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part(header)}.${part(claims)}`;
  return `${input}.${sign(input)}`;
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  issuer = `${server.address}/v1/tvm`;
  const role = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m', max_ttl: '1h', audiences: ['orders-api'] };
  expect((await api('POST', 'tvm/roles/orders', role)).status).toBe(204);
  expect((await api('POST', 'tvm/roles/deep', { ...role, read: ['s3://logs/app/**'] })).status).toBe(204);
  expect((await api('POST', 'tvm/roles/local', { ...role, bound_cidrs: ['127.0.0.0/8'] })).status).toBe(204);
  expect((await api('POST', 'tvm/roles/bound', { ...role, binding: 'dpop' })).status).toBe(204);
});

afterAll(async () => {
  for (const v of verifiers) v.close();
  await server?.close();
});

describe('createVerifier', () => {
  it('refuses a configuration without issuer or audience, naming the option', () => {
    expect(() => createVerifier({ issuer: 'not a url', audience: 'a' })).toThrow(/^issuer:/);
    expect(() => createVerifier({ issuer: 'https://x', audience: [] })).toThrow(/^audience:/);
    expect(() => createVerifier({ issuer: 'https://x', audience: 'a', clockToleranceS: 3600 })).toThrow(/^clockToleranceS:/);
  });

  it('throws for a bad op or resource (a bug in the caller), never answering allow', async () => {
    const v = verifier();
    const { token } = await creds('orders');
    await expect(v.authorize(token, { op: 'delete' as never, resource: 'db://orders/42' })).rejects.toThrow(/op must be/);
    await expect(v.authorize(token, { op: 'read', resource: '' })).rejects.toThrow(/resource must be/);
    await expect(v.authorize(token, { op: 'read', resource: 'db://orders/4 2' })).rejects.toThrow(/resource must be/);
  });
});

describe('allow and the scope', () => {
  it('allows exactly what the scope grants: one segment for *, many for **, read and write apart', async () => {
    const v = verifier();
    const { token, jti } = await creds('orders');
    const allow = await v.authorize(token, READ);
    expect(allow.allow).toBe(true);
    if (allow.allow) expect(allow.claims).toMatchObject({ jti, client_id: 'orders', iss: issuer });
    expect((await v.authorize(token, { op: 'write', resource: 'db://orders/outbox' })).allow).toBe(true);
    expect(denied(await v.authorize(token, { op: 'write', resource: 'db://orders/42' }))).toEqual({ code: 'ERR_SCOPE', status: 403 });
    expect(denied(await v.authorize(token, { op: 'read', resource: 'db://orders/42/items' })).code).toBe('ERR_SCOPE');
    expect(denied(await v.authorize(token, { op: 'write', resource: 'db://orders/outbox/x' })).code).toBe('ERR_SCOPE');
    const deep = await creds('deep');
    expect((await v.authorize(deep.token, { op: 'read', resource: 's3://logs/app/2026/12/05.log' })).allow).toBe(true);
    expect(denied(await v.authorize(deep.token, { op: 'read', resource: 's3://logs/other' })).code).toBe('ERR_SCOPE');
  });

  it('answers 403 insufficient_scope naming the op and resource needed', async () => {
    const v = verifier();
    const { token } = await creds('orders');
    const d = await v.authorize(token, { op: 'write', resource: 'db://orders/42' });
    expect(d.allow).toBe(false);
    if (!d.allow) {
      expect(d.wwwAuthenticate).toMatch(/^Bearer realm="tvm", error="insufficient_scope"/);
      expect(d.wwwAuthenticate).toContain('scope="write:db://orders/42"');
      expect(d.wwwAuthenticate).not.toContain(token);
    }
  });

  it('refuses a missing token with a bare challenge (RFC 6750 §3.1)', async () => {
    const d = await verifier().authorize(undefined, READ);
    expect(denied(d)).toEqual({ code: 'ERR_TOKEN_MISSING', status: 401 });
    if (!d.allow) expect(d.wwwAuthenticate).toMatch(/^Bearer realm="tvm", DPoP realm="tvm", algs="/);
  });
});

describe('the claims', () => {
  it('refuses an expired token and one not yet valid, within the clock skew', async () => {
    const { token } = await creds('orders');
    const { exp, iat } = decodeJwt(token) as { exp: number; iat: number };
    // These verifiers' clocks are minutes off the issuer's, so its fresh status list looks stale to them: they fail open.
    const at = (ms: number, over: Record<string, unknown> = {}) => verifier({ clock: () => ms, failClosed: false, ...over });
    expect((await at((exp + 29) * 1000).authorize(token, READ)).allow).toBe(true);
    expect(denied(await at((exp + 31) * 1000).authorize(token, READ))).toEqual({ code: 'ERR_TOKEN_EXPIRED', status: 401 });
    // Failing closed, the skewed clock's stale list refuses: never an allow it cannot vouch for.
    expect(denied(await verifier({ clock: () => (exp + 29) * 1000 }).authorize(token, READ)).code).toBe('ERR_STATUS_UNAVAILABLE');
    expect(denied(await at((iat - 31) * 1000).authorize(token, READ)).code).toBe('ERR_TOKEN_NOT_YET_VALID');
    expect(denied(await at((iat - 200) * 1000, { clockToleranceS: 0 }).authorize(token, READ)).code).toBe('ERR_TOKEN_NOT_YET_VALID');
  });

  it('refuses another issuer and another audience', async () => {
    const { token } = await creds('orders');
    const other = verifier({ issuer: 'http://127.0.0.1:1/v1/tvm', jwksUri: `${issuer}/.well-known/jwks.json` });
    expect(denied(await other.authorize(token, READ)).code).toBe('ERR_TOKEN_ISSUER');
    const d = await verifier({ audience: 'billing-api' }).authorize(token, READ);
    expect(denied(d)).toEqual({ code: 'ERR_TOKEN_AUDIENCE', status: 401 });
    if (!d.allow) expect(d.message).toContain('billing-api');
    expect((await verifier({ audience: ['billing-api', 'orders-api'] }).authorize(token, READ)).allow).toBe(true);
  });
});

describe('forged tokens', () => {
  let claims: Record<string, unknown>;
  let kid: string;
  beforeAll(async () => {
    const { token } = await creds('orders');
    claims = decodeJwt(token) as Record<string, unknown>;
    kid = decodeProtectedHeader(token).kid!;
  });

  it('refuses alg none, HMAC with the public key, a foreign key with our kid, and keys in the header', async () => {
    const v = verifier();
    const none = forge({ alg: 'none', typ: 'at+jwt', kid }, claims, () => '');
    expect(denied(await v.authorize(none + 'x', READ)).code).toMatch(/ERR_TOKEN_(ALG|MALFORMED)/);
    const noneDot = forge({ alg: 'none', typ: 'at+jwt', kid }, claims, () => 'AA');
    expect(denied(await v.authorize(noneDot, READ)).code).toBe('ERR_TOKEN_ALG');

    const jwks = (await (await fetch(`${issuer}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, unknown>> };
    const publicJwkText = JSON.stringify(jwks.keys[0]);
    const { createHmac } = await import('node:crypto');
    const hs = forge({ alg: 'HS256', typ: 'at+jwt', kid }, claims, (input) => createHmac('sha256', publicJwkText).update(input).digest('base64url'));
    expect(denied(await v.authorize(hs, READ)).code).toBe('ERR_TOKEN_ALG');

    const foreign = keyPair('ES256');
    const sign = (input: string) => createSign('sha256').update(input).sign({ key: foreign.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    expect(denied(await v.authorize(forge({ alg: 'ES256', typ: 'at+jwt', kid }, claims, sign), READ))).toEqual({ code: 'ERR_TOKEN_SIGNATURE', status: 401 });

    const foreignJwk = await exportJWK(foreign.publicKey);
    for (const header of [
      { alg: 'ES256', typ: 'at+jwt', kid, jwk: foreignJwk },
      { alg: 'ES256', typ: 'at+jwt', kid, jku: 'http://127.0.0.1:1/jwks.json' },
      { alg: 'ES256', typ: 'at+jwt', kid, x5u: 'http://127.0.0.1:1/cert.pem' },
    ]) {
      expect(denied(await v.authorize(forge(header, claims, sign), READ)).code).toBe('ERR_TOKEN_MALFORMED');
    }
    // Another algorithm than the JWKS publishes, even with a key of its own.
    expect(denied(await v.authorize(forge({ alg: 'RS256', typ: 'at+jwt', kid }, claims, () => 'AA'), READ)).code).toBe('ERR_TOKEN_ALG');
  });

  it('refuses another typ, garbage, and a token that is too long, without echoing it', async () => {
    const v = verifier();
    const { token } = await creds('orders');
    const [, payload, sig] = token.split('.');
    const jwtTyp = `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid })).toString('base64url')}.${payload}.${sig}`;
    expect(denied(await v.authorize(jwtTyp, READ)).code).toBe('ERR_TOKEN_TYPE');
    for (const junk of ['a.b', 'not-a-jwt', '...', '!!.!!.!!', 'e30.e30.e30']) {
      const d = await v.authorize(junk, READ);
      expect(d.allow).toBe(false);
      if (!d.allow) expect(d.code).toMatch(/ERR_TOKEN_(MALFORMED|TYPE)/);
    }
    const long = 'a'.repeat(20_000);
    const d = await v.authorize(long, READ);
    expect(denied(d).code).toBe('ERR_TOKEN_MALFORMED');
    if (!d.allow) expect(d.message).not.toContain('aaaa');
  });
});

describe('key rotation and the JWKS cache', () => {
  it('keeps verifying a token of the retired key while it is published; a new kid costs one refetch', async () => {
    const v = verifier({ jwksCooldownMs: 100 });
    const old = await creds('orders');
    expect((await v.authorize(old.token, READ)).allow).toBe(true);
    expect(v.stats().jwksFetches).toBe(1);
    expect((await api('POST', 'tvm/keys/rotate')).status).toBe(200);
    const fresh = await creds('orders');
    expect(decodeProtectedHeader(fresh.token).kid).not.toBe(decodeProtectedHeader(old.token).kid);
    await new Promise((r) => setTimeout(r, 150)); // past the cooldown
    expect((await v.authorize(fresh.token, READ)).allow).toBe(true);
    expect(v.stats().jwksFetches).toBe(2);
    const again = verifier();
    expect((await again.authorize(old.token, READ)).allow).toBe(true);
  });

  it('refetches at most once per cooldown under a burst of 1,000 tokens with unknown kids', async () => {
    const v = verifier();
    const { token } = await creds('orders');
    expect((await v.authorize(token, READ)).allow).toBe(true);
    const claims = decodeJwt(token);
    const foreign = keyPair('ES256');
    const tokens = await Promise.all(
      Array.from({ length: 1000 }, () =>
        new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: randomUUID() }).sign(foreign.privateKey),
      ),
    );
    const before = v.stats().jwksFetches;
    const decisions = await Promise.all(tokens.map((t) => v.authorize(t, READ)));
    expect(decisions.every((d) => !d.allow && d.code === 'ERR_KEY_UNKNOWN')).toBe(true);
    expect(v.stats().jwksFetches - before).toBeLessThanOrEqual(1);
    // Sequentially too: the cooldown holds.
    for (const t of tokens.slice(0, 50)) await v.authorize(t, READ);
    expect(v.stats().jwksFetches - before).toBeLessThanOrEqual(1);
  });
});

describe('revocation through the status list', () => {
  it('refuses a revoked token by polling the signed list', async () => {
    const v = verifier({ statusPollMs: 100 });
    const { token, lease } = await creds('orders');
    expect((await v.authorize(token, READ)).allow).toBe(true);
    expect((await api('PUT', 'sys/leases/revoke', { lease_id: lease })).status).toBe(204);
    await until(3000, async () => !(await v.authorize(token, READ)).allow);
    expect(denied(await v.authorize(token, READ))).toEqual({ code: 'ERR_TOKEN_REVOKED', status: 401 });
    // The other tokens of the same list stay good.
    const other = await creds('orders');
    expect((await v.authorize(other.token, READ)).allow).toBe(true);
  });

  it('refuses at once with the push stream, even with polling slowed to a minute', async () => {
    const v = verifier({ statusPollMs: 60_000, push: true });
    const { token, lease } = await creds('orders');
    expect((await v.authorize(token, READ)).allow).toBe(true);
    await new Promise((r) => setTimeout(r, 200)); // the stream is open
    expect((await api('PUT', 'sys/leases/revoke', { lease_id: lease })).status).toBe(204);
    const ms = await until(2000, async () => !(await v.authorize(token, READ)).allow);
    expect(ms).toBeLessThan(1000);
    expect(denied(await v.authorize(token, READ)).code).toBe('ERR_TOKEN_REVOKED');
  });

  it('100 revocations while the PEP verifies under load: every one reaches it, within a second by push', async () => {
    const results: Record<string, number[]> = {};
    for (const push of [false, true]) {
      const v = verifier({ statusPollMs: push ? 60_000 : 300, push });
      const tokens: Array<{ token: string; lease: string }> = [];
      for (let i = 0; i < 100; i++) tokens.push(await creds('orders'));
      for (const t of tokens) expect((await v.authorize(t.token, READ)).allow).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      const revokedAt: number[] = [];
      const delays: number[] = [];
      let running = true;
      const load = (async () => {
        while (running) {
          for (let i = 0; i < tokens.length; i++) {
            const d = await v.authorize(tokens[i].token, READ);
            if (!d.allow && revokedAt[i] !== undefined && delays[i] === undefined) {
              expect(d.code).toBe('ERR_TOKEN_REVOKED');
              delays[i] = performance.now() - revokedAt[i];
            }
          }
          await new Promise((r) => setImmediate(r));
        }
      })();
      for (let i = 0; i < tokens.length; i++) {
        expect((await api('PUT', 'sys/leases/revoke', { lease_id: tokens[i].lease })).status).toBe(204);
        revokedAt[i] = performance.now();
      }
      await until(5000, async () => delays.filter((d) => d !== undefined).length === tokens.length);
      running = false;
      await load;
      results[push ? 'push' : 'poll'] = delays.sort((a, b) => a - b);
    }
    const p = (d: number[], q: number) => d[Math.ceil(q * d.length) - 1];
    console.log(
      `revoke -> refusal over 100 revocations: poll (300 ms) p50 ${p(results.poll, 0.5).toFixed(1)} ms p99 ${p(results.poll, 0.99).toFixed(1)} ms; push p50 ${p(results.push, 0.5).toFixed(1)} ms p99 ${p(results.push, 0.99).toFixed(1)} ms`,
    );
    expect(p(results.push, 0.99)).toBeLessThan(1000);
    expect(p(results.poll, 0.99)).toBeLessThan(300 + 1000);
  }, 30_000);

  it('revalidates with ETags: an unchanged list costs a 304', async () => {
    const { token } = await creds('orders');
    const uri = (decodeJwt(token) as { status: { status_list: { uri: string } } }).status.status_list.uri;
    const statuses: number[] = [];
    const recording: FetchLike = async (url, init) => {
      const r = await fetch(url, init);
      if (url === uri) statuses.push(r.status);
      return r;
    };
    const v = verifier({ fetch: recording, statusPollMs: 50 });
    expect((await v.authorize(token, READ)).allow).toBe(true);
    await until(2000, async () => statuses.includes(304));
    expect(statuses[0]).toBe(200);
  });

  it('fails closed once the list cannot be refreshed past its exp, and open only when asked', async () => {
    const { token } = await creds('orders');
    let up = true;
    let now = Date.now();
    const flaky: FetchLike = async (url, init) => {
      if (!up && url.includes('/status/')) throw new Error('connection refused');
      return fetch(url, init);
    };
    const closed = verifier({ fetch: flaky, clock: () => now, statusPollMs: 50 });
    const open = verifier({ fetch: flaky, clock: () => now, statusPollMs: 50, failClosed: false });
    expect((await closed.authorize(token, READ)).allow).toBe(true);
    expect((await open.authorize(token, READ)).allow).toBe(true);
    up = false;
    now += 30_000; // within the list's ttl (60 s): still trusted
    await new Promise((r) => setTimeout(r, 120));
    expect((await closed.authorize(token, READ)).allow).toBe(true);
    now += 70_000; // past it, and past the 30 s clock skew allowed on it
    await new Promise((r) => setTimeout(r, 120));
    const d = await closed.authorize(token, READ);
    expect(denied(d)).toEqual({ code: 'ERR_STATUS_UNAVAILABLE', status: 503 });
    expect((await open.authorize(token, READ)).allow).toBe(true);
    up = true;
    now = Date.now();
    await until(2000, async () => (await closed.authorize(token, READ)).allow);
  });

  it('refuses a token whose status list is not under the issuer', async () => {
    const v = verifier({ statusListPrefix: 'https://elsewhere.example/status/' });
    const { token } = await creds('orders');
    expect(denied(await v.authorize(token, READ)).code).toBe('ERR_TOKEN_STATUS');
  });
});

describe('context at use', () => {
  it('checks bound CIDRs against the request address, not only at issue', async () => {
    const v = verifier();
    const { token } = await creds('local');
    expect((await v.authorize(token, { ...READ, remoteAddr: '127.0.0.1' })).allow).toBe(true);
    expect((await v.authorize(token, { ...READ, remoteAddr: '::ffff:127.0.0.9' })).allow).toBe(true);
    expect(denied(await v.authorize(token, { ...READ, remoteAddr: '192.0.2.1' }))).toEqual({ code: 'ERR_CONTEXT', status: 403 });
    expect(denied(await v.authorize(token, { op: 'read', resource: 'db://orders/42' })).code).toBe('ERR_CONTEXT');
  });

  it('checks allowed hours in the role time zone at use; the engine refuses to issue outside them', async () => {
    const now = new Date();
    const minute = now.getUTCHours() * 60 + now.getUTCMinutes();
    const hhmm = (m: number) => `${String(Math.floor(((m + 1440) % 1440) / 60)).padStart(2, '0')}:${String((m + 1440) % 60).padStart(2, '0')}`;
    // Open from a minute ago for three minutes, in UTC.
    const window = `${hhmm(minute - 1)}-${hhmm(minute + 2)}`;
    expect((await api('POST', 'tvm/roles/window', { read: ['db://orders/*'], audiences: ['orders-api'], allowed_hours: [window], time_zone: 'UTC' })).status).toBe(204);
    const { token } = await creds('window');
    expect(decodeJwt(token)).toMatchObject({ allowed_hours: [window], time_zone: 'UTC' });
    const t0 = Date.now();
    expect((await verifier({ clock: () => t0 }).authorize(token, READ)).allow).toBe(true);
    // Minutes ahead of the issuer, its status list looks stale: this verifier fails open to reach the hours check.
    const later = verifier({ clock: () => t0 + 4 * 60_000, failClosed: false });
    const d = await later.authorize(token, READ);
    expect(denied(d)).toEqual({ code: 'ERR_CONTEXT', status: 403 });
    if (!d.allow) expect(d.message).toContain('allowed hours');

    const closedWindow = `${hhmm(minute + 120)}-${hhmm(minute + 180)}`;
    expect((await api('POST', 'tvm/roles/night', { read: ['db://orders/*'], allowed_hours: [closedWindow] })).status).toBe(204);
    const refused = await api('GET', 'tvm/creds/night');
    expect(refused.status).toBe(403);
    expect(JSON.stringify(refused.body)).toContain('allowed_hours');
  });

  it('validates allowed_hours and time_zone at role write, naming the field', async () => {
    for (const [body, field] of [
      [{ allowed_hours: ['9-17'] }, 'allowed_hours[0]'],
      [{ allowed_hours: ['Mon-Fry 09:00-17:00'] }, 'allowed_hours[0]'],
      [{ allowed_hours: ['09:00-09:00'] }, 'allowed_hours[0]'],
      [{ allowed_hours: ['25:00-26:00'] }, 'allowed_hours[0]'],
      [{ time_zone: 'Mars/Olympus' }, 'time_zone'],
      [{ binding: 'mtls' }, 'binding'],
    ] as const) {
      const r = await api('POST', 'tvm/roles/badctx', { read: ['db://x/*'], ...body });
      expect(r.status).toBe(400);
      expect(r.body.errors[0]).toContain(field);
    }
    expect((await api('GET', 'tvm/roles/badctx')).status).toBe(404);
  });
});

describe('sender-constrained tokens (DPoP)', () => {
  const url = 'https://orders.example/orders/42';
  const key = generateDpopKey('ES256');
  const prover = createDpopProver(key);

  it('binds the token to the key the creds request names (cnf.jkt), and the role requires it', async () => {
    const missing = await api('GET', 'tvm/creds/bound');
    expect(missing.status).toBe(400);
    expect(missing.body.errors[0]).toContain('dpop_jwk');
    const priv = await api('PUT', 'tvm/creds/bound', { dpop_jwk: { ...prover.publicJwk, d: 'AAAA' } });
    expect(priv.status).toBe(400);
    expect(JSON.stringify(priv.body)).not.toContain('AAAA');
    const { token } = await creds('bound', { dpop_jwk: prover.publicJwk });
    expect(decodeJwt(token).cnf).toEqual({ jkt: prover.jkt });
  });

  it('allows with a fresh proof; refuses a missing, replayed, mismatched, or misdirected proof', async () => {
    const v = verifier();
    const { token } = await creds('bound', { dpop_jwk: prover.publicJwk });
    const ctx = (dpop?: string, over: Record<string, unknown> = {}) => ({ ...READ, method: 'GET', url, scheme: 'DPoP' as const, ...(dpop ? { dpop } : {}), ...over });
    const proof = prover.proof({ method: 'GET', url, accessToken: token });
    expect((await v.authorize(token, ctx(proof))).allow).toBe(true);
    const replayed = await v.authorize(token, ctx(proof));
    expect(denied(replayed)).toEqual({ code: 'ERR_BINDING', status: 401 });
    if (!replayed.allow) expect(replayed.wwwAuthenticate).toMatch(/^DPoP realm="tvm", error="invalid_dpop_proof"/);
    expect(denied(await v.authorize(token, ctx())).code).toBe('ERR_BINDING');
    expect(denied(await v.authorize(token, { ...ctx(prover.proof({ method: 'GET', url, accessToken: token })), scheme: 'Bearer' })).code).toBe('ERR_BINDING');
    const other = createDpopProver(generateDpopKey('ES256'));
    expect(denied(await v.authorize(token, ctx(other.proof({ method: 'GET', url, accessToken: token })))).code).toBe('ERR_BINDING');
    expect(denied(await v.authorize(token, ctx(prover.proof({ method: 'GET', url: 'https://orders.example/orders/43', accessToken: token })))).code).toBe('ERR_BINDING');
    expect(denied(await v.authorize(token, ctx(prover.proof({ method: 'POST', url, accessToken: token })))).code).toBe('ERR_BINDING');
    expect(denied(await v.authorize(token, ctx(prover.proof({ method: 'GET', url })))).code).toBe('ERR_BINDING');
    // A bound token is refused with a proof, yet outside its scope: binding first, then scope.
    expect(denied(await v.authorize(token, { ...ctx(prover.proof({ method: 'GET', url, accessToken: token })), op: 'write' })).code).toBe('ERR_SCOPE');
  });

  it('keeps the binding across renewal; an unbound token may not come with the DPoP scheme', async () => {
    const v = verifier();
    const { lease, jti } = await creds('bound', { dpop_jwk: prover.publicJwk });
    expect((await api('PUT', 'sys/leases/renew', { lease_id: lease })).status).toBe(200);
    const renewed = await api('PUT', 'tvm/creds/bound', { jti });
    expect(renewed.status).toBe(200);
    const token = renewed.body.data.token as string;
    expect(decodeJwt(token).cnf).toEqual({ jkt: prover.jkt });
    expect((await v.authorize(token, { ...READ, method: 'GET', url, scheme: 'DPoP', dpop: prover.proof({ method: 'GET', url, accessToken: token }) })).allow).toBe(true);
    const plain = await creds('orders');
    expect(denied(await v.authorize(plain.token, { ...READ, scheme: 'DPoP' })).code).toBe('ERR_BINDING');
    expect(denied(await verifier({ requireBinding: true }).authorize(plain.token, READ)).code).toBe('ERR_BINDING');
  });
});

describe('usage events', () => {
  it('emits one event per decision, with the jti, role, op, resource and code, never the token', async () => {
    const events: UsageEvent[] = [];
    const v = verifier({ sink: (e) => events.push(e) });
    const { token, jti } = await creds('orders');
    await v.authorize(token, READ);
    await v.authorize(token, { op: 'write', resource: 'db://orders/42', remoteAddr: '127.0.0.1', method: 'PUT', url: 'http://rs/orders/42?secret=1' });
    await v.authorize(undefined, READ);
    expect(events).toHaveLength(3);
    expect(events[0]).toMatchObject({ decision: 'allow', jti, role: 'orders', op: 'read', resource: 'db://orders/42', remote_addr: '127.0.0.1' });
    expect(events[1]).toMatchObject({ decision: 'deny', code: 'ERR_SCOPE', jti, op: 'write', method: 'PUT', url: 'http://rs/orders/42' });
    expect(events[2]).toMatchObject({ decision: 'deny', code: 'ERR_TOKEN_MISSING' });
    expect(JSON.stringify(events)).not.toContain(token);
  });

  it('a throwing sink changes no decision', async () => {
    const v = verifier({ sink: () => { throw new Error('sink down'); } });
    const { token } = await creds('orders');
    expect((await v.authorize(token, READ)).allow).toBe(true);
  });
});

describe('what a review found, kept found', () => {
  it('requires https for the issuer and the JWKS, except on loopback or when allowed', () => {
    expect(() => createVerifier({ issuer: 'http://vault.example/v1/tvm', audience: 'a' })).toThrow(/^issuer: must be https/);
    expect(() => createVerifier({ issuer: 'https://vault.example/v1/tvm', jwksUri: 'http://keys.example/jwks', audience: 'a' })).toThrow(/^jwksUri: must be https/);
    verifiers.push(createVerifier({ issuer: 'http://vault.example/v1/tvm', audience: 'a', allowInsecureHttp: true }));
    verifiers.push(createVerifier({ issuer: 'http://[::1]:8200/v1/tvm', audience: 'a' }));
  });

  it('stops trusting a key the issuer no longer publishes, for remembered tokens too', async () => {
    const { token } = await creds('orders');
    let empty = false;
    const withdrawing: FetchLike = async (url, init) =>
      empty && url.endsWith('/jwks.json') ? new Response('{"keys":[]}', { status: 200, headers: { 'content-type': 'application/json' } }) : fetch(url, init);
    const v = verifier({ fetch: withdrawing, jwksMaxAgeMs: 50, jwksCooldownMs: 50 });
    expect((await v.authorize(token, READ)).allow).toBe(true);
    empty = true;
    await new Promise((r) => setTimeout(r, 80));
    await v.authorize(token, READ); // past max age: fetches the set again in the background
    await until(2000, async () => !(await v.authorize(token, READ)).allow);
    expect(denied(await v.authorize(token, READ)).code).toBe('ERR_KEY_UNKNOWN');
  });

  it("one key's flood of proofs fills only its own share of the replay cache", async () => {
    const v = verifier({ dpopProofsPerKey: 3 });
    const url = 'https://orders.example/orders/1';
    const flooder = createDpopProver(generateDpopKey());
    const victim = createDpopProver(generateDpopKey());
    const issued = await api('PUT', 'tvm/creds/bound', { dpop_jwk: flooder.publicJwk });
    if (!issued.body?.data) throw new Error(JSON.stringify(issued));
    const bad = issued.body.data.token as string;
    const good = (await api('PUT', 'tvm/creds/bound', { dpop_jwk: victim.publicJwk })).body.data.token as string;
    const ask = (token: string, p: typeof flooder) =>
      v.authorize(token, { ...READ, method: 'GET', url, scheme: 'DPoP', dpop: p.proof({ method: 'GET', url, accessToken: token }) });
    for (let i = 0; i < 3; i++) expect((await ask(bad, flooder)).allow).toBe(true);
    const refused = await ask(bad, flooder);
    expect(denied(refused).code).toBe('ERR_BINDING');
    if (!refused.allow) expect(refused.message).toContain('full for this key');
    expect((await ask(good, victim)).allow).toBe(true);
  });

  it('refuses a resource with dot segments or encoded separators, which a wildcard would match', async () => {
    const v = verifier();
    const { token } = await creds('deep');
    for (const resource of ['s3://logs/app/../../secrets/x', 's3://logs/app/./x', 's3://logs/app/a%2F..%2Fb', 's3://logs/app/a\\b', 's3://logs/app/..']) {
      expect(denied(await v.authorize(token, { op: 'read', resource })).code).toBe('ERR_SCOPE');
    }
    expect((await v.authorize(token, { op: 'read', resource: 's3://logs/app/.hidden/x' })).allow).toBe(true);
  });

  it('keeps lease_id for the server: a role may not set it in extra_claims', async () => {
    const r = await api('POST', 'tvm/roles/forged', { read: ['db://x/*'], extra_claims: { lease_id: 'tvm/creds/other/x' } });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toContain('extra_claims.lease_id');
  });

  it('reads no more than 1 MiB of a document, chunked or not, and follows no redirect', async () => {
    const { createServer } = await import('node:http');
    const big = createServer((req, res) => {
      if (req.url === '/redirect/.well-known/jwks.json') {
        res.writeHead(302, { location: `${issuer}/.well-known/jwks.json` }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 32);
      let sent = 0;
      const pump = () => {
        while (sent < 64 && res.write(chunk)) sent++;
        if (sent < 64) res.once('drain', pump);
        else res.end('{}');
      };
      pump();
    });
    await new Promise<void>((r) => big.listen(0, '127.0.0.1', () => r()));
    const port = (big.address() as { port: number }).port;
    try {
      const { token } = await creds('orders');
      const huge = verifier({ jwksUri: `http://127.0.0.1:${port}/big/.well-known/jwks.json` });
      const d = await huge.authorize(token, READ);
      expect(denied(d)).toEqual({ code: 'ERR_STATUS_UNAVAILABLE', status: 503 });
      if (!d.allow) expect(d.message).toContain('more than 1048576 bytes');
      const moved = verifier({ jwksUri: `http://127.0.0.1:${port}/redirect/.well-known/jwks.json` });
      expect(denied(await moved.authorize(token, READ)).code).toBe('ERR_STATUS_UNAVAILABLE');
    } finally {
      big.close();
    }
  });

  it('backs off from a push stream that ends at once, however small a retry it asks for', async () => {
    const { createServer } = await import('node:http');
    let connections = 0;
    const stream = createServer((_req, res) => {
      connections++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('retry: 0\nevent: hello\ndata: {"version":1}\n\n');
    });
    await new Promise<void>((r) => stream.listen(0, '127.0.0.1', () => r()));
    try {
      verifier({ push: `http://127.0.0.1:${(stream.address() as { port: number }).port}/events` });
      await new Promise((r) => setTimeout(r, 3500));
      // At once, then after 1 s and 2 s: three, never hundreds.
      expect(connections).toBeGreaterThanOrEqual(2);
      expect(connections).toBeLessThanOrEqual(4);
    } finally {
      stream.closeAllConnections();
      stream.close();
    }
  });

  it('records a malformed request as a usage event too', async () => {
    const { createServer } = await import('node:http');
    const { protect } = await import('../../src/pep/index.ts');
    const events: UsageEvent[] = [];
    const v = verifier({ sink: (e) => events.push(e) });
    const rs = createServer(protect(v, { resource: 'db://orders/1' }, (_req, res) => void res.end('ok')));
    await new Promise<void>((r) => rs.listen(0, '127.0.0.1', () => r()));
    try {
      const { token } = await creds('orders');
      const r = await fetch(`http://127.0.0.1:${(rs.address() as { port: number }).port}/orders/1`, { headers: [['authorization', `Bearer ${token}`], ['authorization', `Bearer ${token}`]] });
      expect(r.status).toBe(401);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ decision: 'deny', code: 'ERR_TOKEN_MALFORMED', op: 'read', resource: 'db://orders/1' });
      expect(JSON.stringify(events)).not.toContain(token);
    } finally {
      rs.close();
    }
  });
});
