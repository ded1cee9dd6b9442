// Cloud mapping benchmark (scripts/bench-cloud [workloads] [concurrency]):
//  1. role validation with a four-cloud iam mapping (the engine's own check), per op;
//  2. the broker's POST /v1/tokens with cloud=aws, end to end: dev server (token),
//     the real AWS provider (@aws-sdk/client-sts) against the loopback STS/IAM fake,
//     which verifies each token against the dev server's JWKS; one new workload per
//     request so every call issues a lease and a grant; then the same requests
//     again (served from the cache); then every workload ended and the time until
//     every grant's teardown (the deny policy put) is recorded.
// One process, 2 shared cores: the figures include the dev server and the fake.

import { performance } from 'node:perf_hooks';
import { startBroker } from '../src/broker/index.ts';
import { parseRoleInput } from '../src/engine/path_roles.ts';
import { createProviders, parseCloudBlocks } from '../src/iam/providers.ts';
import { FAKE_BROKER_KEYS, startAwsFake } from '../test/iam/fakes/aws.ts';
import { api, captureLog, startDevVault, tempDir, testConfig, waitFor } from '../test/broker/helpers.ts';

const workloads = Number(process.argv[2] ?? 200);
const concurrency = Number(process.argv[3] ?? 8);
const ROLE_ARN = 'arn:aws:iam::123456789012:role/tvm-logs';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

// 1. Validation.
const input = {
  read: ['s3://logs/app/**', 'gs://logs/app/**', 'azblob://tvmlogs01/logs/**', 'k8s://apps/configmaps', 'db://orders/*'],
  write: ['s3://logs/outbox/**', 'k8s://apps/configmaps/flags'],
  audiences: ['sts.amazonaws.com', 'https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/tvm-pool/providers/tvm-oidc', 'api://AzureADTokenExchange'],
  max_ttl: '1h',
  iam: {
    aws: { role_arn: ROLE_ARN },
    gcp: { workload_identity_provider: '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/tvm-pool/providers/tvm-oidc' },
    azure: { tenant_id: '72f988bf-86f1-41af-91ab-2d7cd011db47', client_id: '0b5f2c1e-9d7a-4c1b-8f00-000000000042', storage_account: 'tvmlogs01', hierarchical_namespace: true },
    kubernetes: { api_server: 'https://10.0.0.1:6443', namespace: 'apps' },
  },
};
const N = 5000;
for (let i = 0; i < 500; i++) parseRoleInput('bench', input);
let t0 = performance.now();
for (let i = 0; i < N; i++) parseRoleInput('bench', input);
const validateUs = ((performance.now() - t0) * 1000) / N;
const { iam: _iam, ...plain } = input;
t0 = performance.now();
for (let i = 0; i < N; i++) parseRoleInput('bench', plain);
const plainUs = ((performance.now() - t0) * 1000) / N;

// 2. End to end through the broker.
const vault = await startDevVault();
await vault.conn.write('tvm/roles/logs', { read: ['s3://logs/app/**'], write: ['s3://logs/outbox/**'], audiences: ['sts.amazonaws.com'], ttl: '20m', max_ttl: '1h', iam: { aws: { role_arn: ROLE_ARN } } });
const aws = await startAwsFake({ oidc: { issuer: `${vault.address}/v1/tvm`, clientIds: ['sts.amazonaws.com'] } });
aws.addRole(ROLE_ARN, { trustedSubjects: ['root'] });
const dir = tempDir('tvm-bench-cloud-');
const providers = await createProviders(parseCloudBlocks({ aws: { sts_endpoint: aws.url, iam_endpoint: aws.url, access_key_id: FAKE_BROKER_KEYS.accessKeyId, secret_access_key: FAKE_BROKER_KEYS.secretAccessKey, region: 'us-east-1' } }));
const broker = await startBroker(testConfig(vault, { sqlite: { path: `${dir.path}/broker.db` } }, { roles: ['logs'] }), { log: captureLog().log, providers });
const base = broker.url as string;

