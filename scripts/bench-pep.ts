// The PEP's speed: verifications per second on one core (warm: a token seen
// before; cold: every token new), with and without DPoP, beside the raw
// node:crypto ES256 verify rate (the ceiling of a cold verification); the
// replay cache's memory at 100,000 proofs; and how long a revocation takes to
// reach a PEP that is verifying under load, by polling and by the push stream.
//   scripts/bench-pep [--duration 3] [--revocations 100] [--poll-ms 1000]
import { createPublicKey, sign, verify } from 'node:crypto';
import { parseArgs } from 'node:util';
import { newPrivateKey } from '../src/engine/jwk.ts';
import { startServer } from '../src/server/index.ts';
import { createDpopProver, createVerifier, generateDpopKey, ReplayCache, type Verifier } from '../src/pep/index.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    revocations: { type: 'string', default: '100' },
    'poll-ms': { type: 'string', default: '1000' },
  },
});
const durationMs = Number(values.duration) * 1000;
const revocations = Number(values.revocations);
const pollMs = Number(values['poll-ms']);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Runs fn back to back for the duration (one at a time: one core's work); returns ops/s. */
async function rate(fn: (i: number) => Promise<unknown> | unknown): Promise<number> {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    for (let k = 0; k < 100; k++) await fn(n++);
  }
  return n / ((performance.now() - start) / 1000);
}

function rawVerifyRate(): number {
  const privateKey = newPrivateKey('ec', { namedCurve: 'P-256' });
  const publicKey = createPublicKey(privateKey);
  const data = Buffer.from('x'.repeat(600));
  const sig = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    for (let k = 0; k < 100; k++) verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig);
    n += 100;
  }
  return n / ((performance.now() - start) / 1000);
}

