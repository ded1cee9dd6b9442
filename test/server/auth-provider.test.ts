// The calls the Terraform Vault provider makes, with the bodies its Go client
// sends (read from terraform-provider-vault and vault/api), answered the way
// the provider's reads expect: the provider's own login (token lookup and a
// child token), vault_auth_backend (enable, read, tune, disable, read after
// delete), vault_mount's not-found wording, and role updates that send only
// the changed fields.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './auth-helpers.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
});

describe('provider configure', () => {
  it('looks its token up, reads the version, and works with a child token', async () => {
    const self = await h.call('GET', 'auth/token/lookup-self');
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({ policies: ['root'], ttl: 0, entity_id: '', meta: null, display_name: 'root' });
    const seal = await h.call('GET', 'sys/seal-status', undefined, null);
    expect(seal.body.version).toMatch(/^\d+\.\d+\.\d+(\+\w+)?$/);
    // api.TokenCreateRequest as the provider fills it: empty strings for type and entity_alias included.
    const child = await h.call('POST', 'auth/token/create', {
      display_name: 'terraform',
      ttl: '1200s',
      explicit_max_ttl: '1200s',
      renewable: false,
      num_uses: 0,
      type: '',
      entity_alias: '',
    });
    expect(child.status, child.text).toBe(200);
    expect(child.body.auth).toMatchObject({ policies: ['root'], lease_duration: 1200, renewable: false });
    const token = child.body.auth!.client_token as string;
    expect((await h.call('GET', 'auth/token/lookup-self', undefined, token)).body.data).toMatchObject({ display_name: 'token-terraform' });
    expect((await h.call('POST', 'sys/auth/approle', { type: 'approle' }, token)).status).toBe(204);
  });
});

describe('vault_auth_backend', () => {
  it('enables with api.EnableAuthOptions, reads mount and tune, tunes, disables, and reads as gone', async () => {
    const enable = await h.call('POST', 'sys/auth/ci', {
      type: 'jwt',
      description: 'CI OIDC tokens',
      config: { options: null, default_lease_ttl: '', max_lease_ttl: '', force_no_cache: false },
      local: false,
      seal_wrap: false,
      external_entropy_access: false,
      options: null,
    });
    expect(enable.status, enable.text).toBe(204);
    const read = await h.call('GET', 'sys/auth/ci');
    expect(read.body.data).toMatchObject({
      type: 'jwt',
      description: 'CI OIDC tokens',
      local: false,
      accessor: expect.stringMatching(/^auth_jwt_/),
      config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false, token_type: 'default-service' },
    });
    const tune = await h.call('GET', 'sys/mounts/auth/ci/tune');
    expect(tune.body.data).toMatchObject({ default_lease_ttl: 2764800, max_lease_ttl: 2764800, force_no_cache: false, token_type: 'default-service' });

    // A tune block: api.MountConfigInput from expandAuthMethodTune.
    const tuned = await h.call('POST', 'sys/mounts/auth/ci/tune', {
      options: null,
      default_lease_ttl: '10m',
      max_lease_ttl: '1h',
      force_no_cache: false,
      audit_non_hmac_request_keys: [''],
      listing_visibility: '',
      token_type: 'default-service',
    });
    expect(tuned.status, tuned.text).toBe(204);
    expect((await h.call('GET', 'sys/mounts/auth/ci/tune')).body.data).toMatchObject({ default_lease_ttl: 600, max_lease_ttl: 3600 });
    const batch = await h.call('POST', 'sys/mounts/auth/ci/tune', { token_type: 'batch' });
    expect(batch).toMatchObject({ status: 400, body: { errors: ['invalid token_type "batch": this server issues service tokens only'] } });

    expect((await h.call('DELETE', 'sys/auth/ci')).status).toBe(204);
    // mountutil.IsMountNotFoundError recognises these wordings.
    const gone = await h.call('GET', 'sys/auth/ci');
    expect(gone.status).toBe(400);
    expect(gone.body.errors![0]).toContain('No auth engine at');
    expect((await h.call('GET', 'sys/mounts/auth/ci/tune')).body.errors![0]).toContain('No auth engine at');
    const noMount = await h.call('GET', 'sys/mounts/nothing');
    expect(noMount.status).toBe(400);
    expect(noMount.body.errors![0]).toContain('No secret engine mount at');
  });

  it('is visible in sys/internal/ui/mounts to tokens that can reach it', async () => {
    await h.call('POST', 'sys/policies/acl/approle-login-only', { policy: 'path "auth/approle/login" { capabilities = ["update"] }' });
    const made = await h.call('POST', 'auth/token/create', { policies: ['approle-login-only'] });
    const token = made.body.auth!.client_token as string;
    const ui = await h.call('GET', 'sys/internal/ui/mounts', undefined, token);
    // token/ through the default policy (lookup-self and kin), approle/ through the login path.
    expect(Object.keys(ui.body.data!.auth as object).sort()).toEqual(['approle/', 'token/']);
    const one = await h.call('GET', 'sys/internal/ui/mounts/auth/approle/login', undefined, token);
    expect(one.body.data).toMatchObject({ type: 'approle', path: 'auth/approle/' });
    expect((await h.call('GET', 'sys/internal/ui/mounts/auth/other', undefined, token)).status).toBe(403);
  });
});

describe('role resources', () => {
  it('updates an AppRole role with only the changed fields, and deletes it', async () => {
    const path = 'auth/approle/role/app';
    await h.call('POST', path, { token_policies: ['a'], token_ttl: 300, token_type: 'default', bind_secret_id: true, secret_id_ttl: 600 });
    const roleId = (await h.call('GET', `${path}/role-id`)).body.data!.role_id;
    // approleAuthBackendRoleUpdate: HasChange fields only.
    expect((await h.call('PUT', path, { token_policies: ['a', 'b'] })).status).toBe(204);
    const read = await h.call('GET', path);
    expect(read.body.data).toMatchObject({ token_policies: ['a', 'b'], token_ttl: 300, secret_id_ttl: 600, bind_secret_id: true });
    expect((await h.call('GET', `${path}/role-id`)).body.data!.role_id).toBe(roleId);
    expect((await h.call('DELETE', path)).status).toBe(204);
    // Logical().Read gives nil on 404: the provider drops the resource from state.
    expect((await h.call('GET', path)).status).toBe(404);
  });

  it('updates a JWT role with the provider\'s full body (it always sends bound_claims, leeways and flags)', async () => {
    await h.call('POST', 'sys/auth/jwt', { type: 'jwt' });
    const body = {
      bound_audiences: ['vault'],
      user_claim: 'sub',
      user_claim_json_pointer: false,
      role_type: 'jwt',
      bound_subject: 'ci',
      bound_claims: {},
      clock_skew_leeway: 0,
      expiration_leeway: 0,
      not_before_leeway: 0,
      verbose_oidc_logging: false,
      token_policies: ['ci'],
      token_type: 'default',
    };
    expect((await h.call('PUT', 'auth/jwt/role/ci', body)).status).toBe(204);
    // On update, role_type may be absent: the stored one stays.
    const { role_type: _dropped, ...update } = body;
    expect((await h.call('PUT', 'auth/jwt/role/ci', { ...update, bound_audiences: ['vault', 'ci'] })).status).toBe(204);
    const read = await h.call('GET', 'auth/jwt/role/ci');
    expect(read.body.data).toMatchObject({ role_type: 'jwt', bound_audiences: ['vault', 'ci'], bound_claims: {}, groups_claim: '', bound_subject: 'ci' });
    expect(typeof read.body.data!.user_claim).toBe('string');
  });
});
