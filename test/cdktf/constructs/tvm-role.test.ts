import { GenericEndpoint } from '@cdktf/provider-vault/lib/generic-endpoint/index.js';
import { Testing } from 'cdktf';
import { describe, expect, it } from 'vitest';
import { TvmMount, TvmRole, type TvmRoleProps } from '../../../cdktf/constructs/index.ts';
import { parseRoleInput } from '../../../src/engine/path_roles.ts';
import { expectResource, resourcesOf } from '../helpers.ts';

type RoleOnly = Omit<TvmRoleProps, 'mount'>;

function synthRole(props: RoleOnly, mountProps: ConstructorParameters<typeof TvmMount>[2] = {}): string {
  return Testing.synthScope((scope) => {
    const mount = new TvmMount(scope, 'mount', mountProps);
    new TvmRole(scope, `role-${props.name}`, { mount, ...props });
  });
}

/** What the engine itself says about this input (the API's 400 message). */
function engineMessage(name: string, input: Record<string, unknown>, limits = { default_ttl: 900, max_ttl: 3600 }): string {
  try {
    parseRoleInput(name, input, limits);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the engine accepted the role');
}

describe('TvmRole', () => {
  it('writes the role, normalised by the engine, to <mount>/roles/<name> after the mount config', () => {
    const synth = synthRole({ name: 'orders', read: ['db://orders/*', 'db://orders/*'], write: ['db://orders/outbox'], ttl: '5m' });
    const role = {
      read: ['db://orders/*'],
      write: ['db://orders/outbox'],
      ttl: 300,
      max_ttl: 0,
      audiences: [],
      bound_cidrs: [],
      max_active_leases: 0,
      extra_claims: {},
      binding: 'none',
      allowed_hours: [],
      time_zone: 'UTC',
    };
    expectResource(synth, GenericEndpoint.tfResourceType, {
      path: 'tvm/roles/orders',
      data_json: JSON.stringify(role),
      ignore_absent_fields: true,
    });
    const configAddress = `vault_generic_endpoint.${Object.entries(JSON.parse(synth).resource.vault_generic_endpoint).find(
      ([, r]) => (r as { path: string }).path === 'tvm/config',
    )![0]}`;
    expectResource(synth, GenericEndpoint.tfResourceType, { path: 'tvm/roles/orders', depends_on: [configAddress] });
  });

  it('carries every field of the role contract', () => {
    let role: TvmRole | undefined;
    Testing.synthScope((scope) => {
      const mount = new TvmMount(scope, 'mount', { path: 'tvm-prod', maxTtl: '4h' });
      role = new TvmRole(scope, 'role', {
        mount,
        name: 'reports',
        read: ['s3://reports/**'],
        ttl: 600,
        maxTtl: '2h',
        audiences: ['reports-api', 'sts.amazonaws.com'],
        boundCidrs: ['10.0.0.0/8'],
        maxActiveLeases: 5,
        extraClaims: { team: 'finance' },
        iam: { aws: { role_arn: 'arn:aws:iam::123456789012:role/reports' } },
        allowedHours: ['Mon-Fri 06:00-22:00'],
        timeZone: 'Europe/Berlin',
      });
    });
    expect(role?.role).toEqual({
      read: ['s3://reports/**'],
      write: [],
      ttl: 600,
      max_ttl: 7200,
      audiences: ['reports-api', 'sts.amazonaws.com'],
      bound_cidrs: ['10.0.0.0/8'],
      max_active_leases: 5,
      extra_claims: { team: 'finance' },
      // Validated by the AWS module at synth, defaults filled in.
      iam: {
        aws: {
          role_arn: 'arn:aws:iam::123456789012:role/reports',
          method: 'web_identity',
          audience: 'sts.amazonaws.com',
          region: null,
          deny_on_revoke: true,
        },
      },
      binding: 'none',
      allowed_hours: ['Mon-Fri 06:00-22:00'],
      time_zone: 'Europe/Berlin',
    });
    expect(role?.credsPath).toBe('tvm-prod/creds/reports');
    const synth = Testing.synthScope((scope) => {
      const mount = new TvmMount(scope, 'mount', { maxTtl: '4h' });
      new TvmRole(scope, 'role', {
        mount,
        name: 'reports',
        read: ['gs://reports/**'],
        iam: { gcp: { service_account: 'reports@acme-prod.iam.gserviceaccount.com' } },
      });
    });
    const [, endpoint] = resourcesOf(synth, GenericEndpoint.tfResourceType);
    expect(JSON.parse(endpoint.data_json as string).iam).toMatchObject({ gcp: { service_account: 'reports@acme-prod.iam.gserviceaccount.com' } });
    // A mapping the cloud cannot take fails synthesis with the engine's message.
    expect(() => synthRole({ name: 'bad', read: ['s3://reports/*'], audiences: ['sts.amazonaws.com'], iam: { aws: { role_arn: 'arn:aws:iam::123456789012:role/reports' } } })).toThrow(
      /TvmRole "bad": invalid read\[0\]: .*s3:\/\/reports\/\*/,
    );
  });

  it('checks max_ttl against the mount it is written to', () => {
    expect(() => synthRole({ name: 'long', read: ['db://x/*'], maxTtl: '2h' })).toThrow(
      `TvmRole "long": ${engineMessage('long', { read: ['db://x/*'], max_ttl: '2h' })}`,
    );
    expect(() => synthRole({ name: 'long', read: ['db://x/*'], maxTtl: '2h' }, { maxTtl: '4h' })).not.toThrow();
  });

  describe('a bad role fails synthesis with the engine\'s own message', () => {
    const cases: { what: string; props: RoleOnly; input: Record<string, unknown>; says: RegExp }[] = [
      {
        what: 'a ttl that is not a duration',
        props: { name: 'bad-ttl', read: ['db://orders/*'], ttl: 'forever' },
        input: { read: ['db://orders/*'], ttl: 'forever' },
        says: /^TvmRole "bad-ttl": invalid ttl: "forever" is not a duration/,
      },
      {
        what: 'a ttl longer than max_ttl',
        props: { name: 'bad-ttl', read: ['db://orders/*'], ttl: '2h', maxTtl: '1h' },
        input: { read: ['db://orders/*'], ttl: '2h', max_ttl: '1h' },
        says: /invalid ttl: 7200s is longer than max_ttl 3600s/,
      },
      {
        what: 'a pattern without a scheme',
        props: { name: 'bad-pattern', read: ['orders/*'] },
        input: { read: ['orders/*'] },
        says: /^TvmRole "bad-pattern": invalid read\[0\]: "orders\/\*"/,
      },
      {
        what: 'a triple wildcard in a write pattern',
        props: { name: 'bad-pattern', write: ['db://orders/***'] },
        input: { write: ['db://orders/***'] },
        says: /invalid write\[0\]: "db:\/\/orders\/\*\*\*"/,
      },
      {
        what: 'neither read nor write',
        props: { name: 'empty', read: [], write: [] },
        input: { read: [], write: [] },
        says: /^TvmRole "empty": invalid read: a role needs at least one read or write pattern$/,
      },
      {
        what: 'a bad name',
        props: { name: 'orders/admin', read: ['db://orders/*'] },
        input: { read: ['db://orders/*'] },
        says: /invalid name: "orders\/admin" must be 1 to 128 characters/,
      },
      {
        what: 'an extra claim the token sets itself',
        props: { name: 'claims', read: ['db://orders/*'], extraClaims: { sub: 'someone' } },
        input: { read: ['db://orders/*'], extra_claims: { sub: 'someone' } },
        says: /invalid extra_claims.sub: "sub" is set by tvm itself/,
      },
    ];
    for (const c of cases) {
      it(c.what, () => {
        const expected = `TvmRole ${JSON.stringify(c.props.name)}: ${engineMessage(c.props.name, c.input)}`;
        expect(() => synthRole(c.props)).toThrow(expected);
        expect(expected).toMatch(c.says);
      });
    }
  });
  it('binds tokens to a DPoP key and limits them to allowed hours, refusing what the engine refuses', () => {
    const synth = synthRole({ name: 'ops', read: ['db://orders/*'], binding: 'dpop', allowedHours: ['Sun 22:00-02:00'], timeZone: 'America/New_York' });
    const [, endpoint] = resourcesOf(synth, GenericEndpoint.tfResourceType);
    expect(JSON.parse(endpoint.data_json as string)).toMatchObject({ binding: 'dpop', allowed_hours: ['Sun 22:00-02:00'], time_zone: 'America/New_York' });
    const zone = engineMessage('ops', { read: ['db://orders/*'], time_zone: 'Mars/Olympus' });
    expect(() => synthRole({ name: 'ops', read: ['db://orders/*'], timeZone: 'Mars/Olympus' })).toThrow(`TvmRole "ops": ${zone}`);
    expect(zone).toMatch(/^invalid time_zone: "Mars\/Olympus"/);
  });
});