const server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
const issuer = `${server.address}/v1/tvm`;
const headers = { 'x-vault-token': server.rootToken, 'content-type': 'application/json' };
async function api(method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(`${server.address}/v1/${path}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const role = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '30m', max_ttl: '1h', audiences: ['orders-api'] };
await api('POST', 'tvm/roles/orders', role);
await api('POST', 'tvm/roles/bound', { ...role, binding: 'dpop' });
const verifiers: Verifier[] = [];
const make = (options: Partial<Parameters<typeof createVerifier>[0]> = {}): Verifier => {
  const v = createVerifier({ issuer, audience: 'orders-api', tokenCacheSize: 100_000, dpop: { replayCacheSize: 1_000_000 }, ...options });
  verifiers.push(v);
  return v;
};
const ctx = { op: 'read' as const, resource: 'db://orders/42', remoteAddr: '127.0.0.1' };

console.log(`node ${process.version}, ${durationMs / 1000} s per figure, one request at a time (one core)`);
const raw = rawVerifyRate();
console.log(`raw node:crypto ES256 verify:        ${Math.round(raw).toLocaleString('en')} /s  (the ceiling of a cold verification)`);

// Warm: the same token again and again (a workload's requests), every check but the signature.
const warm = make();
const one = (await api('GET', 'tvm/creds/orders')).data.token as string;
if (!(await warm.authorize(one, ctx)).allow) throw new Error('the bench token is refused');
let refused = 0;
const warmRate = await rate(async () => {
  if (!(await warm.authorize(one, ctx)).allow) refused++;
});
console.log(`PEP authorize, warm (token seen):    ${Math.round(warmRate).toLocaleString('en')} /s`);

// Cold: a new token each time (signature verified each time).
const coldTokens: string[] = [];
for (let i = 0; i < 3000; i++) coldTokens.push((await api('GET', 'tvm/creds/orders')).data.token);
const cold = make({ tokenCacheSize: 1 });
await cold.authorize(coldTokens[0], ctx);
const coldRate = await rate(async (i) => {
  if (!(await cold.authorize(coldTokens[i % coldTokens.length], ctx)).allow) refused++;
});
console.log(`PEP authorize, cold (token new):     ${Math.round(coldRate).toLocaleString('en')} /s`);

// DPoP: a bound token (warm) with a fresh proof on every request, proofs made beforehand.
const prover = createDpopProver(generateDpopKey('ES256'));
const bound = (await api('PUT', 'tvm/creds/bound', { dpop_jwk: prover.publicJwk })).data.token as string;
const url = 'https://orders.example/orders/42';
const proofs: string[] = [];
for (let i = 0; i < 60_000; i++) proofs.push(prover.proof({ method: 'GET', url, accessToken: bound }));
// One key makes every proof here: its share of the replay cache (dpopProofsPerKey, 10,000 by default) is raised to hold them all.
const dpop = make({ dpopProofsPerKey: proofs.length });
const dctx = (i: number) => ({ ...ctx, method: 'GET', url, scheme: 'DPoP' as const, dpop: proofs[i % proofs.length] });
if (!(await dpop.authorize(bound, dctx(0))).allow) throw new Error('the bound bench token is refused');
let offset = 1;
const dpopRate = await rate(async (i) => {
  if (!(await dpop.authorize(bound, dctx(offset + i))).allow) refused++;
});
offset += 1;
console.log(`PEP authorize, warm + DPoP proof:    ${Math.round(dpopRate).toLocaleString('en')} /s  (${proofs.length.toLocaleString('en')} distinct proofs)`);

if (refused > 0) throw new Error(`${refused} timed verifications were refused: the figures above are not of allowed requests`);
console.log('(every timed verification above was an allow)');

// The replay cache's memory at 100,000 proofs (jti as the prover makes them).
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const before = process.memoryUsage().heapUsed;
const cache = new ReplayCache({ windowMs: 65_000, maxEntries: 200_000 });
const now = Date.now();
for (let i = 0; i < 100_000; i++) cache.check(`${prover.jkt}:${i.toString(36)}-${Math.random().toString(36).slice(2)}`, now);
gc?.();
const after = process.memoryUsage().heapUsed;
console.log(`replay cache at ${cache.size.toLocaleString('en')} proofs:       ${((after - before) / 1024 / 1024).toFixed(1)} MiB heap${gc ? '' : ' (run with --expose-gc for a steadier figure)'}`);

/**
 * Revocation propagation: a PEP verifies the tokens in a loop (load) while
 * they are revoked one by one; for each, the time from the revoke call's
 * answer to the PEP's first refusal of that token.
 */
async function propagation(push: boolean): Promise<number[]> {
  const v = make({ statusPollMs: pollMs, push });
  const tokens: Array<{ token: string; lease: string }> = [];
  for (let i = 0; i < revocations; i++) {
    const c = await api('GET', 'tvm/creds/orders');
    tokens.push({ token: c.data.token, lease: c.lease_id });
  }
  for (const t of tokens) if (!(await v.authorize(t.token, ctx)).allow) throw new Error('a fresh token is refused');
  await new Promise((r) => setTimeout(r, 300)); // the push stream is open
  const revokedAt = new Map<number, number>();
  const delays: number[] = [];
  let running = true;
  // The load: every live token, over and over.
  const load = (async () => {
    let checks = 0;
    while (running) {
      for (let i = 0; i < tokens.length; i++) {
        const at = revokedAt.get(i);
        const d = await v.authorize(tokens[i].token, ctx);
        checks++;
        if (!d.allow && at !== undefined && !delays[i]) delays[i] = performance.now() - at;
      }
      await new Promise((r) => setImmediate(r));
    }
    return checks;
  })();
  const start = performance.now();
  for (let i = 0; i < tokens.length; i++) {
    await api('PUT', 'sys/leases/revoke', { lease_id: tokens[i].lease });
    revokedAt.set(i, performance.now());
    await new Promise((r) => setTimeout(r, 20));
  }
  const deadline = performance.now() + pollMs * 3 + 5000;
  while (delays.filter((d) => d !== undefined).length < tokens.length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  running = false;
  const checks = await load;
  const seconds = (performance.now() - start) / 1000;
  const seen = delays.filter((d) => d !== undefined);
  if (seen.length < tokens.length) throw new Error(`${tokens.length - seen.length} revocations never reached the PEP`);
  console.log(`  (${Math.round(checks / seconds).toLocaleString('en')} verifications/s of load during the run)`);
  return seen.sort((a, b) => a - b);
}

for (const push of [false, true]) {
  const label = push ? `push stream (poll ${pollMs} ms as well)` : `polling every ${pollMs} ms`;
  const d = await propagation(push);
  console.log(`revoke -> first refusal, ${label}: p50 ${pct(d, 50).toFixed(1)} ms, p99 ${pct(d, 99).toFixed(1)} ms, max ${d[d.length - 1].toFixed(1)} ms (${d.length} revocations)`);
}

for (const v of verifiers) v.close();
await server.close();
