// The AppRole auth method through Vault's HTTP API: enabling it, roles with
// the Terraform provider's field shapes, role IDs, secret IDs (ttl, uses,
// CIDRs), login, vending under a policy that names one role, ACLs on auth
// paths, bad input, disabling, and secrets kept out of the logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf, startHarness, type Harness } from './auth-helpers.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  expect((await h.call('POST', 'sys/auth/approle', { type: 'approle', description: 'workloads' })).status).toBe(204);
  await h.call('POST', 'tvm/roles/orders-rw', { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m' });
  await h.call('POST', 'tvm/roles/logs-ro', { read: ['s3://logs/app/**'], ttl: '5m' });
  await h.call('POST', 'sys/policies/acl/orders-service', {
    policy: 'path "tvm/creds/orders-rw" { capabilities = ["read", "update"] }',
  });
});

afterAll(async () => {
  await h?.close();
});

async function role(name: string, body: Record<string, unknown>): Promise<{ roleId: string }> {
  const w = await h.call('POST', `auth/approle/role/${name}`, body);
  expect(w.status, w.text).toBe(204);
  const r = await h.call('GET', `auth/approle/role/${name}/role-id`);
  return { roleId: r.body.data!.role_id as string };
}

async function secretId(name: string, body: Record<string, unknown> = {}): Promise<{ secretId: string; accessor: string }> {
  const r = await h.call('POST', `auth/approle/role/${name}/secret-id`, body);
  expect(r.status, r.text).toBe(200);
  return { secretId: r.body.data!.secret_id as string, accessor: r.body.data!.secret_id_accessor as string };
}

async function login(roleId: string, secret?: string): Promise<Awaited<ReturnType<Harness['call']>>> {
  return h.call('POST', 'auth/approle/login', { role_id: roleId, ...(secret === undefined ? {} : { secret_id: secret }) }, null);
}

