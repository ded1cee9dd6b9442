// The token store: create, lookup, renew, revoke (cascading to child tokens and
// leases), expiry and use limits, through node-vault against the dev server;
// and the store's own rules with memory storage.
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { openMemoryStorage } from '../../src/server/storage/index.ts';
import { hashToken, sanitizePolicies, tokenDisplayName, TokenStore } from '../../src/server/token/store.ts';

type Server = Awaited<ReturnType<typeof startServer>>;
type Client = ReturnType<typeof vault>;

let server: Server;
let root: Client;
let now = Date.now();

function client(token: string): Client {
  return vault({ apiVersion: 'v1', endpoint: server.address, token });
}

async function failure(fn: () => Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await fn();
  } catch (err) {
    const e = err as { response?: { statusCode: number }; message: string };
    return { status: e.response?.statusCode ?? 0, message: e.message };
  }
  throw new Error('expected the request to fail');
}

async function createToken(parent: Client, body: Record<string, unknown>): Promise<{ token: string; accessor: string; auth: Record<string, unknown> }> {
  const res = await parent.write('auth/token/create', body);
  return { token: res.auth.client_token, accessor: res.auth.accessor, auth: res.auth };
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true, clock: () => now });
  root = client(server.rootToken);
  await root.write('sys/policies/acl/issuer', {
    policy: `
path "tvm/creds/demo" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }
`,
  });
  await root.write('sys/policies/acl/other', { policy: 'path "tvm/roles/*" { capabilities = ["read"] }' });
});

afterAll(async () => {
  await server?.close();
});

