// A real Vault: the official image (plus Node.js, see vault/Dockerfile) in dev
// mode, started with testcontainers, the bundled plugin copied into its
// plugin_directory, registered and mounted with the library behind
// `tvm plugin register --apply`; then the shared scenario (scenario.ts) through
// Vault's HTTP API, compared with the engine's own transcript. Needs a
// reachable Docker engine (and the network to pull the images); skipped with a
// message otherwise.

import { GenericContainer, getContainerRuntimeClient, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type VaultConnection } from '../../src/client/index.ts';
import { applyRegistration, planRegistration } from '../../src/plugin/register.ts';
import { runScenario, type ScenarioResult } from './scenario.ts';
import { buildPlugin, REPO } from './support.ts';
import { engineTransport, vaultHttpTransport } from './transports.ts';

const IMAGE = 'tvm-vault-plugin-test:latest';
const ROOT = 'root';
const PORT = 8200;
const PLUGIN_DIR = '/vault/plugins';
/** Vault's address as Vault (and so the plugin's issuer) knows it, inside the container. */
const API_ADDR = `http://127.0.0.1:${PORT}`;
/** How long finding a container runtime may take before the test is skipped. */
const DETECT_TIMEOUT_MS = 15_000;

/** Why no Docker engine can be used, or null when testcontainers found one. */
async function dockerUnavailable(): Promise<string | null> {
  if (process.env.TVM_SKIP_DOCKER) return 'TVM_SKIP_DOCKER is set';
  // testcontainers tries, in order: TESTCONTAINERS_HOST_OVERRIDE, DOCKER_HOST or
  // ~/.testcontainers.properties, /var/run/docker.sock, the rootless sockets.
  // Bounded, so an unreachable DOCKER_HOST cannot hang the run.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${DETECT_TIMEOUT_MS / 1000}s`)), DETECT_TIMEOUT_MS);
    timer.unref();
  });
  try {
    const runtime = await Promise.race([getContainerRuntimeClient(), timeout]);
    if (runtime.info.containerRuntime.operatingSystemType !== 'linux') return `the Docker engine runs ${runtime.info.containerRuntime.operatingSystemType} containers, not linux`;
    return null;
  } catch (err) {
    const where = process.env.DOCKER_HOST ? `DOCKER_HOST=${process.env.DOCKER_HOST}` : 'DOCKER_HOST unset, no usable /var/run/docker.sock or rootless socket';
    return `no Docker engine is reachable (${where}; testcontainers: ${(err as Error).message})`;
  } finally {
    clearTimeout(timer);
  }
}

const unavailable = await dockerUnavailable();
if (unavailable) console.warn(`skipping the real-Vault plugin test: ${unavailable}`);

/**
 * Steps whose error text Vault words itself, so only the status and the gist
 * can match the engine's (the dev server passes the engine's text through):
 * - a backend's UnsupportedPath and UnsupportedOperation errors reach Vault as
 *   its sentinels, without the plugin's message ("unsupported path");
 * - errors from routing (those two, and coded errors such as the 429) come
 *   back wrapped as a list: "1 error occurred:\n\t* <message>\n\n";
 * - the expiration manager wraps a backend's refusal to renew:
 *   "failed to renew entry: resp: &logical.Response{...} err: ...".
 * A backend's error response (a 400 with data.error) Vault relays verbatim,
 * and data, ttls and statuses as they are.
 */
const WORDED_BY_VAULT: Record<string, string> = {
  'unsupported path': 'unsupported path',
  'unsupported operation': 'unsupported operation',
  'a second lease': 'its max_active_leases is 1',
  'renew after the role is gone': 'no longer exists',
};

function expectedThroughVault(reference: unknown[]): unknown[] {
  return reference.map((s) => {
    const entry = s as { name: string; error?: string };
    const gist = WORDED_BY_VAULT[entry.name];
    return gist && entry.error ? { ...entry, error: expect.stringContaining(gist) } : entry;
  });
}

describe.skipIf(unavailable !== null)('the plugin in a real Vault (official image, dev mode, testcontainers)', () => {
  let container: StartedTestContainer | undefined;
  let addr = '';
  let conn: VaultConnection;
  let plugin = '';
  let reference: ScenarioResult;

  beforeAll(async () => {
    plugin = await buildPlugin();
    reference = await runScenario(engineTransport(API_ADDR));
    // Kept after the run: the next run reuses the build cache.
    const image = await GenericContainer.fromDockerfile(`${REPO}/test/plugin/vault`).build(IMAGE, { deleteOnExit: false });
    container = await image
      .withEnvironment({
        VAULT_DEV_ROOT_TOKEN_ID: ROOT,
        VAULT_DEV_LISTEN_ADDRESS: `0.0.0.0:${PORT}`,
        // The image's entrypoint writes this into its config directory; dev mode reads it too.
        VAULT_LOCAL_CONFIG: JSON.stringify({ plugin_directory: PLUGIN_DIR, disable_mlock: true }),
        // No IPC_LOCK in a test container: don't try to give it to the binary.
        SKIP_SETCAP: 'true',
      })
      .withCommand(['server', '-dev'])
      .withCopyFilesToContainer([{ source: plugin, target: `${PLUGIN_DIR}/tvm-plugin`, mode: 0o755 }])
      .withExposedPorts(PORT)
      .withWaitStrategy(Wait.forHttp('/v1/sys/health', PORT).forStatusCode(200))
      .withStartupTimeout(120_000)
      .start();
    addr = `http://${container.getHost()}:${container.getMappedPort(PORT)}`;
    conn = connect({ addr, token: ROOT, env: {} });
  }, 900_000);

  afterAll(async () => {
    await container?.stop();
  });

  it('registers and mounts with the library behind tvm plugin register --apply', async () => {
    const plan = planRegistration({ pluginPath: plugin, apiAddr: API_ADDR });
    const result = await applyRegistration(conn, plan);
    expect(result.mount).toBe('enabled');
    const mounts = await conn.read('sys/mounts');
    expect((mounts!.data as Record<string, { type: string }>)['tvm/'].type).toBe('tvm');
    const catalog = await conn.read('sys/plugins/catalog/secret/tvm');
    expect(catalog!.data).toMatchObject({ sha256: plan.sha256, command: 'tvm-plugin' });
  });

  it('serves the raw JWKS document through Vault (http_raw_body)', async () => {
    const res = await fetch(`${addr}/v1/tvm/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const doc = (await res.json()) as { keys: Array<{ kid: string }> };
    expect(doc.keys.length).toBeGreaterThan(0);
  });

  it('runs the scenario through Vault with the answers the engine gives', async () => {
    const viaVault = await runScenario(await vaultHttpTransport('real Vault', { address: addr, token: ROOT, apiAddr: API_ADDR }));
    const steps = viaVault.steps;
    // The answers the issue names, spelled out, then the whole transcript.
    expect(steps).toContainEqual(expect.objectContaining({ name: 'creds', status: 200, ttlS: 300, renewable: true, leaseId: 'tvm/creds/orders/<random>' }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'renew +600s', status: 200, ttlS: 600, data: { jti_kept: true } }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'revoke', status: 204 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'introspect 0', status: 200, data: { active: false } }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'bad ttl', status: 400, error: expect.stringContaining('ttl') }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'unsupported path', status: 404 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'read deleted role', status: 404 }));
    expect(steps).toContainEqual(expect.objectContaining({ name: 'a second lease', status: 429 }));
    expect(steps).toEqual(expectedThroughVault(reference.steps));
  }, 60_000);
});
