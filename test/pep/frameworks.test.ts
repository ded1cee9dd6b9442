// An Express and a Fastify service behind the PEP's adapters, with real tokens
// from the dev server, driven over HTTP: allow, scope, missing token, a bound
// token with and without its proof, and a revocation.
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { createDpopProver, createVerifier, expressPep, fastifyPep, generateDpopKey, type Verifier } from '../../src/pep/index.ts';

let dev: Awaited<ReturnType<typeof startServer>>;
let verifier: Verifier;
const prover = createDpopProver(generateDpopKey('EdDSA'));

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(`${dev.address}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': dev.rootToken, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

beforeAll(async () => {
  dev = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  const role = { read: ['db://orders/*'], write: ['db://orders/outbox'], audiences: ['orders-api'] };
  await api('POST', 'tvm/roles/orders', role);
  await api('POST', 'tvm/roles/bound', { ...role, binding: 'dpop' });
  verifier = createVerifier({ issuer: `${dev.address}/v1/tvm`, audience: 'orders-api', statusPollMs: 100, push: true });
});

afterAll(async () => {
  verifier?.close();
  await dev?.close();
});

const services: Array<{ name: string; start(): Promise<string>; stop(): Promise<void> }> = [
  (() => {
    let server: Server;
    return {
      name: 'Express',
      async start() {
        const app = express();
        const pep = expressPep(verifier, { resource: (req) => `db://orders/${req.params.id}` });
        app.get('/orders/:id', pep, (_req, res) => void res.json({ sub: res.locals.tvm.sub }));
        app.put('/orders/:id', pep, (_req, res) => void res.status(204).end());
        server = await new Promise<Server>((resolve) => {
          const s = app.listen(0, '127.0.0.1', () => resolve(s));
        });
        return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      },
      stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  })(),
  (() => {
    let app: FastifyInstance;
    return {
      name: 'Fastify',
      async start() {
        app = Fastify();
        app.decorateRequest('tvm', null);
        const hook = fastifyPep(verifier, { resource: (req) => `db://orders/${(req.params as { id: string }).id}` });
        app.get('/orders/:id', { onRequest: hook }, async (req) => ({ sub: req.tvm?.sub }));
        app.put('/orders/:id', { onRequest: hook }, async (_req, reply) => reply.code(204).send());
        return app.listen({ port: 0, host: '127.0.0.1' });
      },
      stop: () => app.close(),
    };
  })(),
];

for (const service of services) {
  describe(`${service.name} behind the PEP`, () => {
    let base: string;
    beforeAll(async () => {
      base = await service.start();
    });
    afterAll(() => service.stop());

    it('allows the scope, refuses the rest with the right status and challenge', async () => {
      const c = await api('GET', 'tvm/creds/orders');
      const auth = { authorization: `Bearer ${c.data.token}` };
      const ok = await fetch(`${base}/orders/42`, { headers: auth });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ sub: 'root' });
      expect((await fetch(`${base}/orders/outbox`, { method: 'PUT', headers: auth })).status).toBe(204);
      const write = await fetch(`${base}/orders/42`, { method: 'PUT', headers: auth });
      expect(write.status).toBe(403);
      expect(write.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
      expect(await write.json()).toMatchObject({ error: 'insufficient_scope', code: 'ERR_SCOPE' });
      const none = await fetch(`${base}/orders/42`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="tvm"/);

      await api('PUT', 'sys/leases/revoke', { lease_id: c.lease_id });
      const start = performance.now();
      let status = 200;
      while (status === 200 && performance.now() - start < 3000) status = (await fetch(`${base}/orders/42`, { headers: auth })).status;
      expect(status).toBe(401);
      expect(performance.now() - start).toBeLessThan(1000);
    });

    it('needs the DPoP proof of a bound token, for this method and URL', async () => {
      const token = (await api('PUT', 'tvm/creds/bound', { dpop_jwk: prover.publicJwk })).data.token as string;
      const url = `${base}/orders/7`;
      const headers = (proofUrl: string, method = 'GET') => ({ authorization: `DPoP ${token}`, dpop: prover.proof({ method, url: proofUrl, accessToken: token }) });
      expect((await fetch(url, { headers: headers(url) })).status).toBe(200);
      const bearer = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      expect(bearer.status).toBe(401);
      expect(bearer.headers.get('www-authenticate')).toMatch(/^DPoP realm="tvm", error="invalid_dpop_proof"/);
      expect((await fetch(url, { headers: headers(`${base}/orders/8`) })).status).toBe(401);
      expect((await fetch(url, { headers: headers(url, 'PUT') })).status).toBe(401);
      const reused = headers(url);
      expect((await fetch(url, { headers: reused })).status).toBe(200);
      expect((await fetch(url, { headers: reused })).status).toBe(401);
    });
  });
}
