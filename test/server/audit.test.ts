// Audit devices on the dev server, as Vault's: sys/audit to list, enable and
// disable (sudo), sys/audit-hash to find a known secret; every request and
// response one line in Vault's shape with every secret HMAC'd; a chained,
// checkpointed file that `verify` accepts; and nothing served that no device
// can record.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyAuditFile } from '../../src/audit/verify.ts';
import { startServer } from '../../src/server/index.ts';
import { sealStanza } from './seal-helpers.ts';
import { devServerClient } from './dev-client.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-audit-srv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Server = Awaited<ReturnType<typeof startServer>>;

const client = (server: Server, token = server.rootToken) => devServerClient(server.address, token);

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('audit devices', () => {
  it('records every request and response, HMACs every secret, and the file verifies', async () => {
    const server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
    const api = client(server);
    const file = join(dir, 'audit.log');
    try {
      expect((await api('PUT', 'sys/audit/file', { type: 'file', options: { file_path: file } })).status).toBe(204);
      const listed = await api('GET', 'sys/audit');
      expect(listed.body.data['file/']).toMatchObject({ type: 'file', options: { file_path: file }, path: 'file/' });
      const publicKey = listed.body.data['file/'].checkpoint_public_key as string;
      expect(publicKey).toMatch(/^MCowBQYDK2Vw/); // an Ed25519 SPKI

      // A run that hands out every kind of secret.
      await api('POST', 'sys/auth/approle', { type: 'approle' });
      await api('POST', 'auth/approle/role/app', { token_policies: ['default'] });
      const roleId = (await api('GET', 'auth/approle/role/app/role-id')).body.data.role_id as string;
      const secretId = (await api('POST', 'auth/approle/role/app/secret-id')).body.data.secret_id as string;
      const login = await api('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId });
      const loginToken = login.body.auth.client_token as string;
      const creds = await api('GET', 'tvm/creds/demo');
      const jwt = creds.body.data.token as string;
      const child = (await api('POST', 'auth/token/create', { policies: ['default'] })).body.auth.client_token as string;
      const denied = await client(server, child)('GET', 'tvm/creds/demo');
      expect(denied.status).toBe(403);

      const all = lines(file);
      const text = readFileSync(file, 'utf8');
      for (const secret of [server.rootToken, secretId, loginToken, jwt, child, roleId]) expect(text).not.toContain(secret);
      // Each request has its request and response line; a refusal is recorded too.
      const forCreds = all.filter((l) => l.request?.path === 'tvm/creds/demo');
      expect(forCreds.map((l) => l.type)).toEqual(['request', 'response', 'request', 'response']);
      expect(forCreds[3].error).toBe('permission denied');
      // The token's story is searchable in clear (jti, role, scope); the token itself is an HMAC.
      const issued = forCreds[1];
      expect(issued.response.data).toMatchObject({ jti: creds.body.data.jti, role: 'demo', scope: creds.body.data.scope });
      expect(issued.response.data.token).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
      expect(issued.response.secret.lease_id).toBe(creds.body.lease_id);
      // audit-hash gives what the device wrote for a known secret.
      const rootHash = (await api('POST', 'sys/audit-hash/file', { input: server.rootToken })).body.data.hash;
      expect(issued.auth.client_token).toBe(rootHash);
      const loginHash = (await api('POST', 'sys/audit-hash/file', { input: loginToken })).body.data.hash;
      expect(all.find((l) => l.request?.path === 'auth/approle/login' && l.type === 'response').response.auth.client_token).toBe(loginHash);
      expect(all.find((l) => l.request?.path === 'auth/approle/login').request.data.secret_id).toMatch(/^hmac-sha256:/);

      expect((await api('DELETE', 'sys/audit/file')).status).toBe(204);
      const report = verifyAuditFile(readFileSync(file, 'utf8'), { key: publicKey });
      expect(report).toMatchObject({ ok: true });
      expect(report.checkpoints).toBeGreaterThanOrEqual(1);
      expect((await api('GET', 'sys/audit')).body.data).toEqual({});
    } finally {
      await server.close();
    }
  });

  it('needs sudo to manage devices, and names the field of a bad enable', async () => {
    const server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
    const api = client(server);
    try {
      await api('PUT', 'sys/policies/acl/auditor', { policy: 'path "sys/audit*" { capabilities = ["create", "read", "update", "delete", "list"] }' });
      const token = (await api('POST', 'auth/token/create', { policies: ['auditor'] })).body.auth.client_token as string;
      expect((await client(server, token)('PUT', 'sys/audit/file', { type: 'file', options: { file_path: join(dir, 'x.log') } })).status).toBe(403);
      for (const [body, field] of [
        [{ type: 'syslog', options: {} }, 'type'],
        [{ type: 'file', options: {} }, 'options.file_path'],
        [{ type: 'file', options: { file_path: 'relative.log' } }, 'options.file_path'],
        [{ type: 'file', options: { file_path: join(dir, 'no/such/dir/a.log') } }, 'options.file_path'],
        [{ type: 'file', options: { file_path: join(dir, 'a.log'), log_raw: 'maybe' } }, 'options.log_raw'],
      ] as const) {
        const r = await api('PUT', 'sys/audit/bad', body);
        expect(r.status).toBe(400);
        expect(r.body.errors[0]).toContain(field);
      }
      expect((await api('GET', 'sys/audit')).body.data).toEqual({});
    } finally {
      await server.close();
    }
  });

  it('serves nothing it cannot record, and lets the device be repaired', async () => {
    const config = join(dir, 'tvm.hcl');
    writeFileSync(config, `storage "sqlite" {\n  path = "data/tvm.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n${sealStanza(dir)}`);
    const file = join(dir, 'gone.log');
    const first = await startServer({ dev: false, configPath: config, quiet: true });
    const root = first.rootToken;
    expect((await client(first)('PUT', 'sys/audit/file', { type: 'file', options: { file_path: file } })).status).toBe(204);
    await first.close();
    // The file cannot be opened again: a directory stands where it was.
    rmSync(file);
    mkdirSync(file);
    const second = await startServer({ dev: false, configPath: config, quiet: true });
    try {
      const api = client(second, root);
      const refused = await api('GET', 'sys/mounts');
      expect(refused.status).toBe(500);
      expect((await api('GET', 'tvm/roles')).status).toBe(500);
      expect((await fetch(`${second.address}/v1/sys/health`)).status).toBe(200);
      expect((await api('DELETE', 'sys/audit/file')).status).toBe(204);
      expect((await api('GET', 'sys/mounts')).status).toBe(200);
    } finally {
      await second.close();
    }
  });

  it('hashes what lies under a clear key or deeper than any answer, and records a wrapped answer by its wrap_info', async () => {
    const server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
    const api = client(server);
    const file = join(dir, 'nested.log');
    try {
      await api('PUT', 'sys/audit/file', { type: 'file', options: { file_path: file } });
      let deep: Record<string, unknown> = { secret: 'DEEP-SECRET-1' };
      for (let i = 0; i < 70; i++) deep = { d: deep };
      await fetch(`${server.address}/v1/sys/wrapping/wrap`, { method: 'POST', headers: { 'x-vault-token': server.rootToken, 'x-vault-wrap-ttl': '5m' }, body: JSON.stringify(deep) });
      const wrapped = await fetch(`${server.address}/v1/sys/wrapping/wrap`, {
        method: 'POST',
        headers: { 'x-vault-token': server.rootToken, 'x-vault-wrap-ttl': '5m' },
        body: JSON.stringify({ read: { password: 'SUBTREE-SECRET-2' }, jti: 'CLEAR-KEY-BUT-NOT-TVM' }),
      });
      const wrapToken = ((await wrapped.json()) as { wrap_info: { token: string } }).wrap_info.token;
      await api('POST', 'sys/wrapping/unwrap', { token: wrapToken });
      const creds = await fetch(`${server.address}/v1/tvm/creds/demo`, { headers: { 'x-vault-token': server.rootToken, 'x-vault-wrap-ttl': '2m' } });
      const credsWrap = ((await creds.json()) as { wrap_info: { token: string; accessor: string } }).wrap_info;
      const text = readFileSync(file, 'utf8');
      for (const secret of ['DEEP-SECRET-1', 'SUBTREE-SECRET-2', 'CLEAR-KEY-BUT-NOT-TVM', wrapToken, credsWrap.token]) expect(text).not.toContain(secret);
      const line = lines(file).find((l) => l.type === 'response' && l.request?.path === 'tvm/creds/demo');
      expect(line.response.wrap_info).toMatchObject({ creation_path: 'tvm/creds/demo', ttl: 120 });
      expect(line.response.wrap_info.token).toBe((await api('POST', 'sys/audit-hash/file', { input: credsWrap.token })).body.data.hash);
    } finally {
      await server.close();
    }
  });
});
