// The HTTP layer: Vault's envelope, errors and status codes, authentication,
// ACL enforcement, mounts, leases and bad input, driven by node-vault and
// plain fetch against the dev server; plus the transport against a fake engine.
import { AuditTable } from '../../src/server/audit_table.ts';
import { createServer, request as httpRequest, type Server as NodeServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/sdk/errors.ts';
import type { Backend, LogicalRequest, LogicalResponse } from '../../src/sdk/logical.ts';
import { startServer } from '../../src/server/index.ts';
import { createRequestHandler, MAX_BODY_BYTES } from '../../src/server/http.ts';
import { acceptListMethod, ListMethodRewriter } from '../../src/server/list_method.ts';
import type { LeaseManager } from '../../src/server/context.ts';
import { AuthTable } from '../../src/server/auth/index.ts';
import { IdentityStore } from '../../src/server/identity/store.ts';
import { SecretsTable } from '../../src/server/mounts.ts';
import { PolicyStore } from '../../src/server/policy.ts';
import { openMemoryStorage } from '../../src/server/storage/index.ts';
import { TokenStore } from '../../src/server/token/store.ts';
import type { LeaseEntry } from '../../src/server/types.ts';
import { WrappingStore } from '../../src/server/wrapping.ts';

type Server = Awaited<ReturnType<typeof startServer>>;
type Client = ReturnType<typeof vault>;

let server: Server;
let root: Client;

function client(token: string): Client {
  return vault({ apiVersion: 'v1', endpoint: server.address, token });
}

async function failure(fn: () => Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await fn();
  } catch (err) {
    const e = err as { response?: { statusCode: number }; message: string };
    return { status: e.response?.statusCode ?? 0, message: e.message };
  }
  throw new Error('expected the request to fail');
}

