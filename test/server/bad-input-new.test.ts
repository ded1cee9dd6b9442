// Bad input on what issues 13 and 14 added to the API: malformed, missing and
// oversized values get a 400 that names the field, never a 500, and never
// echo a secret back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/server/index.ts';

let server: Awaited<ReturnType<typeof startServer>>;
const dir = mkdtempSync(join(tmpdir(), 'tvm-bad-new-'));

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': server.rootToken, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return { status: r.status, text: await r.text() };
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  await api('PUT', 'sys/audit/file', { type: 'file', options: { file_path: join(dir, 'a.log') } });
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('bad input to the new endpoints', () => {
  it('sys/audit-hash: missing, wrong type, unknown device; a secret input is never echoed', async () => {
    const secret = 'hvs.THIS-IS-SECRET-INPUT';
    for (const [path, body, field] of [
      ['sys/audit-hash/file', {}, 'input'],
      ['sys/audit-hash/file', { input: 42 }, 'input'],
      ['sys/audit-hash/nope', { input: secret }, 'path'],
    ] as const) {
      const r = await api('PUT', path, body);
      expect(r.status).toBe(400);
      expect(r.text).toContain(field);
      expect(r.text).not.toContain(secret);
    }
    const big = await api('PUT', 'sys/audit-hash/file', { input: 'x'.repeat(200_000) });
    expect(big.status).toBe(200);
    expect(big.text).toMatch(/hmac-sha256:[0-9a-f]{64}/);
  });

  it('sys/audit/<path>: a bad path name, a path in use, options of the wrong type', async () => {
    expect((await api('PUT', 'sys/audit/bad%20name', { type: 'file', options: { file_path: join(dir, 'b.log') } })).status).toBe(400);
    const twice = await api('PUT', 'sys/audit/file', { type: 'file', options: { file_path: join(dir, 'c.log') } });
    expect(twice.status).toBe(400);
    expect(twice.text).toContain('already in use');
    const list = await api('PUT', 'sys/audit/x', { type: 'file', options: ['a'] });
    expect(list.status).toBe(400);
    expect(list.text).toContain('options');
    expect((await api('PUT', 'sys/audit/y', { type: 'file', options: { file_path: join(dir, 'y.log'), color: 'red' } })).text).toContain('options.color');
  });

  it('tvm/status/<n>: not a number, too large, never issued', async () => {
    expect((await api('GET', 'tvm/status/abc')).status).toBe(400);
    expect((await api('GET', 'tvm/status/-1')).status).toBe(400);
    expect((await api('GET', `tvm/status/${'9'.repeat(30)}`)).status).toBe(400);
    expect((await api('GET', 'tvm/status/999999')).status).toBe(404);
  });

  it('tvm/config status_list_ttl: bounds and type', async () => {
    for (const v of ['0s', '25h', 'soon', -5]) {
      const r = await api('POST', 'tvm/config', { status_list_ttl: v });
      expect(r.status).toBe(400);
      expect(r.text).toContain('status_list_ttl');
    }
    expect((await api('POST', 'tvm/config', { status_list_ttl: '2m' })).status).toBe(200);
  });

  it('tvm/revoke/<role> and tvm/creds dpop_jwk: oversized and malformed', async () => {
    const r = await api('PUT', 'tvm/revoke/demo', { jti: 'x'.repeat(100_000) });
    expect(r.status).toBe(400);
    expect(r.text.length).toBeLessThan(2000);
    const jwk = await api('PUT', 'tvm/creds/demo', { dpop_jwk: { kty: 'EC', crv: 'P-256', x: 'A'.repeat(100_000), y: 'A' } });
    expect(jwk.status).toBe(400);
    expect(jwk.text).toContain('dpop_jwk');
    expect(jwk.text.length).toBeLessThan(2000);
    expect((await api('PUT', 'tvm/creds/demo', '{"dpop_jwk": ')).status).toBe(400);
  });

  it('roles: binding, allowed_hours and time_zone of the wrong type or size', async () => {
    for (const [body, field] of [
      [{ read: ['db://x/*'], binding: 7 }, 'binding'],
      [{ read: ['db://x/*'], allowed_hours: Array.from({ length: 17 }, () => '09:00-17:00') }, 'allowed_hours'],
      [{ read: ['db://x/*'], time_zone: 'x'.repeat(1000) }, 'time_zone'],
    ] as const) {
      const r = await api('POST', 'tvm/roles/bad', body);
      expect(r.status).toBe(400);
      expect(r.text).toContain(field);
    }
  });
});
