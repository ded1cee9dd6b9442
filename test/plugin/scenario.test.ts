// One scenario (scenario.ts), three transports (transports.ts): the engine
// called directly, the dev server over Vault's HTTP API with node-vault, and
// the bundled plugin through the Go host (as Vault runs it). What a Vault
// client sees must be the same on all three; the engine's transcript is the
// reference each of the others is compared with.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { runScenario, type ScenarioResult } from './scenario.ts';
import { devServerTransport, engineTransport, hostTransport } from './transports.ts';
import { buildGoHost, buildPlugin, goHostUnavailable, HostSession } from './support.ts';

const API_ADDR = 'http://127.0.0.1:8200';

const unavailable = await goHostUnavailable();
if (unavailable) console.warn(`skipping the scenario through the plugin: ${unavailable}`);

/**
 * The engine's answers as Vault's core hands them to a client, which the dev
 * server does too (test/real/differential.test.ts holds it to OpenBao): an
 * error the engine raises other than a 400 (an error response) loses a 404's
 * and a 405's words to Vault's sentinels, and is answered as a one-item list.
 */
function throughVaultCore(steps: ScenarioResult['steps']): ScenarioResult['steps'] {
  return steps.map((s) => {
    const step = s as { status?: number; error?: string };
    if (step.error === undefined || step.status === 400) return s;
    const message = step.status === 404 ? 'unsupported path' : step.status === 405 ? 'unsupported operation' : step.error;
    return { ...step, error: `1 error occurred:\n\t* ${message}\n\n` };
  });
}

describe('the same scenario on every transport', () => {
  let direct: ScenarioResult;

  beforeAll(async () => {
    direct = await runScenario(engineTransport(API_ADDR));
  }, 30_000);

  it('runs against the engine directly', () => {
    const steps = direct.steps;
    expect(steps).toContainEqual(expect.objectContaining({ name: 'write role', status: 204 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'creds', status: 200, ttlS: 300, renewable: true, leaseId: 'tvm/creds/orders/<random>' }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'down-scoped creds', status: 200, ttlS: 60 }));
    expect(steps).toContainEqual(
      expect.objectContaining({
        name: 'renew +600s',
        status: 200,
        ttlS: 600,
        data: { jti_kept: true, token_answered: false, token_fetch: { path: 'tvm/creds/orders', jti: '<creds jti>' } },
      }),
    );
    expect(steps).toContainEqual(expect.objectContaining({ name: 'fetch the renewed token', status: 200, data: { jti_kept: true, has_token: true } }));
    expect(steps).toContainEqual(
      expect.objectContaining({ name: 'fetch it as another identity', status: 403, error: expect.stringContaining('another identity') }),
    );
    expect(steps).toContainEqual(expect.objectContaining({ name: 'token claims', sub_is_caller: true, life: 300 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'bad ttl', status: 400, error: expect.stringContaining('ttl') }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'unknown field', status: 400, error: expect.stringContaining('colour') }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'unsupported path', status: 404 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'unsupported operation', status: 405 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'a second lease', status: 429 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'a lease once the slot is free', status: 200 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'jwks after rotation', data: { kids: 2, new_kid_published: true } }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'revoke', status: 204 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'revoke again', status: 204 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'renew after revoke', status: 400, error: 'lease not found' }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'introspect 1', status: 200, data: { active: false } }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'revocations', data: { listed: true } }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'read deleted role', status: 404 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'renew after the role is gone', status: 400, error: expect.stringContaining('no longer exists') }));
    expect(direct.storageKeys!.join(' ')).toMatch(/\S/);
  });

  describe('the dev server over Vault\'s HTTP API (node-vault)', () => {
    let server: RunningServer;

    beforeAll(async () => {
      // The dev server mounts tvm/ with a `demo` role; the scenario uses its own role.
      // apiAddr: the same issuer as the other transports (the listener's port is random).
      server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true, apiAddr: API_ADDR });
    });

    afterAll(async () => {
      await server?.close();
    });

    it('gives a Vault client the same answers as the engine does', async () => {
      const overHttp = await runScenario(await devServerTransport(server));
      expect(overHttp.steps).toEqual(throughVaultCore(direct.steps));
      // Storage is not visible over Vault's API.
      expect(overHttp.storageKeys).toBeNull();
    }, 60_000);
  });

  describe.skipIf(unavailable !== null)('through the Go host and the bundled plugin', () => {
    let host: HostSession;
    let viaPlugin: ScenarioResult;

    beforeAll(async () => {
      const [hostBin, plugin] = await Promise.all([buildGoHost(), buildPlugin()]);
      host = await HostSession.start(hostBin, plugin, { VAULT_API_ADDR: API_ADDR });
    }, 180_000);

    afterAll(async () => {
      await host?.close();
    });

    it('negotiates protocol 5 on a unix socket', () => {
      expect(host.ready.negotiated).toBe(5);
      expect(host.ready.socket).toMatch(/tvm-plugin-[0-9a-f]+\.sock$/);
    });

    it('gives a Vault client the same answers as the engine does', async () => {
      viaPlugin = await runScenario(hostTransport(host, API_ADDR));
      expect(viaPlugin.steps).toEqual(direct.steps);
    }, 60_000);

    it('keeps the engine state in Vault storage reached through the broker, key for key', async () => {
      expect(viaPlugin.storageKeys).toEqual(direct.storageKeys);
      const stored = (await host.send({ cmd: 'storage' })).entries as Record<string, string>;
      // The revoked token's id is in Vault's storage, not in the plugin process.
      expect(Object.values(stored).some((v) => v.includes('"jti"') || v.includes('revoked'))).toBe(true);
    });
  });
});
