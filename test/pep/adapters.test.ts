// The HTTP adapters of the policy enforcement point: credentials extraction,
// URL building and error words as units, then a real node:http server, a real
// Express 5 app and a real Fastify 5 app on 127.0.0.1 driven with fetch (and
// node:http for repeated headers), against a fake Authorizer that decides by
// the token's text and records the context it was asked in. Every test token
// holds "sekr1t", which no response may echo.
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expressPep, type TvmRequest } from '../../src/pep/express.ts';
import { fastifyPep } from '../../src/pep/fastify.ts';
import { defaultOp, errorWord, extractCredentials, protect, requestUrl, type UrlOptions } from '../../src/pep/http.ts';
import type { AuthorizeContext, Authorizer, Decision, Deny, TokenClaims } from '../../src/pep/types.ts';

const CLAIMS: TokenClaims = {
  iss: 'https://tvm.example',
  sub: 'orders-service',
  aud: 'db',
  exp: 2_000_000_000,
  iat: 1_700_000_000,
  jti: 'jti-1',
  client_id: 'orders',
  scope: 'read:db://orders/*',
};
const PROOF = 'eyJhbGciOiJFUzI1NiJ9.eyJodG0iOiJHRVQifQ.c2lnbmF0dXJl';

interface Call {
  token: string | undefined;
  context: AuthorizeContext;
}

const calls: Call[] = [];

const fake: Authorizer = {
  async authorize(token, context): Promise<Decision> {
    calls.push({ token, context });
    const deny = (d: Omit<Deny, 'allow'>): Deny => ({ allow: false, ...d });
    if (token === undefined) {
      return deny({ code: 'ERR_TOKEN_MISSING', status: 401, message: 'no access token', wwwAuthenticate: 'Bearer realm="tvm"' });
    }
    if (token.startsWith('good')) return { allow: true, claims: CLAIMS };
    if (token.startsWith('scope')) {
      return deny({
        code: 'ERR_SCOPE',
        status: 403,
        message: 'the token does not grant write on db://x',
        wwwAuthenticate: 'Bearer error="insufficient_scope", scope="write:db://x"',
      });
    }
    if (token.startsWith('down')) {
      return deny({ code: 'ERR_STATUS_UNAVAILABLE', status: 503, message: 'status list unavailable', wwwAuthenticate: 'Bearer realm="tvm"' });
    }
    if (token.startsWith('boom')) throw new Error(`authorizer exploded on ${token}`);
    return deny({
      code: 'ERR_TOKEN_SIGNATURE',
      status: 401,
      message: 'the signature does not verify',
      wwwAuthenticate: 'Bearer error="invalid_token", error_description="the signature does not verify"',
    });
  },
};

type Kind = 'node:http' | 'express' | 'fastify';

interface Running {
  base: string;
  close: () => Promise<void>;
}

async function listen(server: http.Server): Promise<Running> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

// Every server: /api/orders/<id> (op from the method, resource db://orders/<id>)
// and /api/search (always read, whatever the method); the handler answers the claims.
async function start(kind: Kind, url: UrlOptions = {}): Promise<Running> {
  if (kind === 'node:http') {
    const orders = protect(fake, { ...url, resource: (req) => `db://orders/${pathOf(req).split('/')[3]}` }, (_req, res, allow) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: allow.claims.sub }));
    });
    const search = protect(fake, { ...url, op: () => 'read', resource: 'db://search' }, (_req, res, allow) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: allow.claims.sub }));
    });
    return listen(http.createServer((req, res) => (pathOf(req).startsWith('/api/search') ? search : orders)(req, res)));
  }
  if (kind === 'express') {
    const app = express();
    const router = express.Router();
    router.all('/orders/:id', expressPep(fake, { ...url, resource: (req) => `db://orders/${req.params.id}` }), (req, res) => {
      res.json({ sub: (res.locals.tvm as TokenClaims).sub, same: (req as TvmRequest).tvm === res.locals.tvm });
    });
    router.all('/search', expressPep(fake, { ...url, op: () => 'read', resource: 'db://search' }), (_req, res) => {
      res.json({ sub: (res.locals.tvm as TokenClaims).sub });
    });
    app.use('/api', router);
    return listen(http.createServer(app));
  }
  const app = Fastify();
  app.decorateRequest('tvm', null);
  app.all(
    '/api/orders/:id',
    { onRequest: fastifyPep(fake, { ...url, resource: (req) => `db://orders/${(req.params as { id: string }).id}` }) },
    async (req) => ({ sub: req.tvm?.sub }),
  );
  app.all('/api/search', { preHandler: fastifyPep(fake, { ...url, op: () => 'read', resource: 'db://search' }) }, async (req) => ({
    sub: req.tvm?.sub,
  }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, close: () => app.close() };
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0];
}

