// From the first offending request at a PEP to that token refused at every
// PEP, through each path a rule can act on: the watcher beside the PEPs
// (revoke_token: the engine's revoke-by-jti, pushed on the status stream) and
// the broker (usage events posted to it, its rule revoking the lease through
// Vault). Three PEPs with push; a token probes three times out of scope.
//   scripts/bench-anomaly [--tokens 50]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig, startBroker } from '../src/broker/index.ts';
import { connect } from '../src/client/index.ts';
import { createVerifier, type UsageEvent, type Verifier } from '../src/pep/index.ts';
import { startServer } from '../src/server/index.ts';
import { createWatcher } from '../src/watch/watcher.ts';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '50' } } });
const N = Number(values.tokens);
const dir = mkdtempSync(join(tmpdir(), 'tvm-bench-anomaly-'));
const server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
const issuer = `${server.address}/v1/tvm`;
const h = { 'x-vault-token': server.rootToken, 'content-type': 'application/json' };
await fetch(`${server.address}/v1/tvm/roles/orders`, { method: 'POST', headers: h, body: JSON.stringify({ read: ['db://orders/*'], audiences: ['orders-api'], ttl: '30m', max_ttl: '1h' }) });
const READ = { op: 'read' as const, resource: 'db://orders/1', remoteAddr: '10.0.0.7' };
const PROBE = { op: 'write' as const, resource: 'db://payments/1', remoteAddr: '10.0.0.7' };
const verifiers: Verifier[] = [];
const pep = (sink?: (e: UsageEvent) => void) => {
  const v = createVerifier({ issuer, audience: 'orders-api', push: true, statusPollMs: 30_000, ...(sink ? { sink } : {}) });
  verifiers.push(v);
  return v;
};
const pct = (d: number[], q: number) => d[Math.min(d.length - 1, Math.ceil(q * d.length) - 1)];

async function measure(label: string, peps: Verifier[], token: () => Promise<string>): Promise<void> {
  const delays: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = await token();
    for (const v of peps) if (!(await v.authorize(t, READ)).allow) throw new Error('a fresh token is refused');
    await peps[0].authorize(t, PROBE);
    await peps[1].authorize(t, PROBE);
    const start = performance.now();
    await peps[0].authorize(t, PROBE);
    for (;;) {
      const refused = await Promise.all(peps.map(async (v) => !(await v.authorize(t, READ)).allow));
      if (refused.every(Boolean)) break;
      if (performance.now() - start > 10_000) throw new Error('a PEP still accepts the token after 10 s');
      await new Promise((r) => setTimeout(r, 2));
    }
    delays.push(performance.now() - start);
  }
  delays.sort((a, b) => a - b);
  console.log(`${label}: p50 ${pct(delays, 0.5).toFixed(1)} ms, p99 ${pct(delays, 0.99).toFixed(1)} ms, max ${delays[delays.length - 1].toFixed(1)} ms (${N} tokens, 3 PEPs)`);
}

console.log(`offending request -> refused at every PEP, node ${process.version}`);
try {
  // 1. A watcher beside the PEPs: revoke_token through the engine's revoke-by-jti.
  const watcher = createWatcher({
    rules: [{ name: 'probe', kind: 'scope_denials', action: 'revoke_token', threshold: 3 }],
    vault: connect({ addr: server.address, token: server.rootToken, env: {} }),
  });
  const w = [pep(watcher.sink), pep(watcher.sink), pep(watcher.sink)];
  await measure('watcher, revoke_token (engine revoke by jti, status push)', w, async () => {
    const r = (await (await fetch(`${issuer}/creds/orders`, { headers: h })).json()) as { data: { token: string } };
    return r.data.token;
  });

  // 2. The broker: the PEPs post their events, its rule revokes the lease through Vault.
  const broker = await startBroker(
    parseConfig(
      {
        vault: { address: server.address, auth: { token: { token: server.rootToken } } },
        store: { sqlite: { path: join(dir, 'b.db') } },
        listener: { address: '127.0.0.1:0' },
        roles: ['orders'],
        loop: { tick: '50ms', trigger_interval: '100ms' },
        // The bench issues fast on purpose: the issuance-rate rule of the broker would end the workload.
        anomaly: { min_count: 1000000 },
        rule: [{ probe: { kind: 'scope_denials', action: 'revoke_token', threshold: 3 } }],
      },
      dir,
      {},
    ),
    { log: (await import('../src/broker/index.ts')).createLogger({ level: 'error', to: 'stderr' }) },
  );
  try {
    const post = (e: UsageEvent) => void fetch(`${broker.url}/v1/usage`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: [e] }) }).catch(() => undefined);
    const b = [pep(post), pep(post), pep(post)];
    const wl = (await (await fetch(`${broker.url}/v1/workloads`, { method: 'POST', body: JSON.stringify({ name: 'bench', heartbeat_interval: '600s' }) })).json()) as { id: string };
    let k = 0;
    await measure('broker, revoke_token (usage posted, lease revoked through Vault)', b, async () => {
      const r = (await (await fetch(`${broker.url}/v1/tokens`, { method: 'POST', body: JSON.stringify({ workload: wl.id, role: 'orders', read: [`db://orders/${k++}`, 'db://orders/1'] }) })).json()) as { token: string };
      return r.token;
    });
  } finally {
    await broker.stop();
  }
} finally {
  for (const v of verifiers) v.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
