// The whole flow over HTTP, driven by a real Vault client library (node-vault)
// against the dev server started in-process on a free port.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';

type Server = Awaited<ReturnType<typeof startServer>>;
type Client = ReturnType<typeof vault>;

let server: Server;
let root: Client;

function client(token: string): Client {
  return vault({ apiVersion: 'v1', endpoint: server.address, token });
}

async function status(fn: () => Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await fn();
  } catch (err) {
    const e = err as { response?: { statusCode: number }; message: string };
    return { status: e.response?.statusCode ?? 0, message: e.message };
  }
  throw new Error('expected the request to fail');
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  root = client(server.rootToken);
  await root.write('tvm/roles/orders', {
    read: ['db://orders/*'],
    write: ['db://orders/outbox'],
    ttl: '5m',
    max_ttl: '1h',
    audiences: ['orders-api'],
  });
});

afterAll(async () => {
  await server?.close();
});

describe('the tvm flow through a Vault client', () => {
  it('mounts tvm with a demo role in dev mode', async () => {
    const mounts = await root.read('sys/mounts');
    expect(mounts.data?.['tvm/'] ?? mounts['tvm/']).toMatchObject({ type: 'tvm' });
    const demo = await root.read('tvm/roles/demo');
    expect(demo.data.read.length + demo.data.write.length).toBeGreaterThan(0);
  });

  it('issues, verifies against the published JWKS, renews, revokes', async () => {
    const creds = await root.read('tvm/creds/orders');
    expect(creds.lease_id).toMatch(/^tvm\/creds\/orders\/.+/);
    expect(creds.renewable).toBe(true);
    expect(creds.lease_duration).toBe(300);
    expect(creds.data.token_type).toBe('readwrite');

    const issuer = `${server.address}/v1/tvm`;
    const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    const first = await jwtVerify(creds.data.token, jwks, { issuer, audience: 'orders-api', typ: 'at+jwt' });
    expect(first.payload.scope).toBe('read:db://orders/* write:db://orders/outbox');
    expect(first.payload.client_id).toBe('orders');

    await new Promise((r) => setTimeout(r, 1100));
    const renew = await root.write('sys/leases/renew', { lease_id: creds.lease_id, increment: 600 });
    expect(renew.lease_id).toBe(creds.lease_id);
    expect(renew.lease_duration).toBe(600);
    // The renewal answers no token: the lease's holder fetches it.
    expect(renew.data).not.toHaveProperty('token');
    expect(renew.data.token_fetch).toEqual({ path: 'tvm/creds/orders', jti: creds.data.jti });
    const renewed = await root.write('tvm/creds/orders', { jti: creds.data.jti });
    expect(renewed.lease_id).toBe('');
    const second = await jwtVerify(renewed.data.token, jwks, { issuer, typ: 'at+jwt' });
    expect(second.payload.jti).toBe(first.payload.jti);
    expect(second.payload.exp!).toBeGreaterThan(first.payload.exp!);

    const lookup = await root.write('sys/leases/lookup', { lease_id: creds.lease_id });
    expect(lookup.data.id).toBe(creds.lease_id);

    await root.write('sys/leases/revoke', { lease_id: creds.lease_id });
    await root.write('sys/leases/revoke', { lease_id: creds.lease_id });
    for (const token of [creds.data.token, renewed.data.token]) {
      const intro = await root.write('tvm/introspect', { token });
      expect(intro.data).toEqual({ active: false });
    }
    const anonymous = await fetch(`${issuer}/revocations`);
    expect(anonymous.status).toBe(200);
    const list = (await anonymous.json()) as { data: { revoked: Array<{ jti: string }> } };
    expect(list.data.revoked.map((r) => r.jti)).toContain(first.payload.jti);
    expect((await status(() => root.write('sys/leases/lookup', { lease_id: creds.lease_id }))).status).toBe(400);
  });

  it('narrows on update and refuses widening with a 400 naming the field', async () => {
    const narrowed = await root.write('tvm/creds/orders', { ttl: '60s', read: ['db://orders/42'], write: [] });
    expect(narrowed.lease_duration).toBe(60);
    expect(narrowed.data).toMatchObject({ token_type: 'read', scope: 'read:db://orders/42' });
    const wide = await status(() => root.write('tvm/creds/orders', { write: ['db://orders/*'] }));
    expect(wide.status).toBe(400);
    expect(wide.message).toContain('write[0]');
    const ghost = await status(() => root.read('tvm/creds/ghost'));
    expect(ghost).toEqual({ status: 400, message: 'unknown role "ghost"' });
  });

  it('denies a token whose policy lacks the capability, allows one that has it', async () => {
    await root.write('sys/policies/acl/orders-only', {
      policy: 'path "tvm/creds/orders" {\n  capabilities = ["read", "update"]\n}\n',
    });
    const made = await root.write('auth/token/create', { policies: ['orders-only'], ttl: '1h' });
    const app = client(made.auth.client_token);
    const creds = await app.read('tvm/creds/orders');
    expect(creds.data.role).toBe('orders');
    expect((await status(() => app.read('tvm/creds/demo'))).status).toBe(403);
    expect((await status(() => app.write('tvm/roles/orders', { read: ['db://**'] }))).status).toBe(403);
    expect((await status(() => client('hvs.bogus').read('tvm/creds/orders'))).status).toBe(403);
  });

  it('revoking a token revokes the leases it obtained', async () => {
    const made = await root.write('auth/token/create', { policies: ['orders-only'], ttl: '1h' });
    const app = client(made.auth.client_token);
    const creds = await app.read('tvm/creds/orders');
    await root.write('auth/token/revoke', { token: made.auth.client_token });
    expect((await status(() => root.write('sys/leases/lookup', { lease_id: creds.lease_id }))).status).toBe(400);
    expect((await root.write('tvm/introspect', { token: creds.data.token })).data.active).toBe(false);
  });

  it('the expiration manager revokes a 2-second lease on time', async () => {
    await root.write('tvm/roles/short', { read: ['db://x/*'], ttl: '2s', max_ttl: '10s', max_active_leases: 1 });
    const creds = await root.read('tvm/creds/short');
    expect(creds.lease_duration).toBe(2);
    // A backend's coded error, listed as Vault's core answers it (docs/fidelity.md: OpenBao answers the same).
    const full = { status: 429, message: '1 error occurred:\n\t* role "short" has 1 active leases, its max_active_leases is 1\n\n' };
    expect(await status(() => root.read('tvm/creds/short'))).toEqual(full);
    const expireAt = Date.parse((await root.write('sys/leases/lookup', { lease_id: creds.lease_id })).data.expire_time as string);
    // An expired lease merely looks gone to lookup; a revoked one is gone from the lease listing. Poll the
    // listing: until the revocation it names the lease, after it the role has none (Vault's empty-list 404).
    const id = (creds.lease_id as string).split('/').pop();
    const listed = async (): Promise<boolean> => {
      try {
        return ((await root.list('sys/leases/lookup/tvm/creds/short/')).data.keys as string[]).includes(id as string);
      } catch (err) {
        expect(await status(() => Promise.reject(err))).toEqual({ status: 404, message: 'Status 404' });
        return false;
      }
    };
    let revoked = { askedAt: Number.NaN, answeredAt: Number.NaN };
    let slowestMs = 0;
    while (Number.isNaN(revoked.askedAt) && Date.now() < expireAt + 15_000) {
      await new Promise((r) => setTimeout(r, 100));
      const askedAt = Date.now();
      const still = await listed();
      const answeredAt = Date.now();
      slowestMs = Math.max(slowestMs, answeredAt - askedAt);
      if (!still) revoked = { askedAt, answeredAt };
    }
    expect(Number.isNaN(revoked.askedAt), 'the expired lease was never revoked').toBe(false);
    // On time: not before the expiry (the answer came after it), and after it within one poll, twice the slowest
    // round trip seen (a loaded machine slows both the timer and the polls) and a second for the timer itself.
    expect(revoked.answeredAt).toBeGreaterThanOrEqual(expireAt);
    expect(revoked.askedAt - expireAt).toBeLessThan(100 + 2 * slowestMs + 1000);
    expect(await status(() => root.write('sys/leases/lookup', { lease_id: creds.lease_id }))).toEqual({ status: 400, message: 'invalid lease' });
    // The engine saw the revocation: the role's single slot is free again.
    const again = await root.read('tvm/creds/short');
    expect(again.lease_id).not.toBe(creds.lease_id);
  });

  it('lists leases by prefix', async () => {
    const a = await root.read('tvm/creds/orders');
    const roles = await root.list('sys/leases/lookup/tvm/creds/');
    expect(roles.data.keys).toContain('orders/');
    const ids = await root.list('sys/leases/lookup/tvm/creds/orders/');
    expect(ids.data.keys).toContain(a.lease_id.split('/').pop());
  });

  it('answers bad input with 4xx, never 500', async () => {
    const bad = await fetch(`${server.address}/v1/tvm/roles/x`, {
      method: 'POST',
      headers: { 'X-Vault-Token': server.rootToken },
      body: '{not json',
    });
    expect(bad.status).toBe(400);
    const over = await status(() => root.write('tvm/creds/orders', { ttl: '2h' }));
    expect(over.status).toBe(400);
    expect(over.message).toContain('ttl');
    const unknown = await status(() => root.write('tvm/roles/x', { read: ['db://a'], colour: 'red' }));
    expect(unknown).toMatchObject({ status: 400 });
    expect(unknown.message).toContain('colour');
  });
});
