// The dev server tried as an attacker would (hardening issue, items 1-4 and 6):
// a lease id is not a credential, no deny rule can be sidestepped by another
// spelling of a name or path, deeply nested JSON is a 400 (never a 500), no
// error echoes a secret, and HEAD changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Answer, type Harness } from './auth-helpers.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  for (const role of ['a', 'b']) {
    expect((await h.call('POST', `tvm/roles/${role}`, { read: [`db://${role}/*`], ttl: '5m', max_ttl: '1h' })).status).toBe(204);
  }
});

afterAll(async () => {
  await h?.close();
});

async function policy(name: string, text: string): Promise<void> {
  expect((await h.call('PUT', `sys/policies/acl/${name}`, { policy: text })).status).toBe(204);
}

async function tokenWith(...policies: string[]): Promise<string> {
  const made = await h.call('POST', 'auth/token/create', { policies, ttl: '1h' });
  expect(made.status).toBe(200);
  return made.body.auth!.client_token as string;
}

/** The answer, with what a test must never see in it or in the server's logs. */
function expectNoEcho(answer: Answer, ...secrets: string[]): void {
  for (const s of secrets) {
    expect(answer.text.includes(s), 'the response echoes a secret').toBe(false);
    expect(h.logs.some((l) => l.includes(s)), 'a log line holds a secret').toBe(false);
  }
}

