// The Go conformance host (HashiCorp's go-plugin client, Debian's release)
// drives the bundled plugin exactly as Vault launches it. Skipped, with the
// packages to install, where Go or the Debian go-plugin packages are missing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGoHost, buildPlugin, goHostUnavailable, runHost } from './support.ts';

const unavailable = await goHostUnavailable();
if (unavailable) console.warn(`skipping the Go conformance host tests: ${unavailable}`);

describe.skipIf(unavailable !== null)('the bundled plugin under go-plugin (Go conformance host)', () => {
  let host = '';
  let plugin = '';

  beforeAll(async () => {
    [host, plugin] = await Promise.all([buildGoHost(), buildPlugin()]);
  }, 180_000);

  afterAll(() => undefined);

  it('passes the conformance checklist', async () => {
    const { code, stdout, stderr } = await runHost(host, plugin, 'conformance');
    const failures = stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    expect(failures, `${stdout}\n${stderr}`).toEqual([]);
    expect(code).toBe(0);
    const passed = stdout.split('\n').filter((l) => l.startsWith('PASS'));
    // Every item of the checklist ran (see test/plugin/host/conformance.go).
    expect(passed.length).toBeGreaterThanOrEqual(35);
    for (const item of [
      'negotiated protocol version 5',
      'the plugin presents its handshake certificate on the broker connection',
      'renew with increment 600s returns the secret with TTL 600s exactly',
      'revoke again is idempotent',
      "Setup again with the broker's ConnInfo sent after the Setup call",
      'unknown path answers the UnsupportedPath protocol error',
      'Shutdown (GRPCController) ends the process promptly and removes the socket',
    ]) {
      expect(passed.some((l) => l.includes(item)), item).toBe(true);
    }
  }, 120_000);

  it('refuses a connection that presents no client certificate, and keeps serving', async () => {
    const { code, stdout } = await runHost(host, plugin, 'no-client-cert');
    expect(stdout).toContain('PASS a connection without a client certificate is refused');
    expect(code, stdout).toBe(0);
  }, 60_000);

  it('fails Setup with a clear error when the broker does not accept its certificate, and keeps serving', async () => {
    const { code, stdout } = await runHost(host, plugin, 'wrong-broker-ca');
    expect(stdout).toMatch(/INFO setup error: tvm plugin setup: cannot connect to the host's broker service \d+/);
    expect(stdout).toContain('PASS the plugin keeps serving');
    expect(code, stdout).toBe(0);
  }, 60_000);
});