const ids: string[] = [];
for (let i = 0; i < workloads; i++) {
  const w = await api<{ id: string }>(base, 'POST', '/v1/workloads', { name: `bench-${i}`, heartbeat_interval: '10m' });
  ids.push(w.body.id);
}
async function round(): Promise<{ lat: number[]; wallMs: number; cached: number }> {
  const lat: number[] = [];
  let cached = 0;
  const start = performance.now();
  await pool(ids, concurrency, async (id) => {
    const s = performance.now();
    const r = await api<{ cached: boolean; cloud_credential?: unknown }>(base, 'POST', '/v1/tokens', { workload: id, role: 'logs', cloud: 'aws' });
    if (r.status !== 200 || !r.body.cloud_credential) throw new Error(`POST /v1/tokens: ${r.status} ${r.text}`);
    if (r.body.cached) cached++;
    lat.push(performance.now() - s);
  });
  return { lat: lat.sort((a, b) => a - b), wallMs: performance.now() - start, cached };
}
const fresh = await round();
const again = await round();

const endStart = performance.now();
await pool(ids, concurrency, async (id) => {
  await api(base, 'DELETE', `/v1/workloads/${id}`);
});
await waitFor(async () => {
  const r = await api<{ leases: Array<{ cloud_state: string | null }> }>(base, 'GET', `/v1/leases?state=revoked&limit=${workloads * 2}`);
  return r.body.leases.filter((l) => l.cloud_state === 'cleanup' || l.cloud_state === 'done').length >= workloads;
}, Number(process.env.BENCH_TEARDOWN_TIMEOUT_MS ?? 300_000), 'every grant torn down', 50).catch(async (err) => {
  const r = await api<{ leases: Array<Record<string, unknown>> }>(base, 'GET', `/v1/leases?state=active,revoking,revoked,irrevocable&limit=${workloads * 2}`);
  const tally: Record<string, number> = {};
  for (const l of r.body.leases) tally[`${l.state}/${l.cloud_state}`] = (tally[`${l.state}/${l.cloud_state}`] ?? 0) + 1;
  console.error('lease/grant states:', JSON.stringify(tally), 'sample error:', r.body.leases.find((l) => l.cloud_last_error)?.cloud_last_error);
  throw err;
});
const teardownMs = performance.now() - endStart;

console.log(`bench-cloud: ${workloads} workloads, ${concurrency} requests in flight, node ${process.version}; dev server + AWS fake + broker in one process on 2 cores`);
console.log(`role validation: ${validateUs.toFixed(1)} µs/op with a four-cloud iam mapping (${plainUs.toFixed(1)} µs/op without)`);
console.log(`POST /v1/tokens cloud=aws, new lease + grant: ${(workloads / (fresh.wallMs / 1000)).toFixed(0)}/s, p50 ${fmt(pct(fresh.lat, 50))}, p99 ${fmt(pct(fresh.lat, 99))}`);
console.log(`POST /v1/tokens cloud=aws, cached: ${(workloads / (again.wallMs / 1000)).toFixed(0)}/s, p50 ${fmt(pct(again.lat, 50))}, p99 ${fmt(pct(again.lat, 99))} (${again.cached}/${workloads} from the cache)`);
const policies = [...[...aws.state.roles.values()][0].policies.keys()];
console.log(`teardown: ${workloads} workloads ended → every grant torn down in ${(teardownMs / 1000).toFixed(2)} s; the role holds ${policies.filter((n) => n.startsWith('tvm-deny-tvm-')).length} per-session denies${policies.includes('tvm-deny-issued-before') ? ' and the role-wide tvm-deny-issued-before (the per-role inline policy quota, 10,240 characters, was reached)' : ''}`);
console.log(`STS calls: ${aws.requests.filter((r) => r.service === 'sts').length}, IAM calls: ${aws.requests.filter((r) => r.service === 'iam').length}`);

await broker.stop().catch(() => undefined);
await aws.close();
await vault.close();
dir.remove();
process.exit(0);
