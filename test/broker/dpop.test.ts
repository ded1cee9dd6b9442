// DPoP through the broker: the workload keeps its private key and gives the
// broker only the public half (dpop_jwk); every token the broker hands out for
// that request, the renewed ones and a replacement's included, is bound to it
// (cnf.jkt), and a PEP accepts it only with the workload's proof.

import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { createDpopProver, createVerifier, generateDpopKey } from '../../src/pep/index.ts';
import { api, captureLog, startDevVault, tempDir, testConfig, waitFor, type DevVault } from './helpers.ts';

const dir = tempDir();
afterAll(() => dir.remove());

interface TokenBody {
  token: string;
  jti: string;
  lease_id: string;
}

describe('the broker and DPoP-bound roles', () => {
  let vault: DevVault;
  let broker: RunningBroker;
  let base: string;
  const prover = createDpopProver(generateDpopKey('ES256'));

  beforeAll(async () => {
    vault = await startDevVault();
    await vault.conn.write('tvm/roles/bound', { read: ['db://orders/*'], ttl: '1s', max_ttl: '1h', binding: 'dpop' });
    broker = await startBroker(testConfig(vault, { sqlite: { path: `${dir.path}/dpop.db` } }, { roles: ['bound', 'long'] }), { log: captureLog().log });
    base = broker.url as string;
  });

  afterAll(async () => {
    await broker?.stop();
    await vault?.close();
  });

  it('binds the token to the public key the workload names, across renewals, and a PEP needs its proof', async () => {
    const w = await api(base, 'POST', '/v1/workloads', { name: 'svc', heartbeat_interval: '60s' });
    const t = await api<TokenBody>(base, 'POST', '/v1/tokens', { workload: w.body.id, role: 'bound', dpop_jwk: prover.publicJwk });
    expect(t.status, t.text).toBe(200);
    expect(decodeJwt(t.body.token).cnf).toEqual({ jkt: prover.jkt });
    // The same request again is the cached token; without the key it is another request, which the role refuses.
    const again = await api<TokenBody & { cached: boolean }>(base, 'POST', '/v1/tokens', { workload: w.body.id, role: 'bound', dpop_jwk: prover.publicJwk });
    expect(again.body.jti).toBe(t.body.jti);
    const bare = await api(base, 'POST', '/v1/tokens', { workload: w.body.id, role: 'bound' });
    expect(bare.status).toBe(400);
    expect(bare.text).toContain('dpop_jwk');

    // Renewed (ttl 1s): the broker's current token keeps the binding.
    await waitFor(async () => ((await broker.store.getLeaseByJti(t.body.jti))?.renewals ?? 0) >= 1 || null, 8_000, 'a renewal');
    const now = await api<TokenBody>(base, 'GET', `/v1/tokens/${t.body.jti}`);
    expect(now.status).toBe(200);
    expect(now.body.token).not.toBe(t.body.token);
    expect(decodeJwt(now.body.token).cnf).toEqual({ jkt: prover.jkt });

    const verifier = createVerifier({ issuer: `${vault.address}/v1/tvm`, audience: `${vault.address}/v1/tvm` });
    try {
      const url = 'http://orders.internal/orders/42';
      const ctx = { op: 'read' as const, resource: 'db://orders/42', method: 'GET', url, scheme: 'DPoP' as const };
      expect((await verifier.authorize(now.body.token, { ...ctx, dpop: prover.proof({ method: 'GET', url, accessToken: now.body.token }) })).allow).toBe(true);
      const without = await verifier.authorize(now.body.token, ctx);
      expect(without.allow ? 'allow' : without.code).toBe('ERR_BINDING');
    } finally {
      verifier.close();
    }
  }, 20_000);

  it('refuses a private key, naming the field and echoing nothing of it', async () => {
    const w = await api(base, 'POST', '/v1/workloads', { name: 'svc2', heartbeat_interval: '60s' });
    const secret = 'c2VjcmV0LWtleS1tYXRlcmlhbA';
    const r = await api(base, 'POST', '/v1/tokens', { workload: w.body.id, role: 'bound', dpop_jwk: { ...prover.publicJwk, d: secret } });
    expect(r.status).toBe(400);
    expect(r.text).toContain('dpop_jwk');
    expect(r.text).not.toContain(secret);
    const junk = await api(base, 'POST', '/v1/tokens', { workload: w.body.id, role: 'bound', dpop_jwk: 'not a key' });
    expect(junk.status).toBe(400);
  });
});