describe('enabling AppRole', () => {
  it('lists the mount in sys/auth next to token/, and reads it alone', async () => {
    const list = await h.call('GET', 'sys/auth');
    expect(list.status).toBe(200);
    const approle = list.body.data!['approle/'] as Record<string, unknown>;
    expect(approle).toMatchObject({ type: 'approle', description: 'workloads', local: false, seal_wrap: false });
    expect(approle.accessor).toMatch(/^auth_approle_[0-9a-f]{8}$/);
    expect((approle.config as Record<string, unknown>).default_lease_ttl).toBe(0);
    expect(list.body.data!['token/']).toMatchObject({ type: 'token' });
    // Legacy clients read the mounts at the top level too.
    expect(list.body['approle/']).toMatchObject({ type: 'approle' });

    const one = await h.call('GET', 'sys/auth/approle');
    expect(one.body.data).toMatchObject({ type: 'approle', accessor: approle.accessor, uuid: approle.uuid });
    const tune = await h.call('GET', 'sys/mounts/auth/approle/tune');
    expect(tune.body.data).toMatchObject({ default_lease_ttl: 2764800, max_lease_ttl: 2764800, token_type: 'default-service' });
    expect((await h.call('GET', 'sys/auth/approle/tune')).body.data).toEqual(tune.body.data);
  });

  it('tunes the mount\'s lease ttls and description', async () => {
    expect((await h.call('POST', 'sys/auth/approle/tune', { default_lease_ttl: '1h', max_lease_ttl: '2h', description: 'tuned' })).status).toBe(204);
    expect((await h.call('GET', 'sys/auth/approle/tune')).body.data).toMatchObject({ default_lease_ttl: 3600, max_lease_ttl: 7200, description: 'tuned' });
    expect((await h.call('POST', 'sys/mounts/auth/approle/tune', { description: 'workloads' })).status).toBe(204);
    expect((await h.call('GET', 'sys/auth/approle')).body.data).toMatchObject({ description: 'workloads', config: { max_lease_ttl: 7200 } });
  });

  it('refuses unknown types, a missing type, a taken path and the token method', async () => {
    const unknown = await h.call('POST', 'sys/auth/ldap', { type: 'ldap' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors![0]).toMatch(/unsupported auth method type "ldap".*"approle" and "jwt"/);
    expect((await h.call('POST', 'sys/auth/x', {})).body.errors).toEqual(['missing required field type']);
    const taken = await h.call('POST', 'sys/auth/approle', { type: 'approle' });
    expect(taken).toMatchObject({ status: 400, body: { errors: ['path is already in use at approle/'] } });
    expect((await h.call('POST', 'sys/auth/tok2', { type: 'token' })).body.errors).toEqual(['token credential backend cannot be instantiated']);
    expect((await h.call('DELETE', 'sys/auth/token')).status).toBe(400);
    const missing = await h.call('GET', 'sys/auth/nothing');
    expect(missing).toMatchObject({ status: 400, body: { errors: ['No auth engine at nothing/'] } });
  });

  it('enables a path once when two requests race for it', async () => {
    const both = await Promise.all([h.call('POST', 'sys/auth/race', { type: 'approle' }), h.call('POST', 'sys/auth/race', { type: 'jwt' })]);
    expect(both.map((r) => r.status).sort()).toEqual([204, 400]);
    expect((await h.call('DELETE', 'sys/auth/race')).status).toBe(204);
  });

  it('needs sudo to enable auth methods', async () => {
    await h.call('POST', 'sys/policies/acl/auth-admin', { policy: 'path "sys/auth/*" { capabilities = ["create", "update", "read"] }' });
    const made = await h.call('POST', 'auth/token/create', { policies: ['auth-admin'] });
    const token = made.body.auth!.client_token as string;
    expect((await h.call('POST', 'sys/auth/other', { type: 'approle' }, token)).status).toBe(403);
  });
});

describe('roles', () => {
  it('stores a role written the way the Terraform provider writes it and reads it back with Vault\'s types', async () => {
    // vault_approle_auth_backend_role's create: token fields from tokenutil, secret-id fields.
    const w = await h.call('POST', 'auth/approle/role/orders-service', {
      token_policies: ['orders-service'],
      token_ttl: 600,
      token_max_ttl: 1800,
      token_type: 'default',
      bind_secret_id: true,
      secret_id_num_uses: 0,
      secret_id_ttl: 3600,
      local_secret_ids: false,
    });
    expect(w.status, w.text).toBe(204);
    const r = await h.call('GET', 'auth/approle/role/orders-service');
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({
      bind_secret_id: true,
      local_secret_ids: false,
      secret_id_bound_cidrs: null, // unset, as Vault and OpenBao answer it
      secret_id_num_uses: 0,
      secret_id_ttl: 3600,
      token_bound_cidrs: [],
      token_explicit_max_ttl: 0,
      token_max_ttl: 1800,
      token_no_default_policy: false,
      token_num_uses: 0,
      token_period: 0,
      token_policies: ['orders-service'],
      token_ttl: 600,
      token_type: 'default',
      alias_metadata: {},
    });
    expect((await h.call('LIST', 'auth/approle/role')).body.data).toEqual({ keys: ['orders-service'] });
  });

  it('accepts duration strings, comma lists and the legacy policies field, which reads show as well', async () => {
    await h.call('POST', 'auth/approle/role/legacy', { policies: 'a, b', token_ttl: '10m', secret_id_ttl: '1h' });
    const r = await h.call('GET', 'auth/approle/role/legacy');
    expect(r.body.data).toMatchObject({ token_policies: ['a', 'b'], policies: ['a', 'b'], token_ttl: 600, secret_id_ttl: 3600 });
    const both = await h.call('POST', 'auth/approle/role/legacy', { policies: ['a'], token_policies: ['a'] });
    expect(both).toMatchObject({ status: 400, body: { errors: ['cannot specify both "token_policies" and "policies"'] } });
  });

  it('warns about fields it does not know, as Vault does, instead of failing', async () => {
    const w = await h.call('POST', 'auth/approle/role/legacy', { token_ttl: 60, some_future_field: true });
    expect(w.status).toBe(200);
    expect(w.body.warnings).toEqual(['Endpoint ignored these unrecognized parameters: [some_future_field]']);
  });

  it('refuses bad values with a 400 naming the field', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ token_ttl: 'soon' }, /^invalid token_ttl: "soon" is not a duration/],
      [{ token_ttl: 600, token_max_ttl: 60 }, /"token_ttl" cannot be greater than "token_max_ttl"/],
      [{ token_type: 'batch' }, /^invalid token_type: "batch" is not supported: this server issues service tokens only/],
      [{ token_period: 60 }, /^invalid token_period: periodic tokens are not supported/],
      [{ token_bound_cidrs: ['10.0.0.0/33'] }, /^invalid token_bound_cidrs\[0\]: "10.0.0.0\/33" is not an IP address or CIDR block/],
      [{ secret_id_num_uses: -1 }, /^invalid secret_id_num_uses: -1 is negative/],
      [{ bind_secret_id: false }, /at least one constraint should be enabled on the role/],
    ];
    for (const [body, message] of cases) {
      const r = await h.call('POST', 'auth/approle/role/bad', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors![0]).toMatch(message);
    }
    expect((await h.call('GET', 'auth/approle/role/bad')).status).toBe(404);
  });

  it('sets a custom role ID, refuses one another role holds, and 404s for unknown roles', async () => {
    await h.call('POST', 'auth/approle/role/custom', { token_policies: ['default'] });
    expect((await h.call('POST', 'auth/approle/role/custom/role-id', { role_id: 'custom-role-id' })).status).toBe(204);
    expect((await h.call('GET', 'auth/approle/role/custom/role-id')).body.data).toEqual({ role_id: 'custom-role-id' });
    const taken = await h.call('POST', 'auth/approle/role/legacy/role-id', { role_id: 'custom-role-id' });
    expect(taken).toMatchObject({ status: 400, body: { errors: ['invalid role_id: this role ID is already in use by another role'] } });
    expect((await h.call('GET', 'auth/approle/role/nope')).status).toBe(404);
    expect((await h.call('GET', 'auth/approle/role/nope/role-id')).status).toBe(404);
    // role_id given at creation, as the provider's role_id argument does.
    await h.call('POST', 'auth/approle/role/preset', { role_id: 'preset-id', token_policies: ['default'] });
    expect((await h.call('GET', 'auth/approle/role/preset/role-id')).body.data).toEqual({ role_id: 'preset-id' });
    expect((await h.call('DELETE', 'auth/approle/role/preset')).status).toBe(204);
    expect((await h.call('GET', 'auth/approle/role/preset')).status).toBe(404);
    expect((await h.call('DELETE', 'auth/approle/role/preset')).status).toBe(204);
  });
});