interface Answer {
  status: number;
  headers: Headers | http.IncomingHttpHeaders;
  text: string;
}

/** A request with repeated header lines (fetch would merge them into one). */
function rawRequest(base: string, path: string, headers: Record<string, string | string[]>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('extractCredentials', () => {
  it('reads Bearer and DPoP tokens, scheme case-insensitive, one space or more', () => {
    expect(extractCredentials({ authorization: 'Bearer abc.def-_~+/==' })).toEqual({ token: 'abc.def-_~+/==', scheme: 'Bearer' });
    expect(extractCredentials({ authorization: 'bEaReR    abc' })).toEqual({ token: 'abc', scheme: 'Bearer' });
    expect(extractCredentials({ authorization: 'dpop abc', dpop: PROOF })).toEqual({ token: 'abc', scheme: 'DPoP', dpop: PROOF });
  });

  it('ignores other schemes and no header', () => {
    expect(extractCredentials({ authorization: 'Basic dXNlcjpwYXNz' })).toEqual({});
    expect(extractCredentials({ authorization: 'Bearerabc' })).toEqual({});
    expect(extractCredentials({})).toEqual({});
    expect(extractCredentials({ dpop: PROOF })).toEqual({ dpop: PROOF });
  });

  it('refuses repeated headers, a non-token68 token, a missing token, a bad proof; never quoting the token', () => {
    const cases: [Record<string, string | string[]>, 'authorization' | 'dpop'][] = [
      [{ authorization: ['Bearer sekr1t-a', 'Bearer sekr1t-b'] }, 'authorization'],
      [{ authorization: 'Bearer sekr1t, Bearer other' }, 'authorization'],
      [{ authorization: 'Bearer sek r1t' }, 'authorization'],
      [{ authorization: 'Bearer =sekr1t' }, 'authorization'],
      [{ authorization: 'Bearer\tsekr1t' }, 'authorization'],
      [{ authorization: 'DPoP' }, 'authorization'],
      [{ authorization: 'Bearer sekr1t', dpop: [PROOF, PROOF] }, 'dpop'],
      [{ authorization: 'Bearer sekr1t', dpop: `${PROOF}, ${PROOF}` }, 'dpop'],
      [{ authorization: 'Bearer sekr1t', dpop: 'not a jws sekr1t' }, 'dpop'],
    ];
    for (const [headers, header] of cases) {
      const c = extractCredentials(headers);
      expect(c.problem, JSON.stringify(headers)).toBeTruthy();
      expect(c.problemHeader).toBe(header);
      expect(c.token).toBeUndefined();
      expect(c.problem).not.toContain('sekr1t');
    }
  });
});

describe('requestUrl, defaultOp, errorWord', () => {
  const msg = (headers: http.IncomingHttpHeaders, url = '/a/b?x=1', encrypted = false) =>
    ({ headers, url, socket: { encrypted } }) as unknown as IncomingMessage;

  it('builds the URL from the Host header, https on TLS, without the query', () => {
    expect(requestUrl(msg({ host: 'api.example:8080' }))).toBe('http://api.example:8080/a/b');
    expect(requestUrl(msg({ host: 'api.example' }, '/a#f', true))).toBe('https://api.example/a');
  });

  it('prefers baseUrl, and believes X-Forwarded-* only with trustProxy', () => {
    const fwd = { host: 'internal:3000', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example, proxy.local' };
    expect(requestUrl(msg(fwd), { baseUrl: 'https://public.example/v1/' })).toBe('https://public.example/v1/a/b');
    expect(requestUrl(msg(fwd))).toBe('http://internal:3000/a/b');
    // The last value is the one the trusted proxy appended; earlier ones are the client's to forge.
    expect(requestUrl(msg(fwd), { trustProxy: true })).toBe('https://proxy.local/a/b');
    expect(requestUrl(msg({ ...fwd, 'x-forwarded-host': 'api.example' }), { trustProxy: true })).toBe('https://api.example/a/b');
    // A Host that would change the path (or anything past the authority) matches no proof.
    expect(requestUrl(msg({ host: '127.0.0.1:3000/orders/1#' }))).toBe('http://invalid.host.invalid/a/b');
    expect(requestUrl(msg({ host: 'user@evil.example' }))).toBe('http://invalid.host.invalid/a/b');
    expect(requestUrl(msg({ host: '[::1]:8080' }))).toBe('http://[::1]:8080/a/b');
    expect(requestUrl(msg({ host: 'internal', 'x-forwarded-proto': 'gopher' }), { trustProxy: true })).toBe('http://internal/a/b');
  });

  it('uses originalUrl when Express rewrote url', () => {
    const m = Object.assign(msg({ host: 'h' }, '/orders/1'), { originalUrl: '/api/orders/1?q' });
    expect(requestUrl(m)).toBe('http://h/api/orders/1');
  });

  it('maps methods to ops', () => {
    expect(['GET', 'head', 'OPTIONS'].map(defaultOp)).toEqual(['read', 'read', 'read']);
    expect(['POST', 'PUT', 'PATCH', 'DELETE'].map(defaultOp)).toEqual(['write', 'write', 'write', 'write']);
  });

  it('takes the error word from the challenge, else from the code', () => {
    const d = (code: Deny['code'], status: Deny['status'], wwwAuthenticate: string): Deny => ({ allow: false, code, status, message: 'm', wwwAuthenticate });
    expect(errorWord(d('ERR_BINDING', 401, 'DPoP algs="ES256", error="invalid_token"'))).toBe('invalid_token');
    expect(errorWord(d('ERR_BINDING', 401, 'DPoP algs="ES256"'))).toBe('invalid_dpop_proof');
    expect(errorWord(d('ERR_SCOPE', 403, 'Bearer'))).toBe('insufficient_scope');
    expect(errorWord(d('ERR_STATUS_UNAVAILABLE', 503, 'Bearer'))).toBe('temporarily_unavailable');
    expect(errorWord(d('ERR_TOKEN_MISSING', 401, 'Bearer realm="tvm"'))).toBe('invalid_request');
    expect(errorWord(d('ERR_TOKEN_EXPIRED', 401, 'Bearer error_description="x"'))).toBe('invalid_token');
  });
});

describe.each<Kind>(['node:http', 'express', 'fastify'])('%s adapter', (kind) => {
  let srv: Running;

  beforeAll(async () => {
    srv = await start(kind);
  });
  afterAll(async () => {
    await srv?.close();
  });
  beforeEach(() => {
    calls.length = 0;
  });

  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(`${srv.base}${path}`, { method, headers });

  async function expectDenial(res: Response, status: number, error: string, code: string): Promise<void> {
    const text = await res.text();
    expect(res.status, text).toBe(status);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('www-authenticate')).toBeTruthy();
    expect(text).not.toContain('sekr1t');
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(body).toMatchObject({ error, code });
    expect(typeof body.error_description).toBe('string');
  }

  it('answers 401 with the challenge when there is no token, or another scheme', async () => {
    for (const headers of [{}, { authorization: 'Basic dXNlcjpzZWtyMXQ=' }] as Record<string, string>[]) {
      const res = await get('/api/orders/42', headers);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="tvm"');
      await expectDenial(res, 401, 'invalid_request', 'ERR_TOKEN_MISSING');
    }
    expect(calls.map((c) => c.token)).toEqual([undefined, undefined]);
  });

  it('answers 401 invalid_token for a bad token', async () => {
    await expectDenial(await get('/api/orders/42', { authorization: 'Bearer bad-sekr1t' }), 401, 'invalid_token', 'ERR_TOKEN_SIGNATURE');
  });

  it('answers 403 insufficient_scope with the challenge', async () => {
    const res = await get('/api/orders/42', { authorization: 'Bearer scope-sekr1t' }, 'POST');
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="insufficient_scope", scope="write:db://x"');
    await expectDenial(res, 403, 'insufficient_scope', 'ERR_SCOPE');
  });

  it('answers 503 with Retry-After when the status list is unavailable', async () => {
    const res = await get('/api/orders/42', { authorization: 'Bearer down-sekr1t' });
    expect(res.headers.get('retry-after')).toBe('1');
    await expectDenial(res, 503, 'temporarily_unavailable', 'ERR_STATUS_UNAVAILABLE');
  });

  it('lets an allowed request reach the handler with the claims, and passes the context', async () => {
    const res = await get('/api/orders/42?secret=q', { authorization: 'bearer   good-sekr1t' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { sub: string; same?: boolean };
    expect(body.sub).toBe('orders-service');
    if (kind === 'express') expect(body.same).toBe(true);
    expect(calls).toHaveLength(1);
    const { token, context } = calls[0];
    expect(token).toBe('good-sekr1t');
    expect(context).toMatchObject({ op: 'read', resource: 'db://orders/42', method: 'GET', url: `${srv.base}/api/orders/42`, scheme: 'Bearer' });
    expect(context.remoteAddr).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
    expect(context.dpop).toBeUndefined();
  });

  it('takes the op from the method, or from the op option', async () => {
    await get('/api/orders/7', { authorization: 'Bearer good-sekr1t' }, 'DELETE');
    await get('/api/orders/7', { authorization: 'Bearer good-sekr1t' }, 'HEAD');
    await get('/api/search', { authorization: 'Bearer good-sekr1t' }, 'POST');
    expect(calls.map((c) => [c.context.method, c.context.op, c.context.resource])).toEqual([
      ['DELETE', 'write', 'db://orders/7'],
      ['HEAD', 'read', 'db://orders/7'],
      ['POST', 'read', 'db://search'],
    ]);
  });

  it('passes the DPoP proof and the DPoP scheme through', async () => {
    const res = await get('/api/orders/9', { authorization: 'DPoP good-sekr1t', dpop: PROOF }, 'PUT');
    expect(res.status).toBe(200);
    expect(calls[0].context).toMatchObject({ scheme: 'DPoP', dpop: PROOF, op: 'write', method: 'PUT' });
  });

  it('refuses two Authorization headers with 401 invalid_request, without asking the authorizer', async () => {
    const res = await rawRequest(srv.base, '/api/orders/1', { authorization: ['Bearer good-sekr1t', 'Bearer scope-sekr1t'] });
    expect(res.status).toBe(401);
    expect(res.text).not.toContain('sekr1t');
    expect(JSON.parse(res.text)).toMatchObject({ error: 'invalid_request', code: 'ERR_TOKEN_MALFORMED' });
    expect(String((res.headers as http.IncomingHttpHeaders)['www-authenticate'])).toMatch(/^Bearer error="invalid_request", error_description="/);
    const merged = new Headers([['authorization', 'Bearer good-sekr1t'], ['authorization', 'Bearer other-sekr1t']]);
    await expectDenial(await fetch(`${srv.base}/api/orders/1`, { headers: merged }), 401, 'invalid_request', 'ERR_TOKEN_MALFORMED');
    expect(calls).toHaveLength(0);
  });

  it('refuses two DPoP headers', async () => {
    const res = await rawRequest(srv.base, '/api/orders/1', { authorization: 'DPoP good-sekr1t', dpop: [PROOF, PROOF] });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.text)).toMatchObject({ error: 'invalid_request', code: 'ERR_BINDING' });
    expect(String((res.headers as http.IncomingHttpHeaders)['www-authenticate'])).toMatch(/^DPoP error="invalid_request"/);
    expect(calls).toHaveLength(0);
  });

  it('refuses a token that is not token68 without echoing it', async () => {
    await expectDenial(await get('/api/orders/1', { authorization: 'Bearer good-sekr1t,more' }), 401, 'invalid_request', 'ERR_TOKEN_MALFORMED');
    expect(calls).toHaveLength(0);
  });

  it('turns an authorizer exception into a 500 on the error path, without the token', async () => {
    const res = await get('/api/orders/1', { authorization: 'Bearer boom-sekr1t' });
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(text).not.toContain('sekr1t');
    expect(text).not.toContain('exploded');
    if (kind === 'fastify') expect(JSON.parse(text)).toMatchObject({ statusCode: 500, message: 'tvm pep: the authorizer failed' });
    if (kind === 'node:http') expect(JSON.parse(text)).toEqual({ error: 'server_error' });
  });

  it('builds the URL from baseUrl, and from X-Forwarded-* only with trustProxy', async () => {
    const fwd = { authorization: 'Bearer good-sekr1t', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example' };
    await get('/api/orders/3', fwd);
    const proxied = await start(kind, { trustProxy: true });
    const based = await start(kind, { baseUrl: 'https://public.example/' });
    try {
      await fetch(`${proxied.base}/api/orders/3`, { headers: fwd });
      await fetch(`${based.base}/api/orders/3?x=1`, { headers: fwd });
    } finally {
      await proxied.close();
      await based.close();
    }
    expect(calls.map((c) => c.context.url)).toEqual([
      `${srv.base}/api/orders/3`,
      'https://api.example/api/orders/3',
      'https://public.example/api/orders/3',
    ]);
  });
});
