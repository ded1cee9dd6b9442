// The apply helper itself: Terraform's ordering and references, and the
// provider's calls for the resources the dev server already serves (mount,
// engine config and roles, policies), against a dev server in-process.

import { GenericEndpoint } from '@cdktf/provider-vault/lib/generic-endpoint/index.js';
import { Policy } from '@cdktf/provider-vault/lib/policy/index.js';
import { Testing } from 'cdktf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerPolicy, TvmMount, TvmRole } from '../../cdktf/constructs/index.ts';
import { startServer } from '../../src/server/index.ts';
import { applyOrder, applyTerraformJson, type TerraformJson } from './apply.ts';

type Server = Awaited<ReturnType<typeof startServer>>;
let server: Server;

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
});
afterAll(async () => {
  await server?.close();
});

const get = async (path: string): Promise<{ status: number; data?: Record<string, unknown> }> => {
  const res = await fetch(`${server.address}/v1/${path}`, { headers: { 'X-Vault-Token': server.rootToken } });
  const body = (await res.json().catch(() => ({}))) as { data?: Record<string, unknown> };
  return { status: res.status, ...(body.data ? { data: body.data } : {}) };
};

function rolesStack(mountPath: string): TerraformJson {
  return JSON.parse(
    Testing.synthScope((scope) => {
      const mount = new TvmMount(scope, 'mount', { path: mountPath, defaultTtl: '10m', maxTtl: '2h' });
      const orders = new TvmRole(scope, 'orders', { mount, name: 'orders', read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m', maxTtl: '2h' });
      const logs = new TvmRole(scope, 'logs', { mount, name: 'logs', read: ['s3://logs/app/**'], audiences: ['log-store'] });
      new Policy(scope, 'policy', { name: `${mountPath}-readers`, policy: consumerPolicy('readers', [orders, logs]), dependsOn: [orders.endpoint, logs.endpoint] });
    }),
  ) as TerraformJson;
}

describe('applyOrder', () => {
  it('puts every resource after what it refers to or depends on', () => {
    const order = applyOrder({
      resource: {
        vault_policy: { p: { name: '${vault_generic_endpoint.e.path}', depends_on: ['vault_mount.m'] } },
        vault_generic_endpoint: { e: { path: 'x', depends_on: ['vault_mount.m'] } },
        vault_mount: { m: { path: 'm' } },
      },
    }).map((r) => r.address);
    expect(order).toEqual(['vault_mount.m', 'vault_generic_endpoint.e', 'vault_policy.p']);
  });

  it('refuses cycles, unknown targets and expressions it cannot evaluate', () => {
    expect(() => applyOrder({ resource: { vault_mount: { a: { depends_on: ['vault_mount.b'] }, b: { depends_on: ['vault_mount.a'] } } } })).toThrow(
      'dependency cycle',
    );
    expect(() => applyOrder({ resource: { vault_mount: { a: { depends_on: ['vault_mount.z'] } } } })).toThrow('depends on unknown vault_mount.z');
    expect(() => applyOrder({ resource: { vault_mount: { a: { path: '${upper(var.x)}' } } } })).toThrow('resolves only plain references');
  });
});

describe('applyTerraformJson against the dev server', () => {
  it('configures the provider with a child token, then mounts, configures, writes roles and the policy with no drift', async () => {
    const result = await applyTerraformJson(rolesStack('tvm-apply'), { token: server.rootToken, address: server.address });
    expect(result.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET auth/token/lookup-self',
      'GET sys/seal-status',
      'POST auth/token/create',
      'POST sys/mounts/tvm-apply',
      'GET sys/mounts/tvm-apply',
      'PUT tvm-apply/config',
      'GET tvm-apply/config',
      'PUT tvm-apply/roles/logs',
      'GET tvm-apply/roles/logs',
      'PUT tvm-apply/roles/orders',
      'GET tvm-apply/roles/orders',
      'PUT sys/policies/acl/tvm-apply-readers',
      'GET sys/policies/acl/tvm-apply-readers',
    ]);
    expect(result.calls.map((c) => c.status).every((s) => s < 300)).toBe(true);
    expect(result.drift).toEqual([]);
    expect(result.calls[3].body).toMatchObject({ type: 'tvm', config: { default_lease_ttl: '600s', max_lease_ttl: '7200s' } });

    const mount = await get('sys/mounts/tvm-apply');
    expect(mount.data).toMatchObject({ type: 'tvm', config: { default_lease_ttl: 600, max_lease_ttl: 7200 } });
    expect((await get('tvm-apply/config')).data).toMatchObject({ default_ttl: 600, max_ttl: 7200 });
    expect((await get('tvm-apply/roles/orders')).data).toMatchObject({ ttl: 300, max_ttl: 7200, write: ['db://orders/outbox'] });
    expect((await get('tvm-apply/roles/logs')).data).toMatchObject({ ttl: 0, audiences: ['log-store'] });
    expect((await get('sys/policies/acl/tvm-apply-readers')).data?.policy).toContain('path "tvm-apply/creds/logs"');
  });

  it('fails like terraform apply when Vault refuses a write: the resource and Vault\'s message', async () => {
    // The dev server mounts tvm/ itself: creating it again is refused, as the provider would be.
    await expect(applyTerraformJson(rolesStack('tvm'), { token: server.rootToken, address: server.address })).rejects.toThrow(
      /^vault_mount\.mount_[0-9A-F]{8}: POST sys\/mounts\/tvm: Code: 400\. Errors: \* .*tvm/,
    );
  });

  it('reports drift when what is read back differs from data_json (why TvmRole writes normalised seconds)', async () => {
    const tf = JSON.parse(
      Testing.synthScope((scope) => {
        new GenericEndpoint(scope, 'raw', { path: 'tvm/roles/raw', dataJson: JSON.stringify({ read: ['db://x/*'], ttl: '5m' }), ignoreAbsentFields: true });
      }),
    ) as TerraformJson;
    const result = await applyTerraformJson(tf, { token: server.rootToken, address: server.address });
    expect(result.drift).toEqual([
      expect.stringMatching(/data_json \{"read":\["db:\/\/x\/\*"\],"ttl":"5m"\} reads back as \{"read":\["db:\/\/x\/\*"\],"ttl":300\}$/),
    ]);
  });

  it('needs a token the server accepts', async () => {
    await expect(applyTerraformJson(rolesStack('tvm-other'), { token: 'hvs.nope', address: server.address })).rejects.toThrow(
      /GET auth\/token\/lookup-self: Code: 403/,
    );
  });
});
