// Broker benchmark: N active leases against the dev server (in this process);
// the broker runs as its own process (`tvm broker run`) so its RSS is its own.
// Reports RSS, sustained renewals/s, the busiest second against the mean (the
// storm check), and the time to restore after SIGKILL.
//   node --import tsx scripts/bench-broker.ts [leases=100000] [seconds=60] [ttl=60s]

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from '../src/client/index.ts';
import { startServer } from '../src/server/index.ts';

const N = Number(process.argv[2] ?? 100_000);
const SECONDS = Number(process.argv[3] ?? 60);
const TTL = process.argv[4] ?? '60s';
const dir = mkdtempSync(join(tmpdir(), 'tvm-bench-broker-'));

function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

async function startBrokerProcess(config: string): Promise<{ child: ChildProcess; ms: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['bin/tvm.js', 'broker', 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      if (l.startsWith('tvm broker: listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`broker exited ${code}`)));
  });
  return { child, ms: performance.now() - t0 };
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function renewalsTotal(base: string): Promise<number> {
  const m = await call(base, 'GET', '/metrics');
  return Number(/tvm_broker_renewals_total\{result="ok"\} (\d+)/.exec(m.text)?.[1] ?? 0);
}

const server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
const conn = connect({ addr: server.address, token: server.rootToken as string, env: {} });
await conn.write('tvm/roles/bench', { read: ['db://bench/*'], ttl: TTL, max_ttl: '1h' });
const port = 18300 + Math.floor(Math.random() * 1000);
const config = join(dir, 'broker.json');
writeFileSync(
  config,
  JSON.stringify({
    vault: { address: server.address, auth: { token: { token: server.rootToken } } },
    store: { sqlite: { path: join(dir, 'broker.db') } },
    listener: { address: `127.0.0.1:${port}` },
    roles: ['bench'],
    revoke_on_shutdown: false,
    anomaly: { min_count: 10_000_000 },
    log: { level: 'warn' },
  }),
);
const base = `http://127.0.0.1:${port}`;
let broker = await startBrokerProcess(config);

const workloads: string[] = [];
for (let i = 0; i < 100; i++) {
  const r = await call(base, 'POST', '/v1/workloads', { name: `w${i}`, heartbeat_interval: '1h' });
  workloads.push((JSON.parse(r.text) as { id: string }).id);
}
const t0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (next < N) {
      const i = next++;
      const r = await call(base, 'POST', '/v1/tokens', { workload: workloads[i % 100], role: 'bench', read: [`db://bench/${i}`] });
      if (r.status !== 200) throw new Error(`issue ${i}: ${r.status} ${r.text}`);
    }
  }),
);
const issueS = (performance.now() - t0) / 1000;
console.log(`issued ${N} leases in ${issueS.toFixed(1)} s (${(N / issueS).toFixed(0)}/s)`);

const perSecond: number[] = [];
let last = await renewalsTotal(base);
let peakRss = rssMb(broker.child.pid!);
for (let s = 0; s < SECONDS; s++) {
  await new Promise((r) => setTimeout(r, 1000));
  const now = await renewalsTotal(base);
  perSecond.push(now - last);
  last = now;
  peakRss = Math.max(peakRss, rssMb(broker.child.pid!));
}
// The first ttl × 2/3 after issuing holds no renewals yet; measure from the first one.
const first = perSecond.findIndex((n) => n > 0);
const window = first < 0 ? [] : perSecond.slice(first);
const mean = window.reduce((a, b) => a + b, 0) / Math.max(1, window.length);
const max = Math.max(0, ...window);
console.log(`broker RSS peak ${peakRss.toFixed(0)} MB with ${N} active leases`);
console.log(`renewals: mean ${mean.toFixed(1)}/s over ${window.length} s, busiest second ${max} (${(max / Math.max(mean, 1e-9)).toFixed(2)}x the mean)`);

broker.child.kill('SIGKILL');
await new Promise((r) => broker.child.once('exit', r));
broker = await startBrokerProcess(config);
console.log(`restore after SIGKILL: ${broker.ms.toFixed(0)} ms from spawn to serving (${N} leases in the registry)`);
const status = await call(base, 'GET', '/v1/status');
console.log(`status after restore: ${status.text}`);
broker.child.kill('SIGKILL');
await server.close();
rmSync(dir, { recursive: true, force: true });
