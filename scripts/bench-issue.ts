// The issuance benchmark behind scripts/bench-issue. See that file for usage.
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'both' },
    duration: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '2' },
    audit: { type: 'string', default: 'off' },
  },
});
// off: no audit device; on: one file device enabled before the load; both: each mode without, then with.
const audits = values.audit === 'both' ? [false, true] : values.audit === 'on' ? [true] : [false];
const durationS = Number(values.duration);
const concurrency = Number(values.concurrency);
const warmupS = Number(values.warmup);
const modes = values.mode === 'both' ? ['dev', 'persistent'] : [values.mode!];
if (!modes.every((m) => m === 'dev' || m === 'persistent') || !(durationS > 0) || !(concurrency > 0) || !['off', 'on', 'both'].includes(values.audit!)) {
  console.error('usage: scripts/bench-issue [--mode dev|persistent|both] [--duration S] [--concurrency N] [--warmup S] [--audit off|on|both]');
  process.exit(2);
}

function rawSigningRate(seconds: number): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const payload = Buffer.from('eyJhbGciOiJFUzI1NiJ9.eyJzY29wZSI6InJlYWQ6ZGI6Ly9vcmRlcnMvKiJ9');
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) sign('sha256', payload, { key, dsaEncoding: 'ieee-p1363' });
    n += 100;
  }
  return n / seconds;
}

async function startServer(mode: string, dir: string): Promise<{ child: ChildProcess; address: string; rootToken: string }> {
  const port = 18200 + Math.floor(Math.random() * 1000);
  const args = ['--import', 'tsx', 'scripts/bench-server.ts', mode, `127.0.0.1:${port}`];
  if (mode === 'persistent') {
    const config = join(dir, 'bench.hcl');
    const sealKey = join(dir, 'seal.key');
    writeFileSync(sealKey, randomBytes(32), { mode: 0o600 });
    writeFileSync(
      config,
      `storage "sqlite" {\n  path = "${join(dir, 'tvm.db')}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\napi_addr = "http://127.0.0.1:${port}"\nseal "static" {\n  current_key_id = "bench"\n  current_key = "file://${sealKey}"\n}\n`,
    );
    args.push(config);
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  const { address, rootToken } = JSON.parse(line) as { address: string; rootToken: string };
  return { child, address, rootToken };
}

function call(agent: Agent, url: URL, token: string, method: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, agent, headers: { 'X-Vault-Token': token, 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function load(address: string, token: string, seconds: number, record: boolean) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL(`${address}/v1/tvm/creds/bench`);
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const res = await call(agent, url, token, 'GET');
      const ms = performance.now() - t0;
      if (res.status !== 200) {
        errors++;
        if (errors === 1) console.error(`first error: ${res.status} ${res.body.slice(0, 200)}`);
      } else if (record) latencies.push(ms);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedS = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  return { rate: latencies.length / elapsedS, p50: pct(50), p99: pct(99), count: latencies.length, errors };
}

console.log(`tvm issuance benchmark: ${durationS}s per mode, concurrency ${concurrency}, node ${process.version}`);
const ceiling = rawSigningRate(2);
console.log(`raw ES256 signing (node:crypto, one core): ${Math.round(ceiling)} signatures/s`);
for (const mode of modes) for (const audited of audits) {
  const dir = mkdtempSync(join(tmpdir(), 'tvm-bench-'));
  const server = await startServer(mode, dir);
  try {
    const root = server.rootToken;
    if (audited) {
      const a = new Agent({ keepAlive: true });
      const on = await call(a, new URL(`${server.address}/v1/sys/audit/file`), root, 'PUT', JSON.stringify({ type: 'file', options: { file_path: join(dir, 'audit.log') } }));
      a.destroy();
      if (on.status !== 204) throw new Error(`enabling the audit device failed: ${on.status} ${on.body}`);
    }
    const roleUrl = new URL(`${server.address}/v1/tvm/roles/bench`);
    const agent = new Agent({ keepAlive: true });
    const made = await call(agent, roleUrl, root, 'POST', JSON.stringify({ read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '15m', max_ttl: '1h' }));
    if (made.status >= 300) throw new Error(`role write failed: ${made.status} ${made.body}`);
    agent.destroy();
    await load(server.address, root, warmupS, false);
    const r = await load(server.address, root, durationS, true);
    console.log(
      `${(audited ? `${mode}+audit` : mode).padEnd(10)} ${Math.round(r.rate)} creds/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  (${r.count} tokens, ${r.errors} errors)`,
    );
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((resolve) => server.child.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}