describe('help', () => {
  it("answers a path's help from its route declarations, and the method's at its root", async () => {
    const role = await h.call('GET', 'auth/approle/role/x?help=1');
    expect(role.status).toBe(200);
    expect(role.body.help).toMatch(/^Registers a role: the token a login with it gets/);
    expect(role.body.help).toContain('token_policies (string_list): Policies of the issued tokens.');
    // AppRole has no legacy bound_cidrs (its CIDRs are secret_id_bound_cidrs and token_bound_cidrs).
    expect(role.body.help).not.toMatch(/^ {2}bound_cidrs /m);
    const secret = await h.call('GET', 'auth/approle/role/x/secret-id/lookup?help=1');
    expect(secret.body.help).toMatch(/^Reads a secret ID's properties by its value\./);
    // Login needs no token, nor does its help.
    const login = await h.call('GET', 'auth/approle/login?help=1', undefined, null);
    expect(login.status).toBe(200);
    expect(login.body.help).toContain('secret_id (string)');
    expect((await h.call('GET', 'auth/approle/?help=1')).body.help).toMatch(/^The AppRole auth method lets machines and services log in/);
  });
});

describe('login and vending', () => {
  it('logs in with role_id and secret_id and vends only the role its policy names, as the workload', async () => {
    const { roleId } = await role('orders-service', {});
    const issued = await h.call('POST', 'auth/approle/role/orders-service/secret-id', { metadata: '{"team":"orders"}' });
    expect(issued.status).toBe(200);
    expect(issued.body.data).toEqual({
      secret_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      secret_id_accessor: expect.stringMatching(/^[0-9a-f-]{36}$/),
      secret_id_ttl: 3600,
      secret_id_num_uses: 0,
    });

    const res = await login(roleId, issued.body.data!.secret_id as string);
    expect(res.status, res.text).toBe(200);
    const auth = res.body.auth!;
    expect(auth).toMatchObject({
      client_token: expect.stringMatching(/^hvs\./),
      accessor: expect.any(String),
      policies: ['default', 'orders-service'],
      token_policies: ['default', 'orders-service'],
      metadata: { role_name: 'orders-service', team: 'orders' },
      lease_duration: 600,
      renewable: true,
      entity_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      token_type: 'service',
      orphan: true,
    });
    expect(res.body.mount_type).toBe('approle');

    const app = auth.client_token as string;
    const self = await h.call('GET', 'auth/token/lookup-self', undefined, app);
    expect(self.body.data).toMatchObject({
      display_name: 'approle',
      entity_id: auth.entity_id,
      meta: { role_name: 'orders-service', team: 'orders' },
      path: 'auth/approle/login',
      policies: ['default', 'orders-service'],
      orphan: true,
    });

    const creds = await h.call('GET', 'tvm/creds/orders-rw', undefined, app);
    expect(creds.status, creds.text).toBe(200);
    expect(claimsOf(creds.body.data!.token as string).sub).toBe('approle:orders-service');
    expect((await h.call('GET', 'tvm/creds/logs-ro', undefined, app)).status).toBe(403);
    expect((await h.call('POST', 'tvm/roles/orders-rw', { read: ['db://**'] }, app)).status).toBe(403);
    expect((await h.call('POST', 'auth/approle/role/orders-service/secret-id', {}, app)).status).toBe(403);

    // The same role logs in again: same entity.
    const again = await login(roleId, (await secretId('orders-service')).secretId);
    expect(again.body.auth!.entity_id).toBe(auth.entity_id);
    const entity = await h.call('GET', `identity/entity/id/${auth.entity_id as string}`);
    expect(entity.body.data).toMatchObject({
      id: auth.entity_id,
      aliases: [expect.objectContaining({ name: roleId, mount_path: 'auth/approle/', mount_type: 'approle' })],
    });
  });

  it('refuses a wrong secret ID, an unknown role ID and missing fields with Vault\'s messages', async () => {
    const { roleId } = await role('orders-service', {});
    await secretId('orders-service');
    expect(await login(roleId, 'not-the-secret')).toMatchObject({ status: 400, body: { errors: ['invalid role or secret ID'] } });
    expect(await login('no-such-role-id', 'x')).toMatchObject({ status: 400, body: { errors: ['invalid role or secret ID'] } });
    expect(await login(roleId)).toMatchObject({ status: 400, body: { errors: ['missing secret_id'] } });
    expect((await h.call('POST', 'auth/approle/login', {}, null)).body.errors).toEqual(['missing role_id']);
    expect((await h.call('GET', 'auth/approle/login', undefined, null)).status).toBe(405);
  });

  it('lets a single-use secret ID log in once', async () => {
    const { roleId } = await role('once', { token_policies: ['default'], secret_id_num_uses: 1 });
    const { secretId: s, accessor } = await secretId('once');
    expect((await login(roleId, s)).status).toBe(200);
    expect(await login(roleId, s)).toMatchObject({ status: 400, body: { errors: ['invalid role or secret ID'] } });
    // Used up, it is gone, accessor and all.
    expect((await h.call('POST', 'auth/approle/role/once/secret-id-accessor/lookup', { secret_id_accessor: accessor })).status).toBe(400);
  });

  it('counts down a secret ID with several uses, concurrent logins included', async () => {
    const { roleId } = await role('thrice', { token_policies: ['default'], secret_id_num_uses: 5 });
    const { secretId: s } = await secretId('thrice', { num_uses: 3 });
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => login(roleId, s)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 400, 400]);
    const tooMany = await h.call('POST', 'auth/approle/role/thrice/secret-id', { num_uses: 6 });
    expect(tooMany.body.errors).toEqual(["invalid num_uses: cannot be higher than the role's secret_id_num_uses (5)"]);
  });

  it('refuses an expired secret ID', async () => {
    const { roleId } = await role('short', { token_policies: ['default'], secret_id_ttl: '60s' });
    const { secretId: s } = await secretId('short');
    const { secretId: s2 } = await secretId('short', { ttl: 30 });
    expect((await h.call('POST', 'auth/approle/role/short/secret-id', { ttl: 120 })).body.errors).toEqual([
      "invalid ttl: cannot be longer than the role's secret_id_ttl (60s)",
    ]);
    h.advance(45_000);
    expect((await login(roleId, s)).status).toBe(200);
    expect(await login(roleId, s2)).toMatchObject({ status: 400, body: { errors: ['invalid role or secret ID'] } });
    h.advance(20_000);
    expect(await login(roleId, s)).toMatchObject({ status: 400, body: { errors: ['invalid role or secret ID'] } });
  });

  it('looks up and destroys secret IDs by value and by accessor, never showing the value', async () => {
    await role('looked', { token_policies: ['default'] });
    const a = await secretId('looked', { metadata: { env: 'test' } });
    const b = await secretId('looked');
    const list = await h.call('LIST', 'auth/approle/role/looked/secret-id');
    expect((list.body.data!.keys as string[]).sort()).toEqual([a.accessor, b.accessor].sort());

    const byValue = await h.call('POST', 'auth/approle/role/looked/secret-id/lookup', { secret_id: a.secretId });
    expect(byValue.body.data).toMatchObject({
      secret_id_accessor: a.accessor,
      metadata: { env: 'test' },
      secret_id_num_uses: 0,
      expiration_time: '0001-01-01T00:00:00Z',
      cidr_list: [],
    });
    expect(byValue.text).not.toContain(a.secretId);
    const byAccessor = await h.call('POST', 'auth/approle/role/looked/secret-id-accessor/lookup', { secret_id_accessor: a.accessor });
    expect(byAccessor.body.data).toEqual(byValue.body.data);

    expect((await h.call('POST', 'auth/approle/role/looked/secret-id/destroy', { secret_id: a.secretId })).status).toBe(204);
    expect((await h.call('POST', 'auth/approle/role/looked/secret-id/lookup', { secret_id: a.secretId })).status).toBe(204);
    expect((await h.call('POST', 'auth/approle/role/looked/secret-id-accessor/destroy', { secret_id_accessor: b.accessor })).status).toBe(204);
    expect((await h.call('LIST', 'auth/approle/role/looked/secret-id')).status).toBe(404);
  });

  it('hands a secret ID out wrapped, for the trusted-orchestrator pattern', async () => {
    const { roleId } = await role('wrapped', { token_policies: ['default'] });
    const res = await fetch(`${h.address}/v1/auth/approle/role/wrapped/secret-id`, {
      method: 'POST',
      headers: { 'X-Vault-Token': h.rootToken, 'X-Vault-Wrap-TTL': '60s' },
      body: '{}',
    });
    const wrapped = (await res.json()) as { data: unknown; wrap_info: { token: string; creation_path: string } };
    expect(wrapped.data).toBeNull();
    expect(wrapped.wrap_info.creation_path).toBe('auth/approle/role/wrapped/secret-id');
    const unwrapped = await h.call('POST', 'sys/wrapping/unwrap', undefined, wrapped.wrap_info.token);
    expect((await login(roleId, unwrapped.body.data!.secret_id as string)).status).toBe(200);
  });

  it('never echoes a secret sent with the wrong type', async () => {
    const { roleId } = await role('orders-service', {});
    const { secretId: s } = await secretId('orders-service');
    for (const body of [{ role_id: roleId, secret_id: [s] }, { role_id: { id: roleId }, secret_id: s }]) {
      const r = await h.call('POST', 'auth/approle/login', body, null);
      expect(r.status).toBe(400);
      expect(r.body.errors![0]).toMatch(/^invalid (secret_id|role_id): expected a string$/);
      expect(r.text).not.toContain(s);
    }
    const lookup = await h.call('POST', 'auth/approle/role/orders-service/secret-id/lookup', { secret_id: { s } });
    expect(lookup.body.errors).toEqual(['invalid secret_id: expected a string']);
  });

  it('honours custom secret IDs', async () => {
    const { roleId } = await role('pushed', { token_policies: ['default'] });
    const r = await h.call('POST', 'auth/approle/role/pushed/custom-secret-id', { secret_id: 'a-pushed-secret-value' });
    expect(r.body.data).toMatchObject({ secret_id: 'a-pushed-secret-value' });
    expect((await login(roleId, 'a-pushed-secret-value')).status).toBe(200);
  });

  it('logs in without a secret ID when bind_secret_id is off and a CIDR binding stands in', async () => {
    const { roleId } = await role('cidr-only', { bind_secret_id: false, secret_id_bound_cidrs: ['127.0.0.0/8'], token_policies: ['default'] });
    expect((await login(roleId)).status).toBe(200);
  });

  it('checks secret_id_bound_cidrs and cidr_list against the client address', async () => {
    const { roleId } = await role('far', { token_policies: ['default'], secret_id_bound_cidrs: ['10.0.0.0/8'] });
    const { secretId: s } = await secretId('far');
    const r = await login(roleId, s);
    expect(r).toMatchObject({ status: 400, body: { errors: ['source address "127.0.0.1" unauthorized by CIDR restrictions on the role'] } });
    const outside = await h.call('POST', 'auth/approle/role/far/secret-id', { cidr_list: ['192.168.0.0/16'] });
    expect(outside.body.errors![0]).toMatch(/^invalid cidr_list: must be a subset of the role's secret_id_bound_cidrs/);

    const { roleId: nearId } = await role('near', { token_policies: ['default'] });
    const { secretId: bound } = await secretId('near', { cidr_list: ['10.1.0.0/16'] });
    expect((await login(nearId, bound)).body.errors).toEqual(['source address "127.0.0.1" unauthorized through CIDR restrictions on the secret ID']);
    const { secretId: local } = await secretId('near', { cidr_list: ['127.0.0.1/32'] });
    expect((await login(nearId, local)).status).toBe(200);
  });

  it('binds the issued token to token_bound_cidrs: usable only from inside them', async () => {
    const { roleId } = await role('bound', { token_policies: ['default'], token_bound_cidrs: ['10.0.0.0/8'] });
    const { secretId: s } = await secretId('bound');
    const r = await login(roleId, s);
    expect(r.status).toBe(200);
    const token = r.body.auth!.client_token as string;
    expect((await h.call('GET', 'auth/token/lookup-self', undefined, token)).status).toBe(403);
    const lookup = await h.call('POST', 'auth/token/lookup', { token });
    expect(lookup.body.data).toMatchObject({ bound_cidrs: ['10.0.0.0/8'] });

    const { roleId: okId } = await role('bound-ok', { token_policies: ['default'], token_bound_cidrs: ['127.0.0.1'] });
    const ok = await login(okId, (await secretId('bound-ok')).secretId);
    expect((await h.call('GET', 'auth/token/lookup-self', undefined, ok.body.auth!.client_token as string)).status).toBe(200);
  });

  it('issues tokens under the role\'s ttl, capped by the mount\'s max', async () => {
    // The mount was tuned to max_lease_ttl 2h above: as Vault, the role's write warns, the login caps silently.
    const w = await h.call('POST', 'auth/approle/role/long', { token_policies: ['default'], token_ttl: '3h', token_max_ttl: '4h' });
    expect(w.status).toBe(200);
    expect(w.body.warnings).toEqual(["token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated"]);
    const roleId = (await h.call('GET', 'auth/approle/role/long/role-id')).body.data!.role_id as string;
    const r = await login(roleId, (await secretId('long')).secretId);
    expect(r.body.auth!.lease_duration).toBe(7200);
    expect(r.body.warnings).toEqual(['TTL of "3h" exceeded the effective max_ttl of "2h"; TTL value is capped accordingly']);
  });

  it('refuses to issue root tokens', async () => {
    const { roleId } = await role('rooty', { token_policies: ['root'] });
    const r = await login(roleId, (await secretId('rooty')).secretId);
    expect(r).toMatchObject({ status: 400, body: { errors: ['auth methods cannot create root tokens'] } });
  });
});

