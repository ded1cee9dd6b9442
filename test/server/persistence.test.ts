// Config mode: a SQLite-backed server keeps its mounts, roles, policies,
// tokens and leases across a graceful restart; the first start initialises.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vault from 'node-vault';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { sealKeyFile, sealStanza } from './seal-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-persist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function client(address: string, token: string): ReturnType<typeof vault> {
  return vault({ apiVersion: 'v1', endpoint: address, token });
}

describe('persistent mode', () => {
  it('keeps everything across a restart and prints the root token only at initialisation', async () => {
    const config = join(dir, 'tvm.hcl');
    writeFileSync(config, `storage "sqlite" {\n  path = "data/tvm.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n${sealStanza(dir)}`);
    const printed: string[] = [];

    const first = await startServer({ dev: false, configPath: config, output: (t) => printed.push(t), logger: quietLogger() });
    expect(first.firstStart).toBe(true);
    expect(first.rootToken).toMatch(/^hvs\./);
    expect(printed.join('')).toContain(first.rootToken);
    const root = client(first.address, first.rootToken);
    // Config mode mounts tvm/ but writes no demo role.
    expect((await root.read('sys/mounts')).data['tvm/']).toMatchObject({ type: 'tvm' });
    expect((await root.list('tvm/roles').catch((e: { response?: { statusCode: number } }) => e.response?.statusCode))).toBe(404);

    await root.write('tvm/roles/orders', { read: ['db://orders/*'], ttl: '10m' });
    await root.write('sys/policies/acl/orders', { policy: 'path "tvm/creds/orders" { capabilities = ["read"] }' });
    await root.write('sys/mounts/second', { type: 'tvm' });
    await root.write('second/roles/x', { read: ['db://x/*'] });
    const made = await root.write('auth/token/create', { policies: ['orders'], ttl: '1h', meta: { app: 'orders' } });
    const appToken = made.auth.client_token as string;
    const lease = await client(first.address, appToken).read('tvm/creds/orders');
    await first.close();
    await first.close();

    printed.length = 0;
    const second = await startServer({ dev: false, configPath: config, output: (t) => printed.push(t), logger: quietLogger() });
    try {
      expect(second.firstStart).toBe(false);
      expect(second.rootToken).toBe('');
      expect(printed.join('')).not.toContain(first.rootToken);
      const again = client(second.address, first.rootToken);
      expect((await again.read('tvm/roles/orders')).data.read).toEqual(['db://orders/*']);
      expect((await again.read('sys/policies/acl/orders')).data.policy).toContain('tvm/creds/orders');
      expect((await again.read('second/roles/x')).data.read).toEqual(['db://x/*']);
      expect(Object.keys((await again.read('sys/mounts')).data).sort()).toEqual(['second/', 'sys/', 'tvm/']);

      const app = client(second.address, appToken);
      const self = await app.read('auth/token/lookup-self');
      expect(self.data).toMatchObject({ policies: ['default', 'orders'], meta: { app: 'orders' } });
      expect(self.data.ttl).toBeGreaterThan(3500);
      expect((await app.read('tvm/creds/orders')).data.role).toBe('orders');

      const lookup = await again.write('sys/leases/lookup', { lease_id: lease.lease_id });
      expect(lookup.data.id).toBe(lease.lease_id);
      // The lease still belongs to its token: revoking the token revokes it.
      await again.write('auth/token/revoke', { token: appToken });
      await expect(again.write('sys/leases/lookup', { lease_id: lease.lease_id })).rejects.toThrow(/invalid lease/);
    } finally {
      await second.close();
    }
  });

  it('warns, without refusing, about a seal key file that group or others may read', async () => {
    const sub = join(dir, 'loose');
    mkdirSync(sub);
    const key = sealKeyFile(sub, 'loose');
    chmodSync(key, 0o644);
    const config = join(sub, 'tvm.hcl');
    writeFileSync(config, `storage "sqlite" {\n  path = "tvm.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n${sealStanza(sub, 'loose')}`);
    const warnings: string[] = [];
    const s = await startServer({ dev: false, configPath: config, quiet: true, logger: { ...quietLogger(), warn: (m: string) => warnings.push(m) } });
    await s.close();
    expect(warnings).toEqual([`config: seal "static": current_key: key file ${key} may be read by group or others (mode 0644); chmod 600 it`]);
  });

  it('refuses to start without dev or a config, and reports a busy port', async () => {
    await expect(startServer({ dev: false, quiet: true })).rejects.toThrow(/dev: true or a configPath/);
    const a = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
    try {
      const port = new URL(a.address).port;
      await expect(startServer({ dev: true, listenAddress: `127.0.0.1:${port}`, quiet: true })).rejects.toThrow(/address already in use/);
    } finally {
      await a.close();
    }
  });

  it('dev mode: a chosen root token id and the demo role', async () => {
    const s = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true, rootTokenId: 'dev-root' });
    try {
      expect(s.rootToken).toBe('dev-root');
      const root = client(s.address, 'dev-root');
      expect((await root.read('tvm/roles/demo')).data).toMatchObject({ read: ['db://orders/*'], write: ['db://orders/outbox'] });
      expect((await root.read('tvm/creds/demo')).data.token_type).toBe('readwrite');
    } finally {
      await s.close();
    }
  });
});

function quietLogger() {
  return { debug() {}, info() {}, warn() {}, error() {} };
}
