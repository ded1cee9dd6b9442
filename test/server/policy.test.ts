// ACL policies: parsing (HCL and JSON) and Vault's evaluation rules.
import { describe, expect, it } from 'vitest';
import { ACL, checkParameters, checkWrapping, parsePolicy, PolicyParseError, PolicyStore } from '../../src/server/policy.ts';
import { openMemoryStorage } from '../../src/server/storage/index.ts';

async function acl(...texts: string[]): Promise<ACL> {
  const policies = await Promise.all(texts.map((t, i) => parsePolicy(`p${i}`, t)));
  return new ACL(policies);
}

describe('parsePolicy', () => {
  it('reads HCL path blocks', async () => {
    const p = await parsePolicy('a', 'path "tvm/creds/*" {\n  capabilities = ["read", "update"]\n}\npath "sys/x" { capabilities = ["deny"] }');
    expect(p.rules.map((r) => r.path)).toEqual(['sys/x', 'tvm/creds/*']);
  });

  it('reads the JSON form, with a path object or a list', async () => {
    const a = await parsePolicy('a', JSON.stringify({ path: { 'tvm/creds/demo': { capabilities: ['read'] } } }));
    expect(a.rules).toEqual([{ path: 'tvm/creds/demo', capabilities: 4 }]);
    const b = await parsePolicy('b', JSON.stringify({ path: [{ 'tvm/x': { capabilities: ['list'] } }] }));
    expect(b.rules[0]).toMatchObject({ path: 'tvm/x' });
  });

  it('maps the legacy policy shorthand', async () => {
    const a = await acl('path "kv/*" { policy = "write" }');
    expect(a.capabilities('kv/a').sort()).toEqual(['create', 'delete', 'list', 'read', 'update']);
  });

  it('refuses bad text with the parser message', async () => {
    await expect(parsePolicy('a', 'path "x" { capabilities = [ }')).rejects.toThrow(/failed to parse policy: .*Invalid expression/);
    await expect(parsePolicy('a', '{"path": ')).rejects.toBeInstanceOf(PolicyParseError);
    await expect(parsePolicy('a', 'path "x" { capabilities = ["fly"] }')).rejects.toThrow(/invalid capability "fly"/);
    await expect(parsePolicy('a', 'path "x" { colour = "red" }')).rejects.toThrow(/invalid key "colour"/);
    await expect(parsePolicy('a', 'paths "x" { capabilities = ["read"] }')).rejects.toThrow(/invalid key "paths"/);
    await expect(parsePolicy('a', '   ')).rejects.toThrow(/empty/);
  });
});

