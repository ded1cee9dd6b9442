// Response wrapping: X-Vault-Wrap-TTL, single-use unwrap, lookup, expiry.
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';

type Server = Awaited<ReturnType<typeof startServer>>;

let server: Server;
let now = Date.now();

async function call(
  method: string,
  path: string,
  options: { token?: string | null; body?: object; wrap?: string } = {},
): Promise<{ status: number; body: Record<string, any> | null }> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? server.rootToken : options.token;
  if (token !== null) headers['X-Vault-Token'] = token;
  if (options.wrap) headers['X-Vault-Wrap-TTL'] = options.wrap;
  const res = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true, clock: () => now });
});

afterAll(async () => {
  await server?.close();
});

describe('response wrapping', () => {
  it('wraps creds; unwrap returns the original response exactly once', async () => {
    const wrapped = await call('GET', 'tvm/creds/demo', { wrap: '2m' });
    expect(wrapped.status).toBe(200);
    expect(wrapped.body).toMatchObject({ data: null, lease_id: '', auth: null, mount_type: 'tvm' });
    const info = wrapped.body!.wrap_info;
    expect(info).toMatchObject({ ttl: 120, creation_path: 'tvm/creds/demo', token: expect.stringMatching(/^hvs\./) });
    expect(Date.parse(info.creation_time)).not.toBeNaN();

    const lookup = await call('POST', 'sys/wrapping/lookup', { token: null, body: { token: info.token } });
    expect(lookup.body!.data).toMatchObject({ creation_path: 'tvm/creds/demo', creation_ttl: 120 });

    // Unwrap with the wrapping token as the request token (no other token needed).
    const first = await call('POST', 'sys/wrapping/unwrap', { token: info.token });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ renewable: true, lease_duration: 900, wrap_info: null });
    expect(first.body!.lease_id).toMatch(/^tvm\/creds\/demo\//);
    expect(first.body!.data.role).toBe('demo');
    // The lease is real and belongs to the requester.
    const lease = await call('POST', 'sys/leases/lookup', { body: { lease_id: first.body!.lease_id } });
    expect(lease.status).toBe(200);

    const second = await call('POST', 'sys/wrapping/unwrap', { token: info.token });
    expect(second).toEqual({ status: 400, body: { errors: ['wrapping token is not valid or does not exist'] } });
  });

  it('unwraps with the token in the body, through node-vault', async () => {
    const wrapped = await call('GET', 'tvm/roles/demo', { wrap: '60' });
    const client = vault({ apiVersion: 'v1', endpoint: server.address, token: server.rootToken });
    const res = await client.unwrap({ token: wrapped.body!.wrap_info.token });
    expect(res.data.read).toEqual(['db://orders/*']);
    await expect(client.unwrap({ token: wrapped.body!.wrap_info.token })).rejects.toThrow(/not valid/);
  });

  it('two concurrent unwraps: exactly one gets the response', async () => {
    const wrapped = await call('GET', 'tvm/roles/demo', { wrap: '60s' });
    const token = wrapped.body!.wrap_info.token;
    const results = await Promise.all([1, 2, 3].map(() => call('POST', 'sys/wrapping/unwrap', { token: null, body: { token } })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400]);
  });

  it('wraps a token creation, with the wrapped accessor', async () => {
    const wrapped = await call('POST', 'auth/token/create', { body: { policies: ['default'], ttl: '1h' }, wrap: '5m' });
    const info = wrapped.body!.wrap_info;
    expect(info.wrapped_accessor).toMatch(/.+/);
    const unwrapped = await call('POST', 'sys/wrapping/unwrap', { token: info.token });
    expect(unwrapped.body!.auth).toMatchObject({ accessor: info.wrapped_accessor, policies: ['default'] });
    const self = await call('GET', 'auth/token/lookup-self', { token: unwrapped.body!.auth.client_token });
    expect(self.status).toBe(200);
  });

  it('wraps arbitrary data with sys/wrapping/wrap, which requires a wrap ttl', async () => {
    expect((await call('POST', 'sys/wrapping/wrap', { body: { a: 1 } })).status).toBe(400);
    const wrapped = await call('POST', 'sys/wrapping/wrap', { body: { a: 1 }, wrap: '1m' });
    const unwrapped = await call('POST', 'sys/wrapping/unwrap', { token: wrapped.body!.wrap_info.token });
    expect(unwrapped.body!.data).toEqual({ a: 1 });
  });

  it('a wrapping token is good for nothing else, and expires at its ttl', async () => {
    const wrapped = await call('GET', 'tvm/roles/demo', { wrap: '30s' });
    const token = wrapped.body!.wrap_info.token;
    expect((await call('GET', 'auth/token/lookup-self', { token })).status).toBe(403);
    expect((await call('GET', 'tvm/roles/demo', { token })).status).toBe(403);
    now += 31_000;
    try {
      const late = await call('POST', 'sys/wrapping/unwrap', { token });
      expect(late).toEqual({ status: 400, body: { errors: ['wrapping token is not valid or does not exist'] } });
    } finally {
      now -= 31_000;
    }
  });

  it('errors are not wrapped; unwrap without a token is a 400', async () => {
    const denied = await call('GET', 'tvm/creds/ghost', { wrap: '1m' });
    expect(denied.status).toBe(400);
    expect(denied.body!.errors[0]).toMatch(/ghost/);
    expect((await call('POST', 'sys/wrapping/unwrap', { token: null })).status).toBe(400);
  });
});
