import { describe, expect, it } from 'vitest';
import { parseRoleInput } from '../../src/engine/path_roles.ts';
import { failure, harness } from './helpers.ts';

const demo = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m', max_ttl: '30m' };

describe('roles', () => {
  it('writes, reads, lists and deletes a role', async () => {
    const h = await harness();
    expect(await h.call('create', 'roles/demo', demo)).toBeNull();
    const read = await h.call('read', 'roles/demo');
    expect(read?.data).toEqual({
      name: 'demo',
      read: ['db://orders/*'],
      write: ['db://orders/outbox'],
      ttl: 300,
      max_ttl: 1800,
      audiences: [],
      bound_cidrs: [],
      max_active_leases: 0,
      extra_claims: {},
      iam: null,
      binding: 'none',
      allowed_hours: [],
      time_zone: 'UTC',
    });
    await h.call('create', 'roles/other', { read: 's3://logs/**' });
    expect((await h.call('list', 'roles'))?.data).toEqual({ keys: ['demo', 'other'] });
    await h.call('delete', 'roles/demo');
    expect(await h.call('read', 'roles/demo')).toBeNull();
    expect((await h.call('list', 'roles/'))?.data).toEqual({ keys: ['other'] });
  });

  it('an update changes only the fields it supplies', async () => {
    const h = await harness();
    await h.call('create', 'roles/demo', demo);
    await h.call('update', 'roles/demo', { ttl: 60, audiences: 'api,worker' });
    const data = (await h.call('read', 'roles/demo'))?.data;
    expect(data).toMatchObject({ read: ['db://orders/*'], ttl: 60, max_ttl: 1800, audiences: ['api', 'worker'] });
  });

  it('existence check tells create from update', async () => {
    const h = await harness();
    const req = { operation: 'update' as const, path: 'roles/demo', data: {}, storage: h.storage, mountPoint: 'tvm/', caller: { displayName: 't' } };
    expect(await h.backend.handleExistenceCheck(req)).toEqual({ checkFound: true, exists: false });
    await h.call('create', 'roles/demo', demo);
    expect(await h.backend.handleExistenceCheck(req)).toEqual({ checkFound: true, exists: true });
    expect(await h.backend.handleExistenceCheck({ ...req, path: 'creds/demo' })).toEqual({ checkFound: false, exists: false });
  });

  it.each([
    [{ read: [], write: [] }, 'ERR_INVALID_FIELD', 'invalid read: a role needs at least one read or write pattern'],
    [{ read: ['orders'] }, 'ERR_INVALID_FIELD', 'invalid read[0]: "orders": expected <scheme>://<path>'],
    [{ read: ['db://a b'] }, 'ERR_INVALID_FIELD', 'invalid read[0]: "db://a b": a pattern may not contain whitespace'],
    [{ write: [''] }, 'ERR_INVALID_FIELD', 'invalid write[0]: "": a pattern may not be empty'],
    [{ read: ['db://x'], ttl: 'soon' }, 'ERR_INVALID_FIELD', 'invalid ttl: "soon" is not a duration'],
    [{ read: ['db://x'], ttl: '2h' }, 'ERR_INVALID_FIELD', 'invalid ttl: 7200s is longer than max_ttl 3600s'],
    [{ read: ['db://x'], ttl: '10m', max_ttl: '5m' }, 'ERR_INVALID_FIELD', 'invalid ttl: 600s is longer than max_ttl 300s'],
    [{ read: ['db://x'], max_ttl: '2h' }, 'ERR_INVALID_FIELD', "invalid max_ttl: 7200s is longer than the mount's max_ttl 3600s"],
    [{ read: ['db://x'], bound_cidrs: ['10.0.0.0/33'] }, 'ERR_INVALID_FIELD', 'invalid bound_cidrs[0]: "10.0.0.0/33" is not a CIDR'],
    [{ read: ['db://x'], bound_cidrs: ['not-an-ip'] }, 'ERR_INVALID_FIELD', 'invalid bound_cidrs[0]'],
    [{ read: ['db://x'], max_active_leases: -1 }, 'ERR_INVALID_FIELD', 'invalid max_active_leases: -1 must be 0'],
    [{ read: ['db://x'], max_active_leases: 'many' }, 'ERR_INVALID_FIELD', 'invalid max_active_leases: expected an integer, got "many"'],
    [{ read: ['db://x'], extra_claims: { sub: 'root' } }, 'ERR_INVALID_FIELD', 'invalid extra_claims.sub: "sub" is set by tvm itself'],
    [{ read: ['db://x'], extra_claims: { team: 5 } }, 'ERR_INVALID_FIELD', 'invalid extra_claims.team: expected a string, got 5'],
    [{ read: ['db://x'], iam: [1] }, 'ERR_INVALID_FIELD', 'invalid iam: expected a JSON object'],
    [{ read: ['db://x'], colour: 'red' }, 'ERR_UNKNOWN_FIELD', 'unknown field "colour"'],
    [{ read: 'db://x', audiences: ['has space'] }, 'ERR_INVALID_FIELD', 'invalid audiences[0]'],
  ])('refuses %j with a 400 naming the field, and stores nothing', async (body, code, message) => {
    const h = await harness();
    const err = await failure(() => h.call('create', 'roles/bad', body));
    expect(err.status).toBe(400);
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
    expect(await h.call('read', 'roles/bad')).toBeNull();
  });

  it('refuses bad names with a 400 naming the field', async () => {
    const h = await harness();
    for (const name of ['a'.repeat(129), 'white space', 'semi;colon']) {
      const err = await failure(() => h.call('create', `roles/${name}`, { read: ['db://x'] }));
      expect(err).toMatchObject({ status: 400, code: 'ERR_INVALID_FIELD' });
      expect(err.message).toMatch(/^invalid name: /);
    }
    expect(await h.call('create', `roles/${'a'.repeat(128)}`, { read: ['db://x'] })).toBeNull();
  });

  it('a failed update leaves the stored role as it was', async () => {
    const h = await harness();
    await h.call('create', 'roles/demo', demo);
    await failure(() => h.call('update', 'roles/demo', { read: [], write: [] }));
    expect((await h.call('read', 'roles/demo'))?.data).toMatchObject({ read: ['db://orders/*'] });
  });

  it('parseRoleInput validates outside a request (for cdktf)', () => {
    expect(parseRoleInput('app', { read: ['db://a/*'], ttl: '5m' })).toMatchObject({ ttl: 300, read: ['db://a/*'] });
    expect(() => parseRoleInput('app', { read: ['db://a/*'], ttl: 'forever' })).toThrow(/invalid ttl/);
    expect(() => parseRoleInput('bad name', { read: ['db://a/*'] })).toThrow(/invalid name/);
  });
});