describe('ACL evaluation', () => {
  it('an exact rule wins over any glob', async () => {
    const a = await acl('path "tvm/creds/*" { capabilities = ["read"] }\npath "tvm/creds/admin" { capabilities = ["deny"] }');
    expect(a.check('tvm/creds/demo', 'read').allowed).toBe(true);
    expect(a.check('tvm/creds/admin', 'read').allowed).toBe(false);
  });

  it('the longest prefix glob wins, and only its capabilities count', async () => {
    const a = await acl('path "tvm/*" { capabilities = ["read", "list"] }\npath "tvm/creds/*" { capabilities = ["update"] }');
    expect(a.check('tvm/creds/demo', 'update').allowed).toBe(true);
    expect(a.check('tvm/creds/demo', 'read').allowed).toBe(false);
    expect(a.check('tvm/roles/demo', 'read').allowed).toBe(true);
  });

  it('deny wins when policies share a path, whatever the order', async () => {
    const a = await acl('path "tvm/creds/demo" { capabilities = ["read"] }', 'path "tvm/creds/demo" { capabilities = ["deny"] }');
    expect(a.check('tvm/creds/demo', 'read').allowed).toBe(false);
    const b = await acl('path "tvm/*" { capabilities = ["deny"] }', 'path "tvm/*" { capabilities = ["read"] }');
    expect(b.check('tvm/x', 'read').allowed).toBe(false);
    expect(b.capabilities('tvm/x')).toEqual(['deny']);
  });

  it('merges capabilities of the same path across policies', async () => {
    const a = await acl('path "tvm/creds/demo" { capabilities = ["read"] }', 'path "tvm/creds/demo" { capabilities = ["update"] }');
    expect(a.capabilities('tvm/creds/demo')).toEqual(['read', 'update']);
  });

  it('+ matches exactly one segment', async () => {
    const a = await acl('path "tvm/+/demo" { capabilities = ["read"] }');
    expect(a.check('tvm/creds/demo', 'read').allowed).toBe(true);
    expect(a.check('tvm/roles/demo', 'read').allowed).toBe(true);
    expect(a.check('tvm/creds/x/demo', 'read').allowed).toBe(false);
    expect(a.check('tvm/creds/demo2', 'read').allowed).toBe(false);
  });

  it('+ with a trailing glob', async () => {
    const a = await acl('path "tvm/+/de*" { capabilities = ["read"] }');
    expect(a.check('tvm/creds/demo', 'read').allowed).toBe(true);
    expect(a.check('tvm/creds/demo/more', 'read').allowed).toBe(true);
    expect(a.check('tvm/creds/x', 'read').allowed).toBe(false);
  });

  it('follows Vault priority between wildcard rules', async () => {
    // The later first wildcard is more specific.
    const a = await acl('path "tvm/+/demo" { capabilities = ["read"] }\npath "tvm/creds/+" { capabilities = ["deny"] }');
    expect(a.check('tvm/creds/demo', 'read').allowed).toBe(false);
    // A rule without a glob beats one ending in a glob, at the same first-wildcard position.
    const b = await acl('path "tvm/+/demo" { capabilities = ["read"] }\npath "tvm/+/*" { capabilities = ["deny"] }');
    expect(b.check('tvm/creds/demo', 'read').allowed).toBe(true);
    expect(b.check('tvm/creds/other', 'read').allowed).toBe(false);
    // Fewer + segments win.
    const c = await acl('path "a/+/+/d" { capabilities = ["deny"] }\npath "a/+/c/d" { capabilities = ["read"] }');
    expect(c.check('a/b/c/d', 'read').allowed).toBe(true);
    // A prefix glob beats a segment wildcard whose first wildcard comes earlier.
    const d = await acl('path "tvm/creds/*" { capabilities = ["read"] }\npath "tvm/+/demo" { capabilities = ["deny"] }');
    expect(d.check('tvm/creds/demo', 'read').allowed).toBe(true);
  });

  it('lists on the folder path match a rule without the trailing slash', async () => {
    const a = await acl('path "tvm/roles" { capabilities = ["list"] }');
    expect(a.check('tvm/roles/', 'list').allowed).toBe(true);
    expect(a.check('tvm/roles/', 'read').allowed).toBe(false);
  });

  it('create and update are distinct; sudo is reported apart', async () => {
    const a = await acl('path "tvm/roles/*" { capabilities = ["update"] }\npath "sys/leases/revoke-prefix/*" { capabilities = ["update", "sudo"] }');
    expect(a.check('tvm/roles/x', 'create').allowed).toBe(false);
    expect(a.check('tvm/roles/x', 'update')).toMatchObject({ allowed: true, sudo: false });
    expect(a.check('sys/leases/revoke-prefix/tvm/', 'update')).toMatchObject({ allowed: true, sudo: true });
  });

  it('nothing matches: nothing is granted; root grants everything', async () => {
    const a = await acl('path "tvm/creds/demo" { capabilities = ["read"] }');
    expect(a.check('sys/mounts', 'read').allowed).toBe(false);
    expect(a.capabilities('sys/mounts')).toEqual(['deny']);
    const root = new ACL([], true);
    expect(root.check('anything/at/all', 'delete')).toMatchObject({ allowed: true, sudo: true });
    expect(root.capabilities('x')).toEqual(['root']);
  });

  it('knows which mounts a policy reaches', async () => {
    const a = await acl('path "tvm/creds/demo" { capabilities = ["read"] }\npath "other/*" { capabilities = ["deny"] }');
    expect(a.hasMountAccess('tvm/')).toBe(true);
    expect(a.hasMountAccess('other/')).toBe(false);
    expect(a.hasMountAccess('third/')).toBe(false);
  });
});

