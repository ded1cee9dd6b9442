// Identity: the workload a token logged in as is the `sub` of what it vends
// (`<auth mount>:<role name or user claim>`), child tokens act for the same
// workload, tokens without a login keep their display name as before, and
// the token settings of the login role (max ttl, uses, default policy) hold.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf, startHarness, type Harness } from './auth-helpers.ts';

let h: Harness;

async function appRoleLogin(mount: string, name: string, role: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  expect((await h.call('POST', `auth/${mount}/role/${name}`, { token_policies: ['vend'], ...role })).status).toBe(204);
  const roleId = (await h.call('GET', `auth/${mount}/role/${name}/role-id`)).body.data!.role_id as string;
  const secretId = (await h.call('POST', `auth/${mount}/role/${name}/secret-id`, {})).body.data!.secret_id as string;
  const r = await h.call('POST', `auth/${mount}/login`, { role_id: roleId, secret_id: secretId }, null);
  expect(r.status, r.text).toBe(200);
  return r.body.auth!;
}

async function vendSub(token: string): Promise<unknown> {
  const r = await h.call('GET', 'tvm/creds/demo', undefined, token);
  expect(r.status, r.text).toBe(200);
  return claimsOf(r.body.data!.token as string).sub;
}

beforeAll(async () => {
  h = await startHarness();
  await h.call('POST', 'sys/policies/acl/vend', {
    policy: 'path "tvm/creds/demo" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }',
  });
  await h.call('POST', 'sys/auth/approle', { type: 'approle' });
  await h.call('POST', 'sys/auth/team-b/approle', { type: 'approle' });
});

afterAll(async () => {
  await h?.close();
});

describe('the subject of vended tokens', () => {
  it('is the mount-qualified role name after an AppRole login', async () => {
    const auth = await appRoleLogin('approle', 'orders-service');
    expect(await vendSub(auth.client_token as string)).toBe('approle:orders-service');
  });

  it('tells the same role name on two mounts apart', async () => {
    const auth = await appRoleLogin('team-b/approle', 'orders-service');
    expect(await vendSub(auth.client_token as string)).toBe('team-b/approle:orders-service');
    const self = await h.call('GET', 'auth/token/lookup-self', undefined, auth.client_token as string);
    expect(self.body.data!.display_name).toBe('team-b-approle');
  });

  it('is inherited by child tokens, with the entity', async () => {
    const auth = await appRoleLogin('approle', 'parent-app');
    const child = await h.call('POST', 'auth/token/create', { ttl: '10m' }, auth.client_token as string);
    expect(child.status, child.text).toBe(200);
    expect(child.body.auth!.entity_id).toBe(auth.entity_id);
    expect(await vendSub(child.body.auth!.client_token as string)).toBe('approle:parent-app');
  });

  it('stays the display name for tokens that did not come from a login', async () => {
    expect(await vendSub(h.rootToken)).toBe('root');
    const made = await h.call('POST', 'auth/token/create', { policies: ['vend'], display_name: 'ci job' });
    expect(await vendSub(made.body.auth!.client_token as string)).toBe('token-ci-job');
    expect(made.body.auth!.entity_id).toBe('');
  });

  it('belongs to one entity per workload, listed under identity/', async () => {
    const a = await appRoleLogin('approle', 'same');
    const b = await appRoleLogin('approle', 'same');
    const c = await appRoleLogin('team-b/approle', 'same');
    expect(b.entity_id).toBe(a.entity_id);
    expect(c.entity_id).not.toBe(a.entity_id);
    const list = await h.call('LIST', 'identity/entity/id');
    expect(list.body.data!.keys).toEqual(expect.arrayContaining([a.entity_id, c.entity_id]));
    expect((await h.call('GET', 'identity/entity/id/no-such-entity')).status).toBe(404);
    expect((await h.call('GET', `identity/entity/id/${a.entity_id as string}`, undefined, a.client_token as string)).status).toBe(403);
  });
});

describe('token settings of the login role', () => {
  it('caps renewals at token_max_ttl', async () => {
    const auth = await appRoleLogin('approle', 'capped', { token_ttl: 60, token_max_ttl: 90 });
    expect(auth.lease_duration).toBe(60);
    h.advance(30_000);
    const renewed = await h.call('POST', 'auth/token/renew-self', { increment: '1h' }, auth.client_token as string);
    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.body.auth!.lease_duration).toBeLessThanOrEqual(60);
    expect(renewed.body.auth!.lease_duration).toBeGreaterThanOrEqual(59);
    const self = await h.call('GET', 'auth/token/lookup-self', undefined, auth.client_token as string);
    // The role's max ttl caps renewals without showing as an explicit max ttl (as in Vault).
    expect(self.body.data!.explicit_max_ttl).toBe(0);
  });

  it('limits uses with token_num_uses and leaves out default with token_no_default_policy', async () => {
    const auth = await appRoleLogin('approle', 'one-shot', { token_num_uses: 1, token_no_default_policy: true });
    expect(auth.policies).toEqual(['vend']);
    expect(auth.num_uses).toBe(1);
    expect((await h.call('GET', 'tvm/creds/demo', undefined, auth.client_token as string)).status).toBe(200);
    expect((await h.call('GET', 'tvm/creds/demo', undefined, auth.client_token as string)).status).toBe(403);
  });

  it('uses the mount\'s default lease ttl when the role sets none', async () => {
    await h.call('POST', 'sys/auth/short', { type: 'approle', config: { default_lease_ttl: '5m', max_lease_ttl: '10m' } });
    const auth = await appRoleLogin('short', 'app');
    expect(auth.lease_duration).toBe(300);
    expect((await h.call('GET', 'sys/auth/short')).body.data!.config).toMatchObject({ default_lease_ttl: 300, max_lease_ttl: 600 });
  });
});
