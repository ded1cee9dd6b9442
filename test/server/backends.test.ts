// Every backend of the dev server on the one framework: help and the OpenAPI
// document come from the routes' declarations, for the system backend, the
// token store, identity, the auth methods and the secrets engine alike; the
// document is merged per mount under its path and shows only mounts the token
// can reach.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './auth-helpers.ts';

let h: Harness;
let limited: string;

interface PathItem {
  description: string;
  parameters?: Array<{ name: string; description: string }>;
  get?: { summary: string; tags: string[] };
  post?: { summary: string; tags: string[]; requestBody?: { content: { 'application/json': { schema: { properties: Record<string, { description: string }> } } } } };
  delete?: { summary: string };
  'x-vault-unauthenticated'?: boolean;
}

async function spec(token?: string | null): Promise<{ status: number; paths: Record<string, PathItem>; body: Record<string, unknown> }> {
  const r = await h.call('GET', 'sys/internal/specs/openapi', undefined, token);
  return { status: r.status, paths: (r.body.paths ?? {}) as Record<string, PathItem>, body: r.body };
}

beforeAll(async () => {
  h = await startHarness();
  for (const [method, path, body] of [
    ['POST', 'sys/auth/approle', { type: 'approle' }],
    ['POST', 'sys/auth/jwt', { type: 'jwt' }],
    ['POST', 'sys/mounts/other', { type: 'tvm' }],
    ['PUT', 'sys/policies/acl/creds-only', { policy: 'path "tvm/creds/*" { capabilities = ["read"] }' }],
  ] as const) {
    const r = await h.call(method, path, body);
    expect(r.status, `${method} ${path}: ${r.text}`).toBeLessThan(300);
  }
  const t = await h.call('POST', 'auth/token/create', { policies: ['creds-only'], no_default_policy: true });
  limited = (t.body.auth as { client_token: string }).client_token;
});

afterAll(async () => {
  await h?.close();
});

describe('help from the declarations', () => {
  it.each([
    ['sys/leases/renew', 'Renew a lease.', 'increment (duration)'],
    ['sys/policies/acl/ADMIN', 'Read, write or delete an ACL policy.', 'policy (string)'],
    ['sys/mounts/tvm/tune', 'Tune a mount.', 'max_lease_ttl (duration)'],
    ['auth/token/create', 'Create a token.', 'explicit_max_ttl (duration)'],
    ['identity/entity/id/abc', 'An identity entity.', 'id (string)'],
    ['auth/approle/login', 'Logs in with a role ID and a secret ID', 'secret_id (string)'],
    ['auth/jwt/login', 'Logs in with a signed JWT', 'jwt (string)'],
    ['tvm/creds/demo', 'Issues a short-lived signed token for a role', 'ttl'],
  ])('%s?help=1 answers the route\'s synopsis and fields', async (path, synopsis, field) => {
    const r = await h.call('GET', `${path}?help=1`);
    expect(r.status, r.text).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(['help', 'see_also']);
    expect(r.body.see_also).toBeNull();
    expect(r.body.help).toContain(synopsis);
    expect(r.body.help).toContain(field);
  });

  it('needs read on the path, as the request itself would', async () => {
    expect((await h.call('GET', 'sys/leases/renew?help=1', undefined, null)).status).toBe(403);
    expect((await h.call('GET', 'sys/mounts?help=1', undefined, limited)).status).toBe(403);
    expect((await h.call('GET', 'tvm/creds/demo?help=1', undefined, limited)).status).toBe(200);
  });

  it('a status endpoint answers help without a token, and a wrong method with a bare 405', async () => {
    const help = await h.call('GET', 'sys/health?help=1', undefined, null);
    expect(help.status).toBe(200);
    expect(help.body.help).toContain('The server\'s health.');
    const wrong = await h.call('DELETE', 'sys/health', undefined, null);
    expect(wrong.status).toBe(405);
    expect(wrong.body).toEqual({ errors: [] });
  });
});

describe('sys/internal/specs/openapi', () => {
  it('merges every mount\'s declared routes under its path', async () => {
    const { status, paths, body } = await spec();
    expect(status).toBe(200);
    expect(body.openapi).toBe('3.0.2');
    expect(Object.keys(paths)).toEqual(
      expect.arrayContaining([
        '/sys/health',
        '/sys/mounts/{path}',
        '/sys/policies/acl/{name}',
        // An optional group stands for each of its paths, as Vault's framework expands them.
        '/sys/leases/renew',
        '/sys/leases/renew/{url_lease_id}',
        '/sys/renew',
        '/sys/renew/{url_lease_id}',
        '/sys/internal/specs/openapi',
        '/auth/token/create',
        '/auth/token/lookup-self',
        '/identity/entity/id/{id}',
        '/auth/approle/login',
        '/auth/approle/role/{role_name}',
        '/auth/jwt/login',
        '/auth/jwt/config',
        '/tvm/creds/{role}',
        '/tvm/roles/{name}',
        '/other/creds/{role}',
      ]),
    );
    expect(paths['/sys/health']['x-vault-unauthenticated']).toBe(true);
    expect(paths['/auth/approle/login']['x-vault-unauthenticated']).toBe(true);
    expect(paths['/sys/mounts']['x-vault-unauthenticated']).toBeUndefined();
    expect(paths['/sys/mounts/{path}'].get!.tags).toEqual(['system']);
    expect(paths['/auth/token/create'].post!.tags).toEqual(['auth']);
    expect(paths['/tvm/creds/{role}'].get!.tags).toEqual(['secrets']);
  });

  it('documents every path, operation and field', async () => {
    const { paths } = await spec();
    const undocumented: string[] = [];
    for (const [template, item] of Object.entries(paths)) {
      if (!item.description) undocumented.push(template);
      for (const p of item.parameters ?? []) if (!p.description) undocumented.push(`${template} {${p.name}}`);
      for (const op of [item.get, item.post, item.delete]) if (op && !op.summary) undocumented.push(`${template} operation`);
      const props = item.post?.requestBody?.content['application/json'].schema.properties ?? {};
      for (const [name, field] of Object.entries(props)) if (!field.description) undocumented.push(`${template} ${name}`);
    }
    expect(undocumented).toEqual([]);
    // The declared types, not the handler's raw checks, are what clients see.
    const renew = paths['/sys/leases/renew'].post!.requestBody!.content['application/json'].schema.properties;
    expect(renew.increment).toMatchObject({ type: 'string', format: 'duration' });
  });

  it('shows a token only the mounts it can reach, and nothing without one', async () => {
    const { status, paths } = await spec(limited);
    expect(status).toBe(200);
    expect(Object.keys(paths)).toContain('/tvm/creds/{role}');
    expect(Object.keys(paths).filter((p) => p.startsWith('/other/') || p.startsWith('/sys/') || p.startsWith('/auth/'))).toEqual([]);
    expect((await spec(null)).status).toBe(403);
  });
});