describe('parameter and wrapping constraints', () => {
  it('allowed, denied and required parameters', async () => {
    const p = await parsePolicy(
      'p',
      `path "tvm/creds/*" {
  capabilities = ["update"]
  allowed_parameters = { "ttl" = [], "read" = ["db://orders/*"] }
  denied_parameters = { "write" = [] }
}
path "tvm/roles/*" {
  capabilities = ["create"]
  required_parameters = ["read"]
}`,
    );
    const a = new ACL([p]);
    const perms = a.check('tvm/creds/demo', 'update').perms!;
    expect(checkParameters(perms, { ttl: '5m' })).toBeNull();
    expect(checkParameters(perms, { read: ['db://orders/1'] })).toBeNull();
    expect(checkParameters(perms, { read: ['db://users/1'] })).toMatch(/not allowed/);
    expect(checkParameters(perms, { write: ['x'] })).toMatch(/denied/);
    expect(checkParameters(perms, { audience: 'x' })).toMatch(/not allowed/);
    const roles = a.check('tvm/roles/x', 'create').perms!;
    expect(checkParameters(roles, {})).toMatch(/missing required parameter read/);
    expect(checkParameters(roles, { read: ['db://a'] })).toBeNull();
  });

  it('wrapping ttl bounds', async () => {
    const p = await parsePolicy('p', 'path "tvm/creds/*" {\n capabilities = ["read"]\n min_wrapping_ttl = "1m"\n max_wrapping_ttl = "10m"\n}');
    const perms = new ACL([p]).check('tvm/creds/x', 'read').perms!;
    expect(checkWrapping(perms, undefined)).toMatch(/required/);
    expect(checkWrapping(perms, 30_000)).toMatch(/lower/);
    expect(checkWrapping(perms, 3_600_000)).toMatch(/higher/);
    expect(checkWrapping(perms, 300_000)).toBeNull();
  });
});

describe('PolicyStore', () => {
  it('stores, lists, caches compiled ACLs and protects root and default', async () => {
    const storage = openMemoryStorage();
    const store = new PolicyStore(storage);
    await store.load();
    expect(store.names()).toEqual(['default', 'root']);
    expect(store.acl(['default']).check('auth/token/lookup-self', 'read').allowed).toBe(true);
    expect(store.acl(['default']).check('tvm/creds/demo', 'read').allowed).toBe(false);

    await store.put('Apps', 'path "tvm/creds/demo" { capabilities = ["read"] }');
    expect(store.names()).toEqual(['apps', 'default', 'root']);
    const first = store.acl(['apps', 'default']);
    expect(store.acl(['apps', 'default'])).toBe(first);
    expect(first.check('tvm/creds/demo', 'read').allowed).toBe(true);

    await store.put('apps', 'path "tvm/creds/demo" { capabilities = ["deny"] }');
    expect(store.acl(['apps', 'default']).check('tvm/creds/demo', 'read').allowed).toBe(false);

    await expect(store.delete('root')).rejects.toThrow('cannot delete "root" policy');
    await expect(store.delete('default')).rejects.toThrow('cannot delete "default" policy');
    await expect(store.put('root', 'path "x" { capabilities = ["read"] }')).rejects.toThrow(/cannot update "root"/);

    const again = new PolicyStore(storage);
    await again.load();
    expect(again.get('apps')?.raw).toContain('deny');
    await again.delete('apps');
    expect(again.get('apps')).toBeNull();
  });
});