describe('1. a lease id is never a credential', () => {
  let onlyA: string;
  let leaseB: string;

  beforeAll(async () => {
    await policy('only-a', 'path "tvm/creds/a" { capabilities = ["read", "update"] }');
    onlyA = await tokenWith('only-a');
    const b = await h.call('GET', 'tvm/creds/b');
    leaseB = b.body.lease_id as string;
    expect(leaseB).toMatch(/^tvm\/creds\/b\//);
  });

  it('a token whose policy allows only role a cannot renew a lease of role b created by root, by any route', async () => {
    for (const [method, path, body] of [
      ['PUT', 'sys/leases/renew', { lease_id: leaseB }],
      ['PUT', `sys/leases/renew/${leaseB}`, {}],
      ['PUT', 'sys/renew', { lease_id: leaseB }],
      ['PUT', `sys/renew/${leaseB}`, {}],
    ] as const) {
      const r = await h.call(method, path, body, onlyA);
      // The body forms pass the default policy and meet the owner check (bare words); the path forms meet
      // the ACL, which Vault's core answers as a list.
      expect(r, path).toMatchObject({ status: 403, body: { errors: [expect.stringMatching(/^(1 error occurred:\n\t\* )?permission denied(\n\n)?$/)] } });
      expectNoEcho(r, leaseB);
    }
    // Nor fetch its renewed token (its ACL forbids creds/b, and it is not the lease's holder).
    await h.call('PUT', 'sys/leases/renew', { lease_id: leaseB });
    const jti = (await h.call('PUT', 'sys/leases/renew', { lease_id: leaseB })).body.data!.jti as string;
    expect((await h.call('POST', 'tvm/creds/b', { jti }, onlyA)).status).toBe(403);
  });

  it('the token that obtained a lease renews it, and only it fetches the renewed token', async () => {
    const mine = await h.call('GET', 'tvm/creds/a', undefined, onlyA);
    const lease = mine.body.lease_id as string;
    const renew = await h.call('PUT', 'sys/leases/renew', { lease_id: lease, increment: '10m' }, onlyA);
    expect(renew.status).toBe(200);
    expect(renew.body.data).not.toHaveProperty('token');
    expect(renew.text).not.toMatch(/eyJ/);
    const jti = renew.body.data!.jti as string;
    const fetched = await h.call('POST', 'tvm/creds/a', { jti }, onlyA);
    expect(fetched.status).toBe(200);
    expect(fetched.body.data!.token).not.toBe(mine.body.data!.token);
    expect(fetched.body.lease_id).toBe('');
    // Root may renew any lease (sudo), but the token stays its holder's.
    expect((await h.call('PUT', 'sys/leases/renew', { lease_id: lease })).status).toBe(200);
    const asRoot = await h.call('POST', 'tvm/creds/a', { jti });
    expect(asRoot.status).toBe(403);
    expect(asRoot.body.errors![0]).toContain('another identity');
  });

  it('a parent token or a new login of the same workload may renew a lease; an operator needs sudo on the renew path', async () => {
    await policy('parent', 'path "tvm/creds/a" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }');
    const parent = await tokenWith('parent');
    const child = (await h.call('POST', 'auth/token/create', { policies: ['parent'] }, parent)).body.auth!.client_token as string;
    const lease = (await h.call('GET', 'tvm/creds/a', undefined, child)).body.lease_id as string;
    expect((await h.call('PUT', 'sys/leases/renew', { lease_id: lease }, parent)).status).toBe(200);

    // The same workload after a new login (one entity, another token) renews and fetches; another workload cannot.
    await h.call('POST', 'sys/auth/approle', { type: 'approle' });
    const login = async (role: string): Promise<string> => {
      await h.call('POST', `auth/approle/role/${role}`, { token_policies: ['only-a'] });
      const roleId = (await h.call('GET', `auth/approle/role/${role}/role-id`)).body.data!.role_id;
      const secretId = (await h.call('POST', `auth/approle/role/${role}/secret-id`)).body.data!.secret_id;
      return (await h.call('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId }, null)).body.auth!.client_token as string;
    };
    const first = await login('svc');
    const issued = await h.call('GET', 'tvm/creds/a', undefined, first);
    const again = await login('svc');
    const stranger = await login('other-svc');
    expect((await h.call('PUT', 'sys/leases/renew', { lease_id: issued.body.lease_id }, stranger)).status).toBe(403);
    expect((await h.call('PUT', 'sys/leases/renew', { lease_id: issued.body.lease_id }, again)).status).toBe(200);
    expect((await h.call('POST', 'tvm/creds/a', { jti: issued.body.data!.jti }, again)).status).toBe(200);
    expect((await h.call('POST', 'tvm/creds/a', { jti: issued.body.data!.jti }, stranger)).status).toBe(403);

    await policy('renewer', 'path "sys/leases/renew" { capabilities = ["update"] }');
    expect((await h.call('PUT', 'sys/leases/renew', { lease_id: lease }, await tokenWith('renewer'))).status).toBe(403);
    await policy('lease-admin', 'path "sys/leases/renew" { capabilities = ["update", "sudo"] }');
    expect((await h.call('PUT', 'sys/leases/renew', { lease_id: lease }, await tokenWith('lease-admin'))).status).toBe(200);
  });
});

describe('2. deny rules see the one canonical form of every name and path', () => {
  it('policies: no other spelling of a denied policy name can rewrite it, nor widen default', async () => {
    await policy('admin', 'path "tvm/roles/*" { capabilities = ["read"] }');
    await policy(
      'policy-writer',
      [
        'path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }',
        'path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }',
        'path "sys/policies/acl/admin" { capabilities = ["deny"] }',
        'path "sys/policy/admin" { capabilities = ["deny"] }',
        'path "sys/policies/acl/default" { capabilities = ["deny"] }',
      ].join('\n'),
    );
    const writer = await tokenWith('policy-writer');
    const evil = { policy: 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }' };
    for (const name of ['admin', 'ADMIN', 'Admin', 'admin%20', '%20admin', '%09admin', 'admin/', '/admin', 'DEFAULT', 'Default%20']) {
      // Refused: by the deny rule, or (a control character) as an invalid path.
      const r = await h.call('PUT', `sys/policies/acl/${name}`, evil, writer);
      expect([400, 403], name).toContain(r.status);
      expect([400, 403], name).toContain((await h.call('DELETE', `sys/policies/acl/${name}`, undefined, writer)).status);
    }
    for (const name of ['ADMIN', 'admin%20']) expect((await h.call('PUT', `sys/policy/${name}`, { rules: evil.policy }, writer)).status).toBe(403);
    expect((await h.call('GET', 'sys/policies/acl/admin')).body.data!.policy).toBe('path "tvm/roles/*" { capabilities = ["read"] }');
    expect((await h.call('GET', 'sys/policies/acl/default')).body.data!.policy).not.toContain('path "*"');
    // An allowed name in another spelling reaches the one policy.
    expect((await h.call('PUT', 'sys/policies/acl/%20Team-A%20', { policy: 'path "tvm/creds/a" { capabilities = ["read"] }' }, writer)).status).toBe(204);
    expect((await h.call('GET', 'sys/policies/acl/team-a', undefined, writer)).status).toBe(200);
  });

  it('AppRole: a denied role is not reachable as ADMIN, Admin or with extra slashes, and its secret ids cannot be minted', async () => {
    await h.call('POST', 'sys/auth/approle', { type: 'approle' }); // enabled by an earlier test, or here
    expect((await h.call('POST', 'auth/approle/role/admin', { token_policies: ['admin'] })).status).toBe(204);
    await policy(
      'approle-operator',
      ['path "auth/approle/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }', 'path "auth/approle/role/admin*" { capabilities = ["deny"] }'].join('\n'),
    );
    const operator = await tokenWith('approle-operator');
    for (const name of ['admin', 'ADMIN', 'Admin', 'aDmIn']) {
      expect((await h.call('POST', `auth/approle/role/${name}/secret-id`, {}, operator)).status, name).toBe(403);
      expect((await h.call('GET', `auth/approle/role/${name}/role-id`, undefined, operator)).status, name).toBe(403);
      expect((await h.call('POST', `auth/approle/role/${name}`, { token_policies: ['root'] }, operator)).status, name).toBe(403);
    }
    for (const path of ['auth/approle/role//admin/secret-id', 'auth/approle//role/ADMIN/secret-id', 'auth/approle/role/admin/secret-id/']) {
      expect((await h.call('POST', path, {}, operator)).status, path).toBe(403);
    }
    // Its own roles are its to manage, in any case.
    expect((await h.call('POST', 'auth/approle/role/Worker', { token_policies: ['default'] }, operator)).status).toBe(204);
    expect((await h.call('GET', 'auth/approle/role/worker/role-id', undefined, operator)).status).toBe(200);
  });

  it('JWT: a denied role cannot be rewritten as ADMIN', async () => {
    expect((await h.call('POST', 'sys/auth/jwt', { type: 'jwt' })).status).toBe(204);
    const role = { role_type: 'jwt', user_claim: 'sub', bound_audiences: ['x'], token_policies: ['admin'] };
    expect((await h.call('POST', 'auth/jwt/role/admin', role)).status).toBe(204);
    await policy('jwt-operator', ['path "auth/jwt/role/*" { capabilities = ["create", "read", "update", "delete"] }', 'path "auth/jwt/role/admin" { capabilities = ["deny"] }'].join('\n'));
    const operator = await tokenWith('jwt-operator');
    for (const name of ['ADMIN', 'Admin', 'admin/', '/admin']) {
      expect((await h.call('POST', `auth/jwt/role/${name}`, { ...role, token_policies: ['root'] }, operator)).status, name).toBe(403);
      expect((await h.call('DELETE', `auth/jwt/role/${name}`, undefined, operator)).status, name).toBe(403);
    }
    expect((await h.call('GET', 'auth/jwt/role/admin')).body.data!.token_policies).toEqual(['admin']);
  });

  it('secrets and auth mounts: a denied mount cannot be removed through a trailing or doubled slash', async () => {
    expect((await h.call('POST', 'sys/mounts/victim', { type: 'tvm' })).status).toBe(204);
    expect((await h.call('POST', 'victim/roles/keep', { read: ['db://keep'] })).status).toBe(204);
    expect((await h.call('POST', 'sys/auth/victim', { type: 'approle' })).status).toBe(204);
    await policy(
      'mount-operator',
      [
        'path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "sudo"] }',
        'path "sys/mounts/victim" { capabilities = ["deny"] }',
        'path "sys/auth/*" { capabilities = ["create", "read", "update", "delete", "sudo"] }',
        'path "sys/auth/victim" { capabilities = ["deny"] }',
      ].join('\n'),
    );
    const operator = await tokenWith('mount-operator');
    for (const kind of ['mounts', 'auth']) {
      for (const path of [`sys/${kind}/victim/`, `sys/${kind}//victim`, `sys/${kind}/victim//`, `sys//${kind}/victim`]) {
        expect((await h.call('DELETE', path, undefined, operator)).status, path).toBe(403);
      }
    }
    expect((await h.call('GET', 'victim/roles/keep')).status).toBe(200);
    expect(((await h.call('GET', 'sys/auth')).body.data as Record<string, unknown>)['victim/']).toBeDefined();
  });

  it('tvm roles: another spelling of a denied role is another (case-sensitive) role or refused, never the denied one', async () => {
    expect((await h.call('POST', 'tvm/roles/admin', { read: ['db://admin/*'] })).status).toBe(204);
    await policy('role-writer', ['path "tvm/roles/*" { capabilities = ["create", "read", "update", "delete"] }', 'path "tvm/roles/admin" { capabilities = ["deny"] }'].join('\n'));
    const writer = await tokenWith('role-writer');
    for (const path of ['tvm/roles/admin', 'tvm/roles/admin/', 'tvm/roles//admin', 'tvm//roles/admin']) {
      expect((await h.call('POST', path, { read: ['db://**'] }, writer)).status, path).toBe(403);
      expect((await h.call('DELETE', path, undefined, writer)).status, path).toBe(403);
    }
    expect((await h.call('POST', 'tvm/roles/admin%20', { read: ['db://**'] }, writer)).status).toBe(400);
    expect((await h.call('GET', 'tvm/roles/admin')).body.data!.read).toEqual(['db://admin/*']);
  });

  it('sys/capabilities answers for the canonical path, as the router checks it', async () => {
    const writer = await tokenWith('policy-writer');
    const caps = await h.call('POST', 'sys/capabilities-self', { paths: ['sys/policies/acl/ADMIN', 'sys/policies/acl/admin'] }, writer);
    expect(caps.body.data!['sys/policies/acl/ADMIN']).toEqual(['deny']);
  });
});

describe('3. deeply nested JSON is a 400 at parse time, on every path', () => {
  const deep = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;

  it('5,000 levels of arrays: a 400 naming the limit, with or without a token, and nothing logged as failed', async () => {
    for (const [path, token] of [
      ['sys/wrapping/unwrap', null],
      ['sys/wrapping/lookup', null],
      ['auth/approle/login', null],
      ['tvm/roles/x', h.rootToken],
      ['tvm/creds/a', h.rootToken],
      ['auth/token/create', h.rootToken],
      ['sys/policies/acl/x', h.rootToken],
      ['sys/mounts/deep', h.rootToken],
      ['sys/capabilities', h.rootToken],
    ] as const) {
      for (const body of [`{"token": ${deep(5000)}}`, `{"a": {"b": ${deep(5000)}}}`, deep(5000)]) {
        const r = await h.call('POST', path, body, token);
        expect(r.status, path).toBe(400);
        expect(r.body.errors![0], path).toContain('nesting depth');
      }
    }
    expect(h.logs.some((l) => l.includes('request failed'))).toBe(false);
  });

  it('values nested within the limit are refused with a bounded message wherever they are rendered', async () => {
    const nested = JSON.parse(deep(250)) as unknown;
    for (const [path, body] of [
      ['tvm/roles/x', { read: nested }],
      ['tvm/roles/x', { read: ['db://x'], extra_claims: nested }],
      ['tvm/roles/x', { read: ['db://x'], extra_claims: deep(5000) }],
      ['tvm/creds/a', { ttl: nested }],
      ['sys/mounts/deep', { type: 'tvm', config: { default_lease_ttl: nested } }],
      ['sys/policies/acl/x', { policy: JSON.stringify({ path: { a: { policy: nested } } }) }],
      ['auth/token/create', { ttl: nested, meta: { k: nested } }],
    ] as const) {
      const r = await h.call('POST', path, body);
      expect(r.status, path).toBe(400);
      expect(r.body.errors![0].length, path).toBeLessThan(300);
    }
    expect(h.logs.some((l) => l.includes('request failed'))).toBe(false);
  });
});

describe('4. errors never echo a secret', () => {
  it('token, wrapping token, secret id, JWT and token id in a wrong type or malformed body are named, not shown', async () => {
    const token = await tokenWith('default');
    const wrapped = await fetch(`${h.address}/v1/sys/wrapping/wrap`, {
      method: 'POST',
      headers: { 'X-Vault-Token': h.rootToken, 'X-Vault-Wrap-TTL': '5m' },
      body: JSON.stringify({ secret: 'x' }),
    });
    const wrappingToken = ((await wrapped.json()) as { wrap_info: { token: string } }).wrap_info.token;
    const jwt = ((await h.call('GET', 'tvm/creds/a')).body.data!.token as string);
    const cases: Array<[string, string, unknown, string | null, string]> = [
      ['POST', 'auth/token/lookup', { token: [token] }, h.rootToken, token],
      ['POST', 'auth/token/renew', { token: [token] }, h.rootToken, token],
      ['POST', 'auth/token/revoke', { token: { t: token } }, h.rootToken, token],
      ['POST', 'sys/capabilities', { token: [token], paths: ['x'] }, h.rootToken, token],
      ['POST', 'auth/token/create', { id: [token] }, h.rootToken, token],
      ['POST', 'sys/wrapping/unwrap', { token: [wrappingToken] }, null, wrappingToken],
      ['POST', 'sys/wrapping/lookup', { token: [wrappingToken] }, null, wrappingToken],
      ['POST', 'tvm/introspect', { token: [jwt] }, h.rootToken, jwt],
      ['POST', 'auth/approle/login', { role_id: 'r', secret_id: [token] }, null, token],
      ['POST', 'auth/jwt/login', { role: 'admin', jwt: [jwt] }, null, jwt],
      ['POST', 'auth/token/lookup', `{"token": ${token}}`, h.rootToken, token],
      ['POST', 'sys/wrapping/unwrap', `{"token": "${wrappingToken}"`, null, wrappingToken],
    ];
    for (const [method, path, body, caller, secret] of cases) {
      const r = await h.call(method, path, body, caller);
      expect(r.status, path).toBe(400);
      expectNoEcho(r, secret, secret.slice(4, 20));
    }
    // The wrapping token was never consumed by the refused calls.
    expect((await h.call('POST', 'sys/wrapping/unwrap', { token: wrappingToken }, null)).status).toBe(200);
  });

  it('a token in a path is cut from the 404 message and from the log', async () => {
    const token = await tokenWith('default');
    const r = await h.call('GET', `auth/token/lookup/${token}`);
    expect(r.status).toBe(404);
    expectNoEcho(r, token);
  });
});

describe('6. HEAD never changes state', () => {
  it('HEAD on creds mints nothing and uses up no max_active_leases slot; status endpoints still answer it', async () => {
    expect((await h.call('POST', 'tvm/roles/one', { read: ['db://one'], max_active_leases: 1 })).status).toBe(204);
    for (let i = 0; i < 3; i++) {
      const head = await fetch(`${h.address}/v1/tvm/creds/one`, { method: 'HEAD', headers: { 'X-Vault-Token': h.rootToken } });
      expect(head.status).toBe(405);
    }
    expect((await h.call('LIST', 'sys/leases/lookup/tvm/creds/one/')).status).toBe(404);
    expect((await h.call('GET', 'tvm/creds/one')).status).toBe(200);
    const health = await fetch(`${h.address}/v1/sys/health`, { method: 'HEAD' });
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('');
  });
});
