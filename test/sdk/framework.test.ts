// The framework's canonical paths (resolve-path, and the same answer
// synchronously for the server's own callers), the one rule that rewrites
// named captures in place, and a backend's own description in its OpenAPI
// document.
import { describe, expect, it } from 'vitest';
import { lowerCaptures } from '../../src/sdk/canonical.ts';
import { FrameworkBackend } from '../../src/sdk/framework.ts';
import type { LogicalRequest, Operation } from '../../src/sdk/logical.ts';
import type { FrameworkOptions } from '../../src/sdk/route.ts';

function backend(options: Partial<FrameworkOptions> = {}): FrameworkBackend {
  return new FrameworkBackend({
    help: 'A test backend.',
    routes: [
      {
        pattern: 'role/(?<name>[^/]+)/key/(?<key>[^/]+)',
        fields: { name: { type: 'string', description: 'Role.' }, key: { type: 'string', description: 'Key.' } },
        operations: { read: async () => ({ data: {} }) },
        caseInsensitive: ['name'],
        synopsis: 'A key of a role.',
        description: 'Reads a key.',
      },
    ],
    secrets: [],
    specialPaths: { unauthenticated: [], root: [] },
    ...options,
  });
}

function request(operation: Operation, path: string): LogicalRequest {
  return {
    operation,
    path,
    data: {},
    caller: { displayName: '' },
    storage: { get: async () => null, put: async () => undefined, delete: async () => undefined, list: async () => [] },
    mountPoint: 'test/',
  };
}

describe('canonical paths', () => {
  it('lowers and trims the case-insensitive captures only, synchronously and through resolve-path alike', async () => {
    const b = backend();
    expect(b.canonicalPath('role/ Orders /key/MyKey')).toBe('role/orders/key/MyKey');
    expect(b.canonicalPath('nothing/here')).toBeNull();
    expect((await b.handleRequest(request('resolve-path', 'role/ADMIN/key/K')))!.data).toEqual({ path: 'role/admin/key/K' });
    expect(await b.handleRequest(request('resolve-path', 'nothing/here'))).toBeNull();
  });

  it('rewrites named captures in place, right to left, leaving absent ones alone', () => {
    const re = /^a\/(?<one>[^/]+)\/b\/(?<two>[^/]+)(?:\/(?<three>[^/]+))?$/d;
    const path = 'a/ONE/b/Two';
    const m = re.exec(path)!;
    expect(lowerCaptures(path, m, ['one', 'two', 'three'])).toBe('a/one/b/two');
    expect(lowerCaptures(path, m, ['two'], (s) => `<${s}>`)).toBe('a/ONE/b/<Two>');
    expect(lowerCaptures(path, m, [])).toBe(path);
  });
});

describe('OpenAPI description', () => {
  it("is the backend's own when it gives one, the tvm engine's otherwise", async () => {
    const own = (await backend({ description: 'A test backend for the framework.' }).handleRequest(request('help', '')))!.data!;
    expect((own.openapi as { info: { description: string } }).info.description).toBe('A test backend for the framework.');
    const dflt = (await backend().handleRequest(request('help', '')))!.data!;
    expect((dflt.openapi as { info: { description: string } }).info.description).toMatch(/^The tvm secrets engine/);
  });
});
