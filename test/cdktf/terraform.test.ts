// Roles as code, for real: the example stack (cdktf/config.ts + TvmStack)
// synthesized, then `terraform init/apply/plan/destroy` with the real
// terraform (v1.5.7) and the real Vault provider (v5.9.0) against (a) the tvm
// dev server and (b) a real OpenBao running the tvm plugin, registered and
// mounted by the stack itself (vault_plugin, vault_mount). Skipped, with the
// reason, when terraform or the provider is not installed
// (scripts/real-parts terraform provider); the OpenBao half also when OpenBao
// is not (scripts/real-parts openbao).

import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { jsPlugin, openbaoUnavailable, PLUGIN_FILE, startBaoDev, type Bao } from '../real/openbao.ts';
import { synthStack, terraformUnavailable, type Stack, type TerraformRun } from './terraform.ts';

const unavailable = terraformUnavailable();
if (unavailable) console.warn(`test/cdktf/terraform.test.ts skipped: ${unavailable}`);
const baoUnavailable = unavailable ? '' : openbaoUnavailable();
if (baoUnavailable) console.warn(`test/cdktf/terraform.test.ts: the OpenBao half is skipped: ${baoUnavailable}`);

interface Reply {
  status: number;
  body: { data?: Record<string, unknown> | null; auth?: { client_token: string; policies: string[] } | null; errors?: string[] } & Record<string, unknown>;
}

/** A server the stack is applied to. */
interface Target {
  address: string;
  rootToken: string;
  /** exampleConfig environment for this kind of server. */
  env: Record<string, string>;
  /** Catalog entries the stack registers (a real server only). */
  catalog: string[];
  close(): Promise<void>;
}