describe('auth/token over HTTP', () => {
  it('creates a token with the auth block Vault gives', async () => {
    const { token, auth } = await createToken(root, {
      policies: ['issuer'],
      ttl: '1h',
      display_name: 'ci job',
      meta: { team: 'orders' },
    });
    expect(token).toMatch(/^hvs\./);
    expect(auth).toMatchObject({
      policies: ['default', 'issuer'],
      token_policies: ['default', 'issuer'],
      lease_duration: 3600,
      renewable: true,
      entity_id: '',
      orphan: false,
      metadata: { team: 'orders' },
    });
    const self = await client(token).read('auth/token/lookup-self');
    expect(self.data).toMatchObject({
      id: token,
      display_name: 'token-ci-job',
      policies: ['default', 'issuer'],
      path: 'auth/token/create',
      ttl: 3600,
      creation_ttl: 3600,
      meta: { team: 'orders' },
      type: 'service',
    });
    const byRoot = await root.write('auth/token/lookup', { token });
    expect(byRoot.data.accessor).toBe(auth.accessor);
    const byAccessor = await root.write('auth/token/lookup-accessor', { accessor: auth.accessor });
    expect(byAccessor.data).toMatchObject({ id: '', display_name: 'token-ci-job' });
  });

  it('inherits the parent policies when none are given; root children stay root', async () => {
    const { auth } = await createToken(root, {});
    expect(auth.policies).toEqual(['root']);
    expect(auth.lease_duration).toBe(0);
  });

  it('refuses child policies the parent lacks, orphans and chosen ids from non-root parents', async () => {
    const { token } = await createToken(root, { policies: ['issuer'], ttl: '1h' });
    const issuer = client(token);
    expect(await failure(() => createToken(issuer, { policies: ['other'] }))).toEqual({
      status: 400,
      message: 'child policies must be subset of parent',
    });
    expect((await failure(() => createToken(issuer, { policies: ['root'] }))).status).toBe(400);
    expect((await failure(() => createToken(issuer, { no_parent: true }))).message).toBe(
      'root or sudo privileges required to create orphan token',
    );
    expect((await failure(() => createToken(issuer, { id: 'mine' }))).status).toBe(400);
    const child = await createToken(issuer, { policies: ['issuer'], ttl: '10m' });
    expect(child.auth.policies).toEqual(['default', 'issuer']);
    // Without the capability on auth/token/create: 403.
    const plain = await createToken(root, { policies: ['other'] });
    expect((await failure(() => createToken(client(plain.token), {}))).status).toBe(403);
  });

  it('renews itself and is renewed by others, within explicit_max_ttl', async () => {
    const { token } = await createToken(root, { policies: ['issuer'], ttl: '10m', explicit_max_ttl: '1h' });
    const self = await client(token).write('auth/token/renew-self', { increment: '30m' });
    expect(self.auth.lease_duration).toBe(1800);
    const capped = await root.write('auth/token/renew', { token, increment: 7200 });
    expect(capped.auth.lease_duration).toBe(3600);
    expect(capped.warnings?.[0]).toMatch(/capped/);
    const fixed = await createToken(root, { policies: ['issuer'], ttl: '10m', renewable: false });
    expect(await failure(() => client(fixed.token).write('auth/token/renew-self', {}))).toEqual({
      status: 400,
      message: 'lease is not renewable',
    });
  });

  it('revoking a token revokes its children, grandchildren and every lease they obtained', async () => {
    const parent = await createToken(root, { policies: ['issuer'], ttl: '1h' });
    const child = await createToken(client(parent.token), { policies: ['issuer'], ttl: '1h' });
    const grandchild = await createToken(client(child.token), { policies: ['issuer'], ttl: '1h' });
    const orphan = await root.write('auth/token/create-orphan', { policies: ['issuer'], ttl: '1h' });
    const leases = await Promise.all(
      [parent.token, child.token, grandchild.token].map(async (t) => (await client(t).read('tvm/creds/demo')).lease_id as string),
    );
    for (const id of leases) expect((await root.write('sys/leases/lookup', { lease_id: id })).data.id).toBe(id);

    await root.write('auth/token/revoke', { token: parent.token });
    for (const t of [parent.token, child.token, grandchild.token]) {
      expect((await failure(() => client(t).read('auth/token/lookup-self'))).status).toBe(403);
    }
    for (const id of leases) {
      expect(await failure(() => root.write('sys/leases/lookup', { lease_id: id }))).toEqual({ status: 400, message: 'invalid lease' });
    }
    // An orphan has no parent to die with.
    expect((await client(orphan.auth.client_token).read('auth/token/lookup-self')).data.orphan).toBe(true);
    // Revoking twice, or a token that never existed, succeeds.
    await root.write('auth/token/revoke', { token: parent.token });
    await root.write('auth/token/revoke', { token: 'hvs.nothing' });
  });

  it('revoke-self and revoke-accessor', async () => {
    const a = await createToken(root, { policies: ['issuer'], ttl: '1h' });
    await client(a.token).write('auth/token/revoke-self', {});
    expect((await failure(() => client(a.token).read('auth/token/lookup-self'))).status).toBe(403);
    const b = await createToken(root, { policies: ['issuer'], ttl: '1h' });
    await root.write('auth/token/revoke-accessor', { accessor: b.accessor });
    expect(await failure(() => root.write('auth/token/lookup', { token: b.token }))).toEqual({ status: 403, message: 'bad token' });
    expect((await failure(() => root.write('auth/token/lookup-accessor', { accessor: b.accessor }))).status).toBe(400);
  });

  it('an expired token is refused at once and swept with its leases', async () => {
    const { token } = await createToken(root, { policies: ['issuer'], ttl: '10m' });
    const creds = await client(token).read('tvm/creds/demo');
    const lease = creds.lease_id as string;
    // The lease (15m) outlives its token (10m): past the token's expiry only a revocation makes it go.
    expect(creds.lease_duration).toBe(900);
    now += 11 * 60_000;
    try {
      expect(await failure(() => client(token).read('tvm/creds/demo'))).toEqual({ status: 403, message: 'permission denied' });
      const deadline = Date.now() + 10_000;
      let gone: { status: number; message: string } | null = null;
      while (gone === null && Date.now() < deadline) {
        try {
          await root.write('sys/leases/lookup', { lease_id: lease });
          await new Promise((r) => setTimeout(r, 50));
        } catch (err) {
          gone = await failure(() => Promise.reject(err));
        }
      }
      expect(gone).toEqual({ status: 400, message: 'invalid lease' });
    } finally {
      now -= 11 * 60_000;
    }
  });

  it('a token with num_uses works that many times', async () => {
    const { token } = await createToken(root, { policies: ['issuer'], ttl: '1h', num_uses: 2 });
    const c = client(token);
    await c.read('tvm/creds/demo');
    await c.read('tvm/creds/demo');
    expect((await failure(() => c.read('tvm/creds/demo'))).status).toBe(403);
  });

  it('accepts the token as a Bearer credential; a bogus or missing token gets 403', async () => {
    const ok = await fetch(`${server.address}/v1/auth/token/lookup-self`, { headers: { Authorization: `Bearer ${server.rootToken}` } });
    expect(ok.status).toBe(200);
    const bogus = await fetch(`${server.address}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': 'hvs.bogus' } });
    expect(bogus.status).toBe(403);
    expect(await bogus.json()).toEqual({ errors: ['permission denied'] });
    const none = await fetch(`${server.address}/v1/tvm/creds/demo`);
    expect(none.status).toBe(403);
  });
});

describe('TokenStore', () => {
  it('keys tokens by hash only, and reloads them', async () => {
    const storage = openMemoryStorage();
    const revoked: string[] = [];
    let t = 1_000_000;
    const store = new TokenStore({ storage, clock: () => t, revokeLeases: async (h) => void revoked.push(h) });
    const { id, entry } = await store.create({
      policies: ['default'],
      parent: '',
      ttlMs: 60_000,
      explicitMaxTtlMs: 0,
      displayName: 'token',
      meta: null,
      renewable: true,
      numUses: 0,
      path: 'auth/token/create',
    });
    expect(entry.hash).toBe(hashToken(id));
    const keys = await storage.list('sys/token/id/');
    expect(keys).toEqual([entry.hash]);
    const raw = new TextDecoder().decode((await storage.get(`sys/token/id/${entry.hash}`))!);
    expect(raw).not.toContain(id);

    const again = new TokenStore({ storage, clock: () => t, revokeLeases: async () => undefined });
    await again.load();
    expect(again.lookup(id)?.accessor).toBe(entry.accessor);

    t += 61_000;
    expect(store.lookup(id)).toBeNull();
    await store.sweep();
    expect(revoked).toEqual([entry.hash]);
    expect(await storage.list('sys/token/id/')).toEqual([]);
  });

  it('sanitises policies and display names as Vault does', () => {
    expect(sanitizePolicies([' Apps', 'apps', ''], true)).toEqual(['apps', 'default']);
    expect(sanitizePolicies(['apps', 'root'], true)).toEqual(['root']);
    expect(sanitizePolicies(['apps'], false)).toEqual(['apps']);
    expect(tokenDisplayName('')).toBe('token');
    expect(tokenDisplayName('ci job!')).toBe('token-ci-job');
  });
});
