// A persistent server killed with SIGKILL and started again keeps its roles,
// tokens and leases, and revokes the leases that expired while it was down.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import vault from 'node-vault';
import { afterAll, describe, expect, it } from 'vitest';
import { sealStanza } from '../server/seal-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-restart-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function start(configPath: string): Promise<{ child: ChildProcess; address: string; rootToken: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench-server.ts', 'persistent', '', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
  return { child, ...(JSON.parse(line) as { address: string; rootToken: string }) };
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('persistent mode', () => {
  it('survives SIGKILL with roles, tokens and leases, and revokes what expired while down', async () => {
    const port = await freePort();
    const config = join(dir, 'tvm.hcl');
    writeFileSync(
      config,
      `storage "sqlite" {\n  path = "${join(dir, 'data', 'tvm.db')}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\napi_addr = "http://127.0.0.1:${port}"\n${sealStanza(dir)}`,
    );
    const first = await start(config);
    expect(first.rootToken).toMatch(/.+/);
    const root = vault({ apiVersion: 'v1', endpoint: first.address, token: first.rootToken });
    await root.write('tvm/roles/orders', { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '10m' });
    await root.write('tvm/roles/brief', { read: ['db://x/*'], ttl: '5s', max_ttl: '1m' });
    await root.write('sys/policies/acl/orders', { policy: 'path "tvm/creds/orders" { capabilities = ["read"] }' });
    // node-vault's tokenCreate switches the client to the new token; a plain write keeps root.
    const child = await root.write('auth/token/create', { policies: ['orders'], ttl: '1h' });
    const long = await root.read('tvm/creds/orders');
    const brief = await root.read('tvm/creds/brief');
    const revoked = await root.read('tvm/creds/orders');
    await root.write('sys/leases/revoke', { lease_id: revoked.lease_id });
    // The brief lease is still live when the server dies (5 s is ample before the kill), and has expired when it
    // starts again: the wait is measured from its own expire_time, not guessed.
    const briefLookup = await root.write('sys/leases/lookup', { lease_id: brief.lease_id });
    expect(briefLookup.data.ttl).toBeGreaterThan(0);
    await killHard(first.child);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(briefLookup.data.expire_time as string) - Date.now()) + 500));
    const second = await start(config);
    const again = vault({ apiVersion: 'v1', endpoint: second.address, token: first.rootToken });
    // The brief lease expired while the server was down: revoked before the server answered at all, so it is
    // neither listed (an expired lease merely looks gone to lookup; a revoked one is gone from the listing) nor
    // looked up. The long lease is listed, so the listing is no blind answer.
    const listing = async (role: string): Promise<string[]> => {
      try {
        return (await again.list(`sys/leases/lookup/tvm/creds/${role}/`)).data.keys as string[];
      } catch (err) {
        const e = err as { response?: { statusCode: number }; message: string };
        expect({ status: e.response?.statusCode, message: e.message }).toEqual({ status: 404, message: 'Status 404' });
        return [];
      }
    };
    expect(await listing('brief')).toEqual([]);
    expect(await listing('orders')).toContain((long.lease_id as string).split('/').pop());
    const lookupBrief = await again.write('sys/leases/lookup', { lease_id: brief.lease_id }).then(
      () => ({ status: 200, message: 'found' }),
      (err: { response?: { statusCode: number }; message: string }) => ({ status: err.response?.statusCode, message: err.message }),
    );
    expect(lookupBrief).toEqual({ status: 400, message: 'invalid lease' });
    expect((await again.read('tvm/roles/orders')).data.read).toEqual(['db://orders/*']);
    expect((await again.read('sys/policies/acl/orders')).data.policy).toContain('tvm/creds/orders');
    const app = vault({ apiVersion: 'v1', endpoint: second.address, token: child.auth.client_token });
    expect((await app.read('tvm/creds/orders')).data.role).toBe('orders');

    const lookup = await again.write('sys/leases/lookup', { lease_id: long.lease_id });
    expect(lookup.data.id).toBe(long.lease_id);
    const renewed = await again.write('sys/leases/renew', { lease_id: long.lease_id });
    expect(renewed.data.jti).toBe(long.data.jti);
    expect((await again.write('tvm/introspect', { token: long.data.token })).data.active).toBe(true);
    expect((await again.write('tvm/introspect', { token: revoked.data.token })).data.active).toBe(false);

    await killHard(second.child);
  }, 60_000);
});
