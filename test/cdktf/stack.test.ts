// The example stack as `npm run cdktf:synth` builds it: the typed config, the
// stack, the JSON on disk, and a bad role failing synthesis.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Plugin } from '@cdktf/provider-vault/lib/plugin/index.js';
import { App, Testing } from 'cdktf';
import { afterAll, describe, expect, it } from 'vitest';
import { exampleConfig, type StackConfig } from '../../cdktf/config.ts';
import { TvmStack } from '../../cdktf/stacks/tvm-stack.ts';
import { parseRoleInput } from '../../src/engine/path_roles.ts';
import { expectNoResource, expectResource, resourcesOf } from './helpers.ts';

const run = promisify(execFile);
const SHA = 'a'.repeat(64);
const dirs: string[] = [];

function synthStack(config: StackConfig): string {
  const app = Testing.app();
  return Testing.synth(new TvmStack(app, config.stackName, config));
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the example stack', () => {
  it('targets the dev server by default: no plugin, its own mount beside the built-in tvm/', () => {
    const config = exampleConfig({});
    expect(config).toMatchObject({ target: 'dev', vault: { address: 'http://127.0.0.1:8200' }, mount: { path: 'tvm-platform' } });
    const synth = synthStack(config);
    expectNoResource(synth, Plugin.tfResourceType);
    expect(Testing.toHaveProviderWithProperties(synth, 'vault', { address: 'http://127.0.0.1:8200' })).toBe(true);
    expectResource(synth, 'vault_mount', { path: 'tvm-platform', type: 'tvm' });
    expectResource(synth, 'vault_generic_endpoint', { path: 'tvm-platform/roles/orders' });
    expectResource(synth, 'vault_generic_endpoint', { path: 'tvm-platform/roles/logs' });
    const count = (type: string): number => resourcesOf(synth, type).length;
    expect({
      mount: count('vault_mount'),
      endpoints: count('vault_generic_endpoint'),
      policies: count('vault_policy'),
      approle: count('vault_auth_backend'),
      jwt: count('vault_jwt_auth_backend'),
      approleRoles: count('vault_approle_auth_backend_role'),
      jwtRoles: count('vault_jwt_auth_backend_role'),
    }).toEqual({ mount: 1, endpoints: 3, policies: 2, approle: 1, jwt: 1, approleRoles: 1, jwtRoles: 1 });
  });

  it('declares the two workloads of the issue', () => {
    const config = exampleConfig({});
    const orders = parseRoleInput('orders', { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m' });
    const synth = synthStack(config);
    const [ordersRole] = resourcesOf(synth, 'vault_generic_endpoint').filter((r) => r.path === 'tvm-platform/roles/orders');
    expect(JSON.parse(ordersRole.data_json as string)).toEqual({ ...orders, iam: undefined });
    expectResource(synth, 'vault_approle_auth_backend_role', { role_name: 'orders-service', secret_id_num_uses: 1 });
    expectResource(synth, 'vault_jwt_auth_backend_role', {
      role_name: 'log-shipper',
      role_type: 'jwt',
      bound_audiences: ['vault'],
      bound_subject: 'system:serviceaccount:logging:log-shipper',
    });
    expectResource(synth, 'vault_jwt_auth_backend', {
      bound_issuer: 'https://kubernetes.default.svc.cluster.local',
      jwks_url: 'https://kubernetes.default.svc.cluster.local/openid/v1/jwks',
    });
  });

  it('never writes the Vault token into the synthesized Terraform', () => {
    const token = 'hvs.do-not-write-me-anywhere';
    const synth = synthStack(exampleConfig({ VAULT_TOKEN: token, VAULT_ADDR: 'https://vault.example.com:8200' }));
    expect(synth).not.toContain(token);
    expect(Testing.toHaveProviderWithProperties(synth, 'vault', { address: 'https://vault.example.com:8200' })).toBe(true);
  });

  it('registers the plugin and mounts at tvm/ for a real Vault', () => {
    const config = exampleConfig({ TVM_TARGET: 'vault', TVM_PLUGIN_SHA256: SHA, VAULT_ADDR: 'https://vault.example.com:8200' });
    const synth = synthStack(config);
    expectResource(synth, Plugin.tfResourceType, {
      name: 'tvm',
      command: 'tvm-plugin',
      sha256: SHA,
      env: ['VAULT_API_ADDR=https://vault.example.com:8200'],
    });
    expectResource(synth, 'vault_mount', { path: 'tvm', type: 'tvm' });
  });

  it('explains what a real Vault target is missing', () => {
    expect(() => exampleConfig({ TVM_TARGET: 'vault', TVM_PLUGIN_FILE: '/nonexistent/tvm-plugin' })).toThrow(
      /TVM_TARGET=vault needs the plugin's sha256: run `npm run build:plugin`.*or set TVM_PLUGIN_SHA256/,
    );
    expect(() => exampleConfig({ TVM_TARGET: 'prod' })).toThrow('invalid TVM_TARGET: "prod"');
  });

  it('fails synthesis of the whole stack on a bad role, with the engine\'s message', () => {
    const config = exampleConfig({});
    config.roles = [...config.roles, { name: 'reports', read: ['reports'], ttl: 'forever' }];
    config.workloads[0].roles.push('reports');
    let message = '';
    try {
      parseRoleInput('reports', { read: ['reports'], ttl: 'forever' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^invalid ttl: "forever" is not a duration/);
    const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'tvm-cdktf-bad-')) });
    dirs.push(app.outdir);
    expect(() => {
      new TvmStack(app, 'tvm', config);
      app.synth();
    }).toThrow(`TvmRole "reports": ${message}`);
    expect(existsSync(join(app.outdir, 'stacks', 'tvm', 'cdk.tf.json'))).toBe(false);
  });

  it('refuses a workload that names an unknown role', () => {
    const config = exampleConfig({});
    config.workloads[1].roles = ['logs', 'metrics'];
    expect(() => synthStack(config)).toThrow('workload "log-shipper": unknown role "metrics" (declare it in roles)');
  });
});

describe('cdktf/main.ts', () => {
  const main = join(process.cwd(), 'cdktf', 'main.ts');
  const tsx = join(process.cwd(), 'node_modules', '.bin', 'tsx');

  it('writes cdktf.out/stacks/tvm/cdk.tf.json', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tvm-cdktf-main-'));
    dirs.push(out);
    const { stdout } = await run(tsx, [main], { env: { ...process.env, CDKTF_OUTDIR: out, VAULT_ADDR: 'http://127.0.0.1:8200', TVM_TARGET: '' } });
    expect(stdout).toMatch(/^synthesized .*stacks\/tvm\/cdk\.tf\.json \(target dev, Vault http:\/\/127\.0\.0\.1:8200\)\n$/);
    const tf = JSON.parse(readFileSync(join(out, 'stacks', 'tvm', 'cdk.tf.json'), 'utf8')) as { resource: Record<string, unknown> };
    expect(Object.keys(tf.resource).sort()).toEqual([
      'vault_approle_auth_backend_role',
      'vault_auth_backend',
      'vault_generic_endpoint',
      'vault_jwt_auth_backend',
      'vault_jwt_auth_backend_role',
      'vault_mount',
      'vault_policy',
    ]);
  });

  it('exits 1 with the reason when the config is wrong', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tvm-cdktf-main-'));
    dirs.push(out);
    const failed = await run(tsx, [main], { env: { ...process.env, CDKTF_OUTDIR: out, TVM_TARGET: 'staging' } }).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('synth failed: invalid TVM_TARGET: "staging"');
  });
});