async function call(
  method: string,
  path: string,
  options: { token?: string | null; body?: string | object; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: unknown; text: string; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? server.rootToken : options.token;
  if (token !== null) headers['X-Vault-Token'] = token;
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const res = await fetch(`${server.address}/v1/${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

async function tokenWith(policy: string, name: string): Promise<Client> {
  await root.write(`sys/policies/acl/${name}`, { policy });
  const made = await root.write('auth/token/create', { policies: [name], ttl: '1h' });
  return client(made.auth.client_token);
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  root = client(server.rootToken);
});

afterAll(async () => {
  await server?.close();
});

describe('envelope and status codes', () => {
  it('wraps every logical answer in Vault\'s envelope', async () => {
    const res = await call('GET', 'tvm/creds/demo');
    expect(res.status).toBe(200);
    const body = res.body as Record<string, unknown>;
    expect(Object.keys(body)).toEqual([
      'request_id',
      'lease_id',
      'renewable',
      'lease_duration',
      'data',
      'wrap_info',
      'warnings',
      'auth',
      'mount_type',
    ]);
    expect(body).toMatchObject({ renewable: true, lease_duration: 900, wrap_info: null, warnings: null, auth: null, mount_type: 'tvm' });
    expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.lease_id).toMatch(/^tvm\/creds\/demo\/.+/);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('answers writes without data with 204, unknown paths with 404, reads of nothing with an empty 404', async () => {
    const write = await call('POST', 'tvm/roles/envelope', { body: { read: ['db://a/*'] } });
    expect(write.status).toBe(204);
    expect(write.text).toBe('');
    const missing = await call('GET', 'tvm/roles/never');
    expect(missing).toMatchObject({ status: 404, body: { errors: [] } });
    const route = await call('GET', 'nowhere/at/all');
    expect(route.status).toBe(404);
    expect((route.body as { errors: string[] }).errors[0]).toMatch(/no handler for route/);
    const outside = await fetch(`${server.address}/nothing`);
    expect(outside.status).toBe(404);
    const del = await call('DELETE', 'tvm/roles/envelope');
    expect(del.status).toBe(204);
  });

  it('answers unsupported methods with 405', async () => {
    // As Vault: a PATCH must be a JSON merge patch (415 otherwise); the engine serves no patch operation.
    const patch = await call('PATCH', 'tvm/roles/demo', { body: {}, headers: { 'Content-Type': 'application/merge-patch+json' } });
    expect(patch).toMatchObject({ status: 405, body: { errors: ['1 error occurred:\n\t* unsupported operation\n\n'] } });
    expect(await call('PATCH', 'tvm/roles/demo', { body: {}, headers: { 'Content-Type': 'application/json' } })).toMatchObject({
      status: 415,
      body: { errors: ['PATCH requires Content-Type of application/merge-patch+json, provided application/json'] },
    });
    expect((await call('OPTIONS', 'tvm/roles/demo')).status).toBe(405);
    expect((await call('DELETE', 'sys/health')).status).toBe(405);
  });

  it('serves sys/health and sys/seal-status outside the envelope, without a token', async () => {
    const health = await call('GET', 'sys/health', { token: null });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ initialized: true, sealed: false, standby: false, version: expect.stringMatching(/^1\./) });
    const seal = await call('GET', 'sys/seal-status', { token: null });
    expect(seal.body).toMatchObject({ sealed: false, initialized: true, t: 1, n: 1, storage_type: 'inmem' });
    expect((await root.health()).initialized).toBe(true);
  });

  it('serves the engine\'s raw responses as they are, unauthenticated where the engine says so', async () => {
    const res = await call('GET', 'tvm/.well-known/jwks.json', { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toHaveProperty('keys');
    expect(res.body).not.toHaveProperty('request_id');
  });

  it('lists with the LIST method, with ?list=true, and through node-vault', async () => {
    const viaList = await call('LIST', 'tvm/roles');
    expect((viaList.body as { data: { keys: string[] } }).data.keys).toContain('demo');
    const viaQuery = await call('GET', 'tvm/roles?list=true');
    expect((viaQuery.body as { data: { keys: string[] } }).data.keys).toContain('demo');
    expect((await root.list('tvm/roles')).data.keys).toContain('demo');
  });

  it('LIST works on a keep-alive connection after a request with a body', async () => {
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, body?: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(
          `${server.address}/v1/${path}`,
          { method, agent, headers: { 'X-Vault-Token': server.rootToken, ...(body ? { 'Content-Length': Buffer.byteLength(body) } : {}) } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    expect(await send('POST', 'tvm/roles/keepalive', JSON.stringify({ read: ['db://a/*'], extra_claims: { note: 'LIST /v1/x HTTP/1.1' } }))).toBe(204);
    expect(await send('LIST', 'tvm/roles')).toBe(200);
    expect(await send('GET', 'tvm/roles/keepalive')).toBe(200);
    expect(await send('LIST', 'tvm/roles')).toBe(200);
    agent.destroy();
  });

  it('answers help requests outside the envelope', async () => {
    const res = await call('GET', 'tvm/roles/demo?help=1');
    expect(res.status).toBe(200);
    expect((res.body as { help: string }).help).toMatch(/role/i);
  });
});

describe('bad input', () => {
  it('malformed JSON: 400 naming the problem', async () => {
    const res = await call('POST', 'tvm/roles/x', { body: '{"read": [' });
    expect(res.status).toBe(400);
    expect((res.body as { errors: string[] }).errors[0]).toMatch(/^failed to parse JSON input: /);
    const array = await call('POST', 'tvm/roles/x', { body: '[1,2]' });
    expect(array.status).toBe(400);
    expect((array.body as { errors: string[] }).errors[0]).toMatch(/JSON object/);
  });

  it('bodies over 1 MiB: 413, and the server keeps serving', async () => {
    const huge = JSON.stringify({ read: ['x'.repeat(MAX_BODY_BYTES + 10)] });
    const res = await call('POST', 'tvm/roles/x', { body: huge });
    expect(res.status).toBe(413);
    expect((res.body as { errors: string[] }).errors[0]).toMatch(/too large/);
    expect((await call('GET', 'sys/health')).status).toBe(200);
  });

  it('bad policy, unknown mount type, bad wrap ttl, bad durations: 400 with clear messages', async () => {
    const policy = await failure(() => root.write('sys/policies/acl/broken', { policy: 'path "x" { capabilities = ["read"' }));
    expect(policy.status).toBe(400);
    expect(policy.message).toMatch(/failed to parse policy/);
    const emptyPolicy = await failure(() => root.write('sys/policies/acl/broken', {}));
    expect(emptyPolicy).toEqual({ status: 400, message: "'policy' parameter not supplied or empty" });
    const mount = await failure(() => root.write('sys/mounts/kv', { type: 'kv' }));
    expect(mount.status).toBe(400);
    expect(mount.message).toMatch(/unsupported mount type "kv"/);
    const wrap = await call('GET', 'tvm/creds/demo', { headers: { 'X-Vault-Wrap-TTL': 'soon' } });
    expect(wrap.status).toBe(400);
    expect((wrap.body as { errors: string[] }).errors[0]).toMatch(/X-Vault-Wrap-TTL/);
    const ttl = await failure(() => root.write('auth/token/create', { ttl: 'forever' }));
    expect(ttl.status).toBe(400);
    expect(ttl.message).toMatch(/invalid ttl/);
    const lease = await failure(() => root.write('sys/leases/renew', {}));
    expect(lease).toEqual({ status: 400, message: 'missing required field lease_id' });
  });

  it('never answers a caller mistake with 500', async () => {
    const attempts = [
      call('POST', 'sys/mounts/', { body: { type: 'tvm' } }),
      call('POST', 'sys/mounts/sys', { body: { type: 'tvm' } }),
      call('POST', 'sys/mounts/x', { body: { type: 'tvm', config: { max_lease_ttl: 'never' } } }),
      call('POST', 'sys/policies/acl/x', { body: { policy: 42 } }),
      call('POST', 'sys/leases/lookup', { body: { lease_id: 'no/such/lease' } }),
      call('POST', 'sys/leases/renew', { body: { lease_id: 'no/such/lease' } }),
      call('POST', 'auth/token/create', { body: { policies: 5 } }),
      call('POST', 'auth/token/create', { body: { num_uses: -1 } }),
      call('POST', 'auth/token/create', { body: { meta: 'x' } }),
      call('POST', 'sys/capabilities-self', { body: {} }),
      call('GET', 'tvm/%E0%A4%A'),
      call('POST', 'tvm/creds/demo', { body: { ttl: { nested: true } } }),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.status, res.text).toBeGreaterThanOrEqual(400);
      expect(res.status, res.text).toBeLessThan(500);
      expect((res.body as { errors: string[] }).errors.length).toBeGreaterThan(0);
    }
  });
});

describe('paths', () => {
  it('refuses dot segments (clients normalise them; a raw request does not)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const { hostname, port } = new URL(server.address);
      const options = { hostname, port, path: '/v1/tvm/../sys/mounts', headers: { 'X-Vault-Token': server.rootToken } };
      const req = httpRequest(options, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(400);
  });
});

describe('authentication and ACLs', () => {
  it('refuses missing and bogus tokens with 403 permission denied', async () => {
    for (const token of [null, 'hvs.bogus', '']) {
      const res = await call('GET', 'tvm/creds/demo', { token });
      expect(res).toMatchObject({ status: 403, body: { errors: ['permission denied'] } });
    }
    expect((await call('GET', 'sys/mounts', { token: null })).status).toBe(403);
    expect((await call('GET', 'no/mount/here', { token: null })).status).toBe(403);
  });

  it('a token whose policy lacks the capability is denied on creds, and allowed once granted', async () => {
    const app = await tokenWith('path "tvm/creds/other" { capabilities = ["read"] }', 'grant-later');
    expect((await failure(() => app.read('tvm/creds/demo'))).status).toBe(403);
    await root.write('sys/policies/acl/grant-later', {
      policy: 'path "tvm/creds/other" { capabilities = ["read"] }\npath "tvm/creds/demo" { capabilities = ["read"] }',
    });
    expect((await app.read('tvm/creds/demo')).data.role).toBe('demo');
  });

  it('HCL policies: deny wins, + and * globs', async () => {
    const app = await tokenWith(
      `
path "tvm/+/demo" { capabilities = ["read"] }
path "tvm/roles/*" { capabilities = ["read", "list"] }
path "tvm/roles/secret" { capabilities = ["deny"] }
`,
      'globs',
    );
    expect((await app.read('tvm/creds/demo')).data.role).toBe('demo');
    expect((await app.read('tvm/roles/demo')).data.read).toEqual(['db://orders/*']);
    await root.write('tvm/roles/secret', { read: ['db://s/*'] });
    expect((await failure(() => app.read('tvm/roles/secret'))).status).toBe(403);
    expect((await app.list('tvm/roles')).data.keys).toContain('secret');
    expect((await failure(() => app.read('tvm/creds/secret'))).status).toBe(403);
  });

  it('JSON policies, merged with deny winning across policies', async () => {
    await root.write('sys/policies/acl/json-read', {
      policy: JSON.stringify({ path: { 'tvm/creds/demo': { capabilities: ['read'] } } }),
    });
    await root.write('sys/policies/acl/json-deny', {
      policy: JSON.stringify({ path: { 'tvm/creds/demo': { capabilities: ['deny'] } } }),
    });
    const one = await root.write('auth/token/create', { policies: ['json-read'], ttl: '1h' });
    expect((await client(one.auth.client_token).read('tvm/creds/demo')).data.role).toBe('demo');
    const both = await root.write('auth/token/create', { policies: ['json-read', 'json-deny'], ttl: '1h' });
    expect((await failure(() => client(both.auth.client_token).read('tvm/creds/demo'))).status).toBe(403);
  });

  it('create vs update follows the engine\'s existence check', async () => {
    const creator = await tokenWith('path "tvm/roles/*" { capabilities = ["create"] }', 'creator');
    await creator.write('tvm/roles/fresh', { read: ['db://f/*'] });
    expect((await failure(() => creator.write('tvm/roles/fresh', { read: ['db://g/*'] }))).status).toBe(403);
    const updater = await tokenWith('path "tvm/roles/*" { capabilities = ["update"] }', 'updater');
    await updater.write('tvm/roles/fresh', { read: ['db://g/*'] });
    expect((await failure(() => updater.write('tvm/roles/brand-new', { read: ['db://g/*'] }))).status).toBe(403);
  });

  it('sudo paths need sudo', async () => {
    const plain = await tokenWith('path "sys/leases/*" { capabilities = ["update", "list"] }', 'no-sudo');
    expect((await failure(() => plain.list('sys/leases/lookup/tvm/creds/'))).status).toBe(403);
    expect((await failure(() => plain.write('sys/leases/revoke-prefix/tvm/creds/none', {}))).status).toBe(403);
    const sudo = await tokenWith('path "sys/leases/*" { capabilities = ["update", "list", "sudo"] }', 'with-sudo');
    await sudo.read('tvm/creds/demo').catch(() => undefined);
    await sudo.write('sys/leases/revoke-prefix/tvm/creds/none', {});
  });

  it('policy endpoints: new and legacy paths, root and default protected', async () => {
    await root.write('sys/policies/acl/listed', { policy: 'path "a" { capabilities = ["read"] }' });
    const list = await root.list('sys/policies/acl');
    expect(list.data.keys).toEqual(expect.arrayContaining(['default', 'root', 'listed']));
    const read = await root.read('sys/policies/acl/listed');
    expect(read.data).toEqual({ name: 'listed', policy: 'path "a" { capabilities = ["read"] }' });
    // node-vault's policy helpers use the legacy sys/policy paths.
    await root.addPolicy({ name: 'legacy', rules: 'path "b" { capabilities = ["list"] }' });
    expect((await root.getPolicy({ name: 'legacy' })).rules).toContain('"b"');
    expect((await root.policies()).policies).toEqual(expect.arrayContaining(['legacy', 'listed']));
    await root.removePolicy({ name: 'legacy' });
    expect((await failure(() => root.getPolicy({ name: 'legacy' }))).status).toBe(404);
    expect(await failure(() => root.delete('sys/policies/acl/root'))).toEqual({ status: 400, message: 'cannot delete "root" policy' });
    expect(await failure(() => root.delete('sys/policies/acl/default'))).toEqual({ status: 400, message: 'cannot delete "default" policy' });
    expect((await root.read('sys/policies/acl/default')).data.policy).toContain('auth/token/lookup-self');
  });

  it('capabilities-self reports the token\'s capabilities per path', async () => {
    const app = await tokenWith('path "tvm/creds/demo" { capabilities = ["read", "update"] }', 'caps');
    const res = await app.write('sys/capabilities-self', { paths: ['tvm/creds/demo', 'sys/mounts'] });
    expect(res.data['tvm/creds/demo']).toEqual(['read', 'update']);
    expect(res.data['sys/mounts']).toEqual(['deny']);
    const single = await root.write('sys/capabilities-self', { path: 'anything' });
    expect(single.data.capabilities).toEqual(['root']);
  });

  it('passes the caller to the engine: a role bound to other CIDRs refuses this address', async () => {
    await root.write('tvm/roles/far', { read: ['db://far/*'], bound_cidrs: ['10.99.0.0/16'] });
    expect((await failure(() => root.read('tvm/creds/far'))).status).toBe(403);
    await root.write('tvm/roles/near', { read: ['db://near/*'], bound_cidrs: ['127.0.0.0/8'] });
    expect((await root.read('tvm/creds/near')).data.role).toBe('near');
  });
});

describe('mounts', () => {
  it('lists tvm/ with its type, accessor and config', async () => {
    const res = await root.read('sys/mounts');
    expect(res.data['tvm/']).toMatchObject({
      type: 'tvm',
      accessor: expect.stringMatching(/^tvm_/),
      config: { default_lease_ttl: 0, max_lease_ttl: 0 },
    });
    expect(res['tvm/']).toMatchObject({ type: 'tvm' });
    expect(res.data['sys/']).toMatchObject({ type: 'system' });
  });

  it('mounts another tvm, serves it apart, and unmounting revokes its leases', async () => {
    await root.write('sys/mounts/team-a/tvm', { type: 'tvm', description: 'team a', config: { max_lease_ttl: '2h' } });
    const one = await root.read('sys/mounts/team-a/tvm');
    expect(one.data).toMatchObject({ type: 'tvm', description: 'team a', config: { max_lease_ttl: 7200 } });
    await root.write('team-a/tvm/roles/only-here', { read: ['db://a/*'] });
    expect((await failure(() => root.read('tvm/roles/only-here'))).status).toBe(404);
    const creds = await root.read('team-a/tvm/creds/only-here');
    expect(creds.lease_id).toMatch(/^team-a\/tvm\/creds\/only-here\//);
    const tune = await root.read('sys/mounts/team-a/tvm/tune');
    expect(tune.data.max_lease_ttl).toBe(7200);
    const ui = await root.read('sys/internal/ui/mounts/team-a/tvm/creds/only-here');
    expect(ui.data).toMatchObject({ path: 'team-a/tvm/', type: 'tvm' });

    expect((await failure(() => root.write('sys/mounts/team-a/tvm', { type: 'tvm' }))).message).toMatch(/already in use/);
    expect((await failure(() => root.write('sys/mounts/team-a', { type: 'tvm' }))).message).toMatch(/already in use/);

    await root.delete('sys/mounts/team-a/tvm');
    expect(await failure(() => root.write('sys/leases/lookup', { lease_id: creds.lease_id }))).toEqual({ status: 400, message: 'invalid lease' });
    expect((await failure(() => root.read('team-a/tvm/roles/only-here'))).status).toBe(404);
    expect((await root.read('sys/mounts')).data['team-a/tvm/']).toBeUndefined();
    // Unmounting what is not mounted succeeds, as in Vault.
    await root.delete('sys/mounts/team-a/tvm');
    expect((await failure(() => root.delete('sys/mounts/sys'))).status).toBe(400);
  });

  it('sys/internal/ui/mounts/<path>: the mount of a path, 403 for unknown mounts or no access', async () => {
    const res = await root.read('sys/internal/ui/mounts/tvm/creds/demo');
    expect(res.data).toMatchObject({ path: 'tvm/', type: 'tvm', options: null });
    expect((await failure(() => root.read('sys/internal/ui/mounts/nowhere/x'))).status).toBe(403);
    const outsider = await tokenWith('path "other/*" { capabilities = ["read"] }', 'outsider');
    expect((await failure(() => outsider.read('sys/internal/ui/mounts/tvm/creds/demo'))).status).toBe(403);
    const insider = await tokenWith('path "tvm/creds/demo" { capabilities = ["read"] }', 'insider');
    expect((await insider.read('sys/internal/ui/mounts/tvm/creds/demo')).data.path).toBe('tvm/');
    expect((await failure(() => client('hvs.bogus').read('sys/internal/ui/mounts/tvm/x'))).status).toBe(403);
  });
});

describe('leases', () => {
  it('lookup, renew with an increment, revoke, list', async () => {
    const creds = await root.read('tvm/creds/demo');
    const lookup = await root.write('sys/leases/lookup', { lease_id: creds.lease_id });
    expect(lookup.data).toMatchObject({ id: creds.lease_id, renewable: true, last_renewal: null });
    expect(lookup.data.ttl).toBeGreaterThan(890);
    expect(Date.parse(lookup.data.expire_time)).toBeGreaterThan(Date.parse(lookup.data.issue_time));

    const renewed = await root.write('sys/leases/renew', { lease_id: creds.lease_id, increment: '10m' });
    expect(renewed).toMatchObject({ lease_id: creds.lease_id, lease_duration: 600, renewable: true });
    expect(renewed.data.jti).toBe(creds.data.jti);
    // node-vault's renew, and the legacy alias with the id in the path.
    expect((await root.renew({ lease_id: creds.lease_id, increment: 300 })).lease_duration).toBe(300);
    expect((await root.write(`sys/renew/${creds.lease_id}`, { increment: 120 })).lease_duration).toBe(120);

    const ids = await root.list('sys/leases/lookup/tvm/creds/demo/');
    expect(ids.data.keys).toContain(creds.lease_id.split('/').pop());
    expect((await root.list('sys/leases/lookup/tvm/')).data.keys).toContain('creds/');
    expect((await failure(() => root.list('sys/leases/lookup/nothing/'))).status).toBe(404);

    await root.revoke({ lease_id: creds.lease_id });
    await root.write('sys/revoke', { lease_id: creds.lease_id });
    expect(await failure(() => root.write('sys/leases/lookup', { lease_id: creds.lease_id }))).toEqual({ status: 400, message: 'invalid lease' });
    expect((await failure(() => root.write('sys/leases/renew', { lease_id: creds.lease_id }))).status).toBe(400);
  });

  it('revoke-prefix revokes everything under the prefix', async () => {
    await root.write('tvm/roles/bulk', { read: ['db://bulk/*'] });
    const a = await root.read('tvm/creds/bulk');
    const b = await root.read('tvm/creds/bulk');
    const keep = await root.read('tvm/creds/demo');
    await root.write('sys/leases/revoke-prefix/tvm/creds/bulk', {});
    for (const l of [a, b]) expect((await failure(() => root.write('sys/leases/lookup', { lease_id: l.lease_id }))).status).toBe(400);
    expect((await root.write('sys/leases/lookup', { lease_id: keep.lease_id })).data.id).toBe(keep.lease_id);
    // node-vault's revokePrefix uses the legacy sys/revoke-prefix path.
    await root.revokePrefix({ path_prefix: 'tvm/creds/demo' });
    expect((await failure(() => root.write('sys/leases/lookup', { lease_id: keep.lease_id }))).status).toBe(400);
  });

  it('the default policy lets a token look up and renew leases', async () => {
    const app = await tokenWith('path "tvm/creds/demo" { capabilities = ["read"] }', 'lease-user');
    const creds = await app.read('tvm/creds/demo');
    expect((await app.write('sys/leases/lookup', { lease_id: creds.lease_id })).data.id).toBe(creds.lease_id);
    expect((await app.write('sys/leases/renew', { lease_id: creds.lease_id, increment: 60 })).lease_duration).toBe(60);
    expect((await failure(() => app.write('sys/leases/revoke', { lease_id: creds.lease_id }))).status).toBe(403);
  });
});

// ---------------------------------------------------------------------------
// The transport against a fake engine and a fake expiration manager.

describe('transport with a fake engine', () => {
  const calls: LogicalRequest[] = [];
  let failRegister = false;
  let http: NodeServer;
  let base = '';
  let rootToken = '';

  const fake: Backend = {
    type: 'secret',
    async handleRequest(req: LogicalRequest): Promise<LogicalResponse | null> {
      calls.push(req);
      switch (req.path) {
        case 'secret':
          if (req.operation === 'revoke') return null;
          return {
            data: { value: 1 },
            secret: { type: 'fake', ttlMs: 90_500, maxTtlMs: 600_000, renewable: false, internalData: { id: 7 } },
          };
        case 'raw':
          return { data: { http_raw_body: 'plain text', http_content_type: 'text/plain', http_status_code: 202 } };
        case 'busy':
          throw new EngineError('ERR_TOO_MANY_LEASES', 'too many active leases');
        case 'broken':
          throw new Error('disk on fire at /secret/path');
        case 'nothing':
          return null;
        default:
          throw new EngineError('ERR_UNSUPPORTED_PATH', `unsupported path: ${req.path}`);
      }
    },
    async handleExistenceCheck() {
      return { checkFound: false, exists: false };
    },
    specialPaths: () => ({ unauthenticated: ['pub*'], root: ['admin/*'] }),
    async initialize() {},
    invalidateKey() {},
    async cleanup() {},
  };

  beforeAll(async () => {
    const storage = openMemoryStorage();
    const clock = Date.now;
    const leases: LeaseManager = {
      register(input) {
        if (failRegister) throw new Error('storage full');
        const entry: LeaseEntry = {
          leaseId: `${input.mountPoint}${input.path}/abc`,
          mountPoint: input.mountPoint,
          path: input.path,
          secret: input.secret,
          clientTokenId: input.clientTokenId,
          issueTimeMs: clock(),
          expireTimeMs: clock() + input.secret.ttlMs,
        };
        return entry;
      },
      lookup: () => null,
      renew: async () => {
        throw new Error('no');
      },
      revoke: async () => undefined,
      revokePrefix: async () => undefined,
      revokeByToken: async () => undefined,
      revokeByMount: async () => undefined,
      list: () => [],
    };
    const policies = new PolicyStore(storage);
    await policies.load();
    const tokens = new TokenStore({ storage, clock, revokeLeases: async () => undefined });
    const mounts = new SecretsTable({ storage, createBackend: () => fake });
    await mounts.mount({ path: 'fake', type: 'tvm' });
    const wrapping = new WrappingStore({ storage, tokens, clock });
    rootToken = (
      await tokens.create({
        policies: ['root'],
        parent: '',
        ttlMs: 0,
        explicitMaxTtlMs: 0,
        displayName: 'root',
        meta: null,
        renewable: false,
        numUses: 0,
        path: 'auth/token/root',
      })
    ).id;
    http = createServer(
      createRequestHandler({
        clock,
        tokens,
        policies,
        mounts,
        auth: new AuthTable({ storage, clock }),
        identity: new IdentityStore({ storage, clock }),
        wrapping,
        leases,
        audit: new AuditTable({ storage, clock }),
        clusterName: 't',
        clusterId: 'c',
        storageType: 'inmem',
        sealType: 'shamir',
      }),
    );
    acceptListMethod(http);
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/v1/fake`;
  });

  afterAll(async () => {
    await new Promise((r) => http.close(r));
  });

  const get = (path: string, token: string | null = rootToken) =>
    fetch(`${base}/${path}`, { headers: token ? { 'X-Vault-Token': token } : {} });

  it('registers a secret\'s lease and puts it in the envelope', async () => {
    const res = await get('secret');
    expect(await res.json()).toMatchObject({ lease_id: 'fake/secret/abc', lease_duration: 91, renewable: false, data: { value: 1 } });
    const req = calls.at(-1)!;
    expect(req).toMatchObject({ operation: 'read', path: 'secret', mountPoint: 'fake/', caller: { displayName: 'root', policies: ['root'] } });
    expect(req.caller.remoteAddr).toBe('127.0.0.1');
  });

  it('when registration fails, revokes through the engine and answers 500', async () => {
    failRegister = true;
    try {
      calls.length = 0;
      const res = await get('secret');
      expect(res.status).toBe(500);
      expect(calls.map((c) => c.operation)).toEqual(['read', 'revoke']);
      expect(calls[1].secret).toMatchObject({ type: 'fake', internalData: { id: 7 } });
    } finally {
      failRegister = false;
    }
  });

  it('raw bodies, engine error statuses, hidden internal errors, null answers', async () => {
    const raw = await get('raw');
    expect(raw.status).toBe(202);
    expect(raw.headers.get('content-type')).toBe('text/plain');
    expect(await raw.text()).toBe('plain text');
    const busy = await get('busy');
    expect(busy.status).toBe(429);
    // An engine's coded error reaches the client as Vault's core lists it.
    expect(await busy.json()).toEqual({ errors: ['1 error occurred:\n\t* too many active leases\n\n'] });
    const broken = await get('broken');
    expect(broken.status).toBe(500);
    expect(await broken.text()).not.toContain('disk on fire');
    expect((await get('nothing')).status).toBe(404);
    const write = await fetch(`${base}/nothing`, { method: 'POST', headers: { 'X-Vault-Token': rootToken }, body: '{}' });
    expect(write.status).toBe(204);
  });

  it('honours the engine\'s unauthenticated paths', async () => {
    expect((await get('public', null)).status).toBe(404);
    expect((await get('raw', null)).status).toBe(403);
  });
});

