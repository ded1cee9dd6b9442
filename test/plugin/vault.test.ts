// A real Vault: the official image (plus Node.js, see vault/Dockerfile) in dev
// mode with the bundled plugin in its plugin directory, registered and mounted
// with `tvm plugin register --apply`, then the scenario through Vault's HTTP
// API. Needs a reachable Docker engine (and the network to pull the image);
// skipped with a message otherwise. It drives Docker through its CLI rather
// than the testcontainers package, which pulls native optional dependencies
// that cannot be installed offline.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRegistration, planRegistration } from '../../src/plugin/register.ts';
import { buildPlugin, REPO } from './support.ts';

const run = promisify(execFile);
const IMAGE = 'tvm-vault-plugin-test';
const ROOT = 'root';

async function dockerUnavailable(): Promise<string | null> {
  if (process.env.TVM_SKIP_DOCKER) return 'TVM_SKIP_DOCKER is set';
  const socket = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
  if (!process.env.DOCKER_HOST && !existsSync(socket)) return `no Docker engine is reachable (no ${socket}, DOCKER_HOST unset)`;
  try {
    await run('docker', ['version', '--format', '{{.Server.Version}}'], { timeout: 10_000 });
    return null;
  } catch (err) {
    return `no Docker engine is reachable (docker version: ${(err as Error).message.split('\n')[0]})`;
  }
}

const unavailable = await dockerUnavailable();
if (unavailable) console.warn(`skipping the real-Vault plugin test: ${unavailable}`);

/** Vault's HTTP API, as any client sees it. */
function vaultApi(addr: string, token: string) {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${addr}/v1/${path}`, {
      method,
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as Record<string, unknown>) : null;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return json as { data: Record<string, unknown> | null; lease_id?: string; lease_duration?: number; renewable?: boolean } | null;
  };
  return {
    read: (path: string) => call('GET', path),
    write: (path: string, body: Record<string, unknown> = {}) => call('POST', path, body),
    raw: (path: string) => fetch(`${addr}/v1/${path}`),
  };
}

describe.skipIf(unavailable !== null)('the plugin in a real Vault (official image, dev mode)', () => {
  let container = '';
  let addr = '';
  let vault: ReturnType<typeof vaultApi>;
  let plugin = '';

  beforeAll(async () => {
    const built = await buildPlugin();
    const dir = mkdtempSync(join(tmpdir(), 'tvm-vault-plugins-'));
    plugin = join(dir, 'tvm-plugin');
    copyFileSync(built, plugin);
    chmodSync(plugin, 0o755);
    chmodSync(dir, 0o755);
    await run('docker', ['build', '-q', '-t', IMAGE, join(REPO, 'test/plugin/vault')], { timeout: 600_000 });
    const { stdout } = await run('docker', [
      'run', '-d', '--rm', '-p', '127.0.0.1::8200',
      '-e', `VAULT_DEV_ROOT_TOKEN_ID=${ROOT}`, '-e', 'VAULT_DEV_LISTEN_ADDRESS=0.0.0.0:8200',
      '-v', `${dir}:/vault/plugins:ro`,
      IMAGE, 'server', '-dev', '-dev-plugin-dir=/vault/plugins',
    ]);
    container = stdout.trim();
    const port = (await run('docker', ['port', container, '8200/tcp'])).stdout.trim().split(':').pop();
    addr = `http://127.0.0.1:${port}`;
    vault = vaultApi(addr, ROOT);
    for (let i = 0; i < 60; i++) {
      try {
        if ((await fetch(`${addr}/v1/sys/health`)).ok) break;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }, 900_000);

  afterAll(async () => {
    if (container) await run('docker', ['rm', '-f', container]).catch(() => undefined);
  });

  it('registers and mounts with tvm plugin register --apply', async () => {
    const plan = planRegistration({ pluginPath: plugin, apiAddr: 'http://127.0.0.1:8200' });
    const result = await applyRegistration(
      { read: (p) => vault.read(p), write: (p, b) => vault.write(p, b) },
      plan,
    );
    expect(result.mount).toBe('enabled');
    const mounts = await vault.read('sys/mounts');
    expect((mounts!.data as Record<string, { type: string }>)['tvm/'].type).toBe('tvm');
  });

  it('issues, verifies, renews with an increment, revokes, through Vault', async () => {
    await vault.write('tvm/roles/orders', { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m', max_ttl: '1h', audiences: ['orders-api'] });
    const creds = (await vault.read('tvm/creds/orders'))!;
    expect(creds.lease_id).toMatch(/^tvm\/creds\/orders\/.+/);
    expect(creds.lease_duration).toBe(300);
    expect(creds.renewable).toBe(true);

    const jwksRes = await vault.raw('tvm/.well-known/jwks.json');
    expect(jwksRes.headers.get('content-type')).toContain('application/json');
    const keys = createLocalJWKSet((await jwksRes.json()) as JSONWebKeySet);
    const issuer = 'http://127.0.0.1:8200/v1/tvm';
    const first = await jwtVerify(creds.data!.token as string, keys, { issuer, audience: 'orders-api', typ: 'at+jwt' });

    await new Promise((r) => setTimeout(r, 1100));
    const renewed = (await vault.write('sys/leases/renew', { lease_id: creds.lease_id, increment: 600 }))!;
    expect(renewed.lease_duration).toBe(600);
    const second = await jwtVerify(renewed.data!.token as string, keys, { issuer, typ: 'at+jwt' });
    expect(second.payload.jti).toBe(first.payload.jti);

    await vault.write('sys/leases/revoke', { lease_id: creds.lease_id });
    const intro = (await vault.write('tvm/introspect', { token: creds.data!.token }))!;
    expect(intro.data).toEqual({ active: false });
    const revocations = (await (await vault.raw('tvm/revocations')).json()) as { data: { revoked: Array<{ jti: string }> } };
    expect(revocations.data.revoked.map((e) => e.jti)).toContain(first.payload.jti);
  }, 60_000);

  it('answers caller mistakes and unknown paths as Vault does', async () => {
    await expect(vault.write('tvm/roles/bad', { read: ['db://x/*'], ttl: 'forever' })).rejects.toThrow(/: 400 .*ttl/);
    await expect(vault.read('tvm/no/such/path')).rejects.toThrow(/: 404 /);
  });
});