describe('ACLs on auth paths', () => {
  it('lets a policy hand out secret IDs for one role and nothing else', async () => {
    await h.call('POST', 'sys/policies/acl/orders-deployer', {
      policy: 'path "auth/approle/role/orders-service/secret-id" { capabilities = ["update"] }\npath "auth/approle/role/orders-service/role-id" { capabilities = ["read"] }',
    });
    const made = await h.call('POST', 'auth/token/create', { policies: ['orders-deployer'] });
    const deployer = made.body.auth!.client_token as string;
    expect((await h.call('POST', 'auth/approle/role/orders-service/secret-id', {}, deployer)).status).toBe(200);
    expect((await h.call('GET', 'auth/approle/role/orders-service/role-id', undefined, deployer)).status).toBe(200);
    expect((await h.call('POST', 'auth/approle/role/once/secret-id', {}, deployer)).status).toBe(403);
    expect((await h.call('GET', 'auth/approle/role/orders-service', undefined, deployer)).status).toBe(403);
    expect((await h.call('POST', 'auth/approle/role/new-one', { token_policies: ['root'] }, deployer)).status).toBe(403);
    // Unauthenticated callers learn nothing but the login path.
    expect((await h.call('GET', 'auth/approle/role/orders-service', undefined, null)).status).toBe(403);
    expect((await h.call('GET', 'auth/nothing/here', undefined, null)).status).toBe(403);
    expect((await h.call('GET', 'auth/nothing/here')).status).toBe(404);
  });

  it('tells create from update on roles, as Vault\'s existence check does', async () => {
    await h.call('POST', 'sys/policies/acl/role-updater', { policy: 'path "auth/approle/role/*" { capabilities = ["update"] }' });
    const made = await h.call('POST', 'auth/token/create', { policies: ['role-updater'] });
    const updater = made.body.auth!.client_token as string;
    expect((await h.call('POST', 'auth/approle/role/legacy', { token_ttl: 30 }, updater)).status).toBe(204);
    expect((await h.call('POST', 'auth/approle/role/brand-new', { token_ttl: 30 }, updater)).status).toBe(403);
  });
});

