// The engine answers Vault's help operation with its OpenAPI document (Vault
// and OpenBao merge it into sys/internal/specs/openapi), and OpenBao's
// resolve-path with the canonical path (its own, for a routed path).
import { describe, expect, it } from 'vitest';
import { templateOf } from '../../src/sdk/openapi.ts';
import { harness } from './helpers.ts';

describe('OpenAPI', () => {
  it('turns route patterns into path templates', () => {
    expect(templateOf('creds/(?<role>[^/]+)')).toBe('/creds/{role}');
    expect(templateOf('roles/?')).toBe('/roles');
    expect(templateOf('\\.well-known/jwks\\.json')).toBe('/.well-known/jwks.json');
  });

  it('documents every path at the root, one at its path, with typed bodies and the unauthenticated ones marked', async () => {
    const h = await harness();
    const root = (await h.call('help', ''))!.data!.openapi as { paths: Record<string, Record<string, any>> };
    expect(Object.keys(root.paths).sort()).toEqual([
      '/.well-known/jwks.json', '/.well-known/openid-configuration', '/config', '/creds/{role}', '/introspect', '/jwks', '/keys/rotate', '/revocations', '/revoke/{role}', '/roles', '/roles/{name}', '/status/events', '/status/{list}',
    ]);
    const creds = root.paths['/creds/{role}'];
    expect(creds.parameters).toEqual([{ name: 'role', description: 'The role to issue from.', in: 'path', schema: { type: 'string' }, required: true }]);
    expect(creds.post.requestBody.content['application/json'].schema.properties.read).toMatchObject({ type: 'array', items: { type: 'string' } });
    expect(creds.post.requestBody.content['application/json'].schema.properties.ttl).toMatchObject({ type: 'string', format: 'duration' });
    expect(root.paths['/jwks']['x-vault-unauthenticated']).toBe(true);
    expect(root.paths['/introspect']['x-vault-unauthenticated']).toBeUndefined();
    expect(root.paths['/roles'].get.parameters[0]).toMatchObject({ name: 'list', in: 'query' });
    const one = (await h.call('help', 'creds/demo'))!.data!.openapi as { paths: Record<string, unknown> };
    expect(Object.keys(one.paths)).toEqual(['/creds/{role}']);
  });
});

describe('resolve-path', () => {
  it('answers a routed path as its own canonical form, and nothing for an unknown one', async () => {
    const h = await harness();
    expect((await h.call('resolve-path', 'creds/Orders'))!.data).toEqual({ path: 'creds/Orders' });
    expect(await h.call('resolve-path', 'no/such/path')).toBeNull();
  });
});