async function call(address: string, method: string, path: string, token: string | null, body?: unknown): Promise<Reply> {
  const res = await fetch(`${address}/v1/${path}`, {
    method,
    headers: { ...(token ? { 'X-Vault-Token': token } : {}), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: Reply['body'] = {};
  try {
    parsed = text === '' ? {} : (JSON.parse(text) as Reply['body']);
  } catch {
    parsed = { errors: [text.slice(0, 200)] };
  }
  return { status: res.status, body: parsed };
}

async function devTarget(): Promise<Target> {
  const server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  return { address: server.address, rootToken: server.rootToken, env: { TVM_TARGET: 'dev' }, catalog: [], close: () => server.close() };
}

async function openbaoTarget(): Promise<Target> {
  const bao: Bao = await startBaoDev();
  // The file goes where the operator puts it; the stack registers and mounts it.
  const file = join(bao.pluginDir, PLUGIN_FILE);
  copyFileSync(await jsPlugin(), file);
  chmodSync(file, 0o755);
  return {
    address: bao.address,
    rootToken: bao.rootToken,
    env: { TVM_TARGET: 'vault', TVM_PLUGIN_FILE: file, TVM_PLUGIN_COMMAND: PLUGIN_FILE },
    catalog: ['sys/plugins/catalog/secret/tvm'],
    close: () => bao.stop(),
  };
}

/** What the server holds that the stack could touch: mounts, auth methods, ACL policies. */
async function inventory(t: Target): Promise<{ mounts: string[]; auth: string[]; policies: string[] }> {
  const keys = (r: Reply): string[] => Object.keys((r.body.data ?? r.body) as Record<string, unknown>).filter((k) => k.endsWith('/')).sort();
  const mounts = keys(await call(t.address, 'GET', 'sys/mounts', t.rootToken));
  const auth = keys(await call(t.address, 'GET', 'sys/auth', t.rootToken));
  const list = await call(t.address, 'GET', 'sys/policy', t.rootToken);
  const policies = ((list.body.data?.policies ?? list.body.policies ?? []) as string[]).slice().sort();
  return { mounts, auth, policies };
}

function suite(start: () => Promise<Target>): void {
  let target: Target;
  let stack: Stack;
  let before: Awaited<ReturnType<typeof inventory>>;
  const secrets: string[] = [];
  let applied = false;

  const root = (method: string, path: string, body?: unknown): Promise<Reply> => call(target.address, method, path, target.rootToken, body);
  /** Terraform's output for a failure message, with every secret the test knows replaced. */
  const shown = (r: TerraformRun): string => {
    let text = `exit ${r.code}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-4000)}`;
    for (const s of secrets) text = text.split(s).join('<redacted>');
    return text;
  };

  beforeAll(async () => {
    target = await start();
    secrets.push(target.rootToken);
    stack = synthStack({ address: target.address, token: target.rootToken, env: target.env });
    before = await inventory(target);
    const init = await stack.terraform(['init', '-input=false']);
    expect(init.code, shown(init)).toBe(0);
  }, 240_000);

  afterAll(async () => {
    // Leave nothing behind even when a test failed half-way.
    if (applied) await stack.terraform(['destroy', '-auto-approve', '-input=false']);
    await target?.close();
    if (stack) rmSync(stack.dir, { recursive: true, force: true });
  }, 240_000);

  it('terraform init installs the provider from the mirror, and apply creates every resource', async () => {
    const apply = await stack.terraform(['apply', '-auto-approve', '-input=false']);
    applied = true;
    expect(apply.code, shown(apply)).toBe(0);
    const added = /Apply complete! Resources: (\d+) added, (\d+) changed, (\d+) destroyed\./.exec(apply.stdout);
    expect(added?.slice(1).map(Number), shown(apply)).toEqual([stack.addresses.length, 0, 0]);
    const state = await stack.terraform(['state', 'list']);
    expect(state.stdout.trim().split('\n').sort()).toEqual(stack.addresses.slice().sort());

    const role = await root('GET', `${stack.mountPath}/roles/orders`);
    expect(role.status).toBe(200);
    expect(role.body.data).toMatchObject({ read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: 300 });
    for (const path of target.catalog) expect((await root('GET', path)).status, path).toBe(200);
  }, 240_000);

  it('plan -detailed-exitcode right after apply reports no changes', async () => {
    const plan = await stack.terraform(['plan', '-detailed-exitcode', '-input=false']);
    expect(plan.code, shown(plan)).toBe(0);
    expect(plan.stdout).toContain('No changes.');
  }, 240_000);

  it('a role changed out of band shows up in plan, and apply puts it back', async () => {
    const changed = await root('POST', `${stack.mountPath}/roles/orders`, { read: ['db://orders/*', 'db://payments/*'], write: ['db://orders/outbox'], ttl: 300 });
    expect(changed.status, JSON.stringify(changed.body)).toBeLessThan(300);
    const plan = await stack.terraform(['plan', '-detailed-exitcode', '-input=false']);
    expect(plan.code, shown(plan)).toBe(2);
    expect(plan.stdout).toMatch(/vault_generic_endpoint\.role-orders_role_[0-9A-F]+ will be updated in-place/);
    expect(plan.stdout).toContain('Plan: 0 to add, 1 to change, 0 to destroy.');

    const apply = await stack.terraform(['apply', '-auto-approve', '-input=false']);
    expect(apply.code, shown(apply)).toBe(0);
    expect((await root('GET', `${stack.mountPath}/roles/orders`)).body.data?.read).toEqual(['db://orders/*']);
    const again = await stack.terraform(['plan', '-detailed-exitcode', '-input=false']);
    expect(again.code, shown(again)).toBe(0);
  }, 480_000);

  it('the AppRole workload logs in and vends exactly its roles', async () => {
    const roleId = await root('GET', 'auth/approle/role/orders-service/role-id');
    expect(roleId.status).toBe(200);
    const secretId = await root('POST', 'auth/approle/role/orders-service/secret-id');
    expect(secretId.status).toBe(200);
    secrets.push(secretId.body.data!.secret_id as string);
    const login = await call(target.address, 'POST', 'auth/approle/login', null, { role_id: roleId.body.data!.role_id, secret_id: secretId.body.data!.secret_id });
    expect(login.status, login.body.errors?.join('; ')).toBe(200);
    const token = login.body.auth!.client_token;
    secrets.push(token);
    expect(login.body.auth!.policies).toContain('tvm-orders-service');

    const creds = await call(target.address, 'GET', `${stack.mountPath}/creds/orders`, token);
    expect(creds.status, creds.body.errors?.join('; ')).toBe(200);
    expect(creds.body.data).toMatchObject({ token_type: 'readwrite', read: ['db://orders/*'], write: ['db://orders/outbox'], role: 'orders' });
    const claims = decodeJwt(creds.body.data!.token as string);
    expect(claims.scope).toBe('read:db://orders/* write:db://orders/outbox');
    expect(claims.iss).toBe(`${target.address}/v1/${stack.mountPath}`);
    expect((await call(target.address, 'POST', `${stack.mountPath}/creds/orders`, token, { read: ['db://orders/42'], write: [] })).status).toBe(200);

    for (const [method, path] of [
      ['GET', `${stack.mountPath}/creds/logs`],
      ['POST', `${stack.mountPath}/creds/logs`],
      ['POST', `${stack.mountPath}/roles/orders`],
    ]) {
      const denied = await call(target.address, method, path, token, method === 'POST' ? { read: ['db://**'] } : undefined);
      expect(denied.status, `${method} ${path}`).toBe(403);
    }
  }, 120_000);

  it('destroy removes everything the stack made, and nothing else', async () => {
    const destroy = await stack.terraform(['destroy', '-auto-approve', '-input=false']);
    expect(destroy.code, shown(destroy)).toBe(0);
    applied = false;
    expect(destroy.stdout).toContain(`Destroy complete! Resources: ${stack.addresses.length} destroyed.`);
    expect(await inventory(target)).toEqual(before);
    for (const path of [
      `${stack.mountPath}/roles/orders`,
      'sys/policies/acl/tvm-orders-service',
      'sys/policies/acl/tvm-log-shipper',
      'auth/approle/role/orders-service',
      'auth/jwt/role/log-shipper',
      ...target.catalog,
    ]) {
      const gone = await root('GET', path);
      expect([400, 404], `${path} answers ${gone.status}`).toContain(gone.status);
    }
  }, 240_000);
}

describe.skipIf(unavailable !== '')('the example stack under real Terraform', () => {
  describe('applied to the tvm dev server', () => suite(devTarget));
  describe.skipIf(baoUnavailable !== '')('applied to OpenBao with the tvm plugin', () => suite(openbaoTarget));
});