describe('ListMethodRewriter', () => {
  const feedAll = (chunks: string[]): string => {
    const r = new ListMethodRewriter();
    return chunks.flatMap((c) => r.feed(Buffer.from(c, 'latin1'))).map((b) => b.toString('latin1')).join('');
  };

  it('renames LIST at request starts only, across chunk splits', () => {
    expect(feedAll(['LIST /v1/a HTTP/1.1\r\nHost: x\r\n\r\n'])).toBe('LINK /v1/a HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(feedAll(['LI', 'ST /v1/a HTTP/1.1\r\nHo', 'st: x\r\n\r\n'])).toBe('LINK /v1/a HTTP/1.1\r\nHost: x\r\n\r\n');
  });

  it('leaves bodies alone, with Content-Length or chunked framing', () => {
    const body = 'LIST /v1/not-a-request HTTP/1.1\r\n\r\n';
    const post = `POST /v1/a HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const list = 'LIST /v1/b HTTP/1.1\r\n\r\n';
    expect(feedAll([post + list])).toBe(post + list.replace('LIST', 'LINK'));
    expect(feedAll([post.slice(0, 50), post.slice(50), list])).toBe(post + list.replace('LIST', 'LINK'));
    const chunked = `POST /v1/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    expect(feedAll([chunked, list])).toBe(chunked + list.replace('LIST', 'LINK'));
    expect(feedAll([chunked.slice(0, 70), chunked.slice(70, 90), chunked.slice(90), list])).toBe(chunked + list.replace('LIST', 'LINK'));
  });
});

describe('LIST on a natively parsed connection (hand-over to the rewriter)', () => {
  let bare: NodeServer;
  let port: number;
  const refused: string[] = [];

  beforeAll(async () => {
    bare = createServer((req, res) => {
      // A slow answer, so a LIST pipelined behind it must wait for it.
      const delay = req.url === '/slow' ? 50 : 0;
      setTimeout(() => res.end(`${req.method} ${req.url}`), delay);
    });
    acceptListMethod(bare, (err, socket) => {
      refused.push((err as { code?: string }).code ?? '');
      socket.destroy();
    });
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    port = (bare.address() as AddressInfo).port;
  });
  afterAll(async () => {
    bare.closeAllConnections();
    await new Promise((r) => bare.close(r));
  });

  /** Sends the chunks (a pause between them) on one connection; resolves with the bodies of `expected` answers. */
  const exchange = (chunks: string[], expected: number): Promise<string[]> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      const bodies = (): string[] =>
        received
          .split('HTTP/1.1 ')
          .slice(1)
          .map((a) => a.split('\r\n\r\n')[1] ?? '');
      socket.on('data', (d: Buffer) => {
        received += d.toString('latin1');
        const got = bodies();
        if (got.length === expected && got.every((b) => b.length > 0)) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error(`closed after ${JSON.stringify(received)}`)));
      void (async () => {
        for (const c of chunks) {
          socket.write(c);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
    });
  const req = (method: string, path: string): string => `${method} ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

  it('as the first request, and keeps serving the connection after it', async () => {
    expect(await exchange([req('LIST', '/a'), req('GET', '/b'), req('LIST', '/c')], 3)).toEqual(['LINK /a', 'GET /b', 'LINK /c']);
  });

  it('after other requests on the connection, and when LI and ST arrive in different chunks', async () => {
    expect(await exchange([req('GET', '/a'), 'LI', `ST /b HTTP/1.1\r\nHost: x\r\n\r\n`], 2)).toEqual(['GET /a', 'LINK /b']);
    expect(await exchange([req('GET', '/a'), 'L', `IST /b HTTP/1.1\r\nHost: x\r\n\r\n`], 2)).toEqual(['GET /a', 'LINK /b']);
  });

  it('pipelined behind a request whose answer is still under way: the answers keep their order', async () => {
    expect(await exchange([req('GET', '/slow') + req('LIST', '/b') + req('GET', '/c')], 3)).toEqual(['GET /slow', 'LINK /b', 'GET /c']);
  });

  it('other bad methods still go to the client error handler', async () => {
    refused.length = 0;
    await expect(exchange(['LISX /a HTTP/1.1\r\nHost: x\r\n\r\n'], 1)).rejects.toThrow();
    await expect(exchange(['\x16\x03\x01\x02\x00\x01\x00'], 1)).rejects.toThrow();
    expect(refused.length).toBeGreaterThanOrEqual(1);
  });

  it('a longer method that ends in LIST (UNLIST, llhttp stops at its S as at LIST\'s) is refused, not served as LIST', async () => {
    refused.length = 0;
    await expect(exchange(['UNLIST /a HTTP/1.1\r\nHost: x\r\n\r\n'], 1)).rejects.toThrow();
    await expect(exchange([req('GET', '/a') + 'UNLIST /b HTTP/1.1\r\nHost: x\r\n\r\n'], 2)).rejects.toThrow();
    expect(refused).toEqual(['HPE_INVALID_METHOD', 'HPE_INVALID_METHOD']);
  });
});
