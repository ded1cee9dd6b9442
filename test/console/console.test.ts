// The broker's console in a real browser (Debian's chromium, driven by
// playwright-core): sign in with a Vault token, see a lease the test issued
// appear with its last use from a PEP, revoke it from the page, and see it
// gone in Vault and refused at the PEP. CONSOLE_SCREENSHOTS=<dir> keeps the
// screenshots (the README's come from here).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { createUsageForwarder, createVerifier, type UsageForwarder, type Verifier } from '../../src/pep/index.ts';
import { startServer } from '../../src/server/index.ts';
import { api as brokerApi, captureLog, testConfig } from '../broker/helpers.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!CHROMIUM) console.warn('skipping the console in a browser: no chromium (apt-get install chromium)');

const dir = mkdtempSync(join(tmpdir(), 'tvm-console-'));
const shots = process.env.CONSOLE_SCREENSHOTS ?? join(dir, 'shots');
let server: Awaited<ReturnType<typeof startServer>>;
let broker: RunningBroker;
let browser: Browser;
let verifier: Verifier;
let forwarder: UsageForwarder;

async function vault(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': server.rootToken, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

describe.skipIf(!CHROMIUM)('the console in a browser', () => {
  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
    await vault('POST', 'tvm/roles/orders', { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '10m', max_ttl: '1h', audiences: ['orders-api'] });
    broker = await startBroker(testConfig({ address: server.address, rootToken: server.rootToken }, { sqlite: { path: join(dir, 'b.db') } }, { roles: ['orders'] }), { log: captureLog().log, consoleRecheckMs: 0 });
    // The PEP reports its decisions to the broker (POST /v1/usage): the console's "last use".
    forwarder = createUsageForwarder({ broker: broker.url as string, flushMs: 50 });
    verifier = createVerifier({ issuer: `${server.address}/v1/tvm`, audience: 'orders-api', push: true, sink: forwarder });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    verifier?.close();
    await forwarder?.close();
    expect(forwarder?.dropped ?? 0).toBe(0);
    await broker?.stop();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs in with a Vault token, shows a lease and its last use, and revokes it for Vault and the PEP', async () => {
    const base = broker.url as string;
    const w = await brokerApi(base, 'POST', '/v1/workloads', { name: 'orders-worker', heartbeat_interval: '60s' });
    const issued = await brokerApi<{ token: string; jti: string; lease_id: string }>(base, 'POST', '/v1/tokens', { workload: w.body.id, role: 'orders' });
    expect(issued.status).toBe(200);
    const { token, jti, lease_id: leaseId } = issued.body;
    // Company for the inventory: other workloads and roles' leases.
    for (const name of ['reports-cron', 'billing-api']) {
      const other = await brokerApi(base, 'POST', '/v1/workloads', { name, heartbeat_interval: '60s' });
      await brokerApi(base, 'POST', '/v1/tokens', { workload: other.body.id, role: 'orders', read: [`db://orders/${name.length}`] });
    }
    expect((await verifier.authorize(token, { op: 'read', resource: 'db://orders/42', remoteAddr: '10.0.0.7' })).allow).toBe(true);
    await forwarder.flush();

    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    await page.goto(`${base}/console/`);
    expect(page.url()).toBe(`${base}/console/login`);
    await page.getByLabel('Vault token').fill('hvs.not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('Vault does not know that token');
    await page.getByLabel('Vault token').fill(server.rootToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(page.url()).toBe(`${base}/console/`);
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'tvm_console')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(JSON.stringify(cookies)).not.toContain(server.rootToken);

    const row = page.getByRole('row').filter({ hasText: jti });
    await expect(row.textContent()).resolves.toContain('orders-worker');
    await expect(row.textContent()).resolves.toContain('read:db://orders/* write:db://orders/outbox');
    await expect(row.textContent()).resolves.toContain('allow from 10.0.0.7');
    await expect(row.textContent()).resolves.toContain('active');
    await page.screenshot({ path: join(shots, 'console-inventory.png'), fullPage: true });

    await row.getByRole('link', { name: 'Revoke…' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Revoke a token');
    await page.screenshot({ path: join(shots, 'console-revoke.png') });
    await page.getByRole('button', { name: 'Revoke' }).click();
    expect(page.url()).toBe(`${base}/console/tokens/${jti}`);

    // Revoked in Vault, refused at the PEP.
    const start = Date.now();
    while ((await vault('PUT', 'sys/leases/lookup', { lease_id: leaseId })).status === 200) {
      if (Date.now() - start > 10_000) throw new Error('the lease is still alive in Vault');
      await new Promise((r) => setTimeout(r, 50));
    }
    let decision = await verifier.authorize(token, { op: 'read', resource: 'db://orders/42', remoteAddr: '10.0.0.7' });
    for (let i = 0; i < 100 && decision.allow; i++) {
      await new Promise((r) => setTimeout(r, 20));
      decision = await verifier.authorize(token, { op: 'read', resource: 'db://orders/42', remoteAddr: '10.0.0.7' });
    }
    expect(decision.allow ? 'allow' : decision.code).toBe('ERR_TOKEN_REVOKED');

    await forwarder.flush();
    await page.reload();
    const storyText = (await page.locator('main').textContent()) ?? '';
    expect(storyText).toContain('revoke_requested (console)');
    expect(storyText).toContain('denied: read db://orders/42 ERR_TOKEN_REVOKED from 10.0.0.7');
    await page.screenshot({ path: join(shots, 'console-token.png'), fullPage: true });
    expect(await page.content()).not.toContain(token);
    await page.close();
  }, 60_000);

  it('refuses a form without its CSRF token and a page without a session', async () => {
    const base = broker.url as string;
    const noSession = await fetch(`${base}/console/`, { redirect: 'manual' });
    expect(noSession.status).toBe(303);
    expect(noSession.headers.get('location')).toBe('/console/login');
    const login = await fetch(`${base}/console/login`, { method: 'POST', body: new URLSearchParams({ token: server.rootToken }), redirect: 'manual' });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
    expect(cookie).toMatch(/^tvm_console=/);
    const page = await fetch(`${base}/console/`, { headers: { cookie } });
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const forged = await fetch(`${base}/console/revoke/00000000-0000-4000-8000-000000000000`, { method: 'POST', headers: { cookie }, body: new URLSearchParams({ csrf: 'guess' }) });
    expect(forged.status).toBe(403);
  });

  it('lets in only a token Vault allows to revoke leases, and ends the session when Vault revokes the token', async () => {
    const base = broker.url as string;
    const login = (token: string) => fetch(`${base}/console/login`, { method: 'POST', body: new URLSearchParams({ token }), redirect: 'manual' });
    const plain = (await vault('POST', 'auth/token/create', { policies: ['default'] })).body.auth.client_token as string;
    const refused = await login(plain);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('may not update sys/leases/revoke');
    await vault('PUT', 'sys/policies/acl/console', { policy: 'path "sys/leases/revoke" { capabilities = ["update"] }' });
    const operator = (await vault('POST', 'auth/token/create', { policies: ['console'] })).body.auth.client_token as string;
    const ok = await login(operator);
    expect(ok.status).toBe(303);
    const cookie = (ok.headers.get('set-cookie') ?? '').split(';')[0];
    expect((await fetch(`${base}/console/`, { headers: { cookie } })).status).toBe(200);
    // Revoked in Vault: the next page past the recheck interval sends it back to sign in.
    await vault('POST', 'auth/token/revoke', { token: operator });
    const later = await fetch(`${base}/console/`, { headers: { cookie }, redirect: 'manual' });
    expect(later.status).toBe(303);
    expect(later.headers.get('location')).toBe('/console/login');
  });

  it('refuses a page of another origin posting to the broker, and a non-loopback Host', async () => {
    const base = broker.url as string;
    const csrf = await fetch(`${base}/v1/usage`, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'text/plain' }, body: JSON.stringify({ events: [] }) });
    expect(csrf.status).toBe(403);
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve) => {
      const u = new URL(`${base}/v1/status`);
      request({ host: u.hostname, port: u.port, path: u.pathname, headers: { host: 'rebound.example:8300' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).end();
    });
    expect(status).toBe(403);
    expect((await fetch(`${base}/v1/status`)).status).toBe(200);
  });
});