describe('disabling', () => {
  it('revokes every token the method issued, their children and their leases', async () => {
    expect((await h.call('POST', 'sys/auth/temp', { type: 'approle' })).status).toBe(204);
    await h.call('POST', 'sys/policies/acl/child-maker', { policy: 'path "auth/token/create" { capabilities = ["update"] }' });
    await h.call('POST', 'auth/temp/role/app', { token_policies: ['orders-service', 'child-maker'] });
    const roleId = (await h.call('GET', 'auth/temp/role/app/role-id')).body.data!.role_id as string;
    const sid = (await h.call('POST', 'auth/temp/role/app/secret-id', {})).body.data!.secret_id as string;
    const r = await h.call('POST', 'auth/temp/login', { role_id: roleId, secret_id: sid }, null);
    const token = r.body.auth!.client_token as string;
    const creds = await h.call('GET', 'tvm/creds/orders-rw', undefined, token);
    const leaseId = creds.body.lease_id as string;
    const child = (await h.call('POST', 'auth/token/create', { ttl: '1h' }, token)).body.auth!.client_token as string;
    expect((await h.call('POST', 'sys/leases/lookup', { lease_id: leaseId })).status).toBe(200);

    expect((await h.call('DELETE', 'sys/auth/temp')).status).toBe(204);
    expect((await h.call('GET', 'auth/token/lookup-self', undefined, token)).status).toBe(403);
    expect((await h.call('GET', 'auth/token/lookup-self', undefined, child)).status).toBe(403);
    expect(await h.call('POST', 'sys/leases/lookup', { lease_id: leaseId })).toMatchObject({ status: 400, body: { errors: ['invalid lease'] } });
    expect((await h.call('GET', 'sys/auth')).body.data!['temp/']).toBeUndefined();
    expect((await h.call('POST', 'auth/temp/login', { role_id: roleId, secret_id: sid }, null)).status).toBe(403);
    // Disabling what is not there succeeds, as in Vault.
    expect((await h.call('DELETE', 'sys/auth/temp')).status).toBe(204);
  });
});

describe('secrets stay out of the logs', () => {
  it('never writes a secret ID or an issued token to a log line', async () => {
    const { roleId } = await role('orders-service', {});
    const { secretId: s } = await secretId('orders-service');
    const ok = await login(roleId, s);
    await login(roleId, `${s}-wrong`);
    await h.call('POST', 'auth/approle/role/orders-service/secret-id/lookup', { secret_id: s });
    await h.call('POST', 'auth/approle/role/orders-service/secret-id/destroy', { secret_id: s });
    await login(roleId, s);
    expect(h.logs.length).toBeGreaterThan(0);
    const all = h.logs.join('\n');
    expect(all).toContain('auth/approle/login');
    expect(all).not.toContain(s);
    expect(all).not.toContain(ok.body.auth!.client_token as string);
  });
});