describe('config', () => {
  it('has defaults and derives the issuer from the mount', async () => {
    const h = await harness();
    expect((await h.call('read', 'config'))?.data).toEqual({
      issuer: 'http://127.0.0.1:8200/v1/tvm',
      signing_algorithm: 'ES256',
      default_ttl: 900,
      max_ttl: 3600,
      status_list_ttl: 60,
    });
  });

  it('updates and validates', async () => {
    const h = await harness();
    const data = (await h.call('update', 'config', { issuer: 'https://tvm.example.com/', max_ttl: '2h' }))?.data;
    expect(data).toMatchObject({ issuer: 'https://tvm.example.com', max_ttl: 7200, default_ttl: 900 });
    expect((await failure(() => h.call('update', 'config', { signing_algorithm: 'HS256' }))).message).toBe(
      'invalid signing_algorithm: "HS256" is not one of ES256, EdDSA, RS256',
    );
    expect((await failure(() => h.call('update', 'config', { issuer: 'ftp://x' }))).message).toContain('invalid issuer');
    expect((await failure(() => h.call('update', 'config', { default_ttl: '3h' }))).message).toContain(
      'invalid default_ttl: 10800s is longer than max_ttl 7200s',
    );
    expect((await h.call('read', 'config'))?.data).toMatchObject({ signing_algorithm: 'ES256', default_ttl: 900 });
  });
});
